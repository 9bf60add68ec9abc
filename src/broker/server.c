/*
 * The event loop: listeners, accepting, reading, one flush per connection per
 * loop pass (coalesced writes), keep-alive and connect timeouts, and signals.
 * Connections are freed only here, after every event of the pass is handled.
 */
#include "broker/broker.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <moat/error.h>

#include "base/clock.h"
#include "base/log.h"

enum ev_kind { EV_LISTENER = 1, EV_CONN, EV_SIGNAL };

struct listener {
	int kind;	/* EV_LISTENER */
	int fd;
	struct listener *next;
};

struct ev_tag {
	int kind;
};

#define READ_CHUNK 65536
#define MAX_EVENTS 256

static struct ev_tag signal_tag = { EV_SIGNAL };

void server_mark_dirty(struct conn *c)
{
	if (!c->dirty) {
		c->dirty = true;
		c->dirty_next = c->b->dirty;
		c->b->dirty = c;
	}
}

static void conn_destroy(struct broker *b, struct conn *c)
{
	epoll_ctl(b->epfd, EPOLL_CTL_DEL, c->fd, NULL);
	close(c->fd);
	conn_on_close(c);
	if (c->prev != NULL)
		c->prev->next = c->next;
	else
		b->conns = c->next;
	if (c->next != NULL)
		c->next->prev = c->prev;
	b->conn_count--;
	buf_fini(&c->in);
	buf_fini(&c->out);
	free(c);
}

/* Writes what the socket takes; arms EPOLLOUT for the rest. */
static void conn_flush(struct broker *b, struct conn *c)
{
	while (buf_used(&c->out) > 0) {
		ssize_t n = send(c->fd, buf_head(&c->out), buf_used(&c->out), MSG_NOSIGNAL);

		if (n > 0) {
			buf_consume(&c->out, (size_t)n);
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			if (!c->want_write) {
				struct epoll_event ev = { .events = EPOLLIN | EPOLLOUT, .data.ptr = c };

				c->want_write = true;
				epoll_ctl(b->epfd, EPOLL_CTL_MOD, c->fd, &ev);
			}
			return;
		}
		c->closing = true;	/* peer gone */
		buf_consume(&c->out, buf_used(&c->out));
		return;
	}
	buf_trim(&c->out, 0);	/* idle connections keep no output buffer */
	if (c->want_write) {
		struct epoll_event ev = { .events = EPOLLIN, .data.ptr = c };

		c->want_write = false;
		epoll_ctl(b->epfd, EPOLL_CTL_MOD, c->fd, &ev);
	}
}

static void flush_dirty(struct broker *b)
{
	while (b->dirty != NULL) {
		struct conn *c = b->dirty;

		b->dirty = c->dirty_next;
		c->dirty = false;
		conn_flush(b, c);
		if (c->closing && (buf_used(&c->out) == 0 || !c->want_write))
			conn_destroy(b, c);
	}
}

static void on_readable(struct conn *c, uint64_t now_ms)
{
	for (int rounds = 0; rounds < 4 && !c->closing; rounds++) {
		ssize_t n;

		if (buf_reserve(&c->in, READ_CHUNK) < 0) {
			c->closing = true;
			break;
		}
		n = recv(c->fd, c->in.data + c->in.len, c->in.cap - c->in.len, 0);
		if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) {
			c->closing = true;	/* EOF or reset: the Will goes out in conn_on_close */
			break;
		}
		if (n < 0)
			break;
		c->in.len += (size_t)n;
		c->last_rx_ms = now_ms;
		if (conn_process(c, now_ms) < 0)
			c->closing = true;
		if ((size_t)n < READ_CHUNK)
			break;
	}
	buf_trim(&c->in, 0);
	server_mark_dirty(c);
}

