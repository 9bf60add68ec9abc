/*
 * The key-release messages (see keyrel.h): each is a COSE_Sign1 (cose.c)
 * over a CBOR map with small unsigned keys. Builders write the keys in
 * ascending order (deterministic CBOR); decoders accept any order but refuse
 * unknown, duplicate, mistyped and missing keys. Topic and kid checks come
 * before any field is trusted; nothing here does I/O or keeps state.
 */
#include "e2e/keyrel.h"

#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/sha.h>

#include <moat/error.h>

#include "e2e/alg.h"
#include "e2e/cbor.h"
#include "e2e/hpke.h"
#include "e2e/kdf.h"

#define ALERT_PREFIX "alerts/"
#define ALERT_SUFFIX "/tamper"
#define ALERT_KIND "tamper"
#define HPKE_INFO_LABEL "moat key release"

enum {
	/* request map */
	RQ_OP = 1,
	RQ_CLIENT_ID = 2,
	RQ_TOPIC = 3,
	RQ_INTENT = 4,
	RQ_EPOCH = 5,
	RQ_NONCE = 6,
	RQ_IAT = 7,
	RQ_AGREE_FPR = 8,
	/* response map */
	RS_STATUS = 1,
	RS_REQ_HASH = 2,
	RS_TIME = 3,
	RS_REASON = 4,
	RS_GROUP_ID = 5,
	RS_EPOCH = 6,
	RS_ALG = 7,
	RS_FILTER = 8,
	RS_SIGNED = 9,
	RS_MAX_AGE = 10,
	RS_NOT_AFTER = 11,
	RS_SENDER_ID = 12,
	RS_ENC = 13,
	RS_CT = 14,
	RS_TOKEN = 15,
	/* epoch map */
	EP_GROUP_ID = 1,
	EP_EPOCH = 2,
	EP_FILTER = 3,
	EP_ISSUED = 4,
	/* alert map */
	AL_KIND = 1,
	AL_IAT = 2,
	AL_DETAIL = 3,
	MAP_KEY_MAX = 15,
	/* "moat key release" 0x00 client_id 0x00 group_id epoch */
	INFO_MAX =
	    sizeof(HPKE_INFO_LABEL) - 1 + 1 + KEYREL_CLIENT_ID_MAX + 1 + COSE_GROUP_ID_LEN + 4,
	TOPIC_BUF = 64 + KEYREL_CLIENT_ID_MAX, /* any prefix + client id + suffix + NUL */
};

#define BIT(k) (1u << (k))
#define RQ_BASE (BIT(RQ_OP) | BIT(RQ_CLIENT_ID) | BIT(RQ_NONCE) | BIT(RQ_IAT) | BIT(RQ_AGREE_FPR))
#define RS_BASE (BIT(RS_STATUS) | BIT(RS_REQ_HASH) | BIT(RS_TIME))
#define RS_KEY                                                                                     \
	(BIT(RS_GROUP_ID) | BIT(RS_EPOCH) | BIT(RS_ALG) | BIT(RS_FILTER) | BIT(RS_SIGNED) |        \
	 BIT(RS_MAX_AGE) | BIT(RS_NOT_AFTER) | BIT(RS_ENC) | BIT(RS_CT))
#define RS_TOKEN_SET (BIT(RS_NOT_AFTER) | BIT(RS_TOKEN))

static int set_why(const char **why, const char *text, int rc)
{
	if (why != NULL)
		*why = text;
	return rc;
}

static struct moat_bytes view(const void *p, size_t len)
{
	return (struct moat_bytes){.ptr = p, .len = len};
}

/* A client id we put into topics: 1..KEYREL_CLIENT_ID_MAX bytes, no NUL,
 * no topic separator or wildcard. */
static bool client_id_ok(struct moat_bytes id)
{
	if (id.len < 1 || id.len > KEYREL_CLIENT_ID_MAX)
		return false;
	for (size_t i = 0; i < id.len; i++)
		if (id.ptr[i] == 0 || id.ptr[i] == '/' || id.ptr[i] == '+' || id.ptr[i] == '#')
			return false;
	return true;
}

/* A text field copied into a C string: no NUL inside. */
static bool no_nul(struct moat_bytes s)
{
	return s.len == 0 || memchr(s.ptr, 0, s.len) == NULL;
}

/* Writes <prefix> <id> <suffix> NUL into <out> (TOPIC_BUF bytes); returns its length. */
static size_t make_topic(char out[TOPIC_BUF], const char *prefix, struct moat_bytes id,
			 const char *suffix)
{
	size_t n = strlen(prefix), m = strlen(suffix);

	memcpy(out, prefix, n);
	memcpy(out + n, id.ptr, id.len);
	memcpy(out + n + id.len, suffix, m);
	out[n + id.len + m] = '\0';
	return n + id.len + m;
}

static bool topic_is(struct moat_bytes topic, const char *prefix, struct moat_bytes id,
		     const char *suffix)
{
	char want[TOPIC_BUF];
	size_t n = make_topic(want, prefix, id, suffix);

	return topic.len == n && memcmp(topic.ptr, want, n) == 0;
}

static int put_uint_pair(struct buf *b, unsigned key, uint64_t v)
{
	int rc = cbor_put_uint(b, key);

	return rc == MOAT_OK ? cbor_put_uint(b, v) : rc;
}

