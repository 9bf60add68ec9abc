/*
 * MQTT 5 properties (see props.h). One table says each property's wire type
 * and the packets it may appear in; decode and encode both follow it.
 */
#include "codec/props.h"

#include <string.h>

#include <moat/error.h>

#include "codec/wr.h"

enum prop_type { T_BYTE = 1, T_U16, T_U32, T_VARINT, T_UTF8, T_BIN, T_PAIR };

#define C(x) (1u << (x))

static const struct prop_def {
	uint8_t type;		/* enum prop_type; 0 = no such property */
	uint16_t ctx;		/* mask of enum mqtt_prop_ctx */
} prop_defs[0x2B] = {
	[MQTT_PROP_PAYLOAD_FORMAT] = { T_BYTE, C(PROPS_PUBLISH) | C(PROPS_WILL) },
	[MQTT_PROP_MESSAGE_EXPIRY] = { T_U32, C(PROPS_PUBLISH) | C(PROPS_WILL) },
	[MQTT_PROP_CONTENT_TYPE] = { T_UTF8, C(PROPS_PUBLISH) | C(PROPS_WILL) },
	[MQTT_PROP_RESPONSE_TOPIC] = { T_UTF8, C(PROPS_PUBLISH) | C(PROPS_WILL) },
	[MQTT_PROP_CORRELATION_DATA] = { T_BIN, C(PROPS_PUBLISH) | C(PROPS_WILL) },
	[MQTT_PROP_SUB_ID] = { T_VARINT, C(PROPS_PUBLISH) | C(PROPS_SUBSCRIBE) },
	[MQTT_PROP_SESSION_EXPIRY] = { T_U32, C(PROPS_CONNECT) | C(PROPS_CONNACK) | C(PROPS_DISCONNECT) },
	[MQTT_PROP_ASSIGNED_CLIENT_ID] = { T_UTF8, C(PROPS_CONNACK) },
	[MQTT_PROP_SERVER_KEEP_ALIVE] = { T_U16, C(PROPS_CONNACK) },
	[MQTT_PROP_AUTH_METHOD] = { T_UTF8, C(PROPS_CONNECT) | C(PROPS_CONNACK) | C(PROPS_AUTH) },
	[MQTT_PROP_AUTH_DATA] = { T_BIN, C(PROPS_CONNECT) | C(PROPS_CONNACK) | C(PROPS_AUTH) },
	[MQTT_PROP_REQUEST_PROBLEM_INFO] = { T_BYTE, C(PROPS_CONNECT) },
	[MQTT_PROP_WILL_DELAY] = { T_U32, C(PROPS_WILL) },
	[MQTT_PROP_REQUEST_RESPONSE_INFO] = { T_BYTE, C(PROPS_CONNECT) },
	[MQTT_PROP_RESPONSE_INFO] = { T_UTF8, C(PROPS_CONNACK) },
	[MQTT_PROP_SERVER_REFERENCE] = { T_UTF8, C(PROPS_CONNACK) | C(PROPS_DISCONNECT) },
	[MQTT_PROP_REASON_STRING] = { T_UTF8, C(PROPS_CONNACK) | C(PROPS_ACK) | C(PROPS_SUBACK) |
						      C(PROPS_UNSUBACK) | C(PROPS_DISCONNECT) | C(PROPS_AUTH) },
	[MQTT_PROP_RECEIVE_MAX] = { T_U16, C(PROPS_CONNECT) | C(PROPS_CONNACK) },
	[MQTT_PROP_TOPIC_ALIAS_MAX] = { T_U16, C(PROPS_CONNECT) | C(PROPS_CONNACK) },
	[MQTT_PROP_TOPIC_ALIAS] = { T_U16, C(PROPS_PUBLISH) },
	[MQTT_PROP_MAX_QOS] = { T_BYTE, C(PROPS_CONNACK) },
	[MQTT_PROP_RETAIN_AVAILABLE] = { T_BYTE, C(PROPS_CONNACK) },
	[MQTT_PROP_USER] = { T_PAIR, 0x7ff },
	[MQTT_PROP_MAX_PACKET_SIZE] = { T_U32, C(PROPS_CONNECT) | C(PROPS_CONNACK) },
	[MQTT_PROP_WILDCARD_SUB_AVAILABLE] = { T_BYTE, C(PROPS_CONNACK) },
	[MQTT_PROP_SUB_ID_AVAILABLE] = { T_BYTE, C(PROPS_CONNACK) },
	[MQTT_PROP_SHARED_SUB_AVAILABLE] = { T_BYTE, C(PROPS_CONNACK) },
};

