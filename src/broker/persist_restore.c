/*
 * Start-up from the store: opens it, reads every record back into the
 * broker (sessions, subscriptions, inbound QoS 2 ids, queued and in-flight
 * deliveries, delayed Wills, retained messages), drops what expired while
 * the broker was down, and deletes orphans (records whose session ended in
 * a batch that reached the disk before theirs), saying how many. A damaged
 * record stops the start with its key and the way out (--check-store).
 * Also `moatd --check-store` / `--repair-store`.
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
#include "cluster/cluster.h"
#include "conf/bridge_conf.h"

/* A session whose client id was too long for keys (record.h). */
struct hashed_id {
	uint8_t key_id[1 + 64];
	struct session *s;
};

/* Shared messages read back, in id order (the store's key order). */
struct stored_msg {
	uint64_t id;
	struct msg *m;
	uint32_t entries;
};

struct restore {
	struct broker *b;
	uint64_t now_mono, now_wall;
	unsigned next_worker;
	struct stored_msg *msgs;
	size_t nmsgs, msgs_cap;
	struct store_batch cleanup; /* orphans and expired records */
	struct hashed_id *hashed;   /* sessions whose keys hold a hashed client id */
	size_t nhashed, hashed_cap;
	size_t sessions, expired, orphans, entries, retained, subs;
	size_t cluster_out; /* copies queued for other cluster nodes */
	uint64_t max_id;
	char *err;
	size_t errlen;
};

/* Writes "<key>: <why>" in a readable form into the error. */
static int damaged(struct restore *r, const uint8_t *key, size_t klen, const char *why)
{
	char shown[96];
	size_t n = 0;

	for (size_t i = 0; i < klen && n + 5 < sizeof(shown); i++)
		n += (size_t)snprintf(
		    shown + n, sizeof(shown) - n,
		    key[i] >= 0x20 && key[i] < 0x7f && key[i] != '\\' ? "%c" : "\\x%02x", key[i]);
	shown[n] = '\0';
	snprintf(r->err, r->errlen,
		 "persistence store %s: record \"%s\" is damaged (%s); run `moatd -c <config> "
		 "--check-store` to list damaged records and `--repair-store` to delete them",
		 r->b->cfg->persistence_location != NULL ? r->b->cfg->persistence_location : ".",
		 shown, why);
	return MOAT_E_MALFORMED;
}

static int nomem(struct restore *r)
{
	snprintf(r->err, r->errlen, "persistence store: out of memory while reading it back");
	return MOAT_E_NOMEM;
}

static void cleanup_del(struct restore *r, const uint8_t *key, size_t klen)
{
	if (store_batch_del(&r->cleanup, key, klen) < 0)
		log_warn("persistence: out of memory; a stale record stays in the store");
}

static void note_id(struct restore *r, uint64_t id)
{
	if (id > r->max_id)
		r->max_id = id;
}

/* The session a client-scoped key belongs to, or NULL (an orphan). */
static struct session *session_of(struct restore *r, struct moat_bytes key_cid)
{
	if (key_cid.len == sizeof(r->hashed->key_id) && key_cid.ptr[0] == REC_KEY_HASHED) {
		for (size_t i = 0; i < r->nhashed; i++)
			if (memcmp(r->hashed[i].key_id, key_cid.ptr, key_cid.len) == 0)
				return r->hashed[i].s;
		return NULL;
	}
	return sess_find(r->b, key_cid);
}

static int remember_hashed(struct restore *r, struct moat_bytes key_cid, struct session *s)
{
	if (r->nhashed == r->hashed_cap) {
		size_t cap = r->hashed_cap ? r->hashed_cap * 2 : 8;
		struct hashed_id *v = realloc(r->hashed, cap * sizeof(*v));

		if (v == NULL)
			return MOAT_E_NOMEM;
		r->hashed = v;
		r->hashed_cap = cap;
	}
	memcpy(r->hashed[r->nhashed].key_id, key_cid.ptr, sizeof(r->hashed->key_id));
	r->hashed[r->nhashed++].s = s;
	return MOAT_OK;
}

/* The session a client-scoped record belongs to; NULL when it has none, and
 * the record is then counted and deleted as an orphan. */
static struct session *owner_or_orphan(struct restore *r, struct moat_bytes key_cid,
				       const uint8_t *key, size_t klen)
{
	struct session *s = session_of(r, key_cid);

	if (s == NULL) {
		r->orphans++;
		cleanup_del(r, key, klen);
	}
	return s;
}

