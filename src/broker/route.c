/*
 * Subscriptions, routing and retained messages. The subscription index and
 * the retained store (sub_index.c, retain.c) hold the tries; this file keeps
 * each session's own list of filters (so an ending session can leave the
 * index), turns a PUBLISH into at most one delivery per session, passes
 * deliveries for sessions of other workers through their inboxes, and sends
 * retained messages after a SUBSCRIBE.
 */
#include "broker/broker.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <moat/error.h>

#include "base/clock.h"
#include "broker/persist.h"
#include "broker/retain.h"
#include "broker/sub_index.h"
#include "cluster/cluster.h"
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
	b->subs = NULL;
	b->retained = NULL;
}

/* ---- a session's subscriptions ---- */

/* Whether <filter> is a shared subscription's ($share/<group>/<filter>). */
static bool is_shared(struct moat_bytes filter)
{
	return filter.len > 7 && memcmp(filter.ptr, "$share/", 7) == 0;
}

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
	struct sub *old = *sub_find(s, filter), *x = NULL;
	bool existed = old != NULL;
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
	if (existed) {
		old->opts = *opts;
		old->sub_id = sub_id;
		return 1;
	}
	cluster_interest(b, filter, true);
	if (is_shared(filter))
		stat_add(&s->owner->sys.shared_subs, 1);
	x->opts = *opts;
	x->sub_id = sub_id;
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
	cluster_interest(b, filter, false);
	if (is_shared(filter))
		stat_sub(&s->owner->sys.shared_subs, 1);
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
		cluster_interest(b, (struct moat_bytes){ x->filter, x->len }, false);
		if (is_shared((struct moat_bytes){ x->filter, x->len }))
			stat_sub(&s->owner->sys.shared_subs, 1);
		s->subs = x->next;
		free(x);
	}
	s->sub_count = 0;
}

/* ---- routing ---- */

/* The route's target for <s>, added on first sight (each session gets a
 * message once however many of its filters match [MQTT-3.3.4-2]). A session
 * of another worker gets a reference here, under the index's read lock, so
 * it outlives the trip through its owner's inbox. */
static struct target *target_for(struct worker *w, struct session *s)
{
	struct route *r = &w->route;
	struct route_mark *mark = &s->marks[w->id];

	if (mark->gen == r->gen)
		return &r->t[mark->slot];
	if (r->n == r->cap) {
		size_t cap = r->cap ? r->cap * 2 : 16;
		struct target *t = realloc(r->t, cap * sizeof(*t));

		if (t == NULL)
			return NULL;
		r->t = t;
		r->cap = cap;
	}
	mark->gen = r->gen;
	mark->slot = r->n;
	if (s->owner != w)
		atomic_fetch_add_explicit(&s->refs, 1, memory_order_relaxed);
	r->t[r->n] = (struct target){ .sess = s };
	return &r->t[r->n++];
}

struct match_ctx {
	struct worker *w;
	const struct msg *m;
	bool shares_by_cluster;	/* a remote message: its shares had it from the cluster */
	bool skip_exported;	/* a local message: skip the shares the cluster took */
};

