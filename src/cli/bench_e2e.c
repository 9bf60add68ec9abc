/*
 * `moat bench --e2e ALG`: publishers seal every payload as a COSE_Encrypt0
 * envelope (src/e2e) and subscribers open it, as devices of one group that
 * already hold the group key would; the broker routes ciphertext only. The
 * key is made up for the run (no Security Center): the benchmark measures
 * what sealing and opening cost on the message path.
 */
#include "cli/bench.h"

#include <stdio.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/rand.h>

#include <moat/error.h>

#include "e2e/alg.h"
#include "e2e/cose.h"

int bench_e2e_init(struct bench_e2e *e, const char *alg_name)
{
	const char *why = NULL;

	*e = (struct bench_e2e){ 0 };
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
	OPENSSL_cleanse(&e->g, sizeof(e->g));
	buf_fini(&e->sealed);
	buf_fini(&e->opened);
}

int bench_e2e_seal(struct bench_e2e *e, uint32_t publisher, uint64_t seq, struct moat_bytes topic,
		   struct moat_bytes plain, struct moat_bytes *out)
{
	uint8_t sender[4] = { (uint8_t)(publisher >> 24), (uint8_t)(publisher >> 16),
			      (uint8_t)(publisher >> 8), (uint8_t)publisher };
	struct cose_seal_params p = { .alg = e->alg,
				      .sender_id = (struct moat_bytes){ sender, sizeof(sender) },
				      .seq = seq };
	int rc;

	buf_consume(&e->sealed, buf_used(&e->sealed));
	rc = cose_encrypt0_seal(&e->g, &p, topic, plain, &e->sealed);
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

	buf_consume(&e->opened, buf_used(&e->opened));
	rc = cose_encrypt0_decode(env, &c, &why);
	if (rc == MOAT_OK)
		rc = cose_encrypt0_open(&c, &e->g, e->alg, topic, &e->opened, &why);
	if (rc == MOAT_OK)
		*plain = (struct moat_bytes){ buf_head(&e->opened), buf_used(&e->opened) };
	return rc;
}
