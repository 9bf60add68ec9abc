/*
 * e2e_cost: what sealing and opening a payload end to end costs, per message
 * size (16 B to 64 KiB) and algorithm, on this machine: COSE_Encrypt0 seal
 * (AEAD, CBOR) and decode + open with the sender's keys cached, as a device
 * keeps them per (group, epoch, sender), and once per algorithm the key
 * derivation a cache miss adds. Each case runs about 0.2 s. Prints a table
 * (µs per message and MB/s). Run by hand; not a test.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <moat/error.h>

#include "e2e/alg.h"
#include "e2e/cose.h"

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Seconds per operation of seal (<open> 0), decode + open (1) of a <size>-byte payload, or
 * of deriving a sender's keys (2). */
static double per_op(int alg, size_t size, int open, struct buf *env, struct buf *out)
{
	struct cose_group g = { .group_id = { 1, 2, 3, 4, 5, 6, 7, 8 }, .epoch = 1 };
	uint8_t sender[2] = { 0, 1 };
	struct cose_seal_params p = { .alg = alg, .sender_id = { sender, sizeof(sender) } };
	struct moat_bytes topic = moat_bytes_str("plant/7/line/2/temperature");
	struct e2e_keys keys;
	uint8_t *pt = calloc(1, size);
	unsigned long n = 0, batch = 64;
	double t0, t;

	if (pt == NULL)
		return -1;
	memset(g.master_secret, 0x42, sizeof(g.master_secret));
	buf_consume(env, buf_used(env));
	if (cose_derive_keys(&g, p.sender_id, alg, &keys) != MOAT_OK ||
	    cose_encrypt0_seal_keys(&g, &keys, &p, topic, (struct moat_bytes){ pt, size }, env) != MOAT_OK) {
		free(pt);
		return -1;
	}
	t0 = now_s();
	do {
		for (unsigned long i = 0; i < batch; i++, n++) {
			struct cose_encrypt0 e;
			const char *why;
			int rc;

			buf_consume(out, buf_used(out));
			if (open == 2) {
				rc = cose_derive_keys(&g, p.sender_id, alg, &keys);
			} else if (open) {
				rc = cose_encrypt0_decode((struct moat_bytes){ buf_head(env), buf_used(env) }, &e, &why);
				if (rc == MOAT_OK)
					rc = cose_encrypt0_open_keys(&e, &g, &keys, alg, topic, out, &why);
			} else {
				p.seq = n;
				rc = cose_encrypt0_seal_keys(&g, &keys, &p, topic, (struct moat_bytes){ pt, size }, out);
			}
			if (rc != MOAT_OK) {
				free(pt);
				return -1;
			}
		}
		t = now_s() - t0;
	} while (t < 0.2);
	free(pt);
	return t / (double)n;
}

int main(void)
{
	static const int algs[] = { E2E_ALG_CHACHA20_POLY1305, E2E_ALG_A256GCM };
	struct buf env = { 0 }, out = { 0 };

	for (size_t a = 0; a < 2; a++) {
		double d = per_op(algs[a], 16, 2, &env, &out);

		printf("%s: deriving a sender's key and IV (a cache miss): %.2f µs\n", e2e_alg_name(algs[a]),
		       d * 1e6);
	}
	printf("\n| algorithm | payload B | seal µs | open µs | seal MB/s | open MB/s |\n");
	printf("|---|---:|---:|---:|---:|---:|\n");
	for (size_t a = 0; a < 2; a++) {
		for (size_t size = 16; size <= 65536; size *= 4) {
			double s = per_op(algs[a], size, 0, &env, &out), o = per_op(algs[a], size, 1, &env, &out);

			if (s < 0 || o < 0) {
				fprintf(stderr, "e2e_cost: sealing or opening failed\n");
				return 1;
			}
			printf("| %s | %zu | %.2f | %.2f | %.1f | %.1f |\n", e2e_alg_name(algs[a]), size,
			       s * 1e6, o * 1e6, (double)size / s / 1e6, (double)size / o / 1e6);
		}
	}
	buf_fini(&env);
	buf_fini(&out);
	return 0;
}