static uint8_t *byte_field(struct mqtt_props *p, uint8_t id)
{
	switch (id) {
	case MQTT_PROP_PAYLOAD_FORMAT: return &p->payload_format;
	case MQTT_PROP_REQUEST_PROBLEM_INFO: return &p->request_problem_info;
	case MQTT_PROP_REQUEST_RESPONSE_INFO: return &p->request_response_info;
	case MQTT_PROP_MAX_QOS: return &p->max_qos;
	case MQTT_PROP_RETAIN_AVAILABLE: return &p->retain_available;
	case MQTT_PROP_WILDCARD_SUB_AVAILABLE: return &p->wildcard_sub_available;
	case MQTT_PROP_SUB_ID_AVAILABLE: return &p->sub_id_available;
	case MQTT_PROP_SHARED_SUB_AVAILABLE: return &p->shared_sub_available;
	}
	return NULL;
}

static uint16_t *u16_field(struct mqtt_props *p, uint8_t id)
{
	switch (id) {
	case MQTT_PROP_SERVER_KEEP_ALIVE: return &p->server_keep_alive_s;
	case MQTT_PROP_RECEIVE_MAX: return &p->receive_max;
	case MQTT_PROP_TOPIC_ALIAS_MAX: return &p->topic_alias_max;
	case MQTT_PROP_TOPIC_ALIAS: return &p->topic_alias;
	}
	return NULL;
}

static uint32_t *u32_field(struct mqtt_props *p, uint8_t id)
{
	switch (id) {
	case MQTT_PROP_MESSAGE_EXPIRY: return &p->message_expiry_s;
	case MQTT_PROP_SESSION_EXPIRY: return &p->session_expiry_s;
	case MQTT_PROP_WILL_DELAY: return &p->will_delay_s;
	case MQTT_PROP_MAX_PACKET_SIZE: return &p->max_packet_size;
	}
	return NULL;
}

static struct moat_bytes *bytes_field(struct mqtt_props *p, uint8_t id)
{
	switch (id) {
	case MQTT_PROP_CONTENT_TYPE: return &p->content_type;
	case MQTT_PROP_RESPONSE_TOPIC: return &p->response_topic;
	case MQTT_PROP_CORRELATION_DATA: return &p->correlation_data;
	case MQTT_PROP_ASSIGNED_CLIENT_ID: return &p->assigned_client_id;
	case MQTT_PROP_AUTH_METHOD: return &p->auth_method;
	case MQTT_PROP_AUTH_DATA: return &p->auth_data;
	case MQTT_PROP_RESPONSE_INFO: return &p->response_info;
	case MQTT_PROP_SERVER_REFERENCE: return &p->server_reference;
	case MQTT_PROP_REASON_STRING: return &p->reason_string;
	}
	return NULL;
}

static int fail(const char **why, const char *msg, int err)
{
	*why = msg;
	return err;
}

