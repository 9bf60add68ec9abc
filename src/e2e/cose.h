/*
 * The end-to-end payload envelope (SECURITY-DESIGN §2.3, §2.6):
 * COSE_Encrypt0 (RFC 9052 §5.2, tag 16) under a per-sender key derived from
 * the group's master secret (kdf.h), and optional COSE_Sign1 (tag 18,
 * EdDSA/Ed25519) wrapped around it (encrypt-then-sign). Both bind the
 * resolved MQTT topic name through external_aad = ["moat/1", topic].
 *
 * Receiving is two steps: the decode functions parse and check the structure (no
 * keys needed) so the caller can pick the key for the kid context or the
 * signer, and check the replay window (replay.h); open and verify then
 * check alg, group, epoch and the tag or signature. Every error comes with
 * a static reason in <why> (may be NULL) that never holds secret bytes.
 * Epoch grace windows and key lookup belong to the caller's key cache.
 */
#ifndef MOAT_E2E_COSE_H
#define MOAT_E2E_COSE_H

#include <stdbool.h>
#include <stdint.h>

#include <moat/bytes.h>

#include "base/buf.h"
#include "e2e/kdf.h"

enum {
	COSE_TAG_ENCRYPT0 = 16,
	COSE_TAG_SIGN1 = 18,
	COSE_ALG_EDDSA = -8,
	COSE_GROUP_ID_LEN = 8,
	COSE_ED25519_SIG_LEN = 64,
	COSE_SIGN1_KID_MAX = 128, /* bytes of a signer's kid (the device id) */
};

/* The MQTT 5 Content Type of an Encrypt0 payload (RFC 9052 §11.2). */
#define COSE_CONTENT_TYPE_ENCRYPT0 "application/cose; cose-type=\"cose-encrypt0\""
/* ... and of a Sign1-wrapped one. */
#define COSE_CONTENT_TYPE_SIGN1 "application/cose; cose-type=\"cose-sign1\""

/* One group's key material for one epoch, as the Security Center releases it. */
struct cose_group {
	uint8_t group_id[COSE_GROUP_ID_LEN];
	uint32_t epoch;
	uint8_t master_secret[32]; /* wipe with OPENSSL_cleanse when done */
};

/* What a sender puts in the protected header. */
struct cose_seal_params {
	int alg;		     /* enum e2e_alg: the topic policy's */
	struct moat_bytes sender_id; /* 1..E2E_SENDER_ID_MAX bytes, from the SC */
	uint64_t seq;		     /* 0..E2E_SEQ_MAX, never reused (seq.h) */
	bool has_iat;		     /* add the CWT-claims header {6: iat} */
	int64_t iat;		     /* seconds since the epoch */
};

/* A decoded COSE_Encrypt0: views into the envelope's bytes. */
struct cose_encrypt0 {
	struct moat_bytes protected_hdr; /* as received: it is bound into the AAD */
	int alg;
	uint8_t group_id[COSE_GROUP_ID_LEN];
	uint32_t epoch;
	struct moat_bytes sender_id;
	uint64_t seq;
	bool has_iat;
	int64_t iat;
	struct moat_bytes ciphertext; /* ciphertext || 16-byte tag */
};

/* A decoded COSE_Sign1: views into the envelope's bytes. */
struct cose_sign1 {
	struct moat_bytes protected_hdr;
	struct moat_bytes kid; /* the signer, 1..COSE_SIGN1_KID_MAX bytes */
	struct moat_bytes payload;
	struct moat_bytes signature;
};

/*
 * Appends the COSE_Encrypt0 of <plaintext> for <topic> (non-empty) under
 * group <g> and <p> to <out> (<plaintext> must not point into <out>).
 * Returns MOAT_OK, MOAT_E_INVAL for an argument outside the contract (alg,
 * id length, seq range, empty topic), MOAT_E_NOMEM or MOAT_E_CRYPTO; on
 * error <out> is as it was.
 */
int cose_encrypt0_seal(const struct cose_group *g, const struct cose_seal_params *p,
		       struct moat_bytes topic, struct moat_bytes plaintext, struct buf *out);

