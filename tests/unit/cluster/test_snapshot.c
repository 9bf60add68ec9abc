/*
 * Unit tests for a session's entry in the cluster's sessions bucket
 * (src/cluster/snapshot.c): a session with a Will, a username and
 * subscriptions with every option comes back whole; a bare one too; every
 * truncation, trailing bytes and each out-of-range field are refused with a
 * reason (the entries are read from NATS).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include <moat/error.h>

#include "base/clock.h"
#include "broker/broker.h"
#include "cluster/snapshot.h"

static struct moat_bytes str(const char *s)
{
	return (struct moat_bytes){(const uint8_t *)s, strlen(s)};
}

static bool same(struct moat_bytes a, struct moat_bytes b)
{
	return a.len == b.len && (a.len == 0 || memcmp(a.ptr, b.ptr, a.len) == 0);
}

static const struct snap_sub subs[] = {
    {.filter = {(const uint8_t *)"a/+/c", 5}, .opts = {.qos = 1}, .sub_id = 7},
    {.filter = {(const uint8_t *)"$share/g/x/#", 12},
     .opts = {.qos = 2, .no_local = true, .retain_as_published = true, .retain_handling = 2},
     .sub_id = 268435455},
    {.filter = {(const uint8_t *)"#", 1}, .opts = {.qos = 0, .retain_handling = 1}},
};

/* A connected v5 session with a Will, a username and three subscriptions. */
static void full(struct snapshot *s, struct msg **will)
{
	struct mqtt_publish p = {
	    .qos = 1, .retain = true, .topic = str("wills/x"), .payload = str("gone")};

	*will = msg_create(&p, p.topic, clock_mono_ms());
	assert_non_null(*will);
	*s = (struct snapshot){.owner = str("node-a_1"),
			       .online = true,
			       .resumed = true,
			       .version = 5,
			       .expiry_s = UINT32_MAX,
			       .has_username = true,
			       .username = str("alice"),
			       .will = *will,
			       .will_delay_s = 30,
			       .subs = (struct snap_sub *)subs,
			       .sub_n = 3};
}

static void full_round_trip(void **state)
{
	struct snapshot in, out;
	struct msg *will;
	struct buf enc = {0};
	const char *why = NULL;

	(void)state;
	full(&in, &will);
	assert_int_equal(snapshot_encode(&enc, &in), MOAT_OK);
	assert_int_equal(
	    snapshot_decode((struct moat_bytes){buf_head(&enc), buf_used(&enc)}, &out, &why),
	    MOAT_OK);
	assert_true(same(out.owner, in.owner));
	assert_true(out.online);
	assert_true(out.resumed);
	assert_int_equal(out.version, 5);
	assert_int_equal(out.expiry_s, UINT32_MAX);
	assert_true(out.has_username);
	assert_true(same(out.username, str("alice")));
	assert_non_null(out.will);
	assert_false(out.will->remote); /* published again, so exported */
	assert_int_equal(out.will->qos, 1);
	assert_true(out.will->retain);
	assert_true(same(out.will->topic, str("wills/x")));
	assert_true(same(out.will->payload, str("gone")));
	assert_int_equal(out.will_delay_s, 30);
	assert_int_equal(out.sub_n, 3);
	for (size_t i = 0; i < 3; i++) {
		assert_true(same(out.subs[i].filter, subs[i].filter));
		assert_memory_equal(&out.subs[i].opts, &subs[i].opts, sizeof(subs[i].opts));
		assert_int_equal(out.subs[i].sub_id, subs[i].sub_id);
	}
	snapshot_fini(&out);
	msg_unref(will);
	buf_fini(&enc);
}

static void bare_round_trip(void **state)
{
	struct snapshot in = {.owner = str("b"),
			      .offline_wall_ms = 1796126366123ull,
			      .version = 4,
			      .expiry_s = 0},
			out;
	struct buf enc = {0};
	const char *why = NULL;

	(void)state;
	assert_int_equal(snapshot_encode(&enc, &in), MOAT_OK);
	assert_int_equal(
	    snapshot_decode((struct moat_bytes){buf_head(&enc), buf_used(&enc)}, &out, &why),
	    MOAT_OK);
	assert_false(out.online);
	assert_false(out.resumed); /* as an entry written before the flag existed reads */
	assert_int_equal(out.offline_wall_ms, 1796126366123ull);
	assert_int_equal(out.version, 4);
	assert_false(out.has_username);
	assert_null(out.will);
	assert_int_equal(out.sub_n, 0);
	assert_null(out.subs);
	snapshot_fini(&out);
	buf_fini(&enc);
}

