/* The key server (src/sc/keyserver.c) over a registry in a temp dir: the
 * grant (opened with keyrel_response_open: the group's master secret, the
 * policy's alg/signed/max_age, not_after, a sender id reused for
 * publishers, none for subscribers, a grant row and a key.released audit),
 * an older epoch in and out of its grace window, and every refusal with
 * its status and key.refused audit row: unknown thing, revoked, bad
 * signature, stale iat, replay, rate limit, no policy, attributes that do
 * not satisfy the policy, unknown X25519 key, get-token without a token
 * signer; a token for a certified thing; garbage and a
 * topic that does not name the client get no answer and no audit. Also the
 * replay cache and token buckets alone (reqguard.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <sqlite3.h>

#include <openssl/evp.h>
#include <openssl/sha.h>

#include <moat/error.h>

#include "e2e/alg.h"
#include "sc/keyserver.h"
#include "sc/reqguard.h"
#include "sc/signer.h"
#include "sc_testkit.h"
#include "../e2e/keys_testkit.h"

#define NOW 1764567890

static const char policies_json[] =
    "{\"policies\":[{\"filter\":\"plant/#\",\"publish\":\"role == sensor\","
    "\"subscribe\":\"role in [sensor, viewer]\",\"signed\":true,\"max_age_s\":30,"
    "\"alg\":\"aes-256-gcm\"}]}";

struct fx {
	struct sc_tmp t;
	struct registry *r;
	struct topic_policy_set *set;
	struct keyserver *ks;
	uint8_t store_key[32];
};

static uint8_t sc_seed[32], sc_pub[32];

/* A device's keys, derived from its name. */
static void device_keys(const char *name, uint8_t ed_seed[32], uint8_t x_sk[32])
{
	SHA256((const uint8_t *)name, strlen(name), ed_seed);
	memcpy(x_sk, ed_seed, 32);
	x_sk[0] ^= 0xff;
}

static void add_thing(struct fx *f, const char *name, const char *role)
{
	struct reg_attr a[2] = {{"role", ""}, {"site", "a"}};
	uint8_t seed[32], x[32], pub[32];
	struct moat_diag d = {0};

	snprintf(a[0].value, sizeof(a[0].value), "%s", role);
	assert_int_equal(reg_thing_create(f->r, "test", name, a, 2, NULL, &d), MOAT_OK);
	device_keys(name, seed, x);
	testkit_raw_pub(EVP_PKEY_ED25519, seed, pub);
	assert_int_equal(reg_key_add(f->r, "test", name, REG_KEY_ED25519_SIGN, pub, &d), MOAT_OK);
	testkit_raw_pub(EVP_PKEY_X25519, x, pub);
	assert_int_equal(reg_key_add(f->r, "test", name, REG_KEY_X25519_AGREE, pub, &d), MOAT_OK);
}

static int setup_cfg(void **state, const struct keyserver_config *cfg)
{
	struct fx *f = calloc(1, sizeof(*f));
	struct moat_diag d = {0};
	struct policy_diag pd = {0};

	for (int i = 0; i < 32; i++)
		sc_seed[i] = (uint8_t)(0x40 + i);
	testkit_raw_pub(EVP_PKEY_ED25519, sc_seed, sc_pub);
	sc_tmp_open(&f->t, "moat-sc-ks", &f->r);
	add_thing(f, "dev1", "sensor");
	add_thing(f, "dev2", "viewer");
	add_thing(f, "dev3", "sensor");
	assert_int_equal(reg_thing_revoke(f->r, "test", "dev3", 0, &d), MOAT_OK);
	assert_int_equal(
	    topic_policy_set_parse(&f->set, policies_json, sizeof(policies_json) - 1, &pd),
	    MOAT_OK);
	memset(f->store_key, 0x17, sizeof(f->store_key));
	assert_int_equal(
	    keyserver_create(&f->ks, f->r, f->store_key, testkit_ed25519_sign, sc_seed, cfg),
	    MOAT_OK);
	keyserver_set_policies(f->ks, f->set);
	*state = f;
	return 0;
}

static int setup(void **state)
{
	return setup_cfg(state, NULL);
}

static int setup_slow(void **state)
{
	const struct keyserver_config cfg = {.rate_per_s = 1, .burst = 3, .grace_s = -1};

	return setup_cfg(state, &cfg);
}

