/*
 * Registry things: names and attributes (validated here), creation,
 * lookup, listing, attribute updates and revocation. Each change writes its
 * audit row in the same transaction (registry.c).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include <moat/error.h>

#include "sc/registry_impl.h"

static bool is_alnum(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

bool reg_name_is_valid(const char *s)
{
	size_t n = s != NULL ? strnlen(s, REG_NAME_MAX + 1) : 0;

	if (n == 0 || n > REG_NAME_MAX || !is_alnum(s[0]))
		return false;
	for (size_t i = 1; i < n; i++)
		if (!is_alnum(s[i]) && s[i] != '.' && s[i] != '_' && s[i] != '-')
			return false;
	return true;
}

static int check_name(const char *name, struct moat_diag *diag)
{
	if (!reg_name_is_valid(name))
		return reg_fail(diag, MOAT_E_INVAL,
				"thing name: 1 to %d of [A-Za-z0-9._-], starting with a letter or "
				"digit",
				REG_NAME_MAX);
	return MOAT_OK;
}

static int check_attrs(const struct reg_attr *attrs, size_t count, struct moat_diag *diag)
{
	if (count > REG_ATTRS_MAX)
		return reg_fail(diag, MOAT_E_LIMIT, "attributes: at most %d per thing",
				REG_ATTRS_MAX);
	for (size_t i = 0; i < count; i++) {
		const char *k = attrs[i].name, *v = attrs[i].value;
		size_t kn = strnlen(k, sizeof(attrs[i].name)),
		       vn = strnlen(v, sizeof(attrs[i].value));
		bool ok = kn > 0 && kn <= REG_ATTR_NAME_MAX && k[0] >= 'a' && k[0] <= 'z';

		for (size_t j = 1; ok && j < kn; j++)
			ok = (k[j] >= 'a' && k[j] <= 'z') || (k[j] >= '0' && k[j] <= '9') ||
			     k[j] == '_' || k[j] == '.' || k[j] == '-';
		if (!ok)
			return reg_fail(diag, MOAT_E_INVAL,
					"attribute name: 1 to %d of [a-z0-9_.-], starting with a "
					"letter",
					REG_ATTR_NAME_MAX);
		ok = vn > 0 && vn <= REG_ATTR_VALUE_MAX;
		for (size_t j = 0; ok && j < vn; j++)
			ok = v[j] >= ' ' && v[j] <= '~';
		if (!ok)
			return reg_fail(diag, MOAT_E_INVAL,
					"attribute %s: value of 1 to %d printable ASCII characters",
					k, REG_ATTR_VALUE_MAX);
		for (size_t j = 0; j < i; j++)
			if (strcmp(attrs[j].name, k) == 0)
				return reg_fail(diag, MOAT_E_INVAL, "attribute %s given twice", k);
	}
	return MOAT_OK;
}

int reg_thing_id(struct registry *r, const char *name, int64_t *id, enum reg_status *status,
		 struct moat_diag *diag)
{
	sqlite3_stmt *st;
	int rc, step;

	rc = check_name(name, diag);
	if (rc < 0)
		return rc;
	rc = reg_prepare(r, &st, "SELECT id, status FROM things WHERE name = ?", diag);
	if (rc < 0)
		return rc;
	sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
	step = sqlite3_step(st);
	if (step == SQLITE_ROW) {
		*id = sqlite3_column_int64(st, 0);
		*status = strcmp((const char *)sqlite3_column_text(st, 1), "revoked") == 0
			      ? REG_REVOKED
			      : REG_ACTIVE;
	} else if (step == SQLITE_DONE) {
		rc = reg_fail(diag, MOAT_E_NOTFOUND, "no thing named %s", name);
	} else {
		rc = reg_db_fail(r, diag, "thing lookup");
	}
	sqlite3_finalize(st);
	return rc;
}

/* Inserts <attrs> for thing <id> and describes them in <json> (an object). */
static int insert_attrs(struct registry *r, int64_t id, const struct reg_attr *attrs, size_t count,
			cJSON *json, struct moat_diag *diag)
{
	sqlite3_stmt *st;
	int rc;

	rc = reg_prepare(r, &st, "INSERT INTO thing_attrs(thing, name, value) VALUES(?, ?, ?)",
			 diag);
	if (rc < 0)
		return rc;
	for (size_t i = 0; rc == MOAT_OK && i < count; i++) {
		sqlite3_reset(st);
		sqlite3_bind_int64(st, 1, id);
		sqlite3_bind_text(st, 2, attrs[i].name, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 3, attrs[i].value, -1, SQLITE_STATIC);
		if (sqlite3_step(st) != SQLITE_DONE)
			rc = reg_db_fail(r, diag, "attribute");
		else if (cJSON_AddStringToObject(json, attrs[i].name, attrs[i].value) == NULL)
			rc = MOAT_E_NOMEM;
	}
	sqlite3_finalize(st);
	return rc;
}

