/*
 * libmoat end-to-end API (include/moat/e2e.h): the moat_e2e object, and
 * sealing and opening payloads with the group keys of the key cache
 * (keycache.h). Keys come from the Security Center through e2e_fetch.c;
 * the envelope itself is src/e2e/cose.h, with sender keys derived once per
 * (group, epoch, sender, alg) and kept here. Sequence numbers come from a
 * crash-safe counter per (group, epoch, sender id) in the bundle's state/.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <openssl/crypto.h>

#include "base/clock.h"
#include "client/e2e_impl.h"
#include "codec/topic.h"

int moat_e2e_open_bundle(struct moat_e2e **out, const char *dir, char *diag, size_t diag_len)
{
	struct moat_e2e *e;
	char path[4200];
	bool discarded = false;
	int rc;

	if (diag != NULL && diag_len > 0)
		diag[0] = '\0';
	if (out == NULL || dir == NULL || strlen(dir) > 4000)
		return MOAT_E_INVAL;
	e = calloc(1, sizeof(*e));
	if (e == NULL)
		return MOAT_E_NOMEM;
	e->timeout_ms = 5000;
	e->grace_s = 600;
	rc = e2e_bundle_load(e, dir, diag, diag_len);
	if (rc < 0)
		goto err;
	snprintf(path, sizeof(path), "%s/state", dir);
	e->state_dir = strdup(path);
	if (e->state_dir == NULL) {
		rc = MOAT_E_NOMEM;
		goto err;
	}
	if ((mkdir(path, 0700) != 0 && errno != EEXIST) || chmod(path, 0700) != 0) {
		if (diag != NULL)
			snprintf(diag, diag_len, "%s: %s", path, strerror(errno));
		rc = MOAT_E_IO;
		goto err;
	}
	snprintf(path, sizeof(path), "%s/state/keys.cache", dir);
	rc = keycache_open(&e->kc, path, e->agree_seed, &discarded);
	if (rc < 0) {
		if (diag != NULL)
			snprintf(diag, diag_len, "%s: %s", path, moat_strerror(rc));
		goto err;
	}
	if (discarded && diag != NULL)
		snprintf(diag, diag_len,
			 "%s was damaged or made with another device key: discarded, "
			 "keys will be fetched again",
			 path);
	*out = e;
	return MOAT_OK;
err:
	moat_e2e_destroy(e);
	return rc;
}

void moat_e2e_destroy(struct moat_e2e *e)
{
	if (e == NULL)
		return;
	for (size_t i = 0; i < e->nsenders; i++)
		seq_close(&e->senders[i].seq);
	keycache_fini(&e->kc);
	free(e->state_dir);
	OPENSSL_cleanse(e, sizeof(*e));
	free(e);
}

const char *moat_e2e_client_id(const struct moat_e2e *e)
{
	return e->client_id;
}

const char *moat_e2e_broker(const struct moat_e2e *e)
{
	return e->broker;
}

void moat_e2e_set_timeout_ms(struct moat_e2e *e, uint32_t timeout_ms)
{
	e->timeout_ms = timeout_ms;
}

void moat_e2e_set_grace_s(struct moat_e2e *e, uint32_t grace_s)
{
	e->grace_s = grace_s;
}

void moat_e2e_set_signer_lookup(struct moat_e2e *e, moat_e2e_signer_lookup_fn *fn, void *arg)
{
	e->lookup = fn;
	e->lookup_arg = arg;
}

void moat_e2e_free(void *p, size_t len)
{
	if (p != NULL)
		OPENSSL_cleanse(p, len);
	free(p);
}

static bool same_ctx(const uint8_t *gid, uint32_t epoch, const uint8_t *sid, size_t sid_len,
		     const uint8_t *gid2, uint32_t epoch2, const uint8_t *sid2, size_t sid2_len)
{
	return epoch == epoch2 && sid_len == sid2_len &&
	       memcmp(gid, gid2, COSE_GROUP_ID_LEN) == 0 && memcmp(sid, sid2, sid_len) == 0;
}

/* The sender keys of <g>/<alg> for <sid>, derived the first time. */
static const struct e2e_keys *keys_for(struct moat_e2e *e, const struct cose_group *g, int alg,
				       struct moat_bytes sid)
{
	struct e2e_derived *d;

