/*
 * Adoption of a silent node's sessions (docs/cluster.md, "A node dies"):
 * the living node with the lowest name (liveness.c) claims every entry of
 * the sessions bucket that the dead node owned and hands it to worker 0,
 * which makes it an offline session, so its Will and expiry run as on one
 * node. The bucket is read on a thread of its own, never the heartbeat's:
 * a node busy adopting thousands of sessions still says it is alive. It
 * stops between two entries when the node stops, and adopts no more of a
 * node once that node answers again.
 *
 * A client may claim an entry on a third node just after this node claimed
 * it for adoption; that node's takeover notice can then arrive before
 * worker 0 has made the session. Each claimed entry stays in a window
 * (at most ADOPT_WINDOW, so the thread also never runs far ahead of worker
 * 0) until its session exists; that a notice came for an entry in the
 * window is kept (not what it claims: a forged one cannot displace a real
 * one), and the entry is read again right after the session is made.
 */
#include "cluster/cluster_int.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <moat/error.h>

#include "base/clock.h"
#include "base/log.h"
#include "base/text.h"
#include "broker/broker.h"
#include "broker/persist.h"
#include "cluster/snapshot.h"
#include "cluster/subject.h"

enum {
	ADOPT_WINDOW = 256, /* entries claimed whose sessions worker 0 has not made yet */
	RETRY_MS = 1000	    /* before reading the bucket again after NATS did not answer */
};

/* A node whose sessions are wanted, or being adopted. */
struct dead_node {
	char name[CLUSTER_NODE_MAX + 1];
	bool cancelled; /* it answered again, or left, since it was asked for */
	size_t adopted; /* sessions claimed by this scan */
};

/* An entry claimed for adoption whose session is not made yet, and
 * whether a takeover notice for it arrived meanwhile. */
struct claimed {
	char *key;
	bool noticed; /* a takeover notice came for it: look at the entry once made */
};

struct cluster_adoption {
	struct cluster *cl;
	kvStore *sessions;    /* its own handle on the bucket */
	kvStore *alive;	      /* liveness.c's */
	pthread_mutex_t lock; /* for everything below */
	pthread_cond_t wake;  /* a request, a slot of the window freed, or stop */
	struct dead_node wanted[CLUSTER_KNOWN_NODES]; /* asked for, not yet scanned */
	size_t wanted_n;
	struct dead_node scan[CLUSTER_KNOWN_NODES]; /* the scan under way */
	size_t scan_n;
	struct claimed window[ADOPT_WINDOW];
	size_t window_n;
	uint64_t retry_at_ms; /* monotonic: no scan before (NATS did not answer) */
	uint64_t hold_ms;     /* test hook, debug builds: wait between claim and session */
	pthread_t thread;
	bool running, stop;
};

/* How an entry went. */
enum entry_result { ENTRY_ADOPTED, ENTRY_SKIPPED, ENTRY_UNANSWERED };

/* Whether NATS failed to answer rather than refused (a claim another node
 * made first is refused: that entry is done with). */
static bool unanswered(natsStatus s)
{
	return s == NATS_TIMEOUT || s == NATS_NO_RESPONDERS || s == NATS_CONNECTION_CLOSED ||
	       s == NATS_CONNECTION_DISCONNECTED || s == NATS_NOT_YET_CONNECTED;
}

static struct dead_node *find_node(struct dead_node *v, size_t n, const char *name)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(v[i].name, name) == 0)
			return &v[i];
	return NULL;
}

/* Waits on <ad>->wake (locked) until <deadline_ms> (monotonic) at most. */
static void wait_until(struct cluster_adoption *ad, uint64_t deadline_ms)
{
	uint64_t now = clock_mono_ms();
	struct timespec ts;

	if (deadline_ms <= now)
		return;
	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += (time_t)((deadline_ms - now) / 1000);
	ts.tv_nsec += (long)((deadline_ms - now) % 1000) * 1000000;
	if (ts.tv_nsec >= 1000000000) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000;
	}
	pthread_cond_timedwait(&ad->wake, &ad->lock, &ts);
}

/* Adds <name> to the nodes wanted (locked), unless it is there. */
static void want(struct cluster_adoption *ad, const char *name)
{
	struct dead_node *d;

	if (find_node(ad->wanted, ad->wanted_n, name) != NULL ||
	    ad->wanted_n == CLUSTER_KNOWN_NODES)
		return;
	d = &ad->wanted[ad->wanted_n++];
	*d = (struct dead_node){.adopted = 0};
	snprintf(d->name, sizeof(d->name), "%s", name);
	pthread_cond_broadcast(&ad->wake);
}

