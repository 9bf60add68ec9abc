/*
 * Sessions and routing: the session table, subscriptions, retained
 * messages, per-session queues and in-flight windows, expiry and $SYS.
 * Connections (conn.c) call in with decoded packets; everything here runs on
 * the broker's one event loop.
 */
#include "broker/broker.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <moat/error.h>

#include "base/clock.h"
#include "base/log.h"
#include "codec/topic.h"

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
	if (b->sessions == NULL)
		return MOAT_E_NOMEM;
	b->started_ms = clock_mono_ms();
	b->started_wall_s = clock_wall_s();
	return MOAT_OK;
}

void broker_fini(struct broker *b)
{
	for (size_t i = 0; i < b->session_buckets; i++)
		while (b->sessions[i] != NULL)
			sess_destroy(b, b->sessions[i]);
	while (b->retained != NULL) {
		struct retained *r = b->retained;

		b->retained = r->next;
		msg_unref(r->msg);
		free(r);
	}
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

static void free_deliveries(struct delivery *d)
{
	while (d != NULL) {
		struct delivery *next = d->next;

		msg_unref(d->msg);
		free(d);
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
	free_deliveries(s->inflight);
	free_deliveries(s->queue);
	free(s->qos2_in);
	free(s->client_id);
	free(s);
}

/* ---- subscriptions ---- */

static bool same_sub(const struct sub *x, const struct session *s, struct moat_bytes filter,
		     struct moat_bytes group)
{
	return x->sess == s && strlen(x->filter) == filter.len &&
	       memcmp(x->filter, filter.ptr, filter.len) == 0 &&
	       (x->group == NULL ? group.len == 0
				 : strlen(x->group) == group.len &&
					   memcmp(x->group, group.ptr, group.len) == 0);
}

static char *dup_bytes(struct moat_bytes v)
{
	char *s = malloc(v.len + 1);

	if (s != NULL) {
		memcpy(s, v.ptr, v.len);
		s[v.len] = '\0';
	}
	return s;
}

int sess_subscribe(struct broker *b, struct session *s, struct moat_bytes filter,
		   const struct mqtt_sub_opts *opts, uint32_t sub_id, uint8_t *reason)
{
	struct moat_bytes group = { 0 }, inner = filter;
	struct sub *x;
	int rc = topic_share_parse(filter, &group, &inner);

	if (rc == MOAT_E_PROTOCOL || (rc == MOAT_E_NOTFOUND && !topic_filter_is_valid(filter)) ||
	    topic_levels(inner) > b->cfg->max_topic_levels) {
		*reason = MQTT_RC_TOPIC_FILTER_INVALID;
		return MOAT_E_PROTOCOL;
	}
	if (rc == MOAT_E_NOTFOUND)
		group = (struct moat_bytes){ 0 };
	for (x = b->subs; x != NULL; x = x->next) {
		if (same_sub(x, s, inner, group)) {
			x->opts = *opts;
			x->sub_id = sub_id;
			*reason = opts->qos;
			return 1;	/* existed */
		}
	}
	if (b->cfg->max_subscriptions > 0 && s->sub_count >= b->cfg->max_subscriptions) {
		*reason = MQTT_RC_QUOTA_EXCEEDED;
		return MOAT_E_LIMIT;
	}
	x = calloc(1, sizeof(*x));
	if (x == NULL || (x->filter = dup_bytes(inner)) == NULL ||
	    (group.len > 0 && (x->group = dup_bytes(group)) == NULL)) {
		if (x != NULL)
			free(x->filter);
		free(x);
		*reason = MQTT_RC_UNSPECIFIED;
		return MOAT_E_NOMEM;
	}
	x->sess = s;
	x->opts = *opts;
	x->sub_id = sub_id;
	x->next = b->subs;
	b->subs = x;
	b->sub_total++;
	s->sub_count++;
	*reason = opts->qos;
	return 0;
}

static void free_sub(struct broker *b, struct sub *x)
{
	x->sess->sub_count--;
	b->sub_total--;
	free(x->filter);
	free(x->group);
	free(x);
}

uint8_t sess_unsubscribe(struct broker *b, struct session *s, struct moat_bytes filter)
{
	struct moat_bytes group = { 0 }, inner = filter;

	if (topic_share_parse(filter, &group, &inner) != MOAT_OK)
		group = (struct moat_bytes){ 0 }, inner = filter;
	for (struct sub **pp = &b->subs; *pp != NULL; pp = &(*pp)->next) {
		if (same_sub(*pp, s, inner, group)) {
			struct sub *x = *pp;

			*pp = x->next;
			free_sub(b, x);
			return MQTT_RC_SUCCESS;
		}
	}
	return MQTT_RC_NO_SUBSCRIPTION_EXISTED;
}

void sess_remove_subs(struct broker *b, struct session *s)
{
	for (struct sub **pp = &b->subs; *pp != NULL;) {
		struct sub *x = *pp;

		if (x->sess == s) {
			*pp = x->next;
			free_sub(b, x);
		} else {
			pp = &x->next;
		}
	}
}

/* ---- delivery ---- */

static bool expired(const struct msg *m, uint64_t now_ms)
{
	return m->has_expiry && now_ms >= m->expire_at_ms;
}

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
		if (expired(d->msg, now)) {
			free_deliveries(d);
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

static void inflight_remove(struct session *s, struct delivery *d, struct delivery *prev)
{
	if (prev != NULL)
		prev->next = d->next;
	else
		s->inflight = d->next;
	if (s->inflight_tail == d)
		s->inflight_tail = prev;
	s->inflight_count--;
	d->next = NULL;
	free_deliveries(d);
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
		inflight_remove(s, d, prev);	/* the client refused it: the flow ends [MQTT-4.3.3] */
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
		inflight_remove(s, d, prev);
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
		free_deliveries(d);
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

/* Delivers <m> to <s> at <qos>. Borrows <m>. */
static void deliver(struct broker *b, struct session *s, struct msg *m, uint8_t qos, bool retain,
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
	d = calloc(1, sizeof(*d));
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

/* One pending delivery per session while a PUBLISH is routed. */
struct target {
	struct session *sess;
	uint8_t qos;
	bool retain;
	uint8_t sub_id_count;
	uint32_t sub_ids[4];
};

struct route {
	struct target *t;
	size_t n, cap;
};

static struct target *target_for(struct route *r, struct session *s)
{
	for (size_t i = 0; i < r->n; i++)
		if (r->t[i].sess == s)
			return &r->t[i];
	if (r->n == r->cap) {
		size_t cap = r->cap ? r->cap * 2 : 16;
		struct target *t = realloc(r->t, cap * sizeof(*t));

		if (t == NULL)
			return NULL;
		r->t = t;
		r->cap = cap;
	}
	r->t[r->n] = (struct target){ .sess = s };
	return &r->t[r->n++];
}

static void add_target(struct route *r, const struct sub *x, const struct msg *m)
{
	struct target *t = target_for(r, x->sess);
	uint8_t qos = x->opts.qos < m->qos ? x->opts.qos : m->qos;

	if (t == NULL)
		return;
	if (qos > t->qos)
		t->qos = qos;
	t->retain |= x->opts.retain_as_published && m->retain;
	if (x->sub_id != 0 && t->sub_id_count < 4)
		t->sub_ids[t->sub_id_count++] = x->sub_id;
}

/* Picks one member of the shared group of <first> (same group and filter), round-robin,
 * preferring connected sessions. */
static const struct sub *pick_shared(struct broker *b, const struct sub *first)
{
	const struct sub *online[64], *any = NULL;
	size_t n = 0;

	for (const struct sub *x = first; x != NULL; x = x->next) {
		if (x->group == NULL || strcmp(x->group, first->group) != 0 ||
		    strcmp(x->filter, first->filter) != 0)
			continue;
		if (any == NULL)
			any = x;
		if (x->sess->conn != NULL && n < 64)
			online[n++] = x;
	}
	if (n == 0)
		return any;
	return online[b->shared_rr++ % n];
}

static bool is_first_of_group(const struct broker *b, const struct sub *x)
{
	for (const struct sub *y = b->subs; y != x; y = y->next)
		if (y->group != NULL && strcmp(y->group, x->group) == 0 &&
		    strcmp(y->filter, x->filter) == 0)
			return false;
	return true;
}

static void retain_store(struct broker *b, struct msg *m)
{
	struct retained **pp;

	for (pp = &b->retained; *pp != NULL; pp = &(*pp)->next) {
		if (moat_bytes_eq((*pp)->msg->topic, m->topic)) {
			struct retained *r = *pp;

			msg_unref(r->msg);
			if (m->payload.len == 0) {
				*pp = r->next;
				free(r);
				b->retained_count--;
			} else {
				r->msg = msg_ref(m);
			}
			return;
		}
	}
	if (m->payload.len == 0)
		return;
	struct retained *r = malloc(sizeof(*r));
	if (r == NULL)
		return;
	r->msg = msg_ref(m);
	r->next = b->retained;
	b->retained = r;
	b->retained_count++;
}

size_t broker_publish(struct broker *b, struct msg *m)
{
	static struct route route;	/* scratch reused across publishes (one loop thread) */

	if (m->retain)
		retain_store(b, m);
	route.n = 0;
	for (const struct sub *x = b->subs; x != NULL; x = x->next) {
		if (!topic_matches(moat_bytes_str(x->filter), m->topic))
			continue;
		if (x->group != NULL) {
			if (is_first_of_group(b, x))
				add_target(&route, pick_shared(b, x), m);
			continue;
		}
		if (x->opts.no_local && x->sess == m->origin)
			continue;
		add_target(&route, x, m);
	}
	for (size_t i = 0; i < route.n; i++) {
		struct target *t = &route.t[i];

		deliver(b, t->sess, m, t->qos, t->retain, t->sub_ids, t->sub_id_count);
	}
	return route.n;
}

void sess_deliver_retained(struct broker *b, struct session *s, struct moat_bytes filter,
			   const struct mqtt_sub_opts *opts, uint32_t sub_id)
{
	uint64_t now = clock_mono_ms();

	for (struct retained *r = b->retained; r != NULL; r = r->next) {
		struct msg *m = r->msg;
		uint8_t qos = opts->qos < m->qos ? opts->qos : m->qos;

		if (expired(m, now) || !topic_matches(filter, m->topic))
			continue;
		deliver(b, s, m, qos, true, &sub_id, sub_id != 0 ? 1 : 0);
	}
}

/* ---- periodic work ---- */

void broker_tick(struct broker *b, uint64_t now_ms)
{
	for (size_t i = 0; i < b->session_buckets; i++) {
		struct session *s = b->sessions[i];

		while (s != NULL) {
			struct session *next = s->next;

			if (s->will != NULL && s->conn == NULL && now_ms >= s->will_at_ms) {
				struct msg *w = s->will;

				s->will = NULL;
				broker_publish(b, w);
				msg_unref(w);
			}
			if (s->conn == NULL && s->expiry_s != UINT32_MAX && now_ms >= s->expire_at_ms)
				sess_destroy(b, s);
			s = next;
		}
	}
	for (struct retained **pp = &b->retained; *pp != NULL;) {
		struct retained *r = *pp;

		if (expired(r->msg, now_ms)) {
			*pp = r->next;
			msg_unref(r->msg);
			free(r);
			b->retained_count--;
		} else {
			pp = &r->next;
		}
	}
	if (b->cfg->sys_interval_s > 0 && now_ms >= b->next_sys_ms) {
		broker_publish_sys(b, now_ms);
		b->next_sys_ms = now_ms + b->cfg->sys_interval_s * 1000ull;
	}
}

static void sys_put(struct broker *b, const char *topic, const char *value, uint64_t now_ms)
{
	struct mqtt_publish p = { .qos = 0, .retain = true };
	struct msg *m;

	p.topic = moat_bytes_str(topic);
	p.payload = moat_bytes_str(value);
	m = msg_create(&p, p.topic, now_ms);
	if (m != NULL) {
		broker_publish(b, m);
		msg_unref(m);
	}
}

static void sys_put_u64(struct broker *b, const char *topic, uint64_t v, uint64_t now_ms)
{
	char s[24];

	snprintf(s, sizeof(s), "%" PRIu64, v);
	sys_put(b, topic, s, now_ms);
}

void broker_publish_sys(struct broker *b, uint64_t now_ms)
{
	char s[64];
	const struct sys_counters *c = &b->sys;

	sys_put(b, "$SYS/broker/version", "moatd " MOAT_VERSION, now_ms);
	snprintf(s, sizeof(s), "%" PRIu64 " seconds", (now_ms - b->started_ms) / 1000u);
	sys_put(b, "$SYS/broker/uptime", s, now_ms);
	sys_put_u64(b, "$SYS/broker/clients/connected", b->conn_count, now_ms);
	sys_put_u64(b, "$SYS/broker/clients/total", b->session_count, now_ms);
	sys_put_u64(b, "$SYS/broker/clients/maximum", c->clients_maximum, now_ms);
	sys_put_u64(b, "$SYS/broker/messages/received", c->msgs_received, now_ms);
	sys_put_u64(b, "$SYS/broker/messages/sent", c->msgs_sent, now_ms);
	sys_put_u64(b, "$SYS/broker/bytes/received", c->bytes_received, now_ms);
	sys_put_u64(b, "$SYS/broker/bytes/sent", c->bytes_sent, now_ms);
	sys_put_u64(b, "$SYS/broker/publish/messages/dropped", c->publish_dropped, now_ms);
	sys_put_u64(b, "$SYS/broker/subscriptions/count", b->sub_total, now_ms);
	sys_put_u64(b, "$SYS/broker/retained messages/count", b->retained_count, now_ms);
}
