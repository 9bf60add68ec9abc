/*
 * `moat bench` statistics and output: the latency histogram, the progress
 * line, the human summary and the JSON line. No sockets, no clock.
 */
#include <stdio.h>
#include <string.h>

#include "cli/bench.h"

static unsigned hist_index(uint64_t us)
{
	unsigned msb, shift, idx;

	if (us < 2 * BENCH_HIST_SUB)
		return (unsigned)us;
	msb = 63u - (unsigned)__builtin_clzll(us);
	shift = msb - 6u;	/* us >> shift lies in [64, 127] */
	idx = shift * BENCH_HIST_SUB + (unsigned)(us >> shift);
	return idx < BENCH_HIST_BUCKETS ? idx : BENCH_HIST_BUCKETS - 1;
}

/* Largest value that falls into bucket <idx>. */
static uint64_t hist_upper(unsigned idx)
{
	unsigned shift;
	uint64_t top;

	if (idx < 2 * BENCH_HIST_SUB)
		return idx;
	shift = idx / BENCH_HIST_SUB - 1u;
	top = idx - shift * BENCH_HIST_SUB;
	return ((top + 1) << shift) - 1;
}

void bench_hist_add(struct bench_hist *h, uint64_t us)
{
	h->count[hist_index(us)]++;
	h->n++;
	if (us > h->max_us)
		h->max_us = us;
}

uint64_t bench_hist_pct(const struct bench_hist *h, double pct)
{
	uint64_t want, seen = 0, v;

	if (h->n == 0)
		return 0;
	want = (uint64_t)((double)h->n * pct / 100.0 + 0.5);
	if (want == 0)
		want = 1;
	for (unsigned i = 0; i < BENCH_HIST_BUCKETS; i++) {
		seen += h->count[i];
		if (seen >= want) {
			v = hist_upper(i);
			return v < h->max_us ? v : h->max_us;
		}
	}
	return h->max_us;
}

double bench_rate(const struct bench_result *r)
{
	return r->publishers > 0 ? (double)r->received_in_run / r->duration_s : 0.0;
}

static bool is_connect(const struct bench_result *r)
{
	return strcmp(r->scenario, "connect") == 0;
}

double bench_conn_rate(const struct bench_result *r)
{
	return is_connect(r) && r->elapsed_s > 0 ? (double)r->connected / r->elapsed_s : 0.0;
}

void bench_report_progress(FILE *out, const struct bench_result *r, double t_s, uint64_t recv_1s)
{
	if (is_connect(r)) {
		fprintf(out, "moat bench: %5.1fs  connections %lu  errors %llu  p99 %llu us\n", t_s,
			r->connected, (unsigned long long)r->errors,
			(unsigned long long)bench_hist_pct(&r->hist, 99.0));
		return;
	}
	if (r->publishers == 0) {
		fprintf(out, "moat bench: %5.1fs  connected %lu/%lu\n", t_s, r->connected,
			r->connections);
		return;
	}
	fprintf(out, "moat bench: %5.1fs  sent %llu  received %llu  (%llu msg/s)  p99 %llu us\n",
		t_s, (unsigned long long)r->sent, (unsigned long long)r->received,
		(unsigned long long)recv_1s, (unsigned long long)bench_hist_pct(&r->hist, 99.0));
}

void bench_report_summary(FILE *out, const struct bench_result *r)
{
	if (is_connect(r)) {
		fprintf(out,
			"connect: %lu clients in parallel, MQTT %s%s\n"
			"  %lu connections in %.2f s: %.0f connections/s\n"
			"  connect time (TCP%s + CONNACK) p50 %llu us, p99 %llu us, max %llu us\n"
			"  errors %llu\n",
			r->connections, r->version == 5 ? "5" : "3.1.1", r->tls ? " over TLS" : "",
			r->connected, r->elapsed_s, bench_conn_rate(r), r->tls ? " + TLS" : "",
			(unsigned long long)bench_hist_pct(&r->hist, 50.0),
			(unsigned long long)bench_hist_pct(&r->hist, 99.0),
			(unsigned long long)r->hist.max_us, (unsigned long long)r->errors);
		return;
	}
	if (r->publishers == 0) {
		fprintf(out, "%s: %lu of %lu connections established and held for %.1f s (MQTT %s)\n",
			r->scenario, r->connected, r->connections, r->duration_s,
			r->version == 5 ? "5" : "3.1.1");
		return;
	}
	fprintf(out,
		"%s: %lu publisher(s) -> %lu subscriber(s), QoS %d, %lu B payload%s%s, MQTT %s\n"
		"  sent %llu, received %llu of %llu expected (last after %.2f s)\n"
		"  throughput %.0f msg/s received while publishing\n"
		"  latency p50 %llu us, p99 %llu us, max %llu us\n"
		"  lost %llu, duplicated %llu, errors %llu\n",
		r->scenario, r->publishers, r->subscribers, r->qos, r->payload_len,
		r->e2e != NULL ? " sealed with " : "", r->e2e != NULL ? r->e2e : "",
		r->version == 5 ? "5" : "3.1.1", (unsigned long long)r->sent,
		(unsigned long long)r->received, (unsigned long long)r->expected, r->elapsed_s,
		bench_rate(r), (unsigned long long)bench_hist_pct(&r->hist, 50.0),
		(unsigned long long)bench_hist_pct(&r->hist, 99.0), (unsigned long long)r->hist.max_us,
		(unsigned long long)r->lost, (unsigned long long)r->dup, (unsigned long long)r->errors);
}

void bench_report_json(FILE *out, const struct bench_result *r)
{
	fprintf(out,
		"{\"scenario\":\"%s\",\"tls\":%s,\"e2e\":\"%s\",\"qos\":%d,\"version\":%d,\"payload\":%lu,"
		"\"publishers\":%lu,\"subscribers\":%lu,\"connections\":%lu,\"connected\":%lu,"
		"\"rate\":%.0f,\"duration_s\":%.3f,\"elapsed_s\":%.3f,\"sent\":%llu,"
		"\"expected\":%llu,\"received\":%llu,\"received_in_run\":%llu,\"msgs_per_s\":%.1f,"
		"\"conns_per_s\":%.1f,\"p50_us\":%llu,"
		"\"p99_us\":%llu,\"max_us\":%llu,\"lost\":%llu,\"dup\":%llu,\"errors\":%llu}\n",
		r->scenario, r->tls ? "true" : "false", r->e2e != NULL ? r->e2e : "", r->qos, r->version,
		r->payload_len, r->publishers, r->subscribers, r->connections, r->connected, r->rate, r->duration_s,
		r->elapsed_s, (unsigned long long)r->sent, (unsigned long long)r->expected,
		(unsigned long long)r->received, (unsigned long long)r->received_in_run, bench_rate(r),
		bench_conn_rate(r), (unsigned long long)bench_hist_pct(&r->hist, 50.0),
		(unsigned long long)bench_hist_pct(&r->hist, 99.0), (unsigned long long)r->hist.max_us,
		(unsigned long long)r->lost, (unsigned long long)r->dup, (unsigned long long)r->errors);
}