/* Runs the audit for <action> with detail {"attrs": <attrs>} or <detail>. */
static int audit_json(struct registry *r, const char *actor, const char *action, const char *thing,
		      cJSON *detail, struct moat_diag *diag)
{
	char *text = cJSON_PrintUnformatted(detail);
	int rc;

	if (text == NULL)
		return MOAT_E_NOMEM;
	rc = reg_audit_in_tx(r, actor, action, thing, text, diag);
	cJSON_free(text);
	return rc;
}

int reg_thing_create(struct registry *r, const char *actor, const char *name,
		     const struct reg_attr *attrs, size_t count, int64_t *id,
		     struct moat_diag *diag)
{
	sqlite3_stmt *st;
	cJSON *detail, *jattrs;
	int64_t now, new_id = 0;
	int rc, step;

	rc = reg_check_actor(actor, diag);
	if (rc == MOAT_OK)
		rc = check_name(name, diag);
	if (rc == MOAT_OK)
		rc = check_attrs(attrs, count, diag);
	if (rc < 0)
		return rc;
	detail = cJSON_CreateObject();
	jattrs = cJSON_AddObjectToObject(detail, "attrs");
	if (jattrs == NULL) {
		cJSON_Delete(detail);
		return MOAT_E_NOMEM;
	}
	rc = reg_begin(r, diag);
	if (rc < 0)
		goto out_json;
	rc = reg_prepare(
	    r, &st, "INSERT INTO things(name, status, created, updated) VALUES(?, 'active', ?, ?)",
	    diag);
	if (rc < 0)
		goto out_tx;
	now = reg_now(r);
	sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, now);
	sqlite3_bind_int64(st, 3, now);
	step = sqlite3_step(st);
	if (step == SQLITE_CONSTRAINT_UNIQUE)
		rc = reg_fail(diag, MOAT_E_DENIED, "a thing named %s exists already", name);
	else if (step != SQLITE_DONE)
		rc = reg_db_fail(r, diag, "create thing");
	sqlite3_finalize(st);
	if (rc < 0)
		goto out_tx;
	new_id = sqlite3_last_insert_rowid(r->db);
	rc = insert_attrs(r, new_id, attrs, count, jattrs, diag);
	if (rc == MOAT_OK)
		rc = audit_json(r, actor, "thing.create", name, detail, diag);
out_tx:
	rc = reg_end(r, rc, diag);
	if (rc == MOAT_OK && id != NULL)
		*id = new_id;
out_json:
	cJSON_Delete(detail);
	return rc;
}

static int read_attrs(struct registry *r, struct reg_thing *t, struct moat_diag *diag)
{
	sqlite3_stmt *st;
	int rc, step = SQLITE_DONE;

	rc = reg_prepare(r, &st,
			 "SELECT name, value FROM thing_attrs WHERE thing = ? ORDER BY name", diag);
	if (rc < 0)
		return rc;
	sqlite3_bind_int64(st, 1, t->id);
	t->attr_count = 0;
	while (t->attr_count < REG_ATTRS_MAX && (step = sqlite3_step(st)) == SQLITE_ROW) {
		struct reg_attr *a = &t->attrs[t->attr_count++];

		reg_copy_text(a->name, sizeof(a->name), st, 0);
		reg_copy_text(a->value, sizeof(a->value), st, 1);
	}
	if (step != SQLITE_DONE && step != SQLITE_ROW)
		rc = reg_db_fail(r, diag, "attributes");
	sqlite3_finalize(st);
	return rc;
}