static int teardown(void **state)
{
	struct fx *f = *state;

	keyserver_destroy(f->ks);
	topic_policy_set_destroy(f->set);
	sc_tmp_remove(&f->t, f->r);
	free(f);
	return 0;
}

struct ask {
	const char *client, *signer, *topic;
	enum keyrel_op op;
	enum keyrel_intent intent;
	int64_t iat;
	bool has_epoch;
	uint32_t epoch;
	const char *agree_of; /* whose X25519 key the request names */
	uint8_t nonce;
};

/* Sends <a> at <now>, opens the answer; returns the status. */
static enum keyrel_status ask_at(struct fx *f, const struct ask *a, int64_t now,
				 struct keyrel_grant *g, struct keyserver_outcome *res)
{
	char topic[160];
	uint8_t seed[32], x[32], xpub[32], other[32];
	struct keyrel_request req = {
	    .op = a->op != 0 ? a->op : KEYREL_GET_KEY,
	    .client_id = moat_bytes_str(a->client),
	    .topic = moat_bytes_str(a->op == KEYREL_GET_TOKEN ? NULL : a->topic),
	    .intent = a->op == KEYREL_GET_TOKEN ? 0 : a->intent,
	    .has_epoch = a->has_epoch,
	    .epoch = a->epoch,
	    .iat = a->iat != 0 ? a->iat : now,
	};
	struct buf msg = {0}, out = {0};
	const char *why = NULL;

	device_keys(a->agree_of != NULL ? a->agree_of : a->client, other, x);
	testkit_raw_pub(EVP_PKEY_X25519, x, xpub);
	SHA256(xpub, 32, req.agree_fpr);
	memset(req.nonce, a->nonce, sizeof(req.nonce));
	device_keys(a->signer != NULL ? a->signer : a->client, seed, other);
	device_keys(a->client, other, x);
	assert_int_equal(keyrel_request_build(&req, seed, &msg), MOAT_OK);
	snprintf(topic, sizeof(topic), "$sc/req/%s", a->client);
	assert_int_equal(keyserver_handle(f->ks,
					  (struct moat_bytes){buf_head(&msg), buf_used(&msg)},
					  moat_bytes_str(topic), now, &out, res),
			 MOAT_OK);
	assert_true(res->answered);
	assert_string_equal(res->client_id, a->client);
	assert_non_null(res->reason);
	snprintf(topic, sizeof(topic), "$sc/resp/%s", a->client);
	assert_int_equal(keyrel_response_open((struct moat_bytes){buf_head(&out), buf_used(&out)},
					      moat_bytes_str(topic), a->client, req.req_hash,
					      sc_pub, x, g, &why),
			 MOAT_OK);
	assert_int_equal(g->status, res->status);
	assert_int_equal(g->sc_time, now);
	buf_fini(&msg);
	buf_fini(&out);
	return g->status;
}

static enum keyrel_status ask(struct fx *f, const struct ask *a, struct keyrel_grant *g)
{
	struct keyserver_outcome res;

	return ask_at(f, a, NOW, g, &res);
}

static int refusals(struct fx *f, const char *status)
{
	char sql[200];

	snprintf(sql, sizeof(sql),
		 "SELECT count(*) FROM audit WHERE action = 'key.refused'"
		 " AND json_extract(detail, '$.status') = '%s'",
		 status);
	return sc_tmp_count(&f->t, sql);
}

