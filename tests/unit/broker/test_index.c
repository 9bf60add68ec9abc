/*
 * Unit tests for the broker's topic index: the subscription trie (wildcards,
 * '$' topics, shared groups round-robin, limits, removal) and the retained
 * store (set, replace, delete, filter walks, sweep, references).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include <moat/error.h>

#include "broker/retain.h"
#include "broker/sub_index.h"

/* ---- subscription index ---- */

struct hits {
	int n;
	void *owners[64];
	uint32_t sub_ids[64];
};

static void collect(void *ctx, const struct sub_entry *e, struct moat_bytes group)
{
	struct hits *h = ctx;

	(void)group;
	if (h->n < 64) {
		h->owners[h->n] = e->owner;
		h->sub_ids[h->n] = e->sub_id;
	}
	h->n++;
}

static int owner_a, owner_b, owner_c;

static void add(struct subidx *idx, const char *filter, void *owner, uint32_t sub_id)
{
	struct sub_entry e = { .owner = owner, .qos = 1, .sub_id = sub_id };

	assert_int_equal(subidx_add(idx, moat_bytes_str(filter), &e, NULL), MOAT_OK);
}

static int matches(struct subidx *idx, const char *topic)
{
	struct hits h = { 0 };

	assert_int_equal(subidx_match(idx, moat_bytes_str(topic), collect, NULL, &h), MOAT_OK);
	return h.n;
}

static void wildcards_and_dollar_topics(void **state)
{
	struct subidx *idx = subidx_create(0);

	(void)state;
	add(idx, "a/b", &owner_a, 1);
	add(idx, "a/+", &owner_a, 2);
	add(idx, "a/#", &owner_a, 3);
	add(idx, "#", &owner_b, 4);
	add(idx, "+/+", &owner_b, 5);
	add(idx, "$SYS/#", &owner_c, 6);
	add(idx, "a//b", &owner_c, 7);
	assert_int_equal(matches(idx, "a/b"), 5);	/* a/b a/+ a/# # +/+ */
	assert_int_equal(matches(idx, "a"), 2);		/* a/# matches its parent [MQTT-4.7.1-2], # */
	assert_int_equal(matches(idx, "a/b/c"), 2);	/* a/# # */
	assert_int_equal(matches(idx, "a//b"), 3);	/* a/# # a//b */
	assert_int_equal(matches(idx, "$SYS/x"), 1);	/* not # nor +/+ [MQTT-4.7.2-1] */
	assert_int_equal(matches(idx, "/x"), 2);	/* # +/+ */
	assert_int_equal(subidx_count(idx), 7);
	subidx_destroy(idx);
}

static void resubscribe_replaces_and_remove_frees(void **state)
{
	struct subidx *idx = subidx_create(0);
	struct sub_entry e = { .owner = &owner_a, .qos = 2, .sub_id = 9 };
	struct hits h = { 0 };
	bool existed = true;

	(void)state;
	assert_int_equal(subidx_add(idx, moat_bytes_str("x/y"), &e, &existed), MOAT_OK);
	assert_false(existed);
	e.sub_id = 10;
	assert_int_equal(subidx_add(idx, moat_bytes_str("x/y"), &e, &existed), MOAT_OK);
	assert_true(existed);
	assert_int_equal(subidx_count(idx), 1);
	subidx_match(idx, moat_bytes_str("x/y"), collect, NULL, &h);
	assert_int_equal(h.n, 1);
	assert_int_equal(h.sub_ids[0], 10);
	assert_int_equal(subidx_remove(idx, moat_bytes_str("x/y"), &owner_a), MOAT_OK);
	assert_int_equal(subidx_remove(idx, moat_bytes_str("x/y"), &owner_a), MOAT_E_NOTFOUND);
	assert_int_equal(subidx_remove(idx, moat_bytes_str("x/+"), &owner_b), MOAT_E_NOTFOUND);
	assert_int_equal(subidx_count(idx), 0);
	assert_int_equal(matches(idx, "x/y"), 0);
	subidx_destroy(idx);
}

static void invalid_filters_and_limits(void **state)
{
	static const char *const bad[] = { "$share/", "$share/g", "$share//t", "$share/g/",
					   "$share/+/t", "$share/g#/t", "a/#/b", "a+", "" };
	struct subidx *idx = subidx_create(3);
	struct sub_entry e = { .owner = &owner_a };

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(subidx_add(idx, moat_bytes_str(bad[i]), &e, NULL), MOAT_E_PROTOCOL);
	assert_int_equal(subidx_add(idx, moat_bytes_str("a/b/c/d"), &e, NULL), MOAT_E_LIMIT);
	assert_int_equal(subidx_add(idx, moat_bytes_str("a/b/c"), &e, NULL), MOAT_OK);
	assert_int_equal(subidx_count(idx), 1);
	subidx_destroy(idx);
}

