/*
 * The broker's durable state: writes as the state changes, gates answers
 * on durability, and reads everything back at start-up (see persist.h and
 * docs/persistence.md).
 */
#include "broker/persist.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <moat/error.h>

#include "base/clock.h"
#include "base/log.h"
#include "base/text.h"
#include "broker/record.h"
#include "broker/retain.h"
#include "broker/security.h"

static bool on(const struct worker *w)
{
	return w->b->store != NULL;
}

static uint64_t next_id(struct broker *b)
{
	return atomic_fetch_add_explicit(&b->store_next_id, 1, memory_order_relaxed);
}

static struct moat_bytes key_of(const struct worker *w)
{
	return (struct moat_bytes){buf_head(&w->rec_key), buf_used(&w->rec_key)};
}

/* A write that cannot be queued (out of memory) cannot be promised either:
 * it is logged, rate-limited, as the loss it may become. */
static void lost_write(void)
{
	static struct log_limiter limiter;

	if (log_limiter_allow(&limiter, 5, 60))
		log_err("persistence: out of memory queuing a store write; a crash now could lose "
			"state");
}

static void put_current(struct worker *w, int encoded)
{
	if (encoded < 0 || store_batch_put(&w->batch, buf_head(&w->rec_key), buf_used(&w->rec_key),
					   buf_head(&w->rec_val), buf_used(&w->rec_val)) < 0)
		lost_write();
}

static void del_current(struct worker *w, int keyed)
{
	if (keyed < 0 ||
	    store_batch_del(&w->batch, buf_head(&w->rec_key), buf_used(&w->rec_key)) < 0)
		lost_write();
}

static void del_prefix_current(struct worker *w, int keyed)
{
	if (keyed < 0 ||
	    store_batch_del_prefix(&w->batch, buf_head(&w->rec_key), buf_used(&w->rec_key)) < 0)
		lost_write();
}

/* ---- messages between memory and records ---- */

/* Monotonic expiry to wall clock and back: stored times survive a restart. */
static uint64_t mono_to_wall(uint64_t mono_ms, uint64_t now_mono, uint64_t now_wall)
{
	return mono_ms > now_mono ? now_wall + (mono_ms - now_mono) : now_wall;
}

uint64_t persist_wall_to_mono(uint64_t wall_ms, uint64_t now_mono, uint64_t now_wall)
{
	return wall_ms > now_wall ? now_mono + (wall_ms - now_wall) : now_mono;
}

void persist_msg_to_rec(const struct msg *m, struct rec_msg *r, struct rec_ident_src *author)
{
	*r = (struct rec_msg){
	    .qos = m->qos,
	    .retain = m->retain,
	    .has_expiry = m->has_expiry,
	    .props_present = m->props.present,
	    .payload_format = m->props.payload_format,
	    .topic = m->topic,
	    .payload = m->payload,
	    .content_type = m->props.content_type,
	    .response_topic = m->props.response_topic,
	    .correlation_data = m->props.correlation_data,
	    .user = m->props.user,
	    .user_count = m->props.user_count,
	};
	if (m->has_expiry)
		r->expire_wall_ms = mono_to_wall(m->expire_at_ms, clock_mono_ms(), clock_wall_ms());
	if (m->author != NULL) {
		*author = (struct rec_ident_src){m->author->username, m->author->client_id,
						 m->author->roles, m->author->attrs};
		r->has_author = true;
		r->author_src = author;
	}
}

static struct msg_author *author_from_rec(const struct rec_ident *id)
{
	struct msg_author *a = calloc(1, sizeof(*a));
	bool nomem_roles = false, nomem_attrs = false;

