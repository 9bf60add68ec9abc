/*
 * libmoat's client state machine (see include/moat/client.h): a non-blocking
 * TCP connection, CONNECT/CONNACK, the pending list (offline queue plus QoS
 * 1/2 in flight, kept in publish order, mirrored in the queue file when there
 * is one), the drain-rate pacing of the backlog, keep-alive, strict decoding
 * of what the server sends, and reconnect with backoff and jitter. With TLS
 * the socket carries the records of a client filter (tls_client.h) and the
 * MQTT bytes pass through it. The public entry
 * points that change state are in thread.c, which wraps these in the
 * client's lock.
 */
#include <moat/client.h>

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <unistd.h>

#include "auth/scram.h"
#include "base/buf.h"
#include "base/clock.h"
#include "codec/frame.h"
#include "codec/packet.h"
#include "codec/topic.h"
#include "client/client_impl.h"
#include "net/tls_client.h"

static char *dup_or_null(const char *s)
{
	return s != NULL ? strdup(s) : NULL;
}

static void say(char *diag, size_t diag_len, const char *msg)
{
	if (diag != NULL && diag_len > 0)
		snprintf(diag, diag_len, "%s", msg);
}
struct moat_client *moat_client_create(const struct moat_client_opts *o, const struct moat_callbacks *cb)
{
	struct moat_client *c = NULL;

	return moat_client_open(&c, o, cb, NULL, 0) == MOAT_OK ? c : NULL;
}

static int open_queue(struct moat_client *c, const char *path, char *diag, size_t diag_len);

/* Takes the process's TLS context for <o>'s CA file (shared with every
 * client trusting the same CAs) and loads <o>'s client certificate, set on
 * each connection; the strings are not kept. */
static int open_tls(struct moat_client *c, const struct moat_client_opts *o, char *diag,
		    size_t diag_len)
{
	struct tls_diag d = {""};
	int rc;

	c->tls_name_given = o->tls_server_name != NULL;
	c->tls_name = strdup(o->tls_server_name != NULL ? o->tls_server_name : c->host);
	if (c->tls_name == NULL) {
		say(diag, diag_len, "out of memory");
		return MOAT_E_NOMEM;
	}
	rc = tls_client_ctx_shared(o->cafile, &c->tls_ctx, &d);
	if (rc == MOAT_OK)
		rc = tls_client_identity_load(o->certfile, o->keyfile, &c->tls_id, &d);
	if (rc < 0)
		say(diag, diag_len, d.msg);
	return rc;
}

int moat_client_open(struct moat_client **out, const struct moat_client_opts *o,
		     const struct moat_callbacks *cb, char *diag, size_t diag_len)
{
	struct moat_client *c;
	int rc;

	*out = NULL;
	if (diag != NULL && diag_len > 0)
		diag[0] = '\0';
	if (o == NULL || (o->version != 0 && o->version != 4 && o->version != 5) || o->will_qos > 2 ||
	    (o->will_topic != NULL && !topic_name_is_valid(moat_bytes_str(o->will_topic))) ||
	    o->queue_overflow > MOAT_QUEUE_DROP_OLDEST) {
		say(diag, diag_len, "invalid client options (version, will, or queue_overflow)");
		return MOAT_E_INVAL;
	}
	if (!o->tls && (o->cafile != NULL || o->certfile != NULL || o->keyfile != NULL ||
			o->tls_server_name != NULL || o->tls_insecure)) {
		say(diag, diag_len,
		    "cafile, certfile, keyfile, tls_server_name and tls_insecure "
		    "need tls = true");
		return MOAT_E_INVAL;
	}
	if (o->queue_file != NULL && (o->client_id == NULL || o->client_id[0] == '\0')) {
		say(diag, diag_len,
		    "a queue file needs a fixed client id (set client_id): "
		    "resent messages must reach the same session");
		return MOAT_E_INVAL;
	}
	c = calloc(1, sizeof(*c));
	if (c == NULL)
		return MOAT_E_NOMEM;
	c->o = *o;
	c->o.queue_file = NULL; /* the caller's string; c->qf.path is our copy */
	c->o.cafile = c->o.certfile = c->o.keyfile = c->o.tls_server_name = NULL; /* read once */
	c->qf.fd = -1;
	if (cb != NULL)
		c->cb = *cb;
	c->fd = -1;
	c->host = strdup(o->host != NULL ? o->host : "localhost");
	c->client_id = strdup(o->client_id != NULL ? o->client_id : "");
	c->username = dup_or_null(o->username);
	c->password = dup_or_null(o->password);
	c->will_topic = dup_or_null(o->will_topic);
	if (o->will_len > 0) {
		c->will_payload = malloc(o->will_len);
		if (c->will_payload != NULL)
			memcpy(c->will_payload, o->will_payload, o->will_len);
	}
	if (c->host == NULL || c->client_id == NULL || (o->username != NULL && c->username == NULL) ||
	    (o->password != NULL && c->password == NULL) ||
	    (o->will_topic != NULL && c->will_topic == NULL) ||
	    (o->will_len > 0 && c->will_payload == NULL)) {
		moat_client_destroy(c);
		say(diag, diag_len, "out of memory");
		return MOAT_E_NOMEM;
	}
	if (c->o.port == 0)
		c->o.port = o->tls ? 8883 : 1883;
	if (c->o.version == 0)
		c->o.version = 5;
	if (c->o.reconnect_min_ms == 0)
		c->o.reconnect_min_ms = 1000;
	if (c->o.reconnect_max_ms < c->o.reconnect_min_ms)
		c->o.reconnect_max_ms = c->o.reconnect_min_ms > 30000 ? c->o.reconnect_min_ms : 30000;
	if (c->o.connect_timeout_ms == 0)
		c->o.connect_timeout_ms = 10000;
	if (c->o.offline_max_messages == 0)
		c->o.offline_max_messages = 1000;
	if (c->o.offline_max_bytes == 0)
		c->o.offline_max_bytes = 1u << 20;
	c->backoff_ms = c->o.reconnect_min_ms;
	c->next_pid = 1;
	if (client_lock_init(c) < 0) {
		moat_client_destroy(c);
		say(diag, diag_len, "out of memory");
		return MOAT_E_NOMEM;
	}
	rc = o->tls ? open_tls(c, o, diag, diag_len) : MOAT_OK;
	if (rc < 0) {
		moat_client_destroy(c);
		return rc;
	}
	if (o->queue_file != NULL) {
		rc = open_queue(c, o->queue_file, diag, diag_len);
		if (rc < 0) {
			moat_client_destroy(c);
			return rc;
		}
	}
	*out = c;
	return MOAT_OK;
}

