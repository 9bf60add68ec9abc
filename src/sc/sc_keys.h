/*
 * Where the Security Center's two signing keys live: key files in the SC
 * directory (ca.key, token.key: the default), or keys in PKCS#11 tokens
 * that `moat-sc init --pkcs11-module ...` records in DIR/sc.json, so that
 * every later command, and the daemon, opens them the same way. sc.json
 * holds the module, the keys' URIs and the path of the PIN file; never a PIN.
 */
#ifndef MOAT_SC_SC_KEYS_H
#define MOAT_SC_SC_KEYS_H

#include <limits.h>

#include "sc/p11_uri.h"
#include "sc/signer.h"

enum sc_key {
	SC_KEY_CA = 0,	  /* ECDSA P-256: certificates and CRLs (DIR/ca.key) */
	SC_KEY_TOKEN = 1, /* Ed25519: tokens and SC responses (DIR/token.key) */
};

struct sc_keys {
	char module[PATH_MAX];	      /* the PKCS#11 module; "" = no token keys */
	char pin_file[PATH_MAX];      /* "" = the PIN from $MOAT_SC_PIN */
	char uri[2][P11_URI_MAX + 1]; /* by enum sc_key; "" = the key file in DIR */
};

/* Reads DIR/sc.json into <k>; without the file, <k> says "key files"
 * (all empty) and MOAT_OK. MOAT_E_CONFIG (naming the file and the field)
 * for anything but the fields above, a URI p11_uri_parse refuses, or URIs
 * without a module; MOAT_E_IO when it cannot be read. */
int sc_keys_load(const char *dir, struct sc_keys *k, struct moat_diag *d);

/* Writes <k> to the new file DIR/sc.json (mode 0600, never overwritten:
 * MOAT_E_DENIED when it exists). */
int sc_keys_save(const char *dir, const struct sc_keys *k, struct moat_diag *d);

/* Opens key <which> as <k> says: signer_pkcs11_open with its URI, or
 * signer_file_open on DIR/ca.key or DIR/token.key; their errors. */
int sc_keys_open(struct signer **out, const char *dir, const struct sc_keys *k, enum sc_key which,
		 struct moat_diag *d);

#endif
