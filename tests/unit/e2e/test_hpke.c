/* HPKE base mode (src/e2e/hpke.c): every value of RFC 9180 Appendix A.1 and
 * A.2 (key derivation, encap/decap, key schedule, the encryptions at
 * sequence numbers 0-256, exports), round trips, and every way an open must
 * fail with the one error MOAT_E_CRYPTO. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include <moat/error.h>

#include "e2e/hpke.h"
#include "hpke_vectors.h"

#define NVEC (sizeof(hpke_vectors) / sizeof(hpke_vectors[0]))

static const enum hpke_aead aeads[] = {HPKE_AES_128_GCM, HPKE_CHACHA20_POLY1305};

/* Decodes the hex string <hex> into <out> (room for <cap> bytes); returns the byte count. */
static size_t unhex(const char *hex, uint8_t *out, size_t cap)
{
	size_t n = strlen(hex) / 2;

	assert_int_equal(strlen(hex) % 2, 0);
	assert_true(n <= cap);
	for (size_t i = 0; i < n; i++) {
		unsigned v;

		assert_int_equal(sscanf(hex + 2 * i, "%2x", &v), 1);
		out[i] = (uint8_t)v;
	}
	return n;
}

static void assert_hex_equal(const uint8_t *got, size_t len, const char *want_hex)
{
	uint8_t want[512];

	assert_int_equal(unhex(want_hex, want, sizeof(want)), len);
	assert_memory_equal(got, want, len);
}

static void assert_all_zero(const uint8_t *p, size_t len)
{
	for (size_t i = 0; i < len; i++)
		assert_int_equal(p[i], 0);
}

static void rfc9180_derive_keypair(void **state)
{
	(void)state;
	for (size_t v = 0; v < NVEC; v++) {
		const struct hpke_vec *t = &hpke_vectors[v];
		uint8_t ikm[32], sk[32], pk[32];

		unhex(t->ikm_e, ikm, sizeof(ikm));
		assert_int_equal(hpke_derive_keypair(ikm, sizeof(ikm), sk, pk), MOAT_OK);
		assert_hex_equal(sk, 32, t->sk_em);
		assert_hex_equal(pk, 32, t->pk_em);
		unhex(t->ikm_r, ikm, sizeof(ikm));
		assert_int_equal(hpke_derive_keypair(ikm, sizeof(ikm), sk, pk), MOAT_OK);
		assert_hex_equal(sk, 32, t->sk_rm);
		assert_hex_equal(pk, 32, t->pk_rm);
	}
}

static void rfc9180_encap_decap(void **state)
{
	(void)state;
	for (size_t v = 0; v < NVEC; v++) {
		const struct hpke_vec *t = &hpke_vectors[v];
		uint8_t ikm_e[32], pk_r[32], sk_r[32], enc[32], ss[32];

		unhex(t->ikm_e, ikm_e, sizeof(ikm_e));
		unhex(t->pk_rm, pk_r, sizeof(pk_r));
		unhex(t->sk_rm, sk_r, sizeof(sk_r));
		assert_int_equal(hpke_encap(pk_r, ikm_e, enc, ss), MOAT_OK);
		assert_hex_equal(enc, 32, t->enc);
		assert_hex_equal(ss, 32, t->shared_secret);
		memset(ss, 0, sizeof(ss));
		assert_int_equal(hpke_decap(enc, sk_r, ss), MOAT_OK);
		assert_hex_equal(ss, 32, t->shared_secret);
	}
}

