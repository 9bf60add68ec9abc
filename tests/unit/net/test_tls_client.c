/*
 * Unit tests for src/net/tls_client.c: libmoat's client filter against the
 * broker's server filter (tls.c), in memory. Chain and host-name checks and
 * their reasons, mutual TLS both ways, SNI, early application bytes, the
 * client context's refusals naming the option and file, and the contexts
 * shared per CA file contents with a certificate per connection.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <moat/error.h>

#include "net/tls.h"
#include "net/tls_client.h"
/* its cert dir helpers; the OpenSSL test peer is not needed here */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-function"
#include "tls_peer.h"
#pragma GCC diagnostic pop

struct pair {
	struct filter *cli, *srv;
	struct buf cli_app, srv_app; /* application bytes each side received */
	struct buf to_srv, to_cli;   /* records in flight */
	int cli_rc, srv_rc;
	const char *cli_why, *srv_why;
};

static struct tls_server *server(bool mtls)
{
	struct tls_settings s = {.certfile = cpath("server.crt"), .keyfile = cpath("server.key")};
	struct tls_server *srv = NULL;
	struct tls_diag d = {""};

	if (mtls) {
		s.cafile = cpath("ca.crt");
		s.require_certificate = true;
	}
	assert_int_equal(tls_server_create(&s, &srv, &d), MOAT_OK);
	return srv;
}

static SSL_CTX *client_ctx(const char *ca, const char *cert, const char *key)
{
	struct tls_client_settings s = {.cafile = ca != NULL ? cpath(ca) : NULL,
					.certfile = cert != NULL ? cpath(cert) : NULL,
					.keyfile = key != NULL ? cpath(key) : NULL};
	struct tls_diag d = {""};
	SSL_CTX *ctx = NULL;

	assert_int_equal(tls_client_ctx_create(&s, &ctx, &d), MOAT_OK);
	assert_string_equal(d.msg, "");
	return ctx;
}

/* Moves records both ways until neither side has anything to say or one
 * side failed; the client starts with an empty input (its ClientHello). */
static void run(struct pair *p)
{
	p->cli_rc = p->cli->ops->input(p->cli, NULL, 0, &p->cli_app, &p->to_srv, &p->cli_why);
	for (int i = 0; i < 20 && p->cli_rc == MOAT_OK && p->srv_rc == MOAT_OK; i++) {
		if (buf_used(&p->to_srv) == 0 && buf_used(&p->to_cli) == 0)
			break;
		if (buf_used(&p->to_srv) > 0) {
			struct buf in = p->to_srv;

			p->to_srv = (struct buf){0};
			p->srv_rc = p->srv->ops->input(p->srv, buf_head(&in), buf_used(&in),
						       &p->srv_app, &p->to_cli, &p->srv_why);
			buf_fini(&in);
		}
		if (buf_used(&p->to_cli) > 0) {
			struct buf in = p->to_cli;

			p->to_cli = (struct buf){0};
			p->cli_rc = p->cli->ops->input(p->cli, buf_head(&in), buf_used(&in),
						       &p->cli_app, &p->to_srv, &p->cli_why);
			buf_fini(&in);
		}
	}
}

/* A client filter for <name> of <ctx> presenting <id> against server
 * <srv>, run to its end. */
static void connect_as(struct pair *p, SSL_CTX *ctx, const struct tls_client_identity *id,
		       struct tls_server *srv, const char *name, bool check_host)
{
	*p = (struct pair){0};
	p->cli = tls_client_filter_create(ctx, id, name, check_host);
	p->srv = tls_filter_create(srv);
	assert_non_null(p->cli);
	assert_non_null(p->srv);
	run(p);
}

static void connect_pair(struct pair *p, SSL_CTX *ctx, struct tls_server *srv, const char *name,
			 bool check_host)
{
	connect_as(p, ctx, NULL, srv, name, check_host);
}

static void pair_fini(struct pair *p)
{
	filter_destroy(p->cli);
	filter_destroy(p->srv);
	buf_fini(&p->cli_app);
	buf_fini(&p->srv_app);
	buf_fini(&p->to_srv);
	buf_fini(&p->to_cli);
}

