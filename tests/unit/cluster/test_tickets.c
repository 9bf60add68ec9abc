/*
 * Unit tests for a worker's JetStream acknowledgement mark
 * (src/cluster/tickets.c): it advances only over a contiguous run of
 * acknowledged tickets, so a later ticket's acknowledgement never releases
 * an earlier, unstored one; duplicates are ignored.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <moat/error.h>

#include "cluster/tickets.h"

static uint64_t done(struct tickets *t, uint64_t ticket)
{
	uint64_t stored = 0;

	assert_int_equal(tickets_done(t, ticket, &stored), MOAT_OK);
	return stored;
}

static void test_in_order(void **state)
{
	struct tickets t = {0};

	(void)state;
	assert_int_equal(done(&t, 1), 1);
	assert_int_equal(done(&t, 2), 2);
	assert_int_equal(done(&t, 3), 3);
	tickets_fini(&t);
}

static void test_later_ack_does_not_release_earlier(void **state)
{
	struct tickets t = {0};

	(void)state;
	assert_int_equal(done(&t, 1), 1);
	assert_int_equal(done(&t, 3), 1); /* 2 not stored yet */
	assert_int_equal(done(&t, 5), 1);
	assert_int_equal(done(&t, 2), 3); /* the gap closes up to 3 */
	assert_int_equal(done(&t, 4), 5);
	assert_int_equal(t.early_n, 0);
	tickets_fini(&t);
}

static void test_duplicates_and_old(void **state)
{
	struct tickets t = {0};

	(void)state;
	assert_int_equal(done(&t, 4), 0);
	assert_int_equal(done(&t, 4), 0);
	assert_int_equal(t.early_n, 1);
	assert_int_equal(done(&t, 1), 1);
	assert_int_equal(done(&t, 1), 1);
	assert_int_equal(done(&t, 3), 1);
	assert_int_equal(done(&t, 2), 4);
	assert_int_equal(t.early_n, 0);
	tickets_fini(&t);
}

static void test_many_early(void **state)
{
	struct tickets t = {0};

	(void)state;
	for (uint64_t i = 1000; i >= 2; i--)
		assert_int_equal(done(&t, i), 0);
	assert_int_equal(done(&t, 1), 1000);
	tickets_fini(&t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_in_order),
	    cmocka_unit_test(test_later_ack_does_not_release_earlier),
	    cmocka_unit_test(test_duplicates_and_old),
	    cmocka_unit_test(test_many_early),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
