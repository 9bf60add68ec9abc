/*
 * Unit tests for src/store: batches and scans, tickets and wake-ups, FIFO
 * order across threads, durability across close, reopen and a killed
 * process, refusal over the soft limit and while commits fail, damaged files,
 * the directory lock and store_check.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <ftw.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/wait.h>
#include <unistd.h>

#include "base/clock.h"
#include "store/store.h"
#include "store/testing.h"
#include <moat/error.h>

struct fixture {
	char dir[64];
	char err[512];
};

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	if (f == NULL)
		return -1;
	/* A directory that store_open must create. */
	snprintf(f->dir, sizeof(f->dir), "/tmp/moat_store_XXXXXX");
	if (mkdtemp(f->dir) == NULL)
		return -1;
	strcat(f->dir, "/s");
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	*strrchr(f->dir, '/') = '\0';
	nftw(f->dir, rm_one, 8, FTW_DEPTH | FTW_PHYS);
	free(f);
	return 0;
}

static struct store *open_store(struct fixture *f, enum store_sync sync, uint64_t max_bytes)
{
	struct store_opts o = {.dir = f->dir, .sync = sync, .batch_ms = 20, .max_bytes = max_bytes};
	struct store *s = NULL;
	int rc = store_open(&o, &s, f->err, sizeof(f->err));

	if (rc != MOAT_OK)
		fail_msg("store_open: %s", f->err);
	return s;
}

static void put_str(struct store_batch *b, const char *k, const char *v)
{
	assert_int_equal(
	    store_batch_put(b, (const uint8_t *)k, strlen(k), (const uint8_t *)v, strlen(v)),
	    MOAT_OK);
}

static uint64_t submit(struct store *s, struct store_batch *b)
{
	uint64_t t = store_submit(s, b, -1);

	assert_true(t > 0);
	return t;
}

/* Collects "key=value;" for every record visited. */
struct collect {
	char text[8192];
	size_t n;
};

static int collect_fn(void *ctx, const uint8_t *key, size_t klen, const uint8_t *val, size_t vlen)
{
	struct collect *c = ctx;

	c->n++;
	snprintf(c->text + strlen(c->text), sizeof(c->text) - strlen(c->text), "%.*s=%.*s;",
		 (int)klen, (const char *)key, (int)vlen, (const char *)val);
	return 0;
}

static const char *scan_text(struct store *s, const char *prefix, struct collect *c)
{
	memset(c, 0, sizeof(*c));
	assert_int_equal(store_scan(s, (const uint8_t *)prefix, strlen(prefix), collect_fn, c),
			 MOAT_OK);
	return c->text;
}

static bool wait_for(struct store *s, uint64_t ticket, int ms)
{
	uint64_t end = clock_mono_ms() + (uint64_t)ms;

	while (store_durable(s) < ticket && clock_mono_ms() < end)
		usleep(1000);
	return store_durable(s) >= ticket;
}

static void ops_apply_in_order_and_scan_in_key_order(void **state)
{
	struct fixture *f = *state;
	struct store *s = open_store(f, STORE_SYNC_ALWAYS, 0);
	struct store_batch b;
	struct collect c;

	store_batch_init(&b);
	put_str(&b, "b2", "x");
	put_str(&b, "a1", "1");
	put_str(&b, "c1", "c");
	put_str(&b, "a3", "3");
	put_str(&b, "a2", "old");
	put_str(&b, "b1", "y");
	put_str(&b, "a2", "2");
	submit(s, &b);
	assert_int_equal(b.count, 0);
	assert_int_equal(buf_used(&b.ops), 0);
	assert_int_equal(store_batch_del(&b, (const uint8_t *)"a3", 2), MOAT_OK);
	assert_int_equal(store_batch_del(&b, (const uint8_t *)"zz", 2), MOAT_OK); /* absent */
	assert_int_equal(store_batch_del_prefix(&b, (const uint8_t *)"b", 1), MOAT_OK);
	put_str(&b, "b3", "after");
	submit(s, &b);
	assert_int_equal(store_flush(s), MOAT_OK);

	assert_string_equal(scan_text(s, "", &c), "a1=1;a2=2;b3=after;c1=c;");
	assert_string_equal(scan_text(s, "a", &c), "a1=1;a2=2;");
	assert_string_equal(scan_text(s, "b3", &c), "b3=after;");
	assert_string_equal(scan_text(s, "d", &c), "");

	struct store_stats st;

	store_get_stats(s, &st);
	assert_int_equal(st.records_written, 8);
	assert_int_equal(st.records_deleted, 3); /* a3, b1, b2 */
	assert_int_equal(st.pending_batches, 0);
	assert_true(st.syncs >= 1 && st.syncs == st.commits);
	uint64_t sum = 0;
	for (int k = 0; k < STORE_SYNC_BUCKETS; k++)
		sum += st.sync_hist[k];
	assert_int_equal(sum, st.syncs);
	assert_true(st.bytes_used > 0);
	store_batch_fini(&b);
	store_close(s);
}

