/*
 * One client connection: frames the bytes read by server.c, decodes each
 * packet once, applies it to the session layer and encodes the answers into
 * the connection's output buffer (flushed once per loop pass by server.c).
 */
#include "broker/broker.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include <moat/error.h>

#include "base/clock.h"
#include "base/log.h"
#include "base/text.h"
#include "broker/audit.h"
#include "broker/persist.h"
#include "cluster/cluster.h"
#include "broker/sc_topics.h"
#include "broker/security.h"
#include "codec/frame.h"
#include "codec/topic.h"
#include "conf/bridge_conf.h"

/* Lines that repeat per client: at most 10 per 10 s of each kind. */
static struct log_limiter bad_input_log, refusal_log, takeover_log;

int conn_send(struct conn *c, const uint8_t *p, size_t n)
{
	int rc = buf_append(&c->out, p, n);

	if (rc == MOAT_OK) {
		stat_add(&conn_stats(c)->bytes_out, n);
		server_mark_dirty(c);
	}
	return rc;
}

/* The properties of a packet the broker sends that may carry its Reason
 * String, or NULL for types that have none (PUBLISH carries the sender's). */
static struct mqtt_props *reason_props(struct mqtt_packet *p)
{
	switch (p->type) {
	case MQTT_CONNACK: return &p->connack.props;
	case MQTT_PUBACK:
	case MQTT_PUBREC:
	case MQTT_PUBREL:
	case MQTT_PUBCOMP: return &p->ack.props;
	case MQTT_SUBACK: return &p->suback.props;
	case MQTT_UNSUBACK: return &p->unsuback.props;
	case MQTT_DISCONNECT: return &p->disconnect.props;
	default: return NULL;
	}
}

static size_t encode_into(struct conn *c, const struct mqtt_packet *p)
{
	size_t spare = c->out.cap - c->out.len;

	return pkt_encode(c->out.data != NULL ? c->out.data + c->out.len : NULL, spare, c->version, p);
}

int conn_send_packet(struct conn *c, const struct mqtt_packet *p)
{
	struct mqtt_packet lean;
	struct mqtt_props *rp;
	size_t n = encode_into(c, p);

	if (c->version == MQTT_V5 && p->type != MQTT_PUBLISH) {
		lean = *p;
		rp = reason_props(&lean);
		/* Request Problem Information 0: Reason Strings only on CONNACK and
		 * DISCONNECT [MQTT-3.1.2-29]; and never one that would make the packet
		 * larger than the client takes [MQTT-3.1.2-25] */
		if (rp != NULL && props_has(rp, MQTT_PROP_REASON_STRING) &&
		    ((c->no_problem_info && p->type != MQTT_CONNACK && p->type != MQTT_DISCONNECT) ||
		     n == 0 || n > c->client_max_packet)) {
			rp->present &= ~(1ull << MQTT_PROP_REASON_STRING);
			rp->reason_string = (struct moat_bytes){ 0 };
			p = &lean;
			n = encode_into(c, p);
		}
	}
	if (n == 0 || n > c->client_max_packet)
		return MOAT_E_LIMIT;	/* [MQTT-3.1.2-24] never send more than the client accepts */
	if (n > c->out.cap - c->out.len) {
		if (buf_reserve(&c->out, n) < 0)
			return MOAT_E_NOMEM;
		pkt_encode(c->out.data + c->out.len, n, c->version, p);
	}
	c->out.len += n;
	stat_add(&conn_stats(c)->bytes_out, n);
	stat_add(&conn_stats(c)->pkts_out, 1);
	server_mark_dirty(c);
	return MOAT_OK;
}

/* Sends v5 PUBLISH <p> under a server-to-client topic alias when the client takes them. */
static int send_aliased(struct conn *c, struct mqtt_packet *p)
{
	bool known;
	uint16_t alias = alias_out_pick(&c->alias_out, p->publish.topic, &known);
	int rc;

	if (alias == 0)
		return conn_send_packet(c, p);
	p->publish.props.topic_alias = alias;
	props_set(&p->publish.props, MQTT_PROP_TOPIC_ALIAS);
	if (known)
		p->publish.topic = (struct moat_bytes){ 0 };
	rc = conn_send_packet(c, p);
	if (rc != MOAT_OK && !known)
		alias_out_forget(&c->alias_out, alias);
	return rc;
}

/* Counts a PUBLISH of <d> that went out (its first send only). */
static int count_publish(struct conn *c, const struct delivery *d, bool dup, int rc)
{
	if (rc == MOAT_OK && !dup && d->qos < 3) {
		stat_add(&conn_stats(c)->msgs_out[d->qos], 1);
		stat_add(&conn_stats(c)->pub_bytes_out[d->qos], d->msg->payload.len);
	}
	return rc;
}

