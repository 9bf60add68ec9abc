/*
 * Unit tests for the observability pieces that need no running broker: the
 * Prometheus renderer (exact lines for known figures, HELP/TYPE, label
 * escaping, every sample line well-formed), snapshots of an idle broker
 * whose worker counters are set by hand (sums, gauges that wrap per worker,
 * listeners sharing a port) and the $SYS load averages (mosquitto's decay:
 * values for known rates and intervals).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <moat/error.h>

#include "broker/broker.h"
#include "broker/metrics.h"
#include "broker/sys_load.h"

/* The rendered text as a NUL-terminated string (the caller frees it). */
static char *render(const struct stats *st)
{
	struct buf out = {0};
	char *s;

	assert_int_equal(metrics_render(st, &out), MOAT_OK);
	s = calloc(1, buf_used(&out) + 1);
	assert_non_null(s);
	memcpy(s, buf_head(&out), buf_used(&out));
	buf_fini(&out);
	return s;
}

/* Whether <text> has <line> as a whole line. */
static bool has_line(const char *text, const char *line)
{
	size_t n = strlen(line);

	for (const char *p = text; (p = strstr(p, line)) != NULL; p++)
		if ((p == text || p[-1] == '\n') && p[n] == '\n')
			return true;
	return false;
}

static void known_stats(struct stats *st, struct stats_listener l[2])
{
	memset(l, 0, 2 * sizeof(*l));
	l[0].port = 1883;
	l[0].connections = 3;
	l[0].accepted = 10;
	l[0].msgs_in[0] = 5;
	l[0].msgs_in[1] = 6;
	l[0].msgs_in[2] = 7;
	l[0].msgs_out[1] = 11;
	l[0].pub_bytes_in[2] = 700;
	l[0].bytes_out = 12345;
	l[1].port = 8883;
	l[1].msgs_in[1] = 1;
	*st = (struct stats){.version = "0.1.0",
			     .uptime_s = 42,
			     .nlisteners = 2,
			     .listeners = l,
			     .clients_connected = 3,
			     .sessions = 4,
			     .clients_refused = 2,
			     .publish_dropped = 9,
			     .publish_refused = 8,
			     .auth_failures = 1,
			     .acl_denials = 18446744073709551615ull,
			     .queued_msgs = 13,
			     .inflight_msgs = 14,
			     .subscriptions = 15,
			     .shared_subscriptions = 2,
			     .retained = 16,
			     .heap_current = 1u << 20};
}

static void renders_known_figures_exactly(void **state)
{
	struct stats_listener l[2];
	struct stats st;
	char *t;

	(void)state;
	known_stats(&st, l);
	t = render(&st);
	assert_true(has_line(
	    t,
	    "# HELP moat_messages_received_total PUBLISH packets received from clients, by QoS."));
	assert_true(has_line(t, "# TYPE moat_messages_received_total counter"));
	assert_true(has_line(t, "moat_messages_received_total{listener=\"1883\",qos=\"0\"} 5"));
	assert_true(has_line(t, "moat_messages_received_total{listener=\"1883\",qos=\"1\"} 6"));
	assert_true(has_line(t, "moat_messages_received_total{listener=\"1883\",qos=\"2\"} 7"));
	assert_true(has_line(t, "moat_messages_received_total{listener=\"8883\",qos=\"1\"} 1"));
	assert_true(has_line(t, "moat_messages_sent_total{listener=\"1883\",qos=\"1\"} 11"));
	assert_true(
	    has_line(t, "moat_publish_bytes_received_total{listener=\"1883\",qos=\"2\"} 700"));
	assert_true(has_line(t, "moat_bytes_sent_total{listener=\"1883\"} 12345"));
	assert_true(has_line(t, "# TYPE moat_listener_connections gauge"));
	assert_true(has_line(t, "moat_listener_connections{listener=\"1883\"} 3"));
	assert_true(has_line(t, "moat_listener_connections_accepted_total{listener=\"1883\"} 10"));
	assert_true(has_line(t, "moat_build_info{version=\"0.1.0\"} 1"));
	assert_true(has_line(t, "moat_uptime_seconds 42"));
	assert_true(has_line(t, "moat_clients_connected 3"));
	assert_true(has_line(t, "moat_sessions 4"));
	assert_true(has_line(t, "moat_clients_refused_total 2"));
	assert_true(has_line(t, "moat_publish_dropped_total 9"));
	assert_true(has_line(t, "moat_publish_refused_total 8"));
	assert_true(has_line(t, "moat_auth_failures_total 1"));
	assert_true(has_line(t, "moat_acl_denials_total 18446744073709551615"));
	assert_true(has_line(t, "moat_queued_messages 13"));
	assert_true(has_line(t, "moat_inflight_messages 14"));
	assert_true(has_line(t, "moat_subscriptions 15"));
	assert_true(has_line(t, "moat_shared_subscriptions 2"));
	assert_true(has_line(t, "moat_retained_messages 16"));
	assert_true(has_line(t, "moat_heap_bytes 1048576"));
	assert_false(has_line(t, "moat_messages_received_total{listener=\"1883\",qos=\"3\"} 0"));
	assert_int_equal(t[strlen(t) - 1], '\n');
	free(t);
}