static int put_int_pair(struct buf *b, unsigned key, int64_t v)
{
	int rc = cbor_put_uint(b, key);

	return rc == MOAT_OK ? cbor_put_int(b, v) : rc;
}

static int put_bstr_pair(struct buf *b, unsigned key, const void *p, size_t len)
{
	int rc = cbor_put_uint(b, key);

	return rc == MOAT_OK ? cbor_put_bstr(b, p, len) : rc;
}

static int put_tstr_pair(struct buf *b, unsigned key, const void *p, size_t len)
{
	int rc = cbor_put_uint(b, key);

	return rc == MOAT_OK ? cbor_put_tstr(b, p, len) : rc;
}

/*
 * Decodes the Sign1 envelope <msg> and opens its payload map: <d> is left
 * at the first key, <pairs> holds the pair count. The whole payload is
 * checked strict CBOR first.
 */
static int open_envelope(struct moat_bytes msg, struct cose_sign1 *sig, struct cbor_dec *d,
			 size_t *pairs, const char **why)
{
	int rc;

	if (msg.len > KEYREL_MESSAGE_MAX)
		return set_why(why, "message is larger than KEYREL_MESSAGE_MAX", MOAT_E_LIMIT);
	rc = cose_sign1_decode(msg, sig, why);
	if (rc < 0)
		return rc;
	if (cbor_check(sig->payload.ptr, sig->payload.len) != MOAT_OK)
		return set_why(why, "payload is not strict CBOR", MOAT_E_MALFORMED);
	cbor_dec_init(d, sig->payload.ptr, sig->payload.len);
	if (!cbor_read_map(d, pairs))
		return set_why(why, "payload is not a map", MOAT_E_MALFORMED);
	return MOAT_OK;
}

/* Reads the next map key: an unsigned integer 1..MAP_KEY_MAX not in <*seen>
 * and allowed by <known>; marks it seen. */
static int next_key(struct cbor_dec *d, uint32_t known, uint32_t *seen, unsigned *key,
		    const char **why)
{
	uint64_t k;

	if (cbor_peek(d) != CBOR_UINT || !cbor_read_uint(d, &k) || k < 1 || k > MAP_KEY_MAX ||
	    (known & BIT(k)) == 0)
		return set_why(why, "unknown map key", MOAT_E_MALFORMED);
	if ((*seen & BIT(k)) != 0)
		return set_why(why, "duplicate map key", MOAT_E_MALFORMED);
	*seen |= BIT(k);
	*key = (unsigned)k;
	return MOAT_OK;
}

static bool read_fixed(struct cbor_dec *d, uint8_t *out, size_t len)
{
	struct moat_bytes v;

	if (!cbor_read_bstr(d, &v) || v.len != len)
		return false;
	memcpy(out, v.ptr, len);
	return true;
}

static bool read_u32(struct cbor_dec *d, uint32_t *out)
{
	uint64_t v;

	if (!cbor_read_uint(d, &v) || v > UINT32_MAX)
		return false;
	*out = (uint32_t)v;
	return true;
}

/* Reads a text string of 1..<max> bytes without NUL into <out> (max + 1 bytes). */
static bool read_cstr(struct cbor_dec *d, char *out, size_t max, bool may_be_empty)
{
	struct moat_bytes v;

	if (!cbor_read_tstr(d, &v) || v.len > max || (v.len == 0 && !may_be_empty) || !no_nul(v))
		return false;
	memcpy(out, v.ptr, v.len);
	out[v.len] = '\0';
	return true;
}

static void sha256(struct moat_bytes m, uint8_t out[KEYREL_HASH_LEN])
{
	SHA256(m.ptr, m.len, out);
}

/* info = "moat key release" 0x00 client_id 0x00 group_id(8) epoch(4, BE) */
static size_t hpke_info(struct moat_bytes client_id, const struct cose_group *g,
			uint8_t out[INFO_MAX])
{
	size_t n = sizeof(HPKE_INFO_LABEL) - 1;

	memcpy(out, HPKE_INFO_LABEL, n);
	out[n++] = 0;
	memcpy(out + n, client_id.ptr, client_id.len);
	n += client_id.len;
	out[n++] = 0;
	memcpy(out + n, g->group_id, COSE_GROUP_ID_LEN);
	n += COSE_GROUP_ID_LEN;
	for (unsigned i = 0; i < 4; i++)
		out[n++] = (uint8_t)(g->epoch >> (24 - 8 * i));
	return n;
}

/* ---- request ---- */

static int put_request(const struct keyrel_request *req, struct buf *b)
{
	bool key = req->op == KEYREL_GET_KEY;
	size_t pairs = 5u + (key ? 2u : 0u) + (key && req->has_epoch ? 1u : 0u);
	int rc = cbor_put_map(b, pairs);

	if (rc == MOAT_OK)
		rc = put_uint_pair(b, RQ_OP, (uint64_t)req->op);
	if (rc == MOAT_OK)
		rc = put_tstr_pair(b, RQ_CLIENT_ID, req->client_id.ptr, req->client_id.len);
	if (rc == MOAT_OK && key)
		rc = put_tstr_pair(b, RQ_TOPIC, req->topic.ptr, req->topic.len);
	if (rc == MOAT_OK && key)
		rc = put_uint_pair(b, RQ_INTENT, (uint64_t)req->intent);
	if (rc == MOAT_OK && key && req->has_epoch)
		rc = put_uint_pair(b, RQ_EPOCH, req->epoch);
	if (rc == MOAT_OK)
		rc = put_bstr_pair(b, RQ_NONCE, req->nonce, KEYREL_NONCE_LEN);
	if (rc == MOAT_OK)
		rc = put_int_pair(b, RQ_IAT, req->iat);
	if (rc == MOAT_OK)
		rc = put_bstr_pair(b, RQ_AGREE_FPR, req->agree_fpr, KEYREL_HASH_LEN);
	return rc;
}

