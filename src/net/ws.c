/*
 * WebSocket server filter (RFC 6455; see ws.h).
 *
 * Why not wslay: its event API (wslay_event_*) reassembles each message in
 * memory before handing it over, sized by the peer's length fields up to
 * one limit for the whole message, and owns the close/ping logic through
 * recv/send callbacks; its frame API (wslay_frame_*) streams payloads but
 * would still need the checks below (masking, control frame rules, 1009
 * per frame, fragmentation state) written around it, with a callback
 * shim for memory I/O. The framer here is small, allocates only as payload
 * bytes arrive, and every rule and close code sits in one place.
 *
 * The handshake reads at most WS_MAX_REQUEST bytes of request; frames are
 * parsed a byte at a time through the header (at most 14 bytes) and then
 * streamed: binary and continuation payloads are unmasked straight into
 * app_in, control payloads (<= 125 bytes) into a fixed array.
 */
#include "net/ws.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/evp.h>

#include <moat/error.h>

#include "base/base64.h"

#define WS_GUID "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
#define MQTT_MAX_PACKET 268435460u

enum ws_state {
	WS_HANDSHAKE = 0,
	WS_OPEN,
	WS_CLOSED,
};

enum {
	OP_CONT = 0x0,
	OP_TEXT = 0x1,
	OP_BINARY = 0x2,
	OP_CLOSE = 0x8,
	OP_PING = 0x9,
	OP_PONG = 0xA,
};

struct ws_filter {
	struct filter base;
	enum ws_state state;
	uint64_t max_frame;
	struct buf req;	   /* upgrade request so far (<= WS_MAX_REQUEST) */
	struct buf early;  /* application bytes written before the upgrade */
	const char *proto; /* chosen subprotocol (static) */
	int err;	   /* first fatal error; sticky */
	const char *why;
	/* frame being read */
	uint8_t hdr[14];
	size_t hdr_len;	 /* header bytes read */
	size_t hdr_need; /* header length once known (2 until byte 1 is read) */
	uint8_t opcode;
	bool fin;
	uint64_t left;	   /* payload bytes still to come */
	uint64_t pos;	   /* payload bytes read (mask index) */
	bool in_message;   /* a fragmented data message is open */
	uint8_t ctrl[125]; /* control frame payload */
};

static const struct filter_ops ws_ops;

/* Appends an unmasked server frame. */
static int put_frame(struct buf *out, uint8_t opcode, const uint8_t *p, size_t n)
{
	uint8_t h[10];
	size_t hl;

	h[0] = (uint8_t)(0x80 | opcode);
	if (n < 126) {
		h[1] = (uint8_t)n;
		hl = 2;
	} else if (n <= 0xFFFF) {
		h[1] = 126;
		h[2] = (uint8_t)(n >> 8);
		h[3] = (uint8_t)n;
		hl = 4;
	} else {
		h[1] = 127;
		for (int i = 0; i < 8; i++)
			h[2 + i] = (uint8_t)((uint64_t)n >> (56 - 8 * i));
		hl = 10;
	}
	if (buf_reserve(out, hl + n) != MOAT_OK)
		return MOAT_E_NOMEM;
	buf_append(out, h, hl);
	if (n > 0)
		buf_append(out, p, n);
	return MOAT_OK;
}

/* Fails the connection with close <code>; returns <err>. */
static int ws_fail(struct ws_filter *w, struct buf *wire_out, uint16_t code, int err,
		   const char *why)
{
	uint8_t c[2] = {(uint8_t)(code >> 8), (uint8_t)code};

	(void)put_frame(wire_out, OP_CLOSE, c, 2);
	w->state = WS_CLOSED;
	w->err = err;
	w->why = why;
	return err;
}

/* Fails the upgrade with an HTTP status; returns <err>. */
static int http_fail(struct ws_filter *w, struct buf *wire_out, const char *status, int err,
		     const char *why)
{
	char resp[200];
	int n;

	n = snprintf(resp, sizeof(resp),
		     "HTTP/1.1 %s\r\n%sConnection: close\r\nContent-Length: 0\r\n\r\n", status,
		     strncmp(status, "426", 3) == 0 ? "Sec-WebSocket-Version: 13\r\n" : "");
	if (n > 0 && (size_t)n < sizeof(resp))
		(void)buf_append(wire_out, resp, (size_t)n);
	w->state = WS_CLOSED;
	w->err = err;
	w->why = why;
	return err;
}

