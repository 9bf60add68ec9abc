/*
 * `moat bench`: the load generator (bench.c) and its statistics and reports
 * (bench_report.c). The generator drives its own non-blocking sockets with
 * the codec; this header holds only what the two files share.
 */
#ifndef MOAT_CLI_BENCH_H
#define MOAT_CLI_BENCH_H

#include <stdint.h>
#include <stdio.h>

/* Latency histogram: exact below 128 µs, then 64 buckets per power of two (< 1.6 % error). */
#define BENCH_HIST_SUB 64u
#define BENCH_HIST_BUCKETS (BENCH_HIST_SUB * 60u)

struct bench_hist {
	uint64_t count[BENCH_HIST_BUCKETS];
	uint64_t n;
	uint64_t max_us;
};

/* What one run measured; filled by bench.c, printed by bench_report.c. */
struct bench_result {
	const char *scenario;
	int qos, version;
	unsigned long payload_len, publishers, subscribers, connections;
	double rate;		/* messages/s per publisher, 0 = unthrottled */
	double duration_s;	/* requested publishing (or holding) time */
	double elapsed_s;	/* first PUBLISH sent to last one received */
	uint64_t sent;		/* PUBLISH packets written by publishers */
	uint64_t expected;	/* sum over publisher -> subscriber pairs of what was sent */
	uint64_t received;	/* distinct messages subscribers received */
	uint64_t received_in_run;	/* of those, received before publishing stopped */
	uint64_t lost, dup;
	uint64_t errors;	/* refused acks, foreign payloads, broken connections */
	unsigned long connected;	/* connections that got a successful CONNACK */
	struct bench_hist hist;
};

/* Adds one latency sample of <us> microseconds to <h>. */
void bench_hist_add(struct bench_hist *h, uint64_t us);

/*
 * Returns the latency in µs below which <pct> percent (0..100) of the
 * samples in <h> lie (the upper edge of that bucket, capped at the maximum);
 * 0 when <h> is empty.
 */
uint64_t bench_hist_pct(const struct bench_hist *h, double pct);

/*
 * Throughput of <r>: messages received while the publishers ran, per second
 * of that time (the drain that follows only settles losses); 0 for idle runs.
 */
double bench_rate(const struct bench_result *r);

/* Prints the one-second progress line of a running <r> at <t_s> seconds to <out>. */
void bench_report_progress(FILE *out, const struct bench_result *r, double t_s, uint64_t recv_1s);

/* Prints the human summary of the finished run <r> to <out>. */
void bench_report_summary(FILE *out, const struct bench_result *r);

/* Prints <r> as one JSON object on one line to <out>. */
void bench_report_json(FILE *out, const struct bench_result *r);

/* Entry point of `moat bench`; <argv>[0] is "bench". Returns the exit code. */
int cli_bench_main(int argc, char **argv);

#endif
