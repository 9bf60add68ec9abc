/*
 * The metrics HTTP server (see http.h): a request-head parser that trusts
 * nothing, the answers, and one thread polling the listening socket, a stop
 * eventfd and at most HTTP_MAX_CLIENTS connections, each with a deadline.
 */
#include "broker/http.h"

#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <moat/error.h>

#include "base/clock.h"

/* ---- parsing ---- */

static bool is_tchar(uint8_t c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	       (c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

static bool bytes_is(struct moat_bytes b, const char *s)
{
	size_t n = strlen(s);

	return b.len == n && memcmp(b.ptr, s, n) == 0;
}

/* request-line = method SP request-target SP HTTP-version (RFC 9112 §3) */
static int parse_request_line(const uint8_t *p, size_t n, struct http_request *req)
{
	size_t i = 0, m, t;
	struct moat_bytes method;

	while (i < n && is_tchar(p[i]))
		i++;
	if (i == 0 || i > 16 || i >= n || p[i] != ' ')
		return MOAT_E_MALFORMED;
	method = (struct moat_bytes){p, i};
	m = ++i;
	while (i < n && p[i] >= 0x21 && p[i] <= 0x7e)
		i++;
	if (i == m || i >= n || p[i] != ' ')
		return MOAT_E_MALFORMED;
	req->target = (struct moat_bytes){p + m, i - m};
	i++;
	if (n - i != 8 || memcmp(p + i, "HTTP/", 5) != 0 || p[i + 5] < '0' || p[i + 5] > '9' ||
	    p[i + 6] != '.' || p[i + 7] < '0' || p[i + 7] > '9')
		return MOAT_E_MALFORMED;
	if (p[i + 5] != '1')
		return MOAT_E_UNSUPPORTED;
	req->minor = (uint8_t)(p[i + 7] - '0');
	req->method = bytes_is(method, "GET")	 ? HTTP_GET
		      : bytes_is(method, "HEAD") ? HTTP_HEAD
						 : HTTP_OTHER;
	for (t = 0; t < req->target.len && req->target.ptr[t] != '?'; t++)
		;
	req->path = (struct moat_bytes){req->target.ptr, t};
	req->query = t < req->target.len
			 ? (struct moat_bytes){req->target.ptr + t + 1, req->target.len - t - 1}
			 : (struct moat_bytes){req->target.ptr + t, 0};
	return MOAT_OK;
}

/* field-line = field-name ":" OWS field-value OWS; no obs-fold (RFC 9112 §5) */
static int check_field_line(const uint8_t *p, size_t n)
{
	size_t i = 0;

	while (i < n && is_tchar(p[i]))
		i++;
	if (i == 0 || i >= n || p[i] != ':')
		return MOAT_E_MALFORMED;
	for (i++; i < n; i++)
		if (p[i] != '\t' && (p[i] < 0x20 || p[i] == 0x7f))
			return MOAT_E_MALFORMED; /* CR, NUL and other controls */
	return MOAT_OK;
}

int http_parse_request(const uint8_t *p, size_t len, struct http_request *req)
{
	size_t n = len < HTTP_MAX_HEAD_BYTES ? len : HTTP_MAX_HEAD_BYTES;
	size_t pos = 0;
	bool first = true;

	*req = (struct http_request){0};
	if (len == 0)
		return MOAT_E_AGAIN;
	for (;;) {
		const uint8_t *nl = memchr(p + pos, '\n', n - pos);
		size_t end, stop;
		int rc;

		if (nl == NULL)
			return len >= HTTP_MAX_HEAD_BYTES ? MOAT_E_LIMIT : MOAT_E_AGAIN;
		end = (size_t)(nl - p);
		stop = end > pos && p[end - 1] == '\r' ? end - 1 : end;
		if (first) {
			rc = parse_request_line(p + pos, stop - pos, req);
			first = false;
		} else if (stop == pos) {
			req->head_len = end + 1;
			return MOAT_OK;
		} else if (++req->headers > HTTP_MAX_HEADERS) {
			rc = MOAT_E_LIMIT;
		} else {
			rc = check_field_line(p + pos, stop - pos);
		}
		if (rc < 0)
			return rc;
		pos = end + 1;
	}
}

/* ---- answers ---- */

static const char *reason_of(int status)
{
	switch (status) {
	case 200:
		return "OK";
	case 400:
		return "Bad Request";
	case 404:
		return "Not Found";
	case 405:
		return "Method Not Allowed";
	case 431:
		return "Request Header Fields Too Large";
	case 500:
		return "Internal Server Error";
	case 503:
		return "Service Unavailable";
	case 505:
		return "HTTP Version Not Supported";
	default:
		return "Error";
	}
}

static int status_of_parse(int parse_rc)
{
	switch (parse_rc) {
	case MOAT_E_LIMIT:
		return 431;
	case MOAT_E_UNSUPPORTED:
		return 505;
	default:
		return 400;
	}
}

int http_respond(int parse_rc, const struct http_request *req, const struct http_ops *ops,
		 void *arg, struct buf *out)
{
	struct buf body = {0};
	const char *type = "text/plain; charset=utf-8";
	char head[256];
	bool metrics = false;
	int status, n, rc;

	if (parse_rc != MOAT_OK) {
		status = status_of_parse(parse_rc);
	} else if (req->method == HTTP_OTHER) {
		status = 405;
	} else if (bytes_is(req->path, "/metrics")) {
		status = 200;
		metrics = ops->metrics(arg, &body) == MOAT_OK;
		if (metrics) {
			type = "text/plain; version=0.0.4; charset=utf-8";
		} else {
			buf_fini(&body);
			status = 500;
		}
	} else if (bytes_is(req->path, "/healthz")) {
		status = ops->stopping(arg) ? 503 : 200;
	} else {
		status = 404;
	}
	if (!metrics) { /* every other answer has a one-line body */
		const char *text = status == 200 ? "ok\n" : status == 503 ? "stopping\n" : NULL;
		char line[64];

		if (text == NULL) {
			snprintf(line, sizeof(line), "%s\n", reason_of(status));
			text = line;
		}
		if (buf_append(&body, text, strlen(text)) < 0) {
			buf_fini(&body);
			return MOAT_E_NOMEM;
		}
	}
	n = snprintf(head, sizeof(head),
		     "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n%sConnection: "
		     "close\r\n\r\n",
		     status, reason_of(status), type, buf_used(&body),
		     status == 405 ? "Allow: GET, HEAD\r\n" : "");
	rc = buf_append(out, head, (size_t)n);
	if (rc == MOAT_OK && buf_used(&body) > 0 &&
	    !(parse_rc == MOAT_OK && req->method == HTTP_HEAD))
		rc = buf_append(out, buf_head(&body), buf_used(&body));
	buf_fini(&body);
	return rc < 0 ? rc : status;
}

/* ---- the server ---- */

enum client_state { C_FREE = 0, C_READ, C_WRITE, C_DRAIN };

enum {
	DRAIN_MS = 1000,       /* reading the rest, so closing does not reset the answer */
	ACCEPT_PAUSE_MS = 100, /* not accepting after running out of descriptors */
};

struct http_client {
	int fd;
	enum client_state state;
	uint64_t opened_ms, deadline_ms;
	size_t in_len;
	struct buf out;
	uint8_t in[HTTP_MAX_HEAD_BYTES];
};

struct http_server {
	int listen_fd, stop_fd;
	uint16_t port;
	pthread_t thread;
	const struct http_ops *ops;
	void *arg;
	uint64_t accept_paused_until_ms;
	struct http_client clients[HTTP_MAX_CLIENTS];
};

static void client_close(struct http_client *c)
{
	close(c->fd);
	buf_fini(&c->out);
	c->fd = -1;
	c->state = C_FREE;
	c->in_len = 0;
}

/* Sends what the socket takes; once all is sent, half-closes and drains. */
static void client_write(struct http_client *c, uint64_t now_ms)
{
	while (buf_used(&c->out) > 0) {
		ssize_t n = send(c->fd, buf_head(&c->out), buf_used(&c->out), MSG_NOSIGNAL);

		if (n > 0) {
			buf_consume(&c->out, (size_t)n);
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return;
		client_close(c);
		return;
	}
	buf_fini(&c->out);
	shutdown(c->fd, SHUT_WR);
	c->state = C_DRAIN;
	c->deadline_ms = now_ms + DRAIN_MS;
}

static void client_read(struct http_server *s, struct http_client *c, uint64_t now_ms)
{
	struct http_request req;
	ssize_t n;
	int rc;

	if (c->state == C_DRAIN) {
		uint8_t scratch[1024];

		n = recv(c->fd, scratch, sizeof(scratch), 0);
		if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR))
			client_close(c);
		return;
	}
	n = recv(c->fd, c->in + c->in_len, sizeof(c->in) - c->in_len, 0);
	if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) {
		client_close(c); /* the client gave up before a whole head */
		return;
	}
	if (n < 0)
		return;
	c->in_len += (size_t)n;
	rc = http_parse_request(c->in, c->in_len, &req);
	if (rc == MOAT_E_AGAIN)
		return;
	if (http_respond(rc, &req, s->ops, s->arg, &c->out) < 0) {
		client_close(c);
		return;
	}
	c->state = C_WRITE;
	c->deadline_ms = now_ms + HTTP_WRITE_TIMEOUT_MS;
	client_write(c, now_ms);
}

