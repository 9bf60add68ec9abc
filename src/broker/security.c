/*
 * Loading and using the password file, ACL file and token keys (see
 * security.h).
 */
#include "broker/security.h"

#include <stdlib.h>
#include <string.h>

#include <moat/error.h>

struct security *security_load(const struct moat_config *cfg, char *err, size_t err_len)
{
	struct security *s = calloc(1, sizeof(*s));

	if (s == NULL) {
		snprintf(err, err_len, "out of memory");
		return NULL;
	}
	atomic_init(&s->refs, 1);
	s->cfg = cfg;
	return s;
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
	free(s);
}

int security_check_password(const struct security *s, const char *username, const uint8_t *password,
			    size_t password_len)
{
	(void)s;
	(void)username;
	(void)password;
	(void)password_len;
	return MOAT_E_DENIED;
}

bool security_is_token(const struct security *s, const uint8_t *password, size_t len)
{
	(void)s;
	(void)password;
	(void)len;
	return false;
}

int security_check_token(const struct security *s, const uint8_t *token, size_t len, int64_t now_s,
			 struct token_identity *out, const char **why)
{
	(void)s;
	(void)token;
	(void)len;
	(void)now_s;
	(void)out;
	*why = "no token keys configured";
	return MOAT_E_DENIED;
}

void token_identity_fini(struct token_identity *t)
{
	free(t->username);
	free(t->client_id);
	if (t->roles != NULL) {
		for (char **r = t->roles; *r != NULL; r++)
			free(*r);
		free(t->roles);
	}
	*t = (struct token_identity){ 0 };
}

bool security_allows(const struct security *s, const struct acl_subject *subject, const uint8_t *topic,
		     size_t len, enum security_access access)
{
	(void)subject;
	(void)topic;
	(void)len;
	(void)access;
	return s->acl == NULL;
}
