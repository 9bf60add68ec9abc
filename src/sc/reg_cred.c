/*
 * Registry credentials: things' public keys, issued certificate serials
 * and their revocation, per-group sender ids, and the CRL number. Each
 * change writes its audit row in the same transaction (registry.c).
 */
#include <stdio.h>
#include <string.h>

#include <moat/error.h>

#include "sc/registry_impl.h"

static const char *const key_kinds[] = {"ed25519-sign", "x25519-agree"};
static const char *const profiles[] = {"device", "broker"};

bool reg_reason_is_valid(int reason)
{
	return reason >= 0 && reason <= 10 && reason != 7;
}

/* The active thing <name>'s id, inside the caller's transaction. */
static int active_thing(struct registry *r, const char *name, int64_t *id, struct moat_diag *diag)
{
	enum reg_status status;
	int rc = reg_thing_id(r, name, id, &status, diag);

	if (rc == MOAT_OK && status == REG_REVOKED)
		rc = reg_fail(diag, MOAT_E_DENIED, "thing %s is revoked", name);
	return rc;
}

static void hex(char *out, const uint8_t *p, size_t n)
{
	static const char digits[] = "0123456789abcdef";

	for (size_t i = 0; i < n; i++) {
		out[2 * i] = digits[p[i] >> 4];
		out[2 * i + 1] = digits[p[i] & 15];
	}
	out[2 * n] = '\0';
}

int reg_key_add(struct registry *r, const char *actor, const char *name, enum reg_key_kind kind,
		const uint8_t pub[REG_KEY_LEN], struct moat_diag *diag)
{
	char detail[128], pub_hex[2 * REG_KEY_LEN + 1];
	sqlite3_stmt *st;
	int64_t id;
	int rc;

	rc = reg_check_actor(actor, diag);
	if (rc < 0)
		return rc;
	if (kind != REG_KEY_ED25519_SIGN && kind != REG_KEY_X25519_AGREE)
		return reg_fail(diag, MOAT_E_INVAL, "key kind: ed25519-sign or x25519-agree");
	rc = reg_begin(r, diag);
	if (rc < 0)
		return rc;
	rc = active_thing(r, name, &id, diag);
	if (rc == MOAT_OK)
		rc = reg_prepare(
		    r, &st, "INSERT INTO keys(thing, kind, public_key, added) VALUES(?, ?, ?, ?)",
		    diag);
	if (rc < 0)
		return reg_end(r, rc, diag);
	sqlite3_bind_int64(st, 1, id);
	sqlite3_bind_text(st, 2, key_kinds[kind], -1, SQLITE_STATIC);
	sqlite3_bind_blob(st, 3, pub, REG_KEY_LEN, SQLITE_STATIC);
	sqlite3_bind_int64(st, 4, reg_now(r));
	int step = sqlite3_step(st);
	if (step == SQLITE_CONSTRAINT_UNIQUE)
		rc = reg_fail(diag, MOAT_E_DENIED, "this %s key is registered already",
			      key_kinds[kind]);
	else if (step != SQLITE_DONE)
		rc = reg_db_fail(r, diag, "add key");
	sqlite3_finalize(st);
	hex(pub_hex, pub, REG_KEY_LEN);
	snprintf(detail, sizeof(detail), "{\"kind\":\"%s\",\"public_key\":\"%s\"}", key_kinds[kind],
		 pub_hex);
	if (rc == MOAT_OK)
		rc = reg_audit_in_tx(r, actor, "key.add", name, detail, diag);
	return reg_end(r, rc, diag);
}

int reg_key_list(struct registry *r, const char *name, reg_key_cb *cb, void *arg,
		 struct moat_diag *diag)
{
	enum reg_status status;
	struct reg_key k;
	sqlite3_stmt *st;
	int64_t id;
	int rc, step = SQLITE_DONE;

