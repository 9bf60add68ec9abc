/* Group keys (src/sc/groups.c): the storage key file (created 0600, read
 * back, refused when readable by others, of another length or missing);
 * migration of a schema-1 registry to 2 keeping its things; a group per
 * filter with epoch 1 made once; rotation (new secret, previous epoch in its
 * grace window, then out of it); another storage key cannot open the
 * secrets and the database never holds them in clear; sender ids reused per
 * thing and group; grants and the listings built on them; the policy
 * rules digest kept per group. */
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

#include "sc/groups.h"
#include "sc_testkit.h"

struct fx {
	struct sc_tmp t;
	struct registry *r;
	uint8_t key[GROUPS_STORE_KEY_LEN];
	struct moat_diag d;
};

static int64_t now_s = 1700000000;

static int64_t fake_now(void)
{
	return now_s;
}

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	struct reg_attr a = {"role", "sensor"};

	now_s = 1700000000;
	sc_tmp_open(&f->t, "moat-sc-grp", &f->r);
	reg_set_clock(f->r, fake_now);
	memset(f->key, 0x5c, sizeof(f->key));
	assert_int_equal(reg_thing_create(f->r, "test", "dev1", &a, 1, NULL, &f->d), MOAT_OK);
	assert_int_equal(reg_thing_create(f->r, "test", "dev2", &a, 1, NULL, &f->d), MOAT_OK);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;

	sc_tmp_remove(&f->t, f->r);
	free(f);
	return 0;
}

static void write_file(const char *path, const void *p, size_t n, mode_t mode)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, mode);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, p, n), (ssize_t)n);
	assert_int_equal(fchmod(fd, mode), 0);
	close(fd);
}

static void store_key_file(void **state)
{
	struct fx *f = *state;
	uint8_t a[32], b[32], junk[33] = {0};
	char path[160];
	struct stat sb;

	snprintf(path, sizeof(path), "%s/store.key", f->t.dir);
	assert_int_equal(groups_store_key_load(path, false, a, &f->d), MOAT_E_NOTFOUND);
	assert_int_equal(groups_store_key_load(path, true, a, &f->d), MOAT_OK);
	assert_int_equal(stat(path, &sb), 0);
	assert_int_equal(sb.st_mode & 0777, 0600);
	assert_int_equal(sb.st_size, 32);
	assert_int_equal(groups_store_key_load(path, true, b, &f->d), MOAT_OK);
	assert_memory_equal(a, b, 32);
	assert_int_equal(chmod(path, 0640), 0);
	assert_int_equal(groups_store_key_load(path, false, b, &f->d), MOAT_E_DENIED);
	assert_non_null(strstr(f->d.msg, "chmod 600"));
	write_file(path, junk, sizeof(junk), 0600);
	assert_int_equal(groups_store_key_load(path, false, b, &f->d), MOAT_E_PARSE);
	write_file(path, junk, 31, 0600);
	assert_int_equal(groups_store_key_load(path, false, b, &f->d), MOAT_E_PARSE);
}

static void migrates_schema_1_to_current(void **state)
{
	struct fx *f = *state;
	struct groups_epoch e;
	struct reg_thing t;
	sqlite3 *db;

	/* take the database back to what schema 1 wrote */
	reg_close(f->r);
	f->r = NULL;
	assert_int_equal(sqlite3_open(f->t.path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db,
				      "DROP TABLE grants; DROP TABLE epochs; DROP TABLE groups;"
				      "ALTER TABLE ca_state DROP COLUMN revlist_number;"
				      "ALTER TABLE certs DROP COLUMN x5t_s256;"
				      "UPDATE schema_version SET version = 1;",
				      NULL, NULL, NULL),
			 SQLITE_OK);
	sqlite3_close(db);
	assert_int_equal(
	    sc_tmp_count(&f->t, "SELECT count(*) FROM sqlite_schema WHERE name = 'groups'"), 0);
	assert_int_equal(reg_open(&f->r, f->t.path, &f->d), MOAT_OK);
	assert_int_equal(sc_tmp_count(&f->t, "SELECT version FROM schema_version"),
			 REG_SCHEMA_VERSION);
	assert_int_equal(reg_thing_get(f->r, "dev1", &t, &f->d), MOAT_OK);
	assert_int_equal(groups_current(f->r, f->key, "test", "a/#", NULL, 60, &e, &f->d), MOAT_OK);
	assert_int_equal(e.key.epoch, 1);
	groups_epoch_wipe(&e);
}

