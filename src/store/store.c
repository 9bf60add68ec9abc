/*
 * The broker's crash-safe store on LMDB (see store.h; docs/persistence.md
 * says why LMDB). Submitters queue batches under a mutex; one commit thread
 * takes every queued batch, applies them in order in one write transaction,
 * commits, syncs per policy, publishes the durable ticket and wakes the
 * submitters' event fds. A failed commit leaves the batches queued for a
 * retry. Reading and checking a store that is not open is check.c's job.
 */
#include "store/store.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <lmdb.h>

#include "base/clock.h"
#include "store/check.h"
#include "store/env.h"
#include "store/lock.h"
#include "store/ops.h"
#include "store/testing.h"
#include <moat/error.h>

enum {
	TXN_MAX_BYTES = 32 << 20, /* ops applied in one transaction, at least one batch */
	WAKE_DEDUP = 32,	  /* distinct wake fds remembered per commit */
};

struct store {
	char *dir;
	enum store_sync sync;
	uint32_t batch_ms;
	uint64_t max_bytes;
	int lock_fd;
	MDB_env *env;
	MDB_dbi dbi;
	uint64_t map_bytes; /* current map size; the commit thread's */
	pthread_t thread;

	pthread_mutex_t mu;
	pthread_cond_t work; /* to the commit thread: batches queued, flush or stop asked */
	pthread_cond_t done; /* to flush: a commit succeeded or failed */
	struct store_node *head, *tail;
	uint64_t next_ticket;
	uint64_t flush_until; /* commit now, without the batch window, up to this ticket */
	uint64_t map_cap;     /* tests: the map may not grow past this (0 = no cap) */
	bool stopping;
	struct store_stats stats;

	_Atomic uint64_t durable;
	atomic_bool failing;
	atomic_bool over_limit;
};

/* The map is virtual (sparse): reserve far more than the soft limit. */
static uint64_t initial_map_bytes(uint64_t max_bytes)
{
	uint64_t gib = (uint64_t)1 << 30;

	if (max_bytes == 0)
		return 16 * gib;
	if (max_bytes > UINT64_MAX / 4)
		return UINT64_MAX / 2;
	return 4 * max_bytes > gib ? 4 * max_bytes : gib;
}

static void abs_deadline_ms(struct timespec *ts, uint64_t at_ms)
{
	ts->tv_sec = (time_t)(at_ms / 1000);
	ts->tv_nsec = (long)(at_ms % 1000) * 1000000L;
}

/* Waits on <c> until <at_ms> on the monotonic clock (or a signal). */
static void wait_until(pthread_cond_t *c, pthread_mutex_t *mu, uint64_t at_ms)
{
	struct timespec ts;

	abs_deadline_ms(&ts, at_ms);
	pthread_cond_timedwait(c, mu, &ts);
}

static int del_prefix(MDB_txn *txn, MDB_dbi dbi, const struct store_op *op, uint64_t *deleted)
{
	MDB_cursor *c;
	MDB_val k, v;
	int rc;

	rc = mdb_cursor_open(txn, dbi, &c);
	if (rc != 0)
		return rc;
	for (;;) {
		if (op->klen == 0) {
			rc = mdb_cursor_get(c, &k, &v, MDB_FIRST);
		} else {
			k = (MDB_val){op->klen, (void *)op->key};
			rc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE);
		}
		if (rc == MDB_NOTFOUND) {
			rc = 0;
			break;
		}
		if (rc != 0)
			break;
		if (op->klen > 0 &&
		    (k.mv_size < op->klen || memcmp(k.mv_data, op->key, op->klen) != 0))
			break;
		rc = mdb_cursor_del(c, 0);
		if (rc != 0)
			break;
		(*deleted)++;
	}
	mdb_cursor_close(c);
	return rc;
}

