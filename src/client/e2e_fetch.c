/*
 * Key release over the attached client (SECURITY-DESIGN §2.8, keyrel.h):
 * moat_e2e_attach() wraps the client's callbacks so that answers on
 * $sc/resp/<client-id> and epoch announcements on $sc/epoch/+ are handled
 * here and never reach the application; requests go to $sc/req/<client-id>
 * at QoS 1 with a Response Topic and 16 random bytes of Correlation Data,
 * and an answer counts only for the request whose correlation data and
 * req_hash it carries. A verified announcement of a newer epoch for a
 * cached group marks it stale and asks for the new key at once.
 */
#include <stdio.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/rand.h>

#include "base/clock.h"
#include "client/client_impl.h"
#include "client/e2e_impl.h"
#include "codec/topic.h"
#include "e2e/alg.h"

#define EPOCH_FILTER KEYREL_EPOCH_PREFIX "+"

/* Calls the application's callback <fn>, if any, marked as "inside a callback" (no blocking). */
#define FORWARD(e, fn, ...)                                                                        \
	do {                                                                                       \
		if ((e)->user_cb.fn != NULL) {                                                     \
			(e)->in_cb++;                                                              \
			(e)->user_cb.fn((e)->user_cb.arg, __VA_ARGS__);                            \
			(e)->in_cb--;                                                              \
		}                                                                                  \
	} while (0)

enum {
	RESEND_AFTER_MS = 10000, /* an unanswered request is sent again after this */
	DENIED_HOLD_MS = 30000,	 /* a refusal is repeated this long without asking again */
};

static void subscribe_sc_topics(struct moat_e2e *e)
{
	struct moat_sub_options so = {.qos = 1};

	moat_subscribe(e->c, e->resp_topic, &so, &e->sub_pids[0]);
	moat_subscribe(e->c, EPOCH_FILTER, &so, &e->sub_pids[1]);
}

static void fail_pending(struct moat_e2e *e, int rc, const char *why)
{
	for (size_t i = 0; i < E2E_MAX_REQS; i++) {
		struct e2e_req *r = &e->reqs[i];

		if (r->used && r->rc == MOAT_E_AGAIN) {
			r->rc = rc;
			snprintf(r->why, sizeof(r->why), "%s", why);
		}
	}
}

static void w_on_connect(void *arg, uint8_t rc, bool session_present)
{
	struct moat_e2e *e = arg;

	if (rc < 0x80)
		subscribe_sc_topics(e);
	FORWARD(e, on_connect, rc, session_present);
}

static void w_on_subscribe(void *arg, uint16_t pid, const uint8_t *codes, size_t n)
{
	struct moat_e2e *e = arg;

	if (pid != 0 && (pid == e->sub_pids[0] || pid == e->sub_pids[1])) {
		if (pid == e->sub_pids[0] && n > 0 && codes[0] >= 0x80)
			fail_pending(e, MOAT_E_DENIED,
				     "the broker refused the subscription to $sc/resp/<client-id>");
		return;
	}
	FORWARD(e, on_subscribe, pid, codes, n);
}

static void w_on_publish_done(void *arg, uint16_t pid, uint8_t rc)
{
	struct moat_e2e *e = arg;

	for (size_t i = 0; i < E2E_MAX_REQS; i++) {
		struct e2e_req *r = &e->reqs[i];

		if (r->used && r->packet_id == pid && pid != 0) {
			if (rc >= 0x80 && r->rc == MOAT_E_AGAIN) {
				r->rc = MOAT_E_DENIED;
				snprintf(r->why, sizeof(r->why),
					 "the broker refused the key request (reason 0x%02x)", rc);
			}
			r->packet_id = 0;
			return;
		}
	}
	FORWARD(e, on_publish_done, pid, rc);
}

