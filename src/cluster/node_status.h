/*
 * A node's status as it lies in the cluster's "<cluster>_nodes" key-value
 * bucket (docs/cluster.md, "Node status"): key = node name, value = one
 * JSON object, written by every node every NODE_STATUS_INTERVAL_MS
 * (nodes.c) and read by the other nodes ($SYS cluster totals) and by
 * `moat ctl cluster status`:
 *
 *   {"node":"a","started":1764590000,"updated":1764590012345,"clients":3,
 *    "sessions":5,"subscriptions":7,"messages_in":120,"messages_out":118}
 *
 * started: when the node started (Unix seconds); updated: when it wrote the
 * value (Unix milliseconds, its clock); clients: connected now; sessions:
 * of connected and disconnected clients; subscriptions: held by them;
 * messages_in/out: PUBLISH packets received from and sent to its clients.
 * Unknown members are ignored, so later versions may add some. A node
 * whose entry the NATS server has not stored for NODE_SILENT_MS is silent
 * (stopped, cut off, or its clock is off by that much).
 */
#ifndef MOAT_CLUSTER_NODE_STATUS_H
#define MOAT_CLUSTER_NODE_STATUS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "conf/cluster_conf.h"

enum { NODE_STATUS_INTERVAL_MS = 2000, NODE_SILENT_MS = 10000 };

struct node_status {
	char node[CLUSTER_NODE_MAX + 1];
	uint64_t started_s, updated_ms;
	uint64_t clients, sessions, subscriptions, messages_in, messages_out;
};

/* Writes <ns> as the JSON value into <out> (NUL-terminated); returns its
 * length, or 0 when <cap> is too small. */
size_t node_status_format(const struct node_status *ns, char *out, size_t cap);

/* Reads a value from the bucket (untrusted bytes: any of them may be
 * damaged or missing). True when it is an object with a valid "node" name;
 * missing or malformed figures read as 0. */
bool node_status_parse(const char *json, size_t len, struct node_status *ns);

/* Whether a node whose entry NATS stored at <stored_ms> is alive at <now_ms>
 * (Unix milliseconds): stored within NODE_SILENT_MS. */
bool node_status_alive(uint64_t stored_ms, uint64_t now_ms);

#endif
