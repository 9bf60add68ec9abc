/*
 * Historian storage benchmark (src/historian/db.h), run by hand:
 *
 *   historian_ingest [--dir DIR] [--pg URL] [--readings N] [--devices D]
 *                    [--hours H] [--keep FILE] [--no-ingest] [--no-query]
 *
 * Ingest: readings/s into a fresh SQLite file in DIR (default /var/tmp)
 * with batches of 1, 100 and 1000 readings (one transaction each), and into
 * PostgreSQL at URL when --pg is given (its schema is dropped first: use a
 * throw-away server, e.g. tests/integration/pgserver.py -- ... --pg {url}),
 * and, for comparison, as arrays unnest()ed by one statement (pg-unnest
 * rows; the library uses COPY, see db_pg.c).
 * Readings come from D devices (default 1000) every 5 s, in time order.
 *
 * Query: fills a fresh SQLite file with D devices x H hours (default 1000 x
 * 24 = 17.28 M readings, batches of 1000, timed), then times the per-device
 * chart query (one day newest first, limit 10000) and the per-device
 * overview (288 buckets) for 50 devices, p50/p99, and the all-device
 * overview (288 buckets), both series and temperature only (the HTTP
 * API's), p50/p99 over 10 runs each. --keep FILE fills FILE
 * instead and keeps it; a later run with the same FILE skips the filling.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <libpq-fe.h>

#include <moat/error.h>

#include "base/buf.h"
#include "base/clock.h"
#include "historian/db.h"
#include "historian/db_impl.h" /* hist_db_exec: reset a PostgreSQL schema */

#define T0 INT64_C(1795064400000) /* 2026-12-01T05:00:00Z */

struct opts {
	const char *dir, *pg, *keep;
	long readings, devices, hours;
	bool ingest, query;
};

static char (*names)[24];

static void die(const char *what, struct hist_db *db, const char *msg)
{
	fprintf(stderr, "historian_ingest: %s: %s\n", what, db != NULL ? hist_db_errmsg(db) : msg);
	exit(1);
}

static void check(struct hist_db *db, int rc, const char *what)
{
	if (rc != MOAT_OK)
		die(what, db, NULL);
}

/* Reading k of the stream: device k % D at T0 + (k / D) * 5 s. */
static struct hist_reading reading(long k, long devices)
{
	long d = k % devices, s = k / devices;

	return (struct hist_reading){.device = names[d],
				     .time_ms = T0 + s * 5000LL,
				     .seq = s,
				     .temperature = 20.0 + (double)((s + d) % 100) / 10.0,
				     .humidity = 40.0 + (double)((s * 7 + d) % 200) / 10.0,
				     .relay = (s / 100) % 2 ? HIST_RELAY_ON : HIST_RELAY_OFF};
}

static void remove_db(const char *path)
{
	char p[600];

	snprintf(p, sizeof(p), "%s-wal", path);
	unlink(p);
	snprintf(p, sizeof(p), "%s-shm", path);
	unlink(p);
	unlink(path);
}

static struct hist_db *open_url(const char *url)
{
	struct moat_diag diag = {0};
	struct hist_db *db;

	if (hist_db_open(&db, url, &diag) != MOAT_OK)
		die("open", NULL, diag.msg);
	return db;
}

/* Opens an empty database: a new SQLite file <path> in o->dir, or the
 * PostgreSQL server at o->pg with its public schema dropped. */
static struct hist_db *open_fresh(const struct opts *o, bool pg, char *path, size_t path_len)
{
	struct moat_diag diag = {0};
	struct hist_db *db;
	char url[600];

	if (!pg) {
		snprintf(path, path_len, "%s/historian-bench-%d.db", o->dir, (int)getpid());
		remove_db(path);
		snprintf(url, sizeof(url), "sqlite:%s", path);
		return open_url(url);
	}
	if (hist_db_open_at(&db, o->pg, 0, &diag) != MOAT_OK)
		die("open", NULL, diag.msg);
	check(db, hist_db_exec(db, "DROP SCHEMA IF EXISTS public CASCADE; CREATE SCHEMA public"),
	      "reset");
	hist_db_close(db);
	return open_url(o->pg);
}