	rc = reg_thing_id(r, name, &id, &status, diag);
	if (rc == MOAT_OK)
		rc = reg_prepare(
		    r, &st, "SELECT kind, public_key, added FROM keys WHERE thing = ? ORDER BY id",
		    diag);
	if (rc < 0)
		return rc;
	sqlite3_bind_int64(st, 1, id);
	while (rc == MOAT_OK && (step = sqlite3_step(st)) == SQLITE_ROW) {
		const unsigned char *kind = sqlite3_column_text(st, 0);

		if (sqlite3_column_bytes(st, 1) != REG_KEY_LEN || kind == NULL) {
			rc = reg_fail(diag, MOAT_E_PARSE, "registry: damaged key row");
			break;
		}
		k.kind = strcmp((const char *)kind, key_kinds[REG_KEY_X25519_AGREE]) == 0
			     ? REG_KEY_X25519_AGREE
			     : REG_KEY_ED25519_SIGN;
		memcpy(k.pub, sqlite3_column_blob(st, 1), REG_KEY_LEN);
		k.added_s = sqlite3_column_int64(st, 2);
		rc = cb(arg, &k);
	}
	if (rc == MOAT_OK && step != SQLITE_DONE)
		rc = reg_db_fail(r, diag, "key list");
	sqlite3_finalize(st);
	return rc;
}

/* Upper-case hex without leading zeros, 1..REG_SERIAL_HEX_MAX digits. */
static int check_serial(const char *s, struct moat_diag *diag)
{
	size_t n = s != NULL ? strnlen(s, REG_SERIAL_HEX_MAX + 1) : 0;
	bool ok = n > 0 && n <= REG_SERIAL_HEX_MAX && (s[0] != '0' || n == 1);

	for (size_t i = 0; ok && i < n; i++)
		ok = (s[i] >= '0' && s[i] <= '9') || (s[i] >= 'A' && s[i] <= 'F');
	if (!ok)
		return reg_fail(
		    diag, MOAT_E_INVAL,
		    "certificate serial: 1 to %d upper-case hex digits, no leading zero",
		    REG_SERIAL_HEX_MAX);
	return MOAT_OK;
}

int reg_cert_record(struct registry *r, const char *actor, const struct reg_cert *c,
		    struct moat_diag *diag)
{
	char detail[160];
	sqlite3_stmt *st;
	int64_t id;
	int rc, step;

	rc = reg_check_actor(actor, diag);
	if (rc == MOAT_OK)
		rc = check_serial(c->serial, diag);
	if (rc == MOAT_OK && c->profile != REG_CERT_DEVICE && c->profile != REG_CERT_BROKER)
		rc = reg_fail(diag, MOAT_E_INVAL, "certificate profile: device or broker");
	if (rc == MOAT_OK && c->not_after_s <= c->not_before_s)
		rc = reg_fail(diag, MOAT_E_INVAL, "certificate: not_after must follow not_before");
	if (rc < 0)
		return rc;
	rc = reg_begin(r, diag);
	if (rc < 0)
		return rc;
	rc = active_thing(r, c->thing, &id, diag);
	if (rc == MOAT_OK)
		rc = reg_prepare(r, &st,
				 "INSERT INTO certs(serial, thing, profile, not_before, not_after,"
				 " x5t_s256) VALUES(?, ?, ?, ?, ?, ?)",
				 diag);
	if (rc < 0)
		return reg_end(r, rc, diag);
	sqlite3_bind_text(st, 1, c->serial, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, id);
	sqlite3_bind_text(st, 3, profiles[c->profile], -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 4, c->not_before_s);
	sqlite3_bind_int64(st, 5, c->not_after_s);
	if (c->has_x5t)
		sqlite3_bind_blob(st, 6, c->x5t_s256, REG_X5T_LEN, SQLITE_STATIC);
	step = sqlite3_step(st);
	if (step == SQLITE_CONSTRAINT_UNIQUE)
		rc = reg_fail(diag, MOAT_E_DENIED, "certificate serial %s is recorded already",
			      c->serial);
	else if (step != SQLITE_DONE)
		rc = reg_db_fail(r, diag, "record certificate");
	sqlite3_finalize(st);
	snprintf(detail, sizeof(detail),
		 "{\"serial\":\"%s\",\"profile\":\"%s\",\"not_before\":%lld,\"not_after\":%lld}",
		 c->serial, profiles[c->profile], (long long)c->not_before_s,
		 (long long)c->not_after_s);
	if (rc == MOAT_OK)
		rc = reg_audit_in_tx(r, actor, "cert.issue", c->thing, detail, diag);
	return reg_end(r, rc, diag);
}