/* ---- S: sessions ---- */

static int set_identity(struct session *s, const struct rec_ident *id)
{
	bool nomem_roles = false, nomem_attrs = false;

	if (id->has_username) {
		s->username = text_dup_bytes(id->username);
		if (s->username == NULL)
			return MOAT_E_NOMEM;
	}
	s->roles = rec_strv(id->roles, id->role_count, &nomem_roles);
	s->attrs = rec_strv(id->attrs, id->attr_count, &nomem_attrs);
	return nomem_roles || nomem_attrs ? MOAT_E_NOMEM : MOAT_OK;
}

static int visit_session(void *ctx, const uint8_t *key, size_t klen, const uint8_t *val,
			 size_t vlen)
{
	struct restore *r = ctx;
	struct moat_bytes cid, suffix;
	struct rec_session rs;
	const char *why;
	struct rd body;
	struct session *s;
	struct worker *w;
	bool created;
	uint64_t offline, left_ms;

	if (!rec_key_split(key, klen, &cid, &suffix) || cid.len == 0)
		return damaged(r, key, klen, "bad session key");
	if (rec_open(key, klen, val, vlen, &body, &why) < 0 ||
	    rec_get_session(&body, &rs, &why) < 0)
		return damaged(r, key, klen, why);
	offline = rs.offline_wall_ms != 0 && rs.offline_wall_ms < r->now_wall ? rs.offline_wall_ms
									      : r->now_wall;
	left_ms = 0;
	if (rs.expiry_s != UINT32_MAX) {
		uint64_t gone = r->now_wall - offline, life = (uint64_t)rs.expiry_s * 1000u;

		if (rs.expiry_s == 0 || gone >= life) {
			r->expired++;
			cleanup_del(r, key, klen); /* its other records become orphans */
			return MOAT_OK;
		}
		left_ms = life - gone;
	}
	if (rs.ident.client_id.len == 0 ||
	    memchr(rs.ident.client_id.ptr, 0, rs.ident.client_id.len) != NULL ||
	    (cid.len != rs.ident.client_id.len &&
	     (cid.len != sizeof(r->hashed->key_id) || cid.ptr[0] != REC_KEY_HASHED)))
		return damaged(r, key, klen, "the key does not match the client id");
	w = &r->b->workers[r->next_worker++ % r->b->nworkers];
	s = sess_claim(w, rs.ident.client_id, &created);
	if (s == NULL || set_identity(s, &rs.ident) < 0)
		return nomem(r);
	if (cid.len != rs.ident.client_id.len && remember_hashed(r, cid, s) < 0)
		return nomem(r);
	/* a bridge's session is its internal link's from the start: above the ACL
	 * (sess_deliver) and closed to other clients (conn.c) */
	s->internal = bridge_conf_is_local_id(r->b->cfg->bridges, rs.ident.client_id.ptr,
					      rs.ident.client_id.len);
	s->version = rs.version;
	s->expiry_s = rs.expiry_s;
	s->expire_at_ms = r->now_mono + left_ms;
	atomic_store_explicit(&s->stored, true, memory_order_relaxed);
	r->sessions++;
	return MOAT_OK;
}

/* ---- B: subscriptions, I: inbound QoS 2 ---- */

static int visit_sub(void *ctx, const uint8_t *key, size_t klen, const uint8_t *val, size_t vlen)
{
	struct restore *r = ctx;
	struct moat_bytes cid, suffix;
	struct mqtt_sub_opts o;
	struct rec_sub rs;
	struct session *s;
	const char *why;
	struct rd body;
	uint8_t reason;

	if (!rec_key_split(key, klen, &cid, &suffix) || suffix.len == 0)
		return damaged(r, key, klen, "bad subscription key");
	if (rec_open(key, klen, val, vlen, &body, &why) < 0 || rec_get_sub(&body, &rs, &why) < 0)
		return damaged(r, key, klen, why);
	s = owner_or_orphan(r, cid, key, klen);
	if (s == NULL)
		return MOAT_OK;
	o = (struct mqtt_sub_opts){rs.qos, rs.no_local, rs.retain_as_published, rs.retain_handling};
	if (sess_subscribe(r->b, s, rs.filter, &o, rs.sub_id, &reason) < 0)
		return reason == MQTT_RC_UNSPECIFIED
			   ? nomem(r)
			   : damaged(r, key, klen, "filter refused by the index");
	r->subs++;
	return MOAT_OK;
}

