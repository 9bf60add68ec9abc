/* Key-release messages (src/e2e/keyrel.c): round trips of requests (get-key,
 * get-token), responses (key grant with and without sender id, token,
 * refusal), epoch announcements and tamper alerts; and every refusal: wrong
 * topic, kid not the client id, a flipped byte anywhere, another signer,
 * wrong req_hash, an old response replayed for a new request, another
 * device key (HPKE fails), unknown, duplicate, mistyped and missing keys,
 * oversized messages. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include <openssl/evp.h>
#include <openssl/sha.h>

#include <moat/error.h>

#include "e2e/alg.h"
#include "e2e/cbor.h"
#include "e2e/cose.h"
#include "e2e/keyrel.h"
#include "keys_testkit.h"

#define BYTES(s) ((struct moat_bytes){.ptr = (const uint8_t *)(s), .len = sizeof(s) - 1})
#define VIEW(b) ((struct moat_bytes){.ptr = buf_head(b), .len = buf_used(b)})
#define REQ_TOPIC BYTES("$sc/req/dev1")
#define RESP_TOPIC BYTES("$sc/resp/dev1")

static uint8_t dev_seed[32], dev_pub[32], other_seed[32], other_pub[32];
static uint8_t sc_seed[32], sc_pub[32];
static uint8_t agree_sk[32], agree_pk[32], other_agree_sk[32];

static int setup_keys(void **state)
{
	(void)state;
	for (int i = 0; i < 32; i++) {
		dev_seed[i] = (uint8_t)(i + 1);
		other_seed[i] = (uint8_t)(0x80 + i);
		sc_seed[i] = (uint8_t)(0x40 + i);
		agree_sk[i] = (uint8_t)(0x20 + i);
		other_agree_sk[i] = (uint8_t)(0xa0 + i);
	}
	testkit_raw_pub(EVP_PKEY_ED25519, dev_seed, dev_pub);
	testkit_raw_pub(EVP_PKEY_ED25519, other_seed, other_pub);
	testkit_raw_pub(EVP_PKEY_ED25519, sc_seed, sc_pub);
	testkit_raw_pub(EVP_PKEY_X25519, agree_sk, agree_pk);
	return 0;
}

static int failing_sign(void *arg, const uint8_t *msg, size_t len,
			uint8_t sig[COSE_ED25519_SIG_LEN])
{
	(void)arg, (void)msg, (void)len, (void)sig;
	return MOAT_E_IO;
}

static struct keyrel_request key_request(enum keyrel_intent intent)
{
	struct keyrel_request r = {
	    .op = KEYREL_GET_KEY,
	    .client_id = BYTES("dev1"),
	    .topic = BYTES("plant/+/temp"),
	    .intent = intent,
	    .iat = 1764567890,
	};

	memset(r.nonce, 0x5a, sizeof(r.nonce));
	SHA256(agree_pk, 32, r.agree_fpr);
	return r;
}

static struct keyrel_grant key_grant(void)
{
	struct keyrel_grant g = {
	    .status = KEYREL_OK,
	    .sc_time = 1764567891,
	    .group = {.group_id = {1, 2, 3, 4, 5, 6, 7, 8}, .epoch = 3},
	    .alg = E2E_ALG_CHACHA20_POLY1305,
	    .filter = "plant/#",
	    .is_signed = true,
	    .max_age_s = 30,
	    .not_after = 1764654291,
	    .sender_id = {0x01, 0x02},
	    .sender_id_len = 2,
	};

	memset(g.group.master_secret, 0xc3, sizeof(g.group.master_secret));
	return g;
}

static void request_round_trip(void **state)
{
	struct keyrel_request r = key_request(KEYREL_PUBLISH), d;
	struct cose_sign1 sig;
	struct buf b = {0};
	const char *why = NULL;
	uint8_t h[32];

	(void)state;
	r.has_epoch = true;
	r.epoch = 2;
	assert_int_equal(keyrel_request_build(&r, dev_seed, &b), MOAT_OK);
	SHA256(buf_head(&b), buf_used(&b), h);
	assert_memory_equal(r.req_hash, h, 32);
	assert_int_equal(keyrel_request_decode(VIEW(&b), REQ_TOPIC, &d, &sig, &why), MOAT_OK);
	assert_int_equal(d.op, KEYREL_GET_KEY);
	assert_true(moat_bytes_eq(d.client_id, BYTES("dev1")));
	assert_true(moat_bytes_eq(d.topic, BYTES("plant/+/temp")));
	assert_int_equal(d.intent, KEYREL_PUBLISH);
	assert_true(d.has_epoch);
	assert_int_equal(d.epoch, 2);
	assert_memory_equal(d.nonce, r.nonce, 16);
	assert_int_equal(d.iat, r.iat);
	assert_memory_equal(d.agree_fpr, r.agree_fpr, 32);
	assert_memory_equal(d.req_hash, h, 32);
	assert_int_equal(keyrel_request_verify(&sig, REQ_TOPIC, dev_pub, &why), MOAT_OK);
	assert_int_equal(keyrel_request_verify(&sig, REQ_TOPIC, other_pub, &why), MOAT_E_CRYPTO);
	buf_fini(&b);

	r = (struct keyrel_request){.op = KEYREL_GET_TOKEN, .client_id = BYTES("dev1"), .iat = -5};
	assert_int_equal(keyrel_request_build(&r, dev_seed, &b), MOAT_OK);
	assert_int_equal(keyrel_request_decode(VIEW(&b), REQ_TOPIC, &d, &sig, &why), MOAT_OK);
	assert_int_equal(d.op, KEYREL_GET_TOKEN);
	assert_int_equal(d.topic.len, 0);
	assert_int_equal(d.intent, 0);
	assert_int_equal(d.iat, -5);
	assert_int_equal(keyrel_request_verify(&sig, REQ_TOPIC, dev_pub, &why), MOAT_OK);
	buf_fini(&b);
}

static void request_build_refuses_bad_arguments(void **state)
{
	struct keyrel_request r = key_request(KEYREL_PUBLISH);
	struct buf b = {0};

	(void)state;
	r.client_id = BYTES("a/b");
	assert_int_equal(keyrel_request_build(&r, dev_seed, &b), MOAT_E_INVAL);
	r.client_id = BYTES("");
	assert_int_equal(keyrel_request_build(&r, dev_seed, &b), MOAT_E_INVAL);
	r = key_request(0);
	assert_int_equal(keyrel_request_build(&r, dev_seed, &b), MOAT_E_INVAL);
	r = key_request(KEYREL_SUBSCRIBE);
	r.topic = BYTES("");
	assert_int_equal(keyrel_request_build(&r, dev_seed, &b), MOAT_E_INVAL);
	assert_int_equal(buf_used(&b), 0);
	buf_fini(&b);
}

static void request_wrong_topic_or_kid(void **state)
{
	struct keyrel_request r = key_request(KEYREL_SUBSCRIBE), d;
	struct cose_sign1 sig;
	struct buf b = {0}, p = {0}, forged = {0};
	const char *why = NULL;

	(void)state;
	assert_int_equal(keyrel_request_build(&r, dev_seed, &b), MOAT_OK);
	assert_int_equal(keyrel_request_decode(VIEW(&b), BYTES("$sc/req/dev2"), &d, &sig, &why),
			 MOAT_E_PROTOCOL);
	assert_non_null(why);
	assert_int_equal(keyrel_request_decode(VIEW(&b), BYTES("$sc/req/dev1/x"), &d, &sig, &why),
			 MOAT_E_PROTOCOL);
	/* the same payload under another signer's kid */
	assert_int_equal(cose_sign1_decode(VIEW(&b), &sig, &why), MOAT_OK);
	assert_int_equal(buf_append(&p, sig.payload.ptr, sig.payload.len), MOAT_OK);
	assert_int_equal(cose_sign1_sign(other_seed, BYTES("dev2"), REQ_TOPIC, VIEW(&p), &forged),
			 MOAT_OK);
	why = NULL;
	assert_int_equal(keyrel_request_decode(VIEW(&forged), REQ_TOPIC, &d, &sig, &why),
			 MOAT_E_PROTOCOL);
	assert_string_equal(why, "signer kid is not the request's client_id");
	buf_fini(&b);
	buf_fini(&p);
	buf_fini(&forged);
}

