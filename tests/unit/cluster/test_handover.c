/*
 * Unit tests for the envelope of a message handed over with its session
 * (src/cluster/handover.c): a delivery's QoS, retain flag, subscription
 * identifiers and session key come back with the message inside; damaged
 * and out-of-range bytes are refused with a reason; a plain cluster
 * message (format 1) is not taken for one.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include <moat/error.h>

#include "base/clock.h"
#include "cluster/handover.h"
#include "cluster/wire.h"

static struct moat_bytes str(const char *s)
{
	return (struct moat_bytes){(const uint8_t *)s, strlen(s)};
}

static struct msg *sample(void)
{
	struct mqtt_publish p = {.qos = 2, .topic = str("a/b"), .payload = str("hi")};

	return msg_create(&p, p.topic, clock_mono_ms());
}

static void round_trip(void **state)
{
	struct delivery d = {
	    .qos = 2, .retain = true, .sub_id_count = 2, .sub_ids = {7, 268435455}};
	struct buf out = {0}, scratch = {0};
	struct moat_bytes node;
	struct handover h;
	struct msg *m = NULL;
	const char *why = NULL;

	(void)state;
	d.msg = sample();
	assert_int_equal(handover_encode(&out, &scratch, "node-a", "client=2Fone", &d), MOAT_OK);
	assert_true(handover_is((struct moat_bytes){buf_head(&out), buf_used(&out)}));
	assert_int_equal(
	    handover_decode((struct moat_bytes){buf_head(&out), buf_used(&out)}, &h, &why),
	    MOAT_OK);
	assert_int_equal(h.qos, 2);
	assert_true(h.retain);
	assert_int_equal(h.sub_id_count, 2);
	assert_int_equal(h.sub_ids[0], 7);
	assert_int_equal(h.sub_ids[1], 268435455);
	assert_int_equal(h.key.len, strlen("client=2Fone"));
	assert_memory_equal(h.key.ptr, "client=2Fone", h.key.len);
	assert_int_equal(wire_decode(h.wire, &node, &m, &why), MOAT_OK);
	assert_memory_equal(node.ptr, "node-a", node.len);
	assert_int_equal(m->topic.len, 3);
	assert_memory_equal(m->topic.ptr, "a/b", 3);
	assert_memory_equal(m->payload.ptr, "hi", 2);
	msg_unref(m);
	msg_unref(d.msg);
	buf_fini(&out);
	buf_fini(&scratch);
}

/* Every truncation, and each out-of-range header value, is refused. */
static void damage_refused(void **state)
{
	struct delivery d = {.qos = 1, .sub_id_count = 1, .sub_ids = {5}};
	struct buf out = {0}, scratch = {0};
	static const struct {
		size_t at;
		uint8_t value;
	} bad[] = {{1, 0},
		   {1, 3},
		   {2, 2},
		   {3, MAX_SUB_IDS + 1},
		   {4, 0x10} /* id > 268435455 */,
		   {7, 0} /* id 0 */,
		   {8, 0xff} /* key longer than the rest */,
		   {9, 0} /* empty key */};
	struct handover h;
	const char *why;

	(void)state;
	d.msg = sample();
	assert_int_equal(handover_encode(&out, &scratch, "n", "k", &d), MOAT_OK);
	/* format, QoS, retain, count, one id, key length, key "k": the wire bytes from 11 */
	for (size_t n = 0; n < 11; n++) {
		why = NULL;
		assert_int_equal(handover_decode((struct moat_bytes){buf_head(&out), n}, &h, &why),
				 MOAT_E_MALFORMED);
		assert_non_null(why);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		uint8_t copy[256];

		assert_true(buf_used(&out) <= sizeof(copy));
		memcpy(copy, buf_head(&out), buf_used(&out));
		copy[bad[i].at] = bad[i].value;
		assert_int_equal(
		    handover_decode((struct moat_bytes){copy, buf_used(&out)}, &h, &why),
		    MOAT_E_MALFORMED);
	}
	d.qos = 0; /* not handed over: QoS 0 is never queued */
	assert_int_equal(handover_encode(&out, &scratch, "n", "k", &d), MOAT_E_INVAL);
	msg_unref(d.msg);
	buf_fini(&out);
	buf_fini(&scratch);
}

static void plain_message_is_not_handed_over(void **state)
{
	struct buf out = {0};
	struct msg *m = sample();

	(void)state;
	assert_int_equal(wire_encode(&out, "n", m), MOAT_OK);
	assert_false(handover_is((struct moat_bytes){buf_head(&out), buf_used(&out)}));
	assert_false(handover_is((struct moat_bytes){NULL, 0}));
	msg_unref(m);
	buf_fini(&out);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(round_trip),
	    cmocka_unit_test(damage_refused),
	    cmocka_unit_test(plain_message_is_not_handed_over),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
