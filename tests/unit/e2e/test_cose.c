/* COSE envelope: the RFC 8439 §2.8.2 and a NIST GCM (test case 14) vector
 * through the AEAD wrapper; seal/open round trips for both algorithms;
 * every byte of an envelope flipped, topic swapped, replayed sequence
 * number, wrong algorithm, wrong epoch or group, unknown labels: all
 * rejected with their reason; nonces unique across senders; Sign1 over
 * Encrypt0 (encrypt-then-sign). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include <openssl/evp.h>

#include <moat/error.h>

#include "e2e/aead.h"
#include "e2e/alg.h"
#include "e2e/cbor.h"
#include "e2e/cose.h"
#include "e2e/kdf.h"
#include "e2e/replay.h"

#define BYTES(s) ((struct moat_bytes){.ptr = (const uint8_t *)(s), .len = sizeof(s) - 1})

static const struct cose_group group = {
    .group_id = {'g', 'r', 'o', 'u', 'p', '-', '0', '1'},
    .epoch = 7,
    .master_secret = {0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0a,
		      0x0b, 0x0c, 0x0d, 0x0e, 0x0f, 0x10, 0x11, 0x12, 0x13, 0x14, 0x15,
		      0x16, 0x17, 0x18, 0x19, 0x1a, 0x1b, 0x1c, 0x1d, 0x1e, 0x1f},
};

static const int algs[] = {E2E_ALG_CHACHA20_POLY1305, E2E_ALG_A256GCM};

static void rfc8439_aead_vector(void **state)
{
	static const char pt[] = "Ladies and Gentlemen of the class of '99: If I could offer you "
				 "only one tip for the future, sunscreen would be it.";
	static const uint8_t want[] = {
	    0xd3, 0x1a, 0x8d, 0x34, 0x64,
	    0x8e, 0x60, 0xdb, 0x7b, 0x86,
	    0xaf, 0xbc, 0x53, 0xef, 0x7e,
	    0xc2, 0xa4, 0xad, 0xed, 0x51,
	    0x29, 0x6e, 0x08, 0xfe, 0xa9,
	    0xe2, 0xb5, 0xa7, 0x36, 0xee,
	    0x62, 0xd6, 0x3d, 0xbe, 0xa4,
	    0x5e, 0x8c, 0xa9, 0x67, 0x12,
	    0x82, 0xfa, 0xfb, 0x69, 0xda,
	    0x92, 0x72, 0x8b, 0x1a, 0x71,
	    0xde, 0x0a, 0x9e, 0x06, 0x0b,
	    0x29, 0x05, 0xd6, 0xa5, 0xb6,
	    0x7e, 0xcd, 0x3b, 0x36, 0x92,
	    0xdd, 0xbd, 0x7f, 0x2d, 0x77,
	    0x8b, 0x8c, 0x98, 0x03, 0xae,
	    0xe3, 0x28, 0x09, 0x1b, 0x58,
	    0xfa, 0xb3, 0x24, 0xe4, 0xfa,
	    0xd6, 0x75, 0x94, 0x55, 0x85,
	    0x80, 0x8b, 0x48, 0x31, 0xd7,
	    0xbc, 0x3f, 0xf4, 0xde, 0xf0,
	    0x8e, 0x4b, 0x7a, 0x9d, 0xe5,
	    0x76, 0xd2, 0x65, 0x86, 0xce,
	    0xc6, 0x4b, 0x61, 0x16, /* tag: */ 0x1a,
	    0xe1, 0x0b, 0x59, 0x4f, 0x09,
	    0xe2, 0x6a, 0x7e, 0x90, 0x2e,
	    0xcb, 0xd0, 0x60, 0x06, 0x91,
	};
	static const uint8_t nonce[12] = {0x07, 0,    0,    0,	  0x40, 0x41,
					  0x42, 0x43, 0x44, 0x45, 0x46, 0x47};
	static const uint8_t aad[] = {0x50, 0x51, 0x52, 0x53, 0xc0, 0xc1,
				      0xc2, 0xc3, 0xc4, 0xc5, 0xc6, 0xc7};
	uint8_t key[32], ct[sizeof(want)], back[sizeof(pt)];
	struct moat_bytes a = {aad, sizeof(aad)}, c = {ct, sizeof(ct)};

	(void)state;
	for (size_t i = 0; i < 32; i++)
		key[i] = (uint8_t)(0x80 + i);
	assert_int_equal(sizeof(want), sizeof(pt) - 1 + E2E_TAG_LEN);
	assert_int_equal(e2e_aead_seal(E2E_ALG_CHACHA20_POLY1305, key, nonce, a, BYTES(pt), ct),
			 MOAT_OK);
	assert_memory_equal(ct, want, sizeof(want));
	assert_int_equal(e2e_aead_open(E2E_ALG_CHACHA20_POLY1305, key, nonce, a, c, back), MOAT_OK);
	assert_memory_equal(back, pt, sizeof(pt) - 1);
	ct[sizeof(ct) - 1] ^= 1;
	assert_int_equal(e2e_aead_open(E2E_ALG_CHACHA20_POLY1305, key, nonce, a, c, back),
			 MOAT_E_CRYPTO);
	assert_int_equal(back[0], 0); /* unauthenticated plaintext is wiped */
	c.len = E2E_TAG_LEN - 1;
	assert_int_equal(e2e_aead_open(E2E_ALG_CHACHA20_POLY1305, key, nonce, a, c, back),
			 MOAT_E_MALFORMED);
	assert_int_equal(e2e_aead_seal(1, key, nonce, a, BYTES(pt), ct), MOAT_E_INVAL);
}

