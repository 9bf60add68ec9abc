/*
 * moatd's core types: refcounted messages, sessions (which outlive their
 * connections), connections, subscriptions and the broker that owns them.
 * One event loop owns all of this state; nothing here takes a lock.
 */
#ifndef MOAT_BROKER_BROKER_H
#define MOAT_BROKER_BROKER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <moat/bytes.h>

#include "base/buf.h"
#include "codec/packet.h"
#include "conf/config.h"

/* An application message, immutable once created and shared by every
 * delivery (STYLE.md §4): topic, payload and the forwarded v5 properties
 * live in the same allocation. */
struct msg {
	uint32_t refs;
	uint8_t qos;
	bool retain;
	bool has_expiry;
	uint64_t expire_at_ms;	/* monotonic; valid when has_expiry */
	struct moat_bytes topic, payload;
	struct mqtt_props props;	/* payload format, content type, response topic,
					 * correlation data, user properties; views into
					 * this allocation */
	const struct session *origin;	/* for no-local; never dereferenced */
};

/* Subscription identifiers carried by one delivery (one per matching filter). */
enum { MAX_SUB_IDS = 4 };

/* A delivery waiting in a session's queue or in flight to its client. */
struct delivery {
	struct delivery *next;
	struct msg *msg;
	uint8_t qos;		/* granted: min(publish, subscription) */
	bool retain;		/* the RETAIN flag as sent */
	bool pubrel_sent;	/* QoS 2: PUBREC received, PUBREL sent */
	uint16_t packet_id;	/* 0 until sent */
	uint8_t sub_id_count;
	uint32_t sub_ids[MAX_SUB_IDS];
};

/* One of a session's subscriptions, as the client wrote its filter
 * ("$share/<group>/" included); the options live in the index. */
struct sub {
	struct sub *next;	/* in the session's list */
	size_t len;
	uint8_t filter[];
};

struct conn;

/* Most server-to-client topic aliases kept per connection. */
enum { ALIAS_OUT_SLOTS = 64 };

struct alias_slot {
	uint32_t hash;
	size_t len;
	uint8_t *topic;
};

/* A connection's server-to-client topic aliases (alias_out.c). */
struct alias_out {
	uint16_t max;		/* 0 = the client takes none */
	uint16_t used, next_reuse;
	struct alias_slot *slots;	/* alias i is slots[i - 1] */
};

struct session {
	struct session *next;	/* in the broker's hash bucket */
	char *client_id;
	struct conn *conn;	/* NULL while offline */
	uint8_t version;
	bool expire_on_close;	/* session expiry 0 */
	uint32_t expiry_s;	/* UINT32_MAX = never */
	uint64_t expire_at_ms;	/* while offline */
	/* outbound */
	struct delivery *inflight, *inflight_tail;
	uint32_t inflight_count;
	struct delivery *queue, *queue_tail;
	uint32_t queue_count;
	uint64_t queue_bytes;
	uint16_t next_packet_id;
	/* inbound QoS 2 packet ids awaiting PUBREL */
	uint16_t *qos2_in;
	uint32_t qos2_in_count, qos2_in_cap;
	struct sub *subs;
	uint32_t sub_count;
	/* this session's slot in the broker's route while a PUBLISH is routed */
	uint64_t route_gen;
	size_t route_slot;
	/* delayed Will (v5 will delay) */
	struct msg *will;
	uint64_t will_at_ms;
};

struct broker;

struct conn {
	int kind;			/* EV_CONN: first, see server.c */
	struct conn *next, *prev;	/* all connections */
	struct conn *dirty_next;	/* output to flush at the end of the pass */
	struct broker *b;
	int fd;
	bool dirty, want_write, closing, connected;
	uint8_t version;
	char peer[48];
	struct buf in, out;
	struct session *sess;
	uint64_t last_rx_ms, opened_ms;
	uint16_t keep_alive_s;
	/* limits the client gave us */
	uint16_t client_receive_max;
	uint32_t client_max_packet;
	/* inbound topic aliases (v5): index alias-1 */
	char **aliases;
	uint16_t alias_max;
	struct alias_out alias_out;
	struct msg *will;
	uint32_t will_delay_s;
};

struct sys_counters {
	uint64_t msgs_received, msgs_sent, bytes_received, bytes_sent, publish_dropped;
	uint64_t clients_total_seen, clients_maximum;
};

/* One session's share of a PUBLISH being routed. */
struct target {
	struct session *sess;
	uint8_t qos;
	bool retain;
	uint8_t sub_id_count;
	uint32_t sub_ids[MAX_SUB_IDS];
};

/* Scratch for routing, reused by every PUBLISH; gen tells a session whether
 * its route_slot belongs to the current one. */
struct route {
	struct target *t;
	size_t n, cap;
	uint64_t gen;
};

struct broker {
	struct moat_config *cfg;
	int epfd;
	struct conn *conns;
	uint32_t conn_count;
	struct conn *dirty;
	struct session **sessions;	/* hash buckets */
	size_t session_buckets, session_count;
	struct subidx *subs;
	struct retain *retained;
	struct route route;
	struct delivery *free_deliveries;	/* recycled, see session.c */
	size_t free_delivery_count;
	struct sys_counters sys;
	uint64_t started_ms, next_sys_ms;
	int64_t started_wall_s;
	volatile int stop;
};

