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

struct moat_diag {
	char msg[512];	/* "FILE:LINE: problem; fix" */
};

struct moat_listener_conf {
	struct moat_listener_conf *next;
	char *bind_address;	/* NULL = every address */
	uint16_t port;
	uint32_t max_connections;	/* 0 = unlimited */
};

struct moat_config {
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
