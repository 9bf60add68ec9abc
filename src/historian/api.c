/*
 * The JSON API (api.h): routing by method and path, the session and CSRF
 * checks, strict query parameters, and the answers built with cJSON from
 * the API's storage handle (taken under app->api_lock).
 */
#include "historian/api.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth/passwd.h"
#include "historian/loginlimit.h"
#include "historian/metrics.h"
#include "historian/msg.h"
#include "historian/sse.h"
#include "moat/error.h"

enum { ALERTS_DEFAULT = 100, READINGS_DEFAULT = 1000, BUCKETS_DEFAULT = 60, HOUR_MS = 3600000 };

static void reply_json(struct http_reply *rp, unsigned status, cJSON *o)
{
	rp->status = status;
	rp->body = o != NULL ? cJSON_PrintUnformatted(o) : NULL;
	if (rp->body == NULL)
		rp->status = 500;
	cJSON_Delete(o);
}

static void reply_error(struct http_reply *rp, unsigned status, const char *msg)
{
	cJSON *o = cJSON_CreateObject();
	cJSON_AddStringToObject(o, "error", msg);
	reply_json(rp, status, o);
}

/* Adds <v> as a number, or null when it is NAN. */
static void add_number(cJSON *o, const char *key, double v)
{
	if (isnan(v))
		cJSON_AddNullToObject(o, key);
	else
		cJSON_AddNumberToObject(o, key, v);
}

static void add_relay(cJSON *o, const char *key, enum hist_relay r)
{
	if (hist_relay_name(r) != NULL)
		cJSON_AddStringToObject(o, key, hist_relay_name(r));
	else
		cJSON_AddNullToObject(o, key);
}

cJSON *api_reading_json(const struct hist_reading *r, bool with_device)
{
	cJSON *o = cJSON_CreateObject();

	if (o == NULL)
		return NULL;
	if (with_device)
		cJSON_AddStringToObject(o, "device", r->device);
	cJSON_AddNumberToObject(o, "time", (double)r->time_ms);
	add_number(o, "seq", r->seq < 0 ? NAN : (double)r->seq);
	add_number(o, "temperature", r->temperature);
	add_number(o, "humidity", r->humidity);
	add_relay(o, "relay", r->relay);
	return o;
}

/* A decimal integer parameter in [lo, hi]: 0 when absent (keeps *v), 1 when
 * set, -1 when malformed or out of range. */
static int query_int(const struct http_req *rq, const char *name, int64_t lo, int64_t hi,
		     int64_t *v)
{
	const char *s = http_query(rq, name);
	char *end;
	long long x;

	if (s == NULL)
		return 0;
	if (s[0] == '\0' || strlen(s) > 19 || strspn(s, "0123456789") != strlen(s))
		return -1;
	x = strtoll(s, &end, 10);
	if (*end != '\0' || x < lo || x > hi)
		return -1;
	*v = x;
	return 1;
}

/* from/to of a time range (default: the last hour); false with a 400 set. */
static bool query_range(const struct http_req *rq, struct http_reply *rp, int64_t *from,
			int64_t *to)
{
	*to = hist_now_ms() + 1;
	if (query_int(rq, "to", 0, INT64_C(1) << 50, to) < 0) {
		reply_error(rp, 400, "to: expected Unix milliseconds");
		return false;
	}
	*from = *to - HOUR_MS;
	if (query_int(rq, "from", 0, INT64_C(1) << 50, from) < 0) {
		reply_error(rp, 400, "from: expected Unix milliseconds");
		return false;
	}
	if (*from >= *to) {
		reply_error(rp, 400, "from must be before to");
		return false;
	}
	return true;
}

/* The count parameter <name> in 1..<max> (keeps *<v> when absent); false with a 400 set. */
static bool query_count(const struct http_req *rq, struct http_reply *rp, const char *name,
			int64_t max, int64_t *v)
{
	char msg[64];

	if (query_int(rq, name, 1, max, v) >= 0)
		return true;
	snprintf(msg, sizeof(msg), "%s: expected 1..%lld", name, (long long)max);
	reply_error(rp, 400, msg);
	return false;
}

struct dev_find {
	const char *name;
	bool found;
};

