/*
 * Unit tests for src/sc/signer_pkcs11.c against softhsm2 tokens made in a
 * temporary directory (softhsm.h). Skipped, with a message, when softhsm2
 * or OpenSC's pkcs11-tool is not installed. Signatures are checked with
 * OpenSSL from the exported public key alone; the CA certificate made with
 * the token key verifies; PIN and URI refusals say why.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <openssl/pem.h>
#include <openssl/x509.h>

#include <time.h>

#include <moat/error.h>

#include "sc/ca.h"
#include "sc/signer_pkcs11.h"
#include "softhsm.h"

/* softhsm2 2.6.1 leaks one ASN.1 string per EdDSA C_SignInit (inside the
 * module, in its d2i of the key's curve): not ours to fix. The slow unwinder
 * sees through libcrypto (no frame pointers) to the module. */
const char *__asan_default_options(void);
const char *__asan_default_options(void)
{
	return "fast_unwind_on_malloc=0";
}

const char *__lsan_default_suppressions(void);
const char *__lsan_default_suppressions(void)
{
	return "leak:libsofthsm2.so\n";
}

static const char CA_URI[] = "pkcs11:token=moat-ca;object=ca";
static const char TOKEN_URI[] = "pkcs11:token=moat-tok;object=token";

#define NEED_SOFTHSM()                                                                             \
	do {                                                                                       \
		if (hsm_module == NULL) {                                                          \
			print_message(                                                             \
			    "softhsm2 or pkcs11-tool not installed: skipped "                      \
			    "(apt-get install softhsm2 opensc libengine-pkcs11-openssl)\n");       \
			skip();                                                                    \
		}                                                                                  \
	} while (0)

static struct signer *open_key(const char *uri, enum signer_algo algo)
{
	struct signer_pkcs11_opts o = {
	    .module = hsm_module, .uri = uri, .pin_file = hsm_path("pin")};
	struct moat_diag d = {""};
	struct signer *s = NULL;
	int rc = signer_pkcs11_open(&s, &o, algo, &d);

	if (rc != MOAT_OK)
		fail_msg("%s: %s (%d)", uri, d.msg, rc);
	assert_string_equal(s->ops->name, "pkcs11");
	assert_int_equal(s->algo, algo);
	return s;
}

/* The signer's public key as OpenSSL reads it from PEM: no token involved. */
static EVP_PKEY *public_only(struct signer *s)
{
	char *pem = signer_public_pem(s);
	BIO *bio;
	EVP_PKEY *k;

	assert_non_null(pem);
	bio = BIO_new_mem_buf(pem, -1);
	k = PEM_read_bio_PUBKEY(bio, NULL, NULL, NULL);
	BIO_free(bio);
	free(pem);
	assert_non_null(k);
	return k;
}

static bool verifies(EVP_PKEY *pub, bool ed25519, const char *msg, const uint8_t *sig, size_t n)
{
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	bool ok = EVP_DigestVerifyInit(ctx, NULL, ed25519 ? NULL : EVP_sha256(), NULL, pub) == 1 &&
		  EVP_DigestVerify(ctx, sig, n, (const uint8_t *)msg, strlen(msg)) == 1;

	EVP_MD_CTX_free(ctx);
	return ok;
}

static void sign_and_verify(enum signer_algo algo, const char *uri)
{
	struct signer *s;
	uint8_t sig[SIGNER_SIG_MAX];
	size_t n = 0;
	EVP_PKEY *pub;
	bool ed = algo == SIGNER_ED25519;

	s = open_key(uri, algo);
	pub = public_only(s);
	assert_true(signer_key_is(pub, algo));
	assert_int_equal(signer_sign(s, (const uint8_t *)"hello token", 11, sig, &n), MOAT_OK);
	if (ed)
		assert_int_equal(n, 64);
	assert_true(verifies(pub, ed, "hello token", sig, n));
	assert_false(verifies(pub, ed, "hello tokeN", sig, n));
	sig[n / 2] ^= 1;
	assert_false(verifies(pub, ed, "hello token", sig, n));
	/* a second signature from the same session */
	assert_int_equal(signer_sign(s, (const uint8_t *)"", 0, sig, &n), MOAT_OK);
	assert_true(verifies(pub, ed, "", sig, n));
	EVP_PKEY_free(pub);
	signer_destroy(s);
}

static void ed25519_signs_in_the_token(void **state)
{
	(void)state;
	NEED_SOFTHSM();
	sign_and_verify(SIGNER_ED25519, TOKEN_URI);
	/* by id as well */
	sign_and_verify(SIGNER_ED25519, "pkcs11:token=moat-tok;id=%02");
}

