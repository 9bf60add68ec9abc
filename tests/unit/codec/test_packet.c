/*
 * Unit tests for src/codec/packet.c and props.c: every packet type round
 * trips through encode, frame_decode and pkt_decode in MQTT 3.1, 3.1.1 and 5
 * (properties and user properties included); each malformed form is refused
 * with the right error; every truncation of a valid packet is refused or
 * decodes to exactly what it holds (nanomq#2268/#2270).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <moat/error.h>

#include "codec/frame.h"
#include "codec/mqtt.h"
#include "codec/packet.h"
#include "codec/props.h"
#include "codec/wr.h"

#define S(s) moat_bytes_str(s)
#define L(s) ((struct moat_bytes){ (const uint8_t *)(s), sizeof(s) - 1 })	/* may hold NUL */
#define BODY(...) (const uint8_t[]){ __VA_ARGS__ }, sizeof((const uint8_t[]){ __VA_ARGS__ })
#define CONN_HDR(level, flags) 0x00, 0x04, 'M', 'Q', 'T', 'T', level, flags, 0x00, 0x3c

/* Builds first byte + Remaining Length + <body>; the caller frees it. */
static uint8_t *build(uint8_t first, const uint8_t *body, size_t n, size_t *len)
{
	uint8_t *p = test_malloc(n + 5);
	struct wr w;

	wr_init(&w, p, n + 5);
	wr_u8(&w, first);
	wr_varint(&w, (uint32_t)n);
	if (n > 0)
		wr_raw(&w, body, n);
	*len = w.len;
	return p;
}

/* Frames and decodes one whole packet; asserts the frame covers <len> exactly. */
static int decode(const uint8_t *pkt, size_t len, uint8_t version, struct mqtt_packet *out)
{
	struct mqtt_frame f;
	int rc = frame_decode(pkt, len, UINT32_MAX, &f);

	if (rc != MOAT_OK)
		return rc;
	assert_int_equal((size_t)f.hdr_len + f.rem_len, len);
	return pkt_decode(&f, pkt + f.hdr_len, version, out);
}

/* Encodes <p>; checks that a buffer one byte short is left untouched. */
static size_t encode(uint8_t version, const struct mqtt_packet *p, uint8_t *buf, size_t cap)
{
	size_t need = pkt_encode(NULL, 0, version, p);

	assert_true(need >= 2 && need <= cap);
	memset(buf, 0xa5, cap);
	assert_int_equal(pkt_encode(buf, need - 1, version, p), need);
	for (size_t i = 0; i < need; i++)
		assert_int_equal(buf[i], 0xa5);
	assert_int_equal(pkt_encode(buf, need, version, p), need);
	return need;
}

static void assert_bytes_eq(struct moat_bytes a, struct moat_bytes b)
{
	assert_int_equal(a.len, b.len);
	if (a.len > 0)
		assert_memory_equal(a.ptr, b.ptr, a.len);
}

static void assert_props_eq(const struct mqtt_props *a, const struct mqtt_props *b)
{
	assert_int_equal(a->present, b->present);
	assert_int_equal(a->payload_format, b->payload_format);
	assert_int_equal(a->message_expiry_s, b->message_expiry_s);
	assert_bytes_eq(a->content_type, b->content_type);
	assert_bytes_eq(a->response_topic, b->response_topic);
	assert_bytes_eq(a->correlation_data, b->correlation_data);
	assert_int_equal(a->session_expiry_s, b->session_expiry_s);
	assert_bytes_eq(a->assigned_client_id, b->assigned_client_id);
	assert_int_equal(a->server_keep_alive_s, b->server_keep_alive_s);
	assert_bytes_eq(a->auth_method, b->auth_method);
	assert_bytes_eq(a->auth_data, b->auth_data);
	assert_int_equal(a->request_problem_info, b->request_problem_info);
	assert_int_equal(a->request_response_info, b->request_response_info);
	assert_int_equal(a->will_delay_s, b->will_delay_s);
	assert_bytes_eq(a->response_info, b->response_info);
	assert_bytes_eq(a->server_reference, b->server_reference);
	assert_bytes_eq(a->reason_string, b->reason_string);
	assert_int_equal(a->receive_max, b->receive_max);
	assert_int_equal(a->topic_alias_max, b->topic_alias_max);
	assert_int_equal(a->topic_alias, b->topic_alias);
	assert_int_equal(a->max_qos, b->max_qos);
	assert_int_equal(a->retain_available, b->retain_available);
	assert_int_equal(a->wildcard_sub_available, b->wildcard_sub_available);
	assert_int_equal(a->sub_id_available, b->sub_id_available);
	assert_int_equal(a->shared_sub_available, b->shared_sub_available);
	assert_int_equal(a->max_packet_size, b->max_packet_size);
	assert_bytes_eq(a->user, b->user);
	assert_int_equal(a->user_count, b->user_count);
	assert_int_equal(a->sub_id_count, b->sub_id_count);
	for (uint32_t i = 0; i < a->sub_id_count && i < MQTT_MAX_SUB_IDS; i++)
		assert_int_equal(a->sub_ids[i], b->sub_ids[i]);
}

static void assert_entries_eq(uint8_t type, struct rd a, struct rd b)
{
	struct moat_bytes fa, fb;
	struct mqtt_sub_opts oa, ob;
	size_t n = 0;

	if (type == MQTT_SUBSCRIBE) {
		while (sub_next(&a, &fa, &oa)) {
			assert_true(sub_next(&b, &fb, &ob));
			assert_bytes_eq(fa, fb);
			assert_int_equal(oa.qos, ob.qos);
			assert_int_equal(oa.no_local, ob.no_local);
			assert_int_equal(oa.retain_as_published, ob.retain_as_published);
			assert_int_equal(oa.retain_handling, ob.retain_handling);
			n++;
		}
		assert_false(sub_next(&b, &fb, &ob));
	} else {
		while (unsub_next(&a, &fa)) {
			assert_true(unsub_next(&b, &fb));
			assert_bytes_eq(fa, fb);
			n++;
		}
		assert_false(unsub_next(&b, &fb));
	}
	assert_true(n > 0);
	assert_int_equal(a.err, 0);
	assert_int_equal(b.err, 0);
}