static void gcm_aead_vector(void **state)
{
	/* McGrew-Viega GCM test case 14: K = 0^256, IV = 0^96, P = 0^128 */
	static const uint8_t want[] = {0xce, 0xa7, 0x40, 0x3d, 0x4d, 0x60, 0x6b, 0x6e,
				       0x07, 0x4e, 0xc5, 0xd3, 0xba, 0xf3, 0x9d, 0x18,
				       0xd0, 0xd1, 0xc8, 0xa7, 0x99, 0x99, 0x6b, 0xf0,
				       0x26, 0x5b, 0x98, 0xb5, 0xd4, 0x8a, 0xb9, 0x19};
	uint8_t key[32] = {0}, nonce[12] = {0}, pt[16] = {0}, ct[32];

	(void)state;
	assert_int_equal(e2e_aead_seal(E2E_ALG_A256GCM, key, nonce, (struct moat_bytes){0},
				       (struct moat_bytes){pt, sizeof(pt)}, ct),
			 MOAT_OK);
	assert_memory_equal(ct, want, sizeof(want));
}

static struct cose_seal_params params(int alg, uint64_t seq)
{
	return (struct cose_seal_params){
	    .alg = alg, .sender_id = BYTES("\x2a"), .seq = seq, .has_iat = true, .iat = 1764547200};
}

/* decode + open; returns the first error */
static int receive(struct moat_bytes env, const struct cose_group *g, int alg,
		   struct moat_bytes topic, struct buf *pt, const char **why)
{
	struct cose_encrypt0 e;
	int rc = cose_encrypt0_decode(env, &e, why);

	return rc < 0 ? rc : cose_encrypt0_open(&e, g, alg, topic, pt, why);
}

