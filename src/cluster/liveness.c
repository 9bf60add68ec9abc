/*
 * Which nodes are alive (docs/cluster.md, "Sessions"): every node writes its
 * name into the bucket "<cluster>_alive" every second from a thread of its
 * own (the figures in "<cluster>_nodes", nodes.c, come every few seconds
 * from a worker: too slowly and unevenly for this), and reads the other
 * keys' revisions there (polled rather than watched: the library can leak a
 * watched entry that arrives as its watcher stops, and heartbeats always
 * arrive). A node whose revision has not moved for ALIVE_SILENT_MS is dead;
 * the living node with the lowest name then asks adopt.c, on its own
 * thread, to adopt the sessions the dead node owned, and deletes its key
 * once they are. A node that stops cleanly deletes its key: its sessions
 * wait for it, as its store keeps them.
 *
 * Anyone who may write the bucket could put keys in it: only keys that are
 * valid node names are tracked, at most CLUSTER_KNOWN_NODES of them, and a
 * new name takes the place of one silent for FORGET_MS only, never of a
 * node that answers.
 */
#include "cluster/cluster_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <moat/error.h>

#include "base/clock.h"
#include "base/log.h"
#include "base/text.h"
#include "cluster/kv_delete.h"

enum {
	HEARTBEAT_MS = 1000,	/* how often a node says it is alive */
	ALIVE_SILENT_MS = 6000, /* how long its silence means it died */
	FORGET_MS = 60000,	/* silent this long, its place may go to a new name */
	/* after this node's own outage, how long the others may take to be
	 * back: their reconnect pause (link.c: at most 5 s + 20 %) and a beat */
	OUTAGE_GRACE_MS = 6000 + HEARTBEAT_MS
};

struct known_node {
	char name[CLUSTER_NODE_MAX + 1];
	uint64_t rev;	  /* its key's revision when last read */
	uint64_t seen_ms; /* monotonic: when that revision changed */
	bool silent;	  /* since then for ALIVE_SILENT_MS (logged once) */
	bool requested;	  /* its sessions were asked of adopt.c since */
	bool listed;	  /* scratch: its key is still there */
};

/* Only the heartbeat thread touches it after start. */
struct cluster_liveness {
	kvStore *kv;
	struct known_node v[CLUSTER_KNOWN_NODES];
	size_t n;
	bool full;		 /* a new name found no place (logged once until one frees) */
	uint64_t grace_until_ms; /* monotonic: no node is judged before (an outage) */
	pthread_t thread;
	bool running;
	atomic_bool stop;
};

/* bad keys; silences and returns (a flood of keys written once) */
static struct log_limiter liveness_log, silence_log;

static struct known_node *find(struct cluster_liveness *cn, const char *name)
{
	for (size_t i = 0; i < cn->n; i++)
		if (strcmp(cn->v[i].name, name) == 0)
			return &cn->v[i];
	return NULL;
}

/* Stops tracking v[<i>] (its key went, or its place goes to a new name). */
static void forget(struct cluster *cl, size_t i)
{
	struct cluster_liveness *cn = cl->liveness;

	if (cn->v[i].requested)
		cluster_adopt_cancel(cl, cn->v[i].name);
	cn->v[i] = cn->v[--cn->n];
}

/* A place for <name>, first seen at <now>: a free one, else that of the
 * node silent longest if for FORGET_MS; NULL when the table is full. */
static struct known_node *track(struct cluster *cl, const char *name, uint64_t now)
{
	struct cluster_liveness *cn = cl->liveness;
	struct known_node *k;
	size_t oldest = cn->n;

	for (size_t i = 0; cn->n == CLUSTER_KNOWN_NODES && i < cn->n; i++)
		if (now - cn->v[i].seen_ms >= FORGET_MS &&
		    (oldest == cn->n || cn->v[i].seen_ms < cn->v[oldest].seen_ms))
			oldest = i;
	if (oldest < cn->n)
		forget(cl, oldest);
	if (cn->n == CLUSTER_KNOWN_NODES) {
		if (!cn->full)
			log_warn("cluster: %d node names in the alive bucket already, all heard "
				 "from within %d s: node %s is not watched (no adoption of its "
				 "sessions) until one leaves or stays silent",
				 CLUSTER_KNOWN_NODES, FORGET_MS / 1000, name);
		cn->full = true;
		return NULL;
	}
	k = &cn->v[cn->n++];
	*k = (struct known_node){.seen_ms = now};
	snprintf(k->name, sizeof(k->name), "%s", name);
	return k;
}

