/*
 * Authorization in the broker: sessions carry the identity they last
 * connected with, every check goes through the worker's current ACL
 * (security.c), refusals are audited, and a reload takes away the
 * subscriptions the new rules no longer allow.
 */
#include "broker/broker.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <moat/error.h>

#include "base/log.h"
#include "broker/audit.h"
#include "broker/security.h"

static const char *access_name(int access)
{
	switch (access) {
	case ACCESS_READ: return "receive";
	case ACCESS_WRITE: return "publish";
	default: return "subscribe";
	}
}

/* Checks <who>; <c> (may be NULL) says where from, for the audit log. */
static bool check(struct worker *w, const struct acl_subject *who, const struct conn *c,
		  struct moat_bytes topic, int access)
{
	struct audit_event e;
	char t[512];

	bool allowed;

	if (w->security->acl == NULL)
		return true;
	allowed = security_allows(w->security, who, topic.ptr, topic.len, access);
	/* every refusal is audited, and allowed subscriptions; allowed publishes
	 * and deliveries are not (one line per message) */
	if (allowed && access != ACCESS_SUBSCRIBE)
		return true;
	if (!allowed)
		atomic_fetch_add_explicit(&w->b->acl_denials, 1, memory_order_relaxed);
	snprintf(t, sizeof(t), "%.*s", (int)(topic.len < 500 ? topic.len : 500), (const char *)topic.ptr);
	e = (struct audit_event){ .event = "acl", .result = allowed ? "allow" : "deny",
				  .client_id = who->client_id,
				  .username = who->username, .access = access_name(access), .topic = t,
				  .listener = c != NULL ? c->listener_port : 0,
				  .address = c != NULL ? c->peer : NULL };
	audit_write(&e);
	return allowed;
}

bool authz_session(struct worker *w, const struct session *s, struct moat_bytes topic, int access)
{
	struct acl_subject who = { s->username, s->client_id, s->roles };

	return check(w, &who, s->conn, topic, access);
}

bool authz_conn(struct worker *w, const struct conn *c, const char *client_id, struct moat_bytes topic,
		int access)
{
	struct acl_subject who = { c->username, client_id, c->roles };

	return check(w, &who, c, topic, access);
}

static char **dup_roles(char *const *roles)
{
	size_t n = 0;
	char **copy;

	if (roles == NULL)
		return NULL;
	while (roles[n] != NULL)
		n++;
	copy = calloc(n + 1, sizeof(*copy));
	for (size_t i = 0; copy != NULL && i < n; i++) {
		copy[i] = strdup(roles[i]);
		if (copy[i] == NULL) {
			while (i > 0)
				free(copy[--i]);
			free(copy);
			copy = NULL;
		}
	}
	return copy;
}

static void free_roles(char **roles)
{
	if (roles != NULL) {
		for (char **r = roles; *r != NULL; r++)
			free(*r);
		free(roles);
	}
}

int authz_set_author(struct msg *m, const struct session *s)
{
	struct msg_author *a = calloc(1, sizeof(*a));

	if (a == NULL)
		return MOAT_E_NOMEM;
	a->client_id = strdup(s->client_id);
	a->username = s->username != NULL ? strdup(s->username) : NULL;
	a->roles = dup_roles(s->roles);
	if (a->client_id == NULL || (s->username != NULL && a->username == NULL) ||
	    (s->roles != NULL && a->roles == NULL)) {
		authz_author_free(a);
		return MOAT_E_NOMEM;
	}
	m->author = a;
	return MOAT_OK;
}

bool authz_author_allowed(struct worker *w, const struct msg *m)
{
	struct acl_subject who;

	if (m->author == NULL)
		return true;
	who = (struct acl_subject){ m->author->username, m->author->client_id, m->author->roles };
	return check(w, &who, NULL, m->topic, ACCESS_WRITE);
}

void authz_author_free(struct msg_author *a)
{
	if (a == NULL)
		return;
	free(a->username);
	free(a->client_id);
	free_roles(a->roles);
	free(a);
}

void authz_clear_identity(struct session *s)
{
	free(s->username);
	s->username = NULL;
	free_roles(s->roles);
	s->roles = NULL;
}

bool authz_same_user(const struct session *s, const struct conn *c)
{
	if (s->username == NULL || c->username == NULL)
		return s->username == c->username;
	return strcmp(s->username, c->username) == 0;
}

int authz_set_identity(struct session *s, const struct conn *c)
{
	char *user = NULL;
	char **roles = NULL;

	if (c->username != NULL && (user = strdup(c->username)) == NULL)
		return MOAT_E_NOMEM;
	if (c->roles != NULL && (roles = dup_roles(c->roles)) == NULL) {
		free(user);
		return MOAT_E_NOMEM;
	}
	authz_clear_identity(s);
	s->username = user;
	s->roles = roles;
	return MOAT_OK;
}

void broker_recheck_subscriptions(struct worker *w)
{
	for (struct session *s = w->sessions; s != NULL; s = s->wnext) {
		struct sub *x = s->subs, *next;

		for (; x != NULL; x = next) {
			struct moat_bytes filter = { x->filter, x->len };

			next = x->next;
			if (!authz_session(w, s, filter, ACCESS_SUBSCRIBE)) {
				log_notice("client %s: subscription %.*s revoked by the reloaded ACL", s->client_id,
					   (int)x->len, (const char *)x->filter);
				sess_unsubscribe(w->b, s, filter);	/* frees x */
			}
		}
	}
}