static void request_flipped_byte_refused(void **state)
{
	struct keyrel_request r = key_request(KEYREL_PUBLISH), d;
	struct cose_sign1 sig;
	struct buf b = {0};

	(void)state;
	assert_int_equal(keyrel_request_build(&r, dev_seed, &b), MOAT_OK);
	for (size_t i = 0; i < buf_used(&b); i++) {
		for (int bit = 0; bit < 8; bit++) {
			const char *why = NULL;
			int rc;

			buf_head(&b)[i] ^= (uint8_t)(1u << bit);
			rc = keyrel_request_decode(VIEW(&b), REQ_TOPIC, &d, &sig, &why);
			if (rc == MOAT_OK)
				rc = keyrel_request_verify(&sig, REQ_TOPIC, dev_pub, &why);
			assert_int_not_equal(rc, MOAT_OK);
			assert_non_null(why);
			buf_head(&b)[i] ^= (uint8_t)(1u << bit);
		}
	}
	buf_fini(&b);
}

/* Signs <payload> as dev1's request and decodes it: the map-level checks. */
static int decode_crafted(const struct buf *payload, const char **why)
{
	struct keyrel_request d;
	struct cose_sign1 sig;
	struct buf b = {0};
	int rc;

	assert_int_equal(cose_sign1_sign(dev_seed, BYTES("dev1"), REQ_TOPIC, VIEW(payload), &b),
			 MOAT_OK);
	rc = keyrel_request_decode(VIEW(&b), REQ_TOPIC, &d, &sig, why);
	buf_fini(&b);
	return rc;
}