int conn_send_publish(struct conn *c, const struct delivery *d, bool dup, uint64_t now_ms)
{
	const struct msg *m = d->msg;
	struct mqtt_packet p = { .type = MQTT_PUBLISH };

	p.publish.qos = d->qos;
	p.publish.dup = dup;
	p.publish.retain = d->retain;
	p.publish.topic = m->topic;
	p.publish.packet_id = d->packet_id;
	p.publish.payload = m->payload;
	if (c->version == MQTT_V5) {
		p.publish.props = m->props;
		if (m->has_expiry) {
			if (now_ms >= m->expire_at_ms)
				return MOAT_E_TIMEOUT;
			/* [MQTT-3.3.2-6] send the time that is left */
			p.publish.props.message_expiry_s =
				(uint32_t)((m->expire_at_ms - now_ms + 999) / 1000);
			props_set(&p.publish.props, MQTT_PROP_MESSAGE_EXPIRY);
		}
		for (uint8_t i = 0; i < d->sub_id_count; i++)
			p.publish.props.sub_ids[i] = d->sub_ids[i];
		p.publish.props.sub_id_count = d->sub_id_count;
		if (d->sub_id_count > 0)
			props_set(&p.publish.props, MQTT_PROP_SUB_ID);
		return count_publish(c, d, dup, send_aliased(c, &p));
	}
	return count_publish(c, d, dup, conn_send_packet(c, &p));
}

void conn_disconnect(struct conn *c, uint8_t rc, const char *reason)
{
	if (c->version == MQTT_V5 && c->connected && !c->closing) {
		struct mqtt_packet p = { .type = MQTT_DISCONNECT };

		p.disconnect.rc = rc;
		if (reason != NULL) {
			p.disconnect.props.reason_string = moat_bytes_str(reason);
			props_set(&p.disconnect.props, MQTT_PROP_REASON_STRING);
		}
		conn_send_packet(c, &p);
	}
	c->closing = true;
	server_mark_dirty(c);
}

/* Closes <c> for bad input: logs (rate-limited) and answers v5 with <rc>. */
static int refuse(struct conn *c, int err, uint8_t rc, const char *why)
{
	if (log_limiter_allow(&bad_input_log, 10, 10))
		log_notice("client %s (%s): %s, closing", c->sess != NULL ? c->sess->client_id : "?",
			   c->peer, why != NULL ? why : moat_strerror(err));
	conn_disconnect(c, rc, why);
	return err;
}

static uint8_t rc_for_error(int err)
{
	switch (err) {
	case MOAT_E_MALFORMED:
	case MOAT_E_BAD_UTF8: return MQTT_RC_MALFORMED;
	case MOAT_E_LIMIT: return MQTT_RC_QUOTA_EXCEEDED;
	case MOAT_E_PAYLOAD_FORMAT: return MQTT_RC_PAYLOAD_FORMAT_INVALID;
	default: return MQTT_RC_PROTOCOL_ERROR;
	}
}

static int send_connack(struct conn *c, bool present, uint8_t rc, struct mqtt_props *props)
{
	struct mqtt_packet p = { .type = MQTT_CONNACK };

	p.connack.session_present = present;
	p.connack.rc = rc;
	if (props != NULL && c->version == MQTT_V5)
		p.connack.props = *props;
	return conn_send_packet(c, &p);
}

int conn_refuse_connect(struct conn *c, uint8_t rc, const char *why)
{
	struct mqtt_props props = { 0 };

	if (log_limiter_allow(&refusal_log, 10, 10))
		log_notice("refused connection from %s: %s", c->peer, why);
	stat_add(&c->w->sys.clients_refused, 1);
	props.reason_string = moat_bytes_str(why);
	props_set(&props, MQTT_PROP_REASON_STRING);
	send_connack(c, false, rc, &props);
	c->closing = true;
	return MOAT_E_DENIED;
}

static struct msg *will_create(const struct mqtt_connect *k, uint64_t now_ms)
{
	struct mqtt_publish w = { .qos = k->will_qos, .retain = k->will_retain };

	w.topic = k->will_topic;
	w.payload = k->will_payload;
	w.props = k->will_props;
	return msg_create(&w, k->will_topic, now_ms);
}

/* How many QoS 2 PUBLISHes a client may leave awaiting PUBREL. A v5 client
 * is told it as Receive Maximum: max_inflight_messages, as mosquitto
 * announces, capped by max_inbound_qos2; a v3 client, told nothing, gets
 * max_inbound_qos2 alone. */
static uint32_t inbound_limit(const struct moat_config *cfg, uint8_t version)
{
	uint32_t lim = cfg->max_inbound_qos2 < 65535 ? cfg->max_inbound_qos2 : 65535;

	if (version == MQTT_V5 && cfg->max_inflight_messages > 0 && cfg->max_inflight_messages < lim)
		lim = cfg->max_inflight_messages;
	return lim;
}

void conn_take_over(struct conn *old)
{
	struct audit_event e = { .event = "takeover", .result = "ok", .listener = old->listener_port,
				 .address = old->peer, .client_id = old->sess->client_id,
				 .username = old->username, .reason = "a new connection took the session" };

	audit_write(&e);
	if (log_limiter_allow(&takeover_log, 10, 10))
		log_notice("client %s: session taken over by a new connection", old->sess->client_id);
	conn_disconnect(old, MQTT_RC_SESSION_TAKEN_OVER, "session taken over");
	conn_on_close(old);	/* detaches; the new connection attaches next */
}

/* Counts a client that got its CONNACK and keeps the most seen at once. */
static void note_connected(struct broker *b)
{
	unsigned now = atomic_fetch_add(&b->clients_connected, 1) + 1;
	unsigned max = atomic_load(&b->clients_maximum);

	while (now > max && !atomic_compare_exchange_weak(&b->clients_maximum, &max, now))
		;
}

/* $SYS/ is the broker's: bridges publish their state (and set their Will)
 * under $SYS/broker/connection/<client id>/ (mosquitto's notifications),
 * only their own, and only when authenticated or granted by the ACL (checked
 * before); a bridge inside this broker may publish anywhere in $SYS. */
