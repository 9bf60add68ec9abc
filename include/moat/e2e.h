/*
 * libmoat end-to-end payload protection (docs/e2e.md, docs/client.md):
 * a device's credential bundle, the group keys the Security Center releases
 * to it (fetched over MQTT, cached encrypted at rest), and sealing/opening
 * PUBLISH payloads as COSE_Encrypt0 (optionally wrapped in COSE_Sign1)
 * bound to their topic.
 *
 * Use: moat_e2e_open_bundle(), create a moat_client with the bundle's
 * client id, moat_e2e_attach() it (key responses and epoch announcements
 * are then consumed inside, never reach your on_message), connect, then
 * moat_e2e_seal() before moat_publish() and moat_e2e_open() in on_message.
 *
 * Key fetches: a seal or open that needs a key it does not hold sends a
 * key request and, when the client runs in the caller's loop (no
 * moat_loop_start) and the call is not made from inside a libmoat
 * callback, blocks running moat_loop_once() until the answer arrives or
 * the fetch timeout (moat_e2e_set_timeout_ms, default 5000 ms) passes.
 * From a callback, with a client thread, or with timeout 0 it does not
 * block: it returns MOAT_E_AGAIN ("key requested") and the caller retries
 * later (the answer is consumed by the client loop meanwhile).
 *
 * Not thread-safe: use a moat_e2e from the thread that runs its client.
 */
#ifndef MOAT_E2E_H
#define MOAT_E2E_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <moat/client.h>
#include <moat/error.h>

