/*
 * libmoat's internals shared by client.c (the protocol state machine) and
 * thread.c (locking and the optional client thread). Not installed.
 */
#ifndef MOAT_CLIENT_CLIENT_IMPL_H
#define MOAT_CLIENT_CLIENT_IMPL_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <moat/client.h>

#include "base/buf.h"
#include "client/queue_file.h"

enum state { ST_IDLE, ST_TCP, ST_CONNACK, ST_UP, ST_RETRY, ST_DONE };

/* A PUBLISH waiting to be sent or acknowledged; <data> is the encoded packet. */
struct pend {
	struct pend *next;
	uint64_t seq; /* its add record in the queue file; 0 = not in the file */
	uint16_t packet_id;
	uint8_t qos;
	bool sent, pubrel;
	size_t len;
	uint8_t data[];
};

struct ack_wait {
	uint16_t packet_id;
	uint8_t type;	/* MQTT_SUBACK or MQTT_UNSUBACK */
	uint32_t count;
};

struct scram_client;
struct filter;
struct ssl_ctx_st;
struct tls_client_identity;

struct moat_client {
	struct moat_client_opts o;
	struct moat_callbacks cb;
	char *host, *client_id, *username, *password, *will_topic;
	uint8_t *will_payload;
	enum state st;
	int fd;
	struct addrinfo *addrs, *addr_next;
	struct buf in, out;
	struct pend *pend, *pend_tail;
	size_t pend_count, pend_bytes;
	uint32_t inflight, inflight_max;
	struct ack_wait acks[64];
	size_t ack_count;
	uint16_t *qos2_in;
	size_t qos2_in_count, qos2_in_cap;
	uint16_t next_pid;
	uint64_t last_tx_ms, last_rx_ms, ping_sent_ms, started_ms, retry_at_ms;
	uint32_t backoff_ms;
	uint32_t server_max_packet;
	bool disconnecting;
	struct scram_client *scram;	/* during a SCRAM-SHA-256 CONNECT */
	/* the durable queue (o.queue_file set): pends with a seq are in <qf> */
	struct qf qf;
	bool has_qf;
	size_t file_count; /* pends with a seq */
	uint64_t dropped;  /* MOAT_QUEUE_DROP_OLDEST victims */
	/* drain rate: a token bucket in thousandths of a message */
	size_t drain_left; /* backlog messages still to pace */
	uint64_t drain_milli, drain_at_ms;
	/* TLS (o.tls): the shared context taken at open and our certificate,
	 * if any; per connection the filter (tls_client.h). <out> then holds
	 * MQTT bytes, <rx> the records read and <wire> those to send. */
	struct ssl_ctx_st *tls_ctx;
	struct tls_client_identity *tls_id;
	char *tls_name;
	bool tls_name_given;	/* tls_server_name was set: moat_set_server keeps it */
	struct filter *tls;
	struct buf rx, wire;
	char why[256]; /* moat_last_error() */
	/* thread.c: every public call holds <lock> (recursive, so callbacks may
	 * call back in); <wake_fd> interrupts the client thread's poll */
	pthread_mutex_t lock;
	bool lock_ready, threaded, stopping;
	pthread_t thread;
	int wake_fd;
};

/* client.c: the state machine behind the public calls of the same name. */
int client_connect(struct moat_client *c);
int client_set_server(struct moat_client *c, const char *host, uint16_t port);
int client_publish(struct moat_client *c, const char *topic, const void *payload, size_t len,
		   uint8_t qos, bool retain, const struct moat_pub_props *props, uint16_t *packet_id);
int client_subscribe(struct moat_client *c, const char *filter, const struct moat_sub_options *o,
		     uint16_t *packet_id);
int client_unsubscribe(struct moat_client *c, const char *filter, uint16_t *packet_id);
int client_disconnect(struct moat_client *c, uint8_t rc);
int client_loop_once(struct moat_client *c, int timeout_ms);

/* thread.c: sets up and tears down the client's lock. */
int client_lock_init(struct moat_client *c);
void client_lock_fini(struct moat_client *c);

#endif
