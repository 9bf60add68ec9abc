/*
 * moat-device: one simulated device (sim.h): its libmoat client and e2e
 * context, readings, commands and acknowledgements, presence and tamper
 * alerts. Everything runs from dev_service() on the simulator's thread and
 * never blocks: e2e key fetches are non-blocking (timeout 0), and a message
 * that cannot be sealed yet waits in the device's outbox, in order.
 */
#include "device/sim.h"

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "base/clock.h"
#include "e2e/keyrel.h"

enum {
	OUTBOX_MAX = 64,      /* plaintexts waiting to be sealed */
	INBOX_MAX = 16,	      /* commands waiting for their key */
	RETRY_MS = 100,	      /* how soon a waiting message is tried again */
	PAYLOAD_MAX = 4096,   /* a bigger command is refused unread */
	OFFLINE_MAX = 100000, /* messages in a device's offline queue */
};

static const char *const topic_leaf[4] = {"telemetry", "status", "cmd", "online"};

/* A client id usable in topics and JSON unescaped. */
static bool id_is_plain(const char *id)
{
	const char *p;

	if (id[0] == '\0' || strlen(id) > 128)
		return false;
	for (p = id; *p != '\0'; p++)
		if (*p <= ' ' || *p > '~' || strchr("\"\\/+#", *p) != NULL)
			return false;
	return true;
}

/* Splits "mqtt://host:port" or "mqtts://host:port"; false when it is not one. */
static bool split_url(const char *url, char *host, size_t host_len, uint16_t *port, bool *tls)
{
	*tls = strncmp(url, "mqtts://", 8) == 0;
	if (!*tls && strncmp(url, "mqtt://", 7) != 0)
		return false;
	return sim_split_hostport(url + (*tls ? 8 : 7), host, host_len, port);
}

/* The raw Ed25519 private key of <dir>/sign.key (for tamper alerts). */
static bool read_sign_seed(const char *dir, uint8_t seed[32])
{
	char path[4200];
	size_t len = 32;
	EVP_PKEY *k;
	FILE *f;
	bool ok;

	snprintf(path, sizeof(path), "%s/sign.key", dir);
	f = fopen(path, "r");
	if (f == NULL)
		return false;
	k = PEM_read_PrivateKey(f, NULL, NULL, NULL);
	fclose(f);
	ok = k != NULL && EVP_PKEY_get_base_id(k) == EVP_PKEY_ED25519 &&
	     EVP_PKEY_get_raw_private_key(k, seed, &len) == 1 && len == 32;
	EVP_PKEY_free(k);
	return ok;
}

static void on_connect(void *arg, uint8_t rc, bool session_present)
{
	struct dev *d = arg;

	(void)session_present;
	if (rc < 0x80)
		d->just_connected = true;
}

static struct dev_msg *msg_new(uint8_t kind, const void *text, size_t len)
{
	struct dev_msg *m = malloc(sizeof(*m) + len + 1);

	if (m == NULL)
		return NULL;
	m->next = NULL;
	m->kind = kind;
	m->len = len;
	memcpy(m->text, text, len);
	m->text[len] = '\0';
	return m;
}

static void list_push(struct dev_msg **head, struct dev_msg **tail, size_t *count,
		      struct dev_msg *m)
{
	if (*tail != NULL)
		(*tail)->next = m;
	else
		*head = m;
	*tail = m;
	(*count)++;
}

static void list_pop(struct dev_msg **head, struct dev_msg **tail, size_t *count)
{
	struct dev_msg *m = *head;

	*head = m->next;
	if (*head == NULL)
		*tail = NULL;
	(*count)--;
	free(m);
}