static void rfc9180_key_schedule(void **state)
{
	(void)state;
	for (size_t v = 0; v < NVEC; v++) {
		const struct hpke_vec *t = &hpke_vectors[v];
		uint8_t info[64], ikm_e[32], pk_r[32], sk_r[32], enc[32], ss[32];
		uint8_t suite[10], ks_context[65], secret[32];
		size_t info_len = unhex(t->info, info, sizeof(info));
		struct hpke_ctx s, r;

		unhex(t->ikm_e, ikm_e, sizeof(ikm_e));
		unhex(t->pk_rm, pk_r, sizeof(pk_r));
		unhex(t->sk_rm, sk_r, sizeof(sk_r));
		unhex(t->shared_secret, ss, sizeof(ss));
		/* §5.1 step by step: key_schedule_context and secret */
		hpke_suite_id(t->aead, suite);
		ks_context[0] = 0;
		assert_int_equal(hpke_labeled_extract(suite, sizeof(suite), NULL, 0, "psk_id_hash",
						      NULL, 0, ks_context + 1),
				 MOAT_OK);
		assert_int_equal(hpke_labeled_extract(suite, sizeof(suite), NULL, 0, "info_hash",
						      info, info_len, ks_context + 33),
				 MOAT_OK);
		assert_hex_equal(ks_context, sizeof(ks_context), t->key_schedule_context);
		assert_int_equal(hpke_labeled_extract(suite, sizeof(suite), ss, sizeof(ss),
						      "secret", NULL, 0, secret),
				 MOAT_OK);
		assert_hex_equal(secret, sizeof(secret), t->secret);

		/* the same through the context set-up, on both sides */
		assert_int_equal(hpke_setup_sender(&s, t->aead, pk_r, info, info_len, ikm_e, enc),
				 MOAT_OK);
		assert_hex_equal(enc, 32, t->enc);
		assert_int_equal(hpke_setup_recipient(&r, t->aead, sk_r, enc, info, info_len),
				 MOAT_OK);
		assert_int_equal(s.key_len, strlen(t->key) / 2);
		assert_hex_equal(s.key, s.key_len, t->key);
		assert_hex_equal(s.base_nonce, sizeof(s.base_nonce), t->base_nonce);
		assert_hex_equal(s.exporter_secret, 32, t->exporter_secret);
		assert_int_equal(r.key_len, s.key_len);
		assert_memory_equal(r.key, s.key, s.key_len);
		assert_memory_equal(r.base_nonce, s.base_nonce, sizeof(s.base_nonce));
		assert_memory_equal(r.exporter_secret, s.exporter_secret, 32);
		hpke_ctx_fini(&s);
		hpke_ctx_fini(&r);
	}
}

/* Seals sequence numbers 0..256 as the RFC did (aad "Count-<seq>") and compares the listed ones. */
static void rfc9180_encryptions(void **state)
{
	(void)state;
	for (size_t v = 0; v < NVEC; v++) {
		const struct hpke_vec *t = &hpke_vectors[v];
		uint8_t info[64], ikm_e[32], pk_r[32], sk_r[32], enc[32];
		uint8_t pt[64], ct[80], back[64];
		size_t info_len = unhex(t->info, info, sizeof(info));
		size_t pt_len = unhex(t->encs[0].pt, pt, sizeof(pt));
		size_t listed = 0;
		struct hpke_ctx s, r;

		unhex(t->ikm_e, ikm_e, sizeof(ikm_e));
		unhex(t->pk_rm, pk_r, sizeof(pk_r));
		unhex(t->sk_rm, sk_r, sizeof(sk_r));
		assert_int_equal(hpke_setup_sender(&s, t->aead, pk_r, info, info_len, ikm_e, enc),
				 MOAT_OK);
		assert_int_equal(hpke_setup_recipient(&r, t->aead, sk_r, enc, info, info_len),
				 MOAT_OK);
		for (uint64_t seq = 0; seq <= 256; seq++) {
			char aad[16];
			int aad_len = snprintf(aad, sizeof(aad), "Count-%u", (unsigned)seq);

			assert_int_equal(s.seq, seq);
			assert_int_equal(hpke_ctx_seal(&s, (const uint8_t *)aad, (size_t)aad_len,
						       pt, pt_len, ct),
					 MOAT_OK);
			if (listed < 6 && t->encs[listed].seq == seq) {
				const struct hpke_vec_enc *e = &t->encs[listed++];
				uint8_t want_aad[16];

				assert_int_equal(unhex(e->aad, want_aad, sizeof(want_aad)),
						 aad_len);
				assert_memory_equal(want_aad, aad, (size_t)aad_len);
				assert_hex_equal(ct, pt_len + 16, e->ct);
			}
			memset(back, 0, sizeof(back));
			assert_int_equal(hpke_ctx_open(&r, (const uint8_t *)aad, (size_t)aad_len,
						       ct, pt_len + 16, back),
					 MOAT_OK);
			assert_memory_equal(back, pt, pt_len);
		}
		assert_int_equal(listed, 6);
		hpke_ctx_fini(&s);
		hpke_ctx_fini(&r);
	}
}