static void close_socket(struct moat_client *c)
{
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
	filter_destroy(c->tls);
	c->tls = NULL;
	buf_fini(&c->rx);
	buf_fini(&c->wire);
	buf_fini(&c->in);
	buf_fini(&c->out);
	c->ack_count = 0;
	c->inflight = 0;
	for (struct pend *p = c->pend; p != NULL; p = p->next)
		p->sent = false;
}

static const char scram_method[] = "SCRAM-SHA-256";

static void scram_end(struct moat_client *c)
{
	if (c->scram != NULL) {
		scram_client_fini(c->scram);
		free(c->scram);
		c->scram = NULL;
	}
}

void moat_client_destroy(struct moat_client *c)
{
	if (c == NULL)
		return;
	moat_loop_stop(c);
	client_lock_fini(c);
	close_socket(c);
	if (c->addrs != NULL)
		freeaddrinfo(c->addrs);
	while (c->pend != NULL) {
		struct pend *p = c->pend;

		c->pend = p->next;
		free(p);
	}
	if (c->has_qf)
		qf_close(&c->qf);
	free(c->qos2_in);
	free(c->host);
	free(c->client_id);
	free(c->username);
	scram_end(c);
	if (c->password != NULL)
		explicit_bzero(c->password, strlen(c->password));
	free(c->password);
	free(c->will_topic);
	free(c->will_payload);
	tls_client_ctx_unshare(c->tls_ctx);
	tls_client_identity_free(c->tls_id);
	free(c->tls_name);
	free(c);
}

static int send_packet(struct moat_client *c, const struct mqtt_packet *p)
{
	size_t n = pkt_encode(NULL, 0, (uint8_t)c->o.version, p);

	if (n == 0 || (c->server_max_packet > 0 && n > c->server_max_packet))
		return MOAT_E_LIMIT;
	if (buf_reserve(&c->out, n) < 0)
		return MOAT_E_NOMEM;
	pkt_encode(c->out.data + c->out.len, n, (uint8_t)c->o.version, p);
	c->out.len += n;
	return MOAT_OK;
}

