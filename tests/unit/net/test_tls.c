/*
 * Unit tests for src/net/tls.c: in-memory handshakes between an OpenSSL
 * client (memory BIOs) and the server filter, mTLS identities and refusals,
 * configuration refusals naming the file or value, and reload.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <moat/error.h>

#include "net/tls.h"
#include "tls_peer.h"

static struct tls_settings base_settings(void)
{
	return (struct tls_settings){.certfile = cpath("server.crt"),
				     .keyfile = cpath("server.key")};
}

static struct tls_settings mtls_settings(void)
{
	struct tls_settings s = base_settings();

	s.cafile = cpath("ca.crt");
	s.require_certificate = true;
	s.use_identity_as_username = true;
	return s;
}

static struct tls_server *server(const struct tls_settings *s)
{
	struct tls_server *srv = NULL;
	struct tls_diag d = {""};

	assert_int_equal(tls_server_create(s, &srv, &d), MOAT_OK);
	return srv;
}

/* Handshake with a client (<max_ver>, <cert>); returns the filter's result and <why>. */
static int connect_with(struct tls_server *srv, int max_ver, const char *cert, const char *key,
			const char **why, struct filter **keep)
{
	struct filter *f = tls_filter_create(srv);
	struct buf app = {0};
	struct peer c;
	int rc;

	assert_non_null(f);
	peer_init(&c, max_ver, cert, key);
	*why = NULL;
	rc = peer_handshake(&c, f, &app, why);
	assert_int_equal(buf_used(&app), 0);
	buf_fini(&app);
	peer_fini(&c);
	if (keep != NULL)
		*keep = f;
	else
		filter_destroy(f);
	return rc;
}

static void exchange(struct peer *c, struct filter *f)
{
	struct buf app = {0}, wire = {0};
	uint8_t got[64];

	assert_int_equal(peer_send(c, f, "\x10\x0c", 2, &app), MOAT_OK);
	assert_int_equal(buf_used(&app), 2);
	assert_memory_equal(buf_head(&app), "\x10\x0c", 2);
	assert_int_equal(f->ops->output(f, (const uint8_t *)"\x20\x02\x00\x00", 4, &wire), MOAT_OK);
	assert_int_equal(peer_recv(c, &wire, got, sizeof(got)), 4);
	assert_memory_equal(got, "\x20\x02\x00\x00", 4);
	buf_fini(&app);
	buf_fini(&wire);
}

static void tls12_handshake_and_data(void **state)
{
	struct tls_settings s = base_settings();
	struct tls_server *srv = server(&s);
	struct filter *f = tls_filter_create(srv);
	struct buf app = {0};
	const char *why = NULL;
	struct peer c;

	(void)state;
	assert_false(f->ops->ready(f));
	assert_string_equal(tls_filter_version(f), "unknown");
	peer_init(&c, TLS1_2_VERSION, NULL, NULL);
	assert_int_equal(peer_handshake(&c, f, &app, &why), 0);
	assert_true(f->ops->ready(f));
	assert_string_equal(tls_filter_version(f), "TLSv1.2");
	assert_string_equal(SSL_get_version(c.ssl), "TLSv1.2");
	assert_int_equal(SSL_get_verify_result(c.ssl), X509_V_OK); /* server cert for localhost */
	assert_true(SSL_CIPHER_is_aead(SSL_get_current_cipher(c.ssl)));
	exchange(&c, f);
	buf_fini(&app);
	peer_fini(&c);
	filter_destroy(f);
	tls_server_unref(srv);
}

