/*
 * The historian's MQTT ingest (ingest.h). Messages are copied out of the
 * client callback into a queue and handled in the loop, outside any
 * callback, so opening an envelope may block for a group key fetch.
 * Refusals go to hist_db_count_reject with a reason and one log line;
 * nothing refused is stored as data.
 */
#include "historian/ingest.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "e2e/keyrel.h"
#include "historian/api.h"
#include "historian/msg.h"
#include "historian/sse.h"
#include "moat/client.h"
#include "moat/e2e.h"

enum {
	INBOX_MAX = 10000,    /* messages waiting; more are refused as "overload" */
	BATCH_READINGS = 500, /* readings per insert */
	BATCH_MS = 100,	      /* the longest a reading waits for its insert */
	CMD_TAKE = 16,
};

struct inmsg {
	char *topic;
	uint8_t *payload;
	size_t len;
	struct inmsg *next;
};

struct pending_reading {
	char device[HIST_NAME_MAX + 1];
	struct hist_reading r;
};

struct ingest {
	struct hist_app *app;
	struct hist_db *db;
	struct moat_e2e *e2e;
	struct moat_client *c;
	struct inmsg *head, **tail;
	size_t queued;
	struct pending_reading batch[BATCH_READINGS];
	size_t batch_n;
	int64_t batch_since_ms;
};

static const char *const filters[] = {"moat/+/telemetry", "moat/+/status", "moat/+/online",
				      "alerts/+/tamper"};

static void reject(struct ingest *in, const char *reason, const char *topic, const char *detail)
{
	fprintf(stderr, "moat-historian: refused %s: %s%s%s\n", topic, reason,
		detail != NULL ? ": " : "", detail != NULL ? detail : "");
	if (hist_db_count_reject(in->db, reason, hist_now_ms()) < 0)
		fprintf(stderr, "moat-historian: storage: %s\n", hist_db_errmsg(in->db));
}

static void on_connect(void *arg, uint8_t rc, bool session_present)
{
	struct ingest *in = arg;
	struct moat_sub_options so = {.qos = 1};

	(void)session_present;
	if (rc >= 0x80) {
		fprintf(stderr, "moat-historian: the broker refused the connection (0x%02x)\n", rc);
		return;
	}
	atomic_store(&in->app->mqtt_connected, true);
	for (size_t i = 0; i < sizeof(filters) / sizeof(filters[0]); i++)
		if (moat_subscribe(in->c, filters[i], &so, NULL) < 0)
			fprintf(stderr, "moat-historian: cannot subscribe to %s\n", filters[i]);
	fprintf(stderr, "moat-historian: connected to the broker\n");
}

static void on_disconnect(void *arg, int err, uint8_t rc)
{
	struct ingest *in = arg;
	char why[256];

	atomic_store(&in->app->mqtt_connected, false);
	fprintf(stderr, "moat-historian: disconnected (%s, reason 0x%02x): %s\n",
		moat_strerror(err), rc, moat_last_error(in->c, why, sizeof(why)));
}

static void on_message(void *arg, const struct moat_message *m)
{
	struct ingest *in = arg;
	struct inmsg *q;

	if (in->queued >= INBOX_MAX) {
		reject(in, "overload", m->topic, NULL);
		return;
	}
	q = calloc(1, sizeof(*q));
	if (q == NULL || (q->topic = strdup(m->topic)) == NULL ||
	    (q->payload = malloc(m->payload_len + 1)) == NULL) {
		if (q != NULL)
			free(q->topic);
		free(q);
		reject(in, "overload", m->topic, "out of memory");
		return;
	}
	memcpy(q->payload, m->payload, m->payload_len);
	q->len = m->payload_len;
	*in->tail = q;
	in->tail = &q->next;
	in->queued++;
}

struct ingest *ingest_create(struct hist_app *app, struct hist_db *db, struct moat_e2e *e2e)
{
	struct ingest *in = calloc(1, sizeof(*in));

	if (in == NULL)
		return NULL;
	in->app = app;
	in->db = db;
	in->e2e = e2e;
	in->tail = &in->head;
	return in;
}

static void inmsg_free(struct inmsg *q)
{
	free(q->topic);
	free(q->payload);
	free(q);
}

void ingest_destroy(struct ingest *in)
{
	if (in == NULL)
		return;
	while (in->head != NULL) {
		struct inmsg *q = in->head;
		in->head = q->next;
		inmsg_free(q);
	}
	free(in);
}

