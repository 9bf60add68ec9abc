/* Registry: schema creation from an empty file and reopening, refusal of a
 * newer schema, thing CRUD and name/attribute validation, duplicate names,
 * keys, certificates and revocation, sender id allocation and uniqueness
 * per group, CRL numbers, and one audit row per change. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <sqlite3.h>

#include <moat/error.h>

#include "sc/registry.h"

struct fx {
	char dir[64];
	char path[128];
	struct registry *r;
	struct moat_diag d;
};

static int64_t fake_now(void)
{
	return 1700000000;
}

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));

	snprintf(f->dir, sizeof(f->dir), "/tmp/moat-sc-reg-XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	snprintf(f->path, sizeof(f->path), "%s/registry.db", f->dir);
	assert_int_equal(reg_open(&f->r, f->path, &f->d), MOAT_OK);
	reg_set_clock(f->r, fake_now);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;
	char cmd[160];

	reg_close(f->r);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->dir);
	assert_int_equal(system(cmd), 0);
	free(f);
	return 0;
}

static struct reg_attr attr(const char *k, const char *v)
{
	struct reg_attr a;

	snprintf(a.name, sizeof(a.name), "%s", k);
	snprintf(a.value, sizeof(a.value), "%s", v);
	return a;
}

struct audit_log {
	size_t count;
	char actions[64][REG_NAME_MAX + 1];
	char last_detail[256];
};

static int collect_audit(void *arg, const struct reg_audit *a)
{
	struct audit_log *l = arg;

	if (l->count < 64)
		snprintf(l->actions[l->count++], REG_NAME_MAX + 1, "%s", a->action);
	snprintf(l->last_detail, sizeof(l->last_detail), "%s", a->detail);
	return MOAT_OK;
}

static void audit_tail(struct fx *f, size_t n, struct audit_log *l)
{
	memset(l, 0, sizeof(*l));
	assert_int_equal(reg_audit_tail(f->r, n, collect_audit, l, &f->d), MOAT_OK);
}

static void registry_migrates_empty_file_and_reopens(void **state)
{
	struct fx *f = *state;
	struct reg_thing t;
	struct stat sb;
	char path[160];
	sqlite3 *db;
	sqlite3_stmt *st;
	struct registry *r;
	int fd;

	/* an empty file, as left by a crash before the first write */
	snprintf(path, sizeof(path), "%s/empty.db", f->dir);
	fd = open(path, O_CREAT | O_WRONLY, 0600);
	assert_true(fd >= 0);
	close(fd);
	assert_int_equal(reg_open(&r, path, &f->d), MOAT_OK);
	assert_int_equal(reg_thing_create(r, "test", "t1", NULL, 0, NULL, &f->d), MOAT_OK);
	reg_close(r);
	assert_int_equal(stat(path, &sb), 0);
	assert_int_equal(sb.st_mode & 077, 0);

	assert_int_equal(reg_open(&r, path, &f->d), MOAT_OK);
	assert_int_equal(reg_thing_get(r, "t1", &t, &f->d), MOAT_OK);
	assert_string_equal(t.name, "t1");
	reg_close(r);

	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	assert_int_equal(
	    sqlite3_prepare_v2(db, "SELECT version FROM schema_version", -1, &st, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_step(st), SQLITE_ROW);
	assert_int_equal(sqlite3_column_int(st, 0), REG_SCHEMA_VERSION);
	sqlite3_finalize(st);
	assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1, &st, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_step(st), SQLITE_ROW);
	assert_string_equal((const char *)sqlite3_column_text(st, 0), "wal");
	sqlite3_finalize(st);
	/* a database from a newer moat-sc is refused, not damaged */
	assert_int_equal(
	    sqlite3_exec(db, "UPDATE schema_version SET version = 99", NULL, NULL, NULL),
	    SQLITE_OK);
	sqlite3_close(db);
	assert_int_equal(reg_open(&r, path, &f->d), MOAT_E_UNSUPPORTED);
	assert_non_null(strstr(f->d.msg, "newer"));
}

static void registry_refuses_a_file_that_is_not_a_database(void **state)
{
	struct fx *f = *state;
	struct registry *r;
	char path[160];
	FILE *fp;

	snprintf(path, sizeof(path), "%s/junk.db", f->dir);
	fp = fopen(path, "w");
	assert_non_null(fp);
	fputs("this is not an SQLite database, not at all, no, no, no, no, no\n", fp);
	fclose(fp);
	assert_true(reg_open(&r, path, &f->d) < 0);
}

