/*
 * Sessions: the shared session table (a mutex, taken at CONNECT and when a
 * session ends), and each session's bounded queue and in-flight window of
 * QoS 1/2 deliveries with their acknowledgements, which only the owning
 * worker touches.
 */
#include "broker/broker.h"

#include <stdlib.h>
#include <string.h>

#include <moat/error.h>

#include "base/clock.h"
#include "base/log.h"
#include "broker/persist.h"
#include "broker/security.h"
#include "cluster/cluster.h"

static size_t hash_bytes(struct moat_bytes b)
{
	uint64_t h = 1469598103934665603ull;	/* FNV-1a */

	for (size_t i = 0; i < b.len; i++)
		h = (h ^ b.ptr[i]) * 1099511628211ull;
	return (size_t)h;
}

static struct session *find_locked(struct broker *b, struct moat_bytes client_id)
{
	struct session *s = b->sessions[hash_bytes(client_id) % b->session_buckets];

	for (; s != NULL; s = s->next)
		if (strlen(s->client_id) == client_id.len &&
		    memcmp(s->client_id, client_id.ptr, client_id.len) == 0)
			return s;
	return NULL;
}

static struct session *create_locked(struct worker *w, struct moat_bytes client_id)
{
	struct broker *b = w->b;
	struct session *s = calloc(1, sizeof(*s) + b->nworkers * sizeof(s->marks[0]));
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
	s->owner = w;
	atomic_init(&s->refs, 1);
	atomic_init(&s->online, false);
	s->next = b->sessions[h];
	b->sessions[h] = s;
	b->session_count++;
	s->wnext = w->sessions;
	if (w->sessions != NULL)
		w->sessions->wprev = s;
	w->sessions = s;
	return s;
}

struct session *sess_find(struct broker *b, struct moat_bytes client_id)
{
	struct session *s;

	pthread_mutex_lock(&b->table_lock);
	s = find_locked(b, client_id);
	pthread_mutex_unlock(&b->table_lock);
	return s;
}

struct session *sess_find_ref(struct broker *b, struct moat_bytes client_id)
{
	struct session *s;

	pthread_mutex_lock(&b->table_lock);
	s = find_locked(b, client_id);
	if (s != NULL)
		atomic_fetch_add_explicit(&s->refs, 1, memory_order_relaxed);
	pthread_mutex_unlock(&b->table_lock);
	return s;
}

struct session *sess_claim(struct worker *w, struct moat_bytes client_id, bool *created)
{
	struct broker *b = w->b;
	struct session *s;

	pthread_mutex_lock(&b->table_lock);
	s = find_locked(b, client_id);
	*created = s == NULL;
	if (s == NULL)
		s = create_locked(w, client_id);
	pthread_mutex_unlock(&b->table_lock);
	return s;
}

void sess_unref(struct session *s)
{
	if (atomic_fetch_sub_explicit(&s->refs, 1, memory_order_acq_rel) == 1) {
		free(s->client_id);
		free(s);
	}
}

/* Deliveries are recycled through a bounded free list, so steady QoS 1/2
 * traffic allocates none. */
enum { DELIVERY_CACHE_MAX = 4096 };

static struct delivery *delivery_new(struct worker *w)
{
	struct delivery *d = w->free_deliveries;

	if (d == NULL)
		return calloc(1, sizeof(*d));
	w->free_deliveries = d->next;
	w->free_delivery_count--;
	*d = (struct delivery){ 0 };
	return d;
}

/* Frees the deliveries from <d> on, which <s> no longer holds, and their entries in the store. */
static void free_deliveries(struct worker *w, const struct session *s, struct delivery *d)
{
	while (d != NULL) {
		struct delivery *next = d->next;

		persist_entry_drop(w, s->client_id, d->store_id, d->msg, d->store_shared);
		msg_unref(d->msg);
		if (w->free_delivery_count < DELIVERY_CACHE_MAX) {
			d->next = w->free_deliveries;
			w->free_deliveries = d;
			w->free_delivery_count++;
		} else {
			free(d);
		}
		d = next;
	}
}

