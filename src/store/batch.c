/*
 * Building store batches (store_batch_* in store.h); the layout is in ops.h.
 */
#include "store/ops.h"
#include "store/store.h"

#include <string.h>

#include <moat/error.h>

void store_batch_init(struct store_batch *b)
{
	*b = (struct store_batch){0};
}

void store_batch_fini(struct store_batch *b)
{
	buf_fini(&b->ops);
	b->count = 0;
}

static void put_u32(struct buf *o, size_t v)
{
	uint32_t u = (uint32_t)v;

	memcpy(o->data + o->len, &u, sizeof(u));
	o->len += sizeof(u);
}

static void put_bytes(struct buf *o, const uint8_t *p, size_t len)
{
	if (len > 0)
		memcpy(o->data + o->len, p, len);
	o->len += len;
}

/* Adds one operation; reserves everything first so that a failure leaves <b> unchanged. */
static int add_op(struct store_batch *b, enum store_op_type type, const uint8_t *key, size_t klen,
		  const uint8_t *val, size_t vlen)
{
	size_t head = buf_used(&b->ops) == 0 ? sizeof(struct store_node) : 0;
	size_t need = 1 + 4 + (type == STORE_OP_PUT ? 4 : 0);
	struct buf *o = &b->ops;

	if (klen > STORE_MAX_KEY || (klen == 0 && type != STORE_OP_DEL_PREFIX) ||
	    vlen > STORE_MAX_VALUE || (key == NULL && klen > 0) || (val == NULL && vlen > 0))
		return MOAT_E_LIMIT;
	if (b->count == UINT32_MAX || buf_used(o) + head + need + klen + vlen > STORE_MAX_BATCH)
		return MOAT_E_LIMIT;
	if (buf_reserve(o, head + need + klen + vlen) < 0)
		return MOAT_E_NOMEM;
	if (head > 0) {
		memset(o->data + o->len, 0, head);
		o->len += head;
	}
	o->data[o->len++] = (uint8_t)type;
	put_u32(o, klen);
	if (type == STORE_OP_PUT)
		put_u32(o, vlen);
	put_bytes(o, key, klen);
	put_bytes(o, val, vlen);
	b->count++;
	return MOAT_OK;
}

int store_batch_put(struct store_batch *b, const uint8_t *key, size_t klen, const uint8_t *val,
		    size_t vlen)
{
	return add_op(b, STORE_OP_PUT, key, klen, val, vlen);
}

int store_batch_del(struct store_batch *b, const uint8_t *key, size_t klen)
{
	return add_op(b, STORE_OP_DEL, key, klen, NULL, 0);
}

int store_batch_del_prefix(struct store_batch *b, const uint8_t *prefix, size_t plen)
{
	return add_op(b, STORE_OP_DEL_PREFIX, prefix, plen, NULL, 0);
}

static bool get_u32(const uint8_t **p, const uint8_t *end, size_t *v)
{
	uint32_t u;

	if ((size_t)(end - *p) < sizeof(u))
		return false;
	memcpy(&u, *p, sizeof(u));
	*p += sizeof(u);
	*v = u;
	return true;
}

bool store_op_next(const uint8_t **p, const uint8_t *end, struct store_op *op)
{
	const uint8_t *q = *p;

	if (q >= end)
		return false;
	op->type = (enum store_op_type) * q++;
	op->vlen = 0;
	op->val = NULL;
	if (op->type != STORE_OP_PUT && op->type != STORE_OP_DEL && op->type != STORE_OP_DEL_PREFIX)
		return false;
	if (!get_u32(&q, end, &op->klen))
		return false;
	if (op->type == STORE_OP_PUT && !get_u32(&q, end, &op->vlen))
		return false;
	if ((size_t)(end - q) < op->klen || (size_t)(end - q) - op->klen < op->vlen)
		return false;
	op->key = q;
	q += op->klen;
	if (op->type == STORE_OP_PUT)
		op->val = q;
	q += op->vlen;
	*p = q;
	return true;
}
