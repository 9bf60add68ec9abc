/*
 * The signed revocation list the Security Center publishes, retained, on
 * $sc/revoked (SECURITY-DESIGN §2.7; docs/security.md "Revocation pushed by
 * the Security Center"): a COSE_Sign1 (kid "sc", topic bound) over the map
 *   { 1: serial, 2: issued, 3: next_update, 4: [client ids],
 *     5: [certificate serials, lower-case hex], 6: [token jti] }
 * exactly as moatd's src/broker/revocation.c reads it. The serial comes from
 * a counter in the registry, so every list is newer than the last one,
 * across restarts. Client ids are the names of revoked things.
 */
#ifndef MOAT_SC_REVLIST_H
#define MOAT_SC_REVLIST_H

#include <stdint.h>

#include "base/buf.h"
#include "e2e/keyrel.h"
#include "sc/registry.h"

#define REVLIST_TOPIC "$sc/revoked"

enum {
	REVLIST_NEXT_UPDATE_S_DEFAULT = 86400,
	REVLIST_MAX_ENTRIES = 100000, /* per list, as moatd accepts */
};

/*
 * Takes the next list serial from <r> (audited "revlist.issue" as <actor>),
 * and appends to <out> the list signed by <sign>/<sign_arg>: every revoked
 * thing, every revoked certificate not expired at <now_s>, and the token
 * ids in <jtis> (NULL-terminated; NULL for none), issued <now_s>, next
 * update <now_s> + <next_update_s>. *<serial> (may be NULL) gets the
 * serial. MOAT_E_LIMIT over REVLIST_MAX_ENTRIES in a list; registry and
 * signer errors with <diag>.
 */
int revlist_build(struct registry *r, const char *actor, int64_t now_s, int64_t next_update_s,
		  const char *const *jtis, keyrel_sign_fn *sign, void *sign_arg, struct buf *out,
		  uint64_t *serial, struct moat_diag *diag);

#endif
