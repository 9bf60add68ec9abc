/*
 * What cluster.c, gate.c and retained.c share: the node's NATS handles and
 * each worker's export state.
 */
#ifndef MOAT_CLUSTER_CLUSTER_INT_H
#define MOAT_CLUSTER_CLUSTER_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include <nats/nats.h>

#include "base/buf.h"
#include "cluster/cluster.h"
#include "conf/cluster_conf.h"

/* One worker's share: written by that worker, except <stored>. */
struct cluster_worker {
	uint64_t issued;	  /* QoS 1/2 messages exported */
	_Atomic uint64_t stored;  /* the highest of them JetStream acknowledged */
	struct conn *held;	  /* connections whose output waits for <stored> */
	struct buf data, subject; /* scratch for export */
};

struct cluster {
	struct broker *b;
	char node[CLUSTER_NODE_MAX + 1];
	char msg_prefix[CLUSTER_NAME_MAX + 8]; /* "<cluster>.m." */
	char kv_prefix[CLUSTER_NAME_MAX + 32]; /* "$KV.<cluster>_retained." */
	natsOptions *opts;
	natsConnection *nc;
	jsCtx *js;
	natsSubscription *sub; /* the node's durable consumer */
	kvStore *kv;
	kvWatcher *watcher;
	pthread_t watch_thread;
	bool watching;
	struct cluster_worker *w; /* one per worker */
};

/* The header that tells the acknowledgement handler which worker's ticket a
 * QoS 1/2 message carries ("<worker> <ticket>"). */
#define CLUSTER_GATE_HEADER "Moat-Gate"

/* retained.c: mirrors the cluster's retained bucket into the local retained
 * store (a thread watching the bucket). MOAT_OK or an error with <err>. */
int cluster_retained_start(struct cluster *cl, const char *bucket, char *err, size_t errlen);
void cluster_retained_stop(struct cluster *cl);

/* Hands <m> (its reference) to worker 0: routed, or only stored as retained
 * when <retained_only>. False when it could not (then <m> is released). */
bool cluster_post(struct cluster *cl, struct msg *m, bool retained_only);

#endif
