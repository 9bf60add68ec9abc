/*
 * The event loops: one per worker thread, each with its own SO_REUSEPORT
 * listening sockets (the kernel spreads connections), reading, one flush per
 * connection per loop pass (coalesced writes), keep-alive and connect
 * timeouts, its inbox, and handing a connection to the worker that owns its
 * session. The main thread waits for signals and stops the workers.
 * Connections are freed only here, after every event of the pass is handled.
 */
#include "broker/broker.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <moat/error.h>

#include "base/clock.h"
#include "base/log.h"
#include "bridge/bridge.h"
#include "broker/audit.h"
#include "broker/metrics_http.h"
#include "broker/notify.h"
#include "broker/persist.h"
#include "cluster/cluster.h"

enum ev_kind { EV_LISTENER = 1, EV_CONN, EV_WAKE };

struct listener {
	int kind;	/* EV_LISTENER */
	int fd;
	bool resting;	/* out of epoll until the next tick: accept() ran out of descriptors */
	const struct listen_ctx *ctx;
	struct listener *next;
};

struct ev_tag {
	int kind;
};

#define READ_CHUNK 65536
#define MAX_EVENTS 256
/* Back-pressure pauses: the first lasts 1 ms, each next one in a row twice as
 * long, up to PAUSE_MAX_MS. */
#define PAUSE_MAX_MS 16
/* How long a closing connection may take to accept its last output (a
 * DISCONNECT behind queued messages) before it is freed without it: a peer
 * that stopped reading cannot keep its socket and buffers forever. */
#define CLOSE_LINGER_MS 5000

static struct ev_tag wake_tag = { EV_WAKE };
static struct log_limiter transport_log, accept_log, expiry_log;

void server_mark_dirty(struct conn *c)
{
	if (!c->dirty) {
		c->dirty = true;
		c->dirty_next = c->w->dirty;
		c->w->dirty = c;
	}
}

/* Takes <c> off <w>'s list of connections to flush (it is leaving <w>). */
static void dirty_unlink(struct worker *w, struct conn *c)
{
	if (!c->dirty)
		return;
	for (struct conn **pp = &w->dirty; *pp != NULL; pp = &(*pp)->dirty_next) {
		if (*pp == c) {
			*pp = c->dirty_next;
			break;
		}
	}
	c->dirty = false;
	c->dirty_next = NULL;
}

static void conn_link(struct worker *w, struct conn *c)
{
	c->w = w;
	c->prev = NULL;
	c->next = w->conns;
	if (w->conns != NULL)
		w->conns->prev = c;
	w->conns = c;
}

static void conn_unlink(struct worker *w, struct conn *c)
{
	if (c->prev != NULL)
		c->prev->next = c->next;
	else
		w->conns = c->next;
	if (c->next != NULL)
		c->next->prev = c->prev;
	c->next = c->prev = NULL;
}

/* Tells epoll what <c> waits for: input unless paused or closing, output
 * while some could not be sent. */
static void conn_arm(struct worker *w, struct conn *c)
{
	struct epoll_event ev = { .events = (c->paused || c->closing ? 0u : EPOLLIN) |
					    (c->want_write ? EPOLLOUT : 0u),
				  .data.ptr = c };

	epoll_ctl(w->epfd, EPOLL_CTL_MOD, c->fd, &ev);
}

static void paused_unlink(struct worker *w, struct conn *c)
{
	if (c->paused_prev != NULL)
		c->paused_prev->paused_next = c->paused_next;
	else
		w->paused = c->paused_next;
	if (c->paused_next != NULL)
		c->paused_next->paused_prev = c->paused_prev;
	c->paused_next = c->paused_prev = NULL;
	c->paused = false;
}

static void paused_link(struct worker *w, struct conn *c, uint64_t resume_at_ms)
{
	c->resume_at_ms = resume_at_ms;
	c->paused = true;
	c->paused_prev = NULL;
	c->paused_next = w->paused;
	if (w->paused != NULL)
		w->paused->paused_prev = c;
	w->paused = c;
	conn_arm(w, c);
}

/* Stops reading <c> while authentication decides (auth.c): until
 * c->hold_until_ms, or until server_release_hold(). */
static void hold_conn(struct worker *w, struct conn *c)
{
	paused_link(w, c, c->hold_until_ms);
}

/* Stops reading <c> for a while: one of its PUBLISHes went to a session
 * whose queue is filling (sess_congested), and waiting loses nothing where
 * reading on would make that queue drop. The rest of c->in waits too. */