static bool may_publish_sys(const struct conn *c, struct moat_bytes client_id,
			    struct moat_bytes topic)
{
	static const char area[] = "$SYS/broker/connection/";
	const size_t n = sizeof(area) - 1;

	if (topic.len < 5 || memcmp(topic.ptr, "$SYS/", 5) != 0 || c->internal)
		return true;
	if (!c->bridge || (c->username == NULL && c->w->security->acl == NULL &&
			   c->w->security->policies == NULL))
		return false;
	return topic.len > n + client_id.len + 1 && memcmp(topic.ptr, area, n) == 0 &&
	       memcmp(topic.ptr + n, client_id.ptr, client_id.len) == 0 &&
	       topic.ptr[n + client_id.len] == '/';
}

static int on_connect(struct conn *c, const struct mqtt_connect *k, struct moat_bytes raw,
		      uint64_t now_ms)
{
	struct broker *b = c->b;
	const struct moat_config *cfg = b->cfg;
	struct mqtt_props ack = { 0 };
	struct session *s;
	char assigned[40];
	struct moat_bytes id = k->client_id;
	bool present = false, created;
	uint16_t keep_alive = k->keep_alive_s;

	c->version = k->version;
	c->bridge = k->bridge;	/* try_private: see on_subscribe */
	/* what the client accepts applies to the CONNACK already, refusals included */
	c->client_receive_max = props_has(&k->props, MQTT_PROP_RECEIVE_MAX) ? k->props.receive_max : 65535;
	c->client_max_packet = props_has(&k->props, MQTT_PROP_MAX_PACKET_SIZE) ? k->props.max_packet_size
									      : MQTT_MAX_PACKET_SIZE;
	c->no_problem_info = props_has(&k->props, MQTT_PROP_REQUEST_PROBLEM_INFO) &&
			     k->props.request_problem_info == 0;
	if (id.len == 0) {
		uint8_t rnd[12];

		if ((k->version != MQTT_V5 && !k->clean_start) || k->version == MQTT_V31)
			return conn_refuse_connect(c, MQTT_RC_CLIENT_ID_INVALID, "empty client id without clean session");
		if (auth_assigned_client_id(c) != NULL) {
			/* a replayed CONNECT keeps the id authentication saw and audited */
			snprintf(assigned, sizeof(assigned), "%s", auth_assigned_client_id(c));
		} else if (getrandom(rnd, sizeof(rnd), 0) != (ssize_t)sizeof(rnd)) {
			return conn_refuse_connect(c, MQTT_RC_SERVER_UNAVAILABLE, "no randomness for a client id");
		} else {
			int n = snprintf(assigned, sizeof(assigned), "moat-");

			for (size_t i = 0; i < sizeof(rnd); i++)
				n += snprintf(assigned + n, sizeof(assigned) - (size_t)n, "%02x", rnd[i]);
		}
		id = moat_bytes_str(assigned);
		if (k->version == MQTT_V5) {
			ack.assigned_client_id = id;
			props_set(&ack, MQTT_PROP_ASSIGNED_CLIENT_ID);
		}
	}
	if (c->auth_state != AUTH_OK) {
		int rc = auth_connect(c, k, id, raw, now_ms);

		if (rc != MOAT_OK)
			return rc;
	}
	if (c->internal && k->has_username && c->username == NULL) {
		c->username = text_dup_bytes(k->username); /* local_username: logs and audit */
		if (c->username == NULL)
			return conn_refuse_connect(c, MQTT_RC_SERVER_UNAVAILABLE, "out of memory");
	}
	if (!c->internal && bridge_conf_is_local_id(cfg->bridges, id.ptr, id.len))
		return conn_refuse_connect(c, MQTT_RC_NOT_AUTHORIZED,
					   "the client id of a bridge's local session");
	if (c->w->revoked != NULL) {
		char *cid = text_dup_bytes(id);
		const char *why = cid != NULL ? revoked_conn(c, cid) : NULL;

		free(cid);
		if (why != NULL)
			return conn_refuse_connect(c, MQTT_RC_NOT_AUTHORIZED, why);
	}
	if (keep_alive > cfg->max_keepalive || (keep_alive == 0 && cfg->max_keepalive < 65535)) {
		if (k->version != MQTT_V5)
			return conn_refuse_connect(c, MQTT_RC_CLIENT_ID_INVALID, "keep alive above max_keepalive");
		keep_alive = cfg->max_keepalive;	/* v5: Server Keep Alive [MQTT-3.2.2-21] */
		ack.server_keep_alive_s = keep_alive;
		props_set(&ack, MQTT_PROP_SERVER_KEEP_ALIVE);
	}
	c->keep_alive_s = keep_alive;

	if (k->version == MQTT_V5 && props_has(&k->props, MQTT_PROP_TOPIC_ALIAS_MAX))
		alias_out_init(&c->alias_out, k->props.topic_alias_max);
	if (k->version == MQTT_V5 && cfg->max_topic_alias > 0) {
		c->alias_max = cfg->max_topic_alias;
		ack.topic_alias_max = cfg->max_topic_alias;
		props_set(&ack, MQTT_PROP_TOPIC_ALIAS_MAX);
	}
	if (k->version == MQTT_V5) {
		ack.receive_max = (uint16_t)inbound_limit(cfg, MQTT_V5);
		props_set(&ack, MQTT_PROP_RECEIVE_MAX);
		if (!cfg->retain_available) {
			ack.retain_available = 0;
			props_set(&ack, MQTT_PROP_RETAIN_AVAILABLE);
		}
		if (cfg->max_packet_size > 0) {
			ack.max_packet_size = cfg->max_packet_size;
			props_set(&ack, MQTT_PROP_MAX_PACKET_SIZE);
		}
	}
	if (k->will_flag && k->will_retain && !cfg->retain_available)
		return conn_refuse_connect(c, MQTT_RC_RETAIN_NOT_SUPPORTED, "retained will, retain unavailable");
	if (k->will_flag && c->w->security->acl != NULL) {
		char *cid = malloc(id.len + 1);
		bool ok;

		if (cid == NULL)
			return MOAT_E_NOMEM;
		memcpy(cid, id.ptr, id.len);
		cid[id.len] = '\0';
		ok = authz_conn(c->w, c, cid, k->will_topic, ACCESS_WRITE);	/* emqx#8978 */
		free(cid);
		if (!ok)
			return conn_refuse_connect(c, MQTT_RC_NOT_AUTHORIZED, "not authorized to publish the Will topic");
	}
	if (k->will_flag && !may_publish_sys(c, id, k->will_topic))
		return conn_refuse_connect(c, MQTT_RC_NOT_AUTHORIZED,
					   "a Will in $SYS, which is reserved for the broker");

	/* Nothing above changed shared state, so the CONNECT can be handed over whole. */
	s = sess_claim(c->w, id, &created);
	if (s == NULL)
		return conn_refuse_connect(c, MQTT_RC_SERVER_UNAVAILABLE, "out of memory");
	if (s->owner != c->w) {
		log_debug("client %.*s: its session lives on worker %u; handing the connection over",
			  (int)id.len, (const char *)id.ptr, s->owner->id);
		c->handoff_to = s->owner;	/* its owner's loop handles this CONNECT again */
		return MOAT_OK;
	}
	if (!created && s->internal != c->internal) /* a bridge's session is its link's alone */
		return conn_refuse_connect(c, MQTT_RC_NOT_AUTHORIZED,
					   c->internal ? "a client holds the bridge's local session"
						       : "the session of a bridge's local link");
	if (!created && s->conn != NULL) {
		conn_take_over(s->conn);
		s = sess_claim(c->w, id, &created);	/* a new one if the old had session expiry 0 */
		if (s == NULL)
			return conn_refuse_connect(c, MQTT_RC_SERVER_UNAVAILABLE, "out of memory");
		if (s->owner != c->w) {
			c->handoff_to = s->owner;
			return MOAT_OK;
		}
	}
	if (!created && !c->internal && !authz_same_user(s, c)) {
		/* another user's session: never inherit its messages or subscriptions */
		if (log_limiter_allow(&takeover_log, 10, 10))
			log_notice("client %s: resumed by another user; its session starts clean",
				   s->client_id);
		sess_reset(c->w, s);
	} else if (!created && k->clean_start) {
		sess_reset(c->w, s);
	} else if (!created) {
		present = true;
		if (s->will != NULL) {
			msg_unref(s->will);	/* resumed before the will delay ended [MQTT-3.1.3-9] */
			s->will = NULL;
			persist_will(c->w, s);
		}
	}
	if (k->will_flag) {
		c->will = will_create(k, now_ms);
		if (c->will == NULL)
			return conn_refuse_connect(c, MQTT_RC_SERVER_UNAVAILABLE, "out of memory");
		c->will_delay_s = k->will_props.will_delay_s;
	}
	s->version = k->version;
	if (k->version == MQTT_V5)
		s->expiry_s = k->props.session_expiry_s;
	else if (k->clean_start)
		s->expiry_s = 0;
	else if (cfg->persistent_client_expiry_s < 0)
		s->expiry_s = UINT32_MAX;
	else
		s->expiry_s = (uint32_t)(cfg->persistent_client_expiry_s < UINT32_MAX - 1
						 ? cfg->persistent_client_expiry_s
						 : UINT32_MAX - 1);
	s->conn = c;
	atomic_store_explicit(&s->last_ack_ms, now_ms, memory_order_relaxed);
	atomic_store_explicit(&s->online, true, memory_order_relaxed);
	if (authz_set_identity(s, c) < 0)
		return conn_refuse_connect(c, MQTT_RC_SERVER_UNAVAILABLE, "out of memory");
	c->sess = s;
	c->connected = true;
	persist_session_save(c->w, s, 0);
	present = cluster_session_connect(c, k->clean_start, present);
	atomic_fetch_add_explicit(&b->clients_total_seen, 1, memory_order_relaxed);
	note_connected(b);
	stat_add(&c->w->sys.connects, 1);
	auth_connack_props(c, &ack);
	send_connack(c, present, MQTT_RC_SUCCESS, &ack);
	auth_connected(c);
	log_info("client %s connected from %s (MQTT %s, keep alive %u)%s", s->client_id, c->peer,
		 k->version == MQTT_V5 ? "5" : k->version == MQTT_V311 ? "3.1.1" : "3.1", keep_alive,
		 c->bridge ? " as a bridge" : "");
	if (present)
		sess_resend_inflight(c->w, s);
	sess_pump(c->w, s);
	return MOAT_OK;
}

