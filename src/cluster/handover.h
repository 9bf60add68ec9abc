/*
 * A message handed over with its session (docs/cluster.md, "Sessions"):
 * when another node takes a persistent session over, the old owner sends it
 * each queued or in-flight QoS 1/2 message on the new owner's stream
 * subject. The NATS message's data: format byte 2 (wire.h's messages are
 * format 1), the delivery's QoS (1 or 2), its retain flag (0 or 1), the
 * number of subscription identifiers (0..MAX_SUB_IDS) and each as a
 * big-endian u32 (1..268435455), the session's key (u16 length, then the
 * bytes: the client id's subject tokens), then the message as wire.h
 * encodes it. It lives in the data, not in a header, so the outbound queue
 * and its store records carry it as they are. Decoding reads bytes from the
 * network: every length and value is checked.
 */
#ifndef MOAT_CLUSTER_HANDOVER_H
#define MOAT_CLUSTER_HANDOVER_H

#include <stdbool.h>
#include <stdint.h>

#include <moat/bytes.h>

#include "base/buf.h"
#include "broker/broker.h"

struct handover {
	uint8_t qos;
	bool retain;
	uint8_t sub_id_count;
	uint32_t sub_ids[MAX_SUB_IDS];
	struct moat_bytes key;	/* views into the data */
	struct moat_bytes wire; /* the message: wire_decode() it */
};

/* Whether <data> is a handed-over message (its format byte). */
bool handover_is(struct moat_bytes data);

/* Writes delivery <d> (QoS 1/2) of the session with key <key>, sent by node
 * <node>, into <out> (emptied first); <scratch> is the caller's. MOAT_OK,
 * MOAT_E_INVAL (QoS 0, key longer than 65535 bytes) or MOAT_E_NOMEM. */
int handover_encode(struct buf *out, struct buf *scratch, const char *node, const char *key,
		    const struct delivery *d);

/* Reads <data> into <h>. MOAT_OK or MOAT_E_MALFORMED with a static reason
 * in *<why>. */
int handover_decode(struct moat_bytes data, struct handover *h, const char **why);

#endif
