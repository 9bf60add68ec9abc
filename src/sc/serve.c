/*
 * `moat-sc serve` (see serve.h): the daemon's state, its MQTT side, the
 * rotation triggers (schedule, policy file, revocations) and the mailbox
 * through which the admin thread's hooks reach the main thread.
 */
#include "sc/serve.h"

#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <cjson/cJSON.h>
#include <openssl/crypto.h>
#include <openssl/sha.h>

#include <moat/client.h>
#include <moat/error.h>

#include "sc/admin.h"
#include "sc/ca.h"
#include "sc/groups.h"
#include "sc/keyserver.h"
#include "sc/mailbox.h"
#include "sc/revlist.h"
#include "sc/sc_keys.h"
#include "sc/signer.h"

#define REQ_FILTER KEYREL_REQ_PREFIX "+"
#define ALERT_FILTER "alerts/+/tamper"

enum {
	LOOP_MS = 250,	     /* the longest the main thread waits between timer checks */
	POLICY_CHECK_S = 3,  /* policy file mtime/size/hash */
	REVOKED_CHECK_S = 2, /* things revoked by other processes */
	HOOK_WAIT_S = 30,    /* an admin hook waits this long for the main thread to start */
	PASSWORD_MAX = 1024,
	ALERT_DETAIL_AUDIT = 200, /* bytes of an alert's detail kept in the audit row */
};

enum job_kind { JOB_REVOKED = 1, JOB_ROTATE, JOB_POLICIES };

struct serve {
	const struct serve_opts *o;
	struct registry *reg;
	uint8_t store_key[GROUPS_STORE_KEY_LEN];
	struct sc_keys keys; /* where the signing keys are (files or PKCS#11) */
	struct signer *signer;
	struct keyserver *ks;
	struct topic_policy_set *policies;
	char policy_path[4096];
	struct moat_client *mc;
	/* policy file watch */
	bool have_policy_file;
	struct timespec policy_mtime;
	off_t policy_size;
	uint8_t policy_hash[32];
	/* revoked things already acted on, sorted */
	char **revoked;
	size_t n_revoked;
	struct mailbox box;
	/* the admin channel (admin.h) runs on its own thread with its own handles */
	struct sc_admin_ctx admin_ctx;
	struct signer *admin_ca_key, *admin_token_key;
	struct sc_admin *admin;
};

static volatile sig_atomic_t stop_flag, hup_flag;

static void on_signal(int sig)
{
	if (sig == SIGHUP)
		hup_flag = 1;
	else
		stop_flag = 1;
}

