/*
 * keyrel_latency's end-to-end run (krb.h): starts moatd (anonymous devices,
 * the SC as user "sc" from a password file) and `moat-sc serve --rate
 * 100000/s` on a free loopback port, connects devices as libmoat clients
 * (client id = thing name, as moatd's $sc topic rules require) and times
 * each request from moat_publish on $sc/req/<id> until its response on
 * $sc/resp/<id> has been opened by keyrel_response_open. Sequential: a
 * batch of up to 64 random devices, one request each in turn, then the next
 * batch. Throughput: up to 16 devices, <inflight> requests outstanding
 * (matched by correlation data).
 */
#define _POSIX_C_SOURCE 200809L
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include <moat/client.h>
#include <moat/error.h>

#include "krb.h"

enum {
	BATCH = 64,	  /* devices connected at once in the sequential run */
	THR_DEVICES = 16, /* devices of the throughput run */
	SLOTS_MAX = 256,  /* requests in flight at most */
	WAIT_MS = 10000,  /* for a connection or a response */
};

struct conn;

/* One outstanding request. */
struct slot {
	struct conn *c;
	bool busy;
	uint8_t req_hash[KEYREL_HASH_LEN];
	double t0;
};

struct e2e {
	uint16_t port;
	uint8_t sc_pub[32];
	struct slot slots[SLOTS_MAX];
	struct krb_stats *st; /* of the current run */
	size_t done;
};

struct conn {
	struct e2e *e;
	const struct krb_dev *d;
	struct moat_client *mc;
	bool ready, failed;
	char resp_topic[64];
};

static void on_connect(void *arg, uint8_t rc, bool session_present)
{
	struct conn *c = arg;
	const struct moat_sub_options so = {.qos = 1};

	(void)session_present;
	if (rc != 0 || moat_subscribe(c->mc, c->resp_topic, &so, NULL) < 0)
		c->failed = true;
}

static void on_subscribe(void *arg, uint16_t packet_id, const uint8_t *codes, size_t n)
{
	struct conn *c = arg;

	(void)packet_id;
	c->ready = n == 1 && codes[0] < 0x80;
	c->failed = !c->ready;
}

static void on_disconnect(void *arg, int err, uint8_t rc)
{
	(void)err, (void)rc;
	((struct conn *)arg)->failed = true;
}

/* A response: the slot its correlation data names is done. */
static void on_message(void *arg, const struct moat_message *m)
{
	struct conn *c = arg;
	struct e2e *e = c->e;
	struct keyrel_grant g;
	struct slot *s;

	if (m->correlation_len != 1)
		return;
	s = &e->slots[m->correlation_data[0]];
	if (!s->busy || s->c != c)
		return;
	const char *why = NULL;
	int rc = keyrel_response_open((struct moat_bytes){m->payload, m->payload_len},
				      moat_bytes_str(m->topic), c->d->name, s->req_hash, e->sc_pub,
				      c->d->x_sk, &g, &why);

	if (rc == MOAT_OK && g.status == KEYREL_OK)
		krb_stats_add(e->st, krb_now_us() - s->t0);
	else if (e->st->errors++ == 0) /* the first one says why */
		fprintf(stderr, "keyrel_latency: %s: %s\n", c->d->name,
			rc != MOAT_OK ? why : g.reason);
	OPENSSL_cleanse(&g, sizeof(g));
	s->busy = false;
	e->done++;
}

/* Polls every client of <cs> once, up to <ms>. */
static void poll_all(struct conn *cs, size_t n, int ms)
{
	struct pollfd p[SLOTS_MAX];

	for (size_t i = 0; i < n; i++)
		p[i] = (struct pollfd){
		    .fd = moat_socket(cs[i].mc),
		    .events = (short)(POLLIN | (moat_want_write(cs[i].mc) ? POLLOUT : 0))};
	poll(p, n, ms);
	for (size_t i = 0; i < n; i++)
		moat_loop_once(cs[i].mc, 0);
}

static void close_conns(struct conn *cs, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (cs[i].mc != NULL && moat_is_connected(cs[i].mc))
			moat_disconnect(cs[i].mc, 0);
		moat_client_destroy(cs[i].mc);
		cs[i].mc = NULL;
	}
}

