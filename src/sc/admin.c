/*
 * The admin channel's socket (admin.h): binding DIR/admin.sock, one thread
 * serving one connection at a time, SO_PEERCRED, line framing, the op
 * table, the actor and the audit row every request leaves. The op
 * handlers are in admin_thing.c and admin_policy.c.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include <moat/error.h>

#include "base/buf.h"
#include "sc/admin_impl.h"

/* How long a connection may stay silent, or an answer wait for the peer to
 * read it, before the channel moves on to the next connection. */
enum { IDLE_MS = 30 * 1000 };

struct sc_admin {
	struct sc_admin_ctx ctx;
	char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
	int lfd;
	int stop[2]; /* a byte on stop[1] ends the thread */
	pthread_t thread;
};

static const struct {
	const char *name;
	admin_op_fn *fn;
} ops[] = {
    {"thing.create", admin_thing_create},   {"thing.list", admin_thing_list},
    {"thing.show", admin_thing_show},	    {"thing.update", admin_thing_update},
    {"thing.revoke", admin_thing_revoke},   {"policy.set", admin_policy_set},
    {"policy.list", admin_policy_list},	    {"policy.show", admin_policy_show},
    {"policy.delete", admin_policy_delete}, {"key.rotate", admin_key_rotate},
    {"token.issue", admin_token_issue},	    {"audit.tail", admin_audit_tail},
};

static int fail(struct moat_diag *d, int rc, const char *what, const char *path)
{
	snprintf(d->msg, sizeof(d->msg), "%s %.300s: %s", what, path, strerror(errno));
	return rc;
}

int admin_fail(struct admin_req *r, int rc, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(r->d->msg, sizeof(r->d->msg), fmt, ap);
	va_end(ap);
	return rc;
}

int admin_str(struct admin_req *r, const char *key, bool required, const char **out)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(r->in, key);

	*out = NULL;
	if (v == NULL && !required)
		return MOAT_OK;
	if (!cJSON_IsString(v)) {
		snprintf(r->d->msg, sizeof(r->d->msg), "\"%s\": a string is needed", key);
		return MOAT_E_INVAL;
	}
	*out = v->valuestring;
	return MOAT_OK;
}

int admin_uint(struct admin_req *r, const char *key, uint32_t min, uint32_t max, uint32_t dflt,
	       uint32_t *out)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(r->in, key);
	double x = cJSON_IsNumber(v) ? v->valuedouble : -1;

	*out = dflt;
	if (v == NULL)
		return MOAT_OK;
	if (!(x >= min && x <= max) || (double)(uint32_t)x != x) {
		snprintf(r->d->msg, sizeof(r->d->msg), "\"%s\": a whole number from %u to %u", key,
			 min, max);
		return MOAT_E_INVAL;
	}
	*out = (uint32_t)x;
	return MOAT_OK;
}

void admin_prefix(struct admin_req *r, const char *a, const char *b)
{
	char msg[sizeof(r->d->msg)];

	snprintf(msg, sizeof(msg), "%.100s%.100s%.300s", a, b, r->d->msg);
	memcpy(r->d->msg, msg, sizeof(msg));
}

int admin_daemon(struct admin_req *r, bool called, int rc, const char *done)
{
	if (!called) {
		cJSON_AddFalseToObject(r->out, "daemon");
		cJSON_AddStringToObject(r->out, "note",
					"no Security Center daemon is running: the change is in "
					"the registry only, nothing was pushed to brokers");
	} else if (rc == MOAT_OK) {
		cJSON_AddTrueToObject(r->out, "daemon");
	} else {
		admin_prefix(r, done, ", but the daemon failed: ");
	}
	return rc;
}