static int stop_at_second(void *ctx, const uint8_t *key, size_t klen, const uint8_t *val,
			  size_t vlen)
{
	int *n = ctx;

	(void)key, (void)klen, (void)val, (void)vlen;
	return ++*n == 2 ? 7 : 0;
}

static void scan_stops_when_the_visitor_says_so(void **state)
{
	struct fixture *f = *state;
	struct store *s = open_store(f, STORE_SYNC_NONE, 0);
	struct store_batch b;
	int n = 0;

	store_batch_init(&b);
	put_str(&b, "k1", "");
	put_str(&b, "k2", "");
	put_str(&b, "k3", "");
	submit(s, &b);
	assert_int_equal(store_flush(s), MOAT_OK);
	assert_int_equal(store_scan(s, NULL, 0, stop_at_second, &n), 7);
	assert_int_equal(n, 2);
	store_close(s);
}

static void batch_refuses_keys_outside_the_limits(void **state)
{
	struct store_batch b;
	uint8_t big[STORE_MAX_KEY + 1];

	(void)state;
	memset(big, 'k', sizeof(big));
	store_batch_init(&b);
	assert_int_equal(store_batch_put(&b, big, 0, big, 1), MOAT_E_LIMIT);
	assert_int_equal(store_batch_put(&b, big, sizeof(big), big, 1), MOAT_E_LIMIT);
	assert_int_equal(store_batch_del(&b, big, 0), MOAT_E_LIMIT);
	assert_int_equal(store_batch_put(&b, big, 1, big, STORE_MAX_VALUE + 1u), MOAT_E_LIMIT);
	assert_int_equal(b.count, 0);
	assert_int_equal(buf_used(&b.ops), 0);
	assert_int_equal(store_batch_put(&b, big, STORE_MAX_KEY, big, 1), MOAT_OK);
	assert_int_equal(store_batch_del_prefix(&b, NULL, 0), MOAT_OK);
	assert_int_equal(b.count, 2);
	store_batch_fini(&b);
	assert_int_equal(b.count, 0);
}

static void tickets_increase_and_become_durable(void **state)
{
	struct fixture *f = *state;
	struct store *s = open_store(f, STORE_SYNC_BATCH, 0);
	struct store_batch b;
	uint64_t t[5];

	store_batch_init(&b);
	assert_int_equal(store_submit(s, &b, -1), 0); /* empty: nothing to wait for */
	for (int i = 0; i < 5; i++) {
		char k[8];

		snprintf(k, sizeof(k), "t%d", i);
		put_str(&b, k, "v");
		t[i] = submit(s, &b);
		if (i > 0)
			assert_true(t[i] > t[i - 1]);
	}
	assert_true(wait_for(s, t[4], 5000));
	assert_false(store_refusing(s));
	store_close(s);
}

static void batch_policy_gathers_batches_into_one_commit(void **state)
{
	struct fixture *f = *state;
	struct store_opts o = {.dir = f->dir, .sync = STORE_SYNC_BATCH, .batch_ms = 300};
	struct store *s;
	struct store_batch b;
	struct store_stats st;
	uint64_t t = 0, start;

	assert_int_equal(store_open(&o, &s, f->err, sizeof(f->err)), MOAT_OK);
	store_batch_init(&b);
	start = clock_mono_ms();
	for (int i = 0; i < 8; i++) {
		char k[8];

		snprintf(k, sizeof(k), "g%d", i);
		put_str(&b, k, "v");
		t = submit(s, &b);
	}
	assert_true(wait_for(s, t, 5000));
	assert_true(clock_mono_ms() - start >= 300); /* the window was waited for */
	store_get_stats(s, &st);
	assert_int_equal(st.commits, 1);
	assert_int_equal(st.syncs, 1);
	store_close(s);
}

