/*
 * Internals shared by the JWT files: the key set's layout (jwt_keys.c builds
 * it, jwt.c reads it), claim checking (jwt_claims.c) and the diagnostic text
 * helper. Not for use outside src/auth/jwt*.c.
 */
#ifndef MOAT_AUTH_JWT_IMPL_H
#define MOAT_AUTH_JWT_IMPL_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>
#include <openssl/evp.h>

#include "auth/jwt.h"

/* Latest NumericDate accepted (year ~33658): keeps time arithmetic far from overflow. */
#define JWT_TIME_MAX INT64_C(1000000000000000)

struct jwt_key {
	EVP_PKEY *pkey;
	enum jwt_alg alg;
	char *kid; /* NULL: selected only by alg */
};

struct jwt_keys {
	atomic_size_t refs;
	size_t count;
	struct jwt_key keys[]; /* count entries, immutable after load */
};

/* JOSE name of <alg> ("EdDSA", "ES256", "RS256"). */
const char *jwt_alg_name(enum jwt_alg alg);

/* Formats a reason into <why> (<why_len> bytes, NUL-terminated) when <why> is
 * not NULL and <why_len> > 0. */
void jwt_why(char *why, size_t why_len, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Checks the verified claims object <payload> against <expect> at <now_s> and
 * copies the identity into <out> (zeroed by the caller). On error <out> may
 * hold partial copies: the caller runs jwt_claims_fini. Returns MOAT_OK,
 * MOAT_E_MALFORMED, MOAT_E_DENIED or MOAT_E_NOMEM with <why> filled. */
int jwt_claims_check(const cJSON *payload, const struct jwt_expect *expect, int64_t now_s,
		     struct jwt_claims *out, char *why, size_t why_len);

#endif