static bool qos2_in_has(const struct session *s, uint16_t id, uint32_t *at)
{
	for (uint32_t i = 0; i < s->qos2_in_count; i++) {
		if (s->qos2_in[i] == id) {
			*at = i;
			return true;
		}
	}
	return false;
}

static int send_ack(struct conn *c, uint8_t type, uint16_t id, uint8_t rc, const char *reason)
{
	struct mqtt_packet p = { .type = type };

	p.ack.packet_id = id;
	p.ack.rc = rc;
	if (reason != NULL && c->version == MQTT_V5) {
		p.ack.props.reason_string = moat_bytes_str(reason);
		props_set(&p.ack.props, MQTT_PROP_REASON_STRING);
	}
	return conn_send_packet(c, &p);
}

/* Resolves the topic of a v5 PUBLISH that may use a topic alias. */
static int resolve_alias(struct conn *c, const struct mqtt_publish *p, struct moat_bytes *topic)
{
	uint16_t a = p->props.topic_alias;

	*topic = p->topic;
	if (!props_has(&p->props, MQTT_PROP_TOPIC_ALIAS))
		return MOAT_OK;
	if (a == 0 || a > c->alias_max)
		return refuse(c, MOAT_E_PROTOCOL, MQTT_RC_TOPIC_ALIAS_INVALID, "topic alias out of range");
	if (c->aliases == NULL) {
		c->aliases = calloc(c->alias_max, sizeof(*c->aliases));
		if (c->aliases == NULL)
			return MOAT_E_NOMEM;
	}
	if (p->topic.len > 0) {
		char *t = malloc(p->topic.len + 1);

		if (t == NULL)
			return MOAT_E_NOMEM;
		memcpy(t, p->topic.ptr, p->topic.len);
		t[p->topic.len] = '\0';
		free(c->aliases[a - 1]);
		c->aliases[a - 1] = t;
		return MOAT_OK;
	}
	if (c->aliases[a - 1] == NULL)
		return refuse(c, MOAT_E_PROTOCOL, MQTT_RC_PROTOCOL_ERROR, "unknown topic alias");
	*topic = moat_bytes_str(c->aliases[a - 1]);
	return MOAT_OK;
}