static void thing_create_get_list_update_revoke(void **state)
{
	struct fx *f = *state;
	struct reg_attr a[2] = {attr("site", "plant-7"), attr("role", "sensor")};
	struct reg_attr b[1] = {attr("role", "actuator")};
	struct audit_log l;
	struct reg_thing t;
	int64_t id = 0;

	assert_int_equal(reg_thing_create(f->r, "ops", "dev-1", a, 2, &id, &f->d), MOAT_OK);
	assert_true(id > 0);
	assert_int_equal(reg_thing_get(f->r, "dev-1", &t, &f->d), MOAT_OK);
	assert_int_equal(t.id, id);
	assert_int_equal(t.status, REG_ACTIVE);
	assert_int_equal(t.created_s, 1700000000);
	assert_int_equal(t.attr_count, 2);
	assert_string_equal(t.attrs[0].name, "role"); /* sorted */
	assert_string_equal(t.attrs[0].value, "sensor");
	assert_string_equal(t.attrs[1].name, "site");

	assert_int_equal(reg_thing_set_attrs(f->r, "ops", "dev-1", b, 1, &f->d), MOAT_OK);
	assert_int_equal(reg_thing_get(f->r, "dev-1", &t, &f->d), MOAT_OK);
	assert_int_equal(t.attr_count, 1);
	assert_string_equal(t.attrs[0].value, "actuator");

	assert_int_equal(reg_thing_revoke(f->r, "ops", "dev-1", 1, &f->d), MOAT_OK);
	assert_int_equal(reg_thing_get(f->r, "dev-1", &t, &f->d), MOAT_OK);
	assert_int_equal(t.status, REG_REVOKED);
	assert_int_equal(reg_thing_revoke(f->r, "ops", "dev-1", 1, &f->d), MOAT_E_DENIED);
	assert_int_equal(reg_thing_set_attrs(f->r, "ops", "dev-1", a, 2, &f->d), MOAT_E_DENIED);
	assert_int_equal(reg_thing_get(f->r, "nobody", &t, &f->d), MOAT_E_NOTFOUND);

	audit_tail(f, 10, &l);
	assert_int_equal(l.count, 3);
	assert_string_equal(l.actions[0], "thing.create");
	assert_string_equal(l.actions[1], "thing.attrs");
	assert_string_equal(l.actions[2], "thing.revoke");
	assert_non_null(strstr(l.last_detail, "\"reason\":1"));
}

static int count_thing(void *arg, const struct reg_thing *t)
{
	(void)t;
	++*(int *)arg;
	return MOAT_OK;
}

static void thing_duplicate_name_refused_and_not_audited(void **state)
{
	struct fx *f = *state;
	struct audit_log l;
	int n = 0;

	assert_int_equal(reg_thing_create(f->r, "ops", "dev", NULL, 0, NULL, &f->d), MOAT_OK);
	assert_int_equal(reg_thing_create(f->r, "ops", "dev", NULL, 0, NULL, &f->d), MOAT_E_DENIED);
	assert_non_null(strstr(f->d.msg, "exists"));
	assert_int_equal(reg_thing_create(f->r, "ops", "dev2", NULL, 0, NULL, &f->d), MOAT_OK);
	assert_int_equal(reg_thing_list(f->r, count_thing, &n, &f->d), MOAT_OK);
	assert_int_equal(n, 2);
	audit_tail(f, 10, &l);
	assert_int_equal(l.count, 2); /* the refused create left no row */
}

