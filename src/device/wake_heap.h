/*
 * moat-device: the devices' wake-up times in a binary min-heap (sim.c), so
 * that a turn of the loop finds the devices due in O(due · log N) instead
 * of scanning all N. Entries are ids 0..cap-1 (device indexes); each id is
 * in the heap at most once, with one time.
 */
#ifndef MOAT_DEVICE_WAKE_HEAP_H
#define MOAT_DEVICE_WAKE_HEAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct wake_heap {
	size_t *ids;	 /* the heap: ids ordered by at_ms[id] */
	size_t *slot;	 /* slot[id]: 1 + its place in ids, 0 when not queued */
	uint64_t *at_ms; /* at_ms[id]: its wake-up time */
	size_t len, cap;
};

/* An empty heap for ids 0..<cap>-1. MOAT_OK or MOAT_E_NOMEM. */
int wake_heap_init(struct wake_heap *h, size_t cap);

void wake_heap_fini(struct wake_heap *h);

/* Queues <id> (< cap) to wake at <at_ms>, or moves it there when it is queued already. */
void wake_heap_set(struct wake_heap *h, size_t id, uint64_t at_ms);

/* The earliest wake-up time, UINT64_MAX when nothing is queued. */
uint64_t wake_heap_next_ms(const struct wake_heap *h);

/* Removes the earliest id into <*id> when its time is <= <now_ms>; false when none is due. */
bool wake_heap_pop_due(struct wake_heap *h, uint64_t now_ms, size_t *id);

#endif