static bool only_b_and_c(void *ctx, const struct sub_entry *e)
{
	(void)ctx;
	return e->owner != &owner_a;
}

static bool nobody(void *ctx, const struct sub_entry *e)
{
	(void)ctx;
	(void)e;
	return false;
}

static void shared_groups_round_robin(void **state)
{
	struct subidx *idx = subidx_create(0);
	int seen[3] = { 0 };

	(void)state;
	add(idx, "$share/g/s/+", &owner_a, 0);
	add(idx, "$share/g/s/+", &owner_b, 0);
	add(idx, "$share/g/s/+", &owner_c, 0);
	add(idx, "$share/h/s/+", &owner_a, 0);
	for (int i = 0; i < 6; i++) {
		struct hits h = { 0 };

		subidx_match(idx, moat_bytes_str("s/1"), collect, NULL, &h);
		assert_int_equal(h.n, 2);	/* one member of g, one of h */
		for (int k = 0; k < 2; k++)
			seen[h.owners[k] == &owner_a ? 0 : h.owners[k] == &owner_b ? 1 : 2]++;
	}
	assert_int_equal(seen[1], 2);	/* g's turns go a, b, c, a, b, c */
	assert_int_equal(seen[2], 2);
	assert_int_equal(seen[0], 2 + 6);
	{
		struct hits h = { 0 };

		subidx_match(idx, moat_bytes_str("s/1"), collect, nobody, &h);
		assert_int_equal(h.n, 2);	/* refused by all: the turn's member anyway */
	}
	assert_int_equal(subidx_remove(idx, moat_bytes_str("$share/g/s/+"), &owner_b), MOAT_OK);
	assert_int_equal(subidx_remove(idx, moat_bytes_str("$share/g/s/+"), &owner_b), MOAT_E_NOTFOUND);
	assert_int_equal(subidx_count(idx), 3);
	subidx_destroy(idx);
}

static void skipped_member_is_never_chosen(void **state)
{
	struct subidx *idx = subidx_create(0);

	(void)state;
	add(idx, "$share/g/t", &owner_a, 0);
	add(idx, "$share/g/t", &owner_b, 0);
	for (int i = 0; i < 5; i++) {
		struct hits h = { 0 };

		subidx_match(idx, moat_bytes_str("t"), collect, only_b_and_c, &h);
		assert_int_equal(h.n, 1);
		assert_ptr_equal(h.owners[0], &owner_b);
	}
	subidx_destroy(idx);
}

/* subidx_pick: one member of exactly the shared subscription named, as
 * cluster shares deliver (src/cluster/share.c). */
static void pick_one_member_of_one_share(void **state)
{
	struct subidx *idx = subidx_create(0);
	int seen[2] = { 0 };

	(void)state;
	add(idx, "$share/g/s/#", &owner_a, 0);
	add(idx, "$share/g/s/#", &owner_b, 0);
	add(idx, "$share/g/s/+", &owner_c, 0);	/* same group name, another share */
	add(idx, "s/#", &owner_c, 0);		/* a plain subscription on the filter */
	for (int i = 0; i < 6; i++) {
		struct hits h = { 0 };

		assert_true(subidx_pick(idx, moat_bytes_str("$share/g/s/#"), collect, NULL, &h));
		assert_int_equal(h.n, 1);
		assert_ptr_not_equal(h.owners[0], &owner_c);
		seen[h.owners[0] == &owner_b]++;
	}
	assert_int_equal(seen[0], 3);	/* round-robin between a and b */
	assert_int_equal(seen[1], 3);
	{
		struct hits h = { 0 };

		assert_true(subidx_pick(idx, moat_bytes_str("$share/g/s/+"), collect, NULL, &h));
		assert_int_equal(h.n, 1);
		assert_ptr_equal(h.owners[0], &owner_c);
		/* no such share, a plain filter, a malformed one: nobody */
		assert_false(subidx_pick(idx, moat_bytes_str("$share/h/s/#"), collect, NULL, &h));
		assert_false(subidx_pick(idx, moat_bytes_str("$share/g/x/#"), collect, NULL, &h));
		assert_false(subidx_pick(idx, moat_bytes_str("s/#"), collect, NULL, &h));
		assert_false(subidx_pick(idx, moat_bytes_str("$share/g"), collect, NULL, &h));
		assert_int_equal(h.n, 1);
	}
	{
		struct hits h = { 0 };

		/* members the callback refuses are skipped, as subidx_match does */
		for (int i = 0; i < 4; i++)
			assert_true(subidx_pick(idx, moat_bytes_str("$share/g/s/#"), collect,
						only_b_and_c, &h));
		for (int i = 0; i < 4; i++)
			assert_ptr_equal(h.owners[i], &owner_b);
	}
	subidx_destroy(idx);
}

