/*
 * Encoding and decoding of the broker's store records (record.h). Encoders
 * run a bounded writer twice: once to size the value, once to fill it.
 */
#include "broker/record.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <zlib.h>

#include <moat/error.h>

#include "codec/wr.h"

/* ---- keys ---- */

/* Appends <p> to a key, or, when it is longer than <max>, REC_KEY_HASHED and
 * the hex SHA-256 of it: keys stay within the store's limit, and the record's
 * value carries the whole string. */
static int key_part(struct buf *out, const void *p, size_t n, size_t max)
{
	static const char hex[] = "0123456789abcdef";
	unsigned char md[32];
	char text[1 + 64];

	if (n <= max)
		return buf_append(out, p, n);
	if (EVP_Digest(p, n, md, NULL, EVP_sha256(), NULL) != 1)
		return MOAT_E_NOMEM;
	text[0] = REC_KEY_HASHED;
	for (int i = 0; i < 32; i++) {
		text[1 + 2 * i] = hex[md[i] >> 4];
		text[2 + 2 * i] = hex[md[i] & 15];
	}
	return buf_append(out, text, sizeof(text));
}

static int key_start(struct buf *out, enum rec_type t, const void *p, size_t n)
{
	uint8_t type = (uint8_t)t;

	buf_consume(out, buf_used(out));
	if (buf_append(out, &type, 1) < 0 || key_part(out, p, n, REC_KEY_PART_MAX) < 0)
		return MOAT_E_NOMEM;
	return MOAT_OK;
}

static int append_be(struct buf *out, uint64_t v, unsigned bytes)
{
	uint8_t b[8];

	for (unsigned i = 0; i < bytes; i++)
		b[i] = (uint8_t)(v >> (8 * (bytes - 1 - i)));
	return buf_append(out, b, bytes);
}

uint64_t rec_be64(const uint8_t *p)
{
	uint64_t v = 0;

	for (int i = 0; i < 8; i++)
		v = (v << 8) | p[i];
	return v;
}

int rec_key_client(struct buf *out, enum rec_type t, const char *client_id)
{
	return key_start(out, t, client_id, strlen(client_id));
}

int rec_key_client_prefix(struct buf *out, enum rec_type t, const char *client_id)
{
	static const uint8_t nul;

	if (key_start(out, t, client_id, strlen(client_id)) < 0)
		return MOAT_E_NOMEM;
	return buf_append(out, &nul, 1);
}

int rec_key_sub(struct buf *out, const char *client_id, struct moat_bytes filter)
{
	if (rec_key_client_prefix(out, REC_SUB, client_id) < 0)
		return MOAT_E_NOMEM;
	return key_part(out, filter.ptr, filter.len, REC_KEY_PART_MAX);
}

int rec_key_entry(struct buf *out, const char *client_id, uint64_t entry_id)
{
	if (rec_key_client_prefix(out, REC_ENTRY, client_id) < 0)
		return MOAT_E_NOMEM;
	return append_be(out, entry_id, 8);
}

int rec_key_qos2_in(struct buf *out, const char *client_id, uint16_t packet_id)
{
	if (rec_key_client_prefix(out, REC_QOS2_IN, client_id) < 0)
		return MOAT_E_NOMEM;
	return append_be(out, packet_id, 2);
}

int rec_key_msg(struct buf *out, uint64_t msg_id)
{
	if (key_start(out, REC_MSG, NULL, 0) < 0)
		return MOAT_E_NOMEM;
	return append_be(out, msg_id, 8);
}

int rec_key_retain(struct buf *out, struct moat_bytes topic)
{
	uint8_t type = REC_RETAIN;

	buf_consume(out, buf_used(out));
	if (buf_append(out, &type, 1) < 0)
		return MOAT_E_NOMEM;
	return key_part(out, topic.ptr, topic.len, 2 * REC_KEY_PART_MAX);
}

bool rec_key_split(const uint8_t *key, size_t klen, struct moat_bytes *client_id,
		   struct moat_bytes *suffix)
{
	const uint8_t *nul;

