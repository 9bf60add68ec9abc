/*
 * Unit tests for libmoat's queue file (src/client/queue_file.c): replay of
 * adds minus acks, release records, a torn or CRC-damaged tail cut off at
 * the last good record, foreign files left alone, the lock, and compaction.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "client/queue_file.h"
#include "codec/packet.h"

struct env {
	char dir[64], path[96];
	uint8_t pkt[8][64];
	size_t pkt_len[8];
};

/* Encodes the QoS 1 PUBLISH "t/<i>" with packet id <i> + 1. */
static struct moat_bytes pkt(struct env *e, int i)
{
	struct mqtt_packet p = {.type = MQTT_PUBLISH};
	char topic[8];

	snprintf(topic, sizeof(topic), "t/%d", i);
	p.publish.qos = 1;
	p.publish.packet_id = (uint16_t)(i + 1);
	p.publish.topic = moat_bytes_str(topic);
	p.publish.payload = moat_bytes_str("payload");
	e->pkt_len[i] = pkt_encode(e->pkt[i], sizeof(e->pkt[i]), MQTT_V5, &p);
	assert_true(e->pkt_len[i] > 0 && e->pkt_len[i] <= sizeof(e->pkt[i]));
	return (struct moat_bytes){e->pkt[i], e->pkt_len[i]};
}

static int setup(void **state)
{
	static struct env e;

	memset(&e, 0, sizeof(e));
	snprintf(e.dir, sizeof(e.dir), "/tmp/moat-qf-XXXXXX");
	assert_non_null(mkdtemp(e.dir));
	snprintf(e.path, sizeof(e.path), "%s/q", e.dir);
	*state = &e;
	return 0;
}

static int teardown(void **state)
{
	struct env *e = *state;
	char tmp[128];

	unlink(e->path);
	snprintf(tmp, sizeof(tmp), "%s.tmp", e->path);
	unlink(tmp);
	rmdir(e->dir);
	return 0;
}

static off_t file_size(const char *path)
{
	struct stat st;

	assert_int_equal(stat(path, &st), 0);
	return st.st_size;
}

/* Writes adds for packets 0..n-1 (seqs 1..n) to a new file and closes it. */
static void write_adds(struct env *e, int n)
{
	struct qf q;
	struct qf_replay r;
	uint64_t seq;

	assert_int_equal(qf_open(&q, e->path, &r, NULL, 0), MOAT_OK);
	assert_int_equal(r.count, 0);
	qf_replay_fini(&r);
	for (int i = 0; i < n; i++) {
		assert_int_equal(qf_add(&q, MQTT_V5, pkt(e, i), &seq), MOAT_OK);
		assert_int_equal(seq, (uint64_t)i + 1);
	}
	qf_close(&q);
}

static void crc32_matches_the_check_value(void **state)
{
	(void)state;
	assert_int_equal(qf_crc32("123456789", 9), 0xCBF43926u);
	assert_int_equal(qf_crc32("", 0), 0);
}

static void replay_is_adds_minus_acks_in_order(void **state)
{
	struct env *e = *state;
	struct qf q;
	struct qf_replay r;
	char diag[200];
	uint64_t seq;

	write_adds(e, 3);
	assert_int_equal(qf_open(&q, e->path, &r, diag, sizeof(diag)), MOAT_OK);
	assert_string_equal(diag, "");
	assert_int_equal(r.count, 3);
	qf_replay_fini(&r);
	assert_int_equal(qf_ack(&q, 2, e->pkt_len[1]), MOAT_OK);
	assert_int_equal(qf_rel(&q, 3), MOAT_OK);
	assert_int_equal(qf_add(&q, MQTT_V5, pkt(e, 3), &seq),
			 MOAT_OK); /* writes the waiting ack first */
	assert_int_equal(seq, 4);
	qf_close(&q);

	assert_int_equal(qf_open(&q, e->path, &r, diag, sizeof(diag)), MOAT_OK);
	assert_int_equal(r.count, 3);
	assert_int_equal(r.live[0].seq, 1);
	assert_int_equal(r.live[1].seq, 3);
	assert_int_equal(r.live[2].seq, 4);
	assert_false(r.live[0].released);
	assert_true(r.live[1].released);
	assert_int_equal(r.live[0].version, MQTT_V5);
	assert_memory_equal(r.live[0].pkt.ptr, e->pkt[0], e->pkt_len[0]);
	assert_memory_equal(r.live[2].pkt.ptr, e->pkt[3], e->pkt_len[3]);
	assert_int_equal(r.next_seq, 5);
	assert_int_equal(q.next_seq, 5);
	qf_replay_fini(&r);
	qf_close(&q);
}