static int visit_qos2_in(void *ctx, const uint8_t *key, size_t klen, const uint8_t *val,
			 size_t vlen)
{
	struct restore *r = ctx;
	struct moat_bytes cid, suffix;
	struct session *s;
	const char *why;
	struct rd body;

	if (!rec_key_split(key, klen, &cid, &suffix) || suffix.len != 2)
		return damaged(r, key, klen, "bad QoS 2 key");
	if (rec_open(key, klen, val, vlen, &body, &why) < 0)
		return damaged(r, key, klen, why);
	s = owner_or_orphan(r, cid, key, klen);
	if (s == NULL)
		return MOAT_OK;
	return sess_qos2_in_add(s, (uint16_t)(suffix.ptr[0] << 8 | suffix.ptr[1])) < 0 ? nomem(r)
										       : MOAT_OK;
}

/* ---- M: shared messages, Q: entries ---- */

static int visit_msg(void *ctx, const uint8_t *key, size_t klen, const uint8_t *val, size_t vlen)
{
	struct restore *r = ctx;
	struct rec_msg rm;
	const char *why;
	struct rd body;
	struct msg *m;

	if (klen != 9)
		return damaged(r, key, klen, "bad message key");
	if (rec_open(key, klen, val, vlen, &body, &why) < 0 || rec_get_msg(&body, &rm, &why) < 0)
		return damaged(r, key, klen, why);
	if (r->nmsgs == r->msgs_cap) {
		size_t cap = r->msgs_cap ? r->msgs_cap * 2 : 256;
		struct stored_msg *v = realloc(r->msgs, cap * sizeof(*v));

		if (v == NULL)
			return nomem(r);
		r->msgs = v;
		r->msgs_cap = cap;
	}
	m = persist_msg_from_rec(&rm, r->now_mono, r->now_wall);
	if (m == NULL)
		return nomem(r);
	m->store_id = rec_be64(key + 1);
	note_id(r, m->store_id);
	r->msgs[r->nmsgs++] = (struct stored_msg){m->store_id, m, 0};
	return MOAT_OK;
}

