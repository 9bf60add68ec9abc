/*
 * The Security Center's certificate authority: a self-signed P-256 CA,
 * device (clientAuth) and broker (serverAuth) certificates issued from
 * PEM CSRs whose keys and self-signatures are checked, with random 128-bit
 * serials recorded in the registry, and v2 CRLs of the revoked serials.
 * The CA key is used only through a signer (signer.h).
 */
#ifndef MOAT_SC_CA_H
#define MOAT_SC_CA_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/x509.h>

#include "sc/registry.h"
#include "sc/signer.h"

enum {
	CA_DEVICE_DAYS = 30,
	CA_BROKER_DAYS = 90,
	CA_CA_DAYS = 1825,
	CA_CRL_DAYS = 7, /* next update: run `moat-sc crl` before it */
	CA_SANS_MAX = 16,
	CA_BACKDATE_S = 300, /* not_before = now - this, for clock skew */
};

struct ca;

struct ca_issue_req {
	const char *thing;	       /* the registered, active thing: the CN */
	enum reg_cert_profile profile; /* device: clientAuth; broker: serverAuth */
	const char *const *sans;       /* broker only: "DNS:name" or "IP:addr" */
	size_t san_count;	       /* at most CA_SANS_MAX */
	unsigned days;		       /* 0: CA_DEVICE_DAYS or CA_BROKER_DAYS */
};

/* Makes a new self-signed CA certificate, CN "Moat SC CA <name>", for the
 * P-256 key of <signer> (borrowed: it must outlive the CA), valid <days>
 * (0: CA_CA_DAYS) from <now_s>. */
int ca_create(struct ca **out, struct signer *signer, const char *name, unsigned days,
	      int64_t now_s, struct moat_diag *diag);

/* Loads the CA certificate PEM file <path> for <signer> (borrowed); the
 * certificate's public key must be the signer's. */
int ca_load(struct ca **out, struct signer *signer, const char *path, struct moat_diag *diag);

/* The CA certificate (borrowed). */
X509 *ca_cert(const struct ca *ca);

/* Destroys <ca> (not its signer); NULL is fine. */
void ca_destroy(struct ca *ca);

/* Issues a certificate for <req> from the PEM CSR <csr_pem> (<csr_len>
 * bytes, untrusted): checks the CSR's self-signature (MOAT_E_CRYPTO) and
 * key (EC P-256, Ed25519 or RSA >= 2048, else MOAT_E_DENIED naming it),
 * ignores the subject it asks for, records the certificate in <reg> as
 * <actor>, and returns it in *<out> (the caller frees it). The registry
 * row is written only if everything before succeeded. */
int ca_issue(struct ca *ca, struct registry *reg, const char *actor, const char *csr_pem,
	     size_t csr_len, const struct ca_issue_req *req, int64_t now_s, X509 **out,
	     struct moat_diag *diag);

/* Checks the PEM CSR <csr_pem> and, unless NULL, <req> (except whether its
 * thing exists) as ca_issue does, without issuing: the same errors. */
int ca_issue_check(const char *csr_pem, size_t csr_len, const struct ca_issue_req *req,
		   struct moat_diag *diag);

/* Writes a v2 CRL of every revoked, unexpired certificate in <reg>, with
 * the next CRL number from <reg>, this update <now_s> and next update
 * <days> later (0: CA_CRL_DAYS), to <path> (PEM, atomically replaced). */
int ca_write_crl(struct ca *ca, struct registry *reg, const char *actor, const char *path,
		 unsigned days, int64_t now_s, struct moat_diag *diag);

/* Makes a PEM CSR with CN <name> signed by <key> (borrowed), e.g. to renew
 * a simulated device's certificate with the key it has; *<csr_pem>
 * (NUL-terminated) is the caller's to free. */
int ca_make_csr(const char *name, EVP_PKEY *key, char **csr_pem, struct moat_diag *diag);

/* Makes a P-256 key and a PEM CSR with CN <name> (for simulated devices and
 * tests): *<key> and *<csr_pem> (NUL-terminated) are the caller's to free. */
int ca_make_key_csr(const char *name, EVP_PKEY **key, char **csr_pem, struct moat_diag *diag);

/* Writes <x> as PEM to <path> (mode 0644, atomically replaced). */
int ca_write_pem_cert(X509 *x, const char *path, struct moat_diag *diag);

#endif