static void tls13_handshake_sends_early_output_after(void **state)
{
	struct tls_settings s = base_settings();
	struct tls_server *srv = server(&s);
	struct filter *f = tls_filter_create(srv);
	struct buf app = {0}, wire = {0};
	const char *why = NULL;
	uint8_t got[16];
	struct peer c;

	(void)state;
	/* written before the handshake: kept, not sent in clear */
	assert_int_equal(f->ops->output(f, (const uint8_t *)"early", 5, &wire), MOAT_OK);
	assert_int_equal(buf_used(&wire), 0);
	peer_init(&c, 0, NULL, NULL);
	assert_int_equal(peer_handshake(&c, f, &app, &why), 0);
	assert_string_equal(tls_filter_version(f), "TLSv1.3");
	assert_int_equal(peer_recv(&c, &wire, got, sizeof(got)), 5);
	assert_memory_equal(got, "early", 5);
	exchange(&c, f);
	/* identity needs a verified client certificate */
	assert_int_equal(tls_filter_peer_identity(f, TLS_ID_CN, (char *)got, sizeof(got)),
			 MOAT_E_NOTFOUND);
	/* close_notify from the client: MOAT_E_CLOSED */
	SSL_shutdown(c.ssl);
	assert_int_equal(peer_flush(&c, f, &app, &why), MOAT_E_CLOSED);
	buf_fini(&app);
	buf_fini(&wire);
	peer_fini(&c);
	filter_destroy(f);
	tls_server_unref(srv);
}

static void tls11_client_refused(void **state)
{
	struct tls_settings s = base_settings();
	struct tls_server *srv = server(&s);
	const char *why;

	(void)state;
	assert_int_equal(connect_with(srv, TLS1_1_VERSION, NULL, NULL, &why, NULL), MOAT_E_CRYPTO);
	assert_string_equal(why, "protocol version");
	tls_server_unref(srv);
}

static void tls13_only_refuses_tls12_client(void **state)
{
	struct tls_settings s = base_settings();
	struct tls_server *srv;
	const char *why;

	(void)state;
	s.tls_version = "tlsv1.3";
	srv = server(&s);
	assert_int_equal(connect_with(srv, TLS1_2_VERSION, NULL, NULL, &why, NULL), MOAT_E_CRYPTO);
	assert_string_equal(why, "protocol version");
	tls_server_unref(srv);
}

static void mtls_good_cert_gives_identity(void **state)
{
	struct tls_settings s = mtls_settings();
	struct tls_server *srv = server(&s);
	struct filter *f = tls_filter_create(srv);
	char id[128], tiny[4];
	const char *why;

	(void)state;
	assert_int_equal(tls_filter_peer_identity(f, TLS_ID_CN, id, sizeof(id)), MOAT_E_AGAIN);
	filter_destroy(f);
	assert_int_equal(connect_with(srv, 0, "client.crt", "client.key", &why, &f), 0);
	assert_int_equal(tls_filter_peer_identity(f, TLS_ID_CN, id, sizeof(id)), MOAT_OK);
	assert_string_equal(id, "client1");
	assert_int_equal(tls_filter_peer_identity(f, TLS_ID_SUBJECT, id, sizeof(id)), MOAT_OK);
	assert_string_equal(id, "O=Moat Test,CN=client1");
	assert_int_equal(tls_filter_peer_identity(f, TLS_ID_CN, tiny, sizeof(tiny)), MOAT_E_LIMIT);
	filter_destroy(f);
	/* TLS 1.2 too */
	assert_int_equal(connect_with(srv, TLS1_2_VERSION, "client.crt", "client.key", &why, NULL),
			 0);
	tls_server_unref(srv);
}

static void mtls_refusals_say_why(void **state)
{
	struct tls_settings s = mtls_settings();
	struct tls_server *srv;
	const char *why;

	(void)state;
	s.crlfile = cpath("crl.pem");
	srv = server(&s);
	assert_int_equal(connect_with(srv, 0, "client.crt", "client.key", &why, NULL), 0);
	assert_int_equal(connect_with(srv, 0, NULL, NULL, &why, NULL), MOAT_E_DENIED);
	assert_string_equal(why, "no client certificate");
	assert_int_equal(connect_with(srv, 0, "wrong.crt", "wrong.key", &why, NULL), MOAT_E_DENIED);
	assert_string_equal(why, "unknown CA");
	assert_int_equal(connect_with(srv, 0, "expired.crt", "expired.key", &why, NULL),
			 MOAT_E_DENIED);
	assert_string_equal(why, "certificate expired");
	assert_int_equal(connect_with(srv, 0, "revoked.crt", "revoked.key", &why, NULL),
			 MOAT_E_DENIED);
	assert_string_equal(why, "certificate revoked");
	assert_int_equal(
	    connect_with(srv, TLS1_2_VERSION, "revoked.crt", "revoked.key", &why, NULL),
	    MOAT_E_DENIED);
	assert_string_equal(why, "certificate revoked");
	tls_server_unref(srv);
}

