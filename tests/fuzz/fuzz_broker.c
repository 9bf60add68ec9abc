/*
 * libFuzzer target: a whole broker fed bytes from three interleaved clients
 * (MBFuzzer-style multi-party input), through conn_process() without
 * sockets or threads. Input: records of [client index][length][bytes]. The
 * broker has two workers and the clients start on different ones, so
 * deliveries cross worker inboxes and CONNECTs are handed to the worker
 * owning their session, as in server.c. Every connection that closes is torn
 * down the way server.c does it, so sessions, wills, retained messages and
 * subscriptions cross between clients.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "broker/broker.h"

#define CLIENTS 3
#define WORKERS 2

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static uint64_t now;

static void conn_reset(struct broker *b, struct conn *c, unsigned worker)
{
	conn_on_close(c);
	buf_fini(&c->in);
	buf_fini(&c->out);
	memset(c, 0, sizeof(*c));
	c->b = b;
	c->w = &b->workers[worker];
	c->fd = -1;
	c->version = MQTT_V311;
	c->client_max_packet = MQTT_MAX_PACKET_SIZE;
	c->client_receive_max = 65535;
}

/* What server.c's take_handoff does, minus epoll. */
static void take_handoff(struct worker *w, struct conn *c)
{
	c->w = w;
	c->handoff_to = NULL;
	if (conn_process(c, now) < 0)
		c->closing = true;
}

/* What the end of a loop pass does for every worker: items move between
 * workers and are acted on (a handoff may start another, so repeat). */
static void settle(struct broker *b, struct conn *conns)
{
	for (int round = 0; round < 4; round++) {
		for (unsigned i = 0; i < WORKERS; i++) {
			for (int k = 0; k < CLIENTS; k++) {
				struct conn *c = &conns[k];

				if (c->w == &b->workers[i] && c->handoff_to != NULL) {
					struct inbox_item item = { .conn = c };

					route_send(c->w, c->handoff_to, &item);
				}
			}
			route_flush_outboxes(&b->workers[i]);
		}
		for (unsigned i = 0; i < WORKERS; i++)
			route_drain_inbox(&b->workers[i], take_handoff);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct moat_config cfg;
	static struct conn conns[CLIENTS];
	struct broker b;
	size_t pos = 0;

	now = 1000;
	config_defaults(&cfg);
	cfg.threads = WORKERS;
	cfg.allow_anonymous = true;
	cfg.sys_interval_s = 0;
	cfg.max_queued_messages = 64;
	if (broker_init(&b, &cfg) != 0)
		return 0;
	memset(conns, 0, sizeof(conns));
	for (int i = 0; i < CLIENTS; i++)
		conn_reset(&b, &conns[i], (unsigned)i % WORKERS);
	while (pos + 2 <= size) {
		struct conn *c = &conns[data[pos] % CLIENTS];
		size_t n = data[pos + 1];

		pos += 2;
		if (n > size - pos)
			n = size - pos;
		if (buf_append(&c->in, data + pos, n) != 0)
			break;
		pos += n;
		now += 100;
		if (c->handoff_to == NULL && conn_process(c, now) < 0)
			c->closing = true;
		for (unsigned i = 0; i < WORKERS; i++)
			broker_tick(&b.workers[i], now);
		settle(&b, conns);
		/* what server.c's flush does: output leaves, closing connections go */
		for (unsigned i = 0; i < WORKERS; i++)
			b.workers[i].dirty = NULL;
		for (int i = 0; i < CLIENTS; i++) {
			conns[i].dirty = false;
			buf_consume(&conns[i].out, buf_used(&conns[i].out));
			if (conns[i].closing)
				conn_reset(&b, &conns[i], (unsigned)i % WORKERS);
		}
	}
	for (int i = 0; i < CLIENTS; i++) {
		conn_on_close(&conns[i]);
		buf_fini(&conns[i].in);
		buf_fini(&conns[i].out);
	}
	broker_fini(&b);
	return 0;
}
