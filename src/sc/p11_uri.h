/*
 * PKCS#11 URIs (RFC 7512) naming a Security Center key in a token:
 * "pkcs11:token=moat-ca;object=ca" (and id=, type=). Only what selects one
 * key is accepted; a PIN or module in the URI is refused, because the PIN
 * comes from a 0600 file or the environment and the module from its own
 * option. Parsing only: no token is touched here.
 */
#ifndef MOAT_SC_P11_URI_H
#define MOAT_SC_P11_URI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "conf/config.h" /* struct moat_diag */

enum {
	P11_TOKEN_MAX = 32, /* CK_TOKEN_INFO.label is 32 bytes */
	P11_OBJECT_MAX = 128,
	P11_ID_MAX = 64,
	P11_URI_MAX = 1024, /* the longest URI accepted, and p11_uri_format's room */
};

enum p11_type {
	P11_TYPE_ANY = 0,
	P11_TYPE_PRIVATE = 1,
	P11_TYPE_PUBLIC = 2,
};

struct p11_uri {
	char token[P11_TOKEN_MAX + 1];	 /* decoded, NUL-terminated */
	char object[P11_OBJECT_MAX + 1]; /* CKA_LABEL, decoded; "" when absent */
	uint8_t id[P11_ID_MAX];		 /* CKA_ID bytes */
	size_t id_len;
	bool has_object, has_id;
	enum p11_type type;
};

/*
 * Parses <text> (NUL-terminated, at most P11_URI_MAX bytes) into <out>. It
 * must start with "pkcs11:", name the token (token=) and the key (object=
 * and/or id=), with each attribute once and values percent-encoded as RFC
 * 7512 says; type= is private or public. Returns MOAT_OK; MOAT_E_MALFORMED
 * (syntax, bad percent-encoding, NUL in a label, too long),
 * MOAT_E_UNSUPPORTED (attributes that select tokens or keys otherwise:
 * serial, slot-id, ...; a query) or MOAT_E_DENIED (pin-value), with
 * <diag> (may be NULL) saying what to write instead.
 */
int p11_uri_parse(const char *text, struct p11_uri *out, struct moat_diag *diag);

/* Writes <u> as a normalized URI (token, object, id, type in that order;
 * everything outside RFC 3986's unreserved set percent-encoded) into <out>
 * (<cap> bytes, NUL-terminated). Returns the length, or MOAT_E_LIMIT. */
int p11_uri_format(const struct p11_uri *u, char *out, size_t cap);

#endif