static void wake_fd_gets_eight_bytes_once_durable(void **state)
{
	struct fixture *f = *state;
	struct store *s = open_store(f, STORE_SYNC_ALWAYS, 0);
	int efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	struct pollfd p = {.fd = efd, .events = POLLIN};
	struct store_batch b;
	uint64_t t, v = 0;

	assert_true(efd >= 0);
	store_batch_init(&b);
	put_str(&b, "w", "1");
	t = store_submit(s, &b, efd);
	assert_int_equal(poll(&p, 1, 5000), 1);
	assert_true(store_durable(s) >= t);
	assert_int_equal(read(efd, &v, sizeof(v)), 8);
	assert_true(v >= 1);
	close(efd);
	store_close(s);
}

struct racer {
	struct store *s;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int put_done; /* rounds whose put was submitted */
};

enum { ROUNDS = 200 };

static void *putter(void *arg)
{
	struct racer *r = arg;
	struct store_batch b;

	store_batch_init(&b);
	for (int i = 0; i < ROUNDS; i++) {
		char k[16];

		snprintf(k, sizeof(k), "r%04d", i);
		if (store_batch_put(&b, (uint8_t *)k, strlen(k), (uint8_t *)"v", 1) != MOAT_OK ||
		    store_submit(r->s, &b, -1) == 0)
			abort();
		pthread_mutex_lock(&r->mu);
		r->put_done = i + 1;
		pthread_cond_signal(&r->cv);
		pthread_mutex_unlock(&r->mu);
	}
	return NULL;
}

static void fifo_order_holds_across_threads(void **state)
{
	struct fixture *f = *state;
	struct racer r = {.s = open_store(f, STORE_SYNC_BATCH, 0)};
	struct store_batch b;
	struct collect c;
	pthread_t th;

	pthread_mutex_init(&r.mu, NULL);
	pthread_cond_init(&r.cv, NULL);
	store_batch_init(&b);
	assert_int_equal(pthread_create(&th, NULL, putter, &r), 0);
	for (int i = 0; i < ROUNDS; i++) {
		char k[16];

		pthread_mutex_lock(&r.mu);
		while (r.put_done <= i)
			pthread_cond_wait(&r.cv, &r.mu);
		pthread_mutex_unlock(&r.mu);
		snprintf(k, sizeof(k), "r%04d", i);
		assert_int_equal(store_batch_del(&b, (uint8_t *)k, strlen(k)), MOAT_OK);
		submit(r.s, &b);
	}
	pthread_join(th, NULL);
	assert_int_equal(store_flush(r.s), MOAT_OK);
	assert_string_equal(scan_text(r.s, "", &c), "");
	store_close(r.s);
	pthread_cond_destroy(&r.cv);
	pthread_mutex_destroy(&r.mu);
}

static void data_survives_close_and_reopen(void **state)
{
	struct fixture *f = *state;
	struct store *s = open_store(f, STORE_SYNC_BATCH, 0);
	struct store_batch b;
	struct collect c;

	store_batch_init(&b);
	put_str(&b, "Mkeep", "payload");
	submit(s, &b);
	store_close(s); /* commits what was submitted */
	s = open_store(f, STORE_SYNC_ALWAYS, 0);
	assert_string_equal(scan_text(s, "", &c), "Mkeep=payload;");
	store_close(s);
}

enum { CHILD_BATCHES = 50 };

static void put_many(struct store *s, const char *prefix, int n, size_t vlen);

/* The child: opens, submits, waits for durability, reports, and then dies
 * without store_close: by _exit, or by SIGKILL from the parent while it keeps
 * writing. */