/* Counts a PUBLISH the broker refused (not routed: ACL, $SYS, a limit);
 * returns <rc>. */
static int publish_refused(struct conn *c, int rc)
{
	stat_add(&c->w->sys.publish_refused, 1);
	return rc;
}

static int on_publish(struct conn *c, const struct mqtt_publish *p, uint64_t now_ms)
{
	struct broker *b = c->b;
	struct session *s = c->sess;
	struct moat_bytes topic;
	struct msg *m;
	const char *full;
	uint32_t at;
	size_t n;
	bool congested;
	int rc;

	if (props_has(&p->props, MQTT_PROP_SUB_ID))
		return refuse(c, MOAT_E_PROTOCOL, MQTT_RC_PROTOCOL_ERROR,
			      "subscription identifier in a client PUBLISH"); /* [MQTT-3.3.4-6] */
	rc = resolve_alias(c, p, &topic);
	if (rc < 0)
		return rc;
	if (p->retain && !b->cfg->retain_available)
		return refuse(c, MOAT_E_PROTOCOL, MQTT_RC_RETAIN_NOT_SUPPORTED, "retain is not available");
	stat_add(&conn_stats(c)->msgs_in[p->qos], 1);
	stat_add(&conn_stats(c)->pub_bytes_in[p->qos], p->payload.len);
	if (p->qos == 2 && qos2_in_has(s, p->packet_id, &at))
		return send_ack(c, MQTT_PUBREC, p->packet_id, 0, NULL);	/* duplicate: already routed */
	if (p->qos == 2 && s->qos2_in_count >= inbound_limit(b->cfg, c->version))
		return publish_refused(c, refuse(c, MOAT_E_LIMIT, MQTT_RC_RECEIVE_MAX_EXCEEDED,
						 "too many QoS 2 messages awaiting PUBREL")); /* CVE-2023-28366 */
	if (p->props.user_count > b->cfg->max_user_properties ||
	    p->props.user.len > b->cfg->max_user_property_bytes)
		return publish_refused(c, refuse(c, MOAT_E_LIMIT, MQTT_RC_QUOTA_EXCEEDED,
						 "user properties over max_user_properties or max_user_property_bytes"));
	if ((b->cfg->message_size_limit > 0 && p->payload.len > b->cfg->message_size_limit) ||
	    topic.len > b->cfg->max_topic_length || topic_levels(topic) > b->cfg->max_topic_levels) {
		publish_refused(c, MOAT_OK);
		if (p->qos == 0)
			return MOAT_OK;
		return send_ack(c, p->qos == 1 ? MQTT_PUBACK : MQTT_PUBREC, p->packet_id,
				MQTT_RC_IMPL_SPECIFIC, "message over the broker's size or depth limit");
	}
	if (!authz_session(c->w, s, topic, ACCESS_WRITE)) {	/* after alias resolution: nanomq#2343 */
		publish_refused(c, MOAT_OK);
		if (p->qos == 0 || c->version != MQTT_V5)
			return p->qos == 0 ? MOAT_OK
					   : send_ack(c, p->qos == 1 ? MQTT_PUBACK : MQTT_PUBREC, p->packet_id, 0,
						      NULL);	/* v3 has no refusal: dropped, as mosquitto */
		return send_ack(c, p->qos == 1 ? MQTT_PUBACK : MQTT_PUBREC, p->packet_id,
				MQTT_RC_NOT_AUTHORIZED, "not authorized to publish on this topic");
	}
	if (!may_publish_sys(c, moat_bytes_str(s->client_id), topic)) {
		publish_refused(c, MOAT_OK);
		if (p->qos == 0)
			return MOAT_OK;	/* clients may not publish into $SYS */
		return send_ack(c, p->qos == 1 ? MQTT_PUBACK : MQTT_PUBREC, p->packet_id,
				MQTT_RC_NOT_AUTHORIZED, "$SYS is reserved for the broker");
	}
	if (topic.len == strlen(SC_REVOKED_TOPIC) && memcmp(topic.ptr, SC_REVOKED_TOPIC, topic.len) == 0) {
		const char *why = NULL;	/* only the Security Center gets here (sc_topics.c) */

		if (revocation_receive(c->w, p->payload, &why) < 0) {
			log_notice("client %s: revocation list refused: %s", s->client_id, why);
			return p->qos == 0 ? MOAT_OK
					   : send_ack(c, p->qos == 1 ? MQTT_PUBACK : MQTT_PUBREC, p->packet_id,
						      c->version == MQTT_V5 ? MQTT_RC_NOT_AUTHORIZED : 0, why);
		}
	}
	/* the store is full, or (degraded cluster) the queue for other nodes */
	full = NULL;
	if (p->qos > 0 && persist_refusing(b))
		full = "the store is full";
	else if (p->qos > 0 && cluster_queue_full(c->w, topic, p->payload.len))
		full = "the cluster's outbound queue is full";
	if (full != NULL) {
		stat_add(&c->w->sys.publish_dropped, 1);
		/* v3 has no refusal, and libmoat drops what a v5 refusal answers: a
		 * bridge's link would lose what the remote broker has been told is
		 * delivered; both send it again later */
		if (c->version != MQTT_V5 || c->internal)
			return refuse(c, MOAT_E_LIMIT, 0, full);
		return send_ack(c, p->qos == 1 ? MQTT_PUBACK : MQTT_PUBREC, p->packet_id,
				MQTT_RC_QUOTA_EXCEEDED, full);
	}
	m = msg_create(p, topic, now_ms);
	if (m == NULL)
		return MOAT_E_NOMEM;
	m->origin = s;
	if (m->retain && (c->w->security->acl != NULL || c->w->security->policies != NULL) &&
	    authz_set_author(m, s) < 0) {
		msg_unref(m);
		return MOAT_E_NOMEM;
	}
	n = broker_publish(c->w, m, &congested);
	msg_unref(m);
	c->throttle = congested;	/* reading pauses after this packet (server.c) */
	if (p->qos == 1)
		return send_ack(c, MQTT_PUBACK, p->packet_id,
				n == 0 && c->version == MQTT_V5 ? MQTT_RC_NO_MATCHING_SUBSCRIBERS : 0, NULL);
	if (p->qos == 2) {
		rc = sess_qos2_in_add(s, p->packet_id);
		if (rc < 0)
			return rc;
		persist_qos2_in(c->w, s, p->packet_id, true);
		return send_ack(c, MQTT_PUBREC, p->packet_id,
				n == 0 && c->version == MQTT_V5 ? MQTT_RC_NO_MATCHING_SUBSCRIBERS : 0, NULL);
	}
	return MOAT_OK;
}

