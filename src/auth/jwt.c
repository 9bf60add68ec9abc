/*
 * JWT verification, part one: the compact JWS (RFC 7515 §7.1). Splits and
 * strictly decodes the three base64url parts, checks the JOSE header (alg
 * allow-list bound to the key, refused header parameters), and verifies the
 * signature with OpenSSL 3 EVP before any claim is read (jwt_claims.c).
 */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/evp.h>

#include <moat/error.h>

#include "auth/jwt_impl.h"
#include "base/base64.h"

enum {
	ES256_SIG_LEN = 64,
	ED25519_SIG_LEN = 64,
	SAFE_TEXT_MAX = 32,
};

static const char sign_with[] = "sign with EdDSA, ES256 or RS256";

/* Decoded token parts; each buffer NUL-terminated for cJSON. */
struct parts {
	const char *signing_input; /* header.payload, borrowed from the token */
	size_t signing_input_len;
	uint8_t *header;
	size_t header_len;
	uint8_t *payload;
	size_t payload_len;
	uint8_t *sig;
	size_t sig_len;
};

static void parts_fini(struct parts *p)
{
	free(p->header);
	free(p->payload);
	free(p->sig);
}

/* Copies attacker-controlled <s> into <dst> for a diagnostic: printable ASCII
 * only, at most SAFE_TEXT_MAX characters. */
static void safe_text(char dst[SAFE_TEXT_MAX + 4], const char *s)
{
	size_t i;

	for (i = 0; s[i] != '\0' && i < SAFE_TEXT_MAX; i++)
		dst[i] = (s[i] >= 0x20 && s[i] < 0x7f && s[i] != '"') ? s[i] : '?';
	if (s[i] != '\0')
		dst[i++] = '.', dst[i++] = '.', dst[i++] = '.';
	dst[i] = '\0';
}

/* Strict base64url decode of <text> into a fresh buffer with a NUL after the bytes. */
static int decode_part(const char *text, size_t len, uint8_t **out, size_t *out_len)
{
	size_t cap = b64_decoded_max(len);
	uint8_t *buf = malloc(cap + 1);
	int n;

	if (buf == NULL)
		return MOAT_E_NOMEM;
	n = b64_decode(text, len, buf, cap, B64_URL);
	if (n < 0) {
		free(buf);
		return MOAT_E_MALFORMED;
	}
	buf[n] = '\0';
	*out = buf;
	*out_len = (size_t)n;
	return MOAT_OK;
}

static int split(const char *token, size_t len, struct parts *p, char *why, size_t why_len)
{
	const char *dot1, *dot2;
	int rc;

	if (len == 0 || len > JWT_TOKEN_MAX) {
		jwt_why(why, why_len, "token is empty or longer than %d bytes", JWT_TOKEN_MAX);
		return MOAT_E_MALFORMED;
	}
	dot1 = memchr(token, '.', len);
	dot2 = dot1 != NULL ? memchr(dot1 + 1, '.', len - (size_t)(dot1 + 1 - token)) : NULL;
	if (dot2 == NULL || memchr(dot2 + 1, '.', len - (size_t)(dot2 + 1 - token)) != NULL) {
		jwt_why(why, why_len, "token is not a compact JWS of exactly three parts");
		return MOAT_E_MALFORMED;
	}
	p->signing_input = token;
	p->signing_input_len = (size_t)(dot2 - token);
	rc = decode_part(token, (size_t)(dot1 - token), &p->header, &p->header_len);
	if (rc == MOAT_OK)
		rc = decode_part(dot1 + 1, (size_t)(dot2 - dot1 - 1), &p->payload, &p->payload_len);
	if (rc == MOAT_OK)
		rc = decode_part(dot2 + 1, len - (size_t)(dot2 + 1 - token), &p->sig, &p->sig_len);
	if (rc == MOAT_E_MALFORMED)
		jwt_why(why, why_len, "token part is not canonical base64url");
	return rc;
}

/* True when an object anywhere in <j> has two members of the same name. */
static bool has_duplicate_names(const cJSON *j)
{
	for (const cJSON *c = j != NULL ? j->child : NULL; c != NULL; c = c->next) {
		if (cJSON_IsObject(j)) {
			for (const cJSON *d = c->next; d != NULL; d = d->next) {
				if (c->string != NULL && d->string != NULL &&
				    strcmp(c->string, d->string) == 0)
					return true;
			}
		}
		if (has_duplicate_names(c))
			return true;
	}
	return false;
}

/* Parses <len> bytes at <text> (NUL at text[len]) as one JSON object with
 * unique member names. cJSON turns \u0000 into a terminator, so it is refused. */
static int parse_object(const char *text, size_t len, cJSON **out)
{
	const char *end = NULL;
	cJSON *j;

	if (memchr(text, '\0', len) != NULL || strstr(text, "\\u0000") != NULL)
		return MOAT_E_MALFORMED;
	j = cJSON_ParseWithOpts(text, &end, 1);
	if (j == NULL || !cJSON_IsObject(j) || has_duplicate_names(j)) {
		cJSON_Delete(j);
		return MOAT_E_MALFORMED;
	}
	*out = j;
	return MOAT_OK;
}

