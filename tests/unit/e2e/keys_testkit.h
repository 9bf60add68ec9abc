/*
 * Ed25519 / X25519 helpers shared by the key-release tests and fuzz
 * targets (test_keyrel.c, tests/unit/sc, fuzz_sc_request.c): public keys
 * from seeds, and a keyrel_sign_fn over an in-memory seed standing in for
 * the SC's signer. Failures abort: they are the test's own mistakes.
 */
#ifndef MOAT_TESTS_KEYS_TESTKIT_H
#define MOAT_TESTS_KEYS_TESTKIT_H

#include <stddef.h>
#include <stdint.h>

/* The public key of the 32-byte private key <seed> of OpenSSL type <type>
 * (EVP_PKEY_ED25519 or EVP_PKEY_X25519) into <pub>. */
void testkit_raw_pub(int type, const uint8_t seed[32], uint8_t pub[32]);

/* keyrel_sign_fn: Ed25519 signature of <msg> with the seed <arg> (32 bytes). */
int testkit_ed25519_sign(void *arg, const uint8_t *msg, size_t len, uint8_t sig[64]);

#endif
