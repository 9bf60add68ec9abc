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
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <lmdb.h>

#include "store/env.h"
#include "store/lock.h"
#include <moat/error.h>

/* The child's messages: 'B' u16 klen, key, u16 wlen, why (a record the judge
 * rejects); 'E' i32 rc, u16 elen, err (the end of the walk). */
enum { MSG_BAD = 'B', MSG_END = 'E', WHY_MAX = 200, ERR_MAX = 1000 };

static bool write_all(int fd, const void *p, size_t len)
{
	const uint8_t *q = p;

	while (len > 0) {
		ssize_t n = write(fd, q, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return false;
		q += n;
		len -= (size_t)n;
	}
	return true;
}

static bool send_text(int fd, const void *p, size_t len, size_t max)
{
	uint16_t n = (uint16_t)(len > max ? max : len);

	return write_all(fd, &n, sizeof(n)) && write_all(fd, p, n);
}

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
		if (why != NULL && !(write_all(fd, &(uint8_t){MSG_BAD}, 1) &&
				     send_text(fd, k.mv_data, k.mv_size, STORE_MAX_KEY) &&
				     send_text(fd, why, strlen(why), WHY_MAX)))
			_exit(1);
	}
	mdb_cursor_close(c);
	mdb_txn_abort(txn);
	if (rc != MDB_NOTFOUND)
		return store_env_error(rc, dir, "reading", err, errlen);
	return MOAT_OK;
}

static _Noreturn void child_main(int fd, const char *dir, store_check_fn check_value)
{
	char err[ERR_MAX] = "";
	int32_t rc;
	MDB_env *env;
	MDB_dbi dbi;

	rc = store_env_open(dir, MDB_RDONLY, 0, &env, &dbi, err, sizeof(err));
	if (rc == MOAT_OK) {
		rc = child_walk(fd, env, dbi, check_value, dir, err, sizeof(err));
		mdb_env_close(env);
	}
	if (!(write_all(fd, &(uint8_t){MSG_END}, 1) && write_all(fd, &rc, sizeof(rc)) &&
	      send_text(fd, err, strlen(err), ERR_MAX)))
		_exit(1);
	_exit(0);
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

static bool take(const uint8_t **p, const uint8_t *end, void *out, size_t len)
{
	if ((size_t)(end - *p) < len)
		return false;
	memcpy(out, *p, len);
	*p += len;
	return true;
}

/* A length-prefixed text: a view into the message stream. */
static bool take_text(const uint8_t **p, const uint8_t *end, const uint8_t **text, size_t *len)
{
	uint16_t n;

	if (!take(p, end, &n, sizeof(n)) || (size_t)(end - *p) < n)
		return false;
	*text = *p;
	*len = n;
	*p += n;
	return true;
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

	while (take(&p, end, &type, 1)) {
		if (type == MSG_BAD && take_text(&p, end, &key, &klen) &&
		    take_text(&p, end, &text, &len)) {
			char why[WHY_MAX + 1];

			snprintf(why, sizeof(why), "%.*s", (int)len, (const char *)text);
			if (bad != NULL)
				bad(ctx, key, klen, why);
			continue;
		}
		if (type == MSG_END && take(&p, end, &rc, sizeof(rc)) &&
		    take_text(&p, end, &text, &len) && p == end && rc <= 0 && WIFEXITED(status) &&
		    WEXITSTATUS(status) == 0) {
			if (rc < 0)
				snprintf(err, errlen, "%.*s", (int)len, (const char *)text);
			return rc;
		}
		break;
	}
	snprintf(err, errlen,
		 "%s/data.mdb is damaged (reading it killed the reader, %s %d); run `moatd "
		 "--check-store` to confirm and `moatd --repair-store`, or move the directory "
		 "away to start empty",
		 dir, WIFSIGNALED(status) ? "signal" : "exit status",
		 WIFSIGNALED(status) ? WTERMSIG(status) : WEXITSTATUS(status));
	return MOAT_E_PARSE;
}

int store_verify(const char *dir, store_check_fn check_value, store_report_fn bad, void *ctx,
		 char *err, size_t errlen)
{
	struct buf in = {0};
	int fds[2], status = 0, rc;
	pid_t pid;

	if (pipe2(fds, O_CLOEXEC) != 0) {
		snprintf(err, errlen, "%s: cannot check the store: pipe: %s", dir, strerror(errno));
		return MOAT_E_IO;
	}
	pid = fork();
	if (pid < 0) {
		snprintf(err, errlen, "%s: cannot check the store: fork: %s", dir, strerror(errno));
		close(fds[0]);
		close(fds[1]);
		return MOAT_E_IO;
	}
	if (pid == 0) {
		close(fds[0]);
		child_main(fds[1], dir, check_value);
	}
	close(fds[1]);
	rc = read_all(fds[0], &in);
	close(fds[0]); /* a child still writing gets EPIPE */
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	if (rc == MOAT_OK)
		rc = replay(&in, status, dir, bad, ctx, err, errlen);
	else
		snprintf(err, errlen, "%s: cannot check the store: %s", dir, moat_strerror(rc));
	buf_fini(&in);
	return rc;
}

struct judged {
	store_report_fn report;
	void *ctx;
	bool repair;
	struct buf doomed; /* keys to delete: 2-byte length, then the key */
	uint64_t bad;
	char first[WHY_MAX + 1];
	bool nomem;
};

static void on_bad(void *ctx, const uint8_t *key, size_t klen, const char *why)
{
	struct judged *j = ctx;
	uint16_t n = (uint16_t)klen;

	if (j->bad++ == 0)
		snprintf(j->first, sizeof(j->first), "%s", why);
	if (j->report != NULL)
		j->report(j->ctx, key, klen, why);
	if (j->repair &&
	    (buf_append(&j->doomed, &n, sizeof(n)) < 0 || buf_append(&j->doomed, key, klen) < 0))
		j->nomem = true;
}

static int delete_doomed(const char *dir, const struct buf *doomed, char *err, size_t errlen)
{
	const uint8_t *p = buf_head(doomed), *end = p + buf_used(doomed);
	MDB_env *env;
	MDB_dbi dbi;
	MDB_txn *txn;
	int rc;

	rc = store_env_open(dir, 0, 0, &env, &dbi, err, errlen);
	if (rc < 0)
		return rc;
	rc = mdb_txn_begin(env, NULL, 0, &txn);
	while (rc == 0 && p < end) {
		uint16_t klen;
		MDB_val k;

		memcpy(&klen, p, sizeof(klen));
		k = (MDB_val){klen, (void *)(p + sizeof(klen))};
		p += sizeof(klen) + klen;
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
	struct judged j = {.report = report, .ctx = ctx, .repair = repair};
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
	if (rc == MOAT_OK && j.bad > 0 && repair)
		rc = delete_doomed(dir, &j.doomed, err, errlen);
	else if (rc == MOAT_OK && j.bad > 0) {
		snprintf(err, errlen,
			 "%s/data.mdb holds %llu damaged record(s), the first: %s; run `moatd "
			 "--repair-store` to delete them",
			 dir, (unsigned long long)j.bad, j.first);
		rc = MOAT_E_PARSE;
	}
	buf_fini(&j.doomed);
out_unlock:
	store_lock_release(lock_fd);
	return rc;
}