static void pause_conn(struct worker *w, struct conn *c, uint64_t now_ms)
{
	c->pause_ms = (uint16_t)(c->pause_ms == 0 ? 1 : c->pause_ms * 2);
	if (c->pause_ms > PAUSE_MAX_MS)
		c->pause_ms = PAUSE_MAX_MS;
	paused_link(w, c, now_ms + c->pause_ms);
}

/* Gives <c> (not yet CONNACKed) to the worker owning its session; that
 * worker parses the CONNECT still in c->in again, and flushes what <c> has
 * to send (over TLS, records OpenSSL wrote while reading the CONNECT): <w>
 * must not flush it any more, or two threads would write and free its
 * output at once. */
static void hand_off(struct worker *w, struct conn *c)
{
	struct inbox_item item = { .conn = c };

	epoll_ctl(w->epfd, EPOLL_CTL_DEL, c->fd, NULL);
	conn_unlink(w, c);
	dirty_unlink(w, c);
	route_send(w, c->handoff_to, &item);
}

/* Handles the whole packets in c->in, hands <c> to the worker owning its
 * session when the CONNECT says so (returns true: <c> is no longer <w>'s),
 * holds it while authentication decides, and pauses it if the last PUBLISH
 * met congestion; a connection that goes on without meeting it starts over
 * from the shortest pause. */
static bool process_input(struct worker *w, struct conn *c, uint64_t now_ms)
{
	if (conn_process(c, now_ms) < 0)
		c->closing = true;
	if (c->handoff_to != NULL) {
		hand_off(w, c);
		return true;
	}
	if (c->auth_hold && !c->closing && !c->paused) {
		hold_conn(w, c);
		return false;
	}
	if (!c->throttle)
		c->pause_ms = 0;
	else if (!c->closing)
		pause_conn(w, c, now_ms);
	return false;
}

void server_release_hold(struct conn *c, uint64_t now_ms)
{
	struct worker *w = c->w;

	if (c->paused)
		paused_unlink(w, c);
	conn_arm(w, c);
	if (c->auth_hold)
		hold_conn(w, c);	/* held again: a delayed refusal */
	else if (process_input(w, c, now_ms))	/* the replayed CONNECT and what followed it */
		return;	/* its session lives on another worker */
	server_mark_dirty(c);
}

/* Reads again from the connections whose pause is over. */
static void resume_due(struct worker *w, uint64_t now_ms)
{
	struct conn *c = w->paused, *next;

	for (; c != NULL; c = next) {
		next = c->paused_next;
		if (c->resume_at_ms > now_ms)
			continue;
		paused_unlink(w, c);
		conn_arm(w, c);
		if (c->auth_hold) {
			auth_hold_expired(c);	/* a delayed refusal goes out */
		} else {
			c->throttle = false;
			if (process_input(w, c, now_ms))	/* what waited in c->in; may pause again */
				continue;
		}
		server_mark_dirty(c);
	}
}

/* When the first paused connection is due, or <deadline> if sooner. */
static uint64_t next_resume(const struct worker *w, uint64_t deadline)
{
	for (const struct conn *c = w->paused; c != NULL; c = c->paused_next)
		if (c->resume_at_ms < deadline)
			deadline = c->resume_at_ms;
	return deadline;
}

/* Closes <c>'s socket, ends its part in sessions and limits, and frees it. */
static void conn_free(struct conn *c)
{
	close(c->fd);
	conn_on_close(c);
	stat_add(&conn_stats(c)->closed, 1);
	addr_release(&c->b->addrs, c->peer, clock_mono_ms());
	atomic_fetch_sub(&c->b->conn_count, 1);
	buf_fini(&c->in);
	buf_fini(&c->out);
	buf_fini(&c->wire);
	filter_destroy(c->filter);
	free(c);
}

static void conn_destroy(struct worker *w, struct conn *c)
{
	if (c->paused)
		paused_unlink(w, c);
	persist_conn_closed(w, c);
	cluster_conn_closed(w, c);
	epoll_ctl(w->epfd, EPOLL_CTL_DEL, c->fd, NULL);
	conn_unlink(w, c);
	conn_free(c);
}

void server_drop_conn(struct conn *c)
{
	conn_free(c);
}

/* Passes what the MQTT layer queued through the filter (TLS, WebSocket),
 * adding the filter's clean close once the connection is closing. */
