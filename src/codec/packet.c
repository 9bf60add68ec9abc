/*
 * Packet decoding and encoding (see packet.h). Each decoder reads its body
 * through a bounded reader and validates it completely; each encoder writes
 * the body through a bounded writer twice (size, then bytes).
 */
#include "codec/packet.h"

#include <string.h>

#include <moat/error.h>

#include "codec/topic.h"
#include "codec/wr.h"

static int bad(struct mqtt_packet *out, int err, const char *why)
{
	out->why = why;
	return err;
}

/* The first error of <r> as a decode result, or MOAT_OK. */
static int rd_result(struct mqtt_packet *out, const struct rd *r, const char *what)
{
	if (r->err == 0)
		return MOAT_OK;
	return bad(out, r->err, r->err == MOAT_E_BAD_UTF8 ? "invalid UTF-8 string" : what);
}

static int decode_props(struct rd *r, uint8_t version, enum mqtt_prop_ctx ctx,
			struct mqtt_props *props, struct mqtt_packet *out)
{
	if (version != MQTT_V5) {
		memset(props, 0, sizeof(*props));
		return MOAT_OK;
	}
	return props_decode(r, ctx, props, &out->why);
}

static int decode_connect(struct rd *r, struct mqtt_packet *out)
{
	struct mqtt_connect *c = &out->connect;
	struct moat_bytes name;
	uint8_t level, flags;
	int rc;

	memset(c, 0, sizeof(*c));
	if (!rd_bin(r, &name) || !rd_u8(r, &level))
		return rd_result(out, r, "truncated CONNECT header");
	/* mosquitto's try_private: a bridge sets the top bit of the level */
	c->bridge = (level & 0x80) != 0;
	level &= 0x7f;
	if (name.len == 4 && memcmp(name.ptr, "MQTT", 4) == 0) {
		if (level != MQTT_V311 && level != MQTT_V5)
			return bad(out, MOAT_E_UNSUPPORTED, "unsupported protocol level");
	} else if (name.len == 6 && memcmp(name.ptr, "MQIsdp", 6) == 0) {
		if (level != MQTT_V31)
			return bad(out, MOAT_E_UNSUPPORTED, "unsupported protocol level");
	} else {
		/* [MQTT-3.1.2-1]; packet.h promises MOAT_E_UNSUPPORTED (CONNACK 0x84 / rc 1) */
		return bad(out, MOAT_E_UNSUPPORTED, "unknown protocol name");
	}
	c->version = level;
	if (!rd_u8(r, &flags) || !rd_u16(r, &c->keep_alive_s))
		return rd_result(out, r, "truncated CONNECT header");
	if (flags & 0x01)
		return bad(out, MOAT_E_MALFORMED, "CONNECT reserved flag set"); /* [MQTT-3.1.2-3] */
	c->clean_start = flags & 0x02;
	c->will_flag = flags & 0x04;
	c->will_qos = (flags >> 3) & 0x03;
	c->will_retain = flags & 0x20;
	c->has_password = flags & 0x40;
	c->has_username = flags & 0x80;
	if (c->will_qos == 3)
		return bad(out, MOAT_E_MALFORMED, "will QoS 3"); /* [MQTT-3.1.2-14] */
	if (!c->will_flag && (c->will_qos != 0 || c->will_retain))
		return bad(out, MOAT_E_MALFORMED, "will QoS or retain without will flag"); /* [MQTT-3.1.2-13,-15] */
	if (level != MQTT_V5 && c->has_password && !c->has_username)
		return bad(out, MOAT_E_PROTOCOL, "password without user name"); /* [MQTT-3.1.2-22] */
	rc = decode_props(r, level, PROPS_CONNECT, &c->props, out);
	if (rc < 0)
		return rc;
	if (!rd_utf8(r, &c->client_id))
		return rd_result(out, r, "truncated client identifier");
	if (c->will_flag) {
		rc = decode_props(r, level, PROPS_WILL, &c->will_props, out);
		if (rc < 0)
			return rc;
		if (!rd_utf8(r, &c->will_topic) || !rd_bin(r, &c->will_payload))
			return rd_result(out, r, "truncated will");
		if (!topic_name_is_valid(c->will_topic))
			return bad(out, MOAT_E_PROTOCOL, "invalid will topic");
		if (props_has(&c->will_props, MQTT_PROP_PAYLOAD_FORMAT) &&
		    c->will_props.payload_format == 1 && !utf8_is_valid_mqtt(c->will_payload))
			return bad(out, MOAT_E_PAYLOAD_FORMAT, "will payload is not UTF-8");
	}
	if (c->has_username && !rd_utf8(r, &c->username))
		return rd_result(out, r, "truncated user name");
	if (c->has_password && !rd_bin(r, &c->password))
		return rd_result(out, r, "truncated password");
	if (r->left > 0)
		return bad(out, MOAT_E_MALFORMED, "trailing bytes after CONNECT");
	return MOAT_OK;
}