static bool topic_field_ok(struct moat_bytes t)
{
	return t.len >= 1 && t.len <= KEYREL_TOPIC_MAX && no_nul(t);
}

int keyrel_request_build(struct keyrel_request *req, const uint8_t sign_seed[32], struct buf *out)
{
	struct buf payload = {0};
	char topic[TOPIC_BUF];
	size_t mark = buf_used(out), tlen;
	int rc;

	if (!client_id_ok(req->client_id) ||
	    (req->op != KEYREL_GET_KEY && req->op != KEYREL_GET_TOKEN))
		return MOAT_E_INVAL;
	if (req->op == KEYREL_GET_KEY &&
	    (!topic_field_ok(req->topic) ||
	     (req->intent != KEYREL_PUBLISH && req->intent != KEYREL_SUBSCRIBE)))
		return MOAT_E_INVAL;
	tlen = make_topic(topic, KEYREL_REQ_PREFIX, req->client_id, "");
	rc = put_request(req, &payload);
	if (rc == MOAT_OK)
		rc = cose_sign1_sign(sign_seed, req->client_id, view(topic, tlen),
				     view(buf_head(&payload), buf_used(&payload)), out);
	if (rc == MOAT_OK)
		sha256(view(buf_head(out) + mark, buf_used(out) - mark), req->req_hash);
	buf_fini(&payload);
	return rc;
}

static int read_request_field(struct cbor_dec *d, unsigned key, struct keyrel_request *req,
			      const char **why)
{
	uint64_t v;

	switch (key) {
	case RQ_OP:
		if (!cbor_read_uint(d, &v) || (v != KEYREL_GET_KEY && v != KEYREL_GET_TOKEN))
			return set_why(why, "op is not 1 (get-key) or 2 (get-token)",
				       MOAT_E_MALFORMED);
		req->op = (enum keyrel_op)v;
		return MOAT_OK;
	case RQ_CLIENT_ID:
		if (!cbor_read_tstr(d, &req->client_id) || !client_id_ok(req->client_id))
			return set_why(why, "client_id is not a 1-128 byte topic-safe string",
				       MOAT_E_MALFORMED);
		return MOAT_OK;
	case RQ_TOPIC:
		if (!cbor_read_tstr(d, &req->topic) || !topic_field_ok(req->topic))
			return set_why(why, "topic is not a 1-1024 byte string", MOAT_E_MALFORMED);
		return MOAT_OK;
	case RQ_INTENT:
		if (!cbor_read_uint(d, &v) || (v != KEYREL_PUBLISH && v != KEYREL_SUBSCRIBE))
			return set_why(why, "intent is not 1 (publish) or 2 (subscribe)",
				       MOAT_E_MALFORMED);
		req->intent = (enum keyrel_intent)v;
		return MOAT_OK;
	case RQ_EPOCH:
		if (!read_u32(d, &req->epoch))
			return set_why(why, "epoch is not a 32-bit unsigned integer",
				       MOAT_E_MALFORMED);
		req->has_epoch = true;
		return MOAT_OK;
	case RQ_NONCE:
		if (!read_fixed(d, req->nonce, KEYREL_NONCE_LEN))
			return set_why(why, "nonce is not 16 bytes", MOAT_E_MALFORMED);
		return MOAT_OK;
	case RQ_IAT:
		if (!cbor_read_int(d, &req->iat))
			return set_why(why, "iat is not an integer", MOAT_E_MALFORMED);
		return MOAT_OK;
	default: /* RQ_AGREE_FPR: next_key let nothing else through */
		if (!read_fixed(d, req->agree_fpr, KEYREL_HASH_LEN))
			return set_why(why, "agree_fpr is not 32 bytes", MOAT_E_MALFORMED);
		return MOAT_OK;
	}
}

int keyrel_request_decode(struct moat_bytes msg, struct moat_bytes topic,
			  struct keyrel_request *req, struct cose_sign1 *sig, const char **why)
{
	const uint32_t known = RQ_BASE | BIT(RQ_TOPIC) | BIT(RQ_INTENT) | BIT(RQ_EPOCH);
	struct cbor_dec d;
	uint32_t seen = 0;
	size_t pairs;
	unsigned key;
	int rc;

