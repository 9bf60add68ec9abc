/*
 * The Security Center's device registry: one SQLite database (WAL, foreign
 * keys on, prepared statements only) holding things and their attributes,
 * public keys, issued certificate serials, per-group sender ids and an
 * audit trail. Every state change appends its audit row in the same
 * transaction. Certificates themselves are made by ca.c; this module only
 * records their serials and revocations. One thread at a time per handle.
 */
#ifndef MOAT_SC_REGISTRY_H
#define MOAT_SC_REGISTRY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "conf/config.h" /* struct moat_diag */

enum {
	REG_NAME_MAX = 64, /* thing, group and actor names */
	REG_ATTR_NAME_MAX = 32,
	REG_ATTR_VALUE_MAX = 128,
	REG_ATTRS_MAX = 32,	 /* attributes per thing */
	REG_SERIAL_HEX_MAX = 40, /* certificate serial, hex digits */
	REG_SENDER_ID_MAX = 6,	 /* bytes */
	REG_KEY_LEN = 32,	 /* Ed25519 and X25519 public keys */
	REG_X5T_LEN = 32,	 /* SHA-256 certificate thumbprint */
	REG_SCHEMA_VERSION = 4,	 /* 2: group keys (groups.h); 3: certificate thumbprints;
				    4: things by status, keys and sender ids by thing */
};

enum reg_status { REG_ACTIVE = 0, REG_REVOKED = 1 };
enum reg_key_kind { REG_KEY_ED25519_SIGN = 0, REG_KEY_X25519_AGREE = 1 };
enum reg_cert_profile { REG_CERT_DEVICE = 0, REG_CERT_BROKER = 1 };

struct reg_attr {
	char name[REG_ATTR_NAME_MAX + 1];
	char value[REG_ATTR_VALUE_MAX + 1];
};

struct reg_thing {
	int64_t id;
	char name[REG_NAME_MAX + 1];
	enum reg_status status;
	int64_t created_s, updated_s; /* Unix time */
	size_t attr_count;
	struct reg_attr attrs[REG_ATTRS_MAX]; /* sorted by name */
};

struct reg_key {
	enum reg_key_kind kind;
	uint8_t pub[REG_KEY_LEN];
	int64_t added_s;
};

struct reg_cert {
	char serial[REG_SERIAL_HEX_MAX + 1]; /* upper-case hex, no leading zeros */
	char thing[REG_NAME_MAX + 1];
	enum reg_cert_profile profile;
	int64_t not_before_s, not_after_s;
	int64_t revoked_at_s; /* 0 when not revoked */
	int reason;	      /* RFC 5280 CRLReason code when revoked */
	/* SHA-256 of the certificate's DER (RFC 8705 x5t#S256); has_x5t is
	 * false for certificates recorded before schema 3 */
	bool has_x5t;
	uint8_t x5t_s256[REG_X5T_LEN];
};

struct reg_audit {
	int64_t id, time_s;
	char actor[REG_NAME_MAX + 1];
	char action[REG_NAME_MAX + 1];
	char thing[REG_NAME_MAX + 1]; /* "" when the action concerns no thing */
	const char *detail;	      /* JSON object; valid during the callback only */
};

struct registry;

/* Callbacks for the listing functions: return MOAT_OK to go on, anything
 * else stops the listing and is returned by it. */
typedef int reg_thing_cb(void *arg, const struct reg_thing *t);
typedef int reg_key_cb(void *arg, const struct reg_key *k);
typedef int reg_cert_cb(void *arg, const struct reg_cert *c);
typedef int reg_audit_cb(void *arg, const struct reg_audit *a);

/* Opens (creating when missing, with mode 0600) the database at <path> and
 * migrates it to REG_SCHEMA_VERSION. MOAT_E_UNSUPPORTED for a database
 * written by a newer schema, MOAT_E_IO/MOAT_E_PARSE for SQLite failures;
 * <diag> says which. */
int reg_open(struct registry **out, const char *path, struct moat_diag *diag);

/* Closes <r>; NULL is fine. */
void reg_close(struct registry *r);

/* Sets the clock used for every timestamp (tests); NULL restores time(). */
void reg_set_clock(struct registry *r, int64_t (*now_s)(void));

/* True when <s> is a valid thing or group name: 1..REG_NAME_MAX of
 * [A-Za-z0-9._-], starting with a letter or digit. */
bool reg_name_is_valid(const char *s);

/* Creates the active thing <name> with <count> attributes <attrs> (names
 * 1..32 of [a-z0-9_.-] starting with a letter, values 1..128 printable
 * ASCII, no duplicate names). <actor> names who asks (audit). Its id goes
 * to *<id> when <id> is not NULL. MOAT_E_DENIED when the name is taken,
 * MOAT_E_INVAL for a bad name or attribute. */
