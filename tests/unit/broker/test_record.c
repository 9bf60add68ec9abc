/*
 * Unit tests for the broker's store records (src/broker/record.c): every
 * type round-trips, keys keep one client's records under one prefix, long
 * client ids and topics are hashed into keys that fit the store, and a
 * flipped byte, a wrong key or a truncated value is reported, never trusted.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include <moat/error.h>

#include "broker/record.h"
#include "store/store.h"

static struct moat_bytes view(const struct buf *b)
{
	return (struct moat_bytes){buf_head(b), buf_used(b)};
}

static bool same(struct moat_bytes a, const char *s)
{
	return a.len == strlen(s) && memcmp(a.ptr, s, a.len) == 0;
}

static void session_round_trip(void **state)
{
	char *roles[] = {"sensor", "admin", NULL}, *attrs[] = {"site", "north", NULL};
	struct rec_ident_src id = {"alice", "dev-1", roles, attrs};
	struct rec_session in = {.version = 5,
				 .expiry_s = 3600,
				 .offline_wall_ms = 1796000000000ull,
				 .ident_src = &id},
			   out;
	struct buf key = {0}, val = {0};
	const char *why = NULL;
	struct rd body;
	bool nomem;
	char **v;

	(void)state;
	assert_int_equal(rec_key_client(&key, REC_SESSION, "dev-1"), MOAT_OK);
	assert_int_equal(rec_put_session(&val, view(&key), &in), MOAT_OK);
	assert_null(rec_check(buf_head(&key), buf_used(&key), buf_head(&val), buf_used(&val)));
	assert_int_equal(
	    rec_open(buf_head(&key), buf_used(&key), buf_head(&val), buf_used(&val), &body, &why),
	    MOAT_OK);
	assert_int_equal(rec_get_session(&body, &out, &why), MOAT_OK);
	assert_int_equal(out.version, 5);
	assert_int_equal(out.expiry_s, 3600);
	assert_true(out.offline_wall_ms == 1796000000000ull);
	assert_true(out.ident.has_username && same(out.ident.username, "alice"));
	assert_true(same(out.ident.client_id, "dev-1"));
	assert_int_equal(out.ident.role_count, 2);
	v = rec_strv(out.ident.roles, out.ident.role_count, &nomem);
	assert_non_null(v);
	assert_string_equal(v[0], "sensor");
	assert_string_equal(v[1], "admin");
	assert_null(v[2]);
	free(v[0]);
	free(v[1]);
	free(v);
	buf_fini(&key);
	buf_fini(&val);
}

static void entry_with_inline_message_round_trips(void **state)
{
	struct rec_entry in = {.qos = 2,
			       .state = REC_SENT,
			       .packet_id = 77,
			       .retain = true,
			       .sub_id_count = 2,
			       .sub_ids = {5, 9}},
			 out;
	struct buf key = {0}, val = {0};
	const char *why = NULL;
	struct rd body;

	(void)state;
	in.msg = (struct rec_msg){.qos = 2,
				  .retain = true,
				  .has_expiry = true,
				  .expire_wall_ms = 1796000009000ull,
				  .topic = moat_bytes_str("t/x"),
				  .payload = moat_bytes_str("21.5"),
				  .content_type = moat_bytes_str("text/plain")};
	assert_int_equal(rec_key_entry(&key, "dev-1", 42), MOAT_OK);
	assert_int_equal(rec_put_entry(&val, view(&key), &in), MOAT_OK);
	assert_int_equal(
	    rec_open(buf_head(&key), buf_used(&key), buf_head(&val), buf_used(&val), &body, &why),
	    MOAT_OK);
	assert_int_equal(rec_get_entry(&body, &out, &why), MOAT_OK);
	assert_int_equal(out.qos, 2);
	assert_int_equal(out.state, REC_SENT);
	assert_int_equal(out.packet_id, 77);
	assert_true(out.retain);
	assert_int_equal(out.sub_id_count, 2);
	assert_int_equal(out.sub_ids[1], 9);
	assert_true(out.msg_id == 0);
	assert_true(same(out.msg.topic, "t/x") && same(out.msg.payload, "21.5"));
	assert_true(same(out.msg.content_type, "text/plain"));
	assert_true(out.msg.has_expiry && out.msg.expire_wall_ms == 1796000009000ull);
	buf_fini(&key);
	buf_fini(&val);
}

static void a_clients_records_share_one_prefix(void **state)
{
	struct buf prefix = {0}, key = {0}, other = {0};
	struct moat_bytes cid, suffix;

	(void)state;
	assert_int_equal(rec_key_client_prefix(&prefix, REC_SUB, "dev-1"), MOAT_OK);
	assert_int_equal(rec_key_sub(&key, "dev-1", moat_bytes_str("a/#")), MOAT_OK);
	assert_int_equal(rec_key_sub(&other, "dev-10", moat_bytes_str("a/#")), MOAT_OK);
	assert_memory_equal(buf_head(&key), buf_head(&prefix), buf_used(&prefix));
	/* "dev-10" is not under "dev-1"'s prefix: the NUL ends the client id */
	assert_true(memcmp(buf_head(&other), buf_head(&prefix), buf_used(&prefix)) != 0);
	assert_true(rec_key_split(buf_head(&key), buf_used(&key), &cid, &suffix));
	assert_true(same(cid, "dev-1") && same(suffix, "a/#"));
	buf_fini(&prefix);
	buf_fini(&key);
	buf_fini(&other);
}

