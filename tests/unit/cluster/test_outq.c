/*
 * Unit tests for the cluster's outbound queue (src/cluster/outq.c) and the
 * reconnect backoff (src/cluster/link.c): entries go out oldest first, at
 * most a window of them unacknowledged; one leaves only once acknowledged
 * and everything before it has left; a refused or lost send goes again
 * before anything newer; the byte bound refuses an entry whole, and does
 * not count entries pushed beyond it (handed-over messages); room reserved
 * for one holder's entries is refused to everyone else; the backoff
 * doubles from 100 ms to 5 s with +-20 % jitter.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include <moat/error.h>

#include "cluster/cluster_int.h"
#include "cluster/outq.h"

static void push(struct outq *q, const char *subject, const char *data)
{
	assert_int_equal(outq_push(q, 0, subject, (const uint8_t *)data, strlen(data), 0), MOAT_OK);
}

static uint64_t take(struct outq *q, size_t window)
{
	const struct outq_entry *e = outq_take(q, window);

	return e != NULL ? e->seq : 0;
}

static void test_fifo_and_window(void **state)
{
	struct outq q;

	(void)state;
	outq_init(&q, 0);
	push(&q, "s.a", "one");
	push(&q, "s.b", "two");
	push(&q, "s.c", "three");
	assert_int_equal(q.n, 3);
	assert_int_equal(q.bytes, 3 + 3 + 3 + 3 + 3 + 5);
	assert_int_equal(take(&q, 2), 1);
	assert_int_equal(take(&q, 2), 2);
	assert_int_equal(take(&q, 2), 0); /* two await their acknowledgement */
	assert_true(outq_acked(&q, 1));
	assert_int_equal(q.n, 2);
	assert_int_equal(take(&q, 2), 3);
	assert_true(outq_acked(&q, 2));
	assert_true(outq_acked(&q, 3));
	assert_true(outq_empty(&q));
	assert_int_equal(q.bytes, 0);
	assert_int_equal(q.sent, 0);
	outq_fini(&q);
}

static void test_out_of_order_ack_waits_for_the_front(void **state)
{
	struct outq q;

	(void)state;
	outq_init(&q, 0);
	push(&q, "s", "1");
	push(&q, "s", "2");
	push(&q, "s", "3");
	take(&q, 10);
	take(&q, 10);
	take(&q, 10);
	assert_true(outq_acked(&q, 3));
	assert_true(outq_acked(&q, 2));
	assert_int_equal(q.n, 3);	 /* 1 is not stored: nothing leaves */
	assert_false(outq_acked(&q, 3)); /* a duplicate answer */
	assert_true(outq_acked(&q, 1));
	assert_true(outq_empty(&q));
	assert_false(outq_acked(&q, 1)); /* gone */
	outq_fini(&q);
}

static void test_refused_goes_again_before_newer(void **state)
{
	struct outq q;

	(void)state;
	outq_init(&q, 0);
	push(&q, "s", "1");
	push(&q, "s", "2");
	push(&q, "s", "3");
	assert_int_equal(take(&q, 10), 1);
	assert_int_equal(take(&q, 10), 2);
	outq_unsent(&q, 1);
	assert_int_equal(q.sent, 1);
	assert_int_equal(take(&q, 10), 1);
	assert_int_equal(take(&q, 10), 3);
	/* the connection was lost: everything unacknowledged goes again, in order */
	assert_true(outq_acked(&q, 2));
	outq_unsend_all(&q);
	assert_int_equal(q.sent, 0);
	assert_int_equal(take(&q, 10), 1);
	assert_int_equal(take(&q, 10), 3); /* 2 is stored already */
	assert_int_equal(take(&q, 10), 0);
	outq_fini(&q);
}

static void test_bound_refuses_whole_entries(void **state)
{
	struct outq q;
	uint8_t data[40] = {0};

	(void)state;
	outq_init(&q, 100);
	assert_int_equal(outq_push(&q, 0, "subj", data, 40, 0), MOAT_OK); /* 44 */
	assert_int_equal(outq_push(&q, 0, "subj", data, 40, 0), MOAT_OK); /* 88 */
	assert_int_equal(outq_push(&q, 0, "subj", data, 40, 0), MOAT_E_LIMIT);
	assert_int_equal(q.n, 2);
	assert_int_equal(q.bytes, 88);
	assert_int_equal(outq_push(&q, 0, "s", data, 11, 0), MOAT_OK); /* exactly 100 */
	take(&q, 10);
	assert_true(outq_acked(&q, 1));
	assert_int_equal(q.bytes, 56);
	assert_int_equal(outq_push(&q, 0, "subj", data, 40, 0), MOAT_OK);
	outq_fini(&q);
}