/* A slot for a new connection: a free one, else the one that has been
 * sending its head longest (then one draining), which is closed. */
static struct http_client *take_slot(struct http_server *s)
{
	struct http_client *victim = NULL;

	for (int pass = 0; pass < 2 && victim == NULL; pass++) {
		enum client_state want = pass == 0 ? C_READ : C_DRAIN;

		for (size_t i = 0; i < HTTP_MAX_CLIENTS; i++) {
			struct http_client *c = &s->clients[i];

			if (c->state == C_FREE)
				return c;
			if (c->state == want &&
			    (victim == NULL || c->opened_ms < victim->opened_ms))
				victim = c;
		}
	}
	if (victim != NULL)
		client_close(victim);
	return victim;
}

static void accept_all(struct http_server *s, uint64_t now_ms)
{
	for (;;) {
		int fd = accept4(s->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		struct http_client *c;

		if (fd < 0) {
			/* out of descriptors or memory: the listener stays readable, so
			 * stop polling it for a while instead of spinning */
			if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS ||
			    errno == ENOMEM)
				s->accept_paused_until_ms = now_ms + ACCEPT_PAUSE_MS;
			return;
		}
		c = take_slot(s);
		if (c == NULL) {
			close(fd); /* every slot is writing an answer */
			continue;
		}
		c->fd = fd;
		c->state = C_READ;
		c->in_len = 0;
		c->opened_ms = now_ms;
		c->deadline_ms = now_ms + HTTP_HEAD_TIMEOUT_MS;
	}
}