/* Every line is a comment (# HELP / # TYPE) or `name{labels} value`, every
 * counter ends in _total, and each family's TYPE comes before its samples. */
static void every_line_is_well_formed(void **state)
{
	struct stats_listener l[2];
	struct stats st;
	char *t, *save = NULL, last_type[128] = "";
	int samples = 0;

	(void)state;
	known_stats(&st, l);
	t = render(&st);
	for (char *line = strtok_r(t, "\n", &save); line != NULL;
	     line = strtok_r(NULL, "\n", &save)) {
		char name[128], type[32];
		size_t n;

		if (strncmp(line, "# HELP ", 7) == 0)
			continue;
		if (sscanf(line, "# TYPE %127s %31s", name, type) == 2) {
			assert_true(strcmp(type, "counter") == 0 || strcmp(type, "gauge") == 0);
			n = strlen(name);
			if (strcmp(type, "counter") == 0)
				assert_true(n > 6 && strcmp(name + n - 6, "_total") == 0);
			snprintf(last_type, sizeof(last_type), "%s", name);
			continue;
		}
		n = strspn(line, "abcdefghijklmnopqrstuvwxyz_");
		assert_true(n > 0);
		assert_memory_equal(line, last_type, strlen(last_type));
		assert_int_equal(n, strlen(last_type));
		if (line[n] == '{') {
			char *close = strchr(line + n, '}');

			assert_non_null(close);
			n = (size_t)(close - line) + 1;
		}
		assert_int_equal(line[n], ' ');
		assert_true(strspn(line + n + 1, "0123456789") == strlen(line + n + 1));
		samples++;
	}
	assert_true(samples > 40);
	free(t);
}

static void label_values_and_help_are_escaped(void **state)
{
	struct buf out = {0};
	struct metrics_writer w = {&out, MOAT_OK};
	struct metrics_label l[2] = {{"a", "x\"y\\z\nw"}, {"b", ""}};
	const char want[] = "# HELP m_total one\\ntwo \\\\ \"q\"\n"
			    "# TYPE m_total counter\n"
			    "m_total{a=\"x\\\"y\\\\z\\nw\",b=\"\"} 7\n"
			    "m_total 0\n"
			    "h_sum 0.25\n"
			    "h_sum NaN\n"
			    "h_sum +Inf\n";

	(void)state;
	metrics_family(&w, "m_total", "counter", "one\ntwo \\ \"q\"");
	metrics_sample(&w, "m_total", l, 2, 7);
	metrics_sample(&w, "m_total", NULL, 0, 0);
	metrics_sample_f(&w, "h_sum", NULL, 0, 0.25);
	metrics_sample_f(&w, "h_sum", NULL, 0, NAN);
	metrics_sample_f(&w, "h_sum", NULL, 0, INFINITY);
	assert_int_equal(w.err, MOAT_OK);
	assert_int_equal(buf_used(&out), sizeof(want) - 1);
	assert_memory_equal(buf_head(&out), want, sizeof(want) - 1);
	buf_fini(&out);
}