static void grant_publish_and_subscribe(void **state)
{
	struct fx *f = *state;
	struct keyrel_grant g, g2;
	struct groups_epoch e;
	struct moat_diag d = {0};
	struct ask a = {
	    .client = "dev1", .topic = "plant/1/temp", .intent = KEYREL_PUBLISH, .nonce = 1};

	assert_int_equal(ask(f, &a, &g), KEYREL_OK);
	assert_int_equal(groups_current(f->r, f->store_key, "test", "plant/#", NULL, 1, &e, &d),
			 MOAT_OK);
	assert_memory_equal(g.group.group_id, e.key.group_id, 8);
	assert_int_equal(g.group.epoch, 1);
	assert_memory_equal(g.group.master_secret, e.key.master_secret, 32);
	assert_int_equal(g.alg, E2E_ALG_A256GCM);
	assert_string_equal(g.filter, "plant/#");
	assert_true(g.is_signed);
	assert_int_equal(g.max_age_s, 30);
	assert_int_equal(g.not_after,
			 e.created_s + GROUPS_PERIOD_S_DEFAULT + GROUPS_GRACE_S_DEFAULT);
	assert_int_equal(g.sender_id_len, 1);
	/* the same sender id next time */
	a.nonce = 2;
	assert_int_equal(ask(f, &a, &g2), KEYREL_OK);
	assert_int_equal(g2.sender_id_len, 1);
	assert_int_equal(g2.sender_id[0], g.sender_id[0]);
	/* a subscriber, by filter */
	a = (struct ask){
	    .client = "dev2", .topic = "plant/#", .intent = KEYREL_SUBSCRIBE, .nonce = 3};
	assert_int_equal(ask(f, &a, &g2), KEYREL_OK);
	assert_int_equal(g2.sender_id_len, 0);
	assert_memory_equal(g2.group.master_secret, e.key.master_secret, 32);
	assert_int_equal(sc_tmp_count(&f->t, "SELECT count(*) FROM grants"), 3);
	assert_int_equal(sc_tmp_count(&f->t,
				      "SELECT count(*) FROM audit WHERE action = 'key.released'"
				      " AND thing = 'dev2' AND json_extract(detail, '$.intent')"
				      " = 'subscribe' AND json_extract(detail, '$.epoch') = 1"),
			 1);
	/* no secret in any audit row */
	assert_int_equal(
	    sc_tmp_count(&f->t, "SELECT count(*) FROM audit WHERE detail LIKE '%secret%'"), 0);
	groups_epoch_wipe(&e);
}

static void refusals_with_status_and_audit(void **state)
{
	struct fx *f = *state;
	struct keyrel_grant g;
	struct keyserver_outcome res;
	struct ask a = {
	    .client = "dev2", .topic = "plant/1/temp", .intent = KEYREL_PUBLISH, .nonce = 1};

	assert_int_equal(ask(f, &a, &g), KEYREL_DENIED);
	assert_string_equal(g.reason, "the thing's attributes do not satisfy the policy");
	assert_int_equal(refusals(f, "denied"), 1);
	assert_int_equal(sc_tmp_count(&f->t,
				      "SELECT count(*) FROM audit WHERE action = 'key.refused'"
				      " AND thing = 'dev2' AND json_extract(detail, '$.topic')"
				      " = 'plant/1/temp' AND json_extract(detail, '$.intent')"
				      " = 'publish'"),
			 1);

	a = (struct ask){.client = "ghost",
			 .signer = "dev1",
			 .topic = "plant/x",
			 .intent = KEYREL_PUBLISH,
			 .agree_of = "dev1"};
	assert_int_equal(ask(f, &a, &g), KEYREL_UNKNOWN);
	a = (struct ask){.client = "dev3", .topic = "plant/x", .intent = KEYREL_PUBLISH};
	assert_int_equal(ask(f, &a, &g), KEYREL_REVOKED);
	a = (struct ask){
	    .client = "dev1", .signer = "dev2", .topic = "plant/x", .intent = KEYREL_PUBLISH};
	assert_int_equal(ask(f, &a, &g), KEYREL_BAD_REQUEST);
	assert_string_equal(g.reason, "the signature does not verify");
	a = (struct ask){.client = "dev1",
			 .topic = "plant/x",
			 .intent = KEYREL_PUBLISH,
			 .iat = NOW - 61,
			 .nonce = 9};
	assert_int_equal(ask(f, &a, &g), KEYREL_STALE);
	a.iat = NOW + 61;
	assert_int_equal(ask(f, &a, &g), KEYREL_STALE);
	a.iat = NOW + 60;
	assert_int_equal(ask(f, &a, &g), KEYREL_OK);
	a.iat = 0;
	a.nonce = 10;
	assert_int_equal(ask_at(f, &a, NOW, &g, &res), KEYREL_OK);
	assert_int_equal(ask_at(f, &a, NOW + 1, &g, &res), KEYREL_REPLAY);
	assert_int_equal(refusals(f, "replay"), 1);
	a = (struct ask){
	    .client = "dev1", .topic = "other/x", .intent = KEYREL_PUBLISH, .nonce = 11};
	assert_int_equal(ask(f, &a, &g), KEYREL_BAD_REQUEST);
	assert_string_equal(g.reason, "no topic policy covers the topic");
	a = (struct ask){.client = "dev1",
			 .topic = "plant/x",
			 .intent = KEYREL_PUBLISH,
			 .nonce = 12,
			 .agree_of = "dev2"};
	assert_int_equal(ask(f, &a, &g), KEYREL_UNKNOWN);
	a = (struct ask){.client = "dev1", .op = KEYREL_GET_TOKEN, .nonce = 13};
	assert_int_equal(ask(f, &a, &g), KEYREL_BAD_REQUEST);
	assert_string_equal(g.reason, "this Security Center issues no tokens");
	keyserver_set_policies(f->ks, NULL);
	a = (struct ask){
	    .client = "dev1", .topic = "plant/x", .intent = KEYREL_PUBLISH, .nonce = 14};
	assert_int_equal(ask(f, &a, &g), KEYREL_BAD_REQUEST);
	assert_int_equal(refusals(f, "unknown"), 2);
	assert_int_equal(refusals(f, "revoked"), 1);
	assert_int_equal(refusals(f, "stale"), 2);
	assert_int_equal(refusals(f, "bad-request"), 4);
	assert_int_equal(sc_tmp_count(&f->t,
				      "SELECT count(*) FROM audit WHERE action = 'key.refused'"
				      " AND thing IS NULL AND json_extract(detail, '$.client_id')"
				      " = 'ghost'"),
			 0); /* "ghost" is a valid name: audited under it */
	assert_int_equal(sc_tmp_count(&f->t, "SELECT count(*) FROM audit WHERE thing = 'ghost'"),
			 1);
}

