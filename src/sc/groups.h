/*
 * Group keys in the registry (SECURITY-DESIGN §2.5): one group per topic
 * policy filter, with a random 8-byte group id, and numbered epochs, each
 * with its own random 32-byte master secret. Master secrets are stored
 * sealed (ChaCha20-Poly1305, AAD = group id || epoch, random nonce) under a
 * 32-byte storage key kept in a file of its own (DIR/store.key), so a copy
 * of registry.db alone reveals no key. Every key released is recorded as a
 * grant, so a revocation knows which groups to rotate. Same threading rule
 * as registry.h: one thread at a time per handle.
 */
#ifndef MOAT_SC_GROUPS_H
#define MOAT_SC_GROUPS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "e2e/cose.h"
#include "e2e/keyrel.h"
#include "sc/registry.h"

enum {
	GROUPS_STORE_KEY_LEN = 32,
	GROUPS_FILTER_MAX = KEYREL_TOPIC_MAX,
	GROUPS_PERIOD_S_DEFAULT = 86400, /* an epoch's scheduled life */
	GROUPS_GRACE_S_DEFAULT = 3600,	 /* a retired epoch is still released this long */
	GROUPS_RULES_LEN = 32,		 /* a digest of the policy's expressions */
};

/* One epoch of a group, with its master secret (wipe with groups_epoch_wipe). */
struct groups_epoch {
	struct cose_group key; /* group id, epoch, master secret */
	char filter[GROUPS_FILTER_MAX + 1];
	int64_t created_s;
	int64_t not_after_s;  /* created + the epoch period: when rotation is due */
	int64_t retired_at_s; /* 0 while it is the current epoch */
};

/* A group and its current epoch, without the secret (listings). */
struct groups_info {
	uint8_t group_id[COSE_GROUP_ID_LEN];
	char filter[GROUPS_FILTER_MAX + 1];
	uint32_t epoch;
	int64_t created_s, not_after_s;
	bool has_rules; /* the digest of the rules its keys were last released under */
	uint8_t rules[GROUPS_RULES_LEN];
};

typedef int groups_info_cb(void *arg, const struct groups_info *g);

/*
 * Reads the storage key from <path> into <key>: exactly 32 bytes, in a
 * regular file only its owner can read (mode 0600 or stricter). When the
 * file is missing and <create>, makes it (O_EXCL, 0600) with fresh random
 * bytes. MOAT_E_NOTFOUND (missing, !create), MOAT_E_DENIED (group or world
 * access), MOAT_E_PARSE (another length), MOAT_E_IO; <diag> says which.
 */
int groups_store_key_load(const char *path, bool create, uint8_t key[GROUPS_STORE_KEY_LEN],
			  struct moat_diag *diag);

/*
 * The current epoch of the group of the topic filter <filter> (1 to
 * GROUPS_FILTER_MAX bytes) into <out>, creating the group (random id, with
 * the rules digest <rules>, may be NULL) and its epoch 1 (random master
 * secret, not_after = now + <period_s>) when missing; creations are audited
 * as <actor>. MOAT_E_CRYPTO when a stored secret does not open under
 * <store_key> (another store.key).
 */
int groups_current(struct registry *r, const uint8_t store_key[GROUPS_STORE_KEY_LEN],
		   const char *actor, const char *filter, const uint8_t *rules, int64_t period_s,
		   struct groups_epoch *out, struct moat_diag *diag);

/* Records <rules> (GROUPS_RULES_LEN bytes) as the rules digest of the group
 * <group_id>. MOAT_E_NOTFOUND for an unknown group. */
int groups_set_rules(struct registry *r, const uint8_t group_id[COSE_GROUP_ID_LEN],
		     const uint8_t rules[GROUPS_RULES_LEN], struct moat_diag *diag);

/*
 * Rotates the group <group_id>: a new epoch (current + 1, fresh master
 * secret, not_after = now + <period_s>) becomes current and the previous
 * one gets retired_at = now; audited ("group.rotate", <reason> in the
 * detail: a short word such as "schedule", "revocation", "policy"). The new
 * epoch goes to <out> (may be NULL). MOAT_E_NOTFOUND for an unknown group.
 */
int groups_rotate(struct registry *r, const uint8_t store_key[GROUPS_STORE_KEY_LEN],
		  const char *actor, const uint8_t group_id[COSE_GROUP_ID_LEN], int64_t period_s,
		  const char *reason, struct groups_epoch *out, struct moat_diag *diag);

/*
 * Epoch <epoch> of group <group_id> into <out> when it is current, or was
 * retired at most <grace_s> seconds ago. MOAT_E_NOTFOUND (no such group or
 * epoch), MOAT_E_LIMIT (retired longer ago than the grace window).
 */
int groups_epoch_get(struct registry *r, const uint8_t store_key[GROUPS_STORE_KEY_LEN],
		     const uint8_t group_id[COSE_GROUP_ID_LEN], uint32_t epoch, int64_t grace_s,
		     struct groups_epoch *out, struct moat_diag *diag);

/* Wipes the master secret in <e>. */
void groups_epoch_wipe(struct groups_epoch *e);

/*
 * The sender id of the thing <thing> in group <group_id>: the one allocated
 * before, or a new one (reg_sender_id_allocate, group name = the id in
 * hex). Writes it to <id>, its length to *<len>.
 */
int groups_sender_id(struct registry *r, const char *actor,
		     const uint8_t group_id[COSE_GROUP_ID_LEN], const char *thing,
		     uint8_t id[REG_SENDER_ID_MAX], size_t *len, struct moat_diag *diag);

/* Records that <thing> was released epoch <epoch> of <group_id> for
 * <intent>, with its audit row ("key.released" by <actor>, <detail_json> a
 * JSON object or NULL) in the same transaction. MOAT_E_NOTFOUND when the
 * thing or group does not exist. */
int groups_grant_record(struct registry *r, const char *actor, const char *thing,
			const uint8_t group_id[COSE_GROUP_ID_LEN], uint32_t epoch,
			enum keyrel_intent intent, const char *detail_json, struct moat_diag *diag);

/* Calls <cb> for every group with its current epoch, by filter. */
int groups_list(struct registry *r, groups_info_cb *cb, void *arg, struct moat_diag *diag);

/* Calls <cb> for every group <thing> was ever released a key of, by filter. */
int groups_list_granted(struct registry *r, const char *thing, groups_info_cb *cb, void *arg,
			struct moat_diag *diag);

/* Writes the lower-case hex of <group_id> and a NUL to <out>. */
void groups_id_hex(const uint8_t group_id[COSE_GROUP_ID_LEN], char out[2 * COSE_GROUP_ID_LEN + 1]);

#endif
