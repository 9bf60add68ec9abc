/*
 * Password verification over a parsed password file: one constant-time
 * comparison per format, a dummy verification for unknown users, and the
 * hash makers used by `moat passwd`.
 */
#include "auth/passwd.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <sodium.h>

#include <moat/error.h>

#include "base/base64.h"
#include "conf/passwd_file.h"

struct passwd_db {
	struct pwf file;
	size_t weak;
};

static bool is_weak(const struct pwf_hash *h)
{
	return h->kind == PWF_SHA512 ||
	       (h->kind == PWF_PBKDF2_SHA512 && h->iterations < PASSWD_PBKDF2_MIN_ITERATIONS);
}

static int db_from_file(struct passwd_db **out, struct pwf *f)
{
	struct passwd_db *db;

	if (sodium_init() < 0) {
		pwf_fini(f);
		return MOAT_E_CRYPTO;
	}
	db = calloc(1, sizeof(*db));
	if (db == NULL) {
		pwf_fini(f);
		return MOAT_E_NOMEM;
	}
	db->file = *f;
	for (size_t i = 0; i < f->count; i++)
		db->weak += is_weak(&f->entries[i].h);
	*out = db;
	return MOAT_OK;
}

int passwd_db_load(struct passwd_db **out, const char *path, struct moat_diag *diag)
{
	struct pwf f;
	int rc = pwf_load(&f, path, diag);

	return rc < 0 ? rc : db_from_file(out, &f);
}

int passwd_db_load_buffer(struct passwd_db **out, const char *name, const char *data, size_t len,
			  struct moat_diag *diag)
{
	struct pwf f;
	int rc = pwf_parse(&f, name, data, len, diag);

	return rc < 0 ? rc : db_from_file(out, &f);
}

void passwd_db_destroy(struct passwd_db *db)
{
	if (db == NULL)
		return;
	pwf_fini(&db->file);
	free(db);
}

size_t passwd_db_weak_count(const struct passwd_db *db)
{
	return db->weak;
}

size_t passwd_db_count(const struct passwd_db *db)
{
	return db->file.count;
}

/* MOAT_OK when <pw> matches <h>; every path compares in constant time. */
static int verify(const struct pwf_hash *h, const uint8_t *pw, size_t len)
{
	uint8_t got[EVP_MAX_MD_SIZE], server_key[SCRAM_KEY_LEN];
	unsigned int n = 0;
	int ok = 0;
	EVP_MD_CTX *ctx;

	switch (h->kind) {
	case PWF_SHA512:
		ctx = EVP_MD_CTX_new();
		ok = ctx != NULL && EVP_DigestInit_ex(ctx, EVP_sha512(), NULL) == 1 &&
		     EVP_DigestUpdate(ctx, pw, len) == 1 &&
		     EVP_DigestUpdate(ctx, h->salt, h->salt_len) == 1 &&
		     EVP_DigestFinal_ex(ctx, got, &n) == 1 && n == h->hash_len &&
		     CRYPTO_memcmp(got, h->hash, n) == 0;
		EVP_MD_CTX_free(ctx);
		break;
	case PWF_PBKDF2_SHA512:
		ok = len <= INT32_MAX && h->iterations <= INT32_MAX &&
		     PKCS5_PBKDF2_HMAC(len == 0 ? "" : (const char *)pw, (int)len, h->salt,
				       (int)h->salt_len, (int)h->iterations, EVP_sha512(),
				       (int)h->hash_len, got) == 1 &&
		     CRYPTO_memcmp(got, h->hash, h->hash_len) == 0;
		break;
	case PWF_ARGON2ID:
		ok = crypto_pwhash_str_verify(h->phc, (const char *)pw, len) == 0;
		break;
	case PWF_SCRAM_SHA256:
		ok = scram_derive(pw, len, h->salt, h->salt_len, h->iterations, got, server_key) ==
			 MOAT_OK &&
		     CRYPTO_memcmp(got, h->hash, SCRAM_KEY_LEN) == 0;
		OPENSSL_cleanse(server_key, sizeof(server_key));
		break;
	}
	OPENSSL_cleanse(got, sizeof(got));
	return ok ? MOAT_OK : MOAT_E_DENIED;
}

int passwd_db_check(const struct passwd_db *db, const char *username, const uint8_t *password,
		    size_t len)
{
	const struct pwf_entry *e = pwf_find(&db->file, username);

	if (e == NULL) {
		/* same cost as a known user of the first entry's format; result ignored */
		if (db->file.count > 0)
			(void)verify(&db->file.entries[0].h, password, len);
		return MOAT_E_DENIED;
	}
	return verify(&e->h, password, len);
}

int passwd_db_scram_lookup(void *arg, const char *username, struct scram_cred *out)
{
	const struct passwd_db *db = arg;
	const struct pwf_entry *e = pwf_find(&db->file, username);

	if (e == NULL || e->h.kind != PWF_SCRAM_SHA256)
		return MOAT_E_NOTFOUND;
	memcpy(out->salt, e->h.salt, e->h.salt_len);
	out->salt_len = e->h.salt_len;
	out->iterations = e->h.iterations;
	memcpy(out->stored_key, e->h.hash, SCRAM_KEY_LEN);
	memcpy(out->server_key, e->h.server_key, SCRAM_KEY_LEN);
	return MOAT_OK;
}

int passwd_hash_argon2id(const uint8_t *password, size_t len, char out[PASSWD_HASH_TEXT_MAX])
{
	_Static_assert(crypto_pwhash_STRBYTES <= PASSWD_HASH_TEXT_MAX, "argon2id string fits");
	if (sodium_init() < 0)
		return MOAT_E_CRYPTO;
	if (crypto_pwhash_str_alg(out, (const char *)password, len, 2, 19 * 1024 * 1024,
				  crypto_pwhash_ALG_ARGON2ID13) != 0)
		return MOAT_E_NOMEM; /* libsodium fails here only when it cannot get the memory */
	return MOAT_OK;
}

int passwd_hash_scram(const uint8_t *password, size_t len, uint32_t iterations,
		      char out[PASSWD_HASH_TEXT_MAX])
{
	uint8_t salt[16], stored[SCRAM_KEY_LEN], server[SCRAM_KEY_LEN];
	char salt_t[32], stored_t[48], server_t[48];
	int rc;

	if (iterations < SCRAM_MIN_ITERATIONS)
		return MOAT_E_INVAL;
	if (RAND_bytes(salt, sizeof(salt)) != 1)
		return MOAT_E_CRYPTO;
	rc = scram_derive(password, len, salt, sizeof(salt), iterations, stored, server);
	if (rc == MOAT_OK) {
		b64_encode(salt, sizeof(salt), salt_t, B64_STD);
		b64_encode(stored, sizeof(stored), stored_t, B64_STD);
		b64_encode(server, sizeof(server), server_t, B64_STD);
		snprintf(out, PASSWD_HASH_TEXT_MAX, "$scram-sha-256$%u$%s$%s$%s", iterations,
			 salt_t, stored_t, server_t);
	}
	OPENSSL_cleanse(stored, sizeof(stored));
	OPENSSL_cleanse(server, sizeof(server));
	OPENSSL_cleanse(stored_t, sizeof(stored_t));
	OPENSSL_cleanse(server_t, sizeof(server_t));
	return rc;
}