static void on_message(void *arg, const struct moat_message *m)
{
	struct dev *d = arg;
	struct dev_msg *copy;

	if (strcmp(m->topic, d->topic[DEV_TOPIC_CMD]) != 0)
		return;
	if (d->in_count >= INBOX_MAX || m->payload_len > PAYLOAD_MAX) {
		fprintf(stderr, "moat-device: %s: command dropped (%s)\n", d->id,
			d->in_count >= INBOX_MAX ? "too many waiting" : "too large");
		return;
	}
	copy = msg_new(0, m->payload, m->payload_len);
	if (copy != NULL)
		list_push(&d->in_head, &d->in_tail, &d->in_count, copy);
}

/* The Ed25519 key commands must be signed with, whatever the kid. */
static int signer_lookup(void *arg, const uint8_t *kid, size_t kid_len, uint8_t pub[32])
{
	const struct sim *s = arg;

	(void)kid;
	(void)kid_len;
	memcpy(pub, s->signer_pub, 32);
	return MOAT_OK;
}

static int client_open(struct dev *d, char *diag, size_t diag_len)
{
	const struct sim_opts *so = d->sim->o;
	struct moat_callbacks cb = {.arg = d, .on_connect = on_connect, .on_message = on_message};
	char host[256], path[3][4200], queue[4200];
	struct moat_client_opts o = {0};
	uint16_t port;
	bool tls;

	if (!split_url(moat_e2e_broker(d->e2e), host, sizeof(host), &port, &tls)) {
		snprintf(diag, diag_len,
			 "%s: the bundle's broker \"%s\" is not mqtt(s)://host:port", d->dir,
			 moat_e2e_broker(d->e2e));
		return MOAT_E_CONFIG;
	}
	snprintf(path[0], sizeof(path[0]), "%s/ca.pem", d->dir);
	snprintf(path[1], sizeof(path[1]), "%s/cert.pem", d->dir);
	snprintf(path[2], sizeof(path[2]), "%s/key.pem", d->dir);
	if (so->queue_dir != NULL)
		snprintf(queue, sizeof(queue), "%s/%s.queue", so->queue_dir, d->id);
	else
		snprintf(queue, sizeof(queue), "%s/state/queue", d->dir);
	o.host = so->broker_host != NULL ? so->broker_host : host;
	o.port = so->broker_host != NULL ? so->broker_port : port;
	o.client_id = d->id;
	o.version = 5;
	o.keep_alive_s = 60;
	o.clean_start = false;
	o.session_expiry_s = 3600;
	o.will_topic = d->topic[DEV_TOPIC_ONLINE];
	o.will_payload = "offline";
	o.will_len = 7;
	o.will_qos = 1;
	o.will_retain = true;
	o.auto_reconnect = true;
	o.reconnect_min_ms = 500;
	o.reconnect_max_ms = 5000;
	o.offline_max_messages = OFFLINE_MAX;
	o.offline_max_bytes = 64u << 20;
	o.queue_file = queue;
	o.drain_rate = so->drain_rate;
	o.tls = tls;
	if (tls) {
		o.cafile = path[0];
		o.certfile = path[1];
		o.keyfile = path[2];
	}
	return moat_client_open(&d->c, &o, &cb, diag, diag_len);
}

