/*
 * keyrel_latency's shared parts (bench/keyrel_latency.c: setup, the
 * in-process key server run, statistics, main; bench/krb_e2e.c: the run
 * through moatd and `moat-sc serve`). Bench code, not a library.
 */
#ifndef MOAT_BENCH_KRB_H
#define MOAT_BENCH_KRB_H

#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"
#include "e2e/keyrel.h"

#define KRB_TOPIC "plant/bench/temp" /* the topic every request asks a publish key for */

/* One registered device: keys derived from its name (deterministic). */
struct krb_dev {
	char name[32];
	uint8_t seed[32]; /* Ed25519 private seed */
	uint8_t x_sk[32]; /* X25519 */
	uint8_t x_pub[32];
};

/* Latencies of one run, in microseconds. */
struct krb_stats {
	double *us;
	size_t n, cap;
	size_t errors;
	double elapsed_s; /* wall time of the whole run */
	double cpu_us;	  /* CPU time per request: this thread's (in process) or moat-sc's */
};

/* Monotonic clock in microseconds. */
double krb_now_us(void);

/* This thread's CPU time in microseconds. */
double krb_cpu_us(void);

/* Appends one latency; exits on out of memory. */
void krb_stats_add(struct krb_stats *s, double us);

/* Sorts and returns the <q> quantile (0..1) of <s>, 0 when empty. */
double krb_stats_q(struct krb_stats *s, double q);

/* A pseudo-random index below <n> (fixed seed: runs draw the same devices). */
size_t krb_rand(size_t n);

/* Appends to <out> the signed get-key request of <d> for KRB_TOPIC
 * (publish intent, fresh nonce, iat now); <req> gets its req_hash. */
int krb_request(const struct krb_dev *d, struct keyrel_request *req, struct buf *out);

/* Reads the SC's Ed25519 public key from DIR/token.pub (PEM): MOAT_OK or
 * MOAT_E_CONFIG. */
int krb_sc_public_key(const char *dir, uint8_t pub[32]);

/* Runs <argv> (argv[0] a path) with stdout and stderr to <log> (NULL:
 * inherited) and returns its pid, or -1. */
int krb_spawn(char *const argv[], const char *log);

/* Runs <argv> to completion: 0 when it exits 0. */
int krb_run(char *const argv[]);

/* The end-to-end run over the SC directory <dir> (registered, with
 * policies.json), moatd, moat-sc and the client <devs>/<n>: <requests>
 * sequential requests into <seq>, then <requests> with <inflight> in
 * flight into <thr>. <bindir> holds moatd, moat-sc and moat. 0 or -1 (a
 * message on stderr). */
int krb_e2e_run(const char *dir, const char *bindir, const struct krb_dev *devs, size_t n,
		size_t requests, size_t inflight, struct krb_stats *seq, struct krb_stats *thr);

#endif
