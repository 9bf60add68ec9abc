/*
 * COSE_Encrypt0 and COSE_Sign1 for MQTT payloads (see cose.h). The
 * structures are fixed, so the decoders walk them with the strict CBOR
 * readers after cbor_check() has validated the whole input.
 */
#include "e2e/cose.h"

#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include <moat/error.h>

#include "e2e/aead.h"
#include "e2e/alg.h"
#include "e2e/cbor.h"
#include "e2e/kdf.h"

enum {
	HDR_ALG = 1,
	HDR_KID = 4,
	HDR_PARTIAL_IV = 6,
	HDR_KID_CONTEXT = 10,
	HDR_CWT_CLAIMS = 15, /* RFC 9597 */
	CWT_IAT = 6,
	PIV_MAX = 5,
};

static int set_why(const char **why, const char *text, int rc)
{
	if (why != NULL)
		*why = text;
	return rc;
}

/* external_aad = ["moat/1", topic] (SECURITY-DESIGN §2.3) */
static int put_external_aad(struct buf *b, struct moat_bytes topic)
{
	struct buf ext = {0};
	int rc = cbor_put_array(&ext, 2);

	if (rc == MOAT_OK)
		rc = cbor_put_tstr(&ext, "moat/1", 6);
	if (rc == MOAT_OK)
		rc = cbor_put_tstr(&ext, (const char *)topic.ptr, topic.len);
	if (rc == MOAT_OK)
		rc = cbor_put_bstr(b, buf_head(&ext), buf_used(&ext));
	buf_fini(&ext);
	return rc;
}

/* [context, protected, external_aad (, payload)] (RFC 9052 §4.4, §5.3) */
static int put_to_be_authenticated(struct buf *b, const char *context,
				   struct moat_bytes protected_hdr, struct moat_bytes topic,
				   const struct moat_bytes *payload)
{
	int rc = cbor_put_array(b, payload != NULL ? 4 : 3);

	if (rc == MOAT_OK)
		rc = cbor_put_tstr(b, context, strlen(context));
	if (rc == MOAT_OK)
		rc = cbor_put_bstr(b, protected_hdr.ptr, protected_hdr.len);
	if (rc == MOAT_OK)
		rc = put_external_aad(b, topic);
	if (rc == MOAT_OK && payload != NULL)
		rc = cbor_put_bstr(b, payload->ptr, payload->len);
	return rc;
}

static void kid_context_of(const struct cose_group *g, uint8_t out[E2E_KID_CONTEXT_LEN])
{
	memcpy(out, g->group_id, COSE_GROUP_ID_LEN);
	for (size_t i = 0; i < 4; i++)
		out[COSE_GROUP_ID_LEN + i] = (uint8_t)(g->epoch >> (24 - 8 * i));
}

static size_t piv_encode(uint64_t seq, uint8_t out[PIV_MAX])
{
	size_t n = 1;

	while (n < PIV_MAX && (seq >> (8 * n)) != 0)
		n++;
	for (size_t i = 0; i < n; i++)
		out[i] = (uint8_t)(seq >> (8 * (n - 1 - i)));
	return n;
}

static int put_protected(struct buf *b, const struct cose_group *g,
			 const struct cose_seal_params *p)
{
	uint8_t kc[E2E_KID_CONTEXT_LEN], piv[PIV_MAX];
	size_t piv_len = piv_encode(p->seq, piv);
	int rc;

	kid_context_of(g, kc);
	/* keys in bytewise order of their encodings: 01 04 06 0a 0f */
	rc = cbor_put_map(b, p->has_iat ? 5 : 4);
	if (rc == MOAT_OK)
		rc = cbor_put_uint(b, HDR_ALG);
	if (rc == MOAT_OK)
		rc = cbor_put_int(b, p->alg);
	if (rc == MOAT_OK)
		rc = cbor_put_uint(b, HDR_KID);
	if (rc == MOAT_OK)
		rc = cbor_put_bstr(b, p->sender_id.ptr, p->sender_id.len);
	if (rc == MOAT_OK)
		rc = cbor_put_uint(b, HDR_PARTIAL_IV);
	if (rc == MOAT_OK)
		rc = cbor_put_bstr(b, piv, piv_len);
	if (rc == MOAT_OK)
		rc = cbor_put_uint(b, HDR_KID_CONTEXT);
	if (rc == MOAT_OK)
		rc = cbor_put_bstr(b, kc, sizeof(kc));
	if (rc == MOAT_OK && p->has_iat) {
		rc = cbor_put_uint(b, HDR_CWT_CLAIMS);
		if (rc == MOAT_OK)
			rc = cbor_put_map(b, 1);
		if (rc == MOAT_OK)
			rc = cbor_put_uint(b, CWT_IAT);
		if (rc == MOAT_OK)
			rc = cbor_put_int(b, p->iat);
	}
	return rc;
}

