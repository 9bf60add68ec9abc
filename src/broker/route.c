/*
 * Subscriptions, routing and retained messages. The subscription index and
 * the retained store (sub_index.c, retain.c) hold the tries; this file keeps
 * each session's own list of filters (so an ending session can leave the
 * index), turns a PUBLISH into at most one delivery per session, and sends
 * retained messages after a SUBSCRIBE.
 */
#include "broker/broker.h"

#include <stdlib.h>
#include <string.h>

#include <moat/error.h>

#include "base/clock.h"
#include "broker/retain.h"
#include "broker/sub_index.h"
#include "codec/topic.h"

/* ---- the retained store's hold on messages ---- */

static void retain_ref(void *m)
{
	msg_ref(m);
}

static void retain_unref(void *m)
{
	msg_unref(m);
}

static const struct retain_ops msg_retain_ops = { retain_ref, retain_unref };

int route_init(struct broker *b)
{
	b->subs = subidx_create(b->cfg->max_topic_levels);
	b->retained = retain_create(&msg_retain_ops, b->cfg->max_topic_levels);
	return b->subs != NULL && b->retained != NULL ? MOAT_OK : MOAT_E_NOMEM;
}

void route_fini(struct broker *b)
{
	subidx_destroy(b->subs);
	retain_destroy(b->retained);
	free(b->route.t);
	b->subs = NULL;
	b->retained = NULL;
	b->route = (struct route){ 0 };
}

/* ---- a session's subscriptions ---- */

static struct sub **sub_find(struct session *s, struct moat_bytes filter)
{
	struct sub **pp;

	for (pp = &s->subs; *pp != NULL; pp = &(*pp)->next)
		if ((*pp)->len == filter.len && memcmp((*pp)->filter, filter.ptr, filter.len) == 0)
			break;
	return pp;
}

int sess_subscribe(struct broker *b, struct session *s, struct moat_bytes filter,
		   const struct mqtt_sub_opts *opts, uint32_t sub_id, uint8_t *reason)
{
	struct sub_entry e = { .owner = s, .qos = opts->qos, .no_local = opts->no_local,
			       .retain_as_published = opts->retain_as_published,
			       .retain_handling = opts->retain_handling, .sub_id = sub_id };
	bool existed = *sub_find(s, filter) != NULL;
	struct sub *x = NULL;
	int rc;

	if (!existed && b->cfg->max_subscriptions > 0 && s->sub_count >= b->cfg->max_subscriptions) {
		*reason = MQTT_RC_QUOTA_EXCEEDED;
		return MOAT_E_LIMIT;
	}
	if (!existed) {
		x = malloc(sizeof(*x) + filter.len);
		if (x == NULL) {
			*reason = MQTT_RC_UNSPECIFIED;
			return MOAT_E_NOMEM;
		}
	}
	rc = subidx_add(b->subs, filter, &e, NULL);
	if (rc < 0) {
		free(x);
		*reason = rc == MOAT_E_NOMEM ? MQTT_RC_UNSPECIFIED : MQTT_RC_TOPIC_FILTER_INVALID;
		return rc;
	}
	*reason = opts->qos;
	if (existed)
		return 1;
	x->len = filter.len;
	memcpy(x->filter, filter.ptr, filter.len);
	x->next = s->subs;
	s->subs = x;
	s->sub_count++;
	return 0;
}

uint8_t sess_unsubscribe(struct broker *b, struct session *s, struct moat_bytes filter)
{
	struct sub **pp = sub_find(s, filter), *x = *pp;

	if (x == NULL)
		return MQTT_RC_NO_SUBSCRIPTION_EXISTED;
	subidx_remove(b->subs, filter, s);
	*pp = x->next;
	free(x);
	s->sub_count--;
	return MQTT_RC_SUCCESS;
}

void sess_remove_subs(struct broker *b, struct session *s)
{
	while (s->subs != NULL) {
		struct sub *x = s->subs;

		subidx_remove(b->subs, (struct moat_bytes){ x->filter, x->len }, s);
		s->subs = x->next;
		free(x);
	}
	s->sub_count = 0;
}

