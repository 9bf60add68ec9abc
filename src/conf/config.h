/*
 * moatd's configuration: a mosquitto-compatible file format (one option per
 * line, '#' comments, `listener` starting a new listener). Loading stops at
 * the first bad line with "FILE:LINE: what is wrong; how to fix it".
 */
#ifndef MOAT_CONF_CONFIG_H
#define MOAT_CONF_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "conf/cluster_conf.h"

struct moat_diag {
	char msg[512];	/* "FILE:LINE: problem; fix" */
};

/* Reads the whole regular file <path> of at most <max_bytes> into *<data>
 * (NUL-terminated, *<len> bytes, the caller frees it). MOAT_OK, or
 * MOAT_E_IO / MOAT_E_CONFIG / MOAT_E_NOMEM with <d> naming the file. */
int conf_read_file(const char *path, size_t max_bytes, char **data, size_t *len, struct moat_diag *d);

/* Fills <d> with "<name>:<line>: " and the formatted rest; returns
 * MOAT_E_CONFIG, so parsers can `return conf_diag(...)`. */
int conf_diag(struct moat_diag *d, const char *name, unsigned line, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

/* Replaces the string in *<slot> (freed; may be NULL) by a copy of <value>.
 * MOAT_OK or MOAT_E_NOMEM (then *<slot> is unchanged). */
int conf_set_string(char **slot, const char *value);

struct moat_bridge_conf;

enum moat_listener_protocol {
	LISTENER_MQTT = 0,
	LISTENER_WEBSOCKETS = 1,
};

/* A listener's TLS options, mosquitto's names; TLS is on when certfile is set.
 * Strings are NULL when not given. */
struct moat_tls_conf {
	char *cafile, *capath, *certfile, *keyfile, *crlfile;
	char *tls_version;	/* NULL = TLS 1.2 and 1.3 */
	char *ciphers, *ciphers_tls13;
	bool require_certificate;
	bool use_identity_as_username, use_subject_as_username;
};

struct moat_listener_conf {
	struct moat_listener_conf *next;
	char *bind_address;	/* NULL = every address */
	uint16_t port;
	enum moat_listener_protocol protocol;
	struct moat_tls_conf tls;
	unsigned line;		/* where it was declared, for messages */
};

/* A public key that verifies tokens (auth_token_key PATH [KID]). */
struct moat_token_key {
	struct moat_token_key *next;
	char *path, *kid;	/* kid NULL = none */
};

struct moat_config {
	char *path;				/* the file it was read from; NULL = defaults */
	struct moat_listener_conf *listeners;	/* NULL => 127.0.0.1:1883 */
	bool allow_anonymous;			/* default false */
	uint16_t max_inflight_messages;		/* default 20; 0 = 65535 */
	uint32_t max_queued_messages;		/* default 1000; 0 = unlimited */
	uint64_t max_queued_bytes;		/* default 0 = unlimited */
	uint32_t max_packet_size;		/* default 0 = the protocol maximum */
	uint32_t message_size_limit;		/* payload bytes; default 0 = no limit */
	uint16_t max_keepalive;			/* default 65535 */
	int32_t max_connections;		/* default -1 = unlimited */
	bool retain_available;			/* default true */
	int64_t persistent_client_expiry_s;	/* default -1 = never */
	unsigned log_dest;			/* base/log.h masks */
	unsigned log_type;
	char *log_file;
	uint32_t sys_interval_s;		/* default 10; 0 = no $SYS */
	uint32_t threads;			/* default 0 = number of cores */
	uint32_t max_connect_packet_size;	/* before CONNACK; default 65536 */
	uint32_t connect_timeout_s;		/* default 10 */
	uint16_t max_topic_alias;		/* default 10 */
	uint32_t max_topic_levels;		/* default 200 */
	uint32_t max_subscriptions;		/* per client; default 0 = unlimited */
	uint32_t max_output_bytes;		/* per connection before QoS 0 is dropped; default 1 MiB */
	uint32_t max_inbound_qos2;		/* QoS 2 awaiting PUBREL per client; default 1000 */
	uint32_t queue_high_water;		/* back-pressure above this backlog; default 128, 0 = off */
	/* authentication and authorization (issue 4) */
	char *password_file, *acl_file;
	struct moat_token_key *token_keys;
	char *token_issuer, *token_audience;	/* NULL = not checked */
	char *token_username_claim;		/* NULL = "username", then "sub" */
	uint32_t token_leeway_s;		/* default 30 */
	uint32_t auth_fail_delay_max_ms;	/* backoff ceiling per address; default 5000 */
	/* limits */
	uint32_t max_connections_per_address;	/* default 0 = unlimited */
	uint32_t connection_rate_per_address;	/* new connections per address per 10 s; 0 = unlimited */
	uint32_t max_topic_length;		/* bytes; default 65535 */
	uint32_t max_user_properties;		/* per packet; default 64 */
	uint32_t max_user_property_bytes;	/* per packet, names and values; default 8192 */
	/* persistence (docs/persistence.md) */
	bool persistence;			/* default false, as mosquitto */
	char *persistence_location;		/* a directory; NULL = the working directory */
	uint8_t persistence_sync;		/* enum store_sync: default batch */
	uint32_t persistence_batch_ms;		/* batch window; default 2 */
	uint64_t persistence_max_bytes;		/* soft size limit; default 0 = none */
	/* the Security Center (docs/security-center.md) */
	char *sc_username;			/* the identity it connects as; NULL = none */
	char *sc_public_key;			/* its Ed25519 signing key (PEM), for $sc/revoked */
	char *topic_policy_file;		/* attribute policies per topic (JSON); NULL = none */
	/* audit log: JSON lines */
	char *audit_file;			/* NULL = none unless audit_syslog */
	bool audit_syslog;
	/* operation: shutdown, pid file, log lines */
	uint32_t shutdown_timeout_s;		/* default 5: then connections close regardless */
	char *pid_file;				/* NULL = none */
	unsigned log_format;			/* enum log_format (base/log.h); default text */
	/* metrics_listener PORT [BIND]: Prometheus /metrics and /healthz over HTTP */
	uint16_t metrics_port;			/* 0 = off (the default) */
	char *metrics_bind;			/* NULL = 127.0.0.1 */
	unsigned metrics_line;			/* where it was set, for messages */
	/* bridges: `connection` sections (conf/bridge_conf.h, docs/bridge.md) */
	struct moat_bridge_conf *bridges;	/* NULL = none */
	/* cluster over NATS JetStream (docs/cluster.md; cluster_conf.c) */
	struct moat_cluster_conf cluster;
};

/* Fills <cfg> with the defaults above (no listener: main() adds the loopback one). */
void config_defaults(struct moat_config *cfg);

/* Reads the file at <path> into <cfg> (defaults first). MOAT_OK, or
 * MOAT_E_CONFIG / MOAT_E_IO with <diag> filled. */
int config_load(struct moat_config *cfg, const char *path, struct moat_diag *diag);

/* Parses <len> bytes of configuration text named <name> (for messages). */
int config_load_buffer(struct moat_config *cfg, const char *name, const char *data, size_t len,
		       struct moat_diag *diag);

/* Appends a listener on <bind_address> (may be NULL) and <port>. MOAT_OK or MOAT_E_NOMEM. */
int config_add_listener(struct moat_config *cfg, const char *bind_address, uint16_t port);

/* Frees what <cfg> owns. */
void config_fini(struct moat_config *cfg);

#endif