static void filter_output(struct conn *c)
{
	if (buf_used(&c->out) > 0) {
		if (c->filter->ops->output(c->filter, buf_head(&c->out), buf_used(&c->out), &c->wire) < 0)
			c->closing = true;
		buf_consume(&c->out, buf_used(&c->out));
		buf_trim(&c->out, 0);
	}
	if (c->closing && !c->filter_shut) {
		c->filter_shut = true;
		c->filter->ops->shutdown(c->filter, &c->wire);
	}
}

/* Writes what the socket takes; arms EPOLLOUT for the rest. */
static void conn_flush(struct worker *w, struct conn *c)
{
	struct buf *wire = &c->out;

	if (persist_hold_output(w, c))
		return;	/* an answer in it waits for the store; persist_release marks it dirty again */
	if (cluster_hold_output(w, c))
		return;	/* ... or for JetStream; cluster_release marks it dirty again */
	if (c->filter != NULL) {
		filter_output(c);
		wire = &c->wire;
	}
	while (buf_used(wire) > 0) {
		ssize_t n = send(c->fd, buf_head(wire), buf_used(wire), MSG_NOSIGNAL);

		if (n > 0) {
			buf_consume(wire, (size_t)n);
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			if (!c->want_write || c->closing) {	/* a closing one stops reading */
				c->want_write = true;
				conn_arm(w, c);
			}
			return;
		}
		c->closing = true;	/* peer gone */
		buf_consume(wire, buf_used(wire));
		return;
	}
	buf_trim(wire, 0);	/* idle connections keep no output buffer */
	if (c->want_write) {
		c->want_write = false;
		conn_arm(w, c);
	}
}

static void flush_dirty(struct worker *w)
{
	while (w->dirty != NULL) {
		struct conn *c = w->dirty;

		w->dirty = c->dirty_next;
		c->dirty = false;
		conn_flush(w, c);
		if (c->closing && !c->gated && (conn_output_pending(c) == 0 || !c->want_write))
			conn_destroy(w, c);
	}
}

/* Takes a connection handed over by another worker. */
static void take_handoff(struct worker *w, struct conn *c)
{
	struct epoll_event ev = { .events = EPOLLIN, .data.ptr = c };

	c->handoff_to = NULL;
	c->want_write = false;
	conn_link(w, c);
	if (epoll_ctl(w->epfd, EPOLL_CTL_ADD, c->fd, &ev) < 0)
		c->closing = true;
	else if (process_input(w, c, clock_mono_ms()))
		return;	/* the session moved on meanwhile */
	server_mark_dirty(c);
}

/* Reads once from <c>'s socket into c->in, through its filter if it has
 * one. Returns the bytes read, 0 at EOF, or -1 (errno) as recv does. */
static ssize_t conn_recv(struct conn *c)
{
	uint8_t raw[READ_CHUNK];
	const char *why = NULL;
	ssize_t n;
	int rc;

	if (c->filter == NULL) {
		if (buf_reserve(&c->in, READ_CHUNK) < 0) {
			errno = ENOMEM;
			return -1;
		}
		n = recv(c->fd, c->in.data + c->in.len, c->in.cap - c->in.len, 0);
		if (n > 0)
			c->in.len += (size_t)n;
		return n;
	}
	n = recv(c->fd, raw, sizeof(raw), 0);
	if (n <= 0)
		return n;
	rc = c->filter->ops->input(c->filter, raw, (size_t)n, &c->in, &c->wire, &why);
	if (buf_used(&c->wire) > 0)
		server_mark_dirty(c);	/* handshake or control bytes to send */
	if (rc < 0 && rc != MOAT_E_CLOSED) {
		bool handshake = c->tls != NULL && !c->tls->ops->ready(c->tls);
		struct audit_event e = { .event = handshake ? "auth" : "transport", .result = "deny",
					 .method = handshake ? "certificate" : NULL,
					 .reason = why != NULL ? why : moat_strerror(rc),
					 .listener = c->listener_port, .address = c->peer };

		audit_write(&e);	/* a refused certificate is an authentication decision */
	}
	if (rc < 0) {
		if (rc != MOAT_E_CLOSED && log_limiter_allow(&transport_log, 10, 10))
			log_notice("connection from %s: %s, closing", c->peer,
				   why != NULL ? why : moat_strerror(rc));
		errno = rc == MOAT_E_CLOSED ? 0 : EPROTO;
		return rc == MOAT_E_CLOSED ? 0 : -1;
	}
	return n;
}