int cose_derive_keys(const struct cose_group *g, struct moat_bytes sender_id, int alg,
		     struct e2e_keys *out)
{
	uint8_t kc[E2E_KID_CONTEXT_LEN];

	kid_context_of(g, kc);
	return e2e_derive_keys(g->master_secret, kc, sender_id, alg, out);
}

int cose_encrypt0_seal(const struct cose_group *g, const struct cose_seal_params *p,
		       struct moat_bytes topic, struct moat_bytes plaintext, struct buf *out)
{
	struct e2e_keys keys;
	int rc;

	if (!e2e_alg_is_valid(p->alg) || p->sender_id.len < 1 ||
	    p->sender_id.len > E2E_SENDER_ID_MAX)
		return MOAT_E_INVAL;
	rc = cose_derive_keys(g, p->sender_id, p->alg, &keys);
	if (rc == MOAT_OK)
		rc = cose_encrypt0_seal_keys(g, &keys, p, topic, plaintext, out);
	OPENSSL_cleanse(&keys, sizeof(keys));
	return rc;
}

int cose_encrypt0_seal_keys(const struct cose_group *g, const struct e2e_keys *keys,
			    const struct cose_seal_params *p, struct moat_bytes topic,
			    struct moat_bytes plaintext, struct buf *out)
{
	struct buf prot = {0}, aad = {0};
	uint8_t nonce[E2E_NONCE_LEN];
	struct moat_bytes prot_view;
	size_t mark = buf_used(out);
	int rc;

	if (!e2e_alg_is_valid(p->alg) || p->sender_id.len < 1 ||
	    p->sender_id.len > E2E_SENDER_ID_MAX || p->seq > E2E_SEQ_MAX || topic.len == 0 ||
	    plaintext.len > SIZE_MAX / 2)
		return MOAT_E_INVAL;
	e2e_nonce(keys->common_iv, p->sender_id, p->seq, nonce);
	rc = put_protected(&prot, g, p);
	prot_view = (struct moat_bytes){.ptr = buf_head(&prot), .len = buf_used(&prot)};
	if (rc == MOAT_OK)
		rc = put_to_be_authenticated(&aad, "Encrypt0", prot_view, topic, NULL);
	if (rc == MOAT_OK)
		rc = cbor_put_tag(out, COSE_TAG_ENCRYPT0);
	if (rc == MOAT_OK)
		rc = cbor_put_array(out, 3);
	if (rc == MOAT_OK)
		rc = cbor_put_bstr(out, prot_view.ptr, prot_view.len);
	if (rc == MOAT_OK)
		rc = cbor_put_map(out, 0);
	if (rc == MOAT_OK)
		rc = cbor_put_bstr_head(out, plaintext.len + E2E_TAG_LEN);
	if (rc == MOAT_OK)
		rc = buf_reserve(out, plaintext.len + E2E_TAG_LEN);
	if (rc == MOAT_OK)
		rc =
		    e2e_aead_seal(p->alg, keys->sender_key, nonce,
				  (struct moat_bytes){.ptr = buf_head(&aad), .len = buf_used(&aad)},
				  plaintext, out->data + out->len);
	if (rc == MOAT_OK)
		out->len += plaintext.len + E2E_TAG_LEN;
	else
		out->len = out->off + mark; /* no partial envelope */
	buf_fini(&prot);
	buf_fini(&aad);
	OPENSSL_cleanse(nonce, sizeof(nonce));
	return rc;
}