/* ---- the window of claimed entries ---- */

/* Puts <key> in the window, waiting for a free slot. False when stopping
 * (or out of memory: the entry is left to a later scan). */
static bool window_enter(struct cluster_adoption *ad, const char *key)
{
	char *copy = strdup(key);
	bool ok;

	pthread_mutex_lock(&ad->lock);
	while (ad->window_n == ADOPT_WINDOW && !ad->stop)
		pthread_cond_wait(&ad->wake, &ad->lock);
	ok = copy != NULL && !ad->stop;
	if (ok)
		ad->window[ad->window_n++] = (struct claimed){.key = copy};
	pthread_mutex_unlock(&ad->lock);
	if (!ok)
		free(copy);
	return ok;
}

/* Takes <key> out of the window (locked) into <out>; false when absent. */
static bool window_take(struct cluster_adoption *ad, const char *key, struct claimed *out)
{
	for (size_t i = 0; i < ad->window_n; i++)
		if (strcmp(ad->window[i].key, key) == 0) {
			*out = ad->window[i];
			ad->window[i] = ad->window[--ad->window_n];
			pthread_cond_broadcast(&ad->wake);
			return true;
		}
	return false;
}

static void window_leave(struct cluster_adoption *ad, const char *key)
{
	struct claimed c;

	pthread_mutex_lock(&ad->lock);
	if (window_take(ad, key, &c))
		free(c.key);
	pthread_mutex_unlock(&ad->lock);
}

bool cluster_adopt_park(struct cluster *cl, const char *key)
{
	struct cluster_adoption *ad;
	bool parked = false;

	pthread_mutex_lock(&cl->post_lock); /* <ad> is freed under it */
	ad = cl->adoption;
	if (ad != NULL) {
		pthread_mutex_lock(&ad->lock);
		for (size_t i = 0; i < ad->window_n && !parked; i++) {
			struct claimed *c = &ad->window[i];

			if (strcmp(c->key, key) != 0)
				continue;
			parked = true;
			c->noticed = true;
		}
		pthread_mutex_unlock(&ad->lock);
	}
	pthread_mutex_unlock(&cl->post_lock);
	return parked;
}

/* ---- worker 0 ---- */

/* Makes <a>'s entry (already claimed for this node, offline) an offline
 * session of worker <w>: its Will and expiry then run as on one node,
 * counted from when its client went (or from the claim, for a client that
 * was connected to the dead node). */
static struct session *adopt_session(struct worker *w, struct action *a)
{
	struct snapshot snap;
	struct buf id = {0};
	struct session *s = NULL;
	const char *why = "out of memory";
	uint64_t now = clock_mono_ms(), wall = clock_wall_ms(), gone_ms = 0;
	bool created = false;

	if (snapshot_decode((struct moat_bytes){buf_head(&a->value), buf_used(&a->value)}, &snap,
			    &why) == MOAT_OK &&
	    subject_to_topic(&id, moat_bytes_str(a->key)) == MOAT_OK)
		s = sess_claim(w, (struct moat_bytes){buf_head(&id), buf_used(&id)}, &created);
	buf_fini(&id);
	if (s == NULL || !created) {
		if (s == NULL)
			log_warn("cluster: cannot adopt session %s: %s", a->key, why);
		snapshot_fini(&snap);
		return NULL; /* a client of that id connected here meanwhile: it claimed the entry
			      */
	}
	if (wall > snap.offline_wall_ms)
		gone_ms = wall - snap.offline_wall_ms;
	s->version = snap.version;
	s->expiry_s = snap.expiry_s;
	if (snap.expiry_s != UINT32_MAX)
		s->expire_at_ms = now + ((uint64_t)snap.expiry_s * 1000 > gone_ms
					     ? (uint64_t)snap.expiry_s * 1000 - gone_ms
					     : 0);
	if (snap.has_username)
		s->username = text_dup_bytes(snap.username);
	/* rights are checked again as each message goes out (its username
	 * only is known here: a token's roles come with its next CONNECT) */
	cluster_session_restore_subs(w, s, &snap, false);
	if (snap.will != NULL) {
		uint64_t delay = (uint64_t)snap.will_delay_s * 1000;

		s->will = snap.will;
		snap.will = NULL;
		s->will_at_ms = now + (delay > gone_ms ? delay - gone_ms : 0);
	}
	s->cluster_rev = a->rev;
	s->cluster_resumed = true; /* as its claim says: kept in this node's later writes */
	persist_session_save(w, s, snap.offline_wall_ms);
	persist_will(w, s);
	log_debug("cluster: adopted session %s of a node that stopped answering", s->client_id);
	snapshot_fini(&snap);
	return s;
}

