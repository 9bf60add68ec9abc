/*
 * The durable offline queue's file (see queue_file.h and docs/client.md):
 * record encoding, replay with damage detection, appends with fdatasync,
 * and compaction by rewrite-and-rename. The bytes read back are untrusted
 * (a power cut, a bad disk, anyone with write access): every length is
 * checked before it is used and every stored packet goes through the codec.
 */
#include "client/queue_file.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <moat/error.h>

#define ACK_BODY 9	/* kind u8, seq u64 */
#define ADD_MIN_BODY 12 /* kind, seq, version, and a PUBLISH of at least 2 bytes */

uint32_t qf_crc32(const void *p, size_t n)
{
	static uint32_t table[256];
	static bool ready;
	const uint8_t *b = p;
	uint32_t crc = 0xFFFFFFFFu;

	if (!__atomic_load_n(&ready, __ATOMIC_ACQUIRE)) {
		/* idempotent: threads racing here write the same values */
		for (uint32_t i = 0; i < 256; i++) {
			uint32_t c = i;

			for (int k = 0; k < 8; k++)
				c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
			__atomic_store_n(&table[i], c, __ATOMIC_RELAXED);
		}
		__atomic_store_n(&ready, true, __ATOMIC_RELEASE);
	}
	for (size_t i = 0; i < n; i++)
		crc = table[(crc ^ b[i]) & 0xFF] ^ (crc >> 8);
	return crc ^ 0xFFFFFFFFu;
}

size_t qf_add_len(size_t pkt_len)
{
	return QF_REC_HEAD + ACK_BODY + 1 + pkt_len;
}

static uint32_t get32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static uint64_t get64(const uint8_t *p)
{
	return (uint64_t)get32(p) << 32 | get32(p + 4);
}

static void put32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

static void put64(uint8_t *p, uint64_t v)
{
	put32(p, (uint32_t)(v >> 32));
	put32(p + 4, (uint32_t)v);
}

static void say(char *diag, size_t diag_len, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void say(char *diag, size_t diag_len, const char *fmt, ...)
{
	va_list ap;

	if (diag == NULL || diag_len == 0)
		return;
	va_start(ap, fmt);
	vsnprintf(diag, diag_len, fmt, ap);
	va_end(ap);
}

/* Appends one record: <kind>, <seq>, then <version> and <pkt> for an add. */
static int put_record(struct buf *b, uint8_t kind, uint64_t seq, uint8_t version,
		      struct moat_bytes pkt)
{
	size_t body = ACK_BODY + (kind == QF_ADD ? 1 + pkt.len : 0);
	uint8_t *r;

	if (body > QF_REC_MAX)
		return MOAT_E_LIMIT;
	if (buf_reserve(b, QF_REC_HEAD + body) < 0)
		return MOAT_E_NOMEM;
	r = b->data + b->len;
	r[0] = (uint8_t)(QF_REC_MAGIC >> 8);
	r[1] = (uint8_t)QF_REC_MAGIC;
	put32(r + 2, (uint32_t)body);
	r[10] = kind;
	put64(r + 11, seq);
	if (kind == QF_ADD) {
		r[19] = version;
		if (pkt.len > 0)
			memcpy(r + 20, pkt.ptr, pkt.len);
	}
	put32(r + 6, qf_crc32(r + QF_REC_HEAD, body));
	b->len += QF_REC_HEAD + body;
	return MOAT_OK;
}

int qf_decode_publish(const struct qf_entry *e, struct mqtt_publish *out)
{
	struct mqtt_frame f;
	struct mqtt_packet p;

	if ((e->version != MQTT_V311 && e->version != MQTT_V5) ||
	    frame_decode(e->pkt.ptr, e->pkt.len, QF_REC_MAX, &f) != MOAT_OK ||
	    f.type != MQTT_PUBLISH || e->pkt.len - f.hdr_len != f.rem_len)
		return MOAT_E_MALFORMED;
	if (pkt_decode(&f, e->pkt.ptr + f.hdr_len, e->version, &p) != MOAT_OK ||
	    p.publish.qos == 0 || p.publish.topic.len == 0 ||
	    props_has(&p.publish.props, MQTT_PROP_TOPIC_ALIAS))
		return MOAT_E_MALFORMED;
	*out = p.publish;
	return MOAT_OK;
}

/* Index of the add with <seq> among <n> entries in increasing seq order, or <n>. */
static size_t find_seq(const struct qf_entry *live, size_t n, uint64_t seq)
{
	size_t lo = 0, hi = n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (live[mid].seq == seq)
			return mid;
		if (live[mid].seq < seq)
			lo = mid + 1;
		else
			hi = mid;
	}
	return n;
}

