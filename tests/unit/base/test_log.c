/*
 * Unit tests for src/base/log.c: JSON lines (valid JSON and UTF-8 whatever
 * the message holds), text lines, reconfiguring the file, and the rate
 * limiter's suppression lines.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <moat/error.h>

#include "base/log.h"

static char dir[64], path[128];

static int setup(void **state)
{
	(void)state;
	snprintf(dir, sizeof(dir), "/tmp/moat-log-XXXXXX");
	if (mkdtemp(dir) == NULL)
		return -1;
	snprintf(path, sizeof(path), "%s/log", dir);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	log_configure(LOG_T_ERR, 0, NULL); /* closes the file */
	log_set_format(LOG_F_TEXT);
	unlink(path);
	rmdir(dir);
	return 0;
}

/* The file's lines, NUL-separated in a heap buffer; *<count> of them. */
static char *read_lines(size_t *count)
{
	FILE *f = fopen(path, "r");
	char *data = calloc(1, 65536);
	size_t n;

	assert_non_null(f);
	assert_non_null(data);
	n = fread(data, 1, 65535, f);
	fclose(f);
	*count = 0;
	for (size_t i = 0; i < n; i++) {
		if (data[i] == '\n') {
			data[i] = '\0';
			(*count)++;
		}
	}
	return data;
}

static const char *next_line(const char *line)
{
	return line + strlen(line) + 1;
}