static void group_per_filter_and_epoch_one(void **state)
{
	struct fx *f = *state;
	struct groups_epoch a, b, c;
	static const uint8_t zero[32];

	assert_int_equal(groups_current(f->r, f->key, "test", "plant/#", NULL, 100, &a, &f->d),
			 MOAT_OK);
	assert_int_equal(a.key.epoch, 1);
	assert_string_equal(a.filter, "plant/#");
	assert_int_equal(a.created_s, now_s);
	assert_int_equal(a.not_after_s, now_s + 100);
	assert_int_equal(a.retired_at_s, 0);
	assert_memory_not_equal(a.key.master_secret, zero, 32);
	now_s += 10;
	assert_int_equal(groups_current(f->r, f->key, "test", "plant/#", NULL, 100, &b, &f->d),
			 MOAT_OK);
	assert_memory_equal(b.key.group_id, a.key.group_id, 8);
	assert_memory_equal(b.key.master_secret, a.key.master_secret, 32);
	assert_int_equal(b.created_s, a.created_s);
	assert_int_equal(groups_current(f->r, f->key, "test", "other/+", NULL, 100, &c, &f->d),
			 MOAT_OK);
	assert_memory_not_equal(c.key.group_id, a.key.group_id, 8);
	assert_memory_not_equal(c.key.master_secret, a.key.master_secret, 32);
	assert_int_equal(groups_current(f->r, f->key, "test", "bad\"filter", NULL, 100, &c, &f->d),
			 MOAT_E_INVAL);
	assert_int_equal(groups_current(f->r, f->key, "test", "", NULL, 100, &c, &f->d),
			 MOAT_E_INVAL);
	assert_int_equal(groups_current(f->r, f->key, "test", "x", NULL, 0, &c, &f->d),
			 MOAT_E_INVAL);
	assert_int_equal(
	    sc_tmp_count(&f->t, "SELECT count(*) FROM audit WHERE action = 'group.create'"), 2);
	/* the database holds no master secret in clear */
	assert_int_equal(
	    sc_tmp_count(&f->t, "SELECT count(*) FROM epochs WHERE length(sealed) = 60"), 2);
	groups_epoch_wipe(&a);
	groups_epoch_wipe(&b);
	groups_epoch_wipe(&c);
}

static void rotation_and_grace(void **state)
{
	struct fx *f = *state;
	struct groups_epoch one, two, got;
	uint8_t nobody[8] = {0};

	assert_int_equal(groups_current(f->r, f->key, "test", "plant/#", NULL, 100, &one, &f->d),
			 MOAT_OK);
	now_s += 50;
	assert_int_equal(
	    groups_rotate(f->r, f->key, "test", one.key.group_id, 100, "revocation", &two, &f->d),
	    MOAT_OK);
	assert_int_equal(two.key.epoch, 2);
	assert_memory_not_equal(two.key.master_secret, one.key.master_secret, 32);
	assert_int_equal(two.not_after_s, now_s + 100);
	assert_int_equal(groups_current(f->r, f->key, "test", "plant/#", NULL, 100, &got, &f->d),
			 MOAT_OK);
	assert_int_equal(got.key.epoch, 2);
	assert_memory_equal(got.key.master_secret, two.key.master_secret, 32);
	/* the previous epoch inside, then outside, its grace window */
	now_s += 3600;
	assert_int_equal(groups_epoch_get(f->r, f->key, one.key.group_id, 1, 3600, &got, &f->d),
			 MOAT_OK);
	assert_memory_equal(got.key.master_secret, one.key.master_secret, 32);
	assert_int_equal(got.retired_at_s, now_s - 3600);
	now_s += 1;
	assert_int_equal(groups_epoch_get(f->r, f->key, one.key.group_id, 1, 3600, &got, &f->d),
			 MOAT_E_LIMIT);
	assert_int_equal(groups_epoch_get(f->r, f->key, one.key.group_id, 2, 0, &got, &f->d),
			 MOAT_OK);
	assert_int_equal(groups_epoch_get(f->r, f->key, one.key.group_id, 3, 3600, &got, &f->d),
			 MOAT_E_NOTFOUND);
	assert_int_equal(groups_epoch_get(f->r, f->key, nobody, 1, 3600, &got, &f->d),
			 MOAT_E_NOTFOUND);
	assert_int_equal(groups_rotate(f->r, f->key, "test", nobody, 100, "schedule", NULL, &f->d),
			 MOAT_E_NOTFOUND);
	assert_int_equal(
	    groups_rotate(f->r, f->key, "test", one.key.group_id, 100, "Bad reason", NULL, &f->d),
	    MOAT_E_INVAL);
	assert_int_equal(sc_tmp_count(&f->t,
				      "SELECT count(*) FROM audit WHERE action = 'group.rotate'"
				      " AND json_extract(detail, '$.reason') = 'revocation'"),
			 1);
	groups_epoch_wipe(&one);
	groups_epoch_wipe(&two);
	groups_epoch_wipe(&got);
}

