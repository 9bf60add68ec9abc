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
#include "broker/persist.h"
#include "broker/sc_topics.h"
#include "broker/security.h"

static const char *access_name(int access)
{
	switch (access) {
	case ACCESS_READ: return "receive";
	case ACCESS_WRITE: return "publish";
	default: return "subscribe";
	}
}

/* Checks <who>; <c> (may be NULL) says where from, for the audit log.
 * <internal> (a bridge's link inside this broker) is above the ACL, never
 * above the Security Center's reserved topics. */
static bool check(struct worker *w, const struct acl_subject *who, const struct conn *c,
		  struct moat_bytes topic, int access, bool internal)
{
	struct audit_event e;
	char t[512];

	enum sc_verdict sc = sc_topic_check(topic, access, who->client_id, who->username,
					    w->b->cfg->sc_username);
	bool allowed;

	if (sc == SC_NOT_RESERVED &&
	    (internal || (w->security->acl == NULL && w->security->policies == NULL)))
		return true;
	allowed = sc == SC_NOT_RESERVED ? security_allows(w->security, who, topic.ptr, topic.len, access)
					: sc == SC_ALLOW;
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
	struct acl_subject who = { s->username, s->client_id, s->roles, s->attrs };

	return check(w, &who, s->conn, topic, access, s->internal);
}

bool authz_conn(struct worker *w, const struct conn *c, const char *client_id, struct moat_bytes topic,
		int access)
{
	struct acl_subject who = { c->username, client_id, c->roles, c->attrs };

	return check(w, &who, c, topic, access, c->internal);
}

int authz_set_author(struct msg *m, const struct session *s)
{
	struct msg_author *a;

	if (s->internal)
		return MOAT_OK;	/* what a bridge brings in stays deliverable */
	a = calloc(1, sizeof(*a));
	if (a == NULL)
		return MOAT_E_NOMEM;
	a->client_id = strdup(s->client_id);
	a->username = s->username != NULL ? strdup(s->username) : NULL;
	a->roles = strv_dup(s->roles);
	a->attrs = strv_dup(s->attrs);
	if (a->client_id == NULL || (s->username != NULL && a->username == NULL) ||
	    (s->roles != NULL && a->roles == NULL) || (s->attrs != NULL && a->attrs == NULL)) {
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
	who = (struct acl_subject){ m->author->username, m->author->client_id, m->author->roles,
				    m->author->attrs };
	return check(w, &who, NULL, m->topic, ACCESS_WRITE, false);
}

void authz_author_free(struct msg_author *a)
{
	if (a == NULL)
		return;
	free(a->username);
	free(a->client_id);
	strv_free(a->roles);
	strv_free(a->attrs);
	free(a);
}

void authz_clear_identity(struct session *s)
{
	free(s->username);
	s->username = NULL;
	strv_free(s->roles);
	strv_free(s->attrs);
	s->roles = NULL;
	s->attrs = NULL;
}

bool authz_same_user(const struct session *s, const struct conn *c)
{
	if (s->username == NULL || c->username == NULL)
		return s->username == c->username;
	return strcmp(s->username, c->username) == 0;
}

int authz_set_identity(struct session *s, const struct conn *c)
{
	char *user = c->username != NULL ? strdup(c->username) : NULL;
	char **roles = strv_dup(c->roles), **attrs = strv_dup(c->attrs);

	if ((c->username != NULL && user == NULL) || (c->roles != NULL && roles == NULL) ||
	    (c->attrs != NULL && attrs == NULL)) {
		free(user);
		strv_free(roles);
		strv_free(attrs);
		return MOAT_E_NOMEM;
	}
	authz_clear_identity(s);
	s->internal = c->internal;
	s->username = user;
	s->roles = roles;
	s->attrs = attrs;
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
				persist_sub_drop(w, s, filter);
				sess_unsubscribe(w->b, s, filter);	/* frees x */
			}
		}
	}
}
