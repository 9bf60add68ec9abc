/*
 * HPKE base mode (RFC 9180) for sealing a group master secret to a device's
 * X25519 key (key release, SECURITY-DESIGN.md §2.8). One KEM and one KDF:
 * DHKEM(X25519, HKDF-SHA256) = 0x0020 and HKDF-SHA256 = 0x0001; AEADs
 * ChaCha20Poly1305 = 0x0003 (ours) and AES-128-GCM = 0x0001 (the RFC's A.1
 * vectors, interop). Built on OpenSSL 3.0 primitives because OSSL_HPKE_*
 * arrived only in 3.2. No PSK or Auth modes. Nothing here allocates beyond
 * OpenSSL's own contexts, logs, or keeps state between calls; every function
 * may be called from any thread.
 */
#ifndef MOAT_E2E_HPKE_H
#define MOAT_E2E_HPKE_H

#include <stddef.h>
#include <stdint.h>

enum hpke_aead {
	HPKE_AES_128_GCM = 0x0001,
	HPKE_CHACHA20_POLY1305 = 0x0003,
};

enum {
	HPKE_KEY_LEN = 32,    /* X25519 private and public keys, enc (Nsk = Npk = Nenc) */
	HPKE_SECRET_LEN = 32, /* KEM shared secret and HKDF-SHA256 output (Nsecret = Nh) */
	HPKE_NONCE_LEN = 12,  /* Nn for both AEADs */
	HPKE_TAG_LEN = 16,    /* Nt for both AEADs */
};

/* Largest plaintext, AAD, info or exporter context accepted (OpenSSL takes int lengths). */
#define HPKE_MAX_INPUT_LEN ((size_t)1 << 30)

/* Writes a fresh X25519 key pair (RFC 9180 GenerateKeyPair): <sk> from
 * RAND_bytes, <pk> its public key. Returns MOAT_OK or MOAT_E_CRYPTO (no
 * randomness, OpenSSL failure); on error both outputs are zeroed. */
int hpke_keygen(uint8_t sk[32], uint8_t pk[32]);

/* DeriveKeyPair (RFC 9180 §7.1.3) for X25519: a key pair determined by the
 * <ikm_len> bytes of <ikm>, which must hold at least 32 bytes of entropy.
 * Returns MOAT_OK, MOAT_E_INVAL (<ikm> NULL, shorter than 32 bytes or longer
 * than HPKE_MAX_INPUT_LEN) or MOAT_E_CRYPTO; on error both outputs are zeroed. */
int hpke_derive_keypair(const uint8_t *ikm, size_t ikm_len, uint8_t sk[32], uint8_t pk[32]);

/* Single-shot base-mode Seal (RFC 9180 §6.1) of <pt_len> bytes of <pt> to
 * <pk_r>, bound to <info> and <aad> (either may be NULL when its length is 0;
 * <pt> likewise). <ikm_e> is NULL for a random ephemeral key, or 32 bytes fed
 * to DeriveKeyPair for deterministic tests only: a repeated <ikm_e> to one
 * <pk_r> repeats the AEAD key and nonce. Writes the 32-byte encapsulated key
 * to <enc> and pt || 16-byte tag to <ct> (room for <pt_len> + 16 bytes).
 * Returns MOAT_OK, MOAT_E_INVAL (NULL where data is needed, unknown <aead>,
 * a length over HPKE_MAX_INPUT_LEN) or MOAT_E_CRYPTO (<pk_r> is a low-order
 * point, OpenSSL failure). */
int hpke_seal(enum hpke_aead aead, const uint8_t pk_r[32], const uint8_t *info, size_t info_len,
	      const uint8_t *aad, size_t aad_len, const uint8_t *pt, size_t pt_len,
	      const uint8_t *ikm_e, uint8_t enc[32], uint8_t *ct);

/* Single-shot base-mode Open (RFC 9180 §6.1): recovers the <ct_len> - 16
 * plaintext bytes sealed to the key pair of <sk_r> under <enc>, <info> and
 * <aad> into <pt> (may be NULL when <ct_len> is 16). Returns MOAT_OK,
 * MOAT_E_INVAL (NULL where data is needed, unknown <aead>, a length over
 * HPKE_MAX_INPUT_LEN + 16) or MOAT_E_CRYPTO for every failure that the
 * message can cause: <ct_len> under 16, a low-order <enc>, another key, info,
 * aad or a changed byte. On MOAT_E_CRYPTO nothing is left in <pt>. */
int hpke_open(enum hpke_aead aead, const uint8_t sk_r[32], const uint8_t enc[32],
	      const uint8_t *info, size_t info_len, const uint8_t *aad, size_t aad_len,
	      const uint8_t *ct, size_t ct_len, uint8_t *pt);

/*
 * Contexts (RFC 9180 §5.2) for more than one message under one encapsulation.
 * The struct lives in caller storage and holds secrets: end it with
 * hpke_ctx_fini, which wipes it. Fields are read-only for callers (tests
 * compare key and base_nonce with the RFC's vectors).
 */
enum hpke_role {
	HPKE_SENDER = 1,    /* may seal and export */
	HPKE_RECIPIENT = 2, /* may open and export */
};

struct hpke_ctx {
	enum hpke_role role;
	enum hpke_aead aead;
	size_t key_len; /* Nk: 16 (AES-128-GCM) or 32 */
	uint8_t key[32];
	uint8_t base_nonce[HPKE_NONCE_LEN];
	uint8_t exporter_secret[HPKE_SECRET_LEN];
	uint64_t seq; /* next sequence number */
};

