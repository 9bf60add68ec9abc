/*
 * Refcounted application messages (see broker.h). One allocation holds the
 * struct, the topic, the payload and the properties that are forwarded.
 */
#include "broker/broker.h"

#include <stdlib.h>
#include <string.h>

static struct moat_bytes copy_into(uint8_t **cursor, struct moat_bytes src)
{
	struct moat_bytes out = { *cursor, src.len };

	if (src.len > 0)
		memcpy(*cursor, src.ptr, src.len);
	*cursor += src.len;
	return out;
}

struct msg *msg_create(const struct mqtt_publish *p, struct moat_bytes topic, uint64_t now_ms)
{
	const struct mqtt_props *pp = &p->props;
	size_t extra = topic.len + p->payload.len + pp->content_type.len + pp->response_topic.len +
		       pp->correlation_data.len + pp->user.len;
	struct msg *m = malloc(sizeof(*m) + extra);
	uint8_t *cur;

	if (m == NULL)
		return NULL;
	memset(m, 0, sizeof(*m));
	cur = (uint8_t *)(m + 1);
	atomic_init(&m->refs, 1);
	m->qos = p->qos;
	m->retain = p->retain;
	m->topic = copy_into(&cur, topic);
	m->payload = copy_into(&cur, p->payload);
	m->props.present = pp->present & ((1ull << MQTT_PROP_PAYLOAD_FORMAT) |
					  (1ull << MQTT_PROP_CONTENT_TYPE) |
					  (1ull << MQTT_PROP_RESPONSE_TOPIC) |
					  (1ull << MQTT_PROP_CORRELATION_DATA));
	m->props.payload_format = pp->payload_format;
	m->props.content_type = copy_into(&cur, pp->content_type);
	m->props.response_topic = copy_into(&cur, pp->response_topic);
	m->props.correlation_data = copy_into(&cur, pp->correlation_data);
	m->props.user = copy_into(&cur, pp->user);
	m->props.user_count = pp->user_count;
	if (props_has(pp, MQTT_PROP_MESSAGE_EXPIRY)) {
		m->has_expiry = true;
		m->expire_at_ms = now_ms + (uint64_t)pp->message_expiry_s * 1000u;
	}
	return m;
}

struct msg *msg_ref(struct msg *m)
{
	atomic_fetch_add_explicit(&m->refs, 1, memory_order_relaxed);
	return m;
}

void msg_unref(struct msg *m)
{
	if (m != NULL && atomic_fetch_sub_explicit(&m->refs, 1, memory_order_acq_rel) == 1) {
		authz_author_free(m->author);
		free(m);
	}
}

bool msg_expired(const struct msg *m, uint64_t now_ms)
{
	return m->has_expiry && now_ms >= m->expire_at_ms;
}
