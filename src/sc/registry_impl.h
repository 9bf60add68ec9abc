/*
 * Internals shared by the registry's files (registry.c: open, migrations,
 * transactions, audit; reg_thing.c: things and attributes; reg_cred.c:
 * keys, certificates, sender ids, CRL numbers; groups.c: group keys and
 * epochs; revlist.c: revocation list numbers). Not for other modules.
 */
#ifndef MOAT_SC_REGISTRY_IMPL_H
#define MOAT_SC_REGISTRY_IMPL_H

#include <sqlite3.h>

#include "sc/registry.h"

struct registry {
	sqlite3 *db;
	int64_t (*now_s)(void);
};

/* Writes the printf-style message to <diag> (may be NULL) and returns <rc>. */
int reg_fail(struct moat_diag *diag, int rc, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* A failed SQLite call on <what>: MOAT_E_IO with SQLite's message. */
int reg_db_fail(struct registry *r, struct moat_diag *diag, const char *what);

/* Prepares the constant statement <sql>. */
int reg_prepare(struct registry *r, sqlite3_stmt **st, const char *sql, struct moat_diag *diag);

/* Starts a write transaction (BEGIN IMMEDIATE). */
int reg_begin(struct registry *r, struct moat_diag *diag);

/* Commits when <rc> is MOAT_OK, rolls back otherwise; returns <rc>, or the
 * commit's error. */
int reg_end(struct registry *r, int rc, struct moat_diag *diag);

/* The registry's clock. */
int64_t reg_now(const struct registry *r);

/* Checks <actor>: 1..REG_NAME_MAX printable ASCII without spaces. */
int reg_check_actor(const char *actor, struct moat_diag *diag);

/* Looks up the thing <name>: its id and status. MOAT_E_NOTFOUND if none. */
int reg_thing_id(struct registry *r, const char *name, int64_t *id, enum reg_status *status,
		 struct moat_diag *diag);

/* Appends an audit row inside the caller's transaction. <detail_json> is a
 * JSON object text or NULL for {}. */
int reg_audit_in_tx(struct registry *r, const char *actor, const char *action, const char *thing,
		    const char *detail_json, struct moat_diag *diag);

/* Copies text column <col> of <st> into <dst> (<size> bytes, truncating). */
void reg_copy_text(char *dst, size_t size, sqlite3_stmt *st, int col);

/* Takes the next value of a counter in ca_state: <update_sql> is a constant
 * UPDATE ... RETURNING of it; the change is audited as <action> with the
 * detail {"<detail_key>": value} in the same transaction. */
int reg_counter_next(struct registry *r, const char *actor, const char *update_sql,
		     const char *action, const char *detail_key, int64_t *number,
		     struct moat_diag *diag);

/* True for an RFC 5280 CRLReason code (0..10; 7 is unused). */
bool reg_reason_is_valid(int reason);

#endif
