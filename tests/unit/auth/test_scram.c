/* SCRAM-SHA-256: the RFC 7677 §3 example with injected nonces, full
 * client-server exchanges, and every way a peer can get it wrong. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include <moat/error.h>

#include "auth/scram.h"
#include "base/base64.h"

#define C_FIRST "n,,n=user,r=rOprNGfwEbeRWgbNEkqO"
#define S_NONCE "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0"
#define S_FIRST                                                                                    \
	"r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096"
#define C_FINAL_NP "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0"
#define C_FINAL C_FINAL_NP ",p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="
#define S_FINAL "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="

static int lookups;

/* "user" with password "pencil" (RFC 7677 salt); everyone else is unknown. */
static int lookup(void *arg, const char *username, struct scram_cred *out)
{
	(void)arg;
	lookups++;
	if (strcmp(username, "user") != 0 && strcmp(username, "a,b=c") != 0)
		return MOAT_E_NOTFOUND;
	memset(out, 0, sizeof(*out));
	out->salt_len = (size_t)b64_decode("W22ZaJ0SNY7soEsUEjb6gQ==", 24, out->salt,
					   sizeof(out->salt), B64_STD);
	out->iterations = 4096;
	assert_int_equal(scram_derive((const uint8_t *)"pencil", 6, out->salt, out->salt_len, 4096,
				      out->stored_key, out->server_key),
			 MOAT_OK);
	return MOAT_OK;
}

static const uint8_t *u(const char *s)
{
	return (const uint8_t *)s;
}

static bool buf_is(const struct buf *b, const char *s)
{
	return buf_used(b) == strlen(s) && memcmp(buf_head(b), s, strlen(s)) == 0;
}

static void rfc7677_server(void **state)
{
	struct scram_server s;
	struct buf out = {0};

	(void)state;
	scram_server_init(&s);
	assert_int_equal(
	    scram_server_start_nonce(&s, u(C_FIRST), strlen(C_FIRST), S_NONCE, lookup, NULL, &out),
	    MOAT_OK);
	assert_true(buf_is(&out, S_FIRST));
	buf_consume(&out, buf_used(&out));
	assert_int_equal(scram_server_finish(&s, u(C_FINAL), strlen(C_FINAL), &out), MOAT_OK);
	assert_true(buf_is(&out, S_FINAL));
	scram_server_fini(&s);
	buf_fini(&out);
}

static void rfc7677_client(void **state)
{
	struct scram_client c;
	struct buf out = {0};

	(void)state;
	scram_client_init(&c);
	assert_int_equal(scram_client_first_nonce(&c, "user", "rOprNGfwEbeRWgbNEkqO", &out),
			 MOAT_OK);
	assert_true(buf_is(&out, C_FIRST));
	buf_consume(&out, buf_used(&out));
	assert_int_equal(scram_client_final(&c, u(S_FIRST), strlen(S_FIRST), u("pencil"), 6, &out),
			 MOAT_OK);
	assert_true(buf_is(&out, C_FINAL));
	assert_int_equal(scram_client_verify(&c, u(S_FINAL), strlen(S_FINAL)), MOAT_OK);
	scram_client_fini(&c);
	buf_fini(&out);
}

/* Runs a whole random-nonce exchange; returns the server's finish result. */
static int exchange(const char *user, const char *password, int *client_verify)
{
	struct scram_client c;
	struct scram_server s;
	struct buf a = {0}, b = {0};
	int rc;

	scram_client_init(&c);
	scram_server_init(&s);
	assert_int_equal(scram_client_first(&c, user, &a), MOAT_OK);
	assert_int_equal(scram_server_start(&s, buf_head(&a), buf_used(&a), lookup, NULL, &b),
			 MOAT_OK);
	buf_consume(&a, buf_used(&a));
	assert_int_equal(
	    scram_client_final(&c, buf_head(&b), buf_used(&b), u(password), strlen(password), &a),
	    MOAT_OK);
	buf_consume(&b, buf_used(&b));
	rc = scram_server_finish(&s, buf_head(&a), buf_used(&a), &b);
	if (rc == MOAT_OK)
		*client_verify = scram_client_verify(&c, buf_head(&b), buf_used(&b));
	scram_client_fini(&c);
	scram_server_fini(&s);
	buf_fini(&a);
	buf_fini(&b);
	return rc;
}

static void full_exchange(void **state)
{
	int v = 1;

	(void)state;
	assert_int_equal(exchange("user", "pencil", &v), MOAT_OK);
	assert_int_equal(v, MOAT_OK);
	v = 1;
	assert_int_equal(exchange("a,b=c", "pencil", &v), MOAT_OK); /* saslname escapes */
	assert_int_equal(v, MOAT_OK);
}

static void wrong_password_denied(void **state)
{
	int v = 1;

	(void)state;
	assert_int_equal(exchange("user", "pencil2", &v), MOAT_E_DENIED);
	assert_int_equal(exchange("user", "", &v), MOAT_E_DENIED);
	assert_int_equal(v, 1);
}

