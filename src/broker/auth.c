/*
 * Authentication at CONNECT: which method applies (certificate identity,
 * enhanced authentication, token, password file, anonymous), identities
 * that could widen an ACL pattern, slow password checks handed to the
 * verification pool, and refusals delayed per address so guessing gets
 * slower with each failure. While a decision is pending the connection is
 * not read; the CONNECT is kept and replayed through conn_process once the
 * client is authenticated, so the rest of CONNECT handling (including the
 * handoff to the worker owning the session) is the same for every method.
 * Every decision goes to the audit log.
 */
#include "broker/broker.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <moat/error.h>

#include <openssl/crypto.h>

#include "base/base64.h"
#include "base/clock.h"
#include "base/log.h"
#include "base/text.h"
#include "broker/addr_limits.h"
#include "broker/audit.h"
#include "broker/security.h"
#include "broker/verify_pool.h"
#include "auth/scram.h"
#include "net/tls.h"

/* Refusals and lost results repeat per client: at most 10 lines per 10 s each. */
static struct log_limiter refusal_log, lost_log;

struct auth_ctx {
	uint8_t *connect;	/* the CONNECT's bytes, replayed once authenticated */
	size_t connect_len;
	char client_id[128];	/* for the audit log, truncated */
	uint8_t refuse_rc;	/* a refusal waiting for its delay to end */
	char refuse_why[160];	/* a copy: token reasons live in a per-thread buffer */
	struct auth_job *job;	/* out in the pool */
	/* enhanced authentication (SCRAM-SHA-256) */
	bool scram_started;
	struct scram_server scram;
	struct buf server_final;	/* goes in the CONNACK's Authentication Data */
};

/* A password check in the verification pool. It owns copies of what it
 * checks; the connection may close meanwhile (then conn is NULL). */
struct auth_job {
	struct verify_job base;	/* first: the pool hands back this pointer */
	struct conn *conn;
	struct worker *w;
	struct security *sec;
	char *username;
	uint8_t *password;
	size_t password_len;
	int result;
};

static void audit_auth(const struct conn *c, const char *client_id, const char *method,
		       const char *result, const char *reason)
{
	struct audit_event e = { .event = "auth", .result = result, .reason = reason,
				 .listener = c->listener_port, .address = c->peer,
				 .client_id = client_id, .username = c->username, .method = method };

	audit_write(&e);
}

static struct auth_ctx *ctx_of(struct conn *c)
{
	if (c->auth == NULL)
		c->auth = calloc(1, sizeof(*c->auth));
	return c->auth;
}

static void ctx_free(struct conn *c)
{
	if (c->auth == NULL)
		return;
	if (c->auth->job != NULL)
		c->auth->job->conn = NULL;	/* it comes back and is freed then */
	if (c->auth->scram_started)
		scram_server_fini(&c->auth->scram);
	buf_fini(&c->auth->server_final);
	free(c->auth->connect);
	free(c->auth);
	c->auth = NULL;
}

/* Keeps the CONNECT's bytes for the replay. */
static int keep_connect(struct conn *c, struct moat_bytes raw)
{
	struct auth_ctx *a = ctx_of(c);

	if (a == NULL)
		return MOAT_E_NOMEM;
	free(a->connect);
	a->connect = malloc(raw.len);
	if (a->connect == NULL)
		return MOAT_E_NOMEM;
	memcpy(a->connect, raw.ptr, raw.len);
	a->connect_len = raw.len;
	return MOAT_OK;
}

