/*
 * The Security Center's key-release request handler (SECURITY-DESIGN §2.8,
 * docs/security-center.md "Key release") without I/O: request bytes and
 * the topic they came on in, signed response bytes and an audit row out.
 * Checks, in order: the message decodes and names its topic's client
 * (else no answer at all); the thing exists and is active; one of its
 * Ed25519 keys verifies the signature; |iat - now| <= 60 s; the nonce is
 * unseen (kept 2 minutes, bounded memory); the thing's token bucket has a
 * token; a topic policy covers the topic; its publish or subscribe
 * expression holds over the thing's attributes; the thing has the X25519
 * key the request names. Then the group's epoch is released: HPKE-sealed
 * to that key, recorded as a grant, with a sender id for publishers.
 * Every answer is audited ("key.released" / "key.refused"). One thread.
 */
#ifndef MOAT_SC_KEYSERVER_H
#define MOAT_SC_KEYSERVER_H

#include <stdbool.h>
#include <stdint.h>

#include <moat/bytes.h>

#include "base/buf.h"
#include "e2e/keyrel.h"
#include "policy/topic_policy.h"
#include "sc/groups.h"
#include "sc/registry.h"

#define KEYSERVER_ACTOR "moat-sc"

enum {
	KEYSERVER_RATE_DEFAULT = 5,   /* requests per second per thing */
	KEYSERVER_BURST_DEFAULT = 20, /* bucket size */
	KEYSERVER_NONCE_TTL_S = 120,  /* a nonce is remembered at least this long */
	KEYSERVER_NONCE_CAP = 32768,  /* nonces per 2-minute generation */
	KEYSERVER_BUCKETS = 4096,     /* things rate-limited at once */
};

struct signer;

struct keyserver_config {
	int64_t epoch_period_s; /* 0: GROUPS_PERIOD_S_DEFAULT */
	int64_t grace_s;	/* < 0: GROUPS_GRACE_S_DEFAULT */
	uint32_t rate_per_s;	/* 0: KEYSERVER_RATE_DEFAULT */
	uint32_t burst;		/* 0: KEYSERVER_BURST_DEFAULT or rate_per_s, the larger */
	/* get-token (token.h): the Ed25519 signer of access tokens (borrowed;
	 * NULL: get-token is refused), their aud (NULL: the default) and
	 * lifetime (0: the default) */
	struct signer *token_signer;
	const char *token_audience;
	uint32_t token_ttl_s;
};

/* What one request came to. */
struct keyserver_outcome {
	bool answered; /* a response was appended to the output */
	enum keyrel_status status;
	char client_id[KEYREL_CLIENT_ID_MAX + 1]; /* "" when unattributable */
	const char *reason;			  /* static text */
	/* for a grant: */
	uint8_t group_id[COSE_GROUP_ID_LEN];
	uint32_t epoch;
};

struct keyserver;

/*
 * Makes a handler over the registry <reg> (borrowed; used only from the
 * calling thread), the storage key <store_key> (copied; wiped by destroy)
 * and the SC's signer <sign>/<sign_arg>. <cfg> may be NULL for defaults.
 * Topic policies are set with keyserver_set_policies. MOAT_E_NOMEM.
 */
int keyserver_create(struct keyserver **out, struct registry *reg,
		     const uint8_t store_key[GROUPS_STORE_KEY_LEN], keyrel_sign_fn *sign,
		     void *sign_arg, const struct keyserver_config *cfg);

/* keyrel_sign_fn over <signer>, a struct signer (signer.h) holding the SC's
 * Ed25519 key (file or PKCS#11): MOAT_E_CRYPTO when it signs with another
 * algorithm. The signer moat-sc serve and keyrel_latency pass as sign_arg. */
int keyserver_sign(void *signer, const uint8_t *msg, size_t len, uint8_t sig[COSE_ED25519_SIG_LEN]);

/* Frees <ks> and wipes its copy of the storage key. NULL is fine. */
void keyserver_destroy(struct keyserver *ks);

/* Uses <set> (borrowed until the next call or destroy; NULL: no policies,
 * every key request is refused) from the next request on. */
void keyserver_set_policies(struct keyserver *ks, const struct topic_policy_set *set);

/* The digest of <p>'s publish and subscribe expressions (canonical text),
 * or of "no policy" for NULL: a group whose stored digest differs from its
 * policy's gets a new epoch (serve.c). */
void keyserver_policy_rules(const struct topic_policy *p, uint8_t out[GROUPS_RULES_LEN]);

/* The effective configuration (defaults filled in). */
const struct keyserver_config *keyserver_config(const struct keyserver *ks);

/*
 * Handles the request <msg> received on <topic> at Unix time <now_s>.
 * Appends the signed response for "$sc/resp/<client-id>" to <out> and
 * fills <res>. Returns MOAT_OK when answered (any status), MOAT_E_MALFORMED
 * or MOAT_E_PROTOCOL (nothing appended, nothing audited) for bytes that do
 * not decode or whose topic or kid does not name their client, and
 * MOAT_E_NOMEM / MOAT_E_CRYPTO / MOAT_E_IO when even a refusal could not
 * be built, or its audit row not written (res->answered says whether a
 * response was appended). A key is answered only after its grant and
 * key.released rows are committed, else the answer is an "internal" refusal.
 */
int keyserver_handle(struct keyserver *ks, struct moat_bytes msg, struct moat_bytes topic,
		     int64_t now_s, struct buf *out, struct keyserver_outcome *res);

#endif
