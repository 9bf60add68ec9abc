/* Key helpers for the key-release tests (see keys_testkit.h). */
#include "keys_testkit.h"

#include <stdlib.h>

#include <openssl/evp.h>

#include <moat/error.h>

void testkit_raw_pub(int type, const uint8_t seed[32], uint8_t pub[32])
{
	EVP_PKEY *pk = EVP_PKEY_new_raw_private_key(type, NULL, seed, 32);
	size_t len = 32;

	if (pk == NULL || EVP_PKEY_get_raw_public_key(pk, pub, &len) != 1 || len != 32)
		abort();
	EVP_PKEY_free(pk);
}

int testkit_ed25519_sign(void *arg, const uint8_t *msg, size_t len, uint8_t sig[64])
{
	EVP_PKEY *pk = EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, NULL, arg, 32);
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	size_t n = 64;
	int ok = pk != NULL && md != NULL && EVP_DigestSignInit(md, NULL, NULL, NULL, pk) == 1 &&
		 EVP_DigestSign(md, sig, &n, msg, len) == 1;

	EVP_MD_CTX_free(md);
	EVP_PKEY_free(pk);
	return ok ? MOAT_OK : MOAT_E_CRYPTO;
}
