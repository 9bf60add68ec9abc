/*
 * Reading a whole store safely: store_check (for `moatd --check-store` /
 * `--repair-store`) and the check store_open makes before it opens a store.
 * LMDB trusts its pages and aborts (or crashes) on a damaged one, so every
 * record is read in a child process that reports through a pipe; a child
 * that dies means a damaged file, not a dead moatd. What a record should
 * contain is the caller's business (check_value).
 */
#include "store/check.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <lmdb.h>

#include "store/child.h"
#include "store/env.h"
#include "store/lock.h"
#include "store/salvage.h"
#include <moat/error.h>

/* The child's messages: 'B' u16 klen, key, u16 wlen, why (a record the judge
 * rejects); 'E' i32 rc, u16 elen, err (the end of the walk). */
enum { MSG_BAD = 'B', MSG_END = 'E', WHY_MAX = 200, ERR_MAX = 1000 };

static int child_walk(int fd, MDB_env *env, MDB_dbi dbi, store_check_fn check_value,
		      const char *dir, char *err, size_t errlen)
{
	MDB_txn *txn;
	MDB_cursor *c;
	MDB_val k, v;
	int rc;

	rc = mdb_txn_begin(env, NULL, MDB_RDONLY, &txn);
	if (rc != 0)
		return store_env_error(rc, dir, "reading", err, errlen);
	rc = mdb_cursor_open(txn, dbi, &c);
	if (rc != 0) {
		mdb_txn_abort(txn);
		return store_env_error(rc, dir, "reading", err, errlen);
	}
	for (rc = mdb_cursor_get(c, &k, &v, MDB_FIRST); rc == 0;
	     rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
		const char *why;

		if (k.mv_size == 0 || k.mv_size > STORE_MAX_KEY) {
			rc = MDB_CORRUPTED;
			break;
		}
		why = check_value != NULL ? check_value(k.mv_data, k.mv_size, v.mv_data, v.mv_size)
					  : NULL;
		if (why != NULL &&
		    !(store_child_write(fd, &(uint8_t){MSG_BAD}, 1) &&
		      store_child_write_text(fd, k.mv_data, k.mv_size, STORE_MAX_KEY) &&
		      store_child_write_text(fd, why, strlen(why), WHY_MAX)))
			_exit(1);
	}
	mdb_cursor_close(c);
	mdb_txn_abort(txn);
	if (rc != MDB_NOTFOUND)
		return store_env_error(rc, dir, "reading", err, errlen);
	return MOAT_OK;
}

struct verify_arg {
	const char *dir;
	store_check_fn check_value;
};

static void child_main(int fd, void *arg)
{
	const struct verify_arg *a = arg;
	char err[ERR_MAX] = "";
	int32_t rc;
	MDB_env *env;
	MDB_dbi dbi;

	rc = store_env_open(a->dir, MDB_RDONLY, 0, &env, &dbi, err, sizeof(err));
	if (rc == MOAT_OK) {
		rc = child_walk(fd, env, dbi, a->check_value, a->dir, err, sizeof(err));
		mdb_env_close(env);
	}
	if (!(store_child_write(fd, &(uint8_t){MSG_END}, 1) &&
	      store_child_write(fd, &rc, sizeof(rc)) &&
	      store_child_write_text(fd, err, strlen(err), ERR_MAX)))
		_exit(1);
}