	memset(req, 0, sizeof(*req));
	rc = open_envelope(msg, sig, &d, &pairs, why);
	for (size_t i = 0; rc == MOAT_OK && i < pairs; i++) {
		rc = next_key(&d, known, &seen, &key, why);
		if (rc == MOAT_OK)
			rc = read_request_field(&d, key, req, why);
	}
	if (rc < 0)
		return rc;
	if ((seen & RQ_BASE) != RQ_BASE)
		return set_why(why, "request lacks op, client_id, nonce, iat or agree_fpr",
			       MOAT_E_MALFORMED);
	if (req->op == KEYREL_GET_KEY &&
	    (seen & (BIT(RQ_TOPIC) | BIT(RQ_INTENT))) != (BIT(RQ_TOPIC) | BIT(RQ_INTENT)))
		return set_why(why, "get-key request lacks topic or intent", MOAT_E_MALFORMED);
	if (req->op == KEYREL_GET_TOKEN &&
	    (seen & (BIT(RQ_TOPIC) | BIT(RQ_INTENT) | BIT(RQ_EPOCH))) != 0)
		return set_why(why, "get-token request has topic, intent or epoch",
			       MOAT_E_MALFORMED);
	if (!topic_is(topic, KEYREL_REQ_PREFIX, req->client_id, ""))
		return set_why(why, "topic is not $sc/req/ + the request's client_id",
			       MOAT_E_PROTOCOL);
	if (!moat_bytes_eq(sig->kid, req->client_id))
		return set_why(why, "signer kid is not the request's client_id", MOAT_E_PROTOCOL);
	sha256(msg, req->req_hash);
	return MOAT_OK;
}

int keyrel_request_verify(const struct cose_sign1 *sig, struct moat_bytes topic,
			  const uint8_t pub[32], const char **why)
{
	return cose_sign1_verify(sig, pub, topic, why);
}

/* ---- response ---- */

static bool grant_is_key(const struct keyrel_request *req, const struct keyrel_grant *g)
{
	return g->status == KEYREL_OK && req->op == KEYREL_GET_KEY;
}

static int check_grant(const struct keyrel_request *req, const struct keyrel_grant *g,
		       const uint8_t *agree_pub)
{
	uint8_t fpr[KEYREL_HASH_LEN];
	size_t sid_want_max = req->intent == KEYREL_PUBLISH ? E2E_SENDER_ID_MAX : 0;

	if (!client_id_ok(req->client_id) || (unsigned)g->status > KEYREL_STATUS_MAX ||
	    strnlen(g->reason, sizeof(g->reason)) > KEYREL_REASON_MAX)
		return MOAT_E_INVAL;
	if (g->status != KEYREL_OK)
		return MOAT_OK;
	if (req->op == KEYREL_GET_TOKEN) {
		size_t n = strnlen(g->token, sizeof(g->token));

		return n >= 1 && n <= KEYREL_TOKEN_MAX ? MOAT_OK : MOAT_E_INVAL;
	}
	if (agree_pub == NULL || !e2e_alg_is_valid(g->alg) ||
	    strnlen(g->filter, sizeof(g->filter)) < 1 ||
	    strnlen(g->filter, sizeof(g->filter)) > KEYREL_TOPIC_MAX ||
	    g->sender_id_len > sid_want_max || (sid_want_max > 0 && g->sender_id_len == 0))
		return MOAT_E_INVAL;
	SHA256(agree_pub, 32, fpr);
	return CRYPTO_memcmp(fpr, req->agree_fpr, sizeof(fpr)) == 0 ? MOAT_OK : MOAT_E_INVAL;
}

static size_t response_pairs(const struct keyrel_request *req, const struct keyrel_grant *g)
{
	if (g->status != KEYREL_OK)
		return 3u + (g->reason[0] != '\0' ? 1u : 0u);
	if (req->op == KEYREL_GET_TOKEN)
		return 3 + 2;
	return 3u + 9u + (g->sender_id_len > 0 ? 1u : 0u);
}

static int put_key_fields(struct buf *b, const struct keyrel_request *req,
			  const struct keyrel_grant *g, const uint8_t agree_pub[32])
{
	uint8_t info[INFO_MAX], enc[HPKE_KEY_LEN], ct[KEYREL_CT_LEN];
	size_t info_len = hpke_info(req->client_id, &g->group, info);
	int rc = hpke_seal(HPKE_CHACHA20_POLY1305, agree_pub, info, info_len, req->req_hash,
			   KEYREL_HASH_LEN, g->group.master_secret, KEYREL_MS_LEN, NULL, enc, ct);

	if (rc == MOAT_OK)
		rc = put_bstr_pair(b, RS_GROUP_ID, g->group.group_id, COSE_GROUP_ID_LEN);
	if (rc == MOAT_OK)
		rc = put_uint_pair(b, RS_EPOCH, g->group.epoch);
	if (rc == MOAT_OK)
		rc = put_int_pair(b, RS_ALG, g->alg);
	if (rc == MOAT_OK)
		rc = put_tstr_pair(b, RS_FILTER, g->filter, strlen(g->filter));
	if (rc == MOAT_OK)
		rc = cbor_put_uint(b, RS_SIGNED);
	if (rc == MOAT_OK)
		rc = cbor_put_simple(b, g->is_signed ? CBOR_TRUE : CBOR_FALSE);
	if (rc == MOAT_OK)
		rc = put_uint_pair(b, RS_MAX_AGE, g->max_age_s);
	if (rc == MOAT_OK)
		rc = put_int_pair(b, RS_NOT_AFTER, g->not_after);
	if (rc == MOAT_OK && g->sender_id_len > 0)
		rc = put_bstr_pair(b, RS_SENDER_ID, g->sender_id, g->sender_id_len);
	if (rc == MOAT_OK)
		rc = put_bstr_pair(b, RS_ENC, enc, sizeof(enc));
	if (rc == MOAT_OK)
		rc = put_bstr_pair(b, RS_CT, ct, sizeof(ct));
	return rc;
}

