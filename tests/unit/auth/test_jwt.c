/* JWT verification against tokens made by python3-jwt (make_jwt_fixtures.py):
 * each fixture's result and reason, the claims copied out, the leeway
 * boundaries with an injected clock, and key-file loading errors. */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <moat/error.h>

#include "auth/jwt.h"

#define DATA MOAT_JWT_DATA "/"
#define NOW INT64_C(1800000000) /* 2027-01-15 */

static struct jwt_keys *keys;

static char *slurp(const char *name, size_t *len)
{
	char path[512];
	FILE *f;
	char *buf = malloc(JWT_TOKEN_MAX + 2);

	snprintf(path, sizeof(path), DATA "%s", name);
	f = fopen(path, "rb");
	assert_non_null(f);
	assert_non_null(buf);
	*len = fread(buf, 1, JWT_TOKEN_MAX + 1, f);
	fclose(f);
	buf[*len] = '\0';
	return buf;
}

static int setup(void **state)
{
	const struct jwt_key_spec specs[] = {
	    {DATA "ed25519.pub.pem", "ed1"},
	    {DATA "p256.pub.pem", "ec1"},
	    {DATA "rsa2048.pub.pem", "rsa1"},
	};
	char why[256];

	(void)state;
	return jwt_keys_load(&keys, specs, 3, why, sizeof(why));
}

static int teardown(void **state)
{
	(void)state;
	jwt_keys_unref(keys);
	return 0;
}

static void expect_std(struct jwt_expect *e)
{
	jwt_expect_init(e);
	e->issuer = "https://sc.example";
	e->audience = "moat-broker";
}

/* Verifies fixture <name> at <now>; returns the result, the reason in <why>. */
static int verify_at(const char *name, int64_t now, struct jwt_claims *c, char *why, size_t wl)
{
	struct jwt_expect e;
	size_t len;
	char *tok = slurp(name, &len);
	int rc;

	expect_std(&e);
	rc = jwt_verify(keys, tok, len, &e, now, c, why, wl);
	/* the reason never quotes the token */
	assert_null(strstr(why, tok));
	assert_true(len < 20 || strstr(why, "eyJ") == NULL);
	free(tok);
	return rc;
}

static void check(const char *name, int want, const char *why_part)
{
	struct jwt_claims c;
	char why[256];
	int rc = verify_at(name, NOW, &c, why, sizeof(why));

	if (rc != want || strstr(why, why_part) == NULL)
		fail_msg("%s: got %d \"%s\", want %d \"...%s...\"", name, rc, why, want, why_part);
	if (rc != MOAT_OK) {
		assert_null(c.username);
		assert_null(c.roles);
	}
	jwt_claims_fini(&c);
}

static void good_tokens_verify(void **state)
{
	(void)state;
	check("good_eddsa.jwt", MOAT_OK, "");
	check("good_es256.jwt", MOAT_OK, "");
	check("good_rs256.jwt", MOAT_OK, "");
	check("good_nokid.jwt", MOAT_OK, "");
	check("good_at_jwt.jwt", MOAT_OK, "");
}

static void claims_are_copied(void **state)
{
	struct jwt_claims c;
	char why[256];

	(void)state;
	assert_int_equal(verify_at("good_es256.jwt", NOW, &c, why, sizeof(why)), MOAT_OK);
	assert_string_equal(c.sub, "dev-42");
	assert_string_equal(c.username, "alice");
	assert_string_equal(c.client_id, "dev-42");
	assert_string_equal(c.iss, "https://sc.example");
	assert_string_equal(c.jti, "t-1");
	assert_string_equal(c.cnf_x5t_s256, "bwcK0esc3ACC3DB2Y5_lESsXE8o9ltc05O89jdN-dg2");
	assert_int_equal(c.exp, 4102444800);
	assert_int_equal(c.iat, 1700000000);
	assert_int_equal(c.nbf, 0);
	assert_int_equal(c.roles_count, 2);
	assert_string_equal(c.roles[0], "sensor");
	assert_string_equal(c.roles[1], "reader");
	assert_int_equal(c.attrs_count, 3);
	assert_string_equal(c.attrs[0].key, "site");
	assert_string_equal(c.attrs[0].value, "plant-1");
	assert_string_equal(c.attrs[1].key, "floor");
	assert_string_equal(c.attrs[1].value, "3");
	assert_string_equal(c.attrs[2].key, "admin");
	assert_string_equal(c.attrs[2].value, "false");
	jwt_claims_fini(&c);
	assert_null(c.sub);
	jwt_claims_fini(&c);
	jwt_claims_fini(NULL);
}