static int decode_connack(struct rd *r, uint8_t version, struct mqtt_packet *out)
{
	struct mqtt_connack *c = &out->connack;
	uint8_t flags, code;
	int rc;

	memset(c, 0, sizeof(*c));
	if (!rd_u8(r, &flags) || !rd_u8(r, &code))
		return rd_result(out, r, "truncated CONNACK");
	if (flags & 0xfe)
		return bad(out, MOAT_E_MALFORMED, "CONNACK reserved flags set"); /* [MQTT-3.2.2-1] */
	c->session_present = flags & 1;
	if (version == MQTT_V5) {
		c->rc = code;
		rc = decode_props(r, version, PROPS_CONNACK, &c->props, out);
		if (rc < 0)
			return rc;
	} else {
		if (code > MQTT_V3_NOT_AUTHORIZED)
			return bad(out, MOAT_E_MALFORMED, "unknown CONNACK return code");
		c->rc = mqtt_v3_connack_to_rc(code);
	}
	if (c->session_present && c->rc != MQTT_RC_SUCCESS)
		return bad(out, MOAT_E_PROTOCOL, "session present on a refused connection"); /* [MQTT-3.2.2-6] */
	if (r->left > 0)
		return bad(out, MOAT_E_MALFORMED, "trailing bytes after CONNACK");
	return MOAT_OK;
}

static int decode_publish(struct rd *r, uint8_t flags, uint8_t version, struct mqtt_packet *out)
{
	struct mqtt_publish *p = &out->publish;
	int rc;

	memset(p, 0, sizeof(*p));
	p->qos = (flags >> 1) & 0x03;
	p->dup = flags & 0x08;
	p->retain = flags & 0x01;
	if (p->qos == 3)
		return bad(out, MOAT_E_MALFORMED, "PUBLISH with QoS 3"); /* [MQTT-3.3.1-4] */
	if (p->dup && p->qos == 0)
		return bad(out, MOAT_E_MALFORMED, "DUP set on QoS 0"); /* [MQTT-3.3.1-2] */
	if (!rd_utf8(r, &p->topic))
		return rd_result(out, r, "truncated topic name");
	if (p->qos > 0) {
		if (!rd_u16(r, &p->packet_id))
			return rd_result(out, r, "missing packet identifier");
		if (p->packet_id == 0)
			return bad(out, MOAT_E_PROTOCOL, "packet identifier 0"); /* [MQTT-2.2.1-3] */
	}
	rc = decode_props(r, version, PROPS_PUBLISH, &p->props, out);
	if (rc < 0)
		return rc;
	if (p->topic.len == 0 && !props_has(&p->props, MQTT_PROP_TOPIC_ALIAS))
		return bad(out, MOAT_E_PROTOCOL, "empty topic name"); /* [MQTT-4.7.3-1] */
	if (p->topic.len > 0 && !topic_name_is_valid(p->topic))
		return bad(out, MOAT_E_PROTOCOL, "wildcard in topic name"); /* [MQTT-3.3.2-2] */
	rd_bytes(r, r->left, &p->payload);
	if (props_has(&p->props, MQTT_PROP_PAYLOAD_FORMAT) && p->props.payload_format == 1 &&
	    !utf8_is_valid_mqtt(p->payload))
		return bad(out, MOAT_E_PAYLOAD_FORMAT, "payload is not UTF-8"); /* 0x99 */
	return MOAT_OK;
}

