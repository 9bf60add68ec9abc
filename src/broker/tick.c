/*
 * The broker's once-a-second work, per worker: ending the expired sessions it
 * owns and publishing their delayed Wills; worker 0 also drops expired
 * retained messages and publishes the $SYS/broker/... topics every
 * sys_interval, summing every worker's counters.
 */
#include "broker/broker.h"

#include <inttypes.h>
#include <stdio.h>

void broker_tick(struct worker *w, uint64_t now_ms)
{
	struct broker *b = w->b;

	for (struct session *s = w->sessions, *next; s != NULL; s = next) {
		next = s->wnext;
		if (s->will != NULL && s->conn == NULL && now_ms >= s->will_at_ms)
			sess_publish_will(w, s);
		if (s->conn == NULL && s->expiry_s != UINT32_MAX && now_ms >= s->expire_at_ms)
			sess_destroy(w, s);
	}
	if (w->id != 0)
		return;
	route_expire_retained(w, now_ms);
	if (b->cfg->sys_interval_s > 0 && now_ms >= b->next_sys_ms) {
		broker_publish_sys(w, now_ms);
		b->next_sys_ms = now_ms + b->cfg->sys_interval_s * 1000ull;
	}
}

static void sys_put(struct worker *w, const char *topic, const char *value, uint64_t now_ms)
{
	struct mqtt_publish p = { .qos = 0, .retain = true };
	struct msg *m;

	p.topic = moat_bytes_str(topic);
	p.payload = moat_bytes_str(value);
	m = msg_create(&p, p.topic, now_ms);
	if (m != NULL) {
		broker_publish(w, m, NULL);
		msg_unref(m);
	}
}

static void sys_put_u64(struct worker *w, const char *topic, uint64_t v, uint64_t now_ms)
{
	char s[24];

	snprintf(s, sizeof(s), "%" PRIu64, v);
	sys_put(w, topic, s, now_ms);
}

/* Every worker's counters added up. */
static struct sys_totals {
	uint64_t msgs_received, msgs_sent, bytes_received, bytes_sent, publish_dropped;
} sum_counters(const struct broker *b)
{
	struct sys_totals t = { 0 };

	for (unsigned i = 0; i < b->nworkers; i++) {
		const struct sys_counters *c = &b->workers[i].sys;

		t.msgs_received += atomic_load_explicit(&c->msgs_received, memory_order_relaxed);
		t.msgs_sent += atomic_load_explicit(&c->msgs_sent, memory_order_relaxed);
		t.bytes_received += atomic_load_explicit(&c->bytes_received, memory_order_relaxed);
		t.bytes_sent += atomic_load_explicit(&c->bytes_sent, memory_order_relaxed);
		t.publish_dropped += atomic_load_explicit(&c->publish_dropped, memory_order_relaxed);
	}
	return t;
}

void broker_publish_sys(struct worker *w, uint64_t now_ms)
{
	struct broker *b = w->b;
	struct sys_totals t = sum_counters(b);
	size_t sessions;
	char s[64];

	pthread_mutex_lock(&b->table_lock);
	sessions = b->session_count;
	pthread_mutex_unlock(&b->table_lock);
	sys_put(w, "$SYS/broker/version", "moatd " MOAT_VERSION, now_ms);
	snprintf(s, sizeof(s), "%" PRIu64 " seconds", (now_ms - b->started_ms) / 1000u);
	sys_put(w, "$SYS/broker/uptime", s, now_ms);
	sys_put_u64(w, "$SYS/broker/clients/connected", atomic_load(&b->conn_count), now_ms);
	sys_put_u64(w, "$SYS/broker/clients/total", sessions, now_ms);
	sys_put_u64(w, "$SYS/broker/clients/maximum", atomic_load(&b->clients_maximum), now_ms);
	sys_put_u64(w, "$SYS/broker/messages/received", t.msgs_received, now_ms);
	sys_put_u64(w, "$SYS/broker/messages/sent", t.msgs_sent, now_ms);
	sys_put_u64(w, "$SYS/broker/bytes/received", t.bytes_received, now_ms);
	sys_put_u64(w, "$SYS/broker/bytes/sent", t.bytes_sent, now_ms);
	sys_put_u64(w, "$SYS/broker/publish/messages/dropped", t.publish_dropped, now_ms);
	sys_put_u64(w, "$SYS/broker/subscriptions/count", route_sub_count(b), now_ms);
	sys_put_u64(w, "$SYS/broker/auth/failures", atomic_load(&b->auth_failures), now_ms);
	sys_put_u64(w, "$SYS/broker/acl/denied", atomic_load(&b->acl_denials), now_ms);
	sys_put_u64(w, "$SYS/broker/retained messages/count", route_retained_count(b), now_ms);
}