static void seal_open_round_trip(void **state)
{
	(void)state;
	for (size_t a = 0; a < 2; a++) {
		struct cose_seal_params p = params(algs[a], 300);
		struct buf env = {0}, pt = {0};
		struct cose_encrypt0 e;
		const char *why = NULL;

		assert_int_equal(
		    cose_encrypt0_seal(&group, &p, BYTES("plant/1/temp"), BYTES("21.5 C"), &env),
		    MOAT_OK);
		assert_int_equal(buf_head(&env)[0], 0xd0); /* tag 16 */
		assert_int_equal(cose_encrypt0_decode(
				     (struct moat_bytes){buf_head(&env), buf_used(&env)}, &e, &why),
				 MOAT_OK);
		assert_int_equal(e.alg, algs[a]);
		assert_int_equal(e.seq, 300);
		assert_int_equal(e.epoch, 7);
		assert_memory_equal(e.group_id, group.group_id, 8);
		assert_true(e.has_iat && e.iat == 1764547200);
		assert_true(e.sender_id.len == 1 && e.sender_id.ptr[0] == 0x2a);
		assert_int_equal(e.ciphertext.len, 6 + E2E_TAG_LEN);
		assert_int_equal(
		    cose_encrypt0_open(&e, &group, algs[a], BYTES("plant/1/temp"), &pt, &why),
		    MOAT_OK);
		assert_int_equal(buf_used(&pt), 6);
		assert_memory_equal(buf_head(&pt), "21.5 C", 6);

		/* empty payload, no iat, largest sequence number and id */
		buf_fini(&env);
		p.has_iat = false;
		p.seq = E2E_SEQ_MAX;
		p.sender_id = BYTES("\x01\x02\x03\x04\x05\x06");
		assert_int_equal(
		    cose_encrypt0_seal(&group, &p, BYTES("t"), (struct moat_bytes){0}, &env),
		    MOAT_OK);
		assert_int_equal(cose_encrypt0_decode(
				     (struct moat_bytes){buf_head(&env), buf_used(&env)}, &e, &why),
				 MOAT_OK);
		assert_false(e.has_iat);
		assert_true(e.seq == E2E_SEQ_MAX);
		assert_int_equal(cose_encrypt0_open(&e, &group, algs[a], BYTES("t"), &pt, &why),
				 MOAT_OK);
		assert_int_equal(buf_used(&pt), 6);
		buf_fini(&env);
		buf_fini(&pt);
	}
}

static void seal_refuses_bad_arguments(void **state)
{
	struct cose_seal_params p = params(E2E_ALG_CHACHA20_POLY1305, 1);
	struct buf env = {0};

	(void)state;
	p.sender_id = BYTES("\x01\x02\x03\x04\x05\x06\x07");
	assert_int_equal(cose_encrypt0_seal(&group, &p, BYTES("t"), BYTES("x"), &env),
			 MOAT_E_INVAL);
	p.sender_id = (struct moat_bytes){0};
	assert_int_equal(cose_encrypt0_seal(&group, &p, BYTES("t"), BYTES("x"), &env),
			 MOAT_E_INVAL);
	p = params(E2E_ALG_CHACHA20_POLY1305, E2E_SEQ_MAX + 1);
	assert_int_equal(cose_encrypt0_seal(&group, &p, BYTES("t"), BYTES("x"), &env),
			 MOAT_E_INVAL);
	p = params(1 /* A128GCM: not offered */, 1);
	assert_int_equal(cose_encrypt0_seal(&group, &p, BYTES("t"), BYTES("x"), &env),
			 MOAT_E_INVAL);
	p = params(E2E_ALG_CHACHA20_POLY1305, 1);
	assert_int_equal(cose_encrypt0_seal(&group, &p, (struct moat_bytes){0}, BYTES("x"), &env),
			 MOAT_E_INVAL);
	assert_int_equal(buf_used(&env), 0);
	buf_fini(&env);
}

static void every_byte_flipped_rejected(void **state)
{
	(void)state;
	for (size_t a = 0; a < 2; a++) {
		struct cose_seal_params p = params(algs[a], 70000);
		struct buf env = {0}, pt = {0};

		assert_int_equal(
		    cose_encrypt0_seal(&group, &p, BYTES("a/b"), BYTES("payload!"), &env), MOAT_OK);
		for (size_t i = 0; i < buf_used(&env); i++) {
			static const uint8_t masks[] = {0x01, 0x80, 0xff};

			for (size_t m = 0; m < sizeof(masks); m++) {
				const char *why = NULL;
				int rc;

				buf_head(&env)[i] ^= masks[m];
				rc = receive((struct moat_bytes){buf_head(&env), buf_used(&env)},
					     &group, algs[a], BYTES("a/b"), &pt, &why);
				buf_head(&env)[i] ^= masks[m];
				assert_true(rc < 0);
				assert_non_null(why);
			}
		}
		/* and every truncation */
		for (size_t n = 0; n < buf_used(&env); n++) {
			const char *why = NULL;

			assert_true(receive((struct moat_bytes){buf_head(&env), n}, &group, algs[a],
					    BYTES("a/b"), &pt, &why) < 0);
		}
		assert_int_equal(buf_used(&pt), 0);
		assert_int_equal(receive((struct moat_bytes){buf_head(&env), buf_used(&env)},
					 &group, algs[a], BYTES("a/b"), &pt, NULL),
				 MOAT_OK);
		buf_fini(&env);
		buf_fini(&pt);
	}
}

