/*
 * Unit tests for src/codec/frame.c and the reader in rd.h: Remaining Length
 * of 1 to 4 bytes, the 5-byte and overlong forms (CVE-2026-21888), limits
 * decided from the header alone and partial headers.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <moat/error.h>

#include "codec/frame.h"
#include "codec/mqtt.h"
#include "codec/rd.h"
#include "codec/wr.h"

#define BIG UINT32_MAX

static void frame_decodes_each_length_width(void **state)
{
	static const struct {
		uint8_t hdr[5];
		uint8_t n;
		uint32_t rem;
	} cases[] = {
		{ { 0x30, 0x00 }, 2, 0 },
		{ { 0x30, 0x7f }, 2, 127 },
		{ { 0x30, 0x80, 0x01 }, 3, 128 },
		{ { 0x30, 0xff, 0x7f }, 3, 16383 },
		{ { 0x30, 0x80, 0x80, 0x01 }, 4, 16384 },
		{ { 0x30, 0xff, 0xff, 0x7f }, 4, 2097151 },
		{ { 0x30, 0x80, 0x80, 0x80, 0x01 }, 5, 2097152 },
		{ { 0x30, 0xff, 0xff, 0xff, 0x7f }, 5, MQTT_MAX_REMAINING_LENGTH },
	};
	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct mqtt_frame f;

		assert_int_equal(frame_decode(cases[i].hdr, cases[i].n, BIG, &f), MOAT_OK);
		assert_int_equal(f.type, MQTT_PUBLISH);
		assert_int_equal(f.flags, 0);
		assert_int_equal(f.hdr_len, cases[i].n);
		assert_int_equal(f.rem_len, cases[i].rem);
	}
}

static void frame_keeps_type_and_flags(void **state)
{
	const uint8_t b[] = { 0x3d, 0x00 };
	struct mqtt_frame f;

	(void)state;
	assert_int_equal(frame_decode(b, sizeof(b), BIG, &f), MOAT_OK);
	assert_int_equal(f.type, MQTT_PUBLISH);
	assert_int_equal(f.flags, 0x0d);
}

static void varint_rejects_fifth_length_byte(void **state)
{
	const uint8_t b[] = { 0x30, 0xff, 0xff, 0xff, 0xff, 0x01, 0, 0, 0, 0 };
	struct mqtt_frame f;

	(void)state;
	assert_int_equal(frame_decode(b, sizeof(b), BIG, &f), MOAT_E_MALFORMED);
	/* already decided after the fourth continuation byte */
	assert_int_equal(frame_decode(b, 6, BIG, &f), MOAT_E_MALFORMED);
}

static void varint_rejects_overlong_form(void **state)
{
	const uint8_t two[] = { 0x30, 0x80, 0x00, 0x00 };
	const uint8_t three[] = { 0x30, 0x85, 0x80, 0x00 };
	const uint8_t four[] = { 0x30, 0x80, 0x80, 0x80, 0x00 };
	struct mqtt_frame f;

	(void)state;
	assert_int_equal(frame_decode(two, sizeof(two), BIG, &f), MOAT_E_MALFORMED);
	assert_int_equal(frame_decode(three, sizeof(three), BIG, &f), MOAT_E_MALFORMED);
	assert_int_equal(frame_decode(four, sizeof(four), BIG, &f), MOAT_E_MALFORMED);
}

static void frame_refuses_oversize_from_header_alone(void **state)
{
	/* 268435455 announced, only 10 bytes present */
	const uint8_t b[10] = { 0x30, 0xff, 0xff, 0xff, 0x7f, 0, 3, 'a', '/', 'b' };
	struct mqtt_frame f;

	(void)state;
	assert_int_equal(frame_decode(b, sizeof(b), 1024 * 1024, &f), MOAT_E_LIMIT);
	assert_int_equal(frame_decode(b, 5, 1024 * 1024, &f), MOAT_E_LIMIT);
	/* the protocol maximum itself is accepted; the body is simply incomplete */
	assert_int_equal(frame_decode(b, sizeof(b), MQTT_MAX_PACKET_SIZE, &f), MOAT_OK);
	assert_int_equal(f.rem_len, MQTT_MAX_REMAINING_LENGTH);
}