static void truncations_refused(void **state)
{
	struct snapshot in, out;
	struct msg *will;
	struct buf enc = {0};
	const char *why;

	(void)state;
	full(&in, &will);
	assert_int_equal(snapshot_encode(&enc, &in), MOAT_OK);
	for (size_t n = 0; n < buf_used(&enc); n++) {
		why = NULL;
		assert_int_equal(
		    snapshot_decode((struct moat_bytes){buf_head(&enc), n}, &out, &why),
		    MOAT_E_MALFORMED);
		assert_non_null(why);
		snapshot_fini(&out);
	}
	assert_int_equal(buf_append(&enc, "", 1), MOAT_OK); /* one byte too many */
	assert_int_equal(
	    snapshot_decode((struct moat_bytes){buf_head(&enc), buf_used(&enc)}, &out, &why),
	    MOAT_E_MALFORMED);
	snapshot_fini(&out);
	msg_unref(will);
	buf_fini(&enc);
}

/* Encodes a bare session of <owner> with one subscription <filter>, sets its
 * options byte to <o> and byte <at> (SUB_ID_TOP: the subscription
 * identifier's top byte) to <v> (when v >= 0); returns what decoding that
 * says. */
#define SUB_ID_TOP SIZE_MAX
static int decode_damaged(const char *owner, const char *filter, uint8_t o, size_t at, int v)
{
	struct snap_sub one = {.filter = str(filter), .opts = {.qos = 1}};
	struct snapshot in = {.owner = str(owner), .version = 5, .subs = &one, .sub_n = 1}, out;
	struct buf enc = {0};
	const char *why = NULL;
	uint8_t *p;
	int rc;

	assert_int_equal(snapshot_encode(&enc, &in), MOAT_OK);
	p = buf_head(&enc);
	p[buf_used(&enc) - 5] = o; /* the subscription's options byte */
	if (v >= 0)
		p[at == SUB_ID_TOP ? buf_used(&enc) - 4 : at] = (uint8_t)v;
	rc = snapshot_decode((struct moat_bytes){p, buf_used(&enc)}, &out, &why);
	if (rc != MOAT_OK)
		assert_non_null(why);
	snapshot_fini(&out);
	buf_fini(&enc);
	return rc;
}

static void bad_fields_refused(void **state)
{
	(void)state;
	assert_int_equal(decode_damaged("a", "x/y", 0x01, 0, -1), MOAT_OK);
	assert_int_equal(decode_damaged("a", "x/y", 0x01, 0, 2), MOAT_E_MALFORMED);   /* format */
	assert_int_equal(decode_damaged("a", "x/y", 0x01, 2, '.'), MOAT_E_MALFORMED); /* owner */
	assert_int_equal(decode_damaged("a", "x/y", 0x01, 1, 0), MOAT_E_MALFORMED);   /* no owner */
	assert_int_equal(decode_damaged("a", "x/y", 0x01, 3, 8), MOAT_OK);	      /* resumed */
	assert_int_equal(decode_damaged("a", "x/y", 0x01, 3, 16), MOAT_E_MALFORMED);  /* flags */
	assert_int_equal(decode_damaged("a", "x/y", 0x01, 4, 6), MOAT_E_MALFORMED);   /* version */
	assert_int_equal(decode_damaged("a", "x/y", 0x03, 0, -1), MOAT_E_MALFORMED);  /* QoS 3 */
	assert_int_equal(decode_damaged("a", "x/y", 0x31, 0, -1), MOAT_E_MALFORMED);  /* rh 3 */
	assert_int_equal(decode_damaged("a", "x/#/y", 0x01, 0, -1), MOAT_E_MALFORMED);
	assert_int_equal(decode_damaged("a", "$share/g", 0x01, 0, -1), MOAT_E_MALFORMED);
	/* subscription identifiers up to MQTT's 268,435,455 */
	assert_int_equal(decode_damaged("a", "x/y", 0x01, SUB_ID_TOP, 0x0f), MOAT_OK);
	assert_int_equal(decode_damaged("a", "x/y", 0x01, SUB_ID_TOP, 0x10), MOAT_E_MALFORMED);
	/* the Will flag without a Will behind it */
	assert_int_equal(decode_damaged("a", "x/y", 0x01, 3, 4), MOAT_E_MALFORMED);
}

static void count_beyond_bytes_refused(void **state)
{
	static const uint8_t huge[] = {1, 1, 'a', 0, 5, 0, 0,	 0,    0,    0,	  0,
				       0, 0, 0,	  0, 0, 0, 0xff, 0xff, 0xff, 0xff};
	struct snapshot out;
	const char *why = NULL;

	(void)state;
	assert_int_equal(snapshot_decode((struct moat_bytes){huge, sizeof(huge)}, &out, &why),
			 MOAT_E_MALFORMED);
	assert_non_null(why);
	snapshot_fini(&out);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(full_round_trip),
	    cmocka_unit_test(bare_round_trip),
	    cmocka_unit_test(truncations_refused),
	    cmocka_unit_test(bad_fields_refused),
	    cmocka_unit_test(count_beyond_bytes_refused),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