/* A get-token map with its 5 pairs, plus <extra_key> (0: none) holding uint 1. */
static void put_token_map(struct buf *p, int extra_key, bool dup_op)
{
	uint8_t nonce[16] = {0}, fpr[32] = {0};

	cbor_put_map(p, 5u + (extra_key != 0 ? 1u : 0u));
	cbor_put_uint(p, 1);
	cbor_put_uint(p, KEYREL_GET_TOKEN);
	cbor_put_uint(p, dup_op ? 1 : 2);
	if (dup_op)
		cbor_put_uint(p, KEYREL_GET_TOKEN);
	else
		cbor_put_tstr(p, "dev1", 4);
	cbor_put_uint(p, 6);
	cbor_put_bstr(p, nonce, sizeof(nonce));
	cbor_put_uint(p, 7);
	cbor_put_int(p, 100);
	cbor_put_uint(p, 8);
	cbor_put_bstr(p, fpr, sizeof(fpr));
	if (extra_key != 0) {
		cbor_put_int(p, extra_key);
		cbor_put_uint(p, 1);
	}
}

static void request_map_refusals(void **state)
{
	struct buf p = {0};
	const char *why = NULL;

	(void)state;
	put_token_map(&p, 0, false);
	assert_int_equal(decode_crafted(&p, &why), MOAT_OK);
	buf_fini(&p);

	put_token_map(&p, 9, false); /* unknown key */
	assert_int_equal(decode_crafted(&p, &why), MOAT_E_MALFORMED);
	assert_string_equal(why, "unknown map key");
	buf_fini(&p);

	put_token_map(&p, -1, false); /* negative key */
	assert_int_equal(decode_crafted(&p, &why), MOAT_E_MALFORMED);
	buf_fini(&p);

	put_token_map(&p, 3, false); /* topic on get-token, and of the wrong type */
	assert_int_equal(decode_crafted(&p, &why), MOAT_E_MALFORMED);
	buf_fini(&p);

	put_token_map(&p, 0, true); /* op twice, client_id missing */
	assert_int_equal(decode_crafted(&p, &why), MOAT_E_MALFORMED);
	buf_fini(&p);

	/* duplicate key with the client id present: the sixth pair repeats iat */
	put_token_map(&p, 7, false);
	assert_int_equal(decode_crafted(&p, &why), MOAT_E_MALFORMED);
	buf_fini(&p);

	/* a get-key map lacking topic and intent */
	put_token_map(&p, 0, false);
	buf_head(&p)[2] = KEYREL_GET_KEY;
	assert_int_equal(decode_crafted(&p, &why), MOAT_E_MALFORMED);
	assert_string_equal(why, "get-key request lacks topic or intent");
	buf_fini(&p);

	/* not a map */
	cbor_put_array(&p, 0);
	assert_int_equal(decode_crafted(&p, &why), MOAT_E_MALFORMED);
	buf_fini(&p);
}

