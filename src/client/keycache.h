/*
 * libmoat's end-to-end key cache: the group keys the Security Center
 * released to this device (current and previous epoch per group), kept in
 * memory and in one file encrypted at rest (state/keys.cache). The file is
 * sealed with ChaCha20-Poly1305 under a key derived by HKDF-SHA256 from the
 * device's X25519 private key (info "moat/key-cache/1"): only the holder of
 * the bundle's agree.key can read or forge it, and a cache copied from
 * another device does not open. A file that does not open or parse is
 * discarded, never trusted: the keys are fetched again. Fetching keys and
 * choosing one for a message belong to e2e.c / e2e_fetch.c.
 */
#ifndef MOAT_CLIENT_KEYCACHE_H
#define MOAT_CLIENT_KEYCACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <moat/bytes.h>

#include "e2e/cose.h"
#include "e2e/keyrel.h"

/* One released key: a group's master secret for one epoch and its grant. */
struct kc_entry {
	struct cose_group group; /* group id, epoch, master secret (secret) */
	int alg;		 /* the policy's COSE alg */
	char filter[KEYREL_TOPIC_MAX + 1];
	bool is_signed;
	uint32_t max_age_s;    /* 0 = no limit */
	int64_t not_after;     /* Unix s: refetch before use after this */
	int64_t superseded_at; /* Unix s a newer epoch arrived; 0 = current */
	uint8_t sender_id[E2E_SENDER_ID_MAX];
	size_t sender_id_len; /* 0: a subscriber's key (cannot seal) */
	bool stale;	      /* memory only: a newer epoch was announced */
};

struct keycache {
	struct kc_entry *e;
	size_t n, cap;
	char *path;	      /* the cache file (owned) */
	uint8_t file_key[32]; /* HKDF of the device key (secret) */
};

enum { KEYCACHE_MAX_ENTRIES = 256 };

/*
 * Initialises <kc> for the file <path> and the device's X25519 private key
 * <agree_seed>, and loads the file when it exists. A file that is damaged,
 * truncated, made under another device key or not a cache is ignored and
 * removed (<*discarded> true, may be NULL); the cache then starts empty.
 * Returns MOAT_OK, MOAT_E_NOMEM, MOAT_E_CRYPTO or MOAT_E_IO (the file
 * exists but cannot be read).
 */
int keycache_open(struct keycache *kc, const char *path, const uint8_t agree_seed[32],
		  bool *discarded);

/* Writes every entry to the file atomically (temporary file, fsync,
 * rename, fsync of the directory), mode 0600. MOAT_OK, MOAT_E_IO,
 * MOAT_E_CRYPTO or MOAT_E_NOMEM. */
int keycache_save(const struct keycache *kc);

/*
 * Stores <in> (copied). The same (group, epoch) is replaced (a refresh;
 * a subscribe grant keeps the sender id a publish grant gave);
 * a newer epoch of a cached group becomes its current one, the former
 * current one is marked superseded at <now> and any older epoch is
 * wiped and dropped. An epoch older than the group's previous one is
 * refused with MOAT_E_PROTOCOL. MOAT_OK, MOAT_E_NOMEM, MOAT_E_LIMIT.
 */
int keycache_put(struct keycache *kc, const struct kc_entry *in, int64_t now);

/* The entry of (group <gid>, <epoch>), or NULL. */
struct kc_entry *keycache_find(struct keycache *kc, const uint8_t gid[COSE_GROUP_ID_LEN],
			       uint32_t epoch);

/* The current (not superseded) entry of group <gid>, or NULL. */
struct kc_entry *keycache_current(struct keycache *kc, const uint8_t gid[COSE_GROUP_ID_LEN]);

/*
 * The current entry whose filter matches the topic name <topic> most
 * specifically (fewest wildcards, then most levels, then longest, as the
 * SC's topic policies rank filters), or NULL.
 */
struct kc_entry *keycache_for_topic(struct keycache *kc, struct moat_bytes topic);

/* Wipes every secret and frees <kc>; the file stays. */
void keycache_fini(struct keycache *kc);

#endif