static struct stored_msg *find_msg(struct restore *r, uint64_t id)
{
	size_t lo = 0, hi = r->nmsgs;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (r->msgs[mid].id == id)
			return &r->msgs[mid];
		if (r->msgs[mid].id < id)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

static int visit_entry(void *ctx, const uint8_t *key, size_t klen, const uint8_t *val, size_t vlen)
{
	struct restore *r = ctx;
	struct moat_bytes cid, suffix;
	struct delivery d = {0};
	struct stored_msg *sm = NULL;
	struct rec_entry e;
	struct session *s;
	struct msg *m;
	const char *why;
	struct rd body;
	int rc;

	if (!rec_key_split(key, klen, &cid, &suffix) || suffix.len != 8)
		return damaged(r, key, klen, "bad entry key");
	if (rec_open(key, klen, val, vlen, &body, &why) < 0 || rec_get_entry(&body, &e, &why) < 0)
		return damaged(r, key, klen, why);
	d.store_id = rec_be64(suffix.ptr);
	note_id(r, d.store_id);
	s = session_of(r, cid);
	if (e.msg_id != 0) {
		sm = find_msg(r, e.msg_id);
		if (sm == NULL && s != NULL) {
			log_err("persistence: entry %llu of client %s refers to message %llu, "
				"which is not in the store; the delivery is lost",
				(unsigned long long)d.store_id, s->client_id,
				(unsigned long long)e.msg_id);
		}
	}
	if (s == NULL || (e.msg_id != 0 && sm == NULL)) {
		r->orphans++;
		cleanup_del(r, key, klen);
		return MOAT_OK;
	}
	m = sm != NULL ? msg_ref(sm->m) : persist_msg_from_rec(&e.msg, r->now_mono, r->now_wall);
	if (m == NULL)
		return nomem(r);
	if (sm != NULL)
		sm->entries++;
	d.qos = e.qos;
	d.retain = e.retain;
	d.packet_id = e.state == REC_QUEUED ? 0 : e.packet_id;
	d.pubrel_sent = e.state == REC_PUBREL;
	d.sub_id_count = e.sub_id_count;
	d.store_shared = sm != NULL;
	memcpy(d.sub_ids, e.sub_ids, sizeof(d.sub_ids));
	rc = sess_restore_delivery(s->owner, s, m, &d);
	msg_unref(m);
	if (rc < 0)
		return nomem(r);
	r->entries++;
	return MOAT_OK;
}

/* Shared messages keep one store reference per entry read back; one that
 * no entry refers to is an orphan. */
static void settle_msgs(struct restore *r)
{
	struct buf key = {0};

	for (size_t i = 0; i < r->nmsgs; i++) {
		struct stored_msg *sm = &r->msgs[i];

		atomic_store_explicit(&sm->m->store_refs, sm->entries, memory_order_relaxed);
		if (sm->entries == 0) {
			r->orphans++;
			if (rec_key_msg(&key, sm->id) == MOAT_OK)
				cleanup_del(r, buf_head(&key), buf_used(&key));
		}
		msg_unref(sm->m);
	}
	buf_fini(&key);
	free(r->msgs);
	r->msgs = NULL;
	r->nmsgs = r->msgs_cap = 0;
}

/* ---- W: delayed Wills, R: retained ---- */

static int visit_will(void *ctx, const uint8_t *key, size_t klen, const uint8_t *val, size_t vlen)
{
	struct restore *r = ctx;
	struct moat_bytes cid, suffix;
	struct rec_will rw;
	struct session *s;
	const char *why;
	struct rd body;

	if (!rec_key_split(key, klen, &cid, &suffix))
		return damaged(r, key, klen, "bad will key");
	if (rec_open(key, klen, val, vlen, &body, &why) < 0 || rec_get_will(&body, &rw, &why) < 0)
		return damaged(r, key, klen, why);
	s = owner_or_orphan(r, cid, key, klen);
	if (s == NULL)
		return MOAT_OK;
	s->will = persist_msg_from_rec(&rw.msg, r->now_mono, r->now_wall);
	if (s->will == NULL)
		return nomem(r);
	s->will_at_ms = persist_wall_to_mono(rw.at_wall_ms, r->now_mono, r->now_wall);
	return MOAT_OK;
}

static int visit_retained(void *ctx, const uint8_t *key, size_t klen, const uint8_t *val,
			  size_t vlen)
{
	struct restore *r = ctx;
	struct rec_msg rm;
	const char *why;
	struct rd body;
	struct msg *m;
	int rc;

	if (rec_open(key, klen, val, vlen, &body, &why) < 0 || rec_get_msg(&body, &rm, &why) < 0)
		return damaged(r, key, klen, why);
	m = persist_msg_from_rec(&rm, r->now_mono, r->now_wall);
	if (m == NULL)
		return nomem(r);
	if (msg_expired(m, r->now_mono)) {
		r->expired++;
		cleanup_del(r, key, klen);
		msg_unref(m);
		return MOAT_OK;
	}
	rc = retain_set(r->b->retained, m->topic, m);
	msg_unref(m);
	if (rc < 0)
		return nomem(r);
	r->retained++;
	return MOAT_OK;
}

/* ---- C: the cluster's outbound queue (src/cluster/outbound.c) ---- */

static int visit_cluster_out(void *ctx, const uint8_t *key, size_t klen, const uint8_t *val,
			     size_t vlen)
{
	struct restore *r = ctx;
	struct moat_bytes subject, data;
	const char *why;
	struct rd body;
	int rc;

	if (klen != 9 || rec_open(key, klen, val, vlen, &body, &why) < 0 ||
	    rec_get_cluster_out(&body, &subject, &data, &why) < 0)
		return damaged(r, key, klen, klen != 9 ? "bad cluster queue key" : why);
	rc = cluster_outbound_restore(r->b, rec_be64(key + 1), subject, data);
	if (rc == MOAT_E_NOMEM)
		return nomem(r);
	if (rc == MOAT_E_NOTFOUND)
		log_warn("persistence: a copy queued for other cluster nodes is dropped: this "
			 "broker is no cluster node now (no cluster_url)");
	if (rc < 0) { /* MOAT_E_MALFORMED: not this cluster's (logged) */
		r->orphans++;
		cleanup_del(r, key, klen);
		return MOAT_OK;
	}
	r->cluster_out++;
	return MOAT_OK;
}

static int scan(struct restore *r, char type, store_visit_fn fn)
{
	uint8_t prefix = (uint8_t)type;
	int rc = store_scan(r->b->store, &prefix, 1, fn, r);

	if (rc < 0 && r->err[0] == '\0')
		snprintf(r->err, r->errlen, "persistence store: reading records failed (%s)",
			 moat_strerror(rc));
	return rc;
}

static int restore(struct restore *r)
{
	static const struct {
		char type;
		store_visit_fn fn;
	} order[] = {
	    {REC_SESSION, visit_session}, {REC_SUB, visit_sub},	    {REC_QOS2_IN, visit_qos2_in},
	    {REC_MSG, visit_msg},	  {REC_ENTRY, visit_entry}, {REC_WILL, visit_will},
	    {REC_RETAIN, visit_retained},
	    {REC_CLUSTER_OUT, visit_cluster_out},
	};
	int rc = MOAT_OK;

	for (size_t i = 0; i < sizeof(order) / sizeof(order[0]) && rc == MOAT_OK; i++) {
		rc = scan(r, order[i].type, order[i].fn);
		if (order[i].type == REC_ENTRY)
			settle_msgs(r);
	}
	if (r->msgs != NULL)
		settle_msgs(r);
	return rc;
}

int persist_open(struct broker *b, char *err, size_t errlen)
{
	const struct moat_config *cfg = b->cfg;
	struct store_opts o = {.dir = cfg->persistence_location != NULL ? cfg->persistence_location
									: ".",
			       .sync = (enum store_sync)cfg->persistence_sync,
			       .batch_ms = cfg->persistence_batch_ms,
			       .max_bytes = cfg->persistence_max_bytes};
	struct restore r = {.b = b,
			    .now_mono = clock_mono_ms(),
			    .now_wall = clock_wall_ms(),
			    .err = err,
			    .errlen = errlen};
	int rc;

	err[0] = '\0';
	if (!cfg->persistence)
		return MOAT_OK;
	rc = store_open(&o, &b->store, err, errlen);
	if (rc < 0)
		return rc;
	store_batch_init(&r.cleanup);
	rc = restore(&r);
	if (rc == MOAT_OK) {
		atomic_store(&b->store_next_id, r.max_id + 1);
		store_submit(b->store, &r.cleanup, -1);
		rc = store_flush(b->store);
		if (rc < 0)
			snprintf(err, errlen, "persistence store %s: cannot write (%s)", o.dir,
				 moat_strerror(rc));
	}
	store_batch_fini(&r.cleanup);
	free(r.hashed);
	if (rc < 0)
		return rc;
	log_notice(
	    "persistence: %s: %zu sessions, %zu subscriptions, %zu queued or in-flight messages, "
	    "%zu retained messages restored; %zu expired and %zu orphan records removed",
	    o.dir, r.sessions, r.subs, r.entries, r.retained, r.expired, r.orphans);
	if (r.cluster_out > 0)
		log_notice("persistence: %zu copies queued for other cluster nodes restored",
			   r.cluster_out);
	return MOAT_OK;
}

void persist_close(struct broker *b)
{
	if (b->store == NULL)
		return;
	if (store_flush(b->store) < 0)
		log_err("persistence: the last writes could not be made durable");
	store_close(b->store);
	b->store = NULL;
}

/* ---- --check-store / --repair-store ---- */

static void report_damage(void *ctx, const uint8_t *key, size_t klen, const char *why)
{
	bool repair = *(bool *)ctx;

	printf("%s record \"", repair ? "deleting damaged" : "damaged");
	for (size_t i = 0; i < klen; i++)
		printf(key[i] >= 0x20 && key[i] < 0x7f && key[i] != '\\' ? "%c" : "\\x%02x",
		       key[i]);
	printf("\": %s\n", why);
}

int persist_check(const struct moat_config *cfg, bool repair)
{
	const char *dir = cfg->persistence_location != NULL ? cfg->persistence_location : ".";
	char err[512] = "";
	int rc = store_check(dir, rec_check, repair, report_damage, &repair, err, sizeof(err));

	if (rc == MOAT_OK) {
		printf("persistence store %s: %s\n", dir,
		       repair ? "repaired; every record left is sound" : "every record is sound");
		return 0;
	}
	fprintf(stderr, "moatd: persistence store %s: %s\n", dir,
		err[0] != '\0' ? err : moat_strerror(rc));
	return rc == MOAT_E_IO || rc == MOAT_E_NOMEM ? 2 : 1;
}