static int find_device_cb(void *arg, const struct hist_device *d)
{
	struct dev_find *f = arg;
	if (strcmp(d->name, f->name) == 0)
		f->found = true;
	return MOAT_OK;
}

/* True when the device <name> is stored; with the API lock held. */
static bool device_known(struct hist_app *app, const char *name)
{
	struct dev_find f = {.name = name};
	return hist_db_list_devices(app->api_db, find_device_cb, &f) == MOAT_OK && f.found;
}

static int device_cb(void *arg, const struct hist_device *d)
{
	cJSON *o = cJSON_CreateObject(), *list = arg;

	if (o == NULL)
		return MOAT_E_NOMEM;
	cJSON_AddStringToObject(o, "id", d->name);
	cJSON_AddBoolToObject(o, "online", d->online == HIST_ONLINE_YES);
	add_relay(o, "relay", d->relay);
	add_number(o, "last_seen", d->last_seen_ms > 0 ? (double)d->last_seen_ms : NAN);
	if (d->last.time_ms > 0)
		cJSON_AddItemToObject(o, "last", api_reading_json(&d->last, false));
	else
		cJSON_AddNullToObject(o, "last");
	cJSON_AddItemToArray(list, o);
	return MOAT_OK;
}

static int reading_cb(void *arg, const struct hist_reading *r)
{
	cJSON *o = api_reading_json(r, false);
	if (o == NULL)
		return MOAT_E_NOMEM;
	cJSON_AddItemToArray(arg, o);
	return MOAT_OK;
}

static int bucket_cb(void *arg, const struct hist_bucket *b)
{
	cJSON *o = cJSON_CreateObject();

	if (o == NULL)
		return MOAT_E_NOMEM;
	cJSON_AddStringToObject(o, "device", b->device);
	cJSON_AddNumberToObject(o, "time", (double)b->start_ms);
	add_number(o, "avg", b->t_avg);
	add_number(o, "min", b->t_min);
	add_number(o, "max", b->t_max);
	cJSON_AddNumberToObject(o, "count", (double)b->count);
	cJSON_AddItemToArray(arg, o);
	return MOAT_OK;
}

static int alert_cb(void *arg, const struct hist_alert *a)
{
	cJSON *o = cJSON_CreateObject();

	if (o == NULL)
		return MOAT_E_NOMEM;
	cJSON_AddNumberToObject(o, "id", (double)a->id);
	cJSON_AddStringToObject(o, "device", a->device);
	cJSON_AddNumberToObject(o, "time", (double)a->time_ms);
	cJSON_AddStringToObject(o, "kind", a->kind);
	cJSON_AddStringToObject(o, "detail", a->detail != NULL ? a->detail : "");
	cJSON_AddItemToArray(arg, o);
	return MOAT_OK;
}

/* A new object holding an empty array <key> (*<arr>). */
static cJSON *list_begin(const char *key, cJSON **arr)
{
	cJSON *o = cJSON_CreateObject();
	*arr = cJSON_AddArrayToObject(o, key);
	return o;
}

/* Answers <o> (200), or 500 when the listing that filled it failed (<rc>). */
static void finish_list(struct http_reply *rp, int rc, cJSON *o)
{
	if (rc < 0) {
		cJSON_Delete(o);
		reply_error(rp, 500, "storage error");
		return;
	}
	reply_json(rp, 200, o);
}

static void get_devices(const struct http_req *rq, struct http_reply *rp, const char *dev)
{
	(void)dev;
	cJSON *arr, *o = list_begin("devices", &arr);
	int rc;

	pthread_mutex_lock(&rq->app->api_lock);
	rc = hist_db_list_devices(rq->app->api_db, device_cb, arr);
	pthread_mutex_unlock(&rq->app->api_lock);
	finish_list(rp, rc, o);
}

static void get_readings(const struct http_req *rq, struct http_reply *rp, const char *dev)
{
	int64_t from, to, limit = READINGS_DEFAULT;
	cJSON *arr, *o;
	int rc;

	if (!query_range(rq, rp, &from, &to) ||
	    !query_count(rq, rp, "limit", HIST_LIMIT_MAX, &limit))
		return;
	o = list_begin("readings", &arr);
	cJSON_AddStringToObject(o, "device", dev);
	pthread_mutex_lock(&rq->app->api_lock);
	if (!device_known(rq->app, dev)) {
		pthread_mutex_unlock(&rq->app->api_lock);
		cJSON_Delete(o);
		reply_error(rp, 404, "unknown device");
		return;
	}
	rc = hist_db_readings(rq->app->api_db, dev, from, to, (unsigned)limit, reading_cb, arr);
	pthread_mutex_unlock(&rq->app->api_lock);
	finish_list(rp, rc, o);
}

