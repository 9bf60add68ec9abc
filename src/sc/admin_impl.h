/*
 * Internals of the admin channel: one request being handled, the field
 * readers the op handlers share, and the handlers (admin_thing.c: things,
 * tokens, audit; admin_policy.c: policies and key rotation). admin.c owns
 * the socket and calls them. Not for other modules.
 */
#ifndef MOAT_SC_ADMIN_IMPL_H
#define MOAT_SC_ADMIN_IMPL_H

#include <stdbool.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "sc/admin.h"
#include "sc/registry.h"

struct admin_req {
	const struct sc_admin_ctx *ctx;
	const char *actor;
	const cJSON *in;   /* the request object */
	cJSON *out;	   /* the answer: {"ok":true} that the handler adds to */
	cJSON *detail;	   /* the audit row's detail object the handler may add to */
	const char *thing; /* the thing the request concerns, for the audit row */
	struct moat_diag *d;
};

typedef int admin_op_fn(struct admin_req *r);

/* Handles the request line <line> (<len> bytes, untrusted, no newline) from
 * a peer named <peer_actor>, audits it, and returns the answer (one JSON
 * object, no newline; the caller frees it with cJSON_free), NULL on out of
 * memory. */
char *admin_handle_line(const struct sc_admin_ctx *ctx, const char *peer_actor, const char *line,
			size_t len);

admin_op_fn admin_thing_create, admin_thing_list, admin_thing_show, admin_thing_update,
    admin_thing_revoke, admin_token_issue, admin_audit_tail;
admin_op_fn admin_policy_set, admin_policy_list, admin_policy_show, admin_policy_delete,
    admin_key_rotate;

/* Writes the printf-style message to r->d and returns <rc>. */
int admin_fail(struct admin_req *r, int rc, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* The string field <key> of the request into *<out>; MOAT_E_INVAL naming
 * it when absent (unless !<required>: then *<out> = NULL) or not a string. */
int admin_str(struct admin_req *r, const char *key, bool required, const char **out);

/* The whole-number field <key> in <min>..<max> into *<out>; <dflt> when
 * absent. MOAT_E_INVAL naming it otherwise. */
int admin_uint(struct admin_req *r, const char *key, uint32_t min, uint32_t max, uint32_t dflt,
	       uint32_t *out);

/* Puts <a> and <b> before the error text in r->d. */
void admin_prefix(struct admin_req *r, const char *a, const char *b);

/* Records in the answer what the daemon did after the change <done> (e.g.
 * "revoked in the registry"): without a hook (!<called>) "daemon": false and
 * a note that nothing was pushed; with one "daemon": true, or, when it
 * failed (<rc> < 0), <done> put before its error text. Returns <rc>. */
int admin_daemon(struct admin_req *r, bool called, int rc, const char *done);

#endif