static void mtls_round_trip_with_early_output(void **state)
{
	struct tls_server *srv = server(true);
	SSL_CTX *ctx = client_ctx("ca.crt", "client.crt", "client.key");
	struct pair p = {0};
	char id[64];

	(void)state;
	p.cli = tls_client_filter_create(ctx, NULL, "localhost", true);
	p.srv = tls_filter_create(srv);
	/* the CONNECT written before the handshake: kept, then sent encrypted */
	assert_int_equal(p.cli->ops->output(p.cli, (const uint8_t *)"\x10\x00", 2, &p.to_srv),
			 MOAT_OK);
	assert_int_equal(buf_used(&p.to_srv), 0);
	run(&p);
	assert_int_equal(p.cli_rc, MOAT_OK);
	assert_int_equal(p.srv_rc, MOAT_OK);
	assert_true(p.cli->ops->ready(p.cli));
	assert_string_equal(tls_filter_version(p.cli), "TLSv1.3");
	assert_int_equal(buf_used(&p.srv_app), 2);
	assert_memory_equal(buf_head(&p.srv_app), "\x10\x00", 2);
	/* the server saw our certificate */
	assert_int_equal(tls_filter_peer_identity(p.srv, TLS_ID_CN, id, sizeof(id)), MOAT_OK);
	assert_string_equal(id, "client1");
	/* and the client verified the server's */
	assert_int_equal(tls_filter_peer_identity(p.cli, TLS_ID_CN, id, sizeof(id)), MOAT_OK);
	assert_string_equal(id, "localhost");
	/* the answer comes back */
	assert_int_equal(
	    p.srv->ops->output(p.srv, (const uint8_t *)"\x20\x02\x00\x00", 4, &p.to_cli), MOAT_OK);
	run(&p);
	assert_int_equal(buf_used(&p.cli_app), 4);
	assert_memory_equal(buf_head(&p.cli_app), "\x20\x02\x00\x00", 4);
	pair_fini(&p);
	SSL_CTX_free(ctx);
	tls_server_unref(srv);
}

static void wrong_ca_is_a_verify_failure(void **state)
{
	struct tls_server *srv = server(false);
	SSL_CTX *ctx = client_ctx("wrongca.crt", NULL, NULL);
	struct pair p;

	(void)state;
	/* also with the host-name check off: the chain is always verified */
	for (int check = 0; check < 2; check++) {
		connect_pair(&p, ctx, srv, "localhost", check);
		assert_int_equal(p.cli_rc, MOAT_E_DENIED);
		assert_string_equal(p.cli_why, "unknown CA");
		assert_false(p.cli->ops->ready(p.cli));
		assert_int_equal(buf_used(&p.srv_app), 0);
		pair_fini(&p);
	}
	SSL_CTX_free(ctx);
	tls_server_unref(srv);
}

static void host_name_checked_unless_insecure(void **state)
{
	struct tls_server *srv = server(false);
	SSL_CTX *ctx = client_ctx("ca.crt", NULL, NULL);
	struct pair p;

	(void)state;
	connect_pair(&p, ctx, srv, "other.example", true);
	assert_int_equal(p.cli_rc, MOAT_E_DENIED);
	assert_string_equal(p.cli_why, "hostname mismatch");
	pair_fini(&p);
	connect_pair(&p, ctx, srv, "127.0.0.2", true);
	assert_int_equal(p.cli_rc, MOAT_E_DENIED);
	assert_string_equal(p.cli_why, "IP address mismatch");
	pair_fini(&p);
	/* the SAN names localhost and 127.0.0.1 */
	connect_pair(&p, ctx, srv, "127.0.0.1", true);
	assert_int_equal(p.cli_rc, MOAT_OK);
	assert_true(p.cli->ops->ready(p.cli));
	pair_fini(&p);
	connect_pair(&p, ctx, srv, "LOCALHOST", true);
	assert_int_equal(p.cli_rc, MOAT_OK);
	pair_fini(&p);
	connect_pair(&p, ctx, srv, "other.example", false);
	assert_int_equal(p.cli_rc, MOAT_OK);
	assert_true(p.cli->ops->ready(p.cli));
	pair_fini(&p);
	SSL_CTX_free(ctx);
	tls_server_unref(srv);
}

static void server_refusing_our_certificate_says_why(void **state)
{
	struct tls_server *srv = server(true);
	SSL_CTX *none = client_ctx("ca.crt", NULL, NULL);
	SSL_CTX *wrong = client_ctx("ca.crt", "wrong.crt", "wrong.key");
	struct pair p;

	(void)state;
	/* TLS 1.3: the client's handshake ends first, the alert follows */
	connect_pair(&p, none, srv, "localhost", true);
	assert_int_equal(p.srv_rc, MOAT_E_DENIED);
	assert_int_equal(p.cli_rc, MOAT_E_CRYPTO);
	assert_non_null(strstr(p.cli_why, "certificate required"));
	pair_fini(&p);
	connect_pair(&p, wrong, srv, "localhost", true);
	assert_int_equal(p.srv_rc, MOAT_E_DENIED);
	assert_int_equal(p.cli_rc, MOAT_E_CRYPTO);
	assert_non_null(strstr(p.cli_why, "unknown ca"));
	pair_fini(&p);
	SSL_CTX_free(none);
	SSL_CTX_free(wrong);
	tls_server_unref(srv);
}