static void acks_written_by_flush_survive(void **state)
{
	struct env *e = *state;
	struct qf q;
	struct qf_replay r;

	write_adds(e, 2);
	assert_int_equal(qf_open(&q, e->path, &r, NULL, 0), MOAT_OK);
	qf_replay_fini(&r);
	assert_int_equal(qf_ack(&q, 1, e->pkt_len[0]), MOAT_OK);
	assert_int_equal(qf_flush(&q), MOAT_OK);
	assert_int_equal(file_size(e->path), (off_t)q.size);
	close(q.fd); /* a crash: no qf_close */
	q.fd = -1;
	qf_close(&q);
	assert_int_equal(qf_open(&q, e->path, &r, NULL, 0), MOAT_OK);
	assert_int_equal(r.count, 1);
	assert_int_equal(r.live[0].seq, 2);
	qf_replay_fini(&r);
	qf_close(&q);
}

static void torn_tail_is_cut_and_reported(void **state)
{
	struct env *e = *state;
	struct qf q;
	struct qf_replay r;
	char diag[200];
	off_t full, good;

	write_adds(e, 3);
	full = file_size(e->path);
	good = full - (off_t)qf_add_len(e->pkt_len[2]);
	assert_int_equal(truncate(e->path, full - 5), 0); /* power cut inside record 3 */
	assert_int_equal(qf_open(&q, e->path, &r, diag, sizeof(diag)), MOAT_OK);
	assert_int_equal(r.count, 2);
	assert_non_null(strstr(diag, "torn record"));
	assert_int_equal(file_size(e->path), good);
	assert_int_equal(q.size, (uint64_t)good);
	qf_replay_fini(&r);
	qf_close(&q);

	/* cut once: the next open is clean */
	assert_int_equal(qf_open(&q, e->path, &r, diag, sizeof(diag)), MOAT_OK);
	assert_string_equal(diag, "");
	assert_int_equal(r.count, 2);
	qf_replay_fini(&r);
	qf_close(&q);
}

static void torn_record_header_is_cut(void **state)
{
	struct env *e = *state;
	struct qf q;
	struct qf_replay r;
	char diag[200];
	off_t full;

	write_adds(e, 1);
	full = file_size(e->path);
	int fd = open(e->path, O_WRONLY | O_APPEND);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, "\x4d\x51\x00", 3), 3); /* 3 bytes of the next header */
	close(fd);
	assert_int_equal(qf_open(&q, e->path, &r, diag, sizeof(diag)), MOAT_OK);
	assert_int_equal(r.count, 1);
	assert_non_null(strstr(diag, "torn record header"));
	assert_int_equal(file_size(e->path), full);
	qf_replay_fini(&r);
	qf_close(&q);
}

static void crc_damage_is_detected_and_cut(void **state)
{
	struct env *e = *state;
	struct qf q;
	struct qf_replay r;
	char diag[200];
	off_t second;
	uint8_t b;

	write_adds(e, 3);
	second = QF_HEADER_LEN + (off_t)qf_add_len(e->pkt_len[0]);
	int fd = open(e->path, O_RDWR);
	assert_true(fd >= 0);
	assert_int_equal(pread(fd, &b, 1, second + 25), 1); /* inside record 2's packet */
	b ^= 0x40;
	assert_int_equal(pwrite(fd, &b, 1, second + 25), 1);
	close(fd);
	assert_int_equal(qf_open(&q, e->path, &r, diag, sizeof(diag)), MOAT_OK);
	assert_int_equal(r.count, 1); /* records after a damaged one cannot be trusted */
	assert_int_equal(r.live[0].seq, 1);
	assert_non_null(strstr(diag, "CRC mismatch"));
	assert_non_null(strstr(diag, "offset"));
	assert_int_equal(file_size(e->path), second);
	qf_replay_fini(&r);
	qf_close(&q);
}