int qf_parse(const uint8_t *data, size_t len, struct qf_replay *out, char *diag, size_t diag_len)
{
	struct qf_entry *all = NULL;
	bool *acked = NULL;
	size_t n = 0, cap = 0, off = QF_HEADER_LEN;
	const char *why = NULL;

	memset(out, 0, sizeof(*out));
	out->next_seq = 1;
	if (diag != NULL && diag_len > 0)
		diag[0] = '\0';
	if (len < QF_HEADER_LEN || memcmp(data, QF_HEADER, QF_HEADER_LEN) != 0) {
		say(diag, diag_len, "not a moat queue file (its first bytes are not \"MOATQF1\")");
		return MOAT_E_MALFORMED;
	}
	while (off < len) {
		const uint8_t *r = data + off;
		size_t left = len - off;
		uint32_t body;
		uint8_t kind;
		uint64_t seq;

		if (left < QF_REC_HEAD) {
			why = "torn record header";
			break;
		}
		if ((uint32_t)(r[0] << 8 | r[1]) != QF_REC_MAGIC) {
			why = "bad record magic";
			break;
		}
		body = get32(r + 2);
		if (body > QF_REC_MAX || body < ACK_BODY) {
			why = "bad record length";
			break;
		}
		if (body > left - QF_REC_HEAD) {
			why = "torn record (shorter than its length)";
			break;
		}
		if (qf_crc32(r + QF_REC_HEAD, body) != get32(r + 6)) {
			why = "CRC mismatch";
			break;
		}
		kind = r[10];
		seq = get64(r + 11);
		if (kind == QF_ADD) {
			struct qf_entry e = {.seq = seq};
			struct mqtt_publish p;

			if (body < ADD_MIN_BODY || seq == 0 || (n > 0 && seq <= all[n - 1].seq) ||
			    seq == UINT64_MAX) {
				why = "invalid add record";
				break;
			}
			e.version = r[19]; /* body >= ADD_MIN_BODY: inside the record */
			e.pkt = (struct moat_bytes){r + 20, body - ACK_BODY - 1};
			if (qf_decode_publish(&e, &p) != MOAT_OK) {
				why = "invalid PUBLISH in an add record";
				break;
			}
			if (n == cap) {
				size_t ncap = cap ? cap * 2 : 16;
				struct qf_entry *na = realloc(all, ncap * sizeof(*na));
				bool *nk = na != NULL ? realloc(acked, ncap * sizeof(*nk)) : NULL;

				if (na != NULL)
					all = na;
				if (nk == NULL)
					goto err_nomem;
				acked = nk;
				cap = ncap;
			}
			acked[n] = false;
			all[n++] = e;
			out->next_seq = seq + 1;
		} else if ((kind == QF_ACK || kind == QF_REL) && body == ACK_BODY) {
			size_t i = find_seq(all, n, seq);

			out->dead_bytes += QF_REC_HEAD + body;
			if (i < n && !acked[i] && kind == QF_ACK) {
				acked[i] = true;
				out->dead_bytes += qf_add_len(all[i].pkt.len);
			} else if (i < n && kind == QF_REL) {
				all[i].released = true;
			}
		} else {
			why = "unknown record kind";
			break;
		}
		off += QF_REC_HEAD + body;
	}
	out->good_len = off;
	if (why != NULL)
		say(diag, diag_len,
		    "queue file damaged: %s at offset %zu; cut to %zu bytes (%zu bytes after it "
		    "dropped)",
		    why, off, off, len - off);
	for (size_t i = 0; i < n; i++)
		if (!acked[i])
			all[out->count++] = all[i];
	out->live = all;
	free(acked);
	return MOAT_OK;

err_nomem:
	free(all);
	free(acked);
	memset(out, 0, sizeof(*out));
	return MOAT_E_NOMEM;
}

