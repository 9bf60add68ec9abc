/*
 * The envelope of a message handed over with its session (see handover.h).
 */
#include "cluster/handover.h"

#include <string.h>

#include <moat/error.h>

#include "codec/rd.h"
#include "codec/wr.h"
#include "cluster/wire.h"

enum { HANDOVER_FORMAT = 2, SUB_ID_MAX = 268435455 };

bool handover_is(struct moat_bytes data)
{
	return data.len > 0 && data.ptr[0] == HANDOVER_FORMAT;
}

int handover_encode(struct buf *out, struct buf *scratch, const char *node, const char *key,
		    const struct delivery *d)
{
	uint8_t head[4 + 4 * MAX_SUB_IDS + 2];
	size_t key_len = strlen(key);
	struct wr w;
	int rc;

	if (d->qos == 0 || d->sub_id_count > MAX_SUB_IDS || key_len > UINT16_MAX)
		return MOAT_E_INVAL;
	wr_init(&w, head, sizeof(head));
	wr_u8(&w, HANDOVER_FORMAT);
	wr_u8(&w, d->qos);
	wr_u8(&w, d->retain ? 1 : 0);
	wr_u8(&w, d->sub_id_count);
	for (uint8_t i = 0; i < d->sub_id_count; i++)
		wr_u32(&w, d->sub_ids[i]);
	wr_u16(&w, (uint16_t)key_len);
	rc = wire_encode(scratch, node, d->msg);
	buf_consume(out, buf_used(out));
	if (rc == MOAT_OK)
		rc = buf_append(out, head, w.len);
	if (rc == MOAT_OK)
		rc = buf_append(out, key, key_len);
	if (rc == MOAT_OK)
		rc = buf_append(out, buf_head(scratch), buf_used(scratch));
	return rc;
}

static int malformed(const char **why, const char *reason)
{
	*why = reason;
	return MOAT_E_MALFORMED;
}

int handover_decode(struct moat_bytes data, struct handover *h, const char **why)
{
	uint8_t format = 0, qos = 0, retain = 0, count = 0;
	uint16_t key_len = 0;
	struct rd r;

	rd_init(&r, data.ptr, data.len);
	if (!rd_u8(&r, &format) || format != HANDOVER_FORMAT || !rd_u8(&r, &qos) ||
	    !rd_u8(&r, &retain) || !rd_u8(&r, &count))
		return malformed(why, "not a handed-over message of format 2");
	if (qos < 1 || qos > 2 || retain > 1 || count > MAX_SUB_IDS)
		return malformed(why, "QoS, retain flag or identifier count out of range");
	h->qos = qos;
	h->retain = retain == 1;
	h->sub_id_count = count;
	for (uint8_t i = 0; i < count; i++) {
		if (!rd_u32(&r, &h->sub_ids[i]))
			return malformed(why, "subscription identifiers longer than the message");
		if (h->sub_ids[i] == 0 || h->sub_ids[i] > SUB_ID_MAX)
			return malformed(why, "subscription identifier out of range");
	}
	if (!rd_u16(&r, &key_len) || key_len == 0 || r.left < key_len)
		return malformed(why, "session key empty or longer than the message");
	h->key = (struct moat_bytes){r.p, key_len};
	h->wire = (struct moat_bytes){r.p + key_len, r.left - key_len};
	return MOAT_OK;
}