	if (klen < 1)
		return false;
	if (key[0] == REC_SESSION || key[0] == REC_WILL) {
		*client_id = (struct moat_bytes){key + 1, klen - 1};
		*suffix = (struct moat_bytes){key + klen, 0};
		return memchr(key + 1, 0, klen - 1) == NULL;
	}
	nul = memchr(key + 1, 0, klen - 1);
	if (nul == NULL)
		return false;
	*client_id = (struct moat_bytes){key + 1, (size_t)(nul - key - 1)};
	*suffix = (struct moat_bytes){nul + 1, klen - (size_t)(nul - key) - 1};
	return true;
}

/* ---- values ---- */

static void wr_u64(struct wr *w, uint64_t v)
{
	wr_u32(w, (uint32_t)(v >> 32));
	wr_u32(w, (uint32_t)v);
}

static void wr_blob(struct wr *w, struct moat_bytes b) /* u32 length: payloads may exceed 64 KiB */
{
	wr_u32(w, (uint32_t)b.len);
	wr_raw(w, b.ptr, b.len);
}

static void wr_cstr(struct wr *w, const char *s)
{
	wr_str(w, moat_bytes_str(s));
}

static uint16_t strv_len(char *const *v)
{
	uint16_t n = 0;

	while (v != NULL && v[n] != NULL && n < UINT16_MAX)
		n++;
	return n;
}

static void wr_strv(struct wr *w, char *const *v)
{
	uint16_t n = strv_len(v);

	wr_u16(w, n);
	for (uint16_t i = 0; i < n; i++)
		wr_cstr(w, v[i]);
}

static void wr_ident(struct wr *w, const struct rec_ident_src *id)
{
	wr_u8(w, id->username != NULL);
	if (id->username != NULL)
		wr_cstr(w, id->username);
	wr_cstr(w, id->client_id != NULL ? id->client_id : "");
	wr_strv(w, id->roles);
	wr_strv(w, id->attrs);
}

enum { MSG_RETAIN = 1, MSG_EXPIRY = 2, MSG_AUTHOR = 4 };

static void wr_msg(struct wr *w, const struct rec_msg *m)
{
	wr_u8(w, m->qos);
	wr_u8(w, (uint8_t)((m->retain ? MSG_RETAIN : 0) | (m->has_expiry ? MSG_EXPIRY : 0) |
			   (m->has_author ? MSG_AUTHOR : 0)));
	if (m->has_expiry)
		wr_u64(w, m->expire_wall_ms);
	wr_u64(w, m->props_present);
	wr_u8(w, m->payload_format);
	wr_blob(w, m->topic);
	wr_blob(w, m->payload);
	wr_blob(w, m->content_type);
	wr_blob(w, m->response_topic);
	wr_blob(w, m->correlation_data);
	wr_blob(w, m->user);
	wr_u32(w, m->user_count);
	if (m->has_author)
		wr_ident(w, m->author_src);
}

enum rec_value { V_SESSION, V_SUB, V_ENTRY, V_EMPTY, V_MSG, V_WILL, V_CLUSTER_OUT };

static void wr_value(struct wr *w, enum rec_value kind, const void *arg)
{
	wr_u8(w, REC_FORMAT);
	switch (kind) {
	case V_SESSION: {
		const struct rec_session *s = arg;

		wr_u8(w, s->version);
		wr_u32(w, s->expiry_s);
		wr_u64(w, s->offline_wall_ms);
		wr_ident(w, s->ident_src);
		break;
	}
	case V_SUB: {
		const struct rec_sub *s = arg;

		wr_u8(w, s->qos);
		wr_u8(w, (uint8_t)((s->no_local ? 1 : 0) | (s->retain_as_published ? 2 : 0) |
				   (s->retain_handling << 2)));
		wr_u32(w, s->sub_id);
		wr_blob(w, s->filter);
		break;
	}
	case V_ENTRY: {
		const struct rec_entry *e = arg;

		wr_u8(w, e->qos);
		wr_u8(w, e->retain);
		wr_u8(w, e->state);
		wr_u16(w, e->packet_id);
		wr_u8(w, e->sub_id_count);
		for (uint8_t i = 0; i < e->sub_id_count; i++)
			wr_u32(w, e->sub_ids[i]);
		wr_u64(w, e->msg_id);
		if (e->msg_id == 0)
			wr_msg(w, &e->msg);
		break;
	}
	case V_EMPTY:
		break;
	case V_MSG:
		wr_msg(w, arg);
		break;
	case V_WILL: {
		const struct rec_will *wl = arg;

		wr_u64(w, wl->at_wall_ms);
		wr_msg(w, &wl->msg);
		break;
	}
	case V_CLUSTER_OUT: {
		const struct moat_bytes *parts = arg; /* subject, data */

		wr_blob(w, parts[0]);
		wr_blob(w, parts[1]);
		break;
	}
	}
}