static void rate_limited(void **state)
{
	struct fx *f = *state;
	struct keyrel_grant g;
	struct keyserver_outcome res;
	struct ask a = {.client = "dev1", .topic = "plant/x", .intent = KEYREL_PUBLISH};

	for (uint8_t i = 1; i <= 3; i++) {
		a.nonce = i;
		assert_int_equal(ask_at(f, &a, NOW, &g, &res), KEYREL_OK);
	}
	a.nonce = 4;
	assert_int_equal(ask_at(f, &a, NOW, &g, &res), KEYREL_RATE_LIMITED);
	a.nonce = 5;
	assert_int_equal(ask_at(f, &a, NOW + 1, &g, &res), KEYREL_OK);
	assert_int_equal(refusals(f, "rate-limited"), 1);
	/* another thing has its own bucket */
	a = (struct ask){
	    .client = "dev2", .topic = "plant/#", .intent = KEYREL_SUBSCRIBE, .nonce = 6};
	assert_int_equal(ask_at(f, &a, NOW, &g, &res), KEYREL_OK);
}

/* The bucket holds at least a second of the rate: --rate 1000/s is not
 * capped at the default burst of 20 a second. */
static void burst_follows_the_rate(void **state)
{
	struct fx *f = *state;
	const struct keyserver_config fast = {.rate_per_s = 50, .grace_s = -1};
	struct keyserver *ks = NULL;

	assert_int_equal(keyserver_config(f->ks)->rate_per_s, KEYSERVER_RATE_DEFAULT);
	assert_int_equal(keyserver_config(f->ks)->burst, KEYSERVER_BURST_DEFAULT);
	assert_int_equal(
	    keyserver_create(&ks, f->r, f->store_key, testkit_ed25519_sign, sc_seed, &fast),
	    MOAT_OK);
	assert_int_equal(keyserver_config(ks)->burst, 50);
	keyserver_destroy(ks);
}

/* With a token signer, get-token answers a JWT bound to the thing's
 * certificate (token.c), audited as token.issued without the token; a
 * thing without a certificate is denied. */
