/*
 * Group keys (see groups.h): the groups, epochs and grants tables of the
 * registry (schema version 2, registry.c), master secrets sealed under the
 * storage key, and the storage key file itself.
 */
#include "sc/groups.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/rand.h>

#include <moat/error.h>

#include "e2e/aead.h"
#include "e2e/alg.h"
#include "sc/registry_impl.h"

enum {
	SEAL_NONCE_LEN = 12,
	SEALED_LEN = SEAL_NONCE_LEN + KEYREL_MS_LEN + 16, /* nonce || ciphertext || tag */
};

void groups_id_hex(const uint8_t group_id[COSE_GROUP_ID_LEN], char out[2 * COSE_GROUP_ID_LEN + 1])
{
	static const char digits[] = "0123456789abcdef";

	for (size_t i = 0; i < COSE_GROUP_ID_LEN; i++) {
		out[2 * i] = digits[group_id[i] >> 4];
		out[2 * i + 1] = digits[group_id[i] & 15];
	}
	out[2 * COSE_GROUP_ID_LEN] = '\0';
}

void groups_epoch_wipe(struct groups_epoch *e)
{
	if (e != NULL)
		OPENSSL_cleanse(e->key.master_secret, sizeof(e->key.master_secret));
}

/* ---- the storage key file ---- */

static int read_key_file(int fd, const char *path, uint8_t key[GROUPS_STORE_KEY_LEN],
			 struct moat_diag *diag)
{
	uint8_t extra;
	struct stat sb;
	ssize_t n;

	if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode))
		return reg_fail(diag, MOAT_E_IO, "%s: not a regular file", path);
	if ((sb.st_mode & 077) != 0)
		return reg_fail(diag, MOAT_E_DENIED,
				"%s: group or others may access it; chmod 600 and rotate the "
				"groups",
				path);
	n = read(fd, key, GROUPS_STORE_KEY_LEN);
	if (n != GROUPS_STORE_KEY_LEN || read(fd, &extra, 1) != 0) {
		OPENSSL_cleanse(key, GROUPS_STORE_KEY_LEN);
		return reg_fail(diag, MOAT_E_PARSE, "%s: not a 32-byte storage key", path);
	}
	return MOAT_OK;
}

static int create_key_file(const char *path, uint8_t key[GROUPS_STORE_KEY_LEN],
			   struct moat_diag *diag)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
	int rc = MOAT_OK;

	if (fd < 0)
		return reg_fail(diag, MOAT_E_IO, "%s: %s", path, strerror(errno));
	if (RAND_bytes(key, GROUPS_STORE_KEY_LEN) != 1)
		rc = reg_fail(diag, MOAT_E_CRYPTO, "%s: no randomness", path);
	else if (write(fd, key, GROUPS_STORE_KEY_LEN) != GROUPS_STORE_KEY_LEN || fsync(fd) != 0)
		rc = reg_fail(diag, MOAT_E_IO, "%s: %s", path, strerror(errno));
	close(fd);
	if (rc < 0) {
		OPENSSL_cleanse(key, GROUPS_STORE_KEY_LEN);
		unlink(path);
	}
	return rc;
}

int groups_store_key_load(const char *path, bool create, uint8_t key[GROUPS_STORE_KEY_LEN],
			  struct moat_diag *diag)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	int rc;

	if (fd < 0 && errno == ENOENT && create)
		return create_key_file(path, key, diag);
	if (fd < 0)
		return reg_fail(diag, errno == ENOENT ? MOAT_E_NOTFOUND : MOAT_E_IO, "%s: %s", path,
				strerror(errno));
	rc = read_key_file(fd, path, key, diag);
	close(fd);
	return rc;
}

/* ---- sealing master secrets ---- */