static void sni_only_for_names(void **state)
{
	SSL_CTX *ctx = client_ctx("ca.crt", NULL, NULL);
	SSL *ssl = SSL_new(ctx);

	(void)state;
	assert_int_equal(tls_client_set_peer(ssl, "broker.example", true), MOAT_OK);
	assert_string_equal(SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name), "broker.example");
	SSL_free(ssl);
	ssl = SSL_new(ctx);
	assert_int_equal(tls_client_set_peer(ssl, "::1", true), MOAT_OK);
	assert_null(SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name));
	assert_int_equal(tls_client_set_peer(ssl, "", true), MOAT_E_INVAL);
	SSL_free(ssl);
	assert_int_equal(SSL_CTX_get_min_proto_version(ctx), TLS1_2_VERSION);
	assert_true((SSL_CTX_get_verify_mode(ctx) & SSL_VERIFY_PEER) != 0);
	SSL_CTX_free(ctx);
}

/* tls_client_ctx_create(<ca>, <cert>, <key>) fails with a message holding <want>. */
static void refused(const char *ca, const char *cert, const char *key, const char *want)
{
	struct tls_client_settings s = {.cafile = ca, .certfile = cert, .keyfile = key};
	struct tls_diag d = {""};
	SSL_CTX *ctx = NULL;

	assert_int_equal(tls_client_ctx_create(&s, &ctx, &d), MOAT_E_CONFIG);
	assert_null(ctx);
	if (strstr(d.msg, want) == NULL)
		fail_msg("\"%s\" does not say \"%s\"", d.msg, want);
}

static void bad_files_refused_by_name(void **state)
{
	char cmd[1024];
	SSL_CTX *sys = NULL;
	struct tls_client_settings none = {0};
	struct tls_diag d = {""};

	(void)state;
	refused(cpath("missing.crt"), NULL, NULL, "cafile");
	refused(cpath("missing.crt"), NULL, NULL, "missing.crt");
	refused(cpath("client.key"), NULL, NULL, "holds no PEM CA certificate");
	refused(cpath("ca.crt"), cpath("client.crt"), NULL, "certfile: set without keyfile");
	refused(cpath("ca.crt"), NULL, cpath("client.key"), "keyfile: set without certfile");
	refused(cpath("ca.crt"), cpath("client.crt"), cpath("wrong.key"), "does not match");
	refused(cpath("ca.crt"), cpath("client.key"), cpath("client.key"), "certfile");
	refused(cpath("ca.crt"), cpath("client.crt"), cpath("ca.crt"), "no usable PEM private key");
	/* an encrypted key is refused, without a passphrase prompt */
	snprintf(cmd, sizeof(cmd),
		 "openssl pkcs8 -topk8 -in '%s' -out '%s' -passout pass:secret 2>/dev/null",
		 cpath("client.key"), cpath("client-enc.key"));
	assert_int_equal(system(cmd), 0);
	refused(cpath("ca.crt"), cpath("client.crt"), cpath("client-enc.key"), "encrypted?");
	/* no cafile: the system's store */
	assert_int_equal(tls_client_ctx_create(&none, &sys, &d), MOAT_OK);
	SSL_CTX_free(sys);
}

/* Copies certificate file <from> to <to> in the cert dir. */
static void copy_cert(const char *from, const char *to)
{
	char cmd[1024];

	snprintf(cmd, sizeof(cmd), "cp '%s' '%s'", cpath(from), cpath(to));
	assert_int_equal(system(cmd), 0);
}

static struct tls_client_identity *identity(const char *cert, const char *key)
{
	struct tls_client_identity *id = NULL;
	struct tls_diag d = {""};

	assert_int_equal(tls_client_identity_load(cpath(cert), cpath(key), &id, &d), MOAT_OK);
	assert_non_null(id);
	return id;
}

/* The server saw certificate CN <cn> from a client of <ctx> presenting <id>. */
static void server_sees(SSL_CTX *ctx, const struct tls_client_identity *id, const char *cn)
{
	struct tls_server *srv = server(true);
	struct pair p;
	char seen[64];

	connect_as(&p, ctx, id, srv, "localhost", true);
	assert_int_equal(p.cli_rc, MOAT_OK);
	assert_int_equal(p.srv_rc, MOAT_OK);
	assert_int_equal(tls_filter_peer_identity(p.srv, TLS_ID_CN, seen, sizeof(seen)), MOAT_OK);
	assert_string_equal(seen, cn);
	pair_fini(&p);
	tls_server_unref(srv);
}

