/*
 * HPKE base mode (RFC 9180) on OpenSSL 3.0 primitives: X25519 through
 * EVP_PKEY_derive, HKDF-SHA256 written as HMAC-SHA256 through EVP_MAC, and
 * AES-128-GCM and ChaCha20-Poly1305 through EVP_CIPHER. The labeled HKDF
 * inputs are fed to HMAC in pieces: no heap copy, and no dependence on the
 * info-length limit of OpenSSL's HKDF provider. Section numbers in comments
 * are RFC 9180's. Every intermediate secret is wiped with OPENSSL_cleanse
 * before returning, and a failure clears OpenSSL's error queue so that it
 * cannot confuse a later SSL_get_error on the same thread.
 */
#include "e2e/hpke.h"

#include <stdbool.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <openssl/rand.h>

#include <moat/error.h>

enum {
	KEM_ID = 0x0020, /* DHKEM(X25519, HKDF-SHA256) */
	KDF_ID = 0x0001, /* HKDF-SHA256 */
	MODE_BASE = 0x00,
	KEM_SUITE_LEN = 5,   /* "KEM" || I2OSP(kem_id, 2) */
	HPKE_SUITE_LEN = 10, /* "HPKE" || kem_id || kdf_id || aead_id */
	KS_CONTEXT_LEN = 1 + 2 * HPKE_SECRET_LEN,
	MAX_EXPAND_LEN = 255 * HPKE_SECRET_LEN,
};

static const uint8_t kem_suite[KEM_SUITE_LEN] = {'K', 'E', 'M', KEM_ID >> 8, KEM_ID & 0xff};
static const uint8_t version_label[7] = {'H', 'P', 'K', 'E', '-', 'v', '1'};
/* HMAC pads its key with zeros, so an empty salt is the key of HashLen zeros (RFC 5869 §2.2) */
static const uint8_t zero_secret[HPKE_SECRET_LEN];

struct part {
	const uint8_t *ptr;
	size_t len;
};

static int crypto_fail(void)
{
	ERR_clear_error();
	return MOAT_E_CRYPTO;
}

/* An input of <len> bytes at <p> is usable: short enough for OpenSSL's int lengths, and present. */
static bool input_ok(const void *p, size_t len)
{
	return len <= HPKE_MAX_INPUT_LEN && (p != NULL || len == 0);
}

static int aead_key_len(enum hpke_aead aead, size_t *out)
{
	switch (aead) {
	case HPKE_AES_128_GCM:
		*out = 16;
		return MOAT_OK;
	case HPKE_CHACHA20_POLY1305:
		*out = 32;
		return MOAT_OK;
	}
	return MOAT_E_INVAL;
}

/* HMAC-SHA256 keyed with <key_len> (> 0) bytes of <key> over the concatenated <parts>. */
static int hmac_sha256(const uint8_t *key, size_t key_len, const struct part *parts, size_t count,
		       uint8_t out[HPKE_SECRET_LEN])
{
	EVP_MAC *mac;
	EVP_MAC_CTX *ctx = NULL;
	OSSL_PARAM params[2];
	size_t out_len = 0;
	int rc = MOAT_E_CRYPTO;

	params[0] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, (char *)"SHA256", 0);
	params[1] = OSSL_PARAM_construct_end();
	mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
	if (mac == NULL)
		goto out;
	ctx = EVP_MAC_CTX_new(mac);
	if (ctx == NULL || EVP_MAC_init(ctx, key, key_len, params) != 1)
		goto out;
	for (size_t i = 0; i < count; i++) {
		if (parts[i].len > 0 && EVP_MAC_update(ctx, parts[i].ptr, parts[i].len) != 1)
			goto out;
	}
	if (EVP_MAC_final(ctx, out, &out_len, HPKE_SECRET_LEN) != 1 || out_len != HPKE_SECRET_LEN)
		goto out;
	rc = MOAT_OK;
out:
	EVP_MAC_CTX_free(ctx);
	EVP_MAC_free(mac);
	if (rc != MOAT_OK) {
		OPENSSL_cleanse(out, HPKE_SECRET_LEN);
		rc = crypto_fail();
	}
	return rc;
}