int dev_open(struct dev *d, struct sim *s, size_t index, const char *dir, char *diag,
	     size_t diag_len)
{
	char why[400] = "";
	size_t i;
	int rc;

	memset(d, 0, sizeof(*d));
	d->sim = s;
	d->index = index;
	d->watched_fd = -1;
	cmd_seen_init(&d->seen);
	d->dir = strdup(dir);
	if (d->dir == NULL)
		return MOAT_E_NOMEM;
	rc = moat_e2e_open_bundle(&d->e2e, dir, why, sizeof(why));
	if (rc < 0) {
		snprintf(diag, diag_len, "%s: %s", dir, why[0] != '\0' ? why : moat_strerror(rc));
		return rc;
	}
	snprintf(d->id, sizeof(d->id), "%s", moat_e2e_client_id(d->e2e));
	if (!id_is_plain(d->id)) {
		snprintf(diag, diag_len, "%s: client id is not usable in topics and JSON", dir);
		return MOAT_E_CONFIG;
	}
	for (i = 0; i < 4; i++)
		snprintf(d->topic[i], sizeof(d->topic[i]), "moat/%s/%s", d->id, topic_leaf[i]);
	d->has_sign_seed = read_sign_seed(dir, d->sign_seed);
	sensor_init(&d->sensor, s->o->seed, index);
	d->seq = 1;
	rc = client_open(d, why, sizeof(why));
	if (rc < 0) {
		snprintf(diag, diag_len, "%s: %s", dir, why[0] != '\0' ? why : moat_strerror(rc));
		return rc;
	}
	if (s->o->plain)
		return MOAT_OK;
	rc = moat_e2e_attach(d->e2e, d->c);
	if (rc < 0) {
		snprintf(diag, diag_len, "%s: cannot attach the e2e context: %s", dir,
			 moat_strerror(rc));
		return rc;
	}
	moat_e2e_set_timeout_ms(d->e2e, 0);
	if (s->have_signer)
		moat_e2e_set_signer_lookup(d->e2e, signer_lookup, s);
	return MOAT_OK;
}

int dev_start(struct dev *d)
{
	/* no reading before the first connection (dev_service): 10,000
	 * devices still waiting for theirs would each hold a queue file open */
	d->next_reading_ms = UINT64_MAX;
	return moat_connect(d->c);
}

void dev_request_tamper(struct dev *d)
{
	d->tamper = true;
}

/* Queues a status for the command <cmd_id> ("" when unreadable). */
static void send_status(struct dev *d, const char *cmd_id, const char *reason)
{
	char text[512];
	int n = status_format(text, sizeof(text), d->id, cmd_id, d->relay_on, reason);
	struct dev_msg *m = n > 0 ? msg_new(DEV_STATUS, text, (size_t)n) : NULL;

	if (reason != NULL)
		fprintf(stderr, "moat-device: %s: command %s refused: %s\n", d->id,
			cmd_id[0] != '\0' ? cmd_id : "(unreadable)", reason);
	if (m != NULL)
		list_push(&d->out_head, &d->out_tail, &d->out_count, m);
}

/* The contract's reason for an envelope moat_e2e_open refused with <rc>/<why>. */
static const char *open_refusal(int rc, const struct moat_e2e_info *info, const char *why,
				const struct dev_msg *m, struct cmd *c)
{
	if (rc == MOAT_E_CRYPTO && info->is_signed && !info->signer_verified)
		return "bad signer";
	if (strstr(why, "requires a COSE_Sign1") != NULL)
		return "unsigned";
	if (strncmp(why, "replayed", 8) == 0)
		return "replayed";
	if (strstr(why, "older than") != NULL || strstr(why, "future") != NULL)
		return "stale";
	/* a bare JSON command: neither sealed nor signed */
	if (rc == MOAT_E_MALFORMED && cmd_parse((const uint8_t *)m->text, m->len, c) == MOAT_OK)
		return "unsigned";
	memset(c, 0, sizeof(*c));
	return "malformed";
}