static void topic_swapped_rejected(void **state)
{
	struct cose_seal_params p = params(E2E_ALG_CHACHA20_POLY1305, 1);
	struct buf env = {0}, pt = {0};
	const char *why = NULL;

	(void)state;
	assert_int_equal(cose_encrypt0_seal(&group, &p, BYTES("door/1/lock"), BYTES("open"), &env),
			 MOAT_OK);
	assert_int_equal(receive((struct moat_bytes){buf_head(&env), buf_used(&env)}, &group,
				 E2E_ALG_CHACHA20_POLY1305, BYTES("door/2/lock"), &pt, &why),
			 MOAT_E_CRYPTO);
	assert_non_null(strstr(why, "tag"));
	assert_int_equal(receive((struct moat_bytes){buf_head(&env), buf_used(&env)}, &group,
				 E2E_ALG_CHACHA20_POLY1305, (struct moat_bytes){0}, &pt, &why),
			 MOAT_E_INVAL);
	buf_fini(&env);
	buf_fini(&pt);
}

static void replayed_seq_rejected(void **state)
{
	struct replay_window w;
	struct cose_seal_params p = params(E2E_ALG_A256GCM, 5);
	struct buf env = {0}, pt = {0};
	struct cose_encrypt0 e;
	struct moat_bytes v;

	(void)state;
	replay_init(&w);
	assert_int_equal(cose_encrypt0_seal(&group, &p, BYTES("x"), BYTES("1"), &env), MOAT_OK);
	v = (struct moat_bytes){buf_head(&env), buf_used(&env)};
	assert_int_equal(cose_encrypt0_decode(v, &e, NULL), MOAT_OK);
	assert_int_equal(replay_check(&w, e.seq), MOAT_OK);
	assert_int_equal(cose_encrypt0_open(&e, &group, E2E_ALG_A256GCM, BYTES("x"), &pt, NULL),
			 MOAT_OK);
	replay_commit(&w, e.seq);
	/* the same envelope again */
	assert_int_equal(cose_encrypt0_decode(v, &e, NULL), MOAT_OK);
	assert_int_equal(replay_check(&w, e.seq), MOAT_E_PROTOCOL);
	buf_fini(&env);
	buf_fini(&pt);
}

static void wrong_alg_epoch_group_rejected(void **state)
{
	struct cose_seal_params p = params(E2E_ALG_CHACHA20_POLY1305, 9);
	struct cose_group g2 = group;
	struct buf env = {0}, pt = {0};
	struct moat_bytes v;
	const char *why = NULL;

	(void)state;
	assert_int_equal(cose_encrypt0_seal(&group, &p, BYTES("x"), BYTES("1"), &env), MOAT_OK);
	v = (struct moat_bytes){buf_head(&env), buf_used(&env)};
	assert_int_equal(receive(v, &group, E2E_ALG_A256GCM, BYTES("x"), &pt, &why),
			 MOAT_E_PROTOCOL);
	assert_string_equal(why, "alg is not the one the topic policy requires");
	g2.epoch = 6; /* the receiver holds the previous epoch only */
	assert_int_equal(receive(v, &g2, E2E_ALG_CHACHA20_POLY1305, BYTES("x"), &pt, &why),
			 MOAT_E_PROTOCOL);
	assert_string_equal(why, "kid context names another epoch");
	g2 = group;
	g2.group_id[7] ^= 1;
	assert_int_equal(receive(v, &g2, E2E_ALG_CHACHA20_POLY1305, BYTES("x"), &pt, &why),
			 MOAT_E_PROTOCOL);
	assert_string_equal(why, "kid context names another group");
	g2 = group;
	g2.master_secret[0] ^= 1; /* same group and epoch, another key */
	assert_int_equal(receive(v, &g2, E2E_ALG_CHACHA20_POLY1305, BYTES("x"), &pt, &why),
			 MOAT_E_CRYPTO);
	assert_int_equal(buf_used(&pt), 0);
	buf_fini(&env);
	buf_fini(&pt);
}

