/*
 * Cluster-wide sessions (docs/cluster.md, "Sessions"): every session has an
 * entry in the bucket "<cluster>_sessions" under its client id's subject
 * tokens (snapshot.h), written by the node that owns it: at CONNECT (the
 * claim), when its subscriptions change (once per loop pass) and when its
 * client goes. Each write names the revision this node read or wrote last,
 * so a node that lost the session can no longer overwrite it; its
 * deletion too (kv_delete.h). A node that claims a session another node
 * owned tells that node on "<cluster>.s.<owner>"; the old owner closes its
 * connection (DISCONNECT 0x8E), queues its in-flight and queued messages
 * for the new owner's stream subject (handover.h) in the outbound queue
 * (outbound.c: in order, kept until JetStream stored them, in the store
 * with persistence on) and drops its copy; the new owner (handover_in.c)
 * acknowledges each once it is in the session (and durable, ack.c). A
 * restarted node settles the sessions its store gave back against the
 * bucket once joined (their delayed Wills held, their expiry stopped until
 * then), and claims the sessions made while it was out of the cluster at
 * the join (those no claim could be written for: every second until one
 * is); a node without persistence deletes its entries when it stops.
 * Sessions of a node that died are adopted by a survivor (adopt.c): they
 * become offline sessions there, so their Wills and expiry run as on one
 * node.
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
#include "cluster/handover.h"
#include "cluster/kv_delete.h"
#include "cluster/snapshot.h"
#include "cluster/subject.h"

/* Tries of a claim that other nodes' claims keep overtaking. How long a
 * worker waits for a bucket request (its own JetStream context: a slow
 * JetStream, e.g. electing a leader, stalls a worker's clients this long at
 * most per request). How often a restarted node asks again about sessions
 * the bucket could not tell it about, and how many in one loop pass. How
 * often sessions that no claim could be written for are claimed again. How
 * often, and how many times, a takeover notice the bucket did not answer
 * about is checked again (and the entry of a claim whose write was not
 * answered read again). A node that stops waits for the deletion of its
 * sessions' entries as long as its stop may wait for NATS
 * (cluster_stop_wait_ms). */
enum {
	CLAIM_TRIES = 3,
	WORKER_WAIT_MS = 1000,
	SETTLE_RETRY_MS = 1000,
	CLAIM_RETRY_MS = 1000,
	NOTICE_RETRY_MS = 1000,
	NOTICE_TRIES = 10,
	SETTLE_BATCH = 64
};

/* A session from the store that the bucket could not be asked about yet;
 * its Will waits here, so it cannot go out before that is settled. Once its
 * client came back (not s->restored_unsettled), a Will that is due (the
 * client started clean, or its delay had passed) waits here for the claim
 * (held_will_settle). */
struct unsettled {
	struct session *s; /* a reference */
	struct msg *will;
};

/* A session whose claim was written but not answered (timed out): it may
 * have been stored. Read again at the next pass, until it is known. */
struct unsure {
	struct session *s;		  /* a reference */
	uint64_t read_rev;		  /* the revision the claim was written at (0: none) */
	char owner[CLUSTER_NODE_MAX + 1]; /* the entry's owner then ("": this node or none) */
	bool hand_over;			  /* the session resumed from that owner */
	unsigned tries;			  /* reads that got no answer */
};

struct worker_share {
	pthread_mutex_t lock; /* for <head>, <tail> */
	struct action *head, *tail;
	struct session **dirty; /* the worker's own */
	size_t dirty_n, dirty_cap;
	struct unsettled *unsettled; /* the worker's own */
	size_t unsettled_n, unsettled_cap;
	uint64_t settle_at_ms;
	bool settling;	       /* the sessions from the store are not all settled yet */
	size_t settled;	       /* ... how many were so far */
	struct unsure *unsure; /* the worker's own */
	size_t unsure_n, unsure_cap;
	uint64_t unsure_at_ms;
	bool unclaimed; /* some sessions here are in no claim: claim them at <claim_at_ms> */
	uint64_t claim_at_ms;
	bool handed;	      /* such a claim handed messages over (store records in the batch) */
	struct action *later; /* the worker's own: notices to check again at <later_at_ms> */
	uint64_t later_at_ms;
	struct buf key, value, scratch, subject; /* the worker's scratch */
};

