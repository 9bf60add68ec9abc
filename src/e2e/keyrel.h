/*
 * The key-release protocol between a device and the Security Center
 * (SECURITY-DESIGN §2.8, docs/security-center.md "Key release"): the bytes
 * of each message, built and checked here, with no I/O. Both sides use it:
 * moat-sc (src/sc) answers requests, libmoat (src/client) makes them.
 *
 * Every message is a COSE_Sign1 (cose.h) whose payload is a CBOR map with
 * small unsigned-integer keys, bound to the MQTT topic it travels on
 * (external_aad = ["moat/1", topic]) instead of the design's fixed
 * "moat-req/1" label: the topic names the client, so a request or
 * response cannot be moved to another client's topic.
 *
 *   request   device -> $sc/req/<client-id>,  signed by the device's Ed25519
 *             key, kid = client id
 *   response  SC -> $sc/resp/<client-id>, signed by the SC key, kid "sc",
 *             bound to the request by req_hash = SHA-256(request bytes)
 *   epoch     SC -> $sc/epoch/<group-id hex>, retained, signed by the SC
 *   alert     device -> alerts/<client-id>/tamper, signed by the device
 *
 * Request map: 1 op (uint: 1 get-key, 2 get-token), 2 client_id (tstr),
 *   3 topic (tstr: the topic or filter the key is for; get-key only),
 *   4 intent (uint: 1 publish, 2 subscribe; get-key only), 5 epoch (uint,
 *   optional: an older epoch still in its grace window), 6 nonce (bstr 16),
 *   7 iat (int, Unix s), 8 agree_fpr (bstr 32: SHA-256 of the device's
 *   X25519 public key the answer is to be sealed to).
 * Response map: 1 status (uint, enum keyrel_status), 2 req_hash (bstr 32),
 *   3 time (int: the SC's clock, for devices without one), 4 reason (tstr,
 *   errors only), and for a granted key: 5 group_id (bstr 8), 6 epoch
 *   (uint), 7 alg (int, COSE), 8 filter (tstr: the policy's filter),
 *   9 signed (bool), 10 max_age_s (uint), 11 not_after (int, Unix s),
 *   12 sender_id (bstr 1..6, publish intent only), 13 enc (bstr 32),
 *   14 ct (bstr 48: HPKE ciphertext of the 32-byte master secret); for a
 *   token: 15 token (tstr, a JWT), 11 not_after.
 * HPKE (hpke.h): base mode, ChaCha20-Poly1305, to the device's X25519 key,
 *   info = "moat key release" 0x00 client_id 0x00 group_id(8) epoch(4, BE),
 *   aad = req_hash.
 * Epoch map: 1 group_id (bstr 8), 2 epoch (uint), 3 filter (tstr),
 *   4 issued (int, Unix s).
 * Alert map: 1 kind (tstr, "tamper"), 2 iat (int), 3 detail (tstr, may be
 *   empty).
 * Unknown map keys, duplicate keys, wrong types and missing required keys
 * are refused (MOAT_E_MALFORMED) with a static reason.
 */
#ifndef MOAT_E2E_KEYREL_H
#define MOAT_E2E_KEYREL_H

#include <stdbool.h>
#include <stdint.h>

#include <moat/bytes.h>

#include "base/buf.h"
#include "e2e/cose.h"

enum {
	KEYREL_NONCE_LEN = 16,
	KEYREL_HASH_LEN = 32,
	KEYREL_MS_LEN = 32,
	KEYREL_CT_LEN = KEYREL_MS_LEN + 16,
	KEYREL_CLIENT_ID_MAX = 128,
	KEYREL_TOPIC_MAX = 1024,
	KEYREL_REASON_MAX = 200,
	KEYREL_TOKEN_MAX = 4096,
	KEYREL_MESSAGE_MAX = 8192, /* any message above this is refused unread */
	KEYREL_IAT_SKEW_S = 60,	   /* |iat - now| allowed for requests */
};

#define KEYREL_REQ_PREFIX "$sc/req/"
#define KEYREL_RESP_PREFIX "$sc/resp/"
#define KEYREL_EPOCH_PREFIX "$sc/epoch/"
#define KEYREL_SC_KID "sc"

enum keyrel_op { KEYREL_GET_KEY = 1, KEYREL_GET_TOKEN = 2 };
enum keyrel_intent { KEYREL_PUBLISH = 1, KEYREL_SUBSCRIBE = 2 };

enum keyrel_status {
	KEYREL_OK = 0,
	KEYREL_DENIED = 1,	  /* the policy's expression is not satisfied */
	KEYREL_UNKNOWN = 2,	  /* no such thing, or no such key of it */
	KEYREL_REVOKED = 3,	  /* the thing is revoked */
	KEYREL_STALE = 4,	  /* iat outside KEYREL_IAT_SKEW_S */
	KEYREL_REPLAY = 5,	  /* nonce seen before */
	KEYREL_RATE_LIMITED = 6,  /* too many requests from this thing */
	KEYREL_BAD_REQUEST = 7,	  /* malformed, bad signature, no policy for the topic */
	KEYREL_INTERNAL = 8,	  /* the SC failed; try later */
	KEYREL_NO_EPOCH = 9,	  /* the asked epoch is outside the grace window */
	KEYREL_STATUS_MAX = 9,
};

/* Signs <msg> with Ed25519 into <sig> (64 bytes): the SC's key may live in a
 * PKCS#11 token, so the SC side signs through this callback. */