/* An Encrypt0 with protected header <prot>, unprotected <unprot> pairs of
 * {5: h'00'} and a zero ciphertext: enough to reach the header checks. */
static int decode_crafted(const struct buf *prot, size_t unprot, const char **why)
{
	struct buf env = {0};
	struct cose_encrypt0 e;
	uint8_t ct[E2E_TAG_LEN] = {0};
	int rc;

	cbor_put_tag(&env, COSE_TAG_ENCRYPT0);
	cbor_put_array(&env, 3);
	cbor_put_bstr(&env, buf_head(prot), buf_used(prot));
	cbor_put_map(&env, unprot);
	if (unprot > 0) {
		cbor_put_uint(&env, 5);
		cbor_put_bstr(&env, "\x00", 1);
	}
	cbor_put_bstr(&env, ct, sizeof(ct));
	rc = cose_encrypt0_decode((struct moat_bytes){buf_head(&env), buf_used(&env)}, &e, why);
	buf_fini(&env);
	return rc;
}

/* {1: 24, 4: h'01', 6: <piv>, 10: 12 zero bytes (, <extra_label>: 0)} */
static void crafted_protected(struct buf *b, const char *piv, size_t piv_len, int extra_label)
{
	static const uint8_t kc[12] = {0};

	b->len = b->off = 0;
	cbor_put_map(b, extra_label != 0 ? 5 : 4);
	cbor_put_uint(b, 1);
	cbor_put_int(b, 24);
	cbor_put_uint(b, 4);
	cbor_put_bstr(b, "\x01", 1);
	cbor_put_uint(b, 6);
	cbor_put_bstr(b, piv, piv_len);
	cbor_put_uint(b, 10);
	cbor_put_bstr(b, kc, sizeof(kc));
	if (extra_label != 0) {
		cbor_put_int(b, extra_label);
		cbor_put_uint(b, 0);
	}
}

static void header_checks(void **state)
{
	struct buf prot = {0};
	const char *why = NULL;

	(void)state;
	crafted_protected(&prot, "\x01", 1, 0);
	assert_int_equal(decode_crafted(&prot, 0, &why), MOAT_OK);
	assert_int_equal(decode_crafted(&prot, 1, &why), MOAT_E_PROTOCOL);
	assert_string_equal(why, "unprotected header is not empty");
	crafted_protected(&prot, "\x01", 1, 5); /* IV: random nonces are not offered */
	assert_int_equal(decode_crafted(&prot, 0, &why), MOAT_E_PROTOCOL);
	assert_string_equal(why, "unknown protected header label");
	crafted_protected(&prot, "\x01", 1, 2); /* crit */
	assert_int_equal(decode_crafted(&prot, 0, &why), MOAT_E_PROTOCOL);
	crafted_protected(&prot, "\x01", 1, -1);
	assert_int_equal(decode_crafted(&prot, 0, &why), MOAT_E_PROTOCOL);
	crafted_protected(&prot, "\x00\x01", 2, 0); /* non-minimal partial IV */
	assert_int_equal(decode_crafted(&prot, 0, &why), MOAT_E_MALFORMED);
	assert_string_equal(why, "partial IV has a leading zero byte");
	crafted_protected(&prot, "\x01\x02\x03\x04\x05\x06", 6, 0);
	assert_int_equal(decode_crafted(&prot, 0, &why), MOAT_E_MALFORMED);
	crafted_protected(&prot, "", 0, 0);
	assert_int_equal(decode_crafted(&prot, 0, &why), MOAT_E_MALFORMED);
	/* a header without the partial IV */
	prot.len = prot.off = 0;
	cbor_put_map(&prot, 1);
	cbor_put_uint(&prot, 1);
	cbor_put_int(&prot, 24);
	assert_int_equal(decode_crafted(&prot, 0, &why), MOAT_E_MALFORMED);
	/* a text label */
	prot.len = prot.off = 0;
	cbor_put_map(&prot, 1);
	cbor_put_tstr(&prot, "alg", 3);
	cbor_put_int(&prot, 24);
	assert_int_equal(decode_crafted(&prot, 0, &why), MOAT_E_PROTOCOL);
	buf_fini(&prot);
}

