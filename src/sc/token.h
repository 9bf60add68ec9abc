/*
 * The Security Center's access tokens (SECURITY-DESIGN.md 2.7): JWTs in the
 * RFC 9068 profile (header {"alg":"EdDSA","typ":"at+jwt","kid"}), signed with
 * the SC's Ed25519 token key through a signer, carrying the thing's roles
 * and attributes and bound (RFC 8705 cnf x5t#S256) to its newest valid
 * certificate, so moatd verifies them offline (src/auth/jwt.c) and a stolen
 * token is useless without the device key.
 */
#ifndef MOAT_SC_TOKEN_H
#define MOAT_SC_TOKEN_H

#include <stdint.h>

#include "sc/registry.h"
#include "sc/signer.h"

enum {
	SC_TOKEN_TTL_DEFAULT_S = 15 * 60,
	SC_TOKEN_TTL_MIN_S = 5 * 60,
	SC_TOKEN_TTL_MAX_S = 60 * 60,
	SC_TOKEN_KID_LEN = 43, /* base64url of a SHA-256 */
	SC_TOKEN_JTI_LEN = 22, /* base64url of 16 random bytes */
	SC_TOKEN_MAX = 8192,   /* bytes: what moatd accepts (JWT_TOKEN_MAX) */
};

#define SC_TOKEN_ISSUER_DEFAULT "moat-sc"
#define SC_TOKEN_AUDIENCE_DEFAULT "moat"

struct sc_token_req {
	const char *issuer;   /* iss; NULL: SC_TOKEN_ISSUER_DEFAULT */
	const char *audience; /* aud, the broker id; NULL: SC_TOKEN_AUDIENCE_DEFAULT */
	uint32_t ttl_s;	      /* 0: SC_TOKEN_TTL_DEFAULT_S; else MIN..MAX */
	int64_t now_s;	      /* iat and nbf */
};

/* What was issued, for the answer and the audit trail (never the token). */
struct sc_token_info {
	char kid[SC_TOKEN_KID_LEN + 1];
	char jti[SC_TOKEN_JTI_LEN + 1];
	int64_t exp;
};

/* The key id of the Ed25519 signer <s>: its RFC 7638 JWK thumbprint
 * (base64url SHA-256 of {"crv":"Ed25519","kty":"OKP","x":...}); moatd is
 * configured with it: `auth_token_key token.pub <kid>`. */
int sc_token_kid(struct signer *s, char kid[SC_TOKEN_KID_LEN + 1], struct moat_diag *d);

/* Issues a token for the thing <name> into *<token> (NUL-terminated, the
 * caller frees it) signed by <s> (Ed25519): claims iss, sub and client_id
 * (= <name>), aud, iat, nbf, exp, jti, roles (the comma-separated values of
 * the "role" attribute), attrs (all attributes) and cnf {"x5t#S256"} of
 * the newest unrevoked, unexpired certificate. MOAT_E_NOTFOUND for an
 * unknown thing, MOAT_E_DENIED for a revoked thing or one without such a
 * certificate, MOAT_E_INVAL for a TTL outside 5..60 minutes or a signer
 * that is not Ed25519, MOAT_E_LIMIT for a token over SC_TOKEN_MAX. */
int sc_token_issue(struct registry *reg, struct signer *s, const char *name,
		   const struct sc_token_req *req, char **token, struct sc_token_info *info,
		   struct moat_diag *d);

#endif