static void lost_because(struct moat_client *c, int err, uint8_t rc, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Ends the connection; schedules a reconnect unless the end is final.
 * <fmt> (NULL: a text made of <err> and <rc>) is kept for moat_last_error. */
static void lost_because(struct moat_client *c, int err, uint8_t rc, const char *fmt, ...)
{
	uint64_t now = clock_mono_ms();
	uint32_t jitter = 0;
	va_list ap;

	if (fmt != NULL) {
		va_start(ap, fmt);
		vsnprintf(c->why, sizeof(c->why), fmt, ap);
		va_end(ap);
	} else if (rc != 0) {
		snprintf(c->why, sizeof(c->why), "%s by the server (reason 0x%02x)",
			 err == MOAT_E_DENIED ? "refused" : "closed", rc);
	} else {
		snprintf(c->why, sizeof(c->why), "%s", moat_strerror(err));
	}
	close_socket(c);
	if (c->o.auto_reconnect && !c->disconnecting && err != MOAT_E_DENIED) {
		if (getrandom(&jitter, sizeof(jitter), 0) != (ssize_t)sizeof(jitter))
			jitter = 0;
		/* full jitter on the upper half: [backoff/2, backoff] */
		c->retry_at_ms = now + c->backoff_ms / 2 + jitter % (c->backoff_ms / 2 + 1);
		c->backoff_ms = c->backoff_ms * 2 > c->o.reconnect_max_ms ? c->o.reconnect_max_ms
									   : c->backoff_ms * 2;
		c->st = ST_RETRY;
	} else {
		c->st = ST_DONE;
	}
	if (c->cb.on_disconnect != NULL)
		c->cb.on_disconnect(c->cb.arg, err, rc);
}

static void lost(struct moat_client *c, int err, uint8_t rc)
{
	lost_because(c, err, rc, NULL);
}

/* Ends the connection after the TLS filter failed with <rc> (<why>); the
 * alert the filter left in <wire> gets one non-blocking try. */
static void tls_failed(struct moat_client *c, int rc, bool handshaking, const char *why)
{
	if (buf_used(&c->wire) > 0)
		(void)send(c->fd, buf_head(&c->wire), buf_used(&c->wire),
			   MSG_NOSIGNAL | MSG_DONTWAIT);
	if (why == NULL)
		why = moat_strerror(rc);
	if (rc == MOAT_E_CLOSED)
		lost(c, MOAT_E_CLOSED, 0);
	else if (rc == MOAT_E_DENIED && handshaking)
		lost_because(c, MOAT_E_DENIED, 0, "certificate verify failed: %s", why);
	else if (rc == MOAT_E_NOMEM)
		lost(c, MOAT_E_NOMEM, 0);
	else
		lost_because(c, MOAT_E_CRYPTO, 0, "TLS %s: %s",
			     handshaking ? "handshake failed" : "error", why);
}

/* A new connection's filter, and its first handshake message in <wire>.
 * False after ending the connection. */
static bool tls_start(struct moat_client *c)
{
	const char *why = NULL;
	int rc;

	c->tls = tls_client_filter_create(c->tls_ctx, c->tls_id, c->tls_name, !c->o.tls_insecure);
	if (c->tls == NULL) {
		lost(c, MOAT_E_NOMEM, 0);
		return false;
	}
	rc = c->tls->ops->input(c->tls, NULL, 0, &c->in, &c->wire, &why);
	if (rc < 0) {
		tls_failed(c, rc, true, why);
		return false;
	}
	return true;
}

/* Passes the records read into <rx> through the filter: MQTT bytes to <in>,
 * handshake messages to <wire>. False after ending the connection. */
static bool tls_in(struct moat_client *c)
{
	bool handshaking = !c->tls->ops->ready(c->tls);
	const char *why = NULL;
	int rc =
	    c->tls->ops->input(c->tls, buf_head(&c->rx), buf_used(&c->rx), &c->in, &c->wire, &why);

	buf_consume(&c->rx, buf_used(&c->rx));
	if (rc < 0)
		tls_failed(c, rc, handshaking, why);
	return rc == MOAT_OK;
}

/* Moves the MQTT bytes in <out> through the filter into <wire> (kept by
 * the filter until the handshake ends). False after ending the connection. */
static bool tls_out(struct moat_client *c)
{
	int rc = MOAT_OK;

	if (buf_used(&c->out) > 0)
		rc = c->tls->ops->output(c->tls, buf_head(&c->out), buf_used(&c->out), &c->wire);
	buf_consume(&c->out, buf_used(&c->out));
	if (rc < 0)
		tls_failed(c, rc, !c->tls->ops->ready(c->tls), NULL);
	return rc == MOAT_OK;
}

/* CONNECT with Authentication Method SCRAM-SHA-256 and the client-first-
 * message; the password itself never goes out (on_auth, on_connack). */
static int send_scram_connect(struct moat_client *c, struct mqtt_packet *p)
{
	struct buf first = { 0 };
	int rc;

	scram_end(c);
	c->scram = calloc(1, sizeof(*c->scram));
	if (c->scram == NULL)
		return MOAT_E_NOMEM;
	scram_client_init(c->scram);
	rc = scram_client_first(c->scram, c->username, &first);
	if (rc == MOAT_OK) {
		props_set_auth(&p->connect.props, moat_bytes_str(scram_method),
			       (struct moat_bytes){ buf_head(&first), buf_used(&first) });
		rc = send_packet(c, p);
	}
	buf_fini(&first);
	return rc;
}

/* The server's challenge: answer with the client-final-message. */
static int on_auth(struct moat_client *c, const struct mqtt_auth *a)
{
	struct mqtt_packet p = { .type = MQTT_AUTH };
	struct buf final = { 0 };
	int rc;

	if (c->scram == NULL || c->st != ST_CONNACK || a->rc != MQTT_RC_CONTINUE_AUTH)
		return MOAT_E_PROTOCOL;
	rc = scram_client_final(c->scram, a->props.auth_data.ptr, a->props.auth_data.len,
				(const uint8_t *)c->password, strlen(c->password), &final);
	if (rc == MOAT_OK) {
		p.auth.rc = MQTT_RC_CONTINUE_AUTH;
		props_set_auth(&p.auth.props, moat_bytes_str(scram_method),
			       (struct moat_bytes){ buf_head(&final), buf_used(&final) });
		rc = send_packet(c, &p);
	}
	buf_fini(&final);
	return rc;
}

static int send_connect(struct moat_client *c)
{
	struct mqtt_packet p = { .type = MQTT_CONNECT };
	struct mqtt_connect *k = &p.connect;

	k->version = (uint8_t)c->o.version;
	k->bridge = c->o.bridge;
	k->clean_start = c->o.clean_start;
	k->keep_alive_s = c->o.keep_alive_s;
	k->client_id = moat_bytes_str(c->client_id);
	if (c->o.version == 5) {
		if (c->o.session_expiry_s > 0) {
			k->props.session_expiry_s = c->o.session_expiry_s;
			props_set(&k->props, MQTT_PROP_SESSION_EXPIRY);
		}
		if (c->o.receive_max > 0) {
			k->props.receive_max = c->o.receive_max;
			props_set(&k->props, MQTT_PROP_RECEIVE_MAX);
		}
	}
	if (c->will_topic != NULL) {
		k->will_flag = true;
		k->will_qos = c->o.will_qos;
		k->will_retain = c->o.will_retain;
		k->will_topic = moat_bytes_str(c->will_topic);
		k->will_payload = (struct moat_bytes){ c->will_payload, c->o.will_len };
		if (c->o.version == 5 && c->o.will_delay_s > 0) {
			k->will_props.will_delay_s = c->o.will_delay_s;
			props_set(&k->will_props, MQTT_PROP_WILL_DELAY);
		}
	}
	k->has_username = c->username != NULL;
	k->username = moat_bytes_str(c->username);
	if (c->o.scram && c->o.version == 5 && c->username != NULL && c->password != NULL)
		return send_scram_connect(c, &p);
	k->has_password = c->password != NULL;
	k->password = moat_bytes_str(c->password);
	return send_packet(c, &p);
}

/* Tries the next resolved address; non-blocking. */
static int start_tcp(struct moat_client *c)
{
	while (c->addr_next != NULL) {
		struct addrinfo *ai = c->addr_next;
		int one = 1;

		c->addr_next = ai->ai_next;
		c->fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		if (c->fd < 0)
			continue;
		setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		if (connect(c->fd, ai->ai_addr, ai->ai_addrlen) == 0 || errno == EINPROGRESS) {
			c->st = ST_TCP;
			c->started_ms = clock_mono_ms();
			return MOAT_OK;
		}
		close(c->fd);
		c->fd = -1;
	}
	return MOAT_E_IO;
}

/* Starts a connection attempt: from the caller's open_socket, or to the
 * next resolved address of host:port (resolved once per server). */
static int start_transport(struct moat_client *c)
{
	struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM };
	char port[8];

	if (c->o.open_socket != NULL) {
		c->fd = c->o.open_socket(c->o.open_socket_arg);
		if (c->fd < 0)
			return MOAT_E_IO;
		if (fcntl(c->fd, F_SETFL, fcntl(c->fd, F_GETFL) | O_NONBLOCK) < 0) {
			close(c->fd);
			c->fd = -1;
			return MOAT_E_IO;
		}
		c->st = ST_TCP;
		c->started_ms = clock_mono_ms();
		return MOAT_OK;
	}
	if (c->addrs == NULL) {
		snprintf(port, sizeof(port), "%u", c->o.port);
		if (getaddrinfo(c->host, port, &hints, &c->addrs) != 0)
			return MOAT_E_IO;
	}
	c->addr_next = c->addrs;
	return start_tcp(c);
}

int client_set_server(struct moat_client *c, const char *host, uint16_t port)
{
	char *h = strdup(host), *name = NULL;

	if (h == NULL || (c->tls_ctx != NULL && !c->tls_name_given && (name = strdup(host)) == NULL)) {
		free(h);
		return MOAT_E_NOMEM;
	}
	free(c->host);
	c->host = h;
	if (name != NULL) {
		free(c->tls_name);
		c->tls_name = name;
	}
	if (port != 0)
		c->o.port = port;
	if (c->addrs != NULL)
		freeaddrinfo(c->addrs);
	c->addrs = c->addr_next = NULL;
	return MOAT_OK;
}

int client_connect(struct moat_client *c)
{
	int rc;

	c->disconnecting = false;
	rc = start_transport(c);
	if (rc < 0)
		lost(c, rc, 0);
	return rc == MOAT_OK || c->st == ST_RETRY ? MOAT_OK : rc;
}

static bool pid_used(const struct moat_client *c, uint16_t id)
{
	for (const struct pend *p = c->pend; p != NULL; p = p->next)
		if (p->packet_id == id)
			return true;
	for (size_t i = 0; i < c->ack_count; i++)
		if (c->acks[i].packet_id == id)
			return true;
	return false;
}