/* Stores a granted key from <g> for request <r>. */
static void store_grant(struct moat_e2e *e, struct e2e_req *r, const struct keyrel_grant *g)
{
	struct kc_entry ent = {0};

	if (!e2e_alg_is_valid(g->alg) || !topic_filter_is_valid(moat_bytes_str(g->filter)) ||
	    g->sender_id_len > E2E_SENDER_ID_MAX ||
	    (r->intent == KEYREL_PUBLISH && g->sender_id_len == 0)) {
		r->rc = MOAT_E_PROTOCOL;
		snprintf(r->why, sizeof(r->why), "key response refused: %s",
			 g->sender_id_len == 0 ? "a publish grant without a sender id"
					       : "an unknown algorithm or no filter");
		return;
	}
	ent.group = g->group;
	ent.alg = g->alg;
	snprintf(ent.filter, sizeof(ent.filter), "%s", g->filter);
	ent.is_signed = g->is_signed;
	ent.max_age_s = g->max_age_s;
	ent.not_after = g->not_after;
	memcpy(ent.sender_id, g->sender_id, g->sender_id_len);
	ent.sender_id_len = g->sender_id_len;
	r->rc = ent.sender_id_len > 0 ? e2e_counter_create(e, &ent) : MOAT_OK;
	if (r->rc < 0) {
		snprintf(r->why, sizeof(r->why), "cannot create the sequence counter in state/");
		OPENSSL_cleanse(&ent, sizeof(ent));
		return;
	}
	r->rc = keycache_put(&e->kc, &ent, clock_wall_s());
	OPENSSL_cleanse(&ent, sizeof(ent));
	if (r->rc == MOAT_E_PROTOCOL)
		snprintf(r->why, sizeof(r->why),
			 "key response refused: an epoch older than cached");
	else if (r->rc < 0)
		snprintf(r->why, sizeof(r->why), "the key cache is full or out of memory");
	else
		keycache_save(&e->kc); /* kept in memory when the disk fails: fetched again later */
}

static void handle_response(struct moat_e2e *e, const struct moat_message *m)
{
	struct keyrel_grant *g;
	struct e2e_req *r = NULL;
	const char *why = NULL;
	int rc;

	if (m->correlation_len != sizeof(r->corr))
		return;
	for (size_t i = 0; i < E2E_MAX_REQS && r == NULL; i++)
		if (e->reqs[i].used && e->reqs[i].rc == MOAT_E_AGAIN &&
		    memcmp(e->reqs[i].corr, m->correlation_data, sizeof(r->corr)) == 0)
			r = &e->reqs[i];
	if (r == NULL)
		return; /* no request of ours waits for it: late, duplicate or forged */
	g = calloc(1, sizeof(*g));
	if (g == NULL) {
		r->rc = MOAT_E_NOMEM;
		snprintf(r->why, sizeof(r->why), "out of memory");
		return;
	}
	rc = keyrel_response_open((struct moat_bytes){m->payload, m->payload_len},
				  moat_bytes_str(m->topic), e->client_id, r->req_hash, e->sc_pub,
				  e->agree_seed, g, &why);
	if (rc < 0) {
		r->rc = rc;
		snprintf(r->why, sizeof(r->why), "key response refused: %s",
			 why != NULL ? why : moat_strerror(rc));
	} else if (g->status != KEYREL_OK) {
		r->rc = MOAT_E_DENIED;
		snprintf(r->why, sizeof(r->why), "the Security Center refused the key: %s: %s",
			 keyrel_status_name(g->status), g->reason);
	} else {
		store_grant(e, r, g);
	}
	OPENSSL_cleanse(g, sizeof(*g));
	free(g);
}

static void handle_epoch(struct moat_e2e *e, const struct moat_message *m)
{
	uint8_t gid[COSE_GROUP_ID_LEN];
	uint32_t epoch;
	const char *why;
	struct kc_entry *cur;

	if (keyrel_epoch_open((struct moat_bytes){m->payload, m->payload_len},
			      moat_bytes_str(m->topic), e->sc_pub, gid, &epoch, &why) < 0)
		return; /* not from the SC: ignored */
	cur = keycache_current(&e->kc, gid);
	if (cur == NULL || epoch <= cur->group.epoch || cur->stale)
		return;
	cur->stale = true;
	e2e_fetch_async(e, cur->filter, KEYREL_SUBSCRIBE);
}

