/*
 * The Security Center's revocation list, as moatd receives it on
 * $sc/revoked (SECURITY-DESIGN §2.7): a COSE_Sign1 (Ed25519, the key pinned
 * by sc_public_key, topic "$sc/revoked" bound) whose payload is the CBOR map
 *
 *   { 1: serial (uint, increasing), 2: issued (int, seconds), 3: next update,
 *     4: [client ids], 5: [certificate serials, lowercase hex], 6: [token jti] }
 *
 * (4–6 optional). A parsed list is immutable and refcounted; the broker
 * swaps in a newer one and workers adopt it at their next loop pass.
 */
#ifndef MOAT_BROKER_REVOCATION_H
#define MOAT_BROKER_REVOCATION_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include <moat/bytes.h>

enum { REVOCATION_MAX_ENTRIES = 100000, REVOCATION_MAX_ID = 256 };

struct revocation {
	atomic_uint refs;
	uint64_t serial;
	int64_t issued, next_update;
	char **client_ids, **cert_serials, **jtis; /* sorted, NULL-terminated */
	size_t n_client_ids, n_cert_serials, n_jtis;
};

/* Verifies <env> with the Ed25519 public key <pub> and parses it. MOAT_OK
 * with *<out> (refs 1); else MOAT_E_CRYPTO (signature), MOAT_E_MALFORMED
 * or MOAT_E_LIMIT (structure, caps) or MOAT_E_NOMEM, with a static <why>. */
int revocation_parse(struct moat_bytes env, const uint8_t pub[32], struct revocation **out,
		     const char **why);
struct revocation *revocation_ref(struct revocation *r);
void revocation_unref(struct revocation *r); /* NULL is fine */

/* Membership; <r> may be NULL (nothing revoked), the name NULL (never revoked). */
bool revocation_has_client(const struct revocation *r, const char *client_id);
bool revocation_has_cert(const struct revocation *r, const char *serial_hex);
bool revocation_has_jti(const struct revocation *r, const char *jti);

#endif
