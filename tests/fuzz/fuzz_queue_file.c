/*
 * libFuzzer target for libmoat's queue-file replay (src/client/queue_file.c):
 * any bytes either are refused as a foreign file or yield a valid prefix
 * whose live entries hold decodable QoS 1/2 PUBLISH packets in increasing
 * seq order, and replaying that prefix again finds the same entries and no
 * damage.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <moat/error.h>

#include "client/queue_file.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct qf_replay r, again;
	char diag[256];
	int rc = qf_parse(data, size, &r, diag, sizeof(diag));

	if (rc == MOAT_E_MALFORMED || rc == MOAT_E_NOMEM)
		return 0;
	if (rc != MOAT_OK || r.good_len > size || r.good_len < QF_HEADER_LEN)
		abort();
	if ((r.good_len < size) != (diag[0] != '\0'))
		abort(); /* damage is reported exactly when something was cut */
	for (size_t i = 0; i < r.count; i++) {
		struct mqtt_publish p;

		if (qf_decode_publish(&r.live[i], &p) != MOAT_OK || p.qos == 0 ||
		    (i > 0 && r.live[i].seq <= r.live[i - 1].seq) || r.live[i].seq >= r.next_seq)
			abort();
	}
	if (qf_parse(data, r.good_len, &again, diag, sizeof(diag)) != MOAT_OK || diag[0] != '\0' ||
	    again.count != r.count || again.good_len != r.good_len)
		abort();
	for (size_t i = 0; i < r.count; i++)
		if (again.live[i].seq != r.live[i].seq ||
		    again.live[i].released != r.live[i].released ||
		    again.live[i].pkt.ptr != r.live[i].pkt.ptr)
			abort();
	qf_replay_fini(&again);
	qf_replay_fini(&r);
	return 0;
}