	for (size_t i = 0; i < e->nderived; i++) {
		d = &e->derived[i];
		if (d->alg == alg && same_ctx(d->gid, d->epoch, d->sid, d->sid_len, g->group_id,
					      g->epoch, sid.ptr, sid.len))
			return &d->keys;
	}
	if (e->nderived < E2E_MAX_DERIVED) {
		d = &e->derived[e->nderived++];
	} else {
		d = &e->derived[e->derived_next];
		e->derived_next = (e->derived_next + 1) % E2E_MAX_DERIVED;
	}
	OPENSSL_cleanse(d, sizeof(*d));
	if (sid.len > E2E_SENDER_ID_MAX || cose_derive_keys(g, sid, alg, &d->keys) != MOAT_OK) {
		OPENSSL_cleanse(d, sizeof(*d));
		d->sid_len = E2E_SENDER_ID_MAX + 1; /* matches nothing */
		return NULL;
	}
	memcpy(d->gid, g->group_id, COSE_GROUP_ID_LEN);
	d->epoch = g->epoch;
	d->alg = alg;
	memcpy(d->sid, sid.ptr, sid.len);
	d->sid_len = sid.len;
	return &d->keys;
}

static void hex(char *out, const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		sprintf(out + 2 * i, "%02x", p[i]);
	out[2 * n] = '\0';
}

/* Writes the path of <ent>'s sequence counter file to <path>. */
static void counter_path(const struct moat_e2e *e, const struct kc_entry *ent, char *path,
			 size_t len)
{
	char gid[2 * COSE_GROUP_ID_LEN + 1], sid[2 * E2E_SENDER_ID_MAX + 1];

	hex(gid, ent->group.group_id, COSE_GROUP_ID_LEN);
	hex(sid, ent->sender_id, ent->sender_id_len);
	snprintf(path, len, "%s/seq-%s-%u-%s", e->state_dir, gid, ent->group.epoch, sid);
}

int e2e_counter_create(struct moat_e2e *e, const struct kc_entry *ent)
{
	struct seq_counter s;
	char path[4300];
	int rc;

	counter_path(e, ent, path, sizeof(path));
	rc = seq_open(&s, path, E2E_SEQ_BLOCK, true);
	if (rc == MOAT_OK)
		seq_close(&s);
	else if (rc == MOAT_E_IO && errno == EEXIST)
		rc = MOAT_OK; /* the same grant again: its counter goes on */
	return rc;
}

/* The sequence counter of <ent>'s (group, epoch, sender id), opened on first use. Its file
 * was made when the grant arrived (e2e_counter_create); a missing one is a lost counter and
 * is never restarted at zero (seq.h). */
static struct seq_counter *counter_for(struct moat_e2e *e, const struct kc_entry *ent, int *rc)
{
	char path[4300];
	struct e2e_sender *s;

	for (size_t i = 0; i < e->nsenders; i++) {
		s = &e->senders[i];
		if (same_ctx(s->gid, s->epoch, s->sid, s->sid_len, ent->group.group_id,
			     ent->group.epoch, ent->sender_id, ent->sender_id_len))
			return &s->seq;
	}
	if (e->nsenders == E2E_MAX_SENDERS) {
		/* close the oldest: its file keeps the reserved boundary */
		seq_close(&e->senders[0].seq);
		memmove(&e->senders[0], &e->senders[1], (E2E_MAX_SENDERS - 1) * sizeof(*s));
		e->nsenders--;
	}
	s = &e->senders[e->nsenders];
	*s = (struct e2e_sender){0};
	counter_path(e, ent, path, sizeof(path));
	*rc = seq_open(&s->seq, path, E2E_SEQ_BLOCK, false);
	if (*rc < 0)
		return NULL;
	memcpy(s->gid, ent->group.group_id, COSE_GROUP_ID_LEN);
	s->epoch = ent->group.epoch;
	memcpy(s->sid, ent->sender_id, ent->sender_id_len);
	s->sid_len = ent->sender_id_len;
	e->nsenders++;
	return &s->seq;
}