static int check_range(const struct mqtt_props *p, uint8_t id, const char **why)
{
	switch (id) {
	case MQTT_PROP_PAYLOAD_FORMAT:
	case MQTT_PROP_REQUEST_PROBLEM_INFO:
	case MQTT_PROP_REQUEST_RESPONSE_INFO:
	case MQTT_PROP_MAX_QOS:
	case MQTT_PROP_RETAIN_AVAILABLE:
	case MQTT_PROP_WILDCARD_SUB_AVAILABLE:
	case MQTT_PROP_SUB_ID_AVAILABLE:
	case MQTT_PROP_SHARED_SUB_AVAILABLE:
		if (*byte_field((struct mqtt_props *)p, id) > 1)
			return fail(why, "property value must be 0 or 1", MOAT_E_PROTOCOL);
		break;
	case MQTT_PROP_RECEIVE_MAX:
		if (p->receive_max == 0)
			return fail(why, "receive maximum of 0", MOAT_E_PROTOCOL);
		break;
	case MQTT_PROP_MAX_PACKET_SIZE:
		if (p->max_packet_size == 0)
			return fail(why, "maximum packet size of 0", MOAT_E_PROTOCOL);
		break;
	case MQTT_PROP_TOPIC_ALIAS:
		if (p->topic_alias == 0)
			return fail(why, "topic alias of 0", MOAT_E_PROTOCOL);
		break;
	}
	return MOAT_OK;
}

int props_decode(struct rd *r, enum mqtt_prop_ctx ctx, struct mqtt_props *out, const char **why)
{
	struct rd pr;
	uint32_t len;
	const uint8_t *user_start = NULL, *user_end = NULL;

	memset(out, 0, sizeof(*out));
	if (!rd_varint(r, &len) || !rd_sub(r, len, &pr))
		return fail(why, "property length", r->err);
	while (pr.left > 0) {
		const uint8_t *entry = pr.p;
		uint32_t id;
		const struct prop_def *d;

		if (!rd_varint(&pr, &id))
			break;
		if (id >= sizeof(prop_defs) / sizeof(prop_defs[0]) || prop_defs[id].type == 0)
			return fail(why, "unknown property", MOAT_E_MALFORMED);
		d = &prop_defs[id];
		if ((d->ctx & C(ctx)) == 0)
			return fail(why, "property not allowed in this packet", MOAT_E_PROTOCOL);
		if (id == MQTT_PROP_USER) {
			struct moat_bytes k, v;

			if (!rd_utf8(&pr, &k) || !rd_utf8(&pr, &v))
				break;
			if (++out->user_count > MQTT_MAX_USER_PROPS)
				return fail(why, "too many user properties", MOAT_E_LIMIT);
			if (user_start == NULL)
				user_start = entry;
			user_end = pr.p;
			continue;
		}
		if (id == MQTT_PROP_SUB_ID) {
			uint32_t v;

			if (!rd_varint(&pr, &v))
				break;
			if (v == 0)
				return fail(why, "subscription identifier of 0", MOAT_E_PROTOCOL);
			if (ctx == PROPS_SUBSCRIBE && out->sub_id_count > 0)
				return fail(why, "duplicate subscription identifier", MOAT_E_PROTOCOL);
			if (out->sub_id_count < MQTT_MAX_SUB_IDS)
				out->sub_ids[out->sub_id_count] = v;
			out->sub_id_count++;
			props_set(out, MQTT_PROP_SUB_ID);
			continue;
		}
		if (props_has(out, (enum mqtt_prop_id)id))
			return fail(why, "duplicate property", MOAT_E_PROTOCOL);
		props_set(out, (enum mqtt_prop_id)id);
		switch (d->type) {
		case T_BYTE: rd_u8(&pr, byte_field(out, (uint8_t)id)); break;
		case T_U16: rd_u16(&pr, u16_field(out, (uint8_t)id)); break;
		case T_U32: rd_u32(&pr, u32_field(out, (uint8_t)id)); break;
		case T_UTF8: rd_utf8(&pr, bytes_field(out, (uint8_t)id)); break;
		case T_BIN: rd_bin(&pr, bytes_field(out, (uint8_t)id)); break;
		}
		if (pr.err != 0)
			break;
		int rc = check_range(out, (uint8_t)id, why);
		if (rc < 0)
			return rc;
	}
	if (pr.err != 0)
		return fail(why, pr.err == MOAT_E_BAD_UTF8 ? "invalid UTF-8 in a property"
							   : "truncated property", pr.err);
	if (user_start != NULL)
		out->user = (struct moat_bytes){ user_start, (size_t)(user_end - user_start) };
	return MOAT_OK;
}

