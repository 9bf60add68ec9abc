/*
 * `moat bench --e2e ALG`: publishers seal every payload as a COSE_Encrypt0
 * envelope (src/e2e) and subscribers open it, as devices of one group that
 * already hold the group key would; the broker routes ciphertext only. The
 * key is made up for the run (no Security Center): the benchmark measures
 * what sealing and opening cost on the message path.
 */
#include "cli/bench.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/rand.h>

#include <moat/error.h>

#include "e2e/alg.h"
#include "e2e/cose.h"

int bench_e2e_init(struct bench_e2e *e, const char *alg_name, size_t publishers)
{
	const char *why = NULL;

	*e = (struct bench_e2e){ 0 };
	e->keys = calloc(publishers, sizeof(*e->keys));
	e->derived = calloc(publishers, sizeof(*e->derived));
	e->nkeys = publishers;
	if (e->keys == NULL || e->derived == NULL) {
		fprintf(stderr, "Error: out of memory\n");
		return MOAT_E_NOMEM;
	}
	if (e2e_alg_from_name(alg_name, &e->alg, &why) < 0) {
		fprintf(stderr, "Error: --e2e %s: %s\n", alg_name, why != NULL ? why : "unknown algorithm");
		return MOAT_E_UNSUPPORTED;
	}
	e->g.epoch = 1;
	if (RAND_bytes(e->g.group_id, sizeof(e->g.group_id)) != 1 ||
	    RAND_bytes(e->g.master_secret, sizeof(e->g.master_secret)) != 1) {
		fprintf(stderr, "Error: no randomness for the benchmark's group key\n");
		return MOAT_E_CRYPTO;
	}
	return MOAT_OK;
}

void bench_e2e_fini(struct bench_e2e *e)
{
	if (e->keys != NULL)
		OPENSSL_cleanse(e->keys, e->nkeys * sizeof(*e->keys));
	free(e->keys);
	free(e->derived);
	OPENSSL_cleanse(&e->g, sizeof(e->g));
	buf_fini(&e->sealed);
	buf_fini(&e->opened);
}

/* Publisher <publisher>'s keys, derived the first time they are needed. */
static const struct e2e_keys *keys_of(struct bench_e2e *e, uint32_t publisher, struct moat_bytes sender)
{
	if (publisher >= e->nkeys)
		return NULL;
	if (!e->derived[publisher] &&
	    cose_derive_keys(&e->g, sender, e->alg, &e->keys[publisher]) != MOAT_OK)
		return NULL;
	e->derived[publisher] = true;
	return &e->keys[publisher];
}

int bench_e2e_seal(struct bench_e2e *e, uint32_t publisher, uint64_t seq, struct moat_bytes topic,
		   struct moat_bytes plain, struct moat_bytes *out)
{
	uint8_t sender[4] = { (uint8_t)(publisher >> 24), (uint8_t)(publisher >> 16),
			      (uint8_t)(publisher >> 8), (uint8_t)publisher };
	struct cose_seal_params p = { .alg = e->alg,
				      .sender_id = (struct moat_bytes){ sender, sizeof(sender) },
				      .seq = seq };
	const struct e2e_keys *k = keys_of(e, publisher, p.sender_id);
	int rc;

	if (k == NULL)
		return MOAT_E_CRYPTO;
	buf_consume(&e->sealed, buf_used(&e->sealed));
	rc = cose_encrypt0_seal_keys(&e->g, k, &p, topic, plain, &e->sealed);
	if (rc == MOAT_OK)
		*out = (struct moat_bytes){ buf_head(&e->sealed), buf_used(&e->sealed) };
	return rc;
}

int bench_e2e_open(struct bench_e2e *e, struct moat_bytes topic, struct moat_bytes env,
		   struct moat_bytes *plain)
{
	struct cose_encrypt0 c;
	const char *why;
	int rc;

	const struct e2e_keys *k;
	uint32_t publisher;

	buf_consume(&e->opened, buf_used(&e->opened));
	rc = cose_encrypt0_decode(env, &c, &why);
	if (rc < 0)
		return rc;
	if (c.sender_id.len != 4)
		return MOAT_E_MALFORMED;	/* not one of this run's publishers */
	publisher = (uint32_t)c.sender_id.ptr[0] << 24 | (uint32_t)c.sender_id.ptr[1] << 16 |
		    (uint32_t)c.sender_id.ptr[2] << 8 | c.sender_id.ptr[3];
	k = keys_of(e, publisher, c.sender_id);
	rc = k == NULL ? MOAT_E_CRYPTO
		       : cose_encrypt0_open_keys(&c, &e->g, k, e->alg, topic, &e->opened, &why);
	if (rc == MOAT_OK)
		*plain = (struct moat_bytes){ buf_head(&e->opened), buf_used(&e->opened) };
	return rc;
}
