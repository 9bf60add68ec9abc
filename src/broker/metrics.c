/*
 * Prometheus text rendering (see metrics.h). Every family has its own
 * function below and a row in the families table; counters end in _total,
 * per-listener families carry listener="<port>", per-QoS ones qos="0".."2".
 */
#include "broker/metrics.h"

#include <inttypes.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <moat/error.h>

#include "bridge/bridge.h"

static void put(struct metrics_writer *w, const char *s, size_t n)
{
	if (w->err == MOAT_OK && n > 0)
		w->err = buf_append(w->out, s, n);
}

static void puts_(struct metrics_writer *w, const char *s)
{
	put(w, s, strlen(s));
}

/* Writes <s> escaping \ and newline, and " too when <quote>. */
static void put_escaped(struct metrics_writer *w, const char *s, int quote)
{
	const char *run = s;

	for (; *s != '\0'; s++) {
		const char *esc = *s == '\\'	       ? "\\\\"
				  : *s == '\n'	       ? "\\n"
				  : quote && *s == '"' ? "\\\""
						       : NULL;

		if (esc == NULL)
			continue;
		put(w, run, (size_t)(s - run));
		puts_(w, esc);
		run = s + 1;
	}
	put(w, run, (size_t)(s - run));
}

void metrics_family(struct metrics_writer *w, const char *name, const char *type, const char *help)
{
	puts_(w, "# HELP ");
	puts_(w, name);
	puts_(w, " ");
	put_escaped(w, help, 0);
	puts_(w, "\n# TYPE ");
	puts_(w, name);
	puts_(w, " ");
	puts_(w, type);
	puts_(w, "\n");
}

static void put_name_labels(struct metrics_writer *w, const char *name,
			    const struct metrics_label *labels, size_t nlabels)
{
	puts_(w, name);
	if (nlabels == 0)
		return;
	puts_(w, "{");
	for (size_t i = 0; i < nlabels; i++) {
		if (i > 0)
			puts_(w, ",");
		puts_(w, labels[i].name);
		puts_(w, "=\"");
		put_escaped(w, labels[i].value, 1);
		puts_(w, "\"");
	}
	puts_(w, "}");
}

void metrics_sample(struct metrics_writer *w, const char *name, const struct metrics_label *labels,
		    size_t nlabels, uint64_t value)
{
	char v[32];
	int n = snprintf(v, sizeof(v), " %" PRIu64 "\n", value);

	put_name_labels(w, name, labels, nlabels);
	put(w, v, (size_t)n);
}

void metrics_sample_f(struct metrics_writer *w, const char *name,
		      const struct metrics_label *labels, size_t nlabels, double value)
{
	char v[40];
	int n;

	if (isnan(value))
		n = snprintf(v, sizeof(v), " NaN\n");
	else if (isinf(value))
		n = snprintf(v, sizeof(v), value > 0 ? " +Inf\n" : " -Inf\n");
	else
		n = snprintf(v, sizeof(v), " %.17g\n", value);
	put_name_labels(w, name, labels, nlabels);
	put(w, v, (size_t)n);
}

/* "<name><suffix>" into <out> (names are short: longer ones are cut). */
static const char *suffixed(char *out, size_t len, const char *name, const char *suffix)
{
	snprintf(out, len, "%s%s", name, suffix);
	return out;
}

void metrics_histogram(struct metrics_writer *w, const char *name, const char *help,
		       const double *le, const uint64_t *counts, size_t nbuckets, double sum)
{
	char bucket[128], le_text[32];
	struct metrics_label l = {"le", le_text};
	uint64_t total = 0;

	metrics_family(w, name, "histogram", help);
	suffixed(bucket, sizeof(bucket), name, "_bucket");
	for (size_t i = 0; i < nbuckets; i++) {
		total += counts[i];
		if (isinf(le[i]))
			snprintf(le_text, sizeof(le_text), "+Inf");
		else
			snprintf(le_text, sizeof(le_text), "%.15g", le[i]);
		metrics_sample(w, bucket, &l, 1, total);
	}
	if (nbuckets == 0 || !isinf(le[nbuckets - 1])) {
		snprintf(le_text, sizeof(le_text), "+Inf");
		metrics_sample(w, bucket, &l, 1, total);
	}
	metrics_sample_f(w, suffixed(bucket, sizeof(bucket), name, "_sum"), NULL, 0, sum);
	metrics_sample(w, suffixed(bucket, sizeof(bucket), name, "_count"), NULL, 0, total);
}