static void shared_context_per_ca_contents_with_a_certificate_each(void **state)
{
	struct tls_client_identity *one = identity("client.crt", "client.key");
	struct tls_client_identity *two = identity("revoked.crt", "revoked.key");
	SSL_CTX *a = NULL, *b = NULL, *other = NULL, *again = NULL;
	struct tls_diag d = {""};

	(void)state;
	copy_cert("ca.crt", "ca-copy.crt");
	assert_int_equal(tls_client_ctx_shared(cpath("ca.crt"), &a, &d), MOAT_OK);
	/* the same CA under another path: the same context */
	assert_int_equal(tls_client_ctx_shared(cpath("ca-copy.crt"), &b, &d), MOAT_OK);
	assert_ptr_equal(a, b);
	assert_int_equal(tls_client_ctx_shared(cpath("wrongca.crt"), &other, &d), MOAT_OK);
	assert_ptr_not_equal(a, other);
	/* two clients of one context, each presenting its own certificate */
	server_sees(a, one, "client1");
	server_sees(b, two, "revoked1");
	/* the context trusts only its CA: the wrong CA's client does not verify */
	{
		struct tls_server *srv = server(true);
		struct pair p;

		connect_as(&p, other, one, srv, "localhost", true);
		assert_int_equal(p.cli_rc, MOAT_E_DENIED);
		assert_string_equal(p.cli_why, "unknown CA");
		pair_fini(&p);
		tls_server_unref(srv);
	}
	/* kept while used, rebuilt after its last use (ASan sees the frees) */
	tls_client_ctx_unshare(a);
	assert_int_equal(tls_client_ctx_shared(cpath("ca.crt"), &again, &d), MOAT_OK);
	assert_ptr_equal(again, b);
	tls_client_ctx_unshare(again);
	tls_client_ctx_unshare(b);
	tls_client_ctx_unshare(other);
	tls_client_identity_free(one);
	tls_client_identity_free(two);
}

/* tls_client_identity_load(<cert>, <key>) fails with a message holding <want>. */
static void identity_refused(const char *cert, const char *key, const char *want)
{
	struct tls_client_identity *id = NULL;
	struct tls_diag d = {""};

	assert_int_equal(tls_client_identity_load(cert, key, &id, &d), MOAT_E_CONFIG);
	assert_null(id);
	if (strstr(d.msg, want) == NULL)
		fail_msg("\"%s\" does not say \"%s\"", d.msg, want);
}

static void shared_context_refusals(void **state)
{
	struct tls_client_identity *id = NULL;
	struct tls_diag d = {""};
	SSL_CTX *ctx = NULL;

	(void)state;
	assert_int_equal(tls_client_ctx_shared(cpath("missing.crt"), &ctx, &d), MOAT_E_CONFIG);
	assert_non_null(strstr(d.msg, "cafile"));
	assert_int_equal(tls_client_ctx_shared(cpath("client.key"), &ctx, &d), MOAT_E_CONFIG);
	assert_non_null(strstr(d.msg, "holds no PEM CA certificate"));
	assert_null(ctx);
	assert_int_equal(tls_client_identity_load(NULL, NULL, &id, &d), MOAT_OK);
	assert_null(id);
	identity_refused(cpath("client.crt"), NULL, "certfile: set without keyfile");
	identity_refused(NULL, cpath("client.key"), "keyfile: set without certfile");
	identity_refused(cpath("missing.crt"), cpath("client.key"), "missing.crt");
	identity_refused(cpath("client.crt"), cpath("wrong.key"), "does not match");
	identity_refused(cpath("client.key"), cpath("client.key"), "certfile");
	identity_refused(cpath("client.crt"), cpath("ca.crt"), "no usable PEM private key");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(mtls_round_trip_with_early_output),
	    cmocka_unit_test(wrong_ca_is_a_verify_failure),
	    cmocka_unit_test(host_name_checked_unless_insecure),
	    cmocka_unit_test(server_refusing_our_certificate_says_why),
	    cmocka_unit_test(sni_only_for_names),
	    cmocka_unit_test(bad_files_refused_by_name),
	    cmocka_unit_test(shared_context_per_ca_contents_with_a_certificate_each),
	    cmocka_unit_test(shared_context_refusals),
	};

	return cmocka_run_group_tests(tests, certs_setup, certs_teardown);
}