/* Refuses after a delay that grows with the address's failures in a row. */
static int refuse_later(struct conn *c, const char *client_id, const char *method, uint8_t rc,
			const char *why, uint64_t now_ms)
{
	struct auth_ctx *a = ctx_of(c);
	uint32_t delay = addr_auth_failed(&c->b->addrs, c->peer, now_ms);

	atomic_fetch_add_explicit(&c->b->auth_failures, 1, memory_order_relaxed);

	audit_auth(c, client_id, method, "deny", why);
	if (log_limiter_allow(&refusal_log, 10, 10))	/* the audit log keeps every one */
		log_notice("client %s (%s): authentication failed (%s); answering in %u ms",
			   client_id != NULL ? client_id : "?", c->peer, why, delay);
	if (a == NULL)
		return conn_refuse_connect(c, rc, why);
	if (client_id != NULL)
		snprintf(a->client_id, sizeof(a->client_id), "%s", client_id);
	a->refuse_rc = rc;
	snprintf(a->refuse_why, sizeof(a->refuse_why), "%s", why);
	c->auth_state = AUTH_PENDING;
	c->auth_hold = true;
	c->hold_until_ms = now_ms + delay;
	return MOAT_E_AGAIN;
}

static void succeed(struct conn *c, const char *client_id, const char *method)
{
	addr_auth_succeeded(&c->b->addrs, c->peer);
	audit_auth(c, client_id, method, "allow", NULL);
	c->auth_state = AUTH_OK;
}

/* ACL patterns substitute %c and %u: an identity holding a wildcard or a
 * level separator could widen them (CVE-2017-7650). */
static bool safe_identity(struct moat_bytes b)
{
	for (size_t i = 0; i < b.len; i++)
		if (b.ptr[i] == '+' || b.ptr[i] == '#' || b.ptr[i] == '/' || b.ptr[i] == '\0')
			return false;
	return true;
}

static void job_run(struct verify_job *vj)
{
	struct auth_job *job = (struct auth_job *)vj;

	job->result = security_check_password(job->sec, job->username, job->password, job->password_len);
}

static void job_done(struct verify_job *vj)
{
	struct auth_job *job = (struct auth_job *)vj;
	struct inbox_item item = { .job = job };

	if (route_post(job->w, &item) < 0 && log_limiter_allow(&lost_log, 10, 10))
		log_err("verification result lost: out of memory");	/* the client times out */
}

static void job_free(struct auth_job *job)
{
	if (job->password != NULL)
		memset(job->password, 0, job->password_len);	/* wiped before free */
	free(job->password);
	free(job->username);
	security_unref(job->sec);
	free(job);
}

static int check_password_async(struct conn *c, const struct mqtt_connect *k, const char *client_id,
				struct moat_bytes raw, uint64_t now_ms)
{
	struct auth_job *job;
	int rc = keep_connect(c, raw);

	if (rc < 0)
		return rc;
	job = calloc(1, sizeof(*job));
	if (job == NULL)
		return MOAT_E_NOMEM;
	job->base.run = job_run;
	job->base.done = job_done;
	job->conn = c;
	job->w = c->w;
	job->sec = security_ref(c->w->security);
	job->username = text_dup_bytes(k->username);
	job->password = malloc(k->password.len + 1);
	job->password_len = k->password.len;
	if (job->username == NULL || job->password == NULL) {
		job_free(job);
		return MOAT_E_NOMEM;
	}
	memcpy(job->password, k->password.ptr, k->password.len);
	if (verify_pool_submit(&c->b->pool, &job->base) < 0) {
		job_free(job);
		audit_auth(c, client_id, "password", "deny", "verification queue full");
		return conn_refuse_connect(c, MQTT_RC_SERVER_BUSY, "server busy, try again later");
	}
	c->auth->job = job;
	snprintf(c->auth->client_id, sizeof(c->auth->client_id), "%s", client_id);
	c->auth_state = AUTH_PENDING;
	c->auth_hold = true;
	c->hold_until_ms = UINT64_MAX;	/* until the job comes back */
	(void)now_ms;
	return MOAT_E_AGAIN;
}

/* Whether the TLS client certificate of <c> is the one a token's cnf names
 * (RFC 8705 §3: the base64url SHA-256 of its DER). */