void hpke_suite_id(enum hpke_aead aead, uint8_t out[10])
{
	memcpy(out, "HPKE", 4);
	out[4] = KEM_ID >> 8;
	out[5] = KEM_ID & 0xff;
	out[6] = KDF_ID >> 8;
	out[7] = KDF_ID & 0xff;
	out[8] = (uint8_t)((unsigned)aead >> 8);
	out[9] = (uint8_t)((unsigned)aead & 0xff);
}

int hpke_labeled_extract(const uint8_t *suite_id, size_t suite_len, const uint8_t *salt,
			 size_t salt_len, const char *label, const uint8_t *ikm, size_t ikm_len,
			 uint8_t prk[32])
{
	struct part parts[4];

	if (suite_id == NULL || label == NULL || prk == NULL || !input_ok(salt, salt_len) ||
	    !input_ok(ikm, ikm_len) || suite_len > HPKE_SUITE_LEN)
		return MOAT_E_INVAL;
	/* labeled_ikm = "HPKE-v1" || suite_id || label || ikm (§4) */
	parts[0] = (struct part){version_label, sizeof(version_label)};
	parts[1] = (struct part){suite_id, suite_len};
	parts[2] = (struct part){(const uint8_t *)label, strlen(label)};
	parts[3] = (struct part){ikm, ikm_len};
	if (salt_len == 0)
		return hmac_sha256(zero_secret, sizeof(zero_secret), parts, 4, prk);
	return hmac_sha256(salt, salt_len, parts, 4, prk);
}

int hpke_labeled_expand(const uint8_t *suite_id, size_t suite_len, const uint8_t prk[32],
			const char *label, const uint8_t *info, size_t info_len, uint8_t *out,
			size_t out_len)
{
	uint8_t t[HPKE_SECRET_LEN];
	uint8_t len_be[2];
	uint8_t counter = 0;
	struct part parts[7];
	size_t done = 0;
	int rc = MOAT_OK;

	if (suite_id == NULL || prk == NULL || label == NULL || out == NULL || out_len == 0 ||
	    out_len > MAX_EXPAND_LEN || !input_ok(info, info_len) || suite_len > HPKE_SUITE_LEN)
		return MOAT_E_INVAL;
	len_be[0] = (uint8_t)(out_len >> 8);
	len_be[1] = (uint8_t)(out_len & 0xff);
	/* HKDF-Expand (RFC 5869 §2.3): T(i) = HMAC(prk, T(i-1) || labeled_info || i) with
	 * labeled_info = I2OSP(L, 2) || "HPKE-v1" || suite_id || label || info (§4) */
	parts[0] = (struct part){t, 0};
	parts[1] = (struct part){len_be, sizeof(len_be)};
	parts[2] = (struct part){version_label, sizeof(version_label)};
	parts[3] = (struct part){suite_id, suite_len};
	parts[4] = (struct part){(const uint8_t *)label, strlen(label)};
	parts[5] = (struct part){info, info_len};
	parts[6] = (struct part){&counter, 1};
	while (done < out_len) {
		size_t n = out_len - done < sizeof(t) ? out_len - done : sizeof(t);

		counter++;
		rc = hmac_sha256(prk, HPKE_SECRET_LEN, parts, 7, t);
		if (rc < 0)
			break;
		memcpy(out + done, t, n);
		done += n;
		parts[0].len = sizeof(t);
	}
	OPENSSL_cleanse(t, sizeof(t));
	if (rc < 0)
		OPENSSL_cleanse(out, out_len);
	return rc;
}

/* pk(sk) for X25519: SerializePublicKey(pk(DeserializePrivateKey(sk))). */
static int x25519_public(const uint8_t sk[HPKE_KEY_LEN], uint8_t pk[HPKE_KEY_LEN])
{
	EVP_PKEY *key;
	size_t len = HPKE_KEY_LEN;
	int ok;

	key = EVP_PKEY_new_raw_private_key(EVP_PKEY_X25519, NULL, sk, HPKE_KEY_LEN);
	if (key == NULL)
		return crypto_fail();
	ok = EVP_PKEY_get_raw_public_key(key, pk, &len) == 1 && len == HPKE_KEY_LEN;
	EVP_PKEY_free(key);
	return ok ? MOAT_OK : crypto_fail();
}

