/*
 * JWT (RFC 7519) verification for token authentication: compact JWS signed
 * with EdDSA (Ed25519), ES256 (P-256) or RS256 (RSA >= 2048), checked against
 * a set of PEM public keys, then the time, issuer and audience claims
 * (RFC 8725, RFC 9068). Pure: the caller gives the time; no globals, no
 * logging. What the identity may do (ACLs from roles/attrs), the cnf check
 * against the TLS certificate and revocation are left to the broker.
 */
#ifndef MOAT_AUTH_JWT_H
#define MOAT_AUTH_JWT_H

#include <stddef.h>
#include <stdint.h>

enum {
	JWT_TOKEN_MAX = 8192,	   /* bytes of a compact token */
	JWT_LEEWAY_DEFAULT_S = 30, /* clock skew allowed both ways */
	JWT_LEEWAY_MAX_S = 60,
	JWT_ROLES_MAX = 32,
	JWT_ROLE_LEN_MAX = 64,
	JWT_ATTRS_MAX = 32,
	JWT_ATTR_KEY_LEN_MAX = 64,
	JWT_ATTR_VALUE_LEN_MAX = 256,
	JWT_KID_LEN_MAX = 128,
};

enum jwt_alg {
	JWT_ALG_EDDSA = 1,
	JWT_ALG_ES256 = 2,
	JWT_ALG_RS256 = 3,
};

/* An immutable, refcounted set of public keys; share one between threads. */
struct jwt_keys;

/* One key file for jwt_keys_load(): <kid> may be NULL (the key then serves
 * tokens without a kid whose alg matches). */
struct jwt_key_spec {
	const char *path;
	const char *kid;
};

/* What a token must satisfy. Zero/NULL fields are not checked, except
 * leeway_s: start from jwt_expect_init() to get the default. */
struct jwt_expect {
	const char *issuer;	    /* iss must equal it; NULL: any */
	const char *audience;	    /* aud (string or array) must contain it; NULL: any */
	const char *username_claim; /* claim naming the user; NULL: "username" */
	int64_t leeway_s;	    /* 0..JWT_LEEWAY_MAX_S */
};

struct jwt_attr {
	char *key;
	char *value; /* numbers and booleans as text: "3", "2.5", "true" */
};

/* A verified token's identity. Every pointer is owned (heap) and freed by
 * jwt_claims_fini(); optional claims that were absent are NULL / 0. */
struct jwt_claims {
	char *sub;
	char *username; /* expect->username_claim, else sub; never NULL after MOAT_OK */
	char *client_id;
	char *iss;
	char *jti;
	char *cnf_x5t_s256; /* cnf."x5t#S256" (RFC 8705), for the TLS certificate check */
	int64_t exp;	    /* seconds since the epoch, floor of the claim */
	int64_t nbf;	    /* 0 when absent */
	int64_t iat;	    /* 0 when absent */
	char **roles;
	size_t roles_count;
	struct jwt_attr *attrs;
	size_t attrs_count;
};

/* Builds a key set from <count> PEM public-key files in <specs>. Accepted:
 * Ed25519 (EdDSA), EC P-256 (ES256), RSA of at least 2048 bits (RS256).
 * A private key, another curve or type, a short RSA key, an unreadable or
 * bad file or a repeated kid fail the whole load; <why> (may be NULL) then
 * names the file and what to use instead. On success *<out> holds the set
 * with one reference. To reload, build a new set and swap the pointer; verifies
 * that took a reference to the old one finish with it. Any thread.
 * Returns MOAT_OK, MOAT_E_CONFIG, MOAT_E_IO, MOAT_E_INVAL or MOAT_E_NOMEM. */
int jwt_keys_load(struct jwt_keys **out, const struct jwt_key_spec *specs, size_t count, char *why,
		  size_t why_len);

/* Number of keys in <ks>. */
size_t jwt_keys_count(const struct jwt_keys *ks);

/* Returns <ks> with one more reference (atomic; any thread). */
struct jwt_keys *jwt_keys_ref(struct jwt_keys *ks);

/* Drops one reference; frees the set at zero. NULL is fine. */
void jwt_keys_unref(struct jwt_keys *ks);

/* Sets <e> to no issuer, no audience, "username", JWT_LEEWAY_DEFAULT_S. */
void jwt_expect_init(struct jwt_expect *e);

/* Verifies the compact JWS <token> (<token_len> bytes, not NUL-terminated)
 * with <keys> at time <now_s> (seconds since the epoch) against <expect>
 * (NULL: jwt_expect_init() defaults). The header's kid selects the key (no
 * kid: every key of the header's alg is tried); the alg must be that key's.
 * Claims are read only after the signature verifies. On MOAT_OK, <out> holds
 * the claims (release with jwt_claims_fini); on error it is empty. <why>
 * (may be NULL) gets a reason that never quotes the token.
 * Returns MOAT_OK, MOAT_E_MALFORMED (encoding, JSON, claim types, limits),
 * MOAT_E_UNSUPPORTED (alg or header refused), MOAT_E_DENIED (key unknown,
 * signature, time, iss, aud), MOAT_E_INVAL (bad <expect> or <now_s>) or
 * MOAT_E_NOMEM. Borrows everything; thread-safe with a shared <keys>. */
int jwt_verify(const struct jwt_keys *keys, const char *token, size_t token_len,
	       const struct jwt_expect *expect, int64_t now_s, struct jwt_claims *out, char *why,
	       size_t why_len);

/* Frees what <c> owns and zeroes it. NULL is fine. */
void jwt_claims_fini(struct jwt_claims *c);

#endif