static int put_response(struct buf *b, const struct keyrel_request *req,
			const struct keyrel_grant *g, const uint8_t *agree_pub)
{
	int rc = cbor_put_map(b, response_pairs(req, g));

	if (rc == MOAT_OK)
		rc = put_uint_pair(b, RS_STATUS, (uint64_t)g->status);
	if (rc == MOAT_OK)
		rc = put_bstr_pair(b, RS_REQ_HASH, req->req_hash, KEYREL_HASH_LEN);
	if (rc == MOAT_OK)
		rc = put_int_pair(b, RS_TIME, g->sc_time);
	if (rc == MOAT_OK && g->status != KEYREL_OK && g->reason[0] != '\0')
		rc = put_tstr_pair(b, RS_REASON, g->reason, strlen(g->reason));
	if (rc == MOAT_OK && grant_is_key(req, g))
		rc = put_key_fields(b, req, g, agree_pub);
	if (rc == MOAT_OK && g->status == KEYREL_OK && req->op == KEYREL_GET_TOKEN) {
		rc = put_int_pair(b, RS_NOT_AFTER, g->not_after);
		if (rc == MOAT_OK)
			rc = put_tstr_pair(b, RS_TOKEN, g->token, strlen(g->token));
	}
	return rc;
}

int keyrel_response_build(const struct keyrel_request *req, const struct keyrel_grant *g,
			  const uint8_t agree_pub[32], keyrel_sign_fn *sign, void *sign_arg,
			  struct buf *out)
{
	struct buf payload = {0};
	char topic[TOPIC_BUF];
	size_t tlen;
	int rc = check_grant(req, g, agree_pub);

	if (rc < 0)
		return rc;
	tlen = make_topic(topic, KEYREL_RESP_PREFIX, req->client_id, "");
	rc = put_response(&payload, req, g, agree_pub);
	if (rc == MOAT_OK)
		rc = cose_sign1_sign_with(sign, sign_arg, moat_bytes_str(KEYREL_SC_KID),
					  view(topic, tlen),
					  view(buf_head(&payload), buf_used(&payload)), out);
	buf_fini(&payload);
	return rc;
}

/* Response fields other than the master secret; enc and ct go to <enc>/<ct>. */
static int read_response_field(struct cbor_dec *d, unsigned key, struct keyrel_grant *g,
			       uint8_t req_hash[KEYREL_HASH_LEN], uint8_t enc[HPKE_KEY_LEN],
			       uint8_t ct[KEYREL_CT_LEN], const char **why)
{
	struct moat_bytes v;
	uint64_t u;
	int64_t i;
	enum cbor_simple s;

	switch (key) {
	case RS_STATUS:
		if (!cbor_read_uint(d, &u) || u > KEYREL_STATUS_MAX)
			return set_why(why, "status is not a known status", MOAT_E_MALFORMED);
		g->status = (enum keyrel_status)u;
		return MOAT_OK;
	case RS_REQ_HASH:
		return read_fixed(d, req_hash, KEYREL_HASH_LEN)
			   ? MOAT_OK
			   : set_why(why, "req_hash is not 32 bytes", MOAT_E_MALFORMED);
	case RS_TIME:
		return cbor_read_int(d, &g->sc_time)
			   ? MOAT_OK
			   : set_why(why, "time is not an integer", MOAT_E_MALFORMED);
	case RS_REASON:
		return read_cstr(d, g->reason, KEYREL_REASON_MAX, true)
			   ? MOAT_OK
			   : set_why(why, "reason is not a text of at most 200 bytes",
				     MOAT_E_MALFORMED);
	case RS_GROUP_ID:
		return read_fixed(d, g->group.group_id, COSE_GROUP_ID_LEN)
			   ? MOAT_OK
			   : set_why(why, "group_id is not 8 bytes", MOAT_E_MALFORMED);
	case RS_EPOCH:
		return read_u32(d, &g->group.epoch)
			   ? MOAT_OK
			   : set_why(why, "epoch is not a 32-bit unsigned integer",
				     MOAT_E_MALFORMED);
	case RS_ALG:
		if (!cbor_read_int(d, &i) || i < -65536 || i > 65535 || !e2e_alg_is_valid((int)i))
			return set_why(why, "alg is not an e2e algorithm", MOAT_E_MALFORMED);
		g->alg = (int)i;
		return MOAT_OK;
	case RS_FILTER:
		return read_cstr(d, g->filter, KEYREL_TOPIC_MAX, false)
			   ? MOAT_OK
			   : set_why(why, "filter is not a 1-1024 byte text", MOAT_E_MALFORMED);
	case RS_SIGNED:
		if (!cbor_read_simple(d, &s) || (s != CBOR_TRUE && s != CBOR_FALSE))
			return set_why(why, "signed is not a boolean", MOAT_E_MALFORMED);
		g->is_signed = s == CBOR_TRUE;
		return MOAT_OK;
	case RS_MAX_AGE:
		return read_u32(d, &g->max_age_s)
			   ? MOAT_OK
			   : set_why(why, "max_age_s is not a 32-bit unsigned integer",
				     MOAT_E_MALFORMED);
	case RS_NOT_AFTER:
		return cbor_read_int(d, &g->not_after)
			   ? MOAT_OK
			   : set_why(why, "not_after is not an integer", MOAT_E_MALFORMED);
	case RS_SENDER_ID:
		if (!cbor_read_bstr(d, &v) || v.len < 1 || v.len > E2E_SENDER_ID_MAX)
			return set_why(why, "sender_id is not 1-6 bytes", MOAT_E_MALFORMED);
		memcpy(g->sender_id, v.ptr, v.len);
		g->sender_id_len = v.len;
		return MOAT_OK;
	case RS_ENC:
		return read_fixed(d, enc, HPKE_KEY_LEN)
			   ? MOAT_OK
			   : set_why(why, "enc is not 32 bytes", MOAT_E_MALFORMED);
	case RS_CT:
		return read_fixed(d, ct, KEYREL_CT_LEN)
			   ? MOAT_OK
			   : set_why(why, "ct is not 48 bytes", MOAT_E_MALFORMED);
	default: /* RS_TOKEN */
		return read_cstr(d, g->token, KEYREL_TOKEN_MAX, false)
			   ? MOAT_OK
			   : set_why(why, "token is not a 1-4096 byte text", MOAT_E_MALFORMED);
	}
}

