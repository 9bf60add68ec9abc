/*
 * Decoding and encoding of whole MQTT 3.1, 3.1.1 and 5.0 packets. Decoders
 * validate everything the specifications require of a receiver and return
 * views into the input; encoders write into the caller's buffer. No I/O,
 * clock or allocation.
 */
#ifndef MOAT_CODEC_PACKET_H
#define MOAT_CODEC_PACKET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <moat/bytes.h>

#include "codec/frame.h"
#include "codec/mqtt.h"
#include "codec/props.h"
#include "codec/rd.h"

struct mqtt_sub_opts {
	uint8_t qos;
	bool no_local;
	bool retain_as_published;
	uint8_t retain_handling;
};

struct mqtt_connect {
	uint8_t version;	/* MQTT_V31 / MQTT_V311 / MQTT_V5, from the packet */
	bool bridge;		/* the level's top bit: a bridge (mosquitto's try_private) */
	bool clean_start;
	uint16_t keep_alive_s;
	struct mqtt_props props;
	struct moat_bytes client_id;
	bool will_flag;
	uint8_t will_qos;
	bool will_retain;
	struct mqtt_props will_props;
	struct moat_bytes will_topic, will_payload;
	bool has_username, has_password;
	struct moat_bytes username, password;
};

struct mqtt_connack {
	bool session_present;
	uint8_t rc;		/* v5 reason code; converted for 3.x on the wire */
	struct mqtt_props props;
};

struct mqtt_publish {
	uint8_t qos;
	bool dup;
	bool retain;
	struct moat_bytes topic;	/* may be empty in v5 when props.topic_alias is set */
	uint16_t packet_id;		/* 0 for QoS 0 */
	struct mqtt_props props;
	struct moat_bytes payload;
};

struct mqtt_ack {	/* PUBACK, PUBREC, PUBREL, PUBCOMP */
	uint16_t packet_id;
	uint8_t rc;
	struct mqtt_props props;
};

struct mqtt_subscribe {
	uint16_t packet_id;
	struct mqtt_props props;
	struct rd entries;	/* iterate a copy with sub_next() */
};

struct mqtt_suback {
	uint16_t packet_id;
	struct mqtt_props props;
	struct moat_bytes rcs;	/* one reason code per filter */
};

struct mqtt_unsubscribe {
	uint16_t packet_id;
	struct mqtt_props props;
	struct rd entries;	/* iterate a copy with unsub_next() */
};

struct mqtt_unsuback {
	uint16_t packet_id;
	struct mqtt_props props;
	struct moat_bytes rcs;	/* v5 only */
};

struct mqtt_disconnect {
	uint8_t rc;
	struct mqtt_props props;
};

struct mqtt_auth {
	uint8_t rc;
	struct mqtt_props props;
};

struct mqtt_packet {
	uint8_t type;		/* enum mqtt_type */
	const char *why;	/* on a decode error: a short static reason */
	union {
		struct mqtt_connect connect;
		struct mqtt_connack connack;
		struct mqtt_publish publish;
		struct mqtt_ack ack;
		struct mqtt_subscribe subscribe;
		struct mqtt_suback suback;
		struct mqtt_unsubscribe unsubscribe;
		struct mqtt_unsuback unsuback;
		struct mqtt_disconnect disconnect;
		struct mqtt_auth auth;
	};
};

/* Next entry of a decoded SUBSCRIBE (iterate a copy of subscribe.entries). */
bool sub_next(struct rd *it, struct moat_bytes *filter, struct mqtt_sub_opts *opts);

/* Next filter of a decoded UNSUBSCRIBE (iterate a copy of unsubscribe.entries). */
bool unsub_next(struct rd *it, struct moat_bytes *filter);

/*
 * Decodes one whole packet whose fixed header is <f> and whose body is <body>
 * (f->rem_len bytes). <version> is the connection's protocol version (ignored
 * for CONNECT, which carries its own). Returns MOAT_OK; MOAT_E_MALFORMED
 * (reason 0x81) or MOAT_E_PROTOCOL (0x82) as the spec words it;
 * MOAT_E_BAD_UTF8; MOAT_E_LIMIT (too many user properties); MOAT_E_PAYLOAD_FORMAT
 * (a payload or Will payload with format indicator 1 that is not UTF-8, 0x99);
 * MOAT_E_UNSUPPORTED
 * for a CONNECT with an unknown protocol name or level (CONNACK 0x84 / v3 rc 1).
 * Sets out->why on error. Views point into <body>.
 */
int pkt_decode(const struct mqtt_frame *f, const uint8_t *body, uint8_t version,
	       struct mqtt_packet *out);

/*
 * Encodes <p> for <version> into <buf> (<cap> bytes). Returns the full size
 * needed (fixed header included); bytes are written only when it is <= cap;
 * 0 when the packet cannot be encoded (remaining length over the maximum).
 * For SUBSCRIBE/UNSUBSCRIBE the entries are copied as they stand in
 * <p>->subscribe.entries (build them with pkt_sub_entry()).
 */
size_t pkt_encode(uint8_t *buf, size_t cap, uint8_t version, const struct mqtt_packet *p);

/* Encodes one SUBSCRIBE entry (filter + options byte) into <buf>; returns the size needed. */
size_t pkt_sub_entry(uint8_t *buf, size_t cap, struct moat_bytes filter,
		     const struct mqtt_sub_opts *opts);

/* Encodes one UNSUBSCRIBE entry into <buf>; returns the size needed. */
size_t pkt_unsub_entry(uint8_t *buf, size_t cap, struct moat_bytes filter);

#endif