void qf_replay_fini(struct qf_replay *r)
{
	free(r->live);
	free(r->data);
	memset(r, 0, sizeof(*r));
}

/* Writes all of <p> at <off>. */
static int write_at(int fd, const void *p, size_t n, uint64_t off)
{
	const uint8_t *b = p;

	while (n > 0) {
		ssize_t w = pwrite(fd, b, n, (off_t)off);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return MOAT_E_IO;
		b += w;
		n -= (size_t)w;
		off += (uint64_t)w;
	}
	return MOAT_OK;
}

/* Makes a rename or a creation in the directory of <path> durable. */
static int sync_dir(const char *path)
{
	const char *slash = strrchr(path, '/');
	char *dir;
	int fd, rc;

	if (slash == NULL)
		dir = strdup(".");
	else if (slash == path)
		dir = strdup("/");
	else
		dir = strndup(path, (size_t)(slash - path));
	if (dir == NULL)
		return MOAT_E_NOMEM;
	fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	free(dir);
	if (fd < 0)
		return MOAT_E_IO;
	rc = fsync(fd) == 0 ? MOAT_OK : MOAT_E_IO;
	close(fd);
	return rc;
}

static int read_all(int fd, uint8_t **data, size_t *len)
{
	struct stat st;
	size_t got = 0;

	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode))
		return MOAT_E_IO;
	if ((uint64_t)st.st_size > SIZE_MAX / 2)
		return MOAT_E_LIMIT;
	*len = (size_t)st.st_size;
	*data = malloc(*len > 0 ? *len : 1);
	if (*data == NULL)
		return MOAT_E_NOMEM;
	while (got < *len) {
		ssize_t n = pread(fd, *data + got, *len - got, (off_t)got);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		got += (size_t)n;
	}
	*len = got; /* a file that shrank under us: replay what is there */
	return MOAT_OK;
}

/*
 * A file that holds nothing but its header is closed ("parked") until a
 * message is added, so an idle client holds no descriptor (a simulator of
 * 10,000 devices would otherwise need one per device) and no lock: nothing
 * in it needs protecting. q->fd is -1 while parked.
 */
static void park(struct qf *q)
{
	close(q->fd);
	q->fd = -1;
}

/* Opens and locks a parked file again. It must still hold only its header
 * (or nothing, when someone deleted it): anything else was written by
 * another process since, and is left to it. */
static int unpark(struct qf *q)
{
	struct stat st;
	int fd = open(q->path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);

	if (fd < 0)
		return MOAT_E_IO;
	if (flock(fd, LOCK_EX | LOCK_NB) != 0 || fstat(fd, &st) != 0 ||
	    (st.st_size != 0 && st.st_size != QF_HEADER_LEN) ||
	    (st.st_size == 0 && (write_at(fd, QF_HEADER, QF_HEADER_LEN, 0) < 0 ||
				 fdatasync(fd) != 0 || sync_dir(q->path) < 0))) {
		close(fd);
		return MOAT_E_IO;
	}
	q->fd = fd;
	q->size = QF_HEADER_LEN;
	return MOAT_OK;
}