/* ---- families ---- */

static void one(struct metrics_writer *w, const char *name, const char *type, const char *help,
		uint64_t value)
{
	metrics_family(w, name, type, help);
	metrics_sample(w, name, NULL, 0, value);
}

static void port_label(char *buf, size_t len, const struct stats_listener *l)
{
	snprintf(buf, len, "%u", l->port);
}

/* A family with one sample per listener; <field> is a member's offset. */
static void per_listener(struct metrics_writer *w, const struct stats *st, const char *name,
			 const char *type, const char *help, size_t field)
{
	metrics_family(w, name, type, help);
	for (unsigned i = 0; i < st->nlisteners; i++) {
		char port[8];
		struct metrics_label l = {"listener", port};

		port_label(port, sizeof(port), &st->listeners[i]);
		metrics_sample(w, name, &l, 1,
			       *(const uint64_t *)((const char *)&st->listeners[i] + field));
	}
}

/* A family with one sample per listener and QoS; <field> is an array's offset. */
static void per_listener_qos(struct metrics_writer *w, const struct stats *st, const char *name,
			     const char *help, size_t field)
{
	static const char *const qos[3] = {"0", "1", "2"};

	metrics_family(w, name, "counter", help);
	for (unsigned i = 0; i < st->nlisteners; i++) {
		const uint64_t *v = (const uint64_t *)((const char *)&st->listeners[i] + field);
		char port[8];

		port_label(port, sizeof(port), &st->listeners[i]);
		for (unsigned q = 0; q < 3; q++) {
			struct metrics_label l[2] = {{"listener", port}, {"qos", qos[q]}};

			metrics_sample(w, name, l, 2, v[q]);
		}
	}
}

#define LF(f) offsetof(struct stats_listener, f)

static void fam_build(struct metrics_writer *w, const struct stats *st)
{
	struct metrics_label l = {"version", st->version != NULL ? st->version : ""};

	metrics_family(w, "moat_build_info", "gauge", "moatd's version, as a label; always 1.");
	metrics_sample(w, "moat_build_info", &l, 1, 1);
	one(w, "moat_uptime_seconds", "gauge", "Seconds since moatd started.", st->uptime_s);
}

static void fam_connections(struct metrics_writer *w, const struct stats *st)
{
	per_listener(w, st, "moat_listener_connections", "gauge",
		     "Connections open on the listener now (CONNECT not yet sent included).",
		     LF(connections));
	per_listener(w, st, "moat_listener_connections_accepted_total", "counter",
		     "Connections the listener accepted.", LF(accepted));
}

static void fam_messages(struct metrics_writer *w, const struct stats *st)
{
	per_listener_qos(w, st, "moat_messages_received_total",
			 "PUBLISH packets received from clients, by QoS.", LF(msgs_in));
	per_listener_qos(w, st, "moat_messages_sent_total",
			 "PUBLISH packets sent to clients (resends not counted), by QoS.",
			 LF(msgs_out));
	per_listener_qos(w, st, "moat_publish_bytes_received_total",
			 "Payload bytes of the PUBLISH packets received, by QoS.",
			 LF(pub_bytes_in));
	per_listener_qos(w, st, "moat_publish_bytes_sent_total",
			 "Payload bytes of the PUBLISH packets sent, by QoS.", LF(pub_bytes_out));
}

static void fam_packets(struct metrics_writer *w, const struct stats *st)
{
	per_listener(w, st, "moat_packets_received_total", "counter",
		     "MQTT packets of any type received.", LF(pkts_in));
	per_listener(w, st, "moat_packets_sent_total", "counter", "MQTT packets of any type sent.",
		     LF(pkts_out));
	per_listener(w, st, "moat_bytes_received_total", "counter", "MQTT bytes received.",
		     LF(bytes_in));
	per_listener(w, st, "moat_bytes_sent_total", "counter", "MQTT bytes sent.", LF(bytes_out));
}

static void fam_clients(struct metrics_writer *w, const struct stats *st)
{
	one(w, "moat_clients_connected", "gauge", "Clients connected (CONNACK sent) now.",
	    st->clients_connected);
	one(w, "moat_clients_maximum", "gauge", "The most clients connected at once.",
	    st->clients_maximum);
	one(w, "moat_sessions", "gauge", "Sessions held, of connected and disconnected clients.",
	    st->sessions);
	one(w, "moat_clients_refused_total", "counter",
	    "Connections refused: CONNECTs answered with a failure, or closed at max_connections.",
	    st->clients_refused);
	one(w, "moat_clients_expired_total", "counter",
	    "Disconnected sessions ended by their expiry.", st->clients_expired);
}

