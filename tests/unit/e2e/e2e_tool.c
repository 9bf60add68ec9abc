/*
 * Test helper for crosscheck.py: seals, opens, signs and verifies COSE
 * envelopes with key material given in hex on the command line and prints
 * the result in hex, so Python (cbor2, cryptography) can check the C side
 * and the other way round. Not installed; test key material only.
 *
 *   e2e_tool seal ALG MS GROUP EPOCH SENDER SEQ IAT|- TOPIC PLAINTEXT
 *   e2e_tool open ALG MS GROUP EPOCH TOPIC ENVELOPE
 *   e2e_tool sign SEED KID TOPIC PAYLOAD
 *   e2e_tool verify PUB TOPIC ENVELOPE
 * ALG is a name ("chacha20-poly1305"); byte strings are hex.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <moat/error.h>

#include "e2e/alg.h"
#include "e2e/cose.h"

static uint8_t *unhex(const char *s, size_t *len)
{
	size_t n = strlen(s);
	uint8_t *out = malloc(n / 2 + 1);

	if (out == NULL || n % 2 != 0) {
		fprintf(stderr, "bad hex: %s\n", s);
		exit(2);
	}
	for (size_t i = 0; i < n / 2; i++) {
		unsigned v;

		if (sscanf(s + 2 * i, "%2x", &v) != 1) {
			fprintf(stderr, "bad hex: %s\n", s);
			exit(2);
		}
		out[i] = (uint8_t)v;
	}
	*len = n / 2;
	return out;
}

static void fixed(const char *s, uint8_t *out, size_t want)
{
	size_t n;
	uint8_t *b = unhex(s, &n);

	if (n != want) {
		fprintf(stderr, "need %zu bytes: %s\n", want, s);
		exit(2);
	}
	memcpy(out, b, n);
	free(b);
}

static int print_hex(const struct buf *b)
{
	for (size_t i = 0; i < buf_used(b); i++)
		printf("%02x", buf_head(b)[i]);
	printf("\n");
	return 0;
}

static int alg_arg(const char *name)
{
	const char *why = NULL;
	int alg;

	if (e2e_alg_from_name(name, &alg, &why) != MOAT_OK) {
		fprintf(stderr, "%s: %s\n", name, why);
		exit(2);
	}
	return alg;
}

static void group_args(char **argv, struct cose_group *g)
{
	fixed(argv[0], g->master_secret, sizeof(g->master_secret));
	fixed(argv[1], g->group_id, sizeof(g->group_id));
	g->epoch = (uint32_t)strtoul(argv[2], NULL, 10);
}

static int fail(int rc, const char *why)
{
	fprintf(stderr, "%s: %s\n", moat_strerror(rc), why != NULL ? why : "");
	return 1;
}

int main(int argc, char **argv)
{
	struct cose_group g = {0};
	struct buf out = {0};
	const char *why = NULL;
	uint8_t *a, *b;
	size_t alen, blen;
	int rc;

	if (argc == 11 && strcmp(argv[1], "seal") == 0) {
		struct cose_seal_params p = {.alg = alg_arg(argv[2])};

		group_args(argv + 3, &g);
		a = unhex(argv[6], &alen);
		b = unhex(argv[10], &blen);
		p.sender_id = (struct moat_bytes){a, alen};
		p.seq = strtoull(argv[7], NULL, 10);
		p.has_iat = strcmp(argv[8], "-") != 0;
		p.iat = p.has_iat ? strtoll(argv[8], NULL, 10) : 0;
		rc = cose_encrypt0_seal(&g, &p, moat_bytes_str(argv[9]),
					(struct moat_bytes){b, blen}, &out);
	} else if (argc == 8 && strcmp(argv[1], "open") == 0) {
		struct cose_encrypt0 e;
		int alg = alg_arg(argv[2]);

		group_args(argv + 3, &g);
		a = unhex(argv[7], &alen);
		b = NULL;
		rc = cose_encrypt0_decode((struct moat_bytes){a, alen}, &e, &why);
		if (rc == MOAT_OK)
			rc = cose_encrypt0_open(&e, &g, alg, moat_bytes_str(argv[6]), &out, &why);
	} else if (argc == 6 && strcmp(argv[1], "sign") == 0) {
		uint8_t seed[32];

		fixed(argv[2], seed, sizeof(seed));
		a = unhex(argv[3], &alen);
		b = unhex(argv[5], &blen);
		rc = cose_sign1_sign(seed, (struct moat_bytes){a, alen}, moat_bytes_str(argv[4]),
				     (struct moat_bytes){b, blen}, &out);
	} else if (argc == 5 && strcmp(argv[1], "verify") == 0) {
		struct cose_sign1 s;
		uint8_t pub[32];

		fixed(argv[2], pub, sizeof(pub));
		a = unhex(argv[4], &alen);
		b = NULL;
		rc = cose_sign1_decode((struct moat_bytes){a, alen}, &s, &why);
		if (rc == MOAT_OK)
			rc = cose_sign1_verify(&s, pub, moat_bytes_str(argv[3]), &why);
		if (rc == MOAT_OK)
			rc = buf_append(&out, s.payload.ptr, s.payload.len);
	} else {
		fprintf(stderr, "usage: see the head comment of e2e_tool.c\n");
		return 2;
	}
	if (rc == MOAT_OK)
		print_hex(&out);
	else
		fail(rc, why);
	free(a);
	free(b);
	buf_fini(&out);
	return rc == MOAT_OK ? 0 : 1;
}