static void token_for_a_certified_thing(void **state)
{
	struct fx *f = *state;
	struct reg_cert c = {.serial = "7A",
			     .thing = "dev1",
			     .profile = REG_CERT_DEVICE,
			     .not_before_s = NOW - 60,
			     .not_after_s = NOW + 86400,
			     .has_x5t = true};
	struct keyserver_config cfg = {0};
	struct moat_diag d = {0};
	struct keyrel_grant g;
	struct signer *tok = NULL;
	char path[200];
	struct ask a = {.client = "dev1", .op = KEYREL_GET_TOKEN, .nonce = 40};

	snprintf(path, sizeof(path), "%s/token.key", f->t.dir);
	assert_int_equal(signer_file_create(&tok, path, SIGNER_ED25519, &d), MOAT_OK);
	cfg.token_signer = tok;
	keyserver_destroy(f->ks);
	assert_int_equal(
	    keyserver_create(&f->ks, f->r, f->store_key, testkit_ed25519_sign, sc_seed, &cfg),
	    MOAT_OK);
	assert_int_equal(ask(f, &a, &g), KEYREL_DENIED); /* no certificate yet */
	memset(c.x5t_s256, 0x5a, sizeof(c.x5t_s256));
	assert_int_equal(reg_cert_record(f->r, "test", &c, &d), MOAT_OK);
	a.nonce = 41;
	assert_int_equal(ask(f, &a, &g), KEYREL_OK);
	assert_int_equal(strncmp(g.token, "eyJ", 3), 0);	/* a JWS: base64url of {" */
	assert_non_null(strchr(g.token, '.'));			/* header.payload */
	assert_non_null(strchr(strchr(g.token, '.') + 1, '.')); /* .signature */
	assert_true(g.not_after > NOW && g.not_after <= NOW + 3600);
	assert_int_equal(sc_tmp_count(&f->t, "SELECT count(*) FROM audit WHERE action = "
					     "'token.issued' AND thing = 'dev1' AND "
					     "json_extract(detail, '$.jti') IS NOT NULL"),
			 1);
	assert_int_equal(
	    sc_tmp_count(&f->t, "SELECT count(*) FROM audit WHERE detail LIKE '%eyJ%'"), 0);
	signer_destroy(tok);
}

static void older_epoch_in_grace(void **state)
{
	struct fx *f = *state;
	struct keyrel_grant g1, g;
	struct keyserver_outcome res;
	struct moat_diag d = {0};
	struct ask a = {
	    .client = "dev2", .topic = "plant/#", .intent = KEYREL_SUBSCRIBE, .nonce = 1};

	assert_int_equal(ask(f, &a, &g1), KEYREL_OK);
	assert_int_equal(
	    groups_rotate(f->r, f->store_key, "test", g1.group.group_id, 100, "schedule", NULL, &d),
	    MOAT_OK);
	a.nonce = 2;
	assert_int_equal(ask(f, &a, &g), KEYREL_OK);
	assert_int_equal(g.group.epoch, 2);
	assert_memory_not_equal(g.group.master_secret, g1.group.master_secret, 32);
	a.nonce = 3;
	a.has_epoch = true;
	a.epoch = 1;
	assert_int_equal(ask(f, &a, &g), KEYREL_OK);
	assert_int_equal(g.group.epoch, 1);
	assert_memory_equal(g.group.master_secret, g1.group.master_secret, 32);
	a.nonce = 4;
	a.epoch = 3;
	assert_int_equal(ask_at(f, &a, NOW, &g, &res), KEYREL_NO_EPOCH);
	assert_int_equal(
	    sc_tmp_count(&f->t, "SELECT count(*) FROM epochs WHERE retired_at IS NOT NULL"), 1);
}

static void garbage_gets_no_answer(void **state)
{
	struct fx *f = *state;
	static const uint8_t junk[] = {0xd2, 0x84, 0x40};
	struct keyserver_outcome res;
	struct keyrel_request req = {
	    .op = KEYREL_GET_TOKEN, .client_id = moat_bytes_str("dev1"), .iat = NOW};
	struct buf msg = {0}, out = {0};
	uint8_t seed[32], x[32];
	int before = sc_tmp_count(&f->t, "SELECT count(*) FROM audit");

	assert_int_equal(keyserver_handle(f->ks, (struct moat_bytes){junk, sizeof(junk)},
					  moat_bytes_str("$sc/req/dev1"), NOW, &out, &res),
			 MOAT_E_MALFORMED);
	assert_false(res.answered);
	device_keys("dev1", seed, x);
	assert_int_equal(keyrel_request_build(&req, seed, &msg), MOAT_OK);
	assert_int_equal(keyserver_handle(f->ks,
					  (struct moat_bytes){buf_head(&msg), buf_used(&msg)},
					  moat_bytes_str("$sc/req/dev2"), NOW, &out, &res),
			 MOAT_E_PROTOCOL);
	assert_false(res.answered);
	assert_int_equal(buf_used(&out), 0);
	assert_int_equal(sc_tmp_count(&f->t, "SELECT count(*) FROM audit"), before);
	buf_fini(&msg);
	buf_fini(&out);
}