/* Reads the CWT claims map of the protected header: exactly {6: iat}. */
static int read_claims(struct cbor_dec *d, struct cose_encrypt0 *e, const char **why)
{
	size_t pairs;
	int64_t label;

	if (!cbor_read_map(d, &pairs))
		return set_why(why, "CWT claims header is not a map", MOAT_E_MALFORMED);
	for (size_t i = 0; i < pairs; i++) {
		if (!cbor_read_int(d, &label) || label != CWT_IAT)
			return set_why(why, "unknown claim in the CWT claims header",
				       MOAT_E_PROTOCOL);
		if (!cbor_read_int(d, &e->iat))
			return set_why(why, "iat claim is not an integer", MOAT_E_MALFORMED);
		e->has_iat = true;
	}
	return MOAT_OK;
}

static int read_piv(struct cbor_dec *d, struct cose_encrypt0 *e, const char **why)
{
	struct moat_bytes piv;

	if (!cbor_read_bstr(d, &piv) || piv.len < 1 || piv.len > PIV_MAX)
		return set_why(why, "partial IV is not a 1-5 byte string", MOAT_E_MALFORMED);
	if (piv.len > 1 && piv.ptr[0] == 0)
		return set_why(why, "partial IV has a leading zero byte", MOAT_E_MALFORMED);
	e->seq = 0;
	for (size_t i = 0; i < piv.len; i++)
		e->seq = e->seq << 8 | piv.ptr[i];
	return MOAT_OK;
}

/* Parses the protected header bytes (validated CBOR) into <e>. */
static int read_protected(struct moat_bytes prot, struct cose_encrypt0 *e, const char **why)
{
	struct cbor_dec d;
	struct moat_bytes v;
	size_t pairs;
	unsigned seen = 0;
	int64_t label, alg;
	int rc;

	if (cbor_check(prot.ptr, prot.len) != MOAT_OK)
		return set_why(why, "protected header is not strict CBOR", MOAT_E_MALFORMED);
	cbor_dec_init(&d, prot.ptr, prot.len);
	if (!cbor_read_map(&d, &pairs))
		return set_why(why, "protected header is not a map", MOAT_E_MALFORMED);
	for (size_t i = 0; i < pairs; i++) {
		if (cbor_peek(&d) != CBOR_UINT && cbor_peek(&d) != CBOR_NINT)
			return set_why(why, "unknown protected header label", MOAT_E_PROTOCOL);
		if (!cbor_read_int(&d, &label))
			return set_why(why, "unknown protected header label", MOAT_E_PROTOCOL);
		switch (label) {
		case HDR_ALG:
			if (!cbor_read_int(&d, &alg) || alg < -65536 || alg > 65535)
				return set_why(why, "alg is not a COSE algorithm id",
					       MOAT_E_MALFORMED);
			e->alg = (int)alg;
			break;
		case HDR_KID:
			if (!cbor_read_bstr(&d, &e->sender_id) || e->sender_id.len < 1 ||
			    e->sender_id.len > E2E_SENDER_ID_MAX)
				return set_why(why, "kid is not a 1-6 byte sender id",
					       MOAT_E_MALFORMED);
			break;
		case HDR_PARTIAL_IV:
			rc = read_piv(&d, e, why);
			if (rc < 0)
				return rc;
			break;
		case HDR_KID_CONTEXT:
			if (!cbor_read_bstr(&d, &v) || v.len != E2E_KID_CONTEXT_LEN)
				return set_why(why, "kid context is not group id (8) and epoch (4)",
					       MOAT_E_MALFORMED);
			memcpy(e->group_id, v.ptr, COSE_GROUP_ID_LEN);
			e->epoch = (uint32_t)v.ptr[8] << 24 | (uint32_t)v.ptr[9] << 16 |
				   (uint32_t)v.ptr[10] << 8 | v.ptr[11];
			break;
		case HDR_CWT_CLAIMS:
			rc = read_claims(&d, e, why);
			if (rc < 0)
				return rc;
			break;
		default:
			return set_why(why, "unknown protected header label", MOAT_E_PROTOCOL);
		}
		seen |= 1u << label; /* labels are < 16 here, and never repeated */
	}
	if ((seen &
	     (1u << HDR_ALG | 1u << HDR_KID | 1u << HDR_PARTIAL_IV | 1u << HDR_KID_CONTEXT)) !=
	    (1u << HDR_ALG | 1u << HDR_KID | 1u << HDR_PARTIAL_IV | 1u << HDR_KID_CONTEXT))
		return set_why(why, "protected header lacks alg, kid, partial IV or kid context",
			       MOAT_E_MALFORMED);
	return MOAT_OK;
}