struct cluster_sessions {
	kvStore *kv;  /* opens (or creates) the bucket; adopt.c has its own handle */
	jsCtx *wjs;   /* for workers: WORKER_WAIT_MS */
	kvStore *wkv; /* the bucket through <wjs> */
	natsSubscription *notices;
	char notice_prefix[CLUSTER_NAME_MAX + 8]; /* "<cluster>.s." */
	char bucket[CLUSTER_NAME_MAX + 16];	  /* "<cluster>_sessions" */
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

/* The link at the end of list <*head>. */
static struct action **action_end(struct action **head)
{
	while (*head != NULL)
		head = &(*head)->next;
	return head;
}

static void actions_free(struct action *a)
{
	while (a != NULL) {
		struct action *next = a->next;

		cluster_action_free(a);
		a = next;
	}
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
	if (atomic_load(&cl->joined) && natsConnection_Status(cl->nc) == NATS_CONN_STATUS_CONNECTED)
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
				.resumed = s->cluster_resumed,
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
	st = write_entry(cl->sessions->wkv, key, &ws->value, &s->cluster_rev);
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

/* Gives <s> the subscriptions of <snap>; with <check>, only those its
 * identity may make here (deny by default: this node's ACL decides). */
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

/* Drops <s>'s subscriptions, here and in the store. */
static void drop_subs(struct worker *w, struct session *s)
{
	for (const struct sub *x = s->subs; x != NULL; x = x->next)
		persist_sub_drop(w, s, (struct moat_bytes){x->filter, x->len});
	sess_remove_subs(w->b, s);
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

/* Keeps <s> aside (a reference): its claim at revision <read_rev> was not
 * answered; <owner> had it then, <hand_over>: it resumed from there. */
static void hold_unsure(struct worker_share *ws, struct session *s, uint64_t read_rev,
			struct moat_bytes owner, bool hand_over)
{
	struct unsure *u;

	log_warn("cluster: session %s: the sessions bucket did not answer its claim; read "
		 "again every second",
		 s->client_id);
	if (ws->unsure_n == ws->unsure_cap) {
		size_t cap = ws->unsure_cap ? ws->unsure_cap * 2 : 16;
		struct unsure *v = realloc(ws->unsure, cap * sizeof(*v));

		if (v == NULL)
			return; /* as if never claimed: its next change claims it again */
		ws->unsure = v;
		ws->unsure_cap = cap;
	}
	u = &ws->unsure[ws->unsure_n++];
	*u = (struct unsure){.s = s, .read_rev = read_rev, .hand_over = hand_over};
	s->cluster_seen = true;
	s->cluster_seen_rev = read_rev;
	snprintf(u->owner, sizeof(u->owner), "%.*s", (int)owner.len, (const char *)owner.ptr);
	atomic_fetch_add_explicit(&s->refs, 1, memory_order_relaxed);
	ws->unsure_at_ms = clock_mono_ms() + NOTICE_RETRY_MS;
}

/* Writes <s>'s entry (with its connection <c>, or offline) as this node's
 * claim of <key> at the revision read, s->cluster_rev (0: none), and tells
 * <owner> (the entry's owner when another node; empty: none) that it lost
 * it; <resumed>: the session goes on here, its messages are to be handed
 * over (the entry records it: the notice only says "look"). A write that
 * timed out may have been stored: <s> is read again later (hold_unsure)
 * and not written before that is known. */
static natsStatus write_claim(struct cluster *cl, struct worker_share *ws, struct session *s,
			      const struct conn *c, const char *key, struct moat_bytes owner,
			      bool resumed)
{
	const uint64_t read_rev = s->cluster_rev;
	natsStatus st;

	s->cluster_resumed = resumed; /* the old owner hands over only if the entry says so */
	st = encode_session(cl, s, c, &ws->value) == MOAT_OK
		 ? write_entry(cl->sessions->wkv, key, &ws->value, &s->cluster_rev)
		 : NATS_NO_MEMORY;

	if (st == NATS_OK && owner.len > 0)
		notify(cl, owner, key, s->cluster_rev, resumed);
	if (st == NATS_TIMEOUT) {
		hold_unsure(ws, s, read_rev, owner, resumed);
		s->cluster_rev = 0;
	}
	return st;
}

/* ---- the held Will of a session from the store whose client came back ---- */

static struct unsettled *find_unsettled(struct worker_share *ws, const struct session *s)
{
	for (size_t i = 0; i < ws->unsettled_n; i++)
		if (ws->unsettled[i].s == s)
			return &ws->unsettled[i];
	return NULL;
}

/* <s>, from the store and not settled, is resumed by its client (<due>:
 * with clean start, or past its Will's delay): the held Will is void (a
 * reconnect cancels a delayed Will), or it was due and waits for the claim
 * (held_will_settle). */
static void held_will_connect(struct worker_share *ws, const struct session *s, bool due)
{
	struct unsettled *u = find_unsettled(ws, s);

	if (u != NULL && !due) {
		msg_unref(u->will);
		u->will = NULL; /* its record goes at settlement (settle_from_store) */
	}
}

/* The claim of <s> read its entry: a Will held from the store that was due
 * when its client came back goes out now when the entry named this node or
 * none (<publish>); it is dropped when it named another (that node, e.g. an
 * adopter, had the session and its Will). */
static void held_will_settle(struct worker *w, struct worker_share *ws, struct session *s,
			     bool publish)
{
	struct unsettled *u = find_unsettled(ws, s);
	struct msg *will, *own;

	if (u == NULL || u->will == NULL || s->restored_unsettled)
		return;
	will = u->will;
	u->will = NULL;
	own = s->will; /* a delayed Will of the client's since, if it left again */
	if (publish && !s->dead) {
		s->will = will;
		sess_publish_will(w, s);
		s->will = own;
	} else {
		msg_unref(will);
	}
	if (!s->dead)
		persist_will(w, s); /* the record is its own Will's, or none */
}

/* <s>'s client connected (<clean_start>, <present>) but no claim was
 * written: out of the cluster, or the bucket did not answer. A copy from
 * the store is settled by the claim made later (the claim at the join, or
 * the retry every second) and not against the bucket; that claim says the
 * session goes on here (the node the entry names hands its messages over)
 * if every CONNECT since went on with this copy, from the store or from a
 * claim that said so. */
static void connected_unclaimed(struct cluster *cl, unsigned wid, struct session *s,
				bool clean_start, bool present)
{
	s->cluster_resumed =
	    present && !clean_start && (s->restored_unsettled || s->cluster_resumed);
	s->restored_unsettled = false;
	if (s->cluster_rev == 0 && atomic_load(&cl->joined))
		cl->sessions->w[wid].unclaimed = true; /* claimed again in a second */
}

bool cluster_session_connect(struct conn *c, bool clean_start, bool present)
{
	struct cluster *cl = c->b->cluster;
	struct worker_share *ws;
	struct session *s = c->sess;
	const uint64_t last = s->cluster_rev;
	uint64_t mine = last;
	bool resumed = false, stale = false;
	const char *key;

	if (cl == NULL)
		return present;
	if (s->restored_unsettled)
		held_will_connect(&cl->sessions->w[c->w->id], s,
				  !c->internal && (!present || clock_mono_ms() >= s->will_at_ms));
	if (c->internal) {
		s->restored_unsettled = false; /* a bridge's internal link: not in the bucket */
		return present;
	}
	s->cluster_seen = false; /* this CONNECT is newer than any claim read before */
	if (!nats_up(cl)) {
		connected_unclaimed(cl, c->w->id, s, clean_start, present);
		return present;
	}
	ws = &cl->sessions->w[c->w->id];
	key = key_for(&ws->key, moat_bytes_str(s->client_id));
	s->cluster_moved = false;
	for (int i = 0; key != NULL && i < CLAIM_TRIES; i++) {
		struct snapshot snap = {0};
		kvEntry *e = NULL;
		const char *why = NULL;
		natsStatus st = kvStore_Get(&e, cl->sessions->wkv, key);
		bool known, elsewhere, kept;

		if (st != NATS_OK && st != NATS_NOT_FOUND) {
			/* JetStream slow or unreachable: the client waits no
			 * longer; nothing was written, this node's last write
			 * stands unless another node's claim overtook one */
			if (i == 0) {
				log_warn("cluster: session %s: cannot claim it in the sessions "
					 "bucket (%s); the CONNECT goes on with this node's copy",
					 s->client_id, natsStatus_GetText(st));
				s->cluster_rev = last;
				connected_unclaimed(cl, c->w->id, s, clean_start, present);
				return present;
			}
			break;
		}
		known = st == NATS_OK &&
			snapshot_decode(
			    (struct moat_bytes){kvEntry_Value(e), (size_t)kvEntry_ValueLen(e)},
			    &snap, &why) == MOAT_OK;
		elsewhere = known && !moat_bytes_eq(snap.owner, moat_bytes_str(cl->node));
		s->cluster_rev = st == NATS_OK ? kvEntry_Revision(e) : 0;
		s->cluster_seen = true;
		s->cluster_seen_rev = s->cluster_rev;
		if (present && !copy_is_current(cl, known, &snap, s->cluster_rev, mine)) {
			/* another node had it since (this node has not heard yet):
			 * its subscriptions and Will here are stale; its queued and
			 * in-flight messages were never handed over (a live copy
			 * that was is gone), so they stay if the session resumes */
			msg_unref(s->will);
			s->will = NULL;
			persist_will(c->w, s);
			present = false;
			stale = true;
		}
		if (!present && !clean_start && known && same_user(&snap, c)) {
			if (stale)
				drop_subs(c->w, s);
			cluster_session_restore_subs(c->w, s, &snap, true);
			present = resumed = true;
		} else if (stale) {
			sess_reset(c->w, s);
		}
		stale = false;
		/* a session that goes on with this node's current copy keeps what
		 * its entry said (this node's, from before a restart too): a node it
		 * resumed from may still read it */
		kept = present && !clean_start && known && !elsewhere && snap.resumed;
		st = write_claim(cl, ws, s, c, key, elsewhere ? snap.owner : moat_bytes_str(""),
				 resumed || kept);
		mine = s->cluster_rev;
		snapshot_fini(&snap);
		kvEntry_Destroy(e);
		if (st == NATS_OK || st == NATS_TIMEOUT) {
			s->restored_unsettled = false; /* settled by this claim */
			held_will_settle(c->w, ws, s, !elsewhere);
			return present;
		}
		/* a refused write is another node's claim: read again */
	}
	log_warn("cluster: session %s: cannot claim it in the sessions bucket; other nodes may "
		 "still hold it",
		 s->client_id);
	s->cluster_rev = 0;
	connected_unclaimed(cl, c->w->id, s, clean_start, present);
	return present;
}

void cluster_session_offline(struct worker *w, struct session *s)
{
	if (w->b->cluster != NULL && atomic_load(&w->b->cluster->joined))
		save(w, s, NULL);
}

/* Deletes <key>'s entry if it is still at revision <rev>, this node's last
 * write: a newer one is another node's claim and stays. */
static bool delete_entry(struct cluster *cl, const char *key, uint64_t rev)
{
	jsErrCode jerr = 0;
	natsStatus st =
	    cluster_kv_delete_at(cl->sessions->wjs, cl->sessions->bucket, key, rev, &jerr);

	if (st != NATS_OK && jerr != JSStreamWrongLastSequenceErr &&
	    log_limiter_allow(&sessions_log, 10, 10))
		log_warn("cluster: the entry of session %s was not deleted: %s", key,
			 natsStatus_GetText(st));
	return st == NATS_OK;
}

void cluster_session_ended(struct worker *w, struct session *s)
{
	struct cluster *cl = w->b->cluster;
	const char *key;

	if (cl == NULL || s->cluster_moved || s->cluster_rev == 0 || !nats_up(cl))
		return;
	key = key_for(&cl->sessions->w[w->id].key, moat_bytes_str(s->client_id));
	if (key != NULL)
		delete_entry(cl, key, s->cluster_rev);
	s->cluster_rev = 0;
}

void cluster_session_changed(struct worker *w, struct session *s)
{
	struct worker_share *ws;

	if (w->b->cluster == NULL || !atomic_load(&w->b->cluster->joined) || s->cluster_dirty)
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

int cluster_session_owner(struct cluster *cl, struct moat_bytes key,
			  char owner[CLUSTER_NODE_MAX + 1])
{
	struct snapshot snap = {0};
	char name[CLUSTER_SUBJECT_MAX + 1];
	kvEntry *e = NULL;
	const char *why;
	natsStatus st;
	int rc = MOAT_E_MALFORMED;

	if (key.len > CLUSTER_SUBJECT_MAX)
		return MOAT_E_NOTFOUND;
	memcpy(name, key.ptr, key.len);
	name[key.len] = '\0';
	st = kvStore_Get(&e, cl->sessions->wkv, name);
	if (st == NATS_NOT_FOUND)
		return MOAT_E_NOTFOUND;
	if (st != NATS_OK)
		return MOAT_E_IO;
	if (snapshot_decode((struct moat_bytes){kvEntry_Value(e), (size_t)kvEntry_ValueLen(e)},
			    &snap, &why) == MOAT_OK &&
	    snap.owner.len <= CLUSTER_NODE_MAX) {
		memcpy(owner, snap.owner.ptr, snap.owner.len);
		owner[snap.owner.len] = '\0';
		rc = MOAT_OK;
	}
	snapshot_fini(&snap);
	kvEntry_Destroy(e);
	return rc;
}

/* Queues <d>'s message for node <node>'s stream subject, marked for the
 * session of <key>, in the outbound queue (beyond its bound): sent in order
 * and kept until JetStream stored it (with persistence on, as a record in
 * <w>'s batch, which also deletes the session: a crash keeps one or the
 * other). NULL, or why it cannot be handed over. */
static const char *hand_over(struct worker *w, const char *node, const char *key,
			     const struct delivery *d)
{
	struct cluster *cl = w->b->cluster;
	struct worker_share *ws = &cl->sessions->w[w->id];
	int rc;

	rc = cluster_subject(&ws->subject, cl->msg_prefix, node, d->msg->topic);
	if (rc == MOAT_E_LIMIT)
		return "its topic is too long for a NATS subject";
	if (rc < 0)
		return "out of memory";
	rc = handover_encode(&ws->value, &ws->scratch, cl->node, key, d);
	if (rc == MOAT_E_INVAL)
		return "it cannot be encoded: QoS 0, or a session key over 65535 bytes";
	if (rc == MOAT_OK)
		rc = cluster_outbound_push_handover(w, (const char *)buf_head(&ws->subject),
						    &ws->value);
	return rc == MOAT_OK ? NULL : "out of memory";
}

/* Hands <s>'s in-flight messages (but those whose PUBREL only is left: its
 * client has them) and then its queued ones over to <node>, in order; one
 * line logs those that could not be. */
static void hand_over_all(struct worker *w, const struct session *s, const char *node,
			  const char *key)
{
	const char *why = NULL, *last = NULL;
	size_t lost = 0;

	for (const struct delivery *d = s->inflight; d != NULL; d = d->next)
		if (!d->pubrel_sent && (why = hand_over(w, node, key, d)) != NULL) {
			lost++;
			last = why;
		}
	for (const struct delivery *d = s->queue; d != NULL; d = d->next)
		if ((why = hand_over(w, node, key, d)) != NULL) {
			lost++;
			last = why;
		}
	if (lost > 0)
		log_warn("cluster: %zu messages of session %s are lost: they cannot be handed "
			 "over to node %s (%s)",
			 lost, s->client_id, node, last);
}

/* Node <node> has <s> (worker <w> owns it) now: its connection closes
 * with DISCONNECT 0x8E; the session ends here, its messages handed over
 * when it goes on there (<hand_over>: its delayed Will with it), else ended
 * as by a clean start (its Will published). */
static void let_go(struct worker *w, struct session *s, const char *node, const char *key,
		   bool hand_over)
{
	s->cluster_moved = true;
	if (s->conn != NULL)
		conn_take_over(s->conn);
	if (!s->dead && hand_over) {
		hand_over_all(w, s, node, key);
		msg_unref(s->will); /* the session goes on there */
		s->will = NULL;
	}
	if (!s->dead)
		sess_destroy(w, s);
}

/* Whether <s> waits for the answer to a claim (settle_claims). */
static bool is_unsure(const struct worker_share *ws, const struct session *s)
{
	for (size_t i = 0; i < ws->unsure_n; i++)
		if (ws->unsure[i].s == s)
			return true;
	return false;
}

enum claim { CLAIM_REAL, CLAIM_FALSE, CLAIM_UNKNOWN };

/* Whether the entry of <a>->key names another node, at a revision newer
 * than <mine> (this node's last write): then <a> gets that node and whether
 * it resumed the session (hand over). A notice only says "look" (anyone
 * who may publish on NATS could send one, with any node, revision or
 * hand-over bit): the bucket is what the nodes agreed on. CLAIM_UNKNOWN
 * when the bucket did not answer (timed out, no responders, NATS
 * unreachable). */
static enum claim check_claim(struct cluster *cl, struct action *a, uint64_t mine)
{
	struct snapshot snap = {0};
	kvEntry *e = NULL;
	const char *why;
	enum claim r = CLAIM_FALSE;
	natsStatus st = kvStore_Get(&e, cl->sessions->wkv, a->key);

	if (st != NATS_OK && st != NATS_NOT_FOUND)
		r = CLAIM_UNKNOWN;
	else if (st == NATS_OK && kvEntry_Revision(e) > mine &&
		 snapshot_decode((struct moat_bytes){kvEntry_Value(e), (size_t)kvEntry_ValueLen(e)},
				 &snap, &why) == MOAT_OK &&
		 !moat_bytes_eq(snap.owner, moat_bytes_str(cl->node))) {
		r = CLAIM_REAL;
		snprintf(a->node, sizeof(a->node), "%.*s", (int)snap.owner.len,
			 (const char *)snap.owner.ptr);
		a->hand_over = snap.resumed;
	}
	snapshot_fini(&snap);
	kvEntry_Destroy(e);
	return r;
}

/* Acts on <a>; true when it handed messages over (queued, store records
 * written in <w>'s batch). *<again>: the bucket did not answer, ask again
 * later (<a> is kept). */
static bool taken(struct worker *w, struct action *a, bool *again)
{
	enum claim claim;

	struct cluster *cl = w->b->cluster;
	bool handed = false;
	struct buf id = {0};
	struct session *s = NULL;

	if (subject_to_topic(&id, moat_bytes_str(a->key)) == MOAT_OK)
		s = sess_find_ref(w->b, (struct moat_bytes){buf_head(&id), buf_used(&id)});
	buf_fini(&id);
	/* a claim is newer than this node's last write (check_claim); a later
	 * claim of this node's own (the client came back here) wins. A session
	 * from the store not settled yet has no last write: settlement decides
	 * (and hands everything over if it moved); one whose claim was not
	 * answered has none known either: looked at once that is known */
	if (s == NULL || s->owner != w || s->dead || s->restored_unsettled) {
		if (s != NULL)
			sess_unref(s);
		return false;
	}
	if (is_unsure(&cl->sessions->w[w->id], s)) {
		*again = true;
		sess_unref(s);
		return false;
	}
	claim = check_claim(cl, a, s->cluster_rev);
	if (claim == CLAIM_UNKNOWN && ++a->tries < NOTICE_TRIES) {
		*again = true;
		sess_unref(s);
		return false;
	}
	if (claim == CLAIM_UNKNOWN) {
		log_warn("cluster: the sessions bucket did not answer about a takeover of %s in "
			 "%d tries; ignored",
			 s->client_id, NOTICE_TRIES);
		sess_unref(s);
		return false;
	}
	if (claim == CLAIM_FALSE) {
		if (log_limiter_allow(&sessions_log, 10, 10))
			log_warn("cluster: ignored a takeover notice for %s that the sessions "
				 "bucket does not confirm",
				 s->client_id);
		sess_unref(s);
		return false;
	}
	log_notice("cluster: session %s taken over by node %s", s->client_id, a->node);
	handed = a->hand_over && !s->dead;
	let_go(w, s, a->node, a->key, a->hand_over);
	sess_unref(s);
	return handed;
}

/* "<1|0> <revision> <node> <key>" on this node's notice subject (a NATS
 * thread): the session's owner worker looks at its entry (check_claim);
 * only the key is used, the rest is what the sender saw. */
static void on_notice(natsConnection *nc, natsSubscription *sub, natsMsg *nm, void *closure)
{
	struct cluster *cl = closure;
	struct action *a = calloc(1, sizeof(*a));
	char hand_over = 0, node[CLUSTER_NODE_MAX + 1], *key = NULL;
	uint64_t rev = 0;
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
		   &rev, node, &used) == 3 &&
	    used > 0 && (hand_over == '0' || hand_over == '1') &&
	    strcmp(node, cl->node) != 0 && /* a node does not take over from itself */
	    (key = strdup((const char *)buf_head(&data) + used)) != NULL &&
	    /* parked: an adoption about to create the session acts on it */
	    !cluster_adopt_park(cl, key) && subject_to_topic(&id, moat_bytes_str(key)) == MOAT_OK)
		s = sess_find_ref(cl->b, (struct moat_bytes){buf_head(&id), buf_used(&id)});
	buf_fini(&data);
	buf_fini(&id);
	natsMsg_Destroy(nm);
	if (s == NULL) {
		free(key);
		free(a);
		return; /* gone already, a malformed notice, or one naming this node */
	}
	a->kind = ACT_TAKEN;
	a->key = key;
	cluster_sessions_post(cl, s->owner->id, a);
	sess_unref(s);
}

/* ---- a restarted node's sessions from its store ---- */

enum restored {
	RESTORED_NEW,	  /* never written: this node claims it now */
	RESTORED_MINE,	  /* the entry names this node */
	RESTORED_MOVED,	  /* another node took it over while this one was down */
	RESTORED_ENDED,	  /* its last owner ended it (the entry was deleted) */
	RESTORED_UNKNOWN, /* the bucket did not answer (or out of memory) */
};

/* What the sessions bucket says of <s>, restored from the store and not
 * claimed since: the key's last message, a delete marker included, in
 * <ws>->key's key's stream; the owner in <owner>, the revision in <*rev>,
 * whether the entry says the session resumed from another node in
 * <*resumed>. */
static enum restored check_restored(struct cluster *cl, struct worker_share *ws,
				    const struct session *s, char *owner, size_t owner_cap,
				    uint64_t *rev, bool *resumed)
{
	const char *key = key_for(&ws->key, moat_bytes_str(s->client_id));
	char stream[sizeof(cl->sessions->bucket) + 4];
	enum restored r = RESTORED_MINE;
	struct snapshot snap = {0};
	const char *op = NULL, *why;
	natsMsg *last = NULL;
	jsErrCode jerr = 0;
	natsStatus st;

	if (key == NULL || !nats_up(cl) ||
	    cluster_kv_subject(&ws->subject, cl->sessions->bucket, key) == NULL)
		return RESTORED_UNKNOWN;
	snprintf(stream, sizeof(stream), "KV_%s", cl->sessions->bucket);
	st = js_GetLastMsg(&last, cl->sessions->wjs, stream, (const char *)buf_head(&ws->subject),
			   NULL, &jerr);
	if (st == NATS_NOT_FOUND)
		return RESTORED_NEW;
	if (st != NATS_OK)
		return RESTORED_UNKNOWN;
	*rev = natsMsg_GetSequence(last);
	if (natsMsgHeader_Get(last, "KV-Operation", &op) == NATS_OK)
		r = RESTORED_ENDED; /* DEL or PURGE */
	else if (snapshot_decode((struct moat_bytes){(const uint8_t *)natsMsg_GetData(last),
						     (size_t)natsMsg_GetDataLength(last)},
				 &snap, &why) != MOAT_OK)
		log_warn("cluster: session %s: its entry is malformed (%s); kept here", key, why);
	else if (!moat_bytes_eq(snap.owner, moat_bytes_str(cl->node))) {
		r = RESTORED_MOVED;
		snprintf(owner, owner_cap, "%.*s", (int)snap.owner.len,
			 (const char *)snap.owner.ptr);
	}
	*resumed = snap.resumed; /* false when absent, deleted or malformed */
	snapshot_fini(&snap);
	natsMsg_Destroy(last);
	return r;
}

/* Keeps <s> (restored from the store, its Will held in <will>), ends it, or
 * hands its messages over to the node that has it now when that node's
 * claim resumed it or adopted it (else its client started clean there, and
 * the messages end with this copy), as the bucket says:
 * an entry deleted since means its last owner ended it, so this copy is
 * stale (its Will went out there, or was not due); no entry at all means
 * no node ever wrote it (NATS was unreachable when it was made), so this
 * node claims it now. False when the bucket did not answer: nothing done. */
static bool settle(struct worker *w, struct session *s, struct msg *will)
{
	struct cluster *cl = w->b->cluster;
	struct worker_share *ws = &cl->sessions->w[w->id];
	char owner[CLUSTER_NODE_MAX + 1] = "";
	uint64_t rev = 0;
	bool resumed = false;
	enum restored r = check_restored(cl, ws, s, owner, sizeof(owner), &rev, &resumed);

	if (r == RESTORED_UNKNOWN)
		return false;
	if (r == RESTORED_NEW || r == RESTORED_MINE) {
		/* claimed (offline, with its Will) at the revision read: a node
		 * adopting it at the same moment then fails, or this write does;
		 * the entry keeps saying whether it resumed from another node
		 * (that node may not have read it yet: it hands over if so) */
		s->will = will;
		s->cluster_resumed = resumed;
		if (encode_session(cl, s, NULL, &ws->value) != MOAT_OK ||
		    write_entry(cl->sessions->wkv, (const char *)buf_head(&ws->key), &ws->value,
				&rev) != NATS_OK) {
			s->will = NULL; /* another node claimed it meanwhile: ask again */
			return false;
		}
		s->cluster_rev = rev;
		s->restored_unsettled = false; /* broker_tick: its Will when due, its expiry */
		return true;
	}
	msg_unref(will); /* its owner has it, or it went out there */
	if (r == RESTORED_MOVED && resumed) {
		log_notice("cluster: session %s moved to node %s while this node was down; its "
			   "messages from the store are handed over",
			   s->client_id, owner);
	} else if (r == RESTORED_MOVED) {
		log_notice("cluster: session %s was started clean on node %s while this node was "
			   "down; dropped with its messages",
			   s->client_id, owner);
	} else {
		log_notice("cluster: session %s from the store ended on another node while this "
			   "node was down; dropped",
			   s->client_id);
	}
	let_go(w, s, owner, (const char *)buf_head(&ws->key), r == RESTORED_MOVED && resumed);
	return true;
}

/* Keeps <s> (a reference) and its Will aside until the bucket answers. */
static void hold_unsettled(struct worker_share *ws, struct session *s, struct msg *will)
{
	if (ws->unsettled_n == ws->unsettled_cap) {
		size_t cap = ws->unsettled_cap ? ws->unsettled_cap * 2 : 16;
		struct unsettled *v = realloc(ws->unsettled, cap * sizeof(*v));

		if (v == NULL) {
			log_warn("cluster: out of memory: session %s is kept from the store "
				 "without asking the sessions bucket",
				 s->client_id);
			s->will = will;
			s->restored_unsettled = false; /* claimed as made here */
			return;
		}
		ws->unsettled = v;
		ws->unsettled_cap = cap;
	}
	atomic_fetch_add_explicit(&s->refs, 1, memory_order_relaxed);
	ws->unsettled[ws->unsettled_n++] = (struct unsettled){s, will};
}

void cluster_worker_started(struct worker *w)
{
	struct cluster *cl = w->b->cluster;
	struct worker_share *ws;

	if (cl == NULL)
		return;
	ws = &cl->sessions->w[w->id];
	/* no client yet: every session here came from the store */
	for (struct session *s = w->sessions; s != NULL; s = s->wnext) {
		struct msg *will = s->will;

		s->restored_unsettled = true;
		s->will = NULL; /* not before the bucket says it is this node's */
		hold_unsettled(ws, s, will);
	}
	ws->settle_at_ms = 0; /* at the first pass once joined */
	ws->settling = true;
	if (!atomic_load(&cl->joined)) {
		cl->w[w->id].settle_after_join = true; /* NATS unreachable at start */
		if (ws->unsettled_n > 0)
			log_notice(
			    "cluster: NATS unreachable: %zu sessions from the store wait for "
			    "the join, their Wills held",
			    ws->unsettled_n);
	}
}

/* Claims <s>, made (or resumed by its client) on this node while no claim
 * of it could be written (out of the cluster, or the bucket did not
 * answer), as its CONNECT would have: the entry names this node whatever it
 * said (a deletion too: this session is newer), and a node it named loses
 * the session: its messages are handed over here if this copy went on from
 * the cluster's (s->cluster_resumed), else its copy ends there as by a clean
 * start. But an entry whose client is online at another node makes this
 * copy the stale one: its messages go there and it ends here quietly, as a
 * restored session that moved. Nor is an entry of another node's newer
 * than the one a claim of this node's read since the client's last CONNECT
 * (s->cluster_seen_rev: a claim that was refused or not answered): that
 * node's claim came later, so <s> goes there as by its notice (taken).
 * False when the bucket did not answer. */
static bool claim_made_while_out(struct worker *w, struct session *s)
{
	struct cluster *cl = w->b->cluster;
	struct worker_share *ws = &cl->sessions->w[w->id];
	const char *key = key_for(&ws->key, moat_bytes_str(s->client_id));

	for (int i = 0; key != NULL && i < CLAIM_TRIES; i++) {
		struct snapshot snap = {0};
		kvEntry *e = NULL;
		const char *why;
		char owner[CLUSTER_NODE_MAX + 1] = "";
		natsStatus st = kvStore_Get(&e, cl->sessions->wkv, key);
		const uint64_t rev = st == NATS_OK ? kvEntry_Revision(e) : 0;
		bool elsewhere, online = false, later = false, hand = true;

		if (st != NATS_OK && st != NATS_NOT_FOUND)
			return false;
		elsewhere = st == NATS_OK &&
			    snapshot_decode(
				(struct moat_bytes){kvEntry_Value(e), (size_t)kvEntry_ValueLen(e)},
				&snap, &why) == MOAT_OK &&
			    !moat_bytes_eq(snap.owner, moat_bytes_str(cl->node));
		if (elsewhere) {
			online = snap.online;
			/* newer than the entry a claim of this node's read: that
			 * node's claim came later, as a notice would say */
			later = s->cluster_seen && rev > s->cluster_seen_rev;
			hand = !later || snap.resumed;
			snprintf(owner, sizeof(owner), "%.*s", (int)snap.owner.len,
				 (const char *)snap.owner.ptr);
		}
		s->cluster_rev = rev;
		s->cluster_seen = true;
		s->cluster_seen_rev = rev;
		st = online || later ? NATS_OK
				     : write_claim(cl, ws, s, s->conn, key, moat_bytes_str(owner),
						   s->cluster_resumed);
		snapshot_fini(&snap);
		kvEntry_Destroy(e);
		if (later) {
			log_notice("cluster: session %s taken over by node %s", s->client_id,
				   owner);
		} else if (online) {
			log_notice("cluster: session %s is online at node %s: this node's copy, "
				   "made while out of the cluster, is handed over there",
				   s->client_id, owner);
		}
		if (st == NATS_OK || st == NATS_TIMEOUT)
			held_will_settle(w, ws, s, !elsewhere);
		if (later || online) {
			let_go(w, s, owner, key, hand);
			ws->handed |= hand;
		}
		if (st == NATS_OK || st == NATS_TIMEOUT)
			return true;
		/* a refused write is another node's claim: read again */
	}
	s->cluster_rev = 0;
	return false;
}

void cluster_sessions_claim_made_while_out(struct worker *w)
{
	struct worker_share *ws = &w->b->cluster->sessions->w[w->id];
	size_t claimed = 0, unclaimed = 0;

	for (struct session *s = w->sessions, *next; s != NULL; s = next) {
		next = s->wnext; /* <s> may end (handed over) */
		if (s->dead || s->internal || s->restored_unsettled || s->cluster_rev != 0 ||
		    s->cluster_moved || is_unsure(ws, s))
			continue;
		if (unclaimed == 0 && nats_up(w->b->cluster) && claim_made_while_out(w, s))
			claimed++;
		else
			unclaimed++; /* none asked after one the bucket did not answer about */
	}
	if (claimed > 0)
		log_notice("cluster: worker %u claimed %zu sessions made while no claim could be "
			   "written",
			   w->id, claimed);
	ws->unclaimed = unclaimed > 0;
	ws->claim_at_ms = clock_mono_ms() + CLAIM_RETRY_MS;
	if (unclaimed > 0 && log_limiter_allow(&sessions_log, 10, 10))
		log_warn("cluster: %zu sessions made while out of the cluster (or while the "
			 "sessions bucket did not answer) are not claimed in it yet; tried again "
			 "every second",
			 unclaimed);
}

/* The sessions in no claim, again once a second while there are some. */
static void claim_unclaimed(struct worker *w, struct worker_share *ws)
{
	if (ws->unclaimed && clock_mono_ms() >= ws->claim_at_ms)
		cluster_sessions_claim_made_while_out(w);
}

/* Asks the bucket about the sessions from the store (once joined), at most
 * SETTLE_BATCH in one pass and none after one it does not answer about
 * (the rest wait for the next try, a second later); one whose client came
 * back (its CONNECT claimed it) or that ended is left. True when one was
 * settled (its messages may be handed over). */
static bool settle_from_store(struct worker *w, struct worker_share *ws)
{
	uint64_t now = clock_mono_ms();
	size_t kept = 0, n = ws->unsettled_n, asked = 0;
	bool asking = true;

	if ((n == 0 && !ws->settling) || now < ws->settle_at_ms)
		return false;
	for (size_t i = 0; i < ws->unsettled_n; i++) {
		struct unsettled u = ws->unsettled[i];

		if (!u.s->dead && !u.s->restored_unsettled && u.will != NULL) {
			ws->unsettled[kept++] = u; /* due: its claim decides (held_will_settle) */
			continue;
		}
		if (u.s->dead || !u.s->restored_unsettled) {
			msg_unref(u.will);
			/* its client came back meanwhile (its CONNECT claimed it):
			 * the held Will is void, its record too (conn.c saw no
			 * Will to cancel) */
			if (!u.s->dead && u.s->will == NULL)
				persist_will(w, u.s);
		} else {
			bool settled = false;

			if (asking && asked < SETTLE_BATCH) {
				asked++;
				settled = asking = settle(w, u.s, u.will);
			}
			if (!settled) {
				ws->unsettled[kept++] = u;
				continue;
			}
			ws->settled++;
		}
		sess_unref(u.s);
	}
	ws->unsettled_n = kept;
	if (ws->settling && kept == 0) {
		ws->settling = false;
		log_info("cluster: worker %u settled %zu sessions from the store", w->id,
			 ws->settled);
	}
	if (!asking && log_limiter_allow(&sessions_log, 10, 10))
		log_warn("cluster: the sessions bucket did not answer about %zu sessions from the "
			 "store; their Wills wait until it does (asked again every second)",
			 kept);
	/* every one asked was answered (a full batch): the next pass goes on */
	ws->settle_at_ms = asking ? now : now + SETTLE_RETRY_MS;
	return kept < n;
}

/* ---- a clean stop without persistence ---- */

void cluster_sessions_leave(struct cluster *cl)
{
	size_t sent = 0, unsent = 0;
	int wait_ms = cluster_stop_wait_ms(cl); /* 0: NATS not connected, or no time left */
	jsPubOptions po;

	if (cl->sessions == NULL || cl->sessions->w == NULL || cl->b->cfg->persistence ||
	    wait_ms == 0)
		return; /* with a store the sessions come back with the node: entries stay */
	/* all the delete markers at once, then one wait: a slow JetStream
	 * costs one wait, not a request's wait per session; once one
	 * cannot be sent (too many wait for JetStream), the rest are not tried */
	for (unsigned i = 0; i < cl->b->nworkers; i++) {
		struct worker_share *ws = &cl->sessions->w[i];

		for (struct session *s = cl->b->workers[i].sessions; s != NULL; s = s->wnext) {
			const char *key = key_for(&ws->key, moat_bytes_str(s->client_id));

			if (key == NULL || s->cluster_moved || s->cluster_rev == 0)
				continue;
			if (unsent == 0 &&
			    cluster_kv_delete_at_async(cl->sessions->wjs, cl->sessions->bucket, key,
						       s->cluster_rev) == NATS_OK)
				sent++;
			else
				unsent++;
		}
	}
	if (unsent > 0)
		log_warn("cluster: %zu sessions end with this node (persistence is off) but their "
			 "entries could not be deleted: JetStream does not take more",
			 unsent);
	if (sent == 0)
		return;
	jsPubOptions_Init(&po);
	po.MaxWait = wait_ms;
	if (js_PublishAsyncComplete(cl->sessions->wjs, &po) == NATS_OK)
		log_notice("cluster: %zu sessions end with this node (persistence is off): their "
			   "entries are deleted (each only if still this node's)",
			   sent);
	else
		log_warn("cluster: %zu sessions end with this node (persistence is off), but "
			 "JetStream did not confirm their entries' deletion in time",
			 sent);
}

/* ---- claims that were not answered ---- */

/* Reads <u>'s entry again: this node's claim was stored (the entry names
 * this node, newer than the revision the claim was written at): taken, and
 * the previous owner told; it was not (the entry is still at that
 * revision): claimed again; another node claimed it since: left to it (its
 * notice comes here). False when the bucket did not answer again. */
static bool settle_claim(struct worker *w, struct worker_share *ws, const struct unsure *u)
{
	struct cluster *cl = w->b->cluster;
	struct session *s = u->s;
	const char *key = key_for(&ws->key, moat_bytes_str(s->client_id));
	struct snapshot snap = {0};
	kvEntry *e = NULL;
	const char *why;
	uint64_t rev = 0;
	bool named = false;
	natsStatus st;

	if (key == NULL || s->cluster_rev != 0)
		return true; /* out of memory, or claimed since (its client came back) */
	st = kvStore_Get(&e, cl->sessions->wkv, key);
	if (st != NATS_OK && st != NATS_NOT_FOUND)
		return false;
	if (st == NATS_OK) {
		rev = kvEntry_Revision(e);
		named = snapshot_decode(
			    (struct moat_bytes){kvEntry_Value(e), (size_t)kvEntry_ValueLen(e)},
			    &snap, &why) == MOAT_OK &&
			moat_bytes_eq(snap.owner, moat_bytes_str(cl->node));
	}
	snapshot_fini(&snap);
	kvEntry_Destroy(e);
	if (named && rev > u->read_rev && s->dead) {
		delete_entry(cl, key, rev); /* it ended here meanwhile */
		return true;
	}
	if (named && rev > u->read_rev) {
		s->cluster_rev = rev;
		cluster_session_changed(w, s); /* it may have changed since the claim */
	} else if (rev == u->read_rev && !s->dead) {
		if (encode_session(cl, s, s->conn, &ws->value) != MOAT_OK)
			return true;
		st = write_entry(cl->sessions->wkv, key, &ws->value, &rev);
		if (st == NATS_TIMEOUT)
			return false;
		if (st != NATS_OK)
			return true; /* another node's claim came first */
		s->cluster_rev = rev;
	} else {
		return true;
	}
	if (u->owner[0] != '\0')
		notify(cl, moat_bytes_str(u->owner), key, s->cluster_rev, u->hand_over);
	return true;
}

/* Settles the claims that were not answered, once a second; after
 * NOTICE_TRIES reads without an answer a session is left as not claimed.
 * One left not claimed (another node's claim came first, or no answer) is
 * claimed again with those made while out (claim_made_while_out: it lets
 * the session go if that node's claim is newer than this node's read). */
static void settle_claims(struct worker *w, struct worker_share *ws)
{
	uint64_t now = clock_mono_ms();
	size_t kept = 0;

	if (ws->unsure_n == 0 || now < ws->unsure_at_ms)
		return;
	for (size_t i = 0; i < ws->unsure_n; i++) {
		struct unsure *u = &ws->unsure[i];

		if (!settle_claim(w, ws, u) && ++u->tries < NOTICE_TRIES) {
			ws->unsure[kept++] = *u;
			continue;
		}
		if (u->tries >= NOTICE_TRIES)
			log_warn(
			    "cluster: session %s: the sessions bucket did not answer about its "
			    "claim; other nodes may still hold it",
			    u->s->client_id);
		if (u->s->cluster_rev == 0 && !u->s->dead && !u->s->cluster_moved)
			ws->unclaimed = true; /* claimed again (claim_unclaimed), or let go */
		sess_unref(u->s);
	}
	ws->unsure_n = kept;
	ws->unsure_at_ms = now + NOTICE_RETRY_MS;
}

/* ---- per loop pass ---- */

struct action *cluster_sessions_take(struct cluster *cl, unsigned wid)
{
	struct worker_share *ws;
	struct action *a;

	if (cl->sessions == NULL || cl->sessions->w == NULL)
		return NULL; /* a join that failed before the bucket */
	ws = &cl->sessions->w[wid];
	pthread_mutex_lock(&ws->lock);
	a = ws->head;
	ws->head = ws->tail = NULL;
	pthread_mutex_unlock(&ws->lock);
	return a;
}

void cluster_sessions_flush(struct worker *w)
{
	struct worker_share *ws = &w->b->cluster->sessions->w[w->id];
	bool handed = false;
	struct action *a, *again_head = NULL, **again_tail = &again_head;
	uint64_t now = clock_mono_ms();

	a = cluster_sessions_take(w->b->cluster, w->id);
	if (ws->later != NULL && now >= ws->later_at_ms) {
		/* due: first, so one session's notices keep their order */
		*action_end(&ws->later) = a;
		a = ws->later;
		ws->later = NULL;
	}
	while (a != NULL) {
		struct action *next = a->next;
		bool again = false;

		if (a->kind == ACT_ADOPT)
			cluster_adopt(w, a); /* may become a takeover notice (adopt.c) */
		if (a->kind == ACT_TAKEN)
			handed |= taken(w, a, &again);
		if (again) {
			a->next = NULL;
			*again_tail = a;
			again_tail = &a->next;
		} else {
			cluster_action_free(a);
		}
		a = next;
	}
	if (again_head != NULL) {
		*action_end(&ws->later) = again_head;
		ws->later_at_ms = now + NOTICE_RETRY_MS;
	}
	handed |= settle_from_store(w, ws);
	settle_claims(w, ws);
	claim_unclaimed(w, ws);
	handed |= ws->handed;
	ws->handed = false;
	/* the handed-over copies' records, and the sessions' deletion, go to
	 * the store before cluster_outbound_flush lets the copies go (so that
	 * a deletion once JetStream stored one cannot come first) */
	if (handed)
		persist_submit(w);
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

int cluster_sessions_init(struct cluster *cl, char *err, size_t errlen)
{
	struct cluster_sessions *cs = calloc(1, sizeof(*cs));

	cl->sessions = cs;
	if (cs == NULL || (cs->w = calloc(cl->b->nworkers, sizeof(*cs->w))) == NULL) {
		snprintf(err, errlen, "cluster: out of memory");
		return MOAT_E_NOMEM;
	}
	for (unsigned i = 0; i < cl->b->nworkers; i++)
		pthread_mutex_init(&cs->w[i].lock, NULL);
	return MOAT_OK;
}

int cluster_sessions_start(struct cluster *cl, const char *name, char *err, size_t errlen)
{
	struct cluster_sessions *cs = cl->sessions;
	char subject[sizeof(cs->notice_prefix) + CLUSTER_NODE_MAX];
	jsOptions jo;
	natsStatus s;

	snprintf(cs->bucket, sizeof(cs->bucket), "%s_sessions", name);
	snprintf(cs->notice_prefix, sizeof(cs->notice_prefix), "%s.s.", name);
	snprintf(subject, sizeof(subject), "%s%s", cs->notice_prefix, cl->node);
	jsOptions_Init(&jo);
	jo.Wait = WORKER_WAIT_MS;
	s = cluster_bucket(cl, cs->bucket, &cs->kv);
	if (s == NATS_OK)
		s = natsConnection_JetStream(&cs->wjs, cl->nc, &jo);
	if (s == NATS_OK)
		s = js_KeyValue(&cs->wkv, cs->wjs, cs->bucket);
	if (s == NATS_OK)
		s = natsConnection_Subscribe(&cs->notices, cl->nc, subject, on_notice, cl);
	if (s != NATS_OK) {
		snprintf(err, errlen, "cluster: cannot use the sessions bucket: %s",
			 natsStatus_GetText(s));
		return MOAT_E_IO;
	}
	return MOAT_OK;
}

void cluster_sessions_unstart(struct cluster *cl)
{
	struct cluster_sessions *cs = cl->sessions;

	if (cs->notices != NULL)
		natsSubscription_Unsubscribe(cs->notices);
	natsSubscription_Destroy(cs->notices);
	kvStore_Destroy(cs->kv);
	kvStore_Destroy(cs->wkv);
	jsCtx_Destroy(cs->wjs);
	cs->notices = NULL;
	cs->kv = cs->wkv = NULL;
	cs->wjs = NULL;
}

void cluster_sessions_stop(struct cluster *cl)
{
	struct cluster_sessions *cs = cl->sessions;

	if (cs == NULL)
		return;
	cluster_sessions_unstart(cl);
	for (unsigned i = 0; cs->w != NULL && i < cl->b->nworkers; i++) {
		struct worker_share *ws = &cs->w[i];

		actions_free(ws->head);
		actions_free(ws->later);
		for (size_t k = 0; k < ws->dirty_n; k++)
			sess_unref(ws->dirty[k]);
		free(ws->dirty);
		for (size_t k = 0; k < ws->unsettled_n; k++) {
			msg_unref(ws->unsettled[k].will);
			sess_unref(ws->unsettled[k].s);
		}
		free(ws->unsettled);
		for (size_t k = 0; k < ws->unsure_n; k++)
			sess_unref(ws->unsure[k].s);
		free(ws->unsure);
		buf_fini(&ws->key);
		buf_fini(&ws->value);
		buf_fini(&ws->scratch);
		buf_fini(&ws->subject);
		pthread_mutex_destroy(&ws->lock);
	}
	free(cs->w);
	free(cs);
	cl->sessions = NULL;
}