static void *server_loop(void *arg)
{
	struct http_server *s = arg;

	for (;;) {
		struct pollfd pfd[2 + HTTP_MAX_CLIENTS];
		struct http_client *who[2 + HTTP_MAX_CLIENTS] = {NULL};
		uint64_t now = clock_mono_ms();
		int timeout = -1, n = 2;

		pfd[0] = (struct pollfd){.fd = s->stop_fd, .events = POLLIN};
		pfd[1] = (struct pollfd){.fd = s->listen_fd, .events = POLLIN};
		if (now < s->accept_paused_until_ms) {
			pfd[1].fd = -1; /* poll() skips it */
			timeout = (int)(s->accept_paused_until_ms - now);
		}
		for (size_t i = 0; i < HTTP_MAX_CLIENTS; i++) {
			struct http_client *c = &s->clients[i];
			uint64_t left;

			if (c->state == C_FREE)
				continue;
			left = c->deadline_ms > now ? c->deadline_ms - now : 0;
			if (timeout < 0 || left < (uint64_t)timeout)
				timeout = (int)left;
			pfd[n] = (struct pollfd){.fd = c->fd,
						 .events = c->state == C_WRITE ? POLLOUT : POLLIN};
			who[n++] = c;
		}
		if (poll(pfd, (nfds_t)n, timeout) < 0 && errno != EINTR)
			break;
		if (pfd[0].revents != 0)
			break;
		now = clock_mono_ms();
		for (int i = 2; i < n; i++) {
			struct http_client *c = who[i];

			if (pfd[i].revents == 0 || c->state == C_FREE)
				continue;
			if (c->state == C_WRITE)
				client_write(c, now);
			else
				client_read(s, c, now);
		}
		for (size_t i = 0; i < HTTP_MAX_CLIENTS; i++)
			if (s->clients[i].state != C_FREE && s->clients[i].deadline_ms <= now)
				client_close(&s->clients[i]);
		if (pfd[1].revents & POLLIN)
			accept_all(s, now);
	}
	return NULL;
}

