/*
 * Unit tests for libmoat against a scripted fake server: a loopback socket
 * in this test that reads the client's packets and answers with exact ones.
 * One thread drives both sides, so every wait is a bounded loop.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/socket.h>
#include <unistd.h>

#include <moat/client.h>
#include <moat/error.h>

#include "codec/frame.h"
#include "codec/packet.h"

struct fake {
	int lfd, fd;
	uint16_t port;
	uint8_t buf[65536];
	size_t len;
	/* what the callbacks saw */
	int connects, messages, subacks, done, disconnects;
	int last_err;
	uint8_t last_done_rc;
	char last_topic[64];
	struct moat_client *c;
};

static void on_connect(void *arg, uint8_t rc, bool present)
{
	(void)rc;
	(void)present;
	((struct fake *)arg)->connects++;
}

static void on_message(void *arg, const struct moat_message *m)
{
	struct fake *f = arg;

	f->messages++;
	snprintf(f->last_topic, sizeof(f->last_topic), "%s", m->topic);
}

static void on_subscribe(void *arg, uint16_t id, const uint8_t *codes, size_t n)
{
	(void)id;
	(void)codes;
	(void)n;
	((struct fake *)arg)->subacks++;
}

static void on_done(void *arg, uint16_t id, uint8_t rc)
{
	(void)id;
	((struct fake *)arg)->done++;
	((struct fake *)arg)->last_done_rc = rc;
}

static void on_disconnect(void *arg, int err, uint8_t rc)
{
	(void)rc;
	((struct fake *)arg)->disconnects++;
	((struct fake *)arg)->last_err = err;
}

