/*
 * Bridge sections of the configuration file: mosquitto's `connection NAME`
 * and the options that follow it (docs/bridge.md). Parsing only; the
 * bridges themselves run in src/bridge/. Options mosquitto has and moatd
 * does not support are refused by name with what to do instead.
 */
#ifndef MOAT_CONF_BRIDGE_CONF_H
#define MOAT_CONF_BRIDGE_CONF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "conf/config.h"

enum bridge_direction {
	BRIDGE_OUT = 0, /* mosquitto's default */
	BRIDGE_IN = 1,
	BRIDGE_BOTH = 2,
};

/* One `topic` line. With prefixes the filters are prefix + pattern (or the
 * prefix alone when the pattern is ""), as mosquitto builds them. */
struct moat_bridge_topic {
	struct moat_bridge_topic *next;
	enum bridge_direction direction;
	uint8_t qos;
	char *local_prefix, *remote_prefix; /* NULL = none ("" in the file) */
	char *local_filter, *remote_filter; /* what each side subscribes to */
	unsigned line;
};

struct moat_bridge_address {
	char *host;
	uint16_t port; /* default 1883 */
};

struct moat_bridge_conf {
	struct moat_bridge_conf *next;
	char *name;
	unsigned line; /* of its `connection` line */
	struct moat_bridge_address *addresses;
	size_t address_count;
	bool round_robin;		  /* default false: the first address is the main one */
	struct moat_bridge_topic *topics; /* in file order */
	char *remote_clientid; /* default "<name>.<hostname>" (filled by bridge_conf_check) */
	char *local_clientid;  /* default "local.<remote_clientid>" */
	char *remote_username, *remote_password;
	char *local_username;	/* the identity the bridge has on this broker; NULL = none */
	int protocol_version;	/* 4 (mqttv311, the default) or 5 (mqttv50) */
	bool cleansession;	/* default false */
	int local_cleansession; /* -1 = as cleansession */
	uint16_t keepalive_s;	/* default 60, at least 5 */
	uint32_t restart_base_s, restart_cap_s; /* default 5 and 30; equal = constant */
	bool notifications;			/* default true */
	bool notifications_local_only;		/* default false */
	char *notification_topic; /* default $SYS/broker/connection/<remote_clientid>/state */
	bool try_private;	  /* default true */
	char *cafile, *certfile, *keyfile; /* TLS when cafile is set */
	bool insecure;			   /* bridge_insecure; default false */
	bool outgoing_retain;		   /* default true */
	uint32_t max_packet_size;	   /* default 0 = no limit of our own */
	bool attempt_unsubscribe;	   /* default true */
};

/*
 * Parses one configuration line (<w>, <n> words, file <name> line <line>)
 * if it belongs to the bridge sections, adding to <*bridges>. MOAT_OK,
 * MOAT_E_NOTFOUND when <w>[0] is no bridge option (the caller goes on), or
 * MOAT_E_CONFIG / MOAT_E_NOMEM with <d> naming file and line.
 */
int bridge_conf_parse_line(struct moat_bridge_conf **bridges, const char *name, unsigned line,
			   char **w, int n, struct moat_diag *d);

/* Whole-file rules once every line is read (an address in each section,
 * unique names and client ids, TLS files together) and the defaults that
 * depend on other options. MOAT_OK or MOAT_E_CONFIG / MOAT_E_NOMEM. */
int bridge_conf_check(struct moat_bridge_conf *bridges, const char *name, struct moat_diag *d);

/* Whether <id> (<len> bytes) is the local client id of one of <bridges>:
 * that session belongs to the bridge's internal link alone. */
bool bridge_conf_is_local_id(const struct moat_bridge_conf *bridges, const void *id, size_t len);

/* Frees the list; NULL is fine. */
void bridge_conf_free(struct moat_bridge_conf *bridges);

#endif