/* ---- msg.c ---- */
/* Copies <p>'s topic, payload and forwardable properties into one refcounted
 * message (refs = 1); <topic> overrides p->topic (alias resolution). NULL on
 * out of memory. */
struct msg *msg_create(const struct mqtt_publish *p, struct moat_bytes topic, uint64_t now_ms);
struct msg *msg_ref(struct msg *m);
void msg_unref(struct msg *m);	/* NULL is fine */
/* Whether <m>'s message expiry interval has passed at <now_ms>. */
bool msg_expired(const struct msg *m, uint64_t now_ms);

/* ---- alias_out.c ---- */
/* Prepares <a> for a client whose Topic Alias Maximum is <client_max>. */
void alias_out_init(struct alias_out *a, uint16_t client_max);
/* The alias to send <topic> under, or 0 for none (aliases off, or out of
 * memory). *<known> tells whether the client already has it (send the alias
 * with an empty topic) or it is new (send both). */
uint16_t alias_out_pick(struct alias_out *a, struct moat_bytes topic, bool *known);
/* Drops <alias> after the PUBLISH that would have taught it was not sent. */
void alias_out_forget(struct alias_out *a, uint16_t alias);
void alias_out_fini(struct alias_out *a);

/* ---- session.c ---- */
int broker_init(struct broker *b, struct moat_config *cfg);
void broker_fini(struct broker *b);
struct session *sess_find(struct broker *b, struct moat_bytes client_id);
struct session *sess_create(struct broker *b, struct moat_bytes client_id);
void sess_destroy(struct broker *b, struct session *s);
/* Delivers <m> to <s> at <qos>: QoS 0 straight to the connection (dropped
 * when offline or the output is over max_output_bytes), QoS 1/2 through the
 * bounded session queue. Borrows <m>. */
void sess_deliver(struct broker *b, struct session *s, struct msg *m, uint8_t qos, bool retain,
		  const uint32_t *sub_ids, uint8_t sub_id_count);
/* Sends what fits of <s>'s queue to its connection. */
void sess_pump(struct broker *b, struct session *s);
/* Resends in-flight messages (DUP) after the session resumes. */
void sess_resend_inflight(struct broker *b, struct session *s);
/* Handles PUBACK/PUBREC/PUBCOMP (reason <rc>) from the client. */
void sess_on_ack(struct broker *b, struct session *s, uint8_t type, uint16_t packet_id, uint8_t rc);

/* ---- route.c ---- */
/* Creates the subscription index and the retained store. */
int route_init(struct broker *b);
void route_fini(struct broker *b);
/* Routes <m> to every matching subscription (one delivery per session) and
 * stores it if retained. Borrows <m>. Returns the number of sessions it went to. */
size_t broker_publish(struct broker *b, struct msg *m);
/* Adds or replaces a subscription. Returns 0 (new), 1 (replaced an existing
 * one) or an error; <reason> gets the SUBACK code either way. */
int sess_subscribe(struct broker *b, struct session *s, struct moat_bytes filter,
		   const struct mqtt_sub_opts *opts, uint32_t sub_id, uint8_t *reason);
/* Sends the retained messages matching <filter> after a SUBSCRIBE. */
void sess_deliver_retained(struct broker *b, struct session *s, struct moat_bytes filter,
			   const struct mqtt_sub_opts *opts, uint32_t sub_id);
uint8_t sess_unsubscribe(struct broker *b, struct session *s, struct moat_bytes filter);
void sess_remove_subs(struct broker *b, struct session *s);
/* Deletes retained messages whose expiry has passed. */
void route_expire_retained(struct broker *b, uint64_t now_ms);
size_t route_sub_count(const struct broker *b);
size_t route_retained_count(const struct broker *b);

/* ---- tick.c ---- */
/* Periodic work: session expiry, delayed Wills, retained message expiry and
 * $SYS every sys_interval. */
void broker_tick(struct broker *b, uint64_t now_ms);
/* Publishes the $SYS/broker/... topics now (retained). */
void broker_publish_sys(struct broker *b, uint64_t now_ms);

/* ---- conn.c ---- */
/* Parses and handles every whole packet in c->in. Returns MOAT_OK or an error
 * after which the connection must close. */
int conn_process(struct conn *c, uint64_t now_ms);
/* Queues <n> encoded bytes for the peer and marks the connection dirty. */
int conn_send(struct conn *c, const uint8_t *p, size_t n);
/* Encodes and queues a packet; drops it (returning MOAT_E_LIMIT) when it is
 * larger than the client's maximum packet size. */
int conn_send_packet(struct conn *c, const struct mqtt_packet *p);
/* Sends one PUBLISH for delivery <d>. */
int conn_send_publish(struct conn *c, const struct delivery *d, bool dup, uint64_t now_ms);
/* Sends a v5 DISCONNECT with <rc> (no-op for 3.x) and closes after the flush. */
void conn_disconnect(struct conn *c, uint8_t rc, const char *reason);
/* The connection ends: publishes or schedules its Will, detaches or ends
 * its session. Safe to call twice. */
void conn_on_close(struct conn *c);

/* ---- server.c ---- */
/* Queues <c> for the end-of-pass flush (and close, when c->closing). */
void server_mark_dirty(struct conn *c);
/* Opens the configured listeners and runs the event loop until SIGTERM or
 * SIGINT. Returns MOAT_OK after a clean shutdown or an error at start-up. */
int server_run(struct broker *b);

#endif
