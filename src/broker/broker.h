/*
 * moatd's core types: refcounted messages, sessions (which outlive their
 * connections), connections, worker threads and the broker that owns them.
 *
 * Threading: each worker runs one event loop and owns its connections and the
 * sessions it created; only the owner touches a session's queues. A CONNECT
 * for a session owned elsewhere hands its connection to the owner; a message
 * for a session owned elsewhere goes to the owner's inbox (batched once per
 * loop pass, woken by an eventfd). Shared between workers, each under its own
 * lock: the session table, the subscription index and the retained store.
 * Message and session reference counts are atomic.
 */
#ifndef MOAT_BROKER_BROKER_H
#define MOAT_BROKER_BROKER_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <moat/bytes.h>

#include "base/buf.h"
#include "codec/packet.h"
#include "conf/config.h"
#include "net/filter.h"
#include "store/store.h"
#include "broker/addr_limits.h"
#include "broker/listen.h"
#include "broker/verify_pool.h"

/* An application message, immutable once created and shared by every
 * delivery (STYLE.md §4): topic, payload and the forwarded v5 properties
 * live in the same allocation. */
struct msg {
	atomic_uint refs;
	uint8_t qos;
	bool retain;
	bool has_expiry;
	uint64_t expire_at_ms;	/* monotonic; valid when has_expiry */
	bool remote;		/* from another cluster node: never exported again */
	struct moat_bytes topic, payload;
	struct mqtt_props props;	/* payload format, content type, response topic,
					 * correlation data, user properties; views into
					 * this allocation */
	const struct session *origin;	/* for no-local; never dereferenced */
	struct msg_author *author;	/* who published a retained message, when ACLs are on */
	uint64_t store_id;		/* its record in the store, shared by entries; 0 = none */
	atomic_uint store_refs;		/* entries that refer to that record */
};

/* The identity a retained message was published with, so its author's
 * right to publish is checked again whenever it is delivered later. */
struct msg_author {
	char *username, *client_id;
	char **roles;	/* NULL-terminated or NULL */
	char **attrs;	/* name, value, ..., NULL; or NULL */
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
	bool store_shared;	/* its entry refers to msg->store_id's record */
	uint32_t sub_ids[MAX_SUB_IDS];
	uint64_t store_id;	/* its entry in the store; 0 = none */
};

/* One of a session's subscriptions, as the client wrote its filter
 * ("$share/<group>/" included); the index matches with its own copy of the
 * options. */
struct sub {
	struct sub *next;	/* in the session's list */
	/* its options, for the session's cluster entry (src/cluster/snapshot.h) */
	struct mqtt_sub_opts opts;
	uint32_t sub_id;
	size_t len;
	uint8_t filter[];
};

struct conn;
struct worker;
struct security;
struct revocation;
struct auth_ctx;
struct auth_job;

/* Where one worker last routed to a session (see struct route). */
struct route_mark {
	uint64_t gen;
	size_t slot;
};

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
	struct session *wnext, *wprev;	/* in the owner's list */
	struct worker *owner;	/* set at creation, never changes */
	atomic_uint refs;	/* the table's one, plus one per inbox item */
	atomic_bool online;	/* read by other workers for shared groups */
	atomic_bool stored;	/* outlives its connection, so its state is in the store */
	bool dead;		/* ended; inbox items for it are dropped */
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
	/* QoS 1/2 deliveries queued or on their way from other workers' routes;
	 * with last_ack_ms it tells publishers to slow down (sess_congested) */
	atomic_uint backlog;
	_Atomic uint64_t last_ack_ms;	/* monotonic: last ack, or when it came online */
	uint16_t next_packet_id;
	/* inbound QoS 2 packet ids awaiting PUBREL */
	uint16_t *qos2_in;
	uint32_t qos2_in_count, qos2_in_cap;
	struct sub *subs;
	uint32_t sub_count;
	/* who last connected with it, for ACL checks while it is offline too */
	char *username;		/* NULL = anonymous */
	char **roles;		/* NULL-terminated or NULL */
	char **attrs;		/* name, value, ..., NULL; or NULL */
	/* delayed Will (v5 will delay) */
	struct msg *will;
	uint64_t will_at_ms;
	bool internal;			/* last connected as a bridge's internal link (conn.internal) */
	/* cluster (src/cluster/sessions.c): the revision of its entry in the
	 * sessions bucket this node last wrote; <cluster_moved>: another node
	 * took it over, so ending it here leaves the entry alone; <cluster_dirty>:
	 * its subscriptions changed since the entry was written */
	uint64_t cluster_rev;
	bool cluster_moved, cluster_dirty;
	bool cluster_resumed; /* its last claim resumed it from another node (the entry says so) */
	/* cluster: the revision of its entry (0: none) a claim of this node's
	 * read last, when <cluster_seen> (not after a CONNECT that could not
	 * read it): an entry of another node's newer than that is a later claim */
	uint64_t cluster_seen_rev;
	bool cluster_seen;
	/* cluster: restored from the store and not yet settled against the
	 * sessions bucket (nor claimed by its client's CONNECT); its delayed
	 * Will is held aside (sessions.c) until then */
	bool restored_unsettled;
	struct route_mark marks[];	/* one per worker */
};