static void policy_rules_digest(void **state)
{
	static const char two[] = "{\"policies\":[{\"filter\":\"a/#\",\"publish\":\"role == x\","
				  "\"subscribe\":\"true\"},{\"filter\":\"b/#\",\"publish\":"
				  "\"role==x\",\"subscribe\":\"true\",\"alg\":\"aes-256-gcm\"},"
				  "{\"filter\":\"c/#\",\"publish\":\"role == y\"}]}";
	struct topic_policy_set *set;
	struct policy_diag pd = {0};
	uint8_t a[GROUPS_RULES_LEN], b[GROUPS_RULES_LEN], c[GROUPS_RULES_LEN],
	    none[GROUPS_RULES_LEN];

	(void)state;
	assert_int_equal(topic_policy_set_parse(&set, two, sizeof(two) - 1, &pd), MOAT_OK);
	keyserver_policy_rules(topic_policy_at(set, 0), a);
	keyserver_policy_rules(topic_policy_at(set, 1), b);
	keyserver_policy_rules(topic_policy_at(set, 2), c);
	keyserver_policy_rules(NULL, none);
	assert_memory_equal(a, b, sizeof(a)); /* same expressions, written differently */
	assert_memory_not_equal(a, c, sizeof(a));
	assert_memory_not_equal(a, none, sizeof(a));
	assert_memory_not_equal(c, none, sizeof(a));
	topic_policy_set_destroy(set);
}

static void nonce_cache_generations(void **state)
{
	struct nonce_cache *c;
	uint8_t k[NONCE_KEY_LEN] = {0};

	(void)state;
	assert_int_equal(nonce_cache_create(&c, 4, 120), MOAT_OK);
	k[0] = 1;
	assert_int_equal(nonce_cache_check(c, k, 1000), MOAT_OK);
	assert_int_equal(nonce_cache_check(c, k, 1000), MOAT_E_DENIED);
	assert_int_equal(nonce_cache_check(c, k, 1119), MOAT_E_DENIED);
	assert_int_equal(nonce_cache_check(c, k, 1200), MOAT_E_DENIED); /* previous generation */
	assert_int_equal(nonce_cache_check(c, k, 1239), MOAT_E_DENIED);
	/* forgotten only after two whole generations */
	k[0] = 2;
	assert_int_equal(nonce_cache_check(c, k, 1500), MOAT_OK);
	k[0] = 1;
	assert_int_equal(nonce_cache_check(c, k, 1500), MOAT_OK);
	for (uint8_t i = 3; i < 5; i++) {
		k[0] = i;
		assert_int_equal(nonce_cache_check(c, k, 1501), MOAT_OK);
	}
	k[0] = 9;
	assert_int_equal(nonce_cache_check(c, k, 1501), MOAT_E_LIMIT);
	assert_int_equal(nonce_cache_create(&c, 2, 120), MOAT_E_INVAL);
	nonce_cache_destroy(c);
}

static void token_buckets(void **state)
{
	struct rate_limiter *rl;

	(void)state;
	assert_int_equal(rate_limiter_create(&rl, 2, 2, 2), MOAT_OK);
	assert_true(rate_limiter_take(rl, "a", 10));
	assert_true(rate_limiter_take(rl, "a", 10));
	assert_false(rate_limiter_take(rl, "a", 10));
	assert_true(rate_limiter_take(rl, "b", 10));
	/* both slots hold buckets that are not full: a third name waits */
	assert_false(rate_limiter_take(rl, "c", 10));
	assert_true(rate_limiter_take(rl, "a", 11));
	assert_true(rate_limiter_take(rl, "c", 12)); /* a full bucket's slot is reused */
	assert_false(rate_limiter_take(rl, "", 12));
	rate_limiter_destroy(rl);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(grant_publish_and_subscribe, setup, teardown),
	    cmocka_unit_test_setup_teardown(refusals_with_status_and_audit, setup, teardown),
	    cmocka_unit_test_setup_teardown(rate_limited, setup_slow, teardown),
	    cmocka_unit_test_setup_teardown(burst_follows_the_rate, setup, teardown),
	    cmocka_unit_test_setup_teardown(older_epoch_in_grace, setup, teardown),
	    cmocka_unit_test_setup_teardown(token_for_a_certified_thing, setup, teardown),
	    cmocka_unit_test_setup_teardown(garbage_gets_no_answer, setup, teardown),
	    cmocka_unit_test(policy_rules_digest),
	    cmocka_unit_test(nonce_cache_generations),
	    cmocka_unit_test(token_buckets),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
