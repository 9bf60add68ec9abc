/*
 * `moat bench`: the load generator (bench.c), its statistics and reports
 * (bench_report.c) and its TLS set-up (bench_tls.c). The generator drives its
 * own non-blocking sockets with the codec; this header holds only what the
 * files share.
 */
#ifndef MOAT_CLI_BENCH_H
#define MOAT_CLI_BENCH_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include <openssl/ssl.h>

#include "base/buf.h"
#include "e2e/cose.h"

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
	bool tls;
	const char *e2e;	/* the payload AEAD with --e2e, else NULL */
	int qos, version;
	unsigned long payload_len, publishers, subscribers, connections;
	double rate;		/* messages/s per publisher, 0 = unthrottled */
	double duration_s;	/* requested publishing (or holding) time */
	double elapsed_s;	/* first PUBLISH sent to last one received; connect: run time */
	uint64_t sent;		/* PUBLISH packets written by publishers */
	uint64_t expected;	/* sum over publisher -> subscriber pairs of what was sent */
	uint64_t received;	/* distinct messages subscribers received */
	uint64_t received_in_run;	/* of those, received before publishing stopped */
	uint64_t lost, dup;
	uint64_t errors;	/* refused acks, foreign payloads, broken connections */
	unsigned long connected;	/* connections that got a successful CONNACK */
	/* latency of each message, or (connect) time from socket() to CONNACK of each connection */
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

/* Connections per second of a connect run <r>: successful CONNACKs per second of run time. */
double bench_conn_rate(const struct bench_result *r);

/* Prints the one-second progress line of a running <r> at <t_s> seconds to <out>. */
void bench_report_progress(FILE *out, const struct bench_result *r, double t_s, uint64_t recv_1s);

/* Prints the human summary of the finished run <r> to <out>. */
void bench_report_summary(FILE *out, const struct bench_result *r);

/* Prints <r> as one JSON object on one line to <out>. */
void bench_report_json(FILE *out, const struct bench_result *r);

/*
 * Creates the client TLS context of `moat bench --cafile`: TLS 1.2 or 1.3,
 * the server verified against the CA certificates in <cafile>, and when
 * <cert> is not NULL the client certificate chain <cert> with its private key
 * <key>. Returns NULL after printing why to standard error.
 */
SSL_CTX *bench_tls_ctx_create(const char *cafile, const char *cert, const char *key);

/*
 * Returns a client SSL object of <ctx> on the connected non-blocking socket
 * <fd>, checking that the server's certificate names <host> (a DNS name, also
 * sent as SNI, or an IP address literal); NULL when out of memory. The caller
 * drives the handshake and frees the object with SSL_free().
 */
SSL *bench_tls_open(SSL_CTX *ctx, int fd, const char *host);

/* `moat bench --e2e` (bench_e2e.c): one made-up group key for the run. */
struct bench_e2e {
	int alg;		/* enum e2e_alg; 0 = plain payloads */
	struct cose_group g;
	struct buf sealed, opened;	/* scratch, reused by every message */
	struct e2e_keys *keys;		/* per publisher, derived on first use, as a device caches them */
	bool *derived;
	size_t nkeys;
};
/* Takes the algorithm by name (weak ones refused, the reason printed) and
 * makes the key. MOAT_OK or an error after printing it. */
int bench_e2e_init(struct bench_e2e *e, const char *alg_name, size_t publishers);
void bench_e2e_fini(struct bench_e2e *e);
/* Seals <plain> as message <seq> of publisher <publisher> on <topic>; *<out>
 * views the envelope until the next call. MOAT_OK or an error. */
int bench_e2e_seal(struct bench_e2e *e, uint32_t publisher, uint64_t seq, struct moat_bytes topic,
		   struct moat_bytes plain, struct moat_bytes *out);
/* Opens <env> received on <topic>; *<plain> views the plaintext until the next call. */
int bench_e2e_open(struct bench_e2e *e, struct moat_bytes topic, struct moat_bytes env,
		   struct moat_bytes *plain);

/* Entry point of `moat bench`; <argv>[0] is "bench". Returns the exit code. */
int cli_bench_main(int argc, char **argv);

#endif
