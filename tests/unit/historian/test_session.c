/* moat-historian's login sessions (src/historian/session.c) and command
 * hand-off (src/historian/cmdq.c): ids and tokens, lookup, idle expiry,
 * logout, a full table; submit, take, complete, and a wait that times out. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include <moat/error.h>

#include "historian/cmdq.h"
#include "historian/session.h"

static void test_sessions(void **state)
{
	struct sessions *s = sessions_create();
	char id[SESSION_HEX_LEN + 1], csrf[SESSION_HEX_LEN + 1], id2[SESSION_HEX_LEN + 1];
	char user[HIST_NAME_MAX + 1], tok[SESSION_HEX_LEN + 1];

	(void)state;
	assert_non_null(s);
	assert_int_equal(sessions_open(s, "alice", 1000, id, csrf), MOAT_OK);
	assert_int_equal(strlen(id), SESSION_HEX_LEN);
	assert_int_equal(strspn(id, "0123456789abcdef"), SESSION_HEX_LEN);
	assert_string_not_equal(id, csrf);
	assert_true(sessions_find(s, id, 2000, user, tok));
	assert_string_equal(user, "alice");
	assert_string_equal(tok, csrf);
	assert_true(sessions_token_equal(csrf, tok));
	assert_false(sessions_token_equal("abc", tok));
	assert_false(sessions_find(s, "", 2000, user, tok));
	assert_false(sessions_find(s, csrf, 2000, user, tok)); /* a token is no id */
	/* idle expiry counts from the last use */
	assert_true(sessions_find(s, id, 2000 + SESSION_IDLE_MS, user, tok));
	assert_false(sessions_find(s, id, 2000 + 2 * SESSION_IDLE_MS + 1, user, tok));
	assert_int_equal(sessions_open(s, "bob", 5000, id2, csrf), MOAT_OK);
	sessions_close(s, id2);
	assert_false(sessions_find(s, id2, 5000, user, tok));
	/* a full table drops the oldest */
	assert_int_equal(sessions_open(s, "first", 6000, id, csrf), MOAT_OK);
	for (int i = 0; i < SESSION_MAX; i++)
		assert_int_equal(sessions_open(s, "u", 7000 + i, id2, csrf), MOAT_OK);
	assert_false(sessions_find(s, id, 9000, user, tok));
	assert_true(sessions_find(s, id2, 9000, user, tok));
	sessions_destroy(s);
}

static void test_cmdq(void **state)
{
	struct cmdq q;
	struct cmdq_entry a = {.id = "c1", .device = "dev-1", .on = true};
	struct cmdq_entry b = {.id = "c2", .device = "dev-1"};
	struct cmdq_entry out[4];

	(void)state;
	assert_int_equal(cmdq_init(&q), MOAT_OK);
	cmdq_submit(&q, &a);
	cmdq_submit(&q, &b);
	assert_int_equal(cmdq_take_unsent(&q, out, 4), 2);
	assert_int_equal(cmdq_take_unsent(&q, out, 4), 0); /* taken once */
	assert_true(cmdq_complete(&q, "c1", HIST_CMD_FAILED, "stale"));
	assert_false(cmdq_complete(&q, "c1", HIST_CMD_ACKNOWLEDGED, NULL)); /* done already */
	assert_false(cmdq_complete(&q, "c9", HIST_CMD_ACKNOWLEDGED, NULL));
	assert_true(cmdq_wait(&q, &a, 1000));
	assert_int_equal(a.status, HIST_CMD_FAILED);
	assert_string_equal(a.reason, "stale");
	assert_false(cmdq_wait(&q, &b, 50));				    /* nobody answers */
	assert_false(cmdq_complete(&q, "c2", HIST_CMD_ACKNOWLEDGED, NULL)); /* unlinked */
	assert_null(q.head);
	cmdq_fini(&q);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_sessions),
	    cmocka_unit_test(test_cmdq),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
