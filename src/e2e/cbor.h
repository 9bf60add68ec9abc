/*
 * A small strict CBOR (RFC 8949) subset for the COSE envelope: unsigned and
 * negative integers, byte and text strings, arrays, maps, tags and the simple
 * values false/true/null. Definite lengths only, preferred (shortest)
 * encoding of every head required, text strings valid UTF-8, map keys only
 * integers or strings and never repeated, nesting at most CBOR_MAX_DEPTH.
 * Floats, undefined and other simple values are refused.
 *
 * The decoder is a cursor over borrowed bytes: it allocates nothing and
 * returns views into the input; its error is sticky. cbor_check() validates
 * one whole item (run it on untrusted bytes first), the cbor_read_*()
 * readers then walk it. The encoder appends deterministic CBOR (RFC 8949
 * §4.2.1) to a struct buf; callers emit map keys in sorted order, and
 * cbor_canonical() re-encodes any accepted item deterministically.
 */
#ifndef MOAT_E2E_CBOR_H
#define MOAT_E2E_CBOR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <moat/bytes.h>

#include "base/buf.h"

enum {
	CBOR_MAX_DEPTH = 8,	 /* nested arrays, maps and tags */
	CBOR_MAX_MAP_PAIRS = 32, /* pairs in one map (bounds the duplicate-key check) */
};

enum cbor_major {
	CBOR_UINT = 0,
	CBOR_NINT = 1,
	CBOR_BSTR = 2,
	CBOR_TSTR = 3,
	CBOR_ARRAY = 4,
	CBOR_MAP = 5,
	CBOR_TAG = 6,
	CBOR_SIMPLE = 7,
};

enum cbor_simple {
	CBOR_FALSE = 20,
	CBOR_TRUE = 21,
	CBOR_NULL = 22,
};

struct cbor_dec {
	const uint8_t *p; /* next unread byte */
	size_t left;	  /* bytes that may still be read */
	int err;	  /* first error (MOAT_E_*); once set, every read fails */
};

/* Starts a cursor over <len> bytes at <p> (borrowed). */
void cbor_dec_init(struct cbor_dec *d, const uint8_t *p, size_t len);

/* Major type of the next item, or -1 at the end or after an error. Reads nothing. */
int cbor_peek(const struct cbor_dec *d);

/*
 * Typed readers: each reads one head of the expected major type (and, for
 * strings, the content as a view into the input). On a type mismatch,
 * truncation or non-preferred encoding they set d->err (MOAT_E_MALFORMED,
 * MOAT_E_UNSUPPORTED for types outside the subset, MOAT_E_LIMIT for an
 * integer out of range, MOAT_E_BAD_UTF8) and return false. Arrays and maps
 * return their element / pair count, checked against the bytes left; the
 * caller reads the elements. They do not check depth or duplicate keys:
 * use cbor_check() on untrusted input first.
 */
bool cbor_read_uint(struct cbor_dec *d, uint64_t *v);
bool cbor_read_int(struct cbor_dec *d, int64_t *v); /* uint or nint within int64_t */
bool cbor_read_bstr(struct cbor_dec *d, struct moat_bytes *v);
bool cbor_read_tstr(struct cbor_dec *d, struct moat_bytes *v);
bool cbor_read_array(struct cbor_dec *d, size_t *count);
bool cbor_read_map(struct cbor_dec *d, size_t *pairs);
bool cbor_read_tag(struct cbor_dec *d, uint64_t *tag);
bool cbor_read_simple(struct cbor_dec *d, enum cbor_simple *v);

/*
 * Validates and skips one whole data item (nested items included): depth,
 * map pair count and duplicate keys, UTF-8, and everything the readers
 * check. Returns false with d->err set on the first violation; <raw> (may be
 * NULL) receives a view of the item's encoding on success.
 */
bool cbor_skip(struct cbor_dec *d, struct moat_bytes *raw);

/*
 * True when <p>/<len> is exactly one item that cbor_skip() accepts, with no
 * trailing bytes. Returns MOAT_OK or the first error (MOAT_E_MALFORMED for
 * indefinite lengths, truncation, non-preferred encoding, duplicate keys or
 * trailing bytes; MOAT_E_LIMIT over the depth or pair caps; MOAT_E_BAD_UTF8;
 * MOAT_E_UNSUPPORTED for floats and other simple values).
 */
int cbor_check(const uint8_t *p, size_t len);

/*
 * Appends the deterministic encoding (RFC 8949 §4.2.1: preferred heads,
 * map pairs sorted by the bytes of their keys) of the one item at <p>/<len>
 * to <out>. Returns MOAT_OK, what cbor_check() would return, or
 * MOAT_E_NOMEM; on error <out> may hold a partial encoding.
 */
int cbor_canonical(const uint8_t *p, size_t len, struct buf *out);

/*
 * Encoder: each appends one head (and, for strings, the content) in its
 * shortest form to <b> and returns MOAT_OK or MOAT_E_NOMEM. Arrays and maps
 * are followed by <count> items / <pairs> key-value pairs written by the
 * caller, keys in bytewise order of their encodings.
 */
int cbor_put_uint(struct buf *b, uint64_t v);
int cbor_put_int(struct buf *b, int64_t v);
int cbor_put_bstr(struct buf *b, const void *p, size_t len);
int cbor_put_tstr(struct buf *b, const char *s, size_t len);
/* Appends only the head of a byte string of <len> bytes; the caller appends them. */
int cbor_put_bstr_head(struct buf *b, size_t len);
int cbor_put_array(struct buf *b, size_t count);
int cbor_put_map(struct buf *b, size_t pairs);
int cbor_put_tag(struct buf *b, uint64_t tag);
int cbor_put_simple(struct buf *b, enum cbor_simple v);

#endif
