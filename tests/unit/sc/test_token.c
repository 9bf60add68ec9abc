/* Tokens: an issued token verifies with the broker's verifier (src/auth
 * jwt.c) against token.pub under the SC's kid, with iss/aud checked, and
 * carries sub, client_id, roles (from "role"), attrs and cnf x5t#S256 =
 * SHA-256 of the newest certificate's DER; it is refused once expired and
 * under another kid; revoked things, things without a certificate and
 * lifetimes outside 5..60 minutes get no token. A version 2 registry is
 * migrated to 3: its certificates have no thumbprint (no token), new ones do. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>
#include <openssl/evp.h>
#include <sqlite3.h>

#include <moat/error.h>

#include "auth/jwt.h"
#include "base/base64.h"
#include "sc/ca.h"
#include "sc/token.h"
#include "sc_fixture.h"

struct fx {
	struct sc_fixture sc;
	char path[160], pub_path[160];
	int64_t now;
	struct moat_diag d;
	char x5t[48]; /* base64url thumbprint of the last issued certificate */
};

static void issue_cert(struct fx *f, const char *name)
{
	struct ca_issue_req req = {.thing = name, .profile = REG_CERT_DEVICE};
	EVP_PKEY *key = NULL;
	char *csr = NULL;
	uint8_t md[32];
	unsigned n = 0;
	X509 *x = NULL;

	assert_int_equal(ca_make_key_csr(name, &key, &csr, &f->d), MOAT_OK);
	assert_int_equal(
	    ca_issue(f->sc.ca, f->sc.reg, "test", csr, strlen(csr), &req, f->now, &x, &f->d),
	    MOAT_OK);
	assert_int_equal(X509_digest(x, EVP_sha256(), md, &n), 1);
	b64_encode(md, n, f->x5t, B64_URL);
	X509_free(x);
	EVP_PKEY_free(key);
	free(csr);
}

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	struct reg_attr attrs[2] = {{"role", "sensor,display"}, {"site", "plant-7"}};
	char *pub;
	FILE *fp;

	assert_int_equal(sc_fixture_open(&f->sc, "sc-token"), 0);
	f->now = (int64_t)time(NULL);
	snprintf(f->pub_path, sizeof(f->pub_path), "%s/token.pub", f->sc.dir);
	pub = signer_public_pem(f->sc.tok);
	fp = fopen(f->pub_path, "w");
	assert_non_null(fp);
	fputs(pub, fp);
	fclose(fp);
	free(pub);
	assert_int_equal(reg_thing_create(f->sc.reg, "test", "dev-1", attrs, 2, NULL, &f->d),
			 MOAT_OK);
	assert_int_equal(reg_thing_create(f->sc.reg, "test", "bare", NULL, 0, NULL, &f->d),
			 MOAT_OK);
	issue_cert(f, "dev-1");
	issue_cert(f, "dev-1"); /* the token binds the newer one */
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;

	sc_fixture_close(&f->sc);
	free(f);
	return 0;
}

/* Verifies <token> as moatd would, at <at>, with the key under <kid>. */
static int verify(struct fx *f, const char *token, const char *kid, int64_t at,
		  struct jwt_claims *c)
{
	struct jwt_key_spec spec = {.path = f->pub_path, .kid = kid};
	struct jwt_expect e;
	struct jwt_keys *ks = NULL;
	char why[256];
	int rc;

	assert_int_equal(jwt_keys_load(&ks, &spec, 1, why, sizeof(why)), MOAT_OK);
	jwt_expect_init(&e);
	e.issuer = "sc-test";
	e.audience = "broker-1";
	rc = jwt_verify(ks, token, strlen(token), &e, at, c, why, sizeof(why));
	jwt_keys_unref(ks);
	return rc;
}

static void test_token_verifies_with_the_broker_verifier(void **state)
{
	struct fx *f = *state;
	struct sc_token_req req = {.issuer = "sc-test", .audience = "broker-1", .now_s = f->now};
	struct sc_token_info info;
	struct jwt_claims c = {0};
	char *token = NULL;

	assert_int_equal(sc_token_issue(f->sc.reg, f->sc.tok, "dev-1", &req, &token, &info, &f->d),
			 MOAT_OK);
	assert_int_equal(info.exp, f->now + SC_TOKEN_TTL_DEFAULT_S);
	assert_int_equal(strlen(info.jti), SC_TOKEN_JTI_LEN);
	assert_int_equal(verify(f, token, info.kid, f->now, &c), MOAT_OK);
	assert_string_equal(c.sub, "dev-1");
	assert_string_equal(c.client_id, "dev-1");
	assert_string_equal(c.iss, "sc-test");
	assert_string_equal(c.jti, info.jti);
	assert_int_equal(c.exp, info.exp);
	assert_int_equal(c.nbf, f->now);
	assert_string_equal(c.cnf_x5t_s256, f->x5t);
	assert_int_equal(c.roles_count, 2);
	assert_string_equal(c.roles[0], "sensor");
	assert_string_equal(c.roles[1], "display");
	assert_int_equal(c.attrs_count, 2);
	assert_string_equal(c.attrs[1].key, "site");
	assert_string_equal(c.attrs[1].value, "plant-7");
	jwt_claims_fini(&c);
	/* expired (beyond the 30 s leeway), another kid: refused */
	assert_int_equal(verify(f, token, info.kid, info.exp + 31, &c), MOAT_E_DENIED);
	assert_int_equal(verify(f, token, "other", f->now, &c), MOAT_E_DENIED);
	free(token);
}