int reg_cert_revoke(struct registry *r, const char *actor, const char *serial, int reason,
		    struct moat_diag *diag)
{
	char detail[96], thing[REG_NAME_MAX + 1];
	sqlite3_stmt *st;
	int rc, step;

	rc = reg_check_actor(actor, diag);
	if (rc == MOAT_OK)
		rc = check_serial(serial, diag);
	if (rc == MOAT_OK && !reg_reason_is_valid(reason))
		rc = reg_fail(diag, MOAT_E_INVAL,
			      "revocation reason: a CRLReason code 0..10, not 7");
	if (rc < 0)
		return rc;
	rc = reg_begin(r, diag);
	if (rc < 0)
		return rc;
	rc = reg_prepare(r, &st,
			 "SELECT things.name, certs.revoked_at FROM certs JOIN things"
			 " ON things.id = certs.thing WHERE certs.serial = ?",
			 diag);
	if (rc < 0)
		return reg_end(r, rc, diag);
	sqlite3_bind_text(st, 1, serial, -1, SQLITE_STATIC);
	step = sqlite3_step(st);
	if (step == SQLITE_ROW) {
		reg_copy_text(thing, sizeof(thing), st, 0);
		if (sqlite3_column_type(st, 1) != SQLITE_NULL)
			rc = reg_fail(diag, MOAT_E_DENIED, "certificate %s is revoked already",
				      serial);
	} else if (step == SQLITE_DONE) {
		rc = reg_fail(diag, MOAT_E_NOTFOUND, "no certificate with serial %s", serial);
	} else {
		rc = reg_db_fail(r, diag, "certificate lookup");
	}
	sqlite3_finalize(st);
	if (rc == MOAT_OK)
		rc = reg_prepare(
		    r, &st, "UPDATE certs SET revoked_at = ?, reason = ? WHERE serial = ?", diag);
	if (rc < 0)
		return reg_end(r, rc, diag);
	sqlite3_bind_int64(st, 1, reg_now(r));
	sqlite3_bind_int(st, 2, reason);
	sqlite3_bind_text(st, 3, serial, -1, SQLITE_STATIC);
	if (sqlite3_step(st) != SQLITE_DONE)
		rc = reg_db_fail(r, diag, "revoke certificate");
	sqlite3_finalize(st);
	snprintf(detail, sizeof(detail), "{\"serial\":\"%s\",\"reason\":%d}", serial, reason);
	if (rc == MOAT_OK)
		rc = reg_audit_in_tx(r, actor, "cert.revoke", thing, detail, diag);
	return reg_end(r, rc, diag);
}

static int list_certs(struct registry *r, sqlite3_stmt *st, reg_cert_cb *cb, void *arg,
		      struct moat_diag *diag)
{
	struct reg_cert c;
	int rc = MOAT_OK, step = SQLITE_DONE;

	while (rc == MOAT_OK && (step = sqlite3_step(st)) == SQLITE_ROW) {
		const unsigned char *profile = sqlite3_column_text(st, 2);

		reg_copy_text(c.serial, sizeof(c.serial), st, 0);
		reg_copy_text(c.thing, sizeof(c.thing), st, 1);
		c.profile = profile != NULL && strcmp((const char *)profile, "broker") == 0
				? REG_CERT_BROKER
				: REG_CERT_DEVICE;
		c.not_before_s = sqlite3_column_int64(st, 3);
		c.not_after_s = sqlite3_column_int64(st, 4);
		c.revoked_at_s = sqlite3_column_int64(st, 5);
		c.reason = sqlite3_column_int(st, 6);
		c.has_x5t = sqlite3_column_bytes(st, 7) == REG_X5T_LEN;
		if (c.has_x5t)
			memcpy(c.x5t_s256, sqlite3_column_blob(st, 7), REG_X5T_LEN);
		rc = cb(arg, &c);
	}
	if (rc == MOAT_OK && step != SQLITE_DONE)
		rc = reg_db_fail(r, diag, "certificate list");
	sqlite3_finalize(st);
	return rc;
}

