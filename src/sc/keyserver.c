/*
 * The key-release request handler (see keyserver.h): the checks in their
 * order, the grant, and the audit row of every answer.
 */
#include "sc/keyserver.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/sha.h>

#include <moat/error.h>

#include "sc/reqguard.h"
#include "sc/signer.h"
#include "sc/token.h"

enum { KEYS_MAX = 16 }; /* keys of one kind looked at per thing */

struct keyserver {
	struct registry *reg;
	uint8_t store_key[GROUPS_STORE_KEY_LEN];
	keyrel_sign_fn *sign;
	void *sign_arg;
	const struct topic_policy_set *policies;
	struct keyserver_config cfg;
	struct nonce_cache *nonces;
	struct rate_limiter *rates;
};

/* One request on its way through the checks. */
struct job {
	struct keyrel_request req;
	struct cose_sign1 sig;
	struct moat_bytes topic;
	struct reg_thing thing;
	uint8_t ed[KEYS_MAX][REG_KEY_LEN], x[KEYS_MAX][REG_KEY_LEN];
	size_t ed_count, x_count;
	const uint8_t *agree_pub;
	const struct topic_policy *policy;
	struct keyrel_grant grant;
	const char *reason; /* static text of a refusal */
	struct groups_epoch epoch;
	struct sc_token_info token; /* get-token: what was issued, for the audit */
};

int keyserver_create(struct keyserver **out, struct registry *reg,
		     const uint8_t store_key[GROUPS_STORE_KEY_LEN], keyrel_sign_fn *sign,
		     void *sign_arg, const struct keyserver_config *cfg)
{
	struct keyserver *ks = calloc(1, sizeof(*ks));
	int rc;

	if (ks == NULL)
		return MOAT_E_NOMEM;
	ks->reg = reg;
	memcpy(ks->store_key, store_key, GROUPS_STORE_KEY_LEN);
	ks->sign = sign;
	ks->sign_arg = sign_arg;
	ks->cfg = cfg != NULL ? *cfg : (struct keyserver_config){.grace_s = -1};
	if (ks->cfg.epoch_period_s <= 0)
		ks->cfg.epoch_period_s = GROUPS_PERIOD_S_DEFAULT;
	if (ks->cfg.grace_s < 0)
		ks->cfg.grace_s = GROUPS_GRACE_S_DEFAULT;
	if (ks->cfg.rate_per_s == 0)
		ks->cfg.rate_per_s = KEYSERVER_RATE_DEFAULT;
	if (ks->cfg.burst == 0) /* at least a second's worth: --rate 1000/s means that */
		ks->cfg.burst = ks->cfg.rate_per_s > KEYSERVER_BURST_DEFAULT
				    ? ks->cfg.rate_per_s
				    : KEYSERVER_BURST_DEFAULT;
	rc = nonce_cache_create(&ks->nonces, KEYSERVER_NONCE_CAP, KEYSERVER_NONCE_TTL_S);
	if (rc == MOAT_OK)
		rc = rate_limiter_create(&ks->rates, KEYSERVER_BUCKETS, ks->cfg.rate_per_s,
					 ks->cfg.burst);
	if (rc < 0) {
		keyserver_destroy(ks);
		return rc;
	}
	*out = ks;
	return MOAT_OK;
}

void keyserver_destroy(struct keyserver *ks)
{
	if (ks == NULL)
		return;
	nonce_cache_destroy(ks->nonces);
	rate_limiter_destroy(ks->rates);
	OPENSSL_cleanse(ks->store_key, sizeof(ks->store_key));
	free(ks);
}

void keyserver_set_policies(struct keyserver *ks, const struct topic_policy_set *set)
{
	ks->policies = set;
}

void keyserver_policy_rules(const struct topic_policy *p, uint8_t out[GROUPS_RULES_LEN])
{
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	const char *pub = p != NULL && p->publish != NULL ? policy_expr_canonical(p->publish) : "",
		   *sub =
		       p != NULL && p->subscribe != NULL ? policy_expr_canonical(p->subscribe) : "";
	unsigned n = 0;

	/* a policy hashes "pub\0sub\0" (canonical texts are never empty), "no policy" "\0" */
	if (md == NULL || EVP_DigestInit_ex(md, EVP_sha256(), NULL) != 1 ||
	    EVP_DigestUpdate(md, pub, strlen(pub) + (p != NULL ? 1 : 0)) != 1 ||
	    EVP_DigestUpdate(md, sub, strlen(sub) + 1) != 1 || EVP_DigestFinal_ex(md, out, &n) != 1)
		memset(out, 0xff, GROUPS_RULES_LEN); /* never equal to a digest: rotates */
	EVP_MD_CTX_free(md);
}

