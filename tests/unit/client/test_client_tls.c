/*
 * Unit tests for libmoat over TLS: a fake broker in this test speaks TLS
 * through moatd's own server filter (net/tls.h) on a loopback socket. The
 * client runs on its own thread (moat_loop_start) or in this one; mutual
 * TLS, a reconnect with a fresh handshake, a verification failure that ends
 * the client for good with its reason, the options checked at open, and
 * clients of one CA sharing a context while each presents its own
 * certificate.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <moat/client.h>

#include "client/client_impl.h" /* tls_ctx: the context a client uses */
#include "codec/frame.h"
#include "codec/packet.h"
#include "net/tls.h"
/* the generated certificates (cpath, make_certs); not its OpenSSL peer */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-function"
#include "tls_peer.h"
#pragma GCC diagnostic pop

struct srv {
	int lfd, fd;
	uint16_t port;
	struct tls_server *tls;
	struct filter *f;
	struct buf app, wire;
	int rc; /* the filter's last result */
};

struct seen {
	atomic_int connects, done, disconnects, last_err;
	char why[256];
};

static void on_connect(void *arg, uint8_t rc, bool present)
{
	(void)rc;
	(void)present;
	((struct seen *)arg)->connects++;
}

static void on_done(void *arg, uint16_t id, uint8_t rc)
{
	(void)id;
	(void)rc;
	((struct seen *)arg)->done++;
}

static struct moat_client *client_of_seen;

static void on_disconnect(void *arg, int err, uint8_t rc)
{
	struct seen *s = arg;

	(void)rc;
	s->last_err = err;
	moat_last_error(client_of_seen, s->why, sizeof(s->why));
	s->disconnects++;
}

