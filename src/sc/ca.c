/*
 * The certificate authority (ca.h): certificate and CRL construction with
 * OpenSSL 3. Extensions with fixed values use OpenSSL's config syntax on
 * constant strings; names from callers (SANs) are built as GENERAL_NAMEs,
 * never pasted into config text.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/objects.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>

#include <moat/error.h>

#include "sc/ca.h"

struct ca {
	struct signer *signer;
	X509 *cert;
};

static int fail(struct moat_diag *diag, int rc, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int fail(struct moat_diag *diag, int rc, const char *fmt, ...)
{
	va_list ap;

	if (diag != NULL) {
		va_start(ap, fmt);
		vsnprintf(diag->msg, sizeof(diag->msg), fmt, ap);
		va_end(ap);
	}
	return rc;
}

X509 *ca_cert(const struct ca *ca)
{
	return ca->cert;
}

void ca_destroy(struct ca *ca)
{
	if (ca == NULL)
		return;
	X509_free(ca->cert);
	free(ca);
}

/* A random positive 128-bit serial into <x>, its hex (upper case, no
 * leading zeros) into <hex>. */
static int set_serial(X509 *x, char hex[REG_SERIAL_HEX_MAX + 1])
{
	uint8_t b[16];
	BIGNUM *bn = NULL;
	char *h = NULL;
	int rc = MOAT_E_CRYPTO;

	do {
		if (RAND_bytes(b, sizeof(b)) != 1)
			return MOAT_E_CRYPTO;
		b[0] &= 0x7f; /* positive in DER without a leading zero byte */
	} while (b[0] == 0);
	bn = BN_bin2bn(b, sizeof(b), NULL);
	if (bn != NULL && BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x)) != NULL &&
	    (h = BN_bn2hex(bn)) != NULL) {
		const char *p = h;

		while (p[0] == '0' && p[1] != '\0')
			p++;
		snprintf(hex, REG_SERIAL_HEX_MAX + 1, "%s", p);
		rc = MOAT_OK;
	}
	OPENSSL_free(h);
	BN_free(bn);
	return rc;
}

/* Adds the extension <nid> with the constant OpenSSL config <value>. */
static bool add_ext(X509 *x, X509V3_CTX *ctx, int nid, const char *value)
{
	X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, ctx, nid, value);
	bool ok = ext != NULL && X509_add_ext(x, ext, -1) == 1;

	X509_EXTENSION_free(ext);
	return ok;
}

static bool set_validity(X509 *x, int64_t not_before_s, int64_t not_after_s)
{
	return ASN1_TIME_set(X509_getm_notBefore(x), (time_t)not_before_s) != NULL &&
	       ASN1_TIME_set(X509_getm_notAfter(x), (time_t)not_after_s) != NULL;
}

static bool set_cn(X509_NAME *name, const char *cn)
{
	return X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8, (const unsigned char *)cn, -1,
					  -1, 0) == 1;
}

int ca_create(struct ca **out, struct signer *signer, const char *name, unsigned days,
	      int64_t now_s, struct moat_diag *diag)
{
	char cn[96], serial[REG_SERIAL_HEX_MAX + 1];
	X509V3_CTX ctx;
	struct ca *ca;
	X509 *x;

	if (signer->algo != SIGNER_ECDSA_P256)
		return fail(diag, MOAT_E_INVAL, "the CA key must be ECDSA P-256");
	if (!reg_name_is_valid(name))
		return fail(diag, MOAT_E_INVAL, "CA name: 1 to %d of [A-Za-z0-9._-]", REG_NAME_MAX);
	snprintf(cn, sizeof(cn), "Moat SC CA %s", name);
	days = days != 0 ? days : CA_CA_DAYS;
	x = X509_new();
	if (x == NULL)
		return MOAT_E_NOMEM;
	X509V3_set_ctx(&ctx, x, x, NULL, NULL, 0);
	if (X509_set_version(x, X509_VERSION_3) != 1 || set_serial(x, serial) < 0 ||
	    !set_cn(X509_get_subject_name(x), cn) ||
	    X509_set_issuer_name(x, X509_get_subject_name(x)) != 1 ||
	    !set_validity(x, now_s - CA_BACKDATE_S, now_s + (int64_t)days * 86400) ||
	    X509_set_pubkey(x, signer_pkey(signer)) != 1 ||
	    !add_ext(x, &ctx, NID_basic_constraints, "critical,CA:TRUE,pathlen:0") ||
	    !add_ext(x, &ctx, NID_key_usage, "critical,keyCertSign,cRLSign") ||
	    !add_ext(x, &ctx, NID_subject_key_identifier, "hash") ||
	    !add_ext(x, &ctx, NID_authority_key_identifier, "keyid:always") ||
	    X509_sign(x, signer_pkey(signer), EVP_sha256()) <= 0) {
		X509_free(x);
		return fail(diag, MOAT_E_CRYPTO, "could not make the CA certificate");
	}
	ca = calloc(1, sizeof(*ca));
	if (ca == NULL) {
		X509_free(x);
		return MOAT_E_NOMEM;
	}
	ca->signer = signer;
	ca->cert = x;
	*out = ca;
	return MOAT_OK;
}