static void on_accept(struct broker *b, struct listener *l, uint64_t now_ms)
{
	for (;;) {
		struct sockaddr_storage sa;
		socklen_t salen = sizeof(sa);
		int fd = accept4(l->fd, (struct sockaddr *)&sa, &salen, SOCK_NONBLOCK | SOCK_CLOEXEC);
		struct epoll_event ev = { .events = EPOLLIN };
		struct conn *c;
		int one = 1;

		if (fd < 0)
			return;
		if (b->cfg->max_connections >= 0 && b->conn_count >= (uint32_t)b->cfg->max_connections) {
			close(fd);
			continue;
		}
		c = calloc(1, sizeof(*c));
		if (c == NULL) {
			close(fd);
			continue;
		}
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		c->kind = EV_CONN;
		c->b = b;
		c->fd = fd;
		c->version = MQTT_V311;
		c->client_max_packet = MQTT_MAX_PACKET_SIZE;
		c->client_receive_max = 65535;
		c->opened_ms = c->last_rx_ms = now_ms;
		if (getnameinfo((struct sockaddr *)&sa, salen, c->peer, sizeof(c->peer), NULL, 0,
				NI_NUMERICHOST) != 0)
			snprintf(c->peer, sizeof(c->peer), "?");
		ev.data.ptr = c;
		if (epoll_ctl(b->epfd, EPOLL_CTL_ADD, fd, &ev) < 0) {
			close(fd);
			free(c);
			continue;
		}
		c->next = b->conns;
		if (b->conns != NULL)
			b->conns->prev = c;
		b->conns = c;
		b->conn_count++;
		if (b->conn_count > b->sys.clients_maximum)
			b->sys.clients_maximum = b->conn_count;
	}
}

/* Once a second: keep-alive (1.5×) and connect timeouts, then broker work. */
static void on_tick(struct broker *b, uint64_t now_ms)
{
	for (struct conn *c = b->conns; c != NULL; c = c->next) {
		if (c->closing)
			continue;
		if (!c->connected && now_ms - c->opened_ms >= b->cfg->connect_timeout_s * 1000ull) {
			c->closing = true;	/* nothing, or not a whole CONNECT, in time */
			server_mark_dirty(c);
		} else if (c->connected && c->keep_alive_s > 0 &&
			   now_ms - c->last_rx_ms >= c->keep_alive_s * 1500ull) {
			log_notice("client %s: keep alive expired", c->sess != NULL ? c->sess->client_id : "?");
			conn_disconnect(c, MQTT_RC_KEEPALIVE_TIMEOUT, "keep alive timeout"); /* [MQTT-3.1.2-22] */
		}
	}
	broker_tick(b, now_ms);
}

static int open_listener(struct broker *b, const struct moat_listener_conf *lc, struct listener **out)
{
	struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
				  .ai_flags = AI_PASSIVE | AI_NUMERICSERV };
	struct addrinfo *res, *ai;
	char port[8];
	int rc, opened = 0;

	snprintf(port, sizeof(port), "%u", lc->port);
	rc = getaddrinfo(lc->bind_address, port, &hints, &res);
	if (rc != 0) {
		log_err("listener %s:%u: %s", lc->bind_address ? lc->bind_address : "*", lc->port,
			gai_strerror(rc));
		return MOAT_E_CONFIG;
	}
	for (ai = res; ai != NULL; ai = ai->ai_next) {
		int one = 1, fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		struct listener *l;
		struct epoll_event ev = { .events = EPOLLIN };

		if (fd < 0)
			continue;
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		if (ai->ai_family == AF_INET6)
			setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
		if (bind(fd, ai->ai_addr, ai->ai_addrlen) < 0 || listen(fd, 1024) < 0) {
			log_err("listener %s:%u: %s", lc->bind_address ? lc->bind_address : "*",
				lc->port, strerror(errno));
			close(fd);
			continue;
		}
		l = calloc(1, sizeof(*l));
		if (l == NULL) {
			close(fd);
			continue;
		}
		l->kind = EV_LISTENER;
		l->fd = fd;
		ev.data.ptr = l;
		epoll_ctl(b->epfd, EPOLL_CTL_ADD, fd, &ev);
		l->next = *out;
		*out = l;
		opened++;
	}
	freeaddrinfo(res);
	if (opened == 0)
		return MOAT_E_IO;
	log_notice("listening on %s:%u%s", lc->bind_address ? lc->bind_address : "*", lc->port,
		   lc->bind_address != NULL && (strcmp(lc->bind_address, "127.0.0.1") == 0 ||
						strcmp(lc->bind_address, "::1") == 0 ||
						strcmp(lc->bind_address, "localhost") == 0)
			   ? ""
			   : " (plain TCP reachable from the network: prefer TLS, coming in a later release)");
	return MOAT_OK;
}

