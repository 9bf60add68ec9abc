/*
 * libFuzzer target for the metrics HTTP server's request-head parser and
 * answers (src/broker/http.c). Checks: every view lies inside the input, a
 * head that parses is no longer than the input or the limit, every shorter
 * prefix of it asks for more (a line is judged only once complete), parsing
 * is repeatable, and every outcome gets a well-formed status line.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <moat/error.h>

#include "broker/http.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int body(void *arg, struct buf *out)
{
	(void)arg;
	return buf_append(out, "m 1\n", 4);
}

static bool stopping(void *arg)
{
	(void)arg;
	return false;
}

static const struct http_ops ops = {body, stopping};

static bool inside(struct moat_bytes v, const uint8_t *p, size_t n)
{
	return v.len == 0 || (v.ptr >= p && v.len <= n && (size_t)(v.ptr - p) <= n - v.len);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct http_request r, again;
	struct buf out = {0};
	int rc = http_parse_request(data, size, &r), st;

	if (http_parse_request(data, size, &again) != rc)
		abort();
	if (rc == MOAT_OK) {
		size_t cut;

		if (r.head_len == 0 || r.head_len > size || r.head_len > HTTP_MAX_HEAD_BYTES)
			abort();
		if (!inside(r.target, data, r.head_len) || !inside(r.path, data, r.head_len) ||
		    !inside(r.query, data, r.head_len) || r.path.len > r.target.len ||
		    r.headers > HTTP_MAX_HEADERS)
			abort();
		if (r.method != HTTP_GET && r.method != HTTP_HEAD && r.method != HTTP_OTHER)
			abort();
		cut = size > 0 ? data[0] % r.head_len
			       : 0; /* a prefix that ends before the blank line */
		if (http_parse_request(data, cut, &again) != MOAT_E_AGAIN)
			abort();
		if (http_parse_request(data, r.head_len, &again) != MOAT_OK ||
		    again.head_len != r.head_len)
			abort();
	} else if (rc != MOAT_E_AGAIN && rc != MOAT_E_LIMIT && rc != MOAT_E_MALFORMED &&
		   rc != MOAT_E_UNSUPPORTED) {
		abort();
	}
	if (rc == MOAT_E_AGAIN) {
		if (size >= HTTP_MAX_HEAD_BYTES)
			abort();
		return 0;
	}
	st = http_respond(rc, &r, &ops, NULL, &out);
	if (st < 200 || st > 599 || buf_used(&out) < 12 ||
	    memcmp(buf_head(&out), "HTTP/1.1 ", 9) != 0)
		abort();
	buf_fini(&out);
	return 0;
}
