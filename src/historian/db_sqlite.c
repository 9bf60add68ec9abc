/*
 * The historian's SQLite driver: opens the file (created 0600) in WAL mode
 * with synchronous=NORMAL and a busy timeout, and runs the shared SQL
 * through statements prepared once per handle and reused. Its $N
 * parameters become SQLite's ?N. Readings go through the per-statement
 * path (hist_add_readings_rows), which inside one transaction is as fast
 * as SQLite gets.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include <moat/error.h>

#include "historian/db_impl.h"

#include "base/file.h"

enum {
	BUSY_TIMEOUT_MS = 5000,
	COLS_MAX = 16,
};

struct lite {
	sqlite3 *db;
	sqlite3_stmt *st[HQ_COUNT];
};

static struct lite *lite(struct hist_db *db)
{
	return db->impl;
}

static int lite_fail(struct hist_db *db, const char *what)
{
	int code = sqlite3_errcode(lite(db)->db);

	return hist_fail(db, code == SQLITE_BUSY ? MOAT_E_TIMEOUT : MOAT_E_IO, "sqlite: %s: %s",
			 what, sqlite3_errmsg(lite(db)->db));
}

static int lite_exec(struct hist_db *db, const char *sql)
{
	if (sqlite3_exec(lite(db)->db, sql, NULL, NULL, NULL) != SQLITE_OK)
		return lite_fail(db, "exec");
	return MOAT_OK;
}

static void lite_close(struct hist_db *db)
{
	struct lite *l = lite(db);

	if (l == NULL)
		return;
	for (size_t i = 0; i < HQ_COUNT; i++)
		sqlite3_finalize(l->st[i]);
	sqlite3_close(l->db);
	free(l);
	db->impl = NULL;
}

static int lite_open(struct hist_db *db, const char *path)
{
	struct lite *l;

	if (file_create_private(path) != 0) /* 0600, not the umask's mode */
		return hist_fail(db, MOAT_E_IO, "sqlite: %s: %s", path, strerror(errno));
	l = calloc(1, sizeof(*l));
	if (l == NULL)
		return hist_fail(db, MOAT_E_NOMEM, "out of memory");
	db->impl = l;
	if (sqlite3_open_v2(path, &l->db,
			    SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOFOLLOW | SQLITE_OPEN_NOMUTEX,
			    NULL) != SQLITE_OK) {
		int rc = hist_fail(db, MOAT_E_IO, "sqlite: %s: %s", path,
				   l->db != NULL ? sqlite3_errmsg(l->db) : "out of memory");
		lite_close(db);
		return rc;
	}
	sqlite3_busy_timeout(l->db, BUSY_TIMEOUT_MS);
	/* 32 MiB of page cache per handle (a chart query touches ~2 MiB); a
	 * checkpoint per 256 MiB of WAL, not SQLite's 4 MiB: ingest dirties a
	 * page per device per batch, and fewer checkpoints write each page once */
	if (lite_exec(db, "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;"
			  " PRAGMA cache_size = -32768; PRAGMA wal_autocheckpoint = 65536") < 0) {
		lite_close(db);
		return MOAT_E_IO;
	}
	return MOAT_OK;
}