static void get_overview(const struct http_req *rq, struct http_reply *rp, const char *dev)
{
	(void)dev;
	int64_t from, to, buckets = BUCKETS_DEFAULT;
	cJSON *arr, *o;
	int rc;

	if (!query_range(rq, rp, &from, &to) ||
	    !query_count(rq, rp, "buckets", HIST_BUCKETS_MAX, &buckets))
		return;
	o = list_begin("buckets", &arr);
	pthread_mutex_lock(&rq->app->api_lock);
	rc = hist_db_temperature_overview(rq->app->api_db, NULL, from, to, (unsigned)buckets,
					  bucket_cb, arr);
	pthread_mutex_unlock(&rq->app->api_lock);
	finish_list(rp, rc, o);
}

static void get_alerts(const struct http_req *rq, struct http_reply *rp, const char *dev)
{
	(void)dev;
	int64_t limit = ALERTS_DEFAULT;
	cJSON *arr, *o;
	int rc;

	if (!query_count(rq, rp, "limit", HIST_LIMIT_MAX, &limit))
		return;
	o = list_begin("alerts", &arr);
	pthread_mutex_lock(&rq->app->api_lock);
	rc = hist_db_recent_alerts(rq->app->api_db, (unsigned)limit, alert_cb, arr);
	pthread_mutex_unlock(&rq->app->api_lock);
	finish_list(rp, rc, o);
}

/* The answer and event object of a finished command. */
static cJSON *command_json(const struct cmdq_entry *e, bool with_device)
{
	cJSON *o = cJSON_CreateObject();

	cJSON_AddStringToObject(o, "id", e->id);
	if (with_device)
		cJSON_AddStringToObject(o, "device", e->device);
	cJSON_AddStringToObject(o, "state", e->on ? "on" : "off");
	cJSON_AddStringToObject(o, "status", hist_cmd_status_name(e->status));
	if (e->reason[0] != '\0')
		cJSON_AddStringToObject(o, "reason", e->reason);
	return o;
}

/* After a timeout: records it, or takes the status an acknowledgement set meanwhile. */
static void settle_timeout(struct hist_app *app, struct cmdq_entry *e)
{
	struct hist_command c;
	int rc;

	e->status = HIST_CMD_TIMEOUT;
	snprintf(e->reason, sizeof(e->reason), "no acknowledgement");
	pthread_mutex_lock(&app->api_lock);
	rc = hist_db_update_command(app->api_db, e->id, HIST_CMD_TIMEOUT, hist_now_ms(),
				    "no acknowledgement");
	if (rc == MOAT_E_DENIED && hist_db_get_command(app->api_db, e->id, &c) == MOAT_OK) {
		e->status = c.status;
		snprintf(e->reason, sizeof(e->reason), "%.*s", HIST_NAME_MAX, c.detail);
	}
	pthread_mutex_unlock(&app->api_lock);
}