static int apply_op(MDB_txn *txn, MDB_dbi dbi, const struct store_op *op, uint64_t *written,
		    uint64_t *deleted)
{
	MDB_val k = {op->klen, (void *)op->key}, v = {op->vlen, (void *)op->val};
	int rc;

	switch (op->type) {
	case STORE_OP_PUT:
		rc = mdb_put(txn, dbi, &k, &v, 0);
		if (rc == 0)
			(*written)++;
		return rc;
	case STORE_OP_DEL:
		rc = mdb_del(txn, dbi, &k, NULL);
		if (rc == 0)
			(*deleted)++;
		return rc == MDB_NOTFOUND ? 0 : rc;
	case STORE_OP_DEL_PREFIX:
		return del_prefix(txn, dbi, op, deleted);
	}
	return EINVAL;
}

/* Applies batches <first> to <last> in one transaction and commits it, synced
 * per policy. Returns 0 or an LMDB/errno code (the transaction is then aborted). */
static int commit_batches(struct store *s, struct store_node *first, struct store_node *last,
			  uint64_t *written, uint64_t *deleted, uint64_t *sync_us)
{
	MDB_txn *txn;
	uint64_t t0;
	int rc;

	*written = *deleted = *sync_us = 0;
	rc = mdb_txn_begin(s->env, NULL, 0, &txn);
	if (rc != 0)
		return rc;
	/* Submitters append behind <last> meanwhile: never read last->next here. */
	for (struct store_node *n = first; rc == 0; n = n->next) {
		const uint8_t *p, *end;
		struct store_op op;

		store_node_ops(n, &p, &end);
		while (rc == 0 && store_op_next(&p, end, &op))
			rc = apply_op(txn, s->dbi, &op, written, deleted);
		if (n == last)
			break;
	}
	if (rc != 0) {
		mdb_txn_abort(txn);
		return rc;
	}
	t0 = clock_mono_us();
	/* With MDB_NOMETASYNC the commit syncs the data pages before it writes the
	 * meta page, and the meta page is synced here: a power cut loses at most
	 * this commit and never leaves a meta page pointing at unwritten pages. */
	rc = mdb_txn_commit(txn);
	if (rc == 0 && s->sync != STORE_SYNC_NONE)
		rc = mdb_env_sync(s->env, 1);
	*sync_us = clock_mono_us() - t0;
	return rc;
}

/* On MDB_MAP_FULL: grows the (virtual) map, within the test cap. Returns whether it grew. */
static bool grow_map(struct store *s, uint64_t cap)
{
	uint64_t want = s->map_bytes * 2;

	if (cap != 0 && want > cap)
		want = cap;
	if (want <= s->map_bytes || mdb_env_set_mapsize(s->env, (size_t)want) != 0)
		return false;
	s->map_bytes = want;
	return true;
}

static void note_sync(struct store_stats *st, uint64_t us)
{
	unsigned k = 0;

	st->syncs++;
	st->sync_us_sum += us;
	while (k < STORE_SYNC_BUCKETS - 1 && us > ((uint64_t)1 << (2 * k + 6)))
		k++;
	st->sync_hist[k]++;
}

/* Writes 1 to each distinct wake fd of the committed batches, and frees them. */
static void wake_and_free(struct store_node *n)
{
	int seen[WAKE_DEDUP];
	size_t nseen = 0;
	uint64_t one = 1;

	while (n != NULL) {
		struct store_node *next = n->next;
		bool dup = false;

		for (size_t i = 0; i < nseen && !dup; i++)
			dup = seen[i] == n->wake_fd;
		if (n->wake_fd >= 0 && !dup) {
			/* A full eventfd counter (EAGAIN) already wakes its reader. */
			ssize_t w = write(n->wake_fd, &one, sizeof(one));

			(void)w;
			if (nseen < WAKE_DEDUP)
				seen[nseen++] = n->wake_fd;
		}
		free(n);
		n = next;
	}
}