int reg_cert_list(struct registry *r, const char *name, reg_cert_cb *cb, void *arg,
		  struct moat_diag *diag)
{
	sqlite3_stmt *st;
	int rc;

	rc = reg_prepare(r, &st,
			 "SELECT certs.serial, things.name, certs.profile, certs.not_before,"
			 " certs.not_after, certs.revoked_at, certs.reason, certs.x5t_s256"
			 " FROM certs JOIN things"
			 " ON things.id = certs.thing WHERE things.name = ? ORDER BY certs.id",
			 diag);
	if (rc < 0)
		return rc;
	sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
	return list_certs(r, st, cb, arg, diag);
}

int reg_cert_list_revoked(struct registry *r, int64_t since_s, reg_cert_cb *cb, void *arg,
			  struct moat_diag *diag)
{
	sqlite3_stmt *st;
	int rc;

	rc = reg_prepare(r, &st,
			 "SELECT certs.serial, things.name, certs.profile, certs.not_before,"
			 " certs.not_after, certs.revoked_at, certs.reason, certs.x5t_s256"
			 " FROM certs JOIN things"
			 " ON things.id = certs.thing WHERE certs.revoked_at IS NOT NULL"
			 " AND certs.not_after >= ? ORDER BY certs.revoked_at, certs.id",
			 diag);
	if (rc < 0)
		return rc;
	sqlite3_bind_int64(st, 1, since_s);
	return list_certs(r, st, cb, arg, diag);
}

/*
 * The lowest value of <len> bytes (big-endian) free in <group>: one above
 * the highest id of that length, 0 when there is none; false when all are
 * taken. Sender ids are never freed and each is the lowest free one when
 * allocated, so the ids of one length are 0..k-1 and the value above the
 * highest is the lowest free one. The highest comes from the (grp,
 * sender_id) index read backwards, skipping the ids of other lengths that
 * sort above it: at most 255 for 1- and 2-byte ids (65,792 senders per
 * group); 3-byte and longer ids step over the group's shorter ones. Walking
 * every id of the group instead cost milliseconds per allocation at a few
 * thousand senders (docs/performance.md).
 */
static int lowest_free(struct registry *r, const char *group, size_t len, uint64_t *value,
		       bool *found, struct moat_diag *diag)
{
	sqlite3_stmt *st;
	uint64_t max = (UINT64_C(1) << (8 * len)) - 1, top = 0;
	int rc, step;

	*found = false;
	*value = 0;
	rc = reg_prepare(r, &st,
			 "SELECT sender_id FROM sender_ids WHERE grp = ? AND length(sender_id) = ?"
			 " ORDER BY sender_id DESC LIMIT 1",
			 diag);
	if (rc < 0)
		return rc;
	sqlite3_bind_text(st, 1, group, -1, SQLITE_STATIC);
	sqlite3_bind_int(st, 2, (int)len);
	step = sqlite3_step(st);
	if (step == SQLITE_ROW) {
		const uint8_t *b = sqlite3_column_blob(st, 0);

		if (b != NULL && (size_t)sqlite3_column_bytes(st, 0) == len)
			for (size_t i = 0; i < len; i++)
				top = top << 8 | b[i];
		*found = top < max;
		*value = top + 1;
	} else if (step == SQLITE_DONE) {
		*found = true;
	} else {
		rc = reg_db_fail(r, diag, "sender ids");
	}
	sqlite3_finalize(st);
	return rc;
}