/* DH(sk, pk) for X25519, refusing the all-zero output of a low-order point (§7.1.4). */
static int x25519_dh(const uint8_t sk[HPKE_KEY_LEN], const uint8_t pk[HPKE_KEY_LEN],
		     uint8_t dh[HPKE_SECRET_LEN])
{
	EVP_PKEY *own;
	EVP_PKEY *peer;
	EVP_PKEY_CTX *ctx = NULL;
	size_t len = HPKE_SECRET_LEN;
	int rc = MOAT_E_CRYPTO;

	own = EVP_PKEY_new_raw_private_key(EVP_PKEY_X25519, NULL, sk, HPKE_KEY_LEN);
	peer = EVP_PKEY_new_raw_public_key(EVP_PKEY_X25519, NULL, pk, HPKE_KEY_LEN);
	if (own == NULL || peer == NULL)
		goto out;
	ctx = EVP_PKEY_CTX_new(own, NULL);
	if (ctx == NULL || EVP_PKEY_derive_init(ctx) != 1 ||
	    EVP_PKEY_derive_set_peer(ctx, peer) != 1)
		goto out;
	if (EVP_PKEY_derive(ctx, dh, &len) != 1 || len != HPKE_SECRET_LEN)
		goto out;
	/* OpenSSL refuses a zero result too; do not depend on it */
	if (CRYPTO_memcmp(dh, zero_secret, HPKE_SECRET_LEN) == 0)
		goto out;
	rc = MOAT_OK;
out:
	EVP_PKEY_CTX_free(ctx);
	EVP_PKEY_free(peer);
	EVP_PKEY_free(own);
	if (rc != MOAT_OK) {
		OPENSSL_cleanse(dh, HPKE_SECRET_LEN);
		rc = crypto_fail();
	}
	return rc;
}

int hpke_keygen(uint8_t sk[32], uint8_t pk[32])
{
	int rc;

	if (sk == NULL || pk == NULL)
		return MOAT_E_INVAL;
	/* every 32-byte string is an X25519 private key (clamped when used, RFC 7748 §5) */
	rc = RAND_bytes(sk, HPKE_KEY_LEN) == 1 ? x25519_public(sk, pk) : crypto_fail();
	if (rc < 0) {
		OPENSSL_cleanse(sk, HPKE_KEY_LEN);
		memset(pk, 0, HPKE_KEY_LEN);
	}
	return rc;
}

int hpke_derive_keypair(const uint8_t *ikm, size_t ikm_len, uint8_t sk[32], uint8_t pk[32])
{
	uint8_t dkp_prk[HPKE_SECRET_LEN];
	int rc;

	if (ikm == NULL || ikm_len < HPKE_KEY_LEN || ikm_len > HPKE_MAX_INPUT_LEN || sk == NULL ||
	    pk == NULL)
		return MOAT_E_INVAL;
	/* §7.1.3 for X25519:
	 * sk = LabeledExpand(LabeledExtract("", "dkp_prk", ikm), "sk", "", Nsk) */
	rc = hpke_labeled_extract(kem_suite, sizeof(kem_suite), NULL, 0, "dkp_prk", ikm, ikm_len,
				  dkp_prk);
	if (rc == MOAT_OK)
		rc = hpke_labeled_expand(kem_suite, sizeof(kem_suite), dkp_prk, "sk", NULL, 0, sk,
					 HPKE_KEY_LEN);
	if (rc == MOAT_OK)
		rc = x25519_public(sk, pk);
	OPENSSL_cleanse(dkp_prk, sizeof(dkp_prk));
	if (rc < 0) {
		OPENSSL_cleanse(sk, HPKE_KEY_LEN);
		memset(pk, 0, HPKE_KEY_LEN);
	}
	return rc;
}