int reg_thing_create(struct registry *r, const char *actor, const char *name,
		     const struct reg_attr *attrs, size_t count, int64_t *id,
		     struct moat_diag *diag);

/* Fills <out> with the thing <name>: MOAT_E_NOTFOUND when there is none. */
int reg_thing_get(struct registry *r, const char *name, struct reg_thing *out,
		  struct moat_diag *diag);

/* Calls <cb> for every thing, by name. */
int reg_thing_list(struct registry *r, reg_thing_cb *cb, void *arg, struct moat_diag *diag);

/* Calls <cb> for every revoked thing, by name: through an index, so a
 * daemon can poll it cheaply however many things are active. */
int reg_thing_list_revoked(struct registry *r, reg_thing_cb *cb, void *arg, struct moat_diag *diag);

/* Replaces all attributes of the active thing <name> with <attrs>
 * (validated as in reg_thing_create). MOAT_E_DENIED for a revoked thing. */
int reg_thing_set_attrs(struct registry *r, const char *actor, const char *name,
			const struct reg_attr *attrs, size_t count, struct moat_diag *diag);

/* Marks the thing <name> revoked and revokes each of its unrevoked
 * certificates with CRLReason <reason> (0..10 except 7). Revoking a revoked
 * thing is MOAT_E_DENIED. */
int reg_thing_revoke(struct registry *r, const char *actor, const char *name, int reason,
		     struct moat_diag *diag);

/* Adds the 32-byte public key <pub> of <kind> to the active thing <name>.
 * MOAT_E_DENIED when the same key is already registered (to anyone). */
int reg_key_add(struct registry *r, const char *actor, const char *name, enum reg_key_kind kind,
		const uint8_t pub[REG_KEY_LEN], struct moat_diag *diag);

/* Calls <cb> for each key of the thing <name>, oldest first. */
int reg_key_list(struct registry *r, const char *name, reg_key_cb *cb, void *arg,
		 struct moat_diag *diag);

/* Records the certificate <c> (serial, thing, profile, validity and, when
 * has_x5t, its thumbprint; its revocation fields are ignored) issued to an active thing.
 * MOAT_E_DENIED when the serial exists or the thing is revoked. */
int reg_cert_record(struct registry *r, const char *actor, const struct reg_cert *c,
		    struct moat_diag *diag);

/* Revokes the certificate with hex serial <serial> (CRLReason <reason>).
 * MOAT_E_NOTFOUND when unknown, MOAT_E_DENIED when already revoked. */
int reg_cert_revoke(struct registry *r, const char *actor, const char *serial, int reason,
		    struct moat_diag *diag);

/* Calls <cb> for each certificate of the thing <name>, oldest first. */
int reg_cert_list(struct registry *r, const char *name, reg_cert_cb *cb, void *arg,
		  struct moat_diag *diag);

/* Calls <cb> for each revoked certificate whose not_after is at or after
 * <since_s> (expired ones need not stay on a CRL), by revocation time. */
int reg_cert_list_revoked(struct registry *r, int64_t since_s, reg_cert_cb *cb, void *arg,
			  struct moat_diag *diag);

/* Allocates to the active thing <name> the smallest free sender id in
 * <group>: the lowest unused 1-byte value, then 2-byte, up to 6 bytes
 * (ids are never freed: one above the highest of the shortest length with room).
 * Writes it to <id> (REG_SENDER_ID_MAX bytes room), its length to *<len>.
 * MOAT_E_LIMIT when all are taken. */
int reg_sender_id_allocate(struct registry *r, const char *actor, const char *group,
			   const char *name, uint8_t id[REG_SENDER_ID_MAX], size_t *len,
			   struct moat_diag *diag);

/* Takes the next CRL number (1, 2, ...) and audits it: each call returns a
 * higher number than any before, also across reopening. */
int reg_crl_next_number(struct registry *r, const char *actor, int64_t *number,
			struct moat_diag *diag);

/* Appends an audit row: <action> (a name as for things), <thing> (NULL or
 * a name) and <detail_json> (a JSON object, NULL for {}). */
int reg_audit_append(struct registry *r, const char *actor, const char *action, const char *thing,
		     const char *detail_json, struct moat_diag *diag);

/* Calls <cb> for the last <count> audit rows, oldest of them first. */
int reg_audit_tail(struct registry *r, size_t count, reg_audit_cb *cb, void *arg,
		   struct moat_diag *diag);

#endif
