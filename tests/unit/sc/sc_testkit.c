/* Temp registries for the SC tests (see sc_testkit.h). */
#include "sc_testkit.h"

#include <stdio.h>
#include <stdlib.h>

#include <sqlite3.h>

#include <moat/error.h>

void sc_tmp_open(struct sc_tmp *t, const char *prefix, struct registry **r)
{
	struct moat_diag d = {0};

	snprintf(t->dir, sizeof(t->dir), "/tmp/%s-XXXXXX", prefix);
	if (mkdtemp(t->dir) == NULL)
		abort();
	snprintf(t->path, sizeof(t->path), "%s/registry.db", t->dir);
	if (reg_open(r, t->path, &d) != MOAT_OK)
		abort();
}

void sc_tmp_remove(struct sc_tmp *t, struct registry *r)
{
	char cmd[160];

	reg_close(r);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", t->dir);
	if (system(cmd) != 0)
		abort();
}

int sc_tmp_count(const struct sc_tmp *t, const char *sql)
{
	sqlite3 *db;
	sqlite3_stmt *st;
	int n;

	if (sqlite3_open(t->path, &db) != SQLITE_OK ||
	    sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK ||
	    sqlite3_step(st) != SQLITE_ROW)
		abort();
	n = sqlite3_column_int(st, 0);
	sqlite3_finalize(st);
	sqlite3_close(db);
	return n;
}