static void post_command(const struct http_req *rq, struct http_reply *rp, const char *dev)
{
	struct hist_app *app = rq->app;
	struct cmdq_entry e = {0};
	struct hist_command c = {0};
	cJSON *body = cJSON_ParseWithLength(rq->body, rq->body_len), *ev;
	const cJSON *st = cJSON_GetObjectItemCaseSensitive(body, "state");
	unsigned char raw[16];
	char *text;
	int rc;

	if (!cJSON_IsString(st) ||
	    (strcmp(st->valuestring, "on") != 0 && strcmp(st->valuestring, "off") != 0)) {
		cJSON_Delete(body);
		reply_error(rp, 400, "expected {\"state\":\"on\"|\"off\"}");
		return;
	}
	e.on = strcmp(st->valuestring, "on") == 0;
	cJSON_Delete(body);
	randombytes_buf(raw, sizeof(raw));
	sodium_bin2hex(e.id, sizeof(e.id), raw, sizeof(raw));
	snprintf(e.device, sizeof(e.device), "%s", dev);
	memcpy(c.id, e.id, sizeof(c.id));
	memcpy(c.device, e.device, sizeof(c.device));
	memcpy(c.requested_by, rq->user, sizeof(c.requested_by));
	c.on = e.on;
	c.created_ms = hist_now_ms();
	pthread_mutex_lock(&app->api_lock);
	rc = device_known(app, dev) ? hist_db_add_command(app->api_db, &c) : MOAT_E_NOTFOUND;
	pthread_mutex_unlock(&app->api_lock);
	if (rc == MOAT_E_NOTFOUND) {
		reply_error(rp, 404, "unknown device");
		return;
	}
	if (rc < 0) {
		reply_error(rp, 500, "storage error");
		return;
	}
	fprintf(stderr, "moat-historian: audit: command %s to %s state %s by %s\n", e.id, dev,
		e.on ? "on" : "off", rq->user);
	cmdq_submit(&app->cmds, &e);
	if (!cmdq_wait(&app->cmds, &e, (int64_t)app->o.command_timeout_s * 1000))
		settle_timeout(app, &e);
	fprintf(stderr, "moat-historian: audit: command %s to %s by %s: %s%s%s\n", e.id, dev,
		rq->user, hist_cmd_status_name(e.status), e.reason[0] != '\0' ? ": " : "",
		e.reason);
	if (e.status <= HIST_CMD_TIMEOUT)
		atomic_fetch_add(&app->commands[e.status], 1);
	ev = command_json(&e, true);
	text = cJSON_PrintUnformatted(ev);
	if (text != NULL)
		sse_publish(app->sse, "command", text);
	free(text);
	cJSON_Delete(ev);
	reply_json(rp, 200, command_json(&e, false));
}

static void post_login(const struct http_req *rq, struct http_reply *rp)
{
	cJSON *body = cJSON_ParseWithLength(rq->body, rq->body_len), *o;
	const cJSON *u = cJSON_GetObjectItemCaseSensitive(body, "user");
	const cJSON *p = cJSON_GetObjectItemCaseSensitive(body, "password");
	char id[SESSION_HEX_LEN + 1], csrf[SESSION_HEX_LEN + 1];
	unsigned wait_s;
	bool ok;

	if (!cJSON_IsString(u) || !cJSON_IsString(p) ||
	    !hist_name_is_valid(u->valuestring, strlen(u->valuestring))) {
		cJSON_Delete(body);
		reply_error(rp, 400, "expected {\"user\":\"..\",\"password\":\"..\"}");
		return;
	}
	wait_s = login_limit_wait_s(rq->app->logins, rq->addr, u->valuestring, hist_now_ms());
	if (wait_s > 0) {
		sodium_memzero(p->valuestring, strlen(p->valuestring));
		fprintf(stderr, "moat-historian: login for %s from %s refused: too many failures\n",
			u->valuestring, rq->addr);
		cJSON_Delete(body);
		rp->retry_after_s = wait_s;
		reply_error(rp, 429, "too many failed logins; try again later");
		return;
	}
	ok = rq->app->users != NULL &&
	     passwd_db_check(rq->app->users, u->valuestring, (const uint8_t *)p->valuestring,
			     strlen(p->valuestring)) == MOAT_OK;
	sodium_memzero(p->valuestring, strlen(p->valuestring));
	if (!ok) {
		fprintf(stderr, "moat-historian: login refused for %s from %s\n", u->valuestring,
			rq->addr);
		login_limit_failed(rq->app->logins, rq->addr, u->valuestring, hist_now_ms());
		cJSON_Delete(body);
		reply_error(rp, 401, "bad user or password");
		return;
	}
	login_limit_succeeded(rq->app->logins, rq->addr, u->valuestring);
	if (sessions_open(rq->app->sessions, u->valuestring, hist_now_ms(), id, csrf) < 0) {
		cJSON_Delete(body);
		reply_error(rp, 500, "cannot open a session");
		return;
	}
	snprintf(rp->cookie, sizeof(rp->cookie),
		 "moat_session=%s; HttpOnly; SameSite=Strict; Path=/%s", id,
		 rq->app->o.tls_cert != NULL ? "; Secure" : "");
	o = cJSON_CreateObject();
	cJSON_AddStringToObject(o, "user", u->valuestring);
	cJSON_AddStringToObject(o, "csrf", csrf);
	sodium_memzero(id, sizeof(id));
	cJSON_Delete(body);
	reply_json(rp, 200, o);
}