static bool has_prefix(const char *s, const char *prefix)
{
	return strncmp(s, prefix, strlen(prefix)) == 0;
}

static void w_on_message(void *arg, const struct moat_message *m)
{
	struct moat_e2e *e = arg;

	if (strcmp(m->topic, e->resp_topic) == 0) {
		handle_response(e, m);
		return;
	}
	if (has_prefix(m->topic, KEYREL_EPOCH_PREFIX)) {
		handle_epoch(e, m);
		return;
	}
	FORWARD(e, on_message, m);
}

static void w_on_unsubscribe(void *arg, uint16_t pid, const uint8_t *codes, size_t n)
{
	struct moat_e2e *e = arg;

	FORWARD(e, on_unsubscribe, pid, codes, n);
}

static void w_on_disconnect(void *arg, int err, uint8_t rc)
{
	struct moat_e2e *e = arg;

	FORWARD(e, on_disconnect, err, rc);
}

int moat_e2e_attach(struct moat_e2e *e, struct moat_client *c)
{
	if (c == NULL) {
		if (e->c != NULL)
			e->c->cb = e->user_cb;
		e->c = NULL;
		return MOAT_OK;
	}
	if (e->c != NULL || c->o.version == 4 || strcmp(c->client_id, e->client_id) != 0)
		return MOAT_E_INVAL;
	e->c = c;
	e->user_cb = c->cb;
	c->cb = (struct moat_callbacks){.arg = e,
					.on_connect = w_on_connect,
					.on_message = w_on_message,
					.on_publish_done = w_on_publish_done,
					.on_subscribe = w_on_subscribe,
					.on_unsubscribe = w_on_unsubscribe,
					.on_disconnect = w_on_disconnect};
	snprintf(e->resp_topic, sizeof(e->resp_topic), KEYREL_RESP_PREFIX "%s", e->client_id);
	if (moat_is_connected(c))
		subscribe_sc_topics(e);
	return MOAT_OK;
}

/* Builds and publishes a request for <r> (topic and intent set). */
static int send_request(struct moat_e2e *e, struct e2e_req *r)
{
	struct keyrel_request req = {.op = KEYREL_GET_KEY,
				     .client_id = moat_bytes_str(e->client_id),
				     .topic = moat_bytes_str(r->topic),
				     .intent = (enum keyrel_intent)r->intent,
				     .iat = clock_wall_s()};
	struct moat_pub_props props = {.response_topic = e->resp_topic,
				       .correlation_data = r->corr,
				       .correlation_len = sizeof(r->corr)};
	char topic[sizeof(KEYREL_REQ_PREFIX) + KEYREL_CLIENT_ID_MAX];
	struct buf out = {0};
	int rc;

	memcpy(req.agree_fpr, e->agree_fpr, sizeof(req.agree_fpr));
	if (RAND_bytes(req.nonce, sizeof(req.nonce)) != 1 ||
	    RAND_bytes(r->corr, sizeof(r->corr)) != 1)
		return MOAT_E_CRYPTO;
	rc = keyrel_request_build(&req, e->sign_seed, &out);
	if (rc == MOAT_OK) {
		memcpy(r->req_hash, req.req_hash, sizeof(r->req_hash));
		snprintf(topic, sizeof(topic), KEYREL_REQ_PREFIX "%s", e->client_id);
		rc = moat_publish(e->c, topic, buf_head(&out), buf_used(&out), 1, false, &props,
				  &r->packet_id);
	}
	buf_fini(&out);
	r->sent_ms = clock_mono_ms();
	r->rc = rc == MOAT_OK ? MOAT_E_AGAIN : rc;
	if (rc < 0)
		snprintf(r->why, sizeof(r->why), "cannot send the key request: %s",
			 moat_strerror(rc));
	return rc;
}