static void thing_from_row(struct reg_thing *t, sqlite3_stmt *st)
{
	t->id = sqlite3_column_int64(st, 0);
	reg_copy_text(t->name, sizeof(t->name), st, 1);
	t->status = strcmp((const char *)sqlite3_column_text(st, 2), "revoked") == 0 ? REG_REVOKED
										     : REG_ACTIVE;
	t->created_s = sqlite3_column_int64(st, 3);
	t->updated_s = sqlite3_column_int64(st, 4);
}

int reg_thing_get(struct registry *r, const char *name, struct reg_thing *out,
		  struct moat_diag *diag)
{
	sqlite3_stmt *st;
	int rc, step;

	rc = check_name(name, diag);
	if (rc < 0)
		return rc;
	rc = reg_prepare(
	    r, &st, "SELECT id, name, status, created, updated FROM things WHERE name = ?", diag);
	if (rc < 0)
		return rc;
	sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
	step = sqlite3_step(st);
	if (step == SQLITE_ROW)
		thing_from_row(out, st);
	else if (step == SQLITE_DONE)
		rc = reg_fail(diag, MOAT_E_NOTFOUND, "no thing named %s", name);
	else
		rc = reg_db_fail(r, diag, "thing");
	sqlite3_finalize(st);
	if (rc == MOAT_OK)
		rc = read_attrs(r, out, diag);
	return rc;
}

/* Calls <cb> for each thing the constant query <sql> selects. */
static int list_things(struct registry *r, const char *sql, reg_thing_cb *cb, void *arg,
		       struct moat_diag *diag)
{
	struct reg_thing *t;
	sqlite3_stmt *st;
	int rc, step = SQLITE_DONE;

	t = malloc(sizeof(*t));
	if (t == NULL)
		return MOAT_E_NOMEM;
	rc = reg_prepare(r, &st, sql, diag);
	if (rc < 0)
		goto out;
	while (rc == MOAT_OK && (step = sqlite3_step(st)) == SQLITE_ROW) {
		thing_from_row(t, st);
		rc = read_attrs(r, t, diag);
		if (rc == MOAT_OK)
			rc = cb(arg, t);
	}
	if (rc == MOAT_OK && step != SQLITE_DONE)
		rc = reg_db_fail(r, diag, "thing list");
	sqlite3_finalize(st);
out:
	free(t);
	return rc;
}

int reg_thing_list(struct registry *r, reg_thing_cb *cb, void *arg, struct moat_diag *diag)
{
	return list_things(r, "SELECT id, name, status, created, updated FROM things ORDER BY name",
			   cb, arg, diag);
}

int reg_thing_list_revoked(struct registry *r, reg_thing_cb *cb, void *arg, struct moat_diag *diag)
{
	return list_things(r,
			   "SELECT id, name, status, created, updated FROM things"
			   " WHERE status = 'revoked' ORDER BY name",
			   cb, arg, diag);
}

/* Bumps the updated time of thing <id>. */
static int touch(struct registry *r, int64_t id, const char *status, struct moat_diag *diag)
{
	sqlite3_stmt *st;
	int rc;

	rc = reg_prepare(r, &st, "UPDATE things SET updated = ?, status = ? WHERE id = ?", diag);
	if (rc < 0)
		return rc;
	sqlite3_bind_int64(st, 1, reg_now(r));
	sqlite3_bind_text(st, 2, status, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 3, id);
	if (sqlite3_step(st) != SQLITE_DONE)
		rc = reg_db_fail(r, diag, "update thing");
	sqlite3_finalize(st);
	return rc;
}