static uint16_t take_pid(struct moat_client *c)
{
	for (;;) {
		uint16_t id = c->next_pid;

		c->next_pid = (uint16_t)(id == 65535 ? 1 : id + 1);
		if (!pid_used(c, id))
			return id;
	}
}

/* Unlinks and frees the pend at <*pp>; a message in the queue file gets an
 * ack record there (it is done: acknowledged, refused or dropped). */
static void pend_remove(struct moat_client *c, struct pend **pp)
{
	struct pend *p = *pp;

	if (p == c->pend_tail)
		c->pend_tail = pp == &c->pend
				   ? NULL
				   : (struct pend *)((char *)pp - offsetof(struct pend, next));
	*pp = p->next;
	c->pend_count--;
	c->pend_bytes -= p->len;
	if (p->seq != 0) {
		/* on NOMEM the ack is lost: the message is sent again after a restart */
		qf_ack(&c->qf, p->seq, p->len);
		c->file_count--;
	}
	free(p);
}

/* Appends <e> to the pend list. */
static void pend_append(struct moat_client *c, struct pend *e)
{
	if (c->pend_tail != NULL)
		c->pend_tail->next = e;
	else
		c->pend = e;
	c->pend_tail = e;
	c->pend_count++;
	c->pend_bytes += e->len;
	if (e->seq != 0)
		c->file_count++;
}

/* Loads one replayed message: same packet id unless another message has it,
 * DUP set (it may have been sent before the restart), re-encoded for our
 * MQTT version. */
static int load_entry(struct moat_client *c, const struct qf_entry *fe)
{
	struct mqtt_packet p = {.type = MQTT_PUBLISH};
	struct pend *e;
	size_t n;

	if (qf_decode_publish(fe, &p.publish) < 0)
		return MOAT_E_MALFORMED; /* qf_parse checked it: not reached */
	p.publish.dup = true;
	if (pid_used(c, p.publish.packet_id))
		p.publish.packet_id = take_pid(c);
	n = pkt_encode(NULL, 0, (uint8_t)c->o.version, &p);
	if (n == 0)
		return MOAT_E_LIMIT;
	e = calloc(1, sizeof(*e) + n);
	if (e == NULL)
		return MOAT_E_NOMEM;
	e->seq = fe->seq;
	e->packet_id = p.publish.packet_id;
	e->qos = p.publish.qos;
	e->pubrel = fe->released && e->qos == 2;
	e->len = n;
	pkt_encode(e->data, n, (uint8_t)c->o.version, &p);
	pend_append(c, e);
	if (e->packet_id >= c->next_pid)
		c->next_pid = (uint16_t)(e->packet_id == 65535 ? 1 : e->packet_id + 1);
	return MOAT_OK;
}

static int open_queue(struct moat_client *c, const char *path, char *diag, size_t diag_len)
{
	struct qf_replay r;
	int rc = qf_open(&c->qf, path, &r, diag, diag_len);

	if (rc < 0)
		return rc;
	c->has_qf = true;
	for (size_t i = 0; i < r.count && rc == MOAT_OK; i++) {
		rc = load_entry(c, &r.live[i]);
		if (rc != MOAT_OK && rc != MOAT_E_NOMEM) /* cannot be sent: done with it */
			rc = qf_ack(&c->qf, r.live[i].seq, r.live[i].pkt.len);
	}
	qf_replay_fini(&r);
	if (rc < 0)
		say(diag, diag_len, "out of memory while loading the queue file");
	return rc;
}

/* True while the backlog is paced and has no token for its next message;
 * otherwise takes the token. */
static bool drain_blocked(struct moat_client *c)
{
	uint64_t now, cap;

	if (c->drain_left == 0 || c->o.drain_rate == 0)
		return false;
	now = clock_mono_ms();
	cap = c->o.drain_rate * 50ull > 1000 ? c->o.drain_rate * 50ull : 1000; /* 50 ms of burst */
	c->drain_milli += (now - c->drain_at_ms) * c->o.drain_rate;
	if (c->drain_milli > cap)
		c->drain_milli = cap;
	c->drain_at_ms = now;
	if (c->drain_milli < 1000)
		return true;
	c->drain_milli -= 1000;
	c->drain_left--;
	return false;
}

/* Sends what the server's receive maximum allows, in publish order. */
static void pump(struct moat_client *c)
{
	struct pend **pp = &c->pend;
	bool stop = false; /* out of drain tokens or memory: the PUBLISHes behind wait */

	if (c->st != ST_UP)
		return;
	c->pend_tail = NULL;
	while (*pp != NULL) {
		struct pend *p = *pp;

		if ((!stop || p->pubrel) && !p->sent && (p->qos == 0 || c->inflight < c->inflight_max)) {
			if (p->pubrel) {
				struct mqtt_packet r = { .type = MQTT_PUBREL };

				r.ack.packet_id = p->packet_id;
				send_packet(c, &r);
			} else if (drain_blocked(c) || buf_append(&c->out, p->data, p->len) < 0) {
				stop = true;
				c->pend_tail = p;
				pp = &p->next;
				continue;
			}
			p->sent = true;
			if (p->qos == 0) {
				pend_remove(c, pp);
				continue;
			}
			c->inflight++;
			p->data[0] |= 0x08;	/* any later send of this PUBLISH is a duplicate */
		}
		c->pend_tail = p;
		pp = &p->next;
	}
}

static void append_user_props(struct mqtt_props *props, uint8_t *buf, size_t cap,
			      const struct moat_pub_props *pp)
{
	size_t n = 0;

	for (size_t i = 0; i < pp->user_count; i++) {
		size_t need = props_user_append(buf + n, cap - n, moat_bytes_str(pp->user[i].key),
						moat_bytes_str(pp->user[i].value));

		if (need > cap - n)
			break;
		n += need;
		props->user_count++;
	}
	props->user = (struct moat_bytes){ buf, n };
}

/* Whether a new <n>-byte message fits the offline queue's bounds, after
 * dropping the oldest unsent messages under MOAT_QUEUE_DROP_OLDEST; with
 * <dry_run> nothing is dropped yet. */
static bool make_room(struct moat_client *c, size_t n, bool dry_run)
{
	size_t count = c->pend_count, bytes = c->pend_bytes;

	if (n > c->o.offline_max_bytes)
		return false;
	for (struct pend **pp = &c->pend; *pp != NULL;) {
		struct pend *p = *pp;

		if (count < c->o.offline_max_messages && bytes + n <= c->o.offline_max_bytes)
			return true;
		if (c->o.queue_overflow != MOAT_QUEUE_DROP_OLDEST)
			return false;
		if (p->sent || p->pubrel) {
			pp = &p->next; /* in flight: the server may have it already */
			continue;
		}
		count--;
		bytes -= p->len;
		if (dry_run) {
			pp = &p->next;
		} else {
			c->dropped++;
			pend_remove(c, pp);
		}
	}
	return count < c->o.offline_max_messages && bytes + n <= c->o.offline_max_bytes;
}

