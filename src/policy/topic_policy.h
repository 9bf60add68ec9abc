/*
 * Topic policies (docs/e2e.md "Topic policies"): per topic filter a publish
 * and a subscribe expression (policy/expr.h), the payload AEAD, whether
 * messages must be signed and their maximum age, loaded from a JSON
 * document. The same set answers the broker's PUBLISH/SUBSCRIBE checks and
 * the Security Center's key release, so the two never disagree. A set is
 * immutable after loading: any number of threads may query it; to reload,
 * load a new set and swap the pointer. No broker types, no I/O.
 */
#ifndef MOAT_POLICY_TOPIC_POLICY_H
#define MOAT_POLICY_TOPIC_POLICY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <moat/bytes.h>

#include "policy/expr.h"

enum {
	TOPIC_POLICY_MAX_DOC = 1024 * 1024, /* bytes of JSON */
	TOPIC_POLICY_MAX_COUNT = 1024,	    /* policies in one set */
	TOPIC_POLICY_ID_LEN = 32,	    /* SHA-256 */
};

/* Payload AEADs a topic may use; the values are the COSE algorithm ids (RFC 9053). */
enum topic_policy_alg {
	TOPIC_POLICY_AES_256_GCM = 3,
	TOPIC_POLICY_CHACHA20_POLY1305 = 24,
};

enum topic_policy_op {
	TOPIC_POLICY_PUB = 1, /* publish a message on a topic name */
	TOPIC_POLICY_SUB = 2, /* subscribe to a topic filter (or receive on a topic name) */
};

/* One policy; every pointer is owned by the set. */
struct topic_policy {
	const char *filter;		     /* a valid MQTT topic filter, wildcards allowed */
	const struct policy_expr *publish;   /* absent in the file = false */
	const struct policy_expr *subscribe; /* absent in the file = false */
	enum topic_policy_alg alg;	     /* default ChaCha20-Poly1305 */
	bool must_sign;			     /* "signed": COSE_Sign1 around the envelope */
	uint32_t max_age_s;		     /* 0 = no maximum age */
	uint8_t id[TOPIC_POLICY_ID_LEN];     /* SHA-256 over filter, expressions and alg */
};

struct topic_policy_set;

/*
 * Parses the JSON document of <len> bytes at <json> (need not be
 * NUL-terminated) into *<out>:
 *   {"policies":[{"filter":"plant/+/temp","publish":"role == sensor",
 *     "subscribe":"role in [historian, operator]","alg":"chacha20-poly1305",
 *     "signed":false,"max_age_s":300}, ...]}
 * Unknown or duplicate keys, weak algorithms (named with the reason and the
 * replacement), invalid or "$share/" filters, duplicate filters and two
 * equally specific filters that overlap are refused. MOAT_OK; MOAT_E_CONFIG
 * or MOAT_E_LIMIT with <diag> saying where ("policies[2].publish: column 5:
 * ..."); MOAT_E_NOMEM.
 */
int topic_policy_set_parse(struct topic_policy_set **out, const char *json, size_t len,
			   struct policy_diag *diag);

/* Frees <set>. NULL is fine. No query may be running on it. */
void topic_policy_set_destroy(struct topic_policy_set *set);

/* Number of policies, and the <i>th (< count) in file order. */
size_t topic_policy_count(const struct topic_policy_set *set);
const struct topic_policy *topic_policy_at(const struct topic_policy_set *set, size_t i);

/*
 * The policy for topic name <topic>: of the policies whose filter matches
 * it, the most specific (fewest wildcards, then most levels, then most
 * bytes; loading guarantees there is one). NULL when none matches or
 * <topic> is not a valid topic name.
 */
const struct topic_policy *topic_policy_for(const struct topic_policy_set *set,
					    struct moat_bytes topic);

/*
 * Whether a session with attributes <attrs> (name, value, ..., NULL) may do
 * <op> on <topic>. Deny by default: no matching policy means false.
 * TOPIC_POLICY_PUB: <topic> is a topic name; its policy's publish expression.
 * TOPIC_POLICY_SUB: <topic> is a topic name (a delivery) or a filter (a
 * SUBSCRIBE; "$share/<group>/" is removed first). For a filter F: true only
 * when one policy's filter covers every topic F can match and every policy
 * whose filter overlaps F allows it, so each topic F delivers is allowed by
 * its own most specific policy. Thread-safe; allocates nothing.
 */
bool topic_policy_allows(const struct topic_policy_set *set, struct moat_bytes topic,
			 char *const *attrs, enum topic_policy_op op);

/* "chacha20-poly1305" or "aes-256-gcm". */
const char *topic_policy_alg_name(enum topic_policy_alg alg);

#endif
