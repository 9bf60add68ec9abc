/*
 * A bounded reader over untrusted bytes (STYLE.md §7). The first error is
 * sticky: once set, every read fails, so decoders read straight through and
 * check r->err once. Nothing is copied; views point into the input.
 */
#ifndef MOAT_CODEC_RD_H
#define MOAT_CODEC_RD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <moat/bytes.h>
#include <moat/error.h>

#include "codec/utf8.h"

struct rd {
	const uint8_t *p;	/* next unread byte */
	size_t left;		/* bytes that may still be read */
	int err;		/* first error; once set, every read fails */
};

static inline void rd_init(struct rd *r, const uint8_t *p, size_t len)
{
	*r = (struct rd){ .p = p, .left = len, .err = 0 };
}

static inline bool rd_fail(struct rd *r, int err)
{
	if (r->err == 0)
		r->err = err;
	r->left = 0;
	return false;
}

static inline bool rd_u8(struct rd *r, uint8_t *out)
{
	if (r->left < 1)
		return rd_fail(r, MOAT_E_MALFORMED);
	*out = r->p[0];
	r->p++;
	r->left--;
	return true;
}

static inline bool rd_u16(struct rd *r, uint16_t *out)
{
	if (r->left < 2)
		return rd_fail(r, MOAT_E_MALFORMED);
	*out = (uint16_t)((r->p[0] << 8) | r->p[1]);
	r->p += 2;
	r->left -= 2;
	return true;
}

static inline bool rd_u32(struct rd *r, uint32_t *out)
{
	if (r->left < 4)
		return rd_fail(r, MOAT_E_MALFORMED);
	*out = ((uint32_t)r->p[0] << 24) | ((uint32_t)r->p[1] << 16) | ((uint32_t)r->p[2] << 8) |
	       (uint32_t)r->p[3];
	r->p += 4;
	r->left -= 4;
	return true;
}

/* Variable Byte Integer: at most 4 bytes, and never the overlong form (a last byte of 0). */
static inline bool rd_varint(struct rd *r, uint32_t *out)
{
	uint32_t v = 0;

	for (unsigned i = 0; i < 4; i++) {
		uint8_t b;

		if (!rd_u8(r, &b))
			return false;
		v |= (uint32_t)(b & 0x7f) << (7 * i);
		if ((b & 0x80) == 0) {
			if (b == 0 && i > 0)
				return rd_fail(r, MOAT_E_MALFORMED);
			*out = v;
			return true;
		}
	}
	return rd_fail(r, MOAT_E_MALFORMED);
}

/* Borrows <n> bytes: the view points into the input. */
static inline bool rd_bytes(struct rd *r, size_t n, struct moat_bytes *out)
{
	if (r->left < n)	/* compare lengths; never form r->p + n before the check */
		return rd_fail(r, MOAT_E_MALFORMED);
	*out = (struct moat_bytes){ .ptr = r->p, .len = n };
	r->p += n;
	r->left -= n;
	return true;
}

/* Binary data: a two-byte length and that many bytes. */
static inline bool rd_bin(struct rd *r, struct moat_bytes *out)
{
	uint16_t n;

	return rd_u16(r, &n) && rd_bytes(r, n, out);
}

/* UTF-8 string: as rd_bin, and the bytes must be MQTT-valid UTF-8. */
static inline bool rd_utf8(struct rd *r, struct moat_bytes *out)
{
	if (!rd_bin(r, out))
		return false;
	if (!utf8_is_valid_mqtt(*out))
		return rd_fail(r, MOAT_E_BAD_UTF8);
	return true;
}

/* Narrows: <sub> gets exactly the next <n> bytes, which <r> skips. */
static inline bool rd_sub(struct rd *r, size_t n, struct rd *sub)
{
	struct moat_bytes b;

	if (!rd_bytes(r, n, &b)) {
		rd_init(sub, NULL, 0);
		return false;
	}
	rd_init(sub, b.ptr, b.len);
	return true;
}

#endif