/* A member's callback names its shared subscription whole, so two shares of
 * one group name on different filters are told apart (route.c skips only
 * those the cluster took); a plain subscription's name is empty. */
struct shared_names {
	int n;
	char names[4][32];
};

static void collect_shared(void *ctx, const struct sub_entry *e, struct moat_bytes shared)
{
	struct shared_names *sn = ctx;

	(void)e;
	assert_true(sn->n < 4 && shared.len < sizeof(sn->names[0]));
	if (shared.len > 0)
		memcpy(sn->names[sn->n], shared.ptr, shared.len);
	sn->names[sn->n++][shared.len] = '\0';
}

static bool named(const struct shared_names *sn, const char *name)
{
	for (int i = 0; i < sn->n; i++)
		if (strcmp(sn->names[i], name) == 0)
			return true;
	return false;
}

static void match_names_each_members_share(void **state)
{
	struct subidx *idx = subidx_create(0);
	struct shared_names sn = { 0 };

	(void)state;
	add(idx, "$share/g/s/#", &owner_a, 0);
	add(idx, "$share/g/s/+", &owner_b, 0);
	add(idx, "s/#", &owner_c, 0);
	assert_int_equal(subidx_match(idx, moat_bytes_str("s/x"), collect_shared, NULL, &sn), MOAT_OK);
	assert_int_equal(sn.n, 3);
	assert_true(named(&sn, "$share/g/s/#"));
	assert_true(named(&sn, "$share/g/s/+"));
	assert_true(named(&sn, ""));
	sn.n = 0;
	assert_true(subidx_pick(idx, moat_bytes_str("$share/g/s/+"), collect_shared, NULL, &sn));
	assert_string_equal(sn.names[0], "$share/g/s/+");
	subidx_destroy(idx);
}

static void deep_and_many_filters(void **state)
{
	struct subidx *idx = subidx_create(200);
	char deep[400] = "", topic[400] = "", name[32];

	(void)state;
	for (int i = 0; i < 150; i++) {
		strcat(deep, i ? "/+" : "+");
		strcat(topic, i ? "/x" : "x");
	}
	add(idx, deep, &owner_a, 0);
	assert_int_equal(matches(idx, topic), 1);	/* a stack deeper than the local 64 frames */
	for (int i = 0; i < 10000; i++) {
		snprintf(name, sizeof(name), "m/%d/%d", i % 100, i);
		add(idx, name, &owner_b, 0);
	}
	assert_int_equal(matches(idx, "m/7/107"), 1);
	assert_int_equal(subidx_count(idx), 10001);
	for (int i = 0; i < 10000; i++) {
		snprintf(name, sizeof(name), "m/%d/%d", i % 100, i);
		assert_int_equal(subidx_remove(idx, moat_bytes_str(name), &owner_b), MOAT_OK);
	}
	assert_int_equal(subidx_count(idx), 1);
	subidx_destroy(idx);
}

/* ---- retained store ---- */

struct fake_msg {
	int refs;
	const char *name;
};

static void fake_ref(void *m)
{
	((struct fake_msg *)m)->refs++;
}

static void fake_unref(void *m)
{
	((struct fake_msg *)m)->refs--;
}

static const struct retain_ops fake_ops = { fake_ref, fake_unref };

struct names {
	int n, stop_after;
	const char *v[16];
};

static bool collect_msg(void *ctx, void *msg)
{
	struct names *c = ctx;

	if (c->n < 16)
		c->v[c->n] = ((struct fake_msg *)msg)->name;
	c->n++;
	return c->stop_after == 0 || c->n < c->stop_after;
}

static int retained(struct retain *r, const char *filter)
{
	struct names c = { 0 };

	assert_int_equal(retain_match(r, moat_bytes_str(filter), collect_msg, &c), MOAT_OK);
	return c.n;
}

static bool drop_named_old(void *ctx, void *msg)
{
	(void)ctx;
	return strcmp(((struct fake_msg *)msg)->name, "old") == 0;
}

