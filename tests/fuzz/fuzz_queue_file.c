/*
 * libFuzzer target for libmoat's queue-file replay (src/client/queue_file.c):
 * any bytes either are refused as a foreign file or yield a valid prefix
 * whose live entries hold decodable QoS 1/2 PUBLISH packets in increasing
 * seq order, and replaying that prefix again finds the same entries and no
 * damage. The first input byte is a mode: when odd, the record CRCs are
 * recomputed first, so the fuzzer also reaches the checks behind the CRC.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <moat/error.h>

#include "client/queue_file.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static uint32_t get32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* Rewrites the CRC of every record whose length fits in <f>. */
static void fix_crcs(uint8_t *f, size_t size)
{
	size_t off = QF_HEADER_LEN;

	while (size >= QF_REC_HEAD && off <= size - QF_REC_HEAD) {
		uint32_t len = get32(f + off + 2), crc;

		if (len > size - off - QF_REC_HEAD)
			return;
		crc = qf_crc32(f + off + QF_REC_HEAD, len);
		f[off + 6] = (uint8_t)(crc >> 24);
		f[off + 7] = (uint8_t)(crc >> 16);
		f[off + 8] = (uint8_t)(crc >> 8);
		f[off + 9] = (uint8_t)crc;
		off += QF_REC_HEAD + len;
	}
}

static void check(const uint8_t *data, size_t size)
{
	struct qf_replay r, again;
	char diag[256];
	int rc = qf_parse(data, size, &r, diag, sizeof(diag));

	if (rc == MOAT_E_MALFORMED || rc == MOAT_E_NOMEM)
		return;
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
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t *copy;

	if (size == 0)
		return 0;
	copy = malloc(size - 1 > 0 ? size - 1 : 1); /* exact size, so ASan sees over-reads */
	if (copy == NULL)
		return 0;
	memcpy(copy, data + 1, size - 1);
	if (data[0] & 1)
		fix_crcs(copy, size - 1);
	check(copy, size - 1);
	free(copy);
	return 0;
}
