/* Strict CBOR subset: RFC 8949 Appendix A integer and string vectors both
 * ways, round trips, deterministic re-encoding, and every rejection
 * (indefinite length, non-preferred heads, depth, truncation, duplicate
 * keys, bad UTF-8, trailing bytes, floats). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include <moat/error.h>

#include "e2e/cbor.h"

#define CHECK(lit) cbor_check((const uint8_t *)(lit), sizeof(lit) - 1)

static void rfc8949_integers(void **state)
{
	static const struct {
		int64_t v;
		const char *enc;
		size_t len;
	} vec[] = {
	    {0, "\x00", 1},
	    {1, "\x01", 1},
	    {23, "\x17", 1},
	    {24, "\x18\x18", 2},
	    {100, "\x18\x64", 2},
	    {1000, "\x19\x03\xe8", 3},
	    {1000000, "\x1a\x00\x0f\x42\x40", 5},
	    {1000000000000, "\x1b\x00\x00\x00\xe8\xd4\xa5\x10\x00", 9},
	    {-1, "\x20", 1},
	    {-10, "\x29", 1},
	    {-100, "\x38\x63", 2},
	    {-1000, "\x39\x03\xe7", 3},
	    {INT64_MIN, "\x3b\x7f\xff\xff\xff\xff\xff\xff\xff", 9},
	};

	(void)state;
	for (size_t i = 0; i < sizeof(vec) / sizeof(vec[0]); i++) {
		struct buf b = {0};
		struct cbor_dec d;
		int64_t v;

		assert_int_equal(cbor_put_int(&b, vec[i].v), MOAT_OK);
		assert_int_equal(buf_used(&b), vec[i].len);
		assert_memory_equal(buf_head(&b), vec[i].enc, vec[i].len);
		assert_int_equal(cbor_check((const uint8_t *)vec[i].enc, vec[i].len), MOAT_OK);
		cbor_dec_init(&d, (const uint8_t *)vec[i].enc, vec[i].len);
		assert_true(cbor_read_int(&d, &v));
		assert_true(v == vec[i].v);
		assert_int_equal(d.left, 0);
		buf_fini(&b);
	}
}

static void uint64_max_round_trip(void **state)
{
	struct buf b = {0};
	struct cbor_dec d;
	uint64_t u;
	int64_t i;

	(void)state;
	assert_int_equal(cbor_put_uint(&b, UINT64_MAX), MOAT_OK);
	assert_memory_equal(buf_head(&b), "\x1b\xff\xff\xff\xff\xff\xff\xff\xff", 9);
	cbor_dec_init(&d, buf_head(&b), buf_used(&b));
	assert_true(cbor_read_uint(&d, &u));
	assert_true(u == UINT64_MAX);
	cbor_dec_init(&d, buf_head(&b), buf_used(&b));
	assert_false(cbor_read_int(&d, &i)); /* does not fit int64_t */
	assert_int_equal(d.err, MOAT_E_LIMIT);
	buf_fini(&b);
}