static bool needs_fetch(const struct kc_entry *ent, int64_t now)
{
	return ent == NULL || ent->sender_id_len == 0 || ent->stale || now >= ent->not_after;
}

/* Copies <b> into a new malloc'd <*out>/<*len>. */
static int take(struct buf *b, uint8_t **out, size_t *len)
{
	*len = buf_used(b);
	*out = malloc(*len > 0 ? *len : 1);
	if (*out == NULL)
		return MOAT_E_NOMEM;
	memcpy(*out, buf_head(b), *len);
	return MOAT_OK;
}

static int seal_entry(struct moat_e2e *e, const struct kc_entry *ent, struct moat_bytes t,
		      struct moat_bytes pt, struct buf *out, const char **why)
{
	struct cose_seal_params p = {.alg = ent->alg,
				     .sender_id = {ent->sender_id, ent->sender_id_len},
				     .has_iat = true,
				     .iat = clock_wall_s()};
	const struct e2e_keys *k;
	struct seq_counter *sc;
	struct buf env = {0};
	int rc = MOAT_OK;

	sc = counter_for(e, ent, &rc);
	if (sc == NULL) {
		*why = rc == MOAT_E_PARSE ? "the sequence counter file in state/ is damaged"
		       : rc == MOAT_E_IO && errno == ENOENT
			   ? "the sequence counter of this key is lost: sending needs a new sender "
			     "id or epoch from the Security Center"
			   : "cannot open the sequence counter in state/";
		return rc;
	}
	rc = seq_next(sc, &p.seq);
	if (rc < 0) {
		*why = rc == MOAT_E_LIMIT ? "sequence numbers used up: the group needs a new epoch"
					  : "the sequence counter could not be made durable";
		return rc;
	}
	k = keys_for(e, &ent->group, ent->alg, p.sender_id);
	if (k == NULL) {
		*why = "cannot derive the sender key";
		return MOAT_E_CRYPTO;
	}
	if (!ent->is_signed)
		return cose_encrypt0_seal_keys(&ent->group, k, &p, t, pt, out);
	rc = cose_encrypt0_seal_keys(&ent->group, k, &p, t, pt, &env);
	if (rc == MOAT_OK)
		rc = cose_sign1_sign(e->sign_seed, moat_bytes_str(e->client_id), t,
				     (struct moat_bytes){buf_head(&env), buf_used(&env)}, out);
	buf_fini(&env);
	return rc;
}

int moat_e2e_seal(struct moat_e2e *e, const char *topic, const void *plaintext, size_t len,
		  uint8_t **payload, size_t *payload_len, const char **content_type,
		  const char **why)
{
	const char *w = NULL;
	struct moat_bytes t;
	struct kc_entry *ent;
	struct buf out = {0};
	int rc;

	if (topic == NULL || payload == NULL || payload_len == NULL || content_type == NULL ||
	    (plaintext == NULL && len > 0))
		return MOAT_E_INVAL;
	t = moat_bytes_str(topic);
	if (t.len == 0 || !topic_name_is_valid(t)) {
		if (why != NULL)
			*why = "not a topic name one can publish to";
		return MOAT_E_INVAL;
	}
	ent = keycache_for_topic(&e->kc, t);
	if (needs_fetch(ent, clock_wall_s())) {
		rc = e2e_fetch_key(e, topic, KEYREL_PUBLISH, &w);
		if (rc < 0)
			goto out;
		ent = keycache_for_topic(&e->kc, t);
		if (needs_fetch(ent, clock_wall_s())) {
			w = "the Security Center released no current publish key for this topic";
			rc = MOAT_E_DENIED;
			goto out;
		}
	}
	rc = seal_entry(e, ent, t, (struct moat_bytes){plaintext, len}, &out, &w);
	if (rc == MOAT_OK) {
		rc = take(&out, payload, payload_len);
		*content_type =
		    ent->is_signed ? COSE_CONTENT_TYPE_SIGN1 : COSE_CONTENT_TYPE_ENCRYPT0;
	} else if (w == NULL) {
		w = "sealing failed";
	}
out:
	buf_fini(&out);
	if (why != NULL)
		*why = rc == MOAT_OK ? NULL : w;
	return rc;
}