/* tls_server_create fails with MOAT_E_CONFIG and a message containing <needle>. */
static void refused(const struct tls_settings *s, const char *needle)
{
	struct tls_server *srv = NULL;
	struct tls_diag d = {""};

	if (tls_server_create(s, &srv, &d) != MOAT_E_CONFIG)
		fail_msg("settings expected to fail on \"%s\" were accepted", needle);
	assert_null(srv);
	if (strstr(d.msg, needle) == NULL)
		fail_msg("diag \"%s\" lacks \"%s\"", d.msg, needle);
}

static void bad_files_refused_by_name(void **state)
{
	struct tls_settings s;
	char empty[320], junk[320];
	FILE *fp;

	(void)state;
	snprintf(empty, sizeof(empty), "%s", cpath("empty.pem"));
	snprintf(junk, sizeof(junk), "%s", cpath("junk.pem"));
	fp = fopen(empty, "w");
	fclose(fp);
	fp = fopen(junk, "w");
	fputs("not a pem file\n", fp);
	fclose(fp);

	s = base_settings();
	s.certfile = cpath("missing.crt");
	refused(&s, cpath("missing.crt"));
	s = base_settings();
	s.certfile = empty;
	refused(&s, empty);
	s = base_settings();
	s.certfile = NULL;
	refused(&s, "certfile");
	s = base_settings();
	s.keyfile = junk;
	refused(&s, junk);
	s = base_settings();
	s.keyfile = cpath("client.key"); /* valid key, other certificate */
	refused(&s, "does not match");
	s = mtls_settings();
	s.cafile = junk;
	refused(&s, junk);
	s = mtls_settings();
	s.cafile = empty;
	refused(&s, empty);
	s = mtls_settings();
	s.cafile = cpath("nope/ca.crt");
	refused(&s, cpath("nope/ca.crt"));
	s = mtls_settings();
	s.crlfile = junk;
	refused(&s, junk);
	s = mtls_settings();
	s.capath = cpath("absent-dir");
	refused(&s, "absent-dir");
	s = mtls_settings();
	s.cafile = NULL;
	refused(&s, "require_certificate");
	s = base_settings();
	s.use_subject_as_username = true;
	refused(&s, "require_certificate");
}

static void weak_protocols_and_ciphers_refused(void **state)
{
	struct tls_settings s = base_settings();
	struct tls_server *srv;
	struct tls_diag d;

	(void)state;
	s.tls_version = "tlsv1.1";
	refused(&s, "use tlsv1.2 or tlsv1.3");
	s.tls_version = "tlsv1";
	refused(&s, "use tlsv1.2 or tlsv1.3");
	s.tls_version = "sslv3";
	refused(&s, "use tlsv1.2 or tlsv1.3");
	s.tls_version = "tlsv9";
	refused(&s, "unknown");
	s.tls_version = NULL;
	s.ciphers = "ECDHE-RSA-AES128-SHA";
	refused(&s, "ECDHE-RSA-AES128-SHA");
	s.ciphers = "ECDHE-ECDSA-AES128-GCM-SHA256:RC4-SHA";
	refused(&s, "RC4-SHA");
	s.ciphers = "DES-CBC3-SHA";
	refused(&s, "DES-CBC3-SHA");
	s.ciphers = "eNULL";
	refused(&s, "eNULL");
	s.ciphers = "HIGH"; /* expands to CBC suites */
	refused(&s, "non-AEAD");
	s.ciphers = "ADH-AES128-GCM-SHA256";
	refused(&s, "ADH-AES128-GCM-SHA256");
	s.ciphers = "ECDHE-ECDSA-CHACHA20-POLY1305:!RC4";
	assert_int_equal(tls_server_create(&s, &srv, &d), MOAT_OK);
	tls_server_unref(srv);
	s.ciphers = NULL;
	s.ciphers_tls13 = "TLS_NO_SUCH_SUITE";
	refused(&s, "TLS_NO_SUCH_SUITE");
	s.ciphers_tls13 = "TLS_CHACHA20_POLY1305_SHA256";
	assert_int_equal(tls_server_create(&s, &srv, &d), MOAT_OK);
	tls_server_unref(srv);
}

