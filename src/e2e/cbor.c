/*
 * Strict CBOR subset decoder and deterministic encoder (see cbor.h).
 */
#include "e2e/cbor.h"

#include <stdlib.h>
#include <string.h>

#include <moat/error.h>

static bool fail(struct cbor_dec *d, int err)
{
	if (d->err == MOAT_OK)
		d->err = err;
	d->left = 0;
	return false;
}

void cbor_dec_init(struct cbor_dec *d, const uint8_t *p, size_t len)
{
	d->p = p;
	d->left = p != NULL ? len : 0;
	d->err = MOAT_OK;
}

int cbor_peek(const struct cbor_dec *d)
{
	if (d->err != MOAT_OK || d->left == 0)
		return -1;
	return d->p[0] >> 5;
}

/* Reads one head: major type and argument, refusing reserved and indefinite
 * forms and any argument not in its shortest form. */
static bool read_head(struct cbor_dec *d, int *major, uint64_t *arg)
{
	unsigned ai;
	size_t n;
	uint64_t v = 0;

	if (d->err != MOAT_OK)
		return false;
	if (d->left == 0)
		return fail(d, MOAT_E_MALFORMED);
	*major = d->p[0] >> 5;
	ai = d->p[0] & 0x1fu;
	if (ai < 24) {
		d->p++;
		d->left--;
		*arg = ai;
		return true;
	}
	if (ai > 27) /* 28-30 reserved, 31 indefinite length / break */
		return fail(d, MOAT_E_MALFORMED);
	n = (size_t)1 << (ai - 24);
	if (d->left - 1 < n)
		return fail(d, MOAT_E_MALFORMED);
	for (size_t i = 0; i < n; i++)
		v = v << 8 | d->p[1 + i];
	/* preferred serialization: the argument needs this many bytes */
	if ((n == 1 && v < 24) || (n == 2 && v <= 0xff) || (n == 4 && v <= 0xffff) ||
	    (n == 8 && v <= 0xffffffffu))
		return fail(d, MOAT_E_MALFORMED);
	if (*major == CBOR_SIMPLE && n == 1 && v < 32) /* RFC 8949 §3.3 */
		return fail(d, MOAT_E_MALFORMED);
	d->p += 1 + n;
	d->left -= 1 + n;
	*arg = v;
	return true;
}

static bool read_typed(struct cbor_dec *d, int want, uint64_t *arg)
{
	int major;

	if (!read_head(d, &major, arg))
		return false;
	if (major != want)
		return fail(d, MOAT_E_MALFORMED);
	return true;
}

bool cbor_read_uint(struct cbor_dec *d, uint64_t *v)
{
	return read_typed(d, CBOR_UINT, v);
}

bool cbor_read_int(struct cbor_dec *d, int64_t *v)
{
	int major;
	uint64_t arg;

	if (!read_head(d, &major, &arg))
		return false;
	if (major != CBOR_UINT && major != CBOR_NINT)
		return fail(d, MOAT_E_MALFORMED);
	if (arg > (uint64_t)INT64_MAX)
		return fail(d, MOAT_E_LIMIT);
	*v = major == CBOR_UINT ? (int64_t)arg : -1 - (int64_t)arg;
	return true;
}

/* RFC 3629 UTF-8: shortest forms, no surrogates, nothing above U+10FFFF. */
static bool utf8_ok(const uint8_t *s, size_t n)
{
	size_t i = 0;

	while (i < n) {
		uint8_t c = s[i];
		size_t more;
		uint32_t cp, min;

		if (c < 0x80) {
			i++;
			continue;
		}
		if (c >= 0xc2 && c <= 0xdf) {
			more = 1;
			cp = c & 0x1fu;
			min = 0x80;
		} else if (c >= 0xe0 && c <= 0xef) {
			more = 2;
			cp = c & 0x0fu;
			min = 0x800;
		} else if (c >= 0xf0 && c <= 0xf4) {
			more = 3;
			cp = c & 0x07u;
			min = 0x10000;
		} else {
			return false;
		}
		if (n - i - 1 < more)
			return false;
		for (size_t k = 1; k <= more; k++) {
			if ((s[i + k] & 0xc0) != 0x80)
				return false;
			cp = cp << 6 | (s[i + k] & 0x3fu);
		}
		if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
			return false;
		i += more + 1;
	}
	return true;
}

static bool read_string(struct cbor_dec *d, int want, struct moat_bytes *v)
{
	uint64_t len;

	if (!read_typed(d, want, &len))
		return false;
	if (len > d->left)
		return fail(d, MOAT_E_MALFORMED);
	if (want == CBOR_TSTR && !utf8_ok(d->p, (size_t)len))
		return fail(d, MOAT_E_BAD_UTF8);
	*v = (struct moat_bytes){.ptr = d->p, .len = (size_t)len};
	d->p += len;
	d->left -= (size_t)len;
	return true;
}

bool cbor_read_bstr(struct cbor_dec *d, struct moat_bytes *v)
{
	return read_string(d, CBOR_BSTR, v);
}

