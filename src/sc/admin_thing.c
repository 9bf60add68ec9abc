/*
 * Admin ops on things, tokens and the audit trail (admin_impl.h):
 * thing.create/list/show/update/revoke, token.issue, audit.tail.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/bn.h>
#include <openssl/pem.h>

#include <moat/error.h>

#include "sc/admin_impl.h"
#include "sc/enrol.h"
#include "sc/sc_json.h"
#include "sc/token.h"

enum { AUDIT_TAIL_DEFAULT = 20, AUDIT_TAIL_MAX = 1000 };

/* The request's thing name ("name"), also noted for the audit row. */
static int thing_name(struct admin_req *r, const char **name)
{
	int rc = admin_str(r, "name", true, name);

	if (rc == MOAT_OK)
		r->thing = *name;
	return rc;
}

/* The "attrs" object {name: "value", ...} into <attrs>, *<count>. */
static int attrs_from_json(struct admin_req *r, struct reg_attr *attrs, size_t *count)
{
	const cJSON *o = cJSON_GetObjectItemCaseSensitive(r->in, "attrs"), *c;

	*count = 0;
	if (o == NULL)
		return MOAT_OK;
	if (!cJSON_IsObject(o))
		return admin_fail(r, MOAT_E_INVAL, "\"attrs\": an object of name: \"value\"");
	cJSON_ArrayForEach(c, o)
	{
		if (*count == REG_ATTRS_MAX)
			return admin_fail(r, MOAT_E_INVAL, "at most %d attributes", REG_ATTRS_MAX);
		if (!cJSON_IsString(c) || strlen(c->string) > REG_ATTR_NAME_MAX ||
		    strlen(c->valuestring) > REG_ATTR_VALUE_MAX)
			return admin_fail(r, MOAT_E_INVAL,
					  "attribute \"%.40s\": a name up to %d and a string value "
					  "up to %d characters",
					  c->string, REG_ATTR_NAME_MAX, REG_ATTR_VALUE_MAX);
		snprintf(attrs[*count].name, sizeof(attrs[0].name), "%s", c->string);
		snprintf(attrs[*count].value, sizeof(attrs[0].value), "%s", c->valuestring);
		(*count)++;
	}
	return MOAT_OK;
}

/* The optional PEM public key field <key> of <kind> into <pub>; *<has>
 * tells whether it was given. */
static int public_key(struct admin_req *r, const char *key, enum reg_key_kind kind,
		      uint8_t pub[REG_KEY_LEN], bool *has)
{
	const char *pem;
	int rc = admin_str(r, key, false, &pem);

	*has = pem != NULL;
	if (rc == MOAT_OK && pem != NULL) {
		rc = sc_raw_public_key(pem, strlen(pem), kind, pub, r->d);
		if (rc < 0)
			admin_prefix(r, key, ": ");
	}
	return rc;
}

/* Adds <x> as PEM text under <key>. */
static int add_pem(cJSON *o, const char *key, X509 *x)
{
	BIO *bio = BIO_new(BIO_s_mem());
	char *p = NULL;
	long n;
	int rc = MOAT_E_NOMEM;

	if (bio != NULL && PEM_write_bio_X509(bio, x) == 1 && (n = BIO_get_mem_data(bio, &p)) > 0) {
		char *s = strndup(p, (size_t)n);

		if (s != NULL && cJSON_AddStringToObject(o, key, s) != NULL)
			rc = MOAT_OK;
		free(s);
	}
	BIO_free(bio);
	return rc;
}

/* The answer of thing.create: serial, cert, ca, sc_pub, broker, kid. */
static int created(struct admin_req *r, X509 *x)
{
	BIGNUM *bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(x), NULL);
	char *hex = bn != NULL ? BN_bn2hex(bn) : NULL;
	char *pub = r->ctx->token_signer != NULL ? signer_public_pem(r->ctx->token_signer) : NULL;
	int rc = hex != NULL ? MOAT_OK : MOAT_E_NOMEM;

	if (rc == MOAT_OK) {
		const char *serial = hex;

		while (serial[0] == '0' && serial[1] != '\0')
			serial++; /* as the registry writes it: no leading zeros */
		cJSON_AddStringToObject(r->out, "serial", serial);
		cJSON_AddStringToObject(r->detail, "serial", serial);
		rc = add_pem(r->out, "cert", x);
	}
	if (rc == MOAT_OK)
		rc = add_pem(r->out, "ca", ca_cert(r->ctx->ca));
	if (rc == MOAT_OK && pub != NULL)
		cJSON_AddStringToObject(r->out, "sc_pub", pub);
	if (rc == MOAT_OK && r->ctx->broker_url != NULL)
		cJSON_AddStringToObject(r->out, "broker", r->ctx->broker_url);
	OPENSSL_free(hex);
	BN_free(bn);
	free(pub);
	return rc;
}