static void fam_security(struct metrics_writer *w, const struct stats *st)
{
	one(w, "moat_auth_failures_total", "counter", "Authentications refused.",
	    st->auth_failures);
	one(w, "moat_acl_denials_total", "counter",
	    "Publishes, subscriptions and deliveries the ACL refused.", st->acl_denials);
}

static void fam_drops(struct metrics_writer *w, const struct stats *st)
{
	one(w, "moat_publish_dropped_total", "counter",
	    "Deliveries dropped: queue full, slow consumer, too large for the client, out of "
	    "memory.",
	    st->publish_dropped);
	one(w, "moat_publish_refused_total", "counter",
	    "PUBLISH packets refused: ACL, $SYS, size or quota limits.", st->publish_refused);
}

static void fam_queues(struct metrics_writer *w, const struct stats *st)
{
	one(w, "moat_queued_messages", "gauge", "QoS 1/2 deliveries waiting in session queues.",
	    st->queued_msgs);
	one(w, "moat_queued_bytes", "gauge", "Payload bytes of the queued deliveries.",
	    st->queued_bytes);
	one(w, "moat_inflight_messages", "gauge",
	    "QoS 1/2 deliveries sent and not yet acknowledged.", st->inflight_msgs);
	one(w, "moat_inflight_bytes", "gauge", "Payload bytes of the deliveries in flight.",
	    st->inflight_bytes);
}

static void fam_index(struct metrics_writer *w, const struct stats *st)
{
	one(w, "moat_subscriptions", "gauge", "Subscriptions, shared ones included.",
	    st->subscriptions);
	one(w, "moat_shared_subscriptions", "gauge", "Shared subscriptions ($share/...).",
	    st->shared_subscriptions);
	one(w, "moat_retained_messages", "gauge", "Retained messages.", st->retained);
}

static void fam_heap(struct metrics_writer *w, const struct stats *st)
{
	one(w, "moat_heap_bytes", "gauge", "Heap bytes in use (glibc mallinfo2; 0 when unknown).",
	    st->heap_current);
}

/* The persistence store (only when it is on): commits, records, size, and
 * how long a commit takes to become durable. */
static void fam_store(struct metrics_writer *w, const struct stats *st)
{
	const struct store_stats *s = &st->store;
	double le[STORE_SYNC_BUCKETS];

	if (!st->has_store)
		return;
	for (unsigned k = 0; k + 1 < STORE_SYNC_BUCKETS; k++)
		le[k] = (double)(1ull << (2 * k + 6)) / 1e6; /* store.h: <= 2^(2k+6) us */
	le[STORE_SYNC_BUCKETS - 1] = INFINITY;
	metrics_histogram(w, "moat_store_sync_seconds",
			  "Time from a commit to its batches being durable (commit and sync).", le,
			  s->sync_hist, STORE_SYNC_BUCKETS, (double)s->sync_us_sum / 1e6);
	one(w, "moat_store_commits_total", "counter", "Store transactions committed.", s->commits);
	one(w, "moat_store_failures_total", "counter",
	    "Store commits that failed (retried; nothing is dropped).", s->failures);
	one(w, "moat_store_records_written_total", "counter", "Records written to the store.",
	    s->records_written);
	one(w, "moat_store_records_deleted_total", "counter", "Records deleted from the store.",
	    s->records_deleted);
	one(w, "moat_store_bytes", "gauge", "Bytes the store's records take.", s->bytes_used);
	one(w, "moat_store_pending_batches", "gauge", "Batches waiting to be committed.",
	    s->pending_batches);
	one(w, "moat_store_refusing", "gauge",
	    "1 while the store is full or failing: new QoS 1/2 messages are refused.",
	    st->store_refusing ? 1 : 0);
}

/* One family with a sample per bridge (label bridge="<name>"); <field> is a
 * uint64_t member's offset in struct bridge_status. */
static void per_bridge(struct metrics_writer *w, const struct stats *st, const char *name,
		       const char *type, const char *help, size_t field)
{
	metrics_family(w, name, type, help);
	for (size_t i = 0; i < st->nbridges; i++) {
		struct metrics_label l = { "bridge", st->bridges[i].name };

		metrics_sample(w, name, &l, 1,
			       *(const uint64_t *)((const char *)&st->bridges[i] + field));
	}
}