static void other_store_key_cannot_open(void **state)
{
	struct fx *f = *state;
	struct groups_epoch e;
	uint8_t other[32], gid[8];
	static const uint8_t zero[32];

	assert_int_equal(groups_current(f->r, f->key, "test", "plant/#", NULL, 100, &e, &f->d),
			 MOAT_OK);
	memcpy(gid, e.key.group_id, sizeof(gid));
	memset(other, 0x77, sizeof(other));
	assert_int_equal(groups_current(f->r, other, "test", "plant/#", NULL, 100, &e, &f->d),
			 MOAT_E_CRYPTO);
	assert_memory_equal(e.key.master_secret, zero, 32);
	assert_int_equal(groups_epoch_get(f->r, other, gid, 1, 0, &e, &f->d), MOAT_E_CRYPTO);
}

static void sender_ids_reused(void **state)
{
	struct fx *f = *state;
	struct groups_epoch e;
	uint8_t a[6], b[6], c[6];
	size_t na, nb, nc;

	assert_int_equal(groups_current(f->r, f->key, "test", "plant/#", NULL, 100, &e, &f->d),
			 MOAT_OK);
	assert_int_equal(groups_sender_id(f->r, "test", e.key.group_id, "dev1", a, &na, &f->d),
			 MOAT_OK);
	assert_int_equal(groups_sender_id(f->r, "test", e.key.group_id, "dev2", b, &nb, &f->d),
			 MOAT_OK);
	assert_int_equal(groups_sender_id(f->r, "test", e.key.group_id, "dev1", c, &nc, &f->d),
			 MOAT_OK);
	assert_int_equal(na, 1);
	assert_int_equal(nc, 1);
	assert_int_equal(a[0], c[0]);
	assert_int_not_equal(a[0], b[0]);
	assert_int_equal(sc_tmp_count(&f->t, "SELECT count(*) FROM sender_ids"), 2);
	groups_epoch_wipe(&e);
}

struct seen {
	size_t n;
	char filters[4][32];
};

static int collect(void *arg, const struct groups_info *g)
{
	struct seen *s = arg;

	if (s->n < 4)
		snprintf(s->filters[s->n], sizeof(s->filters[0]), "%.31s", g->filter);
	s->n++;
	return MOAT_OK;
}

