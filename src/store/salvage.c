/*
 * Salvaging a store whose LMDB pages are damaged (`moatd --repair-store`):
 * a child reads the records forwards until the damage stops it, a second
 * child reads them backwards from the end down to where the first stopped,
 * and the parent writes every record the broker's judge accepts into a new
 * store, which then replaces the old one (kept as data.mdb.damaged). Only
 * the records on damaged pages are lost, and they are reported as a range.
 */
#include "store/salvage.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <lmdb.h>

#include "store/child.h"
#include "store/env.h"
#include <moat/error.h>

/* The child's stream: 'R' u16 klen, key, u32 vlen, value; 'E' at a clean end. */
enum { MSG_REC = 'R', MSG_END = 'E', COMMIT_EVERY = 4096, READ_CHUNK = 64 * 1024 };

struct pass_arg {
	const char *dir;
	bool backward;
};

static void stream_child(int fd, void *arg)
{
	const struct pass_arg *a = arg;
	char err[256];
	MDB_env *env;
	MDB_dbi dbi;
	MDB_txn *txn;
	MDB_cursor *c;
	MDB_val k, v;
	int rc;

	if (store_env_open(a->dir, MDB_RDONLY, 0, &env, &dbi, err, sizeof(err)) < 0)
		return;
	if (mdb_txn_begin(env, NULL, MDB_RDONLY, &txn) != 0 || mdb_cursor_open(txn, dbi, &c) != 0)
		_exit(1);
	for (rc = mdb_cursor_get(c, &k, &v, a->backward ? MDB_LAST : MDB_FIRST); rc == 0;
	     rc = mdb_cursor_get(c, &k, &v, a->backward ? MDB_PREV : MDB_NEXT)) {
		uint32_t vlen = (uint32_t)v.mv_size;

		if (k.mv_size == 0 || k.mv_size > STORE_MAX_KEY || v.mv_size > STORE_MAX_VALUE)
			_exit(1); /* damaged: what follows cannot be trusted */
		if (!(store_child_write(fd, &(uint8_t){MSG_REC}, 1) &&
		      store_child_write_text(fd, k.mv_data, k.mv_size, STORE_MAX_KEY) &&
		      store_child_write(fd, &vlen, sizeof(vlen)) &&
		      store_child_write(fd, v.mv_data, v.mv_size)))
			_exit(1);
	}
	if (rc == MDB_NOTFOUND && !store_child_write(fd, &(uint8_t){MSG_END}, 1))
		_exit(1);
	mdb_cursor_close(c);
	mdb_txn_abort(txn);
	mdb_env_close(env);
}

struct salvage {
	const char *dir;
	store_check_fn check_value;
	store_report_fn report;
	void *ctx;
	MDB_env *out;
	MDB_dbi odbi;
	MDB_txn *txn;
	size_t in_txn;
	uint8_t last[STORE_MAX_KEY]; /* the forward pass's last key */
	size_t last_len;
	bool have_last;
	int mdb_rc; /* first error writing the new store */
};

/* LMDB's default order: bytes, then the shorter first. */
static int key_cmp(const uint8_t *a, size_t alen, const uint8_t *b, size_t blen)
{
	int c = memcmp(a, b, alen < blen ? alen : blen);

	if (c != 0)
		return c;
	return alen < blen ? -1 : alen > blen;
}

static void keep(struct salvage *sv, const uint8_t *key, size_t klen, const uint8_t *val,
		 size_t vlen)
{
	MDB_val k = {klen, (void *)key}, v = {vlen, (void *)val};
	const char *why;

	why = sv->check_value != NULL ? sv->check_value(key, klen, val, vlen) : NULL;
	if (why != NULL) {
		if (sv->report != NULL)
			sv->report(sv->ctx, key, klen, why);
		return;
	}
	if (sv->mdb_rc != 0)
		return;
	if (sv->txn == NULL)
		sv->mdb_rc = mdb_txn_begin(sv->out, NULL, 0, &sv->txn);
	if (sv->mdb_rc == 0)
		sv->mdb_rc = mdb_put(sv->txn, sv->odbi, &k, &v, 0);
	if (sv->mdb_rc == 0 && ++sv->in_txn == COMMIT_EVERY) {
		sv->mdb_rc = mdb_txn_commit(sv->txn);
		sv->txn = NULL;
		sv->in_txn = 0;
	}
}

/* Handles the complete messages at the head of <in>. Returns false when the
 * pass is over: a clean end (*complete set), the backward pass reaching the
 * forward pass's records, or bytes that make no sense. */
static bool consume(struct salvage *sv, struct buf *in, bool backward, bool *complete)
{
	for (;;) {
		const uint8_t *p = buf_head(in), *end = p + buf_used(in), *key;
		size_t klen;
		uint32_t vlen;
		uint8_t type;

		if (!store_child_take(&p, end, &type, 1))
			return true;
		if (type == MSG_END) {
			*complete = true;
			return false;
		}
		if (type != MSG_REC)
			return false;
		if (!store_child_take_text(&p, end, &key, &klen) ||
		    !store_child_take(&p, end, &vlen, sizeof(vlen)) || (size_t)(end - p) < vlen)
			return true; /* the rest is still in the pipe */
		if (backward && sv->have_last && key_cmp(key, klen, sv->last, sv->last_len) <= 0) {
			*complete = true;
			return false;
		}
		keep(sv, key, klen, p, vlen);
		if (!backward) {
			memcpy(sv->last, key, klen);
			sv->last_len = klen;
			sv->have_last = true;
		}
		buf_consume(in, (size_t)(p + vlen - buf_head(in)));
	}
}

