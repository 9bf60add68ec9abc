/*
 * Historian storage benchmark (src/historian/db.h), run by hand:
 *
 *   historian_ingest [--dir DIR] [--pg URL] [--readings N] [--devices D]
 *                    [--hours H] [--keep FILE] [--no-ingest] [--no-query]
 *
 * Ingest: readings/s into a fresh SQLite file in DIR (default /var/tmp)
 * with batches of 1, 100 and 1000 readings (one transaction each), and into
 * PostgreSQL at URL when --pg is given (its schema is dropped first: use a
 * throw-away server, e.g. tests/integration/pgserver.py -- ... --pg {url}).
 * Readings come from D devices (default 1000) every 5 s, in time order.
 *
 * Query: fills a fresh SQLite file with D devices x H hours (default 1000 x
 * 24 = 17.28 M readings, batches of 1000, timed), then times the per-device
 * chart query (one day newest first, limit 10000) and the per-device
 * overview (288 buckets) for 50 devices, p50/p99, and the all-device
 * overview (288 buckets), p50/p99 over 10 runs. --keep FILE fills FILE
 * instead and keeps it; a later run with the same FILE skips the filling.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <moat/error.h>

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
	static const long batches[] = {1, 100, 1000};
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

static void query_bench(const struct opts *o)
{
	enum { CHART_DEVICES = 50, OVERVIEW_RUNS = 10 };
	long total = o->hours * 720 * o->devices, rows = 0;
	int64_t from = T0, to = T0 + o->hours * 3600000LL;
	double ms[CHART_DEVICES];
	char path[512], url[600];
	struct stat st;
	struct hist_db *db;
	double s = 0;

	if (o->keep != NULL && stat(o->keep, &st) == 0 && st.st_size > 0) {
		/* a database kept by an earlier run with the same --devices/--hours */
		snprintf(path, sizeof(path), "%s", o->keep);
		snprintf(url, sizeof(url), "sqlite:%s", path);
		db = open_url(url);
	} else {
		if (o->keep != NULL) {
			snprintf(path, sizeof(path), "%s", o->keep);
			snprintf(url, sizeof(url), "sqlite:%s", path);
			db = open_url(url);
		} else {
			db = open_fresh(o, false, path, sizeof(path));
		}
		s = ingest(db, 0, total, 1000, o->devices);
	}
	check(db, hist_db_exec(db, "PRAGMA wal_checkpoint(TRUNCATE)"), "checkpoint");
	if (stat(path, &st) != 0)
		st.st_size = 0;
	printf("generate: %ld devices x %ld h = %ld readings in %.1f s (%.0f readings/s), "
	       "file %.2f GiB\n",
	       o->devices, o->hours, total, s, (double)total / s,
	       (double)st.st_size / (1024.0 * 1024 * 1024));
	fflush(stdout);
	/* queries start from a new handle (the OS page cache stays warm) */
	hist_db_close(db);
	snprintf(url, sizeof(url), "sqlite:%s", path);
	db = open_url(url);

	for (int i = 0; i < CHART_DEVICES; i++) {
		uint64_t t = clock_mono_us();

		rows = 0;
		check(db,
		      hist_db_readings(db, names[(long)i * o->devices / CHART_DEVICES], from, to,
				       HIST_LIMIT_MAX, count_reading, &rows),
		      "readings");
		ms[i] = (double)(clock_mono_us() - t) / 1e3;
	}
	print_pct("chart: 1 device, readings, limit 10000", ms, CHART_DEVICES, rows);
	for (int i = 0; i < CHART_DEVICES; i++) {
		uint64_t t = clock_mono_us();

		rows = 0;
		check(db,
		      hist_db_overview(db, names[(long)i * o->devices / CHART_DEVICES], from, to,
				       288, count_bucket, &rows),
		      "overview");
		ms[i] = (double)(clock_mono_us() - t) / 1e3;
	}
	print_pct("chart: 1 device, overview, 288 buckets", ms, CHART_DEVICES, rows);
	for (int i = 0; i < OVERVIEW_RUNS; i++) {
		uint64_t t = clock_mono_us();

		rows = 0;
		check(db, hist_db_overview(db, NULL, from, to, 288, count_bucket, &rows),
		      "overview");
		ms[i] = (double)(clock_mono_us() - t) / 1e3;
	}
	print_pct("overview: all devices, 288 buckets", ms, OVERVIEW_RUNS, rows);
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
				" [--devices D] [--hours H] [--keep FILE] [--no-ingest] [--no-query]\n");
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
	if (o.query)
		query_bench(&o);
	free(names);
	return 0;
}