static int lite_begin(struct hist_db *db)
{
	if (sqlite3_exec(lite(db)->db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK)
		return lite_fail(db, "begin");
	return MOAT_OK;
}

static int lite_end(struct hist_db *db, int rc)
{
	if (rc == MOAT_OK) {
		if (sqlite3_exec(lite(db)->db, "COMMIT", NULL, NULL, NULL) == SQLITE_OK)
			return MOAT_OK;
		rc = lite_fail(db, "commit");
	}
	sqlite3_exec(lite(db)->db, "ROLLBACK", NULL, NULL, NULL);
	return rc;
}

static int lite_lock_schema(struct hist_db *db)
{
	(void)db; /* BEGIN IMMEDIATE holds the database's write lock already */
	return MOAT_OK;
}

static int lite_table_exists(struct hist_db *db, const char *name, bool *yes)
{
	sqlite3_stmt *st;
	int rc;

	if (sqlite3_prepare_v2(
		lite(db)->db,
		"SELECT count(*) FROM sqlite_schema WHERE type = 'table' AND name = ?", -1, &st,
		NULL) != SQLITE_OK)
		return lite_fail(db, "prepare");
	sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
	rc = sqlite3_step(st) == SQLITE_ROW ? MOAT_OK : lite_fail(db, "schema");
	*yes = rc == MOAT_OK && sqlite3_column_int(st, 0) > 0;
	sqlite3_finalize(st);
	return rc;
}

/* Prepares <sql> with each $N turned into ?N. */
static int prepare(struct hist_db *db, const char *sql, sqlite3_stmt **st)
{
	char *text = strdup(sql);
	int ok;

	if (text == NULL)
		return hist_fail(db, MOAT_E_NOMEM, "out of memory");
	for (char *p = strchr(text, '$'); p != NULL; p = strchr(p + 1, '$'))
		if (p[1] >= '0' && p[1] <= '9')
			*p = '?';
	ok = sqlite3_prepare_v3(lite(db)->db, text, -1, SQLITE_PREPARE_PERSISTENT, st, NULL) ==
	     SQLITE_OK;
	free(text);
	return ok ? MOAT_OK : lite_fail(db, "prepare");
}

static int bind(sqlite3_stmt *st, int i, const struct hist_val *v)
{
	switch (v->type) {
	case HIST_I64:
		return sqlite3_bind_int64(st, i, v->i);
	case HIST_F64:
		return sqlite3_bind_double(st, i, v->f);
	case HIST_TEXT:
		return sqlite3_bind_text(st, i, v->p, (int)v->len, SQLITE_STATIC);
	case HIST_BLOB:
		return sqlite3_bind_blob(st, i, v->p, (int)v->len, SQLITE_STATIC);
	case HIST_NULL:
		break;
	}
	return sqlite3_bind_null(st, i);
}

static void column(sqlite3_stmt *st, int i, struct hist_val *v)
{
	*v = (struct hist_val){.type = HIST_NULL};
	switch (sqlite3_column_type(st, i)) {
	case SQLITE_INTEGER:
		*v = hv_i64(sqlite3_column_int64(st, i));
		break;
	case SQLITE_FLOAT:
		v->type = HIST_F64;
		v->f = sqlite3_column_double(st, i);
		break;
	case SQLITE_TEXT:
		v->type = HIST_TEXT;
		v->p = sqlite3_column_text(st, i);
		v->len = (size_t)sqlite3_column_bytes(st, i);
		break;
	case SQLITE_BLOB:
		v->type = HIST_BLOB;
		v->p = sqlite3_column_blob(st, i);
		v->len = (size_t)sqlite3_column_bytes(st, i);
		if (v->p == NULL)
			v->p = "";
		break;
	default:
		break;
	}
}

static int lite_run(struct hist_db *db, enum hist_q q, const char *sql, const struct hist_val *p,
		    size_t n, hist_row_cb *cb, void *arg)
{
	struct lite *l = lite(db);
	struct hist_val cols[COLS_MAX];
	sqlite3_stmt *st;
	int rc = MOAT_OK, step = SQLITE_DONE;

	if (l->st[q] == NULL && (rc = prepare(db, sql, &l->st[q])) < 0)
		return rc;
	st = l->st[q];
	for (size_t i = 0; i < n && rc == MOAT_OK; i++)
		if (bind(st, (int)i + 1, &p[i]) != SQLITE_OK)
			rc = lite_fail(db, "bind");
	while (rc == MOAT_OK && (step = sqlite3_step(st)) == SQLITE_ROW) {
		int ncols = sqlite3_column_count(st);

		if (ncols > COLS_MAX)
			ncols = COLS_MAX;
		for (int i = 0; i < ncols; i++)
			column(st, i, &cols[i]);
		if (cb != NULL)
			rc = cb(arg, cols, (size_t)ncols);
	}
	if (rc == MOAT_OK && step != SQLITE_DONE)
		rc = lite_fail(db, "step");
	db->changes = sqlite3_changes64(l->db);
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	return rc;
}

const struct hist_db_ops hist_sqlite_ops = {
    .name = "sqlite",
    .open = lite_open,
    .close = lite_close,
    .exec = lite_exec,
    .begin = lite_begin,
    .end = lite_end,
    .lock_schema = lite_lock_schema,
    .table_exists = lite_table_exists,
    .run = lite_run,
    .add_readings = hist_add_readings_rows,
};