int ca_load(struct ca **out, struct signer *signer, const char *path, struct moat_diag *diag)
{
	struct ca *ca;
	X509 *x = NULL;
	FILE *f;

	f = fopen(path, "re");
	if (f == NULL)
		return fail(diag, MOAT_E_IO, "%s: %s", path, strerror(errno));
	x = PEM_read_X509(f, NULL, NULL, NULL);
	fclose(f);
	if (x == NULL)
		return fail(diag, MOAT_E_PARSE, "%s: no PEM certificate", path);
	if (EVP_PKEY_eq(X509_get0_pubkey(x), signer_pkey(signer)) != 1) {
		X509_free(x);
		return fail(diag, MOAT_E_CRYPTO, "%s: the certificate is not for the CA key", path);
	}
	ca = calloc(1, sizeof(*ca));
	if (ca == NULL) {
		X509_free(x);
		return MOAT_E_NOMEM;
	}
	ca->signer = signer;
	ca->cert = x;
	*out = ca;
	return MOAT_OK;
}

/* Refuses CSR keys other than EC P-256, Ed25519 and RSA >= 2048, by name. */
static int check_key(EVP_PKEY *key, struct moat_diag *diag)
{
	char group[64];

	if (EVP_PKEY_is_a(key, "ED25519"))
		return MOAT_OK;
	if (EVP_PKEY_is_a(key, "EC")) {
		if (EVP_PKEY_get_utf8_string_param(key, OSSL_PKEY_PARAM_GROUP_NAME, group,
						   sizeof(group), NULL) != 1)
			snprintf(group, sizeof(group), "with explicit parameters");
		if (strcmp(group, "prime256v1") == 0)
			return MOAT_OK;
		return fail(
		    diag, MOAT_E_DENIED,
		    "CSR key: EC curve %s is refused; use EC P-256 (prime256v1), Ed25519 or "
		    "RSA of at least 2048 bits",
		    group);
	}
	if (EVP_PKEY_is_a(key, "RSA")) {
		int bits = EVP_PKEY_get_bits(key);

		if (bits >= 2048)
			return MOAT_OK;
		return fail(diag, MOAT_E_DENIED,
			    "CSR key: RSA %d bits is too weak; use RSA of at least 2048 bits, or "
			    "EC P-256",
			    bits);
	}
	return fail(
	    diag, MOAT_E_DENIED,
	    "CSR key: type %s is refused; use EC P-256, Ed25519 or RSA of at least 2048 bits",
	    EVP_PKEY_get0_type_name(key) != NULL ? EVP_PKEY_get0_type_name(key) : "unknown");
}

/* Parses and checks the untrusted CSR: its signature algorithm, key and
 * self-signature. */