struct span {
	const char *p;
	size_t n;
};

static bool is_ows(char c)
{
	return c == ' ' || c == '\t';
}

static struct span trim(struct span s)
{
	while (s.n > 0 && is_ows(s.p[0])) {
		s.p++;
		s.n--;
	}
	while (s.n > 0 && is_ows(s.p[s.n - 1]))
		s.n--;
	return s;
}

static bool span_ieq(struct span s, const char *lit)
{
	return s.n == strlen(lit) && strncasecmp(s.p, lit, s.n) == 0;
}

/* Whether the comma-separated list <v> holds token <tok> (case-insensitive). */
static bool list_has(struct span v, const char *tok)
{
	while (v.n > 0) {
		const char *comma = memchr(v.p, ',', v.n);
		size_t k = comma != NULL ? (size_t)(comma - v.p) : v.n;

		if (span_ieq(trim((struct span){v.p, k}), tok))
			return true;
		if (comma == NULL)
			break;
		v.p += k + 1;
		v.n -= k + 1;
	}
	return false;
}

/* The first offered subprotocol we speak, from a comma-separated list. */
static const char *pick_proto(struct span v)
{
	while (v.n > 0) {
		const char *comma = memchr(v.p, ',', v.n);
		size_t k = comma != NULL ? (size_t)(comma - v.p) : v.n;
		struct span t = trim((struct span){v.p, k});

		if (t.n == 4 && memcmp(t.p, "mqtt", 4) == 0)
			return "mqtt";
		if (t.n == 8 && memcmp(t.p, "mqttv3.1", 8) == 0)
			return "mqttv3.1";
		if (comma == NULL)
			break;
		v.p += k + 1;
		v.n -= k + 1;
	}
	return NULL;
}

