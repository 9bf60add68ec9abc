/*
 * Unit tests for src/base/buf.c: growth, consumption and trimming.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "base/buf.h"
#include <moat/error.h>

static void buf_append_then_consume_keeps_order(void **state)
{
	struct buf b = { 0 };

	(void)state;
	assert_int_equal(buf_append(&b, "hello ", 6), MOAT_OK);
	assert_int_equal(buf_append(&b, "world", 5), MOAT_OK);
	assert_int_equal(buf_used(&b), 11);
	buf_consume(&b, 6);
	assert_int_equal(buf_used(&b), 5);
	assert_memory_equal(buf_head(&b), "world", 5);
	buf_fini(&b);
}

static void buf_reserve_compacts_before_growing(void **state)
{
	struct buf b = { 0 };
	uint8_t block[200] = { 1 };

	(void)state;
	assert_int_equal(buf_append(&b, block, sizeof(block)), MOAT_OK);
	size_t cap = b.cap;
	buf_consume(&b, 150);
	assert_int_equal(buf_reserve(&b, cap - 60), MOAT_OK);
	assert_int_equal(b.cap, cap);
	assert_int_equal(b.off, 0);
	assert_int_equal(buf_used(&b), 50);
	buf_fini(&b);
}

static void buf_consume_all_resets_offsets(void **state)
{
	struct buf b = { 0 };

	(void)state;
	assert_int_equal(buf_append(&b, "abc", 3), MOAT_OK);
	buf_consume(&b, 3);
	assert_int_equal(b.off, 0);
	assert_int_equal(b.len, 0);
	buf_fini(&b);
}

static void buf_trim_frees_only_empty_large_buffers(void **state)
{
	struct buf b = { 0 };

	(void)state;
	assert_int_equal(buf_append(&b, "abc", 3), MOAT_OK);
	buf_trim(&b, 0);
	assert_non_null(b.data);
	buf_consume(&b, 3);
	buf_trim(&b, 0);
	assert_null(b.data);
	assert_int_equal(b.cap, 0);
}

static void buf_reserve_refuses_overflowing_sizes(void **state)
{
	struct buf b = { 0 };

	(void)state;
	assert_int_equal(buf_reserve(&b, SIZE_MAX - 10), MOAT_E_NOMEM);
	assert_null(b.data);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(buf_append_then_consume_keeps_order),
		cmocka_unit_test(buf_reserve_compacts_before_growing),
		cmocka_unit_test(buf_consume_all_resets_offsets),
		cmocka_unit_test(buf_trim_frees_only_empty_large_buffers),
		cmocka_unit_test(buf_reserve_refuses_overflowing_sizes),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
