/*
 * MQTT 5 properties: one struct holds every property with a presence mask;
 * user properties stay a raw encoded run so a broker forwards them as they
 * came. Decoding validates where each property may appear, duplicates,
 * value ranges and UTF-8.
 */
#ifndef MOAT_CODEC_PROPS_H
#define MOAT_CODEC_PROPS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <moat/bytes.h>

#include "codec/rd.h"

enum mqtt_prop_id {
	MQTT_PROP_PAYLOAD_FORMAT = 0x01,
	MQTT_PROP_MESSAGE_EXPIRY = 0x02,
	MQTT_PROP_CONTENT_TYPE = 0x03,
	MQTT_PROP_RESPONSE_TOPIC = 0x08,
	MQTT_PROP_CORRELATION_DATA = 0x09,
	MQTT_PROP_SUB_ID = 0x0B,
	MQTT_PROP_SESSION_EXPIRY = 0x11,
	MQTT_PROP_ASSIGNED_CLIENT_ID = 0x12,
	MQTT_PROP_SERVER_KEEP_ALIVE = 0x13,
	MQTT_PROP_AUTH_METHOD = 0x15,
	MQTT_PROP_AUTH_DATA = 0x16,
	MQTT_PROP_REQUEST_PROBLEM_INFO = 0x17,
	MQTT_PROP_WILL_DELAY = 0x18,
	MQTT_PROP_REQUEST_RESPONSE_INFO = 0x19,
	MQTT_PROP_RESPONSE_INFO = 0x1A,
	MQTT_PROP_SERVER_REFERENCE = 0x1C,
	MQTT_PROP_REASON_STRING = 0x1F,
	MQTT_PROP_RECEIVE_MAX = 0x21,
	MQTT_PROP_TOPIC_ALIAS_MAX = 0x22,
	MQTT_PROP_TOPIC_ALIAS = 0x23,
	MQTT_PROP_MAX_QOS = 0x24,
	MQTT_PROP_RETAIN_AVAILABLE = 0x25,
	MQTT_PROP_USER = 0x26,
	MQTT_PROP_MAX_PACKET_SIZE = 0x27,
	MQTT_PROP_WILDCARD_SUB_AVAILABLE = 0x28,
	MQTT_PROP_SUB_ID_AVAILABLE = 0x29,
	MQTT_PROP_SHARED_SUB_AVAILABLE = 0x2A,
};

/* Where a property block stands; decides which properties are allowed. */
enum mqtt_prop_ctx {
	PROPS_CONNECT = 0,
	PROPS_CONNACK,
	PROPS_PUBLISH,
	PROPS_WILL,
	PROPS_ACK,		/* PUBACK, PUBREC, PUBREL, PUBCOMP */
	PROPS_SUBSCRIBE,
	PROPS_SUBACK,
	PROPS_UNSUBSCRIBE,
	PROPS_UNSUBACK,
	PROPS_DISCONNECT,
	PROPS_AUTH,
};

#define MQTT_MAX_SUB_IDS 32
#define MQTT_MAX_USER_PROPS 1024	/* CVE-2021-41039: cap the work one packet can ask for */

struct mqtt_props {
	uint64_t present;	/* bit (1ull << id) per property present */
	uint8_t payload_format;
	uint32_t message_expiry_s;
	struct moat_bytes content_type, response_topic, correlation_data;
	uint32_t session_expiry_s;
	struct moat_bytes assigned_client_id;
	uint16_t server_keep_alive_s;
	struct moat_bytes auth_method, auth_data;
	uint8_t request_problem_info, request_response_info;
	uint32_t will_delay_s;
	struct moat_bytes response_info, server_reference, reason_string;
	uint16_t receive_max, topic_alias_max, topic_alias;
	uint8_t max_qos, retain_available, wildcard_sub_available, sub_id_available,
		shared_sub_available;
	uint32_t max_packet_size;
	struct moat_bytes user;	/* encoded run holding the user properties (0x26 key value ...);
				 * after decoding it may also hold other properties between them,
				 * which props_user_next() skips */
	uint32_t user_count;
	uint32_t sub_ids[MQTT_MAX_SUB_IDS];
	uint32_t sub_id_count;	/* may exceed MQTT_MAX_SUB_IDS; only the first ones are kept */
};

static inline bool props_has(const struct mqtt_props *p, enum mqtt_prop_id id)
{
	return (p->present >> id) & 1u;
}

static inline void props_set(struct mqtt_props *p, enum mqtt_prop_id id)
{
	p->present |= 1ull << id;
}

/* Sets Authentication Method and Authentication Data (enhanced authentication). */
static inline void props_set_auth(struct mqtt_props *p, struct moat_bytes method, struct moat_bytes data)
{
	p->auth_method = method;
	p->auth_data = data;
	props_set(p, MQTT_PROP_AUTH_METHOD);
	props_set(p, MQTT_PROP_AUTH_DATA);
}

/*
 * Decodes a property block (length prefix included) from <r> into <out>,
 * checking it against <ctx>. Returns MOAT_OK, MOAT_E_MALFORMED,
 * MOAT_E_PROTOCOL, MOAT_E_BAD_UTF8 or MOAT_E_LIMIT; sets <*why> on error.
 */
int props_decode(struct rd *r, enum mqtt_prop_ctx ctx, struct mqtt_props *out, const char **why);

/* Bytes of the encoded block without its length prefix. */
size_t props_size(const struct mqtt_props *p);

/* Writes the block with its length prefix into <w> (see wr.h). */
struct wr;
void props_encode(struct wr *w, const struct mqtt_props *p);

/* Iterates the raw user-property run: init <it> over props->user first. */
bool props_user_next(struct rd *it, struct moat_bytes *key, struct moat_bytes *val);

/* Encodes one user property entry into <buf>; returns the size it needs. */
size_t props_user_append(uint8_t *buf, size_t cap, struct moat_bytes key, struct moat_bytes val);

#endif
