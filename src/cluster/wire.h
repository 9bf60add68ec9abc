/*
 * A message as it crosses the cluster (docs/cluster.md, "On the wire"): the
 * NATS message's data is one byte of format (1), the origin node's name
 * (u8 length, then the name) and the message as the durable store writes it
 * (record.h's rec_msg, with its CRC): topic, payload, QoS, retain flag,
 * wall-clock expiry, the forwarded v5 properties and, for retained
 * messages under ACLs, its author. Decoding reads bytes from the network:
 * every length is checked.
 */
#ifndef MOAT_CLUSTER_WIRE_H
#define MOAT_CLUSTER_WIRE_H

#include <stdbool.h>

#include <moat/bytes.h>

#include "base/buf.h"
#include "broker/broker.h"

/* Writes <m> from node <node> into <out> (emptied first). MOAT_OK or MOAT_E_NOMEM. */
int wire_encode(struct buf *out, const char *node, const struct msg *m);

/* Reads <data>: *<node> gets a view of the origin's name, *<m> a new
 * message (refs = 1, marked remote). MOAT_OK, MOAT_E_MALFORMED with a static
 * reason in *<why>, or MOAT_E_NOMEM. */
int wire_decode(struct moat_bytes data, struct moat_bytes *node, struct msg **m, const char **why);

/* Whether <topic> is the broker's own ("$SYS" or under "$SYS/"): it stays
 * on its node, never crossing the cluster. */
bool wire_topic_is_sys(struct moat_bytes topic);

/* A node's interest (interest.c) as its bucket entry holds it: each filter
 * as a big-endian u16 length and its bytes, one after another. */
/* Appends <f> to <out>. MOAT_OK, MOAT_E_INVAL (longer than 65535) or MOAT_E_NOMEM. */
int wire_put_filter(struct buf *out, struct moat_bytes f);
/* Calls <fn> (may be NULL: only checks) for every filter in <value>; false
 * when <value> is malformed (then <fn> may have seen the filters before the
 * damage: check first). */
bool wire_each_filter(struct moat_bytes value, void (*fn)(void *ctx, struct moat_bytes f),
		      void *ctx);
/* Replaces filter list <old> by <next> (both well-formed): calls <add> for
 * every filter of <next> first, then <drop> for every filter of <old> not in
 * <next>, so a filter in both is never missing in between. MOAT_OK or
 * MOAT_E_NOMEM (then <add> saw every new filter, <drop> none). */
int wire_replace_filters(struct moat_bytes old, struct moat_bytes next,
			 void (*add)(void *ctx, struct moat_bytes f),
			 void (*drop)(void *ctx, struct moat_bytes f), void *ctx);

#endif