	if (a == NULL)
		return NULL;
	a->client_id = text_dup_bytes(id->client_id);
	a->username = id->has_username ? text_dup_bytes(id->username) : NULL;
	a->roles = rec_strv(id->roles, id->role_count, &nomem_roles);
	a->attrs = rec_strv(id->attrs, id->attr_count, &nomem_attrs);
	if (a->client_id == NULL || (id->has_username && a->username == NULL) || nomem_roles ||
	    nomem_attrs) {
		authz_author_free(a);
		return NULL;
	}
	return a;
}

struct msg *persist_msg_from_rec(const struct rec_msg *r, uint64_t now_mono, uint64_t now_wall)
{
	struct mqtt_publish p = {
	    .qos = r->qos, .retain = r->retain, .topic = r->topic, .payload = r->payload};
	struct msg *m;

	p.props.present = r->props_present;
	p.props.payload_format = r->payload_format;
	p.props.content_type = r->content_type;
	p.props.response_topic = r->response_topic;
	p.props.correlation_data = r->correlation_data;
	p.props.user = r->user;
	p.props.user_count = r->user_count;
	m = msg_create(&p, r->topic, now_mono);
	if (m == NULL)
		return NULL;
	if (r->has_expiry) {
		m->has_expiry = true;
		m->expire_at_ms = persist_wall_to_mono(r->expire_wall_ms, now_mono, now_wall);
	}
	if (r->has_author) {
		m->author = author_from_rec(&r->author);
		if (m->author == NULL) {
			msg_unref(m);
			return NULL;
		}
	}
	return m;
}

/* ---- sessions ---- */

void persist_session_save(struct worker *w, struct session *s, uint64_t offline_wall_ms)
{
	struct rec_ident_src id = {s->username, s->client_id, s->roles, s->attrs};
	struct rec_session r = {.version = s->version,
				.expiry_s = s->expiry_s,
				.offline_wall_ms = offline_wall_ms,
				.ident_src = &id};

	if (!on(w))
		return;
	if (s->expiry_s == 0) {
		persist_session_drop(w, s);
		return;
	}
	atomic_store_explicit(&s->stored, true, memory_order_relaxed);
	if (rec_key_client(&w->rec_key, REC_SESSION, s->client_id) < 0)
		put_current(w, MOAT_E_NOMEM);
	else
		put_current(w, rec_put_session(&w->rec_val, key_of(w), &r));
}

void persist_session_drop(struct worker *w, struct session *s)
{
	static const enum rec_type scoped[] = {REC_SUB, REC_ENTRY, REC_QOS2_IN};

	if (!on(w) || !atomic_load_explicit(&s->stored, memory_order_relaxed))
		return;
	atomic_store_explicit(&s->stored, false, memory_order_relaxed);
	del_current(w, rec_key_client(&w->rec_key, REC_SESSION, s->client_id));
	del_current(w, rec_key_client(&w->rec_key, REC_WILL, s->client_id));
	for (size_t i = 0; i < sizeof(scoped) / sizeof(scoped[0]); i++)
		del_prefix_current(w, rec_key_client_prefix(&w->rec_key, scoped[i], s->client_id));
}

void persist_sub_save(struct worker *w, const struct session *s, struct moat_bytes filter,
		      const struct mqtt_sub_opts *o, uint32_t sub_id)
{
	struct rec_sub r = {.qos = o->qos,
			    .retain_handling = o->retain_handling,
			    .no_local = o->no_local,
			    .retain_as_published = o->retain_as_published,
			    .sub_id = sub_id,
			    .filter = filter};

	if (!on(w) || !atomic_load_explicit(&s->stored, memory_order_relaxed))
		return;
	if (rec_key_sub(&w->rec_key, s->client_id, filter) < 0)
		put_current(w, MOAT_E_NOMEM);
	else
		put_current(w, rec_put_sub(&w->rec_val, key_of(w), &r));
}

void persist_sub_drop(struct worker *w, const struct session *s, struct moat_bytes filter)
{
	if (on(w) && atomic_load_explicit(&s->stored, memory_order_relaxed))
		del_current(w, rec_key_sub(&w->rec_key, s->client_id, filter));
}

