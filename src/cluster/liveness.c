/*
 * Which nodes are alive (docs/cluster.md, "Sessions"): every node writes its
 * name into the bucket "<cluster>_alive" every second from a thread of its
 * own (the figures in "<cluster>_nodes", nodes.c, come every few seconds
 * from a worker: too slowly and unevenly for this), and reads the other
 * keys' revisions there (polled rather than watched: the library can leak a
 * watched entry that arrives as its watcher stops, and heartbeats always
 * arrive). A node whose revision has not moved
 * for ALIVE_SILENT_MS is dead; the living node with the lowest name then
 * adopts the sessions the dead node owned (sessions.c). A node that stops
 * cleanly deletes its key: its sessions wait for it, as its store keeps them.
 */
#include "cluster/cluster_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <moat/error.h>

#include "base/clock.h"
#include "base/log.h"

/* How often a node says it is alive; how long its silence means it died. */
enum { HEARTBEAT_MS = 1000, ALIVE_SILENT_MS = 6000, MAX_KNOWN = 256 };

struct known_node {
	char name[CLUSTER_NODE_MAX + 1];
	uint64_t rev;	  /* its key's revision when last read */
	uint64_t seen_ms; /* monotonic: when that revision changed */
	bool adopted;	  /* its sessions were taken since it went silent */
	bool listed;	  /* scratch: its key is still there */
};

/* Only the heartbeat thread touches it after start. */
struct cluster_liveness {
	kvStore *kv;
	struct known_node v[MAX_KNOWN];
	size_t n;
	pthread_t thread;
	bool running;
	atomic_bool stop;
};

static struct known_node *find(struct cluster_liveness *cn, const char *name)
{
	for (size_t i = 0; i < cn->n; i++)
		if (strcmp(cn->v[i].name, name) == 0)
			return &cn->v[i];
	return NULL;
}

/* While this node cannot reach NATS it cannot tell a silent node from its
 * own outage: every node counts as just seen, so none is judged dead by a
 * silence that included this node's own (it would adopt sessions whose
 * clients are still connected to their node, and send their Wills). */
static void forgive_all(struct cluster_liveness *cn, uint64_t now)
{
	for (size_t i = 0; i < cn->n; i++)
		cn->v[i].seen_ms = now;
}

/* Reads every node's key: a revision that moved is a heartbeat; a key that
 * went is a clean leave (forgotten: its sessions wait for it). False when
 * NATS did not answer. */
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
		struct known_node *k = find(cn, name);
		kvEntry *e = NULL;

		if (strcmp(name, cl->node) == 0 || strlen(name) > CLUSTER_NODE_MAX ||
		    (k == NULL && cn->n == MAX_KNOWN) || kvStore_Get(&e, cn->kv, name) != NATS_OK)
			continue;
		if (k == NULL) {
			k = &cn->v[cn->n++];
			*k = (struct known_node){.seen_ms = now};
			snprintf(k->name, sizeof(k->name), "%s", name);
		}
		if (kvEntry_Revision(e) != k->rev) {
			k->rev = kvEntry_Revision(e);
			k->seen_ms = now;
			k->adopted = false;
		}
		k->listed = true;
		kvEntry_Destroy(e);
	}
	kvKeysList_Destroy(&keys);
	for (size_t i = 0; i < cn->n;)
		if (!cn->v[i].listed)
			cn->v[i] = cn->v[--cn->n];
		else
			i++;
	return true;
}

/* The next silent node whose sessions this node must adopt (the living node
 * with the lowest name does), copied into <dead>; false when none. */
static bool next_dead(struct cluster *cl, char *dead)
{
	struct cluster_liveness *cn = cl->liveness;
	uint64_t now = clock_mono_ms();
	struct known_node *silent = NULL;
	bool lowest = true;

	for (size_t i = 0; i < cn->n; i++) {
		struct known_node *k = &cn->v[i];

		if (now - k->seen_ms < ALIVE_SILENT_MS)
			lowest = lowest && strcmp(cl->node, k->name) < 0;
		else if (!k->adopted)
			silent = k;
	}
	if (silent != NULL && lowest) {
		silent->adopted = true;
		snprintf(dead, CLUSTER_NODE_MAX + 1, "%s", silent->name);
	}
	return silent != NULL && lowest;
}

static void *heartbeat(void *arg)
{
	struct cluster *cl = arg;
	char dead[CLUSTER_NODE_MAX + 1];

	while (!atomic_load(&cl->liveness->stop)) {
		bool ok = kvStore_PutString(NULL, cl->liveness->kv, cl->node, "alive") == NATS_OK;

		if (!ok)
			log_debug("cluster: heartbeat not written (NATS unreachable?)");
		if (!ok || !poll_nodes(cl))
			forgive_all(cl->liveness, clock_mono_ms());
		else
			while (next_dead(cl, dead))
				cluster_sessions_adopt_node(cl, dead);
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
	} else if (pthread_create(&cl->liveness->thread, NULL, heartbeat, cl) != 0) {
		snprintf(err, errlen, "cluster: cannot start the heartbeat thread");
		rc = MOAT_E_NOMEM;
	}
	cl->liveness->running = rc == MOAT_OK;
	return rc;
}

void cluster_liveness_stop(struct cluster *cl)
{
	struct cluster_liveness *cn = cl->liveness;

	if (cn == NULL)
		return;
	atomic_store(&cn->stop, true);
	if (cn->running)
		pthread_join(cn->thread, NULL);
	if (cn->kv != NULL && atomic_load(&cl->connected))
		kvStore_Delete(cn->kv, cl->node); /* a clean leave */
	kvStore_Destroy(cn->kv);
	free(cn);
	cl->liveness = NULL;
}