static void assert_packet_eq(const struct mqtt_packet *a, const struct mqtt_packet *b)
{
	assert_int_equal(a->type, b->type);
	switch (a->type) {
	case MQTT_CONNECT: {
		const struct mqtt_connect *x = &a->connect, *y = &b->connect;

		assert_int_equal(x->version, y->version);
		assert_int_equal(x->clean_start, y->clean_start);
		assert_int_equal(x->keep_alive_s, y->keep_alive_s);
		assert_props_eq(&x->props, &y->props);
		assert_bytes_eq(x->client_id, y->client_id);
		assert_int_equal(x->will_flag, y->will_flag);
		assert_int_equal(x->will_qos, y->will_qos);
		assert_int_equal(x->will_retain, y->will_retain);
		assert_props_eq(&x->will_props, &y->will_props);
		assert_bytes_eq(x->will_topic, y->will_topic);
		assert_bytes_eq(x->will_payload, y->will_payload);
		assert_int_equal(x->has_username, y->has_username);
		assert_int_equal(x->has_password, y->has_password);
		assert_bytes_eq(x->username, y->username);
		assert_bytes_eq(x->password, y->password);
		break;
	}
	case MQTT_CONNACK:
		assert_int_equal(a->connack.session_present, b->connack.session_present);
		assert_int_equal(a->connack.rc, b->connack.rc);
		assert_props_eq(&a->connack.props, &b->connack.props);
		break;
	case MQTT_PUBLISH:
		assert_int_equal(a->publish.qos, b->publish.qos);
		assert_int_equal(a->publish.dup, b->publish.dup);
		assert_int_equal(a->publish.retain, b->publish.retain);
		assert_bytes_eq(a->publish.topic, b->publish.topic);
		assert_int_equal(a->publish.packet_id, b->publish.packet_id);
		assert_props_eq(&a->publish.props, &b->publish.props);
		assert_bytes_eq(a->publish.payload, b->publish.payload);
		break;
	case MQTT_PUBACK:
	case MQTT_PUBREC:
	case MQTT_PUBREL:
	case MQTT_PUBCOMP:
		assert_int_equal(a->ack.packet_id, b->ack.packet_id);
		assert_int_equal(a->ack.rc, b->ack.rc);
		assert_props_eq(&a->ack.props, &b->ack.props);
		break;
	case MQTT_SUBSCRIBE:
	case MQTT_UNSUBSCRIBE:
		assert_int_equal(a->subscribe.packet_id, b->subscribe.packet_id);
		assert_props_eq(&a->subscribe.props, &b->subscribe.props);
		assert_entries_eq(a->type, a->subscribe.entries, b->subscribe.entries);
		break;
	case MQTT_SUBACK:
	case MQTT_UNSUBACK:
		assert_int_equal(a->suback.packet_id, b->suback.packet_id);
		assert_props_eq(&a->suback.props, &b->suback.props);
		assert_bytes_eq(a->suback.rcs, b->suback.rcs);
		break;
	case MQTT_DISCONNECT:
	case MQTT_AUTH:
		assert_int_equal(a->disconnect.rc, b->disconnect.rc);
		assert_props_eq(&a->disconnect.props, &b->disconnect.props);
		break;
	}
}

/* ---- samples: one valid packet of every type for each version ---- */

struct sample {
	const char *name;
	uint8_t version;
	bool prefix_never_valid;	/* no proper prefix of the body is a packet */
	struct mqtt_packet p;
};

static uint8_t user_run[128];
static struct moat_bytes user2;		/* two user properties */
static uint8_t sub_run[128], unsub_run[64];
static struct rd sub_entries_v3, sub_entries_v5, unsub_entries;

static void setup_runs(void)
{
	struct mqtt_sub_opts o1 = { .qos = 1 };
	struct mqtt_sub_opts o2 = { .qos = 2 };
	struct mqtt_sub_opts o5 = { .qos = 2, .no_local = true, .retain_as_published = true,
				    .retain_handling = 2 };
	struct mqtt_sub_opts o6 = { .qos = 0, .retain_handling = 1 };
	size_t n, m;

	n = props_user_append(user_run, sizeof(user_run), S("region"), S("eu-west"));
	n += props_user_append(user_run + n, sizeof(user_run) - n, S("k"), S(""));
	user2 = (struct moat_bytes){ user_run, n };

	n = pkt_sub_entry(sub_run, sizeof(sub_run), S("a/+/c"), &o1);
	n += pkt_sub_entry(sub_run + n, sizeof(sub_run) - n, S("#"), &o2);
	rd_init(&sub_entries_v3, sub_run, n);
	m = pkt_sub_entry(sub_run + n, sizeof(sub_run) - n, S("s/#"), &o5);
	m += pkt_sub_entry(sub_run + n + m, sizeof(sub_run) - n - m, S("$share/g/t"), &o6);
	rd_init(&sub_entries_v5, sub_run + n, m);

	n = pkt_unsub_entry(unsub_run, sizeof(unsub_run), S("a/+/c"));
	n += pkt_unsub_entry(unsub_run + n, sizeof(unsub_run) - n, S("$share/g/#"));
	rd_init(&unsub_entries, unsub_run, n);
}

static void with_user(struct mqtt_props *p)
{
	p->user = user2;
	p->user_count = 2;
}

