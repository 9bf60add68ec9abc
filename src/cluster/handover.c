/*
 * The envelope of a message handed over with its session (see handover.h).
 */
#include "cluster/handover.h"

#include <string.h>

#include <moat/error.h>

#include "cluster/wire.h"

enum { HANDOVER_FORMAT = 2, SUB_ID_MAX = 268435455 };

bool handover_is(struct moat_bytes data)
{
	return data.len > 0 && data.ptr[0] == HANDOVER_FORMAT;
}

static void put_u32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

int handover_encode(struct buf *out, struct buf *scratch, const char *node, const char *key,
		    const struct delivery *d)
{
	uint8_t head[4 + 4 * MAX_SUB_IDS + 2];
	size_t n = 0, key_len = strlen(key);
	int rc;

	if (d->qos == 0 || d->sub_id_count > MAX_SUB_IDS || key_len > UINT16_MAX)
		return MOAT_E_INVAL;
	head[n++] = HANDOVER_FORMAT;
	head[n++] = d->qos;
	head[n++] = d->retain ? 1 : 0;
	head[n++] = d->sub_id_count;
	for (uint8_t i = 0; i < d->sub_id_count; i++, n += 4)
		put_u32(head + n, d->sub_ids[i]);
	head[n++] = (uint8_t)(key_len >> 8);
	head[n++] = (uint8_t)key_len;
	rc = wire_encode(scratch, node, d->msg);
	buf_consume(out, buf_used(out));
	if (rc == MOAT_OK)
		rc = buf_append(out, head, n);
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
	const uint8_t *p = data.ptr, *end = data.ptr + data.len;
	size_t key_len;

	if (data.len < 4 || p[0] != HANDOVER_FORMAT)
		return malformed(why, "not a handed-over message of format 2");
	if (p[1] < 1 || p[1] > 2 || p[2] > 1 || p[3] > MAX_SUB_IDS)
		return malformed(why, "QoS, retain flag or identifier count out of range");
	h->qos = p[1];
	h->retain = p[2] == 1;
	h->sub_id_count = p[3];
	p += 4;
	if ((size_t)(end - p) < 4u * h->sub_id_count + 2)
		return malformed(why, "subscription identifiers longer than the message");
	for (uint8_t i = 0; i < h->sub_id_count; i++, p += 4) {
		h->sub_ids[i] =
		    (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
		if (h->sub_ids[i] == 0 || h->sub_ids[i] > SUB_ID_MAX)
			return malformed(why, "subscription identifier out of range");
	}
	key_len = (size_t)p[0] << 8 | p[1];
	p += 2;
	if (key_len == 0 || (size_t)(end - p) < key_len)
		return malformed(why, "session key empty or longer than the message");
	h->key = (struct moat_bytes){p, key_len};
	h->wire = (struct moat_bytes){p + key_len, (size_t)(end - p) - key_len};
	return MOAT_OK;
}