struct broker;

struct conn {
	int kind;			/* EV_CONN: first, see server.c */
	struct conn *next, *prev;	/* all connections */
	struct conn *dirty_next;	/* output to flush at the end of the pass */
	struct broker *b;
	struct worker *w;		/* the worker whose loop runs it */
	struct worker *handoff_to;	/* set when the session's owner must take it */
	int fd;
	bool dirty, want_write, closing, connected;
	bool filter_shut;		/* the filter's clean close is queued */
	uint8_t version;
	char peer[48];
	struct buf in, out;		/* MQTT bytes */
	struct filter *filter;		/* TLS and/or WebSocket; NULL for plain TCP */
	struct buf wire;		/* bytes for the socket when there is a filter */
	struct session *sess;
	uint64_t last_rx_ms, opened_ms;
	uint64_t close_by_ms;		/* closing, output stuck: freed then regardless (server.c) */
	uint16_t keep_alive_s;
	/* limits the client gave us */
	uint16_t client_receive_max;
	uint32_t client_max_packet;
	bool no_problem_info;		/* Request Problem Information 0 */
	/* inbound topic aliases (v5): index alias-1 */
	char **aliases;
	uint16_t alias_max;
	struct alias_out alias_out;
	struct msg *will;
	uint32_t will_delay_s;
	/* authentication (auth.c) */
	const struct listen_ctx *lctx;	/* its listener */
	struct filter *tls;		/* the TLS layer inside filter, or NULL */
	uint16_t listener_port;
	uint8_t auth_state;		/* enum auth_state */
	bool auth_jwt, auth_scram;	/* the CONNECT's enhanced authentication method */
	bool auth_hold;			/* stop reading until hold_until_ms or the job's answer */
	bool replay_connect;		/* authenticated: the kept CONNECT goes through again */
	uint64_t hold_until_ms;
	struct auth_ctx *auth;		/* an exchange in progress; NULL otherwise */
	char *username;			/* authenticated identity; NULL = anonymous */
	char *jti;			/* the token's id, for revocation; NULL = none */
	char **roles;			/* from a token; NULL-terminated or NULL */
	char **attrs;			/* from a token: name, value, ..., NULL; or NULL */
	int64_t expires_s;		/* token expiry (wall clock); 0 = none */
	uint8_t refuse_rc;		/* non-zero: refuse the CONNECT (limit hit at accept) */
	const char *refuse_why;
	/* back-pressure: a PUBLISH met a congested session (conn.c), so reading
	 * pauses until resume_at_ms (server.c) */
	bool throttle, paused;
	uint16_t pause_ms;
	uint64_t resume_at_ms;
	struct conn *paused_next, *paused_prev;
	/* persistence: the output waits until the store's ticket <gate> is durable */
	bool gated;
	uint64_t gate;
	struct conn *gated_next;
	/* bridges (docs/bridge.md): <bridge> = its CONNECT said so (try_private,
	 * or a local bridge link): its subscriptions get no-local and
	 * retain-as-published; <internal> = a bridge's link inside this broker
	 * (broker_connect_internal, server.c): authenticated, above the ACL (not
	 * the $sc/ rules), its session closed to other clients (conn.c) */
	bool bridge, internal;
	/* cluster: the output waits until JetStream stored ticket <cluster_gate>
	 * (cluster.h); its own tickets are among cluster_gate_from..cluster_gate */
	uint64_t cluster_gate, cluster_gate_from;
	bool cluster_held;
	struct conn *cluster_held_next;
};

struct sys_load;
struct http_server;
struct bridge_set;
struct cluster;