/* Reads tag <tag>, an array of <n> and the protected and empty unprotected headers. */
static int read_frame(struct cbor_dec *d, struct moat_bytes env, uint64_t want_tag, size_t want_n,
		      struct moat_bytes *prot, const char **why)
{
	uint64_t tag;
	size_t n, pairs;

	if (cbor_check(env.ptr, env.len) != MOAT_OK)
		return set_why(why, "envelope is not strict CBOR", MOAT_E_MALFORMED);
	cbor_dec_init(d, env.ptr, env.len);
	if (!cbor_read_tag(d, &tag) || tag != want_tag)
		return set_why(why,
			       want_tag == COSE_TAG_ENCRYPT0
				   ? "envelope is not a tagged COSE_Encrypt0"
				   : "envelope is not a tagged COSE_Sign1",
			       MOAT_E_MALFORMED);
	if (!cbor_read_array(d, &n) || n != want_n)
		return set_why(why, "envelope array has the wrong length", MOAT_E_MALFORMED);
	if (!cbor_read_bstr(d, prot) || prot->len == 0)
		return set_why(why, "protected header is missing", MOAT_E_MALFORMED);
	if (!cbor_read_map(d, &pairs))
		return set_why(why, "unprotected header is not a map", MOAT_E_MALFORMED);
	if (pairs != 0)
		return set_why(why, "unprotected header is not empty", MOAT_E_PROTOCOL);
	return MOAT_OK;
}

int cose_encrypt0_decode(struct moat_bytes env, struct cose_encrypt0 *e, const char **why)
{
	struct cbor_dec d;
	int rc;

	memset(e, 0, sizeof(*e));
	rc = read_frame(&d, env, COSE_TAG_ENCRYPT0, 3, &e->protected_hdr, why);
	if (rc < 0)
		return rc;
	rc = read_protected(e->protected_hdr, e, why);
	if (rc < 0)
		return rc;
	if (!cbor_read_bstr(&d, &e->ciphertext) || e->ciphertext.len < E2E_TAG_LEN)
		return set_why(why, "ciphertext is missing or shorter than a tag",
			       MOAT_E_MALFORMED);
	return MOAT_OK;
}

int cose_encrypt0_open(const struct cose_encrypt0 *e, const struct cose_group *g, int expected_alg,
		       struct moat_bytes topic, struct buf *out, const char **why)
{
	struct e2e_keys keys;
	int rc;

	if (!e2e_alg_is_valid(expected_alg) || e->sender_id.len < 1 ||
	    e->sender_id.len > E2E_SENDER_ID_MAX)
		return set_why(why, "no policy algorithm or a bad sender id", MOAT_E_INVAL);
	rc = cose_derive_keys(g, e->sender_id, expected_alg, &keys);
	if (rc < 0)
		return set_why(why, "key derivation failed", rc);
	rc = cose_encrypt0_open_keys(e, g, &keys, expected_alg, topic, out, why);
	OPENSSL_cleanse(&keys, sizeof(keys));
	return rc;
}

int cose_encrypt0_open_keys(const struct cose_encrypt0 *e, const struct cose_group *g,
			    const struct e2e_keys *keys, int expected_alg, struct moat_bytes topic,
			    struct buf *out, const char **why)
{
	struct buf aad = {0};
	uint8_t nonce[E2E_NONCE_LEN];
	size_t len;
	int rc;

	if (!e2e_alg_is_valid(expected_alg) || topic.len == 0 || e->ciphertext.len < E2E_TAG_LEN ||
	    e->seq > E2E_SEQ_MAX)
		return set_why(why,
			       "no topic, no policy algorithm, no ciphertext or seq out of range",
			       MOAT_E_INVAL);
	if (e->alg != expected_alg)
		return set_why(why, "alg is not the one the topic policy requires",
			       MOAT_E_PROTOCOL);
	if (CRYPTO_memcmp(e->group_id, g->group_id, COSE_GROUP_ID_LEN) != 0)
		return set_why(why, "kid context names another group", MOAT_E_PROTOCOL);
	if (e->epoch != g->epoch)
		return set_why(why, "kid context names another epoch", MOAT_E_PROTOCOL);
	e2e_nonce(keys->common_iv, e->sender_id, e->seq, nonce);
	len = e->ciphertext.len - E2E_TAG_LEN;
	rc = put_to_be_authenticated(&aad, "Encrypt0", e->protected_hdr, topic, NULL);
	if (rc == MOAT_OK)
		rc = buf_reserve(out, len + 1);
	if (rc == MOAT_OK) {
		rc =
		    e2e_aead_open(expected_alg, keys->sender_key, nonce,
				  (struct moat_bytes){.ptr = buf_head(&aad), .len = buf_used(&aad)},
				  e->ciphertext, out->data + out->len);
		if (rc == MOAT_OK)
			out->len += len;
		else if (rc == MOAT_E_CRYPTO)
			set_why(why,
				"authentication tag does not verify (altered, forged, wrong key "
				"or wrong topic)",
				rc);
	}
	if (rc < 0 && rc != MOAT_E_CRYPTO)
		set_why(why, "out of memory or AEAD failure", rc);
	buf_fini(&aad);
	OPENSSL_cleanse(nonce, sizeof(nonce));
	return rc;
}