int qf_open(struct qf *q, const char *path, struct qf_replay *r, char *diag, size_t diag_len)
{
	uint8_t *data = NULL;
	size_t len = 0;
	int rc;

	memset(q, 0, sizeof(*q));
	memset(r, 0, sizeof(*r));
	if (diag != NULL && diag_len > 0)
		diag[0] = '\0';
	q->path = strdup(path);
	if (q->path == NULL)
		return MOAT_E_NOMEM;
	q->fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (q->fd < 0) {
		say(diag, diag_len, "queue file %s: cannot open: %s", path, strerror(errno));
		rc = MOAT_E_IO;
		goto err_free_path;
	}
	if (flock(q->fd, LOCK_EX | LOCK_NB) != 0) {
		say(diag, diag_len, "queue file %s: in use by another process (%s)", path,
		    strerror(errno));
		rc = MOAT_E_IO;
		goto err_close;
	}
	rc = read_all(q->fd, &data, &len);
	if (rc < 0) {
		say(diag, diag_len, "queue file %s: cannot read it", path);
		goto err_close;
	}
	if (len < QF_HEADER_LEN && memcmp(data, QF_HEADER, len) == 0) {
		/* new, or torn while it was being created: (re)write the header */
		if (ftruncate(q->fd, 0) != 0 || write_at(q->fd, QF_HEADER, QF_HEADER_LEN, 0) < 0 ||
		    fdatasync(q->fd) != 0 || sync_dir(path) < 0) {
			say(diag, diag_len, "queue file %s: cannot create it: %s", path,
			    strerror(errno));
			rc = MOAT_E_IO;
			goto err_free_data;
		}
		free(data);
		data = malloc(QF_HEADER_LEN);
		if (data == NULL) {
			rc = MOAT_E_NOMEM;
			goto err_close;
		}
		memcpy(data, QF_HEADER, QF_HEADER_LEN);
		len = QF_HEADER_LEN;
	}
	rc = qf_parse(data, len, r, diag, diag_len);
	if (rc < 0)
		goto err_free_data;
	r->data = data;
	if (r->good_len < len &&
	    (ftruncate(q->fd, (off_t)r->good_len) != 0 || fdatasync(q->fd) != 0)) {
		say(diag, diag_len, "queue file %s: damaged, and cutting it failed: %s", path,
		    strerror(errno));
		qf_replay_fini(r);
		rc = MOAT_E_IO;
		goto err_close;
	}
	q->size = r->good_len;
	q->dead = r->dead_bytes;
	q->next_seq = r->next_seq;
	if (q->size == QF_HEADER_LEN)
		park(q);
	return MOAT_OK;

err_free_data:
	free(data);
err_close:
	close(q->fd);
err_free_path:
	free(q->path);
	memset(q, 0, sizeof(*q));
	q->fd = -1;
	return rc;
}

/* Writes q->later plus <extra> at the end; on failure cuts the file back. */
static int append(struct qf *q, const struct buf *extra)
{
	int rc = MOAT_OK;

	if (buf_used(&q->later) > 0)
		rc = write_at(q->fd, buf_head(&q->later), buf_used(&q->later), q->size);
	if (rc == MOAT_OK && extra != NULL)
		rc = write_at(q->fd, buf_head(extra), buf_used(extra),
			      q->size + buf_used(&q->later));
	if (rc < 0) {
		/* a partial record would hide every later one from replay */
		if (ftruncate(q->fd, (off_t)q->size) != 0)
			return MOAT_E_IO;
		return rc;
	}
	q->size += buf_used(&q->later) + (extra != NULL ? buf_used(extra) : 0);
	buf_consume(&q->later, buf_used(&q->later));
	buf_trim(&q->later, 4096);
	return MOAT_OK;
}