static void child_then_exit(struct fixture *f, enum store_sync sync, int report_fd, bool wait_kill)
{
	struct store_opts o = {.dir = f->dir, .sync = sync, .batch_ms = 5};
	struct store *s;
	struct store_batch b;
	uint64_t t = 0;

	if (store_open(&o, &s, f->err, sizeof(f->err)) != MOAT_OK)
		_exit(2);
	store_batch_init(&b);
	for (int i = 0; i < CHILD_BATCHES; i++) {
		char k[16];

		snprintf(k, sizeof(k), "c%03d", i);
		if (store_batch_put(&b, (uint8_t *)k, strlen(k), (uint8_t *)"durable", 7) !=
		    MOAT_OK)
			_exit(3);
		t = store_submit(s, &b, -1);
	}
	while (store_durable(s) < t)
		usleep(1000);
	if (write(report_fd, "d", 1) != 1)
		_exit(4);
	/* Work that is not waited for may or may not survive; it must not damage the rest. */
	for (unsigned i = 0;; i++) {
		char k[16];

		snprintf(k, sizeof(k), "z%u", i);
		store_batch_put(&b, (uint8_t *)k, strlen(k), (uint8_t *)"late", 4);
		store_submit(s, &b, -1);
		if (!wait_kill)
			_exit(0);
		if (i % 64 == 0)
			usleep(100);
	}
}

static void killed_process_keeps_durable_records(struct fixture *f, enum store_sync sync,
						 bool sigkill)
{
	struct store *s;
	struct collect c;
	int fds[2], status;
	char ch = 0;
	pid_t pid;

	assert_int_equal(pipe(fds), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		close(fds[0]);
		child_then_exit(f, sync, fds[1], sigkill);
	}
	close(fds[1]);
	assert_int_equal(read(fds[0], &ch, 1), 1);
	assert_int_equal(ch, 'd');
	close(fds[0]);
	if (sigkill) {
		usleep(20 * 1000); /* let it be in the middle of commits */
		assert_int_equal(kill(pid, SIGKILL), 0);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	if (sigkill)
		assert_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
	else
		assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);

	/* Neither moat.lock nor LMDB's lock.mdb, left by the dead process, is in the way. */
	s = open_store(f, STORE_SYNC_ALWAYS, 0);
	scan_text(s, "c", &c);
	assert_int_equal(c.n, CHILD_BATCHES);
	assert_memory_equal(c.text, "c000=durable;c001=durable;", 26);
	/* And it takes writes again. */
	put_many(s, "after", 3, 10);
	assert_int_equal(store_flush(s), MOAT_OK);
	store_close(s);
}

static void killed_process_keeps_durable_records_always(void **state)
{
	killed_process_keeps_durable_records(*state, STORE_SYNC_ALWAYS, false);
}

static void killed_process_keeps_durable_records_none(void **state)
{
	killed_process_keeps_durable_records(*state, STORE_SYNC_NONE, false);
}

static void sigkilled_writer_keeps_durable_records_batch(void **state)
{
	killed_process_keeps_durable_records(*state, STORE_SYNC_BATCH, true);
}

static void sigkilled_writer_keeps_durable_records_none(void **state)
{
	killed_process_keeps_durable_records(*state, STORE_SYNC_NONE, true);
}

static void put_many(struct store *s, const char *prefix, int n, size_t vlen)
{
	struct store_batch b;
	uint8_t *v = calloc(1, vlen);

	assert_non_null(v);
	store_batch_init(&b);
	for (int i = 0; i < n; i++) {
		char k[32];

		snprintf(k, sizeof(k), "%s%05d", prefix, i);
		memset(v, 'a' + i % 26, vlen);
		assert_int_equal(store_batch_put(&b, (uint8_t *)k, strlen(k), v, vlen), MOAT_OK);
	}
	submit(s, &b);
	free(v);
}