static size_t make_samples(struct sample *s)
{
	size_t n = 0;
	struct mqtt_packet *p;

	setup_runs();

	/* CONNECT */
	for (uint8_t v = MQTT_V31; v <= MQTT_V5; v++) {
		s[n] = (struct sample){ .name = "CONNECT full", .version = v,
					.prefix_never_valid = true };
		p = &s[n++].p;
		p->type = MQTT_CONNECT;
		p->connect = (struct mqtt_connect){
			.version = v, .clean_start = true, .keep_alive_s = 60,
			.client_id = S("client-1"), .will_flag = true, .will_qos = 1,
			.will_retain = true, .will_topic = S("last/will"),
			.will_payload = S("gone"), .has_username = true, .has_password = true,
			.username = S("user"), .password = S("p\x01ss"),
		};
		if (v == MQTT_V5) {
			struct mqtt_props *cp = &p->connect.props, *wp = &p->connect.will_props;

			cp->session_expiry_s = 3600;
			cp->receive_max = 20;
			cp->max_packet_size = 65536;
			cp->topic_alias_max = 10;
			cp->request_problem_info = 1;
			cp->request_response_info = 1;
			cp->auth_method = S("SCRAM-SHA-256");
			cp->auth_data = L("\x01\x02");
			props_set(cp, MQTT_PROP_SESSION_EXPIRY);
			props_set(cp, MQTT_PROP_RECEIVE_MAX);
			props_set(cp, MQTT_PROP_MAX_PACKET_SIZE);
			props_set(cp, MQTT_PROP_TOPIC_ALIAS_MAX);
			props_set(cp, MQTT_PROP_REQUEST_PROBLEM_INFO);
			props_set(cp, MQTT_PROP_REQUEST_RESPONSE_INFO);
			props_set(cp, MQTT_PROP_AUTH_METHOD);
			props_set(cp, MQTT_PROP_AUTH_DATA);
			with_user(cp);
			wp->will_delay_s = 30;
			wp->payload_format = 1;
			wp->message_expiry_s = 120;
			wp->content_type = S("text/plain");
			wp->response_topic = S("reply/to");
			wp->correlation_data = L("\xff\x00");
			props_set(wp, MQTT_PROP_WILL_DELAY);
			props_set(wp, MQTT_PROP_PAYLOAD_FORMAT);
			props_set(wp, MQTT_PROP_MESSAGE_EXPIRY);
			props_set(wp, MQTT_PROP_CONTENT_TYPE);
			props_set(wp, MQTT_PROP_RESPONSE_TOPIC);
			props_set(wp, MQTT_PROP_CORRELATION_DATA);
			with_user(wp);
		}
		s[n] = (struct sample){ .name = "CONNECT minimal", .version = v,
					.prefix_never_valid = true };
		p = &s[n++].p;
		p->type = MQTT_CONNECT;
		p->connect = (struct mqtt_connect){ .version = v, .client_id = S("") };
	}

	for (uint8_t v = MQTT_V311; v <= MQTT_V5; v++) {
		bool v5 = v == MQTT_V5;

		/* CONNACK */
		s[n] = (struct sample){ .name = "CONNACK", .version = v, .prefix_never_valid = true };
		p = &s[n++].p;
		p->type = MQTT_CONNACK;
		p->connack.session_present = true;
		s[n] = (struct sample){ .name = "CONNACK refused", .version = v,
					.prefix_never_valid = true };
		p = &s[n++].p;
		p->type = MQTT_CONNACK;
		p->connack.rc = MQTT_RC_BAD_USER_PASS;
		if (v5) {
			struct mqtt_props *cp = &p->connack.props;

			p->connack.rc = MQTT_RC_SERVER_MOVED;
			cp->assigned_client_id = S("auto-7");
			cp->server_keep_alive_s = 30;
			cp->max_qos = 1;
			cp->retain_available = 0;
			cp->wildcard_sub_available = 1;
			cp->sub_id_available = 1;
			cp->shared_sub_available = 0;
			cp->response_info = S("resp/");
			cp->server_reference = S("other:1883");
			cp->reason_string = S("moved");
			cp->receive_max = 100;
			cp->topic_alias_max = 5;
			cp->max_packet_size = 1u << 20;
			cp->session_expiry_s = 0xffffffffu;
			cp->auth_method = S("PLAIN");
			for (unsigned id = 0; id < 64; id++) {
				static const uint8_t ids[] = {
					MQTT_PROP_ASSIGNED_CLIENT_ID, MQTT_PROP_SERVER_KEEP_ALIVE,
					MQTT_PROP_MAX_QOS, MQTT_PROP_RETAIN_AVAILABLE,
					MQTT_PROP_WILDCARD_SUB_AVAILABLE, MQTT_PROP_SUB_ID_AVAILABLE,
					MQTT_PROP_SHARED_SUB_AVAILABLE, MQTT_PROP_RESPONSE_INFO,
					MQTT_PROP_SERVER_REFERENCE, MQTT_PROP_REASON_STRING,
					MQTT_PROP_RECEIVE_MAX, MQTT_PROP_TOPIC_ALIAS_MAX,
					MQTT_PROP_MAX_PACKET_SIZE, MQTT_PROP_SESSION_EXPIRY,
					MQTT_PROP_AUTH_METHOD,
				};
				if (memchr(ids, (int)id, sizeof(ids)) != NULL)
					props_set(cp, (enum mqtt_prop_id)id);
			}
			with_user(cp);
		}

		/* PUBLISH at each QoS */
		for (uint8_t q = 0; q <= 2; q++) {
			s[n] = (struct sample){ .name = "PUBLISH", .version = v };
			p = &s[n++].p;
			p->type = MQTT_PUBLISH;
			p->publish = (struct mqtt_publish){
				.qos = q, .dup = q == 2, .retain = q == 1, .topic = S("sensors/t1"),
				.packet_id = q > 0 ? (uint16_t)(0xfff0 + q) : 0,
				.payload = S("21.5"),
			};
			if (v5 && q == 1) {
				struct mqtt_props *pp = &p->publish.props;

				pp->payload_format = 1;
				pp->message_expiry_s = 600;
				pp->topic_alias = 3;
				pp->response_topic = S("resp/t1");
				pp->correlation_data = L("\x00\x01\x02");
				pp->content_type = S("application/json");
				pp->sub_ids[0] = 1;
				pp->sub_ids[1] = MQTT_MAX_SUB_ID;
				pp->sub_id_count = 2;
				props_set(pp, MQTT_PROP_PAYLOAD_FORMAT);
				props_set(pp, MQTT_PROP_MESSAGE_EXPIRY);
				props_set(pp, MQTT_PROP_TOPIC_ALIAS);
				props_set(pp, MQTT_PROP_RESPONSE_TOPIC);
				props_set(pp, MQTT_PROP_CORRELATION_DATA);
				props_set(pp, MQTT_PROP_CONTENT_TYPE);
				props_set(pp, MQTT_PROP_SUB_ID);
				with_user(pp);
			}
		}
		if (v5) {
			s[n] = (struct sample){ .name = "PUBLISH alias only", .version = v };
			p = &s[n++].p;
			p->type = MQTT_PUBLISH;
			p->publish.topic = S("");
			p->publish.props.topic_alias = 7;
			props_set(&p->publish.props, MQTT_PROP_TOPIC_ALIAS);
			p->publish.payload = S("x");
		}

		/* PUBACK, PUBREC, PUBREL, PUBCOMP */
		for (uint8_t t = MQTT_PUBACK; t <= MQTT_PUBCOMP; t++) {
			s[n] = (struct sample){ .name = "ack", .version = v,
						.prefix_never_valid = !v5 };
			p = &s[n++].p;
			p->type = t;
			p->ack.packet_id = (uint16_t)(t * 1000);
			if (v5) {
				p->ack.rc = t == MQTT_PUBREL || t == MQTT_PUBCOMP
						    ? MQTT_RC_PACKET_ID_NOT_FOUND
						    : MQTT_RC_NO_MATCHING_SUBSCRIBERS;
				p->ack.props.reason_string = S("why");
				props_set(&p->ack.props, MQTT_PROP_REASON_STRING);
				with_user(&p->ack.props);
			}
		}

		/* SUBSCRIBE, SUBACK */
		s[n] = (struct sample){ .name = "SUBSCRIBE", .version = v };
		p = &s[n++].p;
		p->type = MQTT_SUBSCRIBE;
		p->subscribe.packet_id = 1;
		p->subscribe.entries = v5 ? sub_entries_v5 : sub_entries_v3;
		if (v5) {
			p->subscribe.props.sub_ids[0] = 268435455u;
			p->subscribe.props.sub_id_count = 1;
			props_set(&p->subscribe.props, MQTT_PROP_SUB_ID);
			with_user(&p->subscribe.props);
		}
		s[n] = (struct sample){ .name = "SUBACK", .version = v };
		p = &s[n++].p;
		p->type = MQTT_SUBACK;
		p->suback.packet_id = 65535;
		p->suback.rcs = v5 ? L("\x01\x02\x80\x9e") : L("\x01\x02\x80");
		if (v5) {
			p->suback.props.reason_string = S("partly");
			props_set(&p->suback.props, MQTT_PROP_REASON_STRING);
			with_user(&p->suback.props);
		}

		/* UNSUBSCRIBE, UNSUBACK */
		s[n] = (struct sample){ .name = "UNSUBSCRIBE", .version = v };
		p = &s[n++].p;
		p->type = MQTT_UNSUBSCRIBE;
		p->unsubscribe.packet_id = 2;
		p->unsubscribe.entries = unsub_entries;
		if (v5)
			with_user(&p->unsubscribe.props);
		s[n] = (struct sample){ .name = "UNSUBACK", .version = v,
					.prefix_never_valid = !v5 };
		p = &s[n++].p;
		p->type = MQTT_UNSUBACK;
		p->unsuback.packet_id = 2;
		if (v5) {
			p->unsuback.rcs = L("\x00\x11");
			p->unsuback.props.reason_string = S("done");
			props_set(&p->unsuback.props, MQTT_PROP_REASON_STRING);
		}

		/* PINGREQ, PINGRESP, DISCONNECT */
		s[n] = (struct sample){ .name = "PINGREQ", .version = v };
		s[n++].p.type = MQTT_PINGREQ;
		s[n] = (struct sample){ .name = "PINGRESP", .version = v };
		s[n++].p.type = MQTT_PINGRESP;
		s[n] = (struct sample){ .name = "DISCONNECT", .version = v };
		p = &s[n++].p;
		p->type = MQTT_DISCONNECT;
		if (v5) {
			p->disconnect.rc = MQTT_RC_DISCONNECT_WITH_WILL;
			p->disconnect.props.session_expiry_s = 10;
			p->disconnect.props.reason_string = S("bye");
			p->disconnect.props.server_reference = S("b:1883");
			props_set(&p->disconnect.props, MQTT_PROP_SESSION_EXPIRY);
			props_set(&p->disconnect.props, MQTT_PROP_REASON_STRING);
			props_set(&p->disconnect.props, MQTT_PROP_SERVER_REFERENCE);
			with_user(&p->disconnect.props);

			/* AUTH exists only in MQTT 5 */
			s[n] = (struct sample){ .name = "AUTH", .version = v };
			p = &s[n++].p;
			p->type = MQTT_AUTH;
			p->auth.rc = MQTT_RC_CONTINUE_AUTH;
			p->auth.props.auth_method = S("SCRAM-SHA-256");
			p->auth.props.auth_data = S("nonce");
			p->auth.props.reason_string = S("step 2");
			props_set(&p->auth.props, MQTT_PROP_AUTH_METHOD);
			props_set(&p->auth.props, MQTT_PROP_AUTH_DATA);
			props_set(&p->auth.props, MQTT_PROP_REASON_STRING);
			with_user(&p->auth.props);
		}
	}
	return n;
}