static void structures_round_trip(void **state)
{
	struct buf b = {0};
	struct cbor_dec d;
	struct moat_bytes s;
	uint64_t tag;
	size_t n;
	enum cbor_simple sv;
	int64_t v;

	(void)state;
	/* 16([h'a1', {}, "ü", [true, null]]) */
	assert_int_equal(cbor_put_tag(&b, 16), MOAT_OK);
	assert_int_equal(cbor_put_array(&b, 4), MOAT_OK);
	assert_int_equal(cbor_put_bstr(&b, "\xa1", 1), MOAT_OK);
	assert_int_equal(cbor_put_map(&b, 0), MOAT_OK);
	assert_int_equal(cbor_put_tstr(&b, "\xc3\xbc", 2), MOAT_OK);
	assert_int_equal(cbor_put_array(&b, 2), MOAT_OK);
	assert_int_equal(cbor_put_simple(&b, CBOR_TRUE), MOAT_OK);
	assert_int_equal(cbor_put_simple(&b, CBOR_NULL), MOAT_OK);
	assert_memory_equal(buf_head(&b), "\xd0\x84\x41\xa1\xa0\x62\xc3\xbc\x82\xf5\xf6", 11);
	assert_int_equal(cbor_check(buf_head(&b), buf_used(&b)), MOAT_OK);

	cbor_dec_init(&d, buf_head(&b), buf_used(&b));
	assert_int_equal(cbor_peek(&d), CBOR_TAG);
	assert_true(cbor_read_tag(&d, &tag) && tag == 16);
	assert_true(cbor_read_array(&d, &n) && n == 4);
	assert_true(cbor_read_bstr(&d, &s) && s.len == 1 && s.ptr[0] == 0xa1);
	assert_true(cbor_read_map(&d, &n) && n == 0);
	assert_true(cbor_read_tstr(&d, &s) && s.len == 2);
	assert_true(cbor_read_array(&d, &n) && n == 2);
	assert_true(cbor_read_simple(&d, &sv) && sv == CBOR_TRUE);
	assert_true(cbor_read_simple(&d, &sv) && sv == CBOR_NULL);
	assert_int_equal(d.left, 0);
	assert_int_equal(cbor_peek(&d), -1);
	/* errors are sticky */
	assert_false(cbor_read_int(&d, &v));
	assert_int_equal(d.err, MOAT_E_MALFORMED);
	buf_fini(&b);
}

static void wrong_type_refused(void **state)
{
	struct cbor_dec d;
	struct moat_bytes s;

	(void)state;
	cbor_dec_init(&d, (const uint8_t *)"\x61\x61", 2);
	assert_false(cbor_read_bstr(&d, &s));
	assert_int_equal(d.err, MOAT_E_MALFORMED);
}

static void indefinite_lengths_refused(void **state)
{
	(void)state;
	assert_int_equal(CHECK("\x5f\x41\x00\xff"), MOAT_E_MALFORMED);
	assert_int_equal(CHECK("\x7f\x61\x61\xff"), MOAT_E_MALFORMED);
	assert_int_equal(CHECK("\x9f\x00\xff"), MOAT_E_MALFORMED);
	assert_int_equal(CHECK("\xbf\x00\x00\xff"), MOAT_E_MALFORMED);
	assert_int_equal(CHECK("\xff"), MOAT_E_MALFORMED);
	assert_int_equal(CHECK("\x1c"), MOAT_E_MALFORMED); /* reserved additional info */
}

static void non_preferred_heads_refused(void **state)
{
	(void)state;
	assert_int_equal(CHECK("\x18\x17"), MOAT_E_MALFORMED);
	assert_int_equal(CHECK("\x19\x00\xff"), MOAT_E_MALFORMED);
	assert_int_equal(CHECK("\x1a\x00\x00\xff\xff"), MOAT_E_MALFORMED);
	assert_int_equal(CHECK("\x1b\x00\x00\x00\x00\xff\xff\xff\xff"), MOAT_E_MALFORMED);
	assert_int_equal(CHECK("\x38\x00"), MOAT_E_MALFORMED);
	assert_int_equal(CHECK("\x58\x01\x00"), MOAT_E_MALFORMED); /* length 1 in 2 bytes */
	assert_int_equal(CHECK("\x98\x01\x00"), MOAT_E_MALFORMED);
	assert_int_equal(CHECK("\xb8\x00"), MOAT_E_MALFORMED);
	assert_int_equal(CHECK("\xd8\x10\x00"), MOAT_E_MALFORMED); /* tag 16 in 2 bytes */
	/* the smallest values of each width are fine */
	assert_int_equal(CHECK("\x18\x18"), MOAT_OK);
	assert_int_equal(CHECK("\x19\x01\x00"), MOAT_OK);
	assert_int_equal(CHECK("\x1a\x00\x01\x00\x00"), MOAT_OK);
	assert_int_equal(CHECK("\x1b\x00\x00\x00\x01\x00\x00\x00\x00"), MOAT_OK);
}