static void refusing_over_max_bytes_until_deleted(void **state)
{
	struct fixture *f = *state;
	struct store *s = open_store(f, STORE_SYNC_NONE, 64 * 1024);
	struct store_batch b;
	struct store_stats st;

	assert_false(store_refusing(s));
	put_many(s, "big", 200, 1000);
	assert_int_equal(store_flush(s), MOAT_OK);
	assert_true(store_refusing(s));
	store_get_stats(s, &st);
	assert_true(st.bytes_used > 64 * 1024);
	assert_int_equal(st.failures, 0);

	/* Deletions still commit, and the freed pages count as free. */
	store_batch_init(&b);
	assert_int_equal(store_batch_del_prefix(&b, (const uint8_t *)"big", 3), MOAT_OK);
	submit(s, &b);
	assert_int_equal(store_flush(s), MOAT_OK);
	store_get_stats(s, &st);
	assert_true(st.bytes_used <= 64 * 1024);
	assert_false(store_refusing(s));
	store_close(s);
}

static void failed_commit_keeps_batches_and_retries(void **state)
{
	struct fixture *f = *state;
	struct store *s = open_store(f, STORE_SYNC_ALWAYS, 0);
	struct store_batch b;
	struct store_stats st;
	struct collect c;
	uint64_t t1, t2, end;

	store_set_map_cap(s, 256 * 1024);
	put_many(s, "m", 100, 4000); /* ~400 KiB: MDB_MAP_FULL */
	t1 = store_durable(s) + 1;
	end = clock_mono_ms() + 5000;
	while (!store_refusing(s) && clock_mono_ms() < end)
		usleep(1000);
	assert_true(store_refusing(s));
	assert_int_equal(store_flush(s), MOAT_E_IO);
	assert_true(store_durable(s) < t1);
	store_get_stats(s, &st);
	assert_true(st.failures >= 1);
	assert_int_equal(st.pending_batches, 1);

	/* Queued behind the failing batch, in order; still failing. */
	store_batch_init(&b);
	assert_int_equal(store_batch_del(&b, (const uint8_t *)"m00007", 6), MOAT_OK);
	t2 = submit(s, &b);
	usleep(300 * 1000);
	assert_true(store_durable(s) < t1);
	assert_true(store_refusing(s));

	/* Room again (as when the disk is freed): the retry commits both batches. */
	store_set_map_cap(s, 0);
	assert_true(wait_for(s, t2, 5000));
	assert_false(store_refusing(s));
	assert_int_equal(store_flush(s), MOAT_OK);
	store_get_stats(s, &st);
	assert_int_equal(st.pending_batches, 0);
	scan_text(s, "m", &c);
	assert_int_equal(c.n, 99);
	assert_null(strstr(c.text, "m00007="));
	store_close(s);
}

static void second_open_of_a_directory_is_refused(void **state)
{
	struct fixture *f = *state;
	struct store *s = open_store(f, STORE_SYNC_ALWAYS, 0);
	struct store_opts o = {.dir = f->dir, .sync = STORE_SYNC_ALWAYS};
	struct store *s2 = NULL;
	char want[128];

	assert_int_equal(store_open(&o, &s2, f->err, sizeof(f->err)), MOAT_E_IO);
	assert_null(s2);
	assert_non_null(strstr(f->err, "is in use by another moatd"));
	snprintf(want, sizeof(want), "(pid %ld)", (long)getpid());
	assert_non_null(strstr(f->err, want));
	assert_non_null(strstr(f->err, f->dir));
	assert_int_equal(store_check(f->dir, NULL, false, NULL, NULL, f->err, sizeof(f->err)),
			 MOAT_E_IO);
	store_close(s);
	s = open_store(f, STORE_SYNC_ALWAYS, 0);
	store_close(s);
}

static void unopenable_directory_is_an_io_error(void **state)
{
	struct fixture *f = *state;
	struct store_opts o = {.dir = "/proc/moat-no/such", .sync = STORE_SYNC_ALWAYS};
	struct store *s = NULL;

	(void)f;
	assert_int_equal(store_open(&o, &s, f->err, sizeof(f->err)), MOAT_E_IO);
	assert_non_null(strstr(f->err, "/proc/moat-no/such"));
	assert_int_equal(store_check(f->dir, NULL, false, NULL, NULL, f->err, sizeof(f->err)),
			 MOAT_E_IO); /* not created by a check */
}