static void rfc9180_exports(void **state)
{
	(void)state;
	for (size_t v = 0; v < NVEC; v++) {
		const struct hpke_vec *t = &hpke_vectors[v];
		uint8_t info[64], ikm_e[32], pk_r[32], sk_r[32], enc[32], exp_ctx[32], out[32];
		size_t info_len = unhex(t->info, info, sizeof(info));
		struct hpke_ctx s, r;

		unhex(t->ikm_e, ikm_e, sizeof(ikm_e));
		unhex(t->pk_rm, pk_r, sizeof(pk_r));
		unhex(t->sk_rm, sk_r, sizeof(sk_r));
		assert_int_equal(hpke_setup_sender(&s, t->aead, pk_r, info, info_len, ikm_e, enc),
				 MOAT_OK);
		assert_int_equal(hpke_setup_recipient(&r, t->aead, sk_r, enc, info, info_len),
				 MOAT_OK);
		for (size_t i = 0; i < 3; i++) {
			const struct hpke_vec_exp *x = &t->exps[i];
			size_t n = unhex(x->context, exp_ctx, sizeof(exp_ctx));

			assert_int_equal(x->len, sizeof(out));
			assert_int_equal(hpke_export(&s, exp_ctx, n, out, x->len), MOAT_OK);
			assert_hex_equal(out, x->len, x->value);
			assert_int_equal(hpke_export(&r, exp_ctx, n, out, x->len), MOAT_OK);
			assert_hex_equal(out, x->len, x->value);
		}
		hpke_ctx_fini(&s);
		hpke_ctx_fini(&r);
	}
}

/* Single-shot Seal with the vector's ephemeral key gives the seq-0 encryption; Open reverses it. */
static void rfc9180_single_shot(void **state)
{
	(void)state;
	for (size_t v = 0; v < NVEC; v++) {
		const struct hpke_vec *t = &hpke_vectors[v];
		uint8_t info[64], ikm_e[32], pk_r[32], sk_r[32], enc[32];
		uint8_t pt[64], aad[16], ct[80], back[64];
		size_t info_len = unhex(t->info, info, sizeof(info));
		size_t pt_len = unhex(t->encs[0].pt, pt, sizeof(pt));
		size_t aad_len = unhex(t->encs[0].aad, aad, sizeof(aad));

		unhex(t->ikm_e, ikm_e, sizeof(ikm_e));
		unhex(t->pk_rm, pk_r, sizeof(pk_r));
		unhex(t->sk_rm, sk_r, sizeof(sk_r));
		assert_int_equal(hpke_seal(t->aead, pk_r, info, info_len, aad, aad_len, pt, pt_len,
					   ikm_e, enc, ct),
				 MOAT_OK);
		assert_hex_equal(enc, 32, t->enc);
		assert_hex_equal(ct, pt_len + 16, t->encs[0].ct);
		assert_int_equal(hpke_open(t->aead, sk_r, enc, info, info_len, aad, aad_len, ct,
					   pt_len + 16, back),
				 MOAT_OK);
		assert_memory_equal(back, pt, pt_len);
	}
}

