/*
 * The JWT verification key set: PEM public keys read from files, each bound
 * to the one JOSE alg it may verify (Ed25519 -> EdDSA, P-256 -> ES256,
 * RSA >= 2048 -> RS256). Everything else is refused at load time with a
 * message naming the file and what to use instead. Sets are immutable and
 * refcounted so a reload builds a new set while verifies finish on the old.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bio.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/obj_mac.h>
#include <openssl/pem.h>

#include <moat/error.h>

#include "auth/jwt_impl.h"

enum {
	KEY_FILE_MAX = 64 * 1024,
	RSA_BITS_MIN = 2048,
};

static const char use_instead[] = "use an Ed25519, EC P-256 or RSA >= 2048-bit public key";

void jwt_why(char *why, size_t why_len, const char *fmt, ...)
{
	va_list ap;

	if (why == NULL || why_len == 0)
		return;
	va_start(ap, fmt);
	vsnprintf(why, why_len, fmt, ap);
	va_end(ap);
}

const char *jwt_alg_name(enum jwt_alg alg)
{
	switch (alg) {
	case JWT_ALG_EDDSA:
		return "EdDSA";
	case JWT_ALG_ES256:
		return "ES256";
	case JWT_ALG_RS256:
		return "RS256";
	}
	return "?";
}

/* Reads the whole file <path> (at most KEY_FILE_MAX bytes) into a heap buffer. */
static int read_file(const char *path, char **out, size_t *out_len, char *why, size_t why_len)
{
	FILE *f = fopen(path, "rb");
	bool failed;
	char *buf;
	size_t n;

	if (f == NULL) {
		jwt_why(why, why_len, "%s: cannot open (%s)", path, strerror(errno));
		return MOAT_E_IO;
	}
	buf = malloc(KEY_FILE_MAX + 1);
	if (buf == NULL) {
		fclose(f);
		return MOAT_E_NOMEM;
	}
	n = fread(buf, 1, KEY_FILE_MAX + 1, f);
	failed = ferror(f) != 0;
	fclose(f);
	if (failed || n > KEY_FILE_MAX) {
		jwt_why(why, why_len, "%s: %s", path,
			failed ? "read error" : "larger than 64 KiB, not a PEM public key");
		OPENSSL_cleanse(buf, n);
		free(buf);
		return failed ? MOAT_E_IO : MOAT_E_CONFIG;
	}
	buf[n] = '\0';
	*out = buf;
	*out_len = n;
	return MOAT_OK;
}

/* Maps <pkey> to the alg it may verify, or explains why it may not. */
static int key_alg(EVP_PKEY *pkey, const char *path, enum jwt_alg *alg, char *why, size_t why_len)
{
	char group[64];
	int bits;

	switch (EVP_PKEY_get_base_id(pkey)) {
	case EVP_PKEY_ED25519:
		*alg = JWT_ALG_EDDSA;
		return MOAT_OK;
	case EVP_PKEY_EC:
		if (EVP_PKEY_get_utf8_string_param(pkey, OSSL_PKEY_PARAM_GROUP_NAME, group,
						   sizeof(group), NULL) != 1)
			group[0] = '\0';
		if (strcmp(group, SN_X9_62_prime256v1) == 0) {
			*alg = JWT_ALG_ES256;
			return MOAT_OK;
		}
		jwt_why(why, why_len,
			"%s: EC curve %s is not accepted; use P-256 (ES256) or Ed25519", path,
			group[0] != '\0' ? group : "(unnamed)");
		return MOAT_E_CONFIG;
	case EVP_PKEY_RSA:
		bits = EVP_PKEY_get_bits(pkey);
		if (bits >= RSA_BITS_MIN) {
			*alg = JWT_ALG_RS256;
			return MOAT_OK;
		}
		jwt_why(why, why_len,
			"%s: RSA key of %d bits is too short; use RSA >= 2048 bits, or better "
			"Ed25519 or P-256",
			path, bits);
		return MOAT_E_CONFIG;
	default:
		jwt_why(why, why_len, "%s: key type %s is not accepted; %s", path,
			OBJ_nid2sn(EVP_PKEY_get_base_id(pkey)), use_instead);
		return MOAT_E_CONFIG;
	}
}

