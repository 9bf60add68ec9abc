/*
 * store_choice: measures the broker's store workload on LMDB and on SQLite
 * (WAL) to choose the engine of src/store (docs/persistence.md, "Why LMDB").
 *
 * Workload: a batch of N messages, each one 'M' record (message, ~120 bytes)
 * and one 'Q' record (queue entry, ~20 bytes), plus the deletion of the M+Q
 * records put two batches before (messages acknowledged shortly after), in
 * one transaction with a durable sync or without one. Then start-up: reading
 * back 100k retained-sized records ('R' + topic, 100-byte value).
 *
 * Usage: store_choice [dir] [seconds per case]. A standalone program, not a
 * test: it prints a table and removes its files.
 */
#include <errno.h>
#include <ftw.h>
#include <lmdb.h>
#include <sqlite3.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

enum { M_KLEN = 9, Q_KLEN = 1 + 12 + 1 + 8, M_VLEN = 120, Q_VLEN = 20, R_VLEN = 100 };
enum { RETAINED = 100000 };

struct engine {
	const char *name;
	void *(*open)(const char *dir, bool sync);
	void (*begin)(void *h);
	void (*put)(void *h, const uint8_t *k, size_t kl, const uint8_t *v, size_t vl);
	void (*del)(void *h, const uint8_t *k, size_t kl);
	void (*commit)(void *h);
	size_t (*scan)(void *h); /* records read back */
	void (*close)(void *h);
};