static void fake_listen(struct fake *f)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof(sa);

	f->lfd = socket(AF_INET, SOCK_STREAM, 0);
	assert_true(f->lfd >= 0);
	assert_int_equal(bind(f->lfd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(listen(f->lfd, 4), 0);
	assert_int_equal(getsockname(f->lfd, (struct sockaddr *)&sa, &len), 0);
	f->port = ntohs(sa.sin_port);
	f->fd = -1;
}

static struct moat_client *make_client(struct fake *f, int version, bool reconnect)
{
	struct moat_client_opts o = { .host = "127.0.0.1", .port = f->port, .client_id = "t1",
				      .keep_alive_s = 60, .clean_start = true, .version = version,
				      .auto_reconnect = reconnect, .reconnect_min_ms = 10,
				      .reconnect_max_ms = 20, .offline_max_messages = 3 };
	struct moat_callbacks cb = { .arg = f, .on_connect = on_connect, .on_message = on_message,
				     .on_subscribe = on_subscribe, .on_publish_done = on_done,
				     .on_disconnect = on_disconnect };

	f->c = moat_client_create(&o, &cb);
	assert_non_null(f->c);
	return f->c;
}

/* Runs the client loop a few times (it never blocks longer than 5 ms each). */
static void spin(struct fake *f, int rounds)
{
	for (int i = 0; i < rounds; i++)
		moat_loop_once(f->c, 5);
}

static void fake_accept(struct fake *f)
{
	for (int i = 0; i < 400 && f->fd < 0; i++) {
		struct pollfd p = { .fd = f->lfd, .events = POLLIN };

		spin(f, 1);
		if (poll(&p, 1, 5) > 0)
			f->fd = accept(f->lfd, NULL, NULL);
	}
	assert_true(f->fd >= 0);
	f->len = 0;
}

/* Reads the client's next packet into <p> (views into f->buf stay valid until the next read). */
static void fake_read(struct fake *f, int version, struct mqtt_packet *p)
{
	static uint8_t body[65536];

	for (int i = 0; i < 400; i++) {
		struct mqtt_frame fr;

		if (frame_decode(f->buf, f->len, 65536, &fr) == 0 && f->len >= fr.hdr_len + fr.rem_len) {
			memcpy(body, f->buf + fr.hdr_len, fr.rem_len);
			assert_int_equal(pkt_decode(&fr, body, (uint8_t)version, p), 0);
			memmove(f->buf, f->buf + fr.hdr_len + fr.rem_len, f->len - fr.hdr_len - fr.rem_len);
			f->len -= fr.hdr_len + fr.rem_len;
			return;
		}
		spin(f, 1);
		struct pollfd pf = { .fd = f->fd, .events = POLLIN };
		if (poll(&pf, 1, 5) > 0) {
			ssize_t n = recv(f->fd, f->buf + f->len, sizeof(f->buf) - f->len, 0);

			assert_true(n > 0);
			f->len += (size_t)n;
		}
	}
	fail_msg("the client sent no packet in time");
}

static void fake_send_raw(struct fake *f, const uint8_t *p, size_t n)
{
	assert_int_equal(send(f->fd, p, n, 0), (ssize_t)n);
	spin(f, 10);
}

static void fake_send(struct fake *f, int version, const struct mqtt_packet *p)
{
	uint8_t out[1024];
	size_t n = pkt_encode(out, sizeof(out), (uint8_t)version, p);

	assert_true(n > 0 && n <= sizeof(out));
	fake_send_raw(f, out, n);
}

static void fake_connack(struct fake *f, int version, bool present)
{
	struct mqtt_packet p = { .type = MQTT_CONNECT };

	fake_read(f, version, &p);
	assert_int_equal(p.type, MQTT_CONNECT);
	assert_int_equal(p.connect.version, version);
	p = (struct mqtt_packet){ .type = MQTT_CONNACK };
	p.connack.session_present = present;
	fake_send(f, version, &p);
}

static void fake_close(struct fake *f)
{
	if (f->fd >= 0)
		close(f->fd);
	f->fd = -1;
}

static int setup(void **state)
{
	static struct fake f;

	memset(&f, 0, sizeof(f));
	fake_listen(&f);
	*state = &f;
	return 0;
}

static int teardown(void **state)
{
	struct fake *f = *state;

	moat_client_destroy(f->c);
	fake_close(f);
	close(f->lfd);
	return 0;
}

static void client_connects_subscribes_and_acks_qos1(void **state)
{
	struct fake *f = *state;
	struct moat_sub_options so = { .qos = 1 };
	struct mqtt_packet p;

	make_client(f, 5, false);
	assert_int_equal(moat_connect(f->c), MOAT_OK);
	fake_accept(f);
	fake_connack(f, 5, false);
	assert_true(moat_is_connected(f->c));
	assert_int_equal(f->connects, 1);
	assert_int_equal(moat_subscribe(f->c, "a/#", &so, NULL), MOAT_OK);
	fake_read(f, 5, &p);
	assert_int_equal(p.type, MQTT_SUBSCRIBE);
	uint16_t id = p.subscribe.packet_id;
	p = (struct mqtt_packet){ .type = MQTT_SUBACK };
	p.suback.packet_id = id;
	p.suback.rcs = (struct moat_bytes){ (const uint8_t *)"\x01", 1 };
	fake_send(f, 5, &p);
	assert_int_equal(f->subacks, 1);
	p = (struct mqtt_packet){ .type = MQTT_PUBLISH };
	p.publish.qos = 1;
	p.publish.packet_id = 7;
	p.publish.topic = moat_bytes_str("a/b");
	p.publish.payload = moat_bytes_str("hi");
	fake_send(f, 5, &p);
	assert_int_equal(f->messages, 1);
	assert_string_equal(f->last_topic, "a/b");
	fake_read(f, 5, &p);
	assert_int_equal(p.type, MQTT_PUBACK);
	assert_int_equal(p.ack.packet_id, 7);
}

static void client_rejects_suback_with_wrong_count_cve_2024_10525(void **state)
{
	struct fake *f = *state;
	struct moat_sub_options so = { .qos = 0 };
	struct mqtt_packet p;

	make_client(f, 4, false);
	moat_connect(f->c);
	fake_accept(f);
	fake_connack(f, 4, false);
	assert_int_equal(moat_subscribe(f->c, "x", &so, NULL), MOAT_OK);
	fake_read(f, 4, &p);
	uint16_t id = p.subscribe.packet_id;
	p = (struct mqtt_packet){ .type = MQTT_SUBACK };
	p.suback.packet_id = id;
	p.suback.rcs = (struct moat_bytes){ (const uint8_t *)"\x00\x00", 2 };
	fake_send(f, 4, &p);
	assert_int_equal(f->subacks, 0);
	assert_int_equal(f->disconnects, 1);
	assert_int_equal(f->last_err, MOAT_E_PROTOCOL);
	assert_false(moat_is_connected(f->c));
}

static void client_rejects_a_second_connack(void **state)
{
	struct fake *f = *state;
	struct mqtt_packet p = { .type = MQTT_CONNACK };

	make_client(f, 5, false);
	moat_connect(f->c);
	fake_accept(f);
	fake_connack(f, 5, false);
	fake_send(f, 5, &p);
	assert_int_equal(f->disconnects, 1);
	assert_int_equal(f->last_err, MOAT_E_PROTOCOL);
}

static void client_rejects_malformed_connack_nanomq_2145(void **state)
{
	struct fake *f = *state;
	struct mqtt_packet p;
	static const uint8_t bad[] = { 0x20, 0x02, 0xfe, 0x00 };	/* reserved flags set */

	make_client(f, 4, false);
	moat_connect(f->c);
	fake_accept(f);
	fake_read(f, 4, &p);
	fake_send_raw(f, bad, sizeof(bad));
	assert_int_equal(f->connects, 0);
	assert_int_equal(f->disconnects, 1);
	assert_int_equal(f->last_err, MOAT_E_MALFORMED);
}

static void offline_queue_is_sent_in_order_and_bounded(void **state)
{
	struct fake *f = *state;
	struct mqtt_packet p;

	make_client(f, 5, false);
	assert_int_equal(moat_publish(f->c, "q/1", "1", 1, 1, false, NULL, NULL), MOAT_OK);
	assert_int_equal(moat_publish(f->c, "q/2", "2", 1, 1, false, NULL, NULL), MOAT_OK);
	assert_int_equal(moat_publish(f->c, "q/3", "3", 1, 0, false, NULL, NULL), MOAT_OK);
	assert_int_equal(moat_publish(f->c, "q/4", "4", 1, 0, false, NULL, NULL), MOAT_E_LIMIT);
	moat_connect(f->c);
	fake_accept(f);
	fake_connack(f, 5, false);
	for (int i = 1; i <= 3; i++) {
		char t[8];

		snprintf(t, sizeof(t), "q/%d", i);
		fake_read(f, 5, &p);
		assert_int_equal(p.type, MQTT_PUBLISH);
		assert_true(moat_bytes_eq(p.publish.topic, moat_bytes_str(t)));
		assert_false(p.publish.dup);
	}
	assert_int_equal(moat_pending_count(f->c), 2);	/* QoS 1 until acknowledged */
}

static void qos2_publish_completes_after_pubrec_pubrel_pubcomp(void **state)
{
	struct fake *f = *state;
	struct mqtt_packet p;
	uint16_t id = 0;

	make_client(f, 5, false);
	moat_connect(f->c);
	fake_accept(f);
	fake_connack(f, 5, false);
	assert_int_equal(moat_publish(f->c, "t", "x", 1, 2, false, NULL, &id), MOAT_OK);
	fake_read(f, 5, &p);
	assert_int_equal(p.publish.packet_id, id);
	p = (struct mqtt_packet){ .type = MQTT_PUBREC };
	p.ack.packet_id = id;
	fake_send(f, 5, &p);
	fake_read(f, 5, &p);
	assert_int_equal(p.type, MQTT_PUBREL);
	assert_int_equal(f->done, 0);
	p = (struct mqtt_packet){ .type = MQTT_PUBCOMP };
	p.ack.packet_id = id;
	fake_send(f, 5, &p);
	assert_int_equal(f->done, 1);
	assert_int_equal(moat_pending_count(f->c), 0);
}

static void unacknowledged_qos1_is_resent_with_dup_after_reconnect(void **state)
{
	struct fake *f = *state;
	struct mqtt_packet p;
	uint16_t id = 0;

	make_client(f, 4, true);
	moat_connect(f->c);
	fake_accept(f);
	fake_connack(f, 4, false);
	assert_int_equal(moat_publish(f->c, "t", "x", 1, 1, false, NULL, &id), MOAT_OK);
	fake_read(f, 4, &p);
	assert_false(p.publish.dup);
	fake_close(f);	/* the connection drops before the PUBACK */
	spin(f, 5);
	assert_int_equal(f->disconnects, 1);
	fake_accept(f);	/* the client comes back by itself (backoff 10-20 ms) */
	fake_connack(f, 4, true);
	fake_read(f, 4, &p);
	assert_int_equal(p.type, MQTT_PUBLISH);
	assert_true(p.publish.dup);
	assert_int_equal(p.publish.packet_id, id);
}

/* A PUBREC that arrives together with the connection's end (a broker
 * shutting down writes it, then closes) still counts: after the reconnect
 * the client releases the message instead of publishing it a second time. */
static void pubrec_arriving_with_the_close_is_kept(void **state)
{
	struct fake *f = *state;
	struct mqtt_packet p;
	uint8_t out[64];
	uint16_t id = 0;
	size_t n;

	make_client(f, 5, true);
	moat_connect(f->c);
	fake_accept(f);
	fake_connack(f, 5, false);
	assert_int_equal(moat_publish(f->c, "t", "x", 1, 2, false, NULL, &id), MOAT_OK);
	fake_read(f, 5, &p);
	p = (struct mqtt_packet){ .type = MQTT_PUBREC };
	p.ack.packet_id = id;
	n = pkt_encode(out, sizeof(out), 5, &p);
	assert_true(n > 0);
	assert_int_equal(send(f->fd, out, n, 0), (ssize_t)n);
	fake_close(f); /* before the client reads: it sees the PUBREC and the end at once */
	spin(f, 5);
	assert_int_equal(f->disconnects, 1);
	fake_accept(f);
	fake_connack(f, 5, true);
	fake_read(f, 5, &p);
	assert_int_equal(p.type, MQTT_PUBREL);
	assert_int_equal(p.ack.packet_id, id);
}

/* Waits up to 2 s for <*counter> (written by the client thread) to reach <want>. */
/* Bridges: open_socket hands the client one end of a socketpair per
 * attempt (the fake keeps the other), and on_message_checked refuses. */
static int pair_opened, refuse_next;

static int open_pair(void *arg)
{
	struct fake *f = arg;
	int sv[2];

	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	fake_close(f);
	f->fd = sv[0];
	f->len = 0;
	pair_opened++;
	return sv[1];
}

static int on_message_checked(void *arg, const struct moat_message *m)
{
	struct fake *f = arg;

	if (refuse_next > 0) {
		refuse_next--;
		return MOAT_E_LIMIT;
	}
	f->messages++;
	snprintf(f->last_topic, sizeof(f->last_topic), "%s", m->topic);
	return MOAT_OK;
}

/* The client's side was closed: EOF on the fake's end, and nothing before it. */
static void expect_eof(struct fake *f)
{
	uint8_t b[16];

	for (int i = 0; i < 400; i++) {
		struct pollfd pf = { .fd = f->fd, .events = POLLIN };

		spin(f, 1);
		if (poll(&pf, 1, 5) > 0) {
			assert_int_equal(recv(f->fd, b, sizeof(b), 0), 0);
			return;
		}
	}
	fail_msg("the client kept the connection open");
}

static void send_publish(struct fake *f, uint8_t qos, uint16_t id, bool dup)
{
	struct mqtt_packet p = { .type = MQTT_PUBLISH };

	p.publish.qos = qos;
	p.publish.dup = dup;
	p.publish.packet_id = id;
	p.publish.topic = moat_bytes_str("b/c");
	p.publish.payload = moat_bytes_str("x");
	fake_send(f, 5, &p);
}

static void checked_messages_are_acked_only_once_kept(void **state)
{
	struct fake *f = *state;
	struct moat_client_opts o = { .client_id = "bridge", .keep_alive_s = 60, .version = 5,
				      /* slow enough to see the close before the retry */
				      .auto_reconnect = true, .reconnect_min_ms = 300,
				      .reconnect_max_ms = 300, .bridge = true,
				      .open_socket = open_pair, .open_socket_arg = f };
	struct moat_callbacks cb = { .arg = f, .on_message_checked = on_message_checked,
				     .on_disconnect = on_disconnect };
	struct mqtt_packet p;

	pair_opened = 0;
	refuse_next = 2;
	f->c = moat_client_create(&o, &cb);
	assert_non_null(f->c);
	assert_int_equal(moat_connect(f->c), MOAT_OK);
	assert_int_equal(pair_opened, 1);
	fake_read(f, 5, &p);
	assert_int_equal(p.type, MQTT_CONNECT);
	assert_true(p.connect.bridge);	/* try_private's level bit */
	p = (struct mqtt_packet){ .type = MQTT_CONNACK };
	fake_send(f, 5, &p);
	send_publish(f, 1, 7, false);
	expect_eof(f);	/* refused: no PUBACK, the connection ends */
	assert_int_equal(f->disconnects, 1);
	assert_int_equal(f->last_err, MOAT_E_LIMIT);
	assert_int_equal(f->messages, 0);
	for (int i = 0; i < 400 && pair_opened < 2; i++)
		spin(f, 1);
	assert_int_equal(pair_opened, 2);
	fake_connack(f, 5, true);
	send_publish(f, 2, 9, false);
	expect_eof(f);	/* a QoS 2 message refused too */
	for (int i = 0; i < 400 && pair_opened < 3; i++)
		spin(f, 1);
	fake_connack(f, 5, true);
	send_publish(f, 1, 7, true);
	fake_read(f, 5, &p);
	assert_int_equal(p.type, MQTT_PUBACK);
	assert_int_equal(p.ack.packet_id, 7);
	send_publish(f, 2, 9, true);	/* delivered now, not taken for a duplicate */
	fake_read(f, 5, &p);
	assert_int_equal(p.type, MQTT_PUBREC);
	assert_int_equal(f->messages, 2);
}

static void set_server_moves_the_next_attempts(void **state)
{
	struct fake *f = *state;
	struct fake other;

	memset(&other, 0, sizeof(other));
	fake_listen(&other);
	make_client(f, 5, true);
	assert_int_equal(moat_connect(f->c), MOAT_OK);
	fake_accept(f);
	fake_connack(f, 5, false);
	assert_int_equal(moat_set_server(f->c, "127.0.0.1", other.port), MOAT_OK);
	assert_true(moat_is_connected(f->c));	/* the connection that is up stays */
	fake_close(f);
	other.c = f->c;
	fake_accept(&other);	/* the reconnection goes to the other server */
	fake_connack(&other, 5, false);
	assert_int_equal(f->connects, 2);
	fake_close(&other);
	close(other.lfd);
}

static void wait_count(const int *counter, int want)
{
	for (int i = 0; i < 400 && __atomic_load_n(counter, __ATOMIC_SEQ_CST) < want; i++)
		poll(NULL, 0, 5);
	assert_int_equal(__atomic_load_n(counter, __ATOMIC_SEQ_CST), want);
}

/* With its own thread the client connects, sends a publish made on another
 * thread at once (the keep alive is 60 s, so only the wake-up can send it),
 * runs callbacks, and stops cleanly; moat_loop_once is refused meanwhile. */
static void client_thread_publishes_and_receives(void **state)
{
	struct fake *f = *state;
	struct mqtt_packet p = { 0 };
	uint16_t id = 0;

	make_client(f, 5, false);
	assert_int_equal(moat_loop_start(f->c), MOAT_OK);
	assert_int_equal(moat_loop_start(f->c), MOAT_E_INVAL);
	fake_accept(f);
	fake_connack(f, 5, false);
	wait_count(&f->connects, 1);
	assert_true(moat_is_connected(f->c));
	assert_int_equal(moat_loop_once(f->c, 0), MOAT_E_INVAL);

	assert_int_equal(moat_publish(f->c, "t/thread", "x", 1, 1, false, NULL, &id), MOAT_OK);
	fake_read(f, 5, &p);
	assert_int_equal(p.type, MQTT_PUBLISH);
	assert_int_equal(p.publish.packet_id, id);
	p = (struct mqtt_packet){ .type = MQTT_PUBACK };
	p.ack.packet_id = id;
	fake_send(f, 5, &p);
	wait_count(&f->done, 1);

	p = (struct mqtt_packet){ .type = MQTT_PUBLISH };
	p.publish.topic = moat_bytes_str("from/server");
	p.publish.payload = moat_bytes_str("y");
	fake_send(f, 5, &p);
	wait_count(&f->messages, 1);
	assert_string_equal(f->last_topic, "from/server");

	assert_int_equal(moat_loop_stop(f->c), MOAT_OK);
	assert_int_equal(moat_loop_stop(f->c), MOAT_E_INVAL);
	assert_int_equal(moat_pending_count(f->c), 0);
}

/* ---- the durable offline queue (queue_file, queue_overflow, drain_rate) ---- */

static char qdir[64], qpath[96];

static int qsetup(void **state)
{
	snprintf(qdir, sizeof(qdir), "/tmp/moat-cq-XXXXXX");
	assert_non_null(mkdtemp(qdir));
	snprintf(qpath, sizeof(qpath), "%s/queue", qdir);
	return setup(state);
}

static int qteardown(void **state)
{
	int rc = teardown(state);

	unlink(qpath);
	rmdir(qdir);
	return rc;
}

/* A client on the queue file <qpath> (or none when !file), persistent session. */
static struct moat_client *make_queue_client(struct fake *f, bool file, uint8_t overflow,
					     uint32_t drain_rate, uint32_t max_messages)
{
	struct moat_client_opts o = { .host = "127.0.0.1", .port = f->port, .client_id = "qc",
				      .keep_alive_s = 60, .version = 5, .offline_max_messages = max_messages,
				      .queue_file = file ? qpath : NULL, .queue_overflow = overflow,
				      .drain_rate = drain_rate };
	struct moat_callbacks cb = { .arg = f, .on_connect = on_connect, .on_publish_done = on_done,
				     .on_disconnect = on_disconnect };
	char diag[200];

	assert_int_equal(moat_client_open(&f->c, &o, &cb, diag, sizeof(diag)), MOAT_OK);
	assert_string_equal(diag, "");
	return f->c;
}

/* Destroys the client as a process exit would (the file stays). */
static void restart(struct fake *f)
{
	moat_client_destroy(f->c);
	f->c = NULL;
	fake_close(f);
}

static void publish_topics(struct fake *f, int from, int to, uint8_t qos, uint16_t *ids)
{
	for (int i = from; i <= to; i++) {
		char t[8];

		snprintf(t, sizeof(t), "q/%d", i);
		assert_int_equal(moat_publish(f->c, t, t, strlen(t), qos, false, NULL,
					      ids != NULL ? &ids[i] : NULL), MOAT_OK);
	}
}

static void expect_topic(struct fake *f, const char *topic, struct mqtt_packet *p)
{
	fake_read(f, 5, p);
	assert_int_equal(p->type, MQTT_PUBLISH);
	assert_true(moat_bytes_eq(p->publish.topic, moat_bytes_str(topic)));
}

static void queue_file_needs_a_fixed_client_id(void **state)
{
	struct fake *f = *state;
	struct moat_client_opts o = { .host = "127.0.0.1", .port = f->port, .queue_file = qpath };
	struct moat_client *c = NULL;
	char diag[200];

	assert_int_equal(moat_client_open(&c, &o, NULL, diag, sizeof(diag)), MOAT_E_INVAL);
	assert_null(c);
	assert_non_null(strstr(diag, "fixed client id"));
	o.client_id = "";
	assert_int_equal(moat_client_open(&c, &o, NULL, diag, sizeof(diag)), MOAT_E_INVAL);
	assert_null(moat_client_create(&o, NULL));
	o.client_id = "fixed";
	o.queue_overflow = 2;
	assert_int_equal(moat_client_open(&c, &o, NULL, diag, sizeof(diag)), MOAT_E_INVAL);
	assert_int_equal(access(qpath, F_OK), -1);	/* refused before the file is created */
}

static void queued_messages_survive_a_restart_in_order(void **state)
{
	struct fake *f = *state;
	struct mqtt_packet p;
	uint16_t ids[4] = { 0 };

	make_queue_client(f, true, MOAT_QUEUE_REFUSE_NEW, 0, 10);
	publish_topics(f, 1, 3, 1, ids);
	assert_int_equal(moat_publish(f->c, "q/0", "x", 1, 0, false, NULL, NULL), MOAT_OK);
	assert_int_equal(moat_pending_count(f->c), 4);
	restart(f);	/* the QoS 0 message is not in the file */

	make_queue_client(f, true, MOAT_QUEUE_REFUSE_NEW, 0, 10);
	assert_int_equal(moat_pending_count(f->c), 3);
	moat_connect(f->c);
	fake_accept(f);
	fake_connack(f, 5, true);
	for (int i = 1; i <= 3; i++) {
		char t[8];

		snprintf(t, sizeof(t), "q/%d", i);
		expect_topic(f, t, &p);
		assert_true(p.publish.dup);	/* it may have gone out before the restart */
		assert_int_equal(p.publish.qos, 1);
		assert_int_equal(p.publish.packet_id, ids[i]);
	}
	p = (struct mqtt_packet){ .type = MQTT_PUBACK };
	p.ack.packet_id = ids[1];
	fake_send(f, 5, &p);
	assert_int_equal(f->done, 1);
	restart(f);

	make_queue_client(f, true, MOAT_QUEUE_REFUSE_NEW, 0, 10);
	assert_int_equal(moat_pending_count(f->c), 2);	/* the acknowledged one is gone */
}

static void qos2_release_survives_a_restart(void **state)
{
	struct fake *f = *state;
	struct mqtt_packet p;
	uint16_t id = 0;

	make_queue_client(f, true, MOAT_QUEUE_REFUSE_NEW, 0, 10);
	moat_connect(f->c);
	fake_accept(f);
	fake_connack(f, 5, false);
	assert_int_equal(moat_publish(f->c, "q/2", "x", 1, 2, false, NULL, &id), MOAT_OK);
	fake_read(f, 5, &p);
	p = (struct mqtt_packet){ .type = MQTT_PUBREC };
	p.ack.packet_id = id;
	fake_send(f, 5, &p);
	fake_read(f, 5, &p);
	assert_int_equal(p.type, MQTT_PUBREL);
	restart(f);	/* before the PUBCOMP */

	make_queue_client(f, true, MOAT_QUEUE_REFUSE_NEW, 0, 10);
	assert_int_equal(moat_pending_count(f->c), 1);
	moat_connect(f->c);
	fake_accept(f);
	fake_connack(f, 5, true);
	fake_read(f, 5, &p);
	assert_int_equal(p.type, MQTT_PUBREL);	/* not the PUBLISH again: no second delivery */
	assert_int_equal(p.ack.packet_id, id);
	p = (struct mqtt_packet){ .type = MQTT_PUBCOMP };
	p.ack.packet_id = id;
	p.ack.rc = 0x92; /* the broker released it before it restarted */
	fake_send(f, 5, &p);
	assert_int_equal(f->done, 1);
	assert_int_equal(f->last_done_rc, 0); /* delivered: settled by the PUBREC */
	assert_int_equal(moat_pending_count(f->c), 0);
	restart(f);
	make_queue_client(f, true, MOAT_QUEUE_REFUSE_NEW, 0, 10);
	assert_int_equal(moat_pending_count(f->c), 0);
}

static void drop_oldest_keeps_the_newest(void **state)
{
	struct fake *f = *state;
	struct mqtt_packet p;

	make_queue_client(f, true, MOAT_QUEUE_DROP_OLDEST, 0, 3);
	publish_topics(f, 1, 5, 1, NULL);
	assert_int_equal(moat_dropped_count(f->c), 2);
	assert_int_equal(moat_pending_count(f->c), 3);
	restart(f);
	make_queue_client(f, true, MOAT_QUEUE_DROP_OLDEST, 0, 3);
	assert_int_equal(moat_pending_count(f->c), 3);	/* the drops are recorded in the file */
	assert_int_equal(moat_dropped_count(f->c), 0);
	moat_connect(f->c);
	fake_accept(f);
	fake_connack(f, 5, true);
	expect_topic(f, "q/3", &p);
	expect_topic(f, "q/4", &p);
	expect_topic(f, "q/5", &p);
	/* in flight now: nothing can be dropped for a newcomer */
	assert_int_equal(moat_publish(f->c, "q/6", "x", 1, 1, false, NULL, NULL), MOAT_E_LIMIT);
}

static void refuse_new_keeps_the_oldest(void **state)
{
	struct fake *f = *state;

	make_queue_client(f, true, MOAT_QUEUE_REFUSE_NEW, 0, 2);
	publish_topics(f, 1, 2, 2, NULL);
	assert_int_equal(moat_publish(f->c, "q/3", "x", 1, 2, false, NULL, NULL), MOAT_E_LIMIT);
	restart(f);
	make_queue_client(f, true, MOAT_QUEUE_REFUSE_NEW, 0, 2);
	assert_int_equal(moat_pending_count(f->c), 2);
	assert_int_equal(moat_dropped_count(f->c), 0);
}

static long file_size(const char *path)
{
	FILE *fp = fopen(path, "rb");
	long n;

	assert_non_null(fp);
	assert_int_equal(fseek(fp, 0, SEEK_END), 0);
	n = ftell(fp);
	fclose(fp);
	return n;
}

/* Sends PUBACKs for <ids>[from..to] in one write. */
static void ack_range(struct fake *f, const uint16_t *ids, int from, int to)
{
	static uint8_t out[4096];
	size_t n = 0;

	for (int i = from; i <= to; i++) {
		struct mqtt_packet p = { .type = MQTT_PUBACK };

		p.ack.packet_id = ids[i];
		n += pkt_encode(out + n, sizeof(out) - n, 5, &p);
		assert_true(n <= sizeof(out));
	}
	fake_send_raw(f, out, n);
}

static void acknowledged_messages_are_compacted_away(void **state)
{
	struct fake *f = *state;
	static uint16_t ids[200];
	static char payload[500];
	struct mqtt_packet p;
	long full;

	memset(payload, 'p', sizeof(payload));
	make_queue_client(f, true, MOAT_QUEUE_REFUSE_NEW, 0, 1000);
	moat_connect(f->c);
	fake_accept(f);
	fake_connack(f, 5, true);
	for (int i = 0; i < 200; i++) {
		char t[8];

		snprintf(t, sizeof(t), "q/%d", i);
		assert_int_equal(moat_publish(f->c, t, payload, sizeof(payload), 1, false, NULL, &ids[i]), MOAT_OK);
		fake_read(f, 5, &p);
	}
	full = file_size(qpath);
	assert_true(full > 100000);
	ack_range(f, ids, 0, 149);	/* three quarters acknowledged: rewritten */
	assert_int_equal(f->done, 150);
	assert_true(file_size(qpath) < full / 3);
	restart(f);

	make_queue_client(f, true, MOAT_QUEUE_REFUSE_NEW, 0, 1000);
	assert_int_equal(moat_pending_count(f->c), 50);
	moat_connect(f->c);
	fake_accept(f);
	fake_connack(f, 5, true);
	for (int i = 150; i < 200; i++) {
		char t[8];

		snprintf(t, sizeof(t), "q/%d", i);
		expect_topic(f, t, &p);
		assert_int_equal(p.publish.packet_id, ids[i]);
	}
	ack_range(f, ids, 150, 199);
	assert_int_equal(moat_pending_count(f->c), 0);
	assert_int_equal(file_size(qpath), 8);	/* nothing live: back to the header */
}

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void drain_rate_paces_the_backlog_and_keeps_order(void **state)
{
	struct fake *f = *state;
	struct mqtt_packet p;
	uint64_t first, last;

	make_queue_client(f, false, MOAT_QUEUE_REFUSE_NEW, 20, 10);	/* 20/s: one per 50 ms */
	publish_topics(f, 1, 5, 1, NULL);
	moat_connect(f->c);
	fake_accept(f);
	first = now_ms();	/* q/1 goes with the CONNACK, q/2..q/5 50 ms apart */
	fake_connack(f, 5, false);
	assert_true(moat_next_timeout_ms(f->c) <= 50);	/* woken for the next token */
	publish_topics(f, 6, 6, 1, NULL);	/* behind the backlog */
	expect_topic(f, "q/1", &p);
	for (int i = 2; i <= 6; i++) {
		char t[8];

		snprintf(t, sizeof(t), "q/%d", i);
		expect_topic(f, t, &p);
	}
	last = now_ms();
	assert_true(last - first >= 190);
	assert_true(last - first < 1500);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(client_connects_subscribes_and_acks_qos1, setup, teardown),
		cmocka_unit_test_setup_teardown(client_rejects_suback_with_wrong_count_cve_2024_10525, setup, teardown),
		cmocka_unit_test_setup_teardown(client_rejects_a_second_connack, setup, teardown),
		cmocka_unit_test_setup_teardown(client_rejects_malformed_connack_nanomq_2145, setup, teardown),
		cmocka_unit_test_setup_teardown(offline_queue_is_sent_in_order_and_bounded, setup, teardown),
		cmocka_unit_test_setup_teardown(qos2_publish_completes_after_pubrec_pubrel_pubcomp, setup, teardown),
		cmocka_unit_test_setup_teardown(unacknowledged_qos1_is_resent_with_dup_after_reconnect, setup, teardown),
		cmocka_unit_test_setup_teardown(pubrec_arriving_with_the_close_is_kept, setup, teardown),
		cmocka_unit_test_setup_teardown(client_thread_publishes_and_receives, setup, teardown),
		cmocka_unit_test_setup_teardown(checked_messages_are_acked_only_once_kept, setup, teardown),
		cmocka_unit_test_setup_teardown(set_server_moves_the_next_attempts, setup, teardown),
		cmocka_unit_test_setup_teardown(queue_file_needs_a_fixed_client_id, qsetup, qteardown),
		cmocka_unit_test_setup_teardown(queued_messages_survive_a_restart_in_order, qsetup, qteardown),
		cmocka_unit_test_setup_teardown(qos2_release_survives_a_restart, qsetup, qteardown),
		cmocka_unit_test_setup_teardown(drop_oldest_keeps_the_newest, qsetup, qteardown),
		cmocka_unit_test_setup_teardown(refuse_new_keeps_the_oldest, qsetup, qteardown),
		cmocka_unit_test_setup_teardown(drain_rate_paces_the_backlog_and_keeps_order, qsetup, qteardown),
		cmocka_unit_test_setup_teardown(acknowledged_messages_are_compacted_away, qsetup, qteardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