/* cluster_adopt; returns the session made, or NULL. */
static struct session *adopt(struct worker *w, struct action *a)
{
	struct cluster_adoption *ad = w->b->cluster->adoption;
	struct claimed c = {0};
	bool found = false;
	struct session *s = adopt_session(w, a);

	/* the session exists now: a notice that comes from here on finds it */
	if (ad != NULL) {
		pthread_mutex_lock(&ad->lock);
		found = window_take(ad, a->key, &c);
		pthread_mutex_unlock(&ad->lock);
	}
	if (found && c.noticed)
		a->kind = ACT_TAKEN; /* the entry tells by whom, and whether it resumed */
	free(c.key);
	return s;
}

void cluster_adopt(struct worker *w, struct action *a)
{
	adopt(w, a);
}

void cluster_adopt_left(struct cluster *cl)
{
	struct worker *w = &cl->b->workers[0];
	struct action *a = cluster_sessions_take(cl, 0);
	size_t made = 0;

	/* takeover notices among them are dropped, as at any stop */
	while (a != NULL) {
		struct action *next = a->next;
		struct session *s = a->kind == ACT_ADOPT ? adopt(w, a) : NULL;

		if (s != NULL)
			made++;
		/* server.c sent the Wills of the sessions the store does not keep
		 * before the cluster stopped: this one's goes now, unless its
		 * client claimed it on another node since (a notice was parked
		 * for it: not acted on at a stop) */
		if (s != NULL && a->kind == ACT_ADOPT &&
		    !atomic_load_explicit(&s->stored, memory_order_relaxed))
			sess_publish_will(w, s);
		cluster_action_free(a);
		a = next;
	}
	if (made > 0)
		log_notice("cluster: stopping: made the %zu sessions claimed for adoption last "
			   "(%s)",
			   made,
			   w->b->cfg->persistence ? "the store keeps them" : "their Wills sent");
}

/* ---- the adopting thread ---- */

#ifndef NDEBUG
/* Test hook (debug builds only, MOAT_TEST_ADOPT_HOLD_MS): the claim of
 * <key> is written, its session not made yet; a test makes a client claim
 * it on another node now (tests/integration/test_cluster_adopt.py). */
static void test_hold(struct cluster_adoption *ad, const char *key)
{
	uint64_t until = clock_mono_ms() + ad->hold_ms;

	if (ad->hold_ms == 0)
		return;
	log_notice("cluster: test hook: holding the adoption of %s for %" PRIu64 " ms", key,
		   ad->hold_ms);
	pthread_mutex_lock(&ad->lock);
	while (!ad->stop && clock_mono_ms() < until)
		wait_until(ad, until);
	pthread_mutex_unlock(&ad->lock);
}
#endif

/* Whether <owner> is a node of the scan not cancelled since; counts one
 * more session for it when <count>. */
static bool scanned_owner(struct cluster_adoption *ad, struct moat_bytes owner, bool count)
{
	char name[CLUSTER_NODE_MAX + 1];
	struct dead_node *d;
	bool yes;

	if (owner.len > CLUSTER_NODE_MAX)
		return false;
	memcpy(name, owner.ptr, owner.len);
	name[owner.len] = '\0';
	pthread_mutex_lock(&ad->lock);
	d = find_node(ad->scan, ad->scan_n, name);
	yes = d != NULL && !d->cancelled;
	if (yes && count)
		d->adopted++;
	pthread_mutex_unlock(&ad->lock);
	return yes;
}

/* Claims entry <key> for this node (offline) if a node of the scan owns
 * it, and hands it to worker 0. */
static enum entry_result adopt_entry(struct cluster_adoption *ad, const char *key)
{
	struct cluster *cl = ad->cl;
	struct snapshot snap;
	struct moat_bytes dead;
	struct action *a = NULL;
	kvEntry *e = NULL;
	const char *why;
	uint64_t rev;
	natsStatus st = kvStore_Get(&e, ad->sessions, key);
	enum entry_result result = ENTRY_SKIPPED;