/* Which fields a response with <status> must and may carry. */
static int check_response_shape(enum keyrel_status status, uint32_t seen, const char **why)
{
	if ((seen & RS_BASE) != RS_BASE)
		return set_why(why, "response lacks status, req_hash or time", MOAT_E_MALFORMED);
	if (status != KEYREL_OK)
		return (seen & ~(RS_BASE | BIT(RS_REASON))) == 0
			   ? MOAT_OK
			   : set_why(why, "refusal carries key or token fields", MOAT_E_MALFORMED);
	if ((seen & BIT(RS_REASON)) != 0)
		return set_why(why, "a grant carries a reason", MOAT_E_MALFORMED);
	if ((seen & ~RS_BASE) == RS_TOKEN_SET)
		return MOAT_OK;
	if ((seen & RS_KEY) == RS_KEY && (seen & ~(RS_BASE | RS_KEY | BIT(RS_SENDER_ID))) == 0)
		return MOAT_OK;
	return set_why(why, "grant is neither a complete key nor a token", MOAT_E_MALFORMED);
}

static int open_master_secret(const char *client_id, struct keyrel_grant *g,
			      const uint8_t req_hash[KEYREL_HASH_LEN], const uint8_t *agree_seed,
			      const uint8_t enc[HPKE_KEY_LEN], const uint8_t ct[KEYREL_CT_LEN],
			      const char **why)
{
	uint8_t info[INFO_MAX];
	size_t info_len;

	if (agree_seed == NULL)
		return set_why(why, "no device key to open the grant with", MOAT_E_INVAL);
	info_len = hpke_info(moat_bytes_str(client_id), &g->group, info);
	if (hpke_open(HPKE_CHACHA20_POLY1305, agree_seed, enc, info, info_len, req_hash,
		      KEYREL_HASH_LEN, ct, KEYREL_CT_LEN, g->group.master_secret) != MOAT_OK)
		return set_why(why, "HPKE open of the master secret failed (wrong device key?)",
			       MOAT_E_CRYPTO);
	return MOAT_OK;
}

static int read_response(struct cbor_dec *d, size_t pairs, const char *client_id,
			 const uint8_t want_hash[KEYREL_HASH_LEN], const uint8_t *agree_seed,
			 struct keyrel_grant *g, const char **why)
{
	const uint32_t known = RS_BASE | BIT(RS_REASON) | RS_KEY | BIT(RS_SENDER_ID) | RS_TOKEN_SET;
	uint8_t req_hash[KEYREL_HASH_LEN], enc[HPKE_KEY_LEN], ct[KEYREL_CT_LEN];
	uint32_t seen = 0;
	unsigned key;
	int rc = MOAT_OK;

	for (size_t i = 0; rc == MOAT_OK && i < pairs; i++) {
		rc = next_key(d, known, &seen, &key, why);
		if (rc == MOAT_OK)
			rc = read_response_field(d, key, g, req_hash, enc, ct, why);
	}
	if (rc == MOAT_OK)
		rc = check_response_shape(g->status, seen, why);
	if (rc == MOAT_OK && CRYPTO_memcmp(req_hash, want_hash, KEYREL_HASH_LEN) != 0)
		rc = set_why(why, "response is for another request (req_hash)", MOAT_E_CRYPTO);
	if (rc == MOAT_OK)
		memcpy(g->req_hash, req_hash, KEYREL_HASH_LEN);
	if (rc == MOAT_OK && g->status == KEYREL_OK && (seen & BIT(RS_CT)) != 0)
		rc = open_master_secret(client_id, g, req_hash, agree_seed, enc, ct, why);
	return rc;
}