static int decode_ack(struct rd *r, uint8_t version, struct mqtt_packet *out)
{
	struct mqtt_ack *a = &out->ack;
	int rc;

	memset(a, 0, sizeof(*a));
	if (!rd_u16(r, &a->packet_id))
		return rd_result(out, r, "truncated acknowledgement");
	if (a->packet_id == 0)
		return bad(out, MOAT_E_PROTOCOL, "packet identifier 0");
	if (version == MQTT_V5 && r->left > 0) {
		rd_u8(r, &a->rc);
		if (r->left > 0) {
			rc = decode_props(r, version, PROPS_ACK, &a->props, out);
			if (rc < 0)
				return rc;
		}
	}
	if (r->left > 0)
		return bad(out, MOAT_E_MALFORMED, "trailing bytes after acknowledgement");
	return MOAT_OK;
}

/* Reads one SUBSCRIBE entry; the options byte is checked for reserved bits. */
static bool read_sub_entry(struct rd *it, uint8_t version, struct moat_bytes *filter,
			   struct mqtt_sub_opts *opts, const char **why)
{
	uint8_t o;

	if (!rd_utf8(it, filter) || !rd_u8(it, &o)) {
		*why = it->err == MOAT_E_BAD_UTF8 ? "invalid UTF-8 in topic filter"
						  : "truncated subscription";
		return false;
	}
	opts->qos = o & 0x03;
	opts->no_local = o & 0x04;
	opts->retain_as_published = o & 0x08;
	opts->retain_handling = (o >> 4) & 0x03;
	if (opts->qos == 3) {
		*why = "subscription QoS 3";
		/* v3.1.1: malformed [MQTT-3.8.3-4]; v5 §3.8.3.1 calls it a Protocol Error */
		return rd_fail(it, version == MQTT_V5 ? MOAT_E_PROTOCOL : MOAT_E_MALFORMED);
	}
	if ((version == MQTT_V5 && (o & 0xc0)) || (version != MQTT_V5 && (o & 0xfc))) {
		*why = "subscription options reserved bits set";
		return rd_fail(it, MOAT_E_MALFORMED); /* [MQTT-3.8.3-5] */
	}
	if (opts->retain_handling == 3) {
		*why = "retain handling 3";
		return rd_fail(it, MOAT_E_PROTOCOL);
	}
	return true;
}

bool sub_next(struct rd *it, struct moat_bytes *filter, struct mqtt_sub_opts *opts)
{
	uint8_t o;

	if (it->left == 0)
		return false;
	if (!rd_utf8(it, filter) || !rd_u8(it, &o))
		return false;
	opts->qos = o & 0x03;
	opts->no_local = o & 0x04;
	opts->retain_as_published = o & 0x08;
	opts->retain_handling = (o >> 4) & 0x03;
	return true;
}

bool unsub_next(struct rd *it, struct moat_bytes *filter)
{
	return it->left > 0 && rd_utf8(it, filter);
}