static void srv_start(struct srv *s, bool mtls)
{
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t len = sizeof(sa);
	struct tls_settings t = {.certfile = cpath("server.crt"), .keyfile = cpath("server.key")};
	struct tls_diag d = {""};

	memset(s, 0, sizeof(*s));
	if (mtls) {
		t.cafile = cpath("ca.crt");
		t.require_certificate = true;
	}
	assert_int_equal(tls_server_create(&t, &s->tls, &d), MOAT_OK);
	s->lfd = socket(AF_INET, SOCK_STREAM, 0);
	assert_true(s->lfd >= 0);
	assert_int_equal(bind(s->lfd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(listen(s->lfd, 4), 0);
	assert_int_equal(getsockname(s->lfd, (struct sockaddr *)&sa, &len), 0);
	s->port = ntohs(sa.sin_port);
	s->fd = -1;
}

static void srv_drop(struct srv *s)
{
	if (s->fd >= 0)
		close(s->fd);
	s->fd = -1;
	filter_destroy(s->f);
	s->f = NULL;
	buf_fini(&s->app);
	buf_fini(&s->wire);
	s->rc = MOAT_OK;
}

static void srv_stop(struct srv *s)
{
	srv_drop(s);
	close(s->lfd);
	tls_server_unref(s->tls);
}

/* One round of the fake broker: accepts, reads what came (through the
 * filter) and sends what the filter has for the client. */
static void srv_pump(struct srv *s, int timeout_ms)
{
	struct pollfd p = {.fd = s->fd >= 0 ? s->fd : s->lfd, .events = POLLIN};
	uint8_t tmp[16384];

	if (poll(&p, 1, timeout_ms) <= 0)
		return;
	if (s->fd < 0) {
		s->fd = accept(s->lfd, NULL, NULL);
		s->f = tls_filter_create(s->tls);
		assert_non_null(s->f);
		return;
	}
	ssize_t n = recv(s->fd, tmp, sizeof(tmp), 0);

	if (n > 0 && s->rc == MOAT_OK)
		s->rc = s->f->ops->input(s->f, tmp, (size_t)n, &s->app, &s->wire, NULL);
	if (buf_used(&s->wire) > 0) {
		(void)send(s->fd, buf_head(&s->wire), buf_used(&s->wire), MSG_NOSIGNAL);
		buf_consume(&s->wire, buf_used(&s->wire));
	}
}

/* Pumps (and, with <c>, runs <c>'s loop in this thread) until a whole
 * packet is in <s->app>; decodes it into <p> (views into <body>). */
static void srv_read(struct srv *s, struct moat_client *c, struct mqtt_packet *p, uint8_t *body)
{
	for (int i = 0; i < 1000; i++) {
		struct mqtt_frame fr;

		if (frame_decode(buf_head(&s->app), buf_used(&s->app), 65536, &fr) == 0 &&
		    buf_used(&s->app) >= fr.hdr_len + fr.rem_len) {
			memcpy(body, buf_head(&s->app) + fr.hdr_len, fr.rem_len);
			assert_int_equal(pkt_decode(&fr, body, 5, p), 0);
			buf_consume(&s->app, fr.hdr_len + fr.rem_len);
			return;
		}
		if (c != NULL)
			moat_loop_once(c, 2);
		srv_pump(s, 5);
	}
	fail_msg("no packet from the client");
}

static void srv_send(struct srv *s, const struct mqtt_packet *p)
{
	uint8_t out[256];
	size_t n = pkt_encode(out, sizeof(out), 5, p);

	assert_true(n > 0 && n <= sizeof(out));
	assert_int_equal(s->f->ops->output(s->f, out, n, &s->wire), MOAT_OK);
	assert_int_equal(send(s->fd, buf_head(&s->wire), buf_used(&s->wire), MSG_NOSIGNAL),
			 (ssize_t)buf_used(&s->wire));
	buf_consume(&s->wire, buf_used(&s->wire));
}

/* Reads the CONNECT and accepts it. */
static void srv_connack(struct srv *s, struct moat_client *c)
{
	struct mqtt_packet p;
	uint8_t body[1024];

	srv_read(s, c, &p, body);
	assert_int_equal(p.type, MQTT_CONNECT);
	p = (struct mqtt_packet){.type = MQTT_CONNACK};
	srv_send(s, &p);
}

static bool wait_for(atomic_int *v, int want, struct srv *s, struct moat_client *c)
{
	for (int i = 0; i < 1000 && *v < want; i++) {
		if (c != NULL)
			moat_loop_once(c, 2);
		srv_pump(s, 5);
	}
	return *v >= want;
}

static struct moat_client *client_as(struct srv *s, struct seen *seen, const char *ca,
				     const char *cert, const char *key, bool reconnect)
{
	struct moat_client_opts o = {.host = "127.0.0.1",
				     .port = s->port,
				     .client_id = "dev-1",
				     .keep_alive_s = 60,
				     .clean_start = true,
				     .version = 5,
				     .auto_reconnect = reconnect,
				     .reconnect_min_ms = 10,
				     .reconnect_max_ms = 20,
				     .tls = true,
				     .cafile = cpath(ca),
				     .tls_server_name = "localhost"};
	struct moat_callbacks cb = {.arg = seen,
				    .on_connect = on_connect,
				    .on_publish_done = on_done,
				    .on_disconnect = on_disconnect};
	struct moat_client *c = NULL;
	char diag[256];

	if (cert != NULL) {
		o.certfile = cpath(cert);
		o.keyfile = cpath(key);
	}
	assert_int_equal(moat_client_open(&c, &o, &cb, diag, sizeof(diag)), MOAT_OK);
	client_of_seen = c;
	return c;
}

static struct moat_client *tls_client(struct srv *s, struct seen *seen, const char *ca,
				      bool with_cert, bool reconnect)
{
	return client_as(s, seen, ca, with_cert ? "client.crt" : NULL,
			 with_cert ? "client.key" : NULL, reconnect);
}

/* <c> connects to <s>, which then sees certificate CN <cn>. */
static void connects_as(struct srv *s, struct moat_client *c, struct seen *seen, const char *cn)
{
	char seen_cn[64];

	assert_int_equal(moat_connect(c), MOAT_OK);
	srv_connack(s, c);
	assert_true(wait_for(&seen->connects, 1, s, c));
	assert_int_equal(tls_filter_peer_identity(s->f, TLS_ID_CN, seen_cn, sizeof(seen_cn)),
			 MOAT_OK);
	assert_string_equal(seen_cn, cn);
	srv_drop(s);
}

static void clients_of_one_ca_share_a_context_each_with_its_certificate(void **state)
{
	struct seen seen_a = {0}, seen_b = {0};
	struct moat_client *a, *b;
	char cmd[1024];
	struct srv s;

	(void)state;
	/* each device has its own copy of the CA file */
	snprintf(cmd, sizeof(cmd), "cp '%s' '%s'", cpath("ca.crt"), cpath("ca-b.crt"));
	assert_int_equal(system(cmd), 0);
	srv_start(&s, true);
	a = client_as(&s, &seen_a, "ca.crt", "client.crt", "client.key", false);
	b = client_as(&s, &seen_b, "ca-b.crt", "revoked.crt", "revoked.key", false);
	assert_ptr_equal(a->tls_ctx, b->tls_ctx);
	connects_as(&s, a, &seen_a, "client1");
	connects_as(&s, b, &seen_b, "revoked1");
	/* the context outlives the first client that goes */
	moat_client_destroy(a);
	assert_int_equal(moat_disconnect(b, 0), MOAT_OK);
	seen_b.connects = 0;
	connects_as(&s, b, &seen_b, "revoked1");
	moat_client_destroy(b);
	srv_stop(&s);
}

static void threaded_client_over_mutual_tls(void **state)
{
	struct seen seen = {0};
	struct mqtt_packet p;
	uint8_t body[1024];
	char cn[64];
	struct srv s;
	struct moat_client *c;
	uint16_t id = 0;

	(void)state;
	srv_start(&s, true);
	c = tls_client(&s, &seen, "ca.crt", true, false);
	assert_int_equal(moat_loop_start(c), MOAT_OK);
	srv_connack(&s, NULL);
	assert_int_equal(tls_filter_peer_identity(s.f, TLS_ID_CN, cn, sizeof(cn)), MOAT_OK);
	assert_string_equal(cn, "client1");
	assert_true(wait_for(&seen.connects, 1, &s, NULL));
	assert_true(moat_is_connected(c));
	/* published from this thread, sent by the client's */
	assert_int_equal(moat_publish(c, "dev/t", "hi", 2, 1, false, NULL, &id), MOAT_OK);
	srv_read(&s, NULL, &p, body);
	assert_int_equal(p.type, MQTT_PUBLISH);
	assert_int_equal(p.publish.payload.len, 2);
	assert_memory_equal(p.publish.payload.ptr, "hi", 2);
	p = (struct mqtt_packet){.type = MQTT_PUBACK, .ack.packet_id = id};
	srv_send(&s, &p);
	assert_true(wait_for(&seen.done, 1, &s, NULL));
	/* DISCONNECT, then TLS close_notify */
	assert_int_equal(moat_disconnect(c, 0), MOAT_OK);
	srv_read(&s, NULL, &p, body);
	assert_int_equal(p.type, MQTT_DISCONNECT);
	for (int i = 0; i < 100 && s.rc == MOAT_OK; i++)
		srv_pump(&s, 5);
	assert_int_equal(s.rc, MOAT_E_CLOSED);
	assert_int_equal(moat_loop_stop(c), MOAT_OK);
	moat_client_destroy(c);
	srv_stop(&s);
}

static void reconnects_with_a_fresh_handshake(void **state)
{
	struct seen seen = {0};
	struct srv s;
	struct moat_client *c;

	(void)state;
	srv_start(&s, true);
	c = tls_client(&s, &seen, "ca.crt", true, true);
	assert_int_equal(moat_connect(c), MOAT_OK);
	srv_connack(&s, c);
	assert_true(wait_for(&seen.connects, 1, &s, c));
	srv_drop(&s); /* the broker goes away */
	assert_true(wait_for(&seen.disconnects, 1, &s, c));
	assert_int_equal(seen.last_err, MOAT_E_CLOSED);
	srv_connack(&s, c);
	assert_true(wait_for(&seen.connects, 2, &s, c));
	assert_true(moat_is_connected(c));
	moat_client_destroy(c);
	srv_stop(&s);
}

static void verify_failure_ends_for_good_with_its_reason(void **state)
{
	struct seen seen = {0};
	struct srv s;
	struct moat_client *c;
	char why[256];
	int rc = MOAT_OK;

	(void)state;
	srv_start(&s, false);
	c = tls_client(&s, &seen, "wrongca.crt", false, true);
	assert_string_equal(moat_last_error(c, why, sizeof(why)), "");
	assert_int_equal(moat_connect(c), MOAT_OK);
	for (int i = 0; i < 1000 && rc == MOAT_OK; i++) {
		rc = moat_loop_once(c, 2);
		srv_pump(&s, 2);
	}
	/* auto_reconnect notwithstanding: a server that does not verify is final */
	assert_int_equal(rc, MOAT_E_CLOSED);
	assert_int_equal(seen.disconnects, 1);
	assert_int_equal(seen.last_err, MOAT_E_DENIED);
	assert_string_equal(seen.why, "certificate verify failed: unknown CA");
	assert_string_equal(moat_last_error(c, why, sizeof(why)), seen.why);
	assert_int_equal(seen.connects, 0);
	/* truncated, NUL-terminated */
	assert_string_equal(moat_last_error(c, why, 12), "certificate");
	moat_client_destroy(c);
	srv_stop(&s);
}

static void tls_options_checked_at_open(void **state)
{
	struct moat_client_opts o = {.client_id = "x", .cafile = "/nonexistent/ca.pem"};
	struct moat_client *c = NULL;
	char diag[256];

	(void)state;
	assert_int_equal(moat_client_open(&c, &o, NULL, diag, sizeof(diag)), MOAT_E_INVAL);
	assert_non_null(strstr(diag, "tls = true"));
	o.cafile = NULL;
	o.tls_insecure = true;
	assert_int_equal(moat_client_open(&c, &o, NULL, diag, sizeof(diag)), MOAT_E_INVAL);
	o.tls = true;
	o.cafile = "/nonexistent/ca.pem";
	assert_int_equal(moat_client_open(&c, &o, NULL, diag, sizeof(diag)), MOAT_E_CONFIG);
	assert_non_null(strstr(diag, "cafile /nonexistent/ca.pem"));
	o.cafile = cpath("ca.crt");
	o.certfile = cpath("client.crt");
	assert_int_equal(moat_client_open(&c, &o, NULL, diag, sizeof(diag)), MOAT_E_CONFIG);
	assert_non_null(strstr(diag, "keyfile"));
	assert_null(c);
	o.keyfile = cpath("client.key");
	assert_int_equal(moat_client_open(&c, &o, NULL, diag, sizeof(diag)), MOAT_OK);
	moat_client_destroy(c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(threaded_client_over_mutual_tls),
	    cmocka_unit_test(reconnects_with_a_fresh_handshake),
	    cmocka_unit_test(verify_failure_ends_for_good_with_its_reason),
	    cmocka_unit_test(tls_options_checked_at_open),
	    cmocka_unit_test(clients_of_one_ca_share_a_context_each_with_its_certificate),
	};

	return cmocka_run_group_tests(tests, certs_setup, certs_teardown);
}