static void ecdsa_signs_through_the_engine(void **state)
{
	(void)state;
	NEED_SOFTHSM();
	sign_and_verify(SIGNER_ECDSA_P256, CA_URI);
}

static void ca_certificate_signed_by_the_token_verifies(void **state)
{
	struct signer *ca_key, *tok;
	struct moat_diag d = {""};
	struct ca *ca = NULL;
	EVP_PKEY *pub;

	(void)state;
	NEED_SOFTHSM();
	/* both keys open at once, as in the Security Center */
	tok = open_key(TOKEN_URI, SIGNER_ED25519);
	ca_key = open_key(CA_URI, SIGNER_ECDSA_P256);
	if (ca_create(&ca, ca_key, "hsm", 0, (int64_t)time(NULL), &d) != MOAT_OK)
		fail_msg("ca_create: %s", d.msg);
	pub = public_only(ca_key);
	assert_int_equal(X509_verify(ca_cert(ca), pub), 1);
	EVP_PKEY_free(pub);
	ca_destroy(ca);
	/* the CA key goes first: the Ed25519 key keeps working */
	signer_destroy(ca_key);
	sign_and_verify(SIGNER_ED25519, TOKEN_URI);
	signer_destroy(tok);
}

/* Opening <uri> as <algo> with <pin_file> fails with <rc> and <want>. */
static void refused(const char *uri, enum signer_algo algo, const char *pin_file, int rc,
		    const char *want)
{
	struct signer_pkcs11_opts o = {.module = hsm_module, .uri = uri, .pin_file = pin_file};
	struct moat_diag d = {""};
	struct signer *s = NULL;

	assert_int_equal(signer_pkcs11_open(&s, &o, algo, &d), rc);
	assert_null(s);
	if (strstr(d.msg, want) == NULL)
		fail_msg("%s: \"%s\" does not say \"%s\"", uri, d.msg, want);
}

static void refusals_say_why(void **state)
{
	FILE *f;

	(void)state;
	NEED_SOFTHSM();
	f = fopen(hsm_path("badpin"), "w");
	assert_non_null(f);
	fputs("000000\n", f);
	fclose(f);
	assert_int_equal(chmod(hsm_path("badpin"), 0640), 0);
	refused(TOKEN_URI, SIGNER_ED25519, hsm_path("badpin"), MOAT_E_DENIED, "chmod 600");
	assert_int_equal(chmod(hsm_path("badpin"), 0600), 0);
	refused(TOKEN_URI, SIGNER_ED25519, hsm_path("badpin"), MOAT_E_DENIED, "wrong PIN");
	refused(TOKEN_URI, SIGNER_ED25519, NULL, MOAT_E_DENIED, "MOAT_SC_PIN");
	refused("pkcs11:token=nope;object=token", SIGNER_ED25519, hsm_path("pin"), MOAT_E_NOTFOUND,
		"no token labelled \"nope\"");
	refused("pkcs11:token=moat-tok;object=ca", SIGNER_ED25519, hsm_path("pin"), MOAT_E_NOTFOUND,
		"no Ed25519 private key \"ca\"");
	/* the P-256 key is not an Ed25519 key */
	refused("pkcs11:token=moat-ca;object=ca", SIGNER_ED25519, hsm_path("pin"), MOAT_E_NOTFOUND,
		"no Ed25519 private key");
	refused("pkcs11:token=moat-ca;object=nope", SIGNER_ECDSA_P256, hsm_path("pin"),
		MOAT_E_NOTFOUND, "no usable private key");
	refused("pkcs11:token=moat-ca;object=ca?pin-value=123456", SIGNER_ECDSA_P256, NULL,
		MOAT_E_DENIED, "0600 file");
	/* the PIN from the environment */
	setenv("MOAT_SC_PIN", "123456", 1);
	{
		struct signer_pkcs11_opts o = {.module = hsm_module, .uri = TOKEN_URI};
		struct signer *s = NULL;

		assert_int_equal(signer_pkcs11_open(&s, &o, SIGNER_ED25519, NULL), MOAT_OK);
		signer_destroy(s);
	}
	unsetenv("MOAT_SC_PIN");
}

static int setup(void **state)
{
	(void)state;
	return hsm_setup();
}

static int teardown(void **state)
{
	(void)state;
	hsm_teardown();
	return 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(ed25519_signs_in_the_token),
	    cmocka_unit_test(ecdsa_signs_through_the_engine),
	    cmocka_unit_test(ca_certificate_signed_by_the_token_verifies),
	    cmocka_unit_test(refusals_say_why),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
