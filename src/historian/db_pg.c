/*
 * The historian's PostgreSQL driver (libpq): connects with the URL as
 * given, prepares each shared statement once per connection (parameters in
 * text format, bytea in binary; results in binary format, decoded by
 * column type), and stores a batch of readings with ONE statement: the
 * batch travels as six array parameters that unnest() turns back into rows,
 * and a data-modifying CTE inserts the readings and adds the inserted ones
 * to the rollup. Measured against COPY into a staging
 * table in docs/historian.md.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>

#include <moat/error.h>

#include "base/buf.h"
#include "historian/db_impl.h"

enum {
	PARAMS_MAX = 16,
	NUM_LEN = 32,
	/* pg_type oids (catalog/pg_type_d.h is a server header) */
	OID_BYTEA = 17,
	OID_INT8 = 20,
	OID_INT2 = 21,
	OID_INT4 = 23,
	OID_FLOAT4 = 700,
	OID_FLOAT8 = 701,
	OID_TEXT = 25,
	OID_VARCHAR = 1043,
	SCHEMA_LOCK_KEY = 0x4d6f6174, /* "Moat": pg_advisory_xact_lock key for migrations */
};

struct pg {
	PGconn *conn;
	bool prepared[HQ_COUNT];
	bool batch_prepared;
};

static struct pg *pg(struct hist_db *db)
{
	return db->impl;
}

static int pg_fail(struct hist_db *db, const char *what, const PGresult *res)
{
	const char *msg = res != NULL ? PQresultErrorMessage(res) : PQerrorMessage(pg(db)->conn);
	size_t n = strlen(msg);

	while (n > 0 && (msg[n - 1] == '\n' || msg[n - 1] == ' '))
		n--;
	return hist_fail(db, MOAT_E_IO, "postgresql: %s: %.*s", what, (int)n, msg);
}

/* Checks <res> and frees it unless the caller wants its rows. */
static int check(struct hist_db *db, const char *what, PGresult *res)
{
	ExecStatusType s = PQresultStatus(res);
	int rc = MOAT_OK;

	if (s != PGRES_COMMAND_OK && s != PGRES_TUPLES_OK)
		rc = pg_fail(db, what, res);
	PQclear(res);
	return rc;
}

static void quiet(void *arg, const char *message)
{
	(void)arg; /* NOTICEs (e.g. "drop cascades to ...") are not errors */
	(void)message;
}

static void pg_close(struct hist_db *db)
{
	struct pg *p = pg(db);

	if (p == NULL)
		return;
	PQfinish(p->conn);
	free(p);
	db->impl = NULL;
}

static int pg_open(struct hist_db *db, const char *url)
{
	struct pg *p = calloc(1, sizeof(*p));
	int rc;

	if (p == NULL)
		return hist_fail(db, MOAT_E_NOMEM, "out of memory");
	db->impl = p;
	/* the URL may hold a password: messages quote libpq's text, never the URL */
	p->conn = PQconnectdb(url);
	if (p->conn == NULL || PQstatus(p->conn) != CONNECTION_OK) {
		rc = p->conn != NULL ? pg_fail(db, "connect", NULL)
				     : hist_fail(db, MOAT_E_NOMEM, "postgresql: out of memory");
		pg_close(db);
		return rc;
	}
	PQsetNoticeProcessor(p->conn, quiet, NULL);
	return MOAT_OK;
}

static int pg_exec(struct hist_db *db, const char *sql)
{
	return check(db, "exec", PQexec(pg(db)->conn, sql));
}

static int pg_begin(struct hist_db *db)
{
	return pg_exec(db, "BEGIN");
}

static int pg_end(struct hist_db *db, int rc)
{
	if (rc == MOAT_OK)
		return pg_exec(db, "COMMIT");
	PQclear(PQexec(pg(db)->conn, "ROLLBACK"));
	return rc;
}

static int pg_lock_schema(struct hist_db *db)
{
	char sql[64];

	snprintf(sql, sizeof(sql), "SELECT pg_advisory_xact_lock(%d)", SCHEMA_LOCK_KEY);
	return pg_exec(db, sql);
}

static int pg_table_exists(struct hist_db *db, const char *name, bool *yes)
{
	const char *values[1] = {name};
	PGresult *res;

	res = PQexecParams(pg(db)->conn, "SELECT to_regclass($1) IS NOT NULL", 1, NULL, values,
			   NULL, NULL, 0);
	*yes = PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1 &&
	       strcmp(PQgetvalue(res, 0, 0), "t") == 0;
	return check(db, "schema", res);
}

static uint64_t be(const char *p, int len)
{
	uint64_t v = 0;

	for (int i = 0; i < len; i++)
		v = v << 8 | (uint8_t)p[i];
	return v;
}