int client_publish(struct moat_client *c, const char *topic, const void *payload, size_t len,
		 uint8_t qos, bool retain, const struct moat_pub_props *pp, uint16_t *packet_id)
{
	struct mqtt_packet p = { .type = MQTT_PUBLISH };
	uint8_t user_buf[4096];
	struct pend *e;
	size_t n;

	if (qos > 2 || !topic_name_is_valid(moat_bytes_str(topic)))
		return MOAT_E_INVAL;
	if (c->st == ST_DONE)
		return MOAT_E_CLOSED;
	p.publish.qos = qos;
	p.publish.retain = retain;
	p.publish.topic = moat_bytes_str(topic);
	p.publish.payload = (struct moat_bytes){ payload, len };
	p.publish.packet_id = qos > 0 ? take_pid(c) : 0;
	if (pp != NULL && c->o.version == 5) {
		struct mqtt_props *pr = &p.publish.props;

		if (pp->has_message_expiry) {
			pr->message_expiry_s = pp->message_expiry_s;
			props_set(pr, MQTT_PROP_MESSAGE_EXPIRY);
		}
		if (pp->has_payload_format) {
			pr->payload_format = pp->payload_format;
			props_set(pr, MQTT_PROP_PAYLOAD_FORMAT);
		}
		if (pp->content_type != NULL) {
			pr->content_type = moat_bytes_str(pp->content_type);
			props_set(pr, MQTT_PROP_CONTENT_TYPE);
		}
		if (pp->response_topic != NULL) {
			pr->response_topic = moat_bytes_str(pp->response_topic);
			props_set(pr, MQTT_PROP_RESPONSE_TOPIC);
		}
		if (pp->correlation_data != NULL) {
			pr->correlation_data = (struct moat_bytes){ pp->correlation_data, pp->correlation_len };
			props_set(pr, MQTT_PROP_CORRELATION_DATA);
		}
		append_user_props(pr, user_buf, sizeof(user_buf), pp);
	}
	n = pkt_encode(NULL, 0, (uint8_t)c->o.version, &p);
	if (n == 0 || !make_room(c, n, true))
		return MOAT_E_LIMIT;
	e = malloc(sizeof(*e) + n);
	if (e == NULL)
		return MOAT_E_NOMEM;
	memset(e, 0, sizeof(*e));
	e->packet_id = p.publish.packet_id;
	e->qos = qos;
	e->len = n;
	pkt_encode(e->data, n, (uint8_t)c->o.version, &p);
	if (qos > 0 && c->has_qf) {
		int rc =
		    qf_add(&c->qf, (uint8_t)c->o.version, (struct moat_bytes){e->data, n}, &e->seq);

		if (rc < 0) {
			free(e);
			return rc;
		}
	}
	make_room(c, n, false);
	pend_append(c, e);
	if (packet_id != NULL)
		*packet_id = e->packet_id;
	pump(c);
	return MOAT_OK;
}

static int track_ack(struct moat_client *c, uint8_t type, uint16_t *packet_id, uint32_t count)
{
	if (c->ack_count == sizeof(c->acks) / sizeof(c->acks[0]))
		return MOAT_E_LIMIT;
	c->acks[c->ack_count++] = (struct ack_wait){ .packet_id = *packet_id, .type = type, .count = count };
	return MOAT_OK;
}

int client_subscribe(struct moat_client *c, const char *filter, const struct moat_sub_options *o,
		   uint16_t *packet_id)
{
	struct mqtt_packet p = { .type = MQTT_SUBSCRIBE };
	struct mqtt_sub_opts so = { .qos = o->qos, .no_local = o->no_local,
				    .retain_as_published = o->retain_as_published,
				    .retain_handling = o->retain_handling };
	uint8_t entry[65540];
	size_t n;
	uint16_t id;
	int rc;

	if (c->st != ST_UP)
		return MOAT_E_CLOSED;
	if (o->qos > 2 || o->retain_handling > 2 || filter == NULL || strlen(filter) > 65535)
		return MOAT_E_INVAL;
	n = pkt_sub_entry(entry, sizeof(entry), moat_bytes_str(filter), &so);
	id = take_pid(c);
	p.subscribe.packet_id = id;
	if (o->sub_id > 0 && c->o.version == 5) {
		p.subscribe.props.sub_ids[0] = o->sub_id;
		p.subscribe.props.sub_id_count = 1;
		props_set(&p.subscribe.props, MQTT_PROP_SUB_ID);
	}
	rd_init(&p.subscribe.entries, entry, n);
	rc = track_ack(c, MQTT_SUBACK, &id, 1);
	if (rc == MOAT_OK)
		rc = send_packet(c, &p);
	if (rc == MOAT_OK && packet_id != NULL)
		*packet_id = id;
	return rc;
}

int client_unsubscribe(struct moat_client *c, const char *filter, uint16_t *packet_id)
{
	struct mqtt_packet p = { .type = MQTT_UNSUBSCRIBE };
	uint8_t entry[65540];
	size_t n;
	uint16_t id;
	int rc;

	if (c->st != ST_UP)
		return MOAT_E_CLOSED;
	if (filter == NULL || strlen(filter) > 65535)
		return MOAT_E_INVAL;
	n = pkt_unsub_entry(entry, sizeof(entry), moat_bytes_str(filter));
	id = take_pid(c);
	p.unsubscribe.packet_id = id;
	rd_init(&p.unsubscribe.entries, entry, n);
	rc = track_ack(c, MQTT_UNSUBACK, &id, 1);
	if (rc == MOAT_OK)
		rc = send_packet(c, &p);
	if (rc == MOAT_OK && packet_id != NULL)
		*packet_id = id;
	return rc;
}

