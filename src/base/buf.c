/*
 * Growable byte buffers (see buf.h).
 */
#include "base/buf.h"

#include <stdlib.h>
#include <string.h>

#include <moat/error.h>

int buf_reserve(struct buf *b, size_t extra)
{
	size_t used = buf_used(b);
	size_t need, cap;
	uint8_t *p;

	if (b->cap - b->len >= extra)
		return MOAT_OK;
	if (b->off > 0 && b->cap - used >= extra) {
		memmove(b->data, b->data + b->off, used);
		b->off = 0;
		b->len = used;
		return MOAT_OK;
	}
	if (extra > SIZE_MAX / 2 - used)
		return MOAT_E_NOMEM;
	need = used + extra;
	cap = b->cap > 256 ? b->cap : 256;
	while (cap < need)
		cap *= 2;
	if (b->off > 0) {
		p = malloc(cap);
		if (p == NULL)
			return MOAT_E_NOMEM;
		if (used > 0)
			memcpy(p, b->data + b->off, used);
		free(b->data);
	} else {
		p = realloc(b->data, cap);
		if (p == NULL)
			return MOAT_E_NOMEM;
	}
	b->data = p;
	b->cap = cap;
	b->off = 0;
	b->len = used;
	return MOAT_OK;
}

int buf_append(struct buf *b, const void *p, size_t len)
{
	int rc;

	if (len == 0)
		return MOAT_OK;
	rc = buf_reserve(b, len);
	if (rc < 0)
		return rc;
	memcpy(b->data + b->len, p, len);
	b->len += len;
	return MOAT_OK;
}

void buf_consume(struct buf *b, size_t n)
{
	b->off += n;
	if (b->off >= b->len)
		b->off = b->len = 0;
}

void buf_trim(struct buf *b, size_t keep)
{
	if (buf_used(b) == 0 && b->cap > keep)
		buf_fini(b);
}

void buf_fini(struct buf *b)
{
	free(b->data);
	*b = (struct buf){ 0 };
}
