/*
 * The broker's records in the store (src/store): how sessions, their
 * subscriptions, queued and in-flight deliveries, inbound QoS 2 ids,
 * retained messages and delayed Wills are laid out as keys and values.
 *
 * Keys start with a type byte; a client's records are [type][client id]
 * (session, Will) or [type][client id][0][suffix] (the rest), so one prefix
 * deletes a kind of record of one client. Client ids hold no NUL
 * [MQTT-1.5.4-2]. A client id, filter or topic too long for a key (the
 * store takes 511 bytes) appears in it as REC_KEY_HASHED and its SHA-256 in
 * hex; the value always carries the whole string. Values start with a format byte and end with a
 * CRC-32 of key and value, so a damaged record is found at start-up, never trusted.
 *
 * Decoders read bytes that may be damaged: every length is checked, and
 * what they return are views into the value.
 */
#ifndef MOAT_BROKER_RECORD_H
#define MOAT_BROKER_RECORD_H

#include <stdbool.h>
#include <stdint.h>

#include <moat/bytes.h>

#include "base/buf.h"
#include "codec/rd.h"

enum rec_type {
	REC_SESSION = 'S', /* [S][cid] -> version, expiry, offline since, identity */
	REC_SUB = 'B',	   /* [B][cid][0][filter] -> options */
	REC_ENTRY = 'Q',   /* [Q][cid][0][entry id u64] -> delivery (+ message inline) */
	REC_QOS2_IN = 'I', /* [I][cid][0][packet id u16] -> nothing */
	REC_WILL = 'W',	   /* [W][cid] -> when, message */
	REC_MSG = 'M',	   /* [M][message id u64] -> message shared by entries */
	REC_RETAIN = 'R',  /* [R][topic] -> message */
	REC_META = 'V',	   /* [V] -> store format */
	REC_CLUSTER_OUT = 'C', /* [C][sequence u64] -> subject, cluster wire bytes (src/cluster/outbound.c) */
};

enum { REC_FORMAT = 1, REC_KEY_PART_MAX = 200, REC_KEY_HASHED = 0x01 };

/* Who published a message or owns a session, as broker.h keeps it: what
 * the encoders read. */
struct rec_ident_src {
	const char *username; /* NULL = anonymous */
	const char *client_id;
	char *const *roles; /* NULL-terminated or NULL */
	char *const *attrs; /* name, value, ..., NULL; or NULL */
};

/* The same as decoded: views into the value. */
struct rec_ident {
	bool has_username;
	struct moat_bytes username, client_id;
	uint16_t role_count, attr_count; /* attr_count = names + values */
	struct moat_bytes roles, attrs;	 /* runs of u16-length strings */
};

/* A message as stored (wall-clock expiry, so it survives a restart). */
struct rec_msg {
	uint8_t qos;
	bool retain, has_expiry, has_author;
	uint64_t expire_wall_ms;
	uint64_t props_present; /* payload format, content type, response topic, correlation */
	uint8_t payload_format;
	struct moat_bytes topic, payload, content_type, response_topic, correlation_data, user;
	uint32_t user_count;
	struct rec_ident author;		/* decoded */
	const struct rec_ident_src *author_src; /* encoded when has_author */
};

struct rec_session {
	uint8_t version;
	uint32_t expiry_s;
	uint64_t offline_wall_ms;	       /* 0 = it was online */
	struct rec_ident ident;		       /* decoded */
	const struct rec_ident_src *ident_src; /* encoded */
};

struct rec_sub {
	uint8_t qos, retain_handling;
	bool no_local, retain_as_published;
	uint32_t sub_id;
	struct moat_bytes filter;
};

enum rec_entry_state { REC_QUEUED = 0, REC_SENT = 1, REC_PUBREL = 2 };

struct rec_entry {
	uint8_t qos, state, sub_id_count;
	bool retain;
	uint16_t packet_id;
	uint32_t sub_ids[4];
	uint64_t msg_id;    /* 0: the message is inline */
	struct rec_msg msg; /* when inline */
};

struct rec_will {
	uint64_t at_wall_ms;
	struct rec_msg msg;
};

/* ---- keys: written into <out> (emptied first); MOAT_OK or MOAT_E_NOMEM ---- */
int rec_key_client(struct buf *out, enum rec_type t, const char *client_id);
/* [t][cid][0]: the prefix of a client's subscriptions, entries or QoS 2 ids. */
int rec_key_client_prefix(struct buf *out, enum rec_type t, const char *client_id);
int rec_key_sub(struct buf *out, const char *client_id, struct moat_bytes filter);
int rec_key_entry(struct buf *out, const char *client_id, uint64_t entry_id);
int rec_key_qos2_in(struct buf *out, const char *client_id, uint16_t packet_id);
int rec_key_msg(struct buf *out, uint64_t msg_id);
int rec_key_retain(struct buf *out, struct moat_bytes topic);

/* Splits a client-scoped key into its client id and suffix (after the 0 for
 * B/Q/I). False when the key is not of that shape. */
bool rec_key_split(const uint8_t *key, size_t klen, struct moat_bytes *client_id,
		   struct moat_bytes *suffix);
uint64_t rec_be64(const uint8_t *p);

/* ---- values: encoded into <out> (emptied first) with the key's CRC; MOAT_OK or MOAT_E_NOMEM ----
 */
int rec_put_session(struct buf *out, struct moat_bytes key, const struct rec_session *s);
int rec_put_sub(struct buf *out, struct moat_bytes key, const struct rec_sub *s);
int rec_put_entry(struct buf *out, struct moat_bytes key, const struct rec_entry *e);
int rec_put_empty(struct buf *out, struct moat_bytes key);
int rec_put_msg(struct buf *out, struct moat_bytes key, const struct rec_msg *m);
int rec_put_will(struct buf *out, struct moat_bytes key, const struct rec_will *w);

/* ---- decoding: MOAT_OK or MOAT_E_MALFORMED with a static reason in *why ---- */
/* Checks the format byte and the CRC; <body> is what lies between them. */
int rec_open(const uint8_t *key, size_t klen, const uint8_t *val, size_t vlen, struct rd *body,
	     const char **why);
int rec_get_session(struct rd *body, struct rec_session *s, const char **why);
int rec_get_sub(struct rd *body, struct rec_sub *s, const char **why);
int rec_get_entry(struct rd *body, struct rec_entry *e, const char **why);
int rec_get_msg(struct rd *body, struct rec_msg *m, const char **why);
int rec_get_will(struct rd *body, struct rec_will *w, const char **why);

/* ---- the cluster's outbound queue (src/cluster/outbound.c): a copy waiting for NATS ---- */
int rec_key_cluster_out(struct buf *out, uint64_t seq);
/* <subject> and <data> (the cluster wire bytes) as one value; MOAT_OK or MOAT_E_NOMEM. */
int rec_put_cluster_out(struct buf *out, struct moat_bytes key, struct moat_bytes subject,
			struct moat_bytes data);
/* The whole value (after rec_open): views into it. */
int rec_get_cluster_out(struct rd *body, struct moat_bytes *subject, struct moat_bytes *data,
			const char **why);

/* Checks one whole record of any type (moatd --check-store): NULL when it
 * is sound, else why not. */
const char *rec_check(const uint8_t *key, size_t klen, const uint8_t *val, size_t vlen);

/* Makes a NUL-terminated string array (broker.h's roles/attrs form) of the
 * <n> u16-length strings in <run>; NULL for none or on out of memory
 * (*<nomem> tells which). */
char **rec_strv(struct moat_bytes run, uint16_t n, bool *nomem);

#endif
