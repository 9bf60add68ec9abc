/*
 * Hooks for the store's unit tests only (not for the broker): they make
 * failures happen that a real store meets only with a full disk.
 */
#ifndef MOAT_STORE_TESTING_H
#define MOAT_STORE_TESTING_H

#include <stdint.h>

struct store;

/* Caps the store's memory map at <bytes> (0 = no cap), applied by the commit
 * thread before its next transaction: commits that need more fail with
 * MDB_MAP_FULL as on a full disk, and are retried; raising the cap later
 * lets the retry succeed. Any thread. */
void store_set_map_cap(struct store *s, uint64_t bytes);

#endif
