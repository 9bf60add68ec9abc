/* CA: issued device and broker certificates verify against the CA with
 * X509_verify_cert and carry the thing's CN (not the CSR's), the EKU, SANs,
 * lifetime and the serial recorded in the registry; CSRs with a bad
 * signature or weak keys (RSA 1024, P-192, secp160r1) are refused by name;
 * revoked serials appear in signed CRLs whose number increases. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <openssl/bn.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include <moat/error.h>

#include "sc/ca.h"

struct fx {
	char dir[64];
	char path[160];
	struct registry *reg;
	struct signer *key;
	struct ca *ca;
	int64_t now;
	struct moat_diag d;
};

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));

	snprintf(f->dir, sizeof(f->dir), "/tmp/moat-sc-ca-XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	snprintf(f->path, sizeof(f->path), "%s/registry.db", f->dir);
	assert_int_equal(reg_open(&f->reg, f->path, &f->d), MOAT_OK);
	snprintf(f->path, sizeof(f->path), "%s/ca.key", f->dir);
	assert_int_equal(signer_file_create(&f->key, f->path, SIGNER_ECDSA_P256, &f->d), MOAT_OK);
	f->now = (int64_t)time(NULL);
	assert_int_equal(ca_create(&f->ca, f->key, "test", 0, f->now, &f->d), MOAT_OK);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;
	char cmd[160];

	ca_destroy(f->ca);
	signer_destroy(f->key);
	reg_close(f->reg);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->dir);
	assert_int_equal(system(cmd), 0);
	free(f);
	return 0;
}

/* A PEM CSR for <key> asking for CN <cn>; with <other>, the request is
 * signed by <key> but then carries <other>'s public key (bad signature). */
static char *csr_pem(EVP_PKEY *key, const char *cn, EVP_PKEY *other, const EVP_MD *md)
{
	X509_REQ *req = X509_REQ_new();
	BIO *bio = BIO_new(BIO_s_mem());
	char *data, *out;
	long n;

	X509_NAME_add_entry_by_txt(X509_REQ_get_subject_name(req), "CN", MBSTRING_UTF8,
				   (const unsigned char *)cn, -1, -1, 0);
	assert_int_equal(X509_REQ_set_pubkey(req, key), 1);
	assert_true(X509_REQ_sign(req, key, md) > 0);
	if (other != NULL)
		assert_int_equal(X509_REQ_set_pubkey(req, other), 1);
	assert_int_equal(PEM_write_bio_X509_REQ(bio, req), 1);
	n = BIO_get_mem_data(bio, &data);
	out = strndup(data, (size_t)n);
	BIO_free(bio);
	X509_REQ_free(req);
	return out;
}

static int verify_cert(struct fx *f, X509 *x, X509_CRL *crl, int purpose)
{
	X509_STORE *store = X509_STORE_new();
	X509_STORE_CTX *ctx = X509_STORE_CTX_new();
	int ok, err;

	X509_STORE_add_cert(store, ca_cert(f->ca));
	if (crl != NULL) {
		X509_STORE_add_crl(store, crl);
		X509_STORE_set_flags(store, X509_V_FLAG_CRL_CHECK);
	}
	X509_STORE_CTX_init(ctx, store, x, NULL);
	X509_STORE_CTX_set_purpose(ctx, purpose);
	ok = X509_verify_cert(ctx);
	err = X509_STORE_CTX_get_error(ctx);
	X509_STORE_CTX_free(ctx);
	X509_STORE_free(store);
	return ok == 1 ? X509_V_OK : (err != X509_V_OK ? err : -1);
}

static X509 *issue(struct fx *f, const char *thing, enum reg_cert_profile profile,
		   const char *const *sans, size_t san_count, int expect)
{
	EVP_PKEY *k = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	char *pem = csr_pem(k, "evil-asks-for-this", NULL, EVP_sha256());
	struct ca_issue_req req = {
	    .thing = thing, .profile = profile, .sans = sans, .san_count = san_count};
	X509 *x = NULL;

	assert_int_equal(ca_issue(f->ca, f->reg, "test", pem, strlen(pem), &req, f->now, &x, &f->d),
			 expect);
	free(pem);
	EVP_PKEY_free(k);
	return x;
}