bool cbor_read_tstr(struct cbor_dec *d, struct moat_bytes *v)
{
	return read_string(d, CBOR_TSTR, v);
}

bool cbor_read_array(struct cbor_dec *d, size_t *count)
{
	uint64_t n;

	if (!read_typed(d, CBOR_ARRAY, &n))
		return false;
	if (n > d->left) /* every element takes at least one byte */
		return fail(d, MOAT_E_MALFORMED);
	*count = (size_t)n;
	return true;
}

bool cbor_read_map(struct cbor_dec *d, size_t *pairs)
{
	uint64_t n;

	if (!read_typed(d, CBOR_MAP, &n))
		return false;
	if (n > d->left / 2)
		return fail(d, MOAT_E_MALFORMED);
	*pairs = (size_t)n;
	return true;
}

bool cbor_read_tag(struct cbor_dec *d, uint64_t *tag)
{
	if (!read_typed(d, CBOR_TAG, tag))
		return false;
	if (d->left == 0) /* a tag is followed by its content */
		return fail(d, MOAT_E_MALFORMED);
	return true;
}

bool cbor_read_simple(struct cbor_dec *d, enum cbor_simple *v)
{
	uint64_t arg;

	if (!read_typed(d, CBOR_SIMPLE, &arg))
		return false;
	if (arg != CBOR_FALSE && arg != CBOR_TRUE && arg != CBOR_NULL)
		return fail(d, MOAT_E_UNSUPPORTED);
	*v = (enum cbor_simple)arg;
	return true;
}

static bool skip_item(struct cbor_dec *d, unsigned depth);

static bool skip_map(struct cbor_dec *d, unsigned depth)
{
	struct moat_bytes keys[CBOR_MAX_MAP_PAIRS];
	size_t pairs;

	if (!cbor_read_map(d, &pairs))
		return false;
	if (pairs > CBOR_MAX_MAP_PAIRS)
		return fail(d, MOAT_E_LIMIT);
	for (size_t i = 0; i < pairs; i++) {
		int major = cbor_peek(d);
		const uint8_t *start = d->p;

		/* keys are scalars in preferred form: equal values have equal bytes */
		if (major != CBOR_UINT && major != CBOR_NINT && major != CBOR_BSTR &&
		    major != CBOR_TSTR)
			return fail(d, major < 0 ? MOAT_E_MALFORMED : MOAT_E_UNSUPPORTED);
		if (!skip_item(d, depth))
			return false;
		keys[i] = (struct moat_bytes){.ptr = start, .len = (size_t)(d->p - start)};
		for (size_t k = 0; k < i; k++)
			if (moat_bytes_eq(keys[k], keys[i]))
				return fail(d, MOAT_E_MALFORMED);
		if (!skip_item(d, depth))
			return false;
	}
	return true;
}

static bool skip_item(struct cbor_dec *d, unsigned depth)
{
	struct moat_bytes s;
	uint64_t u;
	size_t n;
	enum cbor_simple sv;

	switch (cbor_peek(d)) {
	case CBOR_UINT:
	case CBOR_NINT: {
		int major;

		return read_head(d, &major, &u);
	}
	case CBOR_BSTR:
		return cbor_read_bstr(d, &s);
	case CBOR_TSTR:
		return cbor_read_tstr(d, &s);
	case CBOR_SIMPLE:
		return cbor_read_simple(d, &sv);
	case CBOR_ARRAY:
	case CBOR_MAP:
	case CBOR_TAG:
		break;
	default:
		return fail(d, MOAT_E_MALFORMED); /* end of input or earlier error */
	}
	if (depth >= CBOR_MAX_DEPTH)
		return fail(d, MOAT_E_LIMIT);
	if (cbor_peek(d) == CBOR_MAP)
		return skip_map(d, depth + 1);
	if (cbor_peek(d) == CBOR_TAG)
		return cbor_read_tag(d, &u) && skip_item(d, depth + 1);
	if (!cbor_read_array(d, &n))
		return false;
	for (size_t i = 0; i < n; i++)
		if (!skip_item(d, depth + 1))
			return false;
	return true;
}

bool cbor_skip(struct cbor_dec *d, struct moat_bytes *raw)
{
	const uint8_t *start = d->p;

	if (!skip_item(d, 0))
		return false;
	if (raw != NULL)
		*raw = (struct moat_bytes){.ptr = start, .len = (size_t)(d->p - start)};
	return true;
}

int cbor_check(const uint8_t *p, size_t len)
{
	struct cbor_dec d;

	cbor_dec_init(&d, p, len);
	if (!cbor_skip(&d, NULL))
		return d.err;
	return d.left == 0 ? MOAT_OK : MOAT_E_MALFORMED;
}

