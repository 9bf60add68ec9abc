/*
 * Unit tests for src/codec/utf8.c and src/codec/topic.c: MQTT UTF-8 rules,
 * topic name and filter validation, wildcard matching and $share parsing
 * (CVE-2025-68699).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <moat/error.h>

#include "codec/topic.h"
#include "codec/utf8.h"

#define S(s) moat_bytes_str(s)
#define B(...) ((struct moat_bytes){ (const uint8_t[]){ __VA_ARGS__ }, \
				     sizeof((const uint8_t[]){ __VA_ARGS__ }) })

static void utf8_accepts_ascii_and_multibyte(void **state)
{
	(void)state;
	assert_true(utf8_is_valid_mqtt(S("")));
	assert_true(utf8_is_valid_mqtt(S("sensor/temp")));
	assert_true(utf8_is_valid_mqtt(B(0xc3, 0xa9)));			/* U+00E9 */
	assert_true(utf8_is_valid_mqtt(B(0xe2, 0x82, 0xac)));		/* U+20AC */
	assert_true(utf8_is_valid_mqtt(B(0xf0, 0x9f, 0x98, 0x80)));	/* U+1F600 */
	assert_true(utf8_is_valid_mqtt(B(0xf4, 0x8f, 0xbf, 0xbd)));	/* U+10FFFD */
}

static void utf8_rejects_overlong_encoding(void **state)
{
	(void)state;
	assert_false(utf8_is_valid_mqtt(B(0xc0, 0x80)));
	assert_false(utf8_is_valid_mqtt(B(0xc1, 0xbf)));
	assert_false(utf8_is_valid_mqtt(B(0xe0, 0x80, 0xaf)));
	assert_false(utf8_is_valid_mqtt(B(0xf0, 0x80, 0x80, 0xaf)));
}

static void utf8_rejects_surrogates(void **state)
{
	(void)state;
	assert_false(utf8_is_valid_mqtt(B(0xed, 0xa0, 0x80)));	/* U+D800 */
	assert_false(utf8_is_valid_mqtt(B(0xed, 0xbf, 0xbf)));	/* U+DFFF */
}

static void utf8_rejects_nul_and_control_characters(void **state)
{
	(void)state;
	assert_false(utf8_is_valid_mqtt(B('a', 0x00, 'b')));
	assert_false(utf8_is_valid_mqtt(B(0x01)));
	assert_false(utf8_is_valid_mqtt(B(0x1f)));
	assert_false(utf8_is_valid_mqtt(B(0x7f)));
	assert_false(utf8_is_valid_mqtt(B(0xc2, 0x80)));	/* U+0080 */
	assert_false(utf8_is_valid_mqtt(B(0xc2, 0x9f)));	/* U+009F */
	assert_true(utf8_is_valid_mqtt(B(0xc2, 0xa0)));		/* U+00A0 */
}

static void utf8_rejects_noncharacters(void **state)
{
	(void)state;
	assert_false(utf8_is_valid_mqtt(B(0xef, 0xbf, 0xbf)));		/* U+FFFF */
	assert_false(utf8_is_valid_mqtt(B(0xef, 0xbf, 0xbe)));		/* U+FFFE */
	assert_false(utf8_is_valid_mqtt(B(0xf4, 0x8f, 0xbf, 0xbf)));	/* U+10FFFF */
}

static void utf8_rejects_truncated_and_stray_bytes(void **state)
{
	(void)state;
	assert_false(utf8_is_valid_mqtt(B(0xe2, 0x82)));
	assert_false(utf8_is_valid_mqtt(B(0x80)));
	assert_false(utf8_is_valid_mqtt(B(0xc3, 0x28)));
	assert_false(utf8_is_valid_mqtt(B(0xf8, 0x88, 0x80, 0x80, 0x80)));
	assert_false(utf8_is_valid_mqtt(B(0xf4, 0x90, 0x80, 0x80)));	/* over U+10FFFF */
}

static void topic_matches_follows_the_wildcard_rules(void **state)
{
	static const struct {
		const char *filter, *name;
		bool match;
	} cases[] = {
		{ "#", "$SYS/x", false },
		{ "+/x", "$SYS/x", false },
		{ "$SYS/#", "$SYS/x", true },
		{ "$SYS/+", "$SYS/x", true },
		{ "a/#", "a", true },
		{ "a/#", "a/b/c", true },
		{ "a/#", "ab", false },
		{ "#", "a/b", true },
		{ "+", "", true },
		{ "+/+", "/", true },
		{ "a/+", "a/", true },
		{ "/+", "/x", true },
		{ "a/+", "a/b", true },
		{ "a/+", "a/b/c", false },
		{ "a/+/c", "a/b/c", true },
		{ "a/+/c", "a/b/d", false },
		{ "+", "a/b", false },
		{ "a/b", "a/b", true },
		{ "a/b", "a/bc", false },
		{ "a/bc", "a/b", false },
		{ "a/b", "a", false },
		{ "a", "a/b", false },
		{ "a/+/#", "a/b", true },
		{ "a/+/#", "a", false },
	};
	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		bool m = topic_matches(S(cases[i].filter), S(cases[i].name));

		if (m != cases[i].match)
			fail_msg("topic_matches(\"%s\", \"%s\") = %d", cases[i].filter,
				 cases[i].name, (int)m);
	}
}