static int decode_subscribe(struct rd *r, uint8_t version, struct mqtt_packet *out)
{
	struct mqtt_subscribe *s = &out->subscribe;
	struct rd it;
	int rc;

	memset(s, 0, sizeof(*s));
	if (!rd_u16(r, &s->packet_id))
		return rd_result(out, r, "truncated SUBSCRIBE");
	if (s->packet_id == 0)
		return bad(out, MOAT_E_PROTOCOL, "packet identifier 0");
	rc = decode_props(r, version, PROPS_SUBSCRIBE, &s->props, out);
	if (rc < 0)
		return rc;
	if (r->left == 0)
		return bad(out, MOAT_E_PROTOCOL, "SUBSCRIBE without filters"); /* [MQTT-3.8.3-3] */
	s->entries = *r;
	it = *r;
	while (it.left > 0) {
		struct moat_bytes filter, group, inner;
		struct mqtt_sub_opts opts;

		if (!read_sub_entry(&it, version, &filter, &opts, &out->why))
			return it.err;
		if (opts.no_local && topic_share_parse(filter, &group, &inner) != MOAT_E_NOTFOUND)
			return bad(out, MOAT_E_PROTOCOL, "no-local on a shared subscription"); /* [MQTT-3.8.3-4] */
	}
	return MOAT_OK;
}

static int decode_unsubscribe(struct rd *r, uint8_t version, struct mqtt_packet *out)
{
	struct mqtt_unsubscribe *u = &out->unsubscribe;
	struct moat_bytes filter;
	struct rd it;
	int rc;

	memset(u, 0, sizeof(*u));
	if (!rd_u16(r, &u->packet_id))
		return rd_result(out, r, "truncated UNSUBSCRIBE");
	if (u->packet_id == 0)
		return bad(out, MOAT_E_PROTOCOL, "packet identifier 0");
	rc = decode_props(r, version, PROPS_UNSUBSCRIBE, &u->props, out);
	if (rc < 0)
		return rc;
	if (r->left == 0)
		return bad(out, MOAT_E_PROTOCOL, "UNSUBSCRIBE without filters"); /* [MQTT-3.10.3-2] */
	u->entries = *r;
	it = *r;
	while (it.left > 0)
		rd_utf8(&it, &filter);
	return rd_result(out, &it, "truncated topic filter");
}

static int decode_acks_list(struct rd *r, uint8_t version, enum mqtt_prop_ctx ctx,
			    uint16_t *packet_id, struct mqtt_props *props, struct moat_bytes *rcs,
			    struct mqtt_packet *out)
{
	int rc;

	memset(props, 0, sizeof(*props));
	*rcs = (struct moat_bytes){ 0 };
	if (!rd_u16(r, packet_id))
		return rd_result(out, r, "truncated acknowledgement");
	if (*packet_id == 0)
		return bad(out, MOAT_E_PROTOCOL, "packet identifier 0");
	rc = decode_props(r, version, ctx, props, out);
	if (rc < 0)
		return rc;
	rd_bytes(r, r->left, rcs);
	return MOAT_OK;
}

static int decode_reason_props(struct rd *r, uint8_t version, enum mqtt_prop_ctx ctx,
			       uint8_t *code, struct mqtt_props *props, struct mqtt_packet *out)
{
	int rc;

	*code = 0;
	memset(props, 0, sizeof(*props));
	if (version != MQTT_V5) {
		if (r->left > 0)
			return bad(out, MOAT_E_MALFORMED, "DISCONNECT with a body in MQTT 3");
		return MOAT_OK;
	}
	if (r->left == 0)
		return MOAT_OK;
	rd_u8(r, code);
	if (r->left > 0) {
		rc = decode_props(r, version, ctx, props, out);
		if (rc < 0)
			return rc;
	}
	if (r->left > 0)
		return bad(out, MOAT_E_MALFORMED, "trailing bytes");
	return MOAT_OK;
}

static uint8_t required_flags(uint8_t type)
{
	return type == MQTT_PUBREL || type == MQTT_SUBSCRIBE || type == MQTT_UNSUBSCRIBE ? 0x2 : 0;
}

int pkt_decode(const struct mqtt_frame *f, const uint8_t *body, uint8_t version,
	       struct mqtt_packet *out)
{
	struct rd r;
	int rc;

