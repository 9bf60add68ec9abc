/*
 * libmoat's public entry points that change a client, each under the
 * client's recursive lock, and the optional client thread
 * (moat_loop_start/moat_loop_stop). The thread polls the socket and an
 * eventfd; a call from another thread that leaves output wakes it, so a
 * publish goes out at once instead of at the next timer.
 */
#include <errno.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <moat/error.h>

#include "client/client_impl.h"

int client_lock_init(struct moat_client *c)
{
	pthread_mutexattr_t attr;
	int rc;

	c->wake_fd = -1;
	if (pthread_mutexattr_init(&attr) != 0)
		return MOAT_E_NOMEM;
	pthread_mutexattr_settype(&attr, PTHREAD_MUTEX_RECURSIVE);
	rc = pthread_mutex_init(&c->lock, &attr);
	pthread_mutexattr_destroy(&attr);
	if (rc != 0)
		return MOAT_E_NOMEM;
	c->lock_ready = true;
	return MOAT_OK;
}

void client_lock_fini(struct moat_client *c)
{
	if (c->lock_ready)
		pthread_mutex_destroy(&c->lock);
	c->lock_ready = false;
}

static void lock(struct moat_client *c)
{
	pthread_mutex_lock(&c->lock);
}

/* Unlocks; a caller other than the client thread wakes it so new output or
 * a changed state is acted on now. */
static void unlock(struct moat_client *c)
{
	bool wake = c->threaded && !pthread_equal(pthread_self(), c->thread);

	pthread_mutex_unlock(&c->lock);
	if (wake) {
		uint64_t one = 1;

		while (write(c->wake_fd, &one, sizeof(one)) < 0 && errno == EINTR)
			;
	}
}

int moat_connect(struct moat_client *c)
{
	int rc;

	lock(c);
	rc = client_connect(c);
	unlock(c);
	return rc;
}

int moat_set_server(struct moat_client *c, const char *host, uint16_t port)
{
	int rc;

	lock(c);
	rc = client_set_server(c, host, port);
	unlock(c);
	return rc;
}

int moat_publish(struct moat_client *c, const char *topic, const void *payload, size_t len,
		 uint8_t qos, bool retain, const struct moat_pub_props *props, uint16_t *packet_id)
{
	int rc;

	lock(c);
	rc = client_publish(c, topic, payload, len, qos, retain, props, packet_id);
	unlock(c);
	return rc;
}

int moat_subscribe(struct moat_client *c, const char *filter, const struct moat_sub_options *o,
		   uint16_t *packet_id)
{
	int rc;

	lock(c);
	rc = client_subscribe(c, filter, o, packet_id);
	unlock(c);
	return rc;
}

int moat_unsubscribe(struct moat_client *c, const char *filter, uint16_t *packet_id)
{
	int rc;

	lock(c);
	rc = client_unsubscribe(c, filter, packet_id);
	unlock(c);
	return rc;
}

int moat_disconnect(struct moat_client *c, uint8_t rc)
{
	int ret;

	lock(c);
	ret = client_disconnect(c, rc);
	unlock(c);
	return ret;
}

bool moat_is_connected(const struct moat_client *c)
{
	struct moat_client *m = (struct moat_client *)c;	/* the lock is not state */
	bool up;

	lock(m);
	up = m->st == ST_UP;
	unlock(m);
	return up;
}

size_t moat_pending_count(const struct moat_client *c)
{
	struct moat_client *m = (struct moat_client *)c;
	size_t n;

	lock(m);
	n = m->pend_count;
	unlock(m);
	return n;
}

uint64_t moat_dropped_count(const struct moat_client *c)
{
	struct moat_client *m = (struct moat_client *)c;
	uint64_t n;

	lock(m);
	n = m->dropped;
	unlock(m);
	return n;
}

const char *moat_last_error(const struct moat_client *c, char *buf, size_t len)
{
	struct moat_client *m = (struct moat_client *)c;

	if (buf == NULL || len == 0)
		return buf;
	lock(m);
	snprintf(buf, len, "%s", m->why);
	unlock(m);
	return buf;
}

int moat_loop_once(struct moat_client *c, int timeout_ms)
{
	int rc;

	if (c->threaded)
		return MOAT_E_INVAL;	/* the client thread runs the loop */
	lock(c);
	rc = client_loop_once(c, timeout_ms);
	unlock(c);
	return rc;
}

/* Waits for the socket (as the state asks) or a wake-up, at most <timeout_ms>. */
static void wait_events(struct moat_client *c, int fd, bool want_write, int timeout_ms)
{
	struct pollfd pfd[2] = { { .fd = c->wake_fd, .events = POLLIN },
				 { .fd = fd, .events = (short)(POLLIN | (want_write ? POLLOUT : 0)) } };
	uint64_t drained;

	if (poll(pfd, fd >= 0 ? 2 : 1, timeout_ms) > 0 && (pfd[0].revents & POLLIN))
		while (read(c->wake_fd, &drained, sizeof(drained)) < 0 && errno == EINTR)
			;
}

static void *client_thread(void *arg)
{
	struct moat_client *c = arg;

	for (;;) {
		int fd, timeout;
		bool want_write, done;

		lock(c);
		if (c->stopping) {
			pthread_mutex_unlock(&c->lock);
			return NULL;
		}
		done = client_loop_once(c, 0) == MOAT_E_CLOSED;
		fd = done ? -1 : moat_socket(c);
		want_write = moat_want_write(c);
		timeout = done ? -1 : moat_next_timeout_ms(c);
		pthread_mutex_unlock(&c->lock);
		wait_events(c, fd, want_write, timeout);
	}
}

int moat_loop_start(struct moat_client *c)
{
	int rc;

	lock(c);
	if (c->threaded) {
		pthread_mutex_unlock(&c->lock);
		return MOAT_E_INVAL;
	}
	c->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (c->wake_fd < 0) {
		pthread_mutex_unlock(&c->lock);
		return MOAT_E_IO;
	}
	rc = client_connect(c);
	c->stopping = false;
	if (rc == MOAT_OK && pthread_create(&c->thread, NULL, client_thread, c) != 0)
		rc = MOAT_E_NOMEM;
	c->threaded = rc == MOAT_OK;
	if (!c->threaded) {
		close(c->wake_fd);
		c->wake_fd = -1;
	}
	pthread_mutex_unlock(&c->lock);
	return rc;
}

int moat_loop_stop(struct moat_client *c)
{
	uint64_t one = 1;

	if (!c->threaded)
		return MOAT_E_INVAL;
	if (pthread_equal(pthread_self(), c->thread))
		return MOAT_E_INVAL;	/* from a callback: would join itself */
	lock(c);
	c->stopping = true;
	pthread_mutex_unlock(&c->lock);
	while (write(c->wake_fd, &one, sizeof(one)) < 0 && errno == EINTR)
		;
	pthread_join(c->thread, NULL);
	c->threaded = false;
	close(c->wake_fd);
	c->wake_fd = -1;
	return MOAT_OK;
}