static void foreign_file_is_refused_untouched(void **state)
{
	struct env *e = *state;
	struct qf q;
	struct qf_replay r;
	char diag[200];
	FILE *f = fopen(e->path, "w");

	assert_non_null(f);
	fputs("not a queue, someone's notes\n", f);
	fclose(f);
	assert_int_equal(qf_open(&q, e->path, &r, diag, sizeof(diag)), MOAT_E_MALFORMED);
	assert_non_null(strstr(diag, "not a moat queue file"));
	assert_int_equal(file_size(e->path), 29);
}

static void torn_file_header_starts_a_new_file(void **state)
{
	struct env *e = *state;
	struct qf q;
	struct qf_replay r;
	FILE *f = fopen(e->path, "w");

	assert_non_null(f);
	fputs("MOAT", f); /* a power cut while the file was created */
	fclose(f);
	assert_int_equal(qf_open(&q, e->path, &r, NULL, 0), MOAT_OK);
	assert_int_equal(r.count, 0);
	assert_int_equal(file_size(e->path), QF_HEADER_LEN);
	qf_replay_fini(&r);
	qf_close(&q);
}

static void second_opener_is_refused(void **state)
{
	struct env *e = *state;
	struct qf q, q2;
	struct qf_replay r, r2;
	char diag[200];

	write_adds(e, 1);
	assert_int_equal(qf_open(&q, e->path, &r, NULL, 0), MOAT_OK);
	assert_true(q.fd >= 0);
	assert_int_equal(qf_open(&q2, e->path, &r2, diag, sizeof(diag)), MOAT_E_IO);
	assert_non_null(strstr(diag, "in use"));
	qf_replay_fini(&r);
	qf_close(&q);
	assert_int_equal(qf_open(&q2, e->path, &r2, NULL, 0), MOAT_OK);
	qf_replay_fini(&r2);
	qf_close(&q2);
}

/* An empty queue holds no descriptor and no lock; the next add reopens and
 * locks it, and a reset closes it again. */
static void empty_file_is_closed_until_an_add(void **state)
{
	struct env *e = *state;
	struct qf q, q2;
	struct qf_replay r, r2;
	uint64_t seq;

	assert_int_equal(qf_open(&q, e->path, &r, NULL, 0), MOAT_OK);
	qf_replay_fini(&r);
	assert_int_equal(q.fd, -1);
	assert_int_equal(qf_add(&q, MQTT_V5, pkt(e, 0), &seq), MOAT_OK);
	assert_true(q.fd >= 0);
	assert_int_equal(qf_open(&q2, e->path, &r2, NULL, 0), MOAT_E_IO); /* locked */
	assert_int_equal(qf_ack(&q, seq, pkt(e, 0).len), MOAT_OK);
	assert_int_equal(qf_reset(&q), MOAT_OK);
	assert_int_equal(q.fd, -1);
	assert_int_equal(file_size(e->path), QF_HEADER_LEN);
	/* a deleted file is created again by the next add, seqs going on */
	assert_int_equal(unlink(e->path), 0);
	assert_int_equal(qf_add(&q, MQTT_V5, pkt(e, 1), &seq), MOAT_OK);
	assert_int_equal(seq, 2);
	qf_close(&q);
	assert_int_equal(qf_open(&q, e->path, &r, NULL, 0), MOAT_OK);
	assert_int_equal(r.count, 1);
	assert_int_equal(r.live[0].seq, 2);
	qf_replay_fini(&r);
	qf_close(&q);
}

/* While our empty file was closed, another process used it: our next add
 * fails rather than mixing two clients' messages in one file. */