int client_disconnect(struct moat_client *c, uint8_t rc)
{
	struct mqtt_packet p = { .type = MQTT_DISCONNECT };

	c->disconnecting = true;
	if (c->st != ST_UP) {
		close_socket(c);
		c->st = ST_DONE;
		return MOAT_OK;
	}
	p.disconnect.rc = rc;
	send_packet(c, &p);
	if (c->tls != NULL && tls_out(c))
		c->tls->ops->shutdown(c->tls, &c->wire); /* close_notify */
	/* best effort: the socket is connected and the packet small */
	for (struct buf *tx = c->tls != NULL ? &c->wire : &c->out;
	     c->fd >= 0 && buf_used(tx) > 0;) {
		ssize_t n = send(c->fd, buf_head(tx), buf_used(tx), MSG_NOSIGNAL);

		if (n <= 0) {
			struct pollfd pfd = { .fd = c->fd, .events = POLLOUT };

			if (n < 0 && errno != EAGAIN && errno != EINTR)
				break;
			if (poll(&pfd, 1, 1000) <= 0)
				break;
			continue;
		}
		buf_consume(tx, (size_t)n);
	}
	close_socket(c);
	c->st = ST_DONE;
	return MOAT_OK;
}

int moat_socket(const struct moat_client *c)
{
	return c->fd;
}

bool moat_want_write(const struct moat_client *c)
{
	return c->st == ST_TCP || buf_used(&c->out) > 0 || buf_used(&c->wire) > 0;
}

int moat_next_timeout_ms(const struct moat_client *c)
{
	uint64_t now = clock_mono_ms(), due;

	switch (c->st) {
	case ST_RETRY: due = c->retry_at_ms; break;
	case ST_TCP:
	case ST_CONNACK: due = c->started_ms + c->o.connect_timeout_ms; break;
	case ST_UP:
		due = UINT64_MAX;
		if (c->o.keep_alive_s > 0)
			due = (c->ping_sent_ms ? c->ping_sent_ms : c->last_tx_ms) +
			      c->o.keep_alive_s * 1000ull;
		if (c->drain_left > 0 && c->o.drain_rate > 0) {
			/* when the bucket next holds a whole token; with one in it, what
			 * holds the backlog is the receive maximum, and an ack wakes us */
			uint64_t have = c->drain_milli + (now - c->drain_at_ms) * c->o.drain_rate;

			if (have < 1000) {
				uint64_t at = now + (1000 - have + c->o.drain_rate - 1) / c->o.drain_rate;

				due = at < due ? at : due;
			}
		}
		if (due == UINT64_MAX)
			return -1;
		break;
	default: return -1;
	}
	return due > now ? (int)(due - now < 60000 ? due - now : 60000) : 0;
}

static void on_connack(struct moat_client *c, const struct mqtt_connack *k)
{
	if (c->scram != NULL && k->rc == MQTT_RC_SUCCESS &&
	    scram_client_verify(c->scram, k->props.auth_data.ptr, k->props.auth_data.len) != MOAT_OK) {
		/* the server did not prove it knows our credential: not the broker we trust */
		scram_end(c);
		c->disconnecting = true;
		lost(c, MOAT_E_DENIED, MQTT_RC_NOT_AUTHORIZED);
		return;
	}
	scram_end(c);
	if (k->rc != MQTT_RC_SUCCESS) {
		if (c->cb.on_connect != NULL)
			c->cb.on_connect(c->cb.arg, k->rc, false);
		c->disconnecting = true;	/* refused: retrying would be refused again */
		lost(c, MOAT_E_DENIED, k->rc);
		return;
	}
	c->st = ST_UP;
	c->backoff_ms = c->o.reconnect_min_ms;
	c->inflight = 0;
	c->inflight_max = props_has(&k->props, MQTT_PROP_RECEIVE_MAX) ? k->props.receive_max : 65535;
	c->server_max_packet = props_has(&k->props, MQTT_PROP_MAX_PACKET_SIZE) ? k->props.max_packet_size : 0;
	if (props_has(&k->props, MQTT_PROP_ASSIGNED_CLIENT_ID)) {
		char *id = malloc(k->props.assigned_client_id.len + 1);

		if (id != NULL) {
			memcpy(id, k->props.assigned_client_id.ptr, k->props.assigned_client_id.len);
			id[k->props.assigned_client_id.len] = '\0';
			free(c->client_id);
			c->client_id = id;
		}
	}
	if (!k->session_present) {
		/* the server forgot our in-flight QoS 2 releases: those flows are over */
		for (struct pend **pp = &c->pend; *pp != NULL;) {
			struct pend *p = *pp;

			if (p->pubrel)
				pend_remove(c, pp);
			else
				pp = &p->next;
			}
		}
	c->drain_left = 0;
	if (c->o.drain_rate > 0) {
		for (struct pend *p = c->pend; p != NULL; p = p->next)
			c->drain_left += !p->pubrel;
		c->drain_milli = 1000; /* the first message goes at once */
		c->drain_at_ms = clock_mono_ms();
	}
	if (c->cb.on_connect != NULL)
		c->cb.on_connect(c->cb.arg, k->rc, k->session_present);
	pump(c);
}

static void finish_pend(struct moat_client *c, uint16_t packet_id, uint8_t type, uint8_t rc)
{
	struct pend **pp;

	for (pp = &c->pend; *pp != NULL; pp = &(*pp)->next) {
		struct pend *p = *pp;

		if (p->packet_id != packet_id || !p->sent)
			continue;
		if (type == MQTT_PUBREC && p->qos == 2 && !p->pubrel && rc < 0x80) {
			struct mqtt_packet r = { .type = MQTT_PUBREL };

			p->pubrel = true;
			if (p->seq != 0)
				qf_rel(&c->qf, p->seq); /* lost on NOMEM: the PUBLISH is resent */
			r.ack.packet_id = packet_id;
			send_packet(c, &r);
			return;
		}
		if ((type == MQTT_PUBACK && p->qos == 1) || (type == MQTT_PUBCOMP && p->pubrel) ||
		    (type == MQTT_PUBREC && rc >= 0x80)) {
			pend_remove(c, pp);
			c->inflight--;
			/* a QoS 2 message was accepted with its PUBREC; a PUBCOMP
			 * 0x92 (packet id not found) only says the broker released
			 * it already, e.g. before it restarted: still delivered */
			if (type == MQTT_PUBCOMP)
				rc = 0;
			if (c->cb.on_publish_done != NULL)
				c->cb.on_publish_done(c->cb.arg, packet_id, rc);
			pump(c);
		}
		return;
	}
}

static int on_acks(struct moat_client *c, uint8_t type, uint16_t packet_id, struct moat_bytes rcs)
{
	for (size_t i = 0; i < c->ack_count; i++) {
		struct ack_wait a = c->acks[i];

		if (a.packet_id != packet_id || a.type != type)
			continue;
		if (c->o.version == 5 || type == MQTT_SUBACK) {
			if (rcs.len != a.count)
				return MOAT_E_PROTOCOL;	/* CVE-2024-10525: wrong number of codes */
		}
		c->acks[i] = c->acks[--c->ack_count];
		if (type == MQTT_SUBACK && c->cb.on_subscribe != NULL)
			c->cb.on_subscribe(c->cb.arg, packet_id, rcs.ptr, rcs.len);
		if (type == MQTT_UNSUBACK && c->cb.on_unsubscribe != NULL)
			c->cb.on_unsubscribe(c->cb.arg, packet_id, rcs.ptr, rcs.len);
		return MOAT_OK;
	}
	return MOAT_E_PROTOCOL;	/* an acknowledgement for nothing we asked */
}