/* While this node cannot reach NATS, and for OUTAGE_GRACE_MS after, it
 * cannot tell a silent node from its own outage (the others come back after
 * their own reconnect pause): every node counts as just seen, so none is
 * judged dead by a silence that included this node's own (it would adopt
 * sessions whose clients are still connected to their node, and send their
 * Wills), and no adoption asked for goes on. */
static void forgive_all(struct cluster *cl, uint64_t now)
{
	struct cluster_liveness *cn = cl->liveness;

	for (size_t i = 0; i < cn->n; i++) {
		cn->v[i].seen_ms = now;
		cn->v[i].silent = cn->v[i].requested = false;
	}
	cluster_adopt_cancel(cl, NULL);
}

/* Reads node <k>'s key: a revision that moved is a heartbeat. */
static void heard(struct cluster *cl, struct known_node *k, uint64_t now)
{
	kvEntry *e = NULL;

	k->listed = true;
	if (kvStore_Get(&e, cl->liveness->kv, k->name) != NATS_OK)
		return;
	if (kvEntry_Revision(e) != k->rev) {
		if (k->silent && log_limiter_allow(&silence_log, 10, 60))
			log_notice("cluster: node %s answers again", k->name);
		if (k->requested)
			cluster_adopt_cancel(cl, k->name);
		k->rev = kvEntry_Revision(e);
		k->seen_ms = now;
		k->silent = k->requested = false;
	}
	kvEntry_Destroy(e);
}

/* Reads every node's key; a key that went is a clean leave (forgotten: its
 * sessions wait for it). False when NATS did not answer. */
static bool poll_nodes(struct cluster *cl)
{
	struct cluster_liveness *cn = cl->liveness;
	kvKeysList keys = {0};
	uint64_t now = clock_mono_ms();

	if (kvStore_Keys(&keys, cn->kv, NULL) != NATS_OK)
		return false;
	for (size_t i = 0; i < cn->n; i++)
		cn->v[i].listed = false;
	for (int i = 0; i < keys.Count; i++) {
		const char *name = keys.Keys[i];
		struct known_node *k;

		if (strcmp(name, cl->node) == 0)
			continue;
		if (!text_is_name(name, CLUSTER_NODE_MAX)) {
			if (log_limiter_allow(&liveness_log, 1, 600))
				log_warn("cluster: the alive bucket has keys that name no node; "
					 "they are ignored");
			continue;
		}
		k = find(cn, name);
		if (k == NULL)
			k = track(cl, name, now);
		if (k != NULL)
			heard(cl, k, now);
	}
	kvKeysList_Destroy(&keys);
	for (size_t i = 0; i < cn->n;)
		if (!cn->v[i].listed)
			forget(cl, i);
		else
			i++;
	if (cn->n < CLUSTER_KNOWN_NODES)
		cn->full = false;
	return true;
}

/* Marks the nodes silent for ALIVE_SILENT_MS; when this node has the lowest
 * name of the living, asks adopt.c for their sessions. */
static void judge(struct cluster *cl)
{
	struct cluster_liveness *cn = cl->liveness;
	uint64_t now = clock_mono_ms();
	bool lowest = true;

	for (size_t i = 0; i < cn->n; i++) {
		struct known_node *k = &cn->v[i];

		if (now - k->seen_ms < ALIVE_SILENT_MS) {
			lowest = lowest && strcmp(cl->node, k->name) < 0;
		} else if (!k->silent) {
			k->silent = true;
			if (log_limiter_allow(&silence_log, 10, 60))
				log_notice("cluster: node %s stopped answering (silent for %d s)",
					   k->name, ALIVE_SILENT_MS / 1000);
		}
	}
	for (size_t i = 0; lowest && i < cn->n; i++)
		if (cn->v[i].silent && !cn->v[i].requested) {
			cn->v[i].requested = true;
			cluster_adopt_request(cl, cn->v[i].name);
		}
}

