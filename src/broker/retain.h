/*
 * Retained messages: one message per topic name, shared by every worker
 * thread behind a read-write lock. Messages are opaque to the store; it holds
 * one reference of its own through a small ops table, so the broker's
 * refcounted struct msg is stored without copying. Topics are kept in a trie
 * so a subscription's filter visits only the branches it can match, with a
 * walk that uses parent links instead of a stack (memory independent of the
 * number or depth of retained topics).
 */
#ifndef MOAT_BROKER_RETAIN_H
#define MOAT_BROKER_RETAIN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <moat/bytes.h>

struct retain;

struct retain_ops {
	void (*ref)(void *msg);		/* take one more reference */
	void (*unref)(void *msg);	/* drop one reference */
};

/* Default for retain_create()'s <max_levels>. */
enum { RETAIN_DEFAULT_MAX_LEVELS = 200 };

/* Creates an empty store using <ops> (borrowed; must outlive the store) and
 * refusing topics deeper than <max_levels> (0 = RETAIN_DEFAULT_MAX_LEVELS).
 * NULL on out of memory. */
struct retain *retain_create(const struct retain_ops *ops, uint32_t max_levels);

/* Unrefs every message and frees <r>. NULL is fine. No other thread may use it. */
void retain_destroy(struct retain *r);

/*
 * Makes <msg> the retained message of topic name <topic>, replacing (and
 * unreffing) any previous one; the store takes its own reference, the caller
 * keeps its. <msg> NULL deletes the topic's message (an empty retained
 * payload). Returns MOAT_OK; MOAT_E_INVAL for an empty topic or one with
 * '+'/'#'; MOAT_E_LIMIT for more than max_levels levels; MOAT_E_NOMEM.
 * Any thread; takes the write lock.
 */
int retain_set(struct retain *r, struct moat_bytes topic, void *msg);

/* Called for each retained message matching a filter; return false to stop.
 * Runs under the read lock: may ref <msg> but must not call retain_set. */
typedef bool retain_match_cb(void *ctx, void *msg);

/*
 * Calls <cb> for every retained message whose topic matches topic filter
 * <filter> ('+', '#', and '$' topics not matched by a leading wildcard
 * [MQTT-4.7.2-1]). <filter> is a plain filter (strip "$share/<g>/" first).
 * Returns MOAT_OK or MOAT_E_PROTOCOL for an invalid filter. Any thread; holds
 * the read lock while calling back.
 */
int retain_match(struct retain *r, struct moat_bytes filter, retain_match_cb *cb, void *ctx);

/* Deletes every retained message (all topics, '$' ones included) for which
 * <drop> returns true, e.g. expired ones. Returns how many were deleted.
 * Any thread; takes the write lock, so <drop> must not call into <r>. */
size_t retain_sweep(struct retain *r, bool (*drop)(void *ctx, void *msg), void *ctx);

/* Number of retained messages. Any thread. */
size_t retain_count(struct retain *r);

#endif