static void die(const char *what, const char *why)
{
	fprintf(stderr, "store_choice: %s: %s\n", what, why);
	exit(1);
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ---- LMDB ---- */

struct lm {
	MDB_env *env;
	MDB_dbi dbi;
	MDB_txn *txn;
};

static void lmck(int rc, const char *what)
{
	if (rc != 0)
		die(what, mdb_strerror(rc));
}

static void *lm_open(const char *dir, bool sync)
{
	struct lm *h = calloc(1, sizeof(*h));
	MDB_txn *txn;

	if (h == NULL)
		die("calloc", "out of memory");
	lmck(mdb_env_create(&h->env), "mdb_env_create");
	lmck(mdb_env_set_mapsize(h->env, (size_t)4 << 30), "mdb_env_set_mapsize");
	lmck(mdb_env_set_maxdbs(h->env, 2), "mdb_env_set_maxdbs");
	lmck(mdb_env_open(h->env, dir, sync ? 0 : MDB_NOSYNC, 0600), "mdb_env_open");
	lmck(mdb_txn_begin(h->env, NULL, 0, &txn), "mdb_txn_begin");
	lmck(mdb_dbi_open(txn, "moat", MDB_CREATE, &h->dbi), "mdb_dbi_open");
	lmck(mdb_txn_commit(txn), "mdb_txn_commit");
	return h;
}

static void lm_begin(void *p)
{
	struct lm *h = p;

	lmck(mdb_txn_begin(h->env, NULL, 0, &h->txn), "mdb_txn_begin");
}

static void lm_put(void *p, const uint8_t *k, size_t kl, const uint8_t *v, size_t vl)
{
	struct lm *h = p;
	MDB_val key = {kl, (void *)k}, val = {vl, (void *)v};

	lmck(mdb_put(h->txn, h->dbi, &key, &val, 0), "mdb_put");
}

static void lm_del(void *p, const uint8_t *k, size_t kl)
{
	struct lm *h = p;
	MDB_val key = {kl, (void *)k};
	int rc = mdb_del(h->txn, h->dbi, &key, NULL);

	if (rc != MDB_NOTFOUND)
		lmck(rc, "mdb_del");
}

static void lm_commit(void *p)
{
	struct lm *h = p;

	lmck(mdb_txn_commit(h->txn), "mdb_txn_commit");
	h->txn = NULL;
}

static size_t lm_scan(void *p)
{
	struct lm *h = p;
	MDB_txn *txn;
	MDB_cursor *c;
	MDB_val k, v;
	size_t n = 0, sum = 0;

	lmck(mdb_txn_begin(h->env, NULL, MDB_RDONLY, &txn), "mdb_txn_begin");
	lmck(mdb_cursor_open(txn, h->dbi, &c), "mdb_cursor_open");
	for (int rc = mdb_cursor_get(c, &k, &v, MDB_FIRST); rc == 0;
	     rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
		sum += ((const uint8_t *)v.mv_data)[0] + k.mv_size; /* touch the bytes */
		n++;
	}
	mdb_cursor_close(c);
	mdb_txn_abort(txn);
	return sum == 0 ? 0 : n;
}

static void lm_close(void *p)
{
	struct lm *h = p;

	mdb_env_close(h->env);
	free(h);
}

static const struct engine lmdb_engine = {"lmdb", lm_open,   lm_begin, lm_put,
					  lm_del, lm_commit, lm_scan,  lm_close};

/* ---- SQLite ---- */

struct sq {
	sqlite3 *db;
	sqlite3_stmt *ins, *del, *sel;
};

static void sqck(struct sq *h, int rc, const char *what)
{
	if (rc != SQLITE_OK && rc != SQLITE_DONE && rc != SQLITE_ROW)
		die(what, sqlite3_errmsg(h->db));
}

static void sq_exec(struct sq *h, const char *sql)
{
	sqck(h, sqlite3_exec(h->db, sql, NULL, NULL, NULL), sql);
}

static void *sq_open(const char *dir, bool sync)
{
	struct sq *h = calloc(1, sizeof(*h));
	char path[4096];

	if (h == NULL)
		die("calloc", "out of memory");
	snprintf(path, sizeof(path), "%s/data.sqlite", dir);
	if (sqlite3_open(path, &h->db) != SQLITE_OK)
		die(path, sqlite3_errmsg(h->db));
	sq_exec(h, "PRAGMA journal_mode=WAL");
	sq_exec(h, sync ? "PRAGMA synchronous=FULL" : "PRAGMA synchronous=OFF");
	sq_exec(h, "CREATE TABLE IF NOT EXISTS kv(k BLOB PRIMARY KEY, v BLOB) WITHOUT ROWID");
	sqck(h,
	     sqlite3_prepare_v2(h->db, "INSERT OR REPLACE INTO kv VALUES(?1, ?2)", -1, &h->ins,
				NULL),
	     "prepare insert");
	sqck(h, sqlite3_prepare_v2(h->db, "DELETE FROM kv WHERE k = ?1", -1, &h->del, NULL),
	     "prepare delete");
	sqck(h, sqlite3_prepare_v2(h->db, "SELECT k, v FROM kv ORDER BY k", -1, &h->sel, NULL),
	     "prepare select");
	return h;
}

static void sq_begin(void *p)
{
	sq_exec(p, "BEGIN");
}

static void sq_put(void *p, const uint8_t *k, size_t kl, const uint8_t *v, size_t vl)
{
	struct sq *h = p;

	sqlite3_bind_blob(h->ins, 1, k, (int)kl, SQLITE_STATIC);
	sqlite3_bind_blob(h->ins, 2, v, (int)vl, SQLITE_STATIC);
	sqck(h, sqlite3_step(h->ins), "insert");
	sqlite3_reset(h->ins);
}

static void sq_del(void *p, const uint8_t *k, size_t kl)
{
	struct sq *h = p;

	sqlite3_bind_blob(h->del, 1, k, (int)kl, SQLITE_STATIC);
	sqck(h, sqlite3_step(h->del), "delete");
	sqlite3_reset(h->del);
}

static void sq_commit(void *p)
{
	sq_exec(p, "COMMIT");
}

static size_t sq_scan(void *p)
{
	struct sq *h = p;
	size_t n = 0, sum = 0;
	int rc;

	while ((rc = sqlite3_step(h->sel)) == SQLITE_ROW) {
		const uint8_t *v = sqlite3_column_blob(h->sel, 1);

		sum += v[0] + (size_t)sqlite3_column_bytes(h->sel, 0);
		n++;
	}
	sqck(h, rc, "select");
	sqlite3_reset(h->sel);
	return sum == 0 ? 0 : n;
}

static void sq_close(void *p)
{
	struct sq *h = p;

	sqlite3_finalize(h->ins);
	sqlite3_finalize(h->del);
	sqlite3_finalize(h->sel);
	sqlite3_close(h->db);
	free(h);
}

static const struct engine sqlite_engine = {"sqlite", sq_open,	 sq_begin, sq_put,
					    sq_del,   sq_commit, sq_scan,  sq_close};

/* ---- workload ---- */

static void be64(uint8_t *p, uint64_t v)
{
	for (int i = 7; i >= 0; i--, v >>= 8)
		p[i] = (uint8_t)v;
}

static void m_key(uint8_t *k, uint64_t id)
{
	k[0] = 'M';
	be64(k + 1, id);
}

static void q_key(uint8_t *k, uint64_t id)
{
	k[0] = 'Q';
	snprintf((char *)k + 1, 13, "client-%05u", (unsigned)(id % 1000));
	k[13] = 0;
	be64(k + 14, id);
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static void fresh_dir(const char *dir)
{
	nftw(dir, rm_one, 8, FTW_DEPTH | FTW_PHYS);
	if (mkdir(dir, 0700) != 0)
		die(dir, strerror(errno));
}

static void one_batch(const struct engine *e, void *h, uint64_t batch, unsigned n)
{
	uint8_t mk[M_KLEN], qk[Q_KLEN], mv[M_VLEN], qv[Q_VLEN];

	memset(mv, 'p', sizeof(mv));
	memset(qv, 'q', sizeof(qv));
	e->begin(h);
	for (unsigned i = 0; i < n; i++) {
		uint64_t id = batch * n + i;

		m_key(mk, id);
		q_key(qk, id);
		be64(mv, id);
		e->put(h, mk, sizeof(mk), mv, sizeof(mv));
		e->put(h, qk, sizeof(qk), qv, sizeof(qv));
	}
	if (batch >= 2) {
		for (unsigned i = 0; i < n; i++) {
			uint64_t id = (batch - 2) * n + i;

			m_key(mk, id);
			q_key(qk, id);
			e->del(h, mk, sizeof(mk));
			e->del(h, qk, sizeof(qk));
		}
	}
	e->commit(h);
}

static void run_case(const struct engine *e, const char *dir, unsigned n, bool sync, double secs)
{
	void *h;
	uint64_t batches = 0;
	double t0, t;

	fresh_dir(dir);
	h = e->open(dir, sync);
	t0 = now_s();
	do {
		one_batch(e, h, batches++, n);
		t = now_s() - t0;
	} while (t < secs);
	e->close(h);
	printf("%-7s %6u  %-5s %12.0f %12.1f\n", e->name, n, sync ? "sync" : "none",
	       (double)(batches * n) / t, t * 1e6 / (double)batches);
}

static void run_startup(const struct engine *e, const char *dir)
{
	uint8_t k[64], v[R_VLEN];
	void *h;
	double t0;
	size_t n;

	fresh_dir(dir);
	h = e->open(dir, false);
	memset(v, 'r', sizeof(v));
	e->begin(h);
	for (unsigned i = 0; i < RETAINED; i++) {
		int kl = snprintf((char *)k, sizeof(k), "Rsite/%03u/sensor/%05u/temp", i % 997, i);

		e->put(h, k, (size_t)kl, v, sizeof(v));
	}
	e->commit(h);
	e->close(h);
	t0 = now_s();
	h = e->open(dir, true);
	n = e->scan(h);
	e->close(h);
	printf("%-7s startup: %zu retained records read back in %.1f ms\n", e->name, n,
	       (now_s() - t0) * 1e3);
}

int main(int argc, char **argv)
{
	char dir[4096];
	const char *base = argc > 1 ? argv[1] : "/tmp";
	double secs = argc > 2 ? atof(argv[2]) : 2.0;
	const struct engine *engines[] = {&lmdb_engine, &sqlite_engine};
	const unsigned sizes[] = {1, 16, 256};

	snprintf(dir, sizeof(dir), "%s/store_choice.%ld", base, (long)getpid());
	printf("engine   batch  sync     msgs/s   us/commit\n");
	for (size_t s = 0; s < 2; s++) {
		for (size_t e = 0; e < 2; e++) {
			for (size_t b = 0; b < 3; b++)
				run_case(engines[e], dir, sizes[b], s == 0, secs);
		}
	}
	for (size_t e = 0; e < 2; e++)
		run_startup(engines[e], dir);
	nftw(dir, rm_one, 8, FTW_DEPTH | FTW_PHYS);
	return 0;
}
