/*
 * A bounded writer. Every call adds to <len> even when the bytes do not fit,
 * and writes only while they fit, so an encoder can run once and report the
 * size it needs.
 */
#ifndef MOAT_CODEC_WR_H
#define MOAT_CODEC_WR_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <moat/bytes.h>

struct wr {
	uint8_t *p;
	size_t cap;
	size_t len;
};

static inline void wr_init(struct wr *w, uint8_t *p, size_t cap)
{
	*w = (struct wr){ .p = p, .cap = cap, .len = 0 };
}

static inline void wr_raw(struct wr *w, const void *src, size_t n)
{
	if (n > 0 && w->len <= w->cap && w->cap - w->len >= n)
		memcpy(w->p + w->len, src, n);
	w->len += n;
}

static inline void wr_u8(struct wr *w, uint8_t v)
{
	wr_raw(w, &v, 1);
}

static inline void wr_u16(struct wr *w, uint16_t v)
{
	uint8_t b[2] = { (uint8_t)(v >> 8), (uint8_t)v };

	wr_raw(w, b, 2);
}

static inline void wr_u32(struct wr *w, uint32_t v)
{
	uint8_t b[4] = { (uint8_t)(v >> 24), (uint8_t)(v >> 16), (uint8_t)(v >> 8), (uint8_t)v };

	wr_raw(w, b, 4);
}

static inline size_t varint_size(uint32_t v)
{
	return v < 128u ? 1 : v < 16384u ? 2 : v < 2097152u ? 3 : 4;
}

static inline void wr_varint(struct wr *w, uint32_t v)
{
	do {
		uint8_t b = (uint8_t)(v & 0x7f);

		v >>= 7;
		if (v > 0)
			b |= 0x80;
		wr_u8(w, b);
	} while (v > 0);
}

static inline void wr_bytes(struct wr *w, struct moat_bytes b)
{
	wr_raw(w, b.ptr, b.len);
}

/* A two-byte length and the bytes (UTF-8 string or binary data). */
static inline void wr_str(struct wr *w, struct moat_bytes b)
{
	wr_u16(w, (uint16_t)b.len);
	wr_bytes(w, b);
}

#endif
