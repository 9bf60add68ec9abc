/*
 * Unit tests for a node's status value in the nodes' bucket
 * (src/cluster/node_status.c): written values read back the same, damaged
 * or hostile ones are refused or read as zeros, unknown members ignored;
 * the one rule for alive and silent nodes.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "cluster/node_status.h"

static bool parse(const char *json, struct node_status *ns)
{
	return node_status_parse(json, strlen(json), ns);
}

static void round_trip(void **state)
{
	struct node_status in = {.node = "node-1_a",
				 .started_s = 1764590000,
				 .updated_ms = 1764590012345,
				 .clients = 3,
				 .sessions = 5,
				 .subscriptions = 7,
				 .messages_in = 120,
				 .messages_out = 9007199254740992ull};
	struct node_status out;
	char json[512];
	size_t n = node_status_format(&in, json, sizeof(json));

	(void)state;
	assert_true(n > 0);
	assert_int_equal(n, strlen(json));
	assert_true(node_status_parse(json, n, &out));
	assert_string_equal(out.node, in.node);
	assert_int_equal(out.started_s, in.started_s);
	assert_int_equal(out.updated_ms, in.updated_ms);
	assert_int_equal(out.clients, in.clients);
	assert_int_equal(out.sessions, in.sessions);
	assert_int_equal(out.subscriptions, in.subscriptions);
	assert_int_equal(out.messages_in, in.messages_in);
	assert_int_equal(out.messages_out, in.messages_out);
	assert_int_equal(node_status_format(&in, json, 20), 0); /* too small */
}

static void documented_example(void **state)
{
	struct node_status ns;

	(void)state;
	assert_true(parse("{\"node\":\"a\",\"started\":1764590000,\"updated\":1764590012345,"
			  "\"clients\":3,\"sessions\":5,\"subscriptions\":7,\"messages_in\":120,"
			  "\"messages_out\":118,\"later\":{\"x\":[1]}}",
			  &ns));
	assert_string_equal(ns.node, "a");
	assert_int_equal(ns.clients, 3);
	assert_int_equal(ns.messages_out, 118);
	assert_int_equal(ns.updated_ms, 1764590012345ull);
}

static void refusals(void **state)
{
	static const char *const bad[] = {
	    "",
	    "[]",
	    "\"a\"",
	    "{}",
	    "{\"node\":1}",
	    "{\"node\":\"\"}",
	    "{\"node\":\"a.b\"}",
	    "{\"node\":\"a b\"}",
	    "{\"node\":\"a\"",
	    "{\"node\":\"0123456789012345678901234567890123456789012345678901234567890123x\"}",
	};
	struct node_status ns;

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_false(parse(bad[i], &ns));
	/* the length is honoured: no NUL needed, nothing read past it */
	assert_false(node_status_parse("{\"node\":\"a\"}", 5, &ns));
}

static void odd_figures_read_as_zero(void **state)
{
	struct node_status ns;

	(void)state;
	assert_true(parse("{\"node\":\"a\",\"clients\":-1,\"sessions\":1.5,\"subscriptions\":1e300,"
			  "\"messages_in\":\"7\",\"messages_out\":null}",
			  &ns));
	assert_int_equal(ns.clients, 0);
	assert_int_equal(ns.sessions, 0);
	assert_int_equal(ns.subscriptions, 0);
	assert_int_equal(ns.messages_in, 0);
	assert_int_equal(ns.messages_out, 0);
}

/* Alive while NATS stored the entry within NODE_SILENT_MS; a clock ahead of
 * now (another node's) counts as alive. */
static void alive_until_silent(void **state)
{
	(void)state;
	assert_true(node_status_alive(100000, 100000));
	assert_true(node_status_alive(100000, 100000 + NODE_SILENT_MS));
	assert_false(node_status_alive(100000, 100000 + NODE_SILENT_MS + 1));
	assert_true(node_status_alive(200000, 100000));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(round_trip),
	    cmocka_unit_test(documented_example),
	    cmocka_unit_test(refusals),
	    cmocka_unit_test(odd_figures_read_as_zero),
	    cmocka_unit_test(alive_until_silent),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