/* Whether <s> is valid UTF-8 (no overlong forms, surrogates or > U+10FFFF). */
static bool valid_utf8(const unsigned char *s)
{
	while (*s != '\0') {
		unsigned c = *s;
		size_t n = c < 0x80	    ? 1
			   : (c >> 5) == 6  ? 2
			   : (c >> 4) == 14 ? 3
			   : (c >> 3) == 30 ? 4
					    : 0;
		uint32_t cp;

		if (n == 0)
			return false;
		cp = n == 1 ? c : c & (0x7fu >> n);
		for (size_t i = 1; i < n; i++) {
			if ((s[i] & 0xc0) != 0x80)
				return false;
			cp = cp << 6 | (s[i] & 0x3fu);
		}
		if ((n == 2 && cp < 0x80) || (n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000) ||
		    (cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff)
			return false;
		s += n;
	}
	return true;
}

static void json_lines_have_time_level_message(void **state)
{
	char *data;
	const char *line;
	size_t count;
	cJSON *o;

	(void)state;
	assert_int_equal(log_configure(LOG_T_ALL, LOG_D_FILE, path), MOAT_OK);
	log_set_format(LOG_F_JSON);
	log_err("disk %s is full", "/var");
	log_msg(LOG_T_SUBSCRIBE, "c1 1 a/\"b\"\n\tc\\d");
	data = read_lines(&count);
	assert_int_equal(count, 2);
	o = cJSON_Parse(data);
	assert_non_null(o);
	assert_string_equal(cJSON_GetObjectItem(o, "level")->valuestring, "error");
	assert_string_equal(cJSON_GetObjectItem(o, "message")->valuestring, "disk /var is full");
	assert_int_equal(strlen(cJSON_GetObjectItem(o, "time")->valuestring),
			 24); /* ...T..:..:..mmmZ */
	assert_int_equal(cJSON_GetObjectItem(o, "time")->valuestring[23], 'Z');
	assert_int_equal(cJSON_GetArraySize(o), 3);
	cJSON_Delete(o);
	line = next_line(data);
	o = cJSON_Parse(line);
	assert_non_null(o);
	assert_string_equal(cJSON_GetObjectItem(o, "level")->valuestring, "subscribe");
	assert_string_equal(cJSON_GetObjectItem(o, "message")->valuestring, "c1 1 a/\"b\"\n\tc\\d");
	cJSON_Delete(o);
	free(data);
}

static void json_lines_are_valid_utf8_whatever_the_message(void **state)
{
	static const char *bad[] = {
	    "overlong \xc0\xaf slash",
	    "surrogate \xed\xa0\x80 half",
	    "cut \xe2\x82",
	    "high \xf5\x80\x80\x80",
	    "lone \x80 continuation",
	    "fine \xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80",
	};
	char *data, big[3000];
	const char *line;
	size_t count;

	(void)state;
	assert_int_equal(log_configure(LOG_T_ALL, LOG_D_FILE, path), MOAT_OK);
	log_set_format(LOG_F_JSON);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		log_notice("client %s", bad[i]);
	/* a message cut at the buffer's end in the middle of a character */
	for (size_t i = 0; i + 2 < sizeof(big); i += 2)
		memcpy(big + i, "\xc3\xa9", 2);
	big[sizeof(big) - 2] = 'x';
	big[sizeof(big) - 1] = '\0';
	log_notice("x%s", big);
	data = read_lines(&count);
	assert_int_equal(count, sizeof(bad) / sizeof(bad[0]) + 1);
	line = data;
	for (size_t i = 0; i < count; i++, line = next_line(line)) {
		cJSON *o = cJSON_Parse(line);

		assert_non_null(o);
		assert_true(valid_utf8(
		    (const unsigned char *)cJSON_GetObjectItem(o, "message")->valuestring));
		if (i == sizeof(bad) / sizeof(bad[0]) - 1) /* valid text is kept as it is */
			assert_string_equal(cJSON_GetObjectItem(o, "message")->valuestring,
					    "client fine \xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80");
		cJSON_Delete(o);
	}
	free(data);
}

static void text_lines_start_with_the_unix_time(void **state)
{
	char *data;
	size_t count;
	long long t;
	int used = 0;

	(void)state;
	assert_int_equal(log_configure(LOG_T_ERR | LOG_T_NOTICE, LOG_D_FILE, path), MOAT_OK);
	log_set_format(LOG_F_TEXT);
	log_notice("hello %d", 42);
	log_info("not enabled");
	data = read_lines(&count);
	assert_int_equal(count, 1);
	assert_int_equal(sscanf(data, "%lld: %n", &t, &used), 1);
	assert_true(t > 1600000000);
	assert_string_equal(data + used, "hello 42");
	free(data);
}

static void configure_failure_keeps_the_old_settings(void **state)
{
	char *data;
	size_t count;

	(void)state;
	assert_int_equal(log_configure(LOG_T_ALL, LOG_D_FILE, path), MOAT_OK);
	assert_int_equal(log_configure(LOG_T_ERR, LOG_D_FILE, "/nonexistent/dir/log"), MOAT_E_IO);
	log_info("still written"); /* LOG_T_ALL and the old file remain */
	data = read_lines(&count);
	assert_int_equal(count, 1);
	assert_non_null(strstr(data, "still written"));
	free(data);
	assert_int_equal(log_format_parse("json"), LOG_F_JSON);
	assert_int_equal(log_format_parse("text"), LOG_F_TEXT);
	assert_int_equal(log_format_parse("JSON"), -1);
	assert_int_equal(log_format_parse(""), -1);
}

static void limiter_allows_a_burst_then_says_it_suppresses(void **state)
{
	struct log_limiter l = {0};
	char *data;
	size_t count;
	int allowed = 0;

	(void)state;
	assert_int_equal(log_configure(LOG_T_ALL, LOG_D_FILE, path), MOAT_OK);
	log_set_format(LOG_F_TEXT);
	for (int i = 0; i < 100; i++)
		allowed += log_limiter_allow(&l, 3, 3600);
	assert_int_equal(allowed, 3);
	assert_int_equal(l.suppressed, 97);
	data = read_lines(&count);
	assert_int_equal(count, 1); /* one line says so, not 97 */
	assert_non_null(strstr(data, "further similar messages suppressed for up to 3600 s"));
	free(data);
	l.window_start_s -= 3600; /* the period ends */
	assert_true(log_limiter_allow(&l, 3, 3600));
	data = read_lines(&count);
	assert_int_equal(count, 2);
	assert_non_null(strstr(next_line(data), "(97 similar messages suppressed)"));
	free(data);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(json_lines_have_time_level_message, setup, teardown),
	    cmocka_unit_test_setup_teardown(json_lines_are_valid_utf8_whatever_the_message, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(text_lines_start_with_the_unix_time, setup, teardown),
	    cmocka_unit_test_setup_teardown(configure_failure_keeps_the_old_settings, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(limiter_allows_a_burst_then_says_it_suppresses, setup,
					    teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
