/*
 * libFuzzer target for JWT verification with a fixed key set from
 * tests/data/jwt (Ed25519 "ed1", P-256 "ec1", RSA-2048 "rsa1") plus an
 * Ed25519 key "fz" whose private half only this harness knows, at a fixed
 * time. Input starting with 'S' is header JSON, a NUL, then claims JSON,
 * which the harness encodes and signs with "fz" so the header and claim
 * checks behind the signature are fuzzed too; any other input is the token.
 * Checks the contract: claims only on MOAT_OK, a known error code
 * otherwise, and a NUL-terminated reason.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/pem.h>

#include <moat/error.h>

#include "auth/jwt.h"
#include "base/base64.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct jwt_keys *keys;
static EVP_PKEY *fz_key;

/* Makes the harness's own Ed25519 key and writes its public half to a temp file. */
static void make_fz_key(char *path)
{
	static const uint8_t seed[32] = {'m', 'o', 'a', 't', '-', 'f', 'u', 'z', 'z'};
	int fd = mkstemp(path);
	FILE *f = fd >= 0 ? fdopen(fd, "w") : NULL;

	fz_key = EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, NULL, seed, sizeof(seed));
	if (f == NULL || fz_key == NULL || PEM_write_PUBKEY(f, fz_key) != 1)
		abort();
	fclose(f);
}

static struct jwt_keys *load_keys(void)
{
	char fz_path[] = "/tmp/moat-fuzz-jwt-XXXXXX";
	struct jwt_key_spec specs[] = {
	    {MOAT_JWT_DATA "/ed25519.pub.pem", "ed1"},
	    {MOAT_JWT_DATA "/p256.pub.pem", "ec1"},
	    {MOAT_JWT_DATA "/rsa2048.pub.pem", "rsa1"},
	    {fz_path, "fz"},
	};
	struct jwt_keys *ks = NULL;

	make_fz_key(fz_path);
	if (jwt_keys_load(&ks, specs, 4, NULL, 0) != MOAT_OK)
		abort();
	unlink(fz_path);
	return ks;
}

/* Encodes header <h> and claims <p> as a compact JWS signed with the "fz" key
 * into <out> (room for JWT_TOKEN_MAX + 1). Returns the length, 0 when too big. */
static size_t sign_token(const uint8_t *h, size_t h_len, const uint8_t *p, size_t p_len, char *out)
{
	uint8_t sig[64];
	size_t n, sig_len = sizeof(sig);
	EVP_MD_CTX *ctx;

	if (b64_encoded_len(h_len, B64_URL) + b64_encoded_len(p_len, B64_URL) + 2 +
		b64_encoded_len(sizeof(sig), B64_URL) >
	    JWT_TOKEN_MAX)
		return 0;
	n = b64_encode(h, h_len, out, B64_URL);
	out[n++] = '.';
	n += b64_encode(p, p_len, out + n, B64_URL);
	ctx = EVP_MD_CTX_new();
	if (ctx == NULL || EVP_DigestSignInit(ctx, NULL, NULL, NULL, fz_key) != 1 ||
	    EVP_DigestSign(ctx, sig, &sig_len, (const uint8_t *)out, n) != 1)
		abort();
	EVP_MD_CTX_free(ctx);
	out[n++] = '.';
	n += b64_encode(sig, sig_len, out + n, B64_URL);
	return n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static char signed_tok[JWT_TOKEN_MAX + 1];
	struct jwt_claims c;
	struct jwt_expect e;
	const uint8_t *nul;
	char why[160];
	int rc;

	if (keys == NULL)
		keys = load_keys();
	if (size > 0 && data[0] == 'S' && (nul = memchr(data, '\0', size)) != NULL) {
		size_t h_len = (size_t)(nul - data) - 1;

		size = sign_token(data + 1, h_len, nul + 1, size - h_len - 2, signed_tok);
		data = (const uint8_t *)signed_tok;
	}
	jwt_expect_init(&e);
	e.audience = "moat-broker";
	memset(why, 'x', sizeof(why));
	rc = jwt_verify(keys, (const char *)data, size, &e, INT64_C(1800000000), &c, why,
			sizeof(why));
	if (memchr(why, '\0', sizeof(why)) == NULL)
		abort();
	if (rc == MOAT_OK) {
		if (c.username == NULL || c.roles_count > JWT_ROLES_MAX ||
		    c.attrs_count > JWT_ATTRS_MAX)
			abort();
	} else if (rc != MOAT_E_MALFORMED && rc != MOAT_E_DENIED && rc != MOAT_E_UNSUPPORTED &&
		   rc != MOAT_E_NOMEM) {
		abort();
	} else if (c.username != NULL || c.roles != NULL || c.attrs != NULL) {
		abort();
	}
	jwt_claims_fini(&c);
	return 0;
}