/* Connects <n> distinct random devices of <devs>/<count> into <cs>. */
static int open_conns(struct e2e *e, const struct krb_dev *devs, size_t count, struct conn *cs,
		      size_t n)
{
	const struct moat_callbacks cb0 = {.on_connect = on_connect,
					   .on_message = on_message,
					   .on_subscribe = on_subscribe,
					   .on_disconnect = on_disconnect};
	size_t pick[BATCH], ready = 0;
	double deadline = krb_now_us() + WAIT_MS * 1e3;

	for (size_t i = 0; i < n; i++) {
		bool dup;

		do { /* n <= count: distinct devices */
			pick[i] = krb_rand(count);
			dup = false;
			for (size_t k = 0; k < i; k++)
				dup = dup || pick[k] == pick[i];
		} while (dup);
	}
	for (size_t i = 0; i < n; i++) {
		struct moat_callbacks cb = cb0;
		struct conn *c = &cs[i];
		struct moat_client_opts co = {.host = "127.0.0.1",
					      .port = e->port,
					      .client_id = devs[pick[i]].name,
					      .keep_alive_s = 60,
					      .clean_start = true,
					      .version = 5};

		*c = (struct conn){.e = e, .d = &devs[pick[i]]};
		snprintf(c->resp_topic, sizeof(c->resp_topic), "%s%s", KEYREL_RESP_PREFIX,
			 c->d->name);
		cb.arg = c;
		if (moat_client_open(&c->mc, &co, &cb, NULL, 0) != MOAT_OK ||
		    moat_connect(c->mc) != MOAT_OK)
			return -1;
	}
	while (ready < n && krb_now_us() < deadline) {
		poll_all(cs, n, 10);
		ready = 0;
		for (size_t i = 0; i < n; i++) {
			if (cs[i].failed)
				return -1;
			ready += cs[i].ready;
		}
	}
	return ready == n ? 0 : -1;
}

/* Sends the request of slot <i> from <c>. */
static int send_request(struct e2e *e, size_t i, struct conn *c)
{
	struct slot *s = &e->slots[i];
	uint8_t corr = (uint8_t)i;
	struct moat_pub_props p = {
	    .correlation_data = &corr, .correlation_len = 1, .response_topic = c->resp_topic};
	struct keyrel_request req;
	struct buf msg = {0};
	char topic[64];
	int rc = krb_request(c->d, &req, &msg);

	snprintf(topic, sizeof(topic), "%s%s", KEYREL_REQ_PREFIX, c->d->name);
	memcpy(s->req_hash, req.req_hash, sizeof(s->req_hash));
	s->c = c;
	s->busy = true;
	s->t0 = krb_now_us();
	if (rc == MOAT_OK)
		rc = moat_publish(c->mc, topic, buf_head(&msg), buf_used(&msg), 1, false, &p, NULL);
	buf_fini(&msg);
	return rc < 0 ? -1 : 0;
}

/* Waits until fewer than <busy_max> slots are busy; -1 on a timeout. */
static int wait_slots(struct e2e *e, struct conn *cs, size_t n, size_t nslots, size_t busy_max)
{
	double deadline = krb_now_us() + WAIT_MS * 1e3;

	for (;;) {
		size_t busy = 0;

		for (size_t i = 0; i < nslots; i++)
			busy += e->slots[i].busy;
		if (busy < busy_max)
			return 0;
		if (krb_now_us() > deadline)
			return -1;
		poll_all(cs, n, 5);
	}
}

static int run_sequential(struct e2e *e, const struct krb_dev *devs, size_t count, size_t requests,
			  struct krb_stats *st)
{
	struct conn cs[BATCH];
	size_t batch = count < BATCH ? count : BATCH, n = 0;
	int rc = 0;

	e->st = st;
	for (size_t i = 0; rc == 0 && i < requests; i++) {
		if (n == 0 || (count > batch && i % batch == 0)) {
			close_conns(cs, n);
			n = batch;
			rc = open_conns(e, devs, count, cs, n);
		}
		if (rc == 0)
			rc = send_request(e, 0, &cs[i % batch]);
		if (rc == 0)
			rc = wait_slots(e, cs, n, 1, 1);
	}
	close_conns(cs, n);
	return rc;
}

static int run_throughput(struct e2e *e, const struct krb_dev *devs, size_t count, size_t requests,
			  size_t inflight, struct krb_stats *st)
{
	struct conn cs[THR_DEVICES];
	size_t n = count < THR_DEVICES ? count : THR_DEVICES;
	double t0;
	int rc = open_conns(e, devs, count, cs, n);

	e->st = st;
	t0 = krb_now_us();
	for (size_t i = 0; rc == 0 && i < requests; i++) {
		size_t free_slot = 0;

		rc = wait_slots(e, cs, n, inflight, inflight);
		while (rc == 0 && e->slots[free_slot].busy)
			free_slot++;
		if (rc == 0)
			rc = send_request(e, free_slot, &cs[i % n]);
	}
	if (rc == 0)
		rc = wait_slots(e, cs, n, inflight, 1);
	st->elapsed_s = (krb_now_us() - t0) / 1e6;
	close_conns(cs, n);
	return rc;
}

static uint16_t free_port(void)
{
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t len = sizeof(a);
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	uint16_t port = 0;

	if (fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0 &&
	    getsockname(fd, (struct sockaddr *)&a, &len) == 0)
		port = ntohs(a.sin_port);
	if (fd >= 0)
		close(fd);
	return port;
}