const struct keyserver_config *keyserver_config(const struct keyserver *ks)
{
	return &ks->cfg;
}

/* ---- the checks ---- */

static enum keyrel_status refuse(struct job *j, enum keyrel_status s, const char *reason)
{
	j->grant.status = s;
	j->reason = reason;
	snprintf(j->grant.reason, sizeof(j->grant.reason), "%s", reason);
	return s;
}

static int collect_key(void *arg, const struct reg_key *k)
{
	struct job *j = arg;

	if (k->kind == REG_KEY_ED25519_SIGN && j->ed_count < KEYS_MAX)
		memcpy(j->ed[j->ed_count++], k->pub, REG_KEY_LEN);
	else if (k->kind == REG_KEY_X25519_AGREE && j->x_count < KEYS_MAX)
		memcpy(j->x[j->x_count++], k->pub, REG_KEY_LEN);
	return MOAT_OK;
}

/* The thing exists and is active, and one of its Ed25519 keys signed. */
static enum keyrel_status check_signer(struct keyserver *ks, struct job *j, const char *name)
{
	struct moat_diag d = {0};
	int rc;

	if (!reg_name_is_valid(name))
		return refuse(j, KEYREL_UNKNOWN, "no thing of this client id");
	rc = reg_thing_get(ks->reg, name, &j->thing, &d);
	if (rc == MOAT_E_NOTFOUND)
		return refuse(j, KEYREL_UNKNOWN, "no thing of this client id");
	if (rc < 0)
		return refuse(j, KEYREL_INTERNAL, "registry failure");
	if (j->thing.status != REG_ACTIVE)
		return refuse(j, KEYREL_REVOKED, "the thing is revoked");
	if (reg_key_list(ks->reg, name, collect_key, j, &d) < 0)
		return refuse(j, KEYREL_INTERNAL, "registry failure");
	for (size_t i = 0; i < j->ed_count; i++)
		if (keyrel_request_verify(&j->sig, j->topic, j->ed[i], NULL) == MOAT_OK)
			return KEYREL_OK;
	return refuse(j, j->ed_count == 0 ? KEYREL_UNKNOWN : KEYREL_BAD_REQUEST,
		      j->ed_count == 0 ? "the thing has no Ed25519 key"
				       : "the signature does not verify");
}

static enum keyrel_status check_fresh(struct keyserver *ks, struct job *j, int64_t now_s)
{
	uint8_t h[SHA256_DIGEST_LENGTH], in[KEYREL_CLIENT_ID_MAX + 1 + KEYREL_NONCE_LEN];
	size_t n = j->req.client_id.len;
	int rc;

	if (j->req.iat > now_s + KEYREL_IAT_SKEW_S || j->req.iat < now_s - KEYREL_IAT_SKEW_S)
		return refuse(j, KEYREL_STALE, "iat is more than 60 s from the SC's clock");
	/* per client: one client cannot burn another's nonces */
	memcpy(in, j->req.client_id.ptr, n);
	in[n] = 0;
	memcpy(in + n + 1, j->req.nonce, KEYREL_NONCE_LEN);
	SHA256(in, n + 1 + KEYREL_NONCE_LEN, h);
	rc = nonce_cache_check(ks->nonces, h, now_s);
	if (rc == MOAT_E_DENIED)
		return refuse(j, KEYREL_REPLAY, "nonce seen before");
	if (rc < 0)
		return refuse(j, KEYREL_RATE_LIMITED, "the SC's replay cache is full; try later");
	if (!rate_limiter_take(ks->rates, j->thing.name, now_s))
		return refuse(j, KEYREL_RATE_LIMITED, "too many requests from this thing");
	return KEYREL_OK;
}

/* The policy whose filter is the request's topic, else the most specific
 * one for the topic name. */