static int read_csr(const char *pem, size_t len, X509_REQ **out, struct moat_diag *diag)
{
	X509_REQ *req;
	EVP_PKEY *key;
	int md_nid = NID_undef, pk_nid, rc;
	BIO *bio;

	if (len == 0 || len > 64 * 1024 || len > INT32_MAX)
		return fail(diag, MOAT_E_LIMIT, "CSR: 1 byte to 64 KiB of PEM");
	bio = BIO_new_mem_buf(pem, (int)len);
	if (bio == NULL)
		return MOAT_E_NOMEM;
	req = PEM_read_bio_X509_REQ(bio, NULL, NULL, NULL);
	BIO_free(bio);
	ERR_clear_error();
	if (req == NULL)
		return fail(diag, MOAT_E_PARSE, "CSR: no PEM certificate request");
	key = X509_REQ_get0_pubkey(req);
	if (key == NULL) {
		rc = fail(diag, MOAT_E_PARSE, "CSR: unreadable public key");
		goto err_free;
	}
	rc = check_key(key, diag);
	if (rc < 0)
		goto err_free;
	if (OBJ_find_sigid_algs(X509_REQ_get_signature_nid(req), &md_nid, &pk_nid) != 1 ||
	    md_nid == NID_md5 || md_nid == NID_sha1 || md_nid == NID_md4) {
		rc = fail(diag, MOAT_E_DENIED,
			  "CSR: signature algorithm %s is refused; sign with SHA-256 or better",
			  OBJ_nid2sn(X509_REQ_get_signature_nid(req)));
		goto err_free;
	}
	if (X509_REQ_verify(req, key) != 1) {
		ERR_clear_error();
		rc = fail(diag, MOAT_E_CRYPTO, "CSR: its self-signature does not verify");
		goto err_free;
	}
	*out = req;
	return MOAT_OK;

err_free:
	X509_REQ_free(req);
	return rc;
}

/* A host name: 1..253 characters of dot-separated labels of 1..63
 * [A-Za-z0-9-] that neither start nor end with '-' (RFC 1123). */
static bool is_hostname(const char *s)
{
	size_t n = strnlen(s, 254), label = 0;

	if (n == 0 || n > 253)
		return false;
	for (size_t i = 0; i <= n; i++) {
		char c = s[i];

		if (c == '.' || c == '\0') {
			if (label == 0 || label > 63 || s[i - 1] == '-')
				return false;
			label = 0;
		} else if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
			   (c >= '0' && c <= '9') || (c == '-' && label > 0)) {
			label++;
		} else {
			return false;
		}
	}
	return true;
}

/* Adds the subjectAltName of <sans> ("DNS:name" / "IP:addr", checked). */
static int add_sans(X509 *x, const char *const *sans, size_t count, struct moat_diag *diag)
{
	GENERAL_NAMES *gens = sk_GENERAL_NAME_new_null();
	int rc = MOAT_OK;

	if (gens == NULL)
		return MOAT_E_NOMEM;
	for (size_t i = 0; rc == MOAT_OK && i < count; i++) {
		const char *s = sans[i];
		GENERAL_NAME *gen = NULL;

		if (strncmp(s, "DNS:", 4) == 0 && is_hostname(s + 4)) {
			ASN1_IA5STRING *ia5 = ASN1_IA5STRING_new();

			gen = GENERAL_NAME_new();
			if (ia5 == NULL || gen == NULL || ASN1_STRING_set(ia5, s + 4, -1) != 1) {
				ASN1_IA5STRING_free(ia5);
				GENERAL_NAME_free(gen);
				rc = MOAT_E_NOMEM;
				break;
			}
			GENERAL_NAME_set0_value(gen, GEN_DNS, ia5);
		} else if (strncmp(s, "IP:", 3) == 0) {
			ASN1_OCTET_STRING *ip = a2i_IPADDRESS(s + 3);

			gen = ip != NULL ? GENERAL_NAME_new() : NULL;
			if (gen == NULL) {
				ASN1_OCTET_STRING_free(ip);
				rc =
				    fail(diag, MOAT_E_INVAL, "SAN %s: not an IPv4/IPv6 address", s);
				break;
			}
			GENERAL_NAME_set0_value(gen, GEN_IPADD, ip);
		} else {
			rc = fail(diag, MOAT_E_INVAL,
				  "SAN %s: write DNS:<host name (RFC 1123)> or IP:<address>", s);
			break;
		}
		if (sk_GENERAL_NAME_push(gens, gen) <= 0) {
			GENERAL_NAME_free(gen);
			rc = MOAT_E_NOMEM;
		}
	}
	if (rc == MOAT_OK && count > 0 &&
	    X509_add1_ext_i2d(x, NID_subject_alt_name, gens, 0, X509V3_ADD_DEFAULT) != 1)
		rc = fail(diag, MOAT_E_CRYPTO, "could not add the subjectAltName");
	GENERAL_NAMES_free(gens);
	return rc;
}