/* Writes every present property in id order, then subscription ids and user properties. */
static void props_write(struct wr *w, const struct mqtt_props *cp)
{
	struct mqtt_props *p = (struct mqtt_props *)cp;	/* the field getters are shared */

	for (uint8_t id = 1; id < sizeof(prop_defs) / sizeof(prop_defs[0]); id++) {
		if (prop_defs[id].type == 0 || id == MQTT_PROP_USER || id == MQTT_PROP_SUB_ID ||
		    !props_has(p, (enum mqtt_prop_id)id))
			continue;
		wr_u8(w, id);
		switch (prop_defs[id].type) {
		case T_BYTE: wr_u8(w, *byte_field(p, id)); break;
		case T_U16: wr_u16(w, *u16_field(p, id)); break;
		case T_U32: wr_u32(w, *u32_field(p, id)); break;
		case T_UTF8:
		case T_BIN: wr_str(w, *bytes_field(p, id)); break;
		}
	}
	if (props_has(p, MQTT_PROP_SUB_ID)) {
		uint32_t n = p->sub_id_count < MQTT_MAX_SUB_IDS ? p->sub_id_count : MQTT_MAX_SUB_IDS;

		for (uint32_t i = 0; i < n; i++) {
			wr_u8(w, MQTT_PROP_SUB_ID);
			wr_varint(w, p->sub_ids[i]);
		}
	}
	if (p->user.len > 0) {
		struct rd it;
		struct moat_bytes k, v;

		rd_init(&it, p->user.ptr, p->user.len);
		while (props_user_next(&it, &k, &v)) {
			wr_u8(w, MQTT_PROP_USER);
			wr_str(w, k);
			wr_str(w, v);
		}
	}
}

size_t props_size(const struct mqtt_props *p)
{
	struct wr w;

	if (p->present == 0 && p->user.len == 0)
		return 0;
	wr_init(&w, NULL, 0);
	props_write(&w, p);
	return w.len;
}

void props_encode(struct wr *w, const struct mqtt_props *p)
{
	size_t n = props_size(p);

	wr_varint(w, (uint32_t)n);
	if (n > 0)
		props_write(w, p);
}

bool props_user_next(struct rd *it, struct moat_bytes *key, struct moat_bytes *val)
{
	while (it->left > 0) {
		uint32_t id, skip32;
		uint16_t skip16;
		uint8_t skip8;
		struct moat_bytes skipb;

		if (!rd_varint(it, &id) || id >= sizeof(prop_defs) / sizeof(prop_defs[0]))
			return false;
		switch (prop_defs[id].type) {
		case T_PAIR: return rd_bin(it, key) && rd_bin(it, val);
		case T_BYTE: rd_u8(it, &skip8); break;
		case T_U16: rd_u16(it, &skip16); break;
		case T_U32: rd_u32(it, &skip32); break;
		case T_VARINT: rd_varint(it, &skip32); break;
		case T_UTF8:
		case T_BIN: rd_bin(it, &skipb); break;
		default: return false;
		}
		if (it->err != 0)
			return false;
	}
	return false;
}

size_t props_user_append(uint8_t *buf, size_t cap, struct moat_bytes key, struct moat_bytes val)
{
	struct wr w;

	wr_init(&w, buf, cap);
	wr_u8(&w, MQTT_PROP_USER);
	wr_str(&w, key);
	wr_str(&w, val);
	return w.len;
}
