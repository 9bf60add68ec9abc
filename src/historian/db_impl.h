/*
 * Inside the historian's storage: the handle, the backend ops table and the
 * values that cross it. A backend (db_sqlite.c, db_pg.c) is a thin driver:
 * it opens the connection, runs transactions and runs the shared SQL text
 * of db_query.c and migrate.c with parameters, handing each result row back
 * as an array of values. Only reading ingest has a backend-specific path,
 * because batching differs most between the two (see db_pg.c).
 */
#ifndef MOAT_HISTORIAN_DB_IMPL_H
#define MOAT_HISTORIAN_DB_IMPL_H

#include "historian/db.h"
#include "historian/devcache.h"

enum hist_val_type {
	HIST_NULL = 0,
	HIST_I64 = 1,
	HIST_F64 = 2,
	HIST_TEXT = 3, /* NUL-terminated */
	HIST_BLOB = 4,
};

/* One parameter or result column; pointers are borrowed. */
struct hist_val {
	enum hist_val_type type;
	int64_t i;
	double f;
	const void *p;
	size_t len; /* bytes at <p> (text: without the NUL) */
};

/* Statements run through ops->run, each with a stable index so a backend
 * can prepare it once per handle. */
enum hist_q {
	HQ_DEVICE_CREATE = 0,
	HQ_READING_INSERT,
	HQ_ROLLUP_UPSERT,
	HQ_DEVICE_ONLINE,
	HQ_DEVICE_RELAY,
	HQ_COMMAND_INSERT,
	HQ_COMMAND_UPDATE,
	HQ_COMMAND_STATUS,
	HQ_COMMAND_GET,
	HQ_ALERT_INSERT,
	HQ_REJECT_COUNT,
	HQ_DEVICES,
	HQ_READINGS,
	/* the overview's eight: HQ_OVERVIEW + 4 (temperature only) + 2 (rollup
	 * cells as they are) + 1 (one device); see db_query.c */
	HQ_OVERVIEW,
	HQ_OVERVIEW_LAST = HQ_OVERVIEW + 7,
	HQ_DEVICE_NAMES,
	HQ_ALERTS,
	HQ_REJECTS,
	HQ_VERSION,
	HQ_MIGRATION_RECORD,
	HQ_COUNT
};

/* Called for each result row with <n> columns; returns MOAT_OK to go on. */
typedef int hist_row_cb(void *arg, const struct hist_val *cols, size_t n);

struct hist_db;

struct hist_db_ops {
	const char *name;
	/* Connects to <target> (the URL without a sqlite: prefix). */
	int (*open)(struct hist_db *db, const char *target);
	void (*close)(struct hist_db *db);
	/* Runs constant SQL text without parameters (may hold several statements). */
	int (*exec)(struct hist_db *db, const char *sql);
	/* Starts a write transaction (SQLite: BEGIN IMMEDIATE). */
	int (*begin)(struct hist_db *db);
	/* Commits when <rc> is MOAT_OK, else rolls back; returns the outcome. */
	int (*end)(struct hist_db *db, int rc);
	/* Takes the lock that serialises migrations between processes; inside begin. */
	int (*lock_schema)(struct hist_db *db);
	/* *<yes> = a table called <name> exists. */
	int (*table_exists)(struct hist_db *db, const char *name, bool *yes);
	/* Runs statement <q> (text <sql>, parameters $1..$n in order of first
	 * use) with <n> parameters <p>; <cb> (may be NULL) sees each row. Sets
	 * db->changes to the rows it inserted, updated or deleted. */
	int (*run)(struct hist_db *db, enum hist_q q, const char *sql, const struct hist_val *p,
		   size_t n, hist_row_cb *cb, void *arg);
	/* Stores readings <r> (valid, sorted by device then time) of the
	 * devices <ids> (parallel to <r>) inside a transaction the caller opened. */
	int (*add_readings)(struct hist_db *db, const struct hist_reading *const *r,
			    const int64_t *ids, size_t n);
};

extern const struct hist_db_ops hist_sqlite_ops, hist_pg_ops;

struct hist_db {
	const struct hist_db_ops *ops;
	void *impl;		 /* the backend's state */
	struct devcache devices; /* ids of devices whose rows are committed */
	int64_t changes;	 /* rows changed by the last ops->run */
	char err[512];
};