static void thing_names_and_attributes_validated(void **state)
{
	struct fx *f = *state;
	char long_name[REG_NAME_MAX + 2];
	struct reg_attr bad_key[1] = {attr("Role", "x")};
	struct reg_attr bad_value[1] = {attr("role", "a\tb")};
	struct reg_attr empty_value[1] = {attr("role", "")};
	struct reg_attr dup[2] = {attr("role", "a"), attr("role", "b")};
	struct reg_attr ok[1] = {attr("site", "plant 7/hall:B")};
	struct reg_attr many[REG_ATTRS_MAX + 1];
	static const char *const bad[] = {
	    "", "a/b", "a+", "#", "-lead", "a b", "\xc3\xa9t\xc3\xa9"};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(reg_thing_create(f->r, "ops", bad[i], NULL, 0, NULL, &f->d),
				 MOAT_E_INVAL);
	memset(long_name, 'a', sizeof(long_name) - 1);
	long_name[REG_NAME_MAX + 1] = '\0';
	assert_int_equal(reg_thing_create(f->r, "ops", long_name, NULL, 0, NULL, &f->d),
			 MOAT_E_INVAL);
	long_name[REG_NAME_MAX] = '\0'; /* exactly the maximum */
	assert_int_equal(reg_thing_create(f->r, "ops", long_name, NULL, 0, NULL, &f->d), MOAT_OK);
	assert_int_equal(reg_thing_create(f->r, "ops", "d", bad_key, 1, NULL, &f->d), MOAT_E_INVAL);
	assert_int_equal(reg_thing_create(f->r, "ops", "d", bad_value, 1, NULL, &f->d),
			 MOAT_E_INVAL);
	assert_int_equal(reg_thing_create(f->r, "ops", "d", empty_value, 1, NULL, &f->d),
			 MOAT_E_INVAL);
	assert_int_equal(reg_thing_create(f->r, "ops", "d", dup, 2, NULL, &f->d), MOAT_E_INVAL);
	assert_non_null(strstr(f->d.msg, "twice"));
	for (size_t i = 0; i <= REG_ATTRS_MAX; i++) {
		snprintf(many[i].name, sizeof(many[i].name), "a%zu", i);
		snprintf(many[i].value, sizeof(many[i].value), "v");
	}
	assert_int_equal(reg_thing_create(f->r, "ops", "d", many, REG_ATTRS_MAX + 1, NULL, &f->d),
			 MOAT_E_LIMIT);
	assert_int_equal(reg_thing_create(f->r, "ops", "m", many, REG_ATTRS_MAX, NULL, &f->d),
			 MOAT_OK);
	assert_int_equal(reg_thing_create(f->r, "has space", "d", ok, 1, NULL, &f->d),
			 MOAT_E_INVAL);
	assert_int_equal(reg_thing_create(f->r, "ops", "d", ok, 1, NULL, &f->d), MOAT_OK);
}

struct keys {
	int count;
	struct reg_key last;
};

static int collect_key(void *arg, const struct reg_key *k)
{
	struct keys *ks = arg;

	ks->count++;
	ks->last = *k;
	return MOAT_OK;
}

static void keys_added_listed_and_unique(void **state)
{
	struct fx *f = *state;
	uint8_t sign[REG_KEY_LEN], agree[REG_KEY_LEN];
	struct audit_log l;
	struct keys ks = {0};

	memset(sign, 0x11, sizeof(sign));
	memset(agree, 0x22, sizeof(agree));
	assert_int_equal(reg_thing_create(f->r, "ops", "dev", NULL, 0, NULL, &f->d), MOAT_OK);
	assert_int_equal(reg_thing_create(f->r, "ops", "other", NULL, 0, NULL, &f->d), MOAT_OK);
	assert_int_equal(reg_key_add(f->r, "ops", "dev", REG_KEY_ED25519_SIGN, sign, &f->d),
			 MOAT_OK);
	assert_int_equal(reg_key_add(f->r, "ops", "dev", REG_KEY_X25519_AGREE, agree, &f->d),
			 MOAT_OK);
	/* the same public key for another thing is refused */
	assert_int_equal(reg_key_add(f->r, "ops", "other", REG_KEY_ED25519_SIGN, sign, &f->d),
			 MOAT_E_DENIED);
	assert_int_equal(reg_key_add(f->r, "ops", "ghost", REG_KEY_ED25519_SIGN, sign, &f->d),
			 MOAT_E_NOTFOUND);
	assert_int_equal(reg_key_list(f->r, "dev", collect_key, &ks, &f->d), MOAT_OK);
	assert_int_equal(ks.count, 2);
	assert_int_equal(ks.last.kind, REG_KEY_X25519_AGREE);
	assert_memory_equal(ks.last.pub, agree, REG_KEY_LEN);
	audit_tail(f, 1, &l);
	assert_string_equal(l.actions[0], "key.add");
	assert_non_null(strstr(l.last_detail, "x25519-agree"));
	assert_int_equal(reg_thing_revoke(f->r, "ops", "dev", 0, &f->d), MOAT_OK);
	memset(agree, 0x33, sizeof(agree));
	assert_int_equal(reg_key_add(f->r, "ops", "dev", REG_KEY_X25519_AGREE, agree, &f->d),
			 MOAT_E_DENIED);
}