#define MAX_SAMPLES 64

static void every_packet_type_round_trips(void **state)
{
	static struct sample s[MAX_SAMPLES];
	size_t n = make_samples(s);
	unsigned seen[3][16] = { { 0 } };

	(void)state;
	for (size_t i = 0; i < n; i++) {
		uint8_t a[1024], b[1024];
		struct mqtt_packet d;
		size_t la, lb;

		la = encode(s[i].version, &s[i].p, a, sizeof(a));
		assert_int_equal(a[0] >> 4, s[i].p.type);
		if (decode(a, la, s[i].version, &d) != MOAT_OK)
			fail_msg("%s v%u: %s", s[i].name, s[i].version, d.why);
		assert_packet_eq(&s[i].p, &d);
		lb = encode(s[i].version, &d, b, sizeof(b));
		assert_int_equal(la, lb);
		assert_memory_equal(a, b, la);
		seen[s[i].version - MQTT_V31][s[i].p.type]++;
	}
	for (unsigned t = MQTT_CONNECT; t <= MQTT_AUTH; t++) {
		assert_true(seen[MQTT_V5 - MQTT_V31][t] > 0);
		if (t != MQTT_AUTH)
			assert_true(seen[MQTT_V311 - MQTT_V31][t] > 0);
	}
	assert_true(seen[0][MQTT_CONNECT] > 0);
}

static void v5_user_properties_iterate_in_order(void **state)
{
	static struct sample s[MAX_SAMPLES];
	size_t n = make_samples(s);
	uint8_t a[1024];
	struct mqtt_packet d;
	struct rd it;
	struct moat_bytes k, v;
	size_t i;

	(void)state;
	for (i = 0; i < n; i++)
		if (s[i].version == MQTT_V5 && s[i].p.type == MQTT_PUBLISH &&
		    s[i].p.publish.qos == 1)
			break;
	assert_true(i < n);
	assert_int_equal(decode(a, encode(MQTT_V5, &s[i].p, a, sizeof(a)), MQTT_V5, &d), MOAT_OK);
	assert_int_equal(d.publish.props.user_count, 2);
	rd_init(&it, d.publish.props.user.ptr, d.publish.props.user.len);
	assert_true(props_user_next(&it, &k, &v));
	assert_true(moat_bytes_eq(k, S("region")) && moat_bytes_eq(v, S("eu-west")));
	assert_true(props_user_next(&it, &k, &v));
	assert_true(moat_bytes_eq(k, S("k")) && v.len == 0);
	assert_false(props_user_next(&it, &k, &v));
}

static void user_properties_between_others_are_kept(void **state)
{
	/* PUBLISH v5: user, payload format, user; decoding keeps both users */
	static const uint8_t body[] = { 0, 1, 'a', 15, 0x26, 0, 1, 'x', 0, 1, '1', 0x01, 0x00,
					0x26, 0, 1, 'y', 0, 0 };
	size_t len;
	uint8_t *pkt = build(0x30, body, sizeof(body), &len);
	struct mqtt_packet d;
	struct rd it;
	struct moat_bytes k, v;

	(void)state;
	assert_int_equal(decode(pkt, len, MQTT_V5, &d), MOAT_OK);
	assert_int_equal(d.publish.props.user_count, 2);
	assert_true(props_has(&d.publish.props, MQTT_PROP_PAYLOAD_FORMAT));
	rd_init(&it, d.publish.props.user.ptr, d.publish.props.user.len);
	assert_true(props_user_next(&it, &k, &v));
	assert_true(moat_bytes_eq(k, S("x")) && moat_bytes_eq(v, S("1")));
	assert_true(props_user_next(&it, &k, &v));
	assert_true(moat_bytes_eq(k, S("y")) && v.len == 0);
	assert_false(props_user_next(&it, &k, &v));
	test_free(pkt);
}

