/*
 * The file signer (signer.h): private keys in PEM files that only their
 * owner can read, created with O_EXCL so nothing is ever overwritten.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/core_names.h>
#include <openssl/pem.h>

#include <moat/error.h>

#include "sc/signer.h"

struct file_signer {
	struct signer base;
	EVP_PKEY *key;
};

int signer_fail(struct moat_diag *diag, int rc, const char *fmt, ...)
{
	va_list ap;

	if (diag != NULL) {
		va_start(ap, fmt);
		vsnprintf(diag->msg, sizeof(diag->msg), fmt, ap);
		va_end(ap);
	}
	return rc;
}

static const char *algo_name(enum signer_algo algo)
{
	return algo == SIGNER_ED25519 ? "Ed25519" : "ECDSA P-256";
}

bool signer_key_is(EVP_PKEY *key, enum signer_algo algo)
{
	char group[32];

	if (algo == SIGNER_ED25519)
		return EVP_PKEY_is_a(key, "ED25519");
	return EVP_PKEY_is_a(key, "EC") &&
	       EVP_PKEY_get_utf8_string_param(key, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof(group),
					      NULL) == 1 &&
	       strcmp(group, "prime256v1") == 0;
}

int signer_evp_sign(EVP_PKEY *key, enum signer_algo algo, const uint8_t *msg, size_t len,
		    uint8_t *sig, size_t *sig_len)
{
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	size_t n = SIGNER_SIG_MAX;
	int rc = MOAT_E_CRYPTO;

	if (ctx == NULL)
		return MOAT_E_NOMEM;
	if (EVP_DigestSignInit(ctx, NULL, algo == SIGNER_ED25519 ? NULL : EVP_sha256(), NULL,
			       key) == 1 &&
	    EVP_DigestSign(ctx, sig, &n, msg, len) == 1) {
		*sig_len = n;
		rc = MOAT_OK;
	}
	EVP_MD_CTX_free(ctx);
	return rc;
}

static int file_sign(struct signer *s, const uint8_t *msg, size_t len, uint8_t *sig,
		     size_t *sig_len)
{
	return signer_evp_sign(((struct file_signer *)s)->key, s->algo, msg, len, sig, sig_len);
}

static EVP_PKEY *file_pkey(struct signer *s)
{
	return ((struct file_signer *)s)->key;
}

static void file_destroy(struct signer *s)
{
	struct file_signer *f = (struct file_signer *)s;

	EVP_PKEY_free(f->key); /* clears the private key */
	free(f);
}

static const struct signer_ops file_ops = {
    .abi_version = SIGNER_ABI_VERSION,
    .name = "file",
    .sign = file_sign,
    .pkey = file_pkey,
    .destroy = file_destroy,
};

/* Wraps <key> (consumed) in a file signer. */
static int wrap(struct signer **out, EVP_PKEY *key, enum signer_algo algo)
{
	struct file_signer *f = calloc(1, sizeof(*f));

	if (f == NULL) {
		EVP_PKEY_free(key);
		return MOAT_E_NOMEM;
	}
	f->base.ops = &file_ops;
	f->base.algo = algo;
	f->key = key;
	*out = &f->base;
	return MOAT_OK;
}

int signer_write_key_file(const char *path, EVP_PKEY *key, struct moat_diag *diag)
{
	BIO *bio;
	int fd, ok;

	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0 && errno == EEXIST)
		return signer_fail(diag, MOAT_E_DENIED,
				   "%s exists already; refusing to overwrite a key", path);
	if (fd < 0)
		return signer_fail(diag, MOAT_E_IO, "%s: %s", path, strerror(errno));
	bio = BIO_new_fd(fd, BIO_NOCLOSE);
	ok = bio != NULL && PEM_write_bio_PrivateKey(bio, key, NULL, NULL, 0, NULL, NULL) == 1 &&
	     BIO_flush(bio) == 1 && fsync(fd) == 0;
	BIO_free(bio);
	close(fd);
	if (!ok) {
		unlink(path);
		return signer_fail(diag, MOAT_E_IO, "%s: could not write the key", path);
	}
	return MOAT_OK;
}

int signer_file_create(struct signer **out, const char *path, enum signer_algo algo,
		       struct moat_diag *diag)
{
	EVP_PKEY *key;
	int rc;

	key = algo == SIGNER_ED25519 ? EVP_PKEY_Q_keygen(NULL, NULL, "ED25519")
				     : EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	if (key == NULL)
		return signer_fail(diag, MOAT_E_CRYPTO, "could not generate an %s key",
				   algo_name(algo));
	rc = signer_write_key_file(path, key, diag);
	if (rc < 0) {
		EVP_PKEY_free(key);
		return rc;
	}
	return wrap(out, key, algo);
}

/* Refuses encrypted keys instead of prompting on the terminal. */
static int no_passphrase(char *buf, int size, int rwflag, void *u)
{
	(void)buf, (void)size, (void)rwflag, (void)u;
	return -1;
}

int signer_open_secret_file(const char *path, const char *what, struct moat_diag *diag)
{
	struct stat sb;
	int fd;

	fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return signer_fail(diag, MOAT_E_IO, "%s: %s", path, strerror(errno));
	if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
		close(fd);
		return signer_fail(diag, MOAT_E_DENIED, "%s: not a regular file", path);
	}
	if ((sb.st_mode & 077) != 0 || sb.st_uid != geteuid()) {
		close(fd);
		return signer_fail(diag, MOAT_E_DENIED,
				   "%s: permissions %04o are too open or the owner is not us; %s "
				   "must be 0600 and ours (chmod 600 %s)",
				   path, (unsigned)(sb.st_mode & 07777), what, path);
	}
	return fd;
}

int signer_file_open(struct signer **out, const char *path, enum signer_algo algo,
		     struct moat_diag *diag)
{
	EVP_PKEY *key;
	BIO *bio;
	int fd;

	fd = signer_open_secret_file(path, "a private key", diag);
	if (fd < 0)
		return fd;
	bio = BIO_new_fd(fd, BIO_NOCLOSE);
	key = bio != NULL ? PEM_read_bio_PrivateKey(bio, NULL, no_passphrase, NULL) : NULL;
	BIO_free(bio);
	close(fd);
	if (key == NULL)
		return signer_fail(diag, MOAT_E_CRYPTO, "%s: no unencrypted PEM private key", path);
	if (!signer_key_is(key, algo)) {
		EVP_PKEY_free(key);
		return signer_fail(diag, MOAT_E_CRYPTO, "%s: not an %s key", path, algo_name(algo));
	}
	return wrap(out, key, algo);
}

int signer_sign(struct signer *s, const uint8_t *msg, size_t len, uint8_t *sig, size_t *sig_len)
{
	return s->ops->sign(s, msg, len, sig, sig_len);
}

EVP_PKEY *signer_pkey(struct signer *s)
{
	return s->ops->pkey(s);
}

char *signer_public_pem(struct signer *s)
{
	BIO *bio = BIO_new(BIO_s_mem());
	char *data, *out = NULL;
	long n;

	if (bio == NULL)
		return NULL;
	if (PEM_write_bio_PUBKEY(bio, signer_pkey(s)) == 1) {
		n = BIO_get_mem_data(bio, &data);
		out = n > 0 ? strndup(data, (size_t)n) : NULL;
	}
	BIO_free(bio);
	return out;
}

void signer_destroy(struct signer *s)
{
	if (s != NULL)
		s->ops->destroy(s);
}