static void unknown_user_fake_and_stable(void **state)
{
	struct scram_server s;
	struct buf o1 = {0}, o2 = {0};
	const char *m = "n,,n=ghost,r=abcdefgh";
	int v = 1;

	(void)state;
	assert_int_equal(exchange("ghost", "pencil", &v), MOAT_E_DENIED);
	/* the same salt and count for the same name, shaped like a real entry */
	scram_server_init(&s);
	assert_int_equal(scram_server_start_nonce(&s, u(m), strlen(m), "X", lookup, NULL, &o1),
			 MOAT_OK);
	scram_server_fini(&s);
	scram_server_init(&s);
	assert_int_equal(scram_server_start_nonce(&s, u(m), strlen(m), "X", lookup, NULL, &o2),
			 MOAT_OK);
	scram_server_fini(&s);
	assert_int_equal(buf_used(&o1), buf_used(&o2));
	assert_memory_equal(buf_head(&o1), buf_head(&o2), buf_used(&o1));
	assert_int_equal(buf_used(&o1), strlen("r=abcdefghX,s=") + 24 + strlen(",i=4096"));
	assert_memory_equal(buf_head(&o1) + buf_used(&o1) - 7, ",i=4096", 7);
	buf_fini(&o1);
	buf_fini(&o2);
}

/* Starts the RFC exchange on a fresh server and feeds <final>. */
static int finish_with(const char *first, const char *final)
{
	struct scram_server s;
	struct buf out = {0};
	int rc;

	scram_server_init(&s);
	rc = scram_server_start_nonce(&s, u(first), strlen(first), S_NONCE, lookup, NULL, &out);
	if (rc == MOAT_OK)
		rc = scram_server_finish(&s, u(final), strlen(final), &out);
	scram_server_fini(&s);
	buf_fini(&out);
	return rc;
}

static void tampered_proof_denied(void **state)
{
	char bad[] = C_FINAL;

	(void)state;
	bad[strlen(bad) - 3] = bad[strlen(bad) - 3] == 'A' ? 'B' : 'A';
	assert_int_equal(finish_with(C_FIRST, bad), MOAT_E_DENIED);
}

static void wrong_nonce_refused(void **state)
{
	(void)state;
	assert_int_equal(finish_with(C_FIRST,
				     "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k1,"
				     "p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="),
			 MOAT_E_PROTOCOL);
	assert_int_equal(finish_with(C_FIRST, "c=biws,r=rOprNGfwEbeRWgbNEkqO,"
					      "p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="),
			 MOAT_E_PROTOCOL);
	/* c= must repeat the gs2 header: "y,," is eSws */
	assert_int_equal(finish_with(C_FIRST,
				     "c=eSws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)"
				     "hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="),
			 MOAT_E_PROTOCOL);
}

static int start_with(const char *first)
{
	struct scram_server s;
	struct buf out = {0};
	int rc;

	scram_server_init(&s);
	rc = scram_server_start_nonce(&s, u(first), strlen(first), S_NONCE, lookup, NULL, &out);
	assert_true(rc < 0 || s.why == NULL);
	assert_true(rc == MOAT_OK || s.why != NULL);
	scram_server_fini(&s);
	buf_fini(&out);
	return rc;
}

static void channel_binding_refused(void **state)
{
	(void)state;
	assert_int_equal(start_with("p=tls-unique,,n=user,r=abc"), MOAT_E_UNSUPPORTED);
	assert_int_equal(start_with("p=tls-server-end-point,,n=user,r=abc"), MOAT_E_UNSUPPORTED);
	assert_int_equal(start_with("y,,n=user,r=abc"), MOAT_OK);
	assert_int_equal(start_with("n,a=admin,n=user,r=abc"), MOAT_E_UNSUPPORTED);
	assert_int_equal(start_with("n,,m=ext,n=user,r=abc"), MOAT_E_UNSUPPORTED);
}

static void malformed_first_refused(void **state)
{
	static const char *const bad[] = {
	    "",
	    "n",
	    "x,,n=user,r=abc",
	    "n,,r=abc,n=user",
	    "n,,n=,r=abc",
	    "n,,n=us=er,r=abc",
	    "n,,n=us=2Xer,r=abc",
	    "n,,n=user,r=",
	    "n,,n=user,r=a b",
	    "n,,n=user,r=abc,",
	    "n,,n=user,r=abc,1=x",
	    "n,,n=user",
	    "n,,n=us\ter,r=abc",
	};

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(start_with(bad[i]), MOAT_E_MALFORMED);
	assert_int_equal(start_with("n,,n=user,r=abc,x=ext"), MOAT_OK);
	/* every truncation of the client-first-message before the nonce's first character
	 * (a shorter nonce is still a valid message) */
	for (size_t n = 0; n <= strlen("n,,n=user,r="); n++) {
		char t[64];

		memcpy(t, C_FIRST, n);
		t[n] = '\0';
		assert_true(start_with(t) < 0);
	}
}