static int on_pubrel(struct conn *c, const struct mqtt_ack *a)
{
	struct session *s = c->sess;
	uint32_t at;

	if (!qos2_in_has(s, a->packet_id, &at))
		return send_ack(c, MQTT_PUBCOMP, a->packet_id,
				c->version == MQTT_V5 ? MQTT_RC_PACKET_ID_NOT_FOUND : 0, NULL);
	s->qos2_in[at] = s->qos2_in[--s->qos2_in_count];
	persist_qos2_in(c->w, s, a->packet_id, false);
	return send_ack(c, MQTT_PUBCOMP, a->packet_id, 0, NULL);
}

static int on_subscribe(struct conn *c, const struct mqtt_subscribe *sp)
{
	struct broker *b = c->b;
	struct mqtt_packet ack = { .type = MQTT_SUBACK };
	uint32_t sub_id = sp->props.sub_id_count > 0 ? sp->props.sub_ids[0] : 0;
	struct moat_bytes filter, group, inner;
	struct mqtt_sub_opts opts;
	uint8_t rcs[256], *codes = rcs;
	size_t n = 0, count = 0;
	struct rd it = sp->entries;
	int status[256], *st = status;
	int rc;

	while (sub_next(&it, &filter, &opts))
		count++;
	if (count > 256) {
		codes = malloc(count);
		st = malloc(count * sizeof(*st));
		if (codes == NULL || st == NULL) {
			free(codes);
			free(st);
			return MOAT_E_NOMEM;
		}
	}
	it = sp->entries;
	while (sub_next(&it, &filter, &opts)) {
		if (c->bridge) {
			/* mosquitto's bridge rules: what a bridge brought in does not
			 * go back to it, and retained messages stay retained */
			opts.no_local = true;
			opts.retain_as_published = true;
		}
		if (!authz_session(c->w, c->sess, filter, ACCESS_SUBSCRIBE)) {
			st[n] = MOAT_E_DENIED;	/* never added: moquette#919 */
			codes[n] = MQTT_RC_NOT_AUTHORIZED;
		} else {
			st[n] = sess_subscribe(b, c->sess, filter, &opts, sub_id, &codes[n]);
			if (st[n] >= 0)
				persist_sub_save(c->w, c->sess, filter, &opts, sub_id);
		}
		if (c->version != MQTT_V5 && codes[n] >= 0x80)
			codes[n] = 0x80;
		if (log_enabled(LOG_T_SUBSCRIBE))
			log_msg(LOG_T_SUBSCRIBE, "%s %u %.*s", c->sess->client_id, opts.qos,
				(int)filter.len, (const char *)filter.ptr);
		n++;
	}
	cluster_session_changed(c->w, c->sess);
	ack.suback.packet_id = sp->packet_id;
	ack.suback.rcs = (struct moat_bytes){ codes, n };
	rc = conn_send_packet(c, &ack);
	/* retained messages follow the SUBACK [MQTT-3.8.4-4], per retain handling */
	it = sp->entries;
	for (size_t i = 0; rc == MOAT_OK && sub_next(&it, &filter, &opts); i++) {
		if (st[i] < 0 || topic_share_parse(filter, &group, &inner) != MOAT_E_NOTFOUND)
			continue;	/* only a new non-shared subscription gets retained messages (v5 §3.3.1.3) */
		if (opts.retain_handling == 0 || (opts.retain_handling == 1 && st[i] == 0))
			sess_deliver_retained(c->w, c->sess, filter, &opts, sub_id);
	}
	if (codes != rcs) {
		free(codes);
		free(st);
	}
	return rc;
}