static void add_refused_when_another_process_took_the_file(void **state)
{
	struct env *e = *state;
	struct qf q, other;
	struct qf_replay r;
	uint64_t seq;

	assert_int_equal(qf_open(&q, e->path, &r, NULL, 0), MOAT_OK);
	qf_replay_fini(&r);
	assert_int_equal(qf_open(&other, e->path, &r, NULL, 0), MOAT_OK);
	qf_replay_fini(&r);
	assert_int_equal(qf_add(&other, MQTT_V5, pkt(e, 0), &seq), MOAT_OK);
	assert_int_equal(qf_add(&q, MQTT_V5, pkt(e, 1), &seq), MOAT_E_IO); /* locked */
	qf_close(&other);						   /* left a message */
	assert_int_equal(qf_add(&q, MQTT_V5, pkt(e, 1), &seq), MOAT_E_IO); /* not empty */
	assert_int_equal(q.fd, -1);
	qf_close(&q);
	assert_int_equal(qf_open(&q, e->path, &r, NULL, 0), MOAT_OK);
	assert_int_equal(r.count, 1);
	qf_replay_fini(&r);
	qf_close(&q);
}

struct iter {
	struct env *e;
	int next, end;
};

/* Yields the odd packets (seqs 2, 4, ...: packet i has seq i + 1). */
static bool odd_ones(void *arg, struct qf_entry *out)
{
	struct iter *it = arg;

	if (it->next >= it->end)
		return false;
	*out = (struct qf_entry){.seq = (uint64_t)it->next + 1,
				 .version = MQTT_V5,
				 .released = it->next == 3,
				 .pkt = {it->e->pkt[it->next], it->e->pkt_len[it->next]}};
	it->next += 2;
	return true;
}

static void compaction_keeps_order_and_shrinks(void **state)
{
	struct env *e = *state;
	struct qf q;
	struct qf_replay r;
	struct iter it = {e, 1, 8};
	off_t before;
	uint64_t seq;

	write_adds(e, 8);
	assert_int_equal(qf_open(&q, e->path, &r, NULL, 0), MOAT_OK);
	qf_replay_fini(&r);
	for (int i = 0; i < 8; i += 2)
		assert_int_equal(qf_ack(&q, (uint64_t)i + 1, e->pkt_len[i]), MOAT_OK);
	assert_false(qf_should_compact(&q)); /* far below QF_COMPACT_MIN */
	assert_int_equal(qf_flush(&q), MOAT_OK);
	before = file_size(e->path);
	assert_int_equal(qf_compact(&q, odd_ones, &it), MOAT_OK);
	assert_true(file_size(e->path) < before);
	assert_int_equal(q.dead, 0);
	assert_int_equal(qf_add(&q, MQTT_V5, pkt(e, 0), &seq),
			 MOAT_OK); /* appends to the new file */
	assert_int_equal(seq, 9);
	qf_close(&q);

	assert_int_equal(qf_open(&q, e->path, &r, NULL, 0), MOAT_OK);
	assert_int_equal(r.count, 5);
	for (int i = 0; i < 4; i++) {
		assert_int_equal(r.live[i].seq, (uint64_t)(2 * i + 2));
		assert_memory_equal(r.live[i].pkt.ptr, e->pkt[2 * i + 1], e->pkt_len[2 * i + 1]);
	}
	assert_true(r.live[1].released);
	assert_false(r.live[0].released);
	assert_int_equal(r.live[4].seq, 9);
	qf_replay_fini(&r);
	qf_close(&q);
}

/* A write that fails halfway (here: the file size limit, as a full disk
 * would) leaves no partial record behind, and nothing is added. */
