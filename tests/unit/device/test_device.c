/*
 * Unit tests for moat-device's logic (src/device/command.c, reading.c):
 * command parsing (valid, each malformed shape), the stale and replay
 * decisions including the forgotten-id floor, and the JSON of readings and
 * statuses (parsed back with cJSON).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <cmocka.h>

#include <moat/error.h>

#include "device/command.h"
#include "device/reading.h"

#define ID_A "0123456789abcdef0123456789abcdef"
#define ID_B "fedcba9876543210fedcba9876543210"
#define NOW 1764570000

static int parse(const char *json, struct cmd *c)
{
	return cmd_parse((const uint8_t *)json, strlen(json), c);
}

static void test_parse_valid(void **state)
{
	struct cmd c;

	(void)state;
	assert_int_equal(parse("{\"id\":\"" ID_A "\",\"state\":\"on\",\"iat\":1764570000}", &c),
			 MOAT_OK);
	assert_string_equal(c.id, ID_A);
	assert_true(c.on);
	assert_int_equal(c.iat, 1764570000);
	assert_int_equal(parse("{\"iat\":5,\"state\":\"off\",\"id\":\"" ID_B "\"}", &c), MOAT_OK);
	assert_false(c.on);
	assert_int_equal(c.iat, 5);
}

static void test_parse_malformed(void **state)
{
	static const char *const bad[] = {
	    "",
	    "[]",
	    "\"on\"",
	    "{\"id\":\"0123\",\"state\":\"on\",\"iat\":1}",
	    "{\"id\":\"" ID_A "0\",\"state\":\"on\",\"iat\":1}",
	    "{\"id\":\"0123456789abcdef0123456789abcdeg\",\"state\":\"on\",\"iat\":1}",
	    "{\"id\":\"" ID_A "\",\"state\":\"ON\",\"iat\":1}",
	    "{\"id\":\"" ID_A "\",\"state\":\"on\",\"iat\":1.5}",
	    "{\"id\":\"" ID_A "\",\"state\":\"on\",\"iat\":-1}",
	    "{\"id\":\"" ID_A "\",\"state\":\"on\",\"iat\":\"1\"}",
	    "{\"id\":\"" ID_A "\",\"state\":\"on\"}",
	    "{\"id\":\"" ID_A "\",\"state\":\"on\",\"iat\":1,\"x\":2}",
	    "{\"id\":\"" ID_A "\",\"state\":\"on\",\"iat\":1} trailing",
	    "{\"id\":12,\"state\":\"on\",\"iat\":1}",
	};
	struct cmd c;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(parse(bad[i], &c), MOAT_E_MALFORMED);
	/* a NUL inside the bytes */
	assert_int_equal(cmd_parse((const uint8_t *)"{\"id\0\":1}", 10, &c), MOAT_E_MALFORMED);
	/* the id is kept for the refusal when it was readable */
	assert_int_equal(parse("{\"id\":\"" ID_A "\",\"state\":\"dim\",\"iat\":1}", &c),
			 MOAT_E_MALFORMED);
	assert_string_equal(c.id, ID_A);
	assert_int_equal(parse("{\"id\":\"x\",\"state\":\"on\",\"iat\":1}", &c), MOAT_E_MALFORMED);
	assert_string_equal(c.id, "");
}

static struct cmd make(const char *id, int64_t iat)
{
	struct cmd c = {.on = true, .iat = iat};

	memcpy(c.id, id, CMD_ID_LEN + 1);
	return c;
}

static void test_decide_stale_and_replay(void **state)
{
	struct cmd_seen s;
	struct cmd c;

	(void)state;
	cmd_seen_init(&s);
	c = make(ID_A, NOW - 31);
	assert_string_equal(cmd_decide(&s, &c, NOW), "stale");
	c = make(ID_A, NOW + 31);
	assert_string_equal(cmd_decide(&s, &c, NOW), "stale");
	c = make(ID_A, NOW - 30);
	assert_null(cmd_decide(&s, &c, NOW));
	assert_string_equal(cmd_decide(&s, &c, NOW), "replayed");
	/* the same id in upper case is the same id */
	c = make("0123456789ABCDEF0123456789ABCDEF", NOW);
	assert_string_equal(cmd_decide(&s, &c, NOW), "replayed");
	c = make(ID_B, NOW);
	assert_null(cmd_decide(&s, &c, NOW));
}

