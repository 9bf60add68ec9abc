/*
 * MQTT topics as NATS subjects (docs/cluster.md, "Subject mapping"). Each
 * topic level becomes one subject token; the levels' '/' become '.'.
 * Inside a token, the bytes A-Z a-z 0-9 '-' '_' stand for themselves and
 * every other byte is written "=XX" (two upper-case hex digits), so '.',
 * '*', '>', spaces, '$', '=' and non-ASCII bytes never reach NATS raw; an
 * empty level is the token "=". The result is also a valid JetStream
 * key-value key, so retained messages use the same names. The mapping is a
 * bijection between topics and well-formed token strings.
 */
#ifndef MOAT_CLUSTER_SUBJECT_H
#define MOAT_CLUSTER_SUBJECT_H

#include <stdbool.h>

#include <moat/bytes.h>

#include "base/buf.h"

/* Appends the tokens of <topic> (no wildcards expected) to <out>.
 * MOAT_OK or MOAT_E_NOMEM. */
int subject_from_topic(struct buf *out, struct moat_bytes topic);

/* Appends the topic that <tokens> encode to <out>. MOAT_OK, MOAT_E_MALFORMED
 * (not a string subject_from_topic makes) or MOAT_E_NOMEM. */
int subject_to_topic(struct buf *out, struct moat_bytes tokens);

/* Appends the NATS filter for MQTT filter <filter> to <out>: '+' becomes '*'
 * and '#' becomes '>'. *<exact> tells whether it matches exactly the topics
 * the MQTT filter does. It does not when a first-level wildcard also
 * matches '$' topics (the receiver must filter again), nor when a final
 * "/#" misses its parent level ("a/#" matches "a"; subscribe to the subject
 * without the last token too). MOAT_OK or MOAT_E_NOMEM. */
int subject_from_filter(struct buf *out, struct moat_bytes filter, bool *exact);

#endif
