/* File signer: keys created 0600 with O_EXCL (never overwriting), keys that
 * group or others can read refused, wrong algorithm and encrypted keys
 * refused, and signatures that verify with OpenSSL. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <openssl/pem.h>

#include <moat/error.h>

#include "sc/signer.h"

struct fx {
	char dir[64];
	char path[128];
	struct moat_diag d;
};

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));

	snprintf(f->dir, sizeof(f->dir), "/tmp/moat-sc-signer-XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	snprintf(f->path, sizeof(f->path), "%s/key.pem", f->dir);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;
	char cmd[160];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->dir);
	assert_int_equal(system(cmd), 0);
	free(f);
	return 0;
}

static void verify(struct signer *s, EVP_PKEY *pub)
{
	static const uint8_t msg[] = "moat token";
	uint8_t sig[SIGNER_SIG_MAX];
	size_t n = 0;
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();

	assert_int_equal(signer_sign(s, msg, sizeof(msg), sig, &n), MOAT_OK);
	assert_true(n > 0 && n <= SIGNER_SIG_MAX);
	assert_int_equal(EVP_DigestVerifyInit(
			     ctx, NULL, s->algo == SIGNER_ED25519 ? NULL : EVP_sha256(), NULL, pub),
			 1);
	assert_int_equal(EVP_DigestVerify(ctx, sig, n, msg, sizeof(msg)), 1);
	EVP_MD_CTX_reset(ctx);
	sig[n / 2] ^= 1;
	assert_int_equal(EVP_DigestVerifyInit(
			     ctx, NULL, s->algo == SIGNER_ED25519 ? NULL : EVP_sha256(), NULL, pub),
			 1);
	assert_int_not_equal(EVP_DigestVerify(ctx, sig, n, msg, sizeof(msg)), 1);
	EVP_MD_CTX_free(ctx);
}

static EVP_PKEY *public_of(struct signer *s)
{
	char *pem = signer_public_pem(s);
	BIO *bio;
	EVP_PKEY *pub;

	assert_non_null(pem);
	assert_non_null(strstr(pem, "BEGIN PUBLIC KEY"));
	assert_null(strstr(pem, "PRIVATE"));
	bio = BIO_new_mem_buf(pem, -1);
	pub = PEM_read_bio_PUBKEY(bio, NULL, NULL, NULL);
	BIO_free(bio);
	free(pem);
	assert_non_null(pub);
	return pub;
}

static void signer_creates_0600_and_signs(void **state)
{
	struct fx *f = *state;
	enum signer_algo algos[] = {SIGNER_ECDSA_P256, SIGNER_ED25519};

	umask(022);
	for (size_t i = 0; i < 2; i++) {
		struct signer *s = NULL, *again = NULL;
		struct stat sb;
		EVP_PKEY *pub;

		unlink(f->path);
		assert_int_equal(signer_file_create(&s, f->path, algos[i], &f->d), MOAT_OK);
		assert_int_equal(stat(f->path, &sb), 0);
		assert_int_equal(sb.st_mode & 0777, 0600);
		assert_string_equal(s->ops->name, "file");
		pub = public_of(s);
		verify(s, pub);
		/* reopened, it is the same key */
		assert_int_equal(signer_file_open(&again, f->path, algos[i], &f->d), MOAT_OK);
		assert_int_equal(EVP_PKEY_eq(signer_pkey(again), pub), 1);
		verify(again, pub);
		EVP_PKEY_free(pub);
		signer_destroy(again);
		signer_destroy(s);
	}
}

static void signer_create_never_overwrites(void **state)
{
	struct fx *f = *state;
	struct signer *s = NULL;
	char buf[16] = {0};
	FILE *fp;

	fp = fopen(f->path, "w");
	fputs("precious", fp);
	fclose(fp);
	assert_int_equal(signer_file_create(&s, f->path, SIGNER_ED25519, &f->d), MOAT_E_DENIED);
	assert_non_null(strstr(f->d.msg, "exists"));
	fp = fopen(f->path, "r");
	assert_non_null(fgets(buf, sizeof(buf), fp));
	fclose(fp);
	assert_string_equal(buf, "precious");
}

static void signer_refuses_readable_key_files(void **state)
{
	struct fx *f = *state;
	struct signer *s = NULL;
	mode_t modes[] = {0644, 0640, 0604, 0660};

	assert_int_equal(signer_file_create(&s, f->path, SIGNER_ECDSA_P256, &f->d), MOAT_OK);
	signer_destroy(s);
	for (size_t i = 0; i < sizeof(modes) / sizeof(modes[0]); i++) {
		s = NULL;
		assert_int_equal(chmod(f->path, modes[i]), 0);
		assert_int_equal(signer_file_open(&s, f->path, SIGNER_ECDSA_P256, &f->d),
				 MOAT_E_DENIED);
		assert_null(s);
		assert_non_null(strstr(f->d.msg, "chmod 600"));
	}
	assert_int_equal(chmod(f->path, 0400), 0);
	assert_int_equal(signer_file_open(&s, f->path, SIGNER_ECDSA_P256, &f->d), MOAT_OK);
	signer_destroy(s);
}

static void signer_refuses_wrong_algorithm_and_encrypted_keys(void **state)
{
	struct fx *f = *state;
	struct signer *s = NULL;
	char path[160];
	EVP_PKEY *k;
	FILE *fp;

	assert_int_equal(signer_file_create(&s, f->path, SIGNER_ED25519, &f->d), MOAT_OK);
	signer_destroy(s);
	assert_int_equal(signer_file_open(&s, f->path, SIGNER_ECDSA_P256, &f->d), MOAT_E_CRYPTO);
	/* a P-384 key is not the CA's P-256 */
	snprintf(path, sizeof(path), "%s/p384.pem", f->dir);
	k = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-384");
	assert_int_equal(signer_write_key_file(path, k, &f->d), MOAT_OK);
	assert_int_equal(signer_file_open(&s, path, SIGNER_ECDSA_P256, &f->d), MOAT_E_CRYPTO);
	/* an encrypted key is refused instead of prompting */
	snprintf(path, sizeof(path), "%s/enc.pem", f->dir);
	fp = fopen(path, "w");
	assert_int_equal(PEM_write_PrivateKey(fp, k, EVP_aes_256_cbc(), NULL, 0, NULL, "secret"),
			 1);
	fclose(fp);
	chmod(path, 0600);
	assert_int_equal(signer_file_open(&s, path, SIGNER_ECDSA_P256, &f->d), MOAT_E_CRYPTO);
	EVP_PKEY_free(k);
	assert_int_equal(signer_file_open(&s, "/nonexistent/key.pem", SIGNER_ED25519, &f->d),
			 MOAT_E_IO);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(signer_creates_0600_and_signs, setup, teardown),
	    cmocka_unit_test_setup_teardown(signer_create_never_overwrites, setup, teardown),
	    cmocka_unit_test_setup_teardown(signer_refuses_readable_key_files, setup, teardown),
	    cmocka_unit_test_setup_teardown(signer_refuses_wrong_algorithm_and_encrypted_keys,
					    setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
