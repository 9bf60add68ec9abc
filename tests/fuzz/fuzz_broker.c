/*
 * libFuzzer target: a whole broker fed bytes from three interleaved clients
 * (MBFuzzer-style multi-party input), through conn_process() without
 * sockets. Input: records of [client index][length][bytes]. Every connection
 * that closes is torn down the way server.c does it, so sessions, wills,
 * retained messages and subscriptions cross between clients.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "broker/broker.h"

#define CLIENTS 3

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void conn_reset(struct broker *b, struct conn *c)
{
	conn_on_close(c);
	buf_fini(&c->in);
	buf_fini(&c->out);
	memset(c, 0, sizeof(*c));
	c->b = b;
	c->fd = -1;
	c->version = MQTT_V311;
	c->client_max_packet = MQTT_MAX_PACKET_SIZE;
	c->client_receive_max = 65535;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct moat_config cfg;
	static struct conn conns[CLIENTS];
	struct broker b;
	uint64_t now = 1000;
	size_t pos = 0;

	config_defaults(&cfg);
	cfg.allow_anonymous = true;
	cfg.sys_interval_s = 0;
	cfg.max_queued_messages = 64;
	if (broker_init(&b, &cfg) != 0)
		return 0;
	memset(conns, 0, sizeof(conns));
	for (int i = 0; i < CLIENTS; i++)
		conn_reset(&b, &conns[i]);
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
		if (conn_process(c, now) < 0)
			c->closing = true;
		broker_tick(&b, now);
		/* what server.c's flush does: output leaves, closing connections go */
		b.dirty = NULL;
		for (int i = 0; i < CLIENTS; i++) {
			conns[i].dirty = false;
			buf_consume(&conns[i].out, buf_used(&conns[i].out));
			if (conns[i].closing)
				conn_reset(&b, &conns[i]);
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