/* Waits up to 10 s until <path> contains <text>. */
static bool wait_log(const char *path, const char *text)
{
	char buf[65536];

	for (int i = 0; i < 200; i++) {
		FILE *f = fopen(path, "r");
		size_t n = f != NULL ? fread(buf, 1, sizeof(buf) - 1, f) : 0;

		if (f != NULL)
			fclose(f);
		buf[n] = '\0';
		if (strstr(buf, text) != NULL)
			return true;
		usleep(50000);
	}
	fprintf(stderr, "keyrel_latency: \"%s\" not in %s\n", text, path);
	return false;
}

/* The CPU time (user + system) of process <pid> in microseconds, 0 if unknown. */
static double proc_cpu_us(int pid)
{
	char path[64], text[1024], *p;
	unsigned long long ut = 0, st = 0;
	FILE *f;
	size_t n;

	snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	f = fopen(path, "r");
	n = f != NULL ? fread(text, 1, sizeof(text) - 1, f) : 0;
	if (f != NULL)
		fclose(f);
	text[n] = '\0';
	p = strrchr(text, ')'); /* the command name may hold anything */
	if (p == NULL ||
	    sscanf(p + 1, " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st) != 2)
		return 0;
	return (double)(ut + st) * 1e6 / (double)sysconf(_SC_CLK_TCK);
}

static void stop(int pid)
{
	if (pid > 0) {
		kill(pid, SIGTERM);
		waitpid(pid, NULL, 0);
	}
}

int krb_e2e_run(const char *dir, const char *bindir, const struct krb_dev *devs, size_t n,
		size_t requests, size_t inflight, struct krb_stats *seq, struct krb_stats *thr)
{
	char moatd[4096], sc[4096], moat[4096], conf[4096], passwd[4096], pw[4096], mlog[4096],
	    slog[4096], text[8192], broker[64];
	struct e2e *e = calloc(1, sizeof(*e));
	int moatd_pid = -1, sc_pid = -1, rc = e != NULL ? 0 : -1;

	snprintf(moatd, sizeof(moatd), "%s/moatd", bindir);
	snprintf(sc, sizeof(sc), "%s/moat-sc", bindir);
	snprintf(moat, sizeof(moat), "%s/moat", bindir);
	snprintf(conf, sizeof(conf), "%s/moatd.conf", dir);
	snprintf(passwd, sizeof(passwd), "%s/passwd", dir);
	snprintf(pw, sizeof(pw), "%s/sc.pw", dir);
	snprintf(mlog, sizeof(mlog), "%s/moatd.log", dir);
	snprintf(slog, sizeof(slog), "%s/sc.log", dir);
	char *mkpw[] = {moat, "passwd", "-c", "-b", passwd, "sc", "krbench-sc-pw", NULL};

	if (rc == 0)
		e->port = free_port();
	if (rc == 0 &&
	    (e->port == 0 || krb_sc_public_key(dir, e->sc_pub) != MOAT_OK || krb_run(mkpw) != 0))
		rc = -1;
	snprintf(text, sizeof(text),
		 "listener %u 127.0.0.1\nallow_anonymous true\npassword_file %s\n"
		 "sc_username sc\n",
		 rc == 0 ? e->port : 0, passwd);
	FILE *f = rc == 0 ? fopen(conf, "w") : NULL;

	if (f == NULL || fputs(text, f) < 0 || fclose(f) != 0)
		rc = -1;
	f = rc == 0 ? fopen(pw, "w") : NULL;
	if (f == NULL || fputs("krbench-sc-pw\n", f) < 0 || fclose(f) != 0)
		rc = -1;
	char *md[] = {moatd, "-c", conf, NULL};

	if (rc == 0 && (moatd_pid = krb_spawn(md, mlog)) < 0)
		rc = -1;
	if (rc == 0)
		usleep(300000);
	snprintf(broker, sizeof(broker), "127.0.0.1:%u", e != NULL ? e->port : 0);
	char *sv[] = {sc,	"--dir",      (char *)dir, "serve",	      "--broker",
		      broker,	"--username", "sc",	   "--password-file", pw,
		      "--rate", "100000/s",   NULL};

	if (rc == 0 &&
	    ((sc_pid = krb_spawn(sv, slog)) < 0 || !wait_log(slog, "connected; serving")))
		rc = -1;
	if (rc == 0)
		usleep(300000); /* its SUBSCRIBEs are answered */
	double c0 = rc == 0 ? proc_cpu_us(sc_pid) : 0;

	if (rc == 0 && run_sequential(e, devs, n, requests, seq) != 0) {
		fprintf(stderr, "keyrel_latency: N=%zu: a sequential request got no answer\n", n);
		rc = -1;
	}
	seq->cpu_us = (proc_cpu_us(sc_pid) - c0) / (double)(seq->n > 0 ? seq->n : 1);
	if (rc == 0 && run_throughput(e, devs, n, requests, inflight, thr) != 0) {
		fprintf(stderr, "keyrel_latency: N=%zu: the throughput run stalled\n", n);
		rc = -1;
	}
	stop(sc_pid);
	stop(moatd_pid);
	free(e);
	return rc;
}