struct certs {
	int count;
	char serials[8][REG_SERIAL_HEX_MAX + 1];
	int reasons[8];
};

static int collect_cert(void *arg, const struct reg_cert *c)
{
	struct certs *cs = arg;

	if (cs->count < 8) {
		snprintf(cs->serials[cs->count], REG_SERIAL_HEX_MAX + 1, "%s", c->serial);
		cs->reasons[cs->count++] = c->reason;
	}
	return MOAT_OK;
}

static struct reg_cert cert(const char *serial, const char *thing, int64_t not_after)
{
	struct reg_cert c = {
	    .profile = REG_CERT_DEVICE, .not_before_s = 1699999000, .not_after_s = not_after};

	snprintf(c.serial, sizeof(c.serial), "%s", serial);
	snprintf(c.thing, sizeof(c.thing), "%s", thing);
	return c;
}

static void certs_recorded_revoked_and_listed(void **state)
{
	struct fx *f = *state;
	struct reg_cert c1 = cert("1A2B", "dev", 1800000000), c2 = cert("FF", "dev", 1800000000);
	struct reg_cert c3 = cert("77", "dev", 1600000000), c4 = cert("99", "dev2", 1800000000);
	struct reg_cert bad = cert("0A", "dev", 1800000000);
	struct certs cs = {0};
	struct audit_log l;

	c3.not_before_s = 1500000000;
	assert_int_equal(reg_thing_create(f->r, "ops", "dev", NULL, 0, NULL, &f->d), MOAT_OK);
	assert_int_equal(reg_thing_create(f->r, "ops", "dev2", NULL, 0, NULL, &f->d), MOAT_OK);
	assert_int_equal(reg_cert_record(f->r, "ops", &c1, &f->d), MOAT_OK);
	assert_int_equal(reg_cert_record(f->r, "ops", &c1, &f->d), MOAT_E_DENIED);
	assert_int_equal(reg_cert_record(f->r, "ops", &bad, &f->d), MOAT_E_INVAL);
	snprintf(bad.serial, sizeof(bad.serial), "ab");
	assert_int_equal(reg_cert_record(f->r, "ops", &bad, &f->d), MOAT_E_INVAL);
	assert_int_equal(reg_cert_record(f->r, "ops", &c2, &f->d), MOAT_OK);
	assert_int_equal(reg_cert_record(f->r, "ops", &c3, &f->d), MOAT_OK);
	assert_int_equal(reg_cert_record(f->r, "ops", &c4, &f->d), MOAT_OK);

	assert_int_equal(reg_cert_revoke(f->r, "ops", "FF", 4, &f->d), MOAT_OK);
	assert_int_equal(reg_cert_revoke(f->r, "ops", "FF", 4, &f->d), MOAT_E_DENIED);
	assert_int_equal(reg_cert_revoke(f->r, "ops", "ABC", 4, &f->d), MOAT_E_NOTFOUND);
	assert_int_equal(reg_cert_revoke(f->r, "ops", "1A2B", 7, &f->d), MOAT_E_INVAL);
	audit_tail(f, 1, &l);
	assert_string_equal(l.actions[0], "cert.revoke");

	/* revoking the thing revokes its remaining certificates */
	assert_int_equal(reg_thing_revoke(f->r, "ops", "dev", 1, &f->d), MOAT_OK);
	assert_int_equal(reg_cert_list_revoked(f->r, 1700000000, collect_cert, &cs, &f->d),
			 MOAT_OK);
	assert_int_equal(cs.count, 2); /* 77 has expired: not listed */
	assert_true((strcmp(cs.serials[0], "FF") == 0 && cs.reasons[0] == 4) ||
		    (strcmp(cs.serials[1], "FF") == 0 && cs.reasons[1] == 4));
	assert_true(strcmp(cs.serials[0], "1A2B") == 0 || strcmp(cs.serials[1], "1A2B") == 0);
	memset(&cs, 0, sizeof(cs));
	assert_int_equal(reg_cert_list(f->r, "dev2", collect_cert, &cs, &f->d), MOAT_OK);
	assert_int_equal(cs.count, 1);
	assert_string_equal(cs.serials[0], "99");
	/* a revoked thing gets no new certificate */
	c1 = cert("ABCD", "dev", 1800000000);
	assert_int_equal(reg_cert_record(f->r, "ops", &c1, &f->d), MOAT_E_DENIED);
}