/* ExtractAndExpand (§4.1): shared_secret from <dh> and kem_context = enc || pkRm. */
static int extract_and_expand(const uint8_t dh[HPKE_SECRET_LEN], const uint8_t enc[HPKE_KEY_LEN],
			      const uint8_t pk_r[HPKE_KEY_LEN],
			      uint8_t shared_secret[HPKE_SECRET_LEN])
{
	uint8_t eae_prk[HPKE_SECRET_LEN];
	uint8_t kem_context[2 * HPKE_KEY_LEN];
	int rc;

	memcpy(kem_context, enc, HPKE_KEY_LEN);
	memcpy(kem_context + HPKE_KEY_LEN, pk_r, HPKE_KEY_LEN);
	rc = hpke_labeled_extract(kem_suite, sizeof(kem_suite), NULL, 0, "eae_prk", dh,
				  HPKE_SECRET_LEN, eae_prk);
	if (rc == MOAT_OK)
		rc = hpke_labeled_expand(kem_suite, sizeof(kem_suite), eae_prk, "shared_secret",
					 kem_context, sizeof(kem_context), shared_secret,
					 HPKE_SECRET_LEN);
	OPENSSL_cleanse(eae_prk, sizeof(eae_prk));
	return rc;
}

int hpke_encap(const uint8_t pk_r[32], const uint8_t *ikm_e, uint8_t enc[32],
	       uint8_t shared_secret[32])
{
	uint8_t sk_e[HPKE_KEY_LEN];
	uint8_t dh[HPKE_SECRET_LEN];
	int rc;

	if (pk_r == NULL || enc == NULL || shared_secret == NULL)
		return MOAT_E_INVAL;
	if (ikm_e != NULL)
		rc = hpke_derive_keypair(ikm_e, HPKE_KEY_LEN, sk_e, enc);
	else
		rc = hpke_keygen(sk_e, enc);
	if (rc == MOAT_OK)
		rc = x25519_dh(sk_e, pk_r, dh);
	if (rc == MOAT_OK)
		rc = extract_and_expand(dh, enc, pk_r, shared_secret);
	OPENSSL_cleanse(sk_e, sizeof(sk_e));
	OPENSSL_cleanse(dh, sizeof(dh));
	if (rc < 0)
		OPENSSL_cleanse(shared_secret, HPKE_SECRET_LEN);
	return rc;
}

int hpke_decap(const uint8_t enc[32], const uint8_t sk_r[32], uint8_t shared_secret[32])
{
	uint8_t pk_r[HPKE_KEY_LEN];
	uint8_t dh[HPKE_SECRET_LEN];
	int rc;

	if (enc == NULL || sk_r == NULL || shared_secret == NULL)
		return MOAT_E_INVAL;
	rc = x25519_dh(sk_r, enc, dh);
	if (rc == MOAT_OK)
		rc = x25519_public(sk_r, pk_r);
	if (rc == MOAT_OK)
		rc = extract_and_expand(dh, enc, pk_r, shared_secret);
	OPENSSL_cleanse(dh, sizeof(dh));
	if (rc < 0)
		OPENSSL_cleanse(shared_secret, HPKE_SECRET_LEN);
	return rc;
}