/* The request for (<topic>, <intent>): one in flight or recently answered, else a new one. */
static struct e2e_req *request_for(struct moat_e2e *e, const char *topic, int intent, int *rc)
{
	struct e2e_req *free_slot = NULL;
	uint64_t now = clock_mono_ms();

	*rc = MOAT_OK;
	if (e->c == NULL || !moat_is_connected(e->c)) {
		*rc = MOAT_E_CLOSED;
		return NULL;
	}
	if (strlen(topic) > KEYREL_TOPIC_MAX) {
		*rc = MOAT_E_INVAL;
		return NULL;
	}
	for (size_t i = 0; i < E2E_MAX_REQS; i++) {
		struct e2e_req *r = &e->reqs[i];

		if (r->used && r->intent == intent && strcmp(r->topic, topic) == 0) {
			bool old = now - r->sent_ms >
				   (r->rc == MOAT_E_AGAIN ? RESEND_AFTER_MS : DENIED_HOLD_MS);

			/* join one in flight, or repeat a recent failure; a finished
			 * success is never joined: the caller needs a key not cached */
			if (!old && r->rc != MOAT_OK)
				return r;
			free_slot = r;
			break;
		}
		if (!r->used || (r->rc != MOAT_E_AGAIN && free_slot == NULL))
			free_slot = r;
	}
	if (free_slot == NULL) {
		*rc = MOAT_E_LIMIT;
		return NULL;
	}
	*free_slot = (struct e2e_req){.used = true, .intent = intent};
	snprintf(free_slot->topic, sizeof(free_slot->topic), "%s", topic);
	send_request(e, free_slot);
	return free_slot;
}

void e2e_fetch_async(struct moat_e2e *e, const char *topic, int intent)
{
	int rc;

	request_for(e, topic, intent, &rc);
}

int e2e_fetch_key(struct moat_e2e *e, const char *topic, int intent, const char **why)
{
	int rc;
	struct e2e_req *r = request_for(e, topic, intent, &rc);
	uint64_t deadline = clock_mono_ms() + e->timeout_ms;

	if (r == NULL) {
		*why = rc == MOAT_E_CLOSED  ? "key needed but the client is not connected"
		       : rc == MOAT_E_LIMIT ? "too many key requests in flight"
					    : "topic too long for a key request";
		return rc;
	}
	if (e->timeout_ms > 0 && e->in_cb == 0 && !e->c->threaded) {
		bool closed = false;

		while (r->rc == MOAT_E_AGAIN && clock_mono_ms() < deadline && !closed)
			closed = moat_loop_once(e->c, 50) < 0;
		if (r->rc == MOAT_E_AGAIN) {
			r->used = false;
			*why = closed ? "the connection closed while waiting for the key"
				      : "no answer from the Security Center to the key request";
			return closed ? MOAT_E_CLOSED : MOAT_E_TIMEOUT;
		}
	}
	rc = r->rc;
	if (rc == MOAT_E_AGAIN) {
		*why = "key requested from the Security Center, not yet available";
		return rc;
	}
	snprintf(e->why, sizeof(e->why), "%s", r->why);
	*why = e->why;
	if (rc != MOAT_E_DENIED)
		r->used = false; /* a refusal is held a while so retries do not flood the SC */
	return rc;
}

int moat_e2e_fetch(struct moat_e2e *e, const char *topic, enum moat_e2e_intent intent,
		   const char **why)
{
	const char *w = NULL;
	int rc;

	if (topic == NULL || (intent != MOAT_E2E_PUBLISH && intent != MOAT_E2E_SUBSCRIBE))
		return MOAT_E_INVAL;
	rc = e2e_fetch_key(e, topic, (int)intent, &w);
	if (why != NULL)
		*why = rc == MOAT_OK ? NULL : w;
	return rc;
}
