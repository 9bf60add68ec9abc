/*
 * Unit tests for filter_stack (src/net/filter.c): WebSocket over TLS in
 * memory with an OpenSSL client in the test: the upgrade, MQTT bytes both
 * ways, pong and close routed through TLS, and mTLS enforced on the stack
 * (mosquitto <= 1.5.3 skipped it on wss listeners).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <moat/error.h>

#include "net/tls.h"
#include "net/ws.h"
#include "tls_peer.h"

static const char upgrade_req[] = "GET /mqtt HTTP/1.1\r\n"
				  "Host: localhost\r\n"
				  "Upgrade: websocket\r\n"
				  "Connection: Upgrade\r\n"
				  "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
				  "Sec-WebSocket-Protocol: mqtt\r\n"
				  "Sec-WebSocket-Version: 13\r\n\r\n";

static size_t masked(uint8_t *out, uint8_t b0, const void *payload, size_t n)
{
	const uint8_t *p = payload;

	out[0] = b0;
	out[1] = (uint8_t)(0x80 | n); /* n < 126 here */
	memcpy(out + 2, "\x11\x22\x33\x44", 4);
	for (size_t i = 0; i < n; i++)
		out[6 + i] = p[i] ^ out[2 + (i & 3)];
	return 6 + n;
}

static struct tls_server *server(bool mtls)
{
	struct tls_settings s = {.certfile = cpath("server.crt"), .keyfile = cpath("server.key")};
	struct tls_server *srv = NULL;
	struct tls_diag d;

	if (mtls) {
		s.cafile = cpath("ca.crt");
		s.require_certificate = true;
	}
	assert_int_equal(tls_server_create(&s, &srv, &d), MOAT_OK);
	return srv;
}

/* Reads what the client can decrypt from <wire> into <out>; returns the count. */
static size_t client_read(struct peer *c, struct buf *wire, uint8_t *out, size_t cap)
{
	size_t got = 0;
	int n;

	n = peer_recv(c, wire, out, cap);
	while (n > 0) {
		got += (size_t)n;
		n = SSL_read(c->ssl, out + got, (int)(cap - got));
	}
	return got;
}

static void wss_upgrade_data_ping_close(void **state)
{
	struct tls_server *srv = server(false);
	struct filter *tls = tls_filter_create(srv);
	struct filter *wss = filter_stack(tls, ws_filter_create(0));
	struct buf app = {0}, wire = {0};
	const char *why = NULL;
	uint8_t got[1024], fr[64];
	struct peer c;
	size_t n;

	(void)state;
	assert_non_null(wss);
	/* MQTT output before anything is ready waits inside the stack */
	assert_int_equal(wss->ops->output(wss, (const uint8_t *)"\x20\x02\x00\x00", 4, &wire),
			 MOAT_OK);
	assert_int_equal(buf_used(&wire), 0);
	peer_init(&c, 0, NULL, NULL);
	assert_int_equal(peer_handshake_via(&c, wss, tls, &app, &why), 0);
	assert_true(tls->ops->ready(tls));
	assert_false(wss->ops->ready(wss)); /* WebSocket upgrade still to come */
	assert_string_equal(tls_filter_version(tls), "TLSv1.3");

	SSL_write(c.ssl, upgrade_req, (int)strlen(upgrade_req));
	assert_int_equal(peer_flush(&c, wss, &app, &why), MOAT_OK);
	assert_true(wss->ops->ready(wss));
	/* the 101 came back through TLS, then the frame written early */
	(void)SSL_read(c.ssl, got, 0);
	n = client_read(&c, &wire, got, sizeof(got));
	got[n < sizeof(got) ? n : sizeof(got) - 1] = '\0';
	assert_non_null(strstr((char *)got, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="));
	assert_memory_equal(got + n - 6, "\x82\x04\x20\x02\x00\x00", 6);

	/* MQTT bytes in: PINGREQ split over two frames, then a ping */
	n = masked(fr, 0x02, "\xc0", 1);
	n += masked(fr + n, 0x80, "\x00", 1);
	n += masked(fr + n, 0x89, "hi", 2);
	assert_int_equal(peer_send(&c, wss, fr, n, &app), MOAT_OK);
	assert_int_equal(buf_used(&app), 2);
	assert_memory_equal(buf_head(&app), "\xc0\x00", 2);

	/* the pong went out through TLS (peer_send handed it to the client) */
	n = client_read(&c, &wire, got, sizeof(got));
	assert_int_equal(n, 4);
	assert_memory_equal(got, "\x8a\x02hi", 4);

	/* MQTT bytes out */
	assert_int_equal(wss->ops->output(wss, (const uint8_t *)"\xd0\x00", 2, &wire), MOAT_OK);
	n = client_read(&c, &wire, got, sizeof(got));
	assert_int_equal(n, 4);
	assert_memory_equal(got, "\x82\x02\xd0\x00", 4);

	/* client close: echoed inside TLS, MOAT_E_CLOSED */
	n = masked(fr, 0x88, "\x03\xe8", 2);
	SSL_write(c.ssl, fr, (int)n);
	assert_int_equal(peer_flush(&c, wss, &app, &why), MOAT_E_CLOSED);
	assert_non_null(why);
	n = SSL_read(c.ssl, got, sizeof(got));
	assert_int_equal(n, 4);
	assert_memory_equal(got, "\x88\x02\x03\xe8", 4);

	/* our shutdown adds close_notify */
	wss->ops->shutdown(wss, &wire);
	assert_true(buf_used(&wire) > 0);
	assert_int_equal(peer_recv(&c, &wire, got, sizeof(got)), 0);
	assert_int_equal(SSL_get_error(c.ssl, 0), SSL_ERROR_ZERO_RETURN);

	buf_fini(&app);
	buf_fini(&wire);
	peer_fini(&c);
	filter_destroy(wss);
	tls_server_unref(srv);
}

static void wss_requires_client_certificate(void **state)
{
	struct tls_server *srv = server(true);
	struct filter *wss, *tls;
	struct buf app = {0};
	const char *why = NULL;
	struct peer c;

	(void)state;
	wss = filter_stack(tls_filter_create(srv), ws_filter_create(0));
	peer_init(&c, 0, NULL, NULL);
	assert_int_equal(peer_handshake(&c, wss, &app, &why), MOAT_E_DENIED);
	assert_string_equal(why, "no client certificate");
	peer_fini(&c);
	filter_destroy(wss);

	tls = tls_filter_create(srv);
	wss = filter_stack(tls, ws_filter_create(0));
	peer_init(&c, 0, "client.crt", "client.key");
	assert_int_equal(peer_handshake_via(&c, wss, tls, &app, &why), 0);
	SSL_write(c.ssl, upgrade_req, (int)strlen(upgrade_req));
	assert_int_equal(peer_flush(&c, wss, &app, &why), MOAT_OK);
	assert_true(wss->ops->ready(wss));
	peer_fini(&c);
	filter_destroy(wss);
	buf_fini(&app);
	tls_server_unref(srv);
}

static void stack_consumes_on_failure(void **state)
{
	(void)state;
	/* ASan would report the WebSocket filter as leaked otherwise */
	assert_null(filter_stack(NULL, ws_filter_create(0)));
	assert_null(filter_stack(ws_filter_create(0), NULL));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(wss_upgrade_data_ping_close),
	    cmocka_unit_test(wss_requires_client_certificate),
	    cmocka_unit_test(stack_consumes_on_failure),
	};

	return cmocka_run_group_tests(tests, certs_setup, certs_teardown);
}
