/*
 * The broker's crash-safe store: an embedded ordered key-value store (one
 * file set in a directory) written by one commit thread with group commit.
 *
 * Threads build batches of operations (store_batch_*) and submit them; the
 * commit thread applies every submitted batch, in submission order, in as
 * few transactions as it can, makes them durable according to the sync
 * policy, then publishes the highest durable ticket (store_durable) and
 * wakes the submitters' event fds. A caller that must not answer before its
 * writes are durable (a PUBACK) waits until store_durable() >= its ticket.
 *
 * When a commit fails (disk full, I/O error) nothing is dropped: the batches
 * stay queued and are retried every STORE_RETRY_MS; store_durable() stops
 * advancing and store_refusing() turns true, so callers refuse new data
 * (MQTT v5 0x97) instead of acknowledging what might be lost. It also turns
 * true while the store holds more than max_bytes (the soft limit), so that
 * deletions, which need some room too, keep working.
 */
#ifndef MOAT_STORE_STORE_H
#define MOAT_STORE_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"

enum store_sync {
	STORE_SYNC_ALWAYS,	/* commit and sync as soon as a batch is queued */
	STORE_SYNC_BATCH,	/* gather batches for up to batch_ms, then one sync */
	STORE_SYNC_NONE,	/* commit without sync: survives a killed process, not a power cut */
};

enum { STORE_RETRY_MS = 200 };

struct store_opts {
	const char *dir;	/* created (0700) when missing */
	enum store_sync sync;
	uint32_t batch_ms;	/* STORE_SYNC_BATCH window */
	uint64_t max_bytes;	/* soft limit on the store's size; 0 = none */
};

struct store;

/* Opens (creating when missing) the store in o->dir and starts its commit
 * thread. Takes <dir>/moat.lock (a second opener is refused, naming the
 * holder's pid) and first reads every record once in a forked child, as
 * LMDB aborts on a damaged page. On error writes a sentence naming the file
 * and the cause into <err> and returns MOAT_E_IO (cannot open/create),
 * MOAT_E_PARSE (damaged: see store_check) or MOAT_E_NOMEM. */
int store_open(const struct store_opts *o, struct store **out, char *err, size_t errlen);

/* Commits everything submitted, stops the commit thread and closes. When
 * commits are failing it makes one last attempt and then drops what is still
 * queued (call store_flush first to know). NULL is fine. */
void store_close(struct store *s);

/* Calls <fn> for every record whose key starts with <prefix> (all records
 * when plen is 0), in key order, until it returns non-zero (which is then
 * returned). Only at start-up, before the first store_submit. MOAT_OK,
 * MOAT_E_IO or MOAT_E_PARSE (engine-level damage). */
typedef int (*store_visit_fn)(void *ctx, const uint8_t *key, size_t klen, const uint8_t *val,
			      size_t vlen);
int store_scan(struct store *s, const uint8_t *prefix, size_t plen, store_visit_fn fn, void *ctx);

/* A batch of operations, applied in order. Build with the functions below;
 * store_submit hands its contents over and leaves it empty for reuse. */
struct store_batch {
	struct buf ops;
	uint32_t count;
};

/* Keys are 1..STORE_MAX_KEY bytes (LMDB's limit), values at most
 * STORE_MAX_VALUE (an MQTT packet and some), a batch's operations at most
 * STORE_MAX_BATCH bytes (so that one transaction always fits in LMDB). */
enum {
	STORE_MAX_KEY = 511,
	STORE_MAX_VALUE = (1 << 28) + (1 << 16),
	STORE_MAX_BATCH = 320 << 20,
};

void store_batch_init(struct store_batch *b);
void store_batch_fini(struct store_batch *b);
/* MOAT_OK, MOAT_E_LIMIT (outside the limits above) or MOAT_E_NOMEM; on
 * error the batch is unchanged. */
int store_batch_put(struct store_batch *b, const uint8_t *key, size_t klen, const uint8_t *val,
		    size_t vlen);
int store_batch_del(struct store_batch *b, const uint8_t *key, size_t klen);
/* Deletes every record whose key starts with <prefix>. */
int store_batch_del_prefix(struct store_batch *b, const uint8_t *prefix, size_t plen);

/* Queues <b>'s operations for the commit thread and empties <b>. Returns the
 * batch's ticket (> 0), or 0 when <b> was empty (nothing to wait for). Once
 * the batch is durable, 1 is written (eventfd style, 8 bytes) to <wake_fd>
 * when it is >= 0. MOAT_E_NOMEM cannot happen: the buffer is moved, not copied. */
uint64_t store_submit(struct store *s, struct store_batch *b, int wake_fd);

/* The highest ticket whose batch (and every batch before it) is durable. Any thread. */
uint64_t store_durable(const struct store *s);

/* Whether new data should be refused: over max_bytes, or commits failing. Any thread. */
bool store_refusing(const struct store *s);

/* Commits submitted so far, waiting until they are durable (or failed:
 * MOAT_E_IO). For shutdown and tests. */
int store_flush(struct store *s);

/* Figures for $SYS and /metrics. Sync latency is the time from commit to
 * durable (the write, LMDB's data sync and the meta sync); not counted for
 * STORE_SYNC_NONE. */
enum { STORE_SYNC_BUCKETS = 12 };	/* sync latency: <= 2^(2k+6) us, k = 0..10; last = larger */
struct store_stats {
	uint64_t commits, syncs, failures;
	uint64_t records_written, records_deleted;
	uint64_t bytes_used;
	uint64_t sync_us_sum;
	uint64_t sync_hist[STORE_SYNC_BUCKETS];
	uint64_t pending_batches;
};
void store_get_stats(struct store *s, struct store_stats *st);

/* Reads every record of the store in <dir> without starting a commit
 * thread and reports damage: returns MOAT_OK, or MOAT_E_PARSE with the first
 * problem in <err>. <check_value>, when not NULL, judges each record (the
 * broker checks its own encoding) and returns a static reason or NULL. When
 * <repair> is set, records judged damaged are deleted and each is reported
 * through <report> before. For `moatd --check-store` / `--repair-store`. */
typedef const char *(*store_check_fn)(const uint8_t *key, size_t klen, const uint8_t *val, size_t vlen);
typedef void (*store_report_fn)(void *ctx, const uint8_t *key, size_t klen, const char *why);
int store_check(const char *dir, store_check_fn check_value, bool repair, store_report_fn report,
		void *ctx, char *err, size_t errlen);

#endif