static void histogram_buckets_are_cumulative(void **state)
{
	struct buf out = {0};
	struct metrics_writer w = {&out, MOAT_OK};
	const double le[3] = {0.000064, 0.5, 2};
	const uint64_t counts[3] = {1, 2, 0};
	const double le_inf[2] = {1, INFINITY};
	const uint64_t counts_inf[2] = {4, 1};
	const char want[] = "# HELP s_seconds Sync latency.\n"
			    "# TYPE s_seconds histogram\n"
			    "s_seconds_bucket{le=\"6.4e-05\"} 1\n"
			    "s_seconds_bucket{le=\"0.5\"} 3\n"
			    "s_seconds_bucket{le=\"2\"} 3\n"
			    "s_seconds_bucket{le=\"+Inf\"} 3\n"
			    "s_seconds_sum 1.25\n"
			    "s_seconds_count 3\n"
			    "# HELP t_seconds T.\n"
			    "# TYPE t_seconds histogram\n"
			    "t_seconds_bucket{le=\"1\"} 4\n"
			    "t_seconds_bucket{le=\"+Inf\"} 5\n"
			    "t_seconds_sum 9\n"
			    "t_seconds_count 5\n";

	(void)state;
	metrics_histogram(&w, "s_seconds", "Sync latency.", le, counts, 3, 1.25);
	metrics_histogram(&w, "t_seconds", "T.", le_inf, counts_inf, 2, 9);
	assert_int_equal(w.err, MOAT_OK);
	assert_int_equal(buf_used(&out), sizeof(want) - 1);
	assert_memory_equal(buf_head(&out), want, sizeof(want) - 1);
	buf_fini(&out);
}

static void version_label_is_escaped_and_no_listeners_is_fine(void **state)
{
	struct stats st = {.version = "1\"2"};
	char *t;

	(void)state;
	t = render(&st);
	assert_true(has_line(t, "moat_build_info{version=\"1\\\"2\"} 1"));
	assert_true(has_line(t, "# TYPE moat_messages_received_total counter"));
	assert_null(strstr(t, "moat_messages_received_total{"));
	free(t);
}

/* ---- snapshots of a real (idle) broker ---- */

static void snapshot_sums_workers_and_merges_ports(void **state)
{
	struct moat_config cfg;
	struct broker b;
	struct stats st;
	char *t;

	(void)state;
	config_defaults(&cfg);
	cfg.threads = 2;
	cfg.allow_anonymous = true;
	assert_int_equal(config_add_listener(&cfg, "127.0.0.1", 1883), MOAT_OK);
	assert_int_equal(config_add_listener(&cfg, "::1", 1883), MOAT_OK);
	assert_int_equal(config_add_listener(&cfg, NULL, 8883), MOAT_OK);
	assert_int_equal(broker_init(&b, &cfg), MOAT_OK);
	assert_int_equal(b.nstat_listeners, 3);
	/* each worker writes only its own counters */
	stat_add(&b.workers[0].sys.listeners[0].msgs_in[1], 2);
	stat_add(&b.workers[1].sys.listeners[1].msgs_in[1], 3);
	stat_add(&b.workers[1].sys.listeners[1].pub_bytes_out[2], 40);
	stat_add(&b.workers[0].sys.listeners[2].accepted, 4);
	stat_add(&b.workers[0].sys.listeners[2].closed, 1);
	stat_add(&b.workers[1].sys.listeners[2].closed, 2);  /* handed over, then closed */
	stat_add(&b.workers[1].sys.listeners[3].pkts_in, 5); /* no listener: totals only */
	stat_add(&b.workers[0].sys.queued_msgs, 3);
	stat_sub(&b.workers[1].sys.queued_msgs, 1);   /* dequeued by the other worker's share */
	stat_sub(&b.workers[1].sys.inflight_msgs, 1); /* half seen: never below zero */
	stat_add(&b.workers[1].sys.publish_refused, 7);
	stat_add(&b.workers[0].sys.publish_refused, 1);
	assert_int_equal(stats_collect(&b, &st, b.started_ms + 5500), MOAT_OK);
	assert_int_equal(st.uptime_s, 5);
	assert_int_equal(st.nlisteners, 2);
	assert_int_equal(st.listeners[0].port, 1883);
	assert_int_equal(st.listeners[0].msgs_in[1], 5);
	assert_int_equal(st.listeners[0].pub_bytes_out[2], 40);
	assert_int_equal(st.listeners[1].port, 8883);
	assert_int_equal(st.listeners[1].accepted, 4);
	assert_int_equal(st.listeners[1].connections, 1);
	assert_int_equal(st.total.pkts_in, 5);
	assert_int_equal(st.total.msgs_in[1], 5);
	assert_int_equal(st.total.connections, 1);
	assert_int_equal(st.queued_msgs, 2);
	assert_int_equal(st.inflight_msgs, 0);
	assert_int_equal(st.publish_refused, 8);
	assert_int_equal(st.sessions, 0);
	assert_int_equal(st.clients_connected, 0);
	assert_true(st.heap_maximum >= st.heap_current);
	assert_string_equal(st.version, MOAT_VERSION);
	t = render(&st);
	assert_true(has_line(t, "moat_messages_received_total{listener=\"1883\",qos=\"1\"} 5"));
	assert_true(has_line(t, "moat_listener_connections{listener=\"8883\"} 1"));
	assert_non_null(strstr(t, "moat_listener_connections{listener=\"1883\"} "
				  "0\nmoat_listener_connections{listener=\"8883\"}"));
	free(t);
	stats_fini(&st);
	stats_fini(&st); /* twice is fine */
	broker_fini(&b);
	config_fini(&cfg);
}