/* The last batch, from <first> on, that fits in one transaction. */
static struct store_node *txn_last(struct store_node *first)
{
	size_t bytes = first->len;
	struct store_node *n = first;

	while (n->next != NULL && bytes + n->next->len <= TXN_MAX_BYTES) {
		n = n->next;
		bytes += n->len;
	}
	return n;
}

/* One commit attempt of the queue's head batches; called and returns with s->mu held. */
static void commit_some(struct store *s)
{
	struct store_node *first = s->head, *last = txn_last(first);
	uint64_t written, deleted, sync_us, used, cap = s->map_cap;
	int rc;

	pthread_mutex_unlock(&s->mu);
	if (cap != 0 && s->map_bytes > cap && mdb_env_set_mapsize(s->env, (size_t)cap) == 0) {
		MDB_envinfo info;

		/* LMDB keeps the map at least as large as the data. */
		if (mdb_env_info(s->env, &info) == 0)
			s->map_bytes = info.me_mapsize;
	}
	do
		rc = commit_batches(s, first, last, &written, &deleted, &sync_us);
	while (rc == MDB_MAP_FULL && grow_map(s, cap));
	used = rc == 0 ? store_env_used(s->env) : 0;
	pthread_mutex_lock(&s->mu);

	if (rc != 0) {
		s->stats.failures++;
		atomic_store(&s->failing, true);
		pthread_cond_broadcast(&s->done);
		return;
	}
	s->head = last->next;
	if (s->head == NULL)
		s->tail = NULL;
	last->next = NULL;
	s->stats.commits++;
	if (s->sync != STORE_SYNC_NONE)
		note_sync(&s->stats, sync_us);
	s->stats.records_written += written;
	s->stats.records_deleted += deleted;
	s->stats.bytes_used = used;
	s->stats.pending_batches -= last->ticket - first->ticket + 1;
	atomic_store(&s->over_limit, s->max_bytes != 0 && used > s->max_bytes);
	atomic_store(&s->failing, false);
	atomic_store(&s->durable, last->ticket);
	pthread_cond_broadcast(&s->done);

	pthread_mutex_unlock(&s->mu);
	wake_and_free(first);
	pthread_mutex_lock(&s->mu);
}

static void *commit_thread(void *arg)
{
	struct store *s = arg;
	uint64_t retry_at = 0;

	pthread_mutex_lock(&s->mu);
	for (;;) {
		while (s->head == NULL && !s->stopping)
			pthread_cond_wait(&s->work, &s->mu);
		if (s->head == NULL)
			break;
		if (retry_at != 0 && !s->stopping && clock_mono_ms() < retry_at) {
			wait_until(&s->work, &s->mu, retry_at);
			continue;
		}
		if (s->sync == STORE_SYNC_BATCH && !s->stopping && retry_at == 0 &&
		    s->flush_until <= atomic_load(&s->durable) &&
		    clock_mono_ms() < s->head->arrived_ms + s->batch_ms) {
			wait_until(&s->work, &s->mu, s->head->arrived_ms + s->batch_ms);
			continue;
		}
		commit_some(s);
		if (atomic_load(&s->failing) && s->stopping)
			break; /* still failing at shutdown: give up rather than hang */
		retry_at = atomic_load(&s->failing) ? clock_mono_ms() + STORE_RETRY_MS : 0;
	}
	/* Batches are left only when commits kept failing at shutdown. */
	struct store_node *left = s->head;

	s->head = s->tail = NULL;
	pthread_mutex_unlock(&s->mu);
	while (left != NULL) {
		struct store_node *next = left->next;

		free(left);
		left = next;
	}
	return NULL;
}

