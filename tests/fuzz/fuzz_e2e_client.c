/*
 * libFuzzer target for libmoat's end-to-end receive path and key cache
 * (src/client/e2e.c, keycache.c). A bundle with fixed keys is made once in
 * a temporary directory, and its cache holds group "fuzzgrp1" epoch 1 for
 * "fuzz/#" with the master secret of fuzz_cose.c (so the corpus/cose
 * envelopes open). Every input is tried as a received payload on
 * "fuzz/topic" (moat_e2e_open: Sign1, Encrypt0, key lookup, replay window),
 * as a cache file as found on disk, and as the decrypted contents of a
 * cache file (sealed here under the device's cache key, then loaded).
 * Checks: nothing crashes or leaks, every refusal has a reason, and a cache
 * that loads holds only entries with a valid alg and filter.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <openssl/evp.h>
#include <openssl/pem.h>

#include <moat/e2e.h>
#include <moat/error.h>

#include "base/clock.h"
#include "client/e2e_impl.h"
#include "e2e/aead.h"
#include "e2e/alg.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char dir[64], cache_path[128];
static struct moat_e2e *e2e;

static void write_pem(const char *name, int type, uint8_t fill, bool pub)
{
	uint8_t seed[32];
	char path[128];
	EVP_PKEY *k;
	FILE *f;

	memset(seed, fill, sizeof(seed));
	k = EVP_PKEY_new_raw_private_key(type, NULL, seed, sizeof(seed));
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "w");
	if (k == NULL || f == NULL)
		abort();
	if ((pub ? PEM_write_PUBKEY(f, k)
		 : PEM_write_PrivateKey(f, k, NULL, NULL, 0, NULL, NULL)) != 1)
		abort();
	fclose(f);
	chmod(path, 0600);
	EVP_PKEY_free(k);
}

static void init(void)
{
	struct kc_entry ent = {.alg = E2E_ALG_CHACHA20_POLY1305, .max_age_s = 0};
	char path[128];
	FILE *f;

	snprintf(dir, sizeof(dir), "/tmp/fuzz_e2e_client_XXXXXX");
	if (mkdtemp(dir) == NULL)
		abort();
	snprintf(path, sizeof(path), "%s/bundle.json", dir);
	f = fopen(path, "w");
	if (f == NULL)
		abort();
	fputs("{\"client_id\": \"fuzzdev\", \"broker\": \"mqtt://127.0.0.1:1\"}", f);
	fclose(f);
	write_pem("sign.key", EVP_PKEY_ED25519, 0x42, false);
	write_pem("agree.key", EVP_PKEY_X25519, 0x43, false);
	write_pem("sc.pub", EVP_PKEY_ED25519, 0x44, true);
	if (moat_e2e_open_bundle(&e2e, dir, NULL, 0) != MOAT_OK)
		abort();
	memcpy(ent.group.group_id, "fuzzgrp1", 8);
	ent.group.epoch = 1;
	for (int i = 0; i < 32; i++)
		ent.group.master_secret[i] = (uint8_t)i;
	strcpy(ent.filter, "fuzz/#");
	ent.not_after = INT64_MAX / 2;
	if (keycache_put(&e2e->kc, &ent, clock_wall_s()) != MOAT_OK)
		abort();
	snprintf(cache_path, sizeof(cache_path), "%s/fuzz.cache", dir);
}

static void try_open(const uint8_t *data, size_t size)
{
	uint8_t *pt = NULL;
	size_t n = 0;
	const char *why = NULL;
	struct moat_e2e_info info;
	int rc = moat_e2e_open(e2e, "fuzz/topic", data, size, &pt, &n, &info, &why);

	if ((rc == MOAT_OK) != (why == NULL) || (rc == MOAT_OK) != (pt != NULL))
		abort();
	if (rc == MOAT_OK && (info.epoch != 1 || memcmp(info.group_id, "fuzzgrp1", 8) != 0))
		abort();
	moat_e2e_free(pt, n);
	e2e->nwindows = 0; /* replays of one input stay openable across runs */
}

static void load_file(const uint8_t *data, size_t size)
{
	struct keycache kc;
	bool discarded;
	FILE *f = fopen(cache_path, "wb");

	if (f == NULL || (size > 0 && fwrite(data, 1, size, f) != size))
		abort();
	fclose(f);
	if (keycache_open(&kc, cache_path, e2e->agree_seed, &discarded) != MOAT_OK)
		abort();
	for (size_t i = 0; i < kc.n; i++)
		if (!e2e_alg_is_valid(kc.e[i].alg) || kc.e[i].filter[0] == '\0' ||
		    kc.e[i].sender_id_len > E2E_SENDER_ID_MAX)
			abort();
	keycache_fini(&kc);
}

/* <data> as the plaintext of a cache file, sealed as keycache_save would. */
static void load_sealed(const uint8_t *data, size_t size)
{
	uint8_t *file = malloc(4 + 12 + size + 16);

	if (file == NULL)
		abort();
	memcpy(file, "MKC1", 4);
	memset(file + 4, 7, 12);
	if (e2e_aead_seal(E2E_ALG_CHACHA20_POLY1305, e2e->kc.file_key, file + 4,
			  (struct moat_bytes){file, 4}, (struct moat_bytes){data, size},
			  file + 16) != MOAT_OK)
		abort();
	load_file(file, 4 + 12 + size + 16);
	free(file);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (e2e == NULL)
		init();
	try_open(data, size);
	load_file(data, size);
	load_sealed(data, size);
	return 0;
}