static void request_too_large_refused(void **state)
{
	static uint8_t big[KEYREL_MESSAGE_MAX + 1];
	struct keyrel_request d;
	struct cose_sign1 sig;
	const char *why = NULL;

	(void)state;
	assert_int_equal(
	    keyrel_request_decode((struct moat_bytes){big, sizeof(big)}, REQ_TOPIC, &d, &sig, &why),
	    MOAT_E_LIMIT);
	assert_non_null(why);
}

/* Builds a request, and the SC's response with <g> to it. */
static void respond(struct keyrel_request *r, const struct keyrel_grant *g, struct buf *resp)
{
	struct buf req = {0};

	assert_int_equal(keyrel_request_build(r, dev_seed, &req), MOAT_OK);
	assert_int_equal(keyrel_response_build(r, g, agree_pk, testkit_ed25519_sign, sc_seed, resp),
			 MOAT_OK);
	buf_fini(&req);
}

static void response_key_round_trip(void **state)
{
	struct keyrel_request r = key_request(KEYREL_PUBLISH);
	struct keyrel_grant g = key_grant(), o;
	struct buf b = {0};
	const char *why = NULL;

	(void)state;
	respond(&r, &g, &b);
	assert_int_equal(keyrel_response_open(VIEW(&b), RESP_TOPIC, "dev1", r.req_hash, sc_pub,
					      agree_sk, &o, &why),
			 MOAT_OK);
	assert_int_equal(o.status, KEYREL_OK);
	assert_memory_equal(o.req_hash, r.req_hash, 32);
	assert_int_equal(o.sc_time, g.sc_time);
	assert_memory_equal(o.group.group_id, g.group.group_id, 8);
	assert_int_equal(o.group.epoch, 3);
	assert_memory_equal(o.group.master_secret, g.group.master_secret, 32);
	assert_int_equal(o.alg, E2E_ALG_CHACHA20_POLY1305);
	assert_string_equal(o.filter, "plant/#");
	assert_true(o.is_signed);
	assert_int_equal(o.max_age_s, 30);
	assert_int_equal(o.not_after, g.not_after);
	assert_int_equal(o.sender_id_len, 2);
	assert_memory_equal(o.sender_id, g.sender_id, 2);
	assert_string_equal(o.reason, "");
	buf_fini(&b);

	/* subscribe: no sender id; a sender id is refused by the builder */
	r = key_request(KEYREL_SUBSCRIBE);
	assert_int_equal(keyrel_response_build(&r, &g, agree_pk, testkit_ed25519_sign, sc_seed, &b),
			 MOAT_E_INVAL);
	g.sender_id_len = 0;
	g.is_signed = false;
	g.alg = E2E_ALG_A256GCM;
	respond(&r, &g, &b);
	assert_int_equal(keyrel_response_open(VIEW(&b), RESP_TOPIC, "dev1", r.req_hash, sc_pub,
					      agree_sk, &o, &why),
			 MOAT_OK);
	assert_int_equal(o.sender_id_len, 0);
	assert_false(o.is_signed);
	assert_int_equal(o.alg, E2E_ALG_A256GCM);
	assert_memory_equal(o.group.master_secret, g.group.master_secret, 32);
	buf_fini(&b);
}

