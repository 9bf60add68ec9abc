/*
 * Stream filters: the layers between a socket and the MQTT parser (TLS,
 * WebSocket). A filter never touches a socket; it turns bytes from the peer
 * into application bytes and application bytes into bytes for the peer, so
 * the broker's event loop owns every read and write and filters stack
 * (socket <-> TLS <-> WebSocket <-> MQTT).
 *
 * A filter belongs to one connection and is used by one thread at a time.
 */
#ifndef MOAT_NET_FILTER_H
#define MOAT_NET_FILTER_H

#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"

struct filter;

struct filter_ops {
	/* Takes <n> bytes that came from the peer. Appends the application
	 * bytes they carry to <app_in> and whatever must go back to the peer
	 * (handshake, pong, alerts, close) to <wire_out>. Returns MOAT_OK;
	 * MOAT_E_CLOSED when the peer closed cleanly; another error when the
	 * connection must close (after <wire_out> is sent). <why> (may be NULL)
	 * then gets a short reason for the log, never a secret. */
	int (*input)(struct filter *f, const uint8_t *in, size_t n, struct buf *app_in,
		     struct buf *wire_out, const char **why);
	/* Encodes <n> application bytes for the peer into <wire_out>; before
	 * the handshake completes the filter keeps them and sends them after. */
	int (*output)(struct filter *f, const uint8_t *p, size_t n, struct buf *wire_out);
	/* Appends a clean close (TLS close_notify, WebSocket close frame). */
	void (*shutdown)(struct filter *f, struct buf *wire_out);
	/* Whether the handshake is over, so application bytes can flow. */
	int (*ready)(const struct filter *f);
	void (*destroy)(struct filter *f);
};

struct filter {
	const struct filter_ops *ops;
};

/* A filter running <lower> next to the socket and <upper> above it (wss =
 * filter_stack(tls, ws)): input goes through lower then upper, output
 * through upper then lower, and what upper must send to the peer goes out
 * through lower. Consumes both, also on failure; NULL when out of memory. */
struct filter *filter_stack(struct filter *lower, struct filter *upper);

static inline void filter_destroy(struct filter *f)
{
	if (f != NULL)
		f->ops->destroy(f);
}

#endif