static int check_req(const struct ca_issue_req *req, struct moat_diag *diag)
{
	if (!reg_name_is_valid(req->thing))
		return fail(diag, MOAT_E_INVAL, "thing name: 1 to %d of [A-Za-z0-9._-]",
			    REG_NAME_MAX);
	if (req->profile != REG_CERT_DEVICE && req->profile != REG_CERT_BROKER)
		return fail(diag, MOAT_E_INVAL, "certificate profile: device or broker");
	if (req->profile == REG_CERT_DEVICE && req->san_count > 0)
		return fail(diag, MOAT_E_INVAL, "SANs are for broker certificates only");
	if (req->san_count > CA_SANS_MAX)
		return fail(diag, MOAT_E_LIMIT, "at most %d SANs", CA_SANS_MAX);
	if (req->days > 3650)
		return fail(diag, MOAT_E_INVAL, "lifetime: at most 3650 days; short is better");
	return MOAT_OK;
}

int ca_issue(struct ca *ca, struct registry *reg, const char *actor, const char *csr_pem,
	     size_t csr_len, const struct ca_issue_req *req, int64_t now_s, X509 **out,
	     struct moat_diag *diag)
{
	struct reg_cert rec = {0};
	X509_REQ *csr = NULL;
	X509V3_CTX ctx;
	unsigned days;
	X509 *x;
	int rc;

	rc = check_req(req, diag);
	if (rc < 0)
		return rc;
	rc = read_csr(csr_pem, csr_len, &csr, diag);
	if (rc < 0)
		return rc;
	days = req->days != 0 ? req->days
			      : (req->profile == REG_CERT_BROKER ? CA_BROKER_DAYS : CA_DEVICE_DAYS);
	rec.profile = req->profile;
	rec.not_before_s = now_s - CA_BACKDATE_S;
	rec.not_after_s = now_s + (int64_t)days * 86400;
	snprintf(rec.thing, sizeof(rec.thing), "%s", req->thing);
	x = X509_new();
	if (x == NULL) {
		rc = MOAT_E_NOMEM;
		goto out_csr;
	}
	X509V3_set_ctx(&ctx, ca->cert, x, NULL, NULL, 0);
	if (X509_set_version(x, X509_VERSION_3) != 1 || set_serial(x, rec.serial) < 0 ||
	    !set_cn(X509_get_subject_name(x), req->thing) ||
	    X509_set_issuer_name(x, X509_get_subject_name(ca->cert)) != 1 ||
	    !set_validity(x, rec.not_before_s, rec.not_after_s) ||
	    X509_set_pubkey(x, X509_REQ_get0_pubkey(csr)) != 1 ||
	    !add_ext(x, &ctx, NID_basic_constraints, "critical,CA:FALSE") ||
	    !add_ext(x, &ctx, NID_key_usage, "critical,digitalSignature") ||
	    !add_ext(x, &ctx, NID_ext_key_usage,
		     req->profile == REG_CERT_BROKER ? "serverAuth" : "clientAuth") ||
	    !add_ext(x, &ctx, NID_subject_key_identifier, "hash") ||
	    !add_ext(x, &ctx, NID_authority_key_identifier, "keyid:always")) {
		rc = fail(diag, MOAT_E_CRYPTO, "could not build the certificate");
		goto err_free;
	}
	rc = add_sans(x, req->sans, req->san_count, diag);
	if (rc < 0)
		goto err_free;
	if (X509_sign(x, signer_pkey(ca->signer), EVP_sha256()) <= 0) {
		rc = fail(diag, MOAT_E_CRYPTO, "could not sign the certificate");
		goto err_free;
	}
	unsigned x5t_len = 0;
	rec.has_x5t =
	    X509_digest(x, EVP_sha256(), rec.x5t_s256, &x5t_len) == 1 && x5t_len == REG_X5T_LEN;
	rc = reg_cert_record(reg, actor, &rec, diag);
	if (rc < 0)
		goto err_free;
	*out = x;
	goto out_csr;

err_free:
	X509_free(x);
out_csr:
	X509_REQ_free(csr);
	ERR_clear_error();
	return rc;
}