/* Loads one key file into <k>. */
static int key_load(struct jwt_key *k, const char *path, char *why, size_t why_len)
{
	EVP_PKEY *pkey = NULL;
	size_t len = 0;
	char *text;
	BIO *bio;
	int rc;

	rc = read_file(path, &text, &len, why, why_len);
	if (rc < 0)
		return rc;
	/* A private key here means the secret sits where only the public one belongs. */
	if (memmem(text, len, "PRIVATE KEY", 11) != NULL) {
		jwt_why(why, why_len,
			"%s: holds a private key; give the public key only "
			"(openssl pkey -in key.pem -pubout)",
			path);
		rc = MOAT_E_CONFIG;
		goto out_wipe;
	}
	bio = BIO_new_mem_buf(text, (int)len);
	if (bio == NULL) {
		rc = MOAT_E_NOMEM;
		goto out_wipe;
	}
	pkey = PEM_read_bio_PUBKEY(bio, NULL, NULL, NULL);
	BIO_free(bio);
	if (pkey == NULL) {
		jwt_why(why, why_len, "%s: no PEM public key (\"BEGIN PUBLIC KEY\") found; %s",
			path, use_instead);
		rc = MOAT_E_CONFIG;
		goto out_wipe;
	}
	rc = key_alg(pkey, path, &k->alg, why, why_len);
	if (rc < 0) {
		EVP_PKEY_free(pkey);
		goto out_wipe;
	}
	k->pkey = pkey;
out_wipe:
	OPENSSL_cleanse(text, len);
	free(text);
	return rc;
}

int jwt_keys_load(struct jwt_keys **out, const struct jwt_key_spec *specs, size_t count, char *why,
		  size_t why_len)
{
	struct jwt_keys *ks;
	int rc = MOAT_OK;

	jwt_why(why, why_len, "%s", "");
	if (out == NULL || (specs == NULL && count > 0) || count > 1024)
		return MOAT_E_INVAL;
	ks = calloc(1, sizeof(*ks) + count * sizeof(ks->keys[0]));
	if (ks == NULL)
		return MOAT_E_NOMEM;
	atomic_init(&ks->refs, 1);
	for (size_t i = 0; i < count; i++) {
		const char *kid = specs[i].kid;

		if (specs[i].path == NULL) {
			rc = MOAT_E_INVAL;
			break;
		}
		if (kid != NULL && (kid[0] == '\0' || strlen(kid) > JWT_KID_LEN_MAX)) {
			jwt_why(why, why_len, "%s: kid must be 1 to %d bytes", specs[i].path,
				JWT_KID_LEN_MAX);
			rc = MOAT_E_CONFIG;
			break;
		}
		for (size_t j = 0; kid != NULL && j < ks->count; j++) {
			if (ks->keys[j].kid != NULL && strcmp(ks->keys[j].kid, kid) == 0) {
				jwt_why(why, why_len, "%s: kid \"%s\" is already used by %s",
					specs[i].path, kid, specs[j].path);
				rc = MOAT_E_CONFIG;
				break;
			}
		}
		if (rc < 0)
			break;
		rc = key_load(&ks->keys[ks->count], specs[i].path, why, why_len);
		if (rc < 0)
			break;
		ks->count++;
		if (kid != NULL) {
			ks->keys[ks->count - 1].kid = strdup(kid);
			if (ks->keys[ks->count - 1].kid == NULL) {
				rc = MOAT_E_NOMEM;
				break;
			}
		}
	}
	if (rc < 0) {
		jwt_keys_unref(ks);
		return rc;
	}
	*out = ks;
	return MOAT_OK;
}

size_t jwt_keys_count(const struct jwt_keys *ks)
{
	return ks != NULL ? ks->count : 0;
}

struct jwt_keys *jwt_keys_ref(struct jwt_keys *ks)
{
	atomic_fetch_add_explicit(&ks->refs, 1, memory_order_relaxed);
	return ks;
}

void jwt_keys_unref(struct jwt_keys *ks)
{
	if (ks == NULL || atomic_fetch_sub_explicit(&ks->refs, 1, memory_order_acq_rel) != 1)
		return;
	for (size_t i = 0; i < ks->count; i++) {
		EVP_PKEY_free(ks->keys[i].pkey);
		free(ks->keys[i].kid);
	}
	free(ks);
}