int reg_sender_id_allocate(struct registry *r, const char *actor, const char *group,
			   const char *name, uint8_t id[REG_SENDER_ID_MAX], size_t *len,
			   struct moat_diag *diag)
{
	char detail[96], id_hex[2 * REG_SENDER_ID_MAX + 1];
	sqlite3_stmt *st;
	uint64_t value = 0;
	int64_t thing;
	bool found = false;
	size_t n;
	int rc;

	rc = reg_check_actor(actor, diag);
	if (rc == MOAT_OK && !reg_name_is_valid(group))
		rc = reg_fail(diag, MOAT_E_INVAL, "group name: 1 to %d of [A-Za-z0-9._-]",
			      REG_NAME_MAX);
	if (rc < 0)
		return rc;
	rc = reg_begin(r, diag);
	if (rc < 0)
		return rc;
	rc = active_thing(r, name, &thing, diag);
	for (n = 1; rc == MOAT_OK && !found && n <= REG_SENDER_ID_MAX; n++)
		rc = lowest_free(r, group, n, &value, &found, diag);
	n--;
	if (rc == MOAT_OK && !found)
		rc = reg_fail(diag, MOAT_E_LIMIT, "group %s has no free sender id", group);
	if (rc == MOAT_OK)
		rc = reg_prepare(r, &st,
				 "INSERT INTO sender_ids(grp, thing, sender_id, allocated)"
				 " VALUES(?, ?, ?, ?)",
				 diag);
	if (rc < 0)
		return reg_end(r, rc, diag);
	for (size_t i = 0; i < n; i++)
		id[i] = (uint8_t)(value >> (8 * (n - 1 - i)));
	sqlite3_bind_text(st, 1, group, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, thing);
	sqlite3_bind_blob(st, 3, id, (int)n, SQLITE_STATIC);
	sqlite3_bind_int64(st, 4, reg_now(r));
	if (sqlite3_step(st) != SQLITE_DONE)
		rc = reg_db_fail(r, diag, "allocate sender id");
	sqlite3_finalize(st);
	hex(id_hex, id, n);
	snprintf(detail, sizeof(detail), "{\"group\":\"%s\",\"sender_id\":\"%s\"}", group, id_hex);
	if (rc == MOAT_OK)
		rc = reg_audit_in_tx(r, actor, "sender_id.allocate", name, detail, diag);
	rc = reg_end(r, rc, diag);
	if (rc == MOAT_OK)
		*len = n;
	return rc;
}

int reg_counter_next(struct registry *r, const char *actor, const char *update_sql,
		     const char *action, const char *detail_key, int64_t *number,
		     struct moat_diag *diag)
{
	char detail[64];
	sqlite3_stmt *st;
	int64_t n = 0;
	int rc;

	rc = reg_check_actor(actor, diag);
	if (rc < 0)
		return rc;
	rc = reg_begin(r, diag);
	if (rc < 0)
		return rc;
	rc = reg_prepare(r, &st, update_sql, diag);
	if (rc < 0)
		return reg_end(r, rc, diag);
	if (sqlite3_step(st) == SQLITE_ROW)
		n = sqlite3_column_int64(st, 0);
	else
		rc = reg_db_fail(r, diag, action);
	sqlite3_finalize(st);
	snprintf(detail, sizeof(detail), "{\"%s\":%lld}", detail_key, (long long)n);
	if (rc == MOAT_OK)
		rc = reg_audit_in_tx(r, actor, action, NULL, detail, diag);
	rc = reg_end(r, rc, diag);
	if (rc == MOAT_OK)
		*number = n;
	return rc;
}

int reg_crl_next_number(struct registry *r, const char *actor, int64_t *number,
			struct moat_diag *diag)
{
	return reg_counter_next(r, actor,
				"UPDATE ca_state SET crl_number = crl_number + 1 WHERE id = 1"
				" RETURNING crl_number",
				"crl.issue", "crl_number", number, diag);
}
