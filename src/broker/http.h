/*
 * A minimal HTTP/1.1 server for /metrics and /healthz, on a thread of its
 * own: one request per connection, the answer, then close. It reads at most
 * HTTP_MAX_HEAD_BYTES of request head within HTTP_HEAD_TIMEOUT_MS, serves up
 * to HTTP_MAX_CLIENTS connections at once (a new one evicts the oldest still
 * sending its head, so slow clients cannot keep others out), and asks its
 * caller only for the metrics text and whether the service is stopping.
 * The request parser is separate so tests and the fuzzer reach it directly.
 */
#ifndef MOAT_BROKER_HTTP_H
#define MOAT_BROKER_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <moat/bytes.h>

#include "base/buf.h"
#include "conf/config.h"

enum {
	HTTP_MAX_HEAD_BYTES = 8192, /* request line and headers, blank line included */
	HTTP_MAX_HEADERS = 64,
	HTTP_MAX_TARGET = 2048, /* request-target bytes */
	HTTP_HEAD_TIMEOUT_MS = 2000,
	HTTP_WRITE_TIMEOUT_MS = 5000,
	HTTP_MAX_CLIENTS = 16,
};

enum http_method { HTTP_GET = 1, HTTP_HEAD, HTTP_OTHER };

/* A parsed request head; the views point into the parsed bytes. */
struct http_request {
	enum http_method method;
	struct moat_bytes target; /* as sent: path and query */
	struct moat_bytes path;	  /* up to the first '?' */
	struct moat_bytes query;  /* after the '?'; empty when none */
	uint8_t minor;		  /* HTTP/1.<minor> */
	unsigned headers;	  /* header fields */
	size_t head_len;	  /* bytes up to and including the blank line */
};

/* Parses the request head at the start of <p> (<len> bytes; only the first
 * HTTP_MAX_HEAD_BYTES are looked at). Lines end in CRLF or LF. Returns
 * MOAT_OK (*<req> filled), MOAT_E_AGAIN (no blank line yet: read more),
 * MOAT_E_LIMIT (head over HTTP_MAX_HEAD_BYTES, more than HTTP_MAX_HEADERS
 * fields, or a target over HTTP_MAX_TARGET), MOAT_E_UNSUPPORTED (not
 * HTTP/1.x) or MOAT_E_MALFORMED (a complete line breaks RFC 9112; reported as
 * soon as that line is complete). */
int http_parse_request(const uint8_t *p, size_t len, struct http_request *req);

struct http_ops {
	/* Appends the /metrics body to <body>. MOAT_OK or MOAT_E_NOMEM. */
	int (*metrics)(void *arg, struct buf *body);
	/* Whether the service is stopping: /healthz answers 503 then. */
	bool (*stopping)(void *arg);
};

/* Appends the whole response for a head that parsed with <parse_rc> (not
 * MOAT_E_AGAIN; <req> is read only when it is MOAT_OK) to <out>: GET or HEAD
 * /metrics 200 text/plain; version=0.0.4, /healthz 200 "ok" or 503, other
 * paths 404, other methods 405, a bad head 400, 431 or 505, and 500 when
 * the body cannot be built. Calls <ops> with <arg>. Returns the status, or
 * MOAT_E_NOMEM when not even the response could be built. */
int http_respond(int parse_rc, const struct http_request *req, const struct http_ops *ops,
		 void *arg, struct buf *out);

struct http_server;

/* Listens on <bind_address>:<port> (port 0: one the kernel picks) and
 * starts the server thread, which calls <ops> with <arg>. MOAT_OK, or
 * MOAT_E_IO / MOAT_E_CONFIG with <d> saying why, or MOAT_E_NOMEM. */
int http_server_start(struct http_server **out, const char *bind_address, uint16_t port,
		      const struct http_ops *ops, void *arg, struct moat_diag *d);
/* The port <s> listens on. */
uint16_t http_server_port(const struct http_server *s);
/* Stops the thread, closes every connection and frees <s>. NULL is fine. */
void http_server_stop(struct http_server *s);

#endif