static void long_ids_and_topics_are_hashed_into_keys_that_fit(void **state)
{
	char *cid = malloc(5000), *topic = malloc(60000);
	struct buf key = {0}, again = {0};

	(void)state;
	memset(cid, 'c', 4999);
	cid[4999] = '\0';
	memset(topic, 't', 60000);
	assert_int_equal(rec_key_sub(&key, cid, (struct moat_bytes){(uint8_t *)topic, 60000}),
			 MOAT_OK);
	assert_true(buf_used(&key) <= STORE_MAX_KEY);
	assert_int_equal(buf_head(&key)[1], REC_KEY_HASHED);
	assert_int_equal(rec_key_sub(&again, cid, (struct moat_bytes){(uint8_t *)topic, 60000}),
			 MOAT_OK);
	assert_int_equal(buf_used(&key), buf_used(&again));
	assert_memory_equal(buf_head(&key), buf_head(&again), buf_used(&key));
	assert_int_equal(rec_key_retain(&key, (struct moat_bytes){(uint8_t *)topic, 60000}),
			 MOAT_OK);
	assert_true(buf_used(&key) <= STORE_MAX_KEY);
	free(cid);
	free(topic);
	buf_fini(&key);
	buf_fini(&again);
}

static void damage_is_reported(void **state)
{
	struct rec_sub sub = {.qos = 1, .sub_id = 3, .filter = moat_bytes_str("a/+")};
	struct buf key = {0}, val = {0};
	const char *why = NULL;
	struct rd body;

	(void)state;
	assert_int_equal(rec_key_sub(&key, "dev-1", sub.filter), MOAT_OK);
	assert_int_equal(rec_put_sub(&val, view(&key), &sub), MOAT_OK);
	assert_null(rec_check(buf_head(&key), buf_used(&key), buf_head(&val), buf_used(&val)));
	/* the same value under another key: the CRC covers the key */
	assert_string_equal(
	    rec_check((const uint8_t *)"Bdev-2\0a/+", 10, buf_head(&val), buf_used(&val)),
	    "checksum mismatch");
	/* a flipped byte */
	buf_head(&val)[2] ^= 0x40;
	assert_int_equal(
	    rec_open(buf_head(&key), buf_used(&key), buf_head(&val), buf_used(&val), &body, &why),
	    MOAT_E_MALFORMED);
	assert_string_equal(why, "checksum mismatch");
	buf_head(&val)[2] ^= 0x40;
	/* cut short */
	assert_non_null(rec_check(buf_head(&key), buf_used(&key), buf_head(&val), 4));
	/* an unknown type */
	assert_string_equal(rec_check((const uint8_t *)"Zx", 2, buf_head(&val), buf_used(&val)),
			    "checksum mismatch");
	buf_fini(&key);
	buf_fini(&val);
}

/* A copy queued for other cluster nodes (src/cluster/outbound.c): keyed by
 * its sequence number in big-endian order, so the store gives the queue back
 * in order; subject and data round-trip; an empty subject is refused. */
static void cluster_queue_record_round_trips(void **state)
{
	struct buf key = {0}, key2 = {0}, val = {0};
	struct moat_bytes subject, data;
	const char *why = NULL;
	struct rd body;

	(void)state;
	assert_int_equal(rec_key_cluster_out(&key, 0x0102), MOAT_OK);
	assert_int_equal(rec_key_cluster_out(&key2, 0x0201), MOAT_OK);
	assert_int_equal(buf_used(&key), 9);
	assert_int_equal(buf_head(&key)[0], REC_CLUSTER_OUT);
	assert_int_equal(rec_be64(buf_head(&key) + 1), 0x0102);
	assert_true(memcmp(buf_head(&key), buf_head(&key2), 9) < 0);
	assert_int_equal(rec_put_cluster_out(&val, view(&key), moat_bytes_str("t.n.b.x"),
					     (struct moat_bytes){(const uint8_t *)"\0\1wire", 6}),
			 MOAT_OK);
	assert_null(rec_check(buf_head(&key), buf_used(&key), buf_head(&val), buf_used(&val)));
	assert_int_equal(
	    rec_open(buf_head(&key), buf_used(&key), buf_head(&val), buf_used(&val), &body, &why),
	    MOAT_OK);
	assert_int_equal(rec_get_cluster_out(&body, &subject, &data, &why), MOAT_OK);
	assert_true(same(subject, "t.n.b.x"));
	assert_int_equal(data.len, 6);
	assert_memory_equal(data.ptr, "\0\1wire", 6);
	assert_int_equal(rec_put_cluster_out(&val, view(&key), moat_bytes_str(""),
					     moat_bytes_str("x")),
			 MOAT_OK);
	assert_string_equal(
	    rec_check(buf_head(&key), buf_used(&key), buf_head(&val), buf_used(&val)),
	    "bad cluster queue record");
	buf_fini(&key);
	buf_fini(&key2);
	buf_fini(&val);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(session_round_trip),
	    cmocka_unit_test(entry_with_inline_message_round_trips),
	    cmocka_unit_test(a_clients_records_share_one_prefix),
	    cmocka_unit_test(long_ids_and_topics_are_hashed_into_keys_that_fit),
	    cmocka_unit_test(damage_is_reported),
	    cmocka_unit_test(cluster_queue_record_round_trips),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