/* The replay window of (group, epoch, sender) or NULL when none was committed yet. */
static struct e2e_window *window_of(struct moat_e2e *e, const struct cose_encrypt0 *x)
{
	for (size_t i = 0; i < e->nwindows; i++) {
		struct e2e_window *w = &e->windows[i];

		if (same_ctx(w->gid, w->epoch, w->sid, w->sid_len, x->group_id, x->epoch,
			     x->sender_id.ptr, x->sender_id.len))
			return w;
	}
	return NULL;
}

/* Commits <x>->seq, making its window on the first message that opened. */
static void window_commit(struct moat_e2e *e, const struct cose_encrypt0 *x)
{
	struct e2e_window *w = window_of(e, x);

	if (w == NULL) {
		if (e->nwindows < E2E_MAX_WINDOWS) {
			w = &e->windows[e->nwindows++];
		} else {
			w = &e->windows[e->windows_next];
			e->windows_next = (e->windows_next + 1) % E2E_MAX_WINDOWS;
		}
		memcpy(w->gid, x->group_id, COSE_GROUP_ID_LEN);
		w->epoch = x->epoch;
		memcpy(w->sid, x->sender_id.ptr, x->sender_id.len);
		w->sid_len = x->sender_id.len;
		replay_init(&w->w);
	}
	replay_commit(&w->w, x->seq);
}

/* Verifies the Sign1 <s> when a signer lookup knows its kid; fills <info>. */
static int check_signer(struct moat_e2e *e, const struct cose_sign1 *s, struct moat_bytes t,
			struct moat_e2e_info *info, const char **why)
{
	uint8_t pub[32];
	int rc;

	info->is_signed = true;
	snprintf(info->signer, sizeof(info->signer), "%.*s", (int)s->kid.len,
		 (const char *)s->kid.ptr);
	if (e->lookup == NULL)
		return MOAT_OK;
	rc = e->lookup(e->lookup_arg, s->kid.ptr, s->kid.len, pub);
	if (rc == MOAT_E_NOTFOUND)
		return MOAT_OK;
	if (rc < 0) {
		*why = "the signer lookup failed";
		return rc;
	}
	rc = cose_sign1_verify(s, pub, t, why);
	info->signer_verified = rc == MOAT_OK;
	return rc;
}

/* The key entry for the message <x> on <topic>: cached, or fetched (may block). */
static int entry_for(struct moat_e2e *e, const char *topic, const struct cose_encrypt0 *x,
		     struct kc_entry **out, const char **why)
{
	struct kc_entry *ent = keycache_find(&e->kc, x->group_id, x->epoch);
	struct kc_entry *cur = keycache_current(&e->kc, x->group_id);
	int64_t now = clock_wall_s();
	int rc;

	if (ent == NULL && cur != NULL && x->epoch < cur->group.epoch) {
		*why = "the message's epoch is older than the group's previous one";
		return MOAT_E_PROTOCOL;
	}
	if (ent == NULL || (ent->superseded_at == 0 && (ent->stale || now >= ent->not_after))) {
		rc = e2e_fetch_key(e, topic, KEYREL_SUBSCRIBE, why);
		if (rc < 0 && ent == NULL)
			return rc;
		ent = keycache_find(&e->kc, x->group_id, x->epoch);
		if (ent == NULL) {
			*why = "no key for the message's group and epoch";
			return MOAT_E_PROTOCOL;
		}
	}
	if (ent->superseded_at != 0 && now > ent->superseded_at + (int64_t)e->grace_s) {
		*why = "the message's epoch was replaced and its grace window is over";
		return MOAT_E_PROTOCOL;
	}
	if (ent->superseded_at == 0 && now >= ent->not_after + (int64_t)e->grace_s) {
		*why = "the group key expired and no newer one was released";
		return MOAT_E_PROTOCOL;
	}
	*out = ent;
	return MOAT_OK;
}

