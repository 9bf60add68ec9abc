/*
 * Access tokens signed by the Security Center (token.h): claims from the
 * registry, compact JWS over base64url(header).base64url(claims), the
 * signature from the signer (no private key is touched here).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include <moat/error.h>

#include "base/base64.h"
#include "sc/token.h"

/* Writes <msg>, and <name> after it when not NULL, to <d>; returns <rc>. */
static int fail(struct moat_diag *d, int rc, const char *msg, const char *name)
{
	snprintf(d->msg, sizeof(d->msg), "%s%s%s", msg, name != NULL ? ": " : "",
		 name != NULL ? name : "");
	return rc;
}

int sc_token_kid(struct signer *s, char kid[SC_TOKEN_KID_LEN + 1], struct moat_diag *d)
{
	uint8_t pub[32], digest[32];
	char x[48], jwk[96];
	size_t n = sizeof(pub);

	if (s->algo != SIGNER_ED25519 ||
	    EVP_PKEY_get_raw_public_key(signer_pkey(s), pub, &n) != 1 || n != sizeof(pub))
		return fail(d, MOAT_E_INVAL, "the token key must be Ed25519", NULL);
	b64_encode(pub, sizeof(pub), x, B64_URL);
	/* RFC 7638: the required members in lexicographic order, no whitespace */
	snprintf(jwk, sizeof(jwk), "{\"crv\":\"Ed25519\",\"kty\":\"OKP\",\"x\":\"%s\"}", x);
	if (EVP_Digest(jwk, strlen(jwk), digest, NULL, EVP_sha256(), NULL) != 1)
		return fail(d, MOAT_E_CRYPTO, "SHA-256 failed", NULL);
	b64_encode(digest, sizeof(digest), kid, B64_URL);
	return MOAT_OK;
}

struct newest {
	int64_t now_s;
	bool found;
	uint8_t x5t[REG_X5T_LEN];
};

/* Keeps the last (newest) unrevoked certificate valid now with a thumbprint. */
static int newest_cert(void *arg, const struct reg_cert *c)
{
	struct newest *n = arg;

	if (c->revoked_at_s == 0 && c->has_x5t && c->not_before_s <= n->now_s &&
	    c->not_after_s > n->now_s) {
		memcpy(n->x5t, c->x5t_s256, REG_X5T_LEN);
		n->found = true;
	}
	return MOAT_OK;
}

/* The claims of <t> as one JSON text, or NULL (out of memory). */
static char *claims_text(const struct reg_thing *t, const struct sc_token_req *req,
			 const struct sc_token_info *info, const uint8_t x5t[REG_X5T_LEN])
{
	cJSON *c = cJSON_CreateObject(), *roles, *attrs, *cnf;
	char thumb[48];
	char *text = NULL;

	b64_encode(x5t, REG_X5T_LEN, thumb, B64_URL);
	if (c == NULL)
		return NULL;
	cJSON_AddStringToObject(c, "iss",
				req->issuer != NULL ? req->issuer : SC_TOKEN_ISSUER_DEFAULT);
	cJSON_AddStringToObject(c, "sub", t->name);
	cJSON_AddStringToObject(c, "client_id", t->name);
	cJSON_AddStringToObject(c, "aud",
				req->audience != NULL ? req->audience : SC_TOKEN_AUDIENCE_DEFAULT);
	cJSON_AddNumberToObject(c, "iat", (double)req->now_s);
	cJSON_AddNumberToObject(c, "nbf", (double)req->now_s);
	cJSON_AddNumberToObject(c, "exp", (double)info->exp);
	cJSON_AddStringToObject(c, "jti", info->jti);
	roles = cJSON_AddArrayToObject(c, "roles");
	attrs = cJSON_AddObjectToObject(c, "attrs");
	cnf = cJSON_AddObjectToObject(c, "cnf");
	if (roles == NULL || attrs == NULL || cnf == NULL ||
	    cJSON_AddStringToObject(cnf, "x5t#S256", thumb) == NULL)
		goto out;
	for (size_t i = 0; i < t->attr_count; i++) {
		const struct reg_attr *a = &t->attrs[i];

		if (cJSON_AddStringToObject(attrs, a->name, a->value) == NULL)
			goto out;
		if (strcmp(a->name, "role") != 0)
			continue;
		for (const char *p = a->value; *p != '\0';) {
			size_t n = strcspn(p, ",");
			char role[REG_ATTR_VALUE_MAX + 1];

			snprintf(role, sizeof(role), "%.*s", (int)n, p);
			if (n > 0 && !cJSON_AddItemToArray(roles, cJSON_CreateString(role)))
				goto out;
			p += n + (p[n] == ',');
		}
	}
	text = cJSON_PrintUnformatted(c);
out:
	cJSON_Delete(c);
	return text;
}

