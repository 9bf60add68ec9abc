/*
 * The two payload AEADs (ChaCha20-Poly1305 on libsodium for small payloads,
 * else on OpenSSL 3 like AES-256-GCM), with 32-byte keys, 12-byte nonces and 16-byte tags appended to the
 * ciphertext. Nonce uniqueness is the caller's job (kdf.h, seq.h).
 */
#ifndef MOAT_E2E_AEAD_H
#define MOAT_E2E_AEAD_H

#include <stddef.h>
#include <stdint.h>

#include <moat/bytes.h>

/*
 * Encrypts <pt> under <key>/<nonce> for <alg> (enum e2e_alg), authenticating
 * <aad>, and writes pt.len + E2E_TAG_LEN bytes (ciphertext || tag) to <out>.
 * <out> may equal pt.ptr. Returns MOAT_OK, MOAT_E_INVAL for another alg, or
 * MOAT_E_CRYPTO (or MOAT_E_NOMEM) when the library fails.
 */
int e2e_aead_seal(int alg, const uint8_t key[32], const uint8_t nonce[12], struct moat_bytes aad,
		  struct moat_bytes pt, uint8_t *out);

/*
 * Checks the tag of <ct> (ciphertext || tag) under <key>/<nonce>/<aad> and
 * writes ct.len - E2E_TAG_LEN plaintext bytes to <out>. Returns MOAT_OK,
 * MOAT_E_CRYPTO when the tag does not verify (the output is then wiped),
 * MOAT_E_MALFORMED when <ct> is shorter than a tag, MOAT_E_INVAL for
 * another alg.
 */
int e2e_aead_open(int alg, const uint8_t key[32], const uint8_t nonce[12], struct moat_bytes aad,
		  struct moat_bytes ct, uint8_t *out);

#endif
