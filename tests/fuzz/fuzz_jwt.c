/*
 * libFuzzer target for JWT verification: arbitrary bytes as a compact token,
 * verified with a fixed key set from tests/data/jwt (Ed25519 "ed1", P-256
 * "ec1", RSA-2048 "rsa1") at a fixed time. Checks the contract: claims only
 * on MOAT_OK, a known error code otherwise, and a NUL-terminated reason.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <moat/error.h>

#include "auth/jwt.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct jwt_keys *keys;

static struct jwt_keys *load_keys(void)
{
	static const struct jwt_key_spec specs[] = {
	    {MOAT_JWT_DATA "/ed25519.pub.pem", "ed1"},
	    {MOAT_JWT_DATA "/p256.pub.pem", "ec1"},
	    {MOAT_JWT_DATA "/rsa2048.pub.pem", "rsa1"},
	};
	struct jwt_keys *ks = NULL;

	if (jwt_keys_load(&ks, specs, 3, NULL, 0) != MOAT_OK)
		abort();
	return ks;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct jwt_claims c;
	struct jwt_expect e;
	char why[160];
	int rc;

	if (keys == NULL)
		keys = load_keys();
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
