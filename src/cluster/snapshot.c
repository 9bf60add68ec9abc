/*
 * The sessions bucket's entry encoding (see snapshot.h). Big-endian:
 *   u8 format (1), u8 owner length, owner,
 *   u8 flags (1 online, 2 username, 4 Will), u8 protocol version,
 *   u32 session expiry, u64 offline since (wall-clock ms),
 *   [u16 length, username], [u32 Will delay, u32 length, Will as wire.h encodes a message],
 *   u32 subscriptions, each: u16 length, filter, u8 options, u32 identifier.
 * Options: bits 0-1 QoS, 2 no-local, 3 retain-as-published, 4-5 retain handling.
 */
#include "cluster/snapshot.h"

#include <stdlib.h>
#include <string.h>

#include <moat/error.h>

#include "base/text.h"
#include "broker/broker.h"
#include "codec/mqtt.h"
#include "codec/rd.h"
#include "codec/topic.h"
#include "cluster/wire.h"

/* SNAP_RESUMED came later: entries without it read as not resumed */
enum {
	SNAP_FORMAT = 1,
	SNAP_ONLINE = 1,
	SNAP_USERNAME = 2,
	SNAP_WILL = 4,
	SNAP_RESUMED = 8,
	OWNER_MAX = 64
};

static int put_u8(struct buf *out, uint8_t v)
{
	return buf_append(out, &v, 1);
}

static int put_u16(struct buf *out, uint16_t v)
{
	uint8_t b[2] = {(uint8_t)(v >> 8), (uint8_t)v};

	return buf_append(out, b, sizeof(b));
}

static int put_u32(struct buf *out, uint32_t v)
{
	uint8_t b[4] = {(uint8_t)(v >> 24), (uint8_t)(v >> 16), (uint8_t)(v >> 8), (uint8_t)v};

	return buf_append(out, b, sizeof(b));
}

static int put_u16_bytes(struct buf *out, struct moat_bytes b)
{
	int rc;

	if (b.len > UINT16_MAX)
		return MOAT_E_INVAL;
	rc = put_u16(out, (uint16_t)b.len);
	return rc == MOAT_OK ? buf_append(out, b.ptr, b.len) : rc;
}

static uint8_t opts_byte(const struct mqtt_sub_opts *o)
{
	return (uint8_t)((o->qos & 3) | (o->no_local ? 4 : 0) | (o->retain_as_published ? 8 : 0) |
			 (o->retain_handling & 3) << 4);
}

/* The Will, encoded as a cluster message by the owner, behind its length. */
static int put_will(struct buf *out, const struct snapshot *s)
{
	struct buf will = {0};
	char owner[OWNER_MAX + 1];
	int rc;

	memcpy(owner, s->owner.ptr, s->owner.len);
	owner[s->owner.len] = '\0';
	rc = wire_encode(&will, owner, s->will);
	if (rc == MOAT_OK && buf_used(&will) > UINT32_MAX)
		rc = MOAT_E_INVAL;
	if (rc == MOAT_OK)
		rc = put_u32(out, s->will_delay_s);
	if (rc == MOAT_OK)
		rc = put_u32(out, (uint32_t)buf_used(&will));
	if (rc == MOAT_OK)
		rc = buf_append(out, buf_head(&will), buf_used(&will));
	buf_fini(&will);
	return rc;
}

int snapshot_encode(struct buf *out, const struct snapshot *s)
{
	uint8_t flags =
	    (uint8_t)((s->online ? SNAP_ONLINE : 0) | (s->has_username ? SNAP_USERNAME : 0) |
		      (s->will ? SNAP_WILL : 0) | (s->resumed ? SNAP_RESUMED : 0));
	int rc;

	if (s->owner.len == 0 || s->owner.len > OWNER_MAX || s->sub_n > UINT32_MAX)
		return MOAT_E_INVAL;
	buf_consume(out, buf_used(out));
	rc = put_u8(out, SNAP_FORMAT);
	if (rc == MOAT_OK)
		rc = put_u8(out, (uint8_t)s->owner.len);
	if (rc == MOAT_OK)
		rc = buf_append(out, s->owner.ptr, s->owner.len);
	if (rc == MOAT_OK)
		rc = put_u8(out, flags);
	if (rc == MOAT_OK)
		rc = put_u8(out, s->version);
	if (rc == MOAT_OK)
		rc = put_u32(out, s->expiry_s);
	if (rc == MOAT_OK)
		rc = put_u32(out, (uint32_t)(s->offline_wall_ms >> 32));
	if (rc == MOAT_OK)
		rc = put_u32(out, (uint32_t)s->offline_wall_ms);
	if (rc == MOAT_OK && s->has_username)
		rc = put_u16_bytes(out, s->username);
	if (rc == MOAT_OK && s->will != NULL)
		rc = put_will(out, s);
	if (rc == MOAT_OK)
		rc = put_u32(out, (uint32_t)s->sub_n);
	for (size_t i = 0; rc == MOAT_OK && i < s->sub_n; i++) {
		rc = put_u16_bytes(out, s->subs[i].filter);
		if (rc == MOAT_OK)
			rc = put_u8(out, opts_byte(&s->subs[i].opts));
		if (rc == MOAT_OK)
			rc = put_u32(out, s->subs[i].sub_id);
	}
	return rc;
}