	if (st != NATS_OK)
		return unanswered(st) ? ENTRY_UNANSWERED : ENTRY_SKIPPED; /* else ended meanwhile */
	rev = kvEntry_Revision(e);
	if (snapshot_decode((struct moat_bytes){kvEntry_Value(e), (size_t)kvEntry_ValueLen(e)},
			    &snap, &why) != MOAT_OK) {
		snapshot_fini(&snap);
		kvEntry_Destroy(e);
		return ENTRY_SKIPPED;
	}
	dead = snap.owner;
	if (scanned_owner(ad, dead, false)) {
		snap.owner = moat_bytes_str(cl->node);
		/* it goes on here: the dead node hands its messages over when it
		 * restarts (a resumed entry), unlike after a clean start elsewhere */
		snap.resumed = true;
		if (snap.online)
			snap.offline_wall_ms = clock_wall_ms();
		snap.online = false;
		a = calloc(1, sizeof(*a));
	}
	if (a != NULL && snapshot_encode(&a->value, &snap) == MOAT_OK &&
	    (a->key = strdup(key)) != NULL && window_enter(ad, key)) {
		/* in the window before the claim: a notice of a later claim finds it */
		st = kvStore_Update(&rev, ad->sessions, key, buf_head(&a->value),
				    (int)buf_used(&a->value), rev);
		if (st == NATS_OK) {
			scanned_owner(ad, dead, true);
#ifndef NDEBUG
			test_hold(ad, key);
#endif
			a->kind = ACT_ADOPT;
			a->rev = rev;
			cluster_sessions_post(cl, 0, a);
			a = NULL;
			result = ENTRY_ADOPTED;
		} else {
			window_leave(ad, key); /* its client came back elsewhere first */
			result = unanswered(st) ? ENTRY_UNANSWERED : ENTRY_SKIPPED;
		}
	} else if (a != NULL) {
		result = ENTRY_UNANSWERED; /* out of memory, or stopping: not done */
	}
	if (a != NULL)
		cluster_action_free(a);
	snapshot_fini(&snap);
	kvEntry_Destroy(e);
	return result;
}

static bool stopping(struct cluster_adoption *ad)
{
	bool stop;

	pthread_mutex_lock(&ad->lock);
	stop = ad->stop;
	pthread_mutex_unlock(&ad->lock);
	return stop;
}

/* Reads every entry once for the nodes of the scan. True when every entry
 * was read and claimed or found another's; false when NATS did not answer. */
static bool scan_bucket(struct cluster_adoption *ad)
{
	kvKeysList keys = {0};
	natsStatus st = kvStore_Keys(&keys, ad->sessions, NULL);
	bool complete = true;
	int i = 0;

	if (st == NATS_NOT_FOUND)
		return true; /* no sessions at all */
	if (st != NATS_OK)
		return false;
	for (; i < keys.Count && !stopping(ad); i++)
		if (adopt_entry(ad, keys.Keys[i]) == ENTRY_UNANSWERED)
			complete = false;
	complete = complete && i == keys.Count;
	kvKeysList_Destroy(&keys);
	return complete;
}

/* After a scan (locked): the nodes it did not finish are wanted again;
 * those it did are copied into <done> (their keys are deleted). */
static size_t finish_scan(struct cluster_adoption *ad, bool complete, uint64_t took_ms,
			  struct dead_node *done)
{
	size_t n = 0;

	for (size_t i = 0; i < ad->scan_n; i++) {
		struct dead_node *d = &ad->scan[i];

		if (d->adopted > 0)
			log_notice("cluster: took over %zu sessions of node %s, which stopped "
				   "answering (%" PRIu64 " ms)",
				   d->adopted, d->name, took_ms);
		if (d->cancelled)
			continue;
		if (complete)
			done[n++] = *d;
		else
			want(ad, d->name);
	}
	ad->scan_n = 0;
	if (!complete)
		ad->retry_at_ms = clock_mono_ms() + RETRY_MS;
	return n;
}

static void *adopter(void *arg)
{
	struct cluster_adoption *ad = arg;
	struct dead_node done[CLUSTER_KNOWN_NODES];

	pthread_mutex_lock(&ad->lock);
	while (!ad->stop) {
		uint64_t start = clock_mono_ms();
		bool complete;
		size_t n;

		if (ad->wanted_n == 0) {
			pthread_cond_wait(&ad->wake, &ad->lock);
			continue;
		}
		if (start < ad->retry_at_ms) {
			wait_until(ad, ad->retry_at_ms);
			continue;
		}
		memcpy(ad->scan, ad->wanted, ad->wanted_n * sizeof(ad->wanted[0]));
		ad->scan_n = ad->wanted_n;
		ad->wanted_n = 0;
		pthread_mutex_unlock(&ad->lock);
		complete = scan_bucket(ad);
		pthread_mutex_lock(&ad->lock);
		n = finish_scan(ad, complete, clock_mono_ms() - start, done);
		pthread_mutex_unlock(&ad->lock);
		/* adopted: its key goes, as a node's key goes when it leaves */
		for (size_t i = 0; i < n; i++)
			kvStore_Delete(ad->alive, done[i].name);
		pthread_mutex_lock(&ad->lock);
	}
	pthread_mutex_unlock(&ad->lock);
	return NULL;
}