static void on_readable(struct conn *c, uint64_t now_ms)
{
	for (int rounds = 0; rounds < 4 && !c->closing; rounds++) {
		ssize_t n = conn_recv(c);

		if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) {
			c->closing = true;	/* EOF or reset: the Will goes out in conn_on_close */
			break;
		}
		if (n < 0)
			break;
		c->last_rx_ms = now_ms;
		if (process_input(c->w, c, now_ms))
			return;	/* handed to the worker owning its session */
		if (c->paused || (size_t)n < READ_CHUNK)
			break;
	}
	buf_trim(&c->in, 0);
	server_mark_dirty(c);
}

/* Counts a new connection (clients_maximum counts CONNACKed ones, conn.c). */
static void note_connection(struct broker *b)
{
	atomic_fetch_add(&b->conn_count, 1);
}

/* A new connection of worker <w> on socket <fd>, before its CONNECT; NULL
 * on out of memory. */
static struct conn *conn_new(struct worker *w, int fd, uint64_t now_ms)
{
	struct conn *c = calloc(1, sizeof(*c));

	if (c == NULL)
		return NULL;
	c->kind = EV_CONN;
	c->b = w->b;
	c->w = w;
	c->fd = fd;
	c->version = MQTT_V311;
	c->client_max_packet = MQTT_MAX_PACKET_SIZE;
	c->client_receive_max = 65535;
	c->opened_ms = c->last_rx_ms = now_ms;
	return c;
}

int broker_connect_internal(struct broker *b, const char *peer)
{
	static atomic_uint next_worker;
	struct worker *w = &b->workers[atomic_fetch_add(&next_worker, 1) % b->nworkers];
	struct inbox_item item = { 0 };
	int fds[2], saved;

	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, fds) < 0)
		return -1;
	item.conn = conn_new(w, fds[0], clock_mono_ms());
	if (item.conn == NULL) {
		errno = ENOMEM;
		goto err_close;
	}
	snprintf(item.conn->peer, sizeof(item.conn->peer), "%s", peer);
	item.conn->internal = true;
	item.conn->auth_state = AUTH_OK;
	note_connection(b);
	/* the worker takes it as a connection handed over (take_handoff) */
	if (route_post(w, &item) < 0) {
		server_drop_conn(item.conn);
		close(fds[1]);
		errno = ENOMEM;
		return -1;
	}
	return fds[1];

err_close:
	saved = errno;
	close(fds[0]);
	close(fds[1]);
	errno = saved;
	return -1;
}

static void on_accept(struct worker *w, struct listener *l, uint64_t now_ms)
{
	struct broker *b = w->b;

	for (;;) {
		struct sockaddr_storage sa;
		socklen_t salen = sizeof(sa);
		int fd = accept4(l->fd, (struct sockaddr *)&sa, &salen, SOCK_NONBLOCK | SOCK_CLOEXEC);
		struct epoll_event ev = { .events = EPOLLIN };
		struct conn *c;
		int one = 1;

		if (fd < 0 && (errno == ECONNABORTED || errno == EINTR))
			continue;
		if (fd < 0) {
			/* EINVAL: the listener was shut down (stopping) */
			if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINVAL)
				return;
			if (log_limiter_allow(&accept_log, 10, 10))
				log_err("listener %u: accept: %s", l->ctx->conf->port, strerror(errno));
			/* EMFILE, ENFILE, ENOBUFS, ENOMEM: the pending connection stays
			 * readable, and epoll would wake this loop for it at once, again
			 * and again; the listener rests until the next tick instead */
			epoll_ctl(w->epfd, EPOLL_CTL_DEL, l->fd, NULL);
			l->resting = true;
			return;
		}
		if (b->cfg->max_connections >= 0 &&
		    atomic_load(&b->conn_count) >= (uint32_t)b->cfg->max_connections) {
			stat_add(&w->sys.clients_refused, 1);
			close(fd);
			continue;
		}
		c = conn_new(w, fd, now_ms);
		if (c == NULL) {
			close(fd);
			continue;
		}
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		c->lctx = l->ctx;
		c->listener_port = l->ctx->conf->port;
		if (getnameinfo((struct sockaddr *)&sa, salen, c->peer, sizeof(c->peer), NULL, 0,
				NI_NUMERICHOST) != 0)
			snprintf(c->peer, sizeof(c->peer), "?");
		if (listen_filter(l->ctx, &c->filter, &c->tls) < 0) {
			close(fd);
			free(c);
			continue;
		}
		if (addr_admit(&b->addrs, c->peer, now_ms, &c->refuse_why) < 0) {
			struct audit_event e = { .event = "limit", .result = "deny", .reason = c->refuse_why,
						 .listener = c->listener_port, .address = c->peer };

			audit_write(&e);
			c->refuse_rc = MQTT_RC_CONNECTION_RATE_EXCEEDED;	/* told at CONNECT */
		}
		ev.data.ptr = c;
		note_connection(b);
		stat_add(&conn_stats(c)->accepted, 1);
		if (epoll_ctl(w->epfd, EPOLL_CTL_ADD, fd, &ev) < 0) {
			conn_free(c);
			continue;
		}
		conn_link(w, c);
	}
}