static bool is_tchar(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       (c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

/* Parses the request in p[0..n) (ending at the blank line) and answers it. */
static int upgrade(struct ws_filter *w, const char *p, size_t n, struct buf *wire_out)
{
	bool upgrade_ok = false, conn_ok = false, version_seen = false, version_ok = false;
	struct span key = {NULL, 0};
	const char *proto = NULL;
	const char *line_end;
	size_t k;

	/* request line: GET SP target SP HTTP/1.1 */
	line_end = memmem(p, n, "\r\n", 2);
	if (line_end == NULL)
		return http_fail(w, wire_out, "400 Bad Request", MOAT_E_PROTOCOL,
				 "bad request line");
	k = (size_t)(line_end - p);
	if (k < 14 || memcmp(p, "GET ", 4) != 0 || memcmp(p + k - 9, " HTTP/1.1", 9) != 0 ||
	    memchr(p + 4, ' ', k - 13) != NULL)
		return http_fail(w, wire_out, "400 Bad Request", MOAT_E_PROTOCOL,
				 "not a GET HTTP/1.1 request");
	n -= k + 2;
	p += k + 2;
	while (n > 2) { /* the final "\r\n" is the blank line */
		struct span name, value;
		const char *colon;

		line_end = memmem(p, n, "\r\n", 2);
		k = (size_t)(line_end - p);
		colon = memchr(p, ':', k);
		if (colon == NULL || colon == p)
			return http_fail(w, wire_out, "400 Bad Request", MOAT_E_PROTOCOL,
					 "bad header line");
		name = (struct span){p, (size_t)(colon - p)};
		for (size_t i = 0; i < name.n; i++)
			if (!is_tchar(name.p[i]))
				return http_fail(w, wire_out, "400 Bad Request", MOAT_E_PROTOCOL,
						 "bad header name");
		value = trim((struct span){colon + 1, k - name.n - 1});
		for (size_t i = 0; i < value.n; i++)
			if ((unsigned char)value.p[i] < 0x20 && value.p[i] != '\t')
				return http_fail(w, wire_out, "400 Bad Request", MOAT_E_PROTOCOL,
						 "control character in a header");
		if (span_ieq(name, "Upgrade")) {
			upgrade_ok = upgrade_ok || list_has(value, "websocket");
		} else if (span_ieq(name, "Connection")) {
			conn_ok = conn_ok || list_has(value, "upgrade");
		} else if (span_ieq(name, "Sec-WebSocket-Version")) {
			if (version_seen)
				version_ok = false;
			else
				version_ok = value.n == 2 && memcmp(value.p, "13", 2) == 0;
			version_seen = true;
		} else if (span_ieq(name, "Sec-WebSocket-Key")) {
			if (key.p != NULL)
				return http_fail(w, wire_out, "400 Bad Request", MOAT_E_PROTOCOL,
						 "Sec-WebSocket-Key repeated");
			key = value;
		} else if (span_ieq(name, "Sec-WebSocket-Protocol")) {
			if (proto == NULL)
				proto = pick_proto(value);
		}
		n -= k + 2;
		p += k + 2;
	}
	if (!upgrade_ok || !conn_ok)
		return http_fail(w, wire_out, "400 Bad Request", MOAT_E_PROTOCOL,
				 "not a WebSocket upgrade");
	if (!version_ok)
		return http_fail(w, wire_out, "426 Upgrade Required", MOAT_E_PROTOCOL,
				 "WebSocket version is not 13");
	{
		uint8_t raw[18], digest[EVP_MAX_MD_SIZE];
		char accept[32], resp[256];
		unsigned int dlen = 0;
		EVP_MD_CTX *md;
		int len, ok;

		if (key.p == NULL || key.n != 24 ||
		    b64_decode(key.p, key.n, raw, sizeof(raw), B64_STD) != 16)
			return http_fail(w, wire_out, "400 Bad Request", MOAT_E_PROTOCOL,
					 "Sec-WebSocket-Key is not base64 of 16 bytes");
		if (proto == NULL)
			return http_fail(w, wire_out, "400 Bad Request", MOAT_E_PROTOCOL,
					 "no mqtt subprotocol offered");
		md = EVP_MD_CTX_new();
		ok = md != NULL && EVP_DigestInit_ex(md, EVP_sha1(), NULL) == 1 &&
		     EVP_DigestUpdate(md, key.p, key.n) == 1 &&
		     EVP_DigestUpdate(md, WS_GUID, strlen(WS_GUID)) == 1 &&
		     EVP_DigestFinal_ex(md, digest, &dlen) == 1 && dlen == 20;
		EVP_MD_CTX_free(md);
		if (!ok) {
			w->state = WS_CLOSED;
			w->err = MOAT_E_CRYPTO;
			w->why = "SHA-1 unavailable";
			return w->err;
		}
		b64_encode(digest, 20, accept, B64_STD);
		len = snprintf(resp, sizeof(resp),
			       "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
			       "Connection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n"
			       "Sec-WebSocket-Protocol: %s\r\n\r\n",
			       accept, proto);
		if (len <= 0 || (size_t)len >= sizeof(resp) ||
		    buf_append(wire_out, resp, (size_t)len) != MOAT_OK)
			return MOAT_E_NOMEM;
	}
	w->proto = proto;
	w->state = WS_OPEN;
	w->hdr_need = 2;
	if (buf_used(&w->early) > 0) {
		int rc = put_frame(wire_out, OP_BINARY, buf_head(&w->early), buf_used(&w->early));

		if (rc < 0)
			return rc;
	}
	buf_fini(&w->early);
	return MOAT_OK;
}

static bool close_code_ok(unsigned code)
{
	if (code >= 3000 && code <= 4999)
		return true;
	return code >= 1000 && code <= 1014 && code != 1004 && code != 1005 && code != 1006;
}

/* Acts on a complete control frame. */
static int control_done(struct ws_filter *w, struct buf *wire_out)
{
	size_t n = (size_t)w->pos;

	switch (w->opcode) {
	case OP_PING:
		return put_frame(wire_out, OP_PONG, w->ctrl, n);
	case OP_PONG:
		return MOAT_OK;
	default: /* OP_CLOSE */
		if (n == 1 || (n >= 2 && !close_code_ok((unsigned)(w->ctrl[0] << 8 | w->ctrl[1]))))
			return ws_fail(w, wire_out, 1002, MOAT_E_MALFORMED, "bad close frame");
		(void)put_frame(wire_out, OP_CLOSE, w->ctrl, n >= 2 ? 2 : 0);
		w->state = WS_CLOSED;
		w->err = MOAT_E_CLOSED;
		w->why = "peer closed WebSocket";
		return w->err;
	}
}

/* Checks the header once hdr_len bytes of it are known; sets hdr_need and left. */
static int header_step(struct ws_filter *w, struct buf *wire_out)
{
	uint8_t b0 = w->hdr[0], b1;
	uint64_t len;

	if (w->hdr_len == 1) {
		w->fin = (b0 & 0x80) != 0;
		w->opcode = b0 & 0x0F;
		if ((b0 & 0x70) != 0)
			return ws_fail(w, wire_out, 1002, MOAT_E_MALFORMED, "reserved bits set");
		switch (w->opcode) {
		case OP_TEXT:
			return ws_fail(w, wire_out, 1003, MOAT_E_UNSUPPORTED, "text frame");
		case OP_BINARY:
			if (w->in_message)
				return ws_fail(w, wire_out, 1002, MOAT_E_MALFORMED,
					       "new message inside a fragmented one");
			break;
		case OP_CONT:
			if (!w->in_message)
				return ws_fail(w, wire_out, 1002, MOAT_E_MALFORMED,
					       "continuation without a message");
			break;
		case OP_CLOSE:
		case OP_PING:
		case OP_PONG:
			if (!w->fin)
				return ws_fail(w, wire_out, 1002, MOAT_E_MALFORMED,
					       "fragmented control frame");
			break;
		default:
			return ws_fail(w, wire_out, 1002, MOAT_E_MALFORMED, "reserved opcode");
		}
		return MOAT_OK;
	}
	b1 = w->hdr[1];
	if (w->hdr_len == 2) {
		if ((b1 & 0x80) == 0)
			return ws_fail(w, wire_out, 1002, MOAT_E_MALFORMED,
				       "unmasked client frame");
		len = b1 & 0x7F;
		if (w->opcode >= OP_CLOSE && len > 125)
			return ws_fail(w, wire_out, 1002, MOAT_E_MALFORMED,
				       "control frame over 125 bytes");
		w->hdr_need = 2 + (len == 126 ? 2 : len == 127 ? 8 : 0) + 4;
		return MOAT_OK;
	}
	if (w->hdr_len < w->hdr_need)
		return MOAT_OK;
	/* whole header */
	len = b1 & 0x7F;
	if (len == 126) {
		len = (uint64_t)w->hdr[2] << 8 | w->hdr[3];
		if (len < 126)
			return ws_fail(w, wire_out, 1002, MOAT_E_MALFORMED, "non-minimal length");
	} else if (len == 127) {
		len = 0;
		for (int i = 0; i < 8; i++)
			len = len << 8 | w->hdr[2 + i];
		if (len >> 63 != 0)
			return ws_fail(w, wire_out, 1002, MOAT_E_MALFORMED, "length top bit set");
		if (len <= 0xFFFF)
			return ws_fail(w, wire_out, 1002, MOAT_E_MALFORMED, "non-minimal length");
	}
	if (w->opcode < OP_CLOSE && len > w->max_frame)
		return ws_fail(w, wire_out, 1009, MOAT_E_LIMIT, "frame larger than max_frame");
	w->left = len;
	w->pos = 0;
	if (w->opcode < OP_CLOSE)
		w->in_message = !w->fin;
	return MOAT_OK;
}

static const uint8_t *mask_key(const struct ws_filter *w)
{
	return w->hdr + w->hdr_need - 4;
}

/* Consumes frame bytes from <in>. */
static int frames(struct ws_filter *w, const uint8_t *in, size_t n, struct buf *app_in,
		  struct buf *wire_out)
{
	while (n > 0 && w->state == WS_OPEN) {
		int rc;

		if (w->hdr_len < w->hdr_need) {
			w->hdr[w->hdr_len++] = *in++;
			n--;
			rc = header_step(w, wire_out);
			if (rc < 0)
				return rc;
			if (w->hdr_len < w->hdr_need)
				continue;
		} else {
			size_t take = n < w->left ? n : (size_t)w->left;
			const uint8_t *mk = mask_key(w);
			uint8_t *dst;

			if (w->opcode < OP_CLOSE) {
				if (buf_reserve(app_in, take) != MOAT_OK)
					return ws_fail(w, wire_out, 1011, MOAT_E_NOMEM,
						       "out of memory");
				dst = app_in->data + app_in->len;
				app_in->len += take;
			} else {
				dst = w->ctrl + w->pos;
			}
			for (size_t i = 0; i < take; i++)
				dst[i] = in[i] ^ mk[(w->pos + i) & 3];
			w->pos += take;
			w->left -= take;
			in += take;
			n -= take;
		}
		if (w->left == 0) { /* frame complete */
			if (w->opcode >= OP_CLOSE) {
				rc = control_done(w, wire_out);
				if (rc < 0)
					return rc;
			}
			w->hdr_len = 0;
			w->hdr_need = 2;
		}
	}
	return MOAT_OK;
}

static int ws_input(struct filter *f, const uint8_t *in, size_t n, struct buf *app_in,
		    struct buf *wire_out, const char **why)
{
	struct ws_filter *w = (struct ws_filter *)f;
	int rc = MOAT_OK;

	if (w->state == WS_HANDSHAKE) {
		size_t old = buf_used(&w->req), room = WS_MAX_REQUEST - old;
		size_t take = n < room ? n : room;
		const uint8_t *end;

		if (buf_append(&w->req, in, take) != MOAT_OK)
			return MOAT_E_NOMEM;
		/* look again from 3 bytes before the new data */
		end = memmem(buf_head(&w->req) + (old > 3 ? old - 3 : 0),
			     buf_used(&w->req) - (old > 3 ? old - 3 : 0), "\r\n\r\n", 4);
		if (end == NULL) {
			if (buf_used(&w->req) >= WS_MAX_REQUEST) {
				rc = http_fail(w, wire_out, "431 Request Header Fields Too Large",
					       MOAT_E_LIMIT, "upgrade request over 8 KiB");
				goto out;
			}
			return MOAT_OK;
		}
		{
			size_t hlen = (size_t)(end - buf_head(&w->req)) + 4;
			size_t extra = buf_used(&w->req) - hlen; /* frame bytes after it */

			rc = upgrade(w, (const char *)buf_head(&w->req), hlen, wire_out);
			if (rc < 0)
				goto out;
			/* bytes past the request: the ones in req, then the rest of <in> */
			in += take;
			n -= take;
			rc = frames(w, buf_head(&w->req) + hlen, extra, app_in, wire_out);
			buf_fini(&w->req);
			if (rc < 0)
				goto out;
		}
	}
	if (w->state == WS_CLOSED) {
		rc = w->err != 0 ? w->err : MOAT_E_CLOSED;
		goto out;
	}
	rc = frames(w, in, n, app_in, wire_out);
out:
	if (rc < 0 && why != NULL)
		*why = w->why != NULL ? w->why : moat_strerror(rc);
	return rc;
}

static int ws_output(struct filter *f, const uint8_t *p, size_t n, struct buf *wire_out)
{
	struct ws_filter *w = (struct ws_filter *)f;

	if (w->state == WS_CLOSED)
		return w->err != 0 ? w->err : MOAT_E_CLOSED;
	if (n == 0)
		return MOAT_OK;
	if (w->state == WS_HANDSHAKE)
		return buf_append(&w->early, p, n);
	return put_frame(wire_out, OP_BINARY, p, n);
}

static void ws_shutdown(struct filter *f, struct buf *wire_out)
{
	struct ws_filter *w = (struct ws_filter *)f;
	static const uint8_t normal[2] = {0x03, 0xE8}; /* 1000 */

	if (w->state != WS_OPEN)
		return;
	(void)put_frame(wire_out, OP_CLOSE, normal, 2);
	w->state = WS_CLOSED;
	w->err = MOAT_E_CLOSED;
	w->why = "closed by us";
}

static int ws_ready(const struct filter *f)
{
	return ((const struct ws_filter *)f)->state == WS_OPEN;
}

static void ws_destroy(struct filter *f)
{
	struct ws_filter *w = (struct ws_filter *)f;

	buf_fini(&w->req);
	buf_fini(&w->early);
	free(w);
}

static const struct filter_ops ws_ops = {
    .input = ws_input,
    .output = ws_output,
    .shutdown = ws_shutdown,
    .ready = ws_ready,
    .destroy = ws_destroy,
};

struct filter *ws_filter_create(uint64_t max_frame)
{
	struct ws_filter *w = calloc(1, sizeof(*w));

	if (w == NULL)
		return NULL;
	w->base.ops = &ws_ops;
	w->max_frame = max_frame != 0 ? max_frame : MQTT_MAX_PACKET;
	w->hdr_need = 2;
	return &w->base;
}

const char *ws_filter_subprotocol(const struct filter *f)
{
	if (f == NULL || f->ops != &ws_ops)
		return NULL;
	return ((const struct ws_filter *)f)->proto;
}
