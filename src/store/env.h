/*
 * LMDB plumbing shared by the store (store.c) and its checker (check.c):
 * opening the environment with errors turned into sentences, and the size
 * figure behind the soft limit. Internal to src/store.
 */
#ifndef MOAT_STORE_ENV_H
#define MOAT_STORE_ENV_H

#include <lmdb.h>
#include <stddef.h>
#include <stdint.h>

/* Opens the LMDB environment in <dir> (data.mdb, lock.mdb) with <flags>
 * (MDB_RDONLY, MDB_NOSYNC, ...) and a map of <mapsize> bytes (0: the size
 * recorded in the file), and the store's one named database into <dbi>
 * (created unless MDB_RDONLY). On error writes a sentence into <err> and
 * returns MOAT_E_PARSE (a damaged file), MOAT_E_IO or MOAT_E_NOMEM. */
int store_env_open(const char *dir, unsigned flags, size_t mapsize, MDB_env **env, MDB_dbi *dbi,
		   char *err, size_t errlen);

/* Turns LMDB or errno code <rc> from <what> on the store in <dir> into a
 * sentence in <err>; returns MOAT_E_PARSE for damage (MDB_INVALID,
 * MDB_CORRUPTED, MDB_PAGE_NOTFOUND, MDB_VERSION_MISMATCH), MOAT_E_NOMEM for
 * ENOMEM, else MOAT_E_IO. */
int store_env_error(int rc, const char *dir, const char *what, char *err, size_t errlen);

/* Bytes the store uses: pages up to the last one written, minus the pages on
 * LMDB's free list (reused by later writes). <env> must have no write
 * transaction open in this thread. Returns 0 when the figure cannot be read. */
uint64_t store_env_used(MDB_env *env);

#endif