/* A closing connection still here a tick later has output the peer does not
 * take: after CLOSE_LINGER_MS it is dropped, and the end-of-pass flush
 * frees the connection. */
static void expire_linger(struct conn *c, uint64_t now_ms)
{
	if (c->close_by_ms == 0) {
		c->close_by_ms = now_ms + CLOSE_LINGER_MS;
	} else if (now_ms >= c->close_by_ms) {
		buf_consume(&c->out, buf_used(&c->out));
		buf_consume(&c->wire, buf_used(&c->wire));
		c->filter_shut = true;	/* no close_notify either: nothing more goes out */
		server_mark_dirty(c);
	}
}

/* Once a second: listeners that rested accept again; keep-alive (1.5×)
 * and connect timeouts, closing connections that linger, then broker work. */
static void on_tick(struct worker *w, uint64_t now_ms)
{
	struct broker *b = w->b;

	for (struct listener *l = w->listeners; l != NULL; l = l->next) {
		struct epoll_event ev = { .events = EPOLLIN, .data.ptr = l };

		if (l->resting && epoll_ctl(w->epfd, EPOLL_CTL_ADD, l->fd, &ev) == 0)
			l->resting = false;
	}
	for (struct conn *c = w->conns; c != NULL; c = c->next) {
		if (c->closing) {
			expire_linger(c, now_ms);
			continue;
		}
		if (!c->connected && now_ms - c->opened_ms >= b->cfg->connect_timeout_s * 1000ull) {
			c->closing = true;	/* nothing, or not a whole CONNECT, in time */
			server_mark_dirty(c);
		} else if (c->connected && c->expires_s != 0 && clock_wall_s() >= c->expires_s) {
			if (log_limiter_allow(&expiry_log, 10, 10))
				log_notice("client %s: token expired", c->sess != NULL ? c->sess->client_id : "?");
			conn_disconnect(c, MQTT_RC_MAX_CONNECT_TIME, "token expired");
		} else if (c->connected && c->keep_alive_s > 0 &&
			   now_ms - c->last_rx_ms >= c->keep_alive_s * 1500ull) {
			if (log_limiter_allow(&expiry_log, 10, 10))
				log_notice("client %s: keep alive expired",
					   c->sess != NULL ? c->sess->client_id : "?");
			conn_disconnect(c, MQTT_RC_KEEPALIVE_TIMEOUT, "keep alive timeout"); /* [MQTT-3.1.2-22] */
		}
	}
	broker_tick(w, now_ms);
}

static bool is_loopback(const char *bind_address)
{
	return bind_address != NULL &&
	       (strcmp(bind_address, "127.0.0.1") == 0 || strcmp(bind_address, "::1") == 0 ||
		strcmp(bind_address, "localhost") == 0);
}

/* Opens <lc>'s sockets for worker <w>: SO_REUSEPORT lets every worker bind
 * the same address, and the kernel spreads new connections among them. */
static int open_listener(struct worker *w, const struct listen_ctx *ctx, struct listener **out)
{
	const struct moat_listener_conf *lc = ctx->conf;
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
		/* The first worker binds before SO_REUSEPORT is on, so a port another
		 * process serves fails here (EADDRINUSE) instead of being shared. */
		if (w->id == 0 && bind(fd, ai->ai_addr, ai->ai_addrlen) < 0) {
			log_err("listener %s:%u: %s", lc->bind_address ? lc->bind_address : "*",
				lc->port, strerror(errno));
			close(fd);
			continue;
		}
		setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one));
		if ((w->id != 0 && bind(fd, ai->ai_addr, ai->ai_addrlen) < 0) || listen(fd, 1024) < 0) {
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
		l->ctx = ctx;
		ev.data.ptr = l;
		epoll_ctl(w->epfd, EPOLL_CTL_ADD, fd, &ev);
		l->next = *out;
		*out = l;
		opened++;
	}
	freeaddrinfo(res);
	if (opened == 0)
		return MOAT_E_IO;
	if (w->id != 0)
		return MOAT_OK;	/* say it once */
	log_notice("listening on %s:%u (%s%s)", lc->bind_address ? lc->bind_address : "*", lc->port,
		   ctx->tls != NULL ? "TLS, " : "", lc->protocol == LISTENER_WEBSOCKETS ? "WebSocket" : "MQTT");
	if (ctx->tls == NULL && !is_loopback(lc->bind_address))
		log_warn("listener %u is plain TCP and reachable from the network: passwords and payloads cross it unencrypted; add certfile and keyfile (TLS) or bind it to 127.0.0.1",
			 lc->port);
	return MOAT_OK;
}