/* Stores readings [first, first + n) in batches of <batch>; returns seconds. */
static double ingest(struct hist_db *db, long first, long n, long batch, long devices)
{
	struct hist_reading *r = calloc((size_t)batch, sizeof(*r));
	uint64_t t = clock_mono_us();

	if (r == NULL)
		die("ingest", NULL, "out of memory");
	for (long k = first; k < first + n; k += batch) {
		long m = first + n - k < batch ? first + n - k : batch;

		for (long i = 0; i < m; i++)
			r[i] = reading(k + i, devices);
		check(db, hist_db_add_readings(db, r, (size_t)m), "add readings");
	}
	free(r);
	return (double)(clock_mono_us() - t) / 1e6;
}

static void ingest_table(const struct opts *o)
{
	static const long batches[] = {1, 100, 1000, 10000};
	char path[512];

	printf("%-10s %6s %10s %9s %12s\n", "backend", "batch", "readings", "seconds",
	       "readings/s");
	for (int pg = 0; pg <= (o->pg != NULL); pg++) {
		for (size_t i = 0; i < sizeof(batches) / sizeof(batches[0]); i++) {
			/* a batch of 1 is one commit per reading: fewer of them */
			long n = batches[i] == 1 ? o->readings / 20 : o->readings;
			struct hist_db *db = open_fresh(o, pg, path, sizeof(path));
			double s = ingest(db, 0, n, batches[i], o->devices);

			printf("%-10s %6ld %10ld %9.2f %12.0f\n", hist_db_backend(db), batches[i],
			       n, s, (double)n / s);
			fflush(stdout);
			hist_db_close(db);
			if (!pg)
				remove_db(path);
		}
	}
}

/* ---- PostgreSQL: the batch as array parameters to unnest() in one
 * statement, to compare with the library's COPY (db_pg.c) ---- */

static void pg_ok(PGconn *c, PGresult *res, ExecStatusType want, const char *what)
{
	if (PQresultStatus(res) != want)
		die(what, NULL, PQerrorMessage(c));
	PQclear(res);
}

/* Appends <text> to the array literal <b> as item <i>; closes it when <last>. */
static void arr_add(struct buf *b, long i, const char *text, bool last)
{
	if (buf_append(b, i == 0 ? "{" : ",", 1) < 0 || buf_append(b, text, strlen(text)) < 0 ||
	    (last && buf_append(b, "}", 2) < 0))
		die("unnest", NULL, "out of memory");
}

/* Stores readings [0, n) in batches of <batch>, each as six array
 * parameters that one statement unnest()s, inserts and rolls up; returns
 * seconds. Device ids must exist. */
static double pg_unnest_ingest(PGconn *c, const int64_t *ids, long n, long batch, long devices)
{
	uint64_t t = clock_mono_us();

	pg_ok(c,
	      PQprepare(c, "unnest",
			"WITH ins AS (INSERT INTO readings(device_id, time_ms, seq, temperature,"
			" humidity, relay) SELECT * FROM unnest($1::bigint[], $2::bigint[],"
			" $3::bigint[], $4::float8[], $5::float8[], $6::smallint[])"
			" ON CONFLICT DO NOTHING RETURNING device_id, time_ms, temperature,"
			" humidity)" HIST_SQL_ROLLUP_FROM_INS,
			6, NULL),
	      PGRES_COMMAND_OK, "prepare");
	for (long k = 0; k < n; k += batch) {
		long m = n - k < batch ? n - k : batch;
		struct buf a[6] = {0};
		const char *values[6];
		char num[6][32];

		for (long i = 0; i < m; i++) {
			struct hist_reading r = reading(k + i, devices);

			snprintf(num[0], 32, "%lld", (long long)ids[(k + i) % devices]);
			snprintf(num[1], 32, "%lld", (long long)r.time_ms);
			snprintf(num[2], 32, "%lld", (long long)r.seq);
			snprintf(num[3], 32, "%.17g", r.temperature);
			snprintf(num[4], 32, "%.17g", r.humidity);
			snprintf(num[5], 32, "%d", r.relay == HIST_RELAY_ON);
			for (int j = 0; j < 6; j++)
				arr_add(&a[j], i, num[j], i == m - 1);
		}
		for (int j = 0; j < 6; j++)
			values[j] = (const char *)a[j].data;
		pg_ok(c, PQexec(c, "BEGIN"), PGRES_COMMAND_OK, "begin");
		pg_ok(c, PQexecPrepared(c, "unnest", 6, values, NULL, NULL, 0), PGRES_COMMAND_OK,
		      "insert");
		pg_ok(c, PQexec(c, "COMMIT"), PGRES_COMMAND_OK, "commit");
		for (int j = 0; j < 6; j++)
			buf_fini(&a[j]);
	}
	return (double)(clock_mono_us() - t) / 1e6;
}