void cluster_adopt_request(struct cluster *cl, const char *dead)
{
	struct cluster_adoption *ad = cl->adoption;

	pthread_mutex_lock(&ad->lock);
	want(ad, dead);
	pthread_mutex_unlock(&ad->lock);
}

void cluster_adopt_cancel(struct cluster *cl, const char *node)
{
	struct cluster_adoption *ad = cl->adoption;

	pthread_mutex_lock(&ad->lock);
	for (size_t i = 0; i < ad->wanted_n;)
		if (node == NULL || strcmp(ad->wanted[i].name, node) == 0)
			ad->wanted[i] = ad->wanted[--ad->wanted_n];
		else
			i++;
	for (size_t i = 0; i < ad->scan_n; i++)
		if (node == NULL || strcmp(ad->scan[i].name, node) == 0)
			ad->scan[i].cancelled = true;
	pthread_mutex_unlock(&ad->lock);
}

/* ---- start and stop ---- */

int cluster_adopt_start(struct cluster *cl, const char *name, kvStore *alive, char *err,
			size_t errlen)
{
	struct cluster_adoption *ad = calloc(1, sizeof(*ad));
	char bucket[CLUSTER_NAME_MAX + 16];
	natsStatus s;

	if (ad == NULL) {
		snprintf(err, errlen, "cluster: out of memory");
		return MOAT_E_NOMEM;
	}
	ad->cl = cl;
	ad->alive = alive;
	pthread_mutex_init(&ad->lock, NULL);
	pthread_cond_init(&ad->wake, NULL);
#ifndef NDEBUG
	{
		const char *hold = getenv("MOAT_TEST_ADOPT_HOLD_MS");

		ad->hold_ms = hold != NULL ? strtoull(hold, NULL, 10) : 0;
		if (ad->hold_ms > 0)
			log_notice("cluster: test hook: each adoption is held %" PRIu64
				   " ms between its claim and its session",
				   ad->hold_ms);
	}
#endif
	/* a NATS thread may read it already (cluster_adopt_park, under post_lock) */
	pthread_mutex_lock(&cl->post_lock);
	cl->adoption = ad;
	pthread_mutex_unlock(&cl->post_lock);
	snprintf(bucket, sizeof(bucket), "%s_sessions", name);
	s = cluster_bucket(cl, bucket, &ad->sessions);
	if (s != NATS_OK) {
		snprintf(err, errlen, "cluster: cannot use the bucket %s: %s", bucket,
			 natsStatus_GetText(s));
		return MOAT_E_IO;
	}
	if (pthread_create(&ad->thread, NULL, adopter, ad) != 0) {
		snprintf(err, errlen, "cluster: cannot start the adopting thread");
		return MOAT_E_NOMEM;
	}
	ad->running = true;
	return MOAT_OK;
}

void cluster_adopt_halt(struct cluster *cl)
{
	struct cluster_adoption *ad = cl->adoption;

	if (ad == NULL)
		return;
	pthread_mutex_lock(&ad->lock);
	ad->stop = true;
	pthread_cond_broadcast(&ad->wake);
	pthread_mutex_unlock(&ad->lock);
	if (ad->running)
		cluster_stop_join(cl, ad->thread); /* it may wait on the bucket */
	ad->running = false;
}

void cluster_adopt_stop(struct cluster *cl)
{
	struct cluster_adoption *ad = cl->adoption;

	if (ad == NULL)
		return;
	cluster_adopt_halt(cl);
	/* a NATS thread may still be parking a notice: it holds post_lock */
	pthread_mutex_lock(&cl->post_lock);
	cl->adoption = NULL;
	pthread_mutex_unlock(&cl->post_lock);
	for (size_t i = 0; i < ad->window_n; i++)
		free(ad->window[i].key);
	kvStore_Destroy(ad->sessions);
	pthread_cond_destroy(&ad->wake);
	pthread_mutex_destroy(&ad->lock);
	free(ad);
}