/*
 * Parses the untrusted bytes <env> into <e> (views into <env>). Accepts only
 * tag 16, a protected header with exactly the labels 1, 4, 6, 10 and
 * optionally 15 = {6: iat}, in well-formed strict CBOR, an empty
 * unprotected header and a ciphertext at least a tag long. Returns MOAT_OK,
 * MOAT_E_MALFORMED (bad CBOR or structure) or MOAT_E_PROTOCOL (unknown
 * label), with <why> set.
 */
int cose_encrypt0_decode(struct moat_bytes env, struct cose_encrypt0 *e, const char **why);

/*
 * Decrypts <e> for <topic> with group <g>, appending the plaintext to <out>.
 * <expected_alg> comes from the topic policy, never from the message.
 * Returns MOAT_OK; MOAT_E_PROTOCOL when the alg is not <expected_alg> or the
 * kid context names another group or epoch; MOAT_E_CRYPTO when the tag does
 * not verify (forged, altered, wrong key or topic); MOAT_E_INVAL or
 * MOAT_E_NOMEM. <why> tells which. The caller commits <e>->seq to its replay
 * window only after MOAT_OK.
 */
int cose_encrypt0_open(const struct cose_encrypt0 *e, const struct cose_group *g, int expected_alg,
		       struct moat_bytes topic, struct buf *out, const char **why);

/*
 * The same two steps with keys the caller derived once with
 * cose_derive_keys and keeps per (group, epoch, sender, alg): the derivation
 * (two HKDF runs) costs more than sealing a small message. <keys> must be
 * the ones cose_derive_keys gives for <g>, the message's sender and alg.
 */
int cose_derive_keys(const struct cose_group *g, struct moat_bytes sender_id, int alg,
		     struct e2e_keys *out);
int cose_encrypt0_seal_keys(const struct cose_group *g, const struct e2e_keys *keys,
			    const struct cose_seal_params *p, struct moat_bytes topic,
			    struct moat_bytes plaintext, struct buf *out);
int cose_encrypt0_open_keys(const struct cose_encrypt0 *e, const struct cose_group *g,
			    const struct e2e_keys *keys, int expected_alg, struct moat_bytes topic,
			    struct buf *out, const char **why);

/*
 * Appends COSE_Sign1(<payload>) signed with the Ed25519 private key <seed>
 * (32 bytes, RFC 8032) and naming <kid> to <out>, binding <topic>
 * (<payload> must not point into <out>; on error <out> is as it was). Returns
 * MOAT_OK, MOAT_E_INVAL (kid length, empty topic), MOAT_E_NOMEM or
 * MOAT_E_CRYPTO.
 */
int cose_sign1_sign(const uint8_t seed[32], struct moat_bytes kid, struct moat_bytes topic,
		    struct moat_bytes payload, struct buf *out);

/* Signs <len> bytes of <msg> with Ed25519 into <sig>: a signer whose key the
 * caller does not hold in memory (a PKCS#11 token, the SC's signer). Returns
 * MOAT_OK or a negative MOAT_E_* code. */
typedef int cose_sign_fn(void *arg, const uint8_t *msg, size_t len,
			 uint8_t sig[COSE_ED25519_SIG_LEN]);

/*
 * cose_sign1_sign with the signature made by <sign>(<sign_arg>, ...) over
 * the Sig_structure: the same encoding, arguments and errors (and whatever
 * <sign> returns).
 */
int cose_sign1_sign_with(cose_sign_fn *sign, void *sign_arg, struct moat_bytes kid,
			 struct moat_bytes topic, struct moat_bytes payload, struct buf *out);

/*
 * Parses the untrusted bytes <env> into <s>: tag 18, protected {1: -8,
 * 4: kid} and nothing else, empty unprotected header, an attached payload
 * and a 64-byte signature. Returns MOAT_OK, MOAT_E_MALFORMED or
 * MOAT_E_PROTOCOL (another alg, unknown label), with <why> set.
 */
int cose_sign1_decode(struct moat_bytes env, struct cose_sign1 *s, const char **why);

/*
 * Verifies <s> for <topic> against the Ed25519 public key <pub> (32 bytes)
 * the caller looked up for s->kid. Returns MOAT_OK, MOAT_E_CRYPTO for a bad
 * signature, MOAT_E_INVAL or MOAT_E_NOMEM.
 */
int cose_sign1_verify(const struct cose_sign1 *s, const uint8_t pub[32], struct moat_bytes topic,
		      const char **why);

#endif
