/*
 * libFuzzer target for moatd's reader of the Security Center's revocation
 * list (src/broker/revocation.c). The signature is checked first, so the
 * input is used twice: as a whole envelope under a fixed public key (the
 * signature path and the envelope decoder), and as the CBOR payload of a
 * COSE_Sign1 signed here with that key, which reaches the list parser
 * behind the signature. Checks: nothing crashes, every refusal has a
 * reason, and an accepted list answers membership for every id it holds.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <moat/error.h>

#include <openssl/evp.h>

#include "base/buf.h"
#include "broker/revocation.h"
#include "e2e/cose.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define TOPIC "$sc/revoked"

static const uint8_t seed[32] = {0x52, 0x45, 0x56, 0x4f, 0x4b, 0x45, 0x44, 0x00, 0x01, 0x02, 0x03,
				 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x0e,
				 0x0f, 0x10, 0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17, 0x18};

/* The public half of <seed>, computed once. */
static const uint8_t *public_key(void)
{
	static uint8_t pub[32];
	static int done;

	if (!done) {
		EVP_PKEY *k = EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, NULL, seed, 32);
		size_t len = sizeof(pub);

		if (k == NULL || EVP_PKEY_get_raw_public_key(k, pub, &len) != 1)
			abort();
		EVP_PKEY_free(k);
		done = 1;
	}
	return pub;
}

static void parse(struct moat_bytes env)
{
	struct revocation *r = NULL;
	const char *why = NULL;
	int rc = revocation_parse(env, public_key(), &r, &why);

	if (rc != MOAT_OK) {
		if (why == NULL || r != NULL)
			abort();
		return;
	}
	for (size_t i = 0; i < r->n_client_ids; i++)
		if (!revocation_has_client(r, r->client_ids[i]))
			abort();
	for (size_t i = 0; i < r->n_cert_serials; i++)
		if (!revocation_has_cert(r, r->cert_serials[i]))
			abort();
	for (size_t i = 0; i < r->n_jtis; i++)
		if (!revocation_has_jti(r, r->jtis[i]))
			abort();
	revocation_unref(r);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct moat_bytes in = {data, size};
	struct buf env = {0};

	parse(in);
	if (cose_sign1_sign(seed, moat_bytes_str("sc"), moat_bytes_str(TOPIC), in, &env) == MOAT_OK)
		parse((struct moat_bytes){buf_head(&env), buf_used(&env)});
	buf_fini(&env);
	return 0;
}