/* The query plan of <sql> on the database at <path> names <index>. */
static void assert_plan_uses(const char *path, const char *sql, const char *index)
{
	char plan[1024] = "";
	sqlite3_stmt *st;
	sqlite3 *db;

	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
	while (sqlite3_step(st) == SQLITE_ROW)
		strncat(plan, (const char *)sqlite3_column_text(st, 3),
			sizeof(plan) - strlen(plan) - 1);
	sqlite3_finalize(st);
	sqlite3_close(db);
	if (strstr(plan, index) == NULL)
		fail_msg("%s: plan \"%s\" does not use %s", sql, plan, index);
}

/* Key release reads a thing's keys and sender id, and the daemon its revoked
 * things, through indexes (schema 4): no scan of every thing, key or id. */
static void thing_list_revoked_and_indexes(void **state)
{
	struct fx *f = *state;
	int all = 0, revoked = 0;

	assert_int_equal(reg_thing_create(f->r, "ops", "a", NULL, 0, NULL, &f->d), MOAT_OK);
	assert_int_equal(reg_thing_create(f->r, "ops", "b", NULL, 0, NULL, &f->d), MOAT_OK);
	assert_int_equal(reg_thing_create(f->r, "ops", "c", NULL, 0, NULL, &f->d), MOAT_OK);
	assert_int_equal(reg_thing_list_revoked(f->r, count_thing, &revoked, &f->d), MOAT_OK);
	assert_int_equal(revoked, 0);
	assert_int_equal(reg_thing_revoke(f->r, "ops", "b", 0, &f->d), MOAT_OK);
	assert_int_equal(reg_thing_list_revoked(f->r, count_thing, &revoked, &f->d), MOAT_OK);
	assert_int_equal(reg_thing_list(f->r, count_thing, &all, &f->d), MOAT_OK);
	assert_int_equal(revoked, 1);
	assert_int_equal(all, 3);

	assert_plan_uses(f->path,
			 "EXPLAIN QUERY PLAN SELECT kind FROM keys WHERE thing = 1 ORDER BY id",
			 "keys_thing");
	assert_plan_uses(f->path,
			 "EXPLAIN QUERY PLAN SELECT s.sender_id FROM sender_ids s JOIN things t"
			 " ON t.id = s.thing WHERE s.grp = 'g' AND t.name = 'a'",
			 "sender_ids_thing");
	assert_plan_uses(f->path,
			 "EXPLAIN QUERY PLAN SELECT name FROM things WHERE status = 'revoked'",
			 "things_status");
}

static void sender_ids_smallest_free_and_unique_per_group(void **state)
{
	struct fx *f = *state;
	uint8_t id[REG_SENDER_ID_MAX];
	struct audit_log l;
	size_t len = 0;
	sqlite3 *db;
	sqlite3_stmt *st;

	assert_int_equal(reg_thing_create(f->r, "ops", "a", NULL, 0, NULL, &f->d), MOAT_OK);
	assert_int_equal(reg_thing_create(f->r, "ops", "b", NULL, 0, NULL, &f->d), MOAT_OK);
	for (unsigned i = 0; i < 256; i++) {
		assert_int_equal(
		    reg_sender_id_allocate(f->r, "ops", "g1", i % 2 ? "a" : "b", id, &len, &f->d),
		    MOAT_OK);
		assert_int_equal(len, 1);
		assert_int_equal(id[0], i);
	}
	/* one byte is exhausted: the next is two bytes long */
	assert_int_equal(reg_sender_id_allocate(f->r, "ops", "g1", "a", id, &len, &f->d), MOAT_OK);
	assert_int_equal(len, 2);
	assert_int_equal(id[0], 0);
	assert_int_equal(id[1], 0);
	assert_int_equal(reg_sender_id_allocate(f->r, "ops", "g1", "a", id, &len, &f->d), MOAT_OK);
	assert_int_equal(len, 2);
	assert_int_equal(id[1], 1);
	/* another group has its own space */
	assert_int_equal(reg_sender_id_allocate(f->r, "ops", "g2", "a", id, &len, &f->d), MOAT_OK);
	assert_int_equal(len, 1);
	assert_int_equal(id[0], 0);
	audit_tail(f, 1, &l);
	assert_string_equal(l.actions[0], "sender_id.allocate");
	assert_non_null(strstr(l.last_detail, "\"group\":\"g2\""));
	assert_int_equal(reg_sender_id_allocate(f->r, "ops", "bad/group", "a", id, &len, &f->d),
			 MOAT_E_INVAL);
	assert_int_equal(reg_thing_revoke(f->r, "ops", "b", 0, &f->d), MOAT_OK);
	assert_int_equal(reg_sender_id_allocate(f->r, "ops", "g1", "b", id, &len, &f->d),
			 MOAT_E_DENIED);

	/* the schema itself refuses a duplicate in one group */
	assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
	assert_int_equal(
	    sqlite3_prepare_v2(db,
			       "INSERT INTO sender_ids(grp, thing, sender_id, allocated)"
			       " VALUES('g1', 1, x'05', 0)",
			       -1, &st, NULL),
	    SQLITE_OK);
	assert_int_equal(sqlite3_step(st) & 0xff, SQLITE_CONSTRAINT);
	sqlite3_finalize(st);
	sqlite3_close(db);
}

