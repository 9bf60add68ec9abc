/*
 * Cluster-wide sessions (docs/cluster.md, "Sessions"): every session has an
 * entry in the bucket "<cluster>_sessions" under its client id's subject
 * tokens (snapshot.h), written by the node that owns it: at CONNECT (the
 * claim), when its subscriptions change (once per loop pass) and when its
 * client goes. Each write names the revision this node read or wrote last,
 * so a node that lost the session can no longer overwrite it. A node that
 * claims a session another node owned tells that node on
 * "<cluster>.s.<owner>"; the old owner closes its connection (DISCONNECT
 * 0x8E), sends the new owner its queued and in-flight messages on the new
 * owner's stream subject marked for the session (Moat-Session header), and
 * drops its copy. Sessions of a node that died are adopted by a survivor
 * (adopt.c): they become offline sessions there, so their Wills and expiry
 * run as on one node.
 */
#include "cluster/cluster_int.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <moat/error.h>

#include "base/clock.h"
#include "base/log.h"
#include "broker/broker.h"
#include "broker/persist.h"
#include "broker/security.h"
#include "cluster/snapshot.h"
#include "cluster/subject.h"
#include "cluster/wire.h"

/* The header of a handed-over message: "<qos> <retain> <n> <id>... <key>". */
#define SESSION_HEADER "Moat-Session"

/* Tries of a claim that other nodes' claims keep overtaking. */
enum { CLAIM_TRIES = 3 };

struct worker_share {
	pthread_mutex_t lock; /* for <head>, <tail> */
	struct action *head, *tail;
	struct session **dirty; /* the worker's own */
	size_t dirty_n, dirty_cap;
	struct buf key, value, scratch; /* the worker's scratch */
};

struct cluster_sessions {
	kvStore *kv;
	natsSubscription *notices;
	char notice_prefix[CLUSTER_NAME_MAX + 8]; /* "<cluster>.s." */
	struct worker_share *w;			  /* one per worker */
};

static struct log_limiter sessions_log;

/* <client_id>'s key (a C string) in <out>. */
static const char *key_for(struct buf *out, struct moat_bytes client_id)
{
	buf_consume(out, buf_used(out));
	if (subject_from_topic(out, client_id) < 0 || buf_append(out, "", 1) < 0)
		return NULL;
	return (const char *)buf_head(out);
}

void cluster_action_free(struct action *a)
{
	free(a->key);
	buf_fini(&a->value);
	free(a);
}

/* Dropped once the cluster is stopping: cluster_stop frees the queues next. */
void cluster_sessions_post(struct cluster *cl, unsigned wid, struct action *a)
{
	struct worker_share *ws;

	pthread_mutex_lock(&cl->post_lock);
	if (cl->stopping) {
		pthread_mutex_unlock(&cl->post_lock);
		cluster_action_free(a);
		return;
	}
	ws = &cl->sessions->w[wid];
	pthread_mutex_lock(&ws->lock);
	if (ws->tail != NULL)
		ws->tail->next = a;
	else
		ws->head = a;
	ws->tail = a;
	pthread_mutex_unlock(&ws->lock);
	pthread_mutex_unlock(&cl->post_lock);
	worker_wake(&cl->b->workers[wid]);
}

/* ---- the entry ---- */

/* Whether NATS is there: a node cut off from it keeps its sessions to
 * itself rather than wait for every bucket operation to time out. */
static bool nats_up(struct cluster *cl)
{
	if (natsConnection_Status(cl->nc) == NATS_CONN_STATUS_CONNECTED)
		return true;
	if (log_limiter_allow(&sessions_log, 10, 10))
		log_warn(
		    "cluster: NATS unreachable: sessions are not written to the sessions bucket");
	return false;
}

/* Seconds left until <at_ms> (monotonic), rounded up. */
static uint32_t seconds_left(uint64_t at_ms, uint64_t now_ms)
{
	return at_ms > now_ms ? (uint32_t)((at_ms - now_ms + 999) / 1000) : 0;
}