/* Bytes waiting to be written to <c>'s peer. */
static inline size_t conn_output_pending(const struct conn *c)
{
	return buf_used(&c->out) + buf_used(&c->wire);
}

enum auth_state {
	AUTH_NONE = 0,		/* nothing decided yet */
	AUTH_PENDING,		/* a verification job is out, or a refusal is being delayed */
	AUTH_CONTINUE,		/* enhanced authentication: waiting for the client's AUTH */
	AUTH_OK,		/* authenticated: a CONNECT may go on */
};

/* One listener's traffic as one worker saw it (see struct sys_counters).
 * msgs_* and pub_bytes_* count PUBLISH packets and their payload bytes by
 * QoS; pkts_* and bytes_* count every MQTT packet and its bytes. */
struct listener_counters {
	_Atomic uint64_t accepted, closed;	/* sockets */
	_Atomic uint64_t msgs_in[3], msgs_out[3], pub_bytes_in[3], pub_bytes_out[3];
	_Atomic uint64_t pkts_in, pkts_out, bytes_in, bytes_out;
};

/* One worker's counters: written by that worker only, read by whoever sums
 * them ($SYS on worker 0, /metrics on the HTTP thread; relaxed atomics, see
 * stat_add). Gauges (queued_*, inflight_*, shared_subs) are kept as running
 * sums of the changes this worker made, so a worker's share may wrap below
 * zero; only their sum over every worker is meaningful. */
struct sys_counters {
	_Atomic uint64_t publish_dropped, publish_refused, clients_refused, clients_expired;
	_Atomic uint64_t connects;	/* CONNECTs accepted (CONNACK 0) */
	_Atomic uint64_t queued_msgs, queued_bytes, inflight_msgs, inflight_bytes, shared_subs;
	/* one per configured listener, then one for connections without a
	 * listener (tests that drive conn_process directly) */
	struct listener_counters *listeners;
};

/* Adds to a counter only its worker writes; no locked instruction needed. */
static inline void stat_add(_Atomic uint64_t *c, uint64_t n)
{
	atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + n,
			      memory_order_relaxed);
}

/* Subtracts from a gauge only its worker writes (modulo 2^64, see struct sys_counters). */
static inline void stat_sub(_Atomic uint64_t *c, uint64_t n)
{
	stat_add(c, (uint64_t)0 - n);
}

/* One session's share of a PUBLISH being routed. */
struct target {
	struct session *sess;
	uint8_t qos;
	bool retain;
	uint8_t sub_id_count;
	uint32_t sub_ids[MAX_SUB_IDS];
	uint64_t store_id;	/* the entry persist_route wrote; 0 = none */
};

/* A worker's scratch for routing, reused by every PUBLISH; a session's
 * marks[worker id] tells whether its slot belongs to the current gen. */
struct route {
	struct target *t;
	size_t n, cap;
	uint64_t gen;
};

/* Work one worker sends another: a delivery for a session it owns, or a
 * connection whose session it owns. */
struct inbox_item {
	struct session *sess;	/* holds a reference; NULL for a handoff */
	struct msg *msg;	/* holds a reference */
	struct conn *conn;	/* handoff */
	/* sess, conn and job NULL: a message from another cluster node
	 * (cluster.h), routed, or only stored as retained when <retain> */
	struct auth_job *job;	/* a finished verification for a connection of this worker */
	uint8_t qos;
	bool retain;
	uint8_t sub_id_count;
	uint32_t sub_ids[MAX_SUB_IDS];
	uint64_t store_id;	/* the delivery's entry in the store; 0 = none */
	void *cluster_ack;	/* a remote message's NATS message, acknowledged once routed */
	struct moat_bytes share;	/* cluster: deliver only to one member of this
					 * "$share/<group>/<filter>" (src/cluster/share.c) */
};

struct item_list {
	struct inbox_item *v;
	size_t n, cap;
};

struct listener;

struct worker {
	struct broker *b;
	unsigned id;
	pthread_t thread;
	int epfd, wake_fd;
	struct listener *listeners;
	struct conn *conns;
	struct conn *dirty;
	struct conn *paused;	/* not read until their resume time */
	struct session *sessions;	/* owned */
	struct route route;
	struct security *security;	/* this worker's reference to the current set */
	unsigned security_gen;
	struct revocation *revoked;	/* this worker's reference to the current list, or NULL */
	unsigned revocation_gen;
	struct delivery *free_deliveries;	/* recycled, see session.c */
	size_t free_delivery_count;
	struct sys_counters sys;
	/* persistence (persist.c): this pass's writes, scratch for records, and
	 * the connections whose output waits for the store */
	struct store_batch batch;
	struct buf rec_key, rec_val;
	uint64_t pass_ticket;
	struct conn *gated;
	/* items for this worker; outbox[i] collects items for worker i during a pass */
	pthread_mutex_t inbox_lock;
	struct item_list inbox;
	struct item_list *outbox;
	bool outbox_used;
};

