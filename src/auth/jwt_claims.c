/*
 * JWT verification, part two: the claims of a token whose signature already
 * verified. Checks time (exp required, nbf, iat; leeway both ways), issuer
 * and audience (RFC 7519 §4.1, RFC 8725 §3.8-3.9), then copies the identity
 * the broker uses (sub, username, client_id, roles, attrs, cnf) to the heap.
 */
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <moat/error.h>

#include "auth/jwt_impl.h"

void jwt_expect_init(struct jwt_expect *e)
{
	*e = (struct jwt_expect){.username_claim = "username", .leeway_s = JWT_LEEWAY_DEFAULT_S};
}

void jwt_claims_fini(struct jwt_claims *c)
{
	if (c == NULL)
		return;
	free(c->sub);
	free(c->username);
	free(c->client_id);
	free(c->iss);
	free(c->jti);
	free(c->cnf_x5t_s256);
	for (size_t i = 0; i < c->roles_count; i++)
		free(c->roles[i]);
	free(c->roles);
	for (size_t i = 0; i < c->attrs_count; i++) {
		free(c->attrs[i].key);
		free(c->attrs[i].value);
	}
	free(c->attrs);
	memset(c, 0, sizeof(*c));
}

/* Reads NumericDate claim <name>: MOAT_OK (set *<t>), MOAT_E_NOTFOUND or MOAT_E_MALFORMED. */
static int get_time(const cJSON *o, const char *name, int64_t *t, char *why, size_t why_len)
{
	const cJSON *j = cJSON_GetObjectItemCaseSensitive(o, name);

	if (j == NULL)
		return MOAT_E_NOTFOUND;
	if (!cJSON_IsNumber(j) || !isfinite(j->valuedouble) || j->valuedouble < 0 ||
	    j->valuedouble > (double)JWT_TIME_MAX) {
		jwt_why(why, why_len, "claim %s is not a NumericDate (seconds since 1970)", name);
		return MOAT_E_MALFORMED;
	}
	*t = (int64_t)floor(j->valuedouble);
	return MOAT_OK;
}

/* Copies optional string claim <name> of <o> to *<dst> (left NULL when absent). */
static int get_string(const cJSON *o, const char *name, char **dst, char *why, size_t why_len)
{
	const cJSON *j = cJSON_GetObjectItemCaseSensitive(o, name);

	if (j == NULL)
		return MOAT_OK;
	if (!cJSON_IsString(j)) {
		jwt_why(why, why_len, "claim %s is not a string", name);
		return MOAT_E_MALFORMED;
	}
	*dst = strdup(j->valuestring);
	return *dst != NULL ? MOAT_OK : MOAT_E_NOMEM;
}

static int check_time(const cJSON *o, const struct jwt_expect *e, int64_t now_s,
		      struct jwt_claims *out, char *why, size_t why_len)
{
	int rc = get_time(o, "exp", &out->exp, why, why_len);

	if (rc == MOAT_E_NOTFOUND) {
		jwt_why(why, why_len, "token has no exp claim; issue tokens with a short exp");
		return MOAT_E_DENIED;
	}
	if (rc < 0)
		return rc;
	if (now_s >= out->exp + e->leeway_s) {
		jwt_why(why, why_len, "token expired");
		return MOAT_E_DENIED;
	}
	rc = get_time(o, "nbf", &out->nbf, why, why_len);
	if (rc == MOAT_E_MALFORMED)
		return rc;
	if (rc == MOAT_OK && now_s + e->leeway_s < out->nbf) {
		jwt_why(why, why_len, "token not valid yet (nbf)");
		return MOAT_E_DENIED;
	}
	rc = get_time(o, "iat", &out->iat, why, why_len);
	if (rc == MOAT_E_MALFORMED)
		return rc;
	if (rc == MOAT_OK && now_s + e->leeway_s < out->iat) {
		jwt_why(why, why_len, "token issued in the future (iat)");
		return MOAT_E_DENIED;
	}
	return MOAT_OK;
}

static int check_aud(const cJSON *o, const char *audience, char *why, size_t why_len)
{
	const cJSON *aud = cJSON_GetObjectItemCaseSensitive(o, "aud");
	const cJSON *a;
	bool found = false;

	if (aud != NULL && !cJSON_IsString(aud) && !cJSON_IsArray(aud)) {
		jwt_why(why, why_len, "claim aud is neither a string nor an array");
		return MOAT_E_MALFORMED;
	}
	if (cJSON_IsString(aud))
		found = strcmp(aud->valuestring, audience) == 0;
	for (a = cJSON_IsArray(aud) ? aud->child : NULL; a != NULL; a = a->next) {
		if (!cJSON_IsString(a)) {
			jwt_why(why, why_len, "claim aud holds a non-string");
			return MOAT_E_MALFORMED;
		}
		found = found || strcmp(a->valuestring, audience) == 0;
	}
	if (!found) {
		jwt_why(why, why_len, "token is not meant for this broker (aud)");
		return MOAT_E_DENIED;
	}
	return MOAT_OK;
}

