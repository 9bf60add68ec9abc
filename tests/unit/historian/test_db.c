/* Historian storage: the same cases for both backends. Without
 * MOAT_HIST_DB_URL each case gets a fresh SQLite file in a temp dir; with
 * it (a postgresql:// URL, set by tests/integration/pgserver.py) each case
 * starts from an empty public schema. Covers migrations (fresh, v1 to the
 * newest, refusing a newer database), batched readings and the queries,
 * device state, commands, alerts, reject counters, the limits and bad URLs. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include <moat/error.h>

#include "historian/db.h"
#include "historian/db_impl.h" /* hist_db_exec: raw SQL to set up old or future schemas */

#define T0 INT64_C(1764565200000) /* 2025-12-01T05:00:00Z */

struct fx {
	char dir[64];
	char url[512];
	bool pg;
	struct hist_db *db;
	struct moat_diag d;
};

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	const char *pg = getenv("MOAT_HIST_DB_URL");

	assert_non_null(f);
	if (pg != NULL && pg[0] != '\0') {
		struct hist_db *db;

		f->pg = true;
		snprintf(f->url, sizeof(f->url), "%s", pg);
		assert_int_equal(hist_db_open_at(&db, f->url, 0, &f->d), MOAT_OK);
		assert_int_equal(
		    hist_db_exec(db, "DROP SCHEMA IF EXISTS public CASCADE; CREATE SCHEMA public"),
		    MOAT_OK);
		hist_db_close(db);
	} else {
		snprintf(f->dir, sizeof(f->dir), "/tmp/moat-hist-XXXXXX");
		assert_non_null(mkdtemp(f->dir));
		snprintf(f->url, sizeof(f->url), "sqlite:%s/h.db", f->dir);
	}
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;
	char cmd[160];

	hist_db_close(f->db);
	if (!f->pg) {
		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->dir);
		assert_int_equal(system(cmd), 0);
	}
	free(f);
	return 0;
}

static struct hist_db *open_db(struct fx *f)
{
	int rc = hist_db_open(&f->db, f->url, &f->d);

	if (rc != MOAT_OK)
		fail_msg("open: %s", f->d.msg);
	assert_string_equal(hist_db_backend(f->db), f->pg ? "postgresql" : "sqlite");
	return f->db;
}