/* SetupBaseS (RFC 9180 §5.1.1): encapsulates to <pk_r> (<ikm_e> as in
 * hpke_seal), writes <enc> and initialises <ctx> as a sender at sequence 0.
 * Returns as hpke_seal; on error <ctx> is wiped. */
int hpke_setup_sender(struct hpke_ctx *ctx, enum hpke_aead aead, const uint8_t pk_r[32],
		      const uint8_t *info, size_t info_len, const uint8_t *ikm_e, uint8_t enc[32]);

/* SetupBaseR (RFC 9180 §5.1.1): decapsulates <enc> with <sk_r> and
 * initialises <ctx> as a recipient at sequence 0. Returns MOAT_OK,
 * MOAT_E_INVAL (bad arguments as in hpke_open) or MOAT_E_CRYPTO (low-order
 * <enc>, OpenSSL failure); on error <ctx> is wiped. */
int hpke_setup_recipient(struct hpke_ctx *ctx, enum hpke_aead aead, const uint8_t sk_r[32],
			 const uint8_t enc[32], const uint8_t *info, size_t info_len);

/* ContextS.Seal (RFC 9180 §5.2): seals <pt> with the nonce for ctx->seq into
 * <ct> (room for <pt_len> + 16 bytes), then advances the sequence. Returns
 * MOAT_OK, MOAT_E_INVAL (not a sender context, bad arguments), MOAT_E_LIMIT
 * (the sequence is exhausted: set up a new context) or MOAT_E_CRYPTO. */
int hpke_ctx_seal(struct hpke_ctx *ctx, const uint8_t *aad, size_t aad_len, const uint8_t *pt,
		  size_t pt_len, uint8_t *ct);

/* ContextR.Open (RFC 9180 §5.2): opens <ct> with the nonce for ctx->seq into
 * <pt> (room for <ct_len> - 16 bytes) and advances the sequence only on
 * success. Returns MOAT_OK, MOAT_E_INVAL (not a recipient context, bad
 * arguments), MOAT_E_LIMIT (sequence exhausted) or MOAT_E_CRYPTO (any
 * authentication failure; nothing is left in <pt>). */
int hpke_ctx_open(struct hpke_ctx *ctx, const uint8_t *aad, size_t aad_len, const uint8_t *ct,
		  size_t ct_len, uint8_t *pt);

/* Context.Export (RFC 9180 §5.3): writes <out_len> (at most 255 * 32) bytes
 * derived from the context's exporter secret and <exporter_context> to
 * <out>. Returns MOAT_OK, MOAT_E_INVAL or MOAT_E_CRYPTO. */
int hpke_export(const struct hpke_ctx *ctx, const uint8_t *exporter_context, size_t context_len,
		uint8_t *out, size_t out_len);

/* Wipes <ctx> (keys, nonce, exporter secret). NULL is fine. */
void hpke_ctx_fini(struct hpke_ctx *ctx);

/*
 * Building blocks, public so the known-answer tests can check each step the
 * RFC's vectors list. Applications use the functions above.
 */

/* Encap (RFC 9180 §4.1) to <pk_r>: writes <enc> and <shared_secret>.
 * <ikm_e> as in hpke_seal. Returns MOAT_OK, MOAT_E_INVAL or MOAT_E_CRYPTO
 * (low-order <pk_r>: the X25519 output is all zero, §7.1.4). */
int hpke_encap(const uint8_t pk_r[32], const uint8_t *ikm_e, uint8_t enc[32],
	       uint8_t shared_secret[32]);

/* Decap (RFC 9180 §4.1) of <enc> with <sk_r>: writes <shared_secret>.
 * Returns MOAT_OK, MOAT_E_INVAL or MOAT_E_CRYPTO (low-order <enc>). */
int hpke_decap(const uint8_t enc[32], const uint8_t sk_r[32], uint8_t shared_secret[32]);

/* LabeledExtract (RFC 9180 §4) with HKDF-SHA256 under <suite_id>
 * (<suite_len> bytes: "KEM" || kem_id or "HPKE" || kem_id || kdf_id ||
 * aead_id); <salt> may be NULL when <salt_len> is 0 (an empty salt). Writes
 * the 32-byte <prk>. Returns MOAT_OK, MOAT_E_INVAL or MOAT_E_CRYPTO. */
int hpke_labeled_extract(const uint8_t *suite_id, size_t suite_len, const uint8_t *salt,
			 size_t salt_len, const char *label, const uint8_t *ikm, size_t ikm_len,
			 uint8_t prk[32]);

/* LabeledExpand (RFC 9180 §4) with HKDF-SHA256: writes <out_len> bytes (1 to
 * 255 * 32) to <out>. Returns MOAT_OK, MOAT_E_INVAL or MOAT_E_CRYPTO. */
int hpke_labeled_expand(const uint8_t *suite_id, size_t suite_len, const uint8_t prk[32],
			const char *label, const uint8_t *info, size_t info_len, uint8_t *out,
			size_t out_len);

/* Writes the 10-byte HPKE suite_id "HPKE" || 0x0020 || 0x0001 || <aead> into <out>. */
void hpke_suite_id(enum hpke_aead aead, uint8_t out[10]);

#endif