static void test_entries_beyond_the_bound(void **state)
{
	struct outq q;
	uint8_t data[40] = {0};

	(void)state;
	outq_init(&q, 100);
	assert_true(outq_only_beyond(&q)); /* empty */
	for (int i = 0; i < 4; i++)	   /* 176 bytes, over the bound */
		assert_int_equal(outq_push_beyond(&q, 0, "subj", data, 40, 0), MOAT_OK);
	assert_true(outq_only_beyond(&q));
	assert_int_equal(outq_bounded_bytes(&q), 0);
	/* the bound counts only the other entries */
	assert_int_equal(outq_push(&q, 0, "subj", data, 40, 0), MOAT_OK);
	assert_int_equal(outq_push(&q, 0, "subj", data, 40, 0), MOAT_OK);
	assert_int_equal(outq_push(&q, 0, "subj", data, 40, 0), MOAT_E_LIMIT);
	assert_false(outq_only_beyond(&q));
	assert_int_equal(q.bytes, 264);
	assert_int_equal(outq_bounded_bytes(&q), 88);
	/* in order with the others; leaving, each is counted off its kind */
	for (uint64_t seq = 1; seq <= 5; seq++) {
		assert_int_equal(take(&q, 10), seq);
		assert_true(outq_acked(&q, seq));
	}
	assert_int_equal(q.beyond_n, 0);
	assert_int_equal(q.beyond_bytes, 0);
	assert_int_equal(outq_bounded_bytes(&q), 44);
	assert_false(outq_only_beyond(&q));
	assert_int_equal(take(&q, 10), 6);
	assert_true(outq_acked(&q, 6));
	assert_true(outq_empty(&q));
	outq_fini(&q);
}

/* Two PUBLISHes whose copies together go over the bound: the second's
 * reservation is refused, and no other entry takes the first's room; the
 * first's copies use it, and what is left goes back. */
static void test_reservations(void **state)
{
	struct outq q;
	uint64_t first = 0, second = 0, other = 0;

	(void)state;
	outq_init(&q, 20);
	assert_int_equal(outq_reserve(&q, &first, 12, 0), MOAT_OK);
	assert_int_equal(first, 12);
	assert_int_equal(q.reserved, 12);
	assert_int_equal(outq_reserve(&q, &second, 12, 0), MOAT_E_LIMIT);
	assert_int_equal(second, 0);
	assert_int_equal(q.reserved, 12);
	assert_int_equal(outq_reserve(&q, &second, 8, 0), MOAT_OK);
	assert_int_equal(outq_reserve(&q, &other, 1, 0), MOAT_E_LIMIT);
	/* nothing outside a reservation fits, not even without one */
	assert_int_equal(outq_push(&q, 0, "s.x", (const uint8_t *)"1", 1, 0), MOAT_E_LIMIT);
	assert_int_equal(outq_push_reserved(&q, 0, "s.x", (const uint8_t *)"1", 1, 0, 0, &other),
			 MOAT_E_LIMIT);
	/* the first's copies (4 + 4 bytes) use its reservation */
	assert_int_equal(outq_push_reserved(&q, 0, "s.a", (const uint8_t *)"1", 1, 0, 0, &first),
			 MOAT_OK);
	assert_int_equal(outq_push_reserved(&q, 0, "s.b", (const uint8_t *)"2", 1, 0, 0, &first),
			 MOAT_OK);
	assert_int_equal(first, 4);
	assert_int_equal(q.reserved, 4 + 8);
	assert_int_equal(outq_bounded_bytes(&q), 8);
	/* the second's copy is larger than its reservation, which the first's
	 * rest (still reserved) leaves no room to grow */
	assert_int_equal(
	    outq_push_reserved(&q, 0, "s.c", (const uint8_t *)"123456", 6, 0, 0, &second),
	    MOAT_E_LIMIT);
	/* bytes held elsewhere count too */
	assert_int_equal(
	    outq_push_reserved(&q, 0, "s.c", (const uint8_t *)"12345", 5, 0, 1, &second),
	    MOAT_E_LIMIT);
	outq_unreserve(&q, &first); /* its PUBLISH made no more copies */
	assert_int_equal(first, 0);
	assert_int_equal(q.reserved, 8);
	assert_int_equal(
	    outq_push_reserved(&q, 0, "s.c", (const uint8_t *)"123456", 6, 0, 0, &second), MOAT_OK);
	assert_int_equal(second, 0);
	assert_int_equal(q.reserved, 0);
	assert_int_equal(outq_bounded_bytes(&q), 17);
	outq_unreserve(&q, &second); /* nothing left: no change */
	assert_int_equal(q.reserved, 0);
	outq_fini(&q);
}