static void epoch_aad(const uint8_t group_id[COSE_GROUP_ID_LEN], uint32_t epoch,
		      uint8_t aad[COSE_GROUP_ID_LEN + 4])
{
	memcpy(aad, group_id, COSE_GROUP_ID_LEN);
	for (unsigned i = 0; i < 4; i++)
		aad[COSE_GROUP_ID_LEN + i] = (uint8_t)(epoch >> (24 - 8 * i));
}

static int seal_ms(const uint8_t store_key[GROUPS_STORE_KEY_LEN], const struct cose_group *g,
		   uint8_t sealed[SEALED_LEN])
{
	uint8_t aad[COSE_GROUP_ID_LEN + 4];

	epoch_aad(g->group_id, g->epoch, aad);
	if (RAND_bytes(sealed, SEAL_NONCE_LEN) != 1)
		return MOAT_E_CRYPTO;
	return e2e_aead_seal(
	    E2E_ALG_CHACHA20_POLY1305, store_key, sealed, (struct moat_bytes){aad, sizeof(aad)},
	    (struct moat_bytes){g->master_secret, KEYREL_MS_LEN}, sealed + SEAL_NONCE_LEN);
}

static int open_ms(const uint8_t store_key[GROUPS_STORE_KEY_LEN], const uint8_t *sealed, size_t len,
		   struct cose_group *g)
{
	uint8_t aad[COSE_GROUP_ID_LEN + 4];

	if (sealed == NULL || len != SEALED_LEN)
		return MOAT_E_PARSE;
	epoch_aad(g->group_id, g->epoch, aad);
	return e2e_aead_open(
	    E2E_ALG_CHACHA20_POLY1305, store_key, sealed, (struct moat_bytes){aad, sizeof(aad)},
	    (struct moat_bytes){sealed + SEAL_NONCE_LEN, len - SEAL_NONCE_LEN}, g->master_secret);
}

/* ---- rows ---- */

struct group_row {
	int64_t id;
	uint8_t group_id[COSE_GROUP_ID_LEN];
	char filter[GROUPS_FILTER_MAX + 1];
};

/* Finds the group by filter (<filter> not NULL) or by id; MOAT_E_NOTFOUND. */
static int group_find(struct registry *r, const char *filter,
		      const uint8_t group_id[COSE_GROUP_ID_LEN], struct group_row *out,
		      struct moat_diag *diag)
{
	sqlite3_stmt *st;
	int rc = reg_prepare(r, &st,
			     filter != NULL
				 ? "SELECT id, group_id, filter FROM groups WHERE filter = ?"
				 : "SELECT id, group_id, filter FROM groups WHERE group_id = ?",
			     diag);
	int step;

	if (rc < 0)
		return rc;
	if (filter != NULL)
		sqlite3_bind_text(st, 1, filter, -1, SQLITE_STATIC);
	else
		sqlite3_bind_blob(st, 1, group_id, COSE_GROUP_ID_LEN, SQLITE_STATIC);
	step = sqlite3_step(st);
	if (step == SQLITE_ROW && sqlite3_column_bytes(st, 1) == COSE_GROUP_ID_LEN) {
		out->id = sqlite3_column_int64(st, 0);
		memcpy(out->group_id, sqlite3_column_blob(st, 1), COSE_GROUP_ID_LEN);
		reg_copy_text(out->filter, sizeof(out->filter), st, 2);
	} else if (step == SQLITE_DONE) {
		rc = reg_fail(diag, MOAT_E_NOTFOUND, "no such group");
	} else {
		rc = reg_db_fail(r, diag, "group");
	}
	sqlite3_finalize(st);
	return rc;
}