static int init_sync(struct store *s)
{
	pthread_condattr_t ca;
	int rc;

	if (pthread_condattr_init(&ca) != 0)
		return MOAT_E_NOMEM;
	rc = pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	if (rc == 0)
		rc = pthread_mutex_init(&s->mu, NULL);
	if (rc == 0 && (rc = pthread_cond_init(&s->work, &ca)) != 0)
		pthread_mutex_destroy(&s->mu);
	if (rc == 0 && (rc = pthread_cond_init(&s->done, &ca)) != 0) {
		pthread_cond_destroy(&s->work);
		pthread_mutex_destroy(&s->mu);
	}
	pthread_condattr_destroy(&ca);
	return rc == 0 ? MOAT_OK : MOAT_E_NOMEM;
}

static void fini_sync(struct store *s)
{
	pthread_cond_destroy(&s->done);
	pthread_cond_destroy(&s->work);
	pthread_mutex_destroy(&s->mu);
}

int store_open(const struct store_opts *o, struct store **out, char *err, size_t errlen)
{
	unsigned flags = o->sync == STORE_SYNC_NONE ? MDB_NOSYNC : MDB_NOMETASYNC;
	char path[4096];
	MDB_envinfo info;
	struct store *s;
	int rc;

	if (o->dir == NULL || o->dir[0] == '\0') {
		snprintf(err, errlen, "persistence_location is empty");
		return MOAT_E_IO;
	}
	s = calloc(1, sizeof(*s));
	if (s == NULL || (s->dir = strdup(o->dir)) == NULL) {
		free(s);
		snprintf(err, errlen, "%s: out of memory opening the store", o->dir);
		return MOAT_E_NOMEM;
	}
	s->sync = o->sync;
	s->batch_ms = o->batch_ms;
	s->max_bytes = o->max_bytes;
	s->next_ticket = 1;
	s->map_bytes = initial_map_bytes(o->max_bytes);
	if (s->map_bytes > SIZE_MAX / 2)
		s->map_bytes = SIZE_MAX / 2;
	rc = s->lock_fd = store_lock_take(o->dir, true, err, errlen);
	if (rc < 0)
		goto err_free;
	/* LMDB aborts on a damaged page: read everything once in a child first. */
	snprintf(path, sizeof(path), "%s/data.mdb", o->dir);
	if (access(path, F_OK) == 0) {
		rc = store_verify(o->dir, NULL, NULL, NULL, err, errlen);
		if (rc < 0)
			goto err_unlock;
	}
	rc = store_env_open(o->dir, flags, (size_t)s->map_bytes, &s->env, &s->dbi, err, errlen);
	if (rc < 0)
		goto err_unlock;
	/* Reader slots of a killed process would pin old pages: free them. */
	mdb_reader_check(s->env, NULL);
	if (mdb_env_info(s->env, &info) == 0)
		s->map_bytes = info.me_mapsize;
	s->stats.bytes_used = store_env_used(s->env);
	atomic_init(&s->durable, 0);
	atomic_init(&s->failing, false);
	atomic_init(&s->over_limit, s->max_bytes != 0 && s->stats.bytes_used > s->max_bytes);
	rc = init_sync(s);
	if (rc < 0)
		goto err_close_env;
	if (pthread_create(&s->thread, NULL, commit_thread, s) != 0) {
		rc = MOAT_E_NOMEM;
		goto err_fini_sync;
	}
	*out = s;
	return MOAT_OK;

err_fini_sync:
	fini_sync(s);
err_close_env:
	snprintf(err, errlen, "%s: out of memory starting the store's commit thread", o->dir);
	mdb_env_close(s->env);
err_unlock:
	store_lock_release(s->lock_fd);
err_free:
	free(s->dir);
	free(s);
	return rc;
}

void store_close(struct store *s)
{
	if (s == NULL)
		return;
	pthread_mutex_lock(&s->mu);
	s->stopping = true;
	pthread_cond_signal(&s->work);
	pthread_mutex_unlock(&s->mu);
	pthread_join(s->thread, NULL);
	fini_sync(s);
	mdb_env_close(s->env);
	store_lock_release(s->lock_fd);
	free(s->dir);
	free(s);
}

