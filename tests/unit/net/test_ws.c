/*
 * Unit tests for src/net/ws.c: the upgrade handshake (RFC 6455 §1.3
 * example, refusals with the right status, the 8 KiB bound) and the framer
 * (masking, streaming MQTT bytes across and within frames, control frames,
 * close codes 1002/1003/1009, huge declared lengths).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include <moat/error.h>

#include "net/ws.h"

#define KEY "dGhlIHNhbXBsZSBub25jZQ=="

static const char good_req[] = "GET /mqtt HTTP/1.1\r\n"
			       "Host: localhost\r\n"
			       "Upgrade: websocket\r\n"
			       "Connection: Upgrade\r\n"
			       "Sec-WebSocket-Key: " KEY "\r\n"
			       "Sec-WebSocket-Protocol: mqtt\r\n"
			       "Sec-WebSocket-Version: 13\r\n\r\n";

struct io {
	struct buf app, wire;
	const char *why;
};

static void io_fini(struct io *io)
{
	buf_fini(&io->app);
	buf_fini(&io->wire);
}

static int feed(struct filter *f, struct io *io, const void *p, size_t n)
{
	io->why = NULL;
	return f->ops->input(f, p, n, &io->app, &io->wire, &io->why);
}

/* The wire output so far as a NUL-terminated string (for HTTP responses). */
static const char *wire_text(struct io *io)
{
	static char text[1024];
	size_t n = buf_used(&io->wire) < sizeof(text) - 1 ? buf_used(&io->wire) : sizeof(text) - 1;

	memcpy(text, buf_head(&io->wire), n);
	text[n] = '\0';
	return text;
}

/* Writes a masked client frame (first byte <b0>) into <out>; returns its length. */
static size_t frame(uint8_t *out, uint8_t b0, const void *payload, size_t n)
{
	static const uint8_t mask[4] = {0x37, 0xfa, 0x21, 0x3d};
	const uint8_t *p = payload;
	size_t h = 0;

	out[h++] = b0;
	if (n < 126) {
		out[h++] = (uint8_t)(0x80 | n);
	} else if (n <= 0xFFFF) {
		out[h++] = 0x80 | 126;
		out[h++] = (uint8_t)(n >> 8);
		out[h++] = (uint8_t)n;
	} else {
		out[h++] = 0x80 | 127;
		for (int i = 0; i < 8; i++)
			out[h++] = (uint8_t)((uint64_t)n >> (56 - 8 * i));
	}
	memcpy(out + h, mask, 4);
	h += 4;
	for (size_t i = 0; i < n; i++)
		out[h + i] = p[i] ^ mask[i & 3];
	return h + n;
}

static struct filter *open_ws(uint64_t max_frame, struct io *io)
{
	struct filter *f = ws_filter_create(max_frame);

	assert_non_null(f);
	assert_int_equal(feed(f, io, good_req, strlen(good_req)), MOAT_OK);
	assert_true(f->ops->ready(f));
	buf_consume(&io->wire, buf_used(&io->wire));
	return f;
}

/* The connection must fail with <err> after sending close <code>. */
static void expect_close(struct filter *f, struct io *io, const void *p, size_t n, int err,
			 uint16_t code)
{
	assert_int_equal(feed(f, io, p, n), err);
	assert_non_null(io->why);
	assert_int_equal(buf_used(&io->wire), 4);
	assert_int_equal(buf_head(&io->wire)[0], 0x88);
	assert_int_equal(buf_head(&io->wire)[1], 2);
	assert_int_equal(buf_head(&io->wire)[2] << 8 | buf_head(&io->wire)[3], code);
	/* sticky */
	assert_int_equal(feed(f, io, "\x82", 1), err);
}

static void handshake_rfc6455_example(void **state)
{
	struct io io = {0};
	struct filter *f = ws_filter_create(0);
	const char *resp;

	(void)state;
	assert_null(ws_filter_subprotocol(f));
	/* one byte at a time */
	for (size_t i = 0; i < strlen(good_req); i++) {
		assert_false(f->ops->ready(f));
		assert_int_equal(feed(f, &io, good_req + i, 1), MOAT_OK);
	}
	assert_true(f->ops->ready(f));
	resp = wire_text(&io);
	assert_non_null(strstr(resp, "HTTP/1.1 101 Switching Protocols\r\n"));
	assert_non_null(strstr(resp, "\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"));
	assert_non_null(strstr(resp, "\r\nSec-WebSocket-Protocol: mqtt\r\n"));
	assert_string_equal(ws_filter_subprotocol(f), "mqtt");
	assert_int_equal(buf_used(&io.app), 0);
	filter_destroy(f);
	io_fini(&io);
}