static void ca_certificate_is_a_p256_ca(void **state)
{
	struct fx *f = *state;
	X509 *ca = ca_cert(f->ca);
	char cn[64];

	X509_NAME_get_text_by_NID(X509_get_subject_name(ca), NID_commonName, cn, sizeof(cn));
	assert_string_equal(cn, "Moat SC CA test");
	assert_int_equal(X509_check_ca(ca), 1);
	assert_true(X509_get_key_usage(ca) & KU_KEY_CERT_SIGN);
	assert_true(X509_get_key_usage(ca) & KU_CRL_SIGN);
	assert_non_null(X509_get0_subject_key_id(ca));
	assert_non_null(X509_get0_authority_key_id(ca));
	assert_int_equal(X509_verify(ca, X509_get0_pubkey(ca)), 1);
	assert_int_equal(X509_check_issued(ca, ca), X509_V_OK);
}

struct one_cert {
	int count;
	struct reg_cert c;
};

static int keep_cert(void *arg, const struct reg_cert *c)
{
	struct one_cert *o = arg;

	o->count++;
	o->c = *c;
	return MOAT_OK;
}

static void ca_issues_device_certificate(void **state)
{
	struct fx *f = *state;
	struct one_cert rec = {0};
	const ASN1_INTEGER *sn;
	BIGNUM *bn;
	char cn[64], *hex;
	int day;
	int sec;
	X509 *x;

	assert_int_equal(reg_thing_create(f->reg, "test", "dev-1", NULL, 0, NULL, &f->d), MOAT_OK);
	x = issue(f, "dev-1", REG_CERT_DEVICE, NULL, 0, MOAT_OK);
	assert_int_equal(verify_cert(f, x, NULL, X509_PURPOSE_SSL_CLIENT), X509_V_OK);
	/* clientAuth only: not usable as a server */
	assert_int_not_equal(verify_cert(f, x, NULL, X509_PURPOSE_SSL_SERVER), X509_V_OK);
	assert_true(X509_get_extended_key_usage(x) & XKU_SSL_CLIENT);
	assert_false(X509_get_extended_key_usage(x) & XKU_SSL_SERVER);
	assert_true(X509_get_key_usage(x) & KU_DIGITAL_SIGNATURE);
	assert_int_equal(X509_check_ca(x), 0);
	X509_NAME_get_text_by_NID(X509_get_subject_name(x), NID_commonName, cn, sizeof(cn));
	assert_string_equal(cn, "dev-1");
	assert_int_equal(X509_NAME_entry_count(X509_get_subject_name(x)), 1);
	assert_int_equal(ASN1_TIME_diff(&day, &sec, X509_get0_notBefore(x), X509_get0_notAfter(x)),
			 1);
	assert_int_equal((int64_t)day * 86400 + sec, 30 * 86400 + CA_BACKDATE_S);
	/* a positive 128-bit serial, the one in the registry */
	sn = X509_get0_serialNumber(x);
	bn = ASN1_INTEGER_to_BN(sn, NULL);
	assert_false(BN_is_negative(bn));
	assert_true(BN_num_bits(bn) > 64 && BN_num_bits(bn) <= 127);
	hex = BN_bn2hex(bn);
	assert_int_equal(reg_cert_list(f->reg, "dev-1", keep_cert, &rec, &f->d), MOAT_OK);
	assert_int_equal(rec.count, 1);
	assert_string_equal(rec.c.serial, hex[0] == '0' ? hex + 1 : hex);
	assert_int_equal(rec.c.not_after_s, f->now + 30 * 86400);
	OPENSSL_free(hex);
	BN_free(bn);
	X509_free(x);

	/* renewal: a second certificate for the same thing, both recorded */
	x = issue(f, "dev-1", REG_CERT_DEVICE, NULL, 0, MOAT_OK);
	rec.count = 0;
	assert_int_equal(reg_cert_list(f->reg, "dev-1", keep_cert, &rec, &f->d), MOAT_OK);
	assert_int_equal(rec.count, 2);
	X509_free(x);
	/* devices get no SANs; unknown and revoked things no certificate */
	static const char *const sans[] = {"DNS:x"};
	assert_null(issue(f, "dev-1", REG_CERT_DEVICE, sans, 1, MOAT_E_INVAL));
	assert_null(issue(f, "ghost", REG_CERT_DEVICE, NULL, 0, MOAT_E_NOTFOUND));
	assert_int_equal(reg_thing_revoke(f->reg, "test", "dev-1", 0, &f->d), MOAT_OK);
	assert_null(issue(f, "dev-1", REG_CERT_DEVICE, NULL, 0, MOAT_E_DENIED));
}