static int ed25519(bool sign, const uint8_t *key, const uint8_t *msg, size_t len, uint8_t *sig)
{
	EVP_PKEY *pk;
	EVP_MD_CTX *md;
	size_t sig_len = COSE_ED25519_SIG_LEN;
	int rc = MOAT_E_CRYPTO;

	pk = sign ? EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, NULL, key, 32)
		  : EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, key, 32);
	if (pk == NULL)
		return MOAT_E_CRYPTO;
	md = EVP_MD_CTX_new();
	if (md == NULL) {
		EVP_PKEY_free(pk);
		return MOAT_E_NOMEM;
	}
	if (sign) {
		if (EVP_DigestSignInit(md, NULL, NULL, NULL, pk) == 1 &&
		    EVP_DigestSign(md, sig, &sig_len, msg, len) == 1 &&
		    sig_len == COSE_ED25519_SIG_LEN)
			rc = MOAT_OK;
	} else {
		if (EVP_DigestVerifyInit(md, NULL, NULL, NULL, pk) == 1 &&
		    EVP_DigestVerify(md, sig, COSE_ED25519_SIG_LEN, msg, len) == 1)
			rc = MOAT_OK;
	}
	EVP_MD_CTX_free(md);
	EVP_PKEY_free(pk);
	return rc;
}

/* cose_sign_fn over an in-memory seed (<arg>) */
static int sign_with_seed(void *arg, const uint8_t *msg, size_t len,
			  uint8_t sig[COSE_ED25519_SIG_LEN])
{
	return ed25519(true, arg, msg, len, sig);
}

int cose_sign1_sign(const uint8_t seed[32], struct moat_bytes kid, struct moat_bytes topic,
		    struct moat_bytes payload, struct buf *out)
{
	return cose_sign1_sign_with(sign_with_seed, (void *)seed, kid, topic, payload, out);
}

int cose_sign1_sign_with(cose_sign_fn *sign, void *sign_arg, struct moat_bytes kid,
			 struct moat_bytes topic, struct moat_bytes payload, struct buf *out)
{
	struct buf prot = {0}, tbs = {0};
	uint8_t sig[COSE_ED25519_SIG_LEN];
	struct moat_bytes prot_view;
	size_t mark = buf_used(out);
	int rc;

	if (sign == NULL || kid.len < 1 || kid.len > COSE_SIGN1_KID_MAX || topic.len == 0)
		return MOAT_E_INVAL;
	rc = cbor_put_map(&prot, 2);
	if (rc == MOAT_OK)
		rc = cbor_put_uint(&prot, HDR_ALG);
	if (rc == MOAT_OK)
		rc = cbor_put_int(&prot, COSE_ALG_EDDSA);
	if (rc == MOAT_OK)
		rc = cbor_put_uint(&prot, HDR_KID);
	if (rc == MOAT_OK)
		rc = cbor_put_bstr(&prot, kid.ptr, kid.len);
	prot_view = (struct moat_bytes){.ptr = buf_head(&prot), .len = buf_used(&prot)};
	if (rc == MOAT_OK)
		rc = put_to_be_authenticated(&tbs, "Signature1", prot_view, topic, &payload);
	if (rc == MOAT_OK)
		rc = sign(sign_arg, buf_head(&tbs), buf_used(&tbs), sig);
	if (rc > 0)
		rc = MOAT_E_CRYPTO; /* a callback outside the contract */
	if (rc == MOAT_OK)
		rc = cbor_put_tag(out, COSE_TAG_SIGN1);
	if (rc == MOAT_OK)
		rc = cbor_put_array(out, 4);
	if (rc == MOAT_OK)
		rc = cbor_put_bstr(out, prot_view.ptr, prot_view.len);
	if (rc == MOAT_OK)
		rc = cbor_put_map(out, 0);
	if (rc == MOAT_OK)
		rc = cbor_put_bstr(out, payload.ptr, payload.len);
	if (rc == MOAT_OK)
		rc = cbor_put_bstr(out, sig, sizeof(sig));
	if (rc < 0)
		out->len = out->off + mark;
	buf_fini(&prot);
	buf_fini(&tbs);
	return rc;
}