/* Decodes column <c> of row <r> (binary format) into <v>. */
static int column(PGresult *res, int r, int c, struct hist_val *v)
{
	const char *p = PQgetvalue(res, r, c);
	int len = PQgetlength(res, r, c);
	Oid type = PQftype(res, c);
	uint64_t u;

	*v = (struct hist_val){.type = HIST_NULL};
	if (PQgetisnull(res, r, c))
		return MOAT_OK;
	if ((type == OID_INT2 && len == 2) || (type == OID_INT4 && len == 4) ||
	    (type == OID_INT8 && len == 8)) {
		u = be(p, len);
		/* sign-extend from len bytes */
		v->i = len == 8	  ? (int64_t)u
		       : len == 4 ? (int32_t)(uint32_t)u
				  : (int16_t)(uint16_t)u;
		v->type = HIST_I64;
	} else if (type == OID_FLOAT8 && len == 8) {
		u = be(p, len);
		memcpy(&v->f, &u, sizeof(v->f));
		v->type = HIST_F64;
	} else if (type == OID_FLOAT4 && len == 4) {
		uint32_t u32 = (uint32_t)be(p, len);
		float f;

		memcpy(&f, &u32, sizeof(f));
		v->f = f;
		v->type = HIST_F64;
	} else if (type == OID_BYTEA) {
		v->type = HIST_BLOB;
		v->p = p;
		v->len = (size_t)len;
	} else if (type == OID_TEXT || type == OID_VARCHAR) {
		/* libpq ends every value with a NUL */
		v->type = HIST_TEXT;
		v->p = p;
		v->len = (size_t)len;
	} else {
		return MOAT_E_UNSUPPORTED; /* a query of ours returns a type not decoded here */
	}
	return MOAT_OK;
}

static int pg_run(struct hist_db *db, enum hist_q q, const char *sql, const struct hist_val *p,
		  size_t n, hist_row_cb *cb, void *arg)
{
	struct pg *g = pg(db);
	const char *values[PARAMS_MAX];
	int lengths[PARAMS_MAX], formats[PARAMS_MAX];
	char nums[PARAMS_MAX][NUM_LEN], name[16];
	struct hist_val cols[PARAMS_MAX];
	PGresult *res;
	int rc = MOAT_OK;

	if (n > PARAMS_MAX)
		return hist_fail(db, MOAT_E_INVAL, "postgresql: too many parameters");
	snprintf(name, sizeof(name), "hq%d", (int)q);
	if (!g->prepared[q]) {
		rc = check(db, "prepare", PQprepare(g->conn, name, sql, (int)n, NULL));
		if (rc < 0)
			return rc;
		g->prepared[q] = true;
	}
	for (size_t i = 0; i < n; i++) {
		formats[i] = 0;
		lengths[i] = 0;
		values[i] = nums[i];
		switch (p[i].type) {
		case HIST_NULL:
			values[i] = NULL;
			break;
		case HIST_I64:
			snprintf(nums[i], NUM_LEN, "%lld", (long long)p[i].i);
			break;
		case HIST_F64:
			snprintf(nums[i], NUM_LEN, "%.17g", p[i].f);
			break;
		case HIST_TEXT:
			values[i] = p[i].p;
			break;
		case HIST_BLOB:
			values[i] = p[i].p;
			lengths[i] = (int)p[i].len;
			formats[i] = 1;
			break;
		}
	}
	res = PQexecPrepared(g->conn, name, (int)n, values, lengths, formats, 1);
	db->changes = strtoll(PQcmdTuples(res), NULL, 10); /* "" for a SELECT */
	if (PQresultStatus(res) != PGRES_TUPLES_OK)
		return check(db, "run", res);
	for (int r = 0; rc == MOAT_OK && cb != NULL && r < PQntuples(res); r++) {
		int ncols = PQnfields(res) < PARAMS_MAX ? PQnfields(res) : PARAMS_MAX;

		for (int c = 0; rc == MOAT_OK && c < ncols; c++)
			if (column(res, r, c, &cols[c]) < 0)
				rc = hist_fail(db, MOAT_E_UNSUPPORTED,
					       "postgresql: column %d has type %u", c,
					       (unsigned)PQftype(res, c));
		if (rc == MOAT_OK)
			rc = cb(arg, cols, (size_t)ncols);
	}
	PQclear(res);
	return rc;
}

/* ---- batched ingest ---- */

enum { ARR_ID, ARR_TIME, ARR_SEQ, ARR_TEMP, ARR_HUM, ARR_RELAY, ARR_COUNT };

