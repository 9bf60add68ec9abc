/*
 * The PKCS#11 signer (SECURITY-DESIGN.md 4.3): the Security Center's keys
 * stay in a token (softhsm2 in tests, an HSM in production) and sign there.
 * The ECDSA P-256 CA key goes through libp11's OpenSSL engine, so ca.c's
 * X509_sign and X509_CRL_sign take its EVP_PKEY unchanged; the Ed25519 key
 * is used directly through the module (C_Sign with CKM_EDDSA, single-part),
 * which libp11 0.4.12 cannot do, and should sit in a token of its own: that
 * engine fails to list keys in a token that also holds an Ed25519 key.
 */
#ifndef MOAT_SC_SIGNER_PKCS11_H
#define MOAT_SC_SIGNER_PKCS11_H

#include "sc/signer.h"

/* Where a key lives; strings are borrowed for the open call only. */
struct signer_pkcs11_opts {
	const char *module;   /* path of the PKCS#11 module, e.g. libsofthsm2.so */
	const char *uri;      /* the private key, RFC 7512: pkcs11:token=moat-ca;object=ca */
	const char *pin_file; /* a 0600 file holding the user PIN; NULL: $MOAT_SC_PIN */
};

/*
 * Opens the <algo> key <o->uri> in the token, logging in with the PIN,
 * which is wiped from our memory afterwards. The signer's pkey() is the
 * engine's key (ECDSA) or a public-only key (Ed25519). Returns MOAT_OK;
 * MOAT_E_MALFORMED / MOAT_E_UNSUPPORTED (the URI), MOAT_E_DENIED (no PIN,
 * a PIN file that others can read, a wrong or locked PIN), MOAT_E_CONFIG
 * (the module or the engine cannot be loaded), MOAT_E_NOTFOUND (no such
 * token, or no such key of <algo>), MOAT_E_CRYPTO; <diag> says which. All
 * PKCS#11 signers of a process share one module (MOAT_E_UNSUPPORTED for a
 * second one); it is finalized when the last of them is destroyed. The
 * signer may be used from one thread at a time.
 */
int signer_pkcs11_open(struct signer **out, const struct signer_pkcs11_opts *o,
		       enum signer_algo algo, struct moat_diag *diag);

#endif
