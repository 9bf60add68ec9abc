/*
 * The broker's once-a-second work, per worker: ending the expired sessions it
 * owns and publishing their delayed Wills (a cluster's restored sessions
 * only once settled); worker 0 also drops expired
 * retained messages and publishes the $SYS/broker/... topics every
 * sys_interval from a stats snapshot (stats.h), the same figures /metrics
 * shows, with mosquitto's load averages (sys_load.h); and the cluster's
 * node status (src/cluster/nodes.c) every few seconds.
 */
#include "broker/broker.h"

#include <inttypes.h>
#include <stdio.h>

#include "bridge/bridge.h"
#include "broker/stats.h"
#include "broker/sys_load.h"
#include "cluster/cluster.h"

void broker_tick(struct worker *w, uint64_t now_ms)
{
	struct broker *b = w->b;

	for (struct session *s = w->sessions, *next; s != NULL; s = next) {
		next = s->wnext;
		/* restored, not settled against the cluster's bucket yet: its
		 * Will is held, so it expires once settled (src/cluster/sessions.c) */
		if (s->restored_unsettled)
			continue;
		if (s->will != NULL && s->conn == NULL && now_ms >= s->will_at_ms)
			sess_publish_will(w, s);
		if (s->conn == NULL && s->expiry_s != UINT32_MAX && now_ms >= s->expire_at_ms) {
			sess_destroy(w, s);
			stat_add(&w->sys.clients_expired, 1);
		}
	}
	if (w->id != 0)
		return;
	route_expire_retained(w, now_ms);
	cluster_tick(b, now_ms);
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

static void sys_put_f(struct worker *w, const char *topic, double v, uint64_t now_ms)
{
	char s[32];

	snprintf(s, sizeof(s), "%.2f", v);
	sys_put(w, topic, s, now_ms);
}

/* The load averages: the series' totals fed to b->load, then every
 * $SYS/broker/load/<series>/<window> topic. */
static void publish_load(struct worker *w, const struct stats *st, uint64_t now_ms)
{
	struct sys_load *l = w->b->load;
	const struct stats_listener *t = &st->total;
	const uint64_t totals[LOAD_SERIES] = {
		[LOAD_MSGS_RECEIVED] = t->pkts_in,
		[LOAD_MSGS_SENT] = t->pkts_out,
		[LOAD_PUB_RECEIVED] = stats_qos_sum(t->msgs_in),
		[LOAD_PUB_SENT] = stats_qos_sum(t->msgs_out),
		[LOAD_PUB_DROPPED] = st->publish_dropped,
		[LOAD_BYTES_RECEIVED] = t->bytes_in,
		[LOAD_BYTES_SENT] = t->bytes_out,
		[LOAD_CONNECTIONS] = st->connects,
		[LOAD_SOCKETS] = t->accepted,
	};
	char topic[80];

	sys_load_update(l, totals, now_ms);
	for (unsigned s = 0; s < LOAD_SERIES; s++) {
		for (unsigned k = 0; k < LOAD_WINDOWS; k++) {
			snprintf(topic, sizeof(topic), "$SYS/broker/load/%s/%s", sys_load_topic(s),
				 sys_load_window(k));
			sys_put_f(w, topic, l->avg[s][k], now_ms);
		}
	}
}

/* $SYS/broker/bridge/<name>/...: each bridge's state and traffic. */
static void publish_bridges(struct worker *w, const struct stats *st, uint64_t now_ms)
{
	for (size_t i = 0; i < st->nbridges; i++) {
		const struct bridge_status *s = &st->bridges[i];
		static const char *const names[] = { "connected", "messages/sent",
						     "messages/received", "messages/dropped",
						     "queued" };
		uint64_t values[] = { s->connected, s->msgs_out, s->msgs_in, s->msgs_dropped,
				      s->queued };
		char topic[256];

		for (size_t k = 0; k < sizeof(names) / sizeof(names[0]); k++) {
			snprintf(topic, sizeof(topic), "$SYS/broker/bridge/%s/%s", s->name, names[k]);
			sys_put_u64(w, topic, values[k], now_ms);
		}
	}
}

/* $SYS/broker/cluster/...: the link to NATS and the queue waiting for it, and
 * the live nodes' figures summed (src/cluster/nodes.c). */
static void publish_cluster(struct worker *w, const struct stats *st, uint64_t now_ms)
{
	const struct cluster_totals *c = &st->cluster;

	if (!st->has_cluster)
		return;
	sys_put_u64(w, "$SYS/broker/cluster/nodes", c->nodes_alive, now_ms);
	sys_put_u64(w, "$SYS/broker/cluster/nodes/silent", c->nodes - c->nodes_alive, now_ms);
	sys_put_u64(w, "$SYS/broker/cluster/clients/connected", c->clients_connected, now_ms);
	sys_put_u64(w, "$SYS/broker/cluster/clients/total", c->sessions, now_ms);
	sys_put_u64(w, "$SYS/broker/cluster/subscriptions/count", c->subscriptions, now_ms);
	sys_put_u64(w, "$SYS/broker/cluster/publish/messages/received", c->messages_received,
		    now_ms);
	sys_put_u64(w, "$SYS/broker/cluster/publish/messages/sent", c->messages_sent, now_ms);
	sys_put_u64(w, "$SYS/broker/cluster/connected", st->cluster_link.connected, now_ms);
	sys_put_u64(w, "$SYS/broker/cluster/queued/messages", st->cluster_link.queued_msgs, now_ms);
	sys_put_u64(w, "$SYS/broker/cluster/queued/bytes", st->cluster_link.queued_bytes, now_ms);
	sys_put_u64(w, "$SYS/broker/cluster/dropped", st->cluster_link.dropped, now_ms);
	sys_put_u64(w, "$SYS/broker/cluster/disconnects", st->cluster_link.disconnects, now_ms);
	sys_put_u64(w, "$SYS/broker/cluster/shares", st->cluster_link.shares, now_ms);
}

void broker_publish_sys(struct worker *w, uint64_t now_ms)
{
	struct broker *b = w->b;
	struct stats st;
	const struct stats_listener *t = &st.total;
	char s[64];

	if (stats_collect(b, &st, now_ms) < 0) {
		stats_fini(&st);
		return;	/* out of memory: the next interval tries again */
	}
	sys_put(w, "$SYS/broker/version", "moatd " MOAT_VERSION, now_ms);
	snprintf(s, sizeof(s), "%" PRIu64 " seconds", st.uptime_s);
	sys_put(w, "$SYS/broker/uptime", s, now_ms);
	sys_put_u64(w, "$SYS/broker/clients/connected", st.clients_connected, now_ms);
	sys_put_u64(w, "$SYS/broker/clients/disconnected", st.clients_disconnected, now_ms);
	sys_put_u64(w, "$SYS/broker/clients/expired", st.clients_expired, now_ms);
	sys_put_u64(w, "$SYS/broker/clients/maximum", st.clients_maximum, now_ms);
	sys_put_u64(w, "$SYS/broker/clients/total", st.sessions, now_ms);
	sys_put_u64(w, "$SYS/broker/clients/refused", st.clients_refused, now_ms);
	sys_put_u64(w, "$SYS/broker/messages/received", t->pkts_in, now_ms);
	sys_put_u64(w, "$SYS/broker/messages/sent", t->pkts_out, now_ms);
	sys_put_u64(w, "$SYS/broker/messages/stored", stats_stored_msgs(&st), now_ms);
	sys_put_u64(w, "$SYS/broker/store/messages/count", stats_stored_msgs(&st), now_ms);
	sys_put_u64(w, "$SYS/broker/store/messages/bytes", st.queued_bytes + st.inflight_bytes, now_ms);
	sys_put_u64(w, "$SYS/broker/publish/messages/received", stats_qos_sum(t->msgs_in), now_ms);
	sys_put_u64(w, "$SYS/broker/publish/messages/sent", stats_qos_sum(t->msgs_out), now_ms);
	sys_put_u64(w, "$SYS/broker/publish/messages/dropped", st.publish_dropped, now_ms);
	sys_put_u64(w, "$SYS/broker/publish/messages/refused", st.publish_refused, now_ms);
	sys_put_u64(w, "$SYS/broker/publish/bytes/received", stats_qos_sum(t->pub_bytes_in), now_ms);
	sys_put_u64(w, "$SYS/broker/publish/bytes/sent", stats_qos_sum(t->pub_bytes_out), now_ms);
	sys_put_u64(w, "$SYS/broker/bytes/received", t->bytes_in, now_ms);
	sys_put_u64(w, "$SYS/broker/bytes/sent", t->bytes_out, now_ms);
	sys_put_u64(w, "$SYS/broker/subscriptions/count", st.subscriptions, now_ms);
	sys_put_u64(w, "$SYS/broker/shared_subscriptions/count", st.shared_subscriptions, now_ms);
	sys_put_u64(w, "$SYS/broker/retained messages/count", st.retained, now_ms);
	sys_put_u64(w, "$SYS/broker/heap/current", st.heap_current, now_ms);
	sys_put_u64(w, "$SYS/broker/heap/maximum", st.heap_maximum, now_ms);
	sys_put_u64(w, "$SYS/broker/auth/failures", st.auth_failures, now_ms);
	sys_put_u64(w, "$SYS/broker/acl/denied", st.acl_denials, now_ms);
	publish_load(w, &st, now_ms);
	publish_bridges(w, &st, now_ms);
	publish_cluster(w, &st, now_ms);
	stats_fini(&st);
}