/* ---- load averages ---- */

static void load_first_update_only_records(void **state)
{
	struct sys_load l = {0};
	uint64_t t[LOAD_SERIES] = {[LOAD_MSGS_RECEIVED] = 1000};

	(void)state;
	sys_load_update(&l, t, 5000);
	assert_true(l.started);
	assert_true(l.avg[LOAD_MSGS_RECEIVED][0] == 0.0);
	sys_load_update(&l, t, 5000); /* no time elapsed: nothing changes */
	assert_true(l.avg[LOAD_MSGS_RECEIVED][0] == 0.0);
}

static void load_follows_mosquittos_decay(void **state)
{
	struct sys_load l = {0};
	uint64_t t[LOAD_SERIES] = {0};
	double rate = 600.0, want1, want15;

	(void)state;
	sys_load_update(&l, t, 0);
	/* 10 messages a second for 10 s: 600 a minute */
	t[LOAD_PUB_RECEIVED] = 100;
	sys_load_update(&l, t, 10000);
	want1 = rate + exp(-10.0 / 60.0) * (0.0 - rate);
	want15 = rate + exp(-10.0 / 900.0) * (0.0 - rate);
	assert_true(fabs(l.avg[LOAD_PUB_RECEIVED][0] - want1) < 1e-9);
	assert_true(fabs(l.avg[LOAD_PUB_RECEIVED][2] - want15) < 1e-9);
	assert_true(l.avg[LOAD_PUB_RECEIVED][0] > l.avg[LOAD_PUB_RECEIVED][1]);
	assert_true(l.avg[LOAD_PUB_RECEIVED][1] > l.avg[LOAD_PUB_RECEIVED][2]);
	assert_true(l.avg[LOAD_MSGS_RECEIVED][0] == 0.0);
	/* a steady rate for an hour converges on it */
	for (uint64_t s = 20; s <= 3600; s += 10) {
		t[LOAD_PUB_RECEIVED] += 100;
		sys_load_update(&l, t, s * 1000);
	}
	assert_true(fabs(l.avg[LOAD_PUB_RECEIVED][0] - rate) < 0.01);
	assert_true(fabs(l.avg[LOAD_PUB_RECEIVED][2] - rate) < 0.1 * rate);
	/* silence decays it; a counter that went backwards counts as silence */
	t[LOAD_PUB_RECEIVED] = 5;
	sys_load_update(&l, t, 3660 * 1000);
	assert_true(fabs(l.avg[LOAD_PUB_RECEIVED][0] - rate * exp(-1.0)) < 0.5);
}

static void load_names(void **state)
{
	(void)state;
	assert_string_equal(sys_load_topic(LOAD_MSGS_RECEIVED), "messages/received");
	assert_string_equal(sys_load_topic(LOAD_PUB_DROPPED), "publish/dropped");
	assert_string_equal(sys_load_topic(LOAD_SOCKETS), "sockets");
	assert_string_equal(sys_load_topic(LOAD_SERIES), "");
	assert_string_equal(sys_load_window(0), "1min");
	assert_string_equal(sys_load_window(2), "15min");
	assert_string_equal(sys_load_window(3), "");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(renders_known_figures_exactly),
	    cmocka_unit_test(every_line_is_well_formed),
	    cmocka_unit_test(label_values_and_help_are_escaped),
	    cmocka_unit_test(histogram_buckets_are_cumulative),
	    cmocka_unit_test(version_label_is_escaped_and_no_listeners_is_fine),
	    cmocka_unit_test(snapshot_sums_workers_and_merges_ports),
	    cmocka_unit_test(load_first_update_only_records),
	    cmocka_unit_test(load_follows_mosquittos_decay),
	    cmocka_unit_test(load_names),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
