/*
 * The Security Center's signing keys behind one interface: the CA key
 * (ECDSA P-256) and the token signing key (Ed25519). The file signer keeps
 * the private key in a PEM file created 0600 with O_EXCL and refuses one
 * that group or others can read, like ssh.
 *
 * A PKCS#11 signer (SECURITY-DESIGN.md 4.3) is a second ops table: for the
 * P-256 CA key, libp11's engine loads "pkcs11:token=moat-ca;object=ca" as an
 * EVP_PKEY that ops->pkey returns, so X509_sign and X509_CRL_sign in ca.c
 * work unchanged; for Ed25519 (a separate token: libp11 0.4.12 cannot list
 * it) ops->sign calls C_Sign(CKM_EDDSA) single-part and ops->pkey returns a
 * public-only key. Nothing outside signer_*.c sees which one is in use.
 */
#ifndef MOAT_SC_SIGNER_H
#define MOAT_SC_SIGNER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>

#include "conf/config.h" /* struct moat_diag */

enum signer_algo {
	SIGNER_ECDSA_P256 = 1, /* CA: certificates and CRLs; ES256 */
	SIGNER_ED25519 = 2,    /* tokens and SC responses; EdDSA */
};

enum { SIGNER_SIG_MAX = 80, SIGNER_ABI_VERSION = 1 };

struct signer;

struct signer_ops {
	unsigned abi_version; /* SIGNER_ABI_VERSION */
	const char *name;     /* "file", "pkcs11" */
	/* Signs <msg>: Ed25519 over the message, or ECDSA P-256 over its
	 * SHA-256 (DER signature). Writes at most SIGNER_SIG_MAX bytes. */
	int (*sign)(struct signer *s, const uint8_t *msg, size_t len, uint8_t *sig,
		    size_t *sig_len);
	/* The key for OpenSSL's X509_sign/X509_CRL_sign (private, or a handle to a
	 * token key); owned by <s>. */
	EVP_PKEY *(*pkey)(struct signer *s);
	void (*destroy)(struct signer *s);
};

struct signer {
	const struct signer_ops *ops;
	enum signer_algo algo;
};

/* Creates a new key of <algo> in the file <path> (O_EXCL, mode 0600, PEM
 * PKCS#8) and returns its signer. MOAT_E_DENIED when <path> exists. */
int signer_file_create(struct signer **out, const char *path, enum signer_algo algo,
		       struct moat_diag *diag);

/* Opens the PEM key file <path>, which must be a regular file owned by us
 * with no group/other permission bits (MOAT_E_DENIED otherwise) and hold an
 * unencrypted key of <algo> (MOAT_E_CRYPTO otherwise). */
int signer_file_open(struct signer **out, const char *path, enum signer_algo algo,
		     struct moat_diag *diag);

/* Writes the private key <key> to the new file <path> (O_EXCL, 0600, PEM
 * PKCS#8), e.g. a simulated device's key. MOAT_E_DENIED when it exists. */
int signer_write_key_file(const char *path, EVP_PKEY *key, struct moat_diag *diag);

/* Formats <fmt> into <diag> (may be NULL) and returns <rc>: the Security
 * Center's "fail with a message" for signers and their configuration. */
int signer_fail(struct moat_diag *diag, int rc, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Opens <path> for reading when it is a regular file owned by us with no
 * group/other permission bits: the descriptor, or MOAT_E_IO / MOAT_E_DENIED
 * with <diag> naming the file and <what> ("a private key", "a PIN file"). */
int signer_open_secret_file(const char *path, const char *what, struct moat_diag *diag);

/* Whether <key> is of <algo> (Ed25519, or EC on P-256). */
bool signer_key_is(EVP_PKEY *key, enum signer_algo algo);

/* Signs <msg> with the OpenSSL key <key> as signer_ops.sign says for
 * <algo>: MOAT_OK, MOAT_E_NOMEM or MOAT_E_CRYPTO. */
int signer_evp_sign(EVP_PKEY *key, enum signer_algo algo, const uint8_t *msg, size_t len,
		    uint8_t *sig, size_t *sig_len);

/* Signs with <s> (see signer_ops.sign). */
int signer_sign(struct signer *s, const uint8_t *msg, size_t len, uint8_t *sig, size_t *sig_len);

/* <s>'s key for X509_sign (borrowed). */
EVP_PKEY *signer_pkey(struct signer *s);

/* Writes <s>'s public key, PEM SubjectPublicKeyInfo, to a new string the
 * caller frees; NULL on out of memory. */
char *signer_public_pem(struct signer *s);

/* Destroys <s>; NULL is fine. */
void signer_destroy(struct signer *s);

#endif