static void truncated_packets_are_refused_or_exact(void **state)
{
	static struct sample s[MAX_SAMPLES];
	size_t n = make_samples(s);

	(void)state;
	for (size_t i = 0; i < n; i++) {
		uint8_t a[1024], again[1024];
		size_t la = encode(s[i].version, &s[i].p, a, sizeof(a));
		struct mqtt_frame f;

		assert_int_equal(frame_decode(a, la, UINT32_MAX, &f), MOAT_OK);
		for (uint32_t k = 0; k < f.rem_len; k++) {
			/* exactly k bytes on the heap, so ASan sees any over-read */
			uint8_t *body = test_malloc(k > 0 ? k : 1);
			struct mqtt_frame fk = f;
			struct mqtt_packet d;
			int rc;

			memcpy(body, a + f.hdr_len, k);
			fk.rem_len = k;
			rc = pkt_decode(&fk, body, s[i].version, &d);
			if (rc == MOAT_OK) {
				struct mqtt_frame fa;
				size_t l2;

				if (s[i].prefix_never_valid)
					fail_msg("%s v%u: prefix of %u bytes accepted", s[i].name,
						 s[i].version, k);
				/* what was accepted is exactly what the prefix holds */
				l2 = pkt_encode(again, sizeof(again), s[i].version, &d);
				assert_int_equal(frame_decode(again, l2, UINT32_MAX, &fa), MOAT_OK);
				assert_int_equal(fa.rem_len, k);
				assert_memory_equal(again + fa.hdr_len, body, k);
			} else {
				assert_true(rc == MOAT_E_MALFORMED || rc == MOAT_E_PROTOCOL);
				assert_non_null(d.why);
			}
			test_free(body);
		}
		/* framing: every prefix either waits for the header or announces more */
		for (size_t k = 0; k < la; k++) {
			struct mqtt_frame fk;
			int rc = frame_decode(a, k, UINT32_MAX, &fk);

			if (rc == MOAT_OK)
				assert_true((size_t)fk.hdr_len + fk.rem_len > k);
			else
				assert_int_equal(rc, MOAT_E_AGAIN);
		}
	}
}

/* ---- malformed and refused forms ---- */

struct bad_case {
	const char *name;
	uint8_t version;
	uint8_t first;
	const uint8_t *body;
	size_t len;
	int want;
};