static void round_trip_random_keys(void **state)
{
	static const size_t sizes[] = {0, 1, 32, 1000};
	static const uint8_t info[] = "moat key release";
	static const uint8_t aad[32] = {0x42};
	uint8_t sk[32], pk[32], sk2[32], pk2[32], enc[32], enc2[32];
	uint8_t pt[1000], ct[1016], ct2[1016], back[1000];

	(void)state;
	for (size_t i = 0; i < sizeof(pt); i++)
		pt[i] = (uint8_t)(i * 7);
	assert_int_equal(hpke_keygen(sk, pk), MOAT_OK);
	assert_int_equal(hpke_keygen(sk2, pk2), MOAT_OK);
	assert_memory_not_equal(sk, sk2, 32);
	assert_memory_not_equal(pk, pk2, 32);
	for (size_t a = 0; a < 2; a++) {
		for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
			size_t n = sizes[i];

			assert_int_equal(hpke_seal(aeads[a], pk, info, sizeof(info) - 1, aad,
						   sizeof(aad), n ? pt : NULL, n, NULL, enc, ct),
					 MOAT_OK);
			memset(back, 0, sizeof(back));
			assert_int_equal(hpke_open(aeads[a], sk, enc, info, sizeof(info) - 1, aad,
						   sizeof(aad), ct, n + 16, n ? back : NULL),
					 MOAT_OK);
			assert_memory_equal(back, pt, n);
			/* a fresh ephemeral key each time: same inputs, different output */
			assert_int_equal(hpke_seal(aeads[a], pk, info, sizeof(info) - 1, aad,
						   sizeof(aad), n ? pt : NULL, n, NULL, enc2, ct2),
					 MOAT_OK);
			assert_memory_not_equal(enc, enc2, 32);
			assert_memory_not_equal(ct, ct2, n + 16);
		}
		/* NULL info and aad are the empty strings */
		assert_int_equal(hpke_seal(aeads[a], pk, NULL, 0, NULL, 0, pt, 32, NULL, enc, ct),
				 MOAT_OK);
		assert_int_equal(hpke_open(aeads[a], sk, enc, (const uint8_t *)"", 0,
					   (const uint8_t *)"", 0, ct, 48, back),
				 MOAT_OK);
		assert_memory_equal(back, pt, 32);
	}
}

/* Opens <ct> expecting MOAT_E_CRYPTO, and no decrypted byte left in the output: each byte is
 * either untouched (0xaa) or wiped (0). */
static void expect_open_fails(enum hpke_aead aead, const uint8_t *sk, const uint8_t *enc,
			      const uint8_t *info, size_t info_len, const uint8_t *aad,
			      size_t aad_len, const uint8_t *ct, size_t ct_len)
{
	uint8_t back[64];

	memset(back, 0xaa, sizeof(back));
	assert_int_equal(hpke_open(aead, sk, enc, info, info_len, aad, aad_len, ct, ct_len, back),
			 MOAT_E_CRYPTO);
	for (size_t i = 0; i < sizeof(back); i++)
		assert_true(back[i] == 0 || back[i] == 0xaa);
}

