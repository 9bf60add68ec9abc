/*
 * Unit tests for moat-device's wake-up heap (src/device/wake_heap.c): an
 * empty heap, pops in time order and only when due, moving a queued id
 * earlier and later, and a long deterministic series of random sets and
 * pops checked against a plain array.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <moat/error.h>

#include "device/wake_heap.h"

static void test_empty(void **state)
{
	struct wake_heap h;
	size_t id = 7;

	(void)state;
	assert_int_equal(wake_heap_init(&h, 4), MOAT_OK);
	assert_true(wake_heap_next_ms(&h) == UINT64_MAX);
	assert_false(wake_heap_pop_due(&h, UINT64_MAX, &id));
	assert_int_equal(id, 7);
	wake_heap_fini(&h);
}

static void test_pops_in_order_when_due(void **state)
{
	static const uint64_t at[] = {50, 10, 40, 30, 20};
	struct wake_heap h;
	size_t id, i;

	(void)state;
	assert_int_equal(wake_heap_init(&h, 5), MOAT_OK);
	for (i = 0; i < 5; i++)
		wake_heap_set(&h, i, at[i]);
	assert_int_equal(wake_heap_next_ms(&h), 10);
	assert_false(wake_heap_pop_due(&h, 9, &id));
	assert_true(wake_heap_pop_due(&h, 35, &id));
	assert_int_equal(id, 1);
	assert_true(wake_heap_pop_due(&h, 35, &id));
	assert_int_equal(id, 4);
	assert_true(wake_heap_pop_due(&h, 35, &id));
	assert_int_equal(id, 3);
	assert_false(wake_heap_pop_due(&h, 35, &id));
	assert_int_equal(wake_heap_next_ms(&h), 40);
	/* a popped id can be queued again */
	wake_heap_set(&h, 1, 45);
	assert_true(wake_heap_pop_due(&h, 100, &id));
	assert_int_equal(id, 2);
	assert_true(wake_heap_pop_due(&h, 100, &id));
	assert_int_equal(id, 1);
	assert_true(wake_heap_pop_due(&h, 100, &id));
	assert_int_equal(id, 0);
	assert_false(wake_heap_pop_due(&h, UINT64_MAX, &id));
	wake_heap_fini(&h);
}

static void test_set_moves_a_queued_id(void **state)
{
	struct wake_heap h;
	size_t id;

	(void)state;
	assert_int_equal(wake_heap_init(&h, 3), MOAT_OK);
	wake_heap_set(&h, 0, 100);
	wake_heap_set(&h, 1, 200);
	wake_heap_set(&h, 2, 300);
	wake_heap_set(&h, 2, 0); /* earlier: a tamper request */
	assert_int_equal(wake_heap_next_ms(&h), 0);
	wake_heap_set(&h, 2, 250); /* and later again */
	wake_heap_set(&h, 0, 400);
	assert_true(wake_heap_pop_due(&h, 1000, &id));
	assert_int_equal(id, 1);
	assert_true(wake_heap_pop_due(&h, 1000, &id));
	assert_int_equal(id, 2);
	assert_true(wake_heap_pop_due(&h, 1000, &id));
	assert_int_equal(id, 0);
	assert_false(wake_heap_pop_due(&h, 1000, &id)); /* each id once */
	wake_heap_fini(&h);
}

/* splitmix64: a fixed series, so a failure is reproducible */
static uint64_t next_random(uint64_t *x)
{
	uint64_t z = (*x += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

enum { MODEL_IDS = 64 };
#define NOT_QUEUED UINT64_MAX

/* The earliest queued time of the model, NOT_QUEUED when none. */
static uint64_t model_next(const uint64_t *model)
{
	uint64_t best = NOT_QUEUED;
	size_t i;

	for (i = 0; i < MODEL_IDS; i++)
		if (model[i] < best)
			best = model[i];
	return best;
}

static void test_random_against_model(void **state)
{
	uint64_t model[MODEL_IDS], x = 1, now = 0;
	struct wake_heap h;
	size_t i, id;
	int step;

	(void)state;
	assert_int_equal(wake_heap_init(&h, MODEL_IDS), MOAT_OK);
	for (i = 0; i < MODEL_IDS; i++)
		model[i] = NOT_QUEUED;
	for (step = 0; step < 20000; step++) {
		uint64_t r = next_random(&x);

		if (r % 3 != 0) {
			id = (size_t)((r >> 8) % MODEL_IDS);
			model[id] = now + (r >> 20) % 1000;
			wake_heap_set(&h, id, model[id]);
		} else {
			now += (r >> 8) % 50;
			while (wake_heap_pop_due(&h, now, &id)) {
				/* the earliest of the model, and due */
				assert_true(model[id] <= now);
				assert_true(model[id] == model_next(model));
				model[id] = NOT_QUEUED;
			}
			assert_true(model_next(model) > now);
		}
		assert_true(wake_heap_next_ms(&h) == model_next(model));
	}
	wake_heap_fini(&h);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_empty),
	    cmocka_unit_test(test_pops_in_order_when_due),
	    cmocka_unit_test(test_set_moves_a_queued_id),
	    cmocka_unit_test(test_random_against_model),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