/* Encodes <s> as this node's entry into <out>; <c> its connection or NULL. */
static int encode_session(struct cluster *cl, const struct session *s, const struct conn *c,
			  struct buf *out)
{
	struct snapshot snap = {.owner = moat_bytes_str(cl->node),
				.online = c != NULL,
				.offline_wall_ms = c != NULL ? 0 : clock_wall_ms(),
				.version = s->version,
				.expiry_s = s->expiry_s,
				.has_username = s->username != NULL,
				.username = moat_bytes_str(s->username != NULL ? s->username : "")};
	size_t n = 0;
	int rc;

	if (c != NULL) {
		snap.will = c->will;
		snap.will_delay_s = c->will_delay_s;
	} else if (s->will != NULL) {
		snap.will = s->will;
		snap.will_delay_s = seconds_left(s->will_at_ms, clock_mono_ms());
	}
	if (s->sub_count > 0 && (snap.subs = calloc(s->sub_count, sizeof(*snap.subs))) == NULL)
		return MOAT_E_NOMEM;
	for (const struct sub *x = s->subs; x != NULL && n < s->sub_count; x = x->next, n++)
		snap.subs[n] = (struct snap_sub){
		    .filter = {x->filter, x->len}, .opts = x->opts, .sub_id = x->sub_id};
	snap.sub_n = n;
	rc = snapshot_encode(out, &snap);
	free(snap.subs);
	return rc;
}

/* Writes <value> under <key> if it is still at revision <*rev> (0: absent);
 * *<rev> gets the new revision. */
static natsStatus write_entry(kvStore *kv, const char *key, const struct buf *value, uint64_t *rev)
{
	uint64_t last = *rev;

	if (last == 0)
		return kvStore_Create(rev, kv, key, buf_head(value), (int)buf_used(value));
	return kvStore_Update(rev, kv, key, buf_head(value), (int)buf_used(value), last);
}

/* Writes <s>'s entry (with its connection <c>, or offline) unless another
 * node claimed it since this node last wrote it. */
static void save(struct worker *w, struct session *s, const struct conn *c)
{
	struct cluster *cl = w->b->cluster;
	struct worker_share *ws = &cl->sessions->w[w->id];
	const char *key = key_for(&ws->key, moat_bytes_str(s->client_id));
	natsStatus st;

	if (s->cluster_moved || s->cluster_rev == 0 || key == NULL || !nats_up(cl))
		return;
	if (encode_session(cl, s, c, &ws->value) < 0) {
		log_warn("cluster: cannot write session %s: out of memory", s->client_id);
		return;
	}
	st = write_entry(cl->sessions->kv, key, &ws->value, &s->cluster_rev);
	if (st != NATS_OK && log_limiter_allow(&sessions_log, 10, 10))
		log_notice("cluster: session %s not written (%s): another node took it over",
			   s->client_id, natsStatus_GetText(st));
}

/* ---- resuming a session another node had ---- */

static bool same_user(const struct snapshot *snap, const struct conn *c)
{
	if (!snap->has_username || c->username == NULL)
		return !snap->has_username && c->username == NULL;
	return snap->username.len == strlen(c->username) &&
	       memcmp(snap->username.ptr, c->username, snap->username.len) == 0;
}

void cluster_session_restore_subs(struct worker *w, struct session *s, const struct snapshot *snap,
				  bool check)
{
	for (size_t i = 0; i < snap->sub_n; i++) {
		const struct snap_sub *x = &snap->subs[i];
		uint8_t reason;

		if (check && !authz_session(w, s, x->filter, ACCESS_SUBSCRIBE))
			continue;
		if (sess_subscribe(w->b, s, x->filter, &x->opts, x->sub_id, &reason) >= 0)
			persist_sub_save(w, s, x->filter, &x->opts, x->sub_id);
	}
}

/* Tells <owner> that this node took <key> over at revision <rev>;
 * <hand_over>: send the messages, the session goes on here. */