static int open_signals(struct broker *b)
{
	sigset_t set;
	int fd;
	struct epoll_event ev = { .events = EPOLLIN, .data.ptr = &signal_tag };

	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	signal(SIGPIPE, SIG_IGN);
	if (sigprocmask(SIG_BLOCK, &set, NULL) < 0)
		return -1;
	fd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
	if (fd >= 0)
		epoll_ctl(b->epfd, EPOLL_CTL_ADD, fd, &ev);
	return fd;
}

/* Reads pending signals; returns true when the broker must stop. */
static bool on_signal(int fd)
{
	struct signalfd_siginfo si;
	bool stop = false;

	while (read(fd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
		if (si.ssi_signo == SIGHUP)
			log_notice("SIGHUP: nothing to reload in this version");
		else
			stop = true;
	}
	return stop;
}

static void shutdown_all(struct broker *b, struct listener *ls, int sigfd)
{
	for (struct conn *c = b->conns; c != NULL; c = c->next)
		conn_disconnect(c, MQTT_RC_SERVER_SHUTTING_DOWN, "server shutting down");
	for (struct conn *c = b->conns; c != NULL; c = c->next)
		c->want_write = false;	/* best effort: one last send, then close */
	flush_dirty(b);
	while (b->conns != NULL)
		conn_destroy(b, b->conns);
	while (ls != NULL) {
		struct listener *n = ls->next;

		close(ls->fd);
		free(ls);
		ls = n;
	}
	if (sigfd >= 0)
		close(sigfd);
	close(b->epfd);
}

int server_run(struct broker *b)
{
	struct listener *listeners = NULL;
	struct epoll_event events[MAX_EVENTS];
	uint64_t next_tick;
	int sigfd, rc = MOAT_OK;

	b->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (b->epfd < 0)
		return MOAT_E_IO;
	sigfd = open_signals(b);
	for (const struct moat_listener_conf *lc = b->cfg->listeners; lc != NULL; lc = lc->next) {
		rc = open_listener(b, lc, &listeners);
		if (rc < 0) {
			shutdown_all(b, listeners, sigfd);
			return rc;
		}
	}
	if (!b->cfg->allow_anonymous)
		log_notice("allow_anonymous is false and no authentication is configured: every client will be refused (set allow_anonymous true to accept clients)");
	next_tick = clock_mono_ms();
	while (!b->stop) {
		uint64_t now = clock_mono_ms();
		int timeout = next_tick > now ? (int)(next_tick - now) : 0;
		int n = epoll_wait(b->epfd, events, MAX_EVENTS, timeout);

		now = clock_mono_ms();
		for (int i = 0; i < n; i++) {
			struct ev_tag *t = events[i].data.ptr;

			if (t->kind == EV_LISTENER) {
				on_accept(b, (struct listener *)t, now);
			} else if (t->kind == EV_SIGNAL) {
				b->stop = on_signal(sigfd);
			} else {
				struct conn *c = (struct conn *)t;

				if (c->closing)
					continue;
				if (events[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR))
					on_readable(c, now);
				if (events[i].events & EPOLLOUT)
					server_mark_dirty(c);
			}
		}
		if (now >= next_tick) {
			on_tick(b, now);
			next_tick = now + 1000;
		}
		flush_dirty(b);
	}
	log_notice("shutting down");
	shutdown_all(b, listeners, sigfd);
	return rc;
}
