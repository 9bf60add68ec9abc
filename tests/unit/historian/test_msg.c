/* moat-historian's MQTT payload parsers (src/historian/msg.c): topic
 * names, the contract's telemetry and status JSON, and their refusals
 * (bad JSON, wrong types, out-of-range values, another device's name). */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include <moat/error.h>

#include "historian/msg.h"

static int parse_reading(const char *json, struct hist_reading *r, const char **why)
{
	return hist_reading_parse("dev-1", (const uint8_t *)json, strlen(json), r, why);
}

static int parse_status(const char *json, struct hist_status *s, const char **why)
{
	return hist_status_parse("dev-1", (const uint8_t *)json, strlen(json), s, why);
}

static void test_topics(void **state)
{
	char id[HIST_NAME_MAX + 1];
	char longtopic[200];

	(void)state;
	assert_int_equal(hist_topic_parse("moat/dev-1/telemetry", id), HIST_TOPIC_TELEMETRY);
	assert_string_equal(id, "dev-1");
	assert_int_equal(hist_topic_parse("moat/a.b:c/status", id), HIST_TOPIC_STATUS);
	assert_string_equal(id, "a.b:c");
	assert_int_equal(hist_topic_parse("moat/d/online", id), HIST_TOPIC_ONLINE);
	assert_int_equal(hist_topic_parse("alerts/d/tamper", id), HIST_TOPIC_ALERT);
	assert_int_equal(hist_topic_parse("moat//telemetry", id), HIST_TOPIC_OTHER);
	assert_int_equal(hist_topic_parse("moat/a/b/telemetry", id), HIST_TOPIC_OTHER);
	assert_int_equal(hist_topic_parse("moat/-x/telemetry", id), HIST_TOPIC_OTHER);
	assert_int_equal(hist_topic_parse("moat/d/cmd", id), HIST_TOPIC_OTHER);
	assert_int_equal(hist_topic_parse("moat/telemetry", id), HIST_TOPIC_OTHER);
	assert_int_equal(hist_topic_parse("alerts/d/online", id), HIST_TOPIC_OTHER);
	memset(longtopic, 0, sizeof(longtopic));
	strcpy(longtopic, "moat/");
	memset(longtopic + 5, 'a', HIST_NAME_MAX + 1);
	strcat(longtopic, "/status");
	assert_int_equal(hist_topic_parse(longtopic, id), HIST_TOPIC_OTHER);
	assert_true(hist_name_is_valid("a", 1));
	assert_false(hist_name_is_valid("", 0));
	assert_false(hist_name_is_valid("a b", 3));
}

static void test_reading_ok(void **state)
{
	struct hist_reading r;
	const char *why = "x";

	(void)state;
	assert_int_equal(parse_reading("{\"device\":\"dev-1\",\"time\":1764565200000,\"seq\":17,"
				       "\"temperature\":21.5,\"humidity\":40.2,\"relay\":\"on\"}",
				       &r, &why),
			 MOAT_OK);
	assert_null(why);
	assert_string_equal(r.device, "dev-1");
	assert_int_equal(r.time_ms, INT64_C(1764565200000));
	assert_int_equal(r.seq, 17);
	assert_true(r.temperature == 21.5 && r.humidity == 40.2);
	assert_int_equal(r.relay, HIST_RELAY_ON);
	/* only device and time are required */
	assert_int_equal(parse_reading("{\"device\":\"dev-1\",\"time\":1764565200000}", &r, &why),
			 MOAT_OK);
	assert_true(isnan(r.temperature) && isnan(r.humidity));
	assert_int_equal(r.seq, -1);
	assert_int_equal(r.relay, HIST_RELAY_UNKNOWN);
}

static void test_reading_refused(void **state)
{
	static const char *const bad[] = {
	    "",
	    "[]",
	    "{\"device\":\"dev-1\"",
	    "{\"time\":1764565200000}",
	    "{\"device\":7,\"time\":1764565200000}",
	    "{\"device\":\"dev-1\"}",
	    "{\"device\":\"dev-1\",\"time\":\"1764565200000\"}",
	    "{\"device\":\"dev-1\",\"time\":1764565200000.5}",
	    "{\"device\":\"dev-1\",\"time\":17}",
	    "{\"device\":\"dev-1\",\"time\":1e300}",
	    "{\"device\":\"dev-1\",\"time\":1764565200000,\"seq\":-1}",
	    "{\"device\":\"dev-1\",\"time\":1764565200000,\"seq\":1.5}",
	    "{\"device\":\"dev-1\",\"time\":1764565200000,\"temperature\":\"hot\"}",
	    "{\"device\":\"dev-1\",\"time\":1764565200000,\"temperature\":-300}",
	    "{\"device\":\"dev-1\",\"time\":1764565200000,\"humidity\":101}",
	    "{\"device\":\"dev-1\",\"time\":1764565200000,\"relay\":\"maybe\"}",
	    "{\"device\":\"dev-1\",\"time\":1764565200000,\"relay\":true}",
	};
	struct hist_reading r;
	const char *why;

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		why = NULL;
		assert_int_equal(parse_reading(bad[i], &r, &why), MOAT_E_MALFORMED);
		assert_non_null(why);
	}
	assert_int_equal(parse_reading("{\"device\":\"dev-2\",\"time\":1764565200000}", &r, &why),
			 MOAT_E_DENIED);
	assert_string_equal(why, "unknown-device");
}

static void test_status(void **state)
{
	struct hist_status s;
	const char *why;

	(void)state;
	assert_int_equal(parse_status("{\"device\":\"dev-1\",\"cmd_id\":\"0123abcd\",\"state\":"
				      "\"off\",\"ok\":true}",
				      &s, &why),
			 MOAT_OK);
	assert_string_equal(s.cmd_id, "0123abcd");
	assert_true(s.ok);
	assert_int_equal(s.relay, HIST_RELAY_OFF);
	assert_string_equal(s.reason, "");
	assert_int_equal(parse_status("{\"device\":\"dev-1\",\"cmd_id\":\"c1\",\"ok\":false,"
				      "\"reason\":\"bad signer\"}",
				      &s, &why),
			 MOAT_OK);
	assert_false(s.ok);
	assert_string_equal(s.reason, "bad signer");
	/* ok without a state, a bad id, a non-boolean ok, a control character */
	assert_int_equal(
	    parse_status("{\"device\":\"dev-1\",\"cmd_id\":\"c1\",\"ok\":true}", &s, &why),
	    MOAT_E_MALFORMED);
	assert_int_equal(
	    parse_status("{\"device\":\"dev-1\",\"cmd_id\":\"c 1\",\"ok\":false}", &s, &why),
	    MOAT_E_MALFORMED);
	assert_int_equal(
	    parse_status("{\"device\":\"dev-1\",\"cmd_id\":\"c1\",\"ok\":1}", &s, &why),
	    MOAT_E_MALFORMED);
	assert_int_equal(parse_status("{\"device\":\"dev-1\",\"cmd_id\":\"c1\",\"ok\":false,"
				      "\"reason\":\"a\\nb\"}",
				      &s, &why),
			 MOAT_E_MALFORMED);
	assert_int_equal(
	    parse_status("{\"device\":\"dev-9\",\"cmd_id\":\"c1\",\"ok\":false}", &s, &why),
	    MOAT_E_DENIED);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_topics),
	    cmocka_unit_test(test_reading_ok),
	    cmocka_unit_test(test_reading_refused),
	    cmocka_unit_test(test_status),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