static void topic_filter_validity(void **state)
{
	static const struct {
		const char *filter;
		bool valid;
	} cases[] = {
		{ "#", true },	{ "+", true },	   { "a/#", true },  { "a/+/b", true },
		{ "/", true },	{ "+/+", true },   { "$SYS/#", true }, { "a/#/b", false },
		{ "a+", false }, { "+a", false },  { "a#", false },  { "a/b#", false },
		{ "##", false }, { "", false },	   { "a/++", false },
	};
	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		if (topic_filter_is_valid(S(cases[i].filter)) != cases[i].valid)
			fail_msg("topic_filter_is_valid(\"%s\")", cases[i].filter);
	}
	assert_false(topic_filter_is_valid(B('a', 0xc0, 0x80)));
}

static void topic_name_refuses_wildcards_and_empty(void **state)
{
	(void)state;
	assert_true(topic_name_is_valid(S("a/b")));
	assert_true(topic_name_is_valid(S("/")));
	assert_false(topic_name_is_valid(S("")));
	assert_false(topic_name_is_valid(S("a/+")));
	assert_false(topic_name_is_valid(S("a/#")));
	assert_false(topic_name_is_valid(B('a', 0x00)));
}

static void topic_share_parse_rejects_incomplete_forms(void **state)
{
	static const char *bad[] = { "$share/", "$share/g", "$share//t", "$share/g/",
				     "$share/g+/t", "$share/g#/t", "$share/g/a#" };
	struct moat_bytes group, inner;

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		if (topic_share_parse(S(bad[i]), &group, &inner) != MOAT_E_PROTOCOL)
			fail_msg("topic_share_parse(\"%s\") should be MOAT_E_PROTOCOL", bad[i]);
	}
}

static void topic_share_parse_splits_group_and_filter(void **state)
{
	struct moat_bytes group, inner;

	(void)state;
	assert_int_equal(topic_share_parse(S("$share/g/t"), &group, &inner), MOAT_OK);
	assert_true(moat_bytes_eq(group, S("g")));
	assert_true(moat_bytes_eq(inner, S("t")));
	assert_int_equal(topic_share_parse(S("$share/grp/a/+/#"), &group, &inner), MOAT_OK);
	assert_true(moat_bytes_eq(group, S("grp")));
	assert_true(moat_bytes_eq(inner, S("a/+/#")));
}

static void topic_share_parse_ignores_plain_filters(void **state)
{
	struct moat_bytes group, inner;

	(void)state;
	assert_int_equal(topic_share_parse(S("a/b"), &group, &inner), MOAT_E_NOTFOUND);
	assert_int_equal(topic_share_parse(S("$share"), &group, &inner), MOAT_E_NOTFOUND);
	assert_int_equal(topic_share_parse(S("$SHARE/g/t"), &group, &inner), MOAT_E_NOTFOUND);
	assert_int_equal(topic_share_parse(S(""), &group, &inner), MOAT_E_NOTFOUND);
}

static void topic_levels_counts_separators(void **state)
{
	(void)state;
	assert_int_equal(topic_levels(S("a")), 1);
	assert_int_equal(topic_levels(S("a/b/c")), 3);
	assert_int_equal(topic_levels(S("/")), 2);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(utf8_accepts_ascii_and_multibyte),
		cmocka_unit_test(utf8_rejects_overlong_encoding),
		cmocka_unit_test(utf8_rejects_surrogates),
		cmocka_unit_test(utf8_rejects_nul_and_control_characters),
		cmocka_unit_test(utf8_rejects_noncharacters),
		cmocka_unit_test(utf8_rejects_truncated_and_stray_bytes),
		cmocka_unit_test(topic_matches_follows_the_wildcard_rules),
		cmocka_unit_test(topic_filter_validity),
		cmocka_unit_test(topic_name_refuses_wildcards_and_empty),
		cmocka_unit_test(topic_share_parse_rejects_incomplete_forms),
		cmocka_unit_test(topic_share_parse_splits_group_and_filter),
		cmocka_unit_test(topic_share_parse_ignores_plain_filters),
		cmocka_unit_test(topic_levels_counts_separators),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