static const struct bad_case bad_cases[] = {
	/* PUBLISH */
	{ "publish_qos3", 4, 0x36, BODY(0, 1, 'a', 0, 1), MOAT_E_MALFORMED },
	{ "publish_qos3_v5", 5, 0x36, BODY(0, 1, 'a', 0, 1, 0), MOAT_E_MALFORMED },
	{ "publish_dup_on_qos0", 4, 0x38, BODY(0, 1, 'a'), MOAT_E_MALFORMED },
	{ "publish_packet_id_zero", 4, 0x32, BODY(0, 1, 'a', 0, 0), MOAT_E_PROTOCOL },
	{ "publish_qos1_rl_topic_only", 4, 0x32, BODY(0, 1, 'a'), MOAT_E_MALFORMED },
	{ "publish_qos2_rl_topic_only_v5", 5, 0x34, BODY(0, 1, 'a'), MOAT_E_MALFORMED },
	{ "publish_topic_length_overruns", 4, 0x30, BODY(0, 9, 'a'), MOAT_E_MALFORMED },
	{ "publish_wildcard_topic", 4, 0x30, BODY(0, 3, 'a', '/', '#'), MOAT_E_PROTOCOL },
	{ "publish_plus_topic", 4, 0x30, BODY(0, 1, '+'), MOAT_E_PROTOCOL },
	{ "publish_overlong_utf8_topic", 4, 0x30, BODY(0, 2, 0xc0, 0x80), MOAT_E_BAD_UTF8 },
	{ "publish_nul_in_topic", 4, 0x30, BODY(0, 2, 'a', 0), MOAT_E_BAD_UTF8 },
	{ "publish_empty_topic_v4", 4, 0x30, BODY(0, 0), MOAT_E_PROTOCOL },
	{ "publish_empty_topic_without_alias", 5, 0x30, BODY(0, 0, 0), MOAT_E_PROTOCOL },
	{ "publish_missing_props_length", 5, 0x30, BODY(0, 1, 'a'), MOAT_E_MALFORMED },
	{ "publish_duplicate_property", 5, 0x30, BODY(0, 1, 'a', 4, 0x01, 0, 0x01, 0),
	  MOAT_E_PROTOCOL },
	{ "publish_property_not_allowed", 5, 0x30, BODY(0, 1, 'a', 5, 0x11, 0, 0, 0, 0),
	  MOAT_E_PROTOCOL },
	{ "publish_unknown_property", 5, 0x30, BODY(0, 1, 'a', 2, 0x05, 0), MOAT_E_MALFORMED },
	{ "publish_property_id_over_table", 5, 0x30, BODY(0, 1, 'a', 2, 0x7f, 0),
	  MOAT_E_MALFORMED },
	{ "publish_props_overrun_packet", 5, 0x30, BODY(0, 1, 'a', 9, 0x01, 0),
	  MOAT_E_MALFORMED },
	{ "publish_property_value_truncated", 5, 0x30, BODY(0, 1, 'a', 2, 0x02, 0),
	  MOAT_E_MALFORMED },
	{ "publish_props_length_overlong", 5, 0x30, BODY(0, 1, 'a', 0x80, 0x00),
	  MOAT_E_MALFORMED },
	{ "publish_topic_alias_zero", 5, 0x30, BODY(0, 1, 'a', 3, 0x23, 0, 0), MOAT_E_PROTOCOL },
	{ "publish_payload_format_2", 5, 0x30, BODY(0, 1, 'a', 2, 0x01, 2), MOAT_E_PROTOCOL },
	{ "publish_payload_not_utf8", 5, 0x30, BODY(0, 1, 'a', 2, 0x01, 1, 0xff),
	  MOAT_E_PAYLOAD_FORMAT },
	{ "publish_sub_id_zero", 5, 0x30, BODY(0, 1, 'a', 2, 0x0b, 0), MOAT_E_PROTOCOL },
	{ "publish_user_prop_bad_utf8", 5, 0x30, BODY(0, 1, 'a', 6, 0x26, 0, 1, 0x01, 0, 0),
	  MOAT_E_BAD_UTF8 },
	/* acknowledgements */
	{ "puback_packet_id_zero", 4, 0x40, BODY(0, 0), MOAT_E_PROTOCOL },
	{ "puback_truncated", 4, 0x40, BODY(0), MOAT_E_MALFORMED },
	{ "puback_trailing_byte_v4", 4, 0x40, BODY(0, 1, 0), MOAT_E_MALFORMED },
	{ "puback_property_not_allowed", 5, 0x40, BODY(0, 1, 0, 2, 0x01, 0), MOAT_E_PROTOCOL },
	{ "puback_trailing_after_props", 5, 0x40, BODY(0, 1, 0, 0, 7), MOAT_E_MALFORMED },
	{ "pubrel_flags_zero", 4, 0x60, BODY(0, 1), MOAT_E_MALFORMED },
	{ "pubrec_flags_two", 4, 0x52, BODY(0, 1), MOAT_E_MALFORMED },
	/* SUBSCRIBE */
	{ "subscribe_flags_zero", 4, 0x80, BODY(0, 1, 0, 1, 'a', 0), MOAT_E_MALFORMED },
	{ "subscribe_flags_three", 4, 0x83, BODY(0, 1, 0, 1, 'a', 0), MOAT_E_MALFORMED },
	{ "subscribe_packet_id_zero", 4, 0x82, BODY(0, 0, 0, 1, 'a', 0), MOAT_E_PROTOCOL },
	{ "subscribe_no_filters_v4", 4, 0x82, BODY(0, 1), MOAT_E_PROTOCOL },
	{ "subscribe_no_filters_v5", 5, 0x82, BODY(0, 1, 0), MOAT_E_PROTOCOL },
	{ "subscribe_qos3", 4, 0x82, BODY(0, 1, 0, 1, 'a', 3), MOAT_E_MALFORMED },
	{ "subscribe_v4_options_reserved_bits", 4, 0x82, BODY(0, 1, 0, 1, 'a', 0x04),
	  MOAT_E_MALFORMED },
	{ "subscribe_v5_options_reserved_bits", 5, 0x82, BODY(0, 1, 0, 0, 1, 'a', 0x40),
	  MOAT_E_MALFORMED },
	{ "subscribe_retain_handling_3", 5, 0x82, BODY(0, 1, 0, 0, 1, 'a', 0x30),
	  MOAT_E_PROTOCOL },
	{ "subscribe_no_local_on_shared", 5, 0x82,
	  BODY(0, 1, 0, 0, 10, '$', 's', 'h', 'a', 'r', 'e', '/', 'g', '/', 't', 0x04),
	  MOAT_E_PROTOCOL },
	{ "subscribe_no_local_on_bad_shared", 5, 0x82,
	  BODY(0, 1, 0, 0, 7, '$', 's', 'h', 'a', 'r', 'e', '/', 0x04), MOAT_E_PROTOCOL },
	{ "subscribe_duplicate_sub_id", 5, 0x82, BODY(0, 1, 4, 0x0b, 1, 0x0b, 2, 0, 1, 'a', 0),
	  MOAT_E_PROTOCOL },
	{ "subscribe_sub_id_zero", 5, 0x82, BODY(0, 1, 2, 0x0b, 0, 0, 1, 'a', 0),
	  MOAT_E_PROTOCOL },
	{ "subscribe_property_not_allowed", 5, 0x82, BODY(0, 1, 3, 0x23, 0, 1, 0, 1, 'a', 0),
	  MOAT_E_PROTOCOL },
	{ "subscribe_missing_options", 4, 0x82, BODY(0, 1, 0, 1, 'a'), MOAT_E_MALFORMED },
	{ "subscribe_second_entry_truncated", 4, 0x82, BODY(0, 1, 0, 1, 'a', 0, 0),
	  MOAT_E_MALFORMED },
	{ "subscribe_filter_bad_utf8", 4, 0x82, BODY(0, 1, 0, 1, 0x01, 0), MOAT_E_BAD_UTF8 },
	/* UNSUBSCRIBE, SUBACK, UNSUBACK */
	{ "unsubscribe_no_filters", 4, 0xa2, BODY(0, 1), MOAT_E_PROTOCOL },
	{ "unsubscribe_flags_zero", 4, 0xa0, BODY(0, 1, 0, 1, 'a'), MOAT_E_MALFORMED },
	{ "unsubscribe_packet_id_zero", 4, 0xa2, BODY(0, 0, 0, 1, 'a'), MOAT_E_PROTOCOL },
	{ "unsubscribe_filter_truncated", 4, 0xa2, BODY(0, 1, 0, 5, 'a'), MOAT_E_MALFORMED },
	{ "unsubscribe_filter_bad_utf8", 5, 0xa2, BODY(0, 1, 0, 0, 3, 0xed, 0xa0, 0x80),
	  MOAT_E_BAD_UTF8 },
	{ "suback_without_codes", 4, 0x90, BODY(0, 1), MOAT_E_PROTOCOL },
	{ "suback_packet_id_zero", 4, 0x90, BODY(0, 0, 0), MOAT_E_PROTOCOL },
	{ "unsuback_v4_with_codes", 4, 0xb0, BODY(0, 1, 0), MOAT_E_MALFORMED },
	{ "unsuback_v5_without_codes", 5, 0xb0, BODY(0, 1, 0), MOAT_E_PROTOCOL },
	/* CONNACK */
	{ "connack_reserved_flags", 4, 0x20, BODY(2, 0), MOAT_E_MALFORMED },
	{ "connack_fixed_header_flags", 4, 0x21, BODY(0, 0), MOAT_E_MALFORMED },
	{ "connack_v4_unknown_code", 4, 0x20, BODY(0, 6), MOAT_E_MALFORMED },
	{ "connack_session_present_refused", 4, 0x20, BODY(1, 5), MOAT_E_PROTOCOL },
	{ "connack_trailing_byte", 4, 0x20, BODY(0, 0, 0), MOAT_E_MALFORMED },
	{ "connack_v5_max_qos_2", 5, 0x20, BODY(0, 0, 2, 0x24, 2), MOAT_E_PROTOCOL },
	/* PINGREQ, DISCONNECT, AUTH */
	{ "pingreq_with_body", 4, 0xc0, BODY(0), MOAT_E_MALFORMED },
	{ "pingreq_flags", 4, 0xc1, NULL, 0, MOAT_E_MALFORMED },
	{ "disconnect_v4_with_body", 4, 0xe0, BODY(0), MOAT_E_MALFORMED },
	{ "disconnect_property_not_allowed", 5, 0xe0, BODY(0, 2, 0x01, 0), MOAT_E_PROTOCOL },
	{ "disconnect_flags", 5, 0xe2, NULL, 0, MOAT_E_MALFORMED },
	{ "auth_before_v5", 4, 0xf0, NULL, 0, MOAT_E_PROTOCOL },
	{ "auth_property_not_allowed", 5, 0xf0, BODY(0x18, 5, 0x11, 0, 0, 0, 1),
	  MOAT_E_PROTOCOL },
	/* CONNECT */
	{ "connect_reserved_flag", 4, 0x10, BODY(CONN_HDR(4, 0x03), 0, 1, 'c'), MOAT_E_MALFORMED },
	{ "connect_will_qos_without_will", 4, 0x10, BODY(CONN_HDR(4, 0x0a), 0, 1, 'c'),
	  MOAT_E_MALFORMED },
	{ "connect_will_retain_without_will", 4, 0x10, BODY(CONN_HDR(4, 0x22), 0, 1, 'c'),
	  MOAT_E_MALFORMED },
	{ "connect_will_qos3", 4, 0x10,
	  BODY(CONN_HDR(4, 0x1e), 0, 1, 'c', 0, 1, 'w', 0, 0), MOAT_E_MALFORMED },
	{ "connect_password_without_username_v311", 4, 0x10,
	  BODY(CONN_HDR(4, 0x42), 0, 1, 'c', 0, 1, 'p'), MOAT_E_PROTOCOL },
	{ "connect_password_without_username_v31", 4, 0x10,
	  BODY(0, 6, 'M', 'Q', 'I', 's', 'd', 'p', 3, 0x42, 0, 60, 0, 1, 'c', 0, 1, 'p'),
	  MOAT_E_PROTOCOL },
	{ "connect_unknown_protocol_name", 4, 0x10,
	  BODY(0, 4, 'M', 'Q', 'T', 'X', 4, 2, 0, 60, 0, 1, 'c'), MOAT_E_UNSUPPORTED },
	{ "connect_unknown_level", 4, 0x10, BODY(CONN_HDR(6, 2), 0, 1, 'c'), MOAT_E_UNSUPPORTED },
	{ "connect_mqtt_name_level_3", 4, 0x10, BODY(CONN_HDR(3, 2), 0, 1, 'c'),
	  MOAT_E_UNSUPPORTED },
	{ "connect_mqisdp_level_4", 4, 0x10,
	  BODY(0, 6, 'M', 'Q', 'I', 's', 'd', 'p', 4, 2, 0, 60, 0, 1, 'c'), MOAT_E_UNSUPPORTED },
	{ "connect_fixed_header_flags", 4, 0x11, BODY(CONN_HDR(4, 2), 0, 1, 'c'),
	  MOAT_E_MALFORMED },
	{ "connect_trailing_byte", 4, 0x10, BODY(CONN_HDR(4, 2), 0, 1, 'c', 0), MOAT_E_MALFORMED },
	{ "connect_client_id_truncated", 4, 0x10, BODY(CONN_HDR(4, 2), 0, 5, 'c'),
	  MOAT_E_MALFORMED },
	{ "connect_client_id_nul", 4, 0x10, BODY(CONN_HDR(4, 2), 0, 1, 0), MOAT_E_BAD_UTF8 },
	{ "connect_will_topic_wildcard", 4, 0x10,
	  BODY(CONN_HDR(4, 0x06), 0, 1, 'c', 0, 1, '#', 0, 0), MOAT_E_PROTOCOL },
	{ "connect_will_missing_payload", 4, 0x10, BODY(CONN_HDR(4, 0x06), 0, 1, 'c', 0, 1, 'w'),
	  MOAT_E_MALFORMED },
	{ "connect_username_flag_without_field", 4, 0x10, BODY(CONN_HDR(4, 0x82), 0, 1, 'c'),
	  MOAT_E_MALFORMED },
	{ "connect_receive_max_zero", 5, 0x10, BODY(CONN_HDR(5, 2), 3, 0x21, 0, 0, 0, 1, 'c'),
	  MOAT_E_PROTOCOL },
	{ "connect_max_packet_size_zero", 5, 0x10,
	  BODY(CONN_HDR(5, 2), 5, 0x27, 0, 0, 0, 0, 0, 1, 'c'), MOAT_E_PROTOCOL },
	{ "connect_duplicate_session_expiry", 5, 0x10,
	  BODY(CONN_HDR(5, 2), 10, 0x11, 0, 0, 0, 1, 0x11, 0, 0, 0, 2, 0, 1, 'c'),
	  MOAT_E_PROTOCOL },
	{ "connect_will_delay_outside_will", 5, 0x10,
	  BODY(CONN_HDR(5, 2), 5, 0x18, 0, 0, 0, 1, 0, 1, 'c'), MOAT_E_PROTOCOL },
	{ "connect_will_payload_not_utf8", 5, 0x10,
	  BODY(CONN_HDR(5, 0x06), 0, 0, 1, 'c', 2, 0x01, 1, 0, 1, 'w', 0, 1, 0xff),
	  MOAT_E_PAYLOAD_FORMAT },
};

