/*
 * The broker's once-a-second work: ending expired sessions, publishing
 * delayed Wills, dropping expired retained messages, and the $SYS/broker/...
 * topics every sys_interval.
 */
#include "broker/broker.h"

#include <inttypes.h>
#include <stdio.h>

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
	route_expire_retained(b, now_ms);
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
	sys_put_u64(b, "$SYS/broker/subscriptions/count", route_sub_count(b), now_ms);
	sys_put_u64(b, "$SYS/broker/retained messages/count", route_retained_count(b), now_ms);
}