static void ca_issues_broker_certificate_with_sans(void **state)
{
	struct fx *f = *state;
	static const char *const sans[] = {"DNS:broker.plant-7", "IP:127.0.0.1", "IP:::1",
					   "DNS:x-1.Example.COM"};
	static const char *const bad1[] = {"DNS:a,IP:1.2.3.4"};
	static const char *const bad2[] = {"IP:300.1.1.1"};
	static const char *const bad3[] = {"URI:http://x"};
	static const char *const bad4[] = {"DNS:a_b.example", "DNS:-a.example", "DNS:a..b",
					   "DNS:a.",	      "DNS:*.example",	"DNS:"};
	int day, sec;
	X509 *x;

	assert_int_equal(reg_thing_create(f->reg, "test", "broker-1", NULL, 0, NULL, &f->d),
			 MOAT_OK);
	x = issue(f, "broker-1", REG_CERT_BROKER, sans, 4, MOAT_OK);
	assert_int_equal(verify_cert(f, x, NULL, X509_PURPOSE_SSL_SERVER), X509_V_OK);
	assert_true(X509_get_extended_key_usage(x) & XKU_SSL_SERVER);
	assert_false(X509_get_extended_key_usage(x) & XKU_SSL_CLIENT);
	assert_int_equal(X509_check_host(x, "broker.plant-7", 0, 0, NULL), 1);
	assert_int_equal(X509_check_ip_asc(x, "127.0.0.1", 0), 1);
	assert_int_equal(X509_check_ip_asc(x, "::1", 0), 1);
	assert_int_equal(X509_check_host(x, "a", 0, 0, NULL), 0);
	assert_int_equal(ASN1_TIME_diff(&day, &sec, X509_get0_notBefore(x), X509_get0_notAfter(x)),
			 1);
	assert_int_equal((int64_t)day * 86400 + sec, 90 * 86400 + CA_BACKDATE_S);
	X509_free(x);
	assert_null(issue(f, "broker-1", REG_CERT_BROKER, bad1, 1, MOAT_E_INVAL));
	assert_null(issue(f, "broker-1", REG_CERT_BROKER, bad2, 1, MOAT_E_INVAL));
	assert_null(issue(f, "broker-1", REG_CERT_BROKER, bad3, 1, MOAT_E_INVAL));
	for (size_t i = 0; i < sizeof(bad4) / sizeof(bad4[0]); i++)
		assert_null(issue(f, "broker-1", REG_CERT_BROKER, &bad4[i], 1, MOAT_E_INVAL));
}

static int try_key(struct fx *f, EVP_PKEY *k, EVP_PKEY *other, const EVP_MD *md)
{
	char *pem = csr_pem(k, "x", other, md);
	struct ca_issue_req req = {.thing = "dev", .profile = REG_CERT_DEVICE};
	X509 *x = NULL;
	int rc;

	rc = ca_issue(f->ca, f->reg, "test", pem, strlen(pem), &req, f->now, &x, &f->d);
	free(pem);
	X509_free(x);
	return rc;
}