char *admin_handle_line(const struct sc_admin_ctx *ctx, const char *peer_actor, const char *line,
			size_t len)
{
	struct moat_diag d = {{0}};
	struct admin_req r = {.ctx = ctx, .actor = peer_actor, .d = &d};
	cJSON *in = cJSON_ParseWithLength(line, len);
	char action[REG_NAME_MAX + 1] = "admin.request", *detail, *reply;
	const char *op = NULL, *actor = NULL;
	admin_op_fn *fn = NULL;
	int rc = MOAT_OK;

	r.in = in;
	r.out = cJSON_CreateObject();
	r.detail = cJSON_CreateObject();
	if (r.out == NULL || r.detail == NULL)
		rc = MOAT_E_NOMEM;
	else if (!cJSON_IsObject(in))
		rc = admin_fail(&r, MOAT_E_MALFORMED, "the request is not one JSON object");
	if (rc == MOAT_OK)
		rc = admin_str(&r, "op", true, &op);
	if (rc == MOAT_OK)
		rc = admin_str(&r, "actor", false, &actor);
	if (rc == MOAT_OK && actor != NULL)
		r.actor = actor;
	for (size_t i = 0; rc == MOAT_OK && i < sizeof(ops) / sizeof(ops[0]); i++)
		if (strcmp(op, ops[i].name) == 0) {
			fn = ops[i].fn;
			snprintf(action, sizeof(action), "admin.%s", op);
		}
	if (rc == MOAT_OK && fn == NULL)
		rc = admin_fail(&r, MOAT_E_UNSUPPORTED, "unknown op \"%.64s\"", op);
	if (rc == MOAT_OK) {
		cJSON_AddTrueToObject(r.out, "ok");
		rc = fn(&r);
	}
	if (rc < 0 && r.out != NULL) {
		cJSON_Delete(r.out);
		r.out = cJSON_CreateObject();
		cJSON_AddFalseToObject(r.out, "ok");
		cJSON_AddStringToObject(r.out, "error",
					d.msg[0] != '\0' ? d.msg : moat_strerror(rc));
	}
	if (r.detail != NULL) {
		cJSON_AddBoolToObject(r.detail, "ok", rc == MOAT_OK);
		if (rc < 0)
			cJSON_AddStringToObject(r.detail, "error",
						d.msg[0] != '\0' ? d.msg : moat_strerror(rc));
	}
	/* every request leaves its row; a bad actor is answered, not audited */
	detail = r.detail != NULL ? cJSON_PrintUnformatted(r.detail) : NULL;
	if (detail != NULL &&
	    reg_audit_append(ctx->reg, r.actor, action,
			     r.thing != NULL && reg_name_is_valid(r.thing) ? r.thing : NULL, detail,
			     &d) < 0 &&
	    rc == MOAT_OK) {
		cJSON_Delete(r.out);
		r.out = cJSON_CreateObject();
		cJSON_AddFalseToObject(r.out, "ok");
		cJSON_AddStringToObject(r.out, "error", d.msg);
	}
	cJSON_free(detail);
	reply = r.out != NULL ? cJSON_PrintUnformatted(r.out) : NULL;
	cJSON_Delete(r.out);
	cJSON_Delete(r.detail);
	cJSON_Delete(in);
	return reply;
}

/* Writes all of <p> (<len> bytes) to <fd>; false when the peer is gone. */
static bool send_all(int fd, const char *p, size_t len)
{
	while (len > 0) {
		ssize_t n = send(fd, p, len, MSG_NOSIGNAL);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return false;
		p += n;
		len -= (size_t)n;
	}
	return true;
}

bool sc_admin_send_line(int fd, const char *text)
{
	return send_all(fd, text, strlen(text)) && send_all(fd, "\n", 1);
}

static bool answer(int fd, const char *text)
{
	return sc_admin_send_line(fd, text != NULL ? text
						   : "{\"ok\":false,\"error\":\"out of memory\"}");
}

/* Who is at the other end: the user name of its uid, or "uid<N>". False
 * (after answering) when that uid may not administer us. */
static bool peer_allowed(int fd, char actor[REG_NAME_MAX + 1])
{
	struct ucred cred;
	socklen_t len = sizeof(cred);
	struct passwd pw, *res = NULL;
	char pwbuf[1024];

	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0)
		return false;
	if (cred.uid != geteuid() && cred.uid != 0) {
		answer(fd, "{\"ok\":false,\"error\":\"this user may not administer the "
			   "Security Center\"}");
		return false;
	}
	if (getpwuid_r(cred.uid, &pw, pwbuf, sizeof(pwbuf), &res) == 0 && res != NULL &&
	    strlen(pw.pw_name) <= REG_NAME_MAX)
		snprintf(actor, REG_NAME_MAX + 1, "%s", pw.pw_name);
	else
		snprintf(actor, REG_NAME_MAX + 1, "uid%u", (unsigned)cred.uid);
	return true;
}

/* Serves the connection <fd> until it closes or stop is asked; true when
 * the thread should stop. */