static void get_me(const struct http_req *rq, struct http_reply *rp, const char *dev)
{
	(void)dev;
	cJSON *o = cJSON_CreateObject();
	cJSON_AddStringToObject(o, "user", rq->user);
	cJSON_AddStringToObject(o, "csrf", rq->csrf);
	reply_json(rp, 200, o);
}

static void post_logout(const struct http_req *rq, struct http_reply *rp, const char *dev)
{
	(void)dev;
	sessions_close(rq->app->sessions, rq->session);
	snprintf(rp->cookie, sizeof(rp->cookie),
		 "moat_session=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0");
	reply_json(rp, 200, cJSON_CreateObject());
}

/* "/api/devices/{id}/<tail>" -> the id into <id>; false when it does not match. */
static bool device_path(const char *path, const char *tail, char id[HIST_NAME_MAX + 1])
{
	const char *p = path + strlen("/api/devices/"), *slash;

	if (strncmp(path, "/api/devices/", 13) != 0)
		return false;
	slash = strchr(p, '/');
	if (slash == NULL || strcmp(slash + 1, tail) != 0 || slash - p > HIST_NAME_MAX)
		return false;
	memcpy(id, p, (size_t)(slash - p));
	id[slash - p] = '\0';
	return true;
}

static void get_events(const struct http_req *rq, struct http_reply *rp, const char *dev)
{
	(void)rq;
	(void)dev;
	rp->status = 200;
	rp->events = true;
}

/* The authenticated /api/... routes: a fixed path, or /api/devices/{id}/<tail>. */
static const struct route {
	bool post;
	const char *path, *tail;
	void (*fn)(const struct http_req *rq, struct http_reply *rp, const char *dev);
} routes[] = {
    {false, "/api/me", NULL, get_me},		{true, "/api/logout", NULL, post_logout},
    {false, "/api/devices", NULL, get_devices}, {false, NULL, "readings", get_readings},
    {true, NULL, "command", post_command},	{false, "/api/overview", NULL, get_overview},
    {false, "/api/alerts", NULL, get_alerts},	{false, "/api/events", NULL, get_events},
};

static void route(const struct http_req *rq, struct http_reply *rp, bool post)
{
	char id[HIST_NAME_MAX + 1] = "";

	for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++) {
		const struct route *r = &routes[i];
		if (r->path != NULL ? strcmp(rq->path, r->path) != 0
				    : !device_path(rq->path, r->tail, id))
			continue;
		if (r->post != post)
			reply_error(rp, 405, "method not allowed");
		else if (r->tail != NULL && !hist_name_is_valid(id, strlen(id)))
			reply_error(rp, 400, "bad device id");
		else
			r->fn(rq, rp, id);
		return;
	}
	reply_error(rp, 404, "not found");
}

void api_handle(const struct http_req *rq, struct http_reply *rp)
{
	bool get = strcmp(rq->method, "GET") == 0, post = strcmp(rq->method, "POST") == 0;
	const char *token;

	if (strcmp(rq->path, "/healthz") == 0) {
		rp->status = 200;
		rp->ctype = "text/plain";
		rp->body = strdup("ok\n");
		return;
	}
	if (strcmp(rq->path, "/metrics") == 0) {
		rp->ctype = "text/plain; version=0.0.4";
		rp->body = metrics_format(rq->app);
		rp->status = rp->body != NULL ? 200 : 500;
		return;
	}
	if (strcmp(rq->path, "/api/login") == 0) {
		if (!post) {
			reply_error(rp, 405, "method not allowed");
			return;
		}
		{
			post_login(rq, rp);
			return;
		}
	}
	if (!rq->has_session) {
		reply_error(rp, 401, "login required");
		return;
	}
	if (!get && !post) {
		reply_error(rp, 405, "method not allowed");
		return;
	}
	token = http_header(rq, "X-CSRF-Token");
	if (post && (token == NULL || !sessions_token_equal(token, rq->csrf))) {
		reply_error(rp, 403, "missing or wrong X-CSRF-Token");
		return;
	}
	route(rq, rp, post);
}