static bool bound_certificate_matches(const struct conn *c, const char *x5t_s256)
{
	uint8_t digest[32];
	char text[48];
	size_t n;

	if (c->tls == NULL || tls_filter_peer_cert_sha256(c->tls, digest) != MOAT_OK)
		return false;
	n = b64_encode(digest, sizeof(digest), text, B64_URL);
	return strlen(x5t_s256) == n && CRYPTO_memcmp(text, x5t_s256, n) == 0;
}

/* Verifies <token> for client <client_id> on <c> into <t>: signature,
 * claims, client id, certificate binding, a username ACL patterns can use.
 * MOAT_OK, or an error with *<rc> (CONNACK code) and *<why> set. */
static int verify_token(struct conn *c, struct moat_bytes token, const char *client_id,
			struct token_identity *t, uint8_t *rc, const char **why)
{
	*why = NULL;
	*rc = MQTT_RC_BAD_USER_PASS;
	if (security_check_token(c->w->security, token.ptr, token.len, (int64_t)time(NULL), t, why) < 0) {
		if (*why == NULL)
			*why = "token refused";
		return MOAT_E_DENIED;
	}
	if (t->client_id != NULL && strcmp(t->client_id, client_id) != 0) {
		*rc = MQTT_RC_NOT_AUTHORIZED;
		*why = "the token is for another client id";
	} else if (t->cnf_x5t_s256 != NULL && !bound_certificate_matches(c, t->cnf_x5t_s256)) {
		*why = "the token is bound to another client certificate (cnf x5t#S256)";
	} else if (!safe_identity(moat_bytes_str(t->username)) && c->w->security->acl != NULL) {
		*why = "token username contains + # or /";
	}
	if (*why != NULL) {
		token_identity_fini(t);
		return MOAT_E_DENIED;
	}
	return MOAT_OK;
}

/* Gives <c> the identity of verified token <t> (which is emptied). */
static void take_token_identity(struct conn *c, struct token_identity *t)
{
	free(c->username);
	strv_free(c->roles);
	strv_free(c->attrs);
	c->username = t->username;
	c->roles = t->roles;
	c->attrs = t->attrs;
	c->expires_s = t->expires_s;
	free(c->jti);
	c->jti = t->jti;
	t->jti = NULL;
	t->username = NULL;
	t->roles = t->attrs = NULL;
	token_identity_fini(t);
}

static int check_token(struct conn *c, struct moat_bytes token, const char *client_id, uint64_t now_ms)
{
	struct token_identity t = { 0 };
	const char *why;
	uint8_t rc;

	if (verify_token(c, token, client_id, &t, &rc, &why) < 0)
		return refuse_later(c, client_id, "token", rc, why, now_ms);
	take_token_identity(c, &t);
	succeed(c, client_id, "token");
	return MOAT_OK;
}

static const char scram_method[] = "SCRAM-SHA-256";
/* A token as MQTT 5 enhanced authentication: the CONNECT's (or a
 * re-authentication's) Authentication Data is the JWT, answered at once. */
static const char jwt_method[] = "moat-jwt";

static bool method_is(struct moat_bytes m, const char *name)
{
	return m.len == strlen(name) && memcmp(m.ptr, name, m.len) == 0;
}

/* MQTT 5 enhanced authentication: the CONNECT names the method and carries
 * the client-first-message; the server answers AUTH 0x18 with the
 * server-first-message and waits for the client's AUTH (auth_on_packet). */