static void handshake_header_variants(void **state)
{
	static const char req[] = "GET / HTTP/1.1\r\n"
				  "upgrade: WebSocket\r\n"
				  "connection: keep-alive, Upgrade\r\n"
				  "SEC-WEBSOCKET-KEY:  " KEY " \r\n"
				  "Sec-WebSocket-Protocol: chat, mqttv3.1\r\n"
				  "Sec-WebSocket-Protocol: mqtt\r\n"
				  "sec-websocket-version: 13\r\n\r\n";
	struct io io = {0};
	struct filter *f = ws_filter_create(0);
	uint8_t fr[16];
	size_t n;

	(void)state;
	/* frame bytes pipelined right behind the request reach the stream too */
	char all[512];
	n = frame(fr, 0x82, "\xc0\x00", 2);
	memcpy(all, req, strlen(req));
	memcpy(all + strlen(req), fr, n);
	assert_int_equal(feed(f, &io, all, strlen(req) + n), MOAT_OK);
	assert_non_null(strstr(wire_text(&io), " 101 "));
	assert_string_equal(ws_filter_subprotocol(f), "mqttv3.1");
	assert_int_equal(buf_used(&io.app), 2);
	assert_memory_equal(buf_head(&io.app), "\xc0\x00", 2);
	filter_destroy(f);
	io_fini(&io);
}

/* Replaces <from> in the good request by <to> and expects status <status>. */
static void refused(const char *from, const char *to, const char *status, int err)
{
	char req[1024];
	const char *at = strstr(good_req, from);
	struct io io = {0};
	struct filter *f = ws_filter_create(0);
	int n;

	assert_non_null(at);
	n = snprintf(req, sizeof(req), "%.*s%s%s", (int)(at - good_req), good_req, to,
		     at + strlen(from));
	assert_true(n > 0 && (size_t)n < sizeof(req));
	assert_int_equal(feed(f, &io, req, (size_t)n), err);
	if (strncmp(wire_text(&io), status, strlen(status)) != 0)
		fail_msg("%s -> %s: got %s", from, to, wire_text(&io));
	assert_non_null(io.why);
	assert_false(f->ops->ready(f));
	filter_destroy(f);
	io_fini(&io);
}

static void handshake_refusals_give_status(void **state)
{
	const char *s400 = "HTTP/1.1 400 ", *s426 = "HTTP/1.1 426 ";

	(void)state;
	refused("Upgrade: websocket\r\n", "", s400, MOAT_E_PROTOCOL);
	refused("Upgrade: websocket", "Upgrade: h2c", s400, MOAT_E_PROTOCOL);
	refused("Connection: Upgrade\r\n", "Connection: close\r\n", s400, MOAT_E_PROTOCOL);
	refused("Sec-WebSocket-Version: 13", "Sec-WebSocket-Version: 8", s426, MOAT_E_PROTOCOL);
	refused("Sec-WebSocket-Version: 13\r\n", "", s426, MOAT_E_PROTOCOL);
	refused(KEY, "dGhlIHNhbXBsZSBub25jZQ", s400, MOAT_E_PROTOCOL);
	refused(KEY, "dGhlIHNhbXBsZSBub25jZSE=", s400, MOAT_E_PROTOCOL); /* 17 bytes */
	refused(KEY, "dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Key: " KEY, s400, MOAT_E_PROTOCOL);
	refused("Sec-WebSocket-Key: " KEY "\r\n", "", s400, MOAT_E_PROTOCOL);
	refused("Sec-WebSocket-Protocol: mqtt", "Sec-WebSocket-Protocol: chat", s400,
		MOAT_E_PROTOCOL);
	refused("Sec-WebSocket-Protocol: mqtt\r\n", "", s400, MOAT_E_PROTOCOL);
	refused("GET", "POST", s400, MOAT_E_PROTOCOL);
	refused("HTTP/1.1", "HTTP/1.0", s400, MOAT_E_PROTOCOL);
	refused("Host: localhost", "Host localhost", s400, MOAT_E_PROTOCOL);
	/* the 426 says which version we speak */
	{
		struct io io = {0};
		struct filter *f = ws_filter_create(0);
		char req[600];

		snprintf(req, sizeof(req), "%s", good_req);
		memcpy(strstr(req, "Version: 13") + 9, "07", 2);
		assert_int_equal(feed(f, &io, req, strlen(req)), MOAT_E_PROTOCOL);
		assert_non_null(strstr(wire_text(&io), "\r\nSec-WebSocket-Version: 13\r\n"));
		filter_destroy(f);
		io_fini(&io);
	}
}