/* Blocks the stop signals in the calling thread (and the workers it starts),
 * so only the main thread's sigwaitinfo() receives them. */
static void block_signals(sigset_t *set)
{
	sigemptyset(set);
	sigaddset(set, SIGTERM);
	sigaddset(set, SIGINT);
	sigaddset(set, SIGHUP);
	signal(SIGPIPE, SIG_IGN);
	pthread_sigmask(SIG_BLOCK, set, NULL);
}

static void on_wake(struct worker *w)
{
	uint64_t n;

	while (read(w->wake_fd, &n, sizeof(n)) < 0 && errno == EINTR)
		;
	route_drain_inbox(w, take_handoff);
	persist_release(w);
	cluster_release(w);
}

/* A connection handed over while stopping: it never gets its CONNACK. */
static void drop_handoff(struct worker *w, struct conn *c)
{
	(void)w;
	server_drop_conn(c);
}

/* A worker's last passes, once the main thread has shut its listeners: v5
 * clients hear DISCONNECT 0x8B, every session goes offline (Wills go out now,
 * as mosquitto publishes the Wills of clients connected at shutdown), and
 * each connection closes once its output is written. Output still unwritten
 * after shutdown_timeout is dropped with the connection. */
static void worker_shutdown(struct worker *w)
{
	struct epoll_event events[MAX_EVENTS];
	uint64_t deadline = clock_mono_ms() + w->b->cfg->shutdown_timeout_s * 1000ull;

	for (struct listener *l = w->listeners; l != NULL; l = l->next)
		epoll_ctl(w->epfd, EPOLL_CTL_DEL, l->fd, NULL);
	for (struct conn *c = w->conns; c != NULL; c = c->next) {
		if (c->paused)
			paused_unlink(w, c);
		conn_disconnect(c, MQTT_RC_SERVER_SHUTTING_DOWN, "server shutting down");
		conn_on_close(c);	/* nothing more is sent after the DISCONNECT */
		conn_arm(w, c);		/* closing: no more input */
	}
	for (;;) {
		uint64_t now;
		int n;

		persist_submit(w);
		route_flush_outboxes(w);
		flush_dirty(w);	/* answers waiting for the store go once it is durable */
		now = clock_mono_ms();
		if (w->conns == NULL || now >= deadline)
			break;
		n = epoll_wait(w->epfd, events, MAX_EVENTS, (int)(deadline - now));
		for (int i = 0; i < n; i++) {
			struct ev_tag *t = events[i].data.ptr;

			if (t->kind == EV_WAKE) {
				uint64_t count;

				while (read(w->wake_fd, &count, sizeof(count)) < 0 && errno == EINTR)
					;
				route_drain_inbox(w, drop_handoff);
				persist_release(w);
				cluster_release(w);
			} else if (t->kind == EV_CONN) {
				server_mark_dirty((struct conn *)t);
			}
		}
	}
	while (w->conns != NULL)
		conn_destroy(w, w->conns);
	persist_submit(w);	/* sessions went offline */
	route_flush_outboxes(w);
}