/* Stores a formatted message in <db>'s error text; returns <rc>. */
int hist_fail(struct hist_db *db, int rc, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Runs the migrations that take <db> to <version> (migrate.c). */
int hist_migrate(struct hist_db *db, int version);

/* Stores in *<id> the row id of device <name>, creating the device (first
 * seen at <first_ms>) when new; cached per handle. Inside a transaction. */
int hist_device_id(struct hist_db *db, const char *name, int64_t first_ms, int64_t *id);

/* The per-statement ingest path (db_query.c): inserts each reading and
 * adds the inserted ones to the rollup. SQLite's add_readings. */
int hist_add_readings_rows(struct hist_db *db, const struct hist_reading *const *r,
			   const int64_t *ids, size_t n);

/* The rollup cell of <time_ms>: rounded down to HIST_ROLLUP_MS. */
int64_t hist_rollup_cell(int64_t time_ms);

/* Runs raw SQL on <db> (tests: resetting a PostgreSQL schema). */
int hist_db_exec(struct hist_db *db, const char *sql);

/* The conflict clauses of the ingest statements: device state only moves
 * forward in time (db_query.c); rollup cells add up (db_query.c for SQLite,
 * db_pg.c's batch). */
#define HIST_NEWER(col) "devices." col " IS NULL OR excluded." col " >= devices." col
#define HIST_ROLLUP_MIN(col)                                                                       \
	" " col " = CASE WHEN readings_5m." col " IS NULL OR excluded." col " < readings_5m." col  \
	" THEN excluded." col " ELSE readings_5m." col " END"
#define HIST_ROLLUP_MAX(col)                                                                       \
	" " col " = CASE WHEN readings_5m." col " IS NULL OR excluded." col " > readings_5m." col  \
	" THEN excluded." col " ELSE readings_5m." col " END"
#define HIST_SQL_ROLLUP_MERGE                                                                      \
	" ON CONFLICT(bucket_ms, device_id) DO UPDATE SET n = readings_5m.n + excluded.n,"         \
	" t_n = readings_5m.t_n + excluded.t_n, t_sum = readings_5m.t_sum + excluded.t_sum,"       \
	" h_n = readings_5m.h_n + excluded.h_n, h_sum = readings_5m.h_sum + "                      \
	"excluded.h_sum," HIST_ROLLUP_MIN("t_min") "," HIST_ROLLUP_MAX(                            \
	    "t_max") "," HIST_ROLLUP_MIN("h_min") "," HIST_ROLLUP_MAX("h_max")

/* The rollup of the rows a CTE named ins inserted (device_id, time_ms,
 * temperature, humidity): PostgreSQL's batch (db_pg.c) and its benchmark. */
#define HIST_SQL_ROLLUP_FROM_INS                                                                   \
	" INSERT INTO readings_5m(bucket_ms, device_id, n, t_n, t_sum, t_min, t_max, h_n,"         \
	" h_sum, h_min, h_max) SELECT time_ms - time_ms % 300000, device_id, count(*),"            \
	" count(temperature), coalesce(sum(temperature), 0), min(temperature),"                    \
	" max(temperature), count(humidity), coalesce(sum(humidity), 0), min(humidity),"           \
	" max(humidity) FROM ins GROUP BY 1, 2" HIST_SQL_ROLLUP_MERGE

/* Shared validation (db.c); each fills <db>'s error text and returns
 * MOAT_E_INVAL when <what> is bad. */
int hist_check_name(struct hist_db *db, const char *what, const char *s);
int hist_check_text(struct hist_db *db, const char *what, const char *s, size_t max);
int hist_check_time(struct hist_db *db, const char *what, int64_t time_ms);
int hist_check_limit(struct hist_db *db, unsigned limit, unsigned max);

/* Value constructors for parameter arrays. */
static inline struct hist_val hv_i64(int64_t i)
{
	return (struct hist_val){.type = HIST_I64, .i = i};
}

struct hist_val hv_f64(double f); /* NAN -> NULL */
struct hist_val hv_text(const char *s);
struct hist_val hv_blob(const void *p, size_t len); /* an empty blob, not NULL */

/* Column readers: NULL reads as 0, NAN and "" respectively. */
int64_t hv_as_i64(const struct hist_val *v);
double hv_as_f64(const struct hist_val *v);
const char *hv_as_text(const struct hist_val *v);

#endif
