/*
 * Per-sender keys and nonces from a group's master secret, following the
 * OSCORE pattern (RFC 8613 §3.2.1, §5.2) as SECURITY-DESIGN §2.3 adapts it:
 *   sender_key = HKDF-SHA256(salt = kid_context, IKM = MS,
 *                            info = [sender_id, kid_context, alg, "Key", 32])
 *   common_iv  = HKDF-SHA256(salt = kid_context, IKM = MS,
 *                            info = [h'', kid_context, alg, "IV", 12])
 *   nonce      = common_iv XOR (len(sender_id) || pad6(sender_id) || pad5(seq))
 * so two senders never share a (key, nonce) pair and one sender's nonces
 * differ while its sequence numbers do.
 */
#ifndef MOAT_E2E_KDF_H
#define MOAT_E2E_KDF_H

#include <stdint.h>

#include <moat/bytes.h>

enum {
	E2E_MASTER_LEN = 32,
	E2E_KID_CONTEXT_LEN = 12, /* group_id(8) || epoch(4, big-endian) */
	E2E_SENDER_ID_MAX = 6,	  /* nonce length - 6 (RFC 8613 §5.2) */
};

/* The largest sequence number: a partial IV has at most 5 bytes. */
#define E2E_SEQ_MAX ((UINT64_C(1) << 40) - 1)

struct e2e_keys {
	uint8_t sender_key[32];
	uint8_t common_iv[12];
};

/*
 * Derives <out> for sender <sender_id> (1..E2E_SENDER_ID_MAX bytes) and
 * <alg> (enum e2e_alg) from the master secret <ms> and <kid_context>.
 * Returns MOAT_OK, MOAT_E_INVAL for a bad id length or alg, MOAT_E_NOMEM or
 * MOAT_E_CRYPTO. The caller wipes <out> (OPENSSL_cleanse) when done.
 */
int e2e_derive_keys(const uint8_t ms[32], const uint8_t kid_context[12],
		    struct moat_bytes sender_id, int alg, struct e2e_keys *out);

/*
 * Writes the AEAD nonce for <sender_id> (at most E2E_SENDER_ID_MAX bytes)
 * and <seq> (at most E2E_SEQ_MAX) to <nonce>. The caller checks the ranges.
 */
void e2e_nonce(const uint8_t common_iv[12], struct moat_bytes sender_id, uint64_t seq,
	       uint8_t nonce[12]);

#endif
