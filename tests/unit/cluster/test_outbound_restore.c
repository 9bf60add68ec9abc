/*
 * Unit tests for a queued copy read back from the store
 * (cluster_outbound_restore, src/cluster/outbound.c): a node's and a
 * share's copy of this cluster come back with their numbers, a message
 * kept before the node joined comes back to worker 0's waiting list, a
 * session's handed-over message comes back outside the queue's bound; a
 * record whose subject is another cluster's or none of these three kinds,
 * does not decode to its message's topic, or whose message is damaged is
 * refused (MOAT_E_MALFORMED: persist_restore.c deletes it), never queued.
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
#include "cluster/cluster_int.h"
#include "cluster/handover.h"
#include "cluster/wire.h"

/* This node "a" of cluster "test" with one worker; its queue numbers from 1000. */
static struct broker b;
static struct cluster cl;
static struct cluster_worker cw;
static struct buf data;

static struct moat_bytes str(const char *s)
{
	return (struct moat_bytes){(const uint8_t *)s, strlen(s)};
}

static int setup(void **state)
{
	(void)state;
	memset(&b, 0, sizeof(b));
	memset(&cl, 0, sizeof(cl));
	memset(&cw, 0, sizeof(cw));
	b.cluster = &cl;
	b.nworkers = 1;
	cl.b = &b;
	cl.w = &cw;
	strcpy(cl.node, "a");
	strcpy(cl.msg_prefix, "test.n.");
	strcpy(cl.share_prefix, "test.g.");
	strcpy(cl.wait_prefix, "test.p.");
	cl.run = 1000;
	cluster_outbound_init(&cl, 4096);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	cluster_outbound_forget_waiting(&cl, &cw);
	cluster_outbound_fini(&cl);
	buf_fini(&data);
	return 0;
}

/* The wire bytes of a QoS 1 message on <topic> from node "a", in <data>. */
static struct moat_bytes message(const char *topic)
{
	struct mqtt_publish p = {.qos = 1, .topic = str(topic), .payload = str("x")};
	struct msg *m = msg_create(&p, p.topic, clock_mono_ms());

	assert_non_null(m);
	assert_int_equal(wire_encode(&data, "a", m), MOAT_OK);
	msg_unref(m);
	return (struct moat_bytes){buf_head(&data), buf_used(&data)};
}

static int restore(uint64_t seq, const char *subject, const char *topic)
{
	return cluster_outbound_restore(&b, seq, str(subject), message(topic));
}

static void test_copies_of_this_cluster_come_back(void **state)
{
	const struct outq_entry *e;

	(void)state;
	assert_int_equal(restore(7, "test.n.b.a.b", "a/b"), MOAT_OK);
	assert_int_equal(restore(8, "test.g.0123456789abcdef.a.b", "a/b"), MOAT_OK);
	assert_int_equal(restore(9, "test.n.node-2_x.=24app.=.x=2Ey", "$app//x.y"), MOAT_OK);
	assert_int_equal(cl.out.q.n, 3);
	e = outq_front(&cl.out.q);
	assert_int_equal(e->seq, 7);
	assert_string_equal(e->subject, "test.n.b.a.b");
	/* new copies are numbered after the run's start, never reusing a restored id */
	assert_int_equal(cl.out.q.next_seq, 1000);
}

/* A message kept before a join that did not come: it waits for worker 0,
 * local again (so it is exported), and numbers go on above it. */
static void test_waiting_export_comes_back(void **state)
{
	(void)state;
	assert_int_equal(restore(1200, "test.p.a.b", "a/b"), MOAT_OK);
	assert_true(outq_empty(&cl.out.q));
	assert_int_equal(cw.waiting_n, 1);
	assert_int_equal(cw.waiting[0].seq, 1200);
	assert_false(cw.waiting[0].m->remote);
	assert_int_equal(cw.waiting[0].m->topic.len, 3);
	assert_memory_equal(cw.waiting[0].m->topic.ptr, "a/b", 3);
	assert_int_equal(cl.out.waiting_n, 1);
	assert_int_equal(cl.out.waiting_bytes, cw.waiting[0].bytes);
	assert_int_equal(cl.out.q.next_seq, 1201);
	assert_int_equal(restore(1201, "test.p.a.c", "a/b"), MOAT_E_MALFORMED);
	assert_int_equal(restore(1202, "test.p.", "a/b"), MOAT_E_MALFORMED);
	assert_int_equal(cw.waiting_n, 1);
}

/* A handover record (handover.h) written by hand_over() when a session
 * moved: it comes back queued beyond the bound, for a node only, and only
 * with a key that is a client id's. */