static void notify(struct cluster *cl, struct moat_bytes owner, const char *key, uint64_t rev,
		   bool hand_over)
{
	char subject[sizeof(cl->sessions->notice_prefix) + CLUSTER_NODE_MAX + 1], head[48];
	struct buf data = {0};
	int n = snprintf(head, sizeof(head), "%d %" PRIu64 " ", hand_over ? 1 : 0, rev);

	snprintf(subject, sizeof(subject), "%s%.*s", cl->sessions->notice_prefix, (int)owner.len,
		 (const char *)owner.ptr);
	if (buf_append(&data, head, (size_t)n) == MOAT_OK &&
	    buf_append(&data, cl->node, strlen(cl->node)) == MOAT_OK &&
	    buf_append(&data, " ", 1) == MOAT_OK && buf_append(&data, key, strlen(key)) == MOAT_OK)
		natsConnection_Publish(cl->nc, subject, buf_head(&data), (int)buf_used(&data));
	buf_fini(&data);
}

/* Whether this node's copy of <s> is the cluster's: the entry is this
 * node's last write (<mine>), or names this node as owner when this node
 * has written none since it started (a session from its store). */
static bool copy_is_current(struct cluster *cl, bool known, const struct snapshot *snap,
			    uint64_t rev, uint64_t mine)
{
	if (mine != 0)
		return rev == mine;
	return !known || moat_bytes_eq(snap->owner, moat_bytes_str(cl->node));
}

bool cluster_session_connect(struct conn *c, bool clean_start, bool present)
{
	struct cluster *cl = c->b->cluster;
	struct worker_share *ws;
	struct session *s = c->sess;
	uint64_t mine = s->cluster_rev;
	bool resumed = false;
	const char *key;

	if (cl == NULL || c->internal || !nats_up(cl))
		return present;
	ws = &cl->sessions->w[c->w->id];
	key = key_for(&ws->key, moat_bytes_str(s->client_id));
	s->cluster_moved = false;
	for (int i = 0; key != NULL && i < CLAIM_TRIES; i++) {
		struct snapshot snap = {0};
		kvEntry *e = NULL;
		const char *why = NULL;
		natsStatus st = kvStore_Get(&e, cl->sessions->kv, key);
		bool known = st == NATS_OK &&
			     snapshot_decode(
				 (struct moat_bytes){kvEntry_Value(e), (size_t)kvEntry_ValueLen(e)},
				 &snap, &why) == MOAT_OK;
		bool elsewhere = known && !moat_bytes_eq(snap.owner, moat_bytes_str(cl->node));

		s->cluster_rev = st == NATS_OK ? kvEntry_Revision(e) : 0;
		if (present && !copy_is_current(cl, known, &snap, s->cluster_rev, mine)) {
			/* another node had it since (this node has not heard yet):
			 * what is left here is stale, Will included */
			msg_unref(s->will);
			s->will = NULL;
			sess_reset(c->w, s);
			present = false;
		}
		if (!present && !clean_start && known && same_user(&snap, c)) {
			cluster_session_restore_subs(c->w, s, &snap, true);
			present = resumed = true;
		}
		if (encode_session(cl, s, c, &ws->value) == MOAT_OK &&
		    write_entry(cl->sessions->kv, key, &ws->value, &s->cluster_rev) == NATS_OK) {
			if (elsewhere)
				notify(cl, snap.owner, key, s->cluster_rev, resumed);
			snapshot_fini(&snap);
			kvEntry_Destroy(e);
			return present;
		}
		mine = s->cluster_rev;
		snapshot_fini(&snap);
		kvEntry_Destroy(e);
	}
	log_warn("cluster: session %s: cannot claim it in the sessions bucket; other nodes may "
		 "still hold it",
		 s->client_id);
	s->cluster_rev = 0;
	return present;
}

void cluster_session_offline(struct worker *w, struct session *s)
{
	if (w->b->cluster != NULL)
		save(w, s, NULL);
}