int store_scan(struct store *s, const uint8_t *prefix, size_t plen, store_visit_fn fn, void *ctx)
{
	MDB_txn *txn;
	MDB_cursor *c;
	MDB_val k, v;
	int rc, ret = MOAT_OK;
	char err[256];

	rc = mdb_txn_begin(s->env, NULL, MDB_RDONLY, &txn);
	if (rc != 0)
		return store_env_error(rc, s->dir, "scan", err, sizeof(err));
	rc = mdb_cursor_open(txn, s->dbi, &c);
	if (rc != 0) {
		mdb_txn_abort(txn);
		return store_env_error(rc, s->dir, "scan", err, sizeof(err));
	}
	k = (MDB_val){plen, (void *)prefix};
	rc = mdb_cursor_get(c, &k, &v, plen == 0 ? MDB_FIRST : MDB_SET_RANGE);
	while (rc == 0) {
		if (plen > 0 && (k.mv_size < plen || memcmp(k.mv_data, prefix, plen) != 0))
			break;
		ret = fn(ctx, k.mv_data, k.mv_size, v.mv_data, v.mv_size);
		if (ret != 0)
			break;
		rc = mdb_cursor_get(c, &k, &v, MDB_NEXT);
	}
	if (rc != 0 && rc != MDB_NOTFOUND)
		ret = store_env_error(rc, s->dir, "scan", err, sizeof(err));
	mdb_cursor_close(c);
	mdb_txn_abort(txn);
	return ret;
}

uint64_t store_submit(struct store *s, struct store_batch *b, int wake_fd)
{
	struct store_node *n;
	uint64_t ticket;

	if (b->count == 0 || buf_used(&b->ops) == 0)
		return 0;
	n = (struct store_node *)b->ops.data; /* batch.c reserved the head; off is 0 */
	n->next = NULL;
	n->len = b->ops.len;
	n->wake_fd = wake_fd;
	n->arrived_ms = clock_mono_ms();
	b->ops = (struct buf){0};
	b->count = 0;

	pthread_mutex_lock(&s->mu);
	ticket = n->ticket = s->next_ticket++;
	if (s->tail != NULL)
		s->tail->next = n;
	else
		s->head = n;
	s->tail = n;
	s->stats.pending_batches++;
	/* BATCH waits for its window on its own; wake it only for the first batch. */
	if (s->sync != STORE_SYNC_BATCH || s->head == n)
		pthread_cond_signal(&s->work);
	pthread_mutex_unlock(&s->mu);
	return ticket;
}

uint64_t store_durable(const struct store *s)
{
	return atomic_load(&((struct store *)s)->durable);
}

bool store_refusing(const struct store *s)
{
	struct store *w = (struct store *)s;

	return atomic_load(&w->failing) || atomic_load(&w->over_limit);
}

int store_flush(struct store *s)
{
	uint64_t target, failures;
	int rc = MOAT_OK;

	pthread_mutex_lock(&s->mu);
	target = s->next_ticket - 1;
	failures = s->stats.failures;
	if (target > s->flush_until)
		s->flush_until = target;
	pthread_cond_signal(&s->work);
	while (atomic_load(&s->durable) < target) {
		if (s->stats.failures != failures) {
			rc = MOAT_E_IO;
			break;
		}
		pthread_cond_wait(&s->done, &s->mu);
	}
	pthread_mutex_unlock(&s->mu);
	return rc;
}

void store_get_stats(struct store *s, struct store_stats *st)
{
	pthread_mutex_lock(&s->mu);
	*st = s->stats;
	pthread_mutex_unlock(&s->mu);
}

void store_set_map_cap(struct store *s, uint64_t bytes)
{
	pthread_mutex_lock(&s->mu);
	s->map_cap = bytes;
	pthread_cond_signal(&s->work);
	pthread_mutex_unlock(&s->mu);
}
