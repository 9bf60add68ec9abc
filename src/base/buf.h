/*
 * Growable byte buffers for connection input and output. A buffer owns its
 * memory; consuming from the front is O(1) amortised (the read offset moves,
 * and the data is compacted only when the buffer has to grow).
 */
#ifndef MOAT_BASE_BUF_H
#define MOAT_BASE_BUF_H

#include <stddef.h>
#include <stdint.h>

struct buf {
	uint8_t *data;	/* NULL until the first reserve */
	size_t off;	/* first unconsumed byte */
	size_t len;	/* end of valid data (>= off) */
	size_t cap;
};

/* Unconsumed bytes. */
static inline size_t buf_used(const struct buf *b)
{
	return b->len - b->off;
}

/* First unconsumed byte; valid only while buf_used() > 0. */
static inline uint8_t *buf_head(const struct buf *b)
{
	return b->data + b->off;
}

/* Ensures room for <extra> more bytes after len. Returns MOAT_OK or MOAT_E_NOMEM. */
int buf_reserve(struct buf *b, size_t extra);

/* Appends <len> bytes from <p>. Returns MOAT_OK or MOAT_E_NOMEM. */
int buf_append(struct buf *b, const void *p, size_t len);

/* Drops <n> bytes (<= buf_used) from the front. */
void buf_consume(struct buf *b, size_t n);

/* Frees the storage when the buffer is empty and larger than <keep> bytes (idle memory). */
void buf_trim(struct buf *b, size_t keep);

/* Frees the storage; the buffer is empty and reusable afterwards. */
void buf_fini(struct buf *b);

#endif