static int group_insert(struct registry *r, const char *actor, const char *filter,
			const uint8_t *rules, struct group_row *out, struct moat_diag *diag)
{
	char detail[GROUPS_FILTER_MAX + 64], hex[2 * COSE_GROUP_ID_LEN + 1];
	sqlite3_stmt *st;
	int rc;

	if (RAND_bytes(out->group_id, COSE_GROUP_ID_LEN) != 1)
		return reg_fail(diag, MOAT_E_CRYPTO, "no randomness for a group id");
	rc = reg_prepare(r, &st,
			 "INSERT INTO groups(filter, group_id, created, rules) VALUES(?, ?, ?, ?)",
			 diag);
	if (rc < 0)
		return rc;
	sqlite3_bind_text(st, 1, filter, -1, SQLITE_STATIC);
	sqlite3_bind_blob(st, 2, out->group_id, COSE_GROUP_ID_LEN, SQLITE_STATIC);
	sqlite3_bind_int64(st, 3, reg_now(r));
	if (rules != NULL)
		sqlite3_bind_blob(st, 4, rules, GROUPS_RULES_LEN, SQLITE_STATIC);
	if (sqlite3_step(st) != SQLITE_DONE)
		rc = reg_db_fail(r, diag, "create group");
	sqlite3_finalize(st);
	if (rc < 0)
		return rc;
	out->id = sqlite3_last_insert_rowid(r->db);
	snprintf(out->filter, sizeof(out->filter), "%s", filter);
	groups_id_hex(out->group_id, hex);
	/* the filter is a policy's filter: JSON-safe (no quotes or controls), checked by caller */
	snprintf(detail, sizeof(detail), "{\"group\":\"%s\",\"filter\":\"%s\"}", hex, filter);
	return reg_audit_in_tx(r, actor, "group.create", NULL, detail, diag);
}

/* Inserts epoch <e->key.epoch> of <grp> with a fresh master secret. */
static int epoch_insert(struct registry *r, const uint8_t store_key[GROUPS_STORE_KEY_LEN],
			int64_t grp, int64_t period_s, struct groups_epoch *e,
			struct moat_diag *diag)
{
	uint8_t sealed[SEALED_LEN];
	sqlite3_stmt *st;
	int rc;

	e->created_s = reg_now(r);
	e->not_after_s = e->created_s + period_s;
	e->retired_at_s = 0;
	if (RAND_bytes(e->key.master_secret, KEYREL_MS_LEN) != 1)
		return reg_fail(diag, MOAT_E_CRYPTO, "no randomness for a master secret");
	rc = seal_ms(store_key, &e->key, sealed);
	if (rc < 0)
		return reg_fail(diag, rc, "sealing a master secret failed");
	rc = reg_prepare(r, &st,
			 "INSERT INTO epochs(grp, epoch, sealed, created, not_after)"
			 " VALUES(?, ?, ?, ?, ?)",
			 diag);
	if (rc < 0)
		return rc;
	sqlite3_bind_int64(st, 1, grp);
	sqlite3_bind_int64(st, 2, e->key.epoch);
	sqlite3_bind_blob(st, 3, sealed, sizeof(sealed), SQLITE_STATIC);
	sqlite3_bind_int64(st, 4, e->created_s);
	sqlite3_bind_int64(st, 5, e->not_after_s);
	if (sqlite3_step(st) != SQLITE_DONE)
		rc = reg_db_fail(r, diag, "create epoch");
	sqlite3_finalize(st);
	return rc;
}

/*
 * Loads epoch <epoch> of <g> (0: the current one) into <e>, opening its
 * master secret. MOAT_E_NOTFOUND when there is none.
 */
static int epoch_load(struct registry *r, const uint8_t store_key[GROUPS_STORE_KEY_LEN],
		      const struct group_row *g, uint32_t epoch, struct groups_epoch *e,
		      struct moat_diag *diag)
{
	sqlite3_stmt *st;
	int rc, step;