void cluster_session_ended(struct worker *w, struct session *s)
{
	struct cluster *cl = w->b->cluster;
	kvEntry *e = NULL;
	const char *key;

	if (cl == NULL || s->cluster_moved || s->cluster_rev == 0 || !nats_up(cl))
		return;
	key = key_for(&cl->sessions->w[w->id].key, moat_bytes_str(s->client_id));
	/* only this node's last write: a newer one is another node's claim */
	if (key != NULL && kvStore_Get(&e, cl->sessions->kv, key) == NATS_OK &&
	    kvEntry_Revision(e) == s->cluster_rev)
		kvStore_Delete(cl->sessions->kv, key);
	kvEntry_Destroy(e);
	s->cluster_rev = 0;
}

void cluster_session_changed(struct worker *w, struct session *s)
{
	struct worker_share *ws;

	if (w->b->cluster == NULL || s->cluster_dirty)
		return;
	ws = &w->b->cluster->sessions->w[w->id];
	if (ws->dirty_n == ws->dirty_cap) {
		size_t cap = ws->dirty_cap ? ws->dirty_cap * 2 : 16;
		struct session **v = realloc(ws->dirty, cap * sizeof(*v));

		if (v == NULL)
			return; /* written at its next change or disconnect */
		ws->dirty = v;
		ws->dirty_cap = cap;
	}
	atomic_fetch_add_explicit(&s->refs, 1, memory_order_relaxed);
	s->cluster_dirty = true;
	ws->dirty[ws->dirty_n++] = s;
}

/* ---- the old owner's side of a takeover ---- */

/* Sends <d>'s message to <node>'s stream subject, marked for <key>'s session. */
static void hand_over(struct cluster *cl, struct worker_share *ws, const char *node,
		      const char *key, const struct delivery *d)
{
	char header[64 + 12 * MAX_SUB_IDS];
	natsMsg *nm = NULL;
	jsPubOptions po;
	int n;

	n = snprintf(header, sizeof(header), "%u %u %u", d->qos, d->retain, d->sub_id_count);
	for (uint8_t i = 0; i < d->sub_id_count; i++)
		n += snprintf(header + n, sizeof(header) - (size_t)n, " %" PRIu32, d->sub_ids[i]);
	buf_consume(&ws->key, buf_used(&ws->key));
	if (wire_encode(&ws->value, cl->node, d->msg) < 0 ||
	    buf_append(&ws->key, cl->msg_prefix, strlen(cl->msg_prefix)) < 0 ||
	    buf_append(&ws->key, node, strlen(node)) < 0 || buf_append(&ws->key, ".", 1) < 0 ||
	    subject_from_topic(&ws->key, d->msg->topic) < 0 || buf_append(&ws->key, "", 1) < 0 ||
	    natsMsg_Create(&nm, (const char *)buf_head(&ws->key), NULL,
			   (const char *)buf_head(&ws->value),
			   (int)buf_used(&ws->value)) != NATS_OK) {
		log_warn("cluster: cannot hand a message of session %s over to node %s", key, node);
		return;
	}
	buf_consume(&ws->scratch, buf_used(&ws->scratch));
	if (buf_append(&ws->scratch, header, (size_t)n) < 0 ||
	    buf_append(&ws->scratch, " ", 1) < 0 ||
	    buf_append(&ws->scratch, key, strlen(key) + 1) < 0 ||
	    natsMsgHeader_Set(nm, SESSION_HEADER, (const char *)buf_head(&ws->scratch)) !=
		NATS_OK) {
		natsMsg_Destroy(nm);
		return;
	}
	jsPubOptions_Init(&po);
	if (js_PublishMsgAsync(cl->js, &nm, &po) != NATS_OK) {
		log_warn("cluster: cannot hand a message of session %s over to node %s", key, node);
		natsMsg_Destroy(nm);
	}
}

/* Another node took <s> over (worker <w> owns it): its connection closes
 * with DISCONNECT 0x8E; the session ends here, its messages handed over
 * when it goes on there (its delayed Will with it), else ended as by a clean
 * start (its Will published). */
/* Whether the entry of <a>->key really names node <a>->node, at revision
 * <a>->rev or later: a notice is only a hint (anyone who may publish on
 * NATS could send one), the bucket is what the nodes agreed on. */