static void test_handover_comes_back_beyond_the_bound(void **state)
{
	struct mqtt_publish p = {.qos = 1, .topic = str("a/b"), .payload = str("x")};
	struct msg *m = msg_create(&p, p.topic, clock_mono_ms());
	struct delivery d = {.msg = m, .qos = 1};
	struct buf scratch = {0}, bad_key = {0};
	struct moat_bytes h;

	(void)state;
	assert_non_null(m);
	assert_int_equal(handover_encode(&data, &scratch, "a", "client=2Fone", &d), MOAT_OK);
	h = (struct moat_bytes){buf_head(&data), buf_used(&data)};
	assert_int_equal(cluster_outbound_restore(&b, 21, str("test.n.b.a.b"), h), MOAT_OK);
	assert_int_equal(cl.out.q.n, 1);
	assert_true(outq_only_beyond(&cl.out.q));
	assert_int_equal(outq_bounded_bytes(&cl.out.q), 0);
	/* a share's or a waiting subject never carries one */
	assert_int_equal(cluster_outbound_restore(&b, 22, str("test.g.0123456789abcdef.a.b"), h),
			 MOAT_E_MALFORMED);
	assert_int_equal(cluster_outbound_restore(&b, 23, str("test.p.a.b"), h), MOAT_E_MALFORMED);
	/* a key that is no client id's (a broken escape) */
	assert_int_equal(handover_encode(&bad_key, &scratch, "a", "client=zz", &d), MOAT_OK);
	assert_int_equal(
	    cluster_outbound_restore(&b, 24, str("test.n.b.a.b"),
				     (struct moat_bytes){buf_head(&bad_key), buf_used(&bad_key)}),
	    MOAT_E_MALFORMED);
	assert_int_equal(cl.out.q.n, 1);
	buf_fini(&scratch);
	buf_fini(&bad_key);
	msg_unref(m);
}

static void test_foreign_or_ill_formed_subjects_are_refused(void **state)
{
	static const char *const bad[] = {
	    "other.n.b.a.b",		    /* another cluster (cluster_name changed) */
	    "test.x.b.a.b",		    /* neither a node's nor a share's */
	    "tests.n.b.a.b",		    /* a prefix of the name only */
	    "test.n..a.b",		    /* no node name */
	    "test.n.b",			    /* no topic */
	    "test.n.b.",		    /* empty topic */
	    "test.n.b*c.a.b",		    /* not a node name */
	    "test.n.>",			    /* a wildcard */
	    "test.g.0123456789abcde.a.b",   /* a share id one digit short */
	    "test.g.0123456789abcdef0.a.b", /* and one too long */
	    "test.g.0123456789ABCDEF.a.b",  /* upper-case: not an id */
	    "test.n.b.a.c",		    /* another topic than its message's */
	    "test.n.b.a b",		    /* a byte the encoding never writes raw */
	    "test.n.b.a.=zz",		    /* a broken escape */
	    "test.n.b.a..b",		    /* an empty token */
	};

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(restore(10 + i, bad[i], "a/b"), MOAT_E_MALFORMED);
	assert_true(outq_empty(&cl.out.q));
}

static void test_damaged_message_is_refused(void **state)
{
	struct moat_bytes m;
	uint8_t copy[512];
	char longest[CLUSTER_SUBJECT_MAX + 2];

	(void)state;
	m = message("a/b");
	assert_true(m.len <= sizeof(copy));
	memcpy(copy, m.ptr, m.len);
	copy[m.len - 1] ^= 1; /* its CRC */
	assert_int_equal(
	    cluster_outbound_restore(&b, 1, str("test.n.b.a.b"), (struct moat_bytes){copy, m.len}),
	    MOAT_E_MALFORMED);
	assert_int_equal(
	    cluster_outbound_restore(&b, 2, str("test.n.b.a.b"), (struct moat_bytes){copy, 3}),
	    MOAT_E_MALFORMED);
	memset(longest, 'x', sizeof(longest) - 1);
	memcpy(longest, "test.n.b.", 9);
	longest[sizeof(longest) - 1] = '\0';
	assert_int_equal(restore(3, longest, "a/b"), MOAT_E_MALFORMED);
	assert_true(outq_empty(&cl.out.q));
}

static void test_without_cluster_not_found(void **state)
{
	struct broker single = {0};

	(void)state;
	assert_int_equal(cluster_outbound_restore(&single, 1, str("test.n.b.a.b"), message("a/b")),
			 MOAT_E_NOTFOUND);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_copies_of_this_cluster_come_back, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_waiting_export_comes_back, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_handover_comes_back_beyond_the_bound, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(test_foreign_or_ill_formed_subjects_are_refused, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(test_damaged_message_is_refused, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_without_cluster_not_found, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