static const struct topic_policy *find_policy(const struct topic_policy_set *set,
					      struct moat_bytes topic)
{
	size_t n = set != NULL ? topic_policy_count(set) : 0;

	for (size_t i = 0; i < n; i++) {
		const struct topic_policy *p = topic_policy_at(set, i);

		if (moat_bytes_eq(moat_bytes_str(p->filter), topic))
			return p;
	}
	return set != NULL ? topic_policy_for(set, topic) : NULL;
}

static enum keyrel_status check_policy(struct keyserver *ks, struct job *j)
{
	char *attrs[2 * REG_ATTRS_MAX + 1];
	const struct policy_expr *e;
	size_t n = 0;

	j->policy = find_policy(ks->policies, j->req.topic);
	if (j->policy == NULL)
		return refuse(j, KEYREL_BAD_REQUEST, "no topic policy covers the topic");
	for (size_t i = 0; i < j->thing.attr_count; i++) {
		attrs[n++] = j->thing.attrs[i].name;
		attrs[n++] = j->thing.attrs[i].value;
	}
	attrs[n] = NULL;
	e = j->req.intent == KEYREL_PUBLISH ? j->policy->publish : j->policy->subscribe;
	if (e == NULL || !policy_eval(e, attrs))
		return refuse(j, KEYREL_DENIED, "the thing's attributes do not satisfy the policy");
	for (size_t i = 0; i < j->x_count; i++) {
		uint8_t fpr[KEYREL_HASH_LEN];

		SHA256(j->x[i], REG_KEY_LEN, fpr);
		if (CRYPTO_memcmp(fpr, j->req.agree_fpr, sizeof(fpr)) == 0) {
			j->agree_pub = j->x[i];
			return KEYREL_OK;
		}
	}
	return refuse(j, KEYREL_UNKNOWN, "no X25519 key of the thing has this fingerprint");
}

/* The group's epoch (the current one, or the asked one in its grace window). */
static enum keyrel_status load_epoch(struct keyserver *ks, struct job *j)
{
	struct moat_diag d = {0};
	uint8_t rules[GROUPS_RULES_LEN];
	uint32_t current;
	int rc;

	keyserver_policy_rules(j->policy, rules);
	rc = groups_current(ks->reg, ks->store_key, KEYSERVER_ACTOR, j->policy->filter, rules,
			    ks->cfg.epoch_period_s, &j->epoch, &d);

	if (rc < 0)
		return refuse(j, KEYREL_INTERNAL, "group key store failure");
	current = j->epoch.key.epoch;
	if (!j->req.has_epoch || j->req.epoch == current)
		return KEYREL_OK;
	if (j->req.epoch > current)
		return refuse(j, KEYREL_NO_EPOCH, "the asked epoch does not exist yet");
	uint8_t gid[COSE_GROUP_ID_LEN];

	memcpy(gid, j->epoch.key.group_id, sizeof(gid));
	groups_epoch_wipe(&j->epoch);
	rc = groups_epoch_get(ks->reg, ks->store_key, gid, j->req.epoch, ks->cfg.grace_s, &j->epoch,
			      &d);
	if (rc == MOAT_E_NOTFOUND || rc == MOAT_E_LIMIT)
		return refuse(j, KEYREL_NO_EPOCH, "the asked epoch is past its grace window");
	return rc < 0 ? refuse(j, KEYREL_INTERNAL, "group key store failure") : KEYREL_OK;
}

static enum keyrel_status grant(struct keyserver *ks, struct job *j)
{
	struct keyrel_grant *g = &j->grant;
	struct moat_diag d = {0};
	enum keyrel_status s = load_epoch(ks, j);
	int64_t end;

	if (s != KEYREL_OK)
		return s;
	if (j->req.intent == KEYREL_PUBLISH &&
	    groups_sender_id(ks->reg, KEYSERVER_ACTOR, j->epoch.key.group_id, j->thing.name,
			     g->sender_id, &g->sender_id_len, &d) < 0)
		return refuse(j, KEYREL_INTERNAL, "no sender id could be allocated");
	g->group = j->epoch.key;
	g->alg = (int)j->policy->alg;
	snprintf(g->filter, sizeof(g->filter), "%s", j->policy->filter);
	g->is_signed = j->policy->must_sign;
	g->max_age_s = j->policy->max_age_s;
	end = j->epoch.retired_at_s != 0 ? j->epoch.retired_at_s : j->epoch.not_after_s;
	g->not_after = end + ks->cfg.grace_s;
	g->status = KEYREL_OK;
	return KEYREL_OK;
}