typedef int keyrel_sign_fn(void *arg, const uint8_t *msg, size_t len,
			   uint8_t sig[COSE_ED25519_SIG_LEN]);

struct keyrel_request {
	enum keyrel_op op;
	struct moat_bytes client_id; /* views into the message */
	struct moat_bytes topic;     /* empty for get-token */
	enum keyrel_intent intent;   /* 0 for get-token */
	bool has_epoch;
	uint32_t epoch;
	uint8_t nonce[KEYREL_NONCE_LEN];
	int64_t iat;
	uint8_t agree_fpr[KEYREL_HASH_LEN];
	uint8_t req_hash[KEYREL_HASH_LEN]; /* SHA-256 of the whole request */
};

struct keyrel_grant {
	enum keyrel_status status;
	uint8_t req_hash[KEYREL_HASH_LEN];
	int64_t sc_time;
	char reason[KEYREL_REASON_MAX + 1]; /* errors only */
	/* get-key: */
	struct cose_group group; /* master secret: wipe with OPENSSL_cleanse */
	int alg;
	char filter[KEYREL_TOPIC_MAX + 1];
	bool is_signed;
	uint32_t max_age_s;
	int64_t not_after;
	uint8_t sender_id[6];
	size_t sender_id_len; /* 0 for the subscribe intent */
	/* get-token: */
	char token[KEYREL_TOKEN_MAX + 1];
};

/*
 * Device side. Appends to <out> the signed request of <req> (its req_hash
 * is ignored) for the topic "$sc/req/<client_id>", signed with the Ed25519
 * private key <sign_seed>. On MOAT_OK req->req_hash holds the hash the
 * response must carry.
 */
int keyrel_request_build(struct keyrel_request *req, const uint8_t sign_seed[32], struct buf *out);

/*
 * SC side, step 1: decodes the untrusted <msg> received on <topic> into
 * <req> (views into <msg>) and computes req->req_hash; checks that the
 * topic is "$sc/req/" + the map's client_id and the Sign1 kid equals it.
 * The signature is not checked yet: the caller looks the signer's key up
 * by client id, then calls keyrel_request_verify.
 */
int keyrel_request_decode(struct moat_bytes msg, struct moat_bytes topic,
			  struct keyrel_request *req, struct cose_sign1 *sig, const char **why);

/* SC side, step 2: verifies <sig> (from keyrel_request_decode) for <topic>
 * against the device's Ed25519 public key <pub>. */
int keyrel_request_verify(const struct cose_sign1 *sig, struct moat_bytes topic,
			  const uint8_t pub[32], const char **why);

/*
 * SC side: appends to <out> the signed response <g> for the request <req>
 * (g->req_hash is taken from <req>), on "$sc/resp/<client_id>". For a
 * granted key (status KEYREL_OK, op get-key) the master secret of g->group
 * is HPKE-sealed to the device key <agree_pub>; <agree_pub> is unused
 * otherwise.
 */
int keyrel_response_build(const struct keyrel_request *req, const struct keyrel_grant *g,
			  const uint8_t agree_pub[32], keyrel_sign_fn *sign, void *sign_arg,
			  struct buf *out);

/*
 * Device side: checks the untrusted response <msg> received on <topic>:
 * the topic is "$sc/resp/<client_id>", the SC's signature verifies with
 * <sc_pub>, its req_hash equals <req_hash> (an old or another request's
 * response fails), and for a granted key HPKE-opens the master secret with
 * <agree_seed> into g->group. Errors: MOAT_E_MALFORMED, MOAT_E_CRYPTO
 * (signature, req_hash or HPKE), with <why>.
 */
int keyrel_response_open(struct moat_bytes msg, struct moat_bytes topic, const char *client_id,
			 const uint8_t req_hash[KEYREL_HASH_LEN], const uint8_t sc_pub[32],
			 const uint8_t agree_seed[32], struct keyrel_grant *g, const char **why);

/* SC side: the retained epoch announcement for <group_id>/<epoch>. */
int keyrel_epoch_build(const uint8_t group_id[COSE_GROUP_ID_LEN], uint32_t epoch,
		       const char *filter, int64_t issued, keyrel_sign_fn *sign, void *sign_arg,
		       struct buf *out);

/* Device side: verifies (with <sc_pub>) and decodes an epoch announcement
 * received on <topic> ("$sc/epoch/" + the group id in lower-case hex). */
int keyrel_epoch_open(struct moat_bytes msg, struct moat_bytes topic, const uint8_t sc_pub[32],
		      uint8_t group_id[COSE_GROUP_ID_LEN], uint32_t *epoch, const char **why);

/* Device side: a signed tamper alert for "alerts/<client_id>/tamper". */
int keyrel_alert_build(const char *client_id, int64_t iat, const char *detail,
		       const uint8_t sign_seed[32], struct buf *out);

/* SC side: decodes the alert <msg> received on <topic>, checks that the
 * topic names the Sign1 kid, and returns its client id (a view), iat and
 * detail (a view) plus <sig> for keyrel_request_verify-style checking with
 * cose_sign1_verify against the device's registered key. */
int keyrel_alert_decode(struct moat_bytes msg, struct moat_bytes topic, struct moat_bytes *client_id,
			int64_t *iat, struct moat_bytes *detail, struct cose_sign1 *sig,
			const char **why);

/* A static English name of <s> ("ok", "denied", ...). */
const char *keyrel_status_name(enum keyrel_status s);

#endif
