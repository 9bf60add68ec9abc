/*
 * The registry database: opening with WAL and foreign keys, the versioned
 * schema and its migrations, transactions, error text, and the audit
 * trail. Things live in reg_thing.c, credentials in reg_cred.c.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cjson/cJSON.h>

#include <moat/error.h>

#include "sc/registry_impl.h"

#include "base/file.h"

/* Version 3: each certificate's SHA-256 thumbprint (RFC 8705 x5t#S256), so
 * access tokens can be bound to the thing's newest certificate. NULL for
 * certificates recorded before. */
static const char migration_cert_x5t[] = "ALTER TABLE certs ADD COLUMN x5t_s256 BLOB"
					 " CHECK(x5t_s256 IS NULL OR length(x5t_s256) = 32);";

/* Migration n takes the schema from version n-1 to n. Each runs in one
 * transaction with the version bump. Constant text, never built at run time. */
static const char *const migrations[REG_SCHEMA_VERSION] = {
    "CREATE TABLE things(id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE,"
    " status TEXT NOT NULL CHECK(status IN ('active','revoked')),"
    " created INTEGER NOT NULL, updated INTEGER NOT NULL);"
    "CREATE TABLE thing_attrs(thing INTEGER NOT NULL REFERENCES things(id) ON DELETE CASCADE,"
    " name TEXT NOT NULL, value TEXT NOT NULL, PRIMARY KEY(thing, name));"
    "CREATE TABLE keys(id INTEGER PRIMARY KEY, thing INTEGER NOT NULL REFERENCES things(id),"
    " kind TEXT NOT NULL CHECK(kind IN ('ed25519-sign','x25519-agree')),"
    " public_key BLOB NOT NULL CHECK(length(public_key) = 32), added INTEGER NOT NULL,"
    " UNIQUE(kind, public_key));"
    "CREATE TABLE certs(id INTEGER PRIMARY KEY, serial TEXT NOT NULL UNIQUE,"
    " thing INTEGER NOT NULL REFERENCES things(id),"
    " profile TEXT NOT NULL CHECK(profile IN ('device','broker')),"
    " not_before INTEGER NOT NULL, not_after INTEGER NOT NULL,"
    " revoked_at INTEGER, reason INTEGER);"
    "CREATE TABLE sender_ids(grp TEXT NOT NULL, thing INTEGER NOT NULL REFERENCES things(id),"
    " sender_id BLOB NOT NULL CHECK(length(sender_id) BETWEEN 1 AND 6),"
    " allocated INTEGER NOT NULL, UNIQUE(grp, sender_id));"
    "CREATE TABLE audit(id INTEGER PRIMARY KEY, time INTEGER NOT NULL, actor TEXT NOT NULL,"
    " action TEXT NOT NULL, thing TEXT, detail TEXT NOT NULL CHECK(json_valid(detail)));"
    "CREATE TABLE ca_state(id INTEGER PRIMARY KEY CHECK(id = 1), crl_number INTEGER NOT NULL);"
    "INSERT INTO ca_state VALUES(1, 0);",
    /* 2: group keys (groups.c) and the revocation list number (revlist.c) */
    "CREATE TABLE groups(id INTEGER PRIMARY KEY, filter TEXT NOT NULL UNIQUE,"
    " group_id BLOB NOT NULL UNIQUE CHECK(length(group_id) = 8), created INTEGER NOT NULL,"
    " rules BLOB CHECK(rules IS NULL OR length(rules) = 32));"
    "CREATE TABLE epochs(grp INTEGER NOT NULL REFERENCES groups(id),"
    " epoch INTEGER NOT NULL CHECK(epoch BETWEEN 1 AND 4294967295),"
    " sealed BLOB NOT NULL CHECK(length(sealed) = 60), created INTEGER NOT NULL,"
    " not_after INTEGER NOT NULL, retired_at INTEGER, PRIMARY KEY(grp, epoch));"
    "CREATE TABLE grants(id INTEGER PRIMARY KEY, thing INTEGER NOT NULL REFERENCES things(id),"
    " grp INTEGER NOT NULL REFERENCES groups(id), epoch INTEGER NOT NULL,"
    " intent TEXT NOT NULL CHECK(intent IN ('publish','subscribe')), time INTEGER NOT NULL);"
    "CREATE INDEX grants_thing ON grants(thing, grp);"
    "ALTER TABLE ca_state ADD COLUMN revlist_number INTEGER NOT NULL DEFAULT 0;",
    migration_cert_x5t,
    /* 4: a thing's keys and its sender id in a group are found by thing, not by
     * scanning every key or the group's ids, and revoked things without reading
     * every thing (key release, docs/performance.md) */
    "CREATE INDEX IF NOT EXISTS things_status ON things(status);"
    "CREATE INDEX IF NOT EXISTS keys_thing ON keys(thing);"
    "CREATE INDEX IF NOT EXISTS sender_ids_thing ON sender_ids(thing, grp);",
};