struct broker {
	struct moat_config *cfg;
	struct listen_ctx *lctx;	/* one per configured listener (listen.c) */
	unsigned nlctx;
	struct addr_limits addrs;
	struct verify_pool pool;
	/* the current password/ACL/token set; workers adopt it when gen changes */
	pthread_mutex_t security_lock;
	struct security *security;
	atomic_uint security_gen;
	struct worker *workers;
	unsigned nworkers;
	pthread_mutex_t table_lock;	/* sessions, session_count */
	struct session **sessions;	/* hash buckets */
	size_t session_buckets, session_count;
	struct subidx *subs;
	struct retain *retained;
	atomic_uint conn_count, clients_maximum;
	_Atomic uint64_t auth_failures, acl_denials;	/* for $SYS */
	_Atomic uint64_t clients_total_seen;
	atomic_uint clients_connected;	/* connections with a session attached */
	unsigned nstat_listeners;	/* configured listeners when counting began */
	struct sys_load *load;		/* $SYS load averages; worker 0 only */
	struct http_server *metrics_http;	/* the metrics_listener, or NULL */
	_Atomic uint64_t heap_maximum;	/* the most heap seen by a snapshot */
	uint64_t started_ms, next_sys_ms;
	int64_t started_wall_s;
	atomic_bool stop;
	/* the Security Center's revocation list ($sc/revoked; sc_revocation.c) */
	bool has_sc_pub;
	uint8_t sc_pub[32];		/* sc_public_key, Ed25519 */
	pthread_mutex_t revocation_lock;
	struct revocation *revoked;	/* NULL until a list arrives */
	atomic_uint revocation_gen;
	struct cluster *cluster;	/* NULL = a single node (cluster.h) */
	struct store *store;		/* NULL when persistence is off */
	_Atomic uint64_t store_next_id;	/* ids of stored messages and entries */
	/* main.c's steps, run on the main thread by server_run; NULL = none.
	 * on_ready: every listener is open and every worker runs (pid file,
	 * daemon readiness); an error stops the broker. on_reload: SIGHUP, before
	 * the security files and certificates are reloaded (log settings). */
	int (*on_ready)(struct broker *b);
	void (*on_reload)(struct broker *b);
	/* bridges (src/bridge/): started after the workers, stopped before them */
	struct bridge_set *bridges;	/* NULL = none configured */
};

/* The counters of <c>'s listener kept by <c>'s worker; for the worker that
 * runs <c> only. */
static inline struct listener_counters *conn_stats(const struct conn *c)
{
	const struct broker *b = c->b;
	size_t i = b->nstat_listeners;

	if (c->lctx != NULL && b->lctx != NULL && c->lctx >= b->lctx &&
	    (size_t)(c->lctx - b->lctx) < b->nstat_listeners)
		i = (size_t)(c->lctx - b->lctx);
	return &c->w->sys.listeners[i];
}

/* ---- server.c: bridges' internal links ---- */
/* Opens a connection into <b> that never leaves the process: one end of a
 * socketpair becomes an authenticated, ACL-exempt connection of a worker
 * (peer name <peer>, for logs), the other end is returned for an MQTT
 * client to drive. Any thread, once the workers run. The descriptor (the
 * caller closes it), or -1 with errno set. */
int broker_connect_internal(struct broker *b, const char *peer);

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

/* ---- workers.c ---- */
/* Sets up the broker's shared state and <cfg->threads> workers (at least
 * one); server_run() starts their loops. */
int broker_init(struct broker *b, struct moat_config *cfg);
/* Frees everything; every worker thread must have stopped. */
void broker_fini(struct broker *b);
/* Destroys the NATS messages (cluster acknowledgements) of the items waiting
 * in every worker's inbox and outboxes, leaving the items: the cluster
 * stops (cluster.c) and NATS must free them while it still can. JetStream
 * sends those messages again. */
