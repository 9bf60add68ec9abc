/*
 * Unit tests for the Security Center's reserved topics (src/broker/sc_topics.c):
 * a device may ask only for itself and read only its own answers, only the
 * Security Center answers and announces, everyone reads the announcements,
 * nothing else under $sc is open, and other topics are left to the ACL.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "broker/sc_topics.h"
#include "broker/security.h"

static enum sc_verdict dev(const char *topic, int access)
{
	return sc_topic_check(moat_bytes_str(topic), access, "dev1", "alice", "sc");
}

static enum sc_verdict center(const char *topic, int access)
{
	return sc_topic_check(moat_bytes_str(topic), access, "moat-sc", "sc", "sc");
}

static void a_device_asks_only_for_itself(void **state)
{
	(void)state;
	assert_int_equal(dev("$sc/req/dev1", ACCESS_WRITE), SC_ALLOW);
	assert_int_equal(dev("$sc/req/dev2", ACCESS_WRITE), SC_DENY);
	assert_int_equal(dev("$sc/req/dev1/x", ACCESS_WRITE), SC_DENY);
	assert_int_equal(dev("$sc/req/+", ACCESS_SUBSCRIBE), SC_DENY);
	assert_int_equal(dev("$sc/req/dev2", ACCESS_READ), SC_DENY);
}

static void a_device_reads_only_its_own_answers(void **state)
{
	(void)state;
	assert_int_equal(dev("$sc/resp/dev1", ACCESS_SUBSCRIBE), SC_ALLOW);
	assert_int_equal(dev("$sc/resp/dev1", ACCESS_READ), SC_ALLOW);
	assert_int_equal(dev("$sc/resp/dev2", ACCESS_SUBSCRIBE), SC_DENY);
	assert_int_equal(dev("$sc/resp/+", ACCESS_SUBSCRIBE), SC_DENY);
	assert_int_equal(dev("$sc/resp/#", ACCESS_SUBSCRIBE), SC_DENY);
	assert_int_equal(dev("$sc/#", ACCESS_SUBSCRIBE), SC_DENY);
	assert_int_equal(dev("$sc/+/dev1", ACCESS_SUBSCRIBE), SC_DENY);
	assert_int_equal(dev("$sc/resp/dev2", ACCESS_READ), SC_DENY);
	assert_int_equal(dev("$sc/resp/dev1", ACCESS_WRITE), SC_DENY);
}

static void only_the_center_answers_and_announces(void **state)
{
	(void)state;
	assert_int_equal(center("$sc/resp/dev1", ACCESS_WRITE), SC_ALLOW);
	assert_int_equal(center("$sc/revoked", ACCESS_WRITE), SC_ALLOW);
	assert_int_equal(center("$sc/keys", ACCESS_WRITE), SC_ALLOW);
	assert_int_equal(center("$sc/epoch/group-7", ACCESS_WRITE), SC_ALLOW);
	assert_int_equal(center("$sc/req/#", ACCESS_SUBSCRIBE), SC_ALLOW);
	assert_int_equal(center("$sc/resp/+", ACCESS_WRITE), SC_DENY); /* a topic has no wildcard */
	assert_int_equal(center("$sc/other", ACCESS_WRITE), SC_DENY);
	assert_int_equal(dev("$sc/resp/dev1", ACCESS_WRITE), SC_DENY);
	assert_int_equal(dev("$sc/revoked", ACCESS_WRITE), SC_DENY);
	assert_int_equal(dev("$sc/epoch/group-7", ACCESS_WRITE), SC_DENY);
	/* without sc_username nobody speaks for the Security Center */
	assert_int_equal(sc_topic_check(moat_bytes_str("$sc/revoked"), ACCESS_WRITE, "x", "sc", NULL),
			 SC_DENY);
	/* anonymous clients are never the Security Center */
	assert_int_equal(sc_topic_check(moat_bytes_str("$sc/revoked"), ACCESS_WRITE, "x", NULL, "sc"),
			 SC_DENY);
}

static void everyone_reads_the_announcements(void **state)
{
	(void)state;
	assert_int_equal(dev("$sc/revoked", ACCESS_SUBSCRIBE), SC_ALLOW);
	assert_int_equal(dev("$sc/keys", ACCESS_READ), SC_ALLOW);
	assert_int_equal(dev("$sc/epoch/+", ACCESS_SUBSCRIBE), SC_ALLOW);
	assert_int_equal(dev("$sc/epoch/group-7", ACCESS_READ), SC_ALLOW);
	assert_int_equal(dev("$sc/revoked/x", ACCESS_SUBSCRIBE), SC_DENY);
}

static void other_topics_are_left_to_the_acl(void **state)
{
	(void)state;
	assert_int_equal(dev("sc/resp/dev2", ACCESS_SUBSCRIBE), SC_NOT_RESERVED);
	assert_int_equal(dev("$SYS/broker/uptime", ACCESS_READ), SC_NOT_RESERVED);
	assert_int_equal(dev("$scx/a", ACCESS_WRITE), SC_NOT_RESERVED);
	assert_int_equal(dev("#", ACCESS_SUBSCRIBE), SC_NOT_RESERVED);
	assert_int_equal(dev("$sc", ACCESS_SUBSCRIBE), SC_DENY);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(a_device_asks_only_for_itself),
		cmocka_unit_test(a_device_reads_only_its_own_answers),
		cmocka_unit_test(only_the_center_answers_and_announces),
		cmocka_unit_test(everyone_reads_the_announcements),
		cmocka_unit_test(other_topics_are_left_to_the_acl),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
