/*
 * Unit tests for the cluster's message encoding (src/cluster/wire.c): a
 * message with its forwarded properties and expiry comes back whole and
 * marked remote; damaged bytes, and topics no node exports, are refused
 * with a reason; interest lists round-trip and truncated ones are refused;
 * replacing one adds the new filters before dropping those no longer there.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include <moat/error.h>

#include "base/clock.h"
#include "cluster/wire.h"

static struct moat_bytes str(const char *s)
{
	return (struct moat_bytes){(const uint8_t *)s, strlen(s)};
}

static struct msg *sample(void)
{
	/* one user property "k" = "v", as the codec keeps them (id, key, value) */
	static const uint8_t user[] = {0x26, 0, 1, 'k', 0, 1, 'v'};
	struct mqtt_publish p = {
	    .qos = 2, .retain = true, .topic = str("a/b"), .payload = str("hi")};

	p.props.present = 1ull << MQTT_PROP_CONTENT_TYPE | 1ull << MQTT_PROP_MESSAGE_EXPIRY |
			  1ull << MQTT_PROP_CORRELATION_DATA;
	p.props.content_type = str("text/plain");
	p.props.correlation_data = str("\x01\x02");
	p.props.message_expiry_s = 60;
	p.props.user = (struct moat_bytes){user, sizeof(user)};
	p.props.user_count = 1;
	return msg_create(&p, p.topic, clock_mono_ms());
}

static struct msg *on_topic(const char *topic)
{
	struct mqtt_publish p = {.qos = 1, .topic = str(topic), .payload = str("x")};

	return msg_create(&p, p.topic, clock_mono_ms());
}

/* What no node exports is refused: wildcards, empty, $SYS (a peer on NATS
 * that is not a node, or damage); "$SYSx" is an ordinary topic. */
static void foreign_topics_refused(void **state)
{
	static const char *const bad[] = {"a/+", "#", "a/#", "", "$SYS", "$SYS/broker/x"};
	static const char *const good[] = {"$SYSx", "$sc/x", "a/b"};
	struct moat_bytes node;
	struct buf out = {0};

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]) + sizeof(good) / sizeof(good[0]); i++) {
		bool ok = i >= sizeof(bad) / sizeof(bad[0]);
		const char *t = ok ? good[i - sizeof(bad) / sizeof(bad[0])] : bad[i];
		struct msg *m = on_topic(t), *back = NULL;
		const char *why = NULL;

		assert_non_null(m);
		assert_int_equal(wire_encode(&out, "n", m), MOAT_OK);
		assert_int_equal(wire_decode((struct moat_bytes){buf_head(&out), buf_used(&out)},
					     &node, &back, &why),
				 ok ? MOAT_OK : MOAT_E_MALFORMED);
		assert_int_equal(wire_topic_is_sys(str(t)), !ok && t[0] == '$');
		msg_unref(back);
		msg_unref(m);
	}
	buf_fini(&out);
}

static void assert_bytes(struct moat_bytes got, const char *want)
{
	assert_int_equal(got.len, strlen(want));
	assert_memory_equal(got.ptr, want, got.len);
}

static void message_round_trip(void **state)
{
	struct msg *m = sample(), *back = NULL;
	struct moat_bytes node;
	struct buf out = {0};
	const char *why = NULL;

	(void)state;
	assert_non_null(m);
	assert_int_equal(wire_encode(&out, "node-a", m), MOAT_OK);
	assert_int_equal(
	    wire_decode((struct moat_bytes){buf_head(&out), buf_used(&out)}, &node, &back, &why),
	    MOAT_OK);
	assert_bytes(node, "node-a");
	assert_true(back->remote);
	assert_int_equal(back->qos, 2);
	assert_true(back->retain);
	assert_bytes(back->topic, "a/b");
	assert_bytes(back->payload, "hi");
	assert_bytes(back->props.content_type, "text/plain");
	assert_bytes(back->props.correlation_data, "\x01\x02");
	assert_int_equal(back->props.user_count, 1);
	assert_int_equal(back->props.user.len, 7);
	assert_true(back->has_expiry);
	/* the remaining lifetime survives (wall clock on the wire) */
	assert_true(back->expire_at_ms > clock_mono_ms() + 50000);
	assert_true(back->expire_at_ms <= clock_mono_ms() + 60000);
	msg_unref(back);
	msg_unref(m);
	buf_fini(&out);
}

