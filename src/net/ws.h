/*
 * WebSocket server (RFC 6455) as a stream filter for MQTT over WebSocket:
 * a bounded HTTP/1.1 upgrade, then binary frames whose payloads form one
 * byte stream for the MQTT parser. Any request path is accepted (as in
 * mosquitto); routing by path, Origin checks and HTTP serving are left to
 * the caller.
 */
#ifndef MOAT_NET_WS_H
#define MOAT_NET_WS_H

#include <stddef.h>
#include <stdint.h>

#include "net/filter.h"

/* Upgrade requests longer than this get 431 and the connection closes. */
#define WS_MAX_REQUEST 8192

/* A new server-side WebSocket filter, or NULL when out of memory. A data
 * frame whose payload is longer than <max_frame> bytes closes the
 * connection with 1009 (the broker passes its maximum packet size); 0 means
 * the MQTT maximum packet size (268435460). input() fails with
 * MOAT_E_PROTOCOL (bad upgrade: 400 or 426 sent), MOAT_E_LIMIT (431 sent,
 * or close 1009), MOAT_E_MALFORMED (close 1002), MOAT_E_UNSUPPORTED (text
 * frame, close 1003) or MOAT_E_CLOSED (the peer closed; close echoed). */
struct filter *ws_filter_create(uint64_t max_frame);

/* The subprotocol the client got ("mqtt" or "mqttv3.1"); NULL before the
 * upgrade or when <f> is not a WebSocket filter. */
const char *ws_filter_subprotocol(const struct filter *f);

#endif