static void oversize_request_gets_431(void **state)
{
	static char big[WS_MAX_REQUEST + 100];
	struct io io = {0};
	struct filter *f = ws_filter_create(0);

	(void)state;
	memset(big, 'a', sizeof(big));
	memcpy(big, "GET / HTTP/1.1\r\nX: ", 19);
	/* just under the limit: still waiting */
	assert_int_equal(feed(f, &io, big, WS_MAX_REQUEST - 1), MOAT_OK);
	assert_int_equal(buf_used(&io.wire), 0);
	assert_int_equal(feed(f, &io, big, 101), MOAT_E_LIMIT);
	assert_non_null(strstr(wire_text(&io), "HTTP/1.1 431 "));
	assert_int_equal(feed(f, &io, big, 1), MOAT_E_LIMIT);
	filter_destroy(f);
	io_fini(&io);
}

static void output_waits_for_handshake(void **state)
{
	struct io io = {0};
	struct filter *f = ws_filter_create(0);
	static uint8_t big[300];
	const uint8_t *w;

	(void)state;
	assert_int_equal(f->ops->output(f, (const uint8_t *)"\x20\x02\x00\x00", 4, &io.wire),
			 MOAT_OK);
	assert_int_equal(buf_used(&io.wire), 0);
	assert_int_equal(feed(f, &io, good_req, strlen(good_req)), MOAT_OK);
	w = (const uint8_t *)strstr(wire_text(&io), "\r\n\r\n") + 4;
	w = buf_head(&io.wire) + (w - (const uint8_t *)wire_text(&io));
	assert_memory_equal(w, "\x82\x04\x20\x02\x00\x00", 6);
	buf_consume(&io.wire, buf_used(&io.wire));
	/* one unmasked binary frame per call, 16-bit length past 125 */
	assert_int_equal(f->ops->output(f, big, sizeof(big), &io.wire), MOAT_OK);
	assert_int_equal(buf_used(&io.wire), 4 + sizeof(big));
	assert_memory_equal(buf_head(&io.wire), "\x82\x7e\x01\x2c", 4);
	buf_consume(&io.wire, buf_used(&io.wire));
	f->ops->shutdown(f, &io.wire);
	assert_int_equal(buf_used(&io.wire), 4);
	assert_memory_equal(buf_head(&io.wire), "\x88\x02\x03\xe8", 4);
	assert_false(f->ops->ready(f));
	filter_destroy(f);
	io_fini(&io);
}

/* CONNECT (MQTT 3.1.1, client id "a") then PINGREQ. */
static const uint8_t mqtt[] = {0x10, 0x0d, 0x00, 0x04, 'M',  'Q', 'T',	'T', 0x04,
			       0x02, 0x00, 0x3c, 0x00, 0x01, 'a', 0xc0, 0x00};

static void mqtt_split_across_frames_at_every_byte(void **state)
{
	uint8_t wire[256];

	(void)state;
	for (size_t cut = 0; cut <= sizeof(mqtt); cut++) {
		struct io io = {0};
		struct filter *f = open_ws(0, &io);
		size_t n = frame(wire, 0x02, mqtt, cut); /* binary, not final */

		n += frame(wire + n, 0x80, mqtt + cut, sizeof(mqtt) - cut); /* final continuation */
		/* and fed in two arbitrary pieces */
		assert_int_equal(feed(f, &io, wire, n / 2), MOAT_OK);
		assert_int_equal(feed(f, &io, wire + n / 2, n - n / 2), MOAT_OK);
		assert_int_equal(buf_used(&io.app), sizeof(mqtt));
		assert_memory_equal(buf_head(&io.app), mqtt, sizeof(mqtt));
		assert_int_equal(buf_used(&io.wire), 0);
		filter_destroy(f);
		io_fini(&io);
	}
}