static int scram_begin(struct conn *c, const struct mqtt_connect *k, const char *id, struct moat_bytes raw,
		       uint64_t now_ms)
{
	struct mqtt_packet p = { .type = MQTT_AUTH };
	struct buf out = { 0 };
	struct auth_ctx *a;
	const char *why = NULL;
	char method[64];
	int rc;

	snprintf(method, sizeof(method), "%.*s", (int)(k->props.auth_method.len < 60 ? k->props.auth_method.len : 60),
		 (const char *)k->props.auth_method.ptr);
	if (scram_method_check(method, &why) < 0 || c->w->security->passwd == NULL) {
		audit_auth(c, id, method, "deny", "unsupported authentication method");
		return conn_refuse_connect(c, MQTT_RC_BAD_AUTH_METHOD,
					   why != NULL ? why : "enhanced authentication needs a password_file with SCRAM entries");
	}
	rc = keep_connect(c, raw);
	if (rc < 0)
		return rc;
	a = c->auth;
	snprintf(a->client_id, sizeof(a->client_id), "%s", id);
	scram_server_init(&a->scram);
	a->scram_started = true;
	c->auth_scram = true;
	rc = security_scram_start(c->w->security, &a->scram, k->props.auth_data.ptr, k->props.auth_data.len, &out);
	if (rc < 0) {
		buf_fini(&out);
		if (rc == MOAT_E_NOMEM)
			return rc;
		return refuse_later(c, id, "scram-sha-256", MQTT_RC_BAD_USER_PASS,
				    a->scram.why != NULL ? a->scram.why : "bad SCRAM client-first-message", now_ms);
	}
	p.auth.rc = MQTT_RC_CONTINUE_AUTH;
	props_set_auth(&p.auth.props, moat_bytes_str(scram_method),
		       (struct moat_bytes){ buf_head(&out), buf_used(&out) });
	rc = conn_send_packet(c, &p);
	buf_fini(&out);
	if (rc < 0)
		return rc;
	c->auth_state = AUTH_CONTINUE;
	return MOAT_E_AGAIN;
}

int auth_on_packet(struct conn *c, const struct mqtt_auth *p, uint64_t now_ms)
{
	struct auth_ctx *a = c->auth;
	struct moat_bytes m = p->props.auth_method;
	int rc;

	if (a == NULL || !a->scram_started || p->rc != MQTT_RC_CONTINUE_AUTH ||
	    m.len != strlen(scram_method) || memcmp(m.ptr, scram_method, m.len) != 0)
		return conn_refuse_connect(c, MQTT_RC_PROTOCOL_ERROR,
					   "AUTH must continue with the method the CONNECT named"); /* [MQTT-4.12.0-6] */
	rc = scram_server_finish(&a->scram, p->props.auth_data.ptr, p->props.auth_data.len, &a->server_final);
	if (rc < 0) {
		if (rc == MOAT_E_NOMEM)
			return rc;
		return refuse_later(c, a->client_id, "scram-sha-256", MQTT_RC_BAD_USER_PASS,
				    rc == MOAT_E_DENIED ? "wrong username or password"
							: (a->scram.why != NULL ? a->scram.why : "bad SCRAM message"),
				    now_ms);
	}
	free(c->username);
	c->username = strdup(a->scram.username);
	if (c->username == NULL)
		return MOAT_E_NOMEM;
	succeed(c, a->client_id, "scram-sha-256");
	c->replay_connect = true;
	return MOAT_OK;
}

void auth_connack_props(struct conn *c, struct mqtt_props *ack)
{
	struct auth_ctx *a = c->auth;

	if (c->auth_jwt) {
		ack->auth_method = moat_bytes_str(jwt_method);
		props_set(ack, MQTT_PROP_AUTH_METHOD);
		return;
	}

	if (a == NULL || !a->scram_started || buf_used(&a->server_final) == 0)
		return;
	props_set_auth(ack, moat_bytes_str(scram_method),
		       (struct moat_bytes){ buf_head(&a->server_final), buf_used(&a->server_final) });
}

int auth_connect(struct conn *c, const struct mqtt_connect *k, struct moat_bytes client_id,
		 struct moat_bytes raw, uint64_t now_ms)
{
	const struct security *sec = c->w->security;
	const struct moat_config *cfg = c->b->cfg;
	char id[128];

