/* moat-historian's login rate limit (src/historian/loginlimit.c), on a
 * clock given by the test: the free allowance per (address, user) and per
 * address, the doubling block and its cap, Retry-After rounding, a success
 * clearing only its own pair, others never slowed, forgetting, and a full
 * table dropping the key unused longest. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <cmocka.h>

#include "historian/loginlimit.h"

static void fail_n(struct login_limit *l, const char *addr, const char *user, int n, int64_t now_ms)
{
	for (int i = 0; i < n; i++)
		login_limit_failed(l, addr, user, now_ms);
}

static void test_pair_backoff(void **state)
{
	struct login_limit *l = login_limit_create();
	int64_t t = 1000000;

	(void)state;
	assert_non_null(l);
	fail_n(l, "10.0.0.1", "alice", LOGIN_FREE_PER_USER, t);
	assert_int_equal(login_limit_wait_s(l, "10.0.0.1", "alice", t), 0);
	login_limit_failed(l, "10.0.0.1", "alice", t); /* one past the allowance */
	assert_int_equal(login_limit_wait_s(l, "10.0.0.1", "alice", t), 1);
	assert_int_equal(login_limit_wait_s(l, "10.0.0.1", "alice", t + 999), 1);
	assert_int_equal(login_limit_wait_s(l, "10.0.0.1", "alice", t + 1000), 0);
	/* others are not slowed: another user, another address */
	assert_int_equal(login_limit_wait_s(l, "10.0.0.1", "bob", t), 0);
	assert_int_equal(login_limit_wait_s(l, "10.0.0.2", "alice", t), 0);
	/* each further failure doubles the block, up to the cap */
	login_limit_failed(l, "10.0.0.1", "alice", t + 1000);
	assert_int_equal(login_limit_wait_s(l, "10.0.0.1", "alice", t + 1000), 2);
	login_limit_failed(l, "10.0.0.1", "alice", t + 3000);
	assert_int_equal(login_limit_wait_s(l, "10.0.0.1", "alice", t + 3000), 4);
	login_limit_failed(l, "10.0.0.1", "alice", t + 3500);
	assert_int_equal(login_limit_wait_s(l, "10.0.0.1", "alice", t + 3500), 8);
	fail_n(l, "10.0.0.1", "alice", 8, t + 4000); /* 17 in all: the address is not blocked */
	assert_int_equal(login_limit_wait_s(l, "10.0.0.1", "alice", t + 4000),
			 LOGIN_MAX_BLOCK_MS / 1000);
	/* a success clears the pair */
	login_limit_succeeded(l, "10.0.0.1", "alice");
	assert_int_equal(login_limit_wait_s(l, "10.0.0.1", "alice", t + 4000), 0);
	login_limit_destroy(l);
}

static void test_address_allowance(void **state)
{
	struct login_limit *l = login_limit_create();
	char user[16];
	int64_t t = 5000;

	(void)state;
	assert_non_null(l);
	/* a guesser trying many users from one address: each pair stays free,
	 * the address is blocked past its own allowance */
	for (int i = 0; i < LOGIN_FREE_PER_ADDRESS; i++) {
		snprintf(user, sizeof(user), "u%d", i);
		login_limit_failed(l, "10.0.0.9", user, t);
	}
	assert_int_equal(login_limit_wait_s(l, "10.0.0.9", "anyone", t), 0);
	login_limit_failed(l, "10.0.0.9", "u99", t);
	assert_int_equal(login_limit_wait_s(l, "10.0.0.9", "anyone", t), 1);
	assert_int_equal(login_limit_wait_s(l, "10.0.0.8", "anyone", t), 0);
	/* one good account does not reset the address */
	login_limit_succeeded(l, "10.0.0.9", "u99");
	assert_int_equal(login_limit_wait_s(l, "10.0.0.9", "anyone", t), 1);
	/* forgotten after LOGIN_FORGET_MS: counting starts over */
	t += LOGIN_FORGET_MS + 2000;
	login_limit_failed(l, "10.0.0.9", "u1", t);
	assert_int_equal(login_limit_wait_s(l, "10.0.0.9", "anyone", t), 0);
	login_limit_destroy(l);
}

static void test_full_table(void **state)
{
	struct login_limit *l = login_limit_create();
	char addr[32];

	(void)state;
	assert_non_null(l);
	fail_n(l, "192.0.2.1", "alice", LOGIN_FREE_PER_USER + 1, 100); /* blocked */
	assert_int_equal(login_limit_wait_s(l, "192.0.2.1", "alice", 100), 1);
	/* filling the table with newer keys drops the oldest */
	for (int i = 0; i < LOGIN_KEYS_MAX; i++) {
		snprintf(addr, sizeof(addr), "10.1.%d.%d", i / 256, i % 256);
		login_limit_failed(l, addr, "x", 200 + i);
	}
	assert_int_equal(login_limit_wait_s(l, "192.0.2.1", "alice", 150), 0);
	login_limit_destroy(l);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_pair_backoff),
	    cmocka_unit_test(test_address_allowance),
	    cmocka_unit_test(test_full_table),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
