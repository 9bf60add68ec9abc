/*
 * Store-and-forward bridges to other MQTT brokers (docs/bridge.md): one
 * thread per `connection` section drives two libmoat clients, one to the
 * remote broker and one into this broker through a link the host opens
 * (struct bridge_host), and moves messages between them by the section's
 * `topic` lines. A message is acknowledged to the side it came from only
 * once the other side's client holds it in its queue file. The broker
 * calls this module only when the configuration has bridges.
 */
#ifndef MOAT_BRIDGE_BRIDGE_H
#define MOAT_BRIDGE_BRIDGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "conf/config.h"

/* What the broker provides: <connect_local> returns a connected stream
 * socket into the broker (its other end an internal connection, see
 * broker_connect_internal), or -1. Called on the bridges' threads. */
struct bridge_host {
	int (*connect_local)(void *arg, const char *peer);
	void *arg;
};

/* One bridge's state for $SYS and /metrics. */
struct bridge_status {
	const char *name;	    /* the connection name; valid while the set runs */
	bool connected;		    /* to the remote broker */
	uint64_t msgs_out, msgs_in; /* forwarded to the remote / brought in */
	uint64_t msgs_dropped;	    /* over bridge_max_packet_size, refused, or QoS 0 while down */
	uint64_t queued;	    /* waiting for the remote (outbound, QoS 1/2 included) */
};

struct bridge_set;

/* Starts every bridge of <cfg> (borrowed until bridges_stop). Queue files go
 * to the persistence directory when persistence is on. MOAT_OK with the set
 * in <*out> (NULL when <cfg> has no bridge), or an error already logged
 * (a TLS file that does not load, a queue file that cannot be opened). */
int bridges_start(struct bridge_set **out, const struct moat_config *cfg,
		  const struct bridge_host *host);

/* Stops every bridge's thread and clients; NULL is fine. Before the
 * broker's workers stop, so the local links close cleanly. The counters
 * stay readable until bridges_free(). */
void bridges_stop(struct bridge_set *set);

/* Frees the set (stopping it first if needed); NULL is fine. */
void bridges_free(struct bridge_set *set);

/* Fills up to <max> entries of <out> (may be NULL when <max> is 0); returns
 * the number of bridges. Any thread, until bridges_free(); NULL set: 0. */
size_t bridges_status(const struct bridge_set *set, struct bridge_status *out, size_t max);

#endif