static int deliver(struct moat_client *c, const struct mqtt_publish *p)
{
	struct moat_message m = { 0 };
	struct moat_user_prop user[64];
	char *strings = NULL, *topic;
	size_t need = p->topic.len + 1, nu = 0;
	struct rd it;
	struct moat_bytes k, v;
	int rc = MOAT_OK;

	if (props_has(&p->props, MQTT_PROP_TOPIC_ALIAS) || p->topic.len == 0)
		return MOAT_E_PROTOCOL;	/* we allow the server no topic aliases */
	rd_init(&it, p->props.user.ptr, p->props.user.len);
	while (props_user_next(&it, &k, &v) && nu < 64) {
		need += k.len + v.len + 2;
		nu++;
	}
	strings = malloc(need);
	if (strings == NULL)
		return MOAT_E_NOMEM;
	topic = strings;
	memcpy(topic, p->topic.ptr, p->topic.len);
	topic[p->topic.len] = '\0';
	char *cur = topic + p->topic.len + 1;
	rd_init(&it, p->props.user.ptr, p->props.user.len);
	for (size_t i = 0; i < nu && props_user_next(&it, &k, &v); i++) {
		user[i].key = cur;
		memcpy(cur, k.ptr, k.len);
		cur[k.len] = '\0';
		cur += k.len + 1;
		user[i].value = cur;
		memcpy(cur, v.ptr, v.len);
		cur[v.len] = '\0';
		cur += v.len + 1;
	}
	m.topic = topic;
	m.payload = p->payload.ptr;
	m.payload_len = p->payload.len;
	m.qos = p->qos;
	m.retain = p->retain;
	m.dup = p->dup;
	m.has_message_expiry = props_has(&p->props, MQTT_PROP_MESSAGE_EXPIRY);
	m.message_expiry_s = p->props.message_expiry_s;
	m.content_type = p->props.content_type.ptr;
	m.content_type_len = p->props.content_type.len;
	m.response_topic = p->props.response_topic.ptr;
	m.response_topic_len = p->props.response_topic.len;
	m.correlation_data = p->props.correlation_data.ptr;
	m.correlation_len = p->props.correlation_data.len;
	m.sub_ids = p->props.sub_ids;
	m.sub_id_count = p->props.sub_id_count < MQTT_MAX_SUB_IDS ? p->props.sub_id_count : MQTT_MAX_SUB_IDS;
	m.user = user;
	m.user_count = nu;
	if (c->cb.on_message_checked != NULL)
		rc = c->cb.on_message_checked(c->cb.arg, &m) == MOAT_OK ? MOAT_OK : MOAT_E_LIMIT;
	else if (c->cb.on_message != NULL)
		c->cb.on_message(c->cb.arg, &m);
	free(strings);
	return rc;
}

static int on_publish(struct moat_client *c, const struct mqtt_publish *p)
{
	struct mqtt_packet a = { .type = p->qos == 1 ? MQTT_PUBACK : MQTT_PUBREC };
	int rc;

	if (p->qos == 2) {
		for (size_t i = 0; i < c->qos2_in_count; i++)
			if (c->qos2_in[i] == p->packet_id)
				goto ack;	/* a resend: delivered already */
		if (c->qos2_in_count == c->qos2_in_cap) {
			size_t cap = c->qos2_in_cap ? c->qos2_in_cap * 2 : 8;
			uint16_t *n = realloc(c->qos2_in, cap * sizeof(*n));

			if (n == NULL)
				return MOAT_E_NOMEM;
			c->qos2_in = n;
			c->qos2_in_cap = cap;
		}
		c->qos2_in[c->qos2_in_count++] = p->packet_id;
	}
	rc = deliver(c, p);
	if (rc < 0 && p->qos == 2)
		c->qos2_in_count--;	/* not taken: its resend is delivered again */
	if (rc < 0)
		return rc;
	if (p->qos == 0)
		return MOAT_OK;
ack:
	a.ack.packet_id = p->packet_id;
	return send_packet(c, &a);
}

static int on_pubrel(struct moat_client *c, uint16_t packet_id)
{
	struct mqtt_packet a = { .type = MQTT_PUBCOMP };

	for (size_t i = 0; i < c->qos2_in_count; i++) {
		if (c->qos2_in[i] == packet_id) {
			c->qos2_in[i] = c->qos2_in[--c->qos2_in_count];
			break;
		}
	}
	a.ack.packet_id = packet_id;
	return send_packet(c, &a);
}

static int handle(struct moat_client *c, struct mqtt_packet *p)
{
	if (c->st == ST_CONNACK && p->type != MQTT_CONNACK && p->type != MQTT_AUTH)
		return MOAT_E_PROTOCOL;
	switch (p->type) {
	case MQTT_CONNACK:
		if (c->st != ST_CONNACK)
			return MOAT_E_PROTOCOL;	/* a second CONNACK */
		on_connack(c, &p->connack);
		return MOAT_OK;
	case MQTT_PUBLISH: return on_publish(c, &p->publish);
	case MQTT_PUBACK:
	case MQTT_PUBREC:
	case MQTT_PUBCOMP:
		finish_pend(c, p->ack.packet_id, p->type, p->ack.rc);
		return MOAT_OK;
	case MQTT_PUBREL: return on_pubrel(c, p->ack.packet_id);
	case MQTT_SUBACK: return on_acks(c, MQTT_SUBACK, p->suback.packet_id, p->suback.rcs);
	case MQTT_UNSUBACK: return on_acks(c, MQTT_UNSUBACK, p->unsuback.packet_id, p->unsuback.rcs);
	case MQTT_PINGRESP:
		c->ping_sent_ms = 0;
		return MOAT_OK;
	case MQTT_DISCONNECT:
		lost(c, MOAT_E_CLOSED, p->disconnect.rc);
		return MOAT_E_CLOSED;
	case MQTT_AUTH: return on_auth(c, &p->auth);
	default:
		return MOAT_E_PROTOCOL;	/* CONNECT, SUBSCRIBE, …, AUTH: not from a server */
	}
}