static void grants_and_listings(void **state)
{
	struct fx *f = *state;
	struct groups_epoch p, q;
	struct seen all = {0}, dev1 = {0}, dev2 = {0};

	assert_int_equal(groups_current(f->r, f->key, "test", "plant/#", NULL, 100, &p, &f->d),
			 MOAT_OK);
	assert_int_equal(groups_current(f->r, f->key, "test", "other/+", NULL, 100, &q, &f->d),
			 MOAT_OK);
	assert_int_equal(groups_grant_record(f->r, "test", "dev1", p.key.group_id, 1,
					     KEYREL_PUBLISH, NULL, &f->d),
			 MOAT_OK);
	assert_int_equal(groups_grant_record(f->r, "test", "dev1", p.key.group_id, 1,
					     KEYREL_SUBSCRIBE, "{\"x\":1}", &f->d),
			 MOAT_OK);
	assert_int_equal(groups_grant_record(f->r, "test", "nobody", p.key.group_id, 1,
					     KEYREL_PUBLISH, NULL, &f->d),
			 MOAT_E_NOTFOUND);
	assert_int_equal(
	    groups_grant_record(f->r, "test", "dev1", p.key.group_id, 1, 0, NULL, &f->d),
	    MOAT_E_INVAL);
	assert_int_equal(groups_list(f->r, collect, &all, &f->d), MOAT_OK);
	assert_int_equal(all.n, 2);
	assert_string_equal(all.filters[0], "other/+");
	assert_string_equal(all.filters[1], "plant/#");
	assert_int_equal(groups_list_granted(f->r, "dev1", collect, &dev1, &f->d), MOAT_OK);
	assert_int_equal(dev1.n, 1);
	assert_string_equal(dev1.filters[0], "plant/#");
	assert_int_equal(groups_list_granted(f->r, "dev2", collect, &dev2, &f->d), MOAT_OK);
	assert_int_equal(dev2.n, 0);
	assert_int_equal(sc_tmp_count(&f->t, "SELECT count(*) FROM grants"), 2);
	/* each grant with its audit row, and none for the refused one */
	assert_int_equal(sc_tmp_count(&f->t, "SELECT count(*) FROM audit WHERE action ="
					     " 'key.released' AND thing = 'dev1'"),
			 2);
	groups_epoch_wipe(&p);
	groups_epoch_wipe(&q);
}

static int first_info(void *arg, const struct groups_info *g)
{
	*(struct groups_info *)arg = *g;
	return MOAT_OK;
}

static void rules_digest_kept(void **state)
{
	struct fx *f = *state;
	struct groups_epoch e;
	struct groups_info info = {0};
	uint8_t rules[GROUPS_RULES_LEN], other[GROUPS_RULES_LEN];

	memset(rules, 0xab, sizeof(rules));
	memset(other, 0xcd, sizeof(other));
	assert_int_equal(groups_current(f->r, f->key, "test", "plant/#", rules, 100, &e, &f->d),
			 MOAT_OK);
	assert_int_equal(groups_list(f->r, first_info, &info, &f->d), MOAT_OK);
	assert_true(info.has_rules);
	assert_memory_equal(info.rules, rules, sizeof(rules));
	/* an existing group keeps its digest: groups_current does not change it */
	assert_int_equal(groups_current(f->r, f->key, "test", "plant/#", other, 100, &e, &f->d),
			 MOAT_OK);
	assert_int_equal(groups_list(f->r, first_info, &info, &f->d), MOAT_OK);
	assert_memory_equal(info.rules, rules, sizeof(rules));
	assert_int_equal(groups_set_rules(f->r, e.key.group_id, other, &f->d), MOAT_OK);
	assert_int_equal(groups_list(f->r, first_info, &info, &f->d), MOAT_OK);
	assert_memory_equal(info.rules, other, sizeof(other));
	e.key.group_id[0] ^= 1;
	assert_int_equal(groups_set_rules(f->r, e.key.group_id, other, &f->d), MOAT_E_NOTFOUND);
	/* a group made without a digest has none */
	assert_int_equal(groups_current(f->r, f->key, "test", "a/b", NULL, 100, &e, &f->d),
			 MOAT_OK);
	assert_int_equal(groups_list(f->r, first_info, &info, &f->d), MOAT_OK);
	assert_string_equal(info.filter, "plant/#"); /* listed last, by filter */
	assert_int_equal(sc_tmp_count(&f->t, "SELECT count(*) FROM groups WHERE rules IS NULL"), 1);
	groups_epoch_wipe(&e);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(store_key_file, setup, teardown),
	    cmocka_unit_test_setup_teardown(migrates_schema_1_to_current, setup, teardown),
	    cmocka_unit_test_setup_teardown(group_per_filter_and_epoch_one, setup, teardown),
	    cmocka_unit_test_setup_teardown(rotation_and_grace, setup, teardown),
	    cmocka_unit_test_setup_teardown(other_store_key_cannot_open, setup, teardown),
	    cmocka_unit_test_setup_teardown(sender_ids_reused, setup, teardown),
	    cmocka_unit_test_setup_teardown(grants_and_listings, setup, teardown),
	    cmocka_unit_test_setup_teardown(rules_digest_kept, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