void broker_forget_cluster_acks(struct broker *b);
/* Loads the password, ACL and token files again (SIGHUP) and makes the new
 * set current; workers adopt it at their next loop pass. On error the old
 * set stays. From the main thread. */
int broker_reload_security(struct broker *b);
/* Takes the current set if it changed since <w> last looked; true if so. */
bool worker_adopt_security(struct worker *w);
/* Shutdown: every worker has stopped and every connection is closed (Wills
 * published, delayed Wills of sessions not in the store too, deliveries
 * between workers made); nothing has been freed yet: the workers' last
 * writes go to the store, which is flushed and closed. Main thread, after
 * server_run, before broker_fini. */
void broker_shutdown_flush(struct broker *b);

/* ---- session.c ---- */
/* The session of <client_id>, created for worker <w> when there is none
 * (*<created> then true). The result may belong to another worker: only its
 * owner may use it. NULL on out of memory. */
struct session *sess_claim(struct worker *w, struct moat_bytes client_id, bool *created);
/* Ends <s> (its owner <w> only): publishes a pending Will, drops its
 * subscriptions and messages, and frees it once no inbox item holds it. */
void sess_destroy(struct worker *w, struct session *s);
/* The session of <client_id>, or NULL. */
struct session *sess_find(struct broker *b, struct moat_bytes client_id);
/* The same with a reference the caller drops (sess_unref): for other threads. */
struct session *sess_find_ref(struct broker *b, struct moat_bytes client_id);
/* Records inbound QoS 2 <packet_id> as awaiting PUBREL. MOAT_OK or MOAT_E_NOMEM. */
int sess_qos2_in_add(struct session *s, uint16_t packet_id);
/* Puts a delivery read back from the store at the end of <s>'s in-flight
 * window (<packet_id> != 0) or queue; takes a reference to <m>. MOAT_OK or
 * MOAT_E_NOMEM. */
int sess_restore_delivery(struct worker *w, struct session *s, struct msg *m,
			  const struct delivery *fields);
/* Clears <s> for a clean start, as if it had been destroyed and recreated. */
void sess_reset(struct worker *w, struct session *s);
/* Publishes <s>'s delayed Will now, if it has one and may still publish it. */
void sess_publish_will(struct worker *w, struct session *s);
void sess_unref(struct session *s);
/* Delivers <m> to <s>, which <w> owns, at <qos>: QoS 0 straight to the
 * connection (dropped when offline or the output is over max_output_bytes),
 * QoS 1/2 through the bounded session queue. Borrows <m>. <store_id> is the
 * entry persist_route wrote for this delivery (0 = none). */
void sess_deliver(struct worker *w, struct session *s, struct msg *m, uint8_t qos, bool retain,
		  const uint32_t *sub_ids, uint8_t sub_id_count, uint64_t store_id);
/* Sends what fits of <s>'s queue to its connection. */
void sess_pump(struct worker *w, struct session *s);
/* Resends in-flight messages (DUP) after the session resumes. */
void sess_resend_inflight(struct worker *w, struct session *s);
/* Whether <s> is online, acknowledging and holding more QoS 1/2 messages
 * than queue_high_water (at most half of max_queued_messages): publishers to
 * it pause rather than see its queue overflow. A session that acknowledged
 * nothing for BACKLOG_STUCK_MS is not waited for. */
enum { BACKLOG_STUCK_MS = 1000 };
bool sess_congested(const struct moat_config *cfg, struct session *s, uint64_t now_ms);
/* Handles PUBACK/PUBREC/PUBCOMP (reason <rc>) from the client. */
void sess_on_ack(struct worker *w, struct session *s, uint8_t type, uint16_t packet_id, uint8_t rc);

/* ---- route.c ---- */
/* Creates the subscription index and the retained store. */
int route_init(struct broker *b);
void route_fini(struct broker *b);
/* Routes <m> from worker <w> to every matching subscription (one delivery
 * per session: directly for sessions <w> owns, through the owner's inbox for
 * the others) and stores it if retained. Borrows <m>. Returns the number of
 * sessions it went to; *<congested> (when not NULL) tells whether a QoS 1/2
 * delivery went to a congested session, so its publisher should slow down. */
size_t broker_publish(struct worker *w, struct msg *m, bool *congested);
/* Hands <item> (its references included) to worker <to>: now when <to> is
 * <from>, else at the end of <from>'s loop pass (route_flush_outboxes). */