static void response_token_and_refusal(void **state)
{
	struct keyrel_request r = {.op = KEYREL_GET_TOKEN, .client_id = BYTES("dev1"), .iat = 7};
	struct keyrel_grant g = {.status = KEYREL_OK,
				 .sc_time = 9,
				 .not_after = 99,
				 .token = "eyJ.a.b"},
			    o;
	struct buf b = {0};
	const char *why = NULL;

	(void)state;
	respond(&r, &g, &b);
	assert_int_equal(
	    keyrel_response_open(VIEW(&b), RESP_TOPIC, "dev1", r.req_hash, sc_pub, NULL, &o, &why),
	    MOAT_OK);
	assert_int_equal(o.status, KEYREL_OK);
	assert_string_equal(o.token, "eyJ.a.b");
	assert_int_equal(o.not_after, 99);
	buf_fini(&b);

	r = key_request(KEYREL_PUBLISH);
	g = (struct keyrel_grant){.status = KEYREL_DENIED,
				  .sc_time = 5,
				  .reason = "attributes do not satisfy the policy"};
	respond(&r, &g, &b);
	assert_int_equal(keyrel_response_open(VIEW(&b), RESP_TOPIC, "dev1", r.req_hash, sc_pub,
					      agree_sk, &o, &why),
			 MOAT_OK);
	assert_int_equal(o.status, KEYREL_DENIED);
	assert_string_equal(o.reason, "attributes do not satisfy the policy");
	assert_int_equal(o.sc_time, 5);
	assert_int_equal(o.sender_id_len, 0);
	buf_fini(&b);

	g.status = (enum keyrel_status)(KEYREL_STATUS_MAX + 1);
	assert_int_equal(keyrel_response_build(&r, &g, agree_pk, testkit_ed25519_sign, sc_seed, &b),
			 MOAT_E_INVAL);
	g = key_grant();
	assert_int_equal(keyrel_response_build(&r, &g, agree_pk, failing_sign, NULL, &b),
			 MOAT_E_IO);
	assert_int_equal(buf_used(&b), 0);
	buf_fini(&b);
}