static void overwrite(const char *dir, off_t at, size_t len, uint8_t seed)
{
	char path[128];
	uint8_t junk[8192];
	uint32_t x = seed * 2654435761u + 1;
	int fd;

	assert_true(len <= sizeof(junk));
	for (size_t i = 0; i < len; i++) {
		x = x * 1103515245u + 12345u;
		junk[i] = (uint8_t)(x >> 16);
	}
	snprintf(path, sizeof(path), "%s/data.mdb", dir);
	fd = open(path, O_WRONLY);
	assert_true(fd >= 0);
	assert_int_equal(pwrite(fd, junk, len, at), (ssize_t)len);
	close(fd);
}

static off_t file_size(const char *dir)
{
	char path[128];
	struct stat st;

	snprintf(path, sizeof(path), "%s/data.mdb", dir);
	assert_int_equal(stat(path, &st), 0);
	return st.st_size;
}

static void damaged_pages_are_reported_with_the_path(void **state)
{
	struct fixture *f = *state;
	struct store *s = open_store(f, STORE_SYNC_ALWAYS, 0);
	struct store_opts o = {.dir = f->dir, .sync = STORE_SYNC_ALWAYS};
	off_t size;
	int rc;

	put_many(s, "r", 3000, 100);
	assert_int_equal(store_flush(s), MOAT_OK);
	store_close(s);
	assert_int_equal(store_check(f->dir, NULL, false, NULL, NULL, f->err, sizeof(f->err)),
			 MOAT_OK);

	size = file_size(f->dir);
	assert_true(size >= 64 * 4096);
	overwrite(f->dir, size / 2 / 4096 * 4096, 4096, 1);
	rc = store_open(&o, &s, f->err, sizeof(f->err));
	if (rc == MOAT_OK) {
		store_close(s);
		rc = store_check(f->dir, NULL, false, NULL, NULL, f->err, sizeof(f->err));
	}
	assert_int_equal(rc, MOAT_E_PARSE);
	assert_non_null(strstr(f->err, f->dir));
	assert_non_null(strstr(f->err, "--check-store"));

	/* Both meta pages gone: the store does not open. */
	overwrite(f->dir, 0, 8192, 2);
	assert_int_equal(store_open(&o, &s, f->err, sizeof(f->err)), MOAT_E_PARSE);
	assert_non_null(strstr(f->err, f->dir));
	assert_non_null(strstr(f->err, "--repair-store"));
}

static const char *seven_is_bad(const uint8_t *key, size_t klen, const uint8_t *val, size_t vlen)
{
	(void)val, (void)vlen;
	return key[klen - 1] == '7' ? "ends in 7" : NULL;
}

struct salvage_report {
	int rejected, lost;
};

static void salvage_report_fn(void *ctx, const uint8_t *key, size_t klen, const char *why)
{
	struct salvage_report *r = ctx;

	(void)key, (void)klen;
	if (strcmp(why, "ends in 7") == 0)
		r->rejected++;
	else if (strstr(why, "damaged pages") != NULL)
		r->lost++;
	else
		fail_msg("unexpected report: %s", why);
}

static int count_fn(void *ctx, const uint8_t *key, size_t klen, const uint8_t *val, size_t vlen)
{
	size_t *n = ctx;

	assert_int_equal(vlen, 100);
	assert_int_equal(val[0], 'a' + atoi((const char *)key + 1) % 26);
	assert_true(key[klen - 1] != '7');
	++*n;
	return 0;
}

static void repair_salvages_the_records_around_damaged_pages(void **state)
{
	struct fixture *f = *state;

	for (int part = 1; part <= 3; part++) {
		struct salvage_report r = {0};
		struct store *s = open_store(f, STORE_SYNC_NONE, 0);
		char path[128];
		size_t n = 0;
		off_t size;

		put_many(s, "r", 3000, 100);
		store_close(s);
		size = file_size(f->dir);
		overwrite(f->dir, size * part / 4 / 4096 * 4096, 4096, (uint8_t)part);
		assert_int_equal(
		    store_check(f->dir, NULL, false, NULL, NULL, f->err, sizeof(f->err)),
		    MOAT_E_PARSE);
		assert_int_equal(store_check(f->dir, seven_is_bad, true, salvage_report_fn, &r,
					     f->err, sizeof(f->err)),
				 MOAT_OK);
		assert_int_equal(r.lost, 1);
		assert_true(r.rejected > 250 && r.rejected <= 300);
		assert_int_equal(
		    store_check(f->dir, NULL, false, NULL, NULL, f->err, sizeof(f->err)), MOAT_OK);
		snprintf(path, sizeof(path), "%s/data.mdb.damaged", f->dir);
		assert_int_equal(access(path, F_OK), 0);

		s = open_store(f, STORE_SYNC_NONE, 0);
		assert_int_equal(store_scan(s, NULL, 0, count_fn, &n), MOAT_OK);
		/* One leaf page holds some 30 records: they are lost, the others kept or rejected.
		 */
		assert_true(n + (size_t)r.rejected >= 2900 && n + (size_t)r.rejected < 3000);
		store_close(s);
		/* The next round starts with a new file: free pages are not read. */
		nftw(f->dir, rm_one, 8, FTW_DEPTH | FTW_PHYS);
	}
}