int keyrel_response_open(struct moat_bytes msg, struct moat_bytes topic, const char *client_id,
			 const uint8_t req_hash[KEYREL_HASH_LEN], const uint8_t sc_pub[32],
			 const uint8_t agree_seed[32], struct keyrel_grant *g, const char **why)
{
	struct cose_sign1 sig;
	struct cbor_dec d;
	size_t pairs;
	int rc;

	memset(g, 0, sizeof(*g));
	if (client_id == NULL || !client_id_ok(moat_bytes_str(client_id)))
		return set_why(why, "client_id is not a 1-128 byte topic-safe string",
			       MOAT_E_INVAL);
	rc = open_envelope(msg, &sig, &d, &pairs, why);
	if (rc == MOAT_OK && !topic_is(topic, KEYREL_RESP_PREFIX, moat_bytes_str(client_id), ""))
		rc = set_why(why, "topic is not $sc/resp/ + our client id", MOAT_E_PROTOCOL);
	if (rc == MOAT_OK && !moat_bytes_eq(sig.kid, moat_bytes_str(KEYREL_SC_KID)))
		rc = set_why(why, "signer kid is not \"sc\"", MOAT_E_PROTOCOL);
	if (rc == MOAT_OK)
		rc = cose_sign1_verify(&sig, sc_pub, topic, why);
	if (rc == MOAT_OK)
		rc = read_response(&d, pairs, client_id, req_hash, agree_seed, g, why);
	if (rc < 0) {
		OPENSSL_cleanse(g, sizeof(*g));
		if (rc == MOAT_E_MALFORMED || rc == MOAT_E_LIMIT || rc == MOAT_E_PROTOCOL)
			return MOAT_E_MALFORMED;
	}
	return rc;
}

/* ---- epoch announcement ---- */

static void hex_group(const uint8_t id[COSE_GROUP_ID_LEN], char out[2 * COSE_GROUP_ID_LEN + 1])
{
	static const char digits[] = "0123456789abcdef";

	for (size_t i = 0; i < COSE_GROUP_ID_LEN; i++) {
		out[2 * i] = digits[id[i] >> 4];
		out[2 * i + 1] = digits[id[i] & 15];
	}
	out[2 * COSE_GROUP_ID_LEN] = '\0';
}

int keyrel_epoch_build(const uint8_t group_id[COSE_GROUP_ID_LEN], uint32_t epoch,
		       const char *filter, int64_t issued, keyrel_sign_fn *sign, void *sign_arg,
		       struct buf *out)
{
	struct buf payload = {0};
	char hex[2 * COSE_GROUP_ID_LEN + 1], topic[TOPIC_BUF];
	size_t tlen;
	int rc;

	if (filter == NULL || !topic_field_ok(moat_bytes_str(filter)))
		return MOAT_E_INVAL;
	hex_group(group_id, hex);
	tlen = make_topic(topic, KEYREL_EPOCH_PREFIX, moat_bytes_str(hex), "");
	rc = cbor_put_map(&payload, 4);
	if (rc == MOAT_OK)
		rc = put_bstr_pair(&payload, EP_GROUP_ID, group_id, COSE_GROUP_ID_LEN);
	if (rc == MOAT_OK)
		rc = put_uint_pair(&payload, EP_EPOCH, epoch);
	if (rc == MOAT_OK)
		rc = put_tstr_pair(&payload, EP_FILTER, filter, strlen(filter));
	if (rc == MOAT_OK)
		rc = put_int_pair(&payload, EP_ISSUED, issued);
	if (rc == MOAT_OK)
		rc = cose_sign1_sign_with(sign, sign_arg, moat_bytes_str(KEYREL_SC_KID),
					  view(topic, tlen),
					  view(buf_head(&payload), buf_used(&payload)), out);
	buf_fini(&payload);
	return rc;
}

static int read_epoch(struct cbor_dec *d, size_t pairs, uint8_t group_id[COSE_GROUP_ID_LEN],
		      uint32_t *epoch, const char **why)
{
	const uint32_t all = BIT(EP_GROUP_ID) | BIT(EP_EPOCH) | BIT(EP_FILTER) | BIT(EP_ISSUED);
	struct moat_bytes v;
	uint32_t seen = 0;
	unsigned key;
	int64_t issued;
	int rc = MOAT_OK;

	for (size_t i = 0; rc == MOAT_OK && i < pairs; i++) {
		rc = next_key(d, all, &seen, &key, why);
		if (rc < 0)
			break;
		if (key == EP_GROUP_ID && !read_fixed(d, group_id, COSE_GROUP_ID_LEN))
			rc = set_why(why, "group_id is not 8 bytes", MOAT_E_MALFORMED);
		else if (key == EP_EPOCH && !read_u32(d, epoch))
			rc = set_why(why, "epoch is not a 32-bit unsigned integer",
				     MOAT_E_MALFORMED);
		else if (key == EP_FILTER && (!cbor_read_tstr(d, &v) || !topic_field_ok(v)))
			rc = set_why(why, "filter is not a 1-1024 byte text", MOAT_E_MALFORMED);
		else if (key == EP_ISSUED && !cbor_read_int(d, &issued))
			rc = set_why(why, "issued is not an integer", MOAT_E_MALFORMED);
	}
	if (rc == MOAT_OK && seen != all)
		rc = set_why(why, "epoch announcement lacks group_id, epoch, filter or issued",
			     MOAT_E_MALFORMED);
	return rc;
}