static void *worker_loop(void *arg)
{
	struct worker *w = arg;
	struct broker *b = w->b;
	struct epoll_event events[MAX_EVENTS];
	uint64_t next_tick = clock_mono_ms();

	cluster_worker_started(w);	/* before the first tick: no stale Will fires */
	while (!atomic_load_explicit(&b->stop, memory_order_relaxed)) {
		uint64_t now = clock_mono_ms();
		uint64_t wake_at;

		if (worker_adopt_security(w))
			broker_recheck_subscriptions(w);
		if (worker_adopt_revocation(w))
			worker_enforce_revocation(w);
		wake_at = next_resume(w, next_tick);
		int timeout = wake_at > now ? (int)(wake_at - now) : 0;
		int n = epoll_wait(w->epfd, events, MAX_EVENTS, timeout);

		now = clock_mono_ms();
		for (int i = 0; i < n; i++) {
			struct ev_tag *t = events[i].data.ptr;

			if (t->kind == EV_LISTENER) {
				on_accept(w, (struct listener *)t, now);
			} else if (t->kind == EV_WAKE) {
				on_wake(w);
			} else {
				struct conn *c = (struct conn *)t;

				if (c->closing) {
					if (events[i].events & (EPOLLOUT | EPOLLHUP | EPOLLERR))
						server_mark_dirty(c);	/* its last output, then it is freed */
					continue;
				}
				if (c->paused && (events[i].events & (EPOLLHUP | EPOLLERR))) {
					c->closing = true;	/* reset while paused */
					server_mark_dirty(c);
					continue;
				}
				if (!c->paused && (events[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR)))
					on_readable(c, now);
				if (c->w == w && c->handoff_to == NULL && (events[i].events & EPOLLOUT))
					server_mark_dirty(c);
			}
		}
		if (now >= next_tick) {
			on_tick(w, now);
			next_tick = now + 1000;
		}
		if (w->paused != NULL)
			resume_due(w, now);
		persist_submit(w);	/* first: deliveries sent to other workers refer to its records */
		cluster_flush(w);
		route_flush_outboxes(w);
		flush_dirty(w);
	}
	worker_shutdown(w);
	return NULL;
}

/* Closes what worker_open() opened. */
static void worker_close(struct worker *w)
{
	while (w->listeners != NULL) {
		struct listener *n = w->listeners->next;

		close(w->listeners->fd);
		free(w->listeners);
		w->listeners = n;
	}
	if (w->wake_fd >= 0)
		close(w->wake_fd);
	if (w->epfd >= 0)
		close(w->epfd);
	w->wake_fd = w->epfd = -1;
}

/* Gives <w> its epoll set, its wake-up eventfd and its listening sockets. */
static int worker_open(struct worker *w)
{
	struct epoll_event ev = { .events = EPOLLIN, .data.ptr = &wake_tag };
	bool pending;
	int rc = MOAT_OK;

	w->epfd = epoll_create1(EPOLL_CLOEXEC);
	w->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (w->epfd < 0 || w->wake_fd < 0 || epoll_ctl(w->epfd, EPOLL_CTL_ADD, w->wake_fd, &ev) < 0)
		return MOAT_E_IO;
	/* items posted before the eventfd existed (a cluster's first messages)
	 * woke nobody; the lock orders this with route_post's wake */
	pthread_mutex_lock(&w->inbox_lock);
	pending = w->inbox.n > 0;
	pthread_mutex_unlock(&w->inbox_lock);
	if (pending)
		worker_wake(w);
	for (unsigned i = 0; i < w->b->nlctx && rc == MOAT_OK; i++)
		rc = open_listener(w, &w->b->lctx[i], &w->listeners);
	return rc;
}

/* Tells the service manager (notify.h); a failure is logged, once. */
static void tell_manager(const char *state)
{
	static bool told;
	int rc = notify_send(state);

	if (rc < 0 && !told) {
		told = true;
		log_warn("NOTIFY_SOCKET is set but unusable (%s); the service manager is not told about readiness",
			 rc == MOAT_E_IO ? strerror(errno) : "not an absolute path or @name");
	}
}

/* Waits for SIGTERM or SIGINT; SIGHUP reloads the log settings (on_reload),
 * the password, ACL and token files and the listeners' certificates, keys
 * and CRLs. */
static void wait_for_stop(struct broker *b, const sigset_t *set)
{
	for (;;) {
		int sig = sigwaitinfo(set, NULL);

		if (sig == SIGHUP) {
			char state[64];

			snprintf(state, sizeof(state), "RELOADING=1\nMONOTONIC_USEC=%llu",
				 (unsigned long long)clock_mono_us());
			tell_manager(state);
			log_notice("SIGHUP: reloading");
			if (b->on_reload != NULL)
				b->on_reload(b);
			listen_ctx_reload(b->lctx, b->nlctx);
			if (broker_reload_security(b) == MOAT_OK)
				for (unsigned i = 0; i < b->nworkers; i++)
					worker_wake(&b->workers[i]);	/* adopt it now, not at the next event */
			tell_manager("READY=1\nSTATUS=serving");
		} else if (sig > 0) {
			return;
		}
	}
}

/* Stops accepting at once: a listening socket shut down refuses new
 * connections (the kernel resets them) while its descriptor stays valid for
 * the worker that owns it and closes it after its loop ends. */
static void stop_listeners(struct broker *b)
{
	for (unsigned i = 0; i < b->nworkers; i++)
		for (struct listener *l = b->workers[i].listeners; l != NULL; l = l->next)
			shutdown(l->fd, SHUT_RDWR);
}

