/*
 * libFuzzer target for the key-release message decoders (src/e2e/keyrel.c)
 * with fixed keys (the same as make_keyrel_seeds.py): every input is tried
 * as a request on $sc/req/dev1 (decoded, then verified with the device
 * key), as a response on $sc/resp/dev1 to a fixed req_hash (verified with
 * the SC key and HPKE-opened with the device's X25519 key), as an epoch
 * announcement on $sc/epoch/0102030405060708 and as a tamper alert on
 * alerts/dev1/tamper. Checks: nothing crashes or leaks, every refusal has a
 * reason, and what is accepted is consistent with its topic.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include <moat/error.h>

#include "e2e/keyrel.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define TOPIC(s) ((struct moat_bytes){(const uint8_t *)(s), sizeof(s) - 1})

static uint8_t dev_pub[32], sc_pub[32];
static const uint8_t group_id[8] = {1, 2, 3, 4, 5, 6, 7, 8};

static void fill(uint8_t *p, uint8_t v)
{
	memset(p, v, 32);
}

static void derive_pubs(void)
{
	uint8_t seed[32];
	size_t len = 32;
	EVP_PKEY *pk;

	fill(seed, 0x42); /* device */
	pk = EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, NULL, seed, 32);
	if (pk == NULL || EVP_PKEY_get_raw_public_key(pk, dev_pub, &len) != 1)
		abort();
	EVP_PKEY_free(pk);
	fill(seed, 0x24); /* SC */
	pk = EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, NULL, seed, 32);
	if (pk == NULL || EVP_PKEY_get_raw_public_key(pk, sc_pub, &len) != 1)
		abort();
	EVP_PKEY_free(pk);
}

static void need_why(int rc, const char *why)
{
	if (rc != MOAT_OK && why == NULL)
		abort(); /* a refusal without its reason */
}

static void try_request(struct moat_bytes in)
{
	struct keyrel_request req;
	struct cose_sign1 sig;
	const char *why = NULL;
	int rc = keyrel_request_decode(in, TOPIC("$sc/req/dev1"), &req, &sig, &why);

	need_why(rc, why);
	if (rc != MOAT_OK)
		return;
	if (!moat_bytes_eq(req.client_id, TOPIC("dev1")))
		abort(); /* decoded a request for another client's topic */
	why = NULL;
	need_why(keyrel_request_verify(&sig, TOPIC("$sc/req/dev1"), dev_pub, &why), why);
}

static void try_response(struct moat_bytes in)
{
	uint8_t req_hash[32], agree_sk[32];
	struct keyrel_grant g;
	const char *why = NULL;
	int rc;

	fill(req_hash, 0x11);
	fill(agree_sk, 0x33);
	rc = keyrel_response_open(in, TOPIC("$sc/resp/dev1"), "dev1", req_hash, sc_pub, agree_sk,
				  &g, &why);
	need_why(rc, why);
	if (rc == MOAT_OK && memcmp(g.req_hash, req_hash, 32) != 0)
		abort();
}

static void try_epoch(struct moat_bytes in)
{
	uint8_t gid[8];
	uint32_t epoch;
	const char *why = NULL;
	int rc =
	    keyrel_epoch_open(in, TOPIC("$sc/epoch/0102030405060708"), sc_pub, gid, &epoch, &why);

	need_why(rc, why);
	if (rc == MOAT_OK && memcmp(gid, group_id, 8) != 0)
		abort(); /* the topic names another group */
}

static void try_alert(struct moat_bytes in)
{
	struct moat_bytes id, detail;
	struct cose_sign1 sig;
	int64_t iat;
	const char *why = NULL;
	int rc =
	    keyrel_alert_decode(in, TOPIC("alerts/dev1/tamper"), &id, &iat, &detail, &sig, &why);

	need_why(rc, why);
	if (rc != MOAT_OK)
		return;
	if (!moat_bytes_eq(id, TOPIC("dev1")))
		abort();
	why = NULL;
	need_why(cose_sign1_verify(&sig, dev_pub, TOPIC("alerts/dev1/tamper"), &why), why);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int ready;
	struct moat_bytes in = {data, size};

	if (!ready) {
		derive_pubs();
		ready = 1;
	}
	try_request(in);
	try_response(in);
	try_epoch(in);
	try_alert(in);
	return 0;
}