/* Handles one received command; MOAT_E_AGAIN when its key is not there yet. */
static int handle_cmd(struct dev *d, const struct dev_msg *m)
{
	const struct sim *s = d->sim;
	struct moat_e2e_info info;
	const char *reason = NULL, *why = "";
	const uint8_t *pt = (const uint8_t *)m->text;
	uint8_t *opened = NULL;
	size_t pt_len = m->len;
	struct cmd c;
	int rc;

	memset(&c, 0, sizeof(c));
	memset(&info, 0, sizeof(info));
	if (!s->o->plain) {
		rc = moat_e2e_open(d->e2e, d->topic[DEV_TOPIC_CMD], m->text, m->len, &opened,
				   &pt_len, &info, &why);
		if (rc == MOAT_E_AGAIN)
			return rc;
		if (rc < 0) {
			reason = open_refusal(rc, &info, why, m, &c);
			fprintf(stderr, "moat-device: %s: cannot open a command: %s\n", d->id, why);
		} else if (s->have_signer && !info.signer_verified)
			reason = info.is_signed ? "bad signer" : "unsigned";
		pt = opened;
	} else if (s->have_signer) {
		reason = "unsigned"; /* plain commands carry no signature */
	}
	/* parsed even when refused already, so that the status names the command */
	if ((pt == NULL || cmd_parse(pt, pt_len, &c) < 0) && reason == NULL)
		reason = "malformed";
	if (reason == NULL)
		reason = cmd_decide(&d->seen, &c, clock_wall_s());
	moat_e2e_free(opened, pt_len);
	if (reason == NULL) {
		d->relay_on = c.on;
		fprintf(stderr, "moat-device: %s: relay %s (command %s)\n", d->id,
			c.on ? "on" : "off", c.id);
	}
	send_status(d, c.id, reason);
	return MOAT_OK;
}

static void process_inbox(struct dev *d)
{
	while (d->in_head != NULL) {
		if (handle_cmd(d, d->in_head) == MOAT_E_AGAIN)
			return;
		list_pop(&d->in_head, &d->in_tail, &d->in_count);
	}
}

/* Seals (unless plain) and queues the head of the outbox; MOAT_E_AGAIN to wait. */
static int publish_one(struct dev *d, const struct dev_msg *m)
{
	const char *topic = d->topic[m->kind], *ct = NULL, *why = "";
	struct moat_pub_props pp = {0};
	uint8_t *env = NULL;
	size_t env_len = m->len;
	int rc;

	if (!d->sim->o->plain) {
		rc = moat_e2e_seal(d->e2e, topic, m->text, m->len, &env, &env_len, &ct, &why);
		if (rc == MOAT_E_AGAIN || rc == MOAT_E_CLOSED || rc == MOAT_E_TIMEOUT)
			return MOAT_E_AGAIN;
		if (rc < 0) {
			fprintf(stderr, "moat-device: %s: cannot seal for %s: %s\n", d->id, topic,
				why);
			return rc;
		}
		pp.content_type = ct;
	}
	rc = moat_publish(d->c, topic, env != NULL ? (const void *)env : m->text, env_len, 1, false,
			  env != NULL ? &pp : NULL, NULL);
	moat_e2e_free(env, env_len);
	if (rc == MOAT_E_LIMIT || rc == MOAT_E_IO)
		return MOAT_E_AGAIN; /* queue full, or not on disk: try again */
	return rc;
}

static void flush_outbox(struct dev *d)
{
	while (d->out_head != NULL) {
		int rc = publish_one(d, d->out_head);

		if (rc == MOAT_E_AGAIN)
			return;
		if (rc < 0)
			fprintf(stderr, "moat-device: %s: message dropped: %s\n", d->id,
				moat_strerror(rc));
		list_pop(&d->out_head, &d->out_tail, &d->out_count);
	}
}

static void take_reading(struct dev *d, uint64_t now_ms)
{
	char text[512];
	struct dev_msg *m;
	int n;

	if (d->out_count >= OUTBOX_MAX)
		return; /* cannot seal for a while: the sensor is not sampled meanwhile */
	sensor_step(&d->sensor);
	n = reading_format(text, sizeof(text), d->id, clock_wall_ms(), d->seq, &d->sensor,
			   d->relay_on);
	m = n > 0 ? msg_new(DEV_TELEMETRY, text, (size_t)n) : NULL;
	if (m == NULL)
		return;
	list_push(&d->out_head, &d->out_tail, &d->out_count, m);
	d->seq++;
	(void)now_ms;
}