static void failed_add_cuts_the_file_back(void **state)
{
	struct env *e = *state;
	struct qf q;
	struct qf_replay r;
	struct rlimit old, lim;
	uint64_t seq = 0;
	off_t before;

	write_adds(e, 1);
	assert_int_equal(qf_open(&q, e->path, &r, NULL, 0), MOAT_OK);
	qf_replay_fini(&r);
	assert_int_equal(qf_ack(&q, 1, e->pkt_len[0]), MOAT_OK);
	before = file_size(e->path);
	assert_int_equal(getrlimit(RLIMIT_FSIZE, &old), 0);
	signal(SIGXFSZ, SIG_IGN);
	lim = old;
	lim.rlim_cur = (rlim_t)before + 30; /* the ack fits, the add does not */
	assert_int_equal(setrlimit(RLIMIT_FSIZE, &lim), 0);
	assert_int_equal(qf_add(&q, MQTT_V5, pkt(e, 1), &seq), MOAT_E_IO);
	assert_int_equal(setrlimit(RLIMIT_FSIZE, &old), 0);
	signal(SIGXFSZ, SIG_DFL);
	assert_int_equal(file_size(e->path), before);
	assert_int_equal(q.size, (uint64_t)before);
	assert_int_equal(seq, 0);
	/* the waiting ack was kept and goes out with the next add */
	assert_int_equal(qf_add(&q, MQTT_V5, pkt(e, 2), &seq), MOAT_OK);
	assert_int_equal(seq, 2);
	qf_close(&q);
	assert_int_equal(qf_open(&q, e->path, &r, NULL, 0), MOAT_OK);
	assert_int_equal(r.count, 1);
	assert_int_equal(r.live[0].seq, 2);
	assert_memory_equal(r.live[0].pkt.ptr, e->pkt[2], e->pkt_len[2]);
	qf_replay_fini(&r);
	qf_close(&q);
}

static void should_compact_when_mostly_acknowledged(void **state)
{
	struct qf q = {.size = QF_COMPACT_MIN, .dead = QF_COMPACT_MIN / 2};

	(void)state;
	assert_false(qf_should_compact(&q));
	q.dead++;
	assert_true(qf_should_compact(&q));
	q.size = QF_COMPACT_MIN - 1;
	q.dead = q.size;
	assert_false(qf_should_compact(&q));
}

static void reset_cuts_back_to_the_header(void **state)
{
	struct env *e = *state;
	struct qf q;
	struct qf_replay r;

	write_adds(e, 2);
	assert_int_equal(qf_open(&q, e->path, &r, NULL, 0), MOAT_OK);
	qf_replay_fini(&r);
	assert_int_equal(qf_reset(&q), MOAT_OK);
	qf_close(&q);
	assert_int_equal(file_size(e->path), QF_HEADER_LEN);
}

/* Builds one record by hand around <body> (kind, seq, ...). */
static size_t record(uint8_t *out, const uint8_t *body, uint32_t len)
{
	uint32_t crc = qf_crc32(body, len);

	out[0] = 0x4D;
	out[1] = 0x51;
	out[2] = (uint8_t)(len >> 24);
	out[3] = (uint8_t)(len >> 16);
	out[4] = (uint8_t)(len >> 8);
	out[5] = (uint8_t)len;
	out[6] = (uint8_t)(crc >> 24);
	out[7] = (uint8_t)(crc >> 16);
	out[8] = (uint8_t)(crc >> 8);
	out[9] = (uint8_t)crc;
	memcpy(out + 10, body, len);
	return 10 + len;
}