void persist_qos2_in(struct worker *w, const struct session *s, uint16_t packet_id, bool add)
{
	if (!on(w) || !atomic_load_explicit(&s->stored, memory_order_relaxed))
		return;
	if (!add) {
		del_current(w, rec_key_qos2_in(&w->rec_key, s->client_id, packet_id));
		return;
	}
	if (rec_key_qos2_in(&w->rec_key, s->client_id, packet_id) < 0)
		put_current(w, MOAT_E_NOMEM);
	else
		put_current(w, rec_put_empty(&w->rec_val, key_of(w)));
}

void persist_will(struct worker *w, const struct session *s)
{
	struct rec_ident_src author;
	struct rec_will r;

	if (!on(w) || !atomic_load_explicit(&s->stored, memory_order_relaxed))
		return;
	if (s->will == NULL) {
		del_current(w, rec_key_client(&w->rec_key, REC_WILL, s->client_id));
		return;
	}
	persist_msg_to_rec(s->will, &r.msg, &author);
	r.at_wall_ms = mono_to_wall(s->will_at_ms, clock_mono_ms(), clock_wall_ms());
	if (rec_key_client(&w->rec_key, REC_WILL, s->client_id) < 0)
		put_current(w, MOAT_E_NOMEM);
	else
		put_current(w, rec_put_will(&w->rec_val, key_of(w), &r));
}

/* ---- messages and entries ---- */

static void entry_fields(struct rec_entry *e, const struct delivery *d)
{
	*e = (struct rec_entry){.qos = d->qos,
				.retain = d->retain,
				.packet_id = d->packet_id,
				.sub_id_count = d->sub_id_count};
	e->state = d->pubrel_sent ? REC_PUBREL : d->packet_id != 0 ? REC_SENT : REC_QUEUED;
	memcpy(e->sub_ids, d->sub_ids, sizeof(e->sub_ids));
}

static void put_entry(struct worker *w, const char *client_id, uint64_t entry_id,
		      const struct rec_entry *e)
{
	if (rec_key_entry(&w->rec_key, client_id, entry_id) < 0)
		put_current(w, MOAT_E_NOMEM);
	else
		put_current(w, rec_put_entry(&w->rec_val, key_of(w), e));
}

void persist_route(struct worker *w, struct msg *m)
{
	struct route *r = &w->route;
	struct rec_ident_src author;
	struct rec_msg rm;
	unsigned n = 0;

	if (!on(w))
		return;
	for (size_t i = 0; i < r->n; i++)
		if (r->t[i].qos > 0 &&
		    atomic_load_explicit(&r->t[i].sess->stored, memory_order_relaxed))
			n++;
	if (n == 0)
		return;
	m->store_id = next_id(w->b);
	atomic_store_explicit(&m->store_refs, n, memory_order_relaxed);
	persist_msg_to_rec(m, &rm, &author);
	if (rec_key_msg(&w->rec_key, m->store_id) < 0)
		put_current(w, MOAT_E_NOMEM);
	else
		put_current(w, rec_put_msg(&w->rec_val, key_of(w), &rm));
	for (size_t i = 0; i < r->n; i++) {
		struct target *t = &r->t[i];
		struct rec_entry e = {.qos = t->qos,
				      .retain = t->retain,
				      .state = REC_QUEUED,
				      .sub_id_count = t->sub_id_count,
				      .msg_id = m->store_id};

		if (t->qos == 0 || !atomic_load_explicit(&t->sess->stored, memory_order_relaxed))
			continue;
		memcpy(e.sub_ids, t->sub_ids, sizeof(e.sub_ids));
		t->store_id = next_id(w->b);
		put_entry(w, t->sess->client_id, t->store_id, &e);
	}
}