static int copy_roles(const cJSON *o, struct jwt_claims *out, char *why, size_t why_len)
{
	const cJSON *roles = cJSON_GetObjectItemCaseSensitive(o, "roles");
	const cJSON *r;
	int n;

	if (roles == NULL)
		return MOAT_OK;
	n = cJSON_GetArraySize(roles);
	if (!cJSON_IsArray(roles) || n > JWT_ROLES_MAX) {
		jwt_why(why, why_len, "claim roles must be an array of at most %d strings",
			JWT_ROLES_MAX);
		return MOAT_E_MALFORMED;
	}
	out->roles = calloc((size_t)n + 1, sizeof(out->roles[0]));
	if (out->roles == NULL)
		return MOAT_E_NOMEM;
	cJSON_ArrayForEach(r, roles)
	{
		if (!cJSON_IsString(r) || r->valuestring[0] == '\0' ||
		    strlen(r->valuestring) > JWT_ROLE_LEN_MAX) {
			jwt_why(why, why_len, "claim roles must hold strings of 1 to %d bytes",
				JWT_ROLE_LEN_MAX);
			return MOAT_E_MALFORMED;
		}
		out->roles[out->roles_count] = strdup(r->valuestring);
		if (out->roles[out->roles_count] == NULL)
			return MOAT_E_NOMEM;
		out->roles_count++;
	}
	return MOAT_OK;
}

/* Formats the attrs value <v> (string, number or bool) as text into a new string. */
static char *attr_text(const cJSON *v)
{
	char num[32];

	if (cJSON_IsString(v))
		return strdup(v->valuestring);
	if (cJSON_IsBool(v))
		return strdup(cJSON_IsTrue(v) ? "true" : "false");
	if (fabs(v->valuedouble) < 1e15 && v->valuedouble == floor(v->valuedouble))
		snprintf(num, sizeof(num), "%lld", (long long)v->valuedouble);
	else
		snprintf(num, sizeof(num), "%.17g", v->valuedouble);
	return strdup(num);
}

static int copy_attrs(const cJSON *o, struct jwt_claims *out, char *why, size_t why_len)
{
	const cJSON *attrs = cJSON_GetObjectItemCaseSensitive(o, "attrs");
	const cJSON *a;
	int n;

	if (attrs == NULL)
		return MOAT_OK;
	n = cJSON_GetArraySize(attrs);
	if (!cJSON_IsObject(attrs) || n > JWT_ATTRS_MAX) {
		jwt_why(why, why_len, "claim attrs must be an object of at most %d entries",
			JWT_ATTRS_MAX);
		return MOAT_E_MALFORMED;
	}
	out->attrs = calloc((size_t)n + 1, sizeof(out->attrs[0]));
	if (out->attrs == NULL)
		return MOAT_E_NOMEM;
	cJSON_ArrayForEach(a, attrs)
	{
		struct jwt_attr *dst = &out->attrs[out->attrs_count];

		if (a->string[0] == '\0' || strlen(a->string) > JWT_ATTR_KEY_LEN_MAX ||
		    !(cJSON_IsString(a) || cJSON_IsNumber(a) || cJSON_IsBool(a)) ||
		    (cJSON_IsString(a) && strlen(a->valuestring) > JWT_ATTR_VALUE_LEN_MAX)) {
			jwt_why(why, why_len,
				"claim attrs must map names of 1 to %d bytes to strings (<= %d "
				"bytes), numbers or booleans",
				JWT_ATTR_KEY_LEN_MAX, JWT_ATTR_VALUE_LEN_MAX);
			return MOAT_E_MALFORMED;
		}
		dst->key = strdup(a->string);
		dst->value = attr_text(a);
		out->attrs_count++;
		if (dst->key == NULL || dst->value == NULL)
			return MOAT_E_NOMEM;
	}
	return MOAT_OK;
}

static int copy_identity(const cJSON *o, const struct jwt_expect *e, struct jwt_claims *out,
			 char *why, size_t why_len)
{
	const char *ucl = e->username_claim != NULL ? e->username_claim : "username";
	const cJSON *cnf = cJSON_GetObjectItemCaseSensitive(o, "cnf");
	int rc;

	rc = get_string(o, "sub", &out->sub, why, why_len);
	if (rc == MOAT_OK)
		rc = get_string(o, ucl, &out->username, why, why_len);
	if (rc == MOAT_OK)
		rc = get_string(o, "client_id", &out->client_id, why, why_len);
	if (rc == MOAT_OK)
		rc = get_string(o, "jti", &out->jti, why, why_len);
	if (rc == MOAT_OK && cnf != NULL) {
		if (!cJSON_IsObject(cnf)) {
			jwt_why(why, why_len, "claim cnf is not an object");
			return MOAT_E_MALFORMED;
		}
		rc = get_string(cnf, "x5t#S256", &out->cnf_x5t_s256, why, why_len);
	}
	if (rc < 0)
		return rc;
	if (out->username == NULL && out->sub != NULL) {
		out->username = strdup(out->sub);
		if (out->username == NULL)
			return MOAT_E_NOMEM;
	}
	if (out->username == NULL || out->username[0] == '\0') {
		jwt_why(why, why_len, "token names no user (claims %s and sub)", ucl);
		return MOAT_E_DENIED;
	}
	rc = copy_roles(o, out, why, why_len);
	if (rc == MOAT_OK)
		rc = copy_attrs(o, out, why, why_len);
	return rc;
}

int jwt_claims_check(const cJSON *payload, const struct jwt_expect *expect, int64_t now_s,
		     struct jwt_claims *out, char *why, size_t why_len)
{
	int rc;

	rc = check_time(payload, expect, now_s, out, why, why_len);
	if (rc < 0)
		return rc;
	rc = get_string(payload, "iss", &out->iss, why, why_len);
	if (rc < 0)
		return rc;
	if (expect->issuer != NULL && (out->iss == NULL || strcmp(out->iss, expect->issuer) != 0)) {
		jwt_why(why, why_len, "token issuer (iss) is not the configured one");
		return MOAT_E_DENIED;
	}
	if (expect->audience != NULL) {
		rc = check_aud(payload, expect->audience, why, why_len);
		if (rc < 0)
			return rc;
	}
	return copy_identity(payload, expect, out, why, why_len);
}