int ca_issue_check(const char *csr_pem, size_t csr_len, const struct ca_issue_req *req,
		   struct moat_diag *diag)
{
	X509_REQ *csr = NULL;
	X509 *scratch;
	int rc = MOAT_OK;

	if (req != NULL)
		rc = check_req(req, diag);
	if (rc == MOAT_OK)
		rc = read_csr(csr_pem, csr_len, &csr, diag);
	X509_REQ_free(csr);
	if (rc == MOAT_OK && req != NULL) {
		scratch = X509_new();
		rc = scratch != NULL ? add_sans(scratch, req->sans, req->san_count, diag)
				     : MOAT_E_NOMEM;
		X509_free(scratch);
	}
	ERR_clear_error();
	return rc;
}

struct crl_build {
	X509_CRL *crl;
	int rc;
};

static int add_revoked(void *arg, const struct reg_cert *c)
{
	struct crl_build *b = arg;
	X509_REVOKED *rev = X509_REVOKED_new();
	ASN1_INTEGER *serial = NULL;
	ASN1_TIME *when = NULL;
	ASN1_ENUMERATED *reason = NULL;
	BIGNUM *bn = NULL;
	bool ok;

	ok = rev != NULL && BN_hex2bn(&bn, c->serial) > 0 &&
	     (serial = BN_to_ASN1_INTEGER(bn, NULL)) != NULL &&
	     X509_REVOKED_set_serialNumber(rev, serial) == 1 &&
	     (when = ASN1_TIME_set(NULL, (time_t)c->revoked_at_s)) != NULL &&
	     X509_REVOKED_set_revocationDate(rev, when) == 1;
	/* RFC 5280 5.3.1: leave the reason out rather than say "unspecified" */
	if (ok && c->reason != 0)
		ok = (reason = ASN1_ENUMERATED_new()) != NULL &&
		     ASN1_ENUMERATED_set(reason, c->reason) == 1 &&
		     X509_REVOKED_add1_ext_i2d(rev, NID_crl_reason, reason, 0, 0) == 1;
	if (ok)
		ok = X509_CRL_add0_revoked(b->crl, rev) == 1;
	if (!ok)
		X509_REVOKED_free(rev);
	ASN1_ENUMERATED_free(reason);
	ASN1_TIME_free(when);
	ASN1_INTEGER_free(serial);
	BN_free(bn);
	return ok ? MOAT_OK : MOAT_E_CRYPTO;
}

/* Writes <what> through <write> to <path>.tmp (mode <mode>), then renames
 * it over <path> so readers never see half a file. */
static int write_atomic(const char *path, mode_t mode, int (*write)(BIO *bio, void *obj), void *obj,
			struct moat_diag *diag)
{
	char tmp[4096];
	BIO *bio;
	int fd, ok;

	if ((size_t)snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= sizeof(tmp))
		return fail(diag, MOAT_E_INVAL, "%s: path too long", path);
	unlink(tmp);
	fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode);
	if (fd < 0)
		return fail(diag, MOAT_E_IO, "%s: %s", tmp, strerror(errno));
	bio = BIO_new_fd(fd, BIO_NOCLOSE);
	ok = bio != NULL && write(bio, obj) == 1 && BIO_flush(bio) == 1 && fsync(fd) == 0;
	BIO_free(bio);
	close(fd);
	if (!ok || rename(tmp, path) != 0) {
		unlink(tmp);
		return fail(diag, MOAT_E_IO, "%s: could not write it", path);
	}
	return MOAT_OK;
}

static int write_crl(BIO *bio, void *obj)
{
	return PEM_write_bio_X509_CRL(bio, obj);
}

static int write_cert(BIO *bio, void *obj)
{
	return PEM_write_bio_X509(bio, obj);
}

int ca_write_pem_cert(X509 *x, const char *path, struct moat_diag *diag)
{
	return write_atomic(path, 0644, write_cert, x, diag);
}