int cose_sign1_decode(struct moat_bytes env, struct cose_sign1 *s, const char **why)
{
	struct cbor_dec d, h;
	size_t pairs;
	int64_t label, alg = 0;
	int rc;

	memset(s, 0, sizeof(*s));
	rc = read_frame(&d, env, COSE_TAG_SIGN1, 4, &s->protected_hdr, why);
	if (rc < 0)
		return rc;
	if (cbor_check(s->protected_hdr.ptr, s->protected_hdr.len) != MOAT_OK)
		return set_why(why, "protected header is not strict CBOR", MOAT_E_MALFORMED);
	cbor_dec_init(&h, s->protected_hdr.ptr, s->protected_hdr.len);
	if (!cbor_read_map(&h, &pairs))
		return set_why(why, "protected header is not a map", MOAT_E_MALFORMED);
	for (size_t i = 0; i < pairs; i++) {
		if (cbor_peek(&h) != CBOR_UINT && cbor_peek(&h) != CBOR_NINT)
			return set_why(why, "unknown protected header label", MOAT_E_PROTOCOL);
		if (!cbor_read_int(&h, &label))
			return set_why(why, "unknown protected header label", MOAT_E_PROTOCOL);
		if (label == HDR_ALG) {
			if (!cbor_read_int(&h, &alg))
				return set_why(why, "alg is not an integer", MOAT_E_MALFORMED);
			if (alg != COSE_ALG_EDDSA)
				return set_why(why, "signature alg is not EdDSA (-8)",
					       MOAT_E_PROTOCOL);
		} else if (label == HDR_KID) {
			if (!cbor_read_bstr(&h, &s->kid) || s->kid.len < 1 ||
			    s->kid.len > COSE_SIGN1_KID_MAX)
				return set_why(why, "kid is not a 1-128 byte string",
					       MOAT_E_MALFORMED);
		} else {
			return set_why(why, "unknown protected header label", MOAT_E_PROTOCOL);
		}
	}
	if (alg != COSE_ALG_EDDSA || s->kid.len == 0)
		return set_why(why, "protected header lacks alg or kid", MOAT_E_MALFORMED);
	if (!cbor_read_bstr(&d, &s->payload))
		return set_why(why, "payload is not an attached byte string", MOAT_E_MALFORMED);
	if (!cbor_read_bstr(&d, &s->signature) || s->signature.len != COSE_ED25519_SIG_LEN)
		return set_why(why, "signature is not 64 bytes", MOAT_E_MALFORMED);
	return MOAT_OK;
}

int cose_sign1_verify(const struct cose_sign1 *s, const uint8_t pub[32], struct moat_bytes topic,
		      const char **why)
{
	struct buf tbs = {0};
	uint8_t sig[COSE_ED25519_SIG_LEN];
	int rc;

	if (topic.len == 0 || s->signature.len != COSE_ED25519_SIG_LEN)
		return set_why(why, "no topic or no signature", MOAT_E_INVAL);
	memcpy(sig, s->signature.ptr, sizeof(sig));
	rc = put_to_be_authenticated(&tbs, "Signature1", s->protected_hdr, topic, &s->payload);
	if (rc == MOAT_OK) {
		rc = ed25519(false, pub, buf_head(&tbs), buf_used(&tbs), sig);
		if (rc == MOAT_E_CRYPTO)
			set_why(why, "signature does not verify (altered, wrong signer or topic)",
				rc);
	}
	if (rc == MOAT_E_NOMEM)
		set_why(why, "out of memory", rc);
	buf_fini(&tbs);
	return rc;
}