static bool claim_is_real(struct cluster *cl, const struct action *a)
{
	struct snapshot snap = {0};
	kvEntry *e = NULL;
	const char *why;
	bool real = false;

	if (kvStore_Get(&e, cl->sessions->kv, a->key) == NATS_OK && kvEntry_Revision(e) >= a->rev &&
	    snapshot_decode((struct moat_bytes){kvEntry_Value(e), (size_t)kvEntry_ValueLen(e)},
			    &snap, &why) == MOAT_OK)
		real = moat_bytes_eq(snap.owner, moat_bytes_str(a->node));
	snapshot_fini(&snap);
	kvEntry_Destroy(e);
	return real;
}

static void taken(struct worker *w, struct action *a)
{
	struct cluster *cl = w->b->cluster;
	struct worker_share *ws = &cl->sessions->w[w->id];
	struct buf id = {0};
	struct session *s = NULL;

	if (subject_to_topic(&id, moat_bytes_str(a->key)) == MOAT_OK)
		s = sess_find_ref(w->b, (struct moat_bytes){buf_head(&id), buf_used(&id)});
	buf_fini(&id);
	/* a later claim of this node's own (the client came back here) wins */
	if (s == NULL || s->owner != w || s->dead || s->cluster_rev > a->rev) {
		if (s != NULL)
			sess_unref(s);
		return;
	}
	if (!claim_is_real(cl, a)) {
		if (log_limiter_allow(&sessions_log, 10, 10))
			log_warn("cluster: ignored a takeover notice for %s from node %s that the "
				 "sessions bucket does not confirm",
				 s->client_id, a->node);
		sess_unref(s);
		return;
	}
	s->cluster_moved = true;
	log_notice("cluster: session %s taken over by node %s", s->client_id, a->node);
	if (s->conn != NULL)
		conn_take_over(s->conn);
	if (!s->dead && a->hand_over) {
		for (const struct delivery *d = s->inflight; d != NULL; d = d->next)
			if (!d->pubrel_sent) /* else its client has it: only the PUBREL is left */
				hand_over(cl, ws, a->node, a->key, d);
		for (const struct delivery *d = s->queue; d != NULL; d = d->next)
			hand_over(cl, ws, a->node, a->key, d);
		msg_unref(s->will); /* the session goes on there */
		s->will = NULL;
	}
	if (!s->dead)
		sess_destroy(w, s);
	sess_unref(s);
}

/* "<1|0> <revision> <node> <key>" on this node's notice subject (a NATS
 * thread): the session's owner worker acts on it. */
static void on_notice(natsConnection *nc, natsSubscription *sub, natsMsg *nm, void *closure)
{
	struct cluster *cl = closure;
	struct action *a = calloc(1, sizeof(*a));
	char hand_over = 0, node[CLUSTER_NODE_MAX + 1], *key = NULL;
	struct buf data = {0}, id = {0};
	struct session *s = NULL;
	int used = 0;

	(void)nc;
	(void)sub;
	/* a C string to scan: the data is not terminated */
	if (a != NULL &&
	    buf_append(&data, natsMsg_GetData(nm), (size_t)natsMsg_GetDataLength(nm)) == MOAT_OK &&
	    buf_append(&data, "", 1) == MOAT_OK &&
	    sscanf((const char *)buf_head(&data), "%c %" SCNu64 " %64[A-Za-z0-9_-] %n", &hand_over,
		   &a->rev, node, &used) == 3 &&
	    used > 0 && (hand_over == '0' || hand_over == '1') &&
	    (key = strdup((const char *)buf_head(&data) + used)) != NULL &&
	    /* parked: an adoption about to create the session acts on it */
	    !cluster_adopt_park(cl, key, hand_over == '1', node, a->rev) &&
	    subject_to_topic(&id, moat_bytes_str(key)) == MOAT_OK)
		s = sess_find_ref(cl->b, (struct moat_bytes){buf_head(&id), buf_used(&id)});
	buf_fini(&data);
	buf_fini(&id);
	natsMsg_Destroy(nm);
	if (s == NULL) {
		free(key);
		free(a);
		return; /* gone already, or a malformed notice */
	}
	a->kind = ACT_TAKEN;
	a->hand_over = hand_over == '1';
	a->key = key;
	snprintf(a->node, sizeof(a->node), "%s", node);
	cluster_sessions_post(cl, s->owner->id, a);
	sess_unref(s);
}