static uint32_t record_crc(struct moat_bytes key, const uint8_t *val, size_t vlen)
{
	uLong crc = crc32(0L, Z_NULL, 0);

	crc = crc32_z(crc, key.ptr, key.len);
	return (uint32_t)crc32_z(crc, val, vlen);
}

static int encode(struct buf *out, struct moat_bytes key, enum rec_value kind, const void *arg)
{
	struct wr w;
	uint32_t crc;

	buf_consume(out, buf_used(out));
	wr_init(&w, NULL, 0);
	wr_value(&w, kind, arg);
	if (buf_reserve(out, w.len + 4) < 0)
		return MOAT_E_NOMEM;
	wr_init(&w, out->data + out->len, w.len + 4);
	wr_value(&w, kind, arg);
	crc = record_crc(key, w.p, w.len);
	wr_u32(&w, crc);
	out->len += w.len;
	return MOAT_OK;
}

int rec_put_session(struct buf *out, struct moat_bytes key, const struct rec_session *s)
{
	return encode(out, key, V_SESSION, s);
}

int rec_put_sub(struct buf *out, struct moat_bytes key, const struct rec_sub *s)
{
	return encode(out, key, V_SUB, s);
}

int rec_put_entry(struct buf *out, struct moat_bytes key, const struct rec_entry *e)
{
	return encode(out, key, V_ENTRY, e);
}

int rec_put_empty(struct buf *out, struct moat_bytes key)
{
	return encode(out, key, V_EMPTY, NULL);
}

int rec_put_msg(struct buf *out, struct moat_bytes key, const struct rec_msg *m)
{
	return encode(out, key, V_MSG, m);
}

int rec_put_will(struct buf *out, struct moat_bytes key, const struct rec_will *w)
{
	return encode(out, key, V_WILL, w);
}

/* ---- decoding ---- */

static int bad(const char **why, const char *reason)
{
	*why = reason;
	return MOAT_E_MALFORMED;
}

int rec_open(const uint8_t *key, size_t klen, const uint8_t *val, size_t vlen, struct rd *body,
	     const char **why)
{
	uint32_t crc;

	if (vlen < 5)
		return bad(why, "value too short");
	crc = (uint32_t)val[vlen - 4] << 24 | (uint32_t)val[vlen - 3] << 16 |
	      (uint32_t)val[vlen - 2] << 8 | val[vlen - 1];
	if (crc != record_crc((struct moat_bytes){key, klen}, val, vlen - 4))
		return bad(why, "checksum mismatch");
	if (val[0] != REC_FORMAT)
		return bad(why, "unknown record format");
	rd_init(body, val + 1, vlen - 5);
	return MOAT_OK;
}

static bool rd_u64(struct rd *r, uint64_t *out)
{
	uint32_t hi, lo;

	if (!rd_u32(r, &hi) || !rd_u32(r, &lo))
		return false;
	*out = (uint64_t)hi << 32 | lo;
	return true;
}

static bool rd_blob(struct rd *r, struct moat_bytes *out)
{
	uint32_t n;

	return rd_u32(r, &n) && rd_bytes(r, n, out);
}

/* A run of <n> u16-length strings: its bytes are checked, then kept whole. */
static bool rd_strv(struct rd *r, uint16_t *n, struct moat_bytes *run)
{
	const uint8_t *start;
	struct moat_bytes s;

	if (!rd_u16(r, n))
		return false;
	start = r->p;
	for (uint16_t i = 0; i < *n; i++)
		if (!rd_bin(r, &s) || memchr(s.ptr, 0, s.len) != NULL)
			return rd_fail(r, MOAT_E_MALFORMED);
	*run = (struct moat_bytes){start, (size_t)(r->p - start)};
	return true;
}

