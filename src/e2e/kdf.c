/*
 * HKDF-SHA256 key and common-IV derivation and nonce construction (see kdf.h).
 */
#include "e2e/kdf.h"

#include <string.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/kdf.h>
#include <openssl/params.h>

#include <moat/error.h>

#include "base/buf.h"
#include "e2e/alg.h"
#include "e2e/cbor.h"

/* info = [id, id_context, alg_aead, type, L] (RFC 8613 §3.2.1) */
static int encode_info(struct buf *info, struct moat_bytes id, const uint8_t *kid_context, int alg,
		       const char *type, size_t len)
{
	int rc = cbor_put_array(info, 5);

	if (rc == MOAT_OK)
		rc = cbor_put_bstr(info, id.ptr, id.len);
	if (rc == MOAT_OK)
		rc = cbor_put_bstr(info, kid_context, E2E_KID_CONTEXT_LEN);
	if (rc == MOAT_OK)
		rc = cbor_put_int(info, alg);
	if (rc == MOAT_OK)
		rc = cbor_put_tstr(info, type, strlen(type));
	if (rc == MOAT_OK)
		rc = cbor_put_uint(info, len);
	return rc;
}

static int hkdf(const uint8_t *ms, const uint8_t *kid_context, struct moat_bytes id, int alg,
		const char *type, uint8_t *out, size_t len)
{
	struct buf info = {0};
	EVP_KDF *kdf = NULL;
	EVP_KDF_CTX *ctx = NULL;
	OSSL_PARAM params[5];
	int rc = encode_info(&info, id, kid_context, alg, type, len);

	if (rc < 0)
		goto out;
	kdf = EVP_KDF_fetch(NULL, "HKDF", NULL);
	ctx = kdf != NULL ? EVP_KDF_CTX_new(kdf) : NULL;
	if (ctx == NULL) {
		rc = MOAT_E_CRYPTO;
		goto out;
	}
	params[0] = OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, (char *)"SHA256", 0);
	params[1] =
	    OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, (void *)ms, E2E_MASTER_LEN);
	params[2] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT, (void *)kid_context,
						      E2E_KID_CONTEXT_LEN);
	params[3] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, buf_head(&info),
						      buf_used(&info));
	params[4] = OSSL_PARAM_construct_end();
	if (EVP_KDF_derive(ctx, out, len, params) != 1)
		rc = MOAT_E_CRYPTO;
out:
	EVP_KDF_CTX_free(ctx);
	EVP_KDF_free(kdf);
	buf_fini(&info);
	return rc;
}

int e2e_derive_keys(const uint8_t ms[32], const uint8_t kid_context[12],
		    struct moat_bytes sender_id, int alg, struct e2e_keys *out)
{
	int rc;

	if (sender_id.len < 1 || sender_id.len > E2E_SENDER_ID_MAX || !e2e_alg_is_valid(alg))
		return MOAT_E_INVAL;
	rc = hkdf(ms, kid_context, sender_id, alg, "Key", out->sender_key, sizeof(out->sender_key));
	if (rc == MOAT_OK)
		rc = hkdf(ms, kid_context, (struct moat_bytes){.ptr = NULL, .len = 0}, alg, "IV",
			  out->common_iv, sizeof(out->common_iv));
	if (rc < 0)
		OPENSSL_cleanse(out, sizeof(*out));
	return rc;
}

void e2e_nonce(const uint8_t common_iv[12], struct moat_bytes sender_id, uint64_t seq,
	       uint8_t nonce[12])
{
	uint8_t x[E2E_NONCE_LEN] = {0};

	x[0] = (uint8_t)sender_id.len;
	memcpy(x + 1 + E2E_SENDER_ID_MAX - sender_id.len, sender_id.ptr, sender_id.len);
	for (size_t i = 0; i < 5; i++)
		x[E2E_NONCE_LEN - 1 - i] = (uint8_t)(seq >> (8 * i));
	for (size_t i = 0; i < E2E_NONCE_LEN; i++)
		nonce[i] = common_iv[i] ^ x[i];
}