/* get-token: an access token for the thing, bound to its newest
 * certificate (token.h), in the signed answer. */
static enum keyrel_status issue_token(struct keyserver *ks, struct job *j, int64_t now_s)
{
	const struct sc_token_req req = {
	    .audience = ks->cfg.token_audience,
	    .ttl_s = ks->cfg.token_ttl_s,
	    .now_s = now_s,
	};
	struct moat_diag d = {0};
	char *token = NULL;
	size_t len;
	int rc;

	if (ks->cfg.token_signer == NULL)
		return refuse(j, KEYREL_BAD_REQUEST, "this Security Center issues no tokens");
	rc = sc_token_issue(ks->reg, ks->cfg.token_signer, j->thing.name, &req, &token, &j->token,
			    &d);
	if (rc == MOAT_E_DENIED)
		return refuse(j, KEYREL_DENIED, "no valid certificate to bind a token to");
	if (rc < 0)
		return refuse(j, KEYREL_INTERNAL, "the token could not be issued");
	len = strlen(token);
	if (len < sizeof(j->grant.token))
		memcpy(j->grant.token, token, len + 1);
	OPENSSL_cleanse(token, len);
	free(token);
	if (len >= sizeof(j->grant.token))
		return refuse(j, KEYREL_INTERNAL, "the token is too long for an answer");
	j->grant.not_after = j->token.exp;
	j->grant.status = KEYREL_OK;
	return KEYREL_OK;
}

static enum keyrel_status run_checks(struct keyserver *ks, struct job *j, int64_t now_s)
{
	char name[KEYREL_CLIENT_ID_MAX + 1];
	enum keyrel_status s;

	memcpy(name, j->req.client_id.ptr, j->req.client_id.len);
	name[j->req.client_id.len] = '\0';
	s = check_signer(ks, j, name);
	if (s == KEYREL_OK)
		s = check_fresh(ks, j, now_s);
	if (s == KEYREL_OK && j->req.op == KEYREL_GET_TOKEN)
		return issue_token(ks, j, now_s);
	if (s == KEYREL_OK)
		s = check_policy(ks, j);
	if (s == KEYREL_OK)
		s = grant(ks, j);
	return s;
}

/* ---- answer and audit ---- */

/* The audit detail of an answer (never key material); NULL without memory. */
static char *audit_detail(const struct job *j, const struct keyserver_outcome *res)
{
	cJSON *o = cJSON_CreateObject();
	char *text, hex[2 * COSE_GROUP_ID_LEN + 1];

	if (o == NULL)
		return NULL;
	if (j->req.op == KEYREL_GET_KEY) {
		char topic[KEYREL_TOPIC_MAX + 1];

		memcpy(topic, j->req.topic.ptr, j->req.topic.len);
		topic[j->req.topic.len] = '\0';
		cJSON_AddStringToObject(o, "topic", topic);
		cJSON_AddStringToObject(o, "intent",
					j->req.intent == KEYREL_PUBLISH ? "publish" : "subscribe");
	} else {
		cJSON_AddStringToObject(o, "op", "get-token");
	}
	cJSON_AddStringToObject(o, "status", keyrel_status_name(res->status));
	if (res->status == KEYREL_OK && j->req.op == KEYREL_GET_TOKEN) {
		cJSON_AddStringToObject(o, "jti", j->token.jti);
		cJSON_AddNumberToObject(o, "exp", (double)j->token.exp);
	} else if (res->status == KEYREL_OK) {
		groups_id_hex(res->group_id, hex);
		cJSON_AddStringToObject(o, "group", hex);
		cJSON_AddNumberToObject(o, "epoch", res->epoch);
	} else {
		cJSON_AddStringToObject(o, "reason", res->reason);
	}
	if (!reg_name_is_valid(res->client_id))
		cJSON_AddStringToObject(o, "client_id", res->client_id);
	text = cJSON_PrintUnformatted(o);
	cJSON_Delete(o);
	return text;
}

/* A key grant's row and its audit row, in one transaction; a token's
 * audit row (never the token). */