static void mqtt_one_byte_per_frame_and_many_per_frame(void **state)
{
	struct io io = {0};
	struct filter *f = open_ws(0, &io);
	uint8_t wire[1024], three[3 * sizeof(mqtt)];
	size_t n = 0;

	(void)state;
	for (size_t i = 0; i < sizeof(mqtt); i++)
		n += frame(wire + n, 0x82, mqtt + i, 1); /* each a whole binary message */
	for (size_t i = 0; i < n; i++)			 /* and fed a byte at a time */
		assert_int_equal(feed(f, &io, wire + i, 1), MOAT_OK);
	assert_int_equal(buf_used(&io.app), sizeof(mqtt));
	assert_memory_equal(buf_head(&io.app), mqtt, sizeof(mqtt));
	buf_consume(&io.app, buf_used(&io.app));
	for (int i = 0; i < 3; i++)
		memcpy(three + i * sizeof(mqtt), mqtt, sizeof(mqtt));
	n = frame(wire, 0x82, three, sizeof(three));
	assert_int_equal(feed(f, &io, wire, n), MOAT_OK);
	assert_int_equal(buf_used(&io.app), sizeof(three));
	assert_memory_equal(buf_head(&io.app), three, sizeof(three));
	/* empty binary frame: nothing */
	n = frame(wire, 0x82, "", 0);
	assert_int_equal(feed(f, &io, wire, n), MOAT_OK);
	assert_int_equal(buf_used(&io.app), sizeof(three));
	filter_destroy(f);
	io_fini(&io);
}

static void ping_inside_fragmented_message_gets_pong(void **state)
{
	struct io io = {0};
	struct filter *f = open_ws(0, &io);
	uint8_t wire[256], payload[125];
	size_t n;

	(void)state;
	memset(payload, 0x5a, sizeof(payload));
	n = frame(wire, 0x02, mqtt, 5);
	n += frame(wire + n, 0x89, payload, sizeof(payload));
	n += frame(wire + n, 0x00, mqtt + 5, 5);
	n += frame(wire + n, 0x8a, "x", 1); /* unsolicited pong: ignored */
	n += frame(wire + n, 0x80, mqtt + 10, sizeof(mqtt) - 10);
	assert_int_equal(feed(f, &io, wire, n), MOAT_OK);
	assert_int_equal(buf_used(&io.app), sizeof(mqtt));
	assert_memory_equal(buf_head(&io.app), mqtt, sizeof(mqtt));
	assert_int_equal(buf_used(&io.wire), 2 + sizeof(payload));
	assert_memory_equal(buf_head(&io.wire), "\x8a\x7d", 2);
	assert_memory_equal(buf_head(&io.wire) + 2, payload, sizeof(payload));
	filter_destroy(f);
	io_fini(&io);
}

static void close_is_echoed(void **state)
{
	struct io io = {0};
	struct filter *f = open_ws(0, &io);
	uint8_t wire[64];
	size_t n = frame(wire, 0x88,
			 "\x03\xe9"
			 "bye",
			 5);

	(void)state;
	assert_int_equal(feed(f, &io, wire, n), MOAT_E_CLOSED);
	assert_int_equal(buf_used(&io.wire), 4);
	assert_memory_equal(buf_head(&io.wire), "\x88\x02\x03\xe9", 4);
	assert_int_equal(f->ops->output(f, mqtt, 2, &io.wire), MOAT_E_CLOSED);
	filter_destroy(f);
	io_fini(&io);

	f = open_ws(0, &io);
	n = frame(wire, 0x88, "", 0);
	assert_int_equal(feed(f, &io, wire, n), MOAT_E_CLOSED);
	assert_memory_equal(buf_head(&io.wire), "\x88\x00", 2);
	filter_destroy(f);
	io_fini(&io);
}

