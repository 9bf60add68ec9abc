/*
 * Unit tests for the topic <-> NATS subject mapping (src/cluster/subject.c):
 * documented examples, the round trip for hard topics and for many random
 * ones (a property test with a fixed seed), refusal of strings the mapping
 * never makes, and filters with their exactness.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include <moat/error.h>

#include "cluster/subject.h"

static struct moat_bytes bytes_of(const void *p, size_t n)
{
	return (struct moat_bytes){p, n};
}

static struct moat_bytes str(const char *s)
{
	return bytes_of(s, strlen(s));
}

/* The subject of <topic> as a C string in <out>. */
static const char *encode(struct buf *out, struct moat_bytes topic)
{
	buf_consume(out, buf_used(out));
	assert_int_equal(subject_from_topic(out, topic), MOAT_OK);
	assert_int_equal(buf_append(out, "", 1), MOAT_OK);
	return (const char *)buf_head(out);
}

/* Only characters NATS takes in a subject token and a KV key. */
static void assert_nats_safe(const char *subject)
{
	for (const char *p = subject; *p != '\0'; p++)
		assert_non_null(strchr(
		    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_=.", *p));
	assert_true(subject[0] != '.' && strstr(subject, "..") == NULL);
	assert_true(subject[strlen(subject) - 1] != '.');
}

static void assert_round_trip(struct moat_bytes topic)
{
	struct buf subject = {0}, back = {0};
	const char *s = encode(&subject, topic);

	assert_nats_safe(s);
	assert_int_equal(subject_to_topic(&back, str(s)), MOAT_OK);
	assert_int_equal(buf_used(&back), topic.len);
	if (topic.len > 0)
		assert_memory_equal(buf_head(&back), topic.ptr, topic.len);
	buf_fini(&subject);
	buf_fini(&back);
}

static void documented_examples(void **state)
{
	static const struct {
		const char *topic, *subject;
	} cases[] = {
	    {"sensors/room-1/temp_c", "sensors.room-1.temp_c"},
	    {"a.b", "a=2Eb"},
	    {"*/>", "=2A.=3E"},
	    {"with space", "with=20space"},
	    {"/x//", "=.x.=.="},
	    {"", "="},
	    {"$SYS/broker", "=24SYS.broker"},
	    {"=", "=3D"},
	    {"caf\xc3\xa9", "caf=C3=A9"},
	};
	struct buf out = {0};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		assert_string_equal(encode(&out, str(cases[i].topic)), cases[i].subject);
	buf_fini(&out);
}

static void hard_topics_round_trip(void **state)
{
	static const char *const topics[] = {
	    "a/b/c",
	    "a.b/c.d",
	    "*",
	    ">",
	    "a/*/>",
	    "sp ace/tab\there",
	    "/",
	    "//",
	    "a//b",
	    "/a/",
	    "$SYS/broker/uptime",
	    "$share-like/x",
	    "=41",
	    "%41",
	    "caf\xc3\xa9/\xe6\xb8\xa9\xe5\xba\xa6",
	    "#not-a-wildcard-in-a-name+",
	    "..",
	    "-_-",
	};

	(void)state;
	for (size_t i = 0; i < sizeof(topics) / sizeof(topics[0]); i++)
		assert_round_trip(str(topics[i]));
	assert_round_trip(bytes_of("", 0));
}

/* Property: every topic of random bytes (NUL excluded, as MQTT excludes it)
 * and random length comes back unchanged, and its subject is NATS-safe. */
static void random_topics_round_trip(void **state)
{
	uint8_t topic[64];
	unsigned seed = 20261201;

	(void)state;
	for (int round = 0; round < 20000; round++) {
		size_t n = (size_t)rand_r(&seed) % sizeof(topic);

		for (size_t i = 0; i < n; i++) {
			/* often '/', '.', '=', '*', '>', ' ' so levels and escapes meet */
			static const char hot[] = "/.=*> $";
			int r = rand_r(&seed);

			topic[i] = r % 3 == 0 ? (uint8_t)hot[(r / 3) % (sizeof(hot) - 1)]
					      : (uint8_t)(1 + (r / 3) % 255);
		}
		assert_round_trip(bytes_of(topic, n));
	}
}

static void refuses_what_it_never_makes(void **state)
{
	static const char *const bad[] = {
	    "a..b", ".a",  "a.", "a=2", "a=",	       "a==41", "a=4g",
	    "a=41", "a*b", "a>", "a b", "caf\xc3\xa9", "a=2e",
	};
	struct buf out = {0};

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		buf_consume(&out, buf_used(&out));
		if (subject_to_topic(&out, str(bad[i])) != MOAT_E_MALFORMED)
			fail_msg("\"%s\" was accepted", bad[i]);
	}
	buf_fini(&out);
}

static void filters_map_to_wildcards(void **state)
{
	static const struct {
		const char *filter, *subject;
		bool exact;
	} cases[] = {
	    {"a/+/c", "a.*.c", true},
	    {"a/b", "a.b", true},
	    {"a/#", "a.>", false}, /* "a/#" matches "a" too */
	    {"#", ">", false},	   /* NATS '>' matches '$' topics */
	    {"+/x", "*.x", false},
	    {"$SYS/#", "=24SYS.>", false},
	    {"$SYS/+", "=24SYS.*", true},
	    {"a.b/+", "a=2Eb.*", true},
	    {"a/+b", "a.=2Bb", true}, /* not a wildcard level */
	};
	struct buf out = {0};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		bool exact = !cases[i].exact;

		buf_consume(&out, buf_used(&out));
		assert_int_equal(subject_from_filter(&out, str(cases[i].filter), &exact), MOAT_OK);
		assert_int_equal(buf_append(&out, "", 1), MOAT_OK);
		assert_string_equal((const char *)buf_head(&out), cases[i].subject);
		if (exact != cases[i].exact)
			fail_msg("%s: exact %d", cases[i].filter, exact);
	}
	buf_fini(&out);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(documented_examples),
	    cmocka_unit_test(hard_topics_round_trip),
	    cmocka_unit_test(random_topics_round_trip),
	    cmocka_unit_test(refuses_what_it_never_makes),
	    cmocka_unit_test(filters_map_to_wildcards),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