/* After the workers stopped (main thread, the only one left running the
 * broker): the delayed Wills go out too, as mosquitto sends them at shutdown
 * (except those of sessions in the store: they outlive this process and
 * keep their Will), and what workers left in one another's inboxes is
 * delivered, so that broker_shutdown_flush sees every message queued for an
 * offline session. */
static void settle(struct broker *b)
{
	for (unsigned i = 0; i < b->nworkers; i++) {
		struct worker *w = &b->workers[i];

		for (struct session *s = w->sessions; s != NULL; s = s->wnext)
			if (!atomic_load_explicit(&s->stored, memory_order_relaxed))
				sess_publish_will(w, s);
		route_flush_outboxes(w);
	}
	for (unsigned i = 0; i < b->nworkers; i++)
		route_drain_inbox(&b->workers[i], drop_handoff);
}

static bool any_certificate_login(const struct moat_config *cfg)
{
	for (const struct moat_listener_conf *l = cfg->listeners; l != NULL; l = l->next)
		if (l->tls.use_identity_as_username || l->tls.use_subject_as_username)
			return true;
	return false;
}

static int connect_local(void *arg, const char *peer)
{
	return broker_connect_internal(arg, peer);
}

/* Starts the configured bridges (none: nothing runs). */
static int start_bridges(struct broker *b)
{
	struct bridge_host host = { .connect_local = connect_local, .arg = b };

	if (b->cfg->bridges == NULL)
		return MOAT_OK;
	return bridges_start(&b->bridges, b->cfg, &host);
}

/* Starts the metrics_listener, if configured. */
static int start_metrics(struct broker *b)
{
	struct moat_diag d;
	int rc = metrics_http_start(b, &d);

	if (rc < 0)
		log_err("%s", d.msg);
	else if (b->metrics_http != NULL)
		log_notice("metrics on http://%s:%u/metrics (and /healthz)",
			   b->cfg->metrics_bind != NULL ? b->cfg->metrics_bind : "127.0.0.1",
			   b->cfg->metrics_port);
	return rc;
}

int server_run(struct broker *b)
{
	sigset_t set;
	unsigned started = 0;
	int rc = MOAT_OK;

	block_signals(&set);
	rc = listen_ctx_create(b->cfg, &b->lctx, &b->nlctx);
	for (unsigned i = 0; i < b->nworkers && rc == MOAT_OK; i++)
		rc = worker_open(&b->workers[i]);
	if (rc == MOAT_OK && !b->cfg->allow_anonymous && b->cfg->password_file == NULL &&
	    b->cfg->token_keys == NULL && !any_certificate_login(b->cfg))
		log_notice("allow_anonymous is false and no authentication is configured: every client will be refused (set allow_anonymous true, or configure password_file, auth_token_key or use_identity_as_username)");
	if (rc == MOAT_OK)
		log_notice("%u worker thread%s", b->nworkers, b->nworkers == 1 ? "" : "s");
	if (rc == MOAT_OK)
		rc = start_bridges(b);	/* before any thread reads b->bridges (stats) */
	for (; rc == MOAT_OK && started < b->nworkers; started++) {
		if (pthread_create(&b->workers[started].thread, NULL, worker_loop, &b->workers[started]) != 0)
			rc = MOAT_E_NOMEM;
	}
	if (rc == MOAT_OK)
		rc = start_metrics(b);
	if (rc == MOAT_OK && b->on_ready != NULL)
		rc = b->on_ready(b);
	if (rc == MOAT_OK) {
		tell_manager("READY=1\nSTATUS=serving");
		wait_for_stop(b, &set);
		tell_manager("STOPPING=1\nSTATUS=shutting down");
	}
	log_notice("shutting down");
	bridges_stop(b->bridges);	/* their local links close while the workers run */
	stop_listeners(b);
	atomic_store(&b->stop, true);
	for (unsigned i = 0; i < started; i++)
		worker_wake(&b->workers[i]);
	for (unsigned i = 0; i < started; i++)
		pthread_join(b->workers[i].thread, NULL);
	metrics_http_stop(b);	/* /healthz said 503 until the workers were gone */
	bridges_free(b->bridges);	/* nothing reads their counters any more */
	b->bridges = NULL;
	settle(b);
	for (unsigned i = 0; i < b->nworkers; i++)
		worker_close(&b->workers[i]);
	listen_ctx_destroy(b->lctx, b->nlctx);
	b->lctx = NULL;
	b->nlctx = 0;
	return rc;
}