static void *heartbeat(void *arg)
{
	struct cluster *cl = arg;

	while (!atomic_load(&cl->liveness->stop)) {
		bool ok = kvStore_PutString(NULL, cl->liveness->kv, cl->node, "alive") == NATS_OK;
		uint64_t now;

		if (!ok)
			log_debug("cluster: heartbeat not written (NATS unreachable?)");
		ok = ok && poll_nodes(cl);
		now = clock_mono_ms();
		if (!ok)
			cl->liveness->grace_until_ms = now + OUTAGE_GRACE_MS;
		/* after an outage the others reconnect in their own time */
		if (!ok || now < cl->liveness->grace_until_ms)
			forgive_all(cl, now);
		else
			judge(cl);
		for (int i = 0; i < HEARTBEAT_MS / 100 && !atomic_load(&cl->liveness->stop); i++)
			usleep(100000);
	}
	return NULL;
}

int cluster_liveness_start(struct cluster *cl, const char *name, char *err, size_t errlen)
{
	char bucket[CLUSTER_NAME_MAX + 16];
	natsStatus s;
	int rc = MOAT_OK;

	cl->liveness = calloc(1, sizeof(*cl->liveness));
	if (cl->liveness == NULL) {
		snprintf(err, errlen, "cluster: out of memory");
		return MOAT_E_NOMEM;
	}
	snprintf(bucket, sizeof(bucket), "%s_alive", name);
	s = cluster_bucket(cl, bucket, &cl->liveness->kv);
	if (s != NATS_OK) {
		snprintf(err, errlen, "cluster: cannot use the bucket %s: %s", bucket,
			 natsStatus_GetText(s));
		rc = MOAT_E_IO;
	}
	if (rc == MOAT_OK)
		rc = cluster_adopt_start(cl, name, cl->liveness->kv, err, errlen);
	if (rc == MOAT_OK && pthread_create(&cl->liveness->thread, NULL, heartbeat, cl) != 0) {
		snprintf(err, errlen, "cluster: cannot start the heartbeat thread");
		rc = MOAT_E_NOMEM;
	}
	cl->liveness->running = rc == MOAT_OK;
	return rc;
}

/* Deletes this node's key (a clean leave): its delete marker is published
 * asynchronously through cl->js, whose completion cluster_stop waits for
 * (with the exports, as long as the stop may). */
static void leave(struct cluster *cl)
{
	char bucket[CLUSTER_NAME_MAX + 16];
	struct buf subject = {0};
	natsMsg *nm = NULL;
	natsStatus s = NATS_NO_MEMORY;

	snprintf(bucket, sizeof(bucket), "%s_alive", cl->name);
	if (cluster_kv_subject(&subject, bucket, cl->node) != NULL &&
	    natsMsg_Create(&nm, (const char *)buf_head(&subject), NULL, NULL, 0) == NATS_OK &&
	    natsMsgHeader_Set(nm, "KV-Operation", "DEL") == NATS_OK)
		s = js_PublishMsgAsync(cl->js, &nm, NULL);
	if (s != NATS_OK)
		log_warn("cluster: this node's alive key was not deleted (%s): the others will "
			 "find it silent and adopt its sessions",
			 natsStatus_GetText(s));
	natsMsg_Destroy(nm); /* NULL once NATS took it */
	buf_fini(&subject);
}

void cluster_liveness_halt(struct cluster *cl)
{
	struct cluster_liveness *cn = cl->liveness;

	if (cn == NULL)
		return;
	atomic_store(&cn->stop, true);
	if (cn->running)
		cluster_stop_join(cl, cn->thread);
	cn->running = false;
	cluster_adopt_halt(cl);
}

void cluster_liveness_stop(struct cluster *cl)
{
	struct cluster_liveness *cn = cl->liveness;

	if (cn == NULL)
		return;
	cluster_liveness_halt(cl);
	cluster_adopt_stop(cl);
	if (cn->kv != NULL && atomic_load(&cl->connected) && cl->stop_by_ms != 0)
		leave(cl);
	kvStore_Destroy(cn->kv);
	free(cn);
	cl->liveness = NULL;
}
