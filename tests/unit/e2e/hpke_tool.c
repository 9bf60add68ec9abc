/*
 * Test helper for hpke_xcheck.py: exposes src/e2e/hpke.c on the command line
 * with hex arguments, so an independent Python HPKE can open what C seals
 * and the other way round. Not installed.
 *   hpke_tool keygen                                  -> "<sk> <pk>"
 *   hpke_tool seal <aead> <pk> <info> <aad> <pt>      -> "<enc> <ct>"
 *   hpke_tool open <aead> <sk> <enc> <info> <aad> <ct> -> "<pt>"
 * <aead> is the RFC 9180 id in decimal (1 or 3). Exit status: 0 success, 2
 * MOAT_E_CRYPTO, 1 anything else.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <moat/error.h>

#include "e2e/hpke.h"

struct hexbuf {
	uint8_t *ptr;
	size_t len;
};

static int nibble(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Decodes <text> into a malloc'd buffer (one spare byte so it is never NULL); 0 or -1. */
static int unhex(const char *text, struct hexbuf *out)
{
	size_t n = strlen(text);

	if (n % 2 != 0)
		return -1;
	out->len = n / 2;
	out->ptr = malloc(out->len + 1);
	if (out->ptr == NULL)
		return -1;
	for (size_t i = 0; i < out->len; i++) {
		int hi = nibble(text[2 * i]);
		int lo = nibble(text[2 * i + 1]);

		if (hi < 0 || lo < 0)
			return -1;
		out->ptr[i] = (uint8_t)(hi << 4 | lo);
	}
	return 0;
}

static void put_hex(const uint8_t *p, size_t len)
{
	for (size_t i = 0; i < len; i++)
		printf("%02x", p[i]);
}

static int exit_code(int rc)
{
	if (rc == MOAT_OK)
		return 0;
	fprintf(stderr, "hpke_tool: %s\n", moat_strerror(rc));
	return rc == MOAT_E_CRYPTO ? 2 : 1;
}

static int cmd_keygen(void)
{
	uint8_t sk[HPKE_KEY_LEN], pk[HPKE_KEY_LEN];
	int rc = hpke_keygen(sk, pk);

	if (rc == MOAT_OK) {
		put_hex(sk, sizeof(sk));
		putchar(' ');
		put_hex(pk, sizeof(pk));
		putchar('\n');
	}
	return exit_code(rc);
}

static int cmd_seal(enum hpke_aead aead, struct hexbuf *a)
{
	uint8_t enc[HPKE_KEY_LEN];
	uint8_t *ct;
	int rc;

	if (a[0].len != HPKE_KEY_LEN)
		return exit_code(MOAT_E_INVAL);
	ct = malloc(a[3].len + HPKE_TAG_LEN);
	if (ct == NULL)
		return exit_code(MOAT_E_NOMEM);
	rc = hpke_seal(aead, a[0].ptr, a[1].ptr, a[1].len, a[2].ptr, a[2].len, a[3].ptr, a[3].len,
		       NULL, enc, ct);
	if (rc == MOAT_OK) {
		put_hex(enc, sizeof(enc));
		putchar(' ');
		put_hex(ct, a[3].len + HPKE_TAG_LEN);
		putchar('\n');
	}
	free(ct);
	return exit_code(rc);
}

static int cmd_open(enum hpke_aead aead, struct hexbuf *a)
{
	uint8_t *pt;
	int rc;

	if (a[0].len != HPKE_KEY_LEN || a[1].len != HPKE_KEY_LEN)
		return exit_code(MOAT_E_INVAL);
	pt = malloc(a[4].len + 1);
	if (pt == NULL)
		return exit_code(MOAT_E_NOMEM);
	rc = hpke_open(aead, a[0].ptr, a[1].ptr, a[2].ptr, a[2].len, a[3].ptr, a[3].len, a[4].ptr,
		       a[4].len, pt);
	if (rc == MOAT_OK) {
		put_hex(pt, a[4].len - HPKE_TAG_LEN);
		putchar('\n');
	}
	free(pt);
	return exit_code(rc);
}

int main(int argc, char **argv)
{
	struct hexbuf args[5] = {{NULL, 0}};
	int nargs;
	int rc = 1;

	if (argc == 2 && strcmp(argv[1], "keygen") == 0)
		return cmd_keygen();
	if (argc == 7 && strcmp(argv[1], "seal") == 0)
		nargs = 4;
	else if (argc == 8 && strcmp(argv[1], "open") == 0)
		nargs = 5;
	else {
		fprintf(stderr, "usage: hpke_tool keygen | seal <aead> <pk> <info> <aad> <pt> | "
				"open <aead> <sk> <enc> <info> <aad> <ct>\n");
		return 1;
	}
	for (int i = 0; i < nargs; i++) {
		if (unhex(argv[3 + i], &args[i]) < 0) {
			fprintf(stderr, "hpke_tool: argument %d is not hex\n", 3 + i);
			goto out;
		}
	}
	if (nargs == 4)
		rc = cmd_seal((enum hpke_aead)atoi(argv[2]), args);
	else
		rc = cmd_open((enum hpke_aead)atoi(argv[2]), args);
out:
	for (int i = 0; i < nargs; i++)
		free(args[i].ptr);
	return rc;
}