/* Maps the header's alg to one we accept, or explains the refusal. */
static int header_alg(const char *alg, enum jwt_alg *out, char *why, size_t why_len)
{
	char safe[SAFE_TEXT_MAX + 4];

	*out = 0;
	if (strcmp(alg, "EdDSA") == 0)
		*out = JWT_ALG_EDDSA;
	else if (strcmp(alg, "ES256") == 0)
		*out = JWT_ALG_ES256;
	else if (strcmp(alg, "RS256") == 0)
		*out = JWT_ALG_RS256;
	else if (strcasecmp(alg, "none") == 0)
		jwt_why(why, why_len, "alg none is never accepted; %s", sign_with);
	else if (strncmp(alg, "HS", 2) == 0)
		jwt_why(why, why_len,
			"alg HS* (shared-secret HMAC) is never accepted: whoever can verify could "
			"forge; %s",
			sign_with);
	else {
		safe_text(safe, alg);
		jwt_why(why, why_len, "alg \"%s\" is not accepted; %s", safe, sign_with);
	}
	if (*out == 0)
		return MOAT_E_UNSUPPORTED;
	return MOAT_OK;
}

/* Checks the JOSE header <h>: returns the alg and the kid (NULL if absent). */
static int header_check(const cJSON *h, enum jwt_alg *alg, const char **kid, char *why,
			size_t why_len)
{
	static const char *const refused[] = {"crit", "jku", "x5u", "jwk", "x5c"};
	const cJSON *a = cJSON_GetObjectItemCaseSensitive(h, "alg");
	const cJSON *typ = cJSON_GetObjectItemCaseSensitive(h, "typ");
	const cJSON *k = cJSON_GetObjectItemCaseSensitive(h, "kid");
	int rc;

	if (!cJSON_IsString(a)) {
		jwt_why(why, why_len, "header has no alg string");
		return MOAT_E_MALFORMED;
	}
	rc = header_alg(a->valuestring, alg, why, why_len);
	if (rc < 0)
		return rc;
	for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
		if (cJSON_GetObjectItemCaseSensitive(h, refused[i]) != NULL) {
			jwt_why(why, why_len,
				"header parameter \"%s\" is refused; keys come from the broker's "
				"configuration and no extensions are understood",
				refused[i]);
			return MOAT_E_UNSUPPORTED;
		}
	}
	if (typ != NULL && (!cJSON_IsString(typ) || (strcmp(typ->valuestring, "JWT") != 0 &&
						     strcmp(typ->valuestring, "at+jwt") != 0))) {
		jwt_why(why, why_len, "header typ must be \"JWT\" or \"at+jwt\"");
		return MOAT_E_UNSUPPORTED;
	}
	if (k != NULL && !cJSON_IsString(k)) {
		jwt_why(why, why_len, "header kid is not a string");
		return MOAT_E_MALFORMED;
	}
	*kid = k != NULL ? k->valuestring : NULL;
	return MOAT_OK;
}

/* Converts JOSE's raw ES256 r||s (RFC 7518 §3.4) to the DER OpenSSL verifies. */
static int es256_der(const uint8_t *raw, uint8_t **der, int *der_len)
{
	ECDSA_SIG *s = ECDSA_SIG_new();
	BIGNUM *r = BN_bin2bn(raw, ES256_SIG_LEN / 2, NULL);
	BIGNUM *sv = BN_bin2bn(raw + ES256_SIG_LEN / 2, ES256_SIG_LEN / 2, NULL);

	if (s == NULL || r == NULL || sv == NULL || ECDSA_SIG_set0(s, r, sv) != 1) {
		ECDSA_SIG_free(s);
		BN_free(r);
		BN_free(sv);
		return MOAT_E_NOMEM;
	}
	*der = NULL;
	*der_len = i2d_ECDSA_SIG(s, der);
	ECDSA_SIG_free(s);
	return *der_len > 0 ? MOAT_OK : MOAT_E_NOMEM;
}