static void on_connected(struct dev *d)
{
	struct moat_sub_options so = {.qos = 1};
	int rc;

	rc = moat_subscribe(d->c, d->topic[DEV_TOPIC_CMD], &so, NULL);
	if (rc == MOAT_OK)
		rc = moat_publish(d->c, d->topic[DEV_TOPIC_ONLINE], "online", 6, 1, true, NULL,
				  NULL);
	if (rc < 0)
		fprintf(stderr, "moat-device: %s: after connecting: %s\n", d->id,
			moat_strerror(rc));
	if (d->sim->o->plain)
		return;
	/* ask for the keys now (answers arrive through the loop) */
	(void)moat_e2e_fetch(d->e2e, d->topic[DEV_TOPIC_CMD], MOAT_E2E_SUBSCRIBE, NULL);
	(void)moat_e2e_fetch(d->e2e, d->topic[DEV_TELEMETRY], MOAT_E2E_PUBLISH, NULL);
	(void)moat_e2e_fetch(d->e2e, d->topic[DEV_STATUS], MOAT_E2E_PUBLISH, NULL);
}

static void send_tamper(struct dev *d)
{
	char topic[200];
	struct buf b = {0};
	int rc;

	if (!d->has_sign_seed) {
		fprintf(stderr,
			"moat-device: %s: no Ed25519 sign.key: cannot sign a tamper alert\n",
			d->id);
		d->tamper = false;
		return;
	}
	rc = keyrel_alert_build(d->id, clock_wall_s(), "moat-device: tamper switch", d->sign_seed,
				&b);
	snprintf(topic, sizeof(topic), "alerts/%s/tamper", d->id);
	if (rc == MOAT_OK)
		rc = moat_publish(d->c, topic, buf_head(&b), buf_used(&b), 1, false, NULL, NULL);
	buf_fini(&b);
	if (rc == MOAT_E_LIMIT || rc == MOAT_E_IO)
		return; /* again on the next turn */
	d->tamper = false;
	if (rc < 0)
		fprintf(stderr, "moat-device: %s: tamper alert failed: %s\n", d->id,
			moat_strerror(rc));
	else
		fprintf(stderr, "moat-device: %s: tamper alert sent\n", d->id);
}

uint64_t dev_service(struct dev *d, uint64_t now_ms)
{
	uint32_t iv = d->sim->o->interval_ms;
	uint64_t wake;
	int t;

	(void)moat_loop_once(d->c, 0);
	if (d->just_connected) {
		d->just_connected = false;
		on_connected(d);
		if (!d->online_once) {
			/* the first readings spread over one interval, deterministically;
			 * from now on they go on whether connected or not (offline queue) */
			d->online_once = true;
			d->next_reading_ms = now_ms + (iv > 1 ? (d->index * 7919u) % iv : 0);
		}
	}
	if (d->tamper)
		send_tamper(d);
	if (now_ms >= d->next_reading_ms) {
		take_reading(d, now_ms);
		d->next_reading_ms += iv;
		if (d->next_reading_ms <= now_ms)
			d->next_reading_ms = now_ms + iv;
	}
	process_inbox(d);
	flush_outbox(d);
	t = moat_next_timeout_ms(d->c);
	wake = now_ms + (uint64_t)(t < 0 ? 1000 : t);
	if (d->next_reading_ms < wake)
		wake = d->next_reading_ms;
	if ((d->out_head != NULL || d->in_head != NULL || d->tamper) && now_ms + RETRY_MS < wake)
		wake = now_ms + RETRY_MS;
	return wake;
}

void dev_close(struct dev *d)
{
	if (d->c != NULL && moat_is_connected(d->c))
		(void)moat_disconnect(d->c, 0x04); /* with will: the process is going away */
	moat_client_destroy(d->c);
	moat_e2e_destroy(d->e2e);
	while (d->out_head != NULL)
		list_pop(&d->out_head, &d->out_tail, &d->out_count);
	while (d->in_head != NULL)
		list_pop(&d->in_head, &d->in_tail, &d->in_count);
	OPENSSL_cleanse(d->sign_seed, sizeof(d->sign_seed));
	free(d->dir);
	memset(d, 0, sizeof(*d));
}
