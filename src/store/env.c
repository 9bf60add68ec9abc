/*
 * LMDB plumbing for the store and its checker (see env.h).
 */
#include "store/env.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include <moat/error.h>

static const char db_name[] = "moat";

int store_env_error(int rc, const char *dir, const char *what, char *err, size_t errlen)
{
	switch (rc) {
	case MDB_INVALID:
	case MDB_CORRUPTED:
	case MDB_PAGE_NOTFOUND:
	case MDB_VERSION_MISMATCH:
		snprintf(err, errlen,
			 "%s/data.mdb is damaged (%s: %s); run `moatd --check-store` for "
			 "details, then `moatd --repair-store` to rebuild it from the records "
			 "that can still be read",
			 dir, what, mdb_strerror(rc));
		return MOAT_E_PARSE;
	case ENOMEM:
		snprintf(err, errlen, "%s/data.mdb: %s: out of memory", dir, what);
		return MOAT_E_NOMEM;
	default:
		snprintf(err, errlen, "%s/data.mdb: %s: %s", dir, what, mdb_strerror(rc));
		return MOAT_E_IO;
	}
}

int store_env_open(const char *dir, unsigned flags, size_t mapsize, MDB_env **env, MDB_dbi *dbi,
		   char *err, size_t errlen)
{
	bool rdonly = (flags & MDB_RDONLY) != 0;
	MDB_env *e;
	MDB_txn *txn;
	int rc;

	rc = mdb_env_create(&e);
	if (rc != 0)
		return store_env_error(rc, dir, "mdb_env_create", err, errlen);
	rc = mdb_env_set_maxdbs(e, 1);
	if (rc == 0 && mapsize > 0)
		rc = mdb_env_set_mapsize(e, mapsize);
	if (rc != 0) {
		rc = store_env_error(rc, dir, "mdb_env_set_mapsize", err, errlen);
		goto err_close;
	}
	rc = mdb_env_open(e, dir, flags, 0600);
	if (rc != 0) {
		rc = store_env_error(rc, dir, "open", err, errlen);
		goto err_close;
	}
	rc = mdb_txn_begin(e, NULL, rdonly ? MDB_RDONLY : 0, &txn);
	if (rc != 0) {
		rc = store_env_error(rc, dir, "mdb_txn_begin", err, errlen);
		goto err_close;
	}
	rc = mdb_dbi_open(txn, db_name, rdonly ? 0 : MDB_CREATE, dbi);
	if (rc == 0)
		rc = mdb_txn_commit(txn);
	else
		mdb_txn_abort(txn);
	if (rc == MDB_NOTFOUND || rc == MDB_INCOMPATIBLE) {
		snprintf(err, errlen,
			 "%s/data.mdb is damaged (no \"%s\" database in it); move the directory "
			 "away to start empty",
			 dir, db_name);
		rc = MOAT_E_PARSE;
		goto err_close;
	}
	if (rc != 0) {
		rc = store_env_error(rc, dir, "opening the database", err, errlen);
		goto err_close;
	}
	*env = e;
	return MOAT_OK;

err_close:
	mdb_env_close(e);
	return rc;
}

uint64_t store_env_used(MDB_env *env)
{
	MDB_envinfo info;
	MDB_stat st;
	MDB_txn *txn;
	MDB_cursor *c;
	MDB_val k, v;
	uint64_t free_pages = 0, pages;
	int rc;

	if (mdb_env_info(env, &info) != 0 || mdb_env_stat(env, &st) != 0)
		return 0;
	pages = (uint64_t)info.me_last_pgno + 1;
	if (mdb_txn_begin(env, NULL, MDB_RDONLY, &txn) != 0)
		return pages * st.ms_psize;
	/* dbi 0 is LMDB's free list: each record's value is a page-id list whose first word is its
	 * length. */
	if (mdb_cursor_open(txn, 0, &c) == 0) {
		for (rc = mdb_cursor_get(c, &k, &v, MDB_FIRST); rc == 0;
		     rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
			size_t n;

			if (v.mv_size < sizeof(n))
				continue;
			memcpy(&n, v.mv_data, sizeof(n));
			free_pages += n;
		}
		mdb_cursor_close(c);
	}
	mdb_txn_abort(txn);
	if (free_pages > pages)
		free_pages = pages;
	return (pages - free_pages) * st.ms_psize;
}