static void open_rejects_every_change(void **state)
{
	static const uint8_t info[] = "moat key release|dev-1|group-7|epoch-3";
	static const uint8_t aad[32] = {1, 2, 3};
	uint8_t sk[32], pk[32], sk2[32], pk2[32], enc[32], bad_enc[32], bad_ct[48];
	uint8_t ms[32], ct[48], bad_info[sizeof(info)], bad_aad[sizeof(aad)];
	const size_t info_len = sizeof(info) - 1;

	(void)state;
	memset(ms, 0x5a, sizeof(ms));
	assert_int_equal(hpke_keygen(sk, pk), MOAT_OK);
	assert_int_equal(hpke_keygen(sk2, pk2), MOAT_OK);
	for (size_t a = 0; a < 2; a++) {
		enum hpke_aead other = aeads[1 - a];

		assert_int_equal(hpke_seal(aeads[a], pk, info, info_len, aad, sizeof(aad), ms,
					   sizeof(ms), NULL, enc, ct),
				 MOAT_OK);
		/* wrong key, wrong AEAD */
		expect_open_fails(aeads[a], sk2, enc, info, info_len, aad, sizeof(aad), ct, 48);
		expect_open_fails(other, sk, enc, info, info_len, aad, sizeof(aad), ct, 48);
		/* wrong info: changed byte, shorter, empty */
		memcpy(bad_info, info, sizeof(info));
		bad_info[5] ^= 1;
		expect_open_fails(aeads[a], sk, enc, bad_info, info_len, aad, sizeof(aad), ct, 48);
		expect_open_fails(aeads[a], sk, enc, info, info_len - 1, aad, sizeof(aad), ct, 48);
		expect_open_fails(aeads[a], sk, enc, NULL, 0, aad, sizeof(aad), ct, 48);
		/* wrong aad */
		memcpy(bad_aad, aad, sizeof(aad));
		bad_aad[31] ^= 0x80;
		expect_open_fails(aeads[a], sk, enc, info, info_len, bad_aad, sizeof(aad), ct, 48);
		expect_open_fails(aeads[a], sk, enc, info, info_len, aad, sizeof(aad) - 1, ct, 48);
		expect_open_fails(aeads[a], sk, enc, info, info_len, NULL, 0, ct, 48);
		/* one bit of every enc and ct byte; even the top bit of enc, which X25519
		 * ignores (RFC 7748 §5), changes kem_context and so the shared secret */
		for (size_t i = 0; i < 32; i++) {
			memcpy(bad_enc, enc, 32);
			bad_enc[i] ^= (uint8_t)(1u << (i % 8));
			expect_open_fails(aeads[a], sk, bad_enc, info, info_len, aad, sizeof(aad),
					  ct, 48);
		}
		for (size_t i = 0; i < sizeof(ct); i++) {
			memcpy(bad_ct, ct, sizeof(ct));
			bad_ct[i] ^= (uint8_t)(1u << (i % 8));
			expect_open_fails(aeads[a], sk, enc, info, info_len, aad, sizeof(aad),
					  bad_ct, 48);
		}
		/* truncated: tag cut, one byte short, shorter than a tag, empty */
		expect_open_fails(aeads[a], sk, enc, info, info_len, aad, sizeof(aad), ct, 47);
		expect_open_fails(aeads[a], sk, enc, info, info_len, aad, sizeof(aad), ct, 16);
		expect_open_fails(aeads[a], sk, enc, info, info_len, aad, sizeof(aad), ct, 15);
		expect_open_fails(aeads[a], sk, enc, info, info_len, aad, sizeof(aad), ct, 0);
	}
}

/* Low-order X25519 points (u = 0, 1, an order-8 point, p - 1, p): the DH output is
 * all zero and must be refused on both sides (RFC 9180 §7.1.4). */
static void low_order_points_refused(void **state)
{
	static const char *const points[] = {
	    "0000000000000000000000000000000000000000000000000000000000000000",
	    "0100000000000000000000000000000000000000000000000000000000000000",
	    "e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800",
	    "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
	    "edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
	};
	uint8_t sk[32], pk[32], bad[32], enc[32], ss[32], ct[48], ms[32] = {7};

	(void)state;
	assert_int_equal(hpke_keygen(sk, pk), MOAT_OK);
	for (size_t i = 0; i < sizeof(points) / sizeof(points[0]); i++) {
		unhex(points[i], bad, sizeof(bad));
		memset(ss, 0xff, sizeof(ss));
		assert_int_equal(hpke_encap(bad, NULL, enc, ss), MOAT_E_CRYPTO);
		assert_all_zero(ss, sizeof(ss));
		assert_int_equal(hpke_decap(bad, sk, ss), MOAT_E_CRYPTO);
		assert_int_equal(
		    hpke_seal(HPKE_CHACHA20_POLY1305, bad, NULL, 0, NULL, 0, ms, 32, NULL, enc, ct),
		    MOAT_E_CRYPTO);
		memset(ct, 0, sizeof(ct));
		expect_open_fails(HPKE_CHACHA20_POLY1305, sk, bad, NULL, 0, NULL, 0, ct, 48);
	}
}