static void pg_unnest_row(const struct opts *o, long batch)
{
	char path[8];
	struct hist_db *db = open_fresh(o, true, path, sizeof(path));
	int64_t *ids = calloc((size_t)o->devices, sizeof(*ids));
	PGconn *c = PQconnectdb(o->pg);
	double s;

	if (ids == NULL || PQstatus(c) != CONNECTION_OK)
		die("connect", NULL, c != NULL ? PQerrorMessage(c) : "out of memory");
	/* the devices, created the library's way; their ids read back */
	ingest(db, 0, o->devices, o->devices, o->devices);
	pg_ok(c, PQexec(c, "DELETE FROM readings; DELETE FROM readings_5m"), PGRES_COMMAND_OK,
	      "clear");
	for (long d = 0; d < o->devices; d++) {
		const char *v[1] = {names[d]};
		PGresult *res = PQexecParams(c, "SELECT id FROM devices WHERE name = $1", 1, NULL,
					     v, NULL, NULL, 0);

		if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1)
			die("device id", NULL, PQerrorMessage(c));
		ids[d] = atoll(PQgetvalue(res, 0, 0));
		PQclear(res);
	}
	s = pg_unnest_ingest(c, ids, o->readings, batch, o->devices);
	printf("%-10s %6ld %10ld %9.2f %12.0f\n", "pg-unnest", batch, o->readings, s,
	       (double)o->readings / s);
	PQfinish(c);
	free(ids);
	hist_db_close(db);
}

static int count_reading(void *arg, const struct hist_reading *r)
{
	(void)r;
	++*(long *)arg;
	return MOAT_OK;
}

static int count_bucket(void *arg, const struct hist_bucket *b)
{
	(void)b;
	++*(long *)arg;
	return MOAT_OK;
}