	snprintf(id, sizeof(id), "%.*s", (int)(client_id.len < 100 ? client_id.len : 100),
		 (const char *)client_id.ptr);
	if (c->auth_state == AUTH_CONTINUE)
		return conn_refuse_connect(c, MQTT_RC_PROTOCOL_ERROR, "second CONNECT during authentication");
	if (c->refuse_rc != 0)
		return conn_refuse_connect(c, c->refuse_rc, c->refuse_why);
	if (sec->acl != NULL && (!safe_identity(client_id) || (k->has_username && !safe_identity(k->username)))) {
		audit_auth(c, id, NULL, "deny", "client id or username contains + # or /");
		return conn_refuse_connect(c, safe_identity(client_id) ? MQTT_RC_BAD_USER_PASS
								       : MQTT_RC_CLIENT_ID_INVALID,
					   "client id and username may not contain + # or / when ACLs are in use");
	}
	if (c->lctx != NULL && (c->lctx->conf->tls.use_identity_as_username ||
				c->lctx->conf->tls.use_subject_as_username)) {
		char name[512];

		/* mosquitto: the certificate names the user; a given username is ignored */
		if (c->tls == NULL ||
		    tls_filter_peer_identity(c->tls, c->lctx->conf->tls.use_subject_as_username ? TLS_ID_SUBJECT
												  : TLS_ID_CN,
					     name, sizeof(name)) < 0) {
			audit_auth(c, id, "certificate", "deny", "no usable client certificate identity");
			return conn_refuse_connect(c, MQTT_RC_NOT_AUTHORIZED, "no client certificate identity");
		}
		if (sec->acl != NULL && !safe_identity(moat_bytes_str(name))) {
			audit_auth(c, id, "certificate", "deny", "certificate identity contains + # or /");
			return conn_refuse_connect(c, MQTT_RC_BAD_USER_PASS,
						   "certificate identity may not contain + # or / when ACLs are in use");
		}
		free(c->username);
		c->username = strdup(name);
		if (c->username == NULL)
			return MOAT_E_NOMEM;
		succeed(c, id, "certificate");
		return MOAT_OK;
	}
	if (method_is(k->props.auth_method, jwt_method)) {
		if (sec->tokens == NULL) {
			audit_auth(c, id, jwt_method, "deny", "no auth_token_key configured");
			return conn_refuse_connect(c, MQTT_RC_BAD_AUTH_METHOD,
						   "moat-jwt needs auth_token_key in the broker's configuration");
		}
		c->auth_jwt = true;
		return check_token(c, k->props.auth_data, id, now_ms);
	}
	if (k->props.auth_method.len > 0)
		return scram_begin(c, k, id, raw, now_ms);
	if (k->has_password && sec->tokens != NULL && security_is_token(sec, k->password.ptr, k->password.len))
		return check_token(c, k->password, id, now_ms);
	if (k->has_username) {
		free(c->username);
		c->username = text_dup_bytes(k->username);
		if (c->username == NULL)
			return MOAT_E_NOMEM;
	}
	if (k->has_username && sec->passwd != NULL) {
		if (!k->has_password)
			return refuse_later(c, id, "password", MQTT_RC_BAD_USER_PASS,
					    "no password given", now_ms);
		return check_password_async(c, k, id, raw, now_ms);
	}
	if (!cfg->allow_anonymous)
		return refuse_later(c, id, k->has_username ? "password" : "anonymous", MQTT_RC_NOT_AUTHORIZED,
				    k->has_username ? "no password file to check the password against"
						    : "anonymous access is off (allow_anonymous false)",
				    now_ms);
	succeed(c, id, k->has_username ? "unchecked username" : "anonymous");
	return MOAT_OK;
}

int auth_replay_connect(struct conn *c)
{
	struct auth_ctx *a = c->auth;
	struct buf in = { 0 };

	if (buf_append(&in, a->connect, a->connect_len) < 0 ||
	    buf_append(&in, buf_head(&c->in), buf_used(&c->in)) < 0) {
		buf_fini(&in);
		return MOAT_E_NOMEM;
	}
	buf_fini(&c->in);
	c->in = in;
	return MOAT_OK;
}