static void depth_capped(void **state)
{
	uint8_t in[CBOR_MAX_DEPTH + 2];

	(void)state;
	memset(in, 0x81, sizeof(in)); /* [[[...[0]...]]] */
	in[CBOR_MAX_DEPTH] = 0x00;
	assert_int_equal(cbor_check(in, CBOR_MAX_DEPTH + 1), MOAT_OK); /* exactly the cap */
	in[CBOR_MAX_DEPTH] = 0x81;
	in[CBOR_MAX_DEPTH + 1] = 0x00;
	assert_int_equal(cbor_check(in, CBOR_MAX_DEPTH + 2), MOAT_E_LIMIT); /* one over */
	memset(in, 0xc1, sizeof(in)); /* tags count as nesting too */
	in[CBOR_MAX_DEPTH + 1] = 0x00;
	assert_int_equal(cbor_check(in, CBOR_MAX_DEPTH + 2), MOAT_E_LIMIT);
}

static void truncation_refused(void **state)
{
	(void)state;
	assert_int_equal(cbor_check(NULL, 0), MOAT_E_MALFORMED);
	assert_int_equal(CHECK("\x1a\x00\x01"), MOAT_E_MALFORMED);
	assert_int_equal(CHECK("\x43\x01\x02"), MOAT_E_MALFORMED);
	assert_int_equal(CHECK("\x63\x61\x62"), MOAT_E_MALFORMED);
	assert_int_equal(CHECK("\x82\x00"), MOAT_E_MALFORMED);
	assert_int_equal(CHECK("\xa1\x00"), MOAT_E_MALFORMED);
	assert_int_equal(CHECK("\xd0"), MOAT_E_MALFORMED);
	/* a huge declared count fails on the bytes left, without allocating */
	assert_int_equal(CHECK("\x9b\xff\xff\xff\xff\xff\xff\xff\xff\x00"), MOAT_E_MALFORMED);
	assert_int_equal(CHECK("\xbb\x7f\xff\xff\xff\xff\xff\xff\xff\x00"), MOAT_E_MALFORMED);
	assert_int_equal(CHECK("\x5b\xff\xff\xff\xff\xff\xff\xff\xff\x00"), MOAT_E_MALFORMED);
}

static void duplicate_keys_refused(void **state)
{
	uint8_t in[1 + 2 * (CBOR_MAX_MAP_PAIRS + 1) + 1];

	(void)state;
	assert_int_equal(CHECK("\xa2\x01\x00\x01\x01"), MOAT_E_MALFORMED);
	assert_int_equal(CHECK("\xa2\x61\x61\x00\x61\x61\x01"), MOAT_E_MALFORMED);
	assert_int_equal(CHECK("\xa2\x01\x00\x21\x00"), MOAT_OK);	  /* 1 and -2 differ */
	assert_int_equal(CHECK("\xa2\x41\x61\x00\x61\x61\x00"), MOAT_OK); /* h'61' and "a" differ */
	assert_int_equal(CHECK("\xa1\x80\x00"), MOAT_E_UNSUPPORTED);	  /* array as key */
	/* exactly CBOR_MAX_MAP_PAIRS pairs, then one more */
	in[0] = 0xb8;
	in[1] = CBOR_MAX_MAP_PAIRS;
	for (size_t i = 0; i < CBOR_MAX_MAP_PAIRS; i++) {
		in[2 + 2 * i] = (uint8_t)(i < 24 ? i : 0x20 + i - 24); /* 0..23, -1..-8 */
		in[3 + 2 * i] = 0;
	}
	assert_int_equal(cbor_check(in, 2 + 2 * CBOR_MAX_MAP_PAIRS), MOAT_OK);
	in[1] = CBOR_MAX_MAP_PAIRS + 1;
	in[2 + 2 * CBOR_MAX_MAP_PAIRS] = 0x28;
	in[3 + 2 * CBOR_MAX_MAP_PAIRS] = 0;
	assert_int_equal(cbor_check(in, 4 + 2 * CBOR_MAX_MAP_PAIRS), MOAT_E_LIMIT);
}

