/*
 * Which nodes are alive (docs/cluster.md, "Sessions"): every node writes its
 * name into the bucket "<cluster>_nodes" every second from a thread of its
 * own, and watches the bucket (watch.c). A node not heard from for
 * NODE_SILENT_MS is dead; the living node with the lowest name then adopts
 * the sessions the dead node owned (sessions.c). A node that stops cleanly
 * deletes its key: its sessions wait for it, as its store keeps them.
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
enum { HEARTBEAT_MS = 1000, NODE_SILENT_MS = 6000, MAX_KNOWN = 256 };

struct known_node {
	char name[CLUSTER_NODE_MAX + 1];
	uint64_t seen_ms; /* monotonic: its last heartbeat */
	bool adopted;	  /* its sessions were taken since it went silent */
};

struct cluster_nodes {
	pthread_mutex_t lock; /* for <v>, <n> */
	struct known_node v[MAX_KNOWN];
	size_t n;
	pthread_t thread;
	bool running;
	atomic_bool stop;
};

static struct known_node *find(struct cluster_nodes *cn, const char *name)
{
	for (size_t i = 0; i < cn->n; i++)
		if (strcmp(cn->v[i].name, name) == 0)
			return &cn->v[i];
	return NULL;
}

/* A heartbeat or a clean leave (the watch thread). */
static void on_node(struct cluster *cl, kvEntry *e)
{
	struct cluster_nodes *cn = cl->liveness;
	const char *name = kvEntry_Key(e);
	struct known_node *k;

	if (strcmp(name, cl->node) == 0 || strlen(name) > CLUSTER_NODE_MAX)
		return;
	pthread_mutex_lock(&cn->lock);
	k = find(cn, name);
	if (kvEntry_Operation(e) != kvOp_Put) {
		if (k != NULL)
			*k = cn->v[--cn->n]; /* left: it keeps its sessions */
	} else if (k != NULL) {
		k->seen_ms = clock_mono_ms();
		k->adopted = false;
	} else if (cn->n < MAX_KNOWN) {
		k = &cn->v[cn->n++];
		snprintf(k->name, sizeof(k->name), "%s", name);
		k->seen_ms = clock_mono_ms();
		k->adopted = false;
	}
	pthread_mutex_unlock(&cn->lock);
}

/* The next silent node whose sessions this node must adopt (the living node
 * with the lowest name does), copied into <dead>; false when none. */
static bool next_dead(struct cluster *cl, char *dead)
{
	struct cluster_nodes *cn = cl->liveness;
	uint64_t now = clock_mono_ms();
	struct known_node *silent = NULL;
	bool lowest = true;

	pthread_mutex_lock(&cn->lock);
	for (size_t i = 0; i < cn->n; i++) {
		struct known_node *k = &cn->v[i];

		if (now - k->seen_ms < NODE_SILENT_MS)
			lowest = lowest && strcmp(cl->node, k->name) < 0;
		else if (!k->adopted)
			silent = k;
	}
	if (silent != NULL && lowest) {
		silent->adopted = true;
		snprintf(dead, CLUSTER_NODE_MAX + 1, "%s", silent->name);
	}
	pthread_mutex_unlock(&cn->lock);
	return silent != NULL && lowest;
}

static void *heartbeat(void *arg)
{
	struct cluster *cl = arg;
	char dead[CLUSTER_NODE_MAX + 1];

	while (!atomic_load(&cl->liveness->stop)) {
		if (kvStore_PutString(NULL, cl->liveness_watch.kv, cl->node, "alive") != NATS_OK)
			log_debug("cluster: heartbeat not written (NATS unreachable?)");
		while (next_dead(cl, dead))
			cluster_sessions_adopt_node(cl, dead);
		for (int i = 0; i < HEARTBEAT_MS / 100 && !atomic_load(&cl->liveness->stop); i++)
			usleep(100000);
	}
	return NULL;
}

int cluster_nodes_start(struct cluster *cl, const char *name, char *err, size_t errlen)
{
	char bucket[CLUSTER_NAME_MAX + 16];
	int rc;

	cl->liveness = calloc(1, sizeof(*cl->liveness));
	if (cl->liveness == NULL) {
		snprintf(err, errlen, "cluster: out of memory");
		return MOAT_E_NOMEM;
	}
	pthread_mutex_init(&cl->liveness->lock, NULL);
	snprintf(bucket, sizeof(bucket), "%s_nodes", name);
	rc = cluster_watch_start(cl, &cl->liveness_watch, bucket, on_node, err, errlen);
	if (rc == MOAT_OK && pthread_create(&cl->liveness->thread, NULL, heartbeat, cl) != 0) {
		snprintf(err, errlen, "cluster: cannot start the heartbeat thread");
		rc = MOAT_E_NOMEM;
	}
	cl->liveness->running = rc == MOAT_OK;
	return rc;
}

void cluster_nodes_stop(struct cluster *cl)
{
	struct cluster_nodes *cn = cl->liveness;

	if (cn == NULL)
		return;
	atomic_store(&cn->stop, true);
	if (cn->running)
		pthread_join(cn->thread, NULL);
	if (cl->liveness_watch.kv != NULL)
		kvStore_Delete(cl->liveness_watch.kv, cl->node); /* a clean leave */
	cluster_watch_stop(&cl->liveness_watch);
	pthread_mutex_destroy(&cn->lock);
	free(cn);
	cl->liveness = NULL;
}