int qf_add(struct qf *q, uint8_t version, struct moat_bytes pkt, uint64_t *seq)
{
	struct buf rec = {0};
	int rc = q->fd < 0 ? unpark(q) : MOAT_OK;

	if (rc == MOAT_OK)
		rc = put_record(&rec, QF_ADD, q->next_seq, version, pkt);
	if (rc == MOAT_OK)
		rc = append(q, &rec);
	if (rc == MOAT_OK && fdatasync(q->fd) != 0)
		rc = MOAT_E_IO; /* the record may be on disk or not: replay copes with both */
	buf_fini(&rec);
	if (rc == MOAT_OK)
		*seq = q->next_seq++;
	return rc;
}

int qf_ack(struct qf *q, uint64_t seq, size_t pkt_len)
{
	int rc = put_record(&q->later, QF_ACK, seq, 0, (struct moat_bytes){NULL, 0});

	if (rc == MOAT_OK)
		q->dead += QF_REC_HEAD + ACK_BODY + qf_add_len(pkt_len);
	return rc;
}

int qf_rel(struct qf *q, uint64_t seq)
{
	int rc = put_record(&q->later, QF_REL, seq, 0, (struct moat_bytes){NULL, 0});

	if (rc == MOAT_OK)
		q->dead += QF_REC_HEAD + ACK_BODY;
	return rc;
}

int qf_flush(struct qf *q)
{
	if (q->fd < 0) /* parked: the file holds no message these records could be about */
		buf_consume(&q->later, buf_used(&q->later));
	return buf_used(&q->later) > 0 ? append(q, NULL) : MOAT_OK;
}

bool qf_should_compact(const struct qf *q)
{
	return q->size >= QF_COMPACT_MIN && q->dead > q->size / 2;
}

int qf_compact(struct qf *q, qf_next_fn *next, void *arg)
{
	size_t plen = strlen(q->path);
	char *tmp = malloc(plen + 5);
	struct buf out = {0};
	struct qf_entry e;
	int fd = -1, rc;

	if (tmp == NULL)
		return MOAT_E_NOMEM;
	memcpy(tmp, q->path, plen);
	memcpy(tmp + plen, ".tmp", 5);
	rc = buf_append(&out, QF_HEADER, QF_HEADER_LEN);
	while (rc == MOAT_OK && next(arg, &e)) {
		rc = put_record(&out, QF_ADD, e.seq, e.version, e.pkt);
		if (rc == MOAT_OK && e.released)
			rc = put_record(&out, QF_REL, e.seq, 0, (struct moat_bytes){NULL, 0});
	}
	if (rc < 0)
		goto out;
	fd = open(tmp, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0 || write_at(fd, buf_head(&out), buf_used(&out), 0) < 0 || fsync(fd) != 0 ||
	    flock(fd, LOCK_EX | LOCK_NB) != 0 || rename(tmp, q->path) != 0) {
		rc = MOAT_E_IO;
		if (fd >= 0)
			unlink(tmp);
		goto out;
	}
	sync_dir(q->path); /* the new file is complete either way; this makes the swap durable */
	close(q->fd);
	q->fd = fd;
	fd = -1;
	q->size = buf_used(&out);
	q->dead = 0;
	buf_consume(&q->later, buf_used(&q->later));
out:
	if (fd >= 0)
		close(fd);
	buf_fini(&out);
	free(tmp);
	return rc;
}

int qf_reset(struct qf *q)
{
	buf_consume(&q->later, buf_used(&q->later));
	if (q->fd < 0)
		return MOAT_OK;
	if (ftruncate(q->fd, QF_HEADER_LEN) != 0)
		return MOAT_E_IO;
	q->size = QF_HEADER_LEN;
	q->dead = 0;
	park(q);
	return MOAT_OK;
}

void qf_close(struct qf *q)
{
	if (q == NULL || q->path == NULL)
		return;
	qf_flush(q);
	if (q->fd >= 0)
		close(q->fd);
	free(q->path);
	buf_fini(&q->later);
	memset(q, 0, sizeof(*q));
	q->fd = -1;
}
