/*
 * A session's entry in the cluster's sessions bucket (docs/cluster.md,
 * "Sessions"): which node owns it, whether its client is connected (or since
 * when it is not), and what another node needs to resume it or to end it
 * when its owner dies: protocol version, session expiry, the identity it
 * connected with, its subscriptions with their options and identifiers, and
 * its Will with the Will delay. Entries are read from NATS: decoding checks
 * every length and value.
 */
#ifndef MOAT_CLUSTER_SNAPSHOT_H
#define MOAT_CLUSTER_SNAPSHOT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <moat/bytes.h>

#include "base/buf.h"
#include "codec/packet.h"

struct msg;

struct snap_sub {
	struct moat_bytes filter;
	struct mqtt_sub_opts opts;
	uint32_t sub_id; /* 0 = none */
};

struct snapshot {
	struct moat_bytes owner;  /* node name */
	bool online;		  /* its client is connected to <owner> */
	bool resumed;		  /* <owner> resumed it from the previous owner, which hands over */
	uint64_t offline_wall_ms; /* when it went offline (wall clock); 0 while online */
	uint8_t version;	  /* MQTT_V31, MQTT_V311 or MQTT_V5 */
	uint32_t expiry_s;	  /* UINT32_MAX = never */
	bool has_username;
	struct moat_bytes username;
	struct msg *will; /* NULL = none; decoding creates it (not remote) */
	uint32_t will_delay_s;
	struct snap_sub *subs; /* decoding allocates the array */
	size_t sub_n;
};

/* Writes <s> into <out> (emptied first), its Will as a cluster message of <s>'s owner.
 * MOAT_OK, MOAT_E_INVAL (a name or filter too long) or MOAT_E_NOMEM. */
int snapshot_encode(struct buf *out, const struct snapshot *s);

/* Reads <data> into <s>, whose byte views point into <data>. MOAT_OK,
 * MOAT_E_MALFORMED with a static reason in *<why>, or MOAT_E_NOMEM. Free
 * with snapshot_fini either way. */
int snapshot_decode(struct moat_bytes data, struct snapshot *s, const char **why);

/* Frees what decoding allocated (the Will's reference, the subscriptions). */
void snapshot_fini(struct snapshot *s);

#endif
