/*
 * libFuzzer target for the COSE envelope decoders and checks
 * (src/e2e/cose.c) with a fixed group key and a fixed Ed25519 signer. Any
 * input is tried as a COSE_Sign1 (verified, then its payload opened) and as
 * a COSE_Encrypt0. Checks: nothing crashes, every refusal has a reason, and
 * whatever is accepted is byte for byte what the key holder produces from
 * the decoded header and plaintext (Ed25519 and our encoder are
 * deterministic), so a forged tag or signature is never accepted.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include <moat/error.h>

#include "e2e/alg.h"
#include "e2e/cose.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define TOPIC ((struct moat_bytes){(const uint8_t *)"fuzz/topic", 10})

/* The same key material as make_e2e_seeds.py. */
static const struct cose_group group = {
    .group_id = {'f', 'u', 'z', 'z', 'g', 'r', 'p', '1'},
    .epoch = 1,
    .master_secret = {0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0a,
		      0x0b, 0x0c, 0x0d, 0x0e, 0x0f, 0x10, 0x11, 0x12, 0x13, 0x14, 0x15,
		      0x16, 0x17, 0x18, 0x19, 0x1a, 0x1b, 0x1c, 0x1d, 0x1e, 0x1f},
};
static const uint8_t seed[32] = {0x42, 0x42, 0x42, 0x42, 0x42, 0x42, 0x42, 0x42, 0x42, 0x42, 0x42,
				 0x42, 0x42, 0x42, 0x42, 0x42, 0x42, 0x42, 0x42, 0x42, 0x42, 0x42,
				 0x42, 0x42, 0x42, 0x42, 0x42, 0x42, 0x42, 0x42, 0x42, 0x42};

static void same_or_abort(const struct buf *b, struct moat_bytes in)
{
	if (buf_used(b) != in.len || memcmp(buf_head(b), in.ptr, in.len) != 0)
		abort(); /* accepted something the key holder did not produce */
}

static void try_encrypt0(struct moat_bytes in)
{
	struct cose_encrypt0 e;
	struct buf pt = {0}, again = {0};
	const char *why = NULL;
	int alg;

	if (cose_encrypt0_decode(in, &e, &why) != MOAT_OK) {
		if (why == NULL)
			abort();
		return;
	}
	alg = e2e_alg_is_valid(e.alg) ? e.alg : E2E_ALG_CHACHA20_POLY1305;
	why = NULL;
	if (cose_encrypt0_open(&e, &group, alg, TOPIC, &pt, &why) == MOAT_OK) {
		struct cose_seal_params p = {.alg = alg,
					     .sender_id = e.sender_id,
					     .seq = e.seq,
					     .has_iat = e.has_iat,
					     .iat = e.iat};

		if (cose_encrypt0_seal(&group, &p, TOPIC,
				       (struct moat_bytes){buf_head(&pt), buf_used(&pt)},
				       &again) != MOAT_OK)
			abort();
		same_or_abort(&again, in);
	} else if (why == NULL) {
		abort();
	}
	buf_fini(&pt);
	buf_fini(&again);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static uint8_t pub[32];
	static int have_pub;
	struct moat_bytes in = {data, size};
	struct cose_sign1 s;
	const char *why = NULL;

	if (!have_pub) {
		EVP_PKEY *pk = EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, NULL, seed, 32);
		size_t len = sizeof(pub);

		if (pk == NULL || EVP_PKEY_get_raw_public_key(pk, pub, &len) != 1)
			abort();
		EVP_PKEY_free(pk);
		have_pub = 1;
	}
	if (cose_sign1_decode(in, &s, &why) == MOAT_OK &&
	    cose_sign1_verify(&s, pub, TOPIC, &why) == MOAT_OK) {
		struct buf again = {0};

		if (cose_sign1_sign(seed, s.kid, TOPIC, s.payload, &again) != MOAT_OK)
			abort();
		same_or_abort(&again, in);
		buf_fini(&again);
		try_encrypt0(s.payload);
	}
	try_encrypt0(in);
	return 0;
}