static void test_numbers_given_and_ring_growth(void **state)
{
	struct outq q;
	char data[16];

	(void)state;
	outq_init(&q, 0);
	/* restored entries keep their numbers; new ones continue after them */
	assert_int_equal(outq_push(&q, 41, "s", (const uint8_t *)"a", 1, 0), MOAT_OK);
	assert_int_equal(outq_push(&q, 0, "s", (const uint8_t *)"b", 1, 0), MOAT_OK);
	assert_int_equal(take(&q, 10), 41);
	assert_int_equal(take(&q, 10), 42);
	assert_true(outq_acked(&q, 41));
	assert_true(outq_acked(&q, 42));
	/* wrap the ring around while it grows: order and contents hold */
	for (int i = 0; i < 1000; i++) {
		snprintf(data, sizeof(data), "%d", i);
		push(&q, "s", data);
		if (i % 3 == 0) {
			const struct outq_entry *e = outq_take(&q, SIZE_MAX);

			assert_non_null(e);
			assert_true(outq_acked(&q, e->seq));
		}
	}
	for (int i = 334; i < 1000; i++) {
		const struct outq_entry *e = outq_take(&q, SIZE_MAX);

		assert_non_null(e);
		snprintf(data, sizeof(data), "%d", i);
		assert_int_equal(e->len, strlen(data));
		assert_memory_equal(e->data, data, e->len);
		assert_string_equal(e->subject, "s");
	}
	assert_null(outq_take(&q, SIZE_MAX));
	outq_fini(&q);
}

/* A run numbers its entries from a start above its restored ones
 * (outbound.c: the wall clock): restored entries below it keep their
 * numbers and do not pull the next number down. */
static void test_next_number_never_goes_down(void **state)
{
	struct outq q;

	(void)state;
	outq_init(&q, 0);
	q.next_seq = 1000;
	assert_int_equal(outq_push(&q, 41, "s", (const uint8_t *)"a", 1, 0), MOAT_OK);
	assert_int_equal(outq_push(&q, 42, "s", (const uint8_t *)"b", 1, 0), MOAT_OK);
	assert_int_equal(q.next_seq, 1000);
	push(&q, "s", "c");
	assert_int_equal(take(&q, 10), 41);
	assert_int_equal(take(&q, 10), 42);
	assert_int_equal(take(&q, 10), 1000);
	/* a restored number above the start moves it up */
	assert_int_equal(outq_push(&q, 5000, "s", (const uint8_t *)"d", 1, 0), MOAT_OK);
	assert_int_equal(q.next_seq, 5001);
	outq_fini(&q);
}

/* With persistence a copy is held until its queuer submitted its store
 * write; nothing newer passes a held entry. */
static void test_held_entries_block_until_released(void **state)
{
	struct outq q;

	(void)state;
	outq_init(&q, 0);
	assert_int_equal(outq_push(&q, 0, "s", (const uint8_t *)"1", 1, 1), MOAT_OK);
	assert_int_equal(outq_push(&q, 0, "s", (const uint8_t *)"2", 1, 2), MOAT_OK);
	assert_int_equal(outq_push(&q, 0, "s", (const uint8_t *)"3", 1, 1), MOAT_OK);
	assert_int_equal(outq_push(&q, 0, "s", (const uint8_t *)"4", 1, 0), MOAT_OK);
	assert_int_equal(take(&q, 10), 0);
	outq_release(&q, 2, 1); /* holder 2's pass ends first: 1 still holds the front */
	assert_int_equal(take(&q, 10), 0);
	outq_release(&q, 1, 2);
	assert_int_equal(take(&q, 10), 1);
	assert_int_equal(take(&q, 10), 2);
	assert_int_equal(take(&q, 10), 3);
	assert_int_equal(take(&q, 10), 4);
	/* an entry dropped before its release (its store write failed) is not counted */
	assert_int_equal(outq_push(&q, 0, "s", (const uint8_t *)"5", 1, 1), MOAT_OK);
	assert_int_equal(outq_push(&q, 0, "s", (const uint8_t *)"6", 1, 1), MOAT_OK);
	assert_true(outq_acked(&q, 6));
	outq_release(&q, 1, 1);
	assert_int_equal(take(&q, 10), 5);
	outq_fini(&q);
}

static void test_backoff(void **state)
{
	(void)state;
	/* without jitter's spread (rnd = the middle): 100, 200, 400 ... 5000 */
	assert_int_equal(cluster_backoff_ms(1, 20), 100);
	assert_int_equal(cluster_backoff_ms(2, 40), 200);
	assert_int_equal(cluster_backoff_ms(3, 80), 400);
	assert_int_equal(cluster_backoff_ms(7, 1000), 5000);
	assert_int_equal(cluster_backoff_ms(1000000, 1000), 5000);
	for (uint32_t rnd = 0; rnd < 5000; rnd += 7) {
		int64_t first = cluster_backoff_ms(1, rnd), late = cluster_backoff_ms(40, rnd);

		assert_true(first >= 80 && first <= 120);
		assert_true(late >= 4000 && late <= 6000);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_fifo_and_window),
	    cmocka_unit_test(test_out_of_order_ack_waits_for_the_front),
	    cmocka_unit_test(test_refused_goes_again_before_newer),
	    cmocka_unit_test(test_bound_refuses_whole_entries),
	    cmocka_unit_test(test_entries_beyond_the_bound),
	    cmocka_unit_test(test_reservations),
	    cmocka_unit_test(test_numbers_given_and_ring_growth),
	    cmocka_unit_test(test_next_number_never_goes_down),
	    cmocka_unit_test(test_held_entries_block_until_released),
	    cmocka_unit_test(test_backoff),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