/* ---- routing ---- */

/* The route's target for <s>, added on first sight (each session gets a
 * message once however many of its filters match [MQTT-3.3.4-2]). */
static struct target *target_for(struct broker *b, struct session *s)
{
	struct route *r = &b->route;

	if (s->route_gen == r->gen)
		return &r->t[s->route_slot];
	if (r->n == r->cap) {
		size_t cap = r->cap ? r->cap * 2 : 16;
		struct target *t = realloc(r->t, cap * sizeof(*t));

		if (t == NULL)
			return NULL;
		r->t = t;
		r->cap = cap;
	}
	s->route_gen = r->gen;
	s->route_slot = r->n;
	r->t[r->n] = (struct target){ .sess = s };
	return &r->t[r->n++];
}

struct match_ctx {
	struct broker *b;
	const struct msg *m;
};

static void on_match(void *ctx, const struct sub_entry *e, struct moat_bytes share_group)
{
	struct match_ctx *mc = ctx;
	const struct msg *m = mc->m;
	struct target *t;
	uint8_t qos = e->qos < m->qos ? e->qos : m->qos;

	/* no-local does not apply to shared subscriptions [MQTT-3.8.3-4] */
	if (share_group.len == 0 && e->no_local && e->owner == m->origin)
		return;
	t = target_for(mc->b, e->owner);
	if (t == NULL) {
		mc->b->sys.publish_dropped++;
		return;
	}
	if (qos > t->qos)
		t->qos = qos;
	t->retain |= e->retain_as_published && m->retain;
	if (e->sub_id != 0 && t->sub_id_count < MAX_SUB_IDS)
		t->sub_ids[t->sub_id_count++] = e->sub_id;
}

/* Shared groups prefer members that are online. */
static bool member_online(void *ctx, const struct sub_entry *e)
{
	const struct session *s = e->owner;

	(void)ctx;
	return s->conn != NULL;
}

size_t broker_publish(struct broker *b, struct msg *m)
{
	struct match_ctx mc = { b, m };
	struct route *r = &b->route;

	if (m->retain)
		retain_set(b->retained, m->topic, m->payload.len > 0 ? m : NULL);
	/* a new generation invalidates every session's slot from the last route */
	r->gen++;
	r->n = 0;
	subidx_match(b->subs, m->topic, on_match, member_online, &mc);
	for (size_t i = 0; i < r->n; i++) {
		struct target *t = &r->t[i];

		sess_deliver(b, t->sess, m, t->qos, t->retain, t->sub_ids, t->sub_id_count);
	}
	return r->n;
}

struct retained_ctx {
	struct broker *b;
	struct session *s;
	const struct mqtt_sub_opts *opts;
	uint32_t sub_id;
	uint64_t now_ms;
};

static bool send_retained(void *ctx, void *msg)
{
	struct retained_ctx *rc = ctx;
	struct msg *m = msg;
	uint8_t qos = rc->opts->qos < m->qos ? rc->opts->qos : m->qos;

	if (!msg_expired(m, rc->now_ms))
		sess_deliver(rc->b, rc->s, m, qos, true, &rc->sub_id, rc->sub_id != 0 ? 1 : 0);
	return true;
}

void sess_deliver_retained(struct broker *b, struct session *s, struct moat_bytes filter,
			   const struct mqtt_sub_opts *opts, uint32_t sub_id)
{
	struct retained_ctx rc = { b, s, opts, sub_id, clock_mono_ms() };

	retain_match(b->retained, filter, send_retained, &rc);
}

static bool drop_expired(void *ctx, void *msg)
{
	return msg_expired(msg, *(const uint64_t *)ctx);
}

void route_expire_retained(struct broker *b, uint64_t now_ms)
{
	retain_sweep(b->retained, drop_expired, &now_ms);
}

size_t route_sub_count(const struct broker *b)
{
	return subidx_count(b->subs);
}

size_t route_retained_count(const struct broker *b)
{
	return retain_count(b->retained);
}