void persist_retain(struct worker *w, const struct msg *m)
{
	struct rec_ident_src author;
	struct rec_msg rm;

	if (!on(w) || (m->topic.len >= 5 && memcmp(m->topic.ptr, "$SYS/", 5) == 0))
		return; /* $SYS is made anew by each process */
	if (m->payload.len == 0) {
		persist_retain_drop(w, m->topic);
		return;
	}
	persist_msg_to_rec(m, &rm, &author);
	if (rec_key_retain(&w->rec_key, m->topic) < 0)
		put_current(w, MOAT_E_NOMEM);
	else
		put_current(w, rec_put_msg(&w->rec_val, key_of(w), &rm));
}

void persist_retain_drop(struct worker *w, struct moat_bytes topic)
{
	if (on(w))
		del_current(w, rec_key_retain(&w->rec_key, topic));
}

void persist_entry_add(struct worker *w, const struct session *s, struct delivery *d)
{
	if (!on(w) || d->qos == 0 || !atomic_load_explicit(&s->stored, memory_order_relaxed))
		return;
	d->store_id = next_id(w->b);
	d->store_shared = false;
	persist_entry_update(w, s, d);
}

void persist_entry_update(struct worker *w, const struct session *s, const struct delivery *d)
{
	struct rec_ident_src author;
	struct rec_entry e;

	if (!on(w) || d->store_id == 0)
		return;
	entry_fields(&e, d);
	if (d->store_shared)
		e.msg_id = d->msg->store_id;
	else
		persist_msg_to_rec(d->msg, &e.msg, &author);
	put_entry(w, s->client_id, d->store_id, &e);
}

void persist_entry_drop(struct worker *w, const char *client_id, uint64_t entry_id, struct msg *m,
			bool shared)
{
	if (!on(w) || entry_id == 0)
		return;
	del_current(w, rec_key_entry(&w->rec_key, client_id, entry_id));
	if (shared && atomic_fetch_sub_explicit(&m->store_refs, 1, memory_order_acq_rel) == 1)
		del_current(w, rec_key_msg(&w->rec_key, m->store_id));
}

bool persist_refusing(const struct broker *b)
{
	return b->store != NULL && store_refusing(b->store);
}

/* ---- gating ---- */

uint32_t persist_mark(const struct worker *w)
{
	return w->batch.count;
}

void persist_gate_since(struct conn *c, uint32_t mark)
{
	if (c->w->batch.count != mark)
		c->gate = PERSIST_GATE_THIS_PASS;
}

void persist_submit(struct worker *w)
{
	if (on(w))
		w->pass_ticket = store_submit(w->b->store, &w->batch, w->wake_fd);
}

bool persist_hold_output(struct worker *w, struct conn *c)
{
	if (c->gate == 0)
		return false;
	if (c->gate == PERSIST_GATE_THIS_PASS)
		c->gate = w->pass_ticket;
	if (c->gate <= store_durable(w->b->store)) {
		c->gate = 0;
		return false;
	}
	if (!c->gated) {
		c->gated = true;
		c->gated_next = w->gated;
		w->gated = c;
	}
	return true;
}

void persist_release(struct worker *w)
{
	struct conn **pp = &w->gated;
	uint64_t durable;

	if (w->gated == NULL)
		return;
	durable = store_durable(w->b->store);
	while (*pp != NULL) {
		struct conn *c = *pp;

		if (c->gate > durable) {
			pp = &c->gated_next;
			continue;
		}
		*pp = c->gated_next;
		c->gated = false;
		c->gate = 0;
		server_mark_dirty(c);
	}
}

void persist_conn_closed(struct worker *w, struct conn *c)
{
	struct conn **pp;

	if (!c->gated)
		return;
	for (pp = &w->gated; *pp != c; pp = &(*pp)->gated_next)
		;
	*pp = c->gated_next;
	c->gated = false;
}

void persist_worker_fini(struct worker *w)
{
	store_batch_fini(&w->batch);
	buf_fini(&w->rec_key);
	buf_fini(&w->rec_val);
}