	memset(e, 0, sizeof(*e));
	rc = reg_prepare(r, &st,
			 epoch == 0 ? "SELECT epoch, sealed, created, not_after, retired_at FROM"
				      " epochs WHERE grp = ? AND retired_at IS NULL"
				      " ORDER BY epoch DESC LIMIT 1"
				    : "SELECT epoch, sealed, created, not_after, retired_at FROM"
				      " epochs WHERE grp = ? AND epoch = ?",
			 diag);
	if (rc < 0)
		return rc;
	sqlite3_bind_int64(st, 1, g->id);
	if (epoch != 0)
		sqlite3_bind_int64(st, 2, epoch);
	step = sqlite3_step(st);
	if (step == SQLITE_ROW) {
		int64_t ep = sqlite3_column_int64(st, 0);

		memcpy(e->key.group_id, g->group_id, COSE_GROUP_ID_LEN);
		e->key.epoch = ep >= 1 && ep <= UINT32_MAX ? (uint32_t)ep : 0;
		snprintf(e->filter, sizeof(e->filter), "%s", g->filter);
		e->created_s = sqlite3_column_int64(st, 2);
		e->not_after_s = sqlite3_column_int64(st, 3);
		e->retired_at_s = sqlite3_column_int64(st, 4);
		rc = open_ms(store_key, sqlite3_column_blob(st, 1),
			     (size_t)sqlite3_column_bytes(st, 1), &e->key);
		if (rc < 0 || e->key.epoch == 0)
			rc = reg_fail(diag, MOAT_E_CRYPTO,
				      "a stored master secret does not open: another store.key?");
	} else if (step == SQLITE_DONE) {
		rc = reg_fail(diag, MOAT_E_NOTFOUND, "no such epoch");
	} else {
		rc = reg_db_fail(r, diag, "epoch");
	}
	sqlite3_finalize(st);
	if (rc < 0)
		groups_epoch_wipe(e);
	return rc;
}

static bool filter_ok(const char *filter)
{
	size_t n = filter != NULL ? strnlen(filter, GROUPS_FILTER_MAX + 1) : 0;

	if (n == 0 || n > GROUPS_FILTER_MAX)
		return false;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)filter[i] < ' ' || filter[i] == '"' || filter[i] == '\\')
			return false;
	return true;
}

int groups_current(struct registry *r, const uint8_t store_key[GROUPS_STORE_KEY_LEN],
		   const char *actor, const char *filter, const uint8_t *rules, int64_t period_s,
		   struct groups_epoch *out, struct moat_diag *diag)
{
	struct group_row g;
	int rc = reg_check_actor(actor, diag);

	if (rc == MOAT_OK && !filter_ok(filter))
		rc = reg_fail(diag, MOAT_E_INVAL,
			      "group filter: 1 to %d characters, no quotes or controls",
			      GROUPS_FILTER_MAX);
	if (rc == MOAT_OK && period_s <= 0)
		rc = reg_fail(diag, MOAT_E_INVAL, "epoch period must be positive");
	if (rc < 0)
		return rc;
	rc = reg_begin(r, diag);
	if (rc < 0)
		return rc;
	rc = group_find(r, filter, NULL, &g, diag);
	if (rc == MOAT_E_NOTFOUND)
		rc = group_insert(r, actor, filter, rules, &g, diag);
	if (rc == MOAT_OK)
		rc = epoch_load(r, store_key, &g, 0, out, diag);
	if (rc == MOAT_E_NOTFOUND) {
		memset(out, 0, sizeof(*out));
		memcpy(out->key.group_id, g.group_id, COSE_GROUP_ID_LEN);
		out->key.epoch = 1;
		snprintf(out->filter, sizeof(out->filter), "%s", g.filter);
		rc = epoch_insert(r, store_key, g.id, period_s, out, diag);
	}
	rc = reg_end(r, rc, diag);
	if (rc < 0)
		groups_epoch_wipe(out);
	return rc;
}

static int retire(struct registry *r, int64_t grp, uint32_t epoch, struct moat_diag *diag)
{
	sqlite3_stmt *st;
	int rc = reg_prepare(r, &st, "UPDATE epochs SET retired_at = ? WHERE grp = ? AND epoch = ?",
			     diag);

	if (rc < 0)
		return rc;
	sqlite3_bind_int64(st, 1, reg_now(r));
	sqlite3_bind_int64(st, 2, grp);
	sqlite3_bind_int64(st, 3, epoch);
	if (sqlite3_step(st) != SQLITE_DONE)
		rc = reg_db_fail(r, diag, "retire epoch");
	sqlite3_finalize(st);
	return rc;
}