static void context_sequence_limits(void **state)
{
	uint8_t sk[32], pk[32], enc[32], ct[32], back[16], pt[16] = {9};
	struct hpke_ctx s, r;

	(void)state;
	assert_int_equal(hpke_keygen(sk, pk), MOAT_OK);
	assert_int_equal(hpke_setup_sender(&s, HPKE_CHACHA20_POLY1305, pk, NULL, 0, NULL, enc),
			 MOAT_OK);
	assert_int_equal(hpke_setup_recipient(&r, HPKE_CHACHA20_POLY1305, sk, enc, NULL, 0),
			 MOAT_OK);
	assert_int_equal(s.role, HPKE_SENDER);
	assert_int_equal(r.role, HPKE_RECIPIENT);
	/* a context opens or seals, not both */
	assert_int_equal(hpke_ctx_open(&s, NULL, 0, ct, sizeof(ct), back), MOAT_E_INVAL);
	assert_int_equal(hpke_ctx_seal(&r, NULL, 0, pt, sizeof(pt), ct), MOAT_E_INVAL);

	/* a failed open does not advance the sequence: the next good message still opens */
	assert_int_equal(hpke_ctx_seal(&s, NULL, 0, pt, sizeof(pt), ct), MOAT_OK);
	ct[0] ^= 1;
	assert_int_equal(hpke_ctx_open(&r, NULL, 0, ct, sizeof(ct), back), MOAT_E_CRYPTO);
	assert_int_equal(r.seq, 0);
	ct[0] ^= 1;
	assert_int_equal(hpke_ctx_open(&r, NULL, 0, ct, sizeof(ct), back), MOAT_OK);
	assert_memory_equal(back, pt, sizeof(pt));
	/* a replayed message has the wrong nonce now */
	assert_int_equal(hpke_ctx_open(&r, NULL, 0, ct, sizeof(ct), back), MOAT_E_CRYPTO);

	/* the last sequence number works, then the context is exhausted on both sides */
	s.seq = UINT64_MAX - 1;
	r.seq = UINT64_MAX - 1;
	assert_int_equal(hpke_ctx_seal(&s, NULL, 0, pt, sizeof(pt), ct), MOAT_OK);
	assert_int_equal(hpke_ctx_open(&r, NULL, 0, ct, sizeof(ct), back), MOAT_OK);
	assert_int_equal(hpke_ctx_seal(&s, NULL, 0, pt, sizeof(pt), ct), MOAT_E_LIMIT);
	assert_int_equal(hpke_ctx_open(&r, NULL, 0, ct, sizeof(ct), back), MOAT_E_LIMIT);
	assert_true(s.seq == UINT64_MAX);

	hpke_ctx_fini(&s);
	hpke_ctx_fini(&r);
	assert_all_zero((const uint8_t *)&s, sizeof(s));
	assert_all_zero((const uint8_t *)&r, sizeof(r));
	/* a wiped context is neither sender nor recipient */
	assert_int_equal(hpke_ctx_seal(&s, NULL, 0, pt, sizeof(pt), ct), MOAT_E_INVAL);
	assert_int_equal(hpke_export(&s, NULL, 0, back, sizeof(back)), MOAT_E_INVAL);
	hpke_ctx_fini(NULL);
}