/* Verifies <p>'s signature with key <k>: MOAT_OK, MOAT_E_DENIED or MOAT_E_NOMEM. */
static int sig_verify(const struct jwt_key *k, const struct parts *p)
{
	const uint8_t *sig = p->sig;
	size_t sig_len = p->sig_len;
	uint8_t *der = NULL;
	EVP_MD_CTX *ctx;
	int der_len, rc;

	switch (k->alg) {
	case JWT_ALG_EDDSA:
		if (sig_len != ED25519_SIG_LEN)
			return MOAT_E_DENIED;
		break;
	case JWT_ALG_ES256:
		if (sig_len != ES256_SIG_LEN)
			return MOAT_E_DENIED;
		rc = es256_der(sig, &der, &der_len);
		if (rc < 0)
			return rc;
		sig = der;
		sig_len = (size_t)der_len;
		break;
	case JWT_ALG_RS256:
		if (sig_len != (size_t)EVP_PKEY_get_size(k->pkey))
			return MOAT_E_DENIED;
		break;
	}
	ctx = EVP_MD_CTX_new();
	if (ctx == NULL) {
		OPENSSL_free(der);
		return MOAT_E_NOMEM;
	}
	/* EdDSA hashes internally (no digest); ES256/RS256 use SHA-256, RSA with PKCS#1 v1.5 */
	rc = EVP_DigestVerifyInit(ctx, NULL, k->alg == JWT_ALG_EDDSA ? NULL : EVP_sha256(), NULL,
				  k->pkey) == 1 &&
		     EVP_DigestVerify(ctx, sig, sig_len, (const uint8_t *)p->signing_input,
				      p->signing_input_len) == 1
		 ? MOAT_OK
		 : MOAT_E_DENIED;
	EVP_MD_CTX_free(ctx);
	OPENSSL_free(der);
	return rc;
}

/* Finds the key for <kid>/<alg> and verifies the signature with it. */
static int select_and_verify(const struct jwt_keys *keys, const char *kid, enum jwt_alg alg,
			     const struct parts *p, char *why, size_t why_len)
{
	char safe[SAFE_TEXT_MAX + 4];
	bool tried = false;
	int rc = MOAT_E_DENIED;

	for (size_t i = 0; i < keys->count; i++) {
		const struct jwt_key *k = &keys->keys[i];

		if (kid != NULL) {
			if (k->kid == NULL || strcmp(k->kid, kid) != 0)
				continue;
			if (k->alg != alg) {
				jwt_why(why, why_len,
					"alg %s does not match key \"%s\", which is %s only "
					"(algorithm confusion refused)",
					jwt_alg_name(alg), k->kid, jwt_alg_name(k->alg));
				return MOAT_E_UNSUPPORTED;
			}
		} else if (k->alg != alg) {
			continue;
		}
		tried = true;
		rc = sig_verify(k, p);
		if (rc != MOAT_E_DENIED || kid != NULL)
			break;
	}
	if (!tried && kid != NULL) {
		safe_text(safe, kid);
		jwt_why(why, why_len, "kid \"%s\" names no configured key", safe);
		return MOAT_E_DENIED;
	}
	if (!tried) {
		jwt_why(why, why_len, "no configured key verifies alg %s", jwt_alg_name(alg));
		return MOAT_E_UNSUPPORTED;
	}
	if (rc == MOAT_E_DENIED) {
		if (alg == JWT_ALG_ES256 && p->sig_len != ES256_SIG_LEN)
			jwt_why(why, why_len,
				"ES256 signature must be 64 bytes of raw r||s (RFC 7518 §3.4), "
				"not DER");
		else
			jwt_why(why, why_len, "signature does not verify");
	}
	return rc;
}

int jwt_verify(const struct jwt_keys *keys, const char *token, size_t token_len,
	       const struct jwt_expect *expect, int64_t now_s, struct jwt_claims *out, char *why,
	       size_t why_len)
{
	struct jwt_expect defaults;
	struct parts p = {0};
	cJSON *header = NULL, *payload = NULL;
	const char *kid = NULL;
	enum jwt_alg alg;
	int rc;

	jwt_why(why, why_len, "%s", "");
	if (out == NULL)
		return MOAT_E_INVAL;
	memset(out, 0, sizeof(*out));
	if (keys == NULL || (token == NULL && token_len > 0))
		return MOAT_E_INVAL;
	if (expect == NULL) {
		jwt_expect_init(&defaults);
		expect = &defaults;
	}
	if (expect->leeway_s < 0 || expect->leeway_s > JWT_LEEWAY_MAX_S || now_s < 0 ||
	    now_s > JWT_TIME_MAX) {
		jwt_why(why, why_len, "leeway must be 0 to %d s and the time not before 1970",
			JWT_LEEWAY_MAX_S);
		return MOAT_E_INVAL;
	}
	rc = split(token, token_len, &p, why, why_len);
	if (rc < 0)
		goto out;
	rc = parse_object((const char *)p.header, p.header_len, &header);
	if (rc < 0) {
		jwt_why(why, why_len,
			"header is not one JSON object with unique names and no \\u0000");
		goto out;
	}
	rc = header_check(header, &alg, &kid, why, why_len);
	if (rc < 0)
		goto out;
	rc = select_and_verify(keys, kid, alg, &p, why, why_len);
	if (rc < 0)
		goto out;
	rc = parse_object((const char *)p.payload, p.payload_len, &payload);
	if (rc < 0) {
		jwt_why(why, why_len,
			"claims are not one JSON object with unique names and no \\u0000");
		goto out;
	}
	rc = jwt_claims_check(payload, expect, now_s, out, why, why_len);
	if (rc < 0)
		jwt_claims_fini(out);
out:
	cJSON_Delete(payload);
	cJSON_Delete(header);
	parts_fini(&p);
	return rc;
}