/* Publishes a pending delayed Will now: its session ends first [MQTT-3.1.3-9]. */
void sess_publish_will(struct worker *w, struct session *s)
{
	if (s->will != NULL) {
		struct msg *will = s->will;

		s->will = NULL;
		persist_will(w, s);
		cluster_session_changed(w, s); /* the entry loses it: no adopter sends it again */
		if (authz_session(w, s, will->topic, ACCESS_WRITE))
			broker_publish(w, will, NULL);
		msg_unref(will);
	}
}

/* Takes <s>'s queue and in-flight window out of <w>'s gauges. */
static void uncount_deliveries(struct worker *w, const struct session *s)
{
	uint64_t inflight_bytes = 0;

	for (const struct delivery *d = s->inflight; d != NULL; d = d->next)
		inflight_bytes += d->msg->payload.len;
	stat_sub(&w->sys.queued_msgs, s->queue_count);
	stat_sub(&w->sys.queued_bytes, s->queue_bytes);
	stat_sub(&w->sys.inflight_msgs, s->inflight_count);
	stat_sub(&w->sys.inflight_bytes, inflight_bytes);
}

/* Drops everything <s> holds but its identity. */
static void clear_state(struct worker *w, struct session *s)
{
	uncount_deliveries(w, s);
	sess_publish_will(w, s);
	sess_remove_subs(w->b, s);
	free_deliveries(w, s, s->inflight);
	free_deliveries(w, s, s->queue);
	free(s->qos2_in);
	atomic_fetch_sub_explicit(&s->backlog, s->queue_count, memory_order_relaxed);
	s->inflight = s->inflight_tail = s->queue = s->queue_tail = NULL;
	s->inflight_count = s->queue_count = 0;
	s->queue_bytes = 0;
	s->qos2_in = NULL;
	s->qos2_in_count = s->qos2_in_cap = 0;
}

void sess_reset(struct worker *w, struct session *s)
{
	clear_state(w, s);
	persist_session_drop(w, s);
	s->next_packet_id = 1;
}

void sess_destroy(struct worker *w, struct session *s)
{
	struct broker *b = w->b;
	struct session **pp;

	pthread_mutex_lock(&b->table_lock);
	pp = &b->sessions[hash_bytes(moat_bytes_str(s->client_id)) % b->session_buckets];
	while (*pp != s)
		pp = &(*pp)->next;
	*pp = s->next;
	b->session_count--;
	pthread_mutex_unlock(&b->table_lock);
	if (s->wprev != NULL)
		s->wprev->wnext = s->wnext;
	else
		w->sessions = s->wnext;
	if (s->wnext != NULL)
		s->wnext->wprev = s->wprev;
	clear_state(w, s);
	persist_session_drop(w, s);
	cluster_session_ended(w, s);
	authz_clear_identity(s);
	s->dead = true;
	sess_unref(s);
}

/* ---- delivery ---- */