static int by_value(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

/* Prints p50/p99 of <n> times in ms (sorted in place). */
static void print_pct(const char *what, double *ms, int n, long rows)
{
	qsort(ms, (size_t)n, sizeof(*ms), by_value);
	printf("%-48s p50 %8.2f ms  p99 %8.2f ms  (%d runs, %ld rows each)\n", what, ms[n / 2],
	       ms[(n * 99) / 100 < n - 1 ? (n * 99) / 100 : n - 1], n, rows);
}

enum { CHART_DEVICES = 50, OVERVIEW_RUNS = 10 };

enum query_kind { Q_READINGS, Q_OVERVIEW, Q_TEMPERATURE_OVERVIEW };

/* Times <runs> queries over the whole generated span and prints p50/p99:
 * the readings or the 288-bucket overview (<kind>) of one device each
 * (<runs> devices spread over the fleet), or of all devices when <runs> is
 * OVERVIEW_RUNS. */
static void time_runs(struct hist_db *db, const struct opts *o, int runs, enum query_kind kind,
		      const char *label)
{
	int64_t from = T0, to = T0 + o->hours * 3600000LL;
	double ms[CHART_DEVICES];
	long rows = 0;

	for (int i = 0; i < runs; i++) {
		const char *dev = runs == OVERVIEW_RUNS ? NULL : names[(long)i * o->devices / runs];
		uint64_t t = clock_mono_us();

		rows = 0;
		check(
		    db,
		    kind == Q_OVERVIEW
			? hist_db_overview(db, dev, from, to, 288, count_bucket, &rows)
		    : kind == Q_TEMPERATURE_OVERVIEW
			? hist_db_temperature_overview(db, dev, from, to, 288, count_bucket, &rows)
			: hist_db_readings(db, dev, from, to, HIST_LIMIT_MAX, count_reading, &rows),
		    "query");
		ms[i] = (double)(clock_mono_us() - t) / 1e3;
	}
	print_pct(label, ms, runs, rows);
}

static void query_bench(const struct opts *o)
{
	long total = o->hours * 720 * o->devices;
	char path[512], url[600];
	struct stat st;
	struct hist_db *db;
	double s = 0;

	/* a file kept by an earlier run (same --devices/--hours) is reused */
	bool reuse = o->keep != NULL && stat(o->keep, &st) == 0 && st.st_size > 0;

	if (o->keep != NULL) {
		snprintf(path, sizeof(path), "%s", o->keep);
		snprintf(url, sizeof(url), "sqlite:%s", path);
		db = open_url(url);
	} else {
		db = open_fresh(o, false, path, sizeof(path));
	}
	if (!reuse)
		s = ingest(db, 0, total, 1000, o->devices);
	check(db, hist_db_exec(db, "PRAGMA wal_checkpoint(TRUNCATE)"), "checkpoint");
	if (stat(path, &st) != 0)
		st.st_size = 0;
	if (reuse)
		printf("reused %s: %.2f GiB\n", path, (double)st.st_size / (1024.0 * 1024 * 1024));
	else
		printf("generate: %ld devices x %ld h = %ld readings in %.1f s (%.0f readings/s), "
		       "file %.2f GiB\n",
		       o->devices, o->hours, total, s, (double)total / s,
		       (double)st.st_size / (1024.0 * 1024 * 1024));
	fflush(stdout);
	/* queries start from a new handle (the OS page cache stays warm) */
	hist_db_close(db);
	snprintf(url, sizeof(url), "sqlite:%s", path);
	db = open_url(url);

	time_runs(db, o, CHART_DEVICES, Q_READINGS, "chart: 1 device, readings, limit 10000");
	time_runs(db, o, CHART_DEVICES, Q_OVERVIEW, "chart: 1 device, overview, 288 buckets");
	time_runs(db, o, OVERVIEW_RUNS, Q_OVERVIEW, "overview: all devices, 288 buckets");
	time_runs(db, o, OVERVIEW_RUNS, Q_TEMPERATURE_OVERVIEW,
		  "overview: all devices, temperature only");
	hist_db_close(db);
	if (o->keep == NULL)
		remove_db(path);
}

int main(int argc, char **argv)
{
	struct opts o = {.dir = "/var/tmp",
			 .readings = 200000,
			 .devices = 1000,
			 .hours = 24,
			 .ingest = true,
			 .query = true};

	for (int i = 1; i < argc; i++) {
		const char *next = i + 1 < argc ? argv[i + 1] : NULL;

		if (strcmp(argv[i], "--no-ingest") == 0)
			o.ingest = false;
		else if (strcmp(argv[i], "--no-query") == 0)
			o.query = false;
		else if (next != NULL && strcmp(argv[i], "--dir") == 0)
			o.dir = argv[++i];
		else if (next != NULL && strcmp(argv[i], "--keep") == 0)
			o.keep = argv[++i];
		else if (next != NULL && strcmp(argv[i], "--pg") == 0)
			o.pg = argv[++i];
		else if (next != NULL && strcmp(argv[i], "--readings") == 0)
			o.readings = atol(argv[++i]);
		else if (next != NULL && strcmp(argv[i], "--devices") == 0)
			o.devices = atol(argv[++i]);
		else if (next != NULL && strcmp(argv[i], "--hours") == 0)
			o.hours = atol(argv[++i]);
		else {
			fprintf(stderr,
				"usage: historian_ingest [--dir DIR] [--pg URL] [--readings N]"
				" [--devices D] [--hours H] [--keep FILE] [--no-ingest] "
				"[--no-query]\n");
			return 2;
		}
	}
	if (o.readings < 20 || o.devices < 50 || o.hours < 1) {
		fprintf(stderr,
			"historian_ingest: --readings >= 20, --devices >= 50, --hours >= 1\n");
		return 2;
	}
	names = calloc((size_t)o.devices, sizeof(*names));
	if (names == NULL)
		return 1;
	for (long d = 0; d < o.devices; d++)
		snprintf(names[d], sizeof(names[d]), "dev-%ld", d);
	if (o.ingest)
		ingest_table(&o);
	if (o.ingest && o.pg != NULL) {
		pg_unnest_row(&o, 1000);
		pg_unnest_row(&o, 10000);
	}
	if (o.query)
		query_bench(&o);
	free(names);
	return 0;
}