void ingest_callbacks(struct ingest *in, struct moat_callbacks *cb)
{
	memset(cb, 0, sizeof(*cb));
	cb->arg = in;
	cb->on_connect = on_connect;
	cb->on_disconnect = on_disconnect;
	cb->on_message = on_message;
}

/* Publishes <o> as the SSE event <event> and frees it. */
static void emit(struct ingest *in, const char *event, cJSON *o)
{
	char *text = cJSON_PrintUnformatted(o);

	if (text != NULL)
		sse_publish(in->app->sse, event, text);
	free(text);
	cJSON_Delete(o);
}

static void flush(struct ingest *in)
{
	struct hist_reading rs[BATCH_READINGS];
	int rc;

	if (in->batch_n == 0)
		return;
	for (size_t i = 0; i < in->batch_n; i++) {
		rs[i] = in->batch[i].r;
		rs[i].device = in->batch[i].device;
	}
	rc = hist_db_add_readings(in->db, rs, in->batch_n);
	if (rc < 0) {
		fprintf(stderr, "moat-historian: storing %zu readings: %s\n", in->batch_n,
			hist_db_errmsg(in->db));
	} else {
		atomic_fetch_add(&in->app->readings_stored, in->batch_n);
		for (size_t i = 0; i < in->batch_n; i++)
			emit(in, "reading", api_reading_json(&rs[i], true));
	}
	in->batch_n = 0;
}

static void handle_online(struct ingest *in, const struct inmsg *q, const char *id)
{
	bool on = q->len == 6 && memcmp(q->payload, "online", 6) == 0;
	cJSON *o;

	if (!on && !(q->len == 7 && memcmp(q->payload, "offline", 7) == 0)) {
		reject(in, "malformed-online", q->topic, NULL);
		return;
	}
	if (hist_db_set_online(in->db, id, on, hist_now_ms()) < 0) {
		fprintf(stderr, "moat-historian: storage: %s\n", hist_db_errmsg(in->db));
		return;
	}
	o = cJSON_CreateObject();
	cJSON_AddStringToObject(o, "id", id);
	cJSON_AddBoolToObject(o, "online", on);
	emit(in, "device", o);
}

static void handle_alert(struct ingest *in, const struct inmsg *q, const char *id)
{
	struct moat_bytes cid, detail;
	struct cose_sign1 sig;
	char text[HIST_DETAIL_MAX + 1];
	const char *why = NULL;
	struct hist_alert a = {0};
	int64_t iat, aid;
	cJSON *o;

	if (keyrel_alert_decode((struct moat_bytes){q->payload, q->len},
				(struct moat_bytes){(const uint8_t *)q->topic, strlen(q->topic)},
				&cid, &iat, &detail, &sig, &why) < 0) {
		reject(in, "malformed-alert", q->topic, why);
		return;
	}
	snprintf(text, sizeof(text), "%.*s",
		 (int)(detail.len < HIST_DETAIL_MAX ? detail.len : HIST_DETAIL_MAX),
		 (const char *)detail.ptr);
	a.device = id;
	a.time_ms = iat > 0 && iat < INT64_C(4102444800) ? iat * 1000 : hist_now_ms();
	a.kind = "tamper";
	a.detail = text;
	a.envelope = q->payload;
	a.envelope_len = q->len;
	if (hist_db_add_alert(in->db, &a, &aid) < 0) {
		reject(in, "malformed-alert", q->topic, hist_db_errmsg(in->db));
		return;
	}
	fprintf(stderr, "moat-historian: alert from %s: %s\n", id, text);
	o = cJSON_CreateObject();
	cJSON_AddNumberToObject(o, "id", (double)aid);
	cJSON_AddStringToObject(o, "device", id);
	cJSON_AddNumberToObject(o, "time", (double)a.time_ms);
	cJSON_AddStringToObject(o, "kind", a.kind);
	cJSON_AddStringToObject(o, "detail", text);
	emit(in, "alert", o);
}

static void handle_reading(struct ingest *in, const struct inmsg *q, const char *id,
			   const uint8_t *pt, size_t n)
{
	struct pending_reading *p;
	const char *why;

	if (in->batch_n == BATCH_READINGS)
		flush(in);
	p = &in->batch[in->batch_n];
	if (hist_reading_parse(id, pt, n, &p->r, &why) < 0) {
		reject(in, why, q->topic, NULL);
		return;
	}
	snprintf(p->device, sizeof(p->device), "%s", id);
	if (in->batch_n++ == 0)
		in->batch_since_ms = hist_now_ms();
}