static bool reason_ok(const char *reason)
{
	size_t n = reason != NULL ? strnlen(reason, 33) : 0;

	if (n == 0 || n > 32)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!((reason[i] >= 'a' && reason[i] <= 'z') || reason[i] == '-'))
			return false;
	return true;
}

int groups_rotate(struct registry *r, const uint8_t store_key[GROUPS_STORE_KEY_LEN],
		  const char *actor, const uint8_t group_id[COSE_GROUP_ID_LEN], int64_t period_s,
		  const char *reason, struct groups_epoch *out, struct moat_diag *diag)
{
	char detail[128], hex[2 * COSE_GROUP_ID_LEN + 1];
	struct groups_epoch old, fresh;
	struct group_row g;
	int rc = reg_check_actor(actor, diag);

	if (rc == MOAT_OK && (period_s <= 0 || !reason_ok(reason)))
		rc = reg_fail(diag, MOAT_E_INVAL, "rotate: a positive period and a reason word");
	if (rc < 0)
		return rc;
	memset(&old, 0, sizeof(old));
	memset(&fresh, 0, sizeof(fresh));
	rc = reg_begin(r, diag);
	if (rc < 0)
		return rc;
	rc = group_find(r, NULL, group_id, &g, diag);
	if (rc == MOAT_OK)
		rc = epoch_load(r, store_key, &g, 0, &old, diag);
	groups_epoch_wipe(&old);
	if (rc == MOAT_OK && old.key.epoch == UINT32_MAX)
		rc = reg_fail(diag, MOAT_E_LIMIT, "group has used every epoch number");
	if (rc == MOAT_OK)
		rc = retire(r, g.id, old.key.epoch, diag);
	if (rc == MOAT_OK) {
		memcpy(fresh.key.group_id, g.group_id, COSE_GROUP_ID_LEN);
		fresh.key.epoch = old.key.epoch + 1;
		snprintf(fresh.filter, sizeof(fresh.filter), "%s", g.filter);
		rc = epoch_insert(r, store_key, g.id, period_s, &fresh, diag);
	}
	groups_id_hex(group_id, hex);
	snprintf(detail, sizeof(detail), "{\"group\":\"%s\",\"epoch\":%u,\"reason\":\"%s\"}", hex,
		 (unsigned)fresh.key.epoch, reason);
	if (rc == MOAT_OK)
		rc = reg_audit_in_tx(r, actor, "group.rotate", NULL, detail, diag);
	rc = reg_end(r, rc, diag);
	if (rc == MOAT_OK && out != NULL)
		*out = fresh;
	groups_epoch_wipe(&fresh);
	return rc;
}

int groups_epoch_get(struct registry *r, const uint8_t store_key[GROUPS_STORE_KEY_LEN],
		     const uint8_t group_id[COSE_GROUP_ID_LEN], uint32_t epoch, int64_t grace_s,
		     struct groups_epoch *out, struct moat_diag *diag)
{
	struct group_row g;
	int rc;

	memset(out, 0, sizeof(*out));
	if (epoch == 0)
		return reg_fail(diag, MOAT_E_NOTFOUND, "no such epoch");
	rc = group_find(r, NULL, group_id, &g, diag);
	if (rc == MOAT_OK)
		rc = epoch_load(r, store_key, &g, epoch, out, diag);
	if (rc == MOAT_OK && out->retired_at_s != 0 && reg_now(r) > out->retired_at_s + grace_s) {
		groups_epoch_wipe(out);
		rc = reg_fail(diag, MOAT_E_LIMIT, "epoch %u was retired longer ago than %lld s",
			      (unsigned)epoch, (long long)grace_s);
	}
	return rc;
}