/* One pass; *<complete> tells whether it read to its end. */
static int run_pass(struct salvage *sv, bool backward, bool *complete, char *err, size_t errlen)
{
	struct pass_arg arg = {.dir = sv->dir, .backward = backward};
	struct buf in = {0};
	bool more = true;
	int fd, rc = MOAT_OK;
	pid_t pid;

	*complete = false;
	if (store_child_start(stream_child, &arg, &pid, &fd) < 0) {
		snprintf(err, errlen, "%s: cannot salvage the store: %s", sv->dir, strerror(errno));
		return MOAT_E_IO;
	}
	while (more) {
		ssize_t n;

		if (buf_reserve(&in, READ_CHUNK) < 0) {
			snprintf(err, errlen, "%s: out of memory salvaging the store", sv->dir);
			rc = MOAT_E_NOMEM;
			break;
		}
		n = read(fd, in.data + in.len, in.cap - in.len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		in.len += (size_t)n;
		more = consume(sv, &in, backward, complete);
	}
	close(fd);
	kill(pid, SIGKILL); /* done with it, whatever it was doing */
	store_child_wait(pid);
	buf_fini(&in);
	return rc;
}

/* Longest store directory path: every path built from it (at most 32 bytes
 * more: "/salvage/data.mdb", "/data.mdb.damaged") fits its buffer. */
enum { SALVAGE_PATH_MAX = 4096 };

static int open_output(struct salvage *sv, const char *tmp, char *err, size_t errlen)
{
	char path[SALVAGE_PATH_MAX + 32];
	struct stat st;
	size_t mapsize = (size_t)1 << 30;

	snprintf(path, sizeof(path), "%s/data.mdb", sv->dir);
	if (stat(path, &st) == 0 && (size_t)st.st_size * 2 > mapsize)
		mapsize = (size_t)st.st_size * 2;
	for (int i = 0; i < 2; i++) {
		snprintf(path, sizeof(path), "%s/%s", tmp, i == 0 ? "data.mdb" : "lock.mdb");
		unlink(path);
	}
	if (mkdir(tmp, 0700) != 0 && errno != EEXIST) {
		snprintf(err, errlen, "%s cannot be created: %s", tmp, strerror(errno));
		return MOAT_E_IO;
	}
	return store_env_open(tmp, 0, mapsize, &sv->out, &sv->odbi, err, errlen);
}

/* Puts the new store in place of the old one, which is kept as data.mdb.damaged. */
static int swap_in(const char *dir, const char *tmp, char *err, size_t errlen)
{
	char from[SALVAGE_PATH_MAX + 32], to[SALVAGE_PATH_MAX + 32];
	int fd;

	snprintf(from, sizeof(from), "%s/data.mdb", dir);
	snprintf(to, sizeof(to), "%s/data.mdb.damaged", dir);
	if (rename(from, to) != 0)
		goto err_rename;
	snprintf(from, sizeof(from), "%s/data.mdb", tmp);
	snprintf(to, sizeof(to), "%s/data.mdb", dir);
	if (rename(from, to) != 0)
		goto err_rename;
	snprintf(from, sizeof(from), "%s/lock.mdb", tmp);
	unlink(from);
	rmdir(tmp);
	snprintf(from, sizeof(from), "%s/lock.mdb", dir);
	unlink(from); /* the old store's; LMDB makes a new one */
	fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd >= 0) {
		fsync(fd);
		close(fd);
	}
	return MOAT_OK;

err_rename:
	snprintf(err, errlen, "%s cannot be renamed to %s: %s", from, to, strerror(errno));
	return MOAT_E_IO;
}

int store_salvage(const char *dir, store_check_fn check_value, store_report_fn report, void *ctx,
		  char *err, size_t errlen)
{
	struct salvage sv = {.dir = dir, .check_value = check_value, .report = report, .ctx = ctx};
	char tmp[SALVAGE_PATH_MAX + 16];
	bool complete;
	int rc;

	if (strlen(dir) > SALVAGE_PATH_MAX) {
		snprintf(err, errlen, "store directory path longer than %d bytes; use a shorter one",
			 SALVAGE_PATH_MAX);
		return MOAT_E_INVAL;
	}
	snprintf(tmp, sizeof(tmp), "%s/salvage", dir);
	rc = open_output(&sv, tmp, err, errlen);
	if (rc < 0)
		return rc;
	rc = run_pass(&sv, false, &complete, err, errlen);
	if (rc == MOAT_OK && !complete) {
		if (report != NULL)
			report(ctx, sv.last, sv.last_len,
			       sv.have_last
				   ? "the records after this key, up to the next one kept, "
				     "were on damaged pages and are lost"
				   : "the first records were on damaged pages and are lost");
		rc = run_pass(&sv, true, &complete, err, errlen);
	}
	if (rc == MOAT_OK && sv.mdb_rc == 0 && sv.txn != NULL) {
		sv.mdb_rc = mdb_txn_commit(sv.txn);
		sv.txn = NULL;
	}
	if (sv.txn != NULL)
		mdb_txn_abort(sv.txn);
	if (rc == MOAT_OK && sv.mdb_rc == 0)
		sv.mdb_rc = mdb_env_sync(sv.out, 1);
	if (rc == MOAT_OK && sv.mdb_rc != 0)
		rc = store_env_error(sv.mdb_rc, tmp, "writing the salvaged store", err, errlen);
	mdb_env_close(sv.out);
	if (rc == MOAT_OK)
		rc = swap_in(dir, tmp, err, errlen);
	return rc;
}
