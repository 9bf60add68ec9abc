/*
 * Byte views: a pointer and a length that borrow from a buffer someone else
 * owns. A view must not outlive its buffer; copying is always explicit.
 */
#ifndef MOAT_BYTES_H
#define MOAT_BYTES_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

struct moat_bytes {
	const uint8_t *ptr;
	size_t len;
};

/* A view of the NUL-terminated string <s> (without the NUL); NULL gives an empty view. */
static inline struct moat_bytes moat_bytes_str(const char *s)
{
	return (struct moat_bytes){ .ptr = (const uint8_t *)s, .len = s != NULL ? strlen(s) : 0 };
}

/* True when <a> and <b> hold the same bytes. Not constant-time: never for secrets. */
static inline int moat_bytes_eq(struct moat_bytes a, struct moat_bytes b)
{
	return a.len == b.len && (a.len == 0 || memcmp(a.ptr, b.ptr, a.len) == 0);
}

#endif
