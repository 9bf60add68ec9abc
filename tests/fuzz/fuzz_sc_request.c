/*
 * libFuzzer target for the Security Center's request handler
 * (src/sc/keyserver.c) over a registry in a temp dir with one registered
 * thing "dev1" (the keys of fuzz_keyrel.c and make_keyrel_seeds.py) and
 * one topic policy. Every input is handled as a request on $sc/req/dev1
 * at a fixed time. Checks: nothing crashes or leaks; unattributable input
 * gets no answer; every answer is a response dev1 can open.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include <moat/error.h>

#include "sc/keyserver.h"

#include "../unit/e2e/keys_testkit.h"
#include "../unit/sc/sc_testkit.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define NOW 1764567890
#define TOPIC(s) ((struct moat_bytes){(const uint8_t *)(s), sizeof(s) - 1})

static const char policies[] = "{\"policies\":[{\"filter\":\"plant/#\",\"publish\":\"role == "
			       "sensor\",\"subscribe\":\"role == sensor\"}]}";

static struct sc_tmp tmp;
static struct registry *reg;
static struct topic_policy_set *set;
static struct keyserver *ks;
static uint8_t sc_seed[32], sc_pub[32];

static void pub_of(int type, uint8_t fill, uint8_t pub[32])
{
	uint8_t seed[32];

	memset(seed, fill, sizeof(seed));
	testkit_raw_pub(type, seed, pub);
}

static void cleanup(void)
{
	keyserver_destroy(ks);
	topic_policy_set_destroy(set);
	sc_tmp_remove(&tmp, reg);
}

static void init(void)
{
	const struct reg_attr role = {"role", "sensor"};
	const struct keyserver_config cfg = {
	    .rate_per_s = 1000000, .burst = 1000000, .grace_s = -1};
	struct moat_diag d = {0};
	struct policy_diag pd = {0};
	uint8_t pub[32], store_key[32];

	sc_tmp_open(&tmp, "moat-fuzz-sc", &reg);
	memset(sc_seed, 0x24, sizeof(sc_seed));
	pub_of(EVP_PKEY_ED25519, 0x24, sc_pub);
	memset(store_key, 0x55, sizeof(store_key));
	if (reg_thing_create(reg, "fuzz", "dev1", &role, 1, NULL, &d) != MOAT_OK)
		abort();
	pub_of(EVP_PKEY_ED25519, 0x42, pub);
	if (reg_key_add(reg, "fuzz", "dev1", REG_KEY_ED25519_SIGN, pub, &d) != MOAT_OK)
		abort();
	pub_of(EVP_PKEY_X25519, 0x33, pub);
	if (reg_key_add(reg, "fuzz", "dev1", REG_KEY_X25519_AGREE, pub, &d) != MOAT_OK ||
	    topic_policy_set_parse(&set, policies, sizeof(policies) - 1, &pd) != MOAT_OK ||
	    keyserver_create(&ks, reg, store_key, testkit_ed25519_sign, sc_seed, &cfg) != MOAT_OK)
		abort();
	keyserver_set_policies(ks, set);
	atexit(cleanup);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct keyserver_outcome res;
	struct keyrel_grant g;
	struct buf out = {0};
	uint8_t agree[32], hash[32];
	const char *why = NULL;
	int rc;

	if (ks == NULL)
		init();
	rc = keyserver_handle(ks, (struct moat_bytes){data, size}, TOPIC("$sc/req/dev1"), NOW, &out,
			      &res);
	if ((rc == MOAT_OK && !res.answered) || (!res.answered && buf_used(&out) != 0))
		abort();
	if (res.answered) {
		/* the response is bound to SHA-256 of exactly these bytes */
		if (EVP_Digest(data, size, hash, NULL, EVP_sha256(), NULL) != 1)
			abort();
		memset(agree, 0x33, sizeof(agree));
		if (keyrel_response_open((struct moat_bytes){buf_head(&out), buf_used(&out)},
					 TOPIC("$sc/resp/dev1"), "dev1", hash, sc_pub, agree, &g,
					 &why) != MOAT_OK ||
		    g.status != res.status)
			abort();
	}
	buf_fini(&out);
	return 0;
}