static void ca_refuses_bad_and_weak_csrs(void **state)
{
	struct fx *f = *state;
	EVP_PKEY *p256 = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	EVP_PKEY *other = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	EVP_PKEY *k;
	struct ca_issue_req req = {.thing = "dev", .profile = REG_CERT_DEVICE};
	X509 *x = NULL;

	assert_int_equal(reg_thing_create(f->reg, "test", "dev", NULL, 0, NULL, &f->d), MOAT_OK);
	assert_int_equal(try_key(f, p256, other, EVP_sha256()), MOAT_E_CRYPTO);
	assert_non_null(strstr(f->d.msg, "self-signature"));
	assert_int_equal(try_key(f, p256, NULL, EVP_sha1()), MOAT_E_DENIED);
	assert_non_null(strstr(f->d.msg, "SHA-256"));

	k = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)1024);
	assert_int_equal(try_key(f, k, NULL, EVP_sha256()), MOAT_E_DENIED);
	assert_non_null(strstr(f->d.msg, "RSA 1024"));
	EVP_PKEY_free(k);
	k = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-192");
	if (k != NULL) { /* P-192 is in OpenSSL 3.0's default provider */
		assert_int_equal(try_key(f, k, NULL, EVP_sha256()), MOAT_E_DENIED);
		assert_non_null(strstr(f->d.msg, "prime192v1"));
		EVP_PKEY_free(k);
	}
	k = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "secp160r1");
	assert_non_null(k);
	assert_int_equal(try_key(f, k, NULL, EVP_sha256()), MOAT_E_DENIED);
	assert_non_null(strstr(f->d.msg, "secp160r1"));
	assert_non_null(strstr(f->d.msg, "P-256"));
	EVP_PKEY_free(k);
	k = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-384");
	assert_int_equal(try_key(f, k, NULL, EVP_sha256()), MOAT_E_DENIED);
	EVP_PKEY_free(k);

	/* accepted: P-256, Ed25519, RSA 2048 */
	assert_int_equal(try_key(f, p256, NULL, EVP_sha256()), MOAT_OK);
	k = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
	assert_int_equal(try_key(f, k, NULL, NULL), MOAT_OK);
	EVP_PKEY_free(k);
	k = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
	assert_int_equal(try_key(f, k, NULL, EVP_sha256()), MOAT_OK);
	EVP_PKEY_free(k);

	/* not a CSR at all, and too big */
	assert_int_equal(ca_issue(f->ca, f->reg, "test", "hello", 5, &req, f->now, &x, &f->d),
			 MOAT_E_PARSE);
	assert_int_equal(ca_issue(f->ca, f->reg, "test", "", 0, &req, f->now, &x, &f->d),
			 MOAT_E_LIMIT);
	assert_null(x);
	EVP_PKEY_free(other);
	EVP_PKEY_free(p256);
}

static X509_CRL *read_crl(const char *path)
{
	FILE *fp = fopen(path, "r");
	X509_CRL *crl;

	assert_non_null(fp);
	crl = PEM_read_X509_CRL(fp, NULL, NULL, NULL);
	fclose(fp);
	assert_non_null(crl);
	return crl;
}

static long crl_number(X509_CRL *crl)
{
	ASN1_INTEGER *n = X509_CRL_get_ext_d2i(crl, NID_crl_number, NULL, NULL);
	long v;

	assert_non_null(n);
	v = ASN1_INTEGER_get(n);
	ASN1_INTEGER_free(n);
	return v;
}

static void ca_crl_lists_revoked_serials_with_increasing_number(void **state)
{
	struct fx *f = *state;
	struct one_cert rec = {0};
	X509_REVOKED *rev = NULL;
	X509_CRL *crl;
	char path[160];
	X509 *a, *b;

	snprintf(path, sizeof(path), "%s/crl.pem", f->dir);
	assert_int_equal(reg_thing_create(f->reg, "test", "a", NULL, 0, NULL, &f->d), MOAT_OK);
	assert_int_equal(reg_thing_create(f->reg, "test", "b", NULL, 0, NULL, &f->d), MOAT_OK);
	a = issue(f, "a", REG_CERT_DEVICE, NULL, 0, MOAT_OK);
	b = issue(f, "b", REG_CERT_DEVICE, NULL, 0, MOAT_OK);

	assert_int_equal(ca_write_crl(f->ca, f->reg, "test", path, 0, f->now, &f->d), MOAT_OK);
	crl = read_crl(path);
	assert_int_equal(X509_CRL_get_version(crl), X509_CRL_VERSION_2);
	assert_int_equal(crl_number(crl), 1);
	assert_true(sk_X509_REVOKED_num(X509_CRL_get_REVOKED(crl)) <= 0); /* -1: none */
	assert_int_equal(verify_cert(f, a, crl, X509_PURPOSE_SSL_CLIENT), X509_V_OK);
	X509_CRL_free(crl);

	assert_int_equal(reg_cert_list(f->reg, "a", keep_cert, &rec, &f->d), MOAT_OK);
	assert_int_equal(reg_cert_revoke(f->reg, "test", rec.c.serial, 1, &f->d), MOAT_OK);
	assert_int_equal(ca_write_crl(f->ca, f->reg, "test", path, 0, f->now, &f->d), MOAT_OK);
	crl = read_crl(path);
	assert_int_equal(crl_number(crl), 2);
	assert_int_equal(X509_CRL_verify(crl, X509_get0_pubkey(ca_cert(f->ca))), 1);
	assert_int_equal(X509_CRL_get0_by_serial(crl, &rev, X509_get0_serialNumber(a)), 1);
	assert_int_equal(X509_CRL_get0_by_serial(crl, &rev, X509_get0_serialNumber(b)), 0);
	assert_int_equal(verify_cert(f, a, crl, X509_PURPOSE_SSL_CLIENT), X509_V_ERR_CERT_REVOKED);
	assert_int_equal(verify_cert(f, b, crl, X509_PURPOSE_SSL_CLIENT), X509_V_OK);
	assert_int_equal(ASN1_TIME_cmp_time_t(X509_CRL_get0_nextUpdate(crl),
					      (time_t)(f->now + CA_CRL_DAYS * 86400)),
			 0);
	X509_CRL_free(crl);
	X509_free(a);
	X509_free(b);
}