void route_send(struct worker *from, struct worker *to, const struct inbox_item *item);
/* Puts <item> straight into <to>'s inbox and wakes it: for threads that are
 * not workers (the verification pool). MOAT_OK or MOAT_E_NOMEM. */
int route_post(struct worker *to, const struct inbox_item *item);
/* Wakes worker <to>'s loop (its eventfd). Any thread. */
void worker_wake(struct worker *to);
/* Moves every item collected this pass to its worker's inbox and wakes it. */
void route_flush_outboxes(struct worker *w);
/* Takes this worker's inbox; deliveries are made, connections returned via
 * <on_handoff>. */
void route_drain_inbox(struct worker *w, void (*on_handoff)(struct worker *w, struct conn *c));
/* Adds or replaces a subscription. Returns 0 (new), 1 (replaced an existing
 * one) or an error; <reason> gets the SUBACK code either way. */
int sess_subscribe(struct broker *b, struct session *s, struct moat_bytes filter,
		   const struct mqtt_sub_opts *opts, uint32_t sub_id, uint8_t *reason);
/* Sends the retained messages matching <filter> after a SUBSCRIBE. */
void sess_deliver_retained(struct worker *w, struct session *s, struct moat_bytes filter,
			   const struct mqtt_sub_opts *opts, uint32_t sub_id);
uint8_t sess_unsubscribe(struct broker *b, struct session *s, struct moat_bytes filter);
void sess_remove_subs(struct broker *b, struct session *s);
/* Deletes retained messages whose expiry has passed (worker <w>'s batch
 * deletes their records). */
void route_expire_retained(struct worker *w, uint64_t now_ms);
size_t route_sub_count(const struct broker *b);
size_t route_retained_count(const struct broker *b);

/* ---- tick.c ---- */
/* Periodic work of worker <w>: expiry of the sessions it owns and their
 * delayed Wills; worker 0 also expires retained messages and publishes $SYS
 * every sys_interval. */
void broker_tick(struct worker *w, uint64_t now_ms);
/* Publishes the $SYS/broker/... topics now (retained). */
void broker_publish_sys(struct worker *w, uint64_t now_ms);

/* ---- sc_revocation.c ---- */
/* Loads cfg->sc_public_key (when set). MOAT_OK or MOAT_E_CONFIG with <err>. */
int broker_load_sc_key(struct broker *b, char *err, size_t errlen);
/* A PUBLISH on $sc/revoked (from the Security Center, sc_topics.c): verifies
 * and installs the list; workers enforce it at once. MOAT_OK, or an error
 * with <why> (the message is then refused, neither routed nor retained). */
int revocation_receive(struct worker *w, struct moat_bytes payload, const char **why);
/* A message of another cluster node (routed or a retained-bucket update):
 * when it is $sc/revoked, installs the list as revocation_receive does. The
 * list is signed by the Security Center, so NATS need not be trusted for it;
 * the same list arriving twice (routed and retained) is not news. */
void revocation_from_cluster(struct worker *w, const struct msg *m);
/* At start-up: installs the retained $sc/revoked the store gave back. */
void broker_restore_revocation(struct broker *b);
/* Takes the current list if it changed since <w> last looked; true if so. */
bool worker_adopt_revocation(struct worker *w);
/* Disconnects <w>'s revoked clients and ends their sessions, offline ones too. */
void worker_enforce_revocation(struct worker *w);
/* Why <c> (as <client_id>) is revoked, or NULL. */
const char *revoked_conn(const struct conn *c, const char *client_id);

/* ---- auth.c ---- */
/* Authenticates the CONNECT <k> (whose bytes are <raw>) of <c>, for client
 * id <client_id>. MOAT_OK: go on (c->username set, or anonymous allowed).
 * MOAT_E_AGAIN: the answer comes later (a password check in the pool, or a
 * refusal delayed per address); <c> is held (c->auth_hold) and the CONNECT
 * is replayed once it is authenticated. Another error: refused (CONNACK
 * sent, closing). */
int auth_connect(struct conn *c, const struct mqtt_connect *k, struct moat_bytes client_id,
		 struct moat_bytes raw, uint64_t now_ms);
/* Handles an AUTH packet during enhanced authentication (before CONNACK).
 * MOAT_OK (authenticated: c->replay_connect set, or still going), or an
 * error/refusal as auth_connect. */
