/*
 * The payload algorithms Moat offers, by COSE id (RFC 9053), and the one
 * place that turns a configured name into one: exactly two AEADs exist.
 * Weak or unauthenticated algorithms are refused by name with a reason and
 * the replacement (SECURITY-DESIGN §2.11).
 */
#ifndef MOAT_E2E_ALG_H
#define MOAT_E2E_ALG_H

#include <stdbool.h>

enum e2e_alg {
	E2E_ALG_A256GCM = 3,		/* AES-256-GCM, 128-bit tag */
	E2E_ALG_CHACHA20_POLY1305 = 24, /* RFC 8439 */
};

enum {
	E2E_KEY_LEN = 32,
	E2E_NONCE_LEN = 12,
	E2E_TAG_LEN = 16,
};

/*
 * Maps <name> ("chacha20-poly1305" or "aes-256-gcm", case-insensitive) to
 * its COSE id in <alg>. Returns MOAT_OK; MOAT_E_UNSUPPORTED for a refused or
 * unknown name, with <why> (may be NULL) set to a static sentence naming
 * the reason and what to use instead; MOAT_E_INVAL for a NULL name.
 */
int e2e_alg_from_name(const char *name, int *alg, const char **why);

/* True for the two AEAD ids above. */
bool e2e_alg_is_valid(int alg);

/* The configuration name of <alg>, or NULL when it is not one of ours. */
const char *e2e_alg_name(int alg);

#endif