int ca_write_crl(struct ca *ca, struct registry *reg, const char *actor, const char *path,
		 unsigned days, int64_t now_s, struct moat_diag *diag)
{
	struct crl_build b = {0};
	ASN1_INTEGER *num = NULL;
	ASN1_TIME *t = NULL;
	X509V3_CTX ctx;
	X509_EXTENSION *aki;
	int64_t number;
	int rc;

	days = days != 0 ? days : CA_CRL_DAYS;
	b.crl = X509_CRL_new();
	if (b.crl == NULL)
		return MOAT_E_NOMEM;
	rc = reg_cert_list_revoked(reg, now_s, add_revoked, &b, diag);
	if (rc < 0)
		goto out;
	rc = reg_crl_next_number(reg, actor, &number, diag);
	if (rc < 0)
		goto out;
	X509V3_set_ctx(&ctx, ca->cert, NULL, NULL, b.crl, 0);
	aki = X509V3_EXT_conf_nid(NULL, &ctx, NID_authority_key_identifier, "keyid:always");
	bool ok = X509_CRL_set_version(b.crl, X509_CRL_VERSION_2) == 1 &&
		  X509_CRL_set_issuer_name(b.crl, X509_get_subject_name(ca->cert)) == 1 &&
		  (t = ASN1_TIME_set(NULL, (time_t)now_s)) != NULL &&
		  X509_CRL_set1_lastUpdate(b.crl, t) == 1 &&
		  ASN1_TIME_set(t, (time_t)(now_s + (int64_t)days * 86400)) != NULL &&
		  X509_CRL_set1_nextUpdate(b.crl, t) == 1 && (num = ASN1_INTEGER_new()) != NULL &&
		  ASN1_INTEGER_set_int64(num, number) == 1 &&
		  X509_CRL_add1_ext_i2d(b.crl, NID_crl_number, num, 0, 0) == 1 && aki != NULL &&
		  X509_CRL_add_ext(b.crl, aki, -1) == 1 && X509_CRL_sort(b.crl) == 1 &&
		  X509_CRL_sign(b.crl, signer_pkey(ca->signer), EVP_sha256()) > 0;
	X509_EXTENSION_free(aki);
	if (!ok)
		rc = fail(diag, MOAT_E_CRYPTO, "could not build the CRL");
	else
		rc = write_atomic(path, 0644, write_crl, b.crl, diag);
out:
	ASN1_INTEGER_free(num);
	ASN1_TIME_free(t);
	X509_CRL_free(b.crl);
	ERR_clear_error();
	return rc;
}

int ca_make_csr(const char *name, EVP_PKEY *key, char **csr_pem, struct moat_diag *diag)
{
	X509_REQ *req = X509_REQ_new();
	BIO *bio = BIO_new(BIO_s_mem());
	char *data;
	long n;
	int rc = MOAT_OK;

	if (req == NULL || bio == NULL || !reg_name_is_valid(name) ||
	    !set_cn(X509_REQ_get_subject_name(req), name) || X509_REQ_set_pubkey(req, key) != 1 ||
	    X509_REQ_sign(req, key, EVP_PKEY_is_a(key, "ED25519") ? NULL : EVP_sha256()) <= 0 ||
	    PEM_write_bio_X509_REQ(bio, req) != 1 || (n = BIO_get_mem_data(bio, &data)) <= 0 ||
	    (*csr_pem = strndup(data, (size_t)n)) == NULL)
		rc = fail(diag, MOAT_E_CRYPTO, "could not make a CSR for %s", name);
	BIO_free(bio);
	X509_REQ_free(req);
	ERR_clear_error();
	return rc;
}

int ca_make_key_csr(const char *name, EVP_PKEY **key, char **csr_pem, struct moat_diag *diag)
{
	EVP_PKEY *k = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	int rc;

	if (k == NULL)
		return fail(diag, MOAT_E_CRYPTO, "could not make a P-256 key");
	rc = ca_make_csr(name, k, csr_pem, diag);
	if (rc < 0) {
		EVP_PKEY_free(k);
		return rc;
	}
	*key = k;
	return MOAT_OK;
}
