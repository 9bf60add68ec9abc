/*
 * Unit tests for `moat bench` TLS (src/cli/bench_tls.c): context refusals
 * for missing or mismatched files, and real non-blocking handshakes over a
 * socket pair against an OpenSSL server that check the server's name or IP
 * address, the CA and client certificates; then the connect-rate figures
 * of src/cli/bench_report.c.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include "cli/bench.h"

static char cert_dir[64];

/* Path of file <name> in the generated cert dir (rotating static storage). */
static const char *cpath(const char *name)
{
	static char slots[8][128];
	static unsigned next;
	char *p = slots[next++ % 8];

	snprintf(p, 128, "%s/%s", cert_dir, name);
	return p;
}

static int setup(void **state)
{
	char cmd[512];

	(void)state;
	strcpy(cert_dir, "/tmp/moat-bench-XXXXXX");
	if (mkdtemp(cert_dir) == NULL)
		return -1;
	snprintf(cmd, sizeof(cmd), "sh '%s' '%s' >/dev/null 2>&1", MOAT_MAKE_CERTS, cert_dir);
	return system(cmd) == 0 ? 0 : -1;
}

static int teardown(void **state)
{
	char cmd[128];

	(void)state;
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", cert_dir);
	return system(cmd) == 0 ? 0 : -1;
}

static void ctx_refuses_bad_files(void **state)
{
	SSL_CTX *ctx;

	(void)state;
	assert_null(bench_tls_ctx_create(cpath("missing.crt"), NULL, NULL));
	assert_null(
	    bench_tls_ctx_create(cpath("ca.crt"), cpath("missing.crt"), cpath("client.key")));
	assert_null(
	    bench_tls_ctx_create(cpath("ca.crt"), cpath("client.crt"), cpath("missing.key")));
	/* a key that is not the certificate's */
	assert_null(bench_tls_ctx_create(cpath("ca.crt"), cpath("client.crt"), cpath("wrong.key")));
	ctx = bench_tls_ctx_create(cpath("ca.crt"), cpath("client.crt"), cpath("client.key"));
	assert_non_null(ctx);
	SSL_CTX_free(ctx);
	ctx = bench_tls_ctx_create(cpath("ca.crt"), NULL, NULL);
	assert_non_null(ctx);
	assert_int_equal(SSL_CTX_get_min_proto_version(ctx), TLS1_2_VERSION);
	assert_int_equal(SSL_CTX_get_verify_mode(ctx) & SSL_VERIFY_PEER, SSL_VERIFY_PEER);
	SSL_CTX_free(ctx);
	ERR_clear_error();
}

/* An OpenSSL server with the test server certificate; <client_ca> asks for a client certificate. */
static SSL_CTX *server_ctx(const char *client_ca)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());

	assert_non_null(ctx);
	assert_int_equal(SSL_CTX_use_certificate_chain_file(ctx, cpath("server.crt")), 1);
	assert_int_equal(SSL_CTX_use_PrivateKey_file(ctx, cpath("server.key"), SSL_FILETYPE_PEM),
			 1);
	if (client_ca != NULL) {
		assert_int_equal(SSL_CTX_load_verify_locations(ctx, client_ca, NULL), 1);
		SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
	}
	return ctx;
}

struct result {
	bool ok;	      /* both sides finished the handshake and exchanged a byte */
	long verify;	      /* the client's verification result */
	bool server_saw_cert; /* the server got a client certificate */
};

/*
 * Handshake between bench_tls_open(<cctx>, ..., <host>) and a server of
 * <sctx> on a non-blocking socket pair, both driven in turn as bench.c does.
 */
static struct result handshake(SSL_CTX *cctx, SSL_CTX *sctx, const char *host)
{
	struct result r = {false, X509_V_OK, false};
	int sv[2], crc = 0, src = 0;
	SSL *c, *s;
	char byte = 0;

	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv), 0);
	c = bench_tls_open(cctx, sv[0], host);
	assert_non_null(c);
	s = SSL_new(sctx);
	assert_non_null(s);
	SSL_set_fd(s, sv[1]);
	SSL_set_accept_state(s);
	for (int i = 0; i < 50 && (crc != 1 || src != 1); i++) {
		if (crc != 1) {
			crc = SSL_do_handshake(c);
			if (crc != 1 && SSL_get_error(c, crc) != SSL_ERROR_WANT_READ &&
			    SSL_get_error(c, crc) != SSL_ERROR_WANT_WRITE)
				break;
		}
		if (src != 1) {
			src = SSL_do_handshake(s);
			if (src != 1 && SSL_get_error(s, src) != SSL_ERROR_WANT_READ &&
			    SSL_get_error(s, src) != SSL_ERROR_WANT_WRITE)
				break;
		}
	}
	r.verify = SSL_get_verify_result(c);
	if (crc == 1 && src == 1 && SSL_write(c, "x", 1) == 1) {
		for (int i = 0; i < 10 && byte != 'x'; i++)
			if (SSL_read(s, &byte, 1) != 1)
				byte = 0;
		r.ok = byte == 'x';
		X509 *peer = SSL_get1_peer_certificate(s);

		r.server_saw_cert = peer != NULL;
		X509_free(peer);
	}
	SSL_free(c);
	SSL_free(s);
	close(sv[0]);
	close(sv[1]);
	ERR_clear_error();
	return r;
}