static void invalid_arguments(void **state)
{
	uint8_t sk[32], pk[32], enc[32], ct[64], out[32], ikm[32] = {1};
	uint8_t suite[10];
	struct hpke_ctx ctx;

	(void)state;
	assert_int_equal(hpke_keygen(sk, pk), MOAT_OK);
	assert_int_equal(hpke_keygen(NULL, pk), MOAT_E_INVAL);
	assert_int_equal(hpke_derive_keypair(ikm, 31, sk, pk), MOAT_E_INVAL);
	assert_int_equal(hpke_derive_keypair(NULL, 32, sk, pk), MOAT_E_INVAL);
	/* AEAD 0x0002 (AES-256-GCM) and the export-only 0xFFFF are not offered */
	assert_int_equal(
	    hpke_seal((enum hpke_aead)0x0002, pk, NULL, 0, NULL, 0, ikm, 32, NULL, enc, ct),
	    MOAT_E_INVAL);
	assert_int_equal(hpke_open((enum hpke_aead)0xffff, sk, enc, NULL, 0, NULL, 0, ct, 48, out),
			 MOAT_E_INVAL);
	assert_int_equal(hpke_setup_sender(&ctx, (enum hpke_aead)0, pk, NULL, 0, NULL, enc),
			 MOAT_E_INVAL);
	/* missing buffers */
	assert_int_equal(
	    hpke_seal(HPKE_CHACHA20_POLY1305, NULL, NULL, 0, NULL, 0, ikm, 32, NULL, enc, ct),
	    MOAT_E_INVAL);
	assert_int_equal(
	    hpke_seal(HPKE_CHACHA20_POLY1305, pk, NULL, 0, NULL, 0, NULL, 32, NULL, enc, ct),
	    MOAT_E_INVAL);
	assert_int_equal(
	    hpke_seal(HPKE_CHACHA20_POLY1305, pk, NULL, 5, NULL, 0, ikm, 32, NULL, enc, ct),
	    MOAT_E_INVAL);
	assert_int_equal(
	    hpke_seal(HPKE_CHACHA20_POLY1305, pk, NULL, 0, NULL, 0, ikm, 32, NULL, enc, NULL),
	    MOAT_E_INVAL);
	assert_int_equal(hpke_open(HPKE_CHACHA20_POLY1305, sk, enc, NULL, 0, NULL, 0, ct, 48, NULL),
			 MOAT_E_INVAL);
	assert_int_equal(hpke_open(HPKE_CHACHA20_POLY1305, sk, NULL, NULL, 0, NULL, 0, ct, 48, out),
			 MOAT_E_INVAL);
	/* over the length cap */
	assert_int_equal(hpke_seal(HPKE_CHACHA20_POLY1305, pk, NULL, 0, NULL, 0, ikm,
				   HPKE_MAX_INPUT_LEN + 1, NULL, enc, ct),
			 MOAT_E_INVAL);
	assert_int_equal(hpke_open(HPKE_CHACHA20_POLY1305, sk, enc, NULL, 0, NULL, 0, ct,
				   HPKE_MAX_INPUT_LEN + 17, out),
			 MOAT_E_INVAL);
	/* HKDF-Expand produces 1 to 255 * 32 bytes */
	hpke_suite_id(HPKE_CHACHA20_POLY1305, suite);
	assert_memory_equal(suite, "HPKE\x00\x20\x00\x01\x00\x03", sizeof(suite));
	assert_int_equal(hpke_labeled_expand(suite, sizeof(suite), ikm, "x", NULL, 0, out, 0),
			 MOAT_E_INVAL);
	assert_int_equal(
	    hpke_labeled_expand(suite, sizeof(suite), ikm, "x", NULL, 0, out, 255 * 32 + 1),
	    MOAT_E_INVAL);
	assert_int_equal(hpke_labeled_extract(suite, sizeof(suite), NULL, 0, NULL, NULL, 0, out),
			 MOAT_E_INVAL);
}

/* A long expansion runs the HKDF counter past one block; its prefix is the short one. */
static void labeled_expand_blocks(void **state)
{
	static uint8_t big[255 * 32];
	uint8_t suite[10], prk[32] = {3}, small[40];

	(void)state;
	hpke_suite_id(HPKE_AES_128_GCM, suite);
	assert_int_equal(
	    hpke_labeled_expand(suite, sizeof(suite), prk, "exp", NULL, 0, big, sizeof(big)),
	    MOAT_OK);
	assert_int_equal(
	    hpke_labeled_expand(suite, sizeof(suite), prk, "exp", NULL, 0, small, sizeof(small)),
	    MOAT_OK);
	/* L is part of labeled_info, so different lengths give unrelated output */
	assert_memory_not_equal(big, small, sizeof(small));
	assert_memory_not_equal(big, big + 32, 32);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(rfc9180_derive_keypair),	cmocka_unit_test(rfc9180_encap_decap),
	    cmocka_unit_test(rfc9180_key_schedule),	cmocka_unit_test(rfc9180_encryptions),
	    cmocka_unit_test(rfc9180_exports),		cmocka_unit_test(rfc9180_single_shot),
	    cmocka_unit_test(round_trip_random_keys),	cmocka_unit_test(open_rejects_every_change),
	    cmocka_unit_test(low_order_points_refused), cmocka_unit_test(context_sequence_limits),
	    cmocka_unit_test(invalid_arguments),	cmocka_unit_test(labeled_expand_blocks),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