static void test_kid_is_the_jwk_thumbprint(void **state)
{
	struct fx *f = *state;
	char kid[SC_TOKEN_KID_LEN + 1], again[SC_TOKEN_KID_LEN + 1];

	assert_int_equal(sc_token_kid(f->sc.tok, kid, &f->d), MOAT_OK);
	assert_int_equal(strlen(kid), SC_TOKEN_KID_LEN);
	assert_int_equal(sc_token_kid(f->sc.tok, again, &f->d), MOAT_OK);
	assert_string_equal(kid, again);
	assert_int_equal(sc_token_kid(f->sc.ca_key, kid, &f->d), MOAT_E_INVAL);
}

static void test_ttl_bounds(void **state)
{
	struct fx *f = *state;
	struct sc_token_req req = {.now_s = f->now, .ttl_s = 299};
	struct sc_token_info info;
	struct jwt_claims c = {0};
	char *token = NULL;

	assert_int_equal(sc_token_issue(f->sc.reg, f->sc.tok, "dev-1", &req, &token, &info, &f->d),
			 MOAT_E_INVAL);
	assert_null(token);
	assert_non_null(strstr(f->d.msg, "5 to 60 minutes"));
	req.ttl_s = 3601;
	assert_int_equal(sc_token_issue(f->sc.reg, f->sc.tok, "dev-1", &req, &token, &info, &f->d),
			 MOAT_E_INVAL);
	req.ttl_s = 3600;
	req.issuer = "sc-test";
	req.audience = "broker-1";
	assert_int_equal(sc_token_issue(f->sc.reg, f->sc.tok, "dev-1", &req, &token, &info, &f->d),
			 MOAT_OK);
	assert_int_equal(verify(f, token, info.kid, f->now + 3600 - 1, &c), MOAT_OK);
	jwt_claims_fini(&c);
	free(token);
}

static void test_no_token_without_valid_certificate_or_when_revoked(void **state)
{
	struct fx *f = *state;
	struct sc_token_req req = {.now_s = f->now};
	struct sc_token_info info;
	char *token = NULL;

	assert_int_equal(sc_token_issue(f->sc.reg, f->sc.tok, "bare", &req, &token, &info, &f->d),
			 MOAT_E_DENIED);
	assert_non_null(strstr(f->d.msg, "no valid certificate"));
	assert_int_equal(sc_token_issue(f->sc.reg, f->sc.tok, "nobody", &req, &token, &info, &f->d),
			 MOAT_E_NOTFOUND);
	/* every certificate expired: none to bind to */
	req.now_s = f->now + 31 * 86400;
	assert_int_equal(sc_token_issue(f->sc.reg, f->sc.tok, "dev-1", &req, &token, &info, &f->d),
			 MOAT_E_DENIED);
	req.now_s = f->now;
	assert_int_equal(reg_thing_revoke(f->sc.reg, "test", "dev-1", 1, &f->d), MOAT_OK);
	assert_int_equal(sc_token_issue(f->sc.reg, f->sc.tok, "dev-1", &req, &token, &info, &f->d),
			 MOAT_E_DENIED);
	assert_non_null(strstr(f->d.msg, "revoked"));
	assert_null(token);
}

static void test_migration_from_version_2(void **state)
{
	struct fx *f = *state;
	struct sc_token_req req = {.now_s = f->now};
	struct sc_token_info info;
	char *token = NULL;
	sqlite3 *db;

	/* make the database a version 2 one: no thumbprint column */
	reg_close(f->sc.reg);
	f->sc.reg = NULL;
	snprintf(f->path, sizeof(f->path), "%s/registry.db", f->sc.dir);
	assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db,
				      "ALTER TABLE certs DROP COLUMN x5t_s256;"
				      "UPDATE schema_version SET version = 2;",
				      NULL, NULL, NULL),
			 SQLITE_OK);
	sqlite3_close(db);
	assert_int_equal(reg_open(&f->sc.reg, f->path, &f->d), MOAT_OK);
	assert_int_equal(sc_token_issue(f->sc.reg, f->sc.tok, "dev-1", &req, &token, &info, &f->d),
			 MOAT_E_DENIED);
	issue_cert(f, "dev-1");
	assert_int_equal(sc_token_issue(f->sc.reg, f->sc.tok, "dev-1", &req, &token, &info, &f->d),
			 MOAT_OK);
	free(token);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_token_verifies_with_the_broker_verifier, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(test_kid_is_the_jwk_thumbprint, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_ttl_bounds, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_no_token_without_valid_certificate_or_when_revoked,
					    setup, teardown),
	    cmocka_unit_test_setup_teardown(test_migration_from_version_2, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
