/*
 * Unit tests for the retained bucket's write of a message that waited for
 * the join (src/cluster/retained.c, cluster_retained_bucket_wins): the
 * bucket's value wins when it was written at or after the message's
 * publication, or when that time is not known (read back from the store);
 * an older value is overwritten.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "cluster/cluster_int.h"

#define PUBLISHED_MS 1800000000000ULL /* ms, in 2027 */

static int64_t ns(uint64_t ms)
{
	return (int64_t)ms * 1000000;
}

static void test_newer_bucket_value_wins(void **state)
{
	(void)state;
	assert_true(cluster_retained_bucket_wins(ns(PUBLISHED_MS + 1), PUBLISHED_MS));
	assert_true(cluster_retained_bucket_wins(ns(PUBLISHED_MS + 3600000), PUBLISHED_MS));
	/* the same millisecond: the value the other nodes have stays */
	assert_true(cluster_retained_bucket_wins(ns(PUBLISHED_MS) + 999999, PUBLISHED_MS));
}

static void test_older_bucket_value_is_overwritten(void **state)
{
	(void)state;
	assert_false(cluster_retained_bucket_wins(ns(PUBLISHED_MS - 1), PUBLISHED_MS));
	assert_false(cluster_retained_bucket_wins(0, PUBLISHED_MS));
}

static void test_unknown_publication_time_keeps_the_bucket(void **state)
{
	(void)state;
	assert_true(cluster_retained_bucket_wins(ns(1), 0));
	assert_true(cluster_retained_bucket_wins(ns(PUBLISHED_MS), 0));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_newer_bucket_value_wins),
	    cmocka_unit_test(test_older_bucket_value_is_overwritten),
	    cmocka_unit_test(test_unknown_publication_time_keeps_the_bucket),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