static void retained_set_replace_delete(void **state)
{
	struct retain *r = retain_create(&fake_ops, 4);
	struct fake_msg m1 = { 1, "m1" }, m2 = { 1, "m2" };

	(void)state;
	assert_int_equal(retain_set(r, moat_bytes_str("a/b"), &m1), MOAT_OK);
	assert_int_equal(m1.refs, 2);
	assert_int_equal(retain_set(r, moat_bytes_str("a/b"), &m2), MOAT_OK);
	assert_int_equal(m1.refs, 1);	/* replaced: the store let go */
	assert_int_equal(m2.refs, 2);
	assert_int_equal(retain_count(r), 1);
	assert_int_equal(retain_set(r, moat_bytes_str("a/+"), &m1), MOAT_E_INVAL);
	assert_int_equal(retain_set(r, moat_bytes_str(""), &m1), MOAT_E_INVAL);
	assert_int_equal(retain_set(r, moat_bytes_str("a/b/c/d/e"), &m1), MOAT_E_LIMIT);
	assert_int_equal(retain_set(r, moat_bytes_str("a/b"), NULL), MOAT_OK);
	assert_int_equal(m2.refs, 1);
	assert_int_equal(retain_count(r), 0);
	assert_int_equal(retained(r, "#"), 0);
	retain_destroy(r);
}

static void retained_filter_walks(void **state)
{
	struct retain *r = retain_create(&fake_ops, 0);
	struct fake_msg ms[] = { { 1, "a/b" }, { 1, "a/c" }, { 1, "a/b/c" }, { 1, "a" },
				 { 1, "$SYS/x" }, { 1, "/z" } };
	struct names stop = { .stop_after = 2 };

	(void)state;
	for (size_t i = 0; i < sizeof(ms) / sizeof(ms[0]); i++)
		assert_int_equal(retain_set(r, moat_bytes_str(ms[i].name), &ms[i]), MOAT_OK);
	assert_int_equal(retained(r, "#"), 5);		/* not $SYS/x */
	assert_int_equal(retained(r, "a/#"), 4);	/* a, a/b, a/c, a/b/c */
	assert_int_equal(retained(r, "a/+"), 2);
	assert_int_equal(retained(r, "+/b/+"), 1);
	assert_int_equal(retained(r, "+"), 1);		/* a */
	assert_int_equal(retained(r, "+/+"), 3);	/* a/b a/c /z */
	assert_int_equal(retained(r, "$SYS/#"), 1);
	assert_int_equal(retained(r, "a/b"), 1);
	assert_int_equal(retained(r, "x/#"), 0);
	assert_int_equal(retain_match(r, moat_bytes_str("a/#/b"), collect_msg, &stop), MOAT_E_PROTOCOL);
	assert_int_equal(retain_match(r, moat_bytes_str("#"), collect_msg, &stop), MOAT_OK);
	assert_int_equal(stop.n, 2);	/* the callback stopped the walk */
	retain_destroy(r);
	for (size_t i = 0; i < sizeof(ms) / sizeof(ms[0]); i++)
		assert_int_equal(ms[i].refs, 1);	/* destroy let go of every one */
}

static void retained_sweep(void **state)
{
	struct retain *r = retain_create(&fake_ops, 0);
	struct fake_msg keep = { 1, "keep" }, old1 = { 1, "old" }, old2 = { 1, "old" };

	(void)state;
	retain_set(r, moat_bytes_str("k/1"), &keep);
	retain_set(r, moat_bytes_str("o/1/deep"), &old1);
	retain_set(r, moat_bytes_str("o/2"), &old2);
	assert_int_equal(retain_sweep(r, drop_named_old, NULL), 2);
	assert_int_equal(old1.refs, 1);
	assert_int_equal(old2.refs, 1);
	assert_int_equal(retain_count(r), 1);
	assert_int_equal(retained(r, "#"), 1);
	assert_int_equal(retain_set(r, moat_bytes_str("o/1/deep"), &old1), MOAT_OK);	/* emptied branch reusable */
	assert_int_equal(retained(r, "o/#"), 1);
	retain_destroy(r);
	assert_int_equal(keep.refs, 1);
	assert_int_equal(old1.refs, 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(wildcards_and_dollar_topics),
		cmocka_unit_test(resubscribe_replaces_and_remove_frees),
		cmocka_unit_test(invalid_filters_and_limits),
		cmocka_unit_test(shared_groups_round_robin),
		cmocka_unit_test(skipped_member_is_never_chosen),
		cmocka_unit_test(pick_one_member_of_one_share),
		cmocka_unit_test(match_names_each_members_share),
		cmocka_unit_test(deep_and_many_filters),
		cmocka_unit_test(retained_set_replace_delete),
		cmocka_unit_test(retained_filter_walks),
		cmocka_unit_test(retained_sweep),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
