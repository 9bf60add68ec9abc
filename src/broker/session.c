/*
 * Sessions: the session table, and each session's bounded queue and
 * in-flight window of QoS 1/2 deliveries with their acknowledgements.
 * Connections (conn.c) call in with decoded packets; everything here runs on
 * the broker's one event loop.
 */
#include "broker/broker.h"

#include <stdlib.h>
#include <string.h>

#include <moat/error.h>

#include "base/clock.h"
#include "base/log.h"

#define SESSION_BUCKETS 4096

static size_t hash_bytes(struct moat_bytes b)
{
	uint64_t h = 1469598103934665603ull;	/* FNV-1a */

	for (size_t i = 0; i < b.len; i++)
		h = (h ^ b.ptr[i]) * 1099511628211ull;
	return (size_t)h;
}

int broker_init(struct broker *b, struct moat_config *cfg)
{
	memset(b, 0, sizeof(*b));
	b->cfg = cfg;
	b->session_buckets = SESSION_BUCKETS;
	b->sessions = calloc(b->session_buckets, sizeof(*b->sessions));
	if (b->sessions == NULL || route_init(b) < 0) {
		broker_fini(b);
		return MOAT_E_NOMEM;
	}
	b->started_ms = clock_mono_ms();
	b->started_wall_s = clock_wall_s();
	return MOAT_OK;
}

void broker_fini(struct broker *b)
{
	for (size_t i = 0; b->sessions != NULL && i < b->session_buckets; i++)
		while (b->sessions[i] != NULL)
			sess_destroy(b, b->sessions[i]);
	route_fini(b);
	while (b->free_deliveries != NULL) {
		struct delivery *d = b->free_deliveries;

		b->free_deliveries = d->next;
		free(d);
	}
	b->free_delivery_count = 0;
	free(b->sessions);
	b->sessions = NULL;
}

struct session *sess_find(struct broker *b, struct moat_bytes client_id)
{
	struct session *s = b->sessions[hash_bytes(client_id) % b->session_buckets];

	for (; s != NULL; s = s->next)
		if (strlen(s->client_id) == client_id.len &&
		    memcmp(s->client_id, client_id.ptr, client_id.len) == 0)
			return s;
	return NULL;
}

struct session *sess_create(struct broker *b, struct moat_bytes client_id)
{
	struct session *s = calloc(1, sizeof(*s));
	size_t h = hash_bytes(client_id) % b->session_buckets;

	if (s == NULL)
		return NULL;
	s->client_id = malloc(client_id.len + 1);
	if (s->client_id == NULL) {
		free(s);
		return NULL;
	}
	memcpy(s->client_id, client_id.ptr, client_id.len);
	s->client_id[client_id.len] = '\0';
	s->next_packet_id = 1;
	s->next = b->sessions[h];
	b->sessions[h] = s;
	b->session_count++;
	return s;
}

/* Deliveries are recycled through a bounded free list, so steady QoS 1/2
 * traffic allocates none. */
enum { DELIVERY_CACHE_MAX = 4096 };

static struct delivery *delivery_new(struct broker *b)
{
	struct delivery *d = b->free_deliveries;

	if (d == NULL)
		return calloc(1, sizeof(*d));
	b->free_deliveries = d->next;
	b->free_delivery_count--;
	*d = (struct delivery){ 0 };
	return d;
}

static void free_deliveries(struct broker *b, struct delivery *d)
{
	while (d != NULL) {
		struct delivery *next = d->next;

		msg_unref(d->msg);
		if (b->free_delivery_count < DELIVERY_CACHE_MAX) {
			d->next = b->free_deliveries;
			b->free_deliveries = d;
			b->free_delivery_count++;
		} else {
			free(d);
		}
		d = next;
	}
}

void sess_destroy(struct broker *b, struct session *s)
{
	struct session **pp = &b->sessions[hash_bytes(moat_bytes_str(s->client_id)) % b->session_buckets];

	while (*pp != s)
		pp = &(*pp)->next;
	*pp = s->next;
	b->session_count--;
	if (s->will != NULL) {
		/* the session ends before the will delay: publish now [MQTT-3.1.3-9] */
		broker_publish(b, s->will);
		msg_unref(s->will);
	}
	sess_remove_subs(b, s);
	free_deliveries(b, s->inflight);
	free_deliveries(b, s->queue);
	free(s->qos2_in);
	free(s->client_id);
	free(s);
}

/* ---- delivery ---- */

static uint32_t inflight_limit(const struct broker *b, const struct session *s)
{
	uint32_t lim = b->cfg->max_inflight_messages ? b->cfg->max_inflight_messages : 65535;

	if (s->conn != NULL && s->conn->client_receive_max < lim)
		lim = s->conn->client_receive_max;
	return lim;
}

static bool packet_id_in_use(const struct session *s, uint16_t id)
{
	for (const struct delivery *d = s->inflight; d != NULL; d = d->next)
		if (d->packet_id == id)
			return true;
	return false;
}

static uint16_t next_packet_id(struct session *s)
{
	do {
		s->next_packet_id = (uint16_t)(s->next_packet_id == 65535 ? 1 : s->next_packet_id + 1);
	} while (packet_id_in_use(s, s->next_packet_id));
	return s->next_packet_id;
}