/* The sender id <thing> holds in <group> already: *<len> = 0 when none. */
static int sender_id_find(struct registry *r, const char *group, const char *thing,
			  uint8_t id[REG_SENDER_ID_MAX], size_t *len, struct moat_diag *diag)
{
	sqlite3_stmt *st;
	int rc = reg_prepare(r, &st,
			     "SELECT s.sender_id FROM sender_ids s JOIN things t ON t.id = s.thing"
			     " WHERE s.grp = ? AND t.name = ? ORDER BY s.allocated LIMIT 1",
			     diag);
	int step;

	*len = 0;
	if (rc < 0)
		return rc;
	sqlite3_bind_text(st, 1, group, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, thing, -1, SQLITE_STATIC);
	step = sqlite3_step(st);
	if (step == SQLITE_ROW) {
		int n = sqlite3_column_bytes(st, 0);

		if (n >= 1 && n <= REG_SENDER_ID_MAX) {
			memcpy(id, sqlite3_column_blob(st, 0), (size_t)n);
			*len = (size_t)n;
		}
	} else if (step != SQLITE_DONE) {
		rc = reg_db_fail(r, diag, "sender id");
	}
	sqlite3_finalize(st);
	return rc;
}

int groups_sender_id(struct registry *r, const char *actor,
		     const uint8_t group_id[COSE_GROUP_ID_LEN], const char *thing,
		     uint8_t id[REG_SENDER_ID_MAX], size_t *len, struct moat_diag *diag)
{
	char hex[2 * COSE_GROUP_ID_LEN + 1];
	int rc;

	groups_id_hex(group_id, hex);
	rc = sender_id_find(r, hex, thing, id, len, diag);
	if (rc == MOAT_OK && *len == 0)
		rc = reg_sender_id_allocate(r, actor, hex, thing, id, len, diag);
	return rc;
}

static int insert_grant(struct registry *r, const char *thing,
			const uint8_t group_id[COSE_GROUP_ID_LEN], uint32_t epoch,
			enum keyrel_intent intent, struct moat_diag *diag)
{
	sqlite3_stmt *st;
	int rc = reg_prepare(r, &st,
			     "INSERT INTO grants(thing, grp, epoch, intent, time)"
			     " SELECT t.id, g.id, ?, ?, ? FROM things t, groups g"
			     " WHERE t.name = ? AND g.group_id = ?",
			     diag);

	if (rc < 0)
		return rc;
	sqlite3_bind_int64(st, 1, epoch);
	sqlite3_bind_text(st, 2, intent == KEYREL_PUBLISH ? "publish" : "subscribe", -1,
			  SQLITE_STATIC);
	sqlite3_bind_int64(st, 3, reg_now(r));
	sqlite3_bind_text(st, 4, thing, -1, SQLITE_STATIC);
	sqlite3_bind_blob(st, 5, group_id, COSE_GROUP_ID_LEN, SQLITE_STATIC);
	if (sqlite3_step(st) != SQLITE_DONE)
		rc = reg_db_fail(r, diag, "grant");
	else if (sqlite3_changes(r->db) != 1)
		rc = reg_fail(diag, MOAT_E_NOTFOUND, "grant: no such thing or group");
	sqlite3_finalize(st);
	return rc;
}

int groups_grant_record(struct registry *r, const char *actor, const char *thing,
			const uint8_t group_id[COSE_GROUP_ID_LEN], uint32_t epoch,
			enum keyrel_intent intent, const char *detail_json, struct moat_diag *diag)
{
	int rc = reg_check_actor(actor, diag);