static const char *odd_is_bad(const uint8_t *key, size_t klen, const uint8_t *val, size_t vlen)
{
	(void)key, (void)klen;
	return vlen == 1 && (val[0] - '0') % 2 == 1 ? "odd value" : NULL;
}

static void report_count(void *ctx, const uint8_t *key, size_t klen, const char *why)
{
	int *n = ctx;

	assert_string_equal(why, "odd value");
	assert_int_equal(klen, 2);
	assert_int_equal(key[0], 'k');
	++*n;
}

static void check_reports_and_repair_deletes_bad_records(void **state)
{
	struct fixture *f = *state;
	struct store *s = open_store(f, STORE_SYNC_ALWAYS, 0);
	struct store_batch b;
	struct collect c;
	int n = 0;

	store_batch_init(&b);
	for (int i = 0; i < 6; i++) {
		char k[4], v[4];

		snprintf(k, sizeof(k), "k%d", i);
		snprintf(v, sizeof(v), "%d", i);
		put_str(&b, k, v);
	}
	submit(s, &b);
	store_close(s);

	assert_int_equal(
	    store_check(f->dir, odd_is_bad, false, report_count, &n, f->err, sizeof(f->err)),
	    MOAT_E_PARSE);
	assert_int_equal(n, 3);
	assert_non_null(strstr(f->err, "odd value"));
	assert_non_null(strstr(f->err, f->dir));
	n = 0;
	assert_int_equal(
	    store_check(f->dir, odd_is_bad, true, report_count, &n, f->err, sizeof(f->err)),
	    MOAT_OK);
	assert_int_equal(n, 3);
	n = 0;
	assert_int_equal(
	    store_check(f->dir, odd_is_bad, false, report_count, &n, f->err, sizeof(f->err)),
	    MOAT_OK);
	assert_int_equal(n, 0);

	s = open_store(f, STORE_SYNC_ALWAYS, 0);
	assert_string_equal(scan_text(s, "", &c), "k0=0;k2=2;k4=4;");
	store_close(s);
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
	const struct CMUnitTest tests[] = {
	    T(ops_apply_in_order_and_scan_in_key_order),
	    T(scan_stops_when_the_visitor_says_so),
	    cmocka_unit_test(batch_refuses_keys_outside_the_limits),
	    T(tickets_increase_and_become_durable),
	    T(batch_policy_gathers_batches_into_one_commit),
	    T(wake_fd_gets_eight_bytes_once_durable),
	    T(fifo_order_holds_across_threads),
	    T(data_survives_close_and_reopen),
	    T(killed_process_keeps_durable_records_always),
	    T(killed_process_keeps_durable_records_none),
	    T(sigkilled_writer_keeps_durable_records_batch),
	    T(sigkilled_writer_keeps_durable_records_none),
	    T(refusing_over_max_bytes_until_deleted),
	    T(failed_commit_keeps_batches_and_retries),
	    T(second_open_of_a_directory_is_refused),
	    T(unopenable_directory_is_an_io_error),
	    T(damaged_pages_are_reported_with_the_path),
	    T(check_reports_and_repair_deletes_bad_records),
	    T(repair_salvages_the_records_around_damaged_pages),
	};
#undef T
	return cmocka_run_group_tests(tests, NULL, NULL);
}
