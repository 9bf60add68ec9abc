/*
 * The historian's storage handle: picks the backend from the URL, opens and
 * migrates, keeps the error text, and holds the validation every call
 * shares (names, text, times, limits, readings). The SQL of the calls lives
 * in db_query.c, the drivers in db_sqlite.c and db_pg.c.
 */
#include <ctype.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <moat/error.h>

#include "codec/utf8.h"
#include "historian/db_impl.h"

#define TIME_MAX_MS INT64_C(253402300800000) /* 10000-01-01T00:00:00Z */

int hist_fail(struct hist_db *db, int rc, const char *fmt, ...)
{
	char msg[sizeof(db->err)];
	va_list ap;

	/* fmt may print db->err itself (adding context), hence the copy */
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	memcpy(db->err, msg, sizeof(msg));
	return rc;
}

int hist_check_name(struct hist_db *db, const char *what, const char *s)
{
	size_t n = s != NULL ? strlen(s) : 0;

	if (n == 0 || n > HIST_NAME_MAX)
		return hist_fail(db, MOAT_E_INVAL, "%s: 1 to %d characters", what, HIST_NAME_MAX);
	if (!isalnum((unsigned char)s[0]))
		return hist_fail(db, MOAT_E_INVAL, "%s: must start with a letter or digit", what);
	for (size_t i = 0; i < n; i++)
		if (!isalnum((unsigned char)s[i]) && strchr("._:-", s[i]) == NULL)
			return hist_fail(db, MOAT_E_INVAL, "%s: only letters, digits and ._:-",
					 what);
	return MOAT_OK;
}

int hist_check_text(struct hist_db *db, const char *what, const char *s, size_t max)
{
	size_t n = strlen(s);

	if (n > max)
		return hist_fail(db, MOAT_E_INVAL, "%s: at most %zu bytes", what, max);
	/* both backends must take it as is: PostgreSQL refuses bad UTF-8 */
	if (!utf8_is_valid_mqtt((struct moat_bytes){.ptr = (const uint8_t *)s, .len = n}))
		return hist_fail(db, MOAT_E_INVAL, "%s: not UTF-8 text without control characters",
				 what);
	return MOAT_OK;
}

int hist_check_time(struct hist_db *db, const char *what, int64_t time_ms)
{
	if (time_ms < 0 || time_ms >= TIME_MAX_MS)
		return hist_fail(db, MOAT_E_INVAL, "%s: %lld ms is outside 1970..9999", what,
				 (long long)time_ms);
	return MOAT_OK;
}

int hist_check_limit(struct hist_db *db, unsigned limit, unsigned max)
{
	if (limit < 1 || limit > max)
		return hist_fail(db, MOAT_E_INVAL, "limit %u: must be 1 to %u", limit, max);
	return MOAT_OK;
}

static int check_reading(struct hist_db *db, const struct hist_reading *r)
{
	int rc = hist_check_name(db, "reading device", r->device);

	if (rc == MOAT_OK)
		rc = hist_check_time(db, "reading time", r->time_ms);
	if (rc == MOAT_OK && (isinf(r->temperature) || isinf(r->humidity)))
		return hist_fail(db, MOAT_E_INVAL, "reading of %s: infinite value", r->device);
	if (rc == MOAT_OK && (unsigned)r->relay > HIST_RELAY_ON)
		return hist_fail(db, MOAT_E_INVAL, "reading of %s: bad relay state", r->device);
	return rc;
}

static int by_device_time(const void *a, const void *b)
{
	const struct hist_reading *x = *(const struct hist_reading *const *)a;
	const struct hist_reading *y = *(const struct hist_reading *const *)b;
	int c = strcmp(x->device, y->device);

	if (c != 0)
		return c;
	return (x->time_ms > y->time_ms) - (x->time_ms < y->time_ms);
}

int hist_db_add_readings(struct hist_db *db, const struct hist_reading *r, size_t n)
{
	const struct hist_reading **sorted;
	int64_t *ids;
	int rc;

	if (n == 0)
		return MOAT_OK;
	if (n > HIST_BATCH_MAX)
		return hist_fail(db, MOAT_E_LIMIT, "batch of %zu readings: at most %d", n,
				 HIST_BATCH_MAX);
	for (size_t i = 0; i < n; i++) {
		rc = check_reading(db, &r[i]);
		if (rc < 0)
			return rc;
	}
	sorted = malloc(n * sizeof(*sorted));
	ids = malloc(n * sizeof(*ids));
	if (sorted == NULL || ids == NULL) {
		rc = hist_fail(db, MOAT_E_NOMEM, "out of memory");
		goto out_free;
	}
	for (size_t i = 0; i < n; i++)
		sorted[i] = &r[i];
	qsort(sorted, n, sizeof(*sorted), by_device_time);
	rc = db->ops->begin(db);
	if (rc < 0)
		goto out_free;
	/* each device run starts with its oldest reading: the first seen time */
	for (size_t i = 0; rc == MOAT_OK && i < n; i++)
		if (i > 0 && strcmp(sorted[i]->device, sorted[i - 1]->device) == 0)
			ids[i] = ids[i - 1];
		else
			rc = hist_device_id(db, sorted[i]->device, sorted[i]->time_ms, &ids[i]);
	if (rc == MOAT_OK)
		rc = db->ops->add_readings(db, sorted, ids, n);
	rc = db->ops->end(db, rc);
	if (rc < 0)
		devcache_fini(&db->devices); /* it may hold ids of devices rolled back */
out_free:
	free(ids);
	free(sorted);
	return rc;
}