	if (rc == MOAT_OK && intent != KEYREL_PUBLISH && intent != KEYREL_SUBSCRIBE)
		rc = reg_fail(diag, MOAT_E_INVAL, "grant: intent is publish or subscribe");
	if (rc == MOAT_OK)
		rc = reg_begin(r, diag);
	if (rc < 0)
		return rc;
	rc = insert_grant(r, thing, group_id, epoch, intent, diag);
	if (rc == MOAT_OK)
		rc = reg_audit_in_tx(r, actor, "key.released", thing, detail_json, diag);
	return reg_end(r, rc, diag);
}

static int list_rows(struct registry *r, sqlite3_stmt *st, groups_info_cb *cb, void *arg,
		     struct moat_diag *diag)
{
	struct groups_info g;
	int rc = MOAT_OK, step = SQLITE_DONE;

	while (rc == MOAT_OK && (step = sqlite3_step(st)) == SQLITE_ROW) {
		int64_t ep = sqlite3_column_int64(st, 2);

		if (sqlite3_column_bytes(st, 0) != COSE_GROUP_ID_LEN || ep < 1 || ep > UINT32_MAX)
			continue;
		memcpy(g.group_id, sqlite3_column_blob(st, 0), COSE_GROUP_ID_LEN);
		reg_copy_text(g.filter, sizeof(g.filter), st, 1);
		g.epoch = (uint32_t)ep;
		g.created_s = sqlite3_column_int64(st, 3);
		g.not_after_s = sqlite3_column_int64(st, 4);
		g.has_rules = sqlite3_column_bytes(st, 5) == GROUPS_RULES_LEN;
		if (g.has_rules)
			memcpy(g.rules, sqlite3_column_blob(st, 5), GROUPS_RULES_LEN);
		rc = cb(arg, &g);
	}
	if (rc == MOAT_OK && step != SQLITE_DONE)
		rc = reg_db_fail(r, diag, "groups");
	sqlite3_finalize(st);
	return rc;
}

#define GROUPS_SELECT                                                                              \
	"SELECT g.group_id, g.filter, e.epoch, e.created, e.not_after, g.rules FROM groups g"      \
	" JOIN epochs e ON e.grp = g.id AND e.retired_at IS NULL"

int groups_set_rules(struct registry *r, const uint8_t group_id[COSE_GROUP_ID_LEN],
		     const uint8_t rules[GROUPS_RULES_LEN], struct moat_diag *diag)
{
	sqlite3_stmt *st;
	int rc = reg_prepare(r, &st, "UPDATE groups SET rules = ? WHERE group_id = ?", diag);

	if (rc < 0)
		return rc;
	sqlite3_bind_blob(st, 1, rules, GROUPS_RULES_LEN, SQLITE_STATIC);
	sqlite3_bind_blob(st, 2, group_id, COSE_GROUP_ID_LEN, SQLITE_STATIC);
	if (sqlite3_step(st) != SQLITE_DONE)
		rc = reg_db_fail(r, diag, "group rules");
	else if (sqlite3_changes(r->db) != 1)
		rc = reg_fail(diag, MOAT_E_NOTFOUND, "no such group");
	sqlite3_finalize(st);
	return rc;
}

int groups_list(struct registry *r, groups_info_cb *cb, void *arg, struct moat_diag *diag)
{
	sqlite3_stmt *st;
	int rc = reg_prepare(r, &st, GROUPS_SELECT " ORDER BY g.filter", diag);

	return rc < 0 ? rc : list_rows(r, st, cb, arg, diag);
}

int groups_list_granted(struct registry *r, const char *thing, groups_info_cb *cb, void *arg,
			struct moat_diag *diag)
{
	sqlite3_stmt *st;
	int rc = reg_prepare(r, &st,
			     GROUPS_SELECT " WHERE g.id IN (SELECT grp FROM grants JOIN things t"
					   " ON t.id = grants.thing WHERE t.name = ?)"
					   " ORDER BY g.filter",
			     diag);

	if (rc < 0)
		return rc;
	sqlite3_bind_text(st, 1, thing, -1, SQLITE_STATIC);
	return list_rows(r, st, cb, arg, diag);
}