/* KeySchedule (§5.1) for mode_base: psk and psk_id are empty. */
static int key_schedule(struct hpke_ctx *ctx, enum hpke_role role, enum hpke_aead aead,
			const uint8_t shared_secret[HPKE_SECRET_LEN], const uint8_t *info,
			size_t info_len)
{
	uint8_t suite[HPKE_SUITE_LEN];
	uint8_t ks_context[KS_CONTEXT_LEN];
	uint8_t secret[HPKE_SECRET_LEN];
	int rc;

	memset(ctx, 0, sizeof(*ctx));
	rc = aead_key_len(aead, &ctx->key_len);
	if (rc < 0)
		return rc;
	hpke_suite_id(aead, suite);
	ks_context[0] = MODE_BASE;
	rc = hpke_labeled_extract(suite, sizeof(suite), NULL, 0, "psk_id_hash", NULL, 0,
				  ks_context + 1);
	if (rc == MOAT_OK)
		rc = hpke_labeled_extract(suite, sizeof(suite), NULL, 0, "info_hash", info,
					  info_len, ks_context + 1 + HPKE_SECRET_LEN);
	if (rc == MOAT_OK)
		rc = hpke_labeled_extract(suite, sizeof(suite), shared_secret, HPKE_SECRET_LEN,
					  "secret", NULL, 0, secret);
	if (rc == MOAT_OK)
		rc = hpke_labeled_expand(suite, sizeof(suite), secret, "key", ks_context,
					 sizeof(ks_context), ctx->key, ctx->key_len);
	if (rc == MOAT_OK)
		rc = hpke_labeled_expand(suite, sizeof(suite), secret, "base_nonce", ks_context,
					 sizeof(ks_context), ctx->base_nonce, HPKE_NONCE_LEN);
	if (rc == MOAT_OK)
		rc = hpke_labeled_expand(suite, sizeof(suite), secret, "exp", ks_context,
					 sizeof(ks_context), ctx->exporter_secret, HPKE_SECRET_LEN);
	OPENSSL_cleanse(secret, sizeof(secret));
	if (rc < 0) {
		hpke_ctx_fini(ctx);
		return rc;
	}
	ctx->role = role;
	ctx->aead = aead;
	return MOAT_OK;
}

int hpke_setup_sender(struct hpke_ctx *ctx, enum hpke_aead aead, const uint8_t pk_r[32],
		      const uint8_t *info, size_t info_len, const uint8_t *ikm_e, uint8_t enc[32])
{
	uint8_t shared_secret[HPKE_SECRET_LEN];
	size_t key_len;
	int rc;

	if (ctx == NULL)
		return MOAT_E_INVAL;
	memset(ctx, 0, sizeof(*ctx));
	if (pk_r == NULL || enc == NULL || !input_ok(info, info_len) ||
	    aead_key_len(aead, &key_len) < 0)
		return MOAT_E_INVAL;
	rc = hpke_encap(pk_r, ikm_e, enc, shared_secret);
	if (rc == MOAT_OK)
		rc = key_schedule(ctx, HPKE_SENDER, aead, shared_secret, info, info_len);
	OPENSSL_cleanse(shared_secret, sizeof(shared_secret));
	return rc;
}

int hpke_setup_recipient(struct hpke_ctx *ctx, enum hpke_aead aead, const uint8_t sk_r[32],
			 const uint8_t enc[32], const uint8_t *info, size_t info_len)
{
	uint8_t shared_secret[HPKE_SECRET_LEN];
	size_t key_len;
	int rc;

	if (ctx == NULL)
		return MOAT_E_INVAL;
	memset(ctx, 0, sizeof(*ctx));
	if (sk_r == NULL || enc == NULL || !input_ok(info, info_len) ||
	    aead_key_len(aead, &key_len) < 0)
		return MOAT_E_INVAL;
	rc = hpke_decap(enc, sk_r, shared_secret);
	if (rc == MOAT_OK)
		rc = key_schedule(ctx, HPKE_RECIPIENT, aead, shared_secret, info, info_len);
	OPENSSL_cleanse(shared_secret, sizeof(shared_secret));
	return rc;
}

/* ComputeNonce (§5.2): base_nonce XOR I2OSP(seq, Nn). */
static void compute_nonce(const struct hpke_ctx *ctx, uint8_t nonce[HPKE_NONCE_LEN])
{
	memcpy(nonce, ctx->base_nonce, HPKE_NONCE_LEN);
	for (unsigned i = 0; i < 8; i++)
		nonce[HPKE_NONCE_LEN - 1 - i] ^= (uint8_t)(ctx->seq >> (8 * i));
}

static const EVP_CIPHER *aead_cipher(enum hpke_aead aead)
{
	return aead == HPKE_AES_128_GCM ? EVP_aes_128_gcm() : EVP_chacha20_poly1305();
}