static void handle_status(struct ingest *in, const struct inmsg *q, const char *id,
			  const uint8_t *pt, size_t n)
{
	enum hist_cmd_status st;
	struct hist_status s;
	const char *why;
	int64_t now = hist_now_ms();
	int rc;

	if (hist_status_parse(id, pt, n, &s, &why) < 0) {
		reject(in, why, q->topic, NULL);
		return;
	}
	st = s.ok ? HIST_CMD_ACKNOWLEDGED : HIST_CMD_FAILED;
	rc = hist_db_update_command(in->db, s.cmd_id, st, now, s.reason);
	if (rc == MOAT_E_NOTFOUND) {
		reject(in, "unknown-command", q->topic, s.cmd_id);
		return;
	}
	if (rc == MOAT_E_DENIED) {
		fprintf(stderr, "moat-historian: late acknowledgement of %s ignored\n", s.cmd_id);
		return;
	}
	if (s.ok && hist_db_set_relay(in->db, id, s.relay == HIST_RELAY_ON, now) < 0)
		fprintf(stderr, "moat-historian: storage: %s\n", hist_db_errmsg(in->db));
	cmdq_complete(&in->app->cmds, s.cmd_id, st, s.reason);
}

static void handle(struct ingest *in, const struct inmsg *q)
{
	char id[HIST_NAME_MAX + 1];
	enum hist_topic_kind kind = hist_topic_parse(q->topic, id);
	uint8_t *pt = NULL;
	size_t n = 0;
	const char *why = NULL;
	int rc;

	if (kind == HIST_TOPIC_OTHER) {
		reject(in, "unknown-topic", q->topic, NULL);
		return;
	}
	if (kind == HIST_TOPIC_ONLINE) {
		handle_online(in, q, id);
		return;
	}
	if (kind == HIST_TOPIC_ALERT) {
		handle_alert(in, q, id);
		return;
	}
	rc = moat_e2e_open(in->e2e, q->topic, q->payload, q->len, &pt, &n, NULL, &why);
	if (rc < 0) {
		reject(in, "open-failed", q->topic, why != NULL ? why : moat_strerror(rc));
		return;
	}
	if (kind == HIST_TOPIC_TELEMETRY)
		handle_reading(in, q, id, pt, n);
	else
		handle_status(in, q, id, pt, n);
	moat_e2e_free(pt, n);
}

/* Seals and publishes one queued command; a failure completes it as failed. */
static void send_command(struct ingest *in, const struct cmdq_entry *e)
{
	char topic[HIST_NAME_MAX + 16], plain[160];
	struct moat_pub_props props = {0};
	const char *ct = NULL, *why = NULL;
	uint8_t *sealed = NULL;
	size_t len = 0;
	int rc;

	snprintf(topic, sizeof(topic), "moat/%s/cmd", e->device);
	snprintf(plain, sizeof(plain), "{\"id\":\"%s\",\"state\":\"%s\",\"iat\":%lld}", e->id,
		 e->on ? "on" : "off", (long long)(hist_now_ms() / 1000));
	rc = moat_e2e_seal(in->e2e, topic, plain, strlen(plain), &sealed, &len, &ct, &why);
	if (rc == MOAT_OK) {
		props.content_type = ct;
		rc = moat_publish(in->c, topic, sealed, len, 1, false, &props, NULL);
		why = rc < 0 ? moat_strerror(rc) : NULL;
	}
	moat_e2e_free(sealed, len);
	if (rc == MOAT_OK)
		return;
	fprintf(stderr, "moat-historian: command %s to %s not sent: %s\n", e->id, e->device,
		why != NULL ? why : moat_strerror(rc));
	hist_db_update_command(in->db, e->id, HIST_CMD_FAILED, hist_now_ms(), "not sent");
	cmdq_complete(&in->app->cmds, e->id, HIST_CMD_FAILED, "not sent");
}

void ingest_run(struct ingest *in, struct moat_client *c)
{
	struct cmdq_entry take[CMD_TAKE];

	in->c = c;
	while (!atomic_load(&in->app->stop)) {
		size_t n;

		if (moat_loop_once(c, 20) == MOAT_E_CLOSED)
			break;
		while (in->head != NULL) {
			struct inmsg *q = in->head;
			in->head = q->next;
			if (in->head == NULL)
				in->tail = &in->head;
			in->queued--;
			handle(in, q);
			inmsg_free(q);
		}
		if (in->batch_n > 0 && hist_now_ms() - in->batch_since_ms >= BATCH_MS)
			flush(in);
		while ((n = cmdq_take_unsent(&in->app->cmds, take, CMD_TAKE)) > 0)
			for (size_t i = 0; i < n; i++)
				send_command(in, &take[i]);
	}
	flush(in);
}