int reg_fail(struct moat_diag *diag, int rc, const char *fmt, ...)
{
	va_list ap;

	if (diag != NULL) {
		va_start(ap, fmt);
		vsnprintf(diag->msg, sizeof(diag->msg), fmt, ap);
		va_end(ap);
	}
	return rc;
}

int reg_db_fail(struct registry *r, struct moat_diag *diag, const char *what)
{
	return reg_fail(diag, MOAT_E_IO, "registry: %s: %s", what, sqlite3_errmsg(r->db));
}

int reg_prepare(struct registry *r, sqlite3_stmt **st, const char *sql, struct moat_diag *diag)
{
	if (sqlite3_prepare_v2(r->db, sql, -1, st, NULL) != SQLITE_OK)
		return reg_db_fail(r, diag, "prepare");
	return MOAT_OK;
}

int reg_begin(struct registry *r, struct moat_diag *diag)
{
	if (sqlite3_exec(r->db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK)
		return reg_db_fail(r, diag, "begin");
	return MOAT_OK;
}

int reg_end(struct registry *r, int rc, struct moat_diag *diag)
{
	if (rc == MOAT_OK) {
		if (sqlite3_exec(r->db, "COMMIT", NULL, NULL, NULL) == SQLITE_OK)
			return MOAT_OK;
		rc = reg_db_fail(r, diag, "commit");
	}
	sqlite3_exec(r->db, "ROLLBACK", NULL, NULL, NULL);
	return rc;
}

static int64_t clock_now(void)
{
	return (int64_t)time(NULL);
}

int64_t reg_now(const struct registry *r)
{
	return r->now_s();
}

void reg_set_clock(struct registry *r, int64_t (*now_s)(void))
{
	r->now_s = now_s != NULL ? now_s : clock_now;
}

int reg_check_actor(const char *actor, struct moat_diag *diag)
{
	size_t n = actor != NULL ? strlen(actor) : 0;

	if (n == 0 || n > REG_NAME_MAX)
		return reg_fail(diag, MOAT_E_INVAL, "actor: 1 to %d characters", REG_NAME_MAX);
	for (size_t i = 0; i < n; i++)
		if (actor[i] <= ' ' || actor[i] > '~')
			return reg_fail(diag, MOAT_E_INVAL,
					"actor: printable ASCII without spaces only");
	return MOAT_OK;
}

static int schema_version(struct registry *r, int *version, struct moat_diag *diag)
{
	sqlite3_stmt *st;
	int rc;

	*version = 0;
	rc = reg_prepare(r, &st,
			 "SELECT count(*) FROM sqlite_schema WHERE type = 'table'"
			 " AND name = 'schema_version'",
			 diag);
	if (rc < 0)
		return rc;
	if (sqlite3_step(st) != SQLITE_ROW) {
		sqlite3_finalize(st);
		return reg_db_fail(r, diag, "schema");
	}
	bool has = sqlite3_column_int(st, 0) > 0;
	sqlite3_finalize(st);
	if (!has)
		return MOAT_OK;
	rc = reg_prepare(r, &st, "SELECT version FROM schema_version", diag);
	if (rc < 0)
		return rc;
	if (sqlite3_step(st) != SQLITE_ROW) {
		sqlite3_finalize(st);
		return reg_fail(diag, MOAT_E_PARSE, "registry: schema_version has no row");
	}
	*version = sqlite3_column_int(st, 0);
	sqlite3_finalize(st);
	return MOAT_OK;
}

static int migrate(struct registry *r, struct moat_diag *diag)
{
	sqlite3_stmt *st;
	int version, rc;

	rc = reg_begin(r, diag);
	if (rc < 0)
		return rc;
	rc = schema_version(r, &version, diag);
	if (rc == MOAT_OK && version > REG_SCHEMA_VERSION)
		rc = reg_fail(diag, MOAT_E_UNSUPPORTED,
			      "registry: schema version %d is newer than this moat-sc (%d); "
			      "use a newer moat-sc",
			      version, REG_SCHEMA_VERSION);
	if (rc == MOAT_OK && version == 0 &&
	    sqlite3_exec(r->db,
			 "CREATE TABLE schema_version(version INTEGER NOT NULL);"
			 "INSERT INTO schema_version VALUES(0);",
			 NULL, NULL, NULL) != SQLITE_OK)
		rc = reg_db_fail(r, diag, "create schema_version");
	for (; rc == MOAT_OK && version < REG_SCHEMA_VERSION; version++) {
		if (sqlite3_exec(r->db, migrations[version], NULL, NULL, NULL) != SQLITE_OK) {
			rc = reg_db_fail(r, diag, "migration");
			break;
		}
		rc = reg_prepare(r, &st, "UPDATE schema_version SET version = ?", diag);
		if (rc < 0)
			break;
		sqlite3_bind_int(st, 1, version + 1);
		if (sqlite3_step(st) != SQLITE_DONE)
			rc = reg_db_fail(r, diag, "schema version");
		sqlite3_finalize(st);
	}
	return reg_end(r, rc, diag);
}

int reg_open(struct registry **out, const char *path, struct moat_diag *diag)
{
	struct registry *r;
	int rc;

	if (file_create_private(path) != 0) /* 0600, not the umask's mode */
		return reg_fail(diag, MOAT_E_IO, "registry %s: %s", path, strerror(errno));
	r = calloc(1, sizeof(*r));
	if (r == NULL)
		return MOAT_E_NOMEM;
	r->now_s = clock_now;
	if (sqlite3_open_v2(path, &r->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOFOLLOW, NULL) !=
	    SQLITE_OK) {
		rc = reg_fail(diag, MOAT_E_IO, "registry %s: %s", path,
			      r->db != NULL ? sqlite3_errmsg(r->db) : "out of memory");
		goto err_close;
	}
	sqlite3_extended_result_codes(r->db, 1);
	sqlite3_busy_timeout(r->db, 5000);
	if (sqlite3_exec(r->db, "PRAGMA journal_mode = WAL; PRAGMA foreign_keys = ON;", NULL, NULL,
			 NULL) != SQLITE_OK) {
		rc = reg_fail(diag, MOAT_E_PARSE, "registry %s: %s", path, sqlite3_errmsg(r->db));
		goto err_close;
	}
	rc = migrate(r, diag);
	if (rc < 0)
		goto err_close;
	*out = r;
	return MOAT_OK;

err_close:
	sqlite3_close(r->db);
	free(r);
	return rc;
}

void reg_close(struct registry *r)
{
	if (r == NULL)
		return;
	sqlite3_close(r->db);
	free(r);
}

int reg_audit_in_tx(struct registry *r, const char *actor, const char *action, const char *thing,
		    const char *detail_json, struct moat_diag *diag)
{
	sqlite3_stmt *st;
	int rc;

	rc = reg_prepare(
	    r, &st, "INSERT INTO audit(time, actor, action, thing, detail) VALUES(?, ?, ?, ?, ?)",
	    diag);
	if (rc < 0)
		return rc;
	sqlite3_bind_int64(st, 1, reg_now(r));
	sqlite3_bind_text(st, 2, actor, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, action, -1, SQLITE_STATIC);
	if (thing != NULL)
		sqlite3_bind_text(st, 4, thing, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 5, detail_json != NULL ? detail_json : "{}", -1, SQLITE_STATIC);
	if (sqlite3_step(st) != SQLITE_DONE)
		rc = reg_db_fail(r, diag, "audit");
	sqlite3_finalize(st);
	return rc;
}

int reg_audit_append(struct registry *r, const char *actor, const char *action, const char *thing,
		     const char *detail_json, struct moat_diag *diag)
{
	cJSON *detail;
	int rc;

	rc = reg_check_actor(actor, diag);
	if (rc < 0)
		return rc;
	if (!reg_name_is_valid(action))
		return reg_fail(diag, MOAT_E_INVAL, "audit action: 1 to %d of [A-Za-z0-9._-]",
				REG_NAME_MAX);
	if (thing != NULL && !reg_name_is_valid(thing))
		return reg_fail(diag, MOAT_E_INVAL, "audit thing: not a valid thing name");
	if (detail_json != NULL) {
		detail = cJSON_Parse(detail_json);
		bool ok = cJSON_IsObject(detail);
		cJSON_Delete(detail);
		if (!ok)
			return reg_fail(diag, MOAT_E_INVAL, "audit detail: not a JSON object");
	}
	rc = reg_begin(r, diag);
	if (rc < 0)
		return rc;
	rc = reg_audit_in_tx(r, actor, action, thing, detail_json, diag);
	return reg_end(r, rc, diag);
}

void reg_copy_text(char *dst, size_t size, sqlite3_stmt *st, int col)
{
	const unsigned char *s = sqlite3_column_text(st, col);

	snprintf(dst, size, "%s", s != NULL ? (const char *)s : "");
}

int reg_audit_tail(struct registry *r, size_t count, reg_audit_cb *cb, void *arg,
		   struct moat_diag *diag)
{
	sqlite3_stmt *st;
	struct reg_audit a;
	int rc, step = SQLITE_DONE;

	rc = reg_prepare(r, &st,
			 "SELECT id, time, actor, action, thing, detail FROM"
			 " (SELECT * FROM audit ORDER BY id DESC LIMIT ?) ORDER BY id",
			 diag);
	if (rc < 0)
		return rc;
	sqlite3_bind_int64(st, 1, count > INT64_MAX ? INT64_MAX : (int64_t)count);
	while (rc == MOAT_OK && (step = sqlite3_step(st)) == SQLITE_ROW) {
		a.id = sqlite3_column_int64(st, 0);
		a.time_s = sqlite3_column_int64(st, 1);
		reg_copy_text(a.actor, sizeof(a.actor), st, 2);
		reg_copy_text(a.action, sizeof(a.action), st, 3);
		reg_copy_text(a.thing, sizeof(a.thing), st, 4);
		a.detail = (const char *)sqlite3_column_text(st, 5);
		rc = cb(arg, &a);
	}
	if (rc == MOAT_OK && step != SQLITE_DONE)
		rc = reg_db_fail(r, diag, "audit tail");
	sqlite3_finalize(st);
	return rc;
}