static bool serve(struct sc_admin *a, int fd)
{
	static const char too_long[] = "{\"ok\":false,\"error\":\"request line over 262144 "
				       "bytes\"}";
	char actor[REG_NAME_MAX + 1], *text;
	struct buf in = {0};
	bool skipping = false, stop = false, open = peer_allowed(fd, actor);

	while (open) {
		struct pollfd p[2] = {{.fd = fd, .events = POLLIN},
				      {.fd = a->stop[0], .events = POLLIN}};
		uint8_t *nl;
		ssize_t n;

		int ready = poll(p, 2, IDLE_MS);

		if (ready < 0 && errno == EINTR)
			continue;
		if (ready <= 0)
			break; /* an idle peer does not keep the channel from others */
		if (p[1].revents != 0) {
			stop = true;
			break;
		}
		if (buf_reserve(&in, 16384) != MOAT_OK)
			break;
		n = recv(fd, in.data + in.len, in.cap - in.len, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		in.len += (size_t)n;
		while (open && (nl = memchr(buf_head(&in), '\n', buf_used(&in))) != NULL) {
			size_t line = (size_t)(nl - buf_head(&in));

			if (!skipping && line > SC_ADMIN_LINE_MAX) {
				open = answer(fd, too_long);
			} else if (!skipping && line > 0) {
				text = admin_handle_line(&a->ctx, actor,
							 (const char *)buf_head(&in), line);
				open = answer(fd, text);
				cJSON_free(text);
			}
			skipping = false;
			buf_consume(&in, line + 1);
		}
		if (buf_used(&in) > SC_ADMIN_LINE_MAX) {
			if (!skipping)
				open = answer(fd, too_long);
			skipping = true;
			buf_consume(&in, buf_used(&in));
		}
	}
	buf_fini(&in);
	close(fd);
	return stop;
}

static void *run(void *arg)
{
	static const struct timeval send_timeout = {.tv_sec = IDLE_MS / 1000};
	struct sc_admin *a = arg;

	for (;;) {
		struct pollfd p[2] = {{.fd = a->lfd, .events = POLLIN},
				      {.fd = a->stop[0], .events = POLLIN}};
		int fd;

		if (poll(p, 2, -1) < 0 && errno != EINTR)
			break;
		if (p[1].revents != 0)
			break;
		if (p[0].revents == 0)
			continue;
		fd = accept4(a->lfd, NULL, NULL, SOCK_CLOEXEC);
		if (fd < 0)
			continue;
		/* a peer that stops reading cannot hold the thread either */
		setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &send_timeout, sizeof(send_timeout));
		if (serve(a, fd))
			break;
	}
	return NULL;
}

/* Binds <a->path>: a socket file nobody answers on is stale and replaced;
 * a live one, or a file that is no socket, is refused. */
static int bind_socket(struct sc_admin *a, struct moat_diag *d)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	struct stat st;
	int probe, rc;

	memcpy(sa.sun_path, a->path, sizeof(sa.sun_path));
	if (lstat(a->path, &st) == 0) {
		if (!S_ISSOCK(st.st_mode)) {
			snprintf(d->msg, sizeof(d->msg), "%.300s exists and is not a socket",
				 a->path);
			return MOAT_E_DENIED;
		}
		probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (probe >= 0 && connect(probe, (struct sockaddr *)&sa, sizeof(sa)) == 0) {
			close(probe);
			snprintf(d->msg, sizeof(d->msg),
				 "another Security Center answers on %.300s", a->path);
			return MOAT_E_DENIED;
		}
		if (probe >= 0)
			close(probe);
		if (unlink(a->path) != 0)
			return fail(d, MOAT_E_IO, "remove the stale", a->path);
	}
	a->lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (a->lfd < 0)
		return fail(d, MOAT_E_IO, "socket for", a->path);
	if (bind(a->lfd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
		rc = fail(d, MOAT_E_IO, "bind", a->path);
		close(a->lfd);
		a->lfd = -1;
		return rc;
	}
	/* the SC directory is 0700 already; the socket itself too */
	if (chmod(a->path, 0600) != 0 || listen(a->lfd, 8) != 0) {
		unlink(a->path);
		return fail(d, MOAT_E_IO, "listen on", a->path);
	}
	return MOAT_OK;
}

int sc_admin_start(struct sc_admin **out, const struct sc_admin_ctx *ctx, struct moat_diag *d)
{
	struct sc_admin *a = calloc(1, sizeof(*a));
	int rc;

	if (a == NULL)
		return MOAT_E_NOMEM;
	a->ctx = *ctx;
	a->lfd = a->stop[0] = a->stop[1] = -1;
	if ((size_t)snprintf(a->path, sizeof(a->path), "%s/%s", ctx->dir, SC_ADMIN_SOCKET) >=
	    sizeof(a->path)) {
		snprintf(d->msg, sizeof(d->msg), "%.300s: the path is too long for a socket",
			 ctx->dir);
		rc = MOAT_E_INVAL;
	} else {
		rc = bind_socket(a, d);
	}
	if (rc == MOAT_OK && pipe2(a->stop, O_CLOEXEC) != 0)
		rc = fail(d, MOAT_E_IO, "pipe for", a->path);
	if (rc == MOAT_OK && pthread_create(&a->thread, NULL, run, a) != 0) {
		snprintf(d->msg, sizeof(d->msg), "could not start the admin thread");
		rc = MOAT_E_NOMEM;
	}
	if (rc < 0) {
		if (a->lfd >= 0) {
			close(a->lfd);
			unlink(a->path);
		}
		if (a->stop[0] >= 0) {
			close(a->stop[0]);
			close(a->stop[1]);
		}
		free(a);
		return rc;
	}
	*out = a;
	return MOAT_OK;
}

void sc_admin_stop(struct sc_admin *a)
{
	if (a == NULL)
		return;
	while (write(a->stop[1], "x", 1) < 0 && errno == EINTR)
		;
	pthread_join(a->thread, NULL);
	close(a->lfd);
	unlink(a->path);
	close(a->stop[0]);
	close(a->stop[1]);
	free(a);
}
