/*
 * Joining the cluster (docs/cluster.md, "When NATS is unreachable"): the
 * steps that need NATS (the shares' stream, the watches, the sessions
 * bucket, the nodes' status, the heartbeat), a wait for the other nodes'
 * interest (JOIN_LOAD_MS at most), then the node's consumer; exports start
 * once that interest is read, however long it takes (before, a message
 * would miss the nodes not read yet). At start with NATS there, a join
 * that fails stops the node (a configuration JetStream refuses); started
 * without NATS, the node joins on a thread of its own once NATS is
 * connected, and tries again after a failure (1 s doubling to 30 s) until
 * it has joined or stops. A join resumes at the step that failed, whose
 * half-made state is undone first: nothing is started twice.
 */
#include "cluster/cluster_int.h"

#include <stdio.h>
#include <unistd.h>

#include <moat/error.h>

#include "base/clock.h"
#include "base/log.h"
#include "broker/broker.h"

/* How long a join waits for the other nodes' interest, polling every
 * JOIN_POLL_US (also for the connection, and for the end of a pause); the
 * pause after a failed join, doubling up to JOIN_RETRY_MAX_MS. */
enum {
	JOIN_LOAD_MS = 5000,
	JOIN_POLL_US = 100000,
	JOIN_RETRY_MIN_MS = 1000,
	JOIN_RETRY_MAX_MS = 30000
};

static int start_retained(struct cluster *cl, char *err, size_t errlen)
{
	char bucket[CLUSTER_NAME_MAX + 16];

	snprintf(bucket, sizeof(bucket), "%s_retained", cl->name);
	return cluster_retained_start(cl, bucket, err, errlen);
}

static int start_interest(struct cluster *cl, char *err, size_t errlen)
{
	char bucket[CLUSTER_NAME_MAX + 16];

	snprintf(bucket, sizeof(bucket), "%s_interest", cl->name);
	return cluster_interest_start(cl, bucket, err, errlen);
}

/* Only the watch: the filters (cluster_interest_init) stay. */
static void stop_interest_watch(struct cluster *cl)
{
	cluster_watch_stop(&cl->interest);
}

static int start_sessions(struct cluster *cl, char *err, size_t errlen)
{
	return cluster_sessions_start(cl, cl->name, err, errlen);
}

static int start_nodes(struct cluster *cl, char *err, size_t errlen)
{
	return cluster_nodes_start(cl, cl->name, err, errlen);
}

static int start_liveness(struct cluster *cl, char *err, size_t errlen)
{
	return cluster_liveness_start(cl, cl->name, err, errlen);
}

/* A step and what undoes a failed start of it (NULL: nothing to undo).
 * Each start makes its state usable by other threads (a watch thread, a
 * subscription) last, so a failed one is undone before anything used it. */
static const struct join_step {
	int (*start)(struct cluster *cl, char *err, size_t errlen);
	void (*undo)(struct cluster *cl);
} join_steps[] = {
    {cluster_shares_start, NULL},	   {start_retained, cluster_retained_stop},
    {start_interest, stop_interest_watch}, {start_sessions, cluster_sessions_unstart},
    {start_nodes, cluster_nodes_stop},	   {start_liveness, cluster_liveness_stop},
};

/* Joins from the step where the last attempt stopped. Once the other nodes'
 * interest is read (or after JOIN_LOAD_MS), exports go to them: the
 * workers are woken to send what waited. MOAT_OK or an error with <err>. */
static int join_cluster(struct cluster *cl, char *err, size_t errlen)
{
	const size_t n = sizeof(join_steps) / sizeof(join_steps[0]);
	uint64_t deadline;
	int rc;

	for (; cl->join_done < n; cl->join_done++) {
		const struct join_step *step = &join_steps[cl->join_done];

		rc = step->start(cl, err, errlen);
		if (rc < 0) {
			if (step->undo != NULL)
				step->undo(cl);
			return rc;
		}
	}
	deadline = clock_mono_ms() + JOIN_LOAD_MS;
	while (!atomic_load(&cl->interest.loaded) && clock_mono_ms() < deadline &&
	       !atomic_load(&cl->join_stop))
		usleep(JOIN_POLL_US);
	atomic_store(&cl->joined, true);
	rc = cluster_consume_once_ready(cl, err, errlen);
	if (rc < 0)
		return rc;
	if (atomic_load(&cl->interest.loaded))
		log_notice("cluster: node %s joined cluster %s", cl->node, cl->name);
	else
		log_notice("cluster: node %s joined cluster %s; the other nodes' interest is not "
			   "read yet: local clients' messages wait for it",
			   cl->node, cl->name);
	cluster_join_exports(cl);
	return MOAT_OK;
}

void cluster_join_exports(struct cluster *cl)
{
	if (!atomic_load(&cl->joined) || !atomic_load(&cl->interest.loaded) ||
	    atomic_exchange(&cl->exporting, true))
		return;
	/* what waited goes (cluster_flush) */
	for (unsigned i = 0; i < cl->b->nworkers; i++)
		worker_wake(&cl->b->workers[i]);
}

/* Sleeps <ms>, or less when the node stops. */
static void pause_join(struct cluster *cl, uint64_t ms)
{
	uint64_t until = clock_mono_ms() + ms;

	while (clock_mono_ms() < until && !atomic_load(&cl->join_stop))
		usleep(JOIN_POLL_US);
}

/* NATS was unreachable at start: joins once it is connected, again after a
 * failure until it has joined or the node stops. */
static void *join_later(void *arg)
{
	struct cluster *cl = arg;
	uint64_t pause_ms = JOIN_RETRY_MIN_MS;
	char err[512];

	for (;;) {
		while (!atomic_load(&cl->connected) && !atomic_load(&cl->join_stop))
			usleep(JOIN_POLL_US);
		if (atomic_load(&cl->join_stop) || join_cluster(cl, err, sizeof(err)) == MOAT_OK ||
		    atomic_load(&cl->join_stop))
			break;
		log_err("%s; joining again in %llu s", err, (unsigned long long)pause_ms / 1000);
		pause_join(cl, pause_ms);
		pause_ms = pause_ms * 2 < JOIN_RETRY_MAX_MS ? pause_ms * 2 : JOIN_RETRY_MAX_MS;
	}
	return NULL;
}

int cluster_join_start(struct cluster *cl, char *err, size_t errlen)
{
	if (atomic_load(&cl->connected))
		return join_cluster(cl, err, errlen);
	cl->join_running = pthread_create(&cl->join_thread, NULL, join_later, cl) == 0;
	if (!cl->join_running) {
		snprintf(err, errlen, "cluster: cannot start the thread that joins later");
		return MOAT_E_NOMEM;
	}
	return MOAT_OK;
}

void cluster_join_stop(struct cluster *cl)
{
	if (!cl->join_running)
		return;
	/* a join under way fails at its next request */
	atomic_store(&cl->join_stop, true);
	if (!atomic_load(&cl->joined) && cl->nc != NULL) {
		natsConnection_Close(cl->nc);
		atomic_store(&cl->connected, false); /* nothing waits for NATS then */
	}
	pthread_join(cl->join_thread, NULL);
	cl->join_running = false;
}