static void reload_applies_to_new_connections_only(void **state)
{
	struct tls_settings s = base_settings(), m = mtls_settings();
	struct tls_server *srv = server(&s);
	struct filter *old_f = tls_filter_create(srv);
	struct buf app = {0};
	struct tls_diag d = {""};
	const char *why;
	struct peer c;

	(void)state;
	/* a failed reload keeps the current context */
	m.cafile = cpath("missing.crt");
	assert_int_equal(tls_server_reload(srv, &m, &d), MOAT_E_CONFIG);
	assert_non_null(strstr(d.msg, "missing.crt"));
	assert_int_equal(connect_with(srv, 0, NULL, NULL, &why, NULL), 0);

	m = mtls_settings();
	assert_int_equal(tls_server_reload(srv, &m, &d), MOAT_OK);
	/* the connection created before the reload still needs no certificate */
	peer_init(&c, 0, NULL, NULL);
	assert_int_equal(peer_handshake(&c, old_f, &app, &why), 0);
	exchange(&c, old_f);
	peer_fini(&c);
	filter_destroy(old_f);
	/* new ones do */
	assert_int_equal(connect_with(srv, 0, NULL, NULL, &why, NULL), MOAT_E_DENIED);
	assert_int_equal(connect_with(srv, 0, "client.crt", "client.key", &why, NULL), 0);
	/* filters outlive the server reference */
	old_f = tls_filter_create(tls_server_ref(srv));
	tls_server_unref(srv);
	tls_server_unref(srv);
	peer_init(&c, 0, "client.crt", "client.key");
	assert_int_equal(peer_handshake(&c, old_f, &app, &why), 0);
	peer_fini(&c);
	filter_destroy(old_f);
	buf_fini(&app);
}

static void garbage_input_fails_cleanly(void **state)
{
	struct tls_settings s = base_settings();
	struct tls_server *srv = server(&s);
	struct filter *f = tls_filter_create(srv);
	struct buf app = {0}, wire = {0};
	const char *why = NULL;
	static const char http[] = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";

	(void)state;
	assert_int_equal(
	    f->ops->input(f, (const uint8_t *)http, sizeof(http) - 1, &app, &wire, &why),
	    MOAT_E_CRYPTO);
	assert_non_null(why);
	/* sticky */
	assert_int_equal(f->ops->input(f, (const uint8_t *)"x", 1, &app, &wire, NULL),
			 MOAT_E_CRYPTO);
	assert_int_equal(buf_used(&app), 0);
	assert_int_equal(tls_filter_peer_identity(f, TLS_ID_CN, (char[8]){0}, 8), MOAT_E_AGAIN);
	buf_fini(&app);
	buf_fini(&wire);
	filter_destroy(f);
	tls_server_unref(srv);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(tls12_handshake_and_data),
	    cmocka_unit_test(tls13_handshake_sends_early_output_after),
	    cmocka_unit_test(tls11_client_refused),
	    cmocka_unit_test(tls13_only_refuses_tls12_client),
	    cmocka_unit_test(mtls_good_cert_gives_identity),
	    cmocka_unit_test(mtls_refusals_say_why),
	    cmocka_unit_test(bad_files_refused_by_name),
	    cmocka_unit_test(weak_protocols_and_ciphers_refused),
	    cmocka_unit_test(reload_applies_to_new_connections_only),
	    cmocka_unit_test(garbage_input_fails_cleanly),
	};

	return cmocka_run_group_tests(tests, certs_setup, certs_teardown);
}
