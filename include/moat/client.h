/*
 * libmoat: an MQTT 3.1.1 / 5 client for devices and tools.
 *
 * The client runs in the caller's loop: poll moat_socket() for reading (and
 * for writing when moat_want_write()), wake at least every
 * moat_next_timeout_ms(), and call moat_loop_once(). Or call moat_loop_once()
 * with a timeout, which polls by itself. A client object is not thread-safe:
 * use it from one thread. Callbacks run inside moat_loop_once().
 *
 * Messages published while the connection is down wait in a bounded offline
 * queue and are sent, in order, when it returns; QoS 1/2 messages stay until
 * acknowledged and are resent with DUP after a reconnect. Reconnection uses
 * exponential backoff with jitter.
 *
 * With a queue file (moat_client_opts.queue_file) the QoS 1/2 part of that
 * queue is also kept on disk and survives a restart of the process or of the
 * device: see moat_client_open() and docs/client.md.
 */
#ifndef MOAT_CLIENT_H
#define MOAT_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <moat/error.h>

#ifdef __cplusplus
extern "C" {
#endif

struct moat_client;

struct moat_user_prop {
	const char *key, *value;
};

/* Optional MQTT 5 properties of a PUBLISH (ignored on 3.1.1). Zero = absent. */
struct moat_pub_props {
	bool has_message_expiry;
	uint32_t message_expiry_s;
	bool has_payload_format;
	uint8_t payload_format;		/* 0 bytes, 1 UTF-8 */
	const char *content_type;
	const char *response_topic;
	const void *correlation_data;
	size_t correlation_len;
	const struct moat_user_prop *user;
	size_t user_count;
};

/* What moat_publish() does when the offline queue is full (moat_client_opts.queue_overflow). */
enum moat_queue_overflow {
	/* Refuse the new message with MOAT_E_LIMIT (the default). */
	MOAT_QUEUE_REFUSE_NEW = 0,
	/* Make room by removing the oldest messages not yet sent on the current
	 * connection (QoS 0, 1 or 2; in flight ones are never dropped); each
	 * counts in moat_dropped_count() and gets no on_publish_done. When even
	 * that cannot make room, MOAT_E_LIMIT. */
	MOAT_QUEUE_DROP_OLDEST = 1,
};

struct moat_client_opts {
	const char *host;		/* default "localhost" */
	uint16_t port;			/* default 1883 */
	const char *client_id;		/* NULL or "": the server assigns one (clean start only) */
	const char *username, *password;
	bool scram;			/* v5: prove the password with SCRAM-SHA-256 (AUTH
					 * packets) instead of sending it */
	uint16_t keep_alive_s;		/* default 60 */
	bool clean_start;
	int version;			/* 4 (3.1.1) or 5; default 5 */
	uint32_t session_expiry_s;	/* v5 */
	uint16_t receive_max;		/* v5; 0 = not sent */
	const char *will_topic;		/* NULL = no will */
	const void *will_payload;
	size_t will_len;
	uint8_t will_qos;
	bool will_retain;
	uint32_t will_delay_s;		/* v5 */
	bool auto_reconnect;
	uint32_t reconnect_min_ms;	/* default 1000 */
	uint32_t reconnect_max_ms;	/* default 30000 */
	uint32_t connect_timeout_ms;	/* default 10000 */
	uint32_t offline_max_messages;	/* default 1000 */
	uint64_t offline_max_bytes;	/* default 1 MiB */
	/* Durable offline queue. NULL: memory only. Otherwise every QoS 1/2
	 * message is appended to this file before moat_publish() returns and
	 * stays there until acknowledged: when moat_publish returns MOAT_OK with
	 * a queue file, the message survives a reboot. A client created on the
	 * same file later (a new process) sends every unacknowledged message
	 * again, in order, with its packet id and DUP. QoS 0 is never written.
	 * Needs a fixed, non-empty client_id (the broker's session, which
	 * deduplicates resent QoS 2 messages, is keyed by it; a server-assigned
	 * id changes with each connection): refused with MOAT_E_INVAL otherwise.
	 * Use clean_start = false (v5: with a session expiry) so that QoS 2
	 * messages caught in flight by a restart are still delivered once. One
	 * process at a time: the file is locked while the client exists. */
	const char *queue_file;
	uint8_t queue_overflow; /* enum moat_queue_overflow; default REFUSE_NEW */
	/* Messages per second sent from the backlog (what was queued when a
	 * connection is accepted) until it is empty; messages published
	 * meanwhile wait behind it, so order is kept. 0 = no limit. */
	uint32_t drain_rate;
	/* TLS (docs/client.md). With <tls> the connection is TLS 1.2 or later
	 * with OpenSSL's default cipher suites, and the port defaults to 8883.
	 * The server's certificate chain is always verified, against <cafile>
	 * (PEM CA bundle; NULL = the system's CA store), and the certificate
	 * must name <tls_server_name> (NULL = host; a DNS name or an IP
	 * address), which is also sent as SNI unless it is an address.
	 * <certfile>/<keyfile> (PEM; the key unencrypted) present a client
	 * certificate for mutual TLS. <tls_insecure> skips the name check only,
	 * never the chain: for a test broker reached by an address its
	 * certificate does not name. The files are read by moat_client_open;
	 * cafile, certfile, keyfile or tls_insecure without tls: MOAT_E_INVAL.
	 * A server certificate that does not verify ends the connection with
	 * MOAT_E_DENIED and no reconnect; moat_last_error() says why. */
	bool tls;
	const char *cafile;
	const char *certfile, *keyfile;
	const char *tls_server_name;
	bool tls_insecure;
	/* Bridges (docs/bridge.md). <bridge>: mark the CONNECT as coming from a
	 * bridge by setting the top bit of its protocol level (mosquitto's
	 * try_private); brokers that know it treat the client as a bridge.
	 * <open_socket>: when set, each connection attempt calls it (with
	 * <open_socket_arg>) for an already connected stream socket instead of
	 * resolving host:port; it returns the descriptor (libmoat makes it
	 * non-blocking, owns and closes it) or -1, which counts as a failed
	 * attempt. */
	bool bridge;
	int (*open_socket)(void *arg);
	void *open_socket_arg;
};

/* A received message; every pointer is valid only during the callback. */
struct moat_message {
	const char *topic;		/* NUL-terminated copy */
	const uint8_t *payload;
	size_t payload_len;
	uint8_t qos;
	bool retain, dup;
	/* v5 */
	bool has_message_expiry;
	uint32_t message_expiry_s;
	const uint8_t *content_type, *response_topic, *correlation_data;
	size_t content_type_len, response_topic_len, correlation_len;
	const uint32_t *sub_ids;
	size_t sub_id_count;
	size_t user_count;
	const struct moat_user_prop *user;	/* user_count entries, NUL-terminated strings */
};

struct moat_callbacks {
	void *arg;
	/* CONNACK: <rc> is the v5 reason code (3.1.1 codes are mapped). */
	void (*on_connect)(void *arg, uint8_t rc, bool session_present);
	void (*on_message)(void *arg, const struct moat_message *m);
	/* A QoS 1/2 publish finished (acknowledged, or refused with rc >= 0x80).
	 * QoS 2 is settled by a successful PUBREC: its PUBCOMP reports 0 even
	 * with 0x92 (the broker had released the id already, e.g. across its
	 * restart). */
	void (*on_publish_done)(void *arg, uint16_t packet_id, uint8_t rc);
	/* SUBACK / UNSUBACK with one reason code per filter. */
	void (*on_subscribe)(void *arg, uint16_t packet_id, const uint8_t *codes, size_t n);
	void (*on_unsubscribe)(void *arg, uint16_t packet_id, const uint8_t *codes, size_t n);
	/* The connection ended: <err> is a moat_err, <rc> the server's v5 reason (0 if none). */
	void (*on_disconnect)(void *arg, int err, uint8_t rc);
	/* Optional, used instead of on_message: a QoS 1/2 message is
	 * acknowledged only when it returns MOAT_OK. Any other value ends the
	 * connection without acknowledging it (on_disconnect with MOAT_E_LIMIT),
	 * so the server sends it again on the next connection: for a receiver
	 * that must store a message before the sender may forget it. */
	int (*on_message_checked)(void *arg, const struct moat_message *m);
};

struct moat_sub_options {
	uint8_t qos;
	bool no_local, retain_as_published;
	uint8_t retain_handling;
	uint32_t sub_id;		/* v5; 0 = none */
};

/* Creates a client; copies <o>. NULL on out of memory or invalid options
 * (moat_client_open says why). */
struct moat_client *moat_client_create(const struct moat_client_opts *o, const struct moat_callbacks *cb);

/*
 * Creates a client as moat_client_create() does and, with o->queue_file,
 * opens (or creates) the file and loads its unacknowledged messages into
 * the offline queue (they count in moat_pending_count()). A damaged tail
 * (a write cut by a power loss, or a CRC mismatch) is cut off at the last
 * good record and reported in <diag> while the call still succeeds; nothing
 * before it is lost. <diag> (<diag_len> bytes, may be NULL) gets one line
 * on any error too. Returns MOAT_OK and the client in <*out>; MOAT_E_INVAL
 * (bad options, or a queue file without a fixed client_id), MOAT_E_NOMEM,
 * MOAT_E_IO (the file cannot be opened, locked because another process uses
 * it, read or repaired), MOAT_E_MALFORMED (the file is not a queue file),
 * MOAT_E_CONFIG (with tls: a CA, certificate or key file missing, unreadable
 * or wrong, or the key not matching the certificate; <diag> names it).
 */
int moat_client_open(struct moat_client **out, const struct moat_client_opts *o,
		     const struct moat_callbacks *cb, char *diag, size_t diag_len);

/* Closes the socket and frees everything; NULL is fine. */
void moat_client_destroy(struct moat_client *c);

/* Starts connecting (non-blocking). MOAT_OK, or MOAT_E_IO when the host does not resolve. */
int moat_connect(struct moat_client *c);

/* Points the next connection attempts at <host> and <port> (0 = keep the
 * port), e.g. to fail over to another server; a connection that is up
 * stays. With TLS and no tls_server_name the certificate must then name
 * <host>. MOAT_OK or MOAT_E_NOMEM. */
int moat_set_server(struct moat_client *c, const char *host, uint16_t port);

/* Publishes; QoS 0 while offline is dropped with MOAT_E_CLOSED unless the
 * connection is merely being re-established, in which case it is queued.
 * QoS 1/2 get a packet id in <*packet_id> (may be NULL). MOAT_E_LIMIT when the
 * offline queue is full (offline_max_messages or offline_max_bytes, counting
 * encoded packets) and queue_overflow cannot make room; MOAT_E_INVAL for a
 * bad topic or QoS. With a queue file, QoS 1/2 return MOAT_OK only once the
 * message is in the file and synced (fdatasync); MOAT_E_IO when that write
 * fails, and then the message is not queued at all. */
int moat_publish(struct moat_client *c, const char *topic, const void *payload, size_t len,
		 uint8_t qos, bool retain, const struct moat_pub_props *props, uint16_t *packet_id);

/* Subscribes to one filter. MOAT_E_CLOSED while not connected. */
int moat_subscribe(struct moat_client *c, const char *filter, const struct moat_sub_options *o,
		   uint16_t *packet_id);

/* Unsubscribes from one filter. */
int moat_unsubscribe(struct moat_client *c, const char *filter, uint16_t *packet_id);

/* Sends DISCONNECT (v5 reason <rc>), flushes and closes; no reconnect follows. */
int moat_disconnect(struct moat_client *c, uint8_t rc);

/* The socket to poll, or -1. */
int moat_socket(const struct moat_client *c);

/* True when there is output waiting for the socket to become writable. */
bool moat_want_write(const struct moat_client *c);

/* Milliseconds until moat_loop_once() must run again for timers (keep alive, retries). */
int moat_next_timeout_ms(const struct moat_client *c);

/* Waits up to <timeout_ms> for the socket, then reads, handles packets, writes and runs
 * timers. Returns MOAT_OK, or MOAT_E_CLOSED when the client is disconnected for good. */
int moat_loop_once(struct moat_client *c, int timeout_ms);

/* True after CONNACK accepted and before the connection ends. */
bool moat_is_connected(const struct moat_client *c);

/* Messages waiting: queued offline plus QoS 1/2 not yet acknowledged. */
size_t moat_pending_count(const struct moat_client *c);

/* Messages removed by MOAT_QUEUE_DROP_OLDEST since the client was created. */
uint64_t moat_dropped_count(const struct moat_client *c);

/* One line on why the last connection attempt failed or the last
 * connection ended ("certificate verify failed: unknown CA", "TLS error:
 * tlsv13 alert certificate required", "refused by the server (reason
 * 0x87)"), or "" when no connection has ended yet. Copied into <buf>
 * (<len> bytes, truncated, NUL-terminated); returns <buf>. Any thread;
 * inside on_disconnect it describes that disconnection. */
const char *moat_last_error(const struct moat_client *c, char *buf, size_t len);

/*
 * Runs the client on a thread of its own: starts connecting (as
 * moat_connect) and then loops until moat_loop_stop(). From then on any
 * moat_* call may come from any thread (each takes the client's lock) and
 * callbacks run on the client's thread, where they may call moat_* too.
 * moat_loop_once() is refused (MOAT_E_INVAL) while the thread runs.
 * MOAT_OK, MOAT_E_INVAL when already started, MOAT_E_IO or MOAT_E_NOMEM.
 */
int moat_loop_start(struct moat_client *c);

/* Stops and joins the client thread (moat_disconnect first for a clean
 * close). MOAT_E_INVAL when no thread runs or when called from a callback.
 * moat_client_destroy() calls it. */
int moat_loop_stop(struct moat_client *c);

#ifdef __cplusplus
}
#endif
#endif