static void nonces_unique_across_senders(void **state)
{
	static const struct moat_bytes ids[] = {
	    {(const uint8_t *)"\x00", 1},	  {(const uint8_t *)"\x01", 1},
	    {(const uint8_t *)"\x00\x01", 2},	  {(const uint8_t *)"\x01\x00", 2},
	    {(const uint8_t *)"\x00\x00\x01", 3}, {(const uint8_t *)"\xff\xff\xff\xff\xff\xff", 6},
	};
	enum { NIDS = sizeof(ids) / sizeof(ids[0]), NSEQ = 64 };
	static uint8_t nonces[NIDS * NSEQ][12];
	uint8_t kc[12] = {0};
	struct e2e_keys k[NIDS];

	(void)state;
	for (size_t i = 0; i < NIDS; i++) {
		assert_int_equal(e2e_derive_keys(group.master_secret, kc, ids[i],
						 E2E_ALG_CHACHA20_POLY1305, &k[i]),
				 MOAT_OK);
		for (size_t s = 0; s < NSEQ; s++)
			e2e_nonce(k[0].common_iv, ids[i], s * 257, nonces[i * NSEQ + s]);
	}
	for (size_t i = 0; i < NIDS * NSEQ; i++)
		for (size_t j = i + 1; j < NIDS * NSEQ; j++)
			assert_memory_not_equal(nonces[i], nonces[j], 12);
	for (size_t i = 1; i < NIDS; i++) {
		assert_memory_equal(k[i].common_iv, k[0].common_iv, 12);
		assert_memory_not_equal(k[i].sender_key, k[0].sender_key, 32);
	}
	/* the algorithm is bound into the keys */
	assert_int_equal(e2e_derive_keys(group.master_secret, kc, ids[0], E2E_ALG_A256GCM, &k[1]),
			 MOAT_OK);
	assert_memory_not_equal(k[1].sender_key, k[0].sender_key, 32);
	assert_int_equal(e2e_derive_keys(group.master_secret, kc, (struct moat_bytes){0},
					 E2E_ALG_A256GCM, &k[1]),
			 MOAT_E_INVAL);
}

/* Expected values computed with python3-cryptography's HKDF and python3-cbor2 (crosscheck.py's
 * derivation) for the test group, sender 0x2a, ChaCha20/Poly1305, seq 300. */
static void derivation_known_answer(void **state)
{
	static const uint8_t key[32] = {0x6a, 0x87, 0x8a, 0xad, 0x5d, 0x06, 0xd2, 0x6d,
					0x19, 0x00, 0xee, 0x3b, 0xc2, 0x45, 0x6b, 0x98,
					0xd7, 0x7f, 0x5b, 0x68, 0x23, 0xba, 0x08, 0xb9,
					0x24, 0xa8, 0x58, 0xb8, 0xcb, 0x52, 0xfc, 0xd1};
	static const uint8_t iv[12] = {0xe8, 0x4e, 0x64, 0xb0, 0x06, 0xc6,
				       0x84, 0x11, 0x93, 0xd8, 0x0e, 0x24};
	static const uint8_t nonce[12] = {0xe9, 0x4e, 0x64, 0xb0, 0x06, 0xc6,
					  0xae, 0x11, 0x93, 0xd8, 0x0f, 0x08};
	uint8_t kc[12] = {'g', 'r', 'o', 'u', 'p', '-', '0', '1', 0, 0, 0, 7}, n[12];
	struct e2e_keys k;

	(void)state;
	assert_int_equal(
	    e2e_derive_keys(group.master_secret, kc, BYTES("\x2a"), E2E_ALG_CHACHA20_POLY1305, &k),
	    MOAT_OK);
	assert_memory_equal(k.sender_key, key, 32);
	assert_memory_equal(k.common_iv, iv, 12);
	e2e_nonce(k.common_iv, BYTES("\x2a"), 300, n);
	assert_memory_equal(n, nonce, 12);
}