int64_t hist_rollup_cell(int64_t time_ms)
{
	return time_ms - time_ms % HIST_ROLLUP_MS;
}

struct hist_val hv_f64(double f)
{
	if (isnan(f))
		return (struct hist_val){.type = HIST_NULL};
	return (struct hist_val){.type = HIST_F64, .f = f};
}

struct hist_val hv_text(const char *s)
{
	return (struct hist_val){.type = HIST_TEXT, .p = s, .len = strlen(s)};
}

struct hist_val hv_blob(const void *p, size_t len)
{
	return (struct hist_val){.type = HIST_BLOB, .p = len > 0 ? p : "", .len = len};
}

int64_t hv_as_i64(const struct hist_val *v)
{
	if (v->type == HIST_I64)
		return v->i;
	if (v->type == HIST_F64)
		return (int64_t)v->f;
	return 0;
}

double hv_as_f64(const struct hist_val *v)
{
	if (v->type == HIST_F64)
		return v->f;
	if (v->type == HIST_I64)
		return (double)v->i;
	return NAN;
}

const char *hv_as_text(const struct hist_val *v)
{
	return v->type == HIST_TEXT ? (const char *)v->p : "";
}

static int url_fail(struct moat_diag *diag, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static int url_fail(struct moat_diag *diag, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(diag->msg, sizeof(diag->msg), fmt, ap);
	va_end(ap);
	return MOAT_E_CONFIG;
}

/* Picks the backend for <url>; *<target> is what the backend connects to. */
static int pick_backend(const char *url, const struct hist_db_ops **ops, const char **target,
			struct moat_diag *diag)
{
	static const char hint[] = "use a file path, sqlite:PATH or postgresql://...";
	const char *colon;

	if (url == NULL || url[0] == '\0')
		return url_fail(diag, "database URL is empty; %s", hint);
	if (strncmp(url, "postgresql://", 13) == 0 || strncmp(url, "postgres://", 11) == 0) {
		*ops = &hist_pg_ops;
		*target = url;
		return MOAT_OK;
	}
	if (strncmp(url, "sqlite:", 7) == 0) {
		*ops = &hist_sqlite_ops;
		*target = url + 7;
		if (**target == '\0' || strncmp(*target, "//", 2) == 0)
			return url_fail(diag, "sqlite: URL needs a path (sqlite:/var/lib/h.db)");
		return MOAT_OK;
	}
	colon = strstr(url, "://");
	if (colon != NULL) {
		/* name only the scheme: the rest may hold a password */
		int n = (int)(colon - url) < 32 ? (int)(colon - url) : 32;
		return url_fail(diag, "database URL scheme \"%.*s\" is not supported; %s", n, url,
				hint);
	}
	*ops = &hist_sqlite_ops;
	*target = url;
	return MOAT_OK;
}

int hist_db_open_at(struct hist_db **out, const char *url, int version, struct moat_diag *diag)
{
	const struct hist_db_ops *ops = NULL;
	const char *target = NULL;
	struct hist_db *db;
	int rc;

	if (version < 0 || version > HIST_DB_SCHEMA_VERSION) {
		snprintf(diag->msg, sizeof(diag->msg), "historian: no schema version %d", version);
		return MOAT_E_INVAL;
	}
	rc = pick_backend(url, &ops, &target, diag);
	if (rc < 0)
		return rc;
	db = calloc(1, sizeof(*db));
	if (db == NULL)
		return MOAT_E_NOMEM;
	db->ops = ops;
	rc = ops->open(db, target);
	if (rc < 0)
		goto err_free;
	rc = hist_migrate(db, version);
	if (rc < 0)
		goto err_close;
	*out = db;
	return MOAT_OK;

err_close:
	ops->close(db);
err_free:
	snprintf(diag->msg, sizeof(diag->msg), "%s", db->err);
	free(db);
	return rc;
}

int hist_db_open(struct hist_db **out, const char *url, struct moat_diag *diag)
{
	return hist_db_open_at(out, url, HIST_DB_SCHEMA_VERSION, diag);
}

void hist_db_close(struct hist_db *db)
{
	if (db == NULL)
		return;
	db->ops->close(db);
	devcache_fini(&db->devices);
	free(db);
}

const char *hist_db_backend(const struct hist_db *db)
{
	return db->ops->name;
}

const char *hist_db_errmsg(const struct hist_db *db)
{
	return db->err;
}

int hist_db_exec(struct hist_db *db, const char *sql)
{
	return db->ops->exec(db, sql);
}