	out->type = f->type;
	out->why = NULL;
	rd_init(&r, body, f->rem_len);
	if (f->type != MQTT_PUBLISH && f->flags != required_flags(f->type))
		return bad(out, MOAT_E_MALFORMED, "reserved fixed-header flags"); /* [MQTT-2.2.2-2] */
	switch (f->type) {
	case MQTT_CONNECT:
		return decode_connect(&r, out);
	case MQTT_CONNACK:
		return decode_connack(&r, version, out);
	case MQTT_PUBLISH:
		return decode_publish(&r, f->flags, version, out);
	case MQTT_PUBACK:
	case MQTT_PUBREC:
	case MQTT_PUBREL:
	case MQTT_PUBCOMP:
		return decode_ack(&r, version, out);
	case MQTT_SUBSCRIBE:
		return decode_subscribe(&r, version, out);
	case MQTT_SUBACK:
		rc = decode_acks_list(&r, version, PROPS_SUBACK, &out->suback.packet_id,
				      &out->suback.props, &out->suback.rcs, out);
		if (rc == MOAT_OK && out->suback.rcs.len == 0)
			return bad(out, MOAT_E_PROTOCOL, "SUBACK without reason codes");
		return rc;
	case MQTT_UNSUBSCRIBE:
		return decode_unsubscribe(&r, version, out);
	case MQTT_UNSUBACK:
		if (version != MQTT_V5) {
			memset(&out->unsuback, 0, sizeof(out->unsuback));
			if (!rd_u16(&r, &out->unsuback.packet_id) || r.left > 0)
				return bad(out, MOAT_E_MALFORMED, "UNSUBACK must be 2 bytes in MQTT 3");
			return MOAT_OK;
		}
		rc = decode_acks_list(&r, version, PROPS_UNSUBACK, &out->unsuback.packet_id,
				      &out->unsuback.props, &out->unsuback.rcs, out);
		if (rc == MOAT_OK && out->unsuback.rcs.len == 0)
			return bad(out, MOAT_E_PROTOCOL, "UNSUBACK without reason codes");
		return rc;
	case MQTT_PINGREQ:
	case MQTT_PINGRESP:
		if (f->rem_len != 0)
			return bad(out, MOAT_E_MALFORMED, "PING with a body");
		return MOAT_OK;
	case MQTT_DISCONNECT:
		return decode_reason_props(&r, version, PROPS_DISCONNECT, &out->disconnect.rc,
					   &out->disconnect.props, out);
	case MQTT_AUTH:
		if (version != MQTT_V5)
			return bad(out, MOAT_E_PROTOCOL, "AUTH before MQTT 5");
		return decode_reason_props(&r, version, PROPS_AUTH, &out->auth.rc,
					   &out->auth.props, out);
	}
	return bad(out, MOAT_E_MALFORMED, "unknown packet type");
}