static void crl_numbers_increase_across_reopen(void **state)
{
	struct fx *f = *state;
	int64_t n1 = 0, n2 = 0, n3 = 0;

	assert_int_equal(reg_crl_next_number(f->r, "ops", &n1, &f->d), MOAT_OK);
	assert_int_equal(reg_crl_next_number(f->r, "ops", &n2, &f->d), MOAT_OK);
	reg_close(f->r);
	assert_int_equal(reg_open(&f->r, f->path, &f->d), MOAT_OK);
	assert_int_equal(reg_crl_next_number(f->r, "ops", &n3, &f->d), MOAT_OK);
	assert_int_equal(n1, 1);
	assert_true(n2 > n1);
	assert_true(n3 > n2);
}

static void audit_append_validates_and_tails_in_order(void **state)
{
	struct fx *f = *state;
	struct audit_log l;

	assert_int_equal(
	    reg_audit_append(f->r, "ops", "key.release", "dev", "{\"group\":\"g\"}", &f->d),
	    MOAT_OK);
	assert_int_equal(reg_audit_append(f->r, "ops", "note", NULL, NULL, &f->d), MOAT_OK);
	assert_int_equal(reg_audit_append(f->r, "ops", "note", NULL, "[1]", &f->d), MOAT_E_INVAL);
	assert_int_equal(reg_audit_append(f->r, "ops", "note", NULL, "{bad", &f->d), MOAT_E_INVAL);
	assert_int_equal(reg_audit_append(f->r, "", "note", NULL, NULL, &f->d), MOAT_E_INVAL);
	assert_int_equal(reg_audit_append(f->r, "ops", "no te", NULL, NULL, &f->d), MOAT_E_INVAL);
	audit_tail(f, 100, &l);
	assert_int_equal(l.count, 2);
	assert_string_equal(l.actions[0], "key.release");
	assert_string_equal(l.actions[1], "note");
	audit_tail(f, 1, &l);
	assert_int_equal(l.count, 1);
	assert_string_equal(l.actions[0], "note");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(registry_migrates_empty_file_and_reopens, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(registry_refuses_a_file_that_is_not_a_database, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(thing_create_get_list_update_revoke, setup, teardown),
	    cmocka_unit_test_setup_teardown(thing_duplicate_name_refused_and_not_audited, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(thing_names_and_attributes_validated, setup, teardown),
	    cmocka_unit_test_setup_teardown(keys_added_listed_and_unique, setup, teardown),
	    cmocka_unit_test_setup_teardown(certs_recorded_revoked_and_listed, setup, teardown),
	    cmocka_unit_test_setup_teardown(thing_list_revoked_and_indexes, setup, teardown),
	    cmocka_unit_test_setup_teardown(sender_ids_smallest_free_and_unique_per_group, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(crl_numbers_increase_across_reopen, setup, teardown),
	    cmocka_unit_test_setup_teardown(audit_append_validates_and_tails_in_order, setup,
					    teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