static void damaged_messages_refused(void **state)
{
	struct msg *m = sample(), *back = NULL;
	struct moat_bytes node;
	struct buf out = {0};
	const char *why = NULL;
	uint8_t copy[512];
	size_t n;

	(void)state;
	assert_int_equal(wire_encode(&out, "a", m), MOAT_OK);
	n = buf_used(&out);
	assert_true(n <= sizeof(copy));
	for (size_t cut = 0; cut < n; cut++) { /* every truncation */
		memcpy(copy, buf_head(&out), cut);
		assert_int_equal(wire_decode((struct moat_bytes){copy, cut}, &node, &back, &why),
				 MOAT_E_MALFORMED);
		assert_non_null(why);
	}
	memcpy(copy, buf_head(&out), n);
	copy[n / 2] ^= 0x40; /* a flipped bit: the CRC catches it */
	assert_int_equal(wire_decode((struct moat_bytes){copy, n}, &node, &back, &why),
			 MOAT_E_MALFORMED);
	memcpy(copy, buf_head(&out), n);
	copy[0] = 2; /* a format this node does not know */
	assert_int_equal(wire_decode((struct moat_bytes){copy, n}, &node, &back, &why),
			 MOAT_E_MALFORMED);
	assert_null(back);
	msg_unref(m);
	buf_fini(&out);
}

static void count_filter(void *ctx, struct moat_bytes f)
{
	(void)f;
	++*(int *)ctx;
}

static void interest_lists(void **state)
{
	struct buf out = {0};
	int seen = 0;

	(void)state;
	assert_int_equal(wire_put_filter(&out, str("a/+/c")), MOAT_OK);
	assert_int_equal(wire_put_filter(&out, str("")), MOAT_OK);
	assert_int_equal(wire_put_filter(&out, str("#")), MOAT_OK);
	assert_true(wire_each_filter((struct moat_bytes){buf_head(&out), buf_used(&out)},
				     count_filter, &seen));
	assert_int_equal(seen, 3);
	for (size_t cut = 1; cut < buf_used(&out); cut++) {
		bool whole = cut == 7 || cut == 9; /* ends of the first two filters */

		assert_int_equal(
		    wire_each_filter((struct moat_bytes){buf_head(&out), cut}, NULL, NULL), whole);
	}
	buf_fini(&out);
}

/* Records "+f" and "-f" for each add and drop, in order. */
static void log_add(void *ctx, struct moat_bytes f)
{
	assert_int_equal(buf_append(ctx, "+", 1), MOAT_OK);
	assert_int_equal(buf_append(ctx, f.ptr, f.len), MOAT_OK);
	assert_int_equal(buf_append(ctx, " ", 1), MOAT_OK);
}

static void log_drop(void *ctx, struct moat_bytes f)
{
	assert_int_equal(buf_append(ctx, "-", 1), MOAT_OK);
	assert_int_equal(buf_append(ctx, f.ptr, f.len), MOAT_OK);
	assert_int_equal(buf_append(ctx, " ", 1), MOAT_OK);
}

/* A node's kept filters are never removed, and new ones come first: an
 * export between the steps still finds every filter the node kept. */
static void interest_replaced_adds_first(void **state)
{
	struct buf old = {0}, next = {0}, log = {0};
	const char *want = "+b/# +c +a -x -d/+ ";

	(void)state;
	assert_int_equal(wire_put_filter(&old, str("x")), MOAT_OK);
	assert_int_equal(wire_put_filter(&old, str("a")), MOAT_OK);
	assert_int_equal(wire_put_filter(&old, str("d/+")), MOAT_OK);
	assert_int_equal(wire_put_filter(&old, str("b/#")), MOAT_OK);
	assert_int_equal(wire_put_filter(&next, str("b/#")), MOAT_OK);
	assert_int_equal(wire_put_filter(&next, str("c")), MOAT_OK);
	assert_int_equal(wire_put_filter(&next, str("a")), MOAT_OK);
	assert_int_equal(wire_replace_filters((struct moat_bytes){buf_head(&old), buf_used(&old)},
					      (struct moat_bytes){buf_head(&next), buf_used(&next)},
					      log_add, log_drop, &log),
			 MOAT_OK);
	assert_int_equal(buf_used(&log), strlen(want));
	assert_memory_equal(buf_head(&log), want, strlen(want));
	buf_consume(&log, buf_used(&log));
	/* to nothing: every old filter dropped */
	assert_int_equal(wire_replace_filters((struct moat_bytes){buf_head(&old), buf_used(&old)},
					      (struct moat_bytes){NULL, 0}, log_add, log_drop,
					      &log),
			 MOAT_OK);
	assert_int_equal(buf_used(&log), strlen("-x -a -d/+ -b/# "));
	buf_fini(&old);
	buf_fini(&next);
	buf_fini(&log);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(message_round_trip),
	    cmocka_unit_test(damaged_messages_refused),
	    cmocka_unit_test(foreign_topics_refused),
	    cmocka_unit_test(interest_lists),
	    cmocka_unit_test(interest_replaced_adds_first),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