static void username_falls_back_to_sub(void **state)
{
	struct jwt_claims c;
	struct jwt_expect e;
	char why[256];
	size_t len;
	char *tok;

	(void)state;
	assert_int_equal(verify_at("good_nokid.jwt", NOW, &c, why, sizeof(why)), MOAT_OK);
	assert_string_equal(c.username, "dev-42");
	assert_int_equal(c.roles_count, 0);
	assert_int_equal(c.attrs_count, 0);
	jwt_claims_fini(&c);

	/* a configured claim name replaces "username" */
	tok = slurp("good_eddsa.jwt", &len);
	expect_std(&e);
	e.username_claim = "client_id";
	assert_int_equal(jwt_verify(keys, tok, len, &e, NOW, &c, why, sizeof(why)), MOAT_OK);
	assert_string_equal(c.username, "dev-42");
	jwt_claims_fini(&c);
	/* no issuer/audience configured: not checked */
	assert_int_equal(jwt_verify(keys, tok, len, NULL, NOW, &c, why, sizeof(why)), MOAT_OK);
	assert_string_equal(c.username, "alice");
	jwt_claims_fini(&c);
	free(tok);
}

static void bad_claims_denied(void **state)
{
	(void)state;
	check("expired.jwt", MOAT_E_DENIED, "expired");
	check("nbf_future.jwt", MOAT_E_DENIED, "nbf");
	check("wrong_aud.jwt", MOAT_E_DENIED, "aud");
	check("wrong_iss.jwt", MOAT_E_DENIED, "iss");
	check("no_exp.jwt", MOAT_E_DENIED, "no exp");
	check("exp_string.jwt", MOAT_E_MALFORMED, "exp");
	check("roles_too_many.jwt", MOAT_E_MALFORMED, "roles");
	check("role_too_long.jwt", MOAT_E_MALFORMED, "roles");
	check("attrs_nested.jwt", MOAT_E_MALFORMED, "attrs");
	check("nul_username.jwt", MOAT_E_MALFORMED, "claims");
	check("dup_claims.jwt", MOAT_E_MALFORMED, "unique names");
}

static void signatures_checked(void **state)
{
	(void)state;
	check("wrong_key.jwt", MOAT_E_DENIED, "signature does not verify");
	check("tampered_payload.jwt", MOAT_E_DENIED, "signature does not verify");
	check("tampered_sig.jwt", MOAT_E_DENIED, "signature does not verify");
	check("es256_der.jwt", MOAT_E_DENIED, "raw r||s");
	check("kid_unknown.jwt", MOAT_E_DENIED, "kid \"ed9\" names no configured key");
}

static void algorithm_confusion_refused(void **state)
{
	(void)state;
	check("alg_none.jwt", MOAT_E_UNSUPPORTED,
	      "alg none is never accepted; sign with EdDSA, ES256 or RS256");
	check("alg_None.jwt", MOAT_E_UNSUPPORTED, "alg none is never accepted");
	check("hs256_pubkey.jwt", MOAT_E_UNSUPPORTED, "HS* (shared-secret HMAC) is never accepted");
	check("rs_with_ec_kid.jwt", MOAT_E_UNSUPPORTED, "alg RS256 does not match key \"ec1\"");
	check("es384.jwt", MOAT_E_UNSUPPORTED, "alg \"ES384\" is not accepted");
	check("crit.jwt", MOAT_E_UNSUPPORTED, "\"crit\" is refused");
	check("jku.jwt", MOAT_E_UNSUPPORTED, "\"jku\" is refused");
	check("typ_bad.jwt", MOAT_E_UNSUPPORTED, "typ");
	check("dup_header.jwt", MOAT_E_MALFORMED, "header");
}

static void encoding_refused(void **state)
{
	static const char *const bad[] = {
	    "",
	    "a.b",
	    "a.b.c.d",
	    "..",
	    "e30.e30.",
	    "e30.e30",
	    "e30..AA",
	    "eyJhbGciOiJFZERTQSJ9.e30.AA=",
	    "eyJhbGciOiJFZERTQSJ9 .e30.AA",
	    /* header "[1]" and "{" */
	    "WzFd.e30.AA",
	    "ew.e30.AA",
	};
	struct jwt_claims c;
	char why[256];
	char *big;

	(void)state;
	check("bad_b64.jwt", MOAT_E_MALFORMED, "base64url");
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		int rc = jwt_verify(keys, bad[i], strlen(bad[i]), NULL, NOW, &c, why, sizeof(why));

		if (rc != MOAT_E_MALFORMED)
			fail_msg("\"%s\": got %d \"%s\"", bad[i], rc, why);
	}
	/* one byte over the limit, made of a good token padded inside the signature part */
	big = malloc(JWT_TOKEN_MAX + 1);
	assert_non_null(big);
	memset(big, 'A', JWT_TOKEN_MAX + 1);
	memcpy(big, "e30.e30.", 8);
	assert_int_equal(jwt_verify(keys, big, JWT_TOKEN_MAX + 1, NULL, NOW, &c, why, sizeof(why)),
			 MOAT_E_MALFORMED);
	assert_non_null(strstr(why, "8192"));
	free(big);
	/* why may be NULL */
	assert_int_equal(jwt_verify(keys, "x", 1, NULL, NOW, &c, NULL, 0), MOAT_E_MALFORMED);
}