static void response_refusals(void **state)
{
	struct keyrel_request r = key_request(KEYREL_PUBLISH), r2;
	struct keyrel_grant g = key_grant(), o;
	struct buf b = {0}, b2 = {0};
	uint8_t bad_hash[32];
	const char *why = NULL;

	(void)state;
	respond(&r, &g, &b);
	/* wrong req_hash */
	memcpy(bad_hash, r.req_hash, 32);
	bad_hash[31] ^= 1;
	assert_int_equal(keyrel_response_open(VIEW(&b), RESP_TOPIC, "dev1", bad_hash, sc_pub,
					      agree_sk, &o, &why),
			 MOAT_E_CRYPTO);
	assert_string_equal(why, "response is for another request (req_hash)");
	/* an old response replayed for a new request (another nonce) */
	r2 = key_request(KEYREL_PUBLISH);
	r2.nonce[0] ^= 1;
	respond(&r2, &g, &b2);
	assert_memory_not_equal(r.req_hash, r2.req_hash, 32);
	assert_int_equal(keyrel_response_open(VIEW(&b), RESP_TOPIC, "dev1", r2.req_hash, sc_pub,
					      agree_sk, &o, &why),
			 MOAT_E_CRYPTO);
	assert_int_equal(keyrel_response_open(VIEW(&b2), RESP_TOPIC, "dev1", r2.req_hash, sc_pub,
					      agree_sk, &o, &why),
			 MOAT_OK);
	/* another device key: HPKE fails, nothing left behind */
	assert_int_equal(keyrel_response_open(VIEW(&b), RESP_TOPIC, "dev1", r.req_hash, sc_pub,
					      other_agree_sk, &o, &why),
			 MOAT_E_CRYPTO);
	assert_string_equal(why, "HPKE open of the master secret failed (wrong device key?)");
	assert_memory_equal(o.group.master_secret, (uint8_t[32]){0}, 32);
	/* another SC key, topic or client */
	assert_int_equal(keyrel_response_open(VIEW(&b), RESP_TOPIC, "dev1", r.req_hash, dev_pub,
					      agree_sk, &o, &why),
			 MOAT_E_CRYPTO);
	assert_int_equal(keyrel_response_open(VIEW(&b), BYTES("$sc/resp/dev2"), "dev2", r.req_hash,
					      sc_pub, agree_sk, &o, &why),
			 MOAT_E_CRYPTO);
	assert_int_equal(keyrel_response_open(VIEW(&b), BYTES("$sc/resp/dev2"), "dev1", r.req_hash,
					      sc_pub, agree_sk, &o, &why),
			 MOAT_E_MALFORMED);
	/* every flipped bit */
	for (size_t i = 0; i < buf_used(&b); i++) {
		for (int bit = 0; bit < 8; bit++) {
			buf_head(&b)[i] ^= (uint8_t)(1u << bit);
			why = NULL;
			assert_int_not_equal(keyrel_response_open(VIEW(&b), RESP_TOPIC, "dev1",
								  r.req_hash, sc_pub, agree_sk, &o,
								  &why),
					     MOAT_OK);
			assert_non_null(why);
			buf_head(&b)[i] ^= (uint8_t)(1u << bit);
		}
	}
	buf_fini(&b);
	buf_fini(&b2);
}

static void response_build_checks_agree_key(void **state)
{
	struct keyrel_request r = key_request(KEYREL_PUBLISH);
	struct keyrel_grant g = key_grant();
	struct buf b = {0};
	uint8_t other_pk[32];

	(void)state;
	testkit_raw_pub(EVP_PKEY_X25519, other_agree_sk, other_pk);
	assert_int_equal(keyrel_response_build(&r, &g, other_pk, testkit_ed25519_sign, sc_seed, &b),
			 MOAT_E_INVAL);
	assert_int_equal(keyrel_response_build(&r, &g, NULL, testkit_ed25519_sign, sc_seed, &b),
			 MOAT_E_INVAL);
	g.alg = 1; /* A128GCM is not an e2e algorithm */
	assert_int_equal(keyrel_response_build(&r, &g, agree_pk, testkit_ed25519_sign, sc_seed, &b),
			 MOAT_E_INVAL);
	assert_int_equal(buf_used(&b), 0);
	buf_fini(&b);
}

/* A signed response payload crafted field by field: the shape checks. */
static int open_crafted_response(const struct buf *payload, const uint8_t hash[32],
				 const char **why)
{
	struct keyrel_grant o;
	struct buf b = {0};
	int rc;

	assert_int_equal(cose_sign1_sign(sc_seed, BYTES("sc"), RESP_TOPIC, VIEW(payload), &b),
			 MOAT_OK);
	rc = keyrel_response_open(VIEW(&b), RESP_TOPIC, "dev1", hash, sc_pub, agree_sk, &o, why);
	buf_fini(&b);
	return rc;
}

