/*
 * Algorithm names (see alg.h). A name is split into words at '-', '_', '/'
 * and spaces, so "aes-256-cbc", "DES-EDE3" and "rsa_oaep" are all caught.
 */
#include "e2e/alg.h"

#include <stdbool.h>
#include <string.h>
#include <strings.h>

#include <moat/error.h>

#define USE_AEAD "use chacha20-poly1305 or aes-256-gcm"

struct refusal {
	const char *word; /* a whole word of the name, or a prefix when it ends in '*' */
	const char *why;
};

static const struct refusal refusals[] = {
    {"3des", "3DES has a 64-bit block (Sweet32) and is disallowed by NIST SP 800-131A; " USE_AEAD},
    {"tdes", "3DES has a 64-bit block (Sweet32) and is disallowed by NIST SP 800-131A; " USE_AEAD},
    {"tripledes",
     "3DES has a 64-bit block (Sweet32) and is disallowed by NIST SP 800-131A; " USE_AEAD},
    {"des3", "3DES has a 64-bit block (Sweet32) and is disallowed by NIST SP 800-131A; " USE_AEAD},
    {"ede*", "3DES has a 64-bit block (Sweet32) and is disallowed by NIST SP 800-131A; " USE_AEAD},
    {"desx", "DES has a 56-bit key, found by brute force in hours; " USE_AEAD},
    {"des", "DES has a 56-bit key, found by brute force in hours; " USE_AEAD},
    {"blowfish", "Blowfish has a 64-bit block (Sweet32) and no authentication; " USE_AEAD},
    {"bf", "Blowfish has a 64-bit block (Sweet32) and no authentication; " USE_AEAD},
    {"rc4",
     "RC4 has biased keystream bytes (prohibited by RFC 7465) and no authentication; " USE_AEAD},
    {"arcfour",
     "RC4 has biased keystream bytes (prohibited by RFC 7465) and no authentication; " USE_AEAD},
    {"ecb",
     "ECB shows equal plaintext blocks as equal ciphertext and has no authentication; " USE_AEAD},
    {"cbc", "CBC without authentication is malleable (padding oracles); use an AEAD: "
	    "chacha20-poly1305 or aes-256-gcm"},
    {"cfb*", "CFB without authentication is malleable (bit flips pass); use an AEAD: "
	     "chacha20-poly1305 or aes-256-gcm"},
    {"ofb", "OFB without authentication is malleable (bit flips pass); use an AEAD: "
	    "chacha20-poly1305 or aes-256-gcm"},
    {"rsa*", "RSA key transport has no forward secrecy and invites padding oracles; group keys are "
	     "released with HPKE (X25519), payloads use chacha20-poly1305 or aes-256-gcm"},
    {"secp160*", "ECC-160 gives about 80-bit security, below NIST's 112-bit floor (SP 800-131A); "
		 "keys are agreed with X25519, payloads use chacha20-poly1305 or aes-256-gcm"},
    {"ecc160*", "ECC-160 gives about 80-bit security, below NIST's 112-bit floor (SP 800-131A); "
		"keys are agreed with X25519, payloads use chacha20-poly1305 or aes-256-gcm"},
    {"160", "ECC-160 gives about 80-bit security, below NIST's 112-bit floor (SP 800-131A); keys "
	    "are agreed with X25519, payloads use chacha20-poly1305 or aes-256-gcm"},
};

static bool word_matches(const char *w, size_t n, const char *pat)
{
	size_t m = strlen(pat);

	if (m > 0 && pat[m - 1] == '*')
		return n >= m - 1 && strncasecmp(w, pat, m - 1) == 0;
	return n == m && strncasecmp(w, pat, n) == 0;
}

/* The reason <name> is refused, or NULL when none of its words is weak. The
 * table order decides between words ("des-ede3-cbc" is 3DES, not DES). */
static const char *refusal_for(const char *name)
{
	for (size_t i = 0; i < sizeof(refusals) / sizeof(refusals[0]); i++) {
		const char *w = name;

		while (*w != '\0') {
			size_t n = strcspn(w, "-_/ ");

			if (word_matches(w, n, refusals[i].word))
				return refusals[i].why;
			w += n;
			if (*w != '\0')
				w++;
		}
	}
	return NULL;
}

int e2e_alg_from_name(const char *name, int *alg, const char **why)
{
	const char *reason;

	if (name == NULL)
		return MOAT_E_INVAL;
	if (strcasecmp(name, "chacha20-poly1305") == 0) {
		*alg = E2E_ALG_CHACHA20_POLY1305;
		return MOAT_OK;
	}
	if (strcasecmp(name, "aes-256-gcm") == 0) {
		*alg = E2E_ALG_A256GCM;
		return MOAT_OK;
	}
	reason = refusal_for(name);
	if (why != NULL)
		*why = reason != NULL ? reason
				      : "unknown payload algorithm; only chacha20-poly1305 and "
					"aes-256-gcm are offered";
	return MOAT_E_UNSUPPORTED;
}

bool e2e_alg_is_valid(int alg)
{
	return alg == E2E_ALG_A256GCM || alg == E2E_ALG_CHACHA20_POLY1305;
}

const char *e2e_alg_name(int alg)
{
	switch (alg) {
	case E2E_ALG_A256GCM:
		return "aes-256-gcm";
	case E2E_ALG_CHACHA20_POLY1305:
		return "chacha20-poly1305";
	}
	return NULL;
}