/* Seal(key, nonce, aad, pt) of the AEAD: ct = ciphertext || tag. Lengths are checked by callers. */
static int aead_seal(const struct hpke_ctx *ctx, const uint8_t nonce[HPKE_NONCE_LEN],
		     const uint8_t *aad, size_t aad_len, const uint8_t *pt, size_t pt_len,
		     uint8_t *ct)
{
	EVP_CIPHER_CTX *c;
	int n = 0;
	int ok;

	c = EVP_CIPHER_CTX_new();
	ok = c != NULL && EVP_EncryptInit_ex(c, aead_cipher(ctx->aead), NULL, NULL, NULL) == 1 &&
	     EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_AEAD_SET_IVLEN, HPKE_NONCE_LEN, NULL) == 1 &&
	     EVP_EncryptInit_ex(c, NULL, NULL, ctx->key, nonce) == 1;
	if (ok && aad_len > 0)
		ok = EVP_EncryptUpdate(c, NULL, &n, aad, (int)aad_len) == 1;
	if (ok && pt_len > 0)
		ok = EVP_EncryptUpdate(c, ct, &n, pt, (int)pt_len) == 1 && (size_t)n == pt_len;
	if (ok)
		ok = EVP_EncryptFinal_ex(c, ct + pt_len, &n) == 1 && n == 0 &&
		     EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_AEAD_GET_TAG, HPKE_TAG_LEN, ct + pt_len) == 1;
	EVP_CIPHER_CTX_free(c);
	if (!ok) {
		OPENSSL_cleanse(ct, pt_len + HPKE_TAG_LEN);
		return crypto_fail();
	}
	return MOAT_OK;
}

/* Open(key, nonce, aad, ct) of the AEAD; <ct_len> >= 16. Wipes <pt> on any failure. */
static int aead_open(const struct hpke_ctx *ctx, const uint8_t nonce[HPKE_NONCE_LEN],
		     const uint8_t *aad, size_t aad_len, const uint8_t *ct, size_t ct_len,
		     uint8_t *pt)
{
	EVP_CIPHER_CTX *c;
	uint8_t tag[HPKE_TAG_LEN];
	uint8_t tail[HPKE_TAG_LEN]; /* Final writes nothing for these AEADs; <pt> may be NULL */
	size_t pt_len = ct_len - HPKE_TAG_LEN;
	int n = 0;
	int ok;

	memcpy(tag, ct + pt_len, HPKE_TAG_LEN);
	c = EVP_CIPHER_CTX_new();
	ok = c != NULL && EVP_DecryptInit_ex(c, aead_cipher(ctx->aead), NULL, NULL, NULL) == 1 &&
	     EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_AEAD_SET_IVLEN, HPKE_NONCE_LEN, NULL) == 1 &&
	     EVP_DecryptInit_ex(c, NULL, NULL, ctx->key, nonce) == 1;
	if (ok && aad_len > 0)
		ok = EVP_DecryptUpdate(c, NULL, &n, aad, (int)aad_len) == 1;
	if (ok && pt_len > 0)
		ok = EVP_DecryptUpdate(c, pt, &n, ct, (int)pt_len) == 1 && (size_t)n == pt_len;
	if (ok)
		ok = EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_AEAD_SET_TAG, HPKE_TAG_LEN, tag) == 1 &&
		     EVP_DecryptFinal_ex(c, tail, &n) == 1 && n == 0;
	EVP_CIPHER_CTX_free(c);
	if (!ok) {
		if (pt_len > 0)
			OPENSSL_cleanse(pt, pt_len);
		return crypto_fail();
	}
	return MOAT_OK;
}

int hpke_ctx_seal(struct hpke_ctx *ctx, const uint8_t *aad, size_t aad_len, const uint8_t *pt,
		  size_t pt_len, uint8_t *ct)
{
	uint8_t nonce[HPKE_NONCE_LEN];
	int rc;

	if (ctx == NULL || ctx->role != HPKE_SENDER || ct == NULL || !input_ok(aad, aad_len) ||
	    !input_ok(pt, pt_len))
		return MOAT_E_INVAL;
	/* §5.2 allows 2^96 - 1 messages; our counter stops at 2^64 - 1 */
	if (ctx->seq == UINT64_MAX)
		return MOAT_E_LIMIT;
	compute_nonce(ctx, nonce);
	rc = aead_seal(ctx, nonce, aad, aad_len, pt, pt_len, ct);
	OPENSSL_cleanse(nonce, sizeof(nonce));
	if (rc == MOAT_OK)
		ctx->seq++;
	return rc;
}

