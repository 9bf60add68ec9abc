/*
 * Node status and cluster totals (docs/cluster.md, "Node status"): worker 0
 * writes this node's figures (node_status.h) under its name in the bucket
 * "<cluster>_nodes" every NODE_STATUS_INTERVAL_MS, as a plain NATS publish
 * on the bucket's subject (no JetStream acknowledgement: the worker never
 * waits for NATS, not even when many JetStream publishes are pending, and
 * a lost status is replaced 2 s later), and a thread watches the bucket,
 * keeping every node's last value, this node's included, for the $SYS
 * and metrics totals (cluster_totals).
 */
#include "cluster/cluster_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <moat/error.h>

#include "base/clock.h"
#include "base/log.h"
#include "broker/broker.h"
#include "broker/stats.h"
#include "cluster/node_status.h"

/* One node's last value and when NATS stored it (wall clock, ms). */
struct node_entry {
	struct node_entry *next;
	struct node_status st;
	uint64_t stored_ms;
};

static struct log_limiter status_log;

static struct node_entry **entry_find(struct cluster *cl, const char *name)
{
	struct node_entry **pp;

	for (pp = &cl->node_list; *pp != NULL; pp = &(*pp)->next)
		if (strcmp((*pp)->st.node, name) == 0)
			break;
	return pp;
}

/* A node's value changed or was deleted (the watch thread). */
static void on_node(struct cluster *cl, kvEntry *e)
{
	const char *name = kvEntry_Key(e);
	struct node_status st;
	struct node_entry **pp, *x;
	bool put = kvEntry_Operation(e) == kvOp_Put;

	if (put && (!node_status_parse(kvEntry_ValueString(e), (size_t)kvEntry_ValueLen(e), &st) ||
		    strcmp(st.node, name) != 0)) {
		log_warn("cluster: ignored node %s's malformed status", name);
		return;
	}
	pthread_mutex_lock(&cl->nodes_lock);
	pp = entry_find(cl, name);
	x = *pp;
	if (!put && x != NULL) {
		*pp = x->next;
		free(x);
	} else if (put) {
		if (x == NULL && (x = calloc(1, sizeof(*x))) != NULL) {
			x->next = cl->node_list;
			cl->node_list = x;
		}
		if (x != NULL) {
			x->st = st;
			x->stored_ms = (uint64_t)(kvEntry_Created(e) / 1000000);
		} else {
			log_warn("cluster: out of memory: node %s is not counted", name);
		}
	}
	pthread_mutex_unlock(&cl->nodes_lock);
}

void cluster_tick(struct broker *b, uint64_t now_ms)
{
	struct cluster *cl = b->cluster;
	struct node_status ns = {.started_s = (uint64_t)b->started_wall_s};
	char subject[sizeof(cl->nodes_prefix) + CLUSTER_NODE_MAX], value[512];
	struct stats st;
	natsStatus s = NATS_NO_MEMORY;
	size_t len;

	if (cl == NULL || !atomic_load(&cl->joined) || now_ms < cl->next_status_ms)
		return;
	cl->next_status_ms = now_ms + NODE_STATUS_INTERVAL_MS;
	if (stats_collect(b, &st, now_ms) == MOAT_OK) {
		snprintf(ns.node, sizeof(ns.node), "%s", cl->node);
		ns.updated_ms = clock_wall_ms();
		ns.clients = st.clients_connected;
		ns.sessions = st.sessions;
		ns.subscriptions = st.subscriptions;
		ns.messages_in = stats_qos_sum(st.total.msgs_in);
		ns.messages_out = stats_qos_sum(st.total.msgs_out);
		len = node_status_format(&ns, value, sizeof(value));
		snprintf(subject, sizeof(subject), "%s%s", cl->nodes_prefix, cl->node);
		if (len > 0)
			s = natsConnection_Publish(cl->nc, subject, value, (int)len);
	}
	stats_fini(&st);
	if (s != NATS_OK && log_limiter_allow(&status_log, 1, 60))
		log_warn("cluster: cannot write this node's status: %s", natsStatus_GetText(s));
}

bool cluster_totals(struct broker *b, struct cluster_totals *t)
{
	struct cluster *cl = b->cluster;
	uint64_t now = clock_wall_ms();

	memset(t, 0, sizeof(*t));
	if (cl == NULL)
		return false;
	if (!atomic_load(&cl->joined))
		return true; /* no figures yet */
	pthread_mutex_lock(&cl->nodes_lock);
	for (const struct node_entry *x = cl->node_list; x != NULL; x = x->next) {
		t->nodes++;
		if (!node_status_alive(x->stored_ms, now))
			continue; /* silent: its figures are stale */
		t->nodes_alive++;
		t->clients_connected += x->st.clients;
		t->sessions += x->st.sessions;
		t->subscriptions += x->st.subscriptions;
		t->messages_received += x->st.messages_in;
		t->messages_sent += x->st.messages_out;
	}
	pthread_mutex_unlock(&cl->nodes_lock);
	return true;
}

int cluster_nodes_start(struct cluster *cl, const char *cluster_name, char *err, size_t errlen)
{
	char bucket[CLUSTER_NAME_MAX + 8];

	snprintf(bucket, sizeof(bucket), "%s_nodes", cluster_name);
	snprintf(cl->nodes_prefix, sizeof(cl->nodes_prefix), "$KV.%s.", bucket);
	pthread_mutex_init(&cl->nodes_lock, NULL);
	cl->nodes_started = true;
	return cluster_watch_start(cl, &cl->nodes_watch, bucket, on_node, err, errlen);
}

void cluster_nodes_stop(struct cluster *cl)
{
	if (!cl->nodes_started)
		return;
	cluster_watch_stop(&cl->nodes_watch);
	while (cl->node_list != NULL) {
		struct node_entry *x = cl->node_list;

		cl->node_list = x->next;
		free(x);
	}
	pthread_mutex_destroy(&cl->nodes_lock);
	cl->nodes_started = false;
}