static bool rd_ident(struct rd *r, struct rec_ident *id)
{
	uint8_t has_user;

	*id = (struct rec_ident){0};
	if (!rd_u8(r, &has_user) || has_user > 1)
		return rd_fail(r, MOAT_E_MALFORMED);
	id->has_username = has_user;
	if (has_user && !rd_bin(r, &id->username))
		return false;
	return rd_bin(r, &id->client_id) && rd_strv(r, &id->role_count, &id->roles) &&
	       rd_strv(r, &id->attr_count, &id->attrs);
}

static bool finished(struct rd *r)
{
	return r->err == 0 && r->left == 0;
}

int rec_get_msg(struct rd *r, struct rec_msg *m, const char **why)
{
	uint8_t flags;

	*m = (struct rec_msg){0};
	if (!rd_u8(r, &m->qos) || m->qos > 2 || !rd_u8(r, &flags) || flags > 7)
		return bad(why, "bad message header");
	m->retain = flags & MSG_RETAIN;
	m->has_expiry = flags & MSG_EXPIRY;
	m->has_author = flags & MSG_AUTHOR;
	if (m->has_expiry && !rd_u64(r, &m->expire_wall_ms))
		return bad(why, "truncated message expiry");
	if (!rd_u64(r, &m->props_present) || !rd_u8(r, &m->payload_format) ||
	    !rd_blob(r, &m->topic) || !rd_blob(r, &m->payload) || !rd_blob(r, &m->content_type) ||
	    !rd_blob(r, &m->response_topic) || !rd_blob(r, &m->correlation_data) ||
	    !rd_blob(r, &m->user) || !rd_u32(r, &m->user_count))
		return bad(why, "truncated message");
	if (m->topic.len == 0 || m->topic.len > 65535)
		return bad(why, "bad message topic");
	if (m->has_author && !rd_ident(r, &m->author))
		return bad(why, "bad message author");
	return MOAT_OK;
}

int rec_get_session(struct rd *r, struct rec_session *s, const char **why)
{
	*s = (struct rec_session){0};
	if (!rd_u8(r, &s->version) || !rd_u32(r, &s->expiry_s) || !rd_u64(r, &s->offline_wall_ms) ||
	    !rd_ident(r, &s->ident) || !finished(r))
		return bad(why, "bad session record");
	return MOAT_OK;
}

int rec_get_sub(struct rd *r, struct rec_sub *s, const char **why)
{
	uint8_t flags;

	*s = (struct rec_sub){0};
	if (!rd_u8(r, &s->qos) || s->qos > 2 || !rd_u8(r, &flags) || (flags >> 2) > 2 ||
	    !rd_u32(r, &s->sub_id) || !rd_blob(r, &s->filter) || s->filter.len == 0 ||
	    s->filter.len > 65535 || !finished(r))
		return bad(why, "bad subscription record");
	s->no_local = flags & 1;
	s->retain_as_published = flags & 2;
	s->retain_handling = flags >> 2;
	return MOAT_OK;
}

int rec_get_entry(struct rd *r, struct rec_entry *e, const char **why)
{
	uint8_t retain;

	*e = (struct rec_entry){0};
	if (!rd_u8(r, &e->qos) || e->qos < 1 || e->qos > 2 || !rd_u8(r, &retain) || retain > 1 ||
	    !rd_u8(r, &e->state) || e->state > REC_PUBREL || !rd_u16(r, &e->packet_id) ||
	    !rd_u8(r, &e->sub_id_count) || e->sub_id_count > 4)
		return bad(why, "bad entry record");
	e->retain = retain;
	for (uint8_t i = 0; i < e->sub_id_count; i++)
		if (!rd_u32(r, &e->sub_ids[i]))
			return bad(why, "truncated entry record");
	if (!rd_u64(r, &e->msg_id))
		return bad(why, "truncated entry record");
	if (e->state != REC_QUEUED && e->packet_id == 0)
		return bad(why, "entry in flight without a packet id");
	if (e->msg_id == 0 && rec_get_msg(r, &e->msg, why) < 0)
		return MOAT_E_MALFORMED;
	return finished(r) ? MOAT_OK : bad(why, "trailing bytes in entry record");
}

int rec_get_will(struct rd *r, struct rec_will *w, const char **why)
{
	*w = (struct rec_will){0};
	if (!rd_u64(r, &w->at_wall_ms))
		return bad(why, "truncated will record");
	if (rec_get_msg(r, &w->msg, why) < 0)
		return MOAT_E_MALFORMED;
	return finished(r) ? MOAT_OK : bad(why, "trailing bytes in will record");
}