static uint32_t inflight_limit(const struct moat_config *cfg, const struct session *s)
{
	uint32_t lim = cfg->max_inflight_messages ? cfg->max_inflight_messages : 65535;

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

/* A message larger than the client's Maximum Packet Size is discarded as if
 * its flow had completed [MQTT-3.1.2-25], so it frees its in-flight slot. */
static void too_big_for_client(struct worker *w, const struct session *s, struct delivery *d)
{
	stat_add(&w->sys.publish_dropped, 1);
	free_deliveries(w, s, d);
}

static void inflight_append(struct worker *w, struct session *s, struct delivery *d)
{
	if (s->inflight_tail != NULL)
		s->inflight_tail->next = d;
	else
		s->inflight = d;
	s->inflight_tail = d;
	s->inflight_count++;
	stat_add(&w->sys.inflight_msgs, 1);
	stat_add(&w->sys.inflight_bytes, d->msg->payload.len);
}

void sess_pump(struct worker *w, struct session *s)
{
	uint64_t now = clock_mono_ms();

	while (s->conn != NULL && s->queue != NULL && s->inflight_count < inflight_limit(w->b->cfg, s)) {
		struct delivery *d = s->queue;

		s->queue = d->next;
		if (s->queue == NULL)
			s->queue_tail = NULL;
		s->queue_count--;
		s->queue_bytes -= d->msg->payload.len;
		stat_sub(&w->sys.queued_msgs, 1);
		stat_sub(&w->sys.queued_bytes, d->msg->payload.len);
		atomic_fetch_sub_explicit(&s->backlog, 1, memory_order_relaxed);
		d->next = NULL;
		/* rights are checked when a message goes out too: a reload may have
		 * taken them away while it waited in the queue */
		if (msg_expired(d->msg, now) || !authz_session(w, s, d->msg->topic, ACCESS_READ)) {
			free_deliveries(w, s, d);
			continue;
		}
		d->packet_id = next_packet_id(s);
		if (conn_send_publish(s->conn, d, false, now) == MOAT_E_LIMIT) {
			too_big_for_client(w, s, d);
			continue;
		}
		if (d->store_id != 0) {
			/* a QoS 2 PUBLISH goes out only once its packet id is on disk, so a
			 * restart resends it under the id the client knows */
			persist_entry_update(w, s, d);
			if (d->qos == 2)
				s->conn->gate = PERSIST_GATE_THIS_PASS;
		}
		inflight_append(w, s, d);
	}
}

static void inflight_remove(struct worker *w, struct session *s, struct delivery *d,
			    struct delivery *prev)
{
	if (prev != NULL)
		prev->next = d->next;
	else
		s->inflight = d->next;
	if (s->inflight_tail == d)
		s->inflight_tail = prev;
	s->inflight_count--;
	stat_sub(&w->sys.inflight_msgs, 1);
	stat_sub(&w->sys.inflight_bytes, d->msg->payload.len);
	d->next = NULL;
	free_deliveries(w, s, d);
}

void sess_resend_inflight(struct worker *w, struct session *s)
{
	uint64_t now = clock_mono_ms();
	struct delivery *prev = NULL, *d, *next;

	for (d = s->inflight; d != NULL && s->conn != NULL; d = next) {
		next = d->next;
		if (d->pubrel_sent) {
			struct mqtt_packet p = { .type = MQTT_PUBREL };

			p.ack.packet_id = d->packet_id;
			conn_send_packet(s->conn, &p);
		} else if (conn_send_publish(s->conn, d, true, now) == MOAT_E_LIMIT) {
			/* the client came back with a smaller Maximum Packet Size */
			stat_add(&w->sys.publish_dropped, 1);
			inflight_remove(w, s, d, prev);
			continue;
		}
		prev = d;
	}
}

bool sess_congested(const struct moat_config *cfg, struct session *s, uint64_t now_ms)
{
	uint32_t high_water = cfg->queue_high_water;

	if (cfg->max_queued_messages > 0 && high_water > cfg->max_queued_messages / 2)
		high_water = cfg->max_queued_messages / 2;
	return cfg->queue_high_water > 0 &&
	       atomic_load_explicit(&s->backlog, memory_order_relaxed) > high_water &&
	       atomic_load_explicit(&s->online, memory_order_relaxed) &&
	       now_ms - atomic_load_explicit(&s->last_ack_ms, memory_order_relaxed) < BACKLOG_STUCK_MS;
}

void sess_on_ack(struct worker *w, struct session *s, uint8_t type, uint16_t packet_id, uint8_t rc)
{
	struct delivery *prev = NULL, *d;

	atomic_store_explicit(&s->last_ack_ms, clock_mono_ms(), memory_order_relaxed);
	for (d = s->inflight; d != NULL; prev = d, d = d->next)
		if (d->packet_id == packet_id)
			break;
	if (d == NULL)
		return;	/* unknown id: nothing in flight under it; ignore like mosquitto */
	if (type == MQTT_PUBREC && rc >= 0x80) {
		inflight_remove(w, s, d, prev);	/* the client refused it: the flow ends [MQTT-4.3.3] */
		sess_pump(w, s);
		return;
	}
	if (type == MQTT_PUBREC && d->qos == 2 && !d->pubrel_sent) {
		struct mqtt_packet p = { .type = MQTT_PUBREL };

		d->pubrel_sent = true;
		persist_entry_update(w, s, d);	/* the PUBREL waits for it (conn.c) */
		p.ack.packet_id = packet_id;
		conn_send_packet(s->conn, &p);
		return;
	}
	if ((type == MQTT_PUBACK && d->qos == 1) || (type == MQTT_PUBCOMP && d->pubrel_sent)) {
		inflight_remove(w, s, d, prev);
		sess_pump(w, s);
	}
}

static void enqueue(struct worker *w, struct session *s, struct delivery *d)
{
	const struct moat_config *cfg = w->b->cfg;

	if ((cfg->max_queued_messages > 0 && s->queue_count >= cfg->max_queued_messages) ||
	    (cfg->max_queued_bytes > 0 && s->queue_bytes + d->msg->payload.len > cfg->max_queued_bytes)) {
		stat_add(&w->sys.publish_dropped, 1);
		free_deliveries(w, s, d);
		return;
	}
	if (s->queue_tail != NULL)
		s->queue_tail->next = d;
	else
		s->queue = d;
	s->queue_tail = d;
	s->queue_count++;
	s->queue_bytes += d->msg->payload.len;
	stat_add(&w->sys.queued_msgs, 1);
	stat_add(&w->sys.queued_bytes, d->msg->payload.len);
	atomic_fetch_add_explicit(&s->backlog, 1, memory_order_relaxed);
}

void sess_deliver(struct worker *w, struct session *s, struct msg *m, uint8_t qos, bool retain,
		  const uint32_t *sub_ids, uint8_t sub_id_count, uint64_t store_id)
{
	struct delivery *d;

	if (!authz_session(w, s, m->topic, ACCESS_READ)) {
		persist_entry_drop(w, s->client_id, store_id, m, true);
		return;	/* checked per delivery: retained and queued messages too (CVE-2018-12546) */
	}
	if (qos == 0) {
		struct delivery tmp = { .msg = m, .qos = 0, .retain = retain,
					.sub_id_count = sub_id_count };

		if (s->conn == NULL || !s->conn->connected) {
			return;	/* QoS 0 is not queued for offline sessions (mosquitto's default) */
		}
		if (conn_output_pending(s->conn) > w->b->cfg->max_output_bytes) {
			stat_add(&w->sys.publish_dropped, 1);	/* slow consumer: drop QoS 0 */
			return;
		}
		memcpy(tmp.sub_ids, sub_ids, sub_id_count * sizeof(*sub_ids));
		conn_send_publish(s->conn, &tmp, false, clock_mono_ms());
		return;
	}
	d = delivery_new(w);
	if (d == NULL) {
		stat_add(&w->sys.publish_dropped, 1);
		persist_entry_drop(w, s->client_id, store_id, m, true);
		return;
	}
	d->msg = msg_ref(m);
	d->qos = qos;
	d->retain = retain;
	d->sub_id_count = sub_id_count;
	memcpy(d->sub_ids, sub_ids, sub_id_count * sizeof(*sub_ids));
	d->store_id = store_id;
	d->store_shared = store_id != 0;
	if (store_id == 0)
		persist_entry_add(w, s, d);
	enqueue(w, s, d);
	sess_pump(w, s);
}


int sess_qos2_in_add(struct session *s, uint16_t packet_id)
{
	if (s->qos2_in_count == s->qos2_in_cap) {
		uint32_t cap = s->qos2_in_cap ? s->qos2_in_cap * 2 : 8;
		uint16_t *n = realloc(s->qos2_in, cap * sizeof(*n));

		if (n == NULL)
			return MOAT_E_NOMEM;
		s->qos2_in = n;
		s->qos2_in_cap = cap;
	}
	s->qos2_in[s->qos2_in_count++] = packet_id;
	return MOAT_OK;
}

int sess_restore_delivery(struct worker *w, struct session *s, struct msg *m,
			  const struct delivery *fields)
{
	struct delivery *d = delivery_new(w);

	if (d == NULL)
		return MOAT_E_NOMEM;
	*d = *fields;
	d->next = NULL;
	d->msg = msg_ref(m);
	if (d->packet_id == 0)
		enqueue(w, s, d);
	else
		inflight_append(w, s, d);
	return MOAT_OK;
}
