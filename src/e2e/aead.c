/*
 * ChaCha20-Poly1305 and AES-256-GCM through OpenSSL's EVP interface (see aead.h).
 */
#include "e2e/aead.h"

#include <limits.h>
#include <pthread.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include <moat/error.h>

#include "e2e/alg.h"

/* The two ciphers, fetched from the provider once: an implicit fetch on
 * every EVP_CipherInit_ex costs more than sealing a small message. */
static EVP_CIPHER *chacha, *aes_gcm;
static pthread_once_t fetched = PTHREAD_ONCE_INIT;

static void fetch_ciphers(void)
{
	chacha = EVP_CIPHER_fetch(NULL, "ChaCha20-Poly1305", NULL);
	aes_gcm = EVP_CIPHER_fetch(NULL, "AES-256-GCM", NULL);
}

static const EVP_CIPHER *cipher_for(int alg)
{
	pthread_once(&fetched, fetch_ciphers);
	switch (alg) {
	case E2E_ALG_CHACHA20_POLY1305:
		return chacha;
	case E2E_ALG_A256GCM:
		return aes_gcm;
	}
	return NULL;
}

/* Sets up <ctx> for <alg> with a 12-byte nonce and feeds <aad>. */
static int start(EVP_CIPHER_CTX *ctx, int alg, const uint8_t *key, const uint8_t *nonce,
		 struct moat_bytes aad, int enc)
{
	const EVP_CIPHER *c = cipher_for(alg);
	int n;

	if (c == NULL)
		return MOAT_E_INVAL;
	if (aad.len > INT_MAX)
		return MOAT_E_LIMIT;
	/* 12 bytes is both ciphers' default nonce length: one init sets all */
	if (EVP_CipherInit_ex(ctx, c, NULL, key, nonce, enc) != 1)
		return MOAT_E_CRYPTO;
	if (aad.len > 0 && EVP_CipherUpdate(ctx, NULL, &n, aad.ptr, (int)aad.len) != 1)
		return MOAT_E_CRYPTO;
	return MOAT_OK;
}

int e2e_aead_seal(int alg, const uint8_t key[32], const uint8_t nonce[12], struct moat_bytes aad,
		  struct moat_bytes pt, uint8_t *out)
{
	EVP_CIPHER_CTX *ctx;
	int n = 0, fin = 0, rc;

	if (pt.len > INT_MAX - E2E_TAG_LEN)
		return MOAT_E_LIMIT;
	ctx = EVP_CIPHER_CTX_new();
	if (ctx == NULL)
		return MOAT_E_NOMEM;
	rc = start(ctx, alg, key, nonce, aad, 1);
	if (rc == MOAT_OK &&
	    ((pt.len > 0 && EVP_CipherUpdate(ctx, out, &n, pt.ptr, (int)pt.len) != 1) ||
	     EVP_CipherFinal_ex(ctx, out + n, &fin) != 1 || (size_t)(n + fin) != pt.len ||
	     EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_GET_TAG, E2E_TAG_LEN, out + pt.len) != 1))
		rc = MOAT_E_CRYPTO;
	EVP_CIPHER_CTX_free(ctx);
	return rc;
}

int e2e_aead_open(int alg, const uint8_t key[32], const uint8_t nonce[12], struct moat_bytes aad,
		  struct moat_bytes ct, uint8_t *out)
{
	EVP_CIPHER_CTX *ctx;
	uint8_t tag[E2E_TAG_LEN];
	size_t len;
	int n = 0, fin = 0, rc;

	if (ct.len < E2E_TAG_LEN)
		return MOAT_E_MALFORMED;
	len = ct.len - E2E_TAG_LEN;
	if (len > INT_MAX)
		return MOAT_E_LIMIT;
	memcpy(tag, ct.ptr + len, E2E_TAG_LEN);
	ctx = EVP_CIPHER_CTX_new();
	if (ctx == NULL)
		return MOAT_E_NOMEM;
	rc = start(ctx, alg, key, nonce, aad, 0);
	if (rc == MOAT_OK &&
	    ((len > 0 && EVP_CipherUpdate(ctx, out, &n, ct.ptr, (int)len) != 1) ||
	     EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_SET_TAG, E2E_TAG_LEN, tag) != 1))
		rc = MOAT_E_CRYPTO;
	if (rc == MOAT_OK &&
	    (EVP_CipherFinal_ex(ctx, out + n, &fin) != 1 || (size_t)(n + fin) != len))
		rc = MOAT_E_CRYPTO;
	EVP_CIPHER_CTX_free(ctx);
	if (rc == MOAT_E_CRYPTO && len > 0)
		OPENSSL_cleanse(out, len); /* never hand out unauthenticated plaintext */
	return rc;
}
