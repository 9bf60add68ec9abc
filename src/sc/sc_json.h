/*
 * The registry's JSON views, shared by `moat-sc` (--json) and the admin
 * channel (admin.c): things, certificates, keys and audit rows as cJSON
 * objects, plus the small parsers both accept from people ("k=v"
 * attributes, revocation reason names).
 */
#ifndef MOAT_SC_SC_JSON_H
#define MOAT_SC_SC_JSON_H

#include <cjson/cJSON.h>

#include "sc/registry.h"

/* {"name","status","created","updated","attrs":{...}}; NULL on out of memory. */
cJSON *sc_json_thing(const struct reg_thing *t);

/* {"serial","profile","not_before","not_after"[,"x5t#S256"][,"revoked_at","reason"]}. */
cJSON *sc_json_cert(const struct reg_cert *c);

/* {"kind":"ed25519-sign"|"x25519-agree","public_key":hex}. */
cJSON *sc_json_key(const struct reg_key *k);

/* {"time","actor","action"[,"thing"],"detail":{...}}. */
cJSON *sc_json_audit(const struct reg_audit *a);

/* The thing <name> with its "certs" and "keys" arrays into *<out> (the
 * caller deletes it). MOAT_E_NOTFOUND when there is no such thing. */
int sc_json_thing_full(struct registry *reg, const char *name, cJSON **out, struct moat_diag *d);

/* Parses "name=value" into <out> (lengths checked; the registry checks the
 * characters). MOAT_E_INVAL with <d> naming the argument. */
int sc_parse_attr(const char *kv, struct reg_attr *out, struct moat_diag *d);

/* The CRLReason code of "unspecified", "key-compromise", "superseded" or
 * "cessation" (NULL: unspecified); -1 for anything else. */
int sc_reason_code(const char *name);

/* "active" or "revoked". */
const char *sc_status_name(enum reg_status s);

#endif