/* <head>.<claims> base64url-encoded, signed with <s>, into *<token>. */
static int sign_jws(struct signer *s, const char *head, const char *claims, char **token,
		    struct moat_diag *d)
{
	size_t hl = strlen(head), cl = strlen(claims);
	size_t total = b64_encoded_len(hl, B64_URL) + 1 + b64_encoded_len(cl, B64_URL) + 1 +
		       b64_encoded_len(SIGNER_SIG_MAX, B64_URL);
	uint8_t sig[SIGNER_SIG_MAX];
	size_t sig_len = 0, n;
	char *t;

	if (total > SC_TOKEN_MAX)
		return fail(d, MOAT_E_LIMIT,
			    "the token would be over 8 KiB: the thing has too many or too long "
			    "attributes",
			    NULL);
	t = malloc(total + 1);
	if (t == NULL)
		return MOAT_E_NOMEM;
	n = b64_encode((const uint8_t *)head, hl, t, B64_URL);
	t[n++] = '.';
	n += b64_encode((const uint8_t *)claims, cl, t + n, B64_URL);
	if (signer_sign(s, (const uint8_t *)t, n, sig, &sig_len) != MOAT_OK ||
	    sig_len > SIGNER_SIG_MAX) {
		free(t);
		return fail(d, MOAT_E_CRYPTO, "the token key could not sign", NULL);
	}
	t[n++] = '.';
	b64_encode(sig, sig_len, t + n, B64_URL);
	*token = t;
	return MOAT_OK;
}

int sc_token_issue(struct registry *reg, struct signer *s, const char *name,
		   const struct sc_token_req *req, char **token, struct sc_token_info *info,
		   struct moat_diag *d)
{
	uint32_t ttl = req->ttl_s != 0 ? req->ttl_s : SC_TOKEN_TTL_DEFAULT_S;
	struct newest newest = {.now_s = req->now_s};
	char head[128], *claims = NULL;
	struct reg_thing *t = NULL;
	uint8_t jti[16];
	int rc;

	*token = NULL;
	if (ttl < SC_TOKEN_TTL_MIN_S || ttl > SC_TOKEN_TTL_MAX_S)
		return fail(d, MOAT_E_INVAL,
			    "token lifetime: 300 to 3600 seconds (5 to 60 minutes)", NULL);
	rc = sc_token_kid(s, info->kid, d);
	if (rc < 0)
		return rc;
	t = malloc(sizeof(*t));
	rc = t != NULL ? reg_thing_get(reg, name, t, d) : MOAT_E_NOMEM;
	if (rc == MOAT_OK && t->status != REG_ACTIVE)
		rc = fail(d, MOAT_E_DENIED, "no token for a revoked thing", name);
	if (rc == MOAT_OK)
		rc = reg_cert_list(reg, name, newest_cert, &newest, d);
	if (rc == MOAT_OK && !newest.found)
		rc = fail(d, MOAT_E_DENIED,
			  "no valid certificate to bind a token to (issue one first)", name);
	if (rc == MOAT_OK && RAND_bytes(jti, sizeof(jti)) != 1)
		rc = fail(d, MOAT_E_CRYPTO, "no random bytes for the jti", NULL);
	if (rc == MOAT_OK) {
		b64_encode(jti, sizeof(jti), info->jti, B64_URL);
		info->exp = req->now_s + ttl;
		snprintf(head, sizeof(head),
			 "{\"alg\":\"EdDSA\",\"typ\":\"at+jwt\",\"kid\":\"%s\"}", info->kid);
		claims = claims_text(t, req, info, newest.x5t);
		rc = claims != NULL ? sign_jws(s, head, claims, token, d) : MOAT_E_NOMEM;
	}
	cJSON_free(claims);
	free(t);
	return rc;
}