const char *rec_check(const uint8_t *key, size_t klen, const uint8_t *val, size_t vlen)
{
	struct moat_bytes cid, suffix;
	const char *why = NULL;
	struct rd r;
	union {
		struct rec_session s;
		struct rec_sub b;
		struct rec_entry e;
		struct rec_msg m;
		struct rec_will w;
	} u;

	if (rec_open(key, klen, val, vlen, &r, &why) < 0)
		return why;
	switch (klen > 0 ? key[0] : 0) {
	case REC_SESSION:
		if (!rec_key_split(key, klen, &cid, &suffix) || cid.len == 0)
			return "bad session key";
		return rec_get_session(&r, &u.s, &why) < 0 ? why : NULL;
	case REC_SUB:
		if (!rec_key_split(key, klen, &cid, &suffix) || suffix.len == 0)
			return "bad subscription key";
		return rec_get_sub(&r, &u.b, &why) < 0 ? why : NULL;
	case REC_ENTRY:
		if (!rec_key_split(key, klen, &cid, &suffix) || suffix.len != 8)
			return "bad entry key";
		return rec_get_entry(&r, &u.e, &why) < 0 ? why : NULL;
	case REC_QOS2_IN:
		if (!rec_key_split(key, klen, &cid, &suffix) || suffix.len != 2)
			return "bad QoS 2 key";
		return finished(&r) ? NULL : "bad QoS 2 record";
	case REC_WILL:
		if (!rec_key_split(key, klen, &cid, &suffix))
			return "bad will key";
		return rec_get_will(&r, &u.w, &why) < 0 ? why : NULL;
	case REC_MSG:
		if (klen != 9)
			return "bad message key";
		if (rec_get_msg(&r, &u.m, &why) < 0)
			return why;
		return finished(&r) ? NULL : "trailing bytes in message record";
	case REC_RETAIN:
		if (rec_get_msg(&r, &u.m, &why) < 0)
			return why;
		return finished(&r) ? NULL : "trailing bytes in retained record";
	case REC_META:
		return NULL;
	case REC_CLUSTER_OUT:
		if (klen != 9)
			return "bad cluster queue key";
		return rec_get_cluster_out(&r, &cid, &suffix, &why) < 0 ? why : NULL;
	default:
		return "unknown record type";
	}
}

char **rec_strv(struct moat_bytes run, uint16_t n, bool *nomem)
{
	char **v;
	struct rd r;
	struct moat_bytes s;

	*nomem = false;
	if (n == 0)
		return NULL;
	v = calloc((size_t)n + 1, sizeof(*v));
	if (v == NULL)
		goto oom;
	rd_init(&r, run.ptr, run.len);
	for (uint16_t i = 0; i < n; i++) {
		if (!rd_bin(&r, &s))
			break; /* checked when decoded: cannot happen */
		v[i] = malloc(s.len + 1);
		if (v[i] == NULL)
			goto oom;
		memcpy(v[i], s.ptr, s.len);
		v[i][s.len] = '\0';
	}
	return v;
oom:
	for (uint16_t i = 0; v != NULL && i < n; i++)
		free(v[i]);
	free(v);
	*nomem = true;
	return NULL;
}

/* ---- the cluster's outbound queue ---- */

int rec_key_cluster_out(struct buf *out, uint64_t seq)
{
	if (key_start(out, REC_CLUSTER_OUT, NULL, 0) < 0)
		return MOAT_E_NOMEM;
	return append_be(out, seq, 8);
}

int rec_put_cluster_out(struct buf *out, struct moat_bytes key, struct moat_bytes subject,
			struct moat_bytes data)
{
	const struct moat_bytes parts[2] = {subject, data};

	return encode(out, key, V_CLUSTER_OUT, parts);
}

int rec_get_cluster_out(struct rd *body, struct moat_bytes *subject, struct moat_bytes *data,
			const char **why)
{
	if (!rd_blob(body, subject) || subject->len == 0 || !rd_blob(body, data) || !finished(body))
		return bad(why, "bad cluster queue record");
	return MOAT_OK;
}
