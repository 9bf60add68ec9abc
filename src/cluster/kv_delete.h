/*
 * The subject of a key-value entry, and a conditional delete of one:
 * nats.c 3.4's kvStore_Delete has no expected revision, so the delete
 * marker (an empty message with the header "KV-Operation: DEL") is
 * published on the bucket's subject
 * "$KV.<bucket>.<key>" with "Nats-Expected-Last-Subject-Sequence: <rev>",
 * as the other NATS clients do it: JetStream stores it only while <rev> is
 * still the key's last revision, so a write another node made since then
 * (a claim) is never deleted.
 */
#ifndef MOAT_CLUSTER_KV_DELETE_H
#define MOAT_CLUSTER_KV_DELETE_H

#include <stdint.h>

#include <nats/nats.h>

#include "base/buf.h"

/* "$KV.<bucket>.<key>", the subject of <key>'s entries, as a C string in
 * <out> (emptied first); NULL when out of memory. */
const char *cluster_kv_subject(struct buf *out, const char *bucket, const char *key);

/* Deletes <key> of <bucket> if its last revision is <rev>, waiting for
 * JetStream as long as <js> does. NATS_OK; another status when it was not
 * deleted (*<jerr>: JetStream's error, JSStreamWrongLastSequenceErr when
 * the key changed since <rev>). */
natsStatus cluster_kv_delete_at(jsCtx *js, const char *bucket, const char *key, uint64_t rev,
				jsErrCode *jerr);

/* cluster_kv_delete_at without waiting: the marker is published
 * asynchronously through <js> (js_PublishAsyncComplete waits for all);
 * <js>'s asynchronous error handler, if any, sees a refused one. NATS_OK
 * when it was sent. */
natsStatus cluster_kv_delete_at_async(jsCtx *js, const char *bucket, const char *key, uint64_t rev);

#endif