static void test_decide_forgotten_ids_raise_a_floor(void **state)
{
	struct cmd_seen s;
	struct cmd c;
	char id[CMD_ID_LEN + 1];
	int i;

	(void)state;
	cmd_seen_init(&s);
	for (i = 0; i < CMD_SEEN_MAX + 1; i++) {
		snprintf(id, sizeof(id), "%032x", i);
		c = make(id, NOW - 20 + i / 8);
		assert_null(cmd_decide(&s, &c, NOW));
	}
	/* id 0 was forgotten: it comes back with its iat, refused by the floor */
	snprintf(id, sizeof(id), "%032x", 0);
	c = make(id, NOW - 20);
	assert_string_equal(cmd_decide(&s, &c, NOW), "replayed");
	/* a new id at the floor's iat is refused too; a newer one passes */
	c = make(ID_B, NOW - 20);
	assert_string_equal(cmd_decide(&s, &c, NOW), "replayed");
	c = make(ID_B, NOW);
	assert_null(cmd_decide(&s, &c, NOW));
}

static cJSON *parsed(const char *text, int n)
{
	cJSON *j;

	assert_true(n > 0);
	assert_int_equal((size_t)n, strlen(text));
	j = cJSON_Parse(text);
	assert_non_null(j);
	return j;
}

static void test_reading_json_and_determinism(void **state)
{
	struct sensor a, b;
	char text[512];
	cJSON *j;
	int i, n;

	(void)state;
	sensor_init(&a, 42, 3);
	sensor_init(&b, 42, 3);
	for (i = 0; i < 1000; i++) {
		sensor_step(&a);
		sensor_step(&b);
		assert_true(a.temperature >= 15.0 && a.temperature <= 30.0);
		assert_true(a.humidity >= 20.0 && a.humidity <= 80.0);
	}
	assert_true(a.temperature == b.temperature && a.humidity == b.humidity);
	sensor_init(&b, 42, 4);
	sensor_step(&b);
	assert_false(a.temperature == b.temperature);
	n = reading_format(text, sizeof(text), "dev-1", 1764570000123ULL, 17, &a, true);
	j = parsed(text, n);
	assert_string_equal(cJSON_GetObjectItem(j, "device")->valuestring, "dev-1");
	assert_true(cJSON_GetObjectItem(j, "time")->valuedouble == 1764570000123.0);
	assert_int_equal(cJSON_GetObjectItem(j, "seq")->valueint, 17);
	assert_string_equal(cJSON_GetObjectItem(j, "relay")->valuestring, "on");
	assert_true(cJSON_IsNumber(cJSON_GetObjectItem(j, "temperature")));
	assert_true(cJSON_IsNumber(cJSON_GetObjectItem(j, "humidity")));
	assert_int_equal(cJSON_GetArraySize(j), 6);
	cJSON_Delete(j);
	assert_int_equal(reading_format(text, 20, "dev-1", 1, 1, &a, false), -1);
}

static void test_status_json(void **state)
{
	char text[512];
	cJSON *j;
	int n;

	(void)state;
	n = status_format(text, sizeof(text), "dev-1", ID_A, true, NULL);
	j = parsed(text, n);
	assert_string_equal(cJSON_GetObjectItem(j, "cmd_id")->valuestring, ID_A);
	assert_string_equal(cJSON_GetObjectItem(j, "state")->valuestring, "on");
	assert_true(cJSON_IsTrue(cJSON_GetObjectItem(j, "ok")));
	cJSON_Delete(j);
	n = status_format(text, sizeof(text), "dev-1", "", false, "malformed");
	j = parsed(text, n);
	assert_true(cJSON_IsNull(cJSON_GetObjectItem(j, "cmd_id")));
	assert_true(cJSON_IsFalse(cJSON_GetObjectItem(j, "ok")));
	assert_string_equal(cJSON_GetObjectItem(j, "reason")->valuestring, "malformed");
	assert_null(cJSON_GetObjectItem(j, "state"));
	cJSON_Delete(j);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_parse_valid),
	    cmocka_unit_test(test_parse_malformed),
	    cmocka_unit_test(test_decide_stale_and_replay),
	    cmocka_unit_test(test_decide_forgotten_ids_raise_a_floor),
	    cmocka_unit_test(test_reading_json_and_determinism),
	    cmocka_unit_test(test_status_json),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