static void leeway_boundaries(void **state)
{
	struct jwt_claims c;
	struct jwt_expect e;
	char why[256];
	size_t len;
	char *exp_tok = slurp("exp_2e9.jwt", &len);
	size_t nlen;
	char *nbf_tok = slurp("nbf_2e9.jwt", &nlen);
	const int64_t t = 2000000000;

	(void)state;
	expect_std(&e);
	/* default 30 s: valid until exp + 29, from nbf - 30 */
	assert_int_equal(jwt_verify(keys, exp_tok, len, &e, t + 29, &c, why, sizeof(why)), MOAT_OK);
	jwt_claims_fini(&c);
	assert_int_equal(jwt_verify(keys, exp_tok, len, &e, t + 30, &c, why, sizeof(why)),
			 MOAT_E_DENIED);
	assert_int_equal(jwt_verify(keys, nbf_tok, nlen, &e, t - 30, &c, why, sizeof(why)),
			 MOAT_OK);
	jwt_claims_fini(&c);
	assert_int_equal(jwt_verify(keys, nbf_tok, nlen, &e, t - 31, &c, why, sizeof(why)),
			 MOAT_E_DENIED);
	/* no leeway: exp is the first invalid second, nbf the first valid one */
	e.leeway_s = 0;
	assert_int_equal(jwt_verify(keys, exp_tok, len, &e, t - 1, &c, why, sizeof(why)), MOAT_OK);
	jwt_claims_fini(&c);
	assert_int_equal(jwt_verify(keys, exp_tok, len, &e, t, &c, why, sizeof(why)),
			 MOAT_E_DENIED);
	assert_int_equal(jwt_verify(keys, nbf_tok, nlen, &e, t, &c, why, sizeof(why)), MOAT_OK);
	jwt_claims_fini(&c);
	assert_int_equal(jwt_verify(keys, nbf_tok, nlen, &e, t - 1, &c, why, sizeof(why)),
			 MOAT_E_DENIED);
	/* iat 1700000000 in the future */
	assert_int_equal(jwt_verify(keys, exp_tok, len, &e, 1699999999, &c, why, sizeof(why)),
			 MOAT_E_DENIED);
	assert_non_null(strstr(why, "iat"));
	/* outside the contract */
	e.leeway_s = JWT_LEEWAY_MAX_S + 1;
	assert_int_equal(jwt_verify(keys, exp_tok, len, &e, t, &c, why, sizeof(why)), MOAT_E_INVAL);
	e.leeway_s = -1;
	assert_int_equal(jwt_verify(keys, exp_tok, len, &e, t, &c, why, sizeof(why)), MOAT_E_INVAL);
	assert_int_equal(jwt_verify(keys, exp_tok, len, NULL, -5, &c, why, sizeof(why)),
			 MOAT_E_INVAL);
	free(exp_tok);
	free(nbf_tok);
}

static void load_one(const char *file, const char *kid, int want, const char *why_part)
{
	struct jwt_key_spec spec = {file, kid};
	struct jwt_keys *ks = NULL;
	char why[256] = "";
	int rc = jwt_keys_load(&ks, &spec, 1, why, sizeof(why));

	if (rc != want || strstr(why, why_part) == NULL)
		fail_msg("%s: got %d \"%s\", want %d \"...%s...\"", file, rc, why, want, why_part);
	if (rc == MOAT_OK)
		assert_int_equal(jwt_keys_count(ks), 1);
	jwt_keys_unref(ks);
}