int auth_on_packet(struct conn *c, const struct mqtt_auth *p, uint64_t now_ms);
/* Puts the kept CONNECT back in front of c->in. MOAT_OK or MOAT_E_NOMEM. */
int auth_replay_connect(struct conn *c);
/* Handles an AUTH packet after CONNACK: MQTT 5 re-authentication (0x19)
 * with a fresh token for connections that authenticated with moat-jwt;
 * the identity (roles, attributes, expiry) is replaced, answered AUTH 0x00.
 * Anything else, a failed token or another user: DISCONNECT (0x82 / 0x87)
 * and an error. */
int auth_reauthenticate(struct conn *c, const struct mqtt_auth *p);
/* Adds what the CONNACK of an enhanced authentication carries. */
void auth_connack_props(struct conn *c, struct mqtt_props *ack);
/* A password check came back to <w>, the worker of its connection. */
void auth_job_returned(struct worker *w, struct auth_job *job);
/* The client id an authentication that kept the CONNECT audited (the one
 * assigned to an empty id), or NULL. */
const char *auth_assigned_client_id(const struct conn *c);
/* <c>'s hold ended (its refusal delay): sends the refusal. */
void auth_hold_expired(struct conn *c);
/* The CONNACK went out: what only authentication needed is freed. */
void auth_connected(struct conn *c);
/* <c> closes: drops its identity and cancels a pending check. */
void auth_conn_closed(struct conn *c);

/* ---- authz.c ---- */
/* Whether <s>'s identity may do <access> on <topic> under <w>'s current
 * ACL; refusals go to the audit log. Only <s>'s owner may call it. */
bool authz_session(struct worker *w, const struct session *s, struct moat_bytes topic, int access);
/* Records <s>'s identity as the author of retained message <m>. MOAT_OK or MOAT_E_NOMEM. */
int authz_set_author(struct msg *m, const struct session *s);
/* Whether <m>'s author may still publish it (CVE-2018-12546); true when it
 * has no recorded author. */
bool authz_author_allowed(struct worker *w, const struct msg *m);
void authz_author_free(struct msg_author *a);	/* NULL is fine */
/* The same for connection <c> before it has a session (its Will at CONNECT). */
bool authz_conn(struct worker *w, const struct conn *c, const char *client_id, struct moat_bytes topic,
		int access);
/* Whether <c> authenticated as the user <s> last connected as. */
bool authz_same_user(const struct session *s, const struct conn *c);
/* Gives <s> the identity <c> authenticated with (copies). MOAT_OK or MOAT_E_NOMEM. */
int authz_set_identity(struct session *s, const struct conn *c);
/* Frees <s>'s identity. */
void authz_clear_identity(struct session *s);
/* After a reload: drops the subscriptions of <w>'s sessions that the new ACL
 * no longer allows (CVE-2021-34434: rights revoked apply to durable
 * subscriptions too). */
void broker_recheck_subscriptions(struct worker *w);

/* ---- conn.c ---- */
/* Answers a CONNECT with failure <rc> (v5: and <why> as reason string),
 * closes, and returns MOAT_E_DENIED. */
int conn_refuse_connect(struct conn *c, uint8_t rc, const char *why);
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
/* A new connection took <old>'s session: DISCONNECT 0x8E (v5), audited, and
 * <old> detached from it (its Will as on any close). */
void conn_take_over(struct conn *old);
/* The connection ends: publishes or schedules its Will, detaches or ends
 * its session. Safe to call twice. */
void conn_on_close(struct conn *c);

/* ---- server.c ---- */
/* Queues <c> for the end-of-pass flush (and close, when c->closing). */
void server_mark_dirty(struct conn *c);
/* Reads <c> again after an authentication hold (or holds it again until
 * c->hold_until_ms when c->auth_hold is set again). */
void server_release_hold(struct conn *c, uint64_t now_ms);
/* Closes and frees <c>, which no worker's loop knows (it was between two
 * workers at shutdown). */
void server_drop_conn(struct conn *c);
/* Opens the configured listeners (one SO_REUSEPORT socket per worker, so the
 * kernel spreads connections) and runs every worker's loop until SIGTERM or
 * SIGINT. Tells the service manager READY=1, RELOADING=1 and STOPPING=1
 * (notify.h). At the stop signal the listeners stop accepting at once, v5
 * clients get DISCONNECT 0x8B, and each connection closes once its output is
 * written, or when shutdown_timeout ends. Returns MOAT_OK after a clean
 * shutdown or an error at start-up. */
int server_run(struct broker *b);

#endif