static void read_input(struct moat_client *c)
{
	bool closed = false;

	for (;;) {
		struct buf *rx = c->tls != NULL ? &c->rx : &c->in;
		ssize_t n;

		if (buf_reserve(rx, 16384) < 0) {
			lost(c, MOAT_E_NOMEM, 0);
			return;
		}
		n = recv(c->fd, rx->data + rx->len, rx->cap - rx->len, 0);
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			break;
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			/* what arrived before the close (a PUBREC, the server's
			 * DISCONNECT) is still handled first: dropping a PUBREC
			 * would make a QoS 2 message go out twice */
			closed = true;
			break;
		}
		rx->len += (size_t)n;
		c->last_rx_ms = clock_mono_ms();
		if (c->tls != NULL && !tls_in(c))
			return;
	}
	while (c->fd >= 0) {
		struct mqtt_frame f;
		struct mqtt_packet p;
		int rc = frame_decode(buf_head(&c->in), buf_used(&c->in), MQTT_MAX_PACKET_SIZE, &f);

		if (rc == MOAT_E_AGAIN || (rc == MOAT_OK && buf_used(&c->in) - f.hdr_len < f.rem_len))
			break;
		if (rc == MOAT_OK)
			rc = pkt_decode(&f, buf_head(&c->in) + f.hdr_len, (uint8_t)c->o.version, &p);
		if (rc < 0) {
			lost(c, rc, 0);	/* malformed server packets end the connection */
			return;
		}
		rc = handle(c, &p);
		if (c->fd < 0)
			return;	/* handled a DISCONNECT or a refused CONNACK */
		buf_consume(&c->in, f.hdr_len + f.rem_len);
		if (rc < 0) {
			lost(c, rc, 0);
			return;
		}
	}
	if (closed && c->fd >= 0) {
		lost(c, MOAT_E_CLOSED, 0);
		return;
	}
	buf_trim(&c->in, 0);
}

static void write_output(struct moat_client *c)
{
	struct buf *tx = c->tls != NULL ? &c->wire : &c->out;

	if (c->tls != NULL && !tls_out(c))
		return;
	while (buf_used(tx) > 0) {
		ssize_t n = send(c->fd, buf_head(tx), buf_used(tx), MSG_NOSIGNAL);

		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return;
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			lost(c, MOAT_E_CLOSED, 0);
			return;
		}
		buf_consume(tx, (size_t)n);
		c->last_tx_ms = clock_mono_ms();
	}
	buf_trim(tx, 0);
}

static void on_tcp_ready(struct moat_client *c)
{
	int err = 0;
	socklen_t len = sizeof(err);

	getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len);
	if (err != 0) {
		close(c->fd);
		c->fd = -1;
		if (start_tcp(c) < 0)
			lost(c, MOAT_E_IO, 0);
		return;
	}
	c->st = ST_CONNACK;
	c->last_rx_ms = c->last_tx_ms = clock_mono_ms();
	c->ping_sent_ms = 0;
	if (c->tls_ctx != NULL && !tls_start(c))
		return;
	if (send_connect(c) < 0)
		lost(c, MOAT_E_NOMEM, 0);
}

static void run_timers(struct moat_client *c)
{
	uint64_t now = clock_mono_ms();

	if (c->st == ST_UP && c->drain_left > 0)
		pump(c); /* tokens accrued since the last send */
	if (c->st == ST_RETRY && now >= c->retry_at_ms) {
		if (start_transport(c) < 0)
			lost(c, MOAT_E_IO, 0);
	} else if ((c->st == ST_TCP || c->st == ST_CONNACK) && now - c->started_ms >= c->o.connect_timeout_ms) {
		lost(c, MOAT_E_TIMEOUT, 0);
	} else if (c->st == ST_UP && c->o.keep_alive_s > 0) {
		uint64_t ka = c->o.keep_alive_s * 1000ull;

		if (c->ping_sent_ms != 0 && now - c->ping_sent_ms >= ka) {
			lost(c, MOAT_E_TIMEOUT, 0);	/* no PINGRESP within a keep-alive period */
		} else if (c->ping_sent_ms == 0 && now - c->last_tx_ms >= ka) {
			struct mqtt_packet p = { .type = MQTT_PINGREQ };

			send_packet(c, &p);
			c->ping_sent_ms = now;
		}
	}
}

struct live_iter {
	const struct pend *cur;
	uint8_t version;
};

/* Yields the file-backed pends, in order, to qf_compact. */
static bool next_live(void *arg, struct qf_entry *e)
{
	struct live_iter *it = arg;

	while (it->cur != NULL && it->cur->seq == 0)
		it->cur = it->cur->next;
	if (it->cur == NULL)
		return false;
	*e = (struct qf_entry){.seq = it->cur->seq,
			       .version = it->version,
			       .released = it->cur->pubrel,
			       .pkt = {it->cur->data, it->cur->len}};
	it->cur = it->cur->next;
	return true;
}

/* Writes the queue file's pending ack/release records, and shrinks the
 * file: cut back to its header once nothing in it is live, rewritten when
 * mostly acknowledged. Failures leave a longer file, never a wrong one. */
static void sync_queue(struct moat_client *c)
{
	if (c->file_count == 0 && c->qf.size > QF_HEADER_LEN) {
		qf_reset(&c->qf);
	} else if (qf_flush(&c->qf) == MOAT_OK && qf_should_compact(&c->qf)) {
		struct live_iter it = {c->pend, (uint8_t)c->o.version};

		qf_compact(&c->qf, next_live, &it);
	}
}

int client_loop_once(struct moat_client *c, int timeout_ms)
{
	int t = moat_next_timeout_ms(c);

	if (c->st == ST_DONE || c->st == ST_IDLE)
		return MOAT_E_CLOSED;
	if (t < 0 || (timeout_ms >= 0 && timeout_ms < t))
		t = timeout_ms;
	if (c->fd >= 0) {
		struct pollfd pfd = { .fd = c->fd, .events = POLLIN };

		if (moat_want_write(c))
			pfd.events |= POLLOUT;
		if (poll(&pfd, 1, t) > 0) {
			if (c->st == ST_TCP && (pfd.revents & (POLLOUT | POLLERR | POLLHUP)))
				on_tcp_ready(c);
			else if (pfd.revents & (POLLIN | POLLERR | POLLHUP))
				read_input(c);
		}
	} else if (t > 0) {
		poll(NULL, 0, t);
	}
	run_timers(c);
	if (c->fd >= 0 && c->st != ST_TCP)
		write_output(c);
	if (c->has_qf)
		sync_queue(c);
	return c->st == ST_DONE ? MOAT_E_CLOSED : MOAT_OK;
}