#ifdef __cplusplus
extern "C" {
#endif

struct moat_e2e;

enum moat_e2e_intent { MOAT_E2E_PUBLISH = 1, MOAT_E2E_SUBSCRIBE = 2 };

/* What moat_e2e_open() found out about a message it opened. */
struct moat_e2e_info {
	uint8_t group_id[8];
	uint32_t epoch;
	uint8_t sender_id[6];
	size_t sender_id_len;
	uint64_t seq;
	bool has_iat;
	int64_t iat;
	int alg;	      /* COSE id: 24 ChaCha20-Poly1305, 3 A256GCM */
	bool is_signed;	      /* a COSE_Sign1 was around the envelope */
	char signer[129];     /* its kid (the device id), NUL-terminated */
	bool signer_verified; /* the signer lookup gave a key and it verified */
};

/*
 * Looks up the Ed25519 public key of the device <kid> (<kid_len> bytes,
 * not NUL-terminated) into <pub>: MOAT_OK, or MOAT_E_NOTFOUND when unknown.
 */
typedef int moat_e2e_signer_lookup_fn(void *arg, const uint8_t *kid, size_t kid_len,
				      uint8_t pub[32]);

/*
 * Reads the credential bundle directory <dir> (bundle.json, sign.key,
 * agree.key, sc.pub; see docs/client.md), creates <dir>/state (0700) if
 * missing and loads its key cache (a damaged or foreign cache is discarded,
 * reported in <diag>, and keys are fetched again). Returns MOAT_OK with the
 * object in <*out>; MOAT_E_CONFIG (a file is missing, unreadable, has the
 * wrong key type, or a private key is readable by others), MOAT_E_IO,
 * MOAT_E_NOMEM. <diag> (<diag_len> bytes, may be NULL) gets one line.
 */
int moat_e2e_open_bundle(struct moat_e2e **out, const char *dir, char *diag, size_t diag_len);

/* Wipes every secret and frees <e> (NULL is fine). Detach first: destroy
 * the client before, or call moat_e2e_attach(e, NULL). */
void moat_e2e_destroy(struct moat_e2e *e);

/* The bundle's client id and broker URL ("mqtt://host:port" or
 * "mqtts://host:port"); valid while <e> lives. */
const char *moat_e2e_client_id(const struct moat_e2e *e);
const char *moat_e2e_broker(const struct moat_e2e *e);

/*
 * Hooks <e> into client <c>'s message flow: wraps its callbacks so
 * responses on $sc/resp/<client-id> and announcements on $sc/epoch/+ are
 * handled here, and subscribes to both on every connection (now, if
 * connected). <c> must use the bundle's client id and MQTT 5. Call before
 * moat_loop_start(). <c> NULL detaches (restores the callbacks). MOAT_OK,
 * MOAT_E_INVAL (another client id, MQTT 3.1.1).
 */
int moat_e2e_attach(struct moat_e2e *e, struct moat_client *c);

/* How long a seal/open/fetch may block for a key answer; 0 = never block. */
void moat_e2e_set_timeout_ms(struct moat_e2e *e, uint32_t timeout_ms);

/* How long a group's previous epoch still opens after the next one was
 * obtained (default 600 s); after it, its messages are refused. */
void moat_e2e_set_grace_s(struct moat_e2e *e, uint32_t grace_s);

/* Sets the signer key lookup used to verify COSE_Sign1 signers in open. */
void moat_e2e_set_signer_lookup(struct moat_e2e *e, moat_e2e_signer_lookup_fn *fn, void *arg);

/*
 * Obtains (or refreshes) the group key for <topic> (a topic name, or the
 * filter of a subscription) with <intent>; blocks as described above.
 * MOAT_OK; MOAT_E_AGAIN (requested, not yet answered); MOAT_E_TIMEOUT;
 * MOAT_E_DENIED (the SC refused: <why> holds the status name and reason);
 * MOAT_E_CRYPTO / MOAT_E_MALFORMED (a bad answer); MOAT_E_CLOSED (no
 * connected client). <why> (may be NULL) points at a string valid until
 * the next call on <e>.
 */
int moat_e2e_fetch(struct moat_e2e *e, const char *topic, enum moat_e2e_intent intent,
		   const char **why);

/*
 * Seals <plaintext> (<len> bytes) for publishing on <topic>: the group key
 * of the topic's policy (fetched with intent publish when missing or past
 * its not_after), the next sequence number of a crash-safe counter in
 * state/, COSE_Encrypt0 with iat, wrapped in COSE_Sign1 with the bundle's
 * sign.key when the policy says signed. On MOAT_OK <*payload> (malloc'd;
 * free with moat_e2e_free) holds <*payload_len> bytes and <*content_type>
 * the static MQTT 5 Content Type to send with it. Errors as
 * moat_e2e_fetch, plus MOAT_E_LIMIT (sequence numbers used up) and
 * MOAT_E_IO (the counter could not be made durable).
 */
int moat_e2e_seal(struct moat_e2e *e, const char *topic, const void *plaintext, size_t len,
		  uint8_t **payload, size_t *payload_len, const char **content_type,
		  const char **why);

/*
 * Opens the received <payload> on <topic>: Sign1 first when present (the
 * signer is reported in <info>, verified only with a signer lookup), then
 * the group and epoch from the kid context, the cached key (current epoch,
 * or previous within the grace window), the alg the grant gave for that
 * group (never the message's), the topic within the grant's filter, the
 * replay window of (group, epoch, sender), the tag, max age against iat;
 * the replay window is committed last. On MOAT_OK <*plaintext> (malloc'd;
 * free with moat_e2e_free) holds <*len> bytes and <info> (may be NULL)
 * what was found. Every refusal sets <why> to a static reason: MOAT_E_MALFORMED,
 * MOAT_E_PROTOCOL (wrong alg, topic outside the group, replay, old epoch,
 * too old, signed policy but no signature), MOAT_E_CRYPTO (tag or
 * signature), MOAT_E_AGAIN (key requested: retry), MOAT_E_DENIED.
 */
int moat_e2e_open(struct moat_e2e *e, const char *topic, const void *payload, size_t len,
		  uint8_t **plaintext, size_t *plaintext_len, struct moat_e2e_info *info,
		  const char **why);

/* Wipes <len> bytes at <p> and frees it (NULL is fine). */
void moat_e2e_free(void *p, size_t len);

#ifdef __cplusplus
}
#endif
#endif