static void on_match(void *ctx, const struct sub_entry *e, struct moat_bytes shared)
{
	struct match_ctx *mc = ctx;
	const struct msg *m = mc->m;
	struct target *t;
	uint8_t qos = e->qos < m->qos ? e->qos : m->qos;

	if (shared.len > 0 &&
	    (mc->shares_by_cluster || (mc->skip_exported && cluster_share_exported(mc->w, shared))))
		return;
	/* no-local does not apply to shared subscriptions [MQTT-3.8.3-4] */
	if (shared.len == 0 && e->no_local && e->owner == m->origin)
		return;
	t = target_for(mc->w, e->owner);
	if (t == NULL) {
		stat_add(&mc->w->sys.publish_dropped, 1);
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
	struct session *s = e->owner;

	(void)ctx;
	return atomic_load_explicit(&s->online, memory_order_relaxed);
}

/* Delivers <m> to the route's targets (subidx matched them): sessions of
 * this worker at once, the others through their workers' inboxes. */
static size_t deliver_targets(struct worker *w, struct msg *m, bool *congested)
{
	struct broker *b = w->b;
	struct route *r = &w->route;
	uint64_t now = 0;

	persist_route(w, m);
	for (size_t i = 0; i < r->n; i++) {
		struct target *t = &r->t[i];
		struct session *s = t->sess;
		struct inbox_item item = { .sess = s, .msg = m, .qos = t->qos,
					   .retain = t->retain, .sub_id_count = t->sub_id_count,
					   .store_id = t->store_id };

		if (s->owner == w) {
			sess_deliver(w, s, m, t->qos, t->retain, t->sub_ids, t->sub_id_count, t->store_id);
		} else {
			memcpy(item.sub_ids, t->sub_ids, sizeof(item.sub_ids));
			if (t->qos > 0)	/* on its way: counts until item_drop */
				atomic_fetch_add_explicit(&s->backlog, 1, memory_order_relaxed);
			msg_ref(m);
			route_send(w, s->owner, &item);	/* takes the refs */
		}
		if (congested != NULL && t->qos > 0 && !*congested) {
			if (now == 0)
				now = clock_mono_ms();
			*congested = sess_congested(b->cfg, s, now);
		}
	}
	return r->n;
}

/* A new generation invalidates every session's mark from the last route. */
static void route_reset(struct route *r)
{
	r->gen++;
	r->n = 0;
}

size_t broker_publish(struct worker *w, struct msg *m, bool *congested)
{
	struct broker *b = w->b;
	struct match_ctx mc = { w, m, false, true };

	if (congested != NULL)
		*congested = false;
	/* a remote message's retained copy comes through the cluster's bucket */
	if (m->retain && !m->remote) {
		retain_set(b->retained, m->topic, m->payload.len > 0 ? m : NULL);
		persist_retain(w, m);
	}
	mc.shares_by_cluster = cluster_export(w, m);
	route_reset(&w->route);
	subidx_match(b->subs, m->topic, on_match, member_online, &mc);
	return deliver_targets(w, m, congested);
}

/* A message of a cluster share: delivered to one member of <share> alone. */
static size_t publish_share(struct worker *w, struct msg *m, struct moat_bytes share)
{
	struct match_ctx mc = { w, m, false, false };

	route_reset(&w->route);
	subidx_pick(w->b->subs, share, on_match, member_online, &mc);
	return deliver_targets(w, m, NULL);
}

/* ---- between workers ---- */

static int items_push(struct item_list *l, const struct inbox_item *item)
{
	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 64;
		struct inbox_item *v = realloc(l->v, cap * sizeof(*v));

		if (v == NULL)
			return MOAT_E_NOMEM;
		l->v = v;
		l->cap = cap;
	}
	l->v[l->n++] = *item;
	return MOAT_OK;
}

/* Lets go of what <item> holds (after acting on it or not): in worker <w>,
 * whose batch deletes the entry of a delivery not made. */
static void item_drop(struct worker *w, struct inbox_item *item, bool delivered)
{
	if (!delivered && item->store_id != 0)
		persist_entry_drop(w, item->sess->client_id, item->store_id, item->msg, true);
	msg_unref(item->msg);
	if (item->sess != NULL) {
		if (item->qos > 0)
			atomic_fetch_sub_explicit(&item->sess->backlog, 1, memory_order_relaxed);
		sess_unref(item->sess);
	}
}

/* A message from another cluster node: routed as a local one, or only
 * stored as retained (an update of the cluster's retained bucket). */
static void remote_deliver(struct worker *w, struct inbox_item *item)
{
	struct msg *m = item->msg;
	uint32_t mark = persist_mark(w);

	revocation_from_cluster(w, m);
	if (item->retain) {
		retain_set(w->b->retained, m->topic, m->payload.len > 0 ? m : NULL);
		persist_retain(w, m);
	} else if (item->share.len > 0) {
		size_t taken = publish_share(w, m, item->share);

		cluster_share_done(item->share);
		if (taken == 0) {
			/* its last member here left: another node's member takes it */
			cluster_refuse(item->cluster_ack);
			msg_unref(m);
			return;
		}
	} else {
		broker_publish(w, m, NULL);
	}
	cluster_routed(w, item->cluster_ack, mark);
	msg_unref(m);
}

/* Acts on <item> in worker <w>, its session's owner, then drops it. */
static void item_deliver(struct worker *w, struct inbox_item *item)
{
	bool live = !item->sess->dead;
	uint32_t mark = persist_mark(w);
	uint8_t qos = item->qos;

	/* a message handed over with its session (src/cluster/handover_in.c):
	 * admitted as its subscriptions allow, acknowledged once it is in the
	 * session, and durable */
	if (item->cluster_ack != NULL && !cluster_handover_admit(w, item, &qos)) {
		item_drop(w, item, false);
		return;
	}
	if (live)
		sess_deliver(w, item->sess, item->msg, qos, item->retain, item->sub_ids,
			     item->sub_id_count, item->store_id);
	cluster_routed(w, item->cluster_ack, mark);
	item_drop(w, item, live);
}