static void parse_rejects_invalid_records(void **state)
{
	struct env *e = *state;
	uint8_t file[512], body[128];
	struct qf_replay r;
	char diag[200];
	size_t n, first;

	memcpy(file, QF_HEADER, QF_HEADER_LEN);
	/* a good add, seq 5 */
	memset(body, 0, sizeof(body));
	body[0] = QF_ADD;
	body[8] = 5;
	body[9] = MQTT_V5;
	pkt(e, 0);
	memcpy(body + 10, e->pkt[0], e->pkt_len[0]);
	first = QF_HEADER_LEN + record(file + QF_HEADER_LEN, body, (uint32_t)(10 + e->pkt_len[0]));

	/* an add whose seq does not grow */
	n = first + record(file + first, body, (uint32_t)(10 + e->pkt_len[0]));
	assert_int_equal(qf_parse(file, n, &r, diag, sizeof(diag)), MOAT_OK);
	assert_int_equal(r.count, 1);
	assert_int_equal(r.good_len, first);
	assert_non_null(strstr(diag, "invalid add record"));
	qf_replay_fini(&r);

	/* a QoS 0 PUBLISH in an add */
	body[8] = 6;
	body[10] &= (uint8_t)~0x06;
	n = first + record(file + first, body, (uint32_t)(10 + e->pkt_len[0]));
	assert_int_equal(qf_parse(file, n, &r, diag, sizeof(diag)), MOAT_OK);
	assert_int_equal(r.good_len, first);
	assert_non_null(strstr(diag, "invalid PUBLISH"));
	qf_replay_fini(&r);

	/* an unknown kind, and an ack of the wrong length */
	body[0] = 9;
	n = first + record(file + first, body, 9);
	assert_int_equal(qf_parse(file, n, &r, diag, sizeof(diag)), MOAT_OK);
	assert_int_equal(r.good_len, first);
	assert_non_null(strstr(diag, "unknown record kind"));
	qf_replay_fini(&r);
	body[0] = QF_ACK;
	n = first + record(file + first, body, 10);
	assert_int_equal(qf_parse(file, n, &r, diag, sizeof(diag)), MOAT_OK);
	assert_int_equal(r.good_len, first);
	qf_replay_fini(&r);

	/* a length below the smallest record, and one past the end */
	n = first + record(file + first, body, 8);
	assert_int_equal(qf_parse(file, n, &r, diag, sizeof(diag)), MOAT_OK);
	assert_non_null(strstr(diag, "bad record length"));
	qf_replay_fini(&r);
	n = first + record(file + first, body, 9);
	file[first + 5] = 200;
	assert_int_equal(qf_parse(file, n, &r, diag, sizeof(diag)), MOAT_OK);
	assert_non_null(strstr(diag, "torn record"));
	assert_int_equal(r.good_len, first);
	qf_replay_fini(&r);

	/* an ack of seq 5 (exactly 9 body bytes) leaves nothing, and the header alone is empty */
	body[8] = 5;
	n = first + record(file + first, body, 9);
	assert_int_equal(qf_parse(file, n, &r, diag, sizeof(diag)), MOAT_OK);
	assert_string_equal(diag, "");
	assert_int_equal(r.count, 0);
	assert_int_equal(r.good_len, n);
	assert_int_equal(r.next_seq, 6);
	qf_replay_fini(&r);
	assert_int_equal(qf_parse(file, QF_HEADER_LEN, &r, diag, sizeof(diag)), MOAT_OK);
	assert_int_equal(r.count, 0);
	assert_int_equal(r.next_seq, 1);
	qf_replay_fini(&r);
	assert_int_equal(qf_parse(file, QF_HEADER_LEN - 1, &r, diag, sizeof(diag)),
			 MOAT_E_MALFORMED);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(crc32_matches_the_check_value),
	    cmocka_unit_test_setup_teardown(replay_is_adds_minus_acks_in_order, setup, teardown),
	    cmocka_unit_test_setup_teardown(acks_written_by_flush_survive, setup, teardown),
	    cmocka_unit_test_setup_teardown(torn_tail_is_cut_and_reported, setup, teardown),
	    cmocka_unit_test_setup_teardown(torn_record_header_is_cut, setup, teardown),
	    cmocka_unit_test_setup_teardown(crc_damage_is_detected_and_cut, setup, teardown),
	    cmocka_unit_test_setup_teardown(foreign_file_is_refused_untouched, setup, teardown),
	    cmocka_unit_test_setup_teardown(torn_file_header_starts_a_new_file, setup, teardown),
	    cmocka_unit_test_setup_teardown(second_opener_is_refused, setup, teardown),
	    cmocka_unit_test_setup_teardown(empty_file_is_closed_until_an_add, setup, teardown),
	    cmocka_unit_test_setup_teardown(add_refused_when_another_process_took_the_file, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(compaction_keeps_order_and_shrinks, setup, teardown),
	    cmocka_unit_test_setup_teardown(failed_add_cuts_the_file_back, setup, teardown),
	    cmocka_unit_test(should_compact_when_mostly_acknowledged),
	    cmocka_unit_test_setup_teardown(reset_cuts_back_to_the_header, setup, teardown),
	    cmocka_unit_test_setup_teardown(parse_rejects_invalid_records, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