static void frame_limit_counts_the_header(void **state)
{
	const uint8_t b[] = { 0x30, 0x0a };	/* 2 + 10 = 12 bytes */
	struct mqtt_frame f;

	(void)state;
	assert_int_equal(frame_decode(b, sizeof(b), 12, &f), MOAT_OK);
	assert_int_equal(frame_decode(b, sizeof(b), 11, &f), MOAT_E_LIMIT);
}

static void frame_needs_more_for_partial_header(void **state)
{
	const uint8_t b[] = { 0x30, 0x80, 0x80, 0x80, 0x01 };
	struct mqtt_frame f;

	(void)state;
	assert_int_equal(frame_decode(b, 0, BIG, &f), MOAT_E_AGAIN);
	for (size_t n = 1; n < sizeof(b); n++)
		assert_int_equal(frame_decode(b, n, BIG, &f), MOAT_E_AGAIN);
	assert_int_equal(frame_decode(b, sizeof(b), BIG, &f), MOAT_OK);
}

static void frame_rejects_packet_type_zero(void **state)
{
	const uint8_t b[] = { 0x00, 0x00 };
	struct mqtt_frame f;

	(void)state;
	assert_int_equal(frame_decode(b, sizeof(b), BIG, &f), MOAT_E_MALFORMED);
}

static void rd_varint_rejects_overlong_and_fifth_byte(void **state)
{
	const uint8_t over[] = { 0x80, 0x00 };
	const uint8_t five[] = { 0x80, 0x80, 0x80, 0x80, 0x01 };
	const uint8_t max[] = { 0xff, 0xff, 0xff, 0x7f };
	const uint8_t zero[] = { 0x00 };
	struct rd r;
	uint32_t v = 7;

	(void)state;
	rd_init(&r, over, sizeof(over));
	assert_false(rd_varint(&r, &v));
	assert_int_equal(r.err, MOAT_E_MALFORMED);
	rd_init(&r, five, sizeof(five));
	assert_false(rd_varint(&r, &v));
	assert_int_equal(r.err, MOAT_E_MALFORMED);
	rd_init(&r, max, sizeof(max));
	assert_true(rd_varint(&r, &v));
	assert_int_equal(v, MQTT_MAX_REMAINING_LENGTH);
	assert_int_equal(r.left, 0);
	rd_init(&r, zero, sizeof(zero));
	assert_true(rd_varint(&r, &v));
	assert_int_equal(v, 0);
	rd_init(&r, max, 2);	/* truncated */
	assert_false(rd_varint(&r, &v));
	assert_int_equal(r.err, MOAT_E_MALFORMED);
}

static void rd_error_is_sticky(void **state)
{
	const uint8_t b[] = { 0x00, 0x05, 'a', 'b' };
	struct rd r;
	struct moat_bytes s;
	uint8_t u;

	(void)state;
	rd_init(&r, b, sizeof(b));
	assert_false(rd_bin(&r, &s));	/* claims 5, has 2 */
	assert_int_equal(r.err, MOAT_E_MALFORMED);
	assert_int_equal(r.left, 0);
	assert_false(rd_u8(&r, &u));
}

static void wr_varint_round_trips_every_width(void **state)
{
	static const uint32_t vals[] = { 0, 1, 127, 128, 16383, 16384, 2097151, 2097152,
					 MQTT_MAX_REMAINING_LENGTH };
	(void)state;
	for (size_t i = 0; i < sizeof(vals) / sizeof(vals[0]); i++) {
		uint8_t buf[4];
		struct wr w;
		struct rd r;
		uint32_t v;

		wr_init(&w, buf, sizeof(buf));
		wr_varint(&w, vals[i]);
		assert_int_equal(w.len, varint_size(vals[i]));
		rd_init(&r, buf, w.len);
		assert_true(rd_varint(&r, &v));
		assert_int_equal(v, vals[i]);
		assert_int_equal(r.left, 0);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(frame_decodes_each_length_width),
		cmocka_unit_test(frame_keeps_type_and_flags),
		cmocka_unit_test(varint_rejects_fifth_length_byte),
		cmocka_unit_test(varint_rejects_overlong_form),
		cmocka_unit_test(frame_refuses_oversize_from_header_alone),
		cmocka_unit_test(frame_limit_counts_the_header),
		cmocka_unit_test(frame_needs_more_for_partial_header),
		cmocka_unit_test(frame_rejects_packet_type_zero),
		cmocka_unit_test(rd_varint_rejects_overlong_and_fifth_byte),
		cmocka_unit_test(rd_error_is_sticky),
		cmocka_unit_test(wr_varint_round_trips_every_width),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