int hpke_ctx_open(struct hpke_ctx *ctx, const uint8_t *aad, size_t aad_len, const uint8_t *ct,
		  size_t ct_len, uint8_t *pt)
{
	uint8_t nonce[HPKE_NONCE_LEN];
	int rc;

	if (ctx == NULL || ctx->role != HPKE_RECIPIENT || ct == NULL || !input_ok(aad, aad_len) ||
	    ct_len > HPKE_MAX_INPUT_LEN + HPKE_TAG_LEN || (pt == NULL && ct_len > HPKE_TAG_LEN))
		return MOAT_E_INVAL;
	if (ct_len < HPKE_TAG_LEN)
		return MOAT_E_CRYPTO;
	if (ctx->seq == UINT64_MAX)
		return MOAT_E_LIMIT;
	compute_nonce(ctx, nonce);
	rc = aead_open(ctx, nonce, aad, aad_len, ct, ct_len, pt);
	OPENSSL_cleanse(nonce, sizeof(nonce));
	if (rc == MOAT_OK)
		ctx->seq++;
	return rc;
}

int hpke_export(const struct hpke_ctx *ctx, const uint8_t *exporter_context, size_t context_len,
		uint8_t *out, size_t out_len)
{
	uint8_t suite[HPKE_SUITE_LEN];

	if (ctx == NULL || (ctx->role != HPKE_SENDER && ctx->role != HPKE_RECIPIENT))
		return MOAT_E_INVAL;
	hpke_suite_id(ctx->aead, suite);
	return hpke_labeled_expand(suite, sizeof(suite), ctx->exporter_secret, "sec",
				   exporter_context, context_len, out, out_len);
}

void hpke_ctx_fini(struct hpke_ctx *ctx)
{
	if (ctx != NULL)
		OPENSSL_cleanse(ctx, sizeof(*ctx));
}

int hpke_seal(enum hpke_aead aead, const uint8_t pk_r[32], const uint8_t *info, size_t info_len,
	      const uint8_t *aad, size_t aad_len, const uint8_t *pt, size_t pt_len,
	      const uint8_t *ikm_e, uint8_t enc[32], uint8_t *ct)
{
	struct hpke_ctx ctx;
	int rc;

	if (ct == NULL || !input_ok(aad, aad_len) || !input_ok(pt, pt_len))
		return MOAT_E_INVAL;
	rc = hpke_setup_sender(&ctx, aead, pk_r, info, info_len, ikm_e, enc);
	if (rc == MOAT_OK)
		rc = hpke_ctx_seal(&ctx, aad, aad_len, pt, pt_len, ct);
	hpke_ctx_fini(&ctx);
	return rc;
}

int hpke_open(enum hpke_aead aead, const uint8_t sk_r[32], const uint8_t enc[32],
	      const uint8_t *info, size_t info_len, const uint8_t *aad, size_t aad_len,
	      const uint8_t *ct, size_t ct_len, uint8_t *pt)
{
	struct hpke_ctx ctx;
	size_t key_len;
	int rc;

	if (sk_r == NULL || enc == NULL || ct == NULL || aead_key_len(aead, &key_len) < 0 ||
	    !input_ok(info, info_len) || !input_ok(aad, aad_len) ||
	    ct_len > HPKE_MAX_INPUT_LEN + HPKE_TAG_LEN || (pt == NULL && ct_len > HPKE_TAG_LEN))
		return MOAT_E_INVAL;
	if (ct_len < HPKE_TAG_LEN)
		return MOAT_E_CRYPTO;
	rc = hpke_setup_recipient(&ctx, aead, sk_r, enc, info, info_len);
	if (rc == MOAT_OK)
		rc = hpke_ctx_open(&ctx, aad, aad_len, ct, ct_len, pt);
	hpke_ctx_fini(&ctx);
	/* the arguments were checked above: whatever fails now, the message caused it */
	return rc < 0 ? MOAT_E_CRYPTO : MOAT_OK;
}