static void server_name_and_address_checked(void **state)
{
	SSL_CTX *cctx = bench_tls_ctx_create(cpath("ca.crt"), NULL, NULL);
	SSL_CTX *sctx = server_ctx(NULL);
	struct result r;

	(void)state;
	assert_non_null(cctx);
	r = handshake(cctx, sctx, "localhost");
	assert_true(r.ok);
	assert_int_equal(r.verify, X509_V_OK);
	assert_false(r.server_saw_cert);
	r = handshake(cctx, sctx, "127.0.0.1"); /* the certificate's IP SAN */
	assert_true(r.ok);
	r = handshake(cctx, sctx, "other.example");
	assert_false(r.ok);
	assert_int_equal(r.verify, X509_V_ERR_HOSTNAME_MISMATCH);
	r = handshake(cctx, sctx, "127.0.0.2");
	assert_false(r.ok);
	assert_int_equal(r.verify, X509_V_ERR_IP_ADDRESS_MISMATCH);
	SSL_CTX_free(cctx);
	SSL_CTX_free(sctx);
}

static void server_from_another_ca_refused(void **state)
{
	SSL_CTX *cctx = bench_tls_ctx_create(cpath("wrongca.crt"), NULL, NULL);
	SSL_CTX *sctx = server_ctx(NULL);
	struct result r;

	(void)state;
	assert_non_null(cctx);
	r = handshake(cctx, sctx, "localhost");
	assert_false(r.ok);
	assert_int_not_equal(r.verify, X509_V_OK);
	SSL_CTX_free(cctx);
	SSL_CTX_free(sctx);
}

static void client_certificate_presented(void **state)
{
	SSL_CTX *with =
	    bench_tls_ctx_create(cpath("ca.crt"), cpath("client.crt"), cpath("client.key"));
	SSL_CTX *without = bench_tls_ctx_create(cpath("ca.crt"), NULL, NULL);
	SSL_CTX *sctx = server_ctx(cpath("ca.crt"));
	struct result r;

	(void)state;
	r = handshake(with, sctx, "localhost");
	assert_true(r.ok);
	assert_true(r.server_saw_cert);
	r = handshake(without, sctx, "localhost"); /* the server demands one */
	assert_false(r.ok);
	SSL_CTX_free(with);
	SSL_CTX_free(without);
	SSL_CTX_free(sctx);
}

static void connect_rate_reported(void **state)
{
	struct bench_result r = {.scenario = "connect",
				 .tls = true,
				 .version = 5,
				 .connections = 50,
				 .connected = 300,
				 .elapsed_s = 2.0};
	char *text = NULL;
	size_t len = 0;
	FILE *f;

	(void)state;
	for (uint64_t us = 1000; us <= 100000; us += 1000)
		bench_hist_add(&r.hist, us);
	assert_true(bench_conn_rate(&r) > 149.99 && bench_conn_rate(&r) < 150.01);
	f = open_memstream(&text, &len);
	assert_non_null(f);
	bench_report_json(f, &r);
	bench_report_summary(f, &r);
	fclose(f);
	assert_non_null(strstr(text, "\"scenario\":\"connect\",\"tls\":true,"));
	assert_non_null(strstr(text, "\"conns_per_s\":150.0,"));
	assert_non_null(strstr(text, "\"msgs_per_s\":0.0,"));
	assert_non_null(strstr(text, "300 connections in 2.00 s: 150 connections/s"));
	assert_non_null(strstr(text, "(TCP + TLS + CONNACK)"));
	free(text);

	r.scenario = "pairs"; /* other scenarios have no connection rate */
	assert_true(bench_conn_rate(&r) == 0.0);
	r.scenario = "connect";
	r.elapsed_s = 0;
	assert_true(bench_conn_rate(&r) == 0.0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(ctx_refuses_bad_files),
	    cmocka_unit_test(server_name_and_address_checked),
	    cmocka_unit_test(server_from_another_ca_refused),
	    cmocka_unit_test(client_certificate_presented),
	    cmocka_unit_test(connect_rate_reported),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