static int open_listener(struct http_server *s, const char *bind_address, uint16_t port,
			 struct moat_diag *d)
{
	struct addrinfo hints = {.ai_family = AF_UNSPEC,
				 .ai_socktype = SOCK_STREAM,
				 .ai_flags = AI_PASSIVE | AI_NUMERICSERV};
	struct addrinfo *res, *ai;
	struct sockaddr_storage sa;
	socklen_t salen = sizeof(sa);
	char service[8];
	int rc, err = 0;

	snprintf(service, sizeof(service), "%u", port);
	rc = getaddrinfo(bind_address, service, &hints, &res);
	if (rc != 0) {
		snprintf(d->msg, sizeof(d->msg), "cannot resolve %s: %s", bind_address,
			 gai_strerror(rc));
		return MOAT_E_CONFIG;
	}
	for (ai = res; ai != NULL && s->listen_fd < 0; ai = ai->ai_next) {
		int one = 1,
		    fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

		if (fd < 0) {
			err = errno;
			continue;
		}
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		if (bind(fd, ai->ai_addr, ai->ai_addrlen) < 0 || listen(fd, 64) < 0) {
			err = errno;
			close(fd);
			continue;
		}
		s->listen_fd = fd;
	}
	freeaddrinfo(res);
	if (s->listen_fd < 0) {
		snprintf(d->msg, sizeof(d->msg), "cannot listen on %s port %u: %s", bind_address,
			 port, strerror(err));
		return MOAT_E_IO;
	}
	if (getsockname(s->listen_fd, (struct sockaddr *)&sa, &salen) == 0)
		s->port = ntohs(sa.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&sa)->sin6_port
							 : ((struct sockaddr_in *)&sa)->sin_port);
	return MOAT_OK;
}

int http_server_start(struct http_server **out, const char *bind_address, uint16_t port,
		      const struct http_ops *ops, void *arg, struct moat_diag *d)
{
	struct http_server *s = calloc(1, sizeof(*s));
	int rc;

	*out = NULL;
	if (s == NULL)
		return MOAT_E_NOMEM;
	s->ops = ops;
	s->arg = arg;
	s->listen_fd = -1;
	for (size_t i = 0; i < HTTP_MAX_CLIENTS; i++)
		s->clients[i].fd = -1;
	s->stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (s->stop_fd < 0) {
		snprintf(d->msg, sizeof(d->msg), "eventfd: %s", strerror(errno));
		free(s);
		return MOAT_E_IO;
	}
	rc = open_listener(s, bind_address, port, d);
	if (rc < 0)
		goto err_close;
	if (pthread_create(&s->thread, NULL, server_loop, s) != 0) {
		snprintf(d->msg, sizeof(d->msg), "cannot start the HTTP thread");
		rc = MOAT_E_NOMEM;
		goto err_close;
	}
	*out = s;
	return MOAT_OK;

err_close:
	if (s->listen_fd >= 0)
		close(s->listen_fd);
	close(s->stop_fd);
	free(s);
	return rc;
}

uint16_t http_server_port(const struct http_server *s)
{
	return s->port;
}

void http_server_stop(struct http_server *s)
{
	uint64_t one = 1;

	if (s == NULL)
		return;
	while (write(s->stop_fd, &one, sizeof(one)) < 0 && errno == EINTR)
		;
	pthread_join(s->thread, NULL);
	for (size_t i = 0; i < HTTP_MAX_CLIENTS; i++)
		if (s->clients[i].state != C_FREE)
			client_close(&s->clients[i]);
	close(s->listen_fd);
	close(s->stop_fd);
	free(s);
}
