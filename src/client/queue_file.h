/*
 * libmoat's durable offline queue on disk: an append-only log of add, ack
 * and release records (format in docs/client.md), replayed on open into the
 * list of unacknowledged QoS 1/2 messages, cut back to its last good record
 * after a torn or damaged write, and compacted by rewriting it. This module
 * knows files and records; which message is live, and when to sync, is
 * client.c's business.
 */
#ifndef MOAT_CLIENT_QUEUE_FILE_H
#define MOAT_CLIENT_QUEUE_FILE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <moat/bytes.h>

#include "base/buf.h"
#include "codec/packet.h"

#define QF_HEADER "MOATQF1\n" /* the first 8 bytes of every queue file */
#define QF_HEADER_LEN 8
#define QF_REC_MAGIC 0x4D51u  /* "MQ": the first 2 bytes of every record */
#define QF_REC_HEAD 10	      /* magic u16, len u32, crc32 u32 */
#define QF_REC_MAX (1u << 28) /* largest record body: an MQTT packet plus overhead */
#define QF_COMPACT_MIN 65536  /* files smaller than this are never rewritten */

enum qf_kind { QF_ADD = 1, QF_ACK = 2, QF_REL = 3 };

/* An unacknowledged message found by replay. */
struct qf_entry {
	uint64_t seq;
	uint8_t version;       /* MQTT version <pkt> is encoded for (4 or 5) */
	bool released;	       /* PUBREC came: only the PUBREL exchange remains */
	struct moat_bytes pkt; /* the encoded QoS 1/2 PUBLISH, a view into the replay buffer */
};

/* What replay found: the live messages in file order. */
struct qf_replay {
	struct qf_entry *live; /* <count> entries, malloc'd */
	size_t count;
	size_t good_len;     /* bytes of the valid prefix (header included) */
	uint64_t next_seq;   /* one past the largest seq of an add record */
	uint64_t dead_bytes; /* bytes of acknowledged adds and of ack/release records */
	uint8_t *data;	     /* qf_open: the file's bytes, which <live> views into */
};

/* An open queue file. */
struct qf {
	int fd; /* -1 while the file holds no message (parked: closed, unlocked) */
	char *path;
	uint64_t size; /* bytes known to be written */
	uint64_t dead; /* bytes that compaction would drop */
	uint64_t next_seq;
	struct buf later; /* ack/release records not yet written */
};

/* CRC-32 (IEEE 802.3, reflected, as zlib's crc32) of <n> bytes at <p>. */
uint32_t qf_crc32(const void *p, size_t n);

/* Bytes of the add record that stores a <pkt_len>-byte packet. */
size_t qf_add_len(size_t pkt_len);

/*
 * Decodes the PUBLISH stored in <e> into <out> (views into e->pkt). MOAT_OK,
 * or MOAT_E_MALFORMED when it is not exactly one valid QoS 1/2 PUBLISH with a
 * topic name for MQTT version e->version.
 */
int qf_decode_publish(const struct qf_entry *e, struct mqtt_publish *out);

/*
 * Replays <len> bytes of a queue file (header included) into <out>. A damaged
 * record (short, bad magic, length or CRC, or a body that is not valid) ends
 * the valid prefix: out->good_len stops before it and <diag> (<diag_len>
 * bytes, may be NULL) says what was found where. Returns MOAT_OK (entries
 * view into <data>), MOAT_E_MALFORMED when the header is not QF_HEADER (then
 * the file is not ours: leave it alone), or MOAT_E_NOMEM.
 */
int qf_parse(const uint8_t *data, size_t len, struct qf_replay *out, char *diag, size_t diag_len);

/* Frees what qf_parse or qf_open allocated; a zeroed <r> is fine. */
void qf_replay_fini(struct qf_replay *r);

/*
 * Opens or creates (mode 0600) the queue file <path>, takes an exclusive
 * lock on it, replays it into <r> (free it with qf_replay_fini once the
 * entries are copied) and cuts a damaged tail off (reported in <diag>, the call still
 * succeeds). A file that holds no record is closed again at once, and
 * reopened and locked by the next qf_add: an empty queue costs no descriptor. MOAT_OK; MOAT_E_IO when the file cannot be opened, locked (in
 * use by another process), read or repaired; MOAT_E_MALFORMED when it is not
 * a queue file; MOAT_E_NOMEM. On error <q> needs no qf_close.
 */
int qf_open(struct qf *q, const char *path, struct qf_replay *r, char *diag, size_t diag_len);

/*
 * Appends an add record for <pkt> (a PUBLISH for MQTT <version>) after the
 * records waiting in q->later, and fdatasyncs: on MOAT_OK the message
 * survives a power cut, with its new seq in <*seq>. On MOAT_E_IO the file
 * is cut back to what it held before and nothing was added; that includes
 * a closed empty file that cannot be reopened and locked, or that another
 * process locked or wrote to meanwhile.
 */
int qf_add(struct qf *q, uint8_t version, struct moat_bytes pkt, uint64_t *seq);

/* Records (in q->later, written by the next qf_flush or qf_add) that the
 * add record <seq> holding a <pkt_len>-byte packet is done with. MOAT_OK or
 * MOAT_E_NOMEM. */
int qf_ack(struct qf *q, uint64_t seq, size_t pkt_len);

/* Records (as qf_ack) that the QoS 2 message <seq> got its PUBREC. */
int qf_rel(struct qf *q, uint64_t seq);

/* Writes the waiting records without syncing: losing them in a power cut
 * only means a message is sent again. MOAT_OK or MOAT_E_IO. */
int qf_flush(struct qf *q);

/* True when acknowledged records are over half of a file of at least QF_COMPACT_MIN bytes. */
bool qf_should_compact(const struct qf *q);

/* Returns the next live message to keep in <*e> (pkt, seq, version,
 * released), or false after the last one. */
typedef bool qf_next_fn(void *arg, struct qf_entry *e);

/*
 * Rewrites the file with only the messages <next> yields, in that order:
 * a temporary file next to it, fsync, rename over it, fsync of the
 * directory. The waiting records are dropped (the rewrite supersedes them).
 * On MOAT_E_IO or MOAT_E_NOMEM the old file stays in use, unchanged.
 */
int qf_compact(struct qf *q, qf_next_fn *next, void *arg);

/* Truncates a file whose every message is acknowledged back to its header,
 * and closes it until the next qf_add. */
int qf_reset(struct qf *q);

/* Writes the waiting records and closes the file; a zeroed or closed <q> is fine. */
void qf_close(struct qf *q);

#endif
