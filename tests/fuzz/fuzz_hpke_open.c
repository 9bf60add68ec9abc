/*
 * libFuzzer target for HPKE base-mode Open (src/e2e/hpke.c), the step that
 * takes a key-release response's enc and ciphertext from the network. Byte 0
 * bit 0 picks the suite and recipient key of RFC 9180 A.1 (AES-128-GCM, set)
 * or A.2 (ChaCha20Poly1305); bytes 1 and 2 are the info and aad lengths; then
 * come enc (32 bytes), info, aad and the ciphertext. Checks: a failure is
 * MOAT_E_CRYPTO and leaves the output zero; a success agrees with the
 * context API and fails again once the last byte is flipped.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <moat/error.h>

#include "e2e/hpke.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* skRm of RFC 9180 A.1 and A.2 */
static const uint8_t sk_a1[32] = {
    0x46, 0x12, 0xc5, 0x50, 0x26, 0x3f, 0xc8, 0xad, 0x58, 0x37, 0x5d, 0xf3, 0xf5, 0x57, 0xaa, 0xc5,
    0x31, 0xd2, 0x68, 0x50, 0x90, 0x3e, 0x55, 0xa9, 0xf2, 0x3f, 0x21, 0xd8, 0x53, 0x4e, 0x8a, 0xc8,
};
static const uint8_t sk_a2[32] = {
    0x80, 0x57, 0x99, 0x1e, 0xef, 0x8f, 0x1f, 0x1a, 0xf1, 0x8f, 0x4a, 0x94, 0x91, 0xd1, 0x6a, 0x1c,
    0xe3, 0x33, 0xf6, 0x95, 0xd4, 0xdb, 0x8e, 0x38, 0xda, 0x75, 0x97, 0x5c, 0x44, 0x78, 0xe0, 0xfb,
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	enum hpke_aead aead;
	const uint8_t *sk, *enc, *info, *aad, *ct;
	size_t info_len, aad_len, ct_len;
	struct hpke_ctx ctx;
	uint8_t *pt, *pt2, *flipped;
	int rc;

	if (size < 3 + HPKE_KEY_LEN)
		return 0;
	aead = (data[0] & 1) ? HPKE_AES_128_GCM : HPKE_CHACHA20_POLY1305;
	sk = (data[0] & 1) ? sk_a1 : sk_a2;
	info_len = data[1];
	aad_len = data[2];
	if (size - 3 - HPKE_KEY_LEN < info_len + aad_len)
		return 0;
	enc = data + 3;
	info = enc + HPKE_KEY_LEN;
	aad = info + info_len;
	ct = aad + aad_len;
	ct_len = size - 3 - HPKE_KEY_LEN - info_len - aad_len;

	pt = calloc(1, ct_len + 1);
	pt2 = calloc(1, ct_len + 1);
	flipped = malloc(ct_len + 1);
	if (pt == NULL || pt2 == NULL || flipped == NULL)
		abort();
	rc = hpke_open(aead, sk, enc, info, info_len, aad, aad_len, ct, ct_len, pt);
	if (rc != MOAT_OK) {
		if (rc != MOAT_E_CRYPTO)
			abort();
		for (size_t i = 0; i < ct_len; i++) {
			if (pt[i] != 0)
				abort();
		}
		goto out;
	}
	if (hpke_setup_recipient(&ctx, aead, sk, enc, info, info_len) != MOAT_OK ||
	    hpke_ctx_open(&ctx, aad, aad_len, ct, ct_len, pt2) != MOAT_OK || ctx.seq != 1 ||
	    memcmp(pt, pt2, ct_len - HPKE_TAG_LEN) != 0)
		abort();
	hpke_ctx_fini(&ctx);
	memcpy(flipped, ct, ct_len);
	flipped[ct_len - 1] ^= 0x80;
	if (hpke_open(aead, sk, enc, info, info_len, aad, aad_len, flipped, ct_len, pt2) !=
	    MOAT_E_CRYPTO)
		abort();
out:
	free(flipped);
	free(pt2);
	free(pt);
	return 0;
}
