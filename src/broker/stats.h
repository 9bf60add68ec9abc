/*
 * A snapshot of the broker's figures, summed over every worker: what $SYS
 * publishes and /metrics renders, so both say the same. Taking one reads the
 * workers' relaxed counters without locks and holds each shared lock (the
 * session table, the subscription index, the retained store) only long
 * enough to read a count. Rendering works on the copy.
 */
#ifndef MOAT_BROKER_STATS_H
#define MOAT_BROKER_STATS_H

#include <stdbool.h>
#include <stdint.h>

#include "cluster/cluster.h"
#include "store/store.h"

struct broker;
struct bridge_status;

/* One listener's traffic; msgs_* and pub_bytes_* count PUBLISH packets and
 * their payload bytes by QoS, pkts_* and bytes_* every MQTT packet. */
struct stats_listener {
	uint16_t port;
	uint64_t connections; /* open sockets now */
	uint64_t accepted;    /* sockets accepted */
	uint64_t msgs_in[3], msgs_out[3], pub_bytes_in[3], pub_bytes_out[3];
	uint64_t pkts_in, pkts_out, bytes_in, bytes_out;
};

struct stats {
	const char *version; /* static */
	uint64_t uptime_s;
	unsigned nlisteners;
	struct stats_listener *listeners; /* the configured ones, in order; one per port */
	struct stats_listener total;	  /* all of them, and connections without one */
	uint64_t clients_connected, clients_disconnected, clients_maximum;
	uint64_t clients_expired, clients_refused, connects;
	uint64_t sessions; /* clients/total: connected and disconnected */
	uint64_t publish_dropped, publish_refused, auth_failures, acl_denials;
	uint64_t queued_msgs, queued_bytes, inflight_msgs, inflight_bytes;
	uint64_t subscriptions, shared_subscriptions, retained;
	uint64_t heap_current, heap_maximum; /* bytes; 0 when the allocator does not say */
	bool has_store;			     /* persistence on: <store> is filled */
	bool store_refusing;
	struct store_stats store;
	/* bridges (src/bridge/): one entry per connection section */
	struct bridge_status *bridges;
	size_t nbridges;
	/* the cluster (src/cluster/), when there is one: its link to NATS and
	 * the live nodes' totals (nodes.c) */
	bool has_cluster;
	struct cluster_link cluster_link;
	struct cluster_totals cluster;
};

/* Fills <st> from <b> at <now_ms> (monotonic). Any thread may call it while
 * the workers run or after they stopped, until broker_fini(). MOAT_OK or
 * MOAT_E_NOMEM; stats_fini() frees what it allocated either way. */
int stats_collect(struct broker *b, struct stats *st, uint64_t now_ms);
/* Frees what stats_collect() allocated in <st>; calling it twice is fine. */
void stats_fini(struct stats *st);

/* Messages the broker holds: retained, queued and in flight. */
static inline uint64_t stats_stored_msgs(const struct stats *st)
{
	return st->retained + st->queued_msgs + st->inflight_msgs;
}

/* Adds a PUBLISH count or byte count over the three QoS levels. */
static inline uint64_t stats_qos_sum(const uint64_t v[3])
{
	return v[0] + v[1] + v[2];
}

#endif