/* Bridges (docs/bridge.md); nothing without them. */
static void fam_bridges(struct metrics_writer *w, const struct stats *st)
{
	if (st->nbridges == 0)
		return;
	metrics_family(w, "moat_bridge_connected", "gauge",
		       "1 while the bridge is connected to its remote broker.");
	for (size_t i = 0; i < st->nbridges; i++) {
		struct metrics_label l = { "bridge", st->bridges[i].name };

		metrics_sample(w, "moat_bridge_connected", &l, 1, st->bridges[i].connected);
	}
	per_bridge(w, st, "moat_bridge_messages_sent_total", "counter",
		   "Messages the bridge forwarded to its remote broker (queued there durably).",
		   offsetof(struct bridge_status, msgs_out));
	per_bridge(w, st, "moat_bridge_messages_received_total", "counter",
		   "Messages the bridge brought in from its remote broker.",
		   offsetof(struct bridge_status, msgs_in));
	per_bridge(
	    w, st, "moat_bridge_messages_dropped_total", "counter",
	    "Messages the bridge dropped (over bridge_max_packet_size, refused by a broker, or "
	    "QoS 0 while down).",
	    offsetof(struct bridge_status, msgs_dropped));
	per_bridge(w, st, "moat_bridge_queued_messages", "gauge",
		   "Messages waiting for the remote broker's acknowledgement.",
		   offsetof(struct bridge_status, queued));
}

/* The cluster's link to NATS, and its live nodes summed (src/cluster/nodes.c):
 * gauges, since a node that goes silent leaves the sums. */
static void fam_cluster(struct metrics_writer *w, const struct stats *st)
{
	const struct cluster_totals *c = &st->cluster;

	if (!st->has_cluster)
		return;
	one(w, "moat_cluster_nodes", "gauge", "Cluster nodes whose status is current.",
	    c->nodes_alive);
	one(w, "moat_cluster_nodes_silent", "gauge",
	    "Cluster nodes known whose status stopped coming.", c->nodes - c->nodes_alive);
	one(w, "moat_cluster_clients_connected", "gauge",
	    "Clients connected to the cluster's live nodes.", c->clients_connected);
	one(w, "moat_cluster_sessions", "gauge", "Sessions held by the cluster's live nodes.",
	    c->sessions);
	one(w, "moat_cluster_subscriptions", "gauge",
	    "Subscriptions held by the cluster's live nodes.", c->subscriptions);
	one(w, "moat_cluster_messages_received", "gauge",
	    "PUBLISH packets the cluster's live nodes received from clients since they started.",
	    c->messages_received);
	one(w, "moat_cluster_messages_sent", "gauge",
	    "PUBLISH packets the cluster's live nodes sent to clients since they started.",
	    c->messages_sent);
	one(w, "moat_cluster_connected", "gauge", "1 while the node is connected to NATS.",
	    st->cluster_link.connected);
	one(w, "moat_cluster_outbound_queued_messages", "gauge",
	    "Copies for other nodes waiting for JetStream (NATS unreachable, or draining).",
	    st->cluster_link.queued_msgs);
	one(w, "moat_cluster_outbound_queued_bytes", "gauge",
	    "Bytes of those copies (subject and data), bounded by cluster_queue_max_bytes.",
	    st->cluster_link.queued_bytes);
	one(w, "moat_cluster_outbound_dropped_total", "counter",
	    "QoS 0 copies for other nodes dropped because the queue was full.",
	    st->cluster_link.dropped);
	one(w, "moat_cluster_disconnects_total", "counter", "Connections to NATS lost.",
	    st->cluster_link.disconnects);
}

static void (*const families[])(struct metrics_writer *w, const struct stats *st) = {
    fam_build,	  fam_connections, fam_messages, fam_packets, fam_clients,
    fam_security, fam_drops,	   fam_queues,	 fam_index,   fam_heap,
    fam_store,	  fam_bridges,	   fam_cluster,
};

int metrics_render(const struct stats *st, struct buf *out)
{
	struct metrics_writer w = {.out = out, .err = MOAT_OK};

	for (size_t i = 0; i < sizeof(families) / sizeof(families[0]) && w.err == MOAT_OK; i++)
		families[i](&w, st);
	return w.err;
}
