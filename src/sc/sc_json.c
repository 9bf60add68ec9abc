/*
 * The registry's JSON views and the attribute/reason parsers (sc_json.h).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <moat/error.h>

#include "base/base64.h"
#include "sc/sc_json.h"

const char *sc_status_name(enum reg_status s)
{
	return s == REG_REVOKED ? "revoked" : "active";
}

cJSON *sc_json_thing(const struct reg_thing *t)
{
	cJSON *j = cJSON_CreateObject(), *attrs;

	if (j == NULL)
		return NULL;
	cJSON_AddStringToObject(j, "name", t->name);
	cJSON_AddStringToObject(j, "status", sc_status_name(t->status));
	cJSON_AddNumberToObject(j, "created", (double)t->created_s);
	cJSON_AddNumberToObject(j, "updated", (double)t->updated_s);
	attrs = cJSON_AddObjectToObject(j, "attrs");
	for (size_t i = 0; attrs != NULL && i < t->attr_count; i++)
		cJSON_AddStringToObject(attrs, t->attrs[i].name, t->attrs[i].value);
	return j;
}

cJSON *sc_json_cert(const struct reg_cert *c)
{
	cJSON *j = cJSON_CreateObject();
	char x5t[64];

	if (j == NULL)
		return NULL;
	cJSON_AddStringToObject(j, "serial", c->serial);
	cJSON_AddStringToObject(j, "profile", c->profile == REG_CERT_BROKER ? "broker" : "device");
	cJSON_AddNumberToObject(j, "not_before", (double)c->not_before_s);
	cJSON_AddNumberToObject(j, "not_after", (double)c->not_after_s);
	if (c->has_x5t) {
		b64_encode(c->x5t_s256, REG_X5T_LEN, x5t, B64_URL);
		cJSON_AddStringToObject(j, "x5t#S256", x5t);
	}
	if (c->revoked_at_s != 0) {
		cJSON_AddNumberToObject(j, "revoked_at", (double)c->revoked_at_s);
		cJSON_AddNumberToObject(j, "reason", c->reason);
	}
	return j;
}

cJSON *sc_json_key(const struct reg_key *k)
{
	cJSON *j = cJSON_CreateObject();
	char hex[2 * REG_KEY_LEN + 1];

	if (j == NULL)
		return NULL;
	for (size_t i = 0; i < REG_KEY_LEN; i++)
		snprintf(hex + 2 * i, 3, "%02x", k->pub[i]);
	cJSON_AddStringToObject(j, "kind",
				k->kind == REG_KEY_X25519_AGREE ? "x25519-agree" : "ed25519-sign");
	cJSON_AddStringToObject(j, "public_key", hex);
	return j;
}

cJSON *sc_json_audit(const struct reg_audit *a)
{
	cJSON *j = cJSON_CreateObject();

	if (j == NULL)
		return NULL;
	cJSON_AddNumberToObject(j, "time", (double)a->time_s);
	cJSON_AddStringToObject(j, "actor", a->actor);
	cJSON_AddStringToObject(j, "action", a->action);
	if (a->thing[0] != '\0')
		cJSON_AddStringToObject(j, "thing", a->thing);
	cJSON_AddItemToObject(j, "detail", cJSON_Parse(a->detail));
	return j;
}

static int add_cert(void *arg, const struct reg_cert *c)
{
	return cJSON_AddItemToArray(arg, sc_json_cert(c)) ? MOAT_OK : MOAT_E_NOMEM;
}

static int add_key(void *arg, const struct reg_key *k)
{
	return cJSON_AddItemToArray(arg, sc_json_key(k)) ? MOAT_OK : MOAT_E_NOMEM;
}

int sc_json_thing_full(struct registry *reg, const char *name, cJSON **out, struct moat_diag *d)
{
	struct reg_thing *t = malloc(sizeof(*t));
	cJSON *j = NULL, *certs, *keys;
	int rc;

	rc = t != NULL ? reg_thing_get(reg, name, t, d) : MOAT_E_NOMEM;
	if (rc == MOAT_OK && (j = sc_json_thing(t)) == NULL)
		rc = MOAT_E_NOMEM;
	free(t);
	if (rc < 0)
		return rc;
	certs = cJSON_AddArrayToObject(j, "certs");
	keys = cJSON_AddArrayToObject(j, "keys");
	rc = certs != NULL && keys != NULL ? reg_cert_list(reg, name, add_cert, certs, d)
					   : MOAT_E_NOMEM;
	if (rc == MOAT_OK)
		rc = reg_key_list(reg, name, add_key, keys, d);
	if (rc < 0) {
		cJSON_Delete(j);
		return rc;
	}
	*out = j;
	return MOAT_OK;
}

int sc_parse_attr(const char *kv, struct reg_attr *out, struct moat_diag *d)
{
	const char *eq = strchr(kv, '=');
	size_t kn = eq != NULL ? (size_t)(eq - kv) : 0;

	if (eq == NULL || kn == 0 || kn > REG_ATTR_NAME_MAX ||
	    strlen(eq + 1) > REG_ATTR_VALUE_MAX) {
		snprintf(d->msg, sizeof(d->msg),
			 "attribute %.200s: write name=value (name up to %d, value up to %d)", kv,
			 REG_ATTR_NAME_MAX, REG_ATTR_VALUE_MAX);
		return MOAT_E_INVAL;
	}
	memcpy(out->name, kv, kn);
	out->name[kn] = '\0';
	snprintf(out->value, sizeof(out->value), "%s", eq + 1);
	return MOAT_OK;
}

int sc_reason_code(const char *name)
{
	/* the index is the CRLReason code (RFC 5280 5.3.1) */
	static const char *const reasons[] = {"unspecified", "key-compromise", NULL,
					      NULL,	     "superseded",     "cessation"};

	for (int i = 0; i < (int)(sizeof(reasons) / sizeof(reasons[0])); i++)
		if (reasons[i] != NULL &&
		    strcmp(name != NULL ? name : "unspecified", reasons[i]) == 0)
			return i;
	return -1;
}