static void malformed_packets_are_refused(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(bad_cases) / sizeof(bad_cases[0]); i++) {
		const struct bad_case *c = &bad_cases[i];
		size_t len;
		uint8_t *pkt = build(c->first, c->body, c->len, &len);
		struct mqtt_packet d;
		int rc = decode(pkt, len, c->version, &d);

		if (rc != c->want)
			fail_msg("%s: got %d, want %d (%s)", c->name, rc, c->want,
				 d.why != NULL ? d.why : "-");
		if (d.why == NULL)
			fail_msg("%s: no reason given", c->name);
		test_free(pkt);
	}
}

/* Positive boundaries next to the refusals above. */
static const struct bad_case good_cases[] = {
	{ "publish_qos0_topic_only", 4, 0x30, BODY(0, 1, 'a'), MOAT_OK },
	{ "publish_empty_topic_with_alias", 5, 0x30, BODY(0, 0, 3, 0x23, 0, 1), MOAT_OK },
	{ "publish_several_sub_ids", 5, 0x30, BODY(0, 1, 'a', 4, 0x0b, 1, 0x0b, 2), MOAT_OK },
	{ "publish_qos1_with_id", 4, 0x32, BODY(0, 1, 'a', 0, 1), MOAT_OK },
	{ "puback_v5_two_bytes", 5, 0x40, BODY(0, 1), MOAT_OK },
	{ "puback_v5_reason_only", 5, 0x40, BODY(0, 1, 0x10), MOAT_OK },
	{ "subscribe_no_local_plain_filter", 5, 0x82, BODY(0, 1, 0, 0, 1, 'a', 0x2e), MOAT_OK },
	{ "subscribe_shared_without_no_local", 5, 0x82,
	  BODY(0, 1, 0, 0, 10, '$', 's', 'h', 'a', 'r', 'e', '/', 'g', '/', 't', 0x01), MOAT_OK },
	{ "connect_v5_password_without_username", 5, 0x10,
	  BODY(CONN_HDR(5, 0x42), 0, 0, 1, 'c', 0, 1, 'p'), MOAT_OK },
	{ "connect_empty_client_id", 4, 0x10, BODY(CONN_HDR(4, 2), 0, 0), MOAT_OK },
	{ "disconnect_v5_empty", 5, 0xe0, NULL, 0, MOAT_OK },
	{ "auth_v5_empty", 5, 0xf0, NULL, 0, MOAT_OK },
	{ "pingresp", 4, 0xd0, NULL, 0, MOAT_OK },
};

static void valid_boundary_packets_are_accepted(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(good_cases) / sizeof(good_cases[0]); i++) {
		const struct bad_case *c = &good_cases[i];
		size_t len;
		uint8_t *pkt = build(c->first, c->body, c->len, &len);
		struct mqtt_packet d;
		int rc = decode(pkt, len, c->version, &d);

		if (rc != MOAT_OK)
			fail_msg("%s: got %d (%s)", c->name, rc, d.why != NULL ? d.why : "-");
		test_free(pkt);
	}
}