static void note(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* One line on stderr: the daemon's log. */
static void note(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	fprintf(stderr, "moat-sc: ");
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
}

static int publish_signed(struct serve *s, const char *topic, const struct buf *b, bool retain,
			  const struct moat_message *req)
{
	struct moat_pub_props p = {.content_type = COSE_CONTENT_TYPE_SIGN1};
	int rc;

	if (req != NULL && req->correlation_len > 0) {
		p.correlation_data = req->correlation_data;
		p.correlation_len = req->correlation_len;
	}
	rc = moat_publish(s->mc, topic, buf_head(b), buf_used(b), 1, retain, &p, NULL);
	if (rc < 0)
		note("publishing on %s failed: %s", topic, moat_strerror(rc));
	return rc;
}

/* ---- epochs ---- */

static int announce(struct serve *s, const uint8_t group_id[COSE_GROUP_ID_LEN], uint32_t epoch,
		    const char *filter)
{
	char hex[2 * COSE_GROUP_ID_LEN + 1], topic[64];
	struct buf b = {0};
	int rc = keyrel_epoch_build(group_id, epoch, filter, (int64_t)time(NULL), keyserver_sign,
				    s->signer, &b);

	groups_id_hex(group_id, hex);
	snprintf(topic, sizeof(topic), "%s%s", KEYREL_EPOCH_PREFIX, hex);
	if (rc == MOAT_OK)
		rc = publish_signed(s, topic, &b, true, NULL);
	buf_fini(&b);
	return rc;
}

static int rotate(struct serve *s, const uint8_t group_id[COSE_GROUP_ID_LEN], const char *reason,
		  struct moat_diag *d)
{
	struct groups_epoch e;
	int rc = groups_rotate(s->reg, s->store_key, KEYSERVER_ACTOR, group_id,
			       keyserver_config(s->ks)->epoch_period_s, reason, &e, d);

	if (rc == MOAT_OK) {
		rc = announce(s, e.key.group_id, e.key.epoch, e.filter);
		note("group %s rotated to epoch %u (%s)", e.filter, (unsigned)e.key.epoch, reason);
	}
	groups_epoch_wipe(&e);
	return rc;
}

/* The groups of a listing, copied out so the registry can change meanwhile. */
struct group_list {
	struct groups_info *v;
	size_t n, cap;
};

static int collect_group(void *arg, const struct groups_info *g)
{
	struct group_list *l = arg;

	if (l->n == l->cap) {
		size_t cap = l->cap != 0 ? 2 * l->cap : 16;
		struct groups_info *v = realloc(l->v, cap * sizeof(*v));

		if (v == NULL)
			return MOAT_E_NOMEM;
		l->v = v;
		l->cap = cap;
	}
	l->v[l->n++] = *g;
	return MOAT_OK;
}

/* Lists every group (<thing> NULL) or those <thing> was granted. */
static int list_groups(struct serve *s, const char *thing, struct group_list *l,
		       struct moat_diag *d)
{
	*l = (struct group_list){0};
	return thing == NULL ? groups_list(s->reg, collect_group, l, d)
			     : groups_list_granted(s->reg, thing, collect_group, l, d);
}

static void rotate_due(struct serve *s, int64_t now_s)
{
	struct moat_diag d = {0};
	struct group_list l;

	if (list_groups(s, NULL, &l, &d) == MOAT_OK)
		for (size_t i = 0; i < l.n; i++)
			if (l.v[i].not_after_s <= now_s &&
			    rotate(s, l.v[i].group_id, "schedule", &d) < 0)
				note("scheduled rotation of %s failed: %s", l.v[i].filter, d.msg);
	free(l.v);
}

/* ---- revocations ---- */

static int push_revlist(struct serve *s, struct moat_diag *d)
{
	struct buf b = {0};
	uint64_t serial = 0;
	int rc = revlist_build(s->reg, KEYSERVER_ACTOR, (int64_t)time(NULL),
			       REVLIST_NEXT_UPDATE_S_DEFAULT, NULL, keyserver_sign, s->signer, &b,
			       &serial, d);

	if (rc == MOAT_OK)
		rc = publish_signed(s, REVLIST_TOPIC, &b, true, NULL);
	if (rc == MOAT_OK)
		note("revocation list %llu published", (unsigned long long)serial);
	buf_fini(&b);
	return rc;
}

static int cmp_name(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static bool known_revoked(const struct serve *s, const char *name)
{
	return s->n_revoked > 0 &&
	       bsearch(&name, s->revoked, s->n_revoked, sizeof(*s->revoked), cmp_name) != NULL;
}

struct fresh_revoked {
	const struct serve *s;
	char **names;
	size_t n, cap;
	int rc;
};

static int find_fresh(void *arg, const struct reg_thing *t)
{
	struct fresh_revoked *f = arg;

	if (t->status != REG_REVOKED || known_revoked(f->s, t->name))
		return MOAT_OK;
	if (f->n == f->cap) {
		size_t cap = f->cap != 0 ? 2 * f->cap : 8;
		char **v = realloc(f->names, cap * sizeof(*v));

		if (v == NULL)
			return MOAT_E_NOMEM;
		f->names = v;
		f->cap = cap;
	}
	f->names[f->n] = strdup(t->name);
	return f->names[f->n++] != NULL ? MOAT_OK : MOAT_E_NOMEM;
}

/* Rotates every group <name> held a key of: it cannot open the next epoch. */
static int rotate_granted(struct serve *s, const char *name, struct moat_diag *d)
{
	struct group_list l;
	int rc = list_groups(s, name, &l, d);

	for (size_t i = 0; rc == MOAT_OK && i < l.n; i++)
		rc = rotate(s, l.v[i].group_id, "revocation", d);
	free(l.v);
	return rc;
}

/*
 * Acts on things revoked since the last look (here, by the admin channel
 * or by `moat-sc thing revoke`): rotates their groups, then publishes the
 * list once. With <quiet> (start-up) it only learns them.
 */
static int sweep_revoked(struct serve *s, bool quiet, struct moat_diag *d)
{
	struct fresh_revoked f = {.s = s};
	int rc = reg_thing_list_revoked(s->reg, find_fresh, &f, d);
	char **v;

	for (size_t i = 0; rc == MOAT_OK && !quiet && i < f.n; i++) {
		note("thing %s revoked", f.names[i]);
		rc = rotate_granted(s, f.names[i], d);
	}
	if (rc == MOAT_OK && f.n > 0 && !quiet)
		rc = push_revlist(s, d);
	v = rc == MOAT_OK && f.n > 0 ? realloc(s->revoked, (s->n_revoked + f.n) * sizeof(*v))
				     : NULL;
	if (rc == MOAT_OK && f.n > 0 && v == NULL)
		rc = MOAT_E_NOMEM;
	if (v != NULL) {
		memcpy(v + s->n_revoked, f.names, f.n * sizeof(*v));
		s->revoked = v;
		s->n_revoked += f.n;
		qsort(s->revoked, s->n_revoked, sizeof(*v), cmp_name);
		f.n = 0; /* the names belong to s->revoked now */
	}
	for (size_t i = 0; i < f.n; i++)
		free(f.names[i]);
	free(f.names);
	return rc;
}

/* ---- policies ---- */

static const struct topic_policy *policy_of(const struct topic_policy_set *set, const char *filter)
{
	size_t n = set != NULL ? topic_policy_count(set) : 0;

	for (size_t i = 0; i < n; i++)
		if (strcmp(topic_policy_at(set, i)->filter, filter) == 0)
			return topic_policy_at(set, i);
	return NULL;
}

/*
 * Rotates the groups whose policy's publish or subscribe expression is not
 * the one their keys were last released under (the digest kept in the
 * registry), also after changes made while the daemon was stopped, or
 * whose policy went away; then records the new digest. A group without a
 * digest just gets one.
 */
static void rotate_changed(struct serve *s, const struct topic_policy_set *set)
{
	uint8_t want[GROUPS_RULES_LEN];
	struct moat_diag d = {0};
	struct group_list l;
	int rc = list_groups(s, NULL, &l, &d);

	for (size_t i = 0; rc == MOAT_OK && i < l.n; i++) {
		const struct groups_info *g = &l.v[i];

		keyserver_policy_rules(policy_of(set, g->filter), want);
		if (g->has_rules && memcmp(g->rules, want, sizeof(want)) == 0)
			continue;
		if (g->has_rules && rotate(s, g->group_id, "policy", &d) < 0)
			note("rotation of %s failed: %s", g->filter, d.msg);
		else if (groups_set_rules(s->reg, g->group_id, want, &d) < 0)
			note("recording the rules of %s failed: %s", g->filter, d.msg);
	}
	free(l.v);
}

/*
 * Loads the policy file when it changed (always with <force>): a missing
 * file means no policies; a file that does not parse keeps the old set
 * (MOAT_E_CONFIG with <d>). With <rotate_groups> the groups whose rules
 * changed get a new epoch (rotate_changed).
 */
static int load_policies(struct serve *s, bool force, bool rotate_groups, struct moat_diag *d)
{
	struct topic_policy_set *set = NULL;
	struct policy_diag pd = {0};
	uint8_t hash[32];
	struct stat sb;
	char *text = NULL;
	size_t len = 0;
	int rc;

	if (stat(s->policy_path, &sb) != 0) {
		if (!s->have_policy_file && !force)
			return MOAT_OK;
		memset(s->policy_hash, 0, sizeof(s->policy_hash));
		s->have_policy_file = false;
	} else {
		if (!force && s->have_policy_file && sb.st_size == s->policy_size &&
		    sb.st_mtim.tv_sec == s->policy_mtime.tv_sec &&
		    sb.st_mtim.tv_nsec == s->policy_mtime.tv_nsec)
			return MOAT_OK;
		rc = conf_read_file(s->policy_path, TOPIC_POLICY_MAX_DOC, &text, &len, d);
		if (rc < 0)
			return rc;
		SHA256((const uint8_t *)text, len, hash);
		s->policy_mtime = sb.st_mtim;
		s->policy_size = sb.st_size;
		if (!force && s->have_policy_file && memcmp(hash, s->policy_hash, 32) == 0) {
			free(text);
			return MOAT_OK;
		}
		rc = topic_policy_set_parse(&set, text, len, &pd);
		free(text);
		if (rc < 0) {
			snprintf(d->msg, sizeof(d->msg), "%.300s: %.200s", s->policy_path, pd.msg);
			return MOAT_E_CONFIG;
		}
		memcpy(s->policy_hash, hash, sizeof(hash));
		s->have_policy_file = true;
	}
	keyserver_set_policies(s->ks, set);
	topic_policy_set_destroy(s->policies);
	s->policies = set;
	if (rotate_groups)
		rotate_changed(s, set);
	note("%zu topic policies loaded from %s", set != NULL ? topic_policy_count(set) : 0,
	     s->policy_path);
	return MOAT_OK;
}

/* ---- messages ---- */

static void on_request(struct serve *s, const struct moat_message *m)
{
	struct keyserver_outcome res;
	struct buf out = {0};
	char topic[sizeof(KEYREL_RESP_PREFIX) + KEYREL_CLIENT_ID_MAX];
	int rc = keyserver_handle(s->ks, (struct moat_bytes){m->payload, m->payload_len},
				  moat_bytes_str(m->topic), (int64_t)time(NULL), &out, &res);

	if (rc < 0 && !res.answered) {
		note("request on %s ignored: %s", m->topic,
		     res.reason != NULL ? res.reason : moat_strerror(rc));
	} else if (res.answered) {
		/* always the client's own response topic, whatever Response Topic says */
		snprintf(topic, sizeof(topic), "%s%s", KEYREL_RESP_PREFIX, res.client_id);
		publish_signed(s, topic, &out, false, m);
		if (rc < 0)
			note("request of %s: the audit row failed: %s", res.client_id,
			     moat_strerror(rc));
	}
	buf_fini(&out);
}

struct alert_keys {
	uint8_t pub[16][REG_KEY_LEN];
	size_t n;
};

static int collect_ed25519(void *arg, const struct reg_key *k)
{
	struct alert_keys *a = arg;

	if (k->kind == REG_KEY_ED25519_SIGN && a->n < 16)
		memcpy(a->pub[a->n++], k->pub, REG_KEY_LEN);
	return MOAT_OK;
}

/* Audits the verified alert of <name> and, per --tamper-action, revokes it. */
static void act_on_alert(struct serve *s, const char *name, int64_t iat, struct moat_bytes detail,
			 bool active)
{
	struct moat_diag d = {0};
	char text[ALERT_DETAIL_AUDIT + 1], *json;
	bool revoke = active && !s->o->tamper_alert_only;
	cJSON *o = cJSON_CreateObject();
	size_t n = detail.len < ALERT_DETAIL_AUDIT ? detail.len : ALERT_DETAIL_AUDIT;

	memcpy(text, detail.ptr, n);
	text[n] = '\0';
	cJSON_AddNumberToObject(o, "iat", (double)iat);
	cJSON_AddStringToObject(o, "detail", text);
	cJSON_AddStringToObject(o, "action", revoke ? "revoke" : active ? "alert" : "none");
	json = cJSON_PrintUnformatted(o);
	if (json == NULL ||
	    reg_audit_append(s->reg, KEYSERVER_ACTOR, "tamper.alert", name, json, &d) < 0)
		note("tamper alert of %s: audit failed %s", name, d.msg);
	free(json);
	cJSON_Delete(o);
	if (!revoke)
		return;
	if (reg_thing_revoke(s->reg, KEYSERVER_ACTOR, name, 1 /* keyCompromise */, &d) < 0 ||
	    sweep_revoked(s, false, &d) < 0)
		note("revoking %s after its tamper alert failed: %s", name, d.msg);
}

static void on_alert(struct serve *s, const struct moat_message *m)
{
	struct moat_bytes id, detail;
	struct cose_sign1 sig;
	struct alert_keys keys = {.n = 0};
	struct reg_thing *t = malloc(sizeof(*t));
	struct moat_diag d = {0};
	char name[KEYREL_CLIENT_ID_MAX + 1];
	const char *why = "out of memory";
	int64_t iat;
	bool ok = false;

	if (t != NULL && keyrel_alert_decode((struct moat_bytes){m->payload, m->payload_len},
					     moat_bytes_str(m->topic), &id, &iat, &detail, &sig,
					     &why) == MOAT_OK) {
		memcpy(name, id.ptr, id.len);
		name[id.len] = '\0';
		why = "no such thing, or none of its keys signed it";
		if (reg_name_is_valid(name) && reg_thing_get(s->reg, name, t, &d) == MOAT_OK &&
		    reg_key_list(s->reg, name, collect_ed25519, &keys, &d) == MOAT_OK)
			for (size_t i = 0; i < keys.n && !ok; i++)
				ok = cose_sign1_verify(&sig, keys.pub[i], moat_bytes_str(m->topic),
						       NULL) == MOAT_OK;
	}
	if (ok)
		act_on_alert(s, name, iat, detail, t->status == REG_ACTIVE);
	else
		note("tamper alert on %s ignored: %s", m->topic, why);
	free(t);
}

static void on_message(void *arg, const struct moat_message *m)
{
	struct serve *s = arg;

	if (strncmp(m->topic, KEYREL_REQ_PREFIX, strlen(KEYREL_REQ_PREFIX)) == 0)
		on_request(s, m);
	else if (strncmp(m->topic, "alerts/", 7) == 0)
		on_alert(s, m);
}

static void on_connect(void *arg, uint8_t rc, bool session_present)
{
	struct serve *s = arg;
	const struct moat_sub_options o = {.qos = 1};

	(void)session_present;
	if (rc != 0) {
		note("the broker refused the connection (reason 0x%02x)", rc);
		return;
	}
	if (moat_subscribe(s->mc, REQ_FILTER, &o, NULL) < 0 ||
	    moat_subscribe(s->mc, ALERT_FILTER, &o, NULL) < 0)
		note("subscribing to %s and %s failed", REQ_FILTER, ALERT_FILTER);
	else
		note("connected; serving %s and %s", REQ_FILTER, ALERT_FILTER);
}

static void on_subscribe(void *arg, uint16_t packet_id, const uint8_t *codes, size_t n)
{
	(void)arg, (void)packet_id;
	for (size_t i = 0; i < n; i++)
		if (codes[i] >= 0x80)
			note("the broker refused a subscription (reason 0x%02x): is this the "
			     "broker's sc_username?",
			     codes[i]);
}

static void on_disconnect(void *arg, int err, uint8_t rc)
{
	(void)arg;
	note("disconnected from the broker (%s, reason 0x%02x); reconnecting", moat_strerror(err),
	     rc);
}

/* ---- the admin hooks' mailbox ---- */

static int find_group(struct serve *s, const char *filter, uint8_t group_id[COSE_GROUP_ID_LEN],
		      struct moat_diag *d)
{
	struct group_list l;
	int rc = list_groups(s, NULL, &l, d);

	if (rc == MOAT_OK)
		rc = MOAT_E_NOTFOUND;
	for (size_t i = 0; rc == MOAT_E_NOTFOUND && i < l.n; i++)
		if (strcmp(l.v[i].filter, filter) == 0) {
			memcpy(group_id, l.v[i].group_id, COSE_GROUP_ID_LEN);
			rc = MOAT_OK;
		}
	free(l.v);
	if (rc == MOAT_E_NOTFOUND)
		snprintf(d->msg, sizeof(d->msg), "no group for %.200s yet (no key released for it)",
			 filter);
	return rc;
}

static int run_job(struct serve *s, enum job_kind kind, const char *arg, struct moat_diag *d)
{
	uint8_t gid[COSE_GROUP_ID_LEN];
	int rc;

	switch (kind) {
	case JOB_REVOKED:
		return sweep_revoked(s, false, d);
	case JOB_ROTATE:
		rc = find_group(s, arg, gid, d);
		return rc == MOAT_OK ? rotate(s, gid, "admin", d) : rc;
	case JOB_POLICIES:
		return load_policies(s, true, true, d);
	default:
		return MOAT_E_INVAL;
	}
}

/* Runs the job an admin hook posted, if any (main thread). */
static void serve_mailbox(struct serve *s)
{
	struct moat_diag d = {0};
	char arg[MAILBOX_ARG_MAX + 1];
	int kind;

	if (mailbox_take(&s->box, &kind, arg))
		mailbox_done(&s->box, run_job(s, (enum job_kind)kind, arg, &d), &d);
}

int serve_hook_thing_revoked(void *arg, const char *name, struct moat_diag *d)
{
	return mailbox_post(&((struct serve *)arg)->box, JOB_REVOKED, name, d);
}

int serve_hook_rotate(void *arg, const char *filter, struct moat_diag *d)
{
	return mailbox_post(&((struct serve *)arg)->box, JOB_ROTATE, filter, d);
}

int serve_hook_policies_changed(void *arg, struct moat_diag *d)
{
	return mailbox_post(&((struct serve *)arg)->box, JOB_POLICIES, NULL, d);
}

/* ---- start, loop, stop ---- */

static int read_password(const char *path, char out[PASSWORD_MAX + 1], struct moat_diag *d)
{
	char *text = NULL;
	size_t len = 0, n;
	int rc = conf_read_file(path, PASSWORD_MAX, &text, &len, d);

	if (rc < 0)
		return rc;
	n = strcspn(text, "\r\n");
	memcpy(out, text, n);
	out[n] = '\0';
	OPENSSL_cleanse(text, len);
	free(text);
	return MOAT_OK;
}

static int open_state(struct serve *s, const struct serve_opts *o, struct moat_diag *d)
{
	struct keyserver_config cfg = {
	    .epoch_period_s = o->epoch_period_s,
	    .grace_s = o->grace_s,
	    .rate_per_s = o->rate_per_s,
	    .token_audience = o->token_audience,
	};
	char path[4096];
	int rc;

	snprintf(path, sizeof(path), "%s/registry.db", o->dir);
	rc = reg_open(&s->reg, path, d);
	snprintf(path, sizeof(path), "%s/store.key", o->dir);
	if (rc == MOAT_OK)
		rc = groups_store_key_load(path, true, s->store_key, d);
	if (rc == MOAT_OK)
		rc = sc_keys_load(o->dir, &s->keys, d);
	if (rc == MOAT_OK)
		rc = sc_keys_open(&s->signer, o->dir, &s->keys, SC_KEY_TOKEN, d);
	cfg.token_signer = s->signer; /* tokens and answers: the same Ed25519 key */
	if (rc == MOAT_OK)
		rc =
		    keyserver_create(&s->ks, s->reg, s->store_key, keyserver_sign, s->signer, &cfg);
	if (o->policy_file != NULL)
		snprintf(s->policy_path, sizeof(s->policy_path), "%s", o->policy_file);
	else
		snprintf(s->policy_path, sizeof(s->policy_path), "%s/policies.json", o->dir);
	if (rc == MOAT_OK)
		rc = load_policies(s, true, false, d);
	if (rc == MOAT_OK && !s->have_policy_file)
		note("%s: no policy file; every key request is refused until it exists",
		     s->policy_path);
	if (rc == MOAT_OK)
		rc = sweep_revoked(s, true, d);
	return rc;
}

/* Starts the admin channel `moat ctl` talks to, with its own registry
 * handle, CA and token signer, and the hooks below for what only this
 * thread may do. */
static int start_admin(struct serve *s, const struct serve_opts *o, struct moat_diag *d)
{
	struct sc_admin_ctx *ctx = &s->admin_ctx;
	char path[4096];
	int rc;

	*ctx = (struct sc_admin_ctx){
	    .dir = o->dir,
	    .policy_file = s->policy_path,
	    .broker_url = o->broker_url,
	    .hooks = {.arg = s,
		      .thing_revoked = serve_hook_thing_revoked,
		      .rotate = serve_hook_rotate,
		      .policies_changed = serve_hook_policies_changed},
	    .token_audience = o->token_audience,
	};
	snprintf(path, sizeof(path), "%s/registry.db", o->dir);
	rc = reg_open(&ctx->reg, path, d);
	if (rc == MOAT_OK)
		rc = sc_keys_open(&s->admin_ca_key, o->dir, &s->keys, SC_KEY_CA, d);
	snprintf(path, sizeof(path), "%s/ca.pem", o->dir);
	if (rc == MOAT_OK)
		rc = ca_load(&ctx->ca, s->admin_ca_key, path, d);
	if (rc == MOAT_OK)
		rc = sc_keys_open(&s->admin_token_key, o->dir, &s->keys, SC_KEY_TOKEN, d);
	ctx->token_signer = s->admin_token_key;
	if (rc == MOAT_OK)
		rc = sc_admin_start(&s->admin, ctx, d);
	return rc;
}

static void stop_admin(struct serve *s)
{
	sc_admin_stop(s->admin);
	ca_destroy(s->admin_ctx.ca);
	signer_destroy(s->admin_ca_key);
	signer_destroy(s->admin_token_key);
	reg_close(s->admin_ctx.reg);
}

static int open_client(struct serve *s, const struct serve_opts *o, struct moat_diag *d)
{
	char password[PASSWORD_MAX + 1] = "";
	const struct moat_callbacks cb = {
	    .arg = s,
	    .on_connect = on_connect,
	    .on_message = on_message,
	    .on_subscribe = on_subscribe,
	    .on_disconnect = on_disconnect,
	};
	struct moat_client_opts co = {
	    .host = o->host != NULL ? o->host : "127.0.0.1",
	    .port = o->port != 0 ? o->port : 1883,
	    .client_id = "moat-sc",
	    .username = o->username,
	    .keep_alive_s = 30,
	    /* a session the broker keeps (1 day): tamper alerts and key requests
	     * sent while this daemon reconnects wait for it, not lost */
	    .clean_start = false,
	    .session_expiry_s = 86400,
	    .version = 5,
	    .auto_reconnect = true,
	    .reconnect_max_ms = 5000,
	    .offline_max_messages = 10000,
	    .offline_max_bytes = 16u << 20,
	};
	char diag[256] = "";
	int rc = MOAT_OK;

	if (o->password_file != NULL) {
		rc = read_password(o->password_file, password, d);
		co.password = password;
	}
	if (rc == MOAT_OK) {
		rc = moat_client_open(&s->mc, &co, &cb, diag, sizeof(diag));
		if (rc < 0)
			snprintf(d->msg, sizeof(d->msg), "broker client: %s", diag);
	}
	OPENSSL_cleanse(password, sizeof(password));
	if (rc == MOAT_OK && moat_connect(s->mc) < 0) {
		snprintf(d->msg, sizeof(d->msg), "%s: the broker's host does not resolve", co.host);
		rc = MOAT_E_IO;
	}
	return rc;
}

/* What goes out first: the revocation list and every group's current epoch. */
static int announce_all(struct serve *s, struct moat_diag *d)
{
	struct group_list l = {0};
	int rc = push_revlist(s, d);

	if (rc == MOAT_OK)
		rc = list_groups(s, NULL, &l, d);
	for (size_t i = 0; rc == MOAT_OK && i < l.n; i++)
		rc = announce(s, l.v[i].group_id, l.v[i].epoch, l.v[i].filter);
	free(l.v);
	return rc;
}

static void loop(struct serve *s)
{
	int64_t next_policy = 0, next_revoked = 0, last_due = 0;
	struct moat_diag d = {0};

	while (!stop_flag) {
		int64_t now;

		if (moat_loop_once(s->mc, LOOP_MS) == MOAT_E_CLOSED) {
			note("the broker connection closed for good");
			break;
		}
		now = (int64_t)time(NULL);
		if (hup_flag || now >= next_policy) {
			if (load_policies(s, hup_flag != 0, true, &d) < 0)
				note("policy file not loaded: %s", d.msg);
			hup_flag = 0;
			next_policy = now + POLICY_CHECK_S;
		}
		if (now >= next_revoked) {
			if (sweep_revoked(s, false, &d) < 0)
				note("revocation sweep failed: %s", d.msg);
			next_revoked = now + REVOKED_CHECK_S;
		}
		if (now != last_due) {
			rotate_due(s, now);
			last_due = now;
		}
		serve_mailbox(s);
	}
}

static void close_state(struct serve *s)
{
	mailbox_stop(&s->box); /* a hook waiting for this thread returns */
	stop_admin(s);
	if (s->mc != NULL && moat_is_connected(s->mc))
		moat_disconnect(s->mc, 0);
	moat_client_destroy(s->mc);
	keyserver_destroy(s->ks);
	topic_policy_set_destroy(s->policies);
	signer_destroy(s->signer);
	reg_close(s->reg);
	OPENSSL_cleanse(s->store_key, sizeof(s->store_key));
	for (size_t i = 0; i < s->n_revoked; i++)
		free(s->revoked[i]);
	free(s->revoked);
	mailbox_fini(&s->box);
}

int serve_run(const struct serve_opts *o, struct moat_diag *d)
{
	struct serve s = {.o = o};
	struct sigaction sa = {.sa_handler = on_signal};
	int rc;

	mailbox_init(&s.box, HOOK_WAIT_S);
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	rc = open_state(&s, o, d);
	if (rc == MOAT_OK)
		rc = start_admin(&s, o, d);
	if (rc == MOAT_OK)
		rc = open_client(&s, o, d);
	if (rc == MOAT_OK) {
		rotate_changed(&s, s.policies); /* policy edits made while stopped */
		rc = announce_all(&s, d);
	}
	if (rc == MOAT_OK) {
		note("serving key requests for %s via %s:%u", o->dir,
		     o->host != NULL ? o->host : "127.0.0.1", o->port != 0 ? o->port : 1883);
		loop(&s);
	}
	close_state(&s);
	return rc;
}