/* Reads the child's messages until EOF into <in>. */
static int read_all(int fd, struct buf *in)
{
	for (;;) {
		ssize_t n;

		if (buf_reserve(in, 4096) < 0)
			return MOAT_E_NOMEM;
		n = read(fd, in->data + in->len, in->cap - in->len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return MOAT_E_IO;
		if (n == 0)
			return MOAT_OK;
		in->len += (size_t)n;
	}
}

/* Replays the child's messages: the bad records to <bad>; returns the walk's
 * result, or MOAT_E_PARSE when the child ended without one (it crashed). */
static int replay(const struct buf *in, int status, const char *dir, store_report_fn bad, void *ctx,
		  char *err, size_t errlen)
{
	const uint8_t *p = buf_head(in), *end = p + buf_used(in), *text, *key;
	size_t len, klen;
	uint8_t type;
	int32_t rc;

	while (store_child_take(&p, end, &type, 1)) {
		if (type == MSG_BAD && store_child_take_text(&p, end, &key, &klen) &&
		    store_child_take_text(&p, end, &text, &len)) {
			char why[WHY_MAX + 1];

			snprintf(why, sizeof(why), "%.*s", (int)len, (const char *)text);
			if (bad != NULL)
				bad(ctx, key, klen, why);
			continue;
		}
		if (type == MSG_END && store_child_take(&p, end, &rc, sizeof(rc)) &&
		    store_child_take_text(&p, end, &text, &len) && p == end && rc <= 0 &&
		    WIFEXITED(status) && WEXITSTATUS(status) == 0) {
			if (rc < 0)
				snprintf(err, errlen, "%.*s", (int)len, (const char *)text);
			return rc;
		}
		break;
	}
	snprintf(err, errlen,
		 "%s/data.mdb is damaged (reading it killed the reader, %s %d); run `moatd "
		 "--check-store` for details, then `moatd --repair-store` to rebuild it from "
		 "the records that can still be read",
		 dir, WIFSIGNALED(status) ? "signal" : "exit status",
		 WIFSIGNALED(status) ? WTERMSIG(status) : WEXITSTATUS(status));
	return MOAT_E_PARSE;
}

int store_verify(const char *dir, store_check_fn check_value, store_report_fn bad, void *ctx,
		 char *err, size_t errlen)
{
	struct verify_arg arg = {.dir = dir, .check_value = check_value};
	struct buf in = {0};
	int fd, status, rc;
	pid_t pid;

	if (store_child_start(child_main, &arg, &pid, &fd) < 0) {
		snprintf(err, errlen, "%s: cannot check the store: %s", dir, strerror(errno));
		return MOAT_E_IO;
	}
	rc = read_all(fd, &in);
	close(fd); /* a child still writing gets EPIPE */
	status = store_child_wait(pid);
	if (rc == MOAT_OK)
		rc = replay(&in, status, dir, bad, ctx, err, errlen);
	else
		snprintf(err, errlen, "%s: cannot check the store: %s", dir, moat_strerror(rc));
	buf_fini(&in);
	return rc;
}

/* Records the judge rejected, reported once the walk is known to be usable:
 * entries of a 2-byte key length, the key, a 2-byte reason length, the reason. */
struct judged {
	struct buf found;
	uint64_t bad;
	char first[WHY_MAX + 1];
	bool nomem;
};

static void on_bad(void *ctx, const uint8_t *key, size_t klen, const char *why)
{
	struct judged *j = ctx;
	uint16_t n = (uint16_t)klen, w = (uint16_t)strlen(why);

	if (j->bad++ == 0)
		snprintf(j->first, sizeof(j->first), "%s", why);
	if (buf_reserve(&j->found, 4 + n + w) < 0) {
		j->nomem = true;
		return;
	}
	buf_append(&j->found, &n, sizeof(n));
	buf_append(&j->found, key, n);
	buf_append(&j->found, &w, sizeof(w));
	buf_append(&j->found, why, w);
}

/* Walks the found records: the next key and reason. */
static bool next_found(const uint8_t **p, const uint8_t *end, MDB_val *key, char *why,
		       size_t whylen)
{
	const uint8_t *k, *w;
	size_t klen, wlen;

	if (!store_child_take_text(p, end, &k, &klen) || !store_child_take_text(p, end, &w, &wlen))
		return false;
	*key = (MDB_val){klen, (void *)k};
	snprintf(why, whylen, "%.*s", (int)wlen, (const char *)w);
	return true;
}

static void report_found(const struct judged *j, store_report_fn report, void *ctx)
{
	const uint8_t *p = buf_head(&j->found), *end = p + buf_used(&j->found);
	char why[WHY_MAX + 1];
	MDB_val k;

	while (report != NULL && next_found(&p, end, &k, why, sizeof(why)))
		report(ctx, k.mv_data, k.mv_size, why);
}

static int delete_found(const char *dir, const struct judged *j, char *err, size_t errlen)
{
	const uint8_t *p = buf_head(&j->found), *end = p + buf_used(&j->found);
	char why[WHY_MAX + 1];
	MDB_env *env;
	MDB_dbi dbi;
	MDB_txn *txn;
	MDB_val k;
	int rc;

	rc = store_env_open(dir, 0, 0, &env, &dbi, err, errlen);
	if (rc < 0)
		return rc;
	rc = mdb_txn_begin(env, NULL, 0, &txn);
	while (rc == 0 && next_found(&p, end, &k, why, sizeof(why))) {
		rc = mdb_del(txn, dbi, &k, NULL);
		if (rc == MDB_NOTFOUND)
			rc = 0;
	}
	if (rc == 0)
		rc = mdb_txn_commit(txn);
	else
		mdb_txn_abort(txn);
	if (rc == 0)
		rc = mdb_env_sync(env, 1);
	if (rc != 0)
		rc = store_env_error(rc, dir, "repairing", err, errlen);
	mdb_env_close(env);
	return rc;
}

int store_check(const char *dir, store_check_fn check_value, bool repair, store_report_fn report,
		void *ctx, char *err, size_t errlen)
{
	struct judged j = {0};
	char path[4096];
	int lock_fd, rc;

	lock_fd = store_lock_take(dir, false, err, errlen);
	if (lock_fd < 0)
		return lock_fd;
	snprintf(path, sizeof(path), "%s/data.mdb", dir);
	if (access(path, F_OK) != 0) {
		snprintf(err, errlen, "%s: there is no store here (no data.mdb)", dir);
		rc = MOAT_E_IO;
		goto out_unlock;
	}
	rc = store_verify(dir, check_value, on_bad, &j, err, errlen);
	if (rc == MOAT_OK && j.nomem) {
		snprintf(err, errlen, "%s: out of memory listing damaged records", dir);
		rc = MOAT_E_NOMEM;
	}
	if (rc == MOAT_E_PARSE && repair) {
		/* LMDB's pages are damaged: rebuild from what can be read (it reports). */
		rc = store_salvage(dir, check_value, report, ctx, err, errlen);
		goto out_free;
	}
	report_found(&j, report, ctx);
	if (rc == MOAT_OK && j.bad > 0 && repair)
		rc = delete_found(dir, &j, err, errlen);
	else if (rc == MOAT_OK && j.bad > 0) {
		snprintf(err, errlen,
			 "%s/data.mdb holds %llu damaged record(s), the first: %s; run `moatd "
			 "--repair-store` to delete them",
			 dir, (unsigned long long)j.bad, j.first);
		rc = MOAT_E_PARSE;
	}
out_free:
	buf_fini(&j.found);
out_unlock:
	store_lock_release(lock_fd);
	return rc;
}
