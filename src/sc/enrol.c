/*
 * Enrolment of a thing: CSR check, registration, public keys, certificate
 * (enrol.h).
 */
#include <stdio.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/pem.h>

#include <moat/error.h>

#include "sc/enrol.h"

int sc_enrol(struct ca *ca, struct registry *reg, const char *actor, const struct sc_enrol_req *req,
	     int64_t now_s, X509 **out, struct moat_diag *d)
{
	const char *name = req->issue.thing;
	int rc;

	rc = ca_issue_check(req->csr_pem, req->csr_len, &req->issue, d);
	if (rc == MOAT_OK && req->create)
		rc = reg_thing_create(reg, actor, name, req->attrs, req->attr_count, NULL, d);
	if (rc == MOAT_OK && req->sign_pub != NULL)
		rc = reg_key_add(reg, actor, name, REG_KEY_ED25519_SIGN, req->sign_pub, d);
	if (rc == MOAT_OK && req->agree_pub != NULL)
		rc = reg_key_add(reg, actor, name, REG_KEY_X25519_AGREE, req->agree_pub, d);
	if (rc == MOAT_OK)
		rc = ca_issue(ca, reg, actor, req->csr_pem, req->csr_len, &req->issue, now_s, out,
			      d);
	return rc;
}

int sc_raw_public_key(const char *pem, size_t len, enum reg_key_kind kind, uint8_t pub[REG_KEY_LEN],
		      struct moat_diag *d)
{
	int type = kind == REG_KEY_X25519_AGREE ? EVP_PKEY_X25519 : EVP_PKEY_ED25519;
	const char *what = kind == REG_KEY_X25519_AGREE ? "X25519" : "Ed25519";
	BIO *bio = len <= 64 * 1024 ? BIO_new_mem_buf(pem, (int)len) : NULL;
	EVP_PKEY *key = bio != NULL ? PEM_read_bio_PUBKEY(bio, NULL, NULL, NULL) : NULL;
	size_t n = REG_KEY_LEN;
	int rc = MOAT_OK;

	if (key == NULL || EVP_PKEY_get_base_id(key) != type ||
	    EVP_PKEY_get_raw_public_key(key, pub, &n) != 1 || n != REG_KEY_LEN) {
		snprintf(d->msg, sizeof(d->msg), "not a PEM %s public key (SubjectPublicKeyInfo)",
			 what);
		rc = MOAT_E_CRYPTO;
	}
	EVP_PKEY_free(key);
	BIO_free(bio);
	ERR_clear_error();
	return rc;
}