static void bad_frames_close_with_the_right_code(void **state)
{
	static const struct {
		const char *what;
		uint8_t b0;
		size_t len;
		int err;
		uint16_t code;
	} cases[] = {
	    {"text", 0x81, 3, MOAT_E_UNSUPPORTED, 1003},
	    {"rsv1", 0xc2, 3, MOAT_E_MALFORMED, 1002},
	    {"rsv3", 0x92, 3, MOAT_E_MALFORMED, 1002},
	    {"opcode 3", 0x83, 3, MOAT_E_MALFORMED, 1002},
	    {"opcode 0xb", 0x8b, 3, MOAT_E_MALFORMED, 1002},
	    {"fragmented ping", 0x09, 3, MOAT_E_MALFORMED, 1002},
	    {"ping over 125", 0x89, 126, MOAT_E_MALFORMED, 1002},
	    {"close over 125", 0x88, 200, MOAT_E_MALFORMED, 1002},
	    {"continuation first", 0x80, 3, MOAT_E_MALFORMED, 1002},
	    {"close code 1005", 0x88, 0xFFFF0, MOAT_E_MALFORMED, 1002},
	    {"close of 1 byte", 0x88, 1, MOAT_E_MALFORMED, 1002},
	    {"over max_frame", 0x82, 101, MOAT_E_LIMIT, 1009},
	};
	static uint8_t wire[512], payload[256];

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct io io = {0};
		struct filter *f = open_ws(100, &io);
		size_t n;

		if (cases[i].len == 0xFFFF0)
			n = frame(wire, cases[i].b0, "\x03\xed", 2);
		else
			n = frame(wire, cases[i].b0, payload, cases[i].len);
		print_message("%s\n", cases[i].what);
		expect_close(f, &io, wire, n, cases[i].err, cases[i].code);
		assert_int_equal(buf_used(&io.app), 0);
		filter_destroy(f);
		io_fini(&io);
	}
}

static void unmasked_and_bad_lengths_are_1002(void **state)
{
	/* unmasked binary frame */
	static const uint8_t unmasked[] = {0x82, 0x02, 0xc0, 0x00};
	/* 64-bit length with the top bit set */
	static const uint8_t top[] = {0x82, 0xff, 0x80, 0, 0, 0, 0, 0, 0, 0, 1, 2, 3, 4};
	/* 16-bit form for a length that fits 7 bits */
	static const uint8_t short16[] = {0x82, 0xfe, 0x00, 0x05, 1, 2, 3, 4};
	/* binary message started inside another */
	uint8_t two[32];
	size_t n;
	struct io io = {0};
	struct filter *f;

	(void)state;
	f = open_ws(0, &io);
	expect_close(f, &io, unmasked, sizeof(unmasked), MOAT_E_MALFORMED, 1002);
	filter_destroy(f);
	io_fini(&io);
	f = open_ws(UINT64_MAX, &io);
	expect_close(f, &io, top, sizeof(top), MOAT_E_MALFORMED, 1002);
	filter_destroy(f);
	io_fini(&io);
	f = open_ws(0, &io);
	expect_close(f, &io, short16, sizeof(short16), MOAT_E_MALFORMED, 1002);
	filter_destroy(f);
	io_fini(&io);
	f = open_ws(0, &io);
	n = frame(two, 0x02, "ab", 2);
	n += frame(two + n, 0x82, "cd", 2);
	expect_close(f, &io, two, n, MOAT_E_MALFORMED, 1002);
	assert_int_equal(buf_used(&io.app), 2);
	filter_destroy(f);
	io_fini(&io);
}

static void huge_declared_length_costs_nothing(void **state)
{
	/* 2^62 bytes declared, 10 sent */
	uint8_t wire[32] = {0x82, 0xff, 0x40, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0};
	struct io io = {0};
	struct filter *f;

	(void)state;
	memset(wire + 14, 0xab, 10);
	f = open_ws(UINT64_MAX, &io);
	assert_int_equal(feed(f, &io, wire, 24), MOAT_OK);
	assert_int_equal(buf_used(&io.app), 10);
	assert_true(io.app.cap < 4096);
	filter_destroy(f);
	io_fini(&io);
	/* with the default limit (MQTT maximum packet size) it is 1009 at the header */
	f = open_ws(0, &io);
	expect_close(f, &io, wire, 14, MOAT_E_LIMIT, 1009);
	assert_int_equal(io.app.cap, 0);
	filter_destroy(f);
	io_fini(&io);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(handshake_rfc6455_example),
	    cmocka_unit_test(handshake_header_variants),
	    cmocka_unit_test(handshake_refusals_give_status),
	    cmocka_unit_test(oversize_request_gets_431),
	    cmocka_unit_test(output_waits_for_handshake),
	    cmocka_unit_test(mqtt_split_across_frames_at_every_byte),
	    cmocka_unit_test(mqtt_one_byte_per_frame_and_many_per_frame),
	    cmocka_unit_test(ping_inside_fragmented_message_gets_pong),
	    cmocka_unit_test(close_is_echoed),
	    cmocka_unit_test(bad_frames_close_with_the_right_code),
	    cmocka_unit_test(unmasked_and_bad_lengths_are_1002),
	    cmocka_unit_test(huge_declared_length_costs_nothing),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
