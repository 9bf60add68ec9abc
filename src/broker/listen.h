/*
 * What each configured listener needs besides its sockets: its TLS server
 * context (shared by every worker, reloaded on SIGHUP) and the filters a
 * new connection on it gets (TLS, WebSocket, both, or none).
 */
#ifndef MOAT_BROKER_LISTEN_H
#define MOAT_BROKER_LISTEN_H

#include <stdint.h>

#include "conf/config.h"
#include "net/filter.h"

struct tls_server;

struct listen_ctx {
	const struct moat_listener_conf *conf;
	struct tls_server *tls;	/* NULL for plain TCP / ws */
};

/* Builds one context per configured listener into <*out> (<*count> of them).
 * A bad certificate, key, CA or CRL file stops start-up: MOAT_E_CONFIG after
 * logging which file and why. */
int listen_ctx_create(const struct moat_config *cfg, struct listen_ctx **out, unsigned *count);
void listen_ctx_destroy(struct listen_ctx *l, unsigned count);
/* Reloads every TLS listener's certificates, keys and CRLs for new
 * connections (SIGHUP); a listener whose files are bad keeps its old ones. */
void listen_ctx_reload(struct listen_ctx *l, unsigned count);
/* The filter for a new connection on <l> (NULL *<out> for plain TCP);
 * *<tls> gets the TLS layer (for the peer's certificate) or NULL. WebSocket
 * frames are not bounded beyond MQTT's own limit: the framer streams their
 * payload, and max_packet_size applies to the packets inside. MOAT_OK or
 * MOAT_E_NOMEM. */
int listen_filter(const struct listen_ctx *l, struct filter **out, struct filter **tls);

#endif