/* ---- the new owner's side ---- */

/* Parses "<qos> <retain> <n> <id>... <key>" into <item>; the key's start. */
static const char *parse_header(const char *h, struct inbox_item *item)
{
	char *end;
	unsigned long v[3];

	for (int i = 0; i < 3; i++) {
		v[i] = strtoul(h, &end, 10);
		if (end == h || *end != ' ')
			return NULL;
		h = end + 1;
	}
	if (v[0] < 1 || v[0] > 2 || v[1] > 1 || v[2] > MAX_SUB_IDS)
		return NULL;
	item->qos = (uint8_t)v[0];
	item->retain = v[1] == 1;
	item->sub_id_count = (uint8_t)v[2];
	for (unsigned i = 0; i < v[2]; i++) {
		unsigned long id = strtoul(h, &end, 10);

		if (end == h || *end != ' ' || id == 0 || id > 268435455)
			return NULL;
		item->sub_ids[i] = (uint32_t)id;
		h = end + 1;
	}
	return *h != '\0' ? h : NULL;
}

bool cluster_session_message(struct cluster *cl, struct msg *m, natsMsg *nm)
{
	struct inbox_item item = {.msg = m};
	const char *header = NULL, *key;
	struct buf id = {0};

	if (natsMsgHeader_Get(nm, SESSION_HEADER, &header) != NATS_OK)
		return false;
	key = parse_header(header, &item);
	if (key != NULL && subject_to_topic(&id, moat_bytes_str(key)) == MOAT_OK)
		item.sess = sess_find_ref(cl->b, (struct moat_bytes){buf_head(&id), buf_used(&id)});
	buf_fini(&id);
	if (item.sess != NULL) {
		atomic_fetch_add_explicit(&item.sess->backlog, 1, memory_order_relaxed);
		if (cluster_route_post(cl, item.sess->owner, &item)) {
			m = NULL; /* the item has it */
		} else {
			/* inbox full, or stopping: not acknowledged, JetStream sends it again */
			atomic_fetch_sub_explicit(&item.sess->backlog, 1, memory_order_relaxed);
			sess_unref(item.sess);
			msg_unref(m);
			natsMsg_Destroy(nm);
			return true;
		}
	}
	if (m != NULL && log_limiter_allow(&sessions_log, 10, 10))
		log_warn("cluster: dropped a message handed over for %s: %s", header,
			 key == NULL ? "malformed header" : "no such session here");
	msg_unref(m);
	/* acknowledged now: a handed-over message is delivered at most once
	 * more should this node die before it reached the session */
	natsMsg_Ack(nm, NULL);
	natsMsg_Destroy(nm);
	return true;
}

/* ---- a restarted node's stale copies ---- */

/* Whether the entry of <s>, never claimed since this node started, names
 * another node. */
static bool owned_elsewhere(struct cluster *cl, struct worker_share *ws, const struct session *s)
{
	const char *key = key_for(&ws->key, moat_bytes_str(s->client_id));
	struct snapshot snap = {0};
	kvEntry *e = NULL;
	const char *why;
	bool elsewhere = false;

	if (key != NULL && kvStore_Get(&e, cl->sessions->kv, key) == NATS_OK &&
	    snapshot_decode((struct moat_bytes){kvEntry_Value(e), (size_t)kvEntry_ValueLen(e)},
			    &snap, &why) == MOAT_OK)
		elsewhere = !moat_bytes_eq(snap.owner, moat_bytes_str(cl->node));
	snapshot_fini(&snap);
	kvEntry_Destroy(e);
	return elsewhere;
}