static void ca_load_checks_the_key(void **state)
{
	struct fx *f = *state;
	struct signer *other = NULL;
	struct ca *ca = NULL;
	char path[160], kpath[160];

	snprintf(path, sizeof(path), "%s/ca.pem", f->dir);
	assert_int_equal(ca_write_pem_cert(ca_cert(f->ca), path, &f->d), MOAT_OK);
	assert_int_equal(ca_load(&ca, f->key, path, &f->d), MOAT_OK);
	assert_int_equal(X509_cmp(ca_cert(ca), ca_cert(f->ca)), 0);
	ca_destroy(ca);
	snprintf(kpath, sizeof(kpath), "%s/other.key", f->dir);
	assert_int_equal(signer_file_create(&other, kpath, SIGNER_ECDSA_P256, &f->d), MOAT_OK);
	assert_int_equal(ca_load(&ca, other, path, &f->d), MOAT_E_CRYPTO);
	signer_destroy(other);
	assert_int_equal(signer_file_create(&other, kpath, SIGNER_ED25519, &f->d), MOAT_E_DENIED);
}

static void ca_make_key_csr_makes_an_acceptable_csr(void **state)
{
	struct fx *f = *state;
	EVP_PKEY *k = NULL;
	char *pem = NULL;

	assert_int_equal(ca_make_key_csr("sim-1", &k, &pem, &f->d), MOAT_OK);
	assert_int_equal(ca_issue_check(pem, strlen(pem), NULL, &f->d), MOAT_OK);
	/* the request is checked too, before anything is registered */
	static const char *const good[] = {"IP:127.0.0.1"}, *const bad[] = {"IP:nope"};
	struct ca_issue_req req = {
	    .thing = "sim-1", .profile = REG_CERT_BROKER, .sans = good, .san_count = 1};
	assert_int_equal(ca_issue_check(pem, strlen(pem), &req, &f->d), MOAT_OK);
	req.sans = bad;
	assert_int_equal(ca_issue_check(pem, strlen(pem), &req, &f->d), MOAT_E_INVAL);
	req.sans = good;
	req.profile = REG_CERT_DEVICE;
	assert_int_equal(ca_issue_check(pem, strlen(pem), &req, &f->d), MOAT_E_INVAL);
	req.profile = REG_CERT_BROKER;
	req.thing = "a/b";
	assert_int_equal(ca_issue_check(pem, strlen(pem), &req, &f->d), MOAT_E_INVAL);
	free(pem);
	EVP_PKEY_free(k);
	assert_int_equal(ca_make_key_csr("bad/name", &k, &pem, &f->d), MOAT_E_CRYPTO);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(ca_certificate_is_a_p256_ca, setup, teardown),
	    cmocka_unit_test_setup_teardown(ca_issues_device_certificate, setup, teardown),
	    cmocka_unit_test_setup_teardown(ca_issues_broker_certificate_with_sans, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(ca_refuses_bad_and_weak_csrs, setup, teardown),
	    cmocka_unit_test_setup_teardown(ca_crl_lists_revoked_serials_with_increasing_number,
					    setup, teardown),
	    cmocka_unit_test_setup_teardown(ca_load_checks_the_key, setup, teardown),
	    cmocka_unit_test_setup_teardown(ca_make_key_csr_makes_an_acceptable_csr, setup,
					    teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