static int arr_item(struct buf *b, size_t i, const char *text)
{
	int rc = buf_append(b, i == 0 ? "{" : ",", 1);

	return rc == MOAT_OK ? buf_append(b, text, strlen(text)) : rc;
}

static void fmt_f64(char *out, double f)
{
	if (isnan(f))
		snprintf(out, NUM_LEN, "NULL");
	else
		snprintf(out, NUM_LEN, "%.17g", f);
}

/* Appends reading <r> of device <id> (index <i>) to the six array literals. */
static int arr_add(struct buf *a, size_t i, const struct hist_reading *r, int64_t id)
{
	char num[NUM_LEN];
	int rc;

	snprintf(num, sizeof(num), "%lld", (long long)id);
	rc = arr_item(&a[ARR_ID], i, num);
	snprintf(num, sizeof(num), "%lld", (long long)r->time_ms);
	if (rc == MOAT_OK)
		rc = arr_item(&a[ARR_TIME], i, num);
	if (r->seq >= 0)
		snprintf(num, sizeof(num), "%lld", (long long)r->seq);
	if (rc == MOAT_OK)
		rc = arr_item(&a[ARR_SEQ], i, r->seq >= 0 ? num : "NULL");
	fmt_f64(num, r->temperature);
	if (rc == MOAT_OK)
		rc = arr_item(&a[ARR_TEMP], i, num);
	fmt_f64(num, r->humidity);
	if (rc == MOAT_OK)
		rc = arr_item(&a[ARR_HUM], i, num);
	if (rc == MOAT_OK)
		rc = arr_item(&a[ARR_RELAY], i,
			      r->relay == HIST_RELAY_ON	   ? "1"
			      : r->relay == HIST_RELAY_OFF ? "0"
							   : "NULL");
	return rc;
}

#define BATCH_NAME "hq_batch"
#define BATCH_SQL                                                                                  \
	"WITH b AS (SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::bigint[],"                \
	" $4::float8[], $5::float8[], $6::smallint[])"                                             \
	" AS t(device_id, time_ms, seq, temperature, humidity, relay)),"                           \
	" ins AS (INSERT INTO readings(device_id, time_ms, seq, temperature, humidity, relay)"     \
	" SELECT * FROM b ON CONFLICT DO NOTHING"                                                  \
	" RETURNING device_id, time_ms, temperature, humidity)"                                    \
	" INSERT INTO readings_5m(bucket_ms, device_id, n, t_n, t_sum, t_min, t_max, h_n,"         \
	" h_sum, h_min, h_max) SELECT time_ms - time_ms % 300000, device_id, count(*),"            \
	" count(temperature), coalesce(sum(temperature), 0), min(temperature),"                    \
	" max(temperature), count(humidity), coalesce(sum(humidity), 0), min(humidity),"           \
	" max(humidity) FROM ins GROUP BY 1, 2" HIST_SQL_ROLLUP_MERGE

static int pg_add_readings(struct hist_db *db, const struct hist_reading *const *r,
			   const int64_t *ids, size_t n)
{
	struct pg *g = pg(db);
	struct buf a[ARR_COUNT] = {0};
	const char *values[ARR_COUNT];
	int rc = MOAT_OK;

	_Static_assert(HIST_ROLLUP_MS == 300000, "BATCH_SQL spells the rollup width");
	if (!g->batch_prepared) {
		rc = check(db, "prepare", PQprepare(g->conn, BATCH_NAME, BATCH_SQL, 0, NULL));
		g->batch_prepared = rc == MOAT_OK;
	}
	for (size_t i = 0; rc == MOAT_OK && i < n; i++)
		rc = arr_add(a, i, r[i], ids[i]);
	for (size_t k = 0; k < ARR_COUNT; k++) {
		if (rc == MOAT_OK)
			rc = buf_append(&a[k], "}", 2); /* with the NUL */
		values[k] = (const char *)a[k].data;
	}
	if (rc == MOAT_OK)
		rc = check(db, "add readings",
			   PQexecPrepared(g->conn, BATCH_NAME, ARR_COUNT, values, NULL, NULL, 0));
	else if (rc == MOAT_E_NOMEM)
		hist_fail(db, rc, "out of memory");
	for (size_t k = 0; k < ARR_COUNT; k++)
		buf_fini(&a[k]);
	return rc;
}

const struct hist_db_ops hist_pg_ops = {
    .name = "postgresql",
    .open = pg_open,
    .close = pg_close,
    .exec = pg_exec,
    .begin = pg_begin,
    .end = pg_end,
    .lock_schema = pg_lock_schema,
    .table_exists = pg_table_exists,
    .run = pg_run,
    .add_readings = pg_add_readings,
};
