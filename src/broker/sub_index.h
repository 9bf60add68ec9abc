/*
 * The subscription index: a trie of topic filters shared by every worker
 * thread. Matching takes a read lock, so any number of threads match at once;
 * subscribe and unsubscribe take the write lock (writers are preferred, so a
 * steady stream of publishes cannot starve them). Shared subscriptions
 * ("$share/<group>/<filter>") live at their inner filter's node, one group per
 * (group name, filter) pair as [MQTT-4.8.2] defines a shared subscription, and
 * each matching group yields exactly one member per message, chosen
 * round-robin from an atomic counter of that group.
 *
 * The index stores copies of struct sub_entry and never dereferences <owner>;
 * the broker keeps each session's filter list and removes them when the
 * session ends. Deduplicating overlapping subscriptions of one owner
 * [MQTT-3.3.4-2] is left to the caller: it gets one callback per match.
 */
#ifndef MOAT_BROKER_SUB_INDEX_H
#define MOAT_BROKER_SUB_INDEX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <moat/bytes.h>

struct subidx;

struct sub_entry {
	void *owner;		/* the subscribing session; identity only */
	uint8_t qos;		/* maximum QoS granted */
	bool no_local;
	bool retain_as_published;
	uint8_t retain_handling;	/* 0, 1 or 2 */
	uint32_t sub_id;	/* subscription identifier, 0 = none */
};

/* Default for subidx_create()'s <max_levels>, mosquitto's fix for CVE-2019-11779. */
enum { SUBIDX_DEFAULT_MAX_LEVELS = 200 };

/* Creates an empty index that refuses filters with more than <max_levels>
 * levels (0 = SUBIDX_DEFAULT_MAX_LEVELS). NULL on out of memory. */
struct subidx *subidx_create(uint32_t max_levels);

/* Frees <idx> and every entry. NULL is fine. No other thread may use it. */
void subidx_destroy(struct subidx *idx);

/*
 * Subscribes <e->owner> to <filter> (plain, or "$share/<group>/<inner>").
 * When the owner already holds this exact subscription its options are
 * replaced and *<existed> (may be NULL) is set to true, else false. A shared
 * and a non-shared subscription of one owner on one filter are distinct.
 * Returns MOAT_OK; MOAT_E_PROTOCOL for an invalid filter or shared form
 * (SUBACK 0x8F); MOAT_E_LIMIT for more than max_levels levels; MOAT_E_NOMEM.
 * Any thread; takes the write lock.
 */
int subidx_add(struct subidx *idx, struct moat_bytes filter, const struct sub_entry *e,
	       bool *existed);

/* Removes <owner>'s subscription to <filter> (plain or shared) and frees the
 * nodes it leaves empty. MOAT_OK, or MOAT_E_NOTFOUND when there was none
 * (UNSUBACK 0x11). Any thread; takes the write lock. */
int subidx_remove(struct subidx *idx, struct moat_bytes filter, void *owner);

/* Called once per match with a copy of the entry; <shared> is the shared
 * subscription as subscribed ("$share/<group>/<filter>") for a member of a
 * shared group, empty otherwise. Runs under the read lock:
 * it must not call subidx_add/subidx_remove on the same index (deadlock) and
 * should only collect targets. */
typedef void subidx_match_cb(void *ctx, const struct sub_entry *e, struct moat_bytes shared);

/* Tells subidx_match whether a shared-group member may take this message now
 * (e.g. its session is online). Same locking rules as subidx_match_cb. */
typedef bool subidx_member_ok_cb(void *ctx, const struct sub_entry *e);

/*
 * Calls <cb> for every subscription matching topic name <topic>: each plain
 * subscription, and one member of each matching shared group, round-robin.
 * When <member_ok> is given the turn skips members it refuses; if it refuses
 * all, the member whose turn it was is chosen anyway. A topic starting with
 * '$' is not matched by filters starting with '+' or '#' [MQTT-4.7.2-1].
 * Returns MOAT_OK, or MOAT_E_NOMEM when the index is deeper than 64 levels and
 * the walk's stack cannot be allocated (nothing was matched then).
 * Any thread; holds the read lock while calling back.
 */
int subidx_match(struct subidx *idx, struct moat_bytes topic, subidx_match_cb *cb,
		 subidx_member_ok_cb *member_ok, void *ctx);

/* Calls <cb> for one member of the shared subscription <shared_filter>
 * ("$share/<group>/<filter>", exactly as subscribed), chosen as
 * subidx_match chooses. False (nothing called) when it has no member.
 * Any thread; holds the read lock while calling back. */
bool subidx_pick(struct subidx *idx, struct moat_bytes shared_filter, subidx_match_cb *cb,
		 subidx_member_ok_cb *member_ok, void *ctx);

/* Number of subscriptions held (shared members included). Any thread. */
size_t subidx_count(struct subidx *idx);

#endif
