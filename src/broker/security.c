/*
 * Loading and using the password file, ACL file and token keys (see
 * security.h).
 */
#include "broker/security.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <moat/error.h>

#include "auth/acl.h"
#include "auth/jwt.h"
#include "auth/passwd.h"
#include "auth/scram.h"
#include "policy/topic_policy.h"
#include "base/log.h"

static int load_tokens(struct security *s, const struct moat_config *cfg, char *err, size_t err_len)
{
	struct jwt_key_spec specs[64];
	size_t n = 0;

	for (const struct moat_token_key *k = cfg->token_keys; k != NULL; k = k->next) {
		if (n == sizeof(specs) / sizeof(specs[0])) {
			snprintf(err, err_len, "more than 64 auth_token_key lines; remove keys no longer used");
			return MOAT_E_CONFIG;
		}
		specs[n++] = (struct jwt_key_spec){ k->path, k->kid };
	}
	if (n == 0)
		return MOAT_OK;
	return jwt_keys_load(&s->tokens, specs, n, err, err_len);
}

/* The topic policies (JSON, docs/e2e.md "Topic policies"), the same engine
 * the Security Center releases keys by. */
static int load_policies(struct security *s, const char *path, char *err, size_t err_len)
{
	struct policy_diag pd;
	struct moat_diag d;
	char *text;
	size_t len;
	int rc = conf_read_file(path, 4u << 20, &text, &len, &d);

	if (rc < 0) {
		snprintf(err, err_len, "%s", d.msg);
		return rc;
	}
	rc = topic_policy_set_parse(&s->policies, text, len, &pd);
	free(text);
	if (rc < 0)
		snprintf(err, err_len, "topic_policy_file %s: %s", path, pd.msg);
	return rc;
}

struct security *security_load(const struct moat_config *cfg, char *err, size_t err_len)
{
	struct security *s = calloc(1, sizeof(*s));
	struct moat_diag d;

	if (s == NULL) {
		snprintf(err, err_len, "out of memory");
		return NULL;
	}
	atomic_init(&s->refs, 1);
	s->cfg = cfg;
	if (cfg->password_file != NULL && passwd_db_load(&s->passwd, cfg->password_file, &d) < 0) {
		snprintf(err, err_len, "%s", d.msg);
		goto err;
	}
	if (s->passwd != NULL && passwd_db_weak_count(s->passwd) > 0)
		log_warn("%s: %zu entries use weak hashes ($6$ or $7$ with few iterations); rewrite them with `moat passwd`",
			 cfg->password_file, passwd_db_weak_count(s->passwd));
	if (cfg->acl_file != NULL && acl_load(&s->acl, cfg->acl_file, &d) < 0) {
		snprintf(err, err_len, "%s", d.msg);
		goto err;
	}
	if (load_tokens(s, cfg, err, err_len) < 0)
		goto err;
	if (cfg->topic_policy_file != NULL && load_policies(s, cfg->topic_policy_file, err, err_len) < 0)
		goto err;
	return s;
err:
	security_unref(s);
	return NULL;
}

struct security *security_ref(struct security *s)
{
	atomic_fetch_add_explicit(&s->refs, 1, memory_order_relaxed);
	return s;
}

void security_unref(struct security *s)
{
	if (s == NULL || atomic_fetch_sub_explicit(&s->refs, 1, memory_order_acq_rel) != 1)
		return;
	if (s->passwd != NULL)
		passwd_db_destroy(s->passwd);
	if (s->acl != NULL)
		acl_destroy(s->acl);
	jwt_keys_unref(s->tokens);
	topic_policy_set_destroy(s->policies);
	free(s);
}

int security_check_password(const struct security *s, const char *username, const uint8_t *password,
			    size_t password_len)
{
	if (s->passwd == NULL)
		return MOAT_E_DENIED;
	return passwd_db_check(s->passwd, username, password, password_len);
}

int security_scram_start(const struct security *s, struct scram_server *srv, const uint8_t *msg,
			 size_t len, struct buf *out)
{
	if (s->passwd == NULL)
		return MOAT_E_UNSUPPORTED;
	return scram_server_start(srv, msg, len, passwd_db_scram_lookup, s->passwd, out);
}

