/*
 * The store directory's owner lock (internal to src/store): an exclusive
 * flock on <dir>/moat.lock holding the owner's pid, so that two moatd (or a
 * moatd and `moatd --repair-store`) never open one store together. The
 * kernel drops the lock when its holder dies, so a killed moatd leaves
 * nothing stale behind.
 */
#ifndef MOAT_STORE_LOCK_H
#define MOAT_STORE_LOCK_H

#include <stdbool.h>
#include <stddef.h>

/* Takes the lock of <dir>, creating <dir> (0700) first when <create> is set,
 * and writes our pid into the lock file. Returns the lock's fd (>= 0), or
 * MOAT_E_IO with a sentence in <err> (the directory is missing or cannot be
 * created, or another process holds the lock: its pid is named). */
int store_lock_take(const char *dir, bool create, char *err, size_t errlen);

/* Releases a lock taken by store_lock_take. -1 is fine. */
void store_lock_release(int fd);

#endif
