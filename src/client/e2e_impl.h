/*
 * libmoat's end-to-end internals shared by e2e.c (seal, open, the object),
 * e2e_bundle.c (reading the credential bundle) and e2e_fetch.c (key
 * requests over the attached client). Not installed.
 */
#ifndef MOAT_CLIENT_E2E_IMPL_H
#define MOAT_CLIENT_E2E_IMPL_H

#include <stdbool.h>
#include <stdint.h>

#include <moat/client.h>
#include <moat/e2e.h>

#include "client/keycache.h"
#include "e2e/kdf.h"
#include "e2e/keyrel.h"
#include "e2e/replay.h"
#include "e2e/seq.h"

enum {
	E2E_MAX_REQS = 8,      /* key requests in flight */
	E2E_MAX_SENDERS = 16,  /* open sequence counters */
	E2E_MAX_DERIVED = 64,  /* derived sender keys kept */
	E2E_MAX_WINDOWS = 256, /* replay windows kept */
	E2E_SEQ_BLOCK = 64,    /* numbers reserved per counter write */
	E2E_WHY_MAX = KEYREL_REASON_MAX + 64,
};

/* A key request sent and not yet answered (rc MOAT_E_AGAIN), or its outcome. */
struct e2e_req {
	bool used;
	uint8_t corr[16];
	uint8_t req_hash[KEYREL_HASH_LEN];
	char topic[KEYREL_TOPIC_MAX + 1];
	int intent;
	uint64_t sent_ms;
	uint16_t packet_id;
	int rc;
	char why[E2E_WHY_MAX];
};

struct e2e_sender {
	uint8_t gid[COSE_GROUP_ID_LEN];
	uint32_t epoch;
	uint8_t sid[E2E_SENDER_ID_MAX];
	size_t sid_len;
	struct seq_counter seq;
};

struct e2e_derived {
	uint8_t gid[COSE_GROUP_ID_LEN];
	uint32_t epoch;
	int alg;
	uint8_t sid[E2E_SENDER_ID_MAX];
	size_t sid_len;
	struct e2e_keys keys; /* secret */
};

struct e2e_window {
	uint8_t gid[COSE_GROUP_ID_LEN];
	uint32_t epoch;
	uint8_t sid[E2E_SENDER_ID_MAX];
	size_t sid_len;
	struct replay_window w;
};

struct moat_e2e {
	char *dir, *state_dir;
	char client_id[KEYREL_CLIENT_ID_MAX + 1];
	char broker[256];
	uint8_t sign_seed[32], agree_seed[32]; /* secret */
	uint8_t agree_fpr[KEYREL_HASH_LEN], sc_pub[32];
	struct keycache kc;
	uint32_t timeout_ms, grace_s;
	moat_e2e_signer_lookup_fn *lookup;
	void *lookup_arg;
	/* the attached client and the callbacks we wrapped */
	struct moat_client *c;
	struct moat_callbacks user_cb;
	int in_cb; /* > 0 while a libmoat callback runs: never block then */
	char resp_topic[sizeof(KEYREL_RESP_PREFIX) + KEYREL_CLIENT_ID_MAX];
	uint16_t sub_pids[2];
	struct e2e_req reqs[E2E_MAX_REQS];
	char why[E2E_WHY_MAX];
	struct e2e_sender senders[E2E_MAX_SENDERS];
	size_t nsenders;
	struct e2e_derived derived[E2E_MAX_DERIVED];
	size_t nderived, derived_next;
	struct e2e_window windows[E2E_MAX_WINDOWS];
	size_t nwindows, windows_next;
};

/* e2e_bundle.c: fills <e>'s identity from the bundle directory <dir>. MOAT_OK,
 * MOAT_E_CONFIG, MOAT_E_NOMEM, with one line in <diag>. */
int e2e_bundle_load(struct moat_e2e *e, const char *dir, char *diag, size_t diag_len);

/*
 * e2e_fetch.c: obtains the key for <topic> and <intent>: sends a request
 * (or joins one in flight for the same topic and intent) and, when
 * blocking is allowed (e2e.h), waits for its answer. Returns as
 * moat_e2e_fetch; <why> is e->why or a static string.
 */
int e2e_fetch_key(struct moat_e2e *e, const char *topic, int intent, const char **why);

/* e2e.c: creates the sequence counter file of the publish grant <ent>, starting at 0; one
 * that exists already (the same grant again) is kept. MOAT_OK or as seq_open. */
int e2e_counter_create(struct moat_e2e *e, const struct kc_entry *ent);

/* e2e_fetch.c: marks a request for <topic> with <intent> as wanted without
 * waiting (used when an epoch announcement says a newer key exists). */
void e2e_fetch_async(struct moat_e2e *e, const char *topic, int intent);

#endif