void cluster_worker_started(struct worker *w)
{
	struct cluster *cl = w->b->cluster;
	size_t dropped = 0;

	if (cl == NULL || !nats_up(cl))
		return;
	for (struct session *s = w->sessions, *next; s != NULL; s = next) {
		next = s->wnext;
		if (s->conn != NULL || s->cluster_rev != 0 ||
		    !owned_elsewhere(cl, &cl->sessions->w[w->id], s))
			continue;
		s->cluster_moved = true;
		msg_unref(s->will); /* its owner now has it */
		s->will = NULL;
		sess_destroy(w, s);
		dropped++;
	}
	if (dropped > 0)
		log_notice(
		    "cluster: dropped %zu sessions from the store that other nodes took over "
		    "while this node was down",
		    dropped);
}

/* ---- per loop pass ---- */

void cluster_sessions_flush(struct worker *w)
{
	struct worker_share *ws = &w->b->cluster->sessions->w[w->id];
	struct action *a;

	pthread_mutex_lock(&ws->lock);
	a = ws->head;
	ws->head = ws->tail = NULL;
	pthread_mutex_unlock(&ws->lock);
	while (a != NULL) {
		struct action *next = a->next;

		if (a->kind == ACT_ADOPT)
			cluster_adopt(w, a); /* may become a takeover notice (adopt.c) */
		if (a->kind == ACT_TAKEN)
			taken(w, a);
		cluster_action_free(a);
		a = next;
	}
	for (size_t i = 0; i < ws->dirty_n; i++) {
		struct session *s = ws->dirty[i];

		s->cluster_dirty = false;
		if (!s->dead) /* offline too: e.g. its delayed Will just went out */
			save(w, s, s->conn);
		sess_unref(s);
	}
	ws->dirty_n = 0;
}

/* ---- start and stop ---- */

int cluster_sessions_start(struct cluster *cl, const char *name, char *err, size_t errlen)
{
	struct cluster_sessions *cs = calloc(1, sizeof(*cs));
	char bucket[CLUSTER_NAME_MAX + 16], subject[sizeof(cs->notice_prefix) + CLUSTER_NODE_MAX];
	natsStatus s = NATS_NO_MEMORY;

	cl->sessions = cs;
	if (cs != NULL && (cs->w = calloc(cl->b->nworkers, sizeof(*cs->w))) != NULL) {
		for (unsigned i = 0; i < cl->b->nworkers; i++)
			pthread_mutex_init(&cs->w[i].lock, NULL);
		snprintf(bucket, sizeof(bucket), "%s_sessions", name);
		snprintf(cs->notice_prefix, sizeof(cs->notice_prefix), "%s.s.", name);
		snprintf(subject, sizeof(subject), "%s%s", cs->notice_prefix, cl->node);
		s = cluster_bucket(cl, bucket, &cs->kv);
		if (s == NATS_OK)
			s = natsConnection_Subscribe(&cs->notices, cl->nc, subject, on_notice, cl);
	}
	if (s != NATS_OK) {
		snprintf(err, errlen, "cluster: cannot use the sessions bucket: %s",
			 natsStatus_GetText(s));
		return MOAT_E_IO;
	}
	return MOAT_OK;
}

void cluster_sessions_stop(struct cluster *cl)
{
	struct cluster_sessions *cs = cl->sessions;

	if (cs == NULL)
		return;
	if (cs->notices != NULL)
		natsSubscription_Unsubscribe(cs->notices);
	natsSubscription_Destroy(cs->notices);
	for (unsigned i = 0; cs->w != NULL && i < cl->b->nworkers; i++) {
		struct worker_share *ws = &cs->w[i];

		while (ws->head != NULL) {
			struct action *next = ws->head->next;

			cluster_action_free(ws->head);
			ws->head = next;
		}
		for (size_t k = 0; k < ws->dirty_n; k++)
			sess_unref(ws->dirty[k]);
		free(ws->dirty);
		buf_fini(&ws->key);
		buf_fini(&ws->value);
		buf_fini(&ws->scratch);
		pthread_mutex_destroy(&ws->lock);
	}
	kvStore_Destroy(cs->kv);
	free(cs->w);
	free(cs);
	cl->sessions = NULL;
}