/* Asserts MOAT_OK, showing the database's message otherwise. */
#define assert_db_ok(db, expr)                                                                     \
	do {                                                                                       \
		int rc_ = (expr);                                                                  \
		if (rc_ != MOAT_OK)                                                                \
			fail_msg("%s: %d: %s", #expr, rc_, hist_db_errmsg(db));                    \
	} while (0)

static struct hist_reading rd(const char *dev, int64_t t, double temp, double hum)
{
	return (struct hist_reading){.device = dev,
				     .time_ms = t,
				     .seq = (t - T0) / 5000,
				     .temperature = temp,
				     .humidity = hum,
				     .relay = HIST_RELAY_ON};
}

/* ---- collectors ---- */

struct rows {
	size_t n;
	int stop_after; /* return MOAT_E_LIMIT after this many (0: never) */
	struct hist_reading r[64];
	struct hist_bucket b[64];
	char names[64][HIST_NAME_MAX + 1];
	struct hist_device dev[16];
	int64_t counts[16];
	uint8_t env[64];
	size_t env_len;
};

static int on_reading(void *arg, const struct hist_reading *r)
{
	struct rows *x = arg;

	if (x->n < 64)
		x->r[x->n] = *r;
	x->n++;
	return x->stop_after > 0 && (int)x->n >= x->stop_after ? MOAT_E_LIMIT : MOAT_OK;
}

static int on_bucket(void *arg, const struct hist_bucket *b)
{
	struct rows *x = arg;

	if (x->n < 64) {
		x->b[x->n] = *b;
		snprintf(x->names[x->n], sizeof(x->names[0]), "%s", b->device);
	}
	x->n++;
	return MOAT_OK;
}

static int on_device(void *arg, const struct hist_device *d)
{
	struct rows *x = arg;

	if (x->n < 16)
		x->dev[x->n] = *d;
	x->n++;
	return MOAT_OK;
}

static int on_alert(void *arg, const struct hist_alert *a)
{
	struct rows *x = arg;

	if (x->n < 64) {
		snprintf(x->names[x->n], sizeof(x->names[0]), "%s/%s", a->device, a->kind);
		if (x->n == 0) {
			assert_true(a->envelope_len <= sizeof(x->env));
			memcpy(x->env, a->envelope, a->envelope_len);
			x->env_len = a->envelope_len;
		}
	}
	x->n++;
	return MOAT_OK;
}

static int on_reject(void *arg, const char *reason, int64_t count, int64_t last_ms)
{
	struct rows *x = arg;

	(void)last_ms;
	if (x->n < 16) {
		snprintf(x->names[x->n], sizeof(x->names[0]), "%s", reason);
		x->counts[x->n] = count;
	}
	x->n++;
	return MOAT_OK;
}

/* ---- migrations ---- */

static void open_fresh_migrates_to_newest(void **state)
{
	struct fx *f = *state;
	int v = -1;

	open_db(f);
	assert_int_equal(hist_db_schema_version(f->db, &v), MOAT_OK);
	assert_int_equal(v, HIST_DB_SCHEMA_VERSION);
	hist_db_close(f->db);
	/* reopening an up-to-date database changes nothing */
	open_db(f);
	assert_int_equal(hist_db_schema_version(f->db, &v), MOAT_OK);
	assert_int_equal(v, HIST_DB_SCHEMA_VERSION);
}

static void upgrade_from_v1_keeps_rows(void **state)
{
	struct fx *f = *state;
	struct hist_command c;
	int v = -1;

	assert_int_equal(hist_db_open_at(&f->db, f->url, 1, &f->d), MOAT_OK);
	assert_int_equal(hist_db_schema_version(f->db, &v), MOAT_OK);
	assert_int_equal(v, 1);
	/* v1 has no commands.detail: a command written by v1 code */
	assert_int_equal(hist_db_exec(f->db, "INSERT INTO commands(id, device, state, requested_by,"
					     " created_ms, status, updated_ms) VALUES('c1',"
					     " 'dev-1', 1, 'alice', 1000, 'pending', 1000)"),
			 MOAT_OK);
	assert_int_equal(hist_db_get_command(f->db, "c1", &c), MOAT_E_IO); /* no detail yet */
	hist_db_close(f->db);
	f->db = NULL;

	open_db(f);
	assert_int_equal(hist_db_schema_version(f->db, &v), MOAT_OK);
	assert_int_equal(v, 2);
	assert_int_equal(hist_db_get_command(f->db, "c1", &c), MOAT_OK);
	assert_string_equal(c.device, "dev-1");
	assert_string_equal(c.detail, "");
	assert_int_equal(c.status, HIST_CMD_PENDING);
	assert_int_equal(
	    hist_db_update_command(f->db, "c1", HIST_CMD_ACKNOWLEDGED, 2000, "relay on"), MOAT_OK);
	assert_int_equal(hist_db_get_command(f->db, "c1", &c), MOAT_OK);
	assert_string_equal(c.detail, "relay on");
}

static void refuses_newer_database(void **state)
{
	struct fx *f = *state;

	open_db(f);
	assert_int_equal(hist_db_exec(f->db, "INSERT INTO schema_migrations(version, applied_ms,"
					     " name) VALUES(99, 0, 'from the future')"),
			 MOAT_OK);
	hist_db_close(f->db);
	f->db = NULL;
	assert_int_equal(hist_db_open(&f->db, f->url, &f->d), MOAT_E_UNSUPPORTED);
	assert_null(f->db);
	assert_non_null(strstr(f->d.msg, "schema version 99 is newer"));
	assert_non_null(strstr(f->d.msg, "use a newer moat-historian"));
}

/* ---- readings ---- */

/* 10 devices x 100 readings at 5 s, given in a scrambled order. */
static void add_fleet(struct hist_db *db)
{
	static char names[10][16];
	struct hist_reading *r = calloc(1000, sizeof(*r));

	assert_non_null(r);
	for (int d = 0; d < 10; d++)
		snprintf(names[d], sizeof(names[d]), "dev-%d", d);
	for (int i = 0; i < 1000; i++) {
		int k = (i * 7919) % 1000; /* a permutation of 0..999 */
		int d = k % 10, s = k / 10;

		r[i] = rd(names[d], T0 + s * 5000LL, 20.0 + s * 0.1 + d, 40.0 + d);
	}
	assert_db_ok(db, hist_db_add_readings(db, r, 1000));
	free(r);
}

static void readings_newest_first_in_range(void **state)
{
	struct fx *f = *state;
	struct rows x = {0};

	add_fleet(open_db(f));
	/* [T0+50 s, T0+100 s): seconds 50..95, newest first, limit 5 */
	assert_int_equal(
	    hist_db_readings(f->db, "dev-3", T0 + 50000, T0 + 100000, 5, on_reading, &x), MOAT_OK);
	assert_int_equal(x.n, 5);
	assert_int_equal(x.r[0].time_ms, T0 + 95000);
	assert_int_equal(x.r[4].time_ms, T0 + 75000);
	assert_string_equal(x.r[0].device, "dev-3");
	assert_int_equal(x.r[0].seq, 19);
	assert_float_equal(x.r[0].temperature, 20.0 + 1.9 + 3, 1e-9);
	assert_float_equal(x.r[0].humidity, 43.0, 1e-9);
	assert_int_equal(x.r[0].relay, HIST_RELAY_ON);

	/* the end of the range is exclusive, the start inclusive */
	memset(&x, 0, sizeof(x));
	assert_int_equal(
	    hist_db_readings(f->db, "dev-3", T0 + 50000, T0 + 55000, 100, on_reading, &x), MOAT_OK);
	assert_int_equal(x.n, 1);
	assert_int_equal(x.r[0].time_ms, T0 + 50000);

	memset(&x, 0, sizeof(x));
	assert_int_equal(hist_db_readings(f->db, "dev-3", T0, T0 + 500000, 10000, on_reading, &x),
			 MOAT_OK);
	assert_int_equal(x.n, 100);

	memset(&x, 0, sizeof(x));
	assert_int_equal(hist_db_readings(f->db, "nobody", T0, T0 + 500000, 10, on_reading, &x),
			 MOAT_OK);
	assert_int_equal(x.n, 0);

	/* a callback's error stops the listing and is returned */
	memset(&x, 0, sizeof(x));
	x.stop_after = 3;
	assert_int_equal(hist_db_readings(f->db, "dev-3", T0, T0 + 500000, 100, on_reading, &x),
			 MOAT_E_LIMIT);
	assert_int_equal(x.n, 3);
}

static void redelivered_readings_are_skipped(void **state)
{
	struct fx *f = *state;
	struct rows x = {0}, y = {0};
	struct hist_reading again[2] = {rd("dev-1", T0, 99.0, 99.0), rd("dev-1", T0, 98.0, 98.0)};

	add_fleet(open_db(f));
	assert_int_equal(hist_db_overview(f->db, "dev-1", T0, T0 + 500000, 1, on_bucket, &x),
			 MOAT_OK);
	assert_int_equal(hist_db_add_readings(f->db, again, 2), MOAT_OK);
	add_fleet(f->db);
	assert_int_equal(hist_db_overview(f->db, "dev-1", T0, T0 + 500000, 1, on_bucket, &y),
			 MOAT_OK);
	assert_int_equal(x.n, 1);
	assert_int_equal(y.n, 1);
	assert_int_equal(y.b[0].count, 100);
	assert_float_equal(y.b[0].t_max, x.b[0].t_max, 1e-9);
	memset(&x, 0, sizeof(x));
	assert_int_equal(hist_db_readings(f->db, "dev-1", T0, T0 + 1, 10, on_reading, &x), MOAT_OK);
	assert_int_equal(x.n, 1);
	assert_float_equal(x.r[0].temperature, 21.0, 1e-9); /* the first one stays */
}

static void overview_buckets_in_sql(void **state)
{
	struct fx *f = *state;
	struct hist_reading r[6] = {
	    rd("a", T0, 10.0, NAN),	      rd("a", T0 + 60000, 20.0, NAN),
	    rd("a", T0 + 600000, 30.0, 50.0), rd("b", T0 + 1000, 5.0, 1.0),
	    rd("b", T0 + 1200000, 7.0, 3.0),  rd("b", T0 + 1205000, NAN, 5.0),
	};
	struct rows x = {0};

	open_db(f);
	assert_db_ok(f->db, hist_db_add_readings(f->db, r, 6));
	/* T0 is on a 5-minute boundary; 30 minutes in 3 buckets of 10 minutes */
	assert_int_equal(hist_db_overview(f->db, NULL, T0, T0 + 1800000, 3, on_bucket, &x),
			 MOAT_OK);
	/* by bucket, then device */
	assert_int_equal(x.n, 4);
	assert_string_equal(x.names[0], "a");
	assert_int_equal(x.b[0].index, 0);
	assert_int_equal(x.b[0].start_ms, T0);
	assert_int_equal(x.b[0].count, 2);
	assert_float_equal(x.b[0].t_avg, 15.0, 1e-9);
	assert_float_equal(x.b[0].t_min, 10.0, 1e-9);
	assert_float_equal(x.b[0].t_max, 20.0, 1e-9);
	assert_true(isnan(x.b[0].h_avg));
	assert_true(isnan(x.b[0].h_min));
	assert_string_equal(x.names[1], "b");
	assert_int_equal(x.b[1].index, 0);
	assert_float_equal(x.b[1].t_avg, 5.0, 1e-9);
	assert_string_equal(x.names[2], "a");
	assert_int_equal(x.b[2].index, 1);
	assert_int_equal(x.b[2].start_ms, T0 + 600000);
	assert_float_equal(x.b[2].h_max, 50.0, 1e-9);
	assert_string_equal(x.names[3], "b");
	assert_int_equal(x.b[3].index, 2);
	assert_int_equal(x.b[3].count, 2);
	assert_float_equal(x.b[3].t_avg, 7.0, 1e-9); /* the NAN is no value, not a zero */
	assert_float_equal(x.b[3].h_avg, 4.0, 1e-9);
	assert_float_equal(x.b[3].h_min, 3.0, 1e-9);

	/* 5-minute buckets: the rollup cells as they are, same values */
	memset(&x, 0, sizeof(x));
	assert_int_equal(hist_db_overview(f->db, NULL, T0, T0 + 1800000, 6, on_bucket, &x),
			 MOAT_OK);
	assert_int_equal(x.n, 4);
	assert_string_equal(x.names[0], "a");
	assert_float_equal(x.b[0].t_avg, 15.0, 1e-9);
	assert_true(isnan(x.b[0].h_avg));
	assert_string_equal(x.names[1], "b");
	assert_string_equal(x.names[2], "a");
	assert_int_equal(x.b[2].index, 2);
	assert_int_equal(x.b[2].start_ms, T0 + 600000);
	assert_int_equal(x.b[3].index, 4);
	assert_int_equal(x.b[3].count, 2);
	assert_float_equal(x.b[3].t_avg, 7.0, 1e-9);
	assert_float_equal(x.b[3].h_max, 5.0, 1e-9);

	/* one device; width rounded up to 5 minutes even when 1000 buckets are asked */
	memset(&x, 0, sizeof(x));
	assert_int_equal(hist_db_overview(f->db, "b", T0, T0 + 1800000, 1000, on_bucket, &x),
			 MOAT_OK);
	assert_int_equal(x.n, 2);
	assert_int_equal(x.b[1].index, 4);
	assert_int_equal(x.b[1].start_ms, T0 + 1200000);
}

/* ---- the overview against the raw readings ---- */

enum { AGG_DEVICES = 3, AGG_MAX = AGG_DEVICES * 12 };

struct agg {
	size_t n;
	struct hist_bucket b[AGG_MAX];
	char names[AGG_MAX][HIST_NAME_MAX + 1];
};

static int on_agg(void *arg, const struct hist_bucket *b)
{
	struct agg *a = arg;

	assert_true(a->n < AGG_MAX);
	a->b[a->n] = *b;
	snprintf(a->names[a->n], sizeof(a->names[0]), "%s", b->device);
	a->b[a->n].device = a->names[a->n];
	a->n++;
	return MOAT_OK;
}

/* avg/min/max of <v> over the readings of device <d> in [from, to):
 * *n_out counts the values that are numbers. */
static void raw_stats(const struct hist_reading *r, size_t n, const char *d, int64_t from,
		      int64_t to, bool humidity, double *avg, double *min, double *max,
		      int64_t *n_out)
{
	double sum = 0;

	*n_out = 0;
	*min = *max = *avg = NAN;
	for (size_t i = 0; i < n; i++) {
		double v = humidity ? r[i].humidity : r[i].temperature;

		if (strcmp(r[i].device, d) != 0 || r[i].time_ms < from || r[i].time_ms >= to ||
		    isnan(v))
			continue;
		sum += v;
		*min = *n_out == 0 || v < *min ? v : *min;
		*max = *n_out == 0 || v > *max ? v : *max;
		++*n_out;
	}
	if (*n_out > 0)
		*avg = sum / (double)*n_out;
}

static void assert_same_value(double got, double want)
{
	if (isnan(want))
		assert_true(isnan(got));
	else
		assert_float_equal(got, want, 1e-9);
}

/* Each bucket of <a> (an overview of [T0, T0 + 1 h) in buckets of <width>)
 * is the aggregate of the raw readings, and every non-empty (bucket,
 * device) is there, ordered by bucket, then device. */
static void assert_overview_is_raw(const struct agg *a, const struct hist_reading *r, size_t n,
				   int64_t width, bool temperature_only)
{
	static const char *const dev[AGG_DEVICES] = {"a", "b", "c"};
	size_t k = 0;

	for (int64_t from = T0; from < T0 + 3600000; from += width)
		for (int d = 0; d < AGG_DEVICES; d++) {
			double avg, min, max;
			int64_t count = 0, vals;

			for (size_t i = 0; i < n; i++)
				count += strcmp(r[i].device, dev[d]) == 0 && r[i].time_ms >= from &&
					 r[i].time_ms < from + width;
			if (count == 0)
				continue;
			assert_true(k < a->n);
			assert_string_equal(a->names[k], dev[d]);
			assert_int_equal(a->b[k].start_ms, from);
			assert_int_equal(a->b[k].count, count);
			raw_stats(r, n, dev[d], from, from + width, false, &avg, &min, &max, &vals);
			assert_same_value(a->b[k].t_avg, avg);
			assert_same_value(a->b[k].t_min, min);
			assert_same_value(a->b[k].t_max, max);
			raw_stats(r, n, dev[d], from, from + width, true, &avg, &min, &max, &vals);
			assert_same_value(a->b[k].h_avg, temperature_only ? NAN : avg);
			assert_same_value(a->b[k].h_min, temperature_only ? NAN : min);
			assert_same_value(a->b[k].h_max, temperature_only ? NAN : max);
			k++;
		}
	assert_int_equal(a->n, k);
}

static void overview_equals_the_raw_aggregate(void **state)
{
	struct fx *f = *state;
	static const char *const dev[AGG_DEVICES] = {"a", "b", "c"};
	static const unsigned buckets[] = {12, 4, 1}; /* 5 min (cells), 15 min, 1 h */
	struct hist_reading r[300];
	size_t n = 0;

	/* an hour of readings every 37 s, unevenly valued, some without
	 * temperature or humidity; "c" stops after 20 minutes */
	for (int64_t t = T0; t < T0 + 3600000; t += 37000)
		for (int d = 0; d < AGG_DEVICES && n < 300; d++) {
			long k = (long)n;

			if (d == 2 && t >= T0 + 1200000)
				continue;
			r[n++] = rd(dev[d], t + d,
				    k % 7 == 3 ? NAN : 15.0 + (double)((k * 37) % 101) / 8.0,
				    k % 5 == 1 ? NAN : 30.0 + (double)((k * 53) % 97) / 4.0);
		}
	open_db(f);
	assert_db_ok(f->db, hist_db_add_readings(f->db, r, n));
	for (size_t i = 0; i < sizeof(buckets) / sizeof(buckets[0]); i++) {
		struct agg all = {0}, t_only = {0};
		int64_t width = 3600000 / buckets[i];

		assert_db_ok(f->db, hist_db_overview(f->db, NULL, T0, T0 + 3600000, buckets[i],
						     on_agg, &all));
		assert_overview_is_raw(&all, r, n, width, false);
		assert_db_ok(f->db, hist_db_temperature_overview(f->db, NULL, T0, T0 + 3600000,
								 buckets[i], on_agg, &t_only));
		assert_overview_is_raw(&t_only, r, n, width, true);
	}
}

static void device_state_moves_forward(void **state)
{
	struct fx *f = *state;
	struct hist_reading r[3] = {rd("dev-b", T0 + 10000, 21.0, 40.0), rd("dev-a", T0, 1.0, 2.0),
				    rd("dev-b", T0 + 5000, 20.0, 39.0)};
	struct hist_reading old = rd("dev-b", T0, 5.0, 5.0);
	struct rows x = {0};

	open_db(f);
	r[0].relay = HIST_RELAY_OFF;
	assert_db_ok(f->db, hist_db_add_readings(f->db, r, 3));
	assert_int_equal(hist_db_add_readings(f->db, &old, 1), MOAT_OK); /* older: no change */
	assert_int_equal(hist_db_set_online(f->db, "dev-b", true, T0 + 20000), MOAT_OK);
	assert_int_equal(hist_db_set_online(f->db, "dev-b", false, T0 + 15000), MOAT_OK);
	assert_int_equal(hist_db_set_online(f->db, "dev-c", false, T0 + 1), MOAT_OK);
	assert_int_equal(hist_db_set_relay(f->db, "dev-a", true, T0 + 30000), MOAT_OK);

	assert_int_equal(hist_db_list_devices(f->db, on_device, &x), MOAT_OK);
	assert_int_equal(x.n, 3);
	assert_string_equal(x.dev[0].name, "dev-a");
	assert_int_equal(x.dev[0].relay, HIST_RELAY_ON);
	assert_int_equal(x.dev[0].relay_ms, T0 + 30000);
	assert_int_equal(x.dev[0].online, HIST_ONLINE_UNKNOWN);
	assert_string_equal(x.dev[1].name, "dev-b");
	assert_int_equal(x.dev[1].last.time_ms, T0 + 10000);
	assert_float_equal(x.dev[1].last.temperature, 21.0, 1e-9);
	assert_int_equal(x.dev[1].relay, HIST_RELAY_OFF);
	assert_int_equal(x.dev[1].online, HIST_ONLINE_YES); /* the later event wins */
	assert_int_equal(x.dev[1].online_ms, T0 + 20000);
	assert_int_equal(x.dev[1].last_seen_ms, T0 + 20000);
	assert_int_equal(x.dev[1].first_seen_ms, T0 + 5000);
	assert_string_equal(x.dev[2].name, "dev-c");
	assert_int_equal(x.dev[2].online, HIST_ONLINE_NO);
	assert_int_equal(x.dev[2].last.time_ms, 0);
	assert_true(isnan(x.dev[2].last.temperature));
}

/* ---- commands, alerts, rejects ---- */

static void commands_pending_then_final(void **state)
{
	struct fx *f = *state;
	struct hist_command c = {.id = "cmd-1",
				 .device = "dev-1",
				 .on = true,
				 .requested_by = "alice",
				 .created_ms = T0};
	struct hist_command got;

	open_db(f);
	assert_int_equal(hist_db_add_command(f->db, &c), MOAT_OK);
	assert_int_equal(hist_db_add_command(f->db, &c), MOAT_E_DENIED);
	assert_int_equal(hist_db_get_command(f->db, "cmd-1", &got), MOAT_OK);
	assert_int_equal(got.status, HIST_CMD_PENDING);
	assert_true(got.on);
	assert_string_equal(got.requested_by, "alice");
	assert_int_equal(got.created_ms, T0);
	assert_int_equal(got.updated_ms, T0);

	/* quotes are data, never SQL */
	assert_int_equal(hist_db_update_command(f->db, "cmd-1", HIST_CMD_FAILED, T0 + 100,
						"'); DROP TABLE commands; --"),
			 MOAT_OK);
	assert_int_equal(hist_db_get_command(f->db, "cmd-1", &got), MOAT_OK);
	assert_int_equal(got.status, HIST_CMD_FAILED);
	assert_int_equal(got.updated_ms, T0 + 100);
	assert_string_equal(got.detail, "'); DROP TABLE commands; --");
	assert_string_equal(hist_cmd_status_name(got.status), "failed");

	assert_int_equal(
	    hist_db_update_command(f->db, "cmd-1", HIST_CMD_ACKNOWLEDGED, T0 + 200, NULL),
	    MOAT_E_DENIED);
	assert_non_null(strstr(hist_db_errmsg(f->db), "failed already"));
	assert_int_equal(hist_db_update_command(f->db, "cmd-2", HIST_CMD_TIMEOUT, T0, NULL),
			 MOAT_E_NOTFOUND);
	assert_int_equal(hist_db_update_command(f->db, "cmd-1", HIST_CMD_PENDING, T0, NULL),
			 MOAT_E_INVAL);
	assert_int_equal(hist_db_get_command(f->db, "cmd-2", &got), MOAT_E_NOTFOUND);
}

static void alerts_keep_envelope(void **state)
{
	struct fx *f = *state;
	static const uint8_t env[] = {0xd2, 0x84, 0x00, 0x43, 0xa1, 0x01, 0x27, 0x00, 0xff};
	struct hist_alert a = {.device = "dev-1",
			       .time_ms = T0,
			       .kind = "bad-signature",
			       .detail = "kid unknown",
			       .envelope = env,
			       .envelope_len = sizeof(env)};
	struct hist_alert b = {
	    .device = "dev-2", .time_ms = T0 + 1, .kind = "replay", .detail = ""};
	struct rows x = {0};
	int64_t id1 = 0, id2 = 0;

	open_db(f);
	assert_int_equal(hist_db_add_alert(f->db, &a, &id1), MOAT_OK);
	assert_int_equal(hist_db_add_alert(f->db, &b, &id2), MOAT_OK);
	assert_true(id2 > id1);
	a.time_ms = T0 + 2;
	assert_int_equal(hist_db_add_alert(f->db, &a, NULL), MOAT_OK);

	assert_int_equal(hist_db_recent_alerts(f->db, 2, on_alert, &x), MOAT_OK);
	assert_int_equal(x.n, 2);
	assert_string_equal(x.names[0], "dev-1/bad-signature");
	assert_string_equal(x.names[1], "dev-2/replay");
	assert_int_equal(x.env_len, sizeof(env));
	assert_memory_equal(x.env, env, sizeof(env));

	a.envelope_len = HIST_ENVELOPE_MAX + 1;
	assert_int_equal(hist_db_add_alert(f->db, &a, NULL), MOAT_E_INVAL);
	a.envelope_len = 1;
	a.detail = "line\nbreak";
	assert_int_equal(hist_db_add_alert(f->db, &a, NULL), MOAT_E_INVAL);
	a.detail = "bad \xc3 utf-8";
	assert_int_equal(hist_db_add_alert(f->db, &a, NULL), MOAT_E_INVAL);
	a.detail = "caf\xc3\xa9 \xe2\x9c\x93"; /* UTF-8 text is fine */
	assert_int_equal(hist_db_add_alert(f->db, &a, NULL), MOAT_OK);
}

static void rejects_counted_by_reason(void **state)
{
	struct fx *f = *state;
	struct rows x = {0};

	open_db(f);
	assert_int_equal(hist_db_count_reject(f->db, "bad-json", T0), MOAT_OK);
	assert_int_equal(hist_db_count_reject(f->db, "replay", T0), MOAT_OK);
	assert_int_equal(hist_db_count_reject(f->db, "bad-json", T0 + 1), MOAT_OK);
	assert_int_equal(hist_db_count_reject(f->db, "bad json", T0), MOAT_E_INVAL);
	assert_int_equal(hist_db_list_rejects(f->db, on_reject, &x), MOAT_OK);
	assert_int_equal(x.n, 2);
	assert_string_equal(x.names[0], "bad-json");
	assert_int_equal(x.counts[0], 2);
	assert_string_equal(x.names[1], "replay");
	assert_int_equal(x.counts[1], 1);
}

/* ---- validation ---- */

static void limits_and_inputs_validated(void **state)
{
	struct fx *f = *state;
	struct rows x = {0};
	struct hist_reading r = rd("dev-1", T0, 1.0, 1.0);
	struct hist_reading *many = calloc(HIST_BATCH_MAX + 1, sizeof(*many));
	char long_name[HIST_NAME_MAX + 2];

	open_db(f);
	assert_int_equal(hist_db_readings(f->db, "dev-1", T0, T0 + 1, 0, on_reading, &x),
			 MOAT_E_INVAL);
	assert_int_equal(
	    hist_db_readings(f->db, "dev-1", T0, T0 + 1, HIST_LIMIT_MAX + 1, on_reading, &x),
	    MOAT_E_INVAL);
	assert_non_null(strstr(hist_db_errmsg(f->db), "limit 10001"));
	assert_int_equal(
	    hist_db_readings(f->db, "dev-1", T0, T0 + 1, HIST_LIMIT_MAX, on_reading, &x), MOAT_OK);
	assert_int_equal(hist_db_readings(f->db, "dev-1", T0, T0, 1, on_reading, &x), MOAT_E_INVAL);
	assert_int_equal(hist_db_readings(f->db, "dev-1", -1, T0, 1, on_reading, &x), MOAT_E_INVAL);
	assert_int_equal(hist_db_overview(f->db, NULL, T0, T0 + 1, 0, on_bucket, &x), MOAT_E_INVAL);
	assert_int_equal(
	    hist_db_overview(f->db, NULL, T0, T0 + 1, HIST_BUCKETS_MAX + 1, on_bucket, &x),
	    MOAT_E_INVAL);
	assert_int_equal(hist_db_recent_alerts(f->db, 0, on_alert, &x), MOAT_E_INVAL);

	memset(long_name, 'a', sizeof(long_name) - 1);
	long_name[sizeof(long_name) - 1] = '\0';
	const char *bad_names[] = {"", "a b", "-lead", "x'y", "d\xc3\xa9v", long_name};
	for (size_t i = 0; i < sizeof(bad_names) / sizeof(bad_names[0]); i++) {
		r.device = bad_names[i];
		assert_int_equal(hist_db_add_readings(f->db, &r, 1), MOAT_E_INVAL);
		assert_int_equal(hist_db_set_online(f->db, bad_names[i], true, T0), MOAT_E_INVAL);
	}
	long_name[HIST_NAME_MAX] = '\0'; /* exactly the maximum is fine */
	r.device = long_name;
	assert_db_ok(f->db, hist_db_add_readings(f->db, &r, 1));

	r.device = "dev-1";
	r.temperature = INFINITY;
	assert_int_equal(hist_db_add_readings(f->db, &r, 1), MOAT_E_INVAL);
	r.temperature = 1.0;
	r.relay = (enum hist_relay)7;
	assert_int_equal(hist_db_add_readings(f->db, &r, 1), MOAT_E_INVAL);
	r.relay = HIST_RELAY_OFF;
	r.time_ms = -5;
	assert_int_equal(hist_db_add_readings(f->db, &r, 1), MOAT_E_INVAL);

	/* one bad reading in a batch stores nothing */
	struct hist_reading pair[2] = {rd("dev-9", T0, 1, 1), rd("bad name", T0, 1, 1)};
	assert_int_equal(hist_db_add_readings(f->db, pair, 2), MOAT_E_INVAL);
	memset(&x, 0, sizeof(x));
	assert_int_equal(hist_db_list_devices(f->db, on_device, &x), MOAT_OK);
	assert_int_equal(x.n, 1); /* only long_name */

	assert_non_null(many);
	for (int i = 0; i <= HIST_BATCH_MAX; i++)
		many[i] = rd("dev-1", T0 + i, 1, 1);
	assert_int_equal(hist_db_add_readings(f->db, many, HIST_BATCH_MAX + 1), MOAT_E_LIMIT);
	assert_int_equal(hist_db_add_readings(f->db, many, HIST_BATCH_MAX), MOAT_OK);
	assert_int_equal(hist_db_add_readings(f->db, many, 0), MOAT_OK);
	free(many);
}

static void bad_urls_refused_without_secrets(void **state)
{
	struct fx *f = *state;
	struct hist_db *db = NULL;

	assert_int_equal(hist_db_open(&db, "", &f->d), MOAT_E_CONFIG);
	assert_non_null(strstr(f->d.msg, "postgresql://"));
	assert_int_equal(hist_db_open(&db, "mysql://root:s3cret@db/x", &f->d), MOAT_E_CONFIG);
	assert_non_null(strstr(f->d.msg, "\"mysql\" is not supported"));
	assert_null(strstr(f->d.msg, "s3cret"));
	assert_int_equal(hist_db_open(&db, "sqlite:", &f->d), MOAT_E_CONFIG);
	assert_int_equal(hist_db_open(&db, "sqlite:/nonexistent-dir/h.db", &f->d), MOAT_E_IO);
	assert_non_null(strstr(f->d.msg, "No such file"));
	/* nothing listens on port 1 */
	assert_int_equal(
	    hist_db_open(&db, "postgresql://u:s3cret@127.0.0.1:1/x?connect_timeout=2", &f->d),
	    MOAT_E_IO);
	assert_null(strstr(f->d.msg, "s3cret"));
	assert_non_null(strstr(f->d.msg, "postgresql: connect"));
	assert_int_equal(hist_db_open_at(&db, f->url, HIST_DB_SCHEMA_VERSION + 1, &f->d),
			 MOAT_E_INVAL);
	assert_null(db);

	/* a file that is not a database */
	char junk[] = "/tmp/moat-hist-junk-XXXXXX", url[64];
	int fd = mkstemp(junk);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, "this is not an SQLite database, only some text\n", 48), 48);
	close(fd);
	snprintf(url, sizeof(url), "sqlite:%s", junk);
	assert_int_equal(hist_db_open(&db, url, &f->d), MOAT_E_IO);
	assert_non_null(strstr(f->d.msg, "not a database"));
	assert_null(db);
	unlink(junk);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(open_fresh_migrates_to_newest, setup, teardown),
	    cmocka_unit_test_setup_teardown(upgrade_from_v1_keeps_rows, setup, teardown),
	    cmocka_unit_test_setup_teardown(refuses_newer_database, setup, teardown),
	    cmocka_unit_test_setup_teardown(readings_newest_first_in_range, setup, teardown),
	    cmocka_unit_test_setup_teardown(redelivered_readings_are_skipped, setup, teardown),
	    cmocka_unit_test_setup_teardown(overview_buckets_in_sql, setup, teardown),
	    cmocka_unit_test_setup_teardown(overview_equals_the_raw_aggregate, setup, teardown),
	    cmocka_unit_test_setup_teardown(device_state_moves_forward, setup, teardown),
	    cmocka_unit_test_setup_teardown(commands_pending_then_final, setup, teardown),
	    cmocka_unit_test_setup_teardown(alerts_keep_envelope, setup, teardown),
	    cmocka_unit_test_setup_teardown(rejects_counted_by_reason, setup, teardown),
	    cmocka_unit_test_setup_teardown(limits_and_inputs_validated, setup, teardown),
	    cmocka_unit_test_setup_teardown(bad_urls_refused_without_secrets, setup, teardown),
	};
	const char *url = getenv("MOAT_HIST_DB_URL");

	printf("# historian db backend: %s\n",
	       url != NULL && url[0] != '\0' ? "postgresql" : "sqlite");
	return cmocka_run_group_tests(tests, NULL, NULL);
}