static void malformed_final_refused(void **state)
{
	(void)state;
	/* every truncation of the client-final-message */
	for (size_t n = 0; n < strlen(C_FINAL); n++) {
		char t[160];

		memcpy(t, C_FINAL, n);
		t[n] = '\0';
		assert_true(finish_with(C_FIRST, t) < 0);
	}
	assert_int_equal(finish_with(C_FIRST, C_FINAL ","), MOAT_E_MALFORMED);
	assert_int_equal(finish_with(C_FIRST, C_FINAL_NP ",p=AAAA"), MOAT_E_MALFORMED);
	assert_int_equal(
	    finish_with(C_FIRST, C_FINAL_NP ",x=1,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="),
	    MOAT_E_DENIED); /* an extension is signed too, so the RFC proof fails */
	assert_int_equal(finish_with(C_FIRST, C_FINAL), MOAT_OK);
}

static void out_of_order_refused(void **state)
{
	struct scram_server s;
	struct scram_client c;
	struct buf out = {0};

	(void)state;
	scram_server_init(&s);
	assert_int_equal(scram_server_finish(&s, u(C_FINAL), strlen(C_FINAL), &out),
			 MOAT_E_PROTOCOL);
	scram_server_fini(&s);
	scram_client_init(&c);
	assert_int_equal(scram_client_final(&c, u(S_FIRST), strlen(S_FIRST), u("pencil"), 6, &out),
			 MOAT_E_PROTOCOL);
	assert_int_equal(scram_client_verify(&c, u(S_FINAL), strlen(S_FINAL)), MOAT_E_PROTOCOL);
	scram_client_fini(&c);
	buf_fini(&out);
}

/* The client's side of a bad server. */
static int client_final_with(const char *server_first)
{
	struct scram_client c;
	struct buf out = {0};
	int rc;

	scram_client_init(&c);
	assert_int_equal(scram_client_first_nonce(&c, "user", "rOprNGfwEbeRWgbNEkqO", &out),
			 MOAT_OK);
	rc = scram_client_final(&c, u(server_first), strlen(server_first), u("pencil"), 6, &out);
	scram_client_fini(&c);
	buf_fini(&out);
	return rc;
}

static void client_checks_server(void **state)
{
	struct scram_client c;
	struct buf out = {0};

	(void)state;
	assert_int_equal(
	    client_final_with("r=rOprNGfwEbeRWgbNEkqO%hvY,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4095"),
	    MOAT_E_DENIED);
	assert_int_equal(
	    client_final_with("r=XOprNGfwEbeRWgbNEkqO%hvY,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096"),
	    MOAT_E_PROTOCOL);
	assert_int_equal(
	    client_final_with("r=rOprNGfwEbeRWgbNEkqO,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096"),
	    MOAT_E_PROTOCOL);
	assert_int_equal(client_final_with("r=rOprNGfwEbeRWgbNEkqO%hvY,s=W22Za,i=4096"),
			 MOAT_E_MALFORMED);
	for (size_t n = 0; n < strlen(S_FIRST); n++) {
		char t[128];

		memcpy(t, S_FIRST, n);
		t[n] = '\0';
		assert_true(client_final_with(t) < 0);
	}
	/* a wrong server signature, and an error reply, are refused */
	scram_client_init(&c);
	assert_int_equal(scram_client_first_nonce(&c, "user", "rOprNGfwEbeRWgbNEkqO", &out),
			 MOAT_OK);
	assert_int_equal(scram_client_final(&c, u(S_FIRST), strlen(S_FIRST), u("pencil"), 6, &out),
			 MOAT_OK);
	assert_int_equal(
	    scram_client_verify(&c, u("v=7rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="), 46),
	    MOAT_E_DENIED);
	scram_client_fini(&c);
	scram_client_init(&c);
	assert_int_equal(scram_client_first_nonce(&c, "user", "rOprNGfwEbeRWgbNEkqO", &out),
			 MOAT_OK);
	assert_int_equal(scram_client_final(&c, u(S_FIRST), strlen(S_FIRST), u("pencil"), 6, &out),
			 MOAT_OK);
	assert_int_equal(scram_client_verify(&c, u("e=invalid-proof"), 15), MOAT_E_DENIED);
	scram_client_fini(&c);
	buf_fini(&out);
}

static void sha1_never_offered(void **state)
{
	const char *why = NULL;

	(void)state;
	assert_int_equal(scram_method_check("SCRAM-SHA-256", &why), MOAT_OK);
	assert_int_equal(scram_method_check("SCRAM-SHA-1", &why), MOAT_E_UNSUPPORTED);
	assert_non_null(strstr(why, "use SCRAM-SHA-256"));
	assert_int_equal(scram_method_check("PLAIN", &why), MOAT_E_UNSUPPORTED);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(rfc7677_server),
	    cmocka_unit_test(rfc7677_client),
	    cmocka_unit_test(full_exchange),
	    cmocka_unit_test(wrong_password_denied),
	    cmocka_unit_test(unknown_user_fake_and_stable),
	    cmocka_unit_test(tampered_proof_denied),
	    cmocka_unit_test(wrong_nonce_refused),
	    cmocka_unit_test(channel_binding_refused),
	    cmocka_unit_test(malformed_first_refused),
	    cmocka_unit_test(malformed_final_refused),
	    cmocka_unit_test(out_of_order_refused),
	    cmocka_unit_test(client_checks_server),
	    cmocka_unit_test(sha1_never_offered),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