static int on_unsubscribe(struct conn *c, const struct mqtt_unsubscribe *u)
{
	struct mqtt_packet ack = { .type = MQTT_UNSUBACK };
	struct moat_bytes filter;
	struct rd it = u->entries;
	uint8_t rcs[256];
	size_t n = 0;

	while (unsub_next(&it, &filter)) {
		uint8_t r = sess_unsubscribe(c->b, c->sess, filter);

		if (r == MQTT_RC_SUCCESS)
			persist_sub_drop(c->w, c->sess, filter);

		if (n < sizeof(rcs))
			rcs[n++] = r;
		else
			return refuse(c, MOAT_E_LIMIT, MQTT_RC_QUOTA_EXCEEDED, "more than 256 filters in one UNSUBSCRIBE");
	}
	cluster_session_changed(c->w, c->sess);
	ack.unsuback.packet_id = u->packet_id;
	ack.unsuback.rcs = (struct moat_bytes){ rcs, n };
	return conn_send_packet(c, &ack);
}

static int on_disconnect(struct conn *c, const struct mqtt_disconnect *d)
{
	struct session *s = c->sess;

	if (props_has(&d->props, MQTT_PROP_SESSION_EXPIRY)) {
		if (s->expiry_s == 0 && d->props.session_expiry_s != 0)
			return refuse(c, MOAT_E_PROTOCOL, MQTT_RC_PROTOCOL_ERROR,
				      "session expiry set on DISCONNECT after 0 at CONNECT"); /* [MQTT-3.14.2-2] */
		s->expiry_s = d->props.session_expiry_s;
	}
	if (d->rc != MQTT_RC_DISCONNECT_WITH_WILL) {
		msg_unref(c->will);	/* normal disconnect: no Will [MQTT-3.14.4-3] */
		c->will = NULL;
	}
	c->closing = true;
	server_mark_dirty(c);
	return MOAT_E_CLOSED;
}

/* Handles a packet whose answer promises durability (PUBACK, PUBREC,
 * PUBREL, PUBCOMP, SUBACK): the connection's output waits for the store
 * when handling it wrote anything (persist.h). */
static int dispatch_durable(struct conn *c, struct mqtt_packet *p, uint64_t now_ms)
{
	uint32_t mark = persist_mark(c->w);
	uint64_t cluster_mark_before = cluster_mark(c->w);
	int rc = MOAT_OK;

	switch (p->type) {
	case MQTT_PUBLISH: rc = on_publish(c, &p->publish, now_ms); break;
	case MQTT_PUBREC: sess_on_ack(c->w, c->sess, p->type, p->ack.packet_id, p->ack.rc); break;
	case MQTT_PUBREL: rc = on_pubrel(c, &p->ack); break;
	default: rc = on_subscribe(c, &p->subscribe); break;
	}
	persist_gate_since(c, mark);
	cluster_gate_since(c, cluster_mark_before);
	return rc;
}

static int dispatch(struct conn *c, struct mqtt_packet *p, uint64_t now_ms)
{
	switch (p->type) {
	case MQTT_PUBLISH:
		if (p->publish.qos == 0)
			return on_publish(c, &p->publish, now_ms);
		return dispatch_durable(c, p, now_ms);
	case MQTT_PUBREC:
	case MQTT_PUBREL:
	case MQTT_SUBSCRIBE:
		return dispatch_durable(c, p, now_ms);
	case MQTT_PUBACK:
	case MQTT_PUBCOMP:
		sess_on_ack(c->w, c->sess, p->type, p->ack.packet_id, p->ack.rc);
		return MOAT_OK;
	case MQTT_UNSUBSCRIBE: return on_unsubscribe(c, &p->unsubscribe);
	case MQTT_PINGREQ: {
		struct mqtt_packet r = { .type = MQTT_PINGRESP };

		return conn_send_packet(c, &r);
	}
	case MQTT_DISCONNECT: return on_disconnect(c, &p->disconnect);
	case MQTT_AUTH:
		return auth_reauthenticate(c, &p->auth);
	case MQTT_CONNECT:
		return refuse(c, MOAT_E_PROTOCOL, MQTT_RC_PROTOCOL_ERROR, "second CONNECT"); /* [MQTT-3.1.0-2] */
	default:
		return refuse(c, MOAT_E_PROTOCOL, MQTT_RC_PROTOCOL_ERROR,
			      "packet type a client may not send"); /* CVE-2021-28166 */
	}
}