static bool owner_is_valid(struct moat_bytes owner)
{
	if (owner.len == 0 || owner.len > OWNER_MAX)
		return false;
	for (size_t i = 0; i < owner.len; i++)
		if (!text_is_name_char(owner.ptr[i]))
			return false;
	return true;
}

static int malformed(const char **why, const char *reason)
{
	*why = reason;
	return MOAT_E_MALFORMED;
}

static int read_will(struct rd *r, struct snapshot *s, const char **why)
{
	struct moat_bytes data, node;
	uint32_t len = 0;
	int rc;

	if (!rd_u32(r, &s->will_delay_s) || !rd_u32(r, &len) || !rd_bytes(r, len, &data))
		return malformed(why, "Will cut short");
	rc = wire_decode(data, &node, &s->will, why);
	if (rc == MOAT_OK)
		s->will->remote = false; /* published again by the node that ends the session */
	return rc;
}

static int read_subs(struct rd *r, struct snapshot *s, const char **why)
{
	uint32_t n = 0;

	if (!rd_u32(r, &n))
		return malformed(why, "subscription count cut short");
	/* each takes at least 7 bytes: a count beyond what is left is damage */
	if (n > r->left / 7)
		return malformed(why, "more subscriptions than bytes");
	if (n > 0 && (s->subs = calloc(n, sizeof(*s->subs))) == NULL)
		return MOAT_E_NOMEM;
	for (uint32_t i = 0; i < n; i++) {
		struct snap_sub *x = &s->subs[i];
		struct moat_bytes group, inner;
		uint16_t len = 0;
		uint8_t o = 0;

		if (!rd_u16(r, &len) || !rd_bytes(r, len, &x->filter) || !rd_u8(r, &o) ||
		    !rd_u32(r, &x->sub_id))
			return malformed(why, "subscription cut short");
		if ((o & 3) > 2 || (o >> 4) > 2)
			return malformed(why, "subscription options out of range");
		if (x->sub_id > MQTT_MAX_SUB_ID)
			return malformed(why, "subscription identifier out of range");
		if (!topic_filter_is_valid(x->filter) ||
		    topic_share_parse(x->filter, &group, &inner) == MOAT_E_PROTOCOL)
			return malformed(why, "not a topic filter");
		x->opts = (struct mqtt_sub_opts){.qos = o & 3,
						 .no_local = (o & 4) != 0,
						 .retain_as_published = (o & 8) != 0,
						 .retain_handling = (uint8_t)(o >> 4)};
		s->sub_n = i + 1;
	}
	return MOAT_OK;
}

int snapshot_decode(struct moat_bytes data, struct snapshot *s, const char **why)
{
	uint8_t format = 0, owner_len = 0, flags = 0;
	uint32_t hi = 0, lo = 0;
	uint16_t ulen = 0;
	struct rd r;
	int rc;

	*s = (struct snapshot){0};
	rd_init(&r, data.ptr, data.len);
	if (!rd_u8(&r, &format) || format != SNAP_FORMAT)
		return malformed(why, "not a session entry of format 1");
	if (!rd_u8(&r, &owner_len) || !rd_bytes(&r, owner_len, &s->owner) ||
	    !owner_is_valid(s->owner))
		return malformed(why, "not a node name");
	if (!rd_u8(&r, &flags) || !rd_u8(&r, &s->version) || !rd_u32(&r, &s->expiry_s) ||
	    !rd_u32(&r, &hi) || !rd_u32(&r, &lo))
		return malformed(why, "session fields cut short");
	if (flags > (SNAP_ONLINE | SNAP_USERNAME | SNAP_WILL | SNAP_RESUMED) ||
	    (s->version != MQTT_V31 && s->version != MQTT_V311 && s->version != MQTT_V5))
		return malformed(why, "unknown flags or protocol version");
	s->online = (flags & SNAP_ONLINE) != 0;
	s->resumed = (flags & SNAP_RESUMED) != 0;
	s->offline_wall_ms = (uint64_t)hi << 32 | lo;
	s->has_username = (flags & SNAP_USERNAME) != 0;
	if (s->has_username && (!rd_u16(&r, &ulen) || !rd_bytes(&r, ulen, &s->username) ||
				!utf8_is_valid_mqtt(s->username)))
		return malformed(why, "username cut short or not UTF-8");
	if ((flags & SNAP_WILL) != 0 && (rc = read_will(&r, s, why)) != MOAT_OK)
		return rc;
	rc = read_subs(&r, s, why);
	if (rc == MOAT_OK && r.left != 0)
		return malformed(why, "bytes after the last subscription");
	return rc;
}

void snapshot_fini(struct snapshot *s)
{
	msg_unref(s->will);
	free(s->subs);
	*s = (struct snapshot){0};
}