static void key_loading_errors(void **state)
{
	const struct jwt_key_spec dup[] = {
	    {DATA "ed25519.pub.pem", "k"},
	    {DATA "p256.pub.pem", "k"},
	};
	struct jwt_keys *ks = NULL;
	char why[256];

	(void)state;
	load_one(DATA "ed25519.pub.pem", NULL, MOAT_OK, "");
	load_one(DATA "rsa1024.pub.pem", "r", MOAT_E_CONFIG,
		 "rsa1024.pub.pem: RSA key of 1024 bits");
	load_one(DATA "p384.pub.pem", "p", MOAT_E_CONFIG,
		 "p384.pub.pem: EC curve secp384r1 is not accepted; use P-256 (ES256) or Ed25519");
	load_one(DATA "p256.private.pem", "p", MOAT_E_CONFIG, "holds a private key");
	load_one(DATA "garbage.pem", "g", MOAT_E_CONFIG, "garbage.pem: no PEM public key");
	load_one(DATA "good_eddsa.jwt", "g", MOAT_E_CONFIG, "no PEM public key");
	load_one(DATA "missing.pem", "m", MOAT_E_IO, "missing.pem: cannot open");
	load_one(DATA "ed25519.pub.pem", "", MOAT_E_CONFIG, "kid must be");
	assert_int_equal(jwt_keys_load(&ks, dup, 2, why, sizeof(why)), MOAT_E_CONFIG);
	assert_non_null(strstr(why, "kid \"k\" is already used"));
	assert_null(ks);
}

static void reload_swaps_sets(void **state)
{
	const struct jwt_key_spec only_ec = {DATA "p256.pub.pem", "ec1"};
	struct jwt_keys *old = jwt_keys_ref(keys), *fresh = NULL;
	struct jwt_claims c;
	char why[256];
	size_t len;
	char *tok = slurp("good_eddsa.jwt", &len);

	(void)state;
	assert_int_equal(jwt_keys_load(&fresh, &only_ec, 1, why, sizeof(why)), MOAT_OK);
	/* the old set stays usable by whoever holds a reference */
	assert_int_equal(jwt_verify(old, tok, len, NULL, NOW, &c, why, sizeof(why)), MOAT_OK);
	jwt_claims_fini(&c);
	assert_int_equal(jwt_verify(fresh, tok, len, NULL, NOW, &c, why, sizeof(why)),
			 MOAT_E_DENIED);
	free(tok);
	/* no kid and no key of the token's alg */
	tok = slurp("good_nokid.jwt", &len);
	assert_int_equal(jwt_verify(fresh, tok, len, NULL, NOW, &c, why, sizeof(why)),
			 MOAT_E_UNSUPPORTED);
	assert_non_null(strstr(why, "no configured key verifies alg EdDSA"));
	jwt_keys_unref(old);
	jwt_keys_unref(fresh);
	free(tok);
}

struct worker {
	const char *name;
	int ok;
};

static void *verify_loop(void *arg)
{
	struct worker *w = arg;
	struct jwt_claims c;
	char why[256];
	size_t len;
	char *tok = slurp(w->name, &len);
	/* each thread holds its own reference, as the broker would across a reload */
	struct jwt_keys *ks = jwt_keys_ref(keys);

	for (int i = 0; i < 200; i++) {
		if (jwt_verify(ks, tok, len, NULL, NOW, &c, why, sizeof(why)) == MOAT_OK &&
		    strcmp(c.username, "alice") == 0)
			w->ok++;
		jwt_claims_fini(&c);
	}
	jwt_keys_unref(ks);
	free(tok);
	return NULL;
}

static void concurrent_verifies_share_keys(void **state)
{
	struct worker w[4] = {
	    {"good_eddsa.jwt", 0},
	    {"good_es256.jwt", 0},
	    {"good_rs256.jwt", 0},
	    {"good_eddsa.jwt", 0},
	};
	pthread_t t[4];

	(void)state;
	for (int i = 0; i < 4; i++)
		assert_int_equal(pthread_create(&t[i], NULL, verify_loop, &w[i]), 0);
	for (int i = 0; i < 4; i++) {
		assert_int_equal(pthread_join(t[i], NULL), 0);
		assert_int_equal(w[i].ok, 200);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(good_tokens_verify),
	    cmocka_unit_test(claims_are_copied),
	    cmocka_unit_test(username_falls_back_to_sub),
	    cmocka_unit_test(bad_claims_denied),
	    cmocka_unit_test(signatures_checked),
	    cmocka_unit_test(algorithm_confusion_refused),
	    cmocka_unit_test(encoding_refused),
	    cmocka_unit_test(leeway_boundaries),
	    cmocka_unit_test(key_loading_errors),
	    cmocka_unit_test(reload_swaps_sets),
	    cmocka_unit_test(concurrent_verifies_share_keys),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