bool security_is_token(const struct security *s, const uint8_t *password, size_t len)
{
	size_t dots = 0;

	(void)s;
	for (size_t i = 0; i < len; i++) {
		uint8_t ch = password[i];

		if (ch == '.')
			dots++;
		else if (!((ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
			   ch == '-' || ch == '_'))
			return false;
	}
	return dots == 2 && len > 16;
}

int security_check_token(const struct security *s, const uint8_t *token, size_t len, int64_t now_s,
			 struct token_identity *out, const char **why)
{
	static _Thread_local char reason[200];
	const struct moat_config *cfg = s->cfg;
	struct jwt_expect expect;
	struct jwt_claims claims;
	int rc;

	*out = (struct token_identity){ 0 };
	if (s->tokens == NULL) {
		*why = "no token keys configured";
		return MOAT_E_DENIED;
	}
	jwt_expect_init(&expect);
	expect.issuer = cfg->token_issuer;
	expect.audience = cfg->token_audience;
	if (cfg->token_username_claim != NULL)
		expect.username_claim = cfg->token_username_claim;
	expect.leeway_s = cfg->token_leeway_s;
	rc = jwt_verify(s->tokens, (const char *)token, len, &expect, now_s, &claims, reason,
			sizeof(reason));
	if (rc < 0) {
		*why = reason;
		return rc;
	}
	out->username = claims.username;
	out->client_id = claims.client_id;
	out->expires_s = claims.exp;
	out->cnf_x5t_s256 = claims.cnf_x5t_s256;
	out->jti = claims.jti;
	claims.username = claims.client_id = claims.cnf_x5t_s256 = claims.jti = NULL;
	if (claims.roles_count > 0) {
		out->roles = calloc(claims.roles_count + 1, sizeof(*out->roles));
		if (out->roles == NULL) {
			jwt_claims_fini(&claims);
			token_identity_fini(out);
			*why = "out of memory";
			return MOAT_E_NOMEM;
		}
		for (size_t i = 0; i < claims.roles_count; i++) {
			out->roles[i] = claims.roles[i];
			claims.roles[i] = NULL;
		}
	}
	if (claims.attrs_count > 0) {
		out->attrs = calloc(2 * claims.attrs_count + 1, sizeof(*out->attrs));
		if (out->attrs == NULL) {
			jwt_claims_fini(&claims);
			token_identity_fini(out);
			*why = "out of memory";
			return MOAT_E_NOMEM;
		}
		for (size_t i = 0; i < claims.attrs_count; i++) {
			out->attrs[2 * i] = claims.attrs[i].key;
			out->attrs[2 * i + 1] = claims.attrs[i].value;
			claims.attrs[i].key = claims.attrs[i].value = NULL;
		}
	}
	jwt_claims_fini(&claims);
	return MOAT_OK;
}

void strv_free(char **v)
{
	if (v == NULL)
		return;
	for (char **p = v; *p != NULL; p++)
		free(*p);
	free(v);
}

char **strv_dup(char *const *v)
{
	size_t n = 0;
	char **copy;

	if (v == NULL)
		return NULL;
	while (v[n] != NULL)
		n++;
	copy = calloc(n + 1, sizeof(*copy));
	for (size_t i = 0; copy != NULL && i < n; i++) {
		copy[i] = strdup(v[i]);
		if (copy[i] == NULL) {
			strv_free(copy);
			copy = NULL;
		}
	}
	return copy;
}

void token_identity_fini(struct token_identity *t)
{
	free(t->username);
	free(t->client_id);
	free(t->cnf_x5t_s256);
	free(t->jti);
	strv_free(t->roles);
	strv_free(t->attrs);
	*t = (struct token_identity){ 0 };
}

/* Most attributes and roles a token carries (jwt.c's caps): the policy
 * evaluation list is built on the stack. */
enum { POLICY_ATTRS_MAX = 2 * (32 + 32) + 1 };

/* The topic policies' verdict: <subject>'s attributes, and each role as an
 * attribute "role". */
static bool policies_allow(const struct topic_policy_set *set, const struct acl_subject *subject,
			   struct moat_bytes topic, enum security_access access)
{
	char *list[POLICY_ATTRS_MAX];
	size_t n = 0;

	for (size_t i = 0; subject->attrs != NULL && subject->attrs[i] != NULL &&
			   subject->attrs[i + 1] != NULL && n + 2 < POLICY_ATTRS_MAX; i += 2) {
		list[n++] = subject->attrs[i];
		list[n++] = subject->attrs[i + 1];
	}
	for (size_t i = 0; subject->roles != NULL && subject->roles[i] != NULL && n + 2 < POLICY_ATTRS_MAX; i++) {
		list[n++] = "role";
		list[n++] = subject->roles[i];
	}
	list[n] = NULL;
	return topic_policy_allows(set, topic, list, access == ACCESS_WRITE ? TOPIC_POLICY_PUB : TOPIC_POLICY_SUB);
}

bool security_allows(const struct security *s, const struct acl_subject *subject, const uint8_t *topic,
		     size_t len, enum security_access access)
{
	struct acl_identity id = { 0 };
	size_t roles = 0, attrs = 0;

	if (s->policies != NULL && !policies_allow(s->policies, subject, (struct moat_bytes){ topic, len }, access))
		return false;
	if (s->acl == NULL)
		return true;
	if (subject->roles != NULL)
		while (subject->roles[roles] != NULL)
			roles++;
	if (subject->attrs != NULL)
		while (subject->attrs[attrs] != NULL)
			attrs++;
	id.username = subject->username;
	id.username_len = subject->username != NULL ? strlen(subject->username) : 0;
	id.client_id = subject->client_id;
	id.client_id_len = subject->client_id != NULL ? strlen(subject->client_id) : 0;
	id.roles = (const char *const *)subject->roles;
	id.role_count = roles;
	id.attrs = (const char *const *)subject->attrs;
	id.attr_count = attrs / 2;
	return acl_check(s->acl, &id, (const char *)topic, len,
			 access == ACCESS_READ ? ACL_READ : access == ACCESS_WRITE ? ACL_WRITE : ACL_SUBSCRIBE);
}