int keyrel_epoch_open(struct moat_bytes msg, struct moat_bytes topic, const uint8_t sc_pub[32],
		      uint8_t group_id[COSE_GROUP_ID_LEN], uint32_t *epoch, const char **why)
{
	struct cose_sign1 sig;
	struct cbor_dec d;
	char hex[2 * COSE_GROUP_ID_LEN + 1];
	uint8_t gid[COSE_GROUP_ID_LEN];
	uint32_t ep = 0;
	size_t pairs;
	int rc = open_envelope(msg, &sig, &d, &pairs, why);

	if (rc == MOAT_OK && !moat_bytes_eq(sig.kid, moat_bytes_str(KEYREL_SC_KID)))
		rc = set_why(why, "signer kid is not \"sc\"", MOAT_E_PROTOCOL);
	if (rc == MOAT_OK)
		rc = read_epoch(&d, pairs, gid, &ep, why);
	if (rc < 0)
		return rc;
	hex_group(gid, hex);
	if (!topic_is(topic, KEYREL_EPOCH_PREFIX, moat_bytes_str(hex), ""))
		return set_why(why, "topic is not $sc/epoch/ + the group id in lower-case hex",
			       MOAT_E_PROTOCOL);
	rc = cose_sign1_verify(&sig, sc_pub, topic, why);
	if (rc < 0)
		return rc;
	memcpy(group_id, gid, COSE_GROUP_ID_LEN);
	*epoch = ep;
	return MOAT_OK;
}

/* ---- tamper alert ---- */

int keyrel_alert_build(const char *client_id, int64_t iat, const char *detail,
		       const uint8_t sign_seed[32], struct buf *out)
{
	struct buf payload = {0};
	char topic[TOPIC_BUF];
	struct moat_bytes id = moat_bytes_str(client_id), det = moat_bytes_str(detail);
	size_t tlen;
	int rc;

	if (client_id == NULL || !client_id_ok(id) || det.len > KEYREL_MESSAGE_MAX / 2)
		return MOAT_E_INVAL;
	tlen = make_topic(topic, ALERT_PREFIX, id, ALERT_SUFFIX);
	rc = cbor_put_map(&payload, 3);
	if (rc == MOAT_OK)
		rc = put_tstr_pair(&payload, AL_KIND, ALERT_KIND, strlen(ALERT_KIND));
	if (rc == MOAT_OK)
		rc = put_int_pair(&payload, AL_IAT, iat);
	if (rc == MOAT_OK)
		rc = put_tstr_pair(&payload, AL_DETAIL, det.ptr, det.len);
	if (rc == MOAT_OK)
		rc = cose_sign1_sign(sign_seed, id, view(topic, tlen),
				     view(buf_head(&payload), buf_used(&payload)), out);
	buf_fini(&payload);
	return rc;
}

int keyrel_alert_decode(struct moat_bytes msg, struct moat_bytes topic,
			struct moat_bytes *client_id, int64_t *iat, struct moat_bytes *detail,
			struct cose_sign1 *sig, const char **why)
{
	const uint32_t all = BIT(AL_KIND) | BIT(AL_IAT) | BIT(AL_DETAIL);
	struct cbor_dec d;
	struct moat_bytes v;
	uint32_t seen = 0;
	size_t pairs;
	unsigned key;
	int rc = open_envelope(msg, sig, &d, &pairs, why);

	*client_id = view(NULL, 0);
	*detail = view(NULL, 0);
	*iat = 0;
	for (size_t i = 0; rc == MOAT_OK && i < pairs; i++) {
		rc = next_key(&d, all, &seen, &key, why);
		if (rc < 0)
			break;
		if (key == AL_KIND &&
		    (!cbor_read_tstr(&d, &v) || !moat_bytes_eq(v, moat_bytes_str(ALERT_KIND))))
			rc = set_why(why, "kind is not \"tamper\"", MOAT_E_MALFORMED);
		else if (key == AL_IAT && !cbor_read_int(&d, iat))
			rc = set_why(why, "iat is not an integer", MOAT_E_MALFORMED);
		else if (key == AL_DETAIL && (!cbor_read_tstr(&d, detail) || !no_nul(*detail)))
			rc = set_why(why, "detail is not a text without NUL", MOAT_E_MALFORMED);
	}
	if (rc == MOAT_OK && seen != all)
		rc = set_why(why, "alert lacks kind, iat or detail", MOAT_E_MALFORMED);
	if (rc == MOAT_OK && !client_id_ok(sig->kid))
		rc = set_why(why, "kid is not a topic-safe client id", MOAT_E_MALFORMED);
	if (rc == MOAT_OK && !topic_is(topic, ALERT_PREFIX, sig->kid, ALERT_SUFFIX))
		rc = set_why(why, "topic is not alerts/ + the signer kid + /tamper",
			     MOAT_E_PROTOCOL);
	if (rc < 0) {
		*detail = view(NULL, 0);
		return rc;
	}
	*client_id = sig->kid;
	return MOAT_OK;
}

const char *keyrel_status_name(enum keyrel_status s)
{
	static const char *const names[] = {
	    [KEYREL_OK] = "ok",
	    [KEYREL_DENIED] = "denied",
	    [KEYREL_UNKNOWN] = "unknown",
	    [KEYREL_REVOKED] = "revoked",
	    [KEYREL_STALE] = "stale",
	    [KEYREL_REPLAY] = "replay",
	    [KEYREL_RATE_LIMITED] = "rate-limited",
	    [KEYREL_BAD_REQUEST] = "bad-request",
	    [KEYREL_INTERNAL] = "internal",
	    [KEYREL_NO_EPOCH] = "no-epoch",
	};

	return (unsigned)s <= KEYREL_STATUS_MAX ? names[s] : "invalid";
}