static void write_body(struct wr *w, uint8_t version, const struct mqtt_packet *p)
{
	bool v5 = version == MQTT_V5;

	switch (p->type) {
	case MQTT_CONNECT: {
		const struct mqtt_connect *c = &p->connect;
		uint8_t flags = (uint8_t)((c->clean_start ? 0x02 : 0) | (c->will_flag ? 0x04 : 0) |
					  (c->will_qos << 3) | (c->will_retain ? 0x20 : 0) |
					  (c->has_password ? 0x40 : 0) | (c->has_username ? 0x80 : 0));

		wr_str(w, moat_bytes_str(version == MQTT_V31 ? "MQIsdp" : "MQTT"));
		wr_u8(w, (uint8_t)(version | (c->bridge ? 0x80 : 0)));
		wr_u8(w, flags);
		wr_u16(w, c->keep_alive_s);
		if (v5)
			props_encode(w, &c->props);
		wr_str(w, c->client_id);
		if (c->will_flag) {
			if (v5)
				props_encode(w, &c->will_props);
			wr_str(w, c->will_topic);
			wr_str(w, c->will_payload);
		}
		if (c->has_username)
			wr_str(w, c->username);
		if (c->has_password)
			wr_str(w, c->password);
		break;
	}
	case MQTT_CONNACK:
		wr_u8(w, p->connack.session_present ? 1 : 0);
		wr_u8(w, v5 ? p->connack.rc : mqtt_rc_to_v3_connack(p->connack.rc));
		if (v5)
			props_encode(w, &p->connack.props);
		break;
	case MQTT_PUBLISH:
		wr_str(w, p->publish.topic);
		if (p->publish.qos > 0)
			wr_u16(w, p->publish.packet_id);
		if (v5)
			props_encode(w, &p->publish.props);
		wr_bytes(w, p->publish.payload);
		break;
	case MQTT_PUBACK:
	case MQTT_PUBREC:
	case MQTT_PUBREL:
	case MQTT_PUBCOMP:
		wr_u16(w, p->ack.packet_id);
		if (v5 && (p->ack.rc != 0 || props_size(&p->ack.props) > 0)) {
			wr_u8(w, p->ack.rc);
			if (props_size(&p->ack.props) > 0)
				props_encode(w, &p->ack.props);
		}
		break;
	case MQTT_SUBSCRIBE:
	case MQTT_UNSUBSCRIBE:
		wr_u16(w, p->subscribe.packet_id);
		if (v5)
			props_encode(w, &p->subscribe.props);
		wr_raw(w, p->subscribe.entries.p, p->subscribe.entries.left);
		break;
	case MQTT_SUBACK:
	case MQTT_UNSUBACK:
		wr_u16(w, p->suback.packet_id);
		if (v5)
			props_encode(w, &p->suback.props);
		if (v5 || p->type == MQTT_SUBACK)
			wr_bytes(w, p->suback.rcs);
		break;
	case MQTT_DISCONNECT:
	case MQTT_AUTH:
		if (v5 && (p->disconnect.rc != 0 || props_size(&p->disconnect.props) > 0)) {
			wr_u8(w, p->disconnect.rc);
			if (props_size(&p->disconnect.props) > 0)
				props_encode(w, &p->disconnect.props);
		}
		break;
	}
}

size_t pkt_encode(uint8_t *buf, size_t cap, uint8_t version, const struct mqtt_packet *p)
{
	struct wr w;
	size_t body, total;
	uint8_t first = (uint8_t)(p->type << 4);

	wr_init(&w, NULL, 0);
	write_body(&w, version, p);
	body = w.len;
	if (body > MQTT_MAX_REMAINING_LENGTH)
		return 0;
	total = 1 + varint_size((uint32_t)body) + body;
	if (total > cap)
		return total;
	if (p->type == MQTT_PUBLISH)
		first |= (uint8_t)((p->publish.dup ? 0x08 : 0) | (p->publish.qos << 1) |
				   (p->publish.retain ? 0x01 : 0));
	else
		first |= required_flags(p->type);
	wr_init(&w, buf, cap);
	wr_u8(&w, first);
	wr_varint(&w, (uint32_t)body);
	write_body(&w, version, p);
	return total;
}

size_t pkt_sub_entry(uint8_t *buf, size_t cap, struct moat_bytes filter,
		     const struct mqtt_sub_opts *opts)
{
	struct wr w;

	wr_init(&w, buf, cap);
	wr_str(&w, filter);
	wr_u8(&w, (uint8_t)(opts->qos | (opts->no_local ? 0x04 : 0) |
			    (opts->retain_as_published ? 0x08 : 0) | (opts->retain_handling << 4)));
	return w.len;
}

size_t pkt_unsub_entry(uint8_t *buf, size_t cap, struct moat_bytes filter)
{
	struct wr w;

	wr_init(&w, buf, cap);
	wr_str(&w, filter);
	return w.len;
}
