/*
 * The historian's PostgreSQL driver (libpq): connects with the URL as
 * given, prepares each shared statement once per connection (parameters in
 * text format, bytea in binary; results in binary format, decoded by
 * column type). A batch of readings goes by COPY into a temporary staging
 * table, then ONE statement (a data-modifying CTE) inserts them and adds
 * the inserted ones to the rollup. COPY was measured against sending the
 * batch as array parameters to unnest() in one statement
 * (bench/historian_ingest.c, docs/performance.md): about 10 % faster.
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

#define STAGE_SQL                                                                                  \
	"CREATE TEMP TABLE IF NOT EXISTS hist_stage(device_id bigint, time_ms bigint,"             \
	" seq bigint, temperature float8, humidity float8, relay smallint)"                        \
	" ON COMMIT DELETE ROWS"
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

static int pg_exec(struct hist_db *db, const char *sql)
{
	return check(db, "exec", PQexec(pg(db)->conn, sql));
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
	/* the batch staging table, per connection, outside any transaction */
	rc = pg_exec(db, STAGE_SQL);
	if (rc < 0)
		pg_close(db);
	return rc;
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

#define BATCH_NAME "hq_batch"
#define BATCH_SQL                                                                                  \
	"WITH ins AS (INSERT INTO readings(device_id, time_ms, seq, temperature, humidity, relay)" \
	" SELECT * FROM hist_stage ON CONFLICT DO NOTHING"                                         \
	" RETURNING device_id, time_ms, temperature, humidity)" HIST_SQL_ROLLUP_FROM_INS

static void fmt_f64(char *out, double f)
{
	if (isnan(f))
		snprintf(out, NUM_LEN, "\\N");
	else
		snprintf(out, NUM_LEN, "%.17g", f);
}

/* Appends reading <r> of device <id> to <b> as a line of COPY's text format. */
static int copy_line(struct buf *b, const struct hist_reading *r, int64_t id)
{
	char seq[NUM_LEN], temp[NUM_LEN], hum[NUM_LEN], line[6 * NUM_LEN];
	int len;

	if (r->seq >= 0)
		snprintf(seq, sizeof(seq), "%lld", (long long)r->seq);
	else
		snprintf(seq, sizeof(seq), "\\N");
	fmt_f64(temp, r->temperature);
	fmt_f64(hum, r->humidity);
	len = snprintf(line, sizeof(line), "%lld\t%lld\t%s\t%s\t%s\t%s\n", (long long)id,
		       (long long)r->time_ms, seq, temp, hum,
		       r->relay == HIST_RELAY_ON    ? "1"
		       : r->relay == HIST_RELAY_OFF ? "0"
						    : "\\N");
	return buf_append(b, line, (size_t)len);
}

/* Sends <b> to COPY hist_stage FROM STDIN and waits for its end. */
static int copy_in(struct hist_db *db, const struct buf *b)
{
	PGconn *c = pg(db)->conn;
	PGresult *res = PQexec(c, "COPY hist_stage FROM STDIN");
	int rc = MOAT_OK;

	if (PQresultStatus(res) != PGRES_COPY_IN)
		return check(db, "copy", res);
	PQclear(res);
	if (PQputCopyData(c, (const char *)buf_head(b), (int)buf_used(b)) != 1)
		rc = pg_fail(db, "copy data", NULL);
	if (PQputCopyEnd(c, rc == MOAT_OK ? NULL : "client error") != 1 && rc == MOAT_OK)
		rc = pg_fail(db, "copy end", NULL);
	/* drain every result, keeping the first error */
	while ((res = PQgetResult(c)) != NULL) {
		if (rc == MOAT_OK)
			rc = check(db, "copy", res);
		else
			PQclear(res);
	}
	return rc;
}

static int pg_add_readings(struct hist_db *db, const struct hist_reading *const *r,
			   const int64_t *ids, size_t n)
{
	struct pg *g = pg(db);
	struct buf lines = {0};
	int rc = MOAT_OK;

	_Static_assert(HIST_ROLLUP_MS == 300000, "HIST_SQL_ROLLUP_FROM_INS spells the width");
	if (!g->batch_prepared) {
		rc = check(db, "prepare", PQprepare(g->conn, BATCH_NAME, BATCH_SQL, 0, NULL));
		g->batch_prepared = rc == MOAT_OK;
	}
	for (size_t i = 0; rc == MOAT_OK && i < n; i++)
		if (copy_line(&lines, r[i], ids[i]) < 0)
			rc = hist_fail(db, MOAT_E_NOMEM, "out of memory");
	if (rc == MOAT_OK)
		rc = copy_in(db, &lines);
	if (rc == MOAT_OK)
		rc = check(db, "add readings",
			   PQexecPrepared(g->conn, BATCH_NAME, 0, NULL, NULL, NULL, 0));
	buf_fini(&lines);
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