static void connect_reports_its_version_and_flags(void **state)
{
	static const uint8_t body[] = { CONN_HDR(4, 0xee), 0, 1, 'c', 0, 1, 'w', 0, 2, 'h', 'i',
					0, 1, 'u', 0, 1, 'p' };
	size_t len;
	uint8_t *pkt = build(0x10, body, sizeof(body), &len);
	struct mqtt_packet d;

	(void)state;
	/* the connection version argument is ignored for CONNECT */
	assert_int_equal(decode(pkt, len, MQTT_V5, &d), MOAT_OK);
	assert_int_equal(d.connect.version, MQTT_V311);
	assert_true(d.connect.clean_start && d.connect.will_flag && d.connect.will_retain);
	assert_int_equal(d.connect.will_qos, 1);
	assert_true(d.connect.has_username && d.connect.has_password);
	assert_int_equal(d.connect.keep_alive_s, 60);
	assert_true(moat_bytes_eq(d.connect.will_payload, S("hi")));
	assert_true(moat_bytes_eq(d.connect.username, S("u")));
	assert_true(moat_bytes_eq(d.connect.password, S("p")));
	test_free(pkt);
}

/* mosquitto's try_private: the level's top bit marks a bridge; the rest of
 * the level is checked as usual, and the encoder sets the bit back. */
static void connect_bridge_bit_is_read_and_written(void **state)
{
	static const uint8_t v311[] = { CONN_HDR(0x84, 2), 0, 1, 'c' };
	static const uint8_t v5[] = { CONN_HDR(0x85, 2), 0, 0, 1, 'c' };
	static const uint8_t v31[] = { 0, 6, 'M', 'Q', 'I', 's', 'd', 'p', 0x83, 2, 0, 60, 0, 1, 'c' };
	static const uint8_t bad_level[] = { CONN_HDR(0x86, 2), 0, 1, 'c' };
	static const uint8_t plain[] = { CONN_HDR(4, 2), 0, 1, 'c' };
	struct mqtt_packet d, e = { .type = MQTT_CONNECT };
	uint8_t *pkt, out[64];
	size_t len, n;

	(void)state;
	pkt = build(0x10, v311, sizeof(v311), &len);
	assert_int_equal(decode(pkt, len, MQTT_V311, &d), MOAT_OK);
	assert_int_equal(d.connect.version, MQTT_V311);
	assert_true(d.connect.bridge);
	test_free(pkt);
	pkt = build(0x10, v5, sizeof(v5), &len);
	assert_int_equal(decode(pkt, len, MQTT_V311, &d), MOAT_OK);
	assert_int_equal(d.connect.version, MQTT_V5);
	assert_true(d.connect.bridge);
	test_free(pkt);
	pkt = build(0x10, v31, sizeof(v31), &len);
	assert_int_equal(decode(pkt, len, MQTT_V311, &d), MOAT_OK);
	assert_int_equal(d.connect.version, MQTT_V31);
	assert_true(d.connect.bridge);
	test_free(pkt);
	pkt = build(0x10, bad_level, sizeof(bad_level), &len);
	assert_int_equal(decode(pkt, len, MQTT_V311, &d), MOAT_E_UNSUPPORTED);
	test_free(pkt);
	pkt = build(0x10, plain, sizeof(plain), &len);
	assert_int_equal(decode(pkt, len, MQTT_V311, &d), MOAT_OK);
	assert_false(d.connect.bridge);
	test_free(pkt);

	e.connect.bridge = true;
	e.connect.clean_start = true;
	e.connect.client_id = S("c");
	n = encode(MQTT_V311, &e, out, sizeof(out));
	assert_int_equal(out[8], 0x84);	/* fixed header 2, name 6 */
	assert_int_equal(decode(out, n, MQTT_V311, &d), MOAT_OK);
	assert_true(d.connect.bridge);
	assert_int_equal(d.connect.version, MQTT_V311);
}

/* A v5 PUBLISH whose properties are <count> empty user properties. */
static uint8_t *publish_with_users(unsigned count, size_t *len)
{
	size_t plen = 5u * count, n = 0;
	uint8_t *body = test_malloc(3 + 4 + plen);
	struct wr w;
	uint8_t *pkt;

	wr_init(&w, body, 3 + 4 + plen);
	wr_str(&w, S("a"));
	wr_varint(&w, (uint32_t)plen);
	for (unsigned i = 0; i < count; i++)
		n += props_user_append(body + w.len + n, plen - n, S(""), S(""));
	assert_int_equal(n, plen);
	pkt = build(0x30, body, w.len + plen, len);
	test_free(body);
	return pkt;
}

static void user_properties_over_the_cap_hit_the_limit(void **state)
{
	size_t len;
	uint8_t *pkt;
	struct mqtt_packet d;

	(void)state;
	pkt = publish_with_users(MQTT_MAX_USER_PROPS, &len);
	assert_int_equal(decode(pkt, len, MQTT_V5, &d), MOAT_OK);
	assert_int_equal(d.publish.props.user_count, MQTT_MAX_USER_PROPS);
	test_free(pkt);
	pkt = publish_with_users(MQTT_MAX_USER_PROPS + 1, &len);
	assert_int_equal(decode(pkt, len, MQTT_V5, &d), MOAT_E_LIMIT);
	assert_non_null(d.why);
	test_free(pkt);
}

static void v3_connack_codes_map_both_ways(void **state)
{
	(void)state;
	for (uint8_t code = MQTT_V3_ACCEPTED; code <= MQTT_V3_NOT_AUTHORIZED; code++) {
		uint8_t body[2] = { 0, code };
		size_t len;
		uint8_t *pkt = build(0x20, body, sizeof(body), &len);
		struct mqtt_packet d;
		uint8_t out[8];

		assert_int_equal(decode(pkt, len, MQTT_V311, &d), MOAT_OK);
		assert_int_equal(d.connack.rc, mqtt_v3_connack_to_rc(code));
		assert_int_equal(pkt_encode(out, sizeof(out), MQTT_V311, &d), 4);
		assert_int_equal(out[3], code);
		test_free(pkt);
	}
}

static void encode_refuses_oversize_body(void **state)
{
	struct mqtt_packet p = { .type = MQTT_PUBLISH };

	(void)state;
	p.publish.topic = S("t");
	p.publish.payload = (struct moat_bytes){ (const uint8_t *)"", MQTT_MAX_REMAINING_LENGTH };
	assert_int_equal(pkt_encode(NULL, 0, MQTT_V311, &p), 0);
	p.publish.payload.len = MQTT_MAX_REMAINING_LENGTH - 3;
	assert_int_equal(pkt_encode(NULL, 0, MQTT_V311, &p), MQTT_MAX_PACKET_SIZE);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(every_packet_type_round_trips),
		cmocka_unit_test(v5_user_properties_iterate_in_order),
		cmocka_unit_test(user_properties_between_others_are_kept),
		cmocka_unit_test(truncated_packets_are_refused_or_exact),
		cmocka_unit_test(malformed_packets_are_refused),
		cmocka_unit_test(valid_boundary_packets_are_accepted),
		cmocka_unit_test(connect_reports_its_version_and_flags),
		cmocka_unit_test(connect_bridge_bit_is_read_and_written),
		cmocka_unit_test(user_properties_over_the_cap_hit_the_limit),
		cmocka_unit_test(v3_connack_codes_map_both_ways),
		cmocka_unit_test(encode_refuses_oversize_body),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