void route_send(struct worker *from, struct worker *to, const struct inbox_item *item)
{
	if (items_push(&from->outbox[to->id], item) < 0) {
		struct inbox_item lost = *item;

		stat_add(&from->sys.publish_dropped, 1);
		item_drop(from, &lost, false);
		return;
	}
	from->outbox_used = true;
}

void worker_wake(struct worker *to)
{
	uint64_t one = 1;

	while (write(to->wake_fd, &one, sizeof(one)) < 0 && errno == EINTR)
		;
}

void route_flush_outboxes(struct worker *w)
{
	if (!w->outbox_used)
		return;
	w->outbox_used = false;
	for (unsigned i = 0; i < w->b->nworkers; i++) {
		struct item_list *out = &w->outbox[i];
		struct worker *to = &w->b->workers[i];
		bool wake;

		if (out->n == 0)
			continue;
		pthread_mutex_lock(&to->inbox_lock);
		wake = to->inbox.n == 0;
		if (wake) {
			/* swap whole lists: no copy in the common case */
			struct item_list t = to->inbox;

			to->inbox = *out;
			*out = t;
		} else {
			for (size_t k = 0; k < out->n; k++) {
				if (items_push(&to->inbox, &out->v[k]) < 0) {
					stat_add(&w->sys.publish_dropped, 1);
					item_drop(w, &out->v[k], false);
				}
			}
		}
		pthread_mutex_unlock(&to->inbox_lock);
		out->n = 0;
		if (wake)
			worker_wake(to);
	}
}

int route_post(struct worker *to, const struct inbox_item *item)
{
	bool wake;
	int rc;

	pthread_mutex_lock(&to->inbox_lock);
	wake = to->inbox.n == 0;
	rc = items_push(&to->inbox, item);
	pthread_mutex_unlock(&to->inbox_lock);
	if (rc == MOAT_OK && wake)
		worker_wake(to);
	return rc;
}

void route_drain_inbox(struct worker *w, void (*on_handoff)(struct worker *w, struct conn *c))
{
	struct item_list batch;

	pthread_mutex_lock(&w->inbox_lock);
	batch = w->inbox;
	w->inbox = (struct item_list){ 0 };
	pthread_mutex_unlock(&w->inbox_lock);
	for (size_t i = 0; i < batch.n; i++) {
		struct inbox_item *item = &batch.v[i];

		if (item->conn != NULL)
			on_handoff(w, item->conn);
		else if (item->job != NULL)
			auth_job_returned(w, item->job);
		else if (item->sess == NULL)
			remote_deliver(w, item);
		else
			item_deliver(w, item);
	}
	batch.n = 0;
	/* keep the larger array for next time */
	pthread_mutex_lock(&w->inbox_lock);
	if (w->inbox.n == 0 && w->inbox.cap < batch.cap) {
		free(w->inbox.v);
		w->inbox = batch;
		batch = (struct item_list){ 0 };
	}
	pthread_mutex_unlock(&w->inbox_lock);
	free(batch.v);
}

struct retained_ctx {
	struct worker *w;
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

	/* the author's right to publish is checked again: it may have been revoked */
	if (!msg_expired(m, rc->now_ms) && authz_author_allowed(rc->w, m))
		sess_deliver(rc->w, rc->s, m, qos, true, &rc->sub_id, rc->sub_id != 0 ? 1 : 0, 0);
	return true;
}

void sess_deliver_retained(struct worker *w, struct session *s, struct moat_bytes filter,
			   const struct mqtt_sub_opts *opts, uint32_t sub_id)
{
	struct retained_ctx rc = { w, s, opts, sub_id, clock_mono_ms() };

	retain_match(w->b->retained, filter, send_retained, &rc);
}

struct expire_ctx {
	struct worker *w;
	uint64_t now_ms;
};

static bool drop_expired(void *ctx, void *msg)
{
	struct expire_ctx *ec = ctx;
	const struct msg *m = msg;

	if (!msg_expired(m, ec->now_ms))
		return false;
	persist_retain_drop(ec->w, m->topic);
	return true;
}

void route_expire_retained(struct worker *w, uint64_t now_ms)
{
	struct expire_ctx ec = { w, now_ms };

	retain_sweep(w->b->retained, drop_expired, &ec);
}

size_t route_sub_count(const struct broker *b)
{
	return subidx_count(b->subs);
}

size_t route_retained_count(const struct broker *b)
{
	return retain_count(b->retained);
}