static int exec_on_id(struct registry *r, const char *sql, int64_t id, struct moat_diag *diag)
{
	sqlite3_stmt *st;
	int rc;

	rc = reg_prepare(r, &st, sql, diag);
	if (rc < 0)
		return rc;
	sqlite3_bind_int64(st, 1, id);
	if (sqlite3_step(st) != SQLITE_DONE)
		rc = reg_db_fail(r, diag, "update");
	sqlite3_finalize(st);
	return rc;
}

int reg_thing_set_attrs(struct registry *r, const char *actor, const char *name,
			const struct reg_attr *attrs, size_t count, struct moat_diag *diag)
{
	enum reg_status status;
	cJSON *detail, *jattrs;
	int64_t id;
	int rc;

	rc = reg_check_actor(actor, diag);
	if (rc == MOAT_OK)
		rc = check_attrs(attrs, count, diag);
	if (rc < 0)
		return rc;
	detail = cJSON_CreateObject();
	jattrs = cJSON_AddObjectToObject(detail, "attrs");
	if (jattrs == NULL) {
		cJSON_Delete(detail);
		return MOAT_E_NOMEM;
	}
	rc = reg_begin(r, diag);
	if (rc < 0)
		goto out_json;
	rc = reg_thing_id(r, name, &id, &status, diag);
	if (rc == MOAT_OK && status == REG_REVOKED)
		rc = reg_fail(diag, MOAT_E_DENIED, "thing %s is revoked", name);
	if (rc == MOAT_OK)
		rc = exec_on_id(r, "DELETE FROM thing_attrs WHERE thing = ?", id, diag);
	if (rc == MOAT_OK)
		rc = insert_attrs(r, id, attrs, count, jattrs, diag);
	if (rc == MOAT_OK)
		rc = touch(r, id, "active", diag);
	if (rc == MOAT_OK)
		rc = audit_json(r, actor, "thing.attrs", name, detail, diag);
	rc = reg_end(r, rc, diag);
out_json:
	cJSON_Delete(detail);
	return rc;
}

int reg_thing_revoke(struct registry *r, const char *actor, const char *name, int reason,
		     struct moat_diag *diag)
{
	enum reg_status status;
	sqlite3_stmt *st;
	cJSON *detail;
	int64_t id;
	int rc;

	rc = reg_check_actor(actor, diag);
	if (rc < 0)
		return rc;
	if (!reg_reason_is_valid(reason))
		return reg_fail(diag, MOAT_E_INVAL,
				"revocation reason: a CRLReason code 0..10, not 7");
	rc = reg_begin(r, diag);
	if (rc < 0)
		return rc;
	rc = reg_thing_id(r, name, &id, &status, diag);
	if (rc == MOAT_OK && status == REG_REVOKED)
		rc = reg_fail(diag, MOAT_E_DENIED, "thing %s is revoked already", name);
	if (rc == MOAT_OK)
		rc = touch(r, id, "revoked", diag);
	if (rc == MOAT_OK)
		rc = reg_prepare(r, &st,
				 "UPDATE certs SET revoked_at = ?, reason = ?"
				 " WHERE thing = ? AND revoked_at IS NULL",
				 diag);
	if (rc < 0)
		return reg_end(r, rc, diag);
	sqlite3_bind_int64(st, 1, reg_now(r));
	sqlite3_bind_int(st, 2, reason);
	sqlite3_bind_int64(st, 3, id);
	if (sqlite3_step(st) != SQLITE_DONE)
		rc = reg_db_fail(r, diag, "revoke certificates");
	sqlite3_finalize(st);
	detail = cJSON_CreateObject();
	if (cJSON_AddNumberToObject(detail, "reason", reason) == NULL ||
	    cJSON_AddNumberToObject(detail, "certs_revoked", sqlite3_changes(r->db)) == NULL)
		rc = rc < 0 ? rc : MOAT_E_NOMEM;
	if (rc == MOAT_OK)
		rc = audit_json(r, actor, "thing.revoke", name, detail, diag);
	cJSON_Delete(detail);
	return reg_end(r, rc, diag);
}