static void response_shape_refusals(void **state)
{
	uint8_t hash[32] = {1};
	struct buf p = {0};
	const char *why = NULL;

	(void)state;
	/* a grant without any key or token fields */
	cbor_put_map(&p, 3);
	cbor_put_uint(&p, 1), cbor_put_uint(&p, 0);
	cbor_put_uint(&p, 2), cbor_put_bstr(&p, hash, 32);
	cbor_put_uint(&p, 3), cbor_put_int(&p, 1);
	assert_int_equal(open_crafted_response(&p, hash, &why), MOAT_E_MALFORMED);
	assert_string_equal(why, "grant is neither a complete key nor a token");
	buf_fini(&p);
	/* a refusal carrying a token */
	cbor_put_map(&p, 4);
	cbor_put_uint(&p, 1), cbor_put_uint(&p, KEYREL_DENIED);
	cbor_put_uint(&p, 2), cbor_put_bstr(&p, hash, 32);
	cbor_put_uint(&p, 3), cbor_put_int(&p, 1);
	cbor_put_uint(&p, 15), cbor_put_tstr(&p, "t", 1);
	assert_int_equal(open_crafted_response(&p, hash, &why), MOAT_E_MALFORMED);
	buf_fini(&p);
	/* unknown status */
	cbor_put_map(&p, 3);
	cbor_put_uint(&p, 1), cbor_put_uint(&p, KEYREL_STATUS_MAX + 1);
	cbor_put_uint(&p, 2), cbor_put_bstr(&p, hash, 32);
	cbor_put_uint(&p, 3), cbor_put_int(&p, 1);
	assert_int_equal(open_crafted_response(&p, hash, &why), MOAT_E_MALFORMED);
	buf_fini(&p);
	/* unknown key 16 */
	cbor_put_map(&p, 4);
	cbor_put_uint(&p, 1), cbor_put_uint(&p, KEYREL_DENIED);
	cbor_put_uint(&p, 2), cbor_put_bstr(&p, hash, 32);
	cbor_put_uint(&p, 3), cbor_put_int(&p, 1);
	cbor_put_uint(&p, 16), cbor_put_uint(&p, 1);
	assert_int_equal(open_crafted_response(&p, hash, &why), MOAT_E_MALFORMED);
	assert_string_equal(why, "unknown map key");
	buf_fini(&p);
	/* the well-formed refusal for comparison */
	cbor_put_map(&p, 3);
	cbor_put_uint(&p, 1), cbor_put_uint(&p, KEYREL_REPLAY);
	cbor_put_uint(&p, 2), cbor_put_bstr(&p, hash, 32);
	cbor_put_uint(&p, 3), cbor_put_int(&p, 1);
	assert_int_equal(open_crafted_response(&p, hash, &why), MOAT_OK);
	buf_fini(&p);
}

static void epoch_round_trip_and_refusals(void **state)
{
	static const uint8_t gid[8] = {0xde, 0xad, 0xbe, 0xef, 0x00, 0x01, 0x02, 0x03};
	const struct moat_bytes topic = BYTES("$sc/epoch/deadbeef00010203");
	struct buf b = {0};
	uint8_t out[8];
	uint32_t epoch = 0;
	const char *why = NULL;

	(void)state;
	assert_int_equal(
	    keyrel_epoch_build(gid, 42, "plant/#", 1764567890, testkit_ed25519_sign, sc_seed, &b),
	    MOAT_OK);
	assert_int_equal(keyrel_epoch_open(VIEW(&b), topic, sc_pub, out, &epoch, &why), MOAT_OK);
	assert_memory_equal(out, gid, 8);
	assert_int_equal(epoch, 42);
	assert_int_equal(keyrel_epoch_open(VIEW(&b), BYTES("$sc/epoch/DEADBEEF00010203"), sc_pub,
					   out, &epoch, &why),
			 MOAT_E_PROTOCOL);
	assert_int_equal(keyrel_epoch_open(VIEW(&b), topic, dev_pub, out, &epoch, &why),
			 MOAT_E_CRYPTO);
	for (size_t i = 0; i < buf_used(&b); i++) {
		buf_head(&b)[i] ^= 0x04;
		why = NULL;
		assert_int_not_equal(keyrel_epoch_open(VIEW(&b), topic, sc_pub, out, &epoch, &why),
				     MOAT_OK);
		assert_non_null(why);
		buf_head(&b)[i] ^= 0x04;
	}
	assert_int_equal(keyrel_epoch_build(gid, 1, "", 0, testkit_ed25519_sign, sc_seed, &b),
			 MOAT_E_INVAL);
	buf_fini(&b);
}