static void ed25519_public(const uint8_t seed[32], uint8_t pub[32])
{
	EVP_PKEY *pk = EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, NULL, seed, 32);
	size_t len = 32;

	assert_non_null(pk);
	assert_int_equal(EVP_PKEY_get_raw_public_key(pk, pub, &len), 1);
	EVP_PKEY_free(pk);
}

static void sign1_over_encrypt0(void **state)
{
	static const uint8_t seed[32] = {9, 8, 7, 6, 5, 4, 3, 2, 1};
	uint8_t pub[32], other[32];
	struct cose_seal_params p = params(E2E_ALG_CHACHA20_POLY1305, 11);
	struct buf inner = {0}, env = {0}, pt = {0};
	struct cose_sign1 s;
	struct moat_bytes v;
	const char *why = NULL;

	(void)state;
	ed25519_public(seed, pub);
	memcpy(other, pub, 32);
	other[0] ^= 0x40;
	assert_int_equal(
	    cose_encrypt0_seal(&group, &p, BYTES("alerts/d1/tamper"), BYTES("!"), &inner), MOAT_OK);
	assert_int_equal(cose_sign1_sign(seed, BYTES("device-1"), BYTES("alerts/d1/tamper"),
					 (struct moat_bytes){buf_head(&inner), buf_used(&inner)},
					 &env),
			 MOAT_OK);
	v = (struct moat_bytes){buf_head(&env), buf_used(&env)};
	assert_int_equal(cose_sign1_decode(v, &s, &why), MOAT_OK);
	assert_true(moat_bytes_eq(s.kid, BYTES("device-1")));
	assert_int_equal(cose_sign1_verify(&s, pub, BYTES("alerts/d1/tamper"), &why), MOAT_OK);
	assert_int_equal(receive(s.payload, &group, E2E_ALG_CHACHA20_POLY1305,
				 BYTES("alerts/d1/tamper"), &pt, &why),
			 MOAT_OK);
	assert_int_equal(cose_sign1_verify(&s, pub, BYTES("alerts/d2/tamper"), &why),
			 MOAT_E_CRYPTO);
	assert_int_equal(cose_sign1_verify(&s, other, BYTES("alerts/d1/tamper"), &why) < 0, 1);
	for (size_t i = 0; i < buf_used(&env); i++) {
		int rc;

		buf_head(&env)[i] ^= 0x01;
		rc = cose_sign1_decode(v, &s, &why);
		if (rc == MOAT_OK)
			rc = cose_sign1_verify(&s, pub, BYTES("alerts/d1/tamper"), &why);
		buf_head(&env)[i] ^= 0x01;
		assert_true(rc < 0);
	}
	/* an Encrypt0 is not a Sign1 */
	assert_int_equal(
	    cose_sign1_decode((struct moat_bytes){buf_head(&inner), buf_used(&inner)}, &s, &why),
	    MOAT_E_MALFORMED);
	buf_fini(&inner);
	buf_fini(&env);
	buf_fini(&pt);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(rfc8439_aead_vector),
	    cmocka_unit_test(gcm_aead_vector),
	    cmocka_unit_test(seal_open_round_trip),
	    cmocka_unit_test(seal_refuses_bad_arguments),
	    cmocka_unit_test(every_byte_flipped_rejected),
	    cmocka_unit_test(topic_swapped_rejected),
	    cmocka_unit_test(replayed_seq_rejected),
	    cmocka_unit_test(wrong_alg_epoch_group_rejected),
	    cmocka_unit_test(header_checks),
	    cmocka_unit_test(nonces_unique_across_senders),
	    cmocka_unit_test(derivation_known_answer),
	    cmocka_unit_test(sign1_over_encrypt0),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