void auth_job_returned(struct worker *w, struct auth_job *job)
{
	struct conn *c = job->conn;
	uint64_t now = clock_mono_ms();

	(void)w;
	if (c != NULL && !c->closing) {
		c->auth->job = NULL;
		if (job->result == MOAT_OK) {
			succeed(c, c->auth->client_id, "password");
			c->auth_hold = false;
			c->replay_connect = true;
			server_release_hold(c, now);
		} else if (refuse_later(c, c->auth->client_id, "password", MQTT_RC_BAD_USER_PASS,
					"wrong username or password", now) == MOAT_E_AGAIN) {
			server_release_hold(c, now);	/* held again, until the delay ends */
		}
	} else if (c != NULL) {
		c->auth->job = NULL;
	}
	job_free(job);
}

const char *auth_assigned_client_id(const struct conn *c)
{
	return c->auth != NULL && c->auth->connect != NULL && c->auth->client_id[0] != '\0'
		       ? c->auth->client_id
		       : NULL;
}

void auth_hold_expired(struct conn *c)
{
	struct auth_ctx *a = c->auth;

	c->auth_hold = false;
	if (a != NULL && a->refuse_rc != 0)
		conn_refuse_connect(c, a->refuse_rc, a->refuse_why);
}

void auth_conn_closed(struct conn *c)
{
	ctx_free(c);
	free(c->username);
	free(c->jti);
	c->username = c->jti = NULL;
	strv_free(c->roles);
	strv_free(c->attrs);
	c->roles = c->attrs = NULL;
}

void auth_connected(struct conn *c)
{
	ctx_free(c);
}

static bool same_name(const char *a, const char *b)
{
	return a == NULL || b == NULL ? a == b : strcmp(a, b) == 0;
}

int auth_reauthenticate(struct conn *c, const struct mqtt_auth *p)
{
	struct mqtt_packet ok = { .type = MQTT_AUTH };
	struct token_identity t = { 0 };
	const char *client_id = c->sess->client_id, *why;
	uint8_t rc;

	if (!c->auth_jwt) {
		conn_disconnect(c, MQTT_RC_PROTOCOL_ERROR,
				c->auth_scram ? "SCRAM-SHA-256 re-authentication is not supported; reconnect"
					      : "AUTH without enhanced authentication at CONNECT");
		return MOAT_E_PROTOCOL;
	}
	if (p->rc != MQTT_RC_REAUTHENTICATE || !method_is(p->props.auth_method, jwt_method)) {
		conn_disconnect(c, MQTT_RC_PROTOCOL_ERROR,
				"re-authentication must use reason 0x19 and the CONNECT's method"); /* [MQTT-4.12.1-1] */
		return MOAT_E_PROTOCOL;
	}
	if (verify_token(c, p->props.auth_data, client_id, &t, &rc, &why) == MOAT_OK &&
	    !same_name(t.username, c->username)) {
		token_identity_fini(&t);
		why = "re-authentication names another user";
	}
	if (why != NULL) {
		static struct log_limiter limiter;

		if (log_limiter_allow(&limiter, 10, 10))
			log_notice("client %s: re-authentication refused: %s", client_id, why);
		audit_auth(c, client_id, "moat-jwt re-authentication", "deny", why);
		conn_disconnect(c, MQTT_RC_NOT_AUTHORIZED, why);
		return MOAT_E_DENIED;
	}
	take_token_identity(c, &t);
	if (authz_set_identity(c->sess, c) < 0)
		return MOAT_E_NOMEM;
	audit_auth(c, client_id, "moat-jwt re-authentication", "allow", NULL);
	ok.auth.rc = MQTT_RC_SUCCESS;
	ok.auth.props.auth_method = moat_bytes_str(jwt_method);
	props_set(&ok.auth.props, MQTT_PROP_AUTH_METHOD);
	return conn_send_packet(c, &ok);
}