static int record_grant(struct keyserver *ks, const struct job *j,
			const struct keyserver_outcome *res)
{
	char *detail = audit_detail(j, res);
	int rc = detail == NULL ? MOAT_E_NOMEM
		 : j->req.op == KEYREL_GET_TOKEN
		     ? reg_audit_append(ks->reg, KEYSERVER_ACTOR, "token.issued", j->thing.name,
					detail, NULL)
		     : groups_grant_record(ks->reg, KEYSERVER_ACTOR, j->thing.name, res->group_id,
					   res->epoch, j->req.intent, detail, NULL);

	free(detail);
	return rc;
}

static int audit_refusal(struct keyserver *ks, const struct job *j,
			 const struct keyserver_outcome *res)
{
	char *detail = audit_detail(j, res);
	int rc = detail == NULL
		     ? MOAT_E_NOMEM
		     : reg_audit_append(ks->reg, KEYSERVER_ACTOR, "key.refused",
					reg_name_is_valid(res->client_id) ? res->client_id : NULL,
					detail, NULL);

	free(detail);
	return rc;
}

/*
 * A grant is answered only once its grant and audit rows are written; when
 * they cannot be, the answer is an "internal" refusal instead.
 */
static int answer(struct keyserver *ks, struct job *j, struct keyserver_outcome *res,
		  struct buf *out)
{
	size_t mark = buf_used(out);
	int rc;

	if (res->status == KEYREL_OK) {
		rc = keyrel_response_build(&j->req, &j->grant, j->agree_pub, ks->sign, ks->sign_arg,
					   out);
		if (rc == MOAT_OK)
			rc = record_grant(ks, j, res);
		if (rc == MOAT_OK)
			return MOAT_OK;
		out->len = out->off + mark; /* no key without its rows */
		OPENSSL_cleanse(&j->grant.group, sizeof(j->grant.group));
		OPENSSL_cleanse(j->grant.token, sizeof(j->grant.token));
		res->status = refuse(j, KEYREL_INTERNAL, "the grant could not be recorded");
		res->reason = j->reason;
	}
	rc = keyrel_response_build(&j->req, &j->grant, j->agree_pub, ks->sign, ks->sign_arg, out);
	return rc == MOAT_OK ? audit_refusal(ks, j, res) : rc;
}

int keyserver_handle(struct keyserver *ks, struct moat_bytes msg, struct moat_bytes topic,
		     int64_t now_s, struct buf *out, struct keyserver_outcome *res)
{
	struct job *j = calloc(1, sizeof(*j));
	const char *why = NULL;
	size_t mark = buf_used(out);
	int rc;

	memset(res, 0, sizeof(*res));
	if (j == NULL)
		return MOAT_E_NOMEM;
	j->topic = topic;
	rc = keyrel_request_decode(msg, topic, &j->req, &j->sig, &why);
	if (rc < 0) {
		res->reason = why;
		free(j);
		return rc == MOAT_E_PROTOCOL ? MOAT_E_PROTOCOL : MOAT_E_MALFORMED;
	}
	memcpy(res->client_id, j->req.client_id.ptr, j->req.client_id.len);
	res->status = run_checks(ks, j, now_s);
	res->reason = res->status == KEYREL_OK ? "granted" : j->reason;
	j->grant.sc_time = now_s;
	if (res->status == KEYREL_OK) {
		memcpy(res->group_id, j->grant.group.group_id, COSE_GROUP_ID_LEN);
		res->epoch = j->grant.group.epoch;
	}
	rc = answer(ks, j, res, out);
	res->answered = buf_used(out) > mark;
	groups_epoch_wipe(&j->epoch);
	OPENSSL_cleanse(&j->grant, sizeof(j->grant));
	free(j);
	return rc;
}

int keyserver_sign(void *signer, const uint8_t *msg, size_t len, uint8_t sig[COSE_ED25519_SIG_LEN])
{
	uint8_t out[SIGNER_SIG_MAX];
	size_t n = sizeof(out);
	int rc = signer_sign(signer, msg, len, out, &n);

	if (rc == MOAT_OK && n != COSE_ED25519_SIG_LEN)
		rc = MOAT_E_CRYPTO;
	if (rc == MOAT_OK)
		memcpy(sig, out, COSE_ED25519_SIG_LEN);
	return rc;
}