void sess_pump(struct broker *b, struct session *s)
{
	uint64_t now = clock_mono_ms();

	while (s->conn != NULL && s->queue != NULL && s->inflight_count < inflight_limit(b, s)) {
		struct delivery *d = s->queue;

		s->queue = d->next;
		if (s->queue == NULL)
			s->queue_tail = NULL;
		s->queue_count--;
		s->queue_bytes -= d->msg->payload.len;
		d->next = NULL;
		if (msg_expired(d->msg, now)) {
			free_deliveries(b, d);
			continue;
		}
		d->packet_id = next_packet_id(s);
		if (s->inflight_tail != NULL)
			s->inflight_tail->next = d;
		else
			s->inflight = d;
		s->inflight_tail = d;
		s->inflight_count++;
		conn_send_publish(s->conn, d, false, now);
	}
}

void sess_resend_inflight(struct broker *b, struct session *s)
{
	uint64_t now = clock_mono_ms();

	(void)b;
	for (struct delivery *d = s->inflight; d != NULL && s->conn != NULL; d = d->next) {
		if (d->pubrel_sent) {
			struct mqtt_packet p = { .type = MQTT_PUBREL };

			p.ack.packet_id = d->packet_id;
			conn_send_packet(s->conn, &p);
		} else {
			conn_send_publish(s->conn, d, true, now);
		}
	}
}

static void inflight_remove(struct broker *b, struct session *s, struct delivery *d,
			    struct delivery *prev)
{
	if (prev != NULL)
		prev->next = d->next;
	else
		s->inflight = d->next;
	if (s->inflight_tail == d)
		s->inflight_tail = prev;
	s->inflight_count--;
	d->next = NULL;
	free_deliveries(b, d);
}

void sess_on_ack(struct broker *b, struct session *s, uint8_t type, uint16_t packet_id, uint8_t rc)
{
	struct delivery *prev = NULL, *d;

	for (d = s->inflight; d != NULL; prev = d, d = d->next)
		if (d->packet_id == packet_id)
			break;
	if (d == NULL)
		return;	/* unknown id: nothing in flight under it; ignore like mosquitto */
	if (type == MQTT_PUBREC && rc >= 0x80) {
		inflight_remove(b, s, d, prev);	/* the client refused it: the flow ends [MQTT-4.3.3] */
		sess_pump(b, s);
		return;
	}
	if (type == MQTT_PUBREC && d->qos == 2 && !d->pubrel_sent) {
		struct mqtt_packet p = { .type = MQTT_PUBREL };

		d->pubrel_sent = true;
		p.ack.packet_id = packet_id;
		conn_send_packet(s->conn, &p);
		return;
	}
	if ((type == MQTT_PUBACK && d->qos == 1) || (type == MQTT_PUBCOMP && d->pubrel_sent)) {
		inflight_remove(b, s, d, prev);
		b->sys.msgs_sent++;
		sess_pump(b, s);
	}
}

static void enqueue(struct broker *b, struct session *s, struct delivery *d)
{
	const struct moat_config *cfg = b->cfg;

	if ((cfg->max_queued_messages > 0 && s->queue_count >= cfg->max_queued_messages) ||
	    (cfg->max_queued_bytes > 0 && s->queue_bytes + d->msg->payload.len > cfg->max_queued_bytes)) {
		b->sys.publish_dropped++;
		free_deliveries(b, d);
		return;
	}
	if (s->queue_tail != NULL)
		s->queue_tail->next = d;
	else
		s->queue = d;
	s->queue_tail = d;
	s->queue_count++;
	s->queue_bytes += d->msg->payload.len;
}

void sess_deliver(struct broker *b, struct session *s, struct msg *m, uint8_t qos, bool retain,
		  const uint32_t *sub_ids, uint8_t sub_id_count)
{
	struct delivery *d;

	if (qos == 0) {
		struct delivery tmp = { .msg = m, .qos = 0, .retain = retain,
					.sub_id_count = sub_id_count };

		if (s->conn == NULL || !s->conn->connected) {
			return;	/* QoS 0 is not queued for offline sessions (mosquitto's default) */
		}
		if (s->conn->out.len - s->conn->out.off > b->cfg->max_output_bytes) {
			b->sys.publish_dropped++;	/* slow consumer: drop QoS 0 */
			return;
		}
		memcpy(tmp.sub_ids, sub_ids, sub_id_count * sizeof(*sub_ids));
		if (conn_send_publish(s->conn, &tmp, false, clock_mono_ms()) == MOAT_OK)
			b->sys.msgs_sent++;
		return;
	}
	d = delivery_new(b);
	if (d == NULL) {
		b->sys.publish_dropped++;
		return;
	}
	d->msg = msg_ref(m);
	d->qos = qos;
	d->retain = retain;
	d->sub_id_count = sub_id_count;
	memcpy(d->sub_ids, sub_ids, sub_id_count * sizeof(*sub_ids));
	enqueue(b, s, d);
	sess_pump(b, s);
}