int admin_thing_create(struct admin_req *r)
{
	struct reg_attr attrs[REG_ATTRS_MAX];
	uint8_t sign[REG_KEY_LEN], agree[REG_KEY_LEN];
	bool has_sign = false, has_agree = false;
	struct sc_enrol_req req = {.create = true, .attrs = attrs};
	const char *name, *csr;
	X509 *x = NULL;
	int rc;

	rc = thing_name(r, &name);
	if (rc == MOAT_OK)
		rc = admin_str(r, "csr", true, &csr);
	if (rc == MOAT_OK)
		rc = attrs_from_json(r, attrs, &req.attr_count);
	if (rc == MOAT_OK)
		rc = public_key(r, "sign_pub", REG_KEY_ED25519_SIGN, sign, &has_sign);
	if (rc == MOAT_OK)
		rc = public_key(r, "agree_pub", REG_KEY_X25519_AGREE, agree, &has_agree);
	if (rc < 0)
		return rc;
	req.csr_pem = csr;
	req.csr_len = strlen(csr);
	req.sign_pub = has_sign ? sign : NULL;
	req.agree_pub = has_agree ? agree : NULL;
	req.issue.thing = name;
	req.issue.profile = REG_CERT_DEVICE;
	rc = sc_enrol(r->ctx->ca, r->ctx->reg, r->actor, &req, (int64_t)time(NULL), &x, r->d);
	if (rc == MOAT_OK) {
		cJSON_AddStringToObject(r->out, "name", name);
		rc = created(r, x);
	}
	X509_free(x);
	return rc;
}

static int list_one(void *arg, const struct reg_thing *t)
{
	return cJSON_AddItemToArray(arg, sc_json_thing(t)) ? MOAT_OK : MOAT_E_NOMEM;
}

int admin_thing_list(struct admin_req *r)
{
	cJSON *things = cJSON_AddArrayToObject(r->out, "things");

	return things != NULL ? reg_thing_list(r->ctx->reg, list_one, things, r->d) : MOAT_E_NOMEM;
}

int admin_thing_show(struct admin_req *r)
{
	const char *name;
	cJSON *t = NULL;
	int rc = thing_name(r, &name);

	if (rc == MOAT_OK)
		rc = sc_json_thing_full(r->ctx->reg, name, &t, r->d);
	if (rc == MOAT_OK)
		cJSON_AddItemToObject(r->out, "thing", t);
	return rc;
}

int admin_thing_update(struct admin_req *r)
{
	struct reg_attr attrs[REG_ATTRS_MAX];
	const char *name;
	size_t count = 0;
	cJSON *t = NULL;
	int rc = thing_name(r, &name);

	if (rc == MOAT_OK)
		rc = attrs_from_json(r, attrs, &count);
	if (rc == MOAT_OK)
		rc = reg_thing_set_attrs(r->ctx->reg, r->actor, name, attrs, count, r->d);
	if (rc == MOAT_OK)
		rc = sc_json_thing_full(r->ctx->reg, name, &t, r->d);
	if (rc == MOAT_OK)
		cJSON_AddItemToObject(r->out, "thing", t);
	return rc;
}

int admin_thing_revoke(struct admin_req *r)
{
	const struct sc_admin_hooks *h = &r->ctx->hooks;
	const char *name, *reason;
	int rc = thing_name(r, &name), code = -1;

	if (rc == MOAT_OK)
		rc = admin_str(r, "reason", false, &reason);
	if (rc == MOAT_OK && (code = sc_reason_code(reason)) < 0)
		rc = admin_fail(r, MOAT_E_INVAL,
				"\"reason\": unspecified, key-compromise, superseded or cessation");
	if (rc == MOAT_OK)
		rc = reg_thing_revoke(r->ctx->reg, r->actor, name, code, r->d);
	if (rc < 0)
		return rc;
	cJSON_AddStringToObject(r->out, "name", name);
	cJSON_AddTrueToObject(r->out, "revoked");
	return admin_daemon(r, h->thing_revoked != NULL,
			    h->thing_revoked != NULL ? h->thing_revoked(h->arg, name, r->d)
						     : MOAT_OK,
			    "revoked in the registry");
}

int admin_token_issue(struct admin_req *r)
{
	struct sc_token_req req = {
	    .issuer = r->ctx->token_issuer,
	    .audience = r->ctx->token_audience,
	    .now_s = (int64_t)time(NULL),
	};
	struct sc_token_info info;
	const char *name;
	char *token = NULL;
	int rc = thing_name(r, &name);

	if (rc == MOAT_OK)
		rc = admin_uint(r, "ttl_s", SC_TOKEN_TTL_MIN_S, SC_TOKEN_TTL_MAX_S,
				SC_TOKEN_TTL_DEFAULT_S, &req.ttl_s);
	if (rc == MOAT_OK && r->ctx->token_signer == NULL)
		rc = admin_fail(r, MOAT_E_UNSUPPORTED, "this Security Center has no token key");
	if (rc == MOAT_OK)
		rc = sc_token_issue(r->ctx->reg, r->ctx->token_signer, name, &req, &token, &info,
				    r->d);
	if (rc < 0)
		return rc;
	cJSON_AddStringToObject(r->out, "token", token);
	cJSON_AddStringToObject(r->out, "kid", info.kid);
	cJSON_AddStringToObject(r->out, "jti", info.jti);
	cJSON_AddNumberToObject(r->out, "exp", (double)info.exp);
	/* the audit row names the token, never holds it */
	cJSON_AddStringToObject(r->detail, "jti", info.jti);
	cJSON_AddNumberToObject(r->detail, "exp", (double)info.exp);
	free(token);
	return MOAT_OK;
}

static int audit_one(void *arg, const struct reg_audit *a)
{
	return cJSON_AddItemToArray(arg, sc_json_audit(a)) ? MOAT_OK : MOAT_E_NOMEM;
}

int admin_audit_tail(struct admin_req *r)
{
	cJSON *rows = cJSON_AddArrayToObject(r->out, "audit");
	uint32_t n;
	int rc = admin_uint(r, "n", 1, AUDIT_TAIL_MAX, AUDIT_TAIL_DEFAULT, &n);

	if (rc == MOAT_OK)
		rc = rows != NULL ? reg_audit_tail(r->ctx->reg, n, audit_one, rows, r->d)
				  : MOAT_E_NOMEM;
	return rc;
}