int conn_process(struct conn *c, uint64_t now_ms)
{
	const struct moat_config *cfg = c->b->cfg;

	while (!c->closing && !c->throttle && !c->auth_hold) {
		struct mqtt_frame f;

		if (c->replay_connect) {	/* authenticated: the CONNECT again, skipping auth */
			c->replay_connect = false;
			if (auth_replay_connect(c) < 0)
				return MOAT_E_NOMEM;
		}
		struct mqtt_packet p;
		uint32_t max = c->connected ? (cfg->max_packet_size ? cfg->max_packet_size : MQTT_MAX_PACKET_SIZE)
					    : cfg->max_connect_packet_size;
		int rc = frame_decode(buf_head(&c->in), buf_used(&c->in), max, &f);

		if (rc == MOAT_E_AGAIN)
			return MOAT_OK;
		if (rc == MOAT_E_LIMIT)
			return refuse(c, rc, MQTT_RC_PACKET_TOO_LARGE, "packet larger than the maximum packet size");
		if (rc < 0)
			return refuse(c, rc, MQTT_RC_MALFORMED, "malformed remaining length");
		if (!c->connected && f.type != MQTT_CONNECT &&
		    !(f.type == MQTT_AUTH && c->auth_state == AUTH_CONTINUE))
			return refuse(c, MOAT_E_PROTOCOL, MQTT_RC_PROTOCOL_ERROR, "first packet is not CONNECT");
		if (buf_used(&c->in) - f.hdr_len < f.rem_len)
			return MOAT_OK;	/* wait for the rest; the frame size is already bounded */
		stat_add(&conn_stats(c)->bytes_in, f.hdr_len + f.rem_len);
		stat_add(&conn_stats(c)->pkts_in, 1);
		rc = pkt_decode(&f, buf_head(&c->in) + f.hdr_len, c->version, &p);
		if (rc == MOAT_E_UNSUPPORTED && f.type == MQTT_CONNECT) {
			c->version = MQTT_V311;	/* answer in a form every version reads */
			return conn_refuse_connect(c, MQTT_RC_UNSUPPORTED_VERSION, "unsupported protocol version");
		}
		if (rc < 0 && f.type == MQTT_CONNECT && !c->connected && p.connect.version == MQTT_V5) {
			/* v5 may hear why in a CONNACK; v3 gets none [MQTT-3.1.4-1] */
			c->version = MQTT_V5;
			return conn_refuse_connect(c, rc_for_error(rc), p.why);
		}
		if (rc < 0)
			return refuse(c, rc, rc_for_error(rc), p.why);
		if (f.type == MQTT_CONNECT && !c->connected)
			rc = on_connect(c, &p.connect, (struct moat_bytes){ buf_head(&c->in), f.hdr_len + f.rem_len },
					now_ms);
		else if (f.type == MQTT_AUTH && !c->connected)
			rc = auth_on_packet(c, &p.auth, now_ms);
		else
			rc = dispatch(c, &p, now_ms);
		if (rc == MOAT_E_AGAIN)
			rc = MOAT_OK;	/* authentication holds the connection; the CONNECT was kept */
		if (c->handoff_to != NULL)
			return MOAT_OK;	/* the CONNECT stays in c->in for the session's owner */
		buf_consume(&c->in, f.hdr_len + f.rem_len);
		if (rc < 0)
			return rc;
	}
	return MOAT_OK;
}

void conn_on_close(struct conn *c)
{
	struct session *s = c->sess;
	uint64_t now = clock_mono_ms();

	if (s != NULL) {
		atomic_fetch_sub(&c->b->clients_connected, 1);
		s->conn = NULL;
		atomic_store_explicit(&s->online, false, memory_order_relaxed);
		c->sess = NULL;
		if (c->will != NULL) {
			if (c->will_delay_s > 0 && s->expiry_s > 0) {
				msg_unref(s->will);
				s->will = c->will;	/* v5 will delay [MQTT-3.1.3-9] */
				s->will_at_ms = now + (uint64_t)c->will_delay_s * 1000u;
				s->will->origin = NULL;
				persist_will(c->w, s);
			} else {
				if (authz_session(c->w, s, c->will->topic, ACCESS_WRITE))	/* rights may have changed */
					broker_publish(c->w, c->will, NULL);
				msg_unref(c->will);
			}
			c->will = NULL;
		}
		if (s->expiry_s == 0) {
			sess_destroy(c->w, s);
		} else {
			if (s->expiry_s != UINT32_MAX)
				s->expire_at_ms = now + (uint64_t)s->expiry_s * 1000u;
			persist_session_save(c->w, s, clock_wall_ms());
			cluster_session_offline(c->w, s);
		}
	}
	msg_unref(c->will);
	c->will = NULL;
	auth_conn_closed(c);
	alias_out_fini(&c->alias_out);
	if (c->aliases != NULL) {
		for (uint16_t i = 0; i < c->alias_max; i++)
			free(c->aliases[i]);
		free(c->aliases);
		c->aliases = NULL;
	}
}