static void alert_round_trip_and_refusals(void **state)
{
	const struct moat_bytes topic = BYTES("alerts/dev1/tamper");
	struct moat_bytes id, detail;
	struct cose_sign1 sig;
	struct buf b = {0};
	int64_t iat = 0;
	const char *why = NULL;

	(void)state;
	assert_int_equal(keyrel_alert_build("dev1", 1764567890, "case opened", dev_seed, &b),
			 MOAT_OK);
	assert_int_equal(keyrel_alert_decode(VIEW(&b), topic, &id, &iat, &detail, &sig, &why),
			 MOAT_OK);
	assert_true(moat_bytes_eq(id, BYTES("dev1")));
	assert_true(moat_bytes_eq(detail, BYTES("case opened")));
	assert_int_equal(iat, 1764567890);
	assert_int_equal(cose_sign1_verify(&sig, dev_pub, topic, &why), MOAT_OK);
	assert_int_equal(cose_sign1_verify(&sig, other_pub, topic, &why), MOAT_E_CRYPTO);
	assert_int_equal(keyrel_alert_decode(VIEW(&b), BYTES("alerts/dev2/tamper"), &id, &iat,
					     &detail, &sig, &why),
			 MOAT_E_PROTOCOL);
	for (size_t i = 0; i < buf_used(&b); i++) {
		int rc;

		buf_head(&b)[i] ^= 0x10;
		why = NULL;
		rc = keyrel_alert_decode(VIEW(&b), topic, &id, &iat, &detail, &sig, &why);
		if (rc == MOAT_OK)
			rc = cose_sign1_verify(&sig, dev_pub, topic, &why);
		assert_int_not_equal(rc, MOAT_OK);
		assert_non_null(why);
		buf_head(&b)[i] ^= 0x10;
	}
	buf_fini(&b);
	assert_int_equal(keyrel_alert_build("dev1", 1, NULL, dev_seed, &b), MOAT_OK);
	assert_int_equal(keyrel_alert_decode(VIEW(&b), topic, &id, &iat, &detail, &sig, &why),
			 MOAT_OK);
	assert_int_equal(detail.len, 0);
	buf_fini(&b);
	assert_int_equal(keyrel_alert_build("a+b", 1, "", dev_seed, &b), MOAT_E_INVAL);
	buf_fini(&b);
}

static void status_names(void **state)
{
	(void)state;
	assert_string_equal(keyrel_status_name(KEYREL_OK), "ok");
	assert_string_equal(keyrel_status_name(KEYREL_DENIED), "denied");
	assert_string_equal(keyrel_status_name(KEYREL_REPLAY), "replay");
	assert_string_equal(keyrel_status_name(KEYREL_STALE), "stale");
	assert_string_equal(keyrel_status_name(KEYREL_REVOKED), "revoked");
	assert_string_equal(keyrel_status_name(KEYREL_NO_EPOCH), "no-epoch");
	assert_string_equal(keyrel_status_name((enum keyrel_status)99), "invalid");
	for (int s = 0; s <= KEYREL_STATUS_MAX; s++)
		assert_non_null(keyrel_status_name((enum keyrel_status)s));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(request_round_trip),
	    cmocka_unit_test(request_build_refuses_bad_arguments),
	    cmocka_unit_test(request_wrong_topic_or_kid),
	    cmocka_unit_test(request_flipped_byte_refused),
	    cmocka_unit_test(request_map_refusals),
	    cmocka_unit_test(request_too_large_refused),
	    cmocka_unit_test(response_key_round_trip),
	    cmocka_unit_test(response_token_and_refusal),
	    cmocka_unit_test(response_refusals),
	    cmocka_unit_test(response_build_checks_agree_key),
	    cmocka_unit_test(response_shape_refusals),
	    cmocka_unit_test(epoch_round_trip_and_refusals),
	    cmocka_unit_test(alert_round_trip_and_refusals),
	    cmocka_unit_test(status_names),
	};

	return cmocka_run_group_tests(tests, setup_keys, NULL);
}