static int check_age(const struct kc_entry *ent, const struct cose_encrypt0 *x, const char **why)
{
	int64_t now = clock_wall_s();

	if (ent->max_age_s == 0)
		return MOAT_OK;
	if (!x->has_iat) {
		*why = "the topic has a maximum age but the message has no iat";
		return MOAT_E_PROTOCOL;
	}
	if (x->iat > now + KEYREL_IAT_SKEW_S) {
		*why = "the message's iat lies in the future";
		return MOAT_E_PROTOCOL;
	}
	if (now - x->iat > (int64_t)ent->max_age_s) {
		*why = "the message is older than the topic's maximum age";
		return MOAT_E_PROTOCOL;
	}
	return MOAT_OK;
}

static int open_env(struct moat_e2e *e, const char *topic, struct moat_bytes env, struct buf *out,
		    struct moat_e2e_info *info, const char **why)
{
	struct moat_bytes t = moat_bytes_str(topic);
	struct cose_encrypt0 x;
	struct cose_sign1 s;
	struct kc_entry *ent, *best;
	const struct e2e_keys *k;
	struct e2e_window *w;
	int rc;

	if (env.len > 0 && env.ptr[0] == 0xd2) { /* CBOR tag 18: COSE_Sign1 */
		rc = cose_sign1_decode(env, &s, why);
		if (rc == MOAT_OK)
			rc = check_signer(e, &s, t, info, why);
		if (rc < 0)
			return rc;
		env = s.payload;
	}
	rc = cose_encrypt0_decode(env, &x, why);
	if (rc < 0)
		return rc;
	rc = entry_for(e, topic, &x, &ent, why);
	if (rc < 0)
		return rc;
	best = keycache_for_topic(&e->kc, t);
	if (best == NULL || memcmp(best->group.group_id, x.group_id, COSE_GROUP_ID_LEN) != 0) {
		*why = "the message's group is not the one the topic's policy names";
		return MOAT_E_PROTOCOL;
	}
	if (ent->is_signed && !info->is_signed) {
		*why = "the topic's policy requires a COSE_Sign1 signature";
		return MOAT_E_PROTOCOL;
	}
	w = window_of(e, &x);
	if (w != NULL && replay_check(&w->w, x.seq) < 0) {
		*why = "replayed: the sequence number was seen or is below the window";
		return MOAT_E_PROTOCOL;
	}
	k = keys_for(e, &ent->group, ent->alg, x.sender_id);
	if (k == NULL) {
		*why = "cannot derive the sender key";
		return MOAT_E_CRYPTO;
	}
	rc = cose_encrypt0_open_keys(&x, &ent->group, k, ent->alg, t, out, why);
	if (rc == MOAT_OK)
		rc = check_age(ent, &x, why);
	if (rc < 0)
		return rc;
	window_commit(e, &x);
	memcpy(info->group_id, x.group_id, COSE_GROUP_ID_LEN);
	info->epoch = x.epoch;
	memcpy(info->sender_id, x.sender_id.ptr, x.sender_id.len);
	info->sender_id_len = x.sender_id.len;
	info->seq = x.seq;
	info->has_iat = x.has_iat;
	info->iat = x.iat;
	info->alg = x.alg;
	return MOAT_OK;
}

int moat_e2e_open(struct moat_e2e *e, const char *topic, const void *payload, size_t len,
		  uint8_t **plaintext, size_t *plaintext_len, struct moat_e2e_info *info,
		  const char **why)
{
	struct moat_e2e_info local;
	const char *w = NULL;
	struct buf out = {0};
	int rc;

	if (topic == NULL || plaintext == NULL || plaintext_len == NULL ||
	    (payload == NULL && len > 0))
		return MOAT_E_INVAL;
	if (info == NULL)
		info = &local;
	*info = (struct moat_e2e_info){0};
	if (!topic_name_is_valid(moat_bytes_str(topic)) || topic[0] == '\0') {
		w = "not a topic name";
		rc = MOAT_E_INVAL;
	} else {
		rc = open_env(e, topic, (struct moat_bytes){payload, len}, &out, info, &w);
	}
	if (rc == MOAT_OK)
		rc = take(&out, plaintext, plaintext_len);
	if (out.data != NULL)
		OPENSSL_cleanse(out.data, out.cap);
	buf_fini(&out);
	if (rc < 0 && w == NULL)
		w = moat_strerror(rc);
	if (why != NULL)
		*why = rc == MOAT_OK ? NULL : w;
	return rc;
}