static int put_head(struct buf *b, int major, uint64_t arg)
{
	uint8_t h[9];
	size_t n;

	if (arg < 24) {
		h[0] = (uint8_t)(major << 5 | (int)arg);
		return buf_append(b, h, 1);
	}
	if (arg <= 0xff)
		n = 1;
	else if (arg <= 0xffff)
		n = 2;
	else if (arg <= 0xffffffffu)
		n = 4;
	else
		n = 8;
	h[0] = (uint8_t)(major << 5 | (n == 1 ? 24 : n == 2 ? 25 : n == 4 ? 26 : 27));
	for (size_t i = 0; i < n; i++)
		h[1 + i] = (uint8_t)(arg >> (8 * (n - 1 - i)));
	return buf_append(b, h, 1 + n);
}

int cbor_put_uint(struct buf *b, uint64_t v)
{
	return put_head(b, CBOR_UINT, v);
}

int cbor_put_int(struct buf *b, int64_t v)
{
	if (v >= 0)
		return put_head(b, CBOR_UINT, (uint64_t)v);
	return put_head(b, CBOR_NINT, (uint64_t)(-1 - v));
}

int cbor_put_bstr(struct buf *b, const void *p, size_t len)
{
	int rc = put_head(b, CBOR_BSTR, len);

	return rc < 0 ? rc : buf_append(b, p, len);
}

int cbor_put_bstr_head(struct buf *b, size_t len)
{
	return put_head(b, CBOR_BSTR, len);
}

int cbor_put_tstr(struct buf *b, const char *s, size_t len)
{
	int rc = put_head(b, CBOR_TSTR, len);

	return rc < 0 ? rc : buf_append(b, s, len);
}

int cbor_put_array(struct buf *b, size_t count)
{
	return put_head(b, CBOR_ARRAY, count);
}

int cbor_put_map(struct buf *b, size_t pairs)
{
	return put_head(b, CBOR_MAP, pairs);
}

int cbor_put_tag(struct buf *b, uint64_t tag)
{
	return put_head(b, CBOR_TAG, tag);
}

int cbor_put_simple(struct buf *b, enum cbor_simple v)
{
	return put_head(b, CBOR_SIMPLE, (uint64_t)v);
}

struct pair {
	struct moat_bytes key; /* canonical already: a scalar in preferred form */
	struct buf val;	       /* the value, re-encoded */
};

static int cmp_pair(const void *a, const void *b)
{
	const struct pair *x = a, *y = b;
	size_t n = x->key.len < y->key.len ? x->key.len : y->key.len;
	int c = memcmp(x->key.ptr, y->key.ptr, n);

	if (c != 0)
		return c;
	return x->key.len < y->key.len ? -1 : x->key.len > y->key.len;
}

static int canon_item(struct cbor_dec *d, struct buf *out);

static int canon_map(struct cbor_dec *d, struct buf *out)
{
	struct pair pairs[CBOR_MAX_MAP_PAIRS];
	size_t n;
	int rc;

	if (!cbor_read_map(d, &n))
		return d->err;
	if (n > CBOR_MAX_MAP_PAIRS)
		return MOAT_E_LIMIT;
	memset(pairs, 0, sizeof(pairs));
	rc = cbor_put_map(out, n);
	for (size_t i = 0; i < n && rc == MOAT_OK; i++) {
		if (!cbor_skip(d, &pairs[i].key))
			rc = d->err;
		else
			rc = canon_item(d, &pairs[i].val);
	}
	if (rc == MOAT_OK) {
		qsort(pairs, n, sizeof(pairs[0]), cmp_pair);
		for (size_t i = 0; i < n && rc == MOAT_OK; i++) {
			rc = buf_append(out, pairs[i].key.ptr, pairs[i].key.len);
			if (rc == MOAT_OK)
				rc = buf_append(out, buf_head(&pairs[i].val),
						buf_used(&pairs[i].val));
		}
	}
	for (size_t i = 0; i < n; i++)
		buf_fini(&pairs[i].val);
	return rc;
}

/* Re-encodes one item already validated by cbor_check(): heads are preferred
 * already, so only map order can change. */
static int canon_item(struct cbor_dec *d, struct buf *out)
{
	struct moat_bytes raw;
	uint64_t tag;
	size_t n;
	int rc;

	switch (cbor_peek(d)) {
	case CBOR_MAP:
		return canon_map(d, out);
	case CBOR_ARRAY:
		if (!cbor_read_array(d, &n))
			return d->err;
		rc = cbor_put_array(out, n);
		for (size_t i = 0; i < n && rc == MOAT_OK; i++)
			rc = canon_item(d, out);
		return rc;
	case CBOR_TAG:
		if (!cbor_read_tag(d, &tag))
			return d->err;
		rc = cbor_put_tag(out, tag);
		return rc < 0 ? rc : canon_item(d, out);
	default:
		if (!cbor_skip(d, &raw))
			return d->err;
		return buf_append(out, raw.ptr, raw.len);
	}
}

int cbor_canonical(const uint8_t *p, size_t len, struct buf *out)
{
	struct cbor_dec d;
	int rc = cbor_check(p, len);

	if (rc < 0)
		return rc;
	cbor_dec_init(&d, p, len);
	return canon_item(&d, out);
}
