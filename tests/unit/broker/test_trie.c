/*
 * Unit tests for the topic-level trie under the subscription index and the
 * retained store: level iteration, child lookup and growth, sibling walks,
 * removal and pruning.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker/trie.h"

static int count_levels(const char *topic)
{
	struct moat_bytes t = moat_bytes_str(topic), level;
	size_t pos = 0;
	int n = 0;

	while (trie_levels_next(t, &pos, &level))
		n++;
	return n;
}

static void levels_of_topics(void **state)
{
	struct moat_bytes t = moat_bytes_str("a//b"), level;
	size_t pos = 0;

	(void)state;
	assert_int_equal(count_levels(""), 1);
	assert_int_equal(count_levels("a"), 1);
	assert_int_equal(count_levels("/"), 2);
	assert_int_equal(count_levels("a//b"), 3);
	assert_true(trie_levels_next(t, &pos, &level));
	assert_int_equal(level.len, 1);
	assert_true(trie_levels_next(t, &pos, &level));
	assert_int_equal(level.len, 0);	/* the empty middle level */
	assert_true(trie_levels_next(t, &pos, &level));
	assert_memory_equal(level.ptr, "b", 1);
	assert_false(trie_levels_next(t, &pos, &level));
}

static void add_lookup_and_empty_level(void **state)
{
	struct trie_node *root = trie_create(), *a, *empty;

	(void)state;
	assert_non_null(root);
	a = trie_child_add(root, moat_bytes_str("a"));
	assert_non_null(a);
	assert_ptr_equal(trie_child_add(root, moat_bytes_str("a")), a);	/* no duplicate */
	assert_ptr_equal(trie_child(root, moat_bytes_str("a")), a);
	assert_null(trie_child(root, moat_bytes_str("b")));
	empty = trie_child_add(a, (struct moat_bytes){ 0 });
	assert_non_null(empty);
	assert_ptr_equal(trie_child(a, moat_bytes_str("")), empty);
	assert_int_equal(empty->depth, 2);
	assert_ptr_equal(empty->parent, a);
	trie_destroy(root, NULL);
}

static void many_siblings_each_visited_once(void **state)
{
	struct trie_node *root = trie_create();
	static unsigned char seen[1000];
	char name[16];
	int visited = 0;

	(void)state;
	for (int i = 0; i < 1000; i++) {
		snprintf(name, sizeof(name), "%d", i);
		assert_non_null(trie_child_add(root, moat_bytes_str(name)));
	}
	assert_int_equal(root->nkids, 1000);
	for (int i = 0; i < 1000; i++) {
		snprintf(name, sizeof(name), "%d", i);
		assert_non_null(trie_child(root, moat_bytes_str(name)));	/* found after growth */
	}
	memset(seen, 0, sizeof(seen));
	for (struct trie_node *c = trie_first_child(root); c != NULL; c = trie_next_sibling(c)) {
		int i;

		memcpy(name, c->name, c->len);
		name[c->len] = '\0';
		i = atoi(name);
		assert_int_equal(seen[i], 0);
		seen[i] = 1;
		visited++;
	}
	assert_int_equal(visited, 1000);
	trie_destroy(root, NULL);
}

static int freed_vals;

static void count_free(void *val)
{
	(void)val;
	freed_vals++;
}

static void prune_and_remove(void **state)
{
	struct trie_node *root = trie_create(), *a, *b, *c, *d;
	int val = 1;

	(void)state;
	a = trie_child_add(root, moat_bytes_str("a"));
	b = trie_child_add(a, moat_bytes_str("b"));
	c = trie_child_add(b, moat_bytes_str("c"));
	d = trie_child_add(a, moat_bytes_str("d"));
	d->val = &val;
	trie_prune(c);	/* frees c and b, stops at a (d still hangs there) */
	assert_null(trie_child(a, moat_bytes_str("b")));
	assert_ptr_equal(trie_child(a, moat_bytes_str("d")), d);
	assert_false(trie_remove_if_empty(d));	/* has a val */
	assert_false(trie_remove_if_empty(root));	/* never the root */
	d->val = NULL;
	assert_true(trie_remove_if_empty(d));
	assert_int_equal(a->nkids, 0);
	assert_ptr_equal(trie_child(root, moat_bytes_str("a")), a);	/* parent stays */
	trie_prune(a);
	assert_int_equal(root->nkids, 0);
	b = trie_child_add(trie_child_add(root, moat_bytes_str("x")), moat_bytes_str("y"));
	b->val = &val;
	root->val = NULL;
	freed_vals = 0;
	trie_destroy(root, count_free);
	assert_int_equal(freed_vals, 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(levels_of_topics),
		cmocka_unit_test(add_lookup_and_empty_level),
		cmocka_unit_test(many_siblings_each_visited_once),
		cmocka_unit_test(prune_and_remove),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
