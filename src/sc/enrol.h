/*
 * Enrolment: registering a thing (or taking an existing one), its public
 * keys and its certificate in one checked order, so `moat-sc thing add`
 * and the admin channel's thing.create do exactly the same thing.
 */
#ifndef MOAT_SC_ENROL_H
#define MOAT_SC_ENROL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sc/ca.h"

struct sc_enrol_req {
	bool create;		      /* register the thing first (else it must exist) */
	const struct reg_attr *attrs; /* with create */
	size_t attr_count;
	const char *csr_pem; /* untrusted PEM CSR */
	size_t csr_len;
	const uint8_t *sign_pub;   /* Ed25519 public key (REG_KEY_LEN bytes) or NULL */
	const uint8_t *agree_pub;  /* X25519 public key (REG_KEY_LEN bytes) or NULL */
	struct ca_issue_req issue; /* issue.thing names the thing */
};

/* Checks the CSR and request (ca_issue_check) before changing anything,
 * then registers the thing when <req>->create, adds its public keys, and
 * issues its certificate into *<out> (the caller frees it), all as
 * <actor>. A failure after registration leaves the thing registered
 * without a certificate (each step is its own audited transaction). */
int sc_enrol(struct ca *ca, struct registry *reg, const char *actor, const struct sc_enrol_req *req,
	     int64_t now_s, X509 **out, struct moat_diag *d);

/* The raw 32-byte key of the PEM public key <pem> (<len> bytes, untrusted)
 * of <kind> (Ed25519 for signing, X25519 for agreement) into <pub>.
 * MOAT_E_CRYPTO when it is not a PEM public key of that type. */
int sc_raw_public_key(const char *pem, size_t len, enum reg_key_kind kind, uint8_t pub[REG_KEY_LEN],
		      struct moat_diag *d);

#endif