static void bad_utf8_refused(void **state)
{
	(void)state;
	assert_int_equal(CHECK("\x62\xc3\x28"), MOAT_E_BAD_UTF8);	  /* bad continuation */
	assert_int_equal(CHECK("\x62\xc0\xaf"), MOAT_E_BAD_UTF8);	  /* overlong '/' */
	assert_int_equal(CHECK("\x63\xed\xa0\x80"), MOAT_E_BAD_UTF8);	  /* surrogate */
	assert_int_equal(CHECK("\x64\xf4\x90\x80\x80"), MOAT_E_BAD_UTF8); /* > U+10FFFF */
	assert_int_equal(CHECK("\x61\xff"), MOAT_E_BAD_UTF8);
	assert_int_equal(CHECK("\x62\xe2\x82"), MOAT_E_BAD_UTF8); /* cut sequence */
	assert_int_equal(CHECK("\x64\xf0\x9f\x98\x80"), MOAT_OK); /* U+1F600 */
	assert_int_equal(CHECK("\x62\xc3\x28"), MOAT_E_BAD_UTF8);
	assert_int_equal(CHECK("\x42\xc3\x28"), MOAT_OK); /* byte strings are not text */
}

static void trailing_bytes_refused(void **state)
{
	(void)state;
	assert_int_equal(CHECK("\x00\x00"), MOAT_E_MALFORMED);
	assert_int_equal(CHECK("\x80\x00"), MOAT_E_MALFORMED);
}

static void outside_subset_refused(void **state)
{
	(void)state;
	assert_int_equal(CHECK("\xf9\x3c\x00"), MOAT_E_UNSUPPORTED); /* half float */
	assert_int_equal(CHECK("\xfb\x3f\xf1\x99\x99\x99\x99\x99\x9a"), MOAT_E_UNSUPPORTED);
	assert_int_equal(CHECK("\xf7"), MOAT_E_UNSUPPORTED);   /* undefined */
	assert_int_equal(CHECK("\xf0"), MOAT_E_UNSUPPORTED);   /* simple(16) */
	assert_int_equal(CHECK("\xf8\x18"), MOAT_E_MALFORMED); /* simple in 2 bytes < 32 */
	assert_int_equal(CHECK("\xf4"), MOAT_OK);
}

static void canonical_sorts_keys(void **state)
{
	/* {10: 1, "a": [{2: 0, 1: 0}], 100: 2, -1: 3} */
	static const uint8_t in[] = {0xa4, 0x0a, 0x01, 0x61, 0x61, 0x81, 0xa2, 0x02,
				     0x00, 0x01, 0x00, 0x18, 0x64, 0x02, 0x20, 0x03};
	/* keys by bytes: 0a, 18 64, 20, 61 61; the inner map sorted too */
	static const uint8_t want[] = {0xa4, 0x0a, 0x01, 0x18, 0x64, 0x02, 0x20, 0x03,
				       0x61, 0x61, 0x81, 0xa2, 0x01, 0x00, 0x02, 0x00};
	struct buf out = {0}, again = {0};

	(void)state;
	assert_int_equal(cbor_canonical(in, sizeof(in), &out), MOAT_OK);
	assert_int_equal(buf_used(&out), sizeof(want));
	assert_memory_equal(buf_head(&out), want, sizeof(want));
	assert_int_equal(cbor_canonical(buf_head(&out), buf_used(&out), &again), MOAT_OK);
	assert_memory_equal(buf_head(&again), want, sizeof(want));
	assert_int_equal(cbor_canonical((const uint8_t *)"\xa2\x01\x00\x01\x00", 5, &again),
			 MOAT_E_MALFORMED);
	buf_fini(&out);
	buf_fini(&again);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(rfc8949_integers),
	    cmocka_unit_test(uint64_max_round_trip),
	    cmocka_unit_test(structures_round_trip),
	    cmocka_unit_test(wrong_type_refused),
	    cmocka_unit_test(indefinite_lengths_refused),
	    cmocka_unit_test(non_preferred_heads_refused),
	    cmocka_unit_test(depth_capped),
	    cmocka_unit_test(truncation_refused),
	    cmocka_unit_test(duplicate_keys_refused),
	    cmocka_unit_test(bad_utf8_refused),
	    cmocka_unit_test(trailing_bytes_refused),
	    cmocka_unit_test(outside_subset_refused),
	    cmocka_unit_test(canonical_sorts_keys),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
