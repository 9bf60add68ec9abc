/*
 * `moat bench`: an MQTT load generator. One process drives every publisher,
 * subscriber or idle connection on its own non-blocking sockets and one
 * level-triggered epoll set, speaking MQTT through the codec (not libmoat),
 * so thousands of connections cost one thread. Each payload starts with the
 * publisher's id, a sequence number and the send time, from which the
 * subscribers count latency, losses and duplicates per publisher ->
 * subscriber pair. The connect scenario measures the connection rate
 * instead: each slot connects, gets its CONNACK, disconnects and starts over.
 * With --cafile every socket carries a non-blocking OpenSSL client session
 * (set up in bench_tls.c) that this loop drives like the socket itself.
 * Statistics and output live in bench_report.c.
 */
#include <errno.h>
#include <limits.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <moat/error.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include "base/buf.h"
#include "cli/bench.h"
#include "e2e/alg.h"
#include "codec/packet.h"

enum {
	HDR_LEN = 24,			/* u32 publisher, u32 zero, u64 sequence, u64 send time */
	READ_CHUNK = 65536,
	OUT_HIGH = 32768,		/* a publisher stops encoding above this much pending output */
	CONNECT_BURST = 256,		/* connection attempts outstanding at once */
	MAX_EVENTS = 512,
	ERRORS_SHOWN = 5,
};

#define NS_PER_S 1000000000ull
#define SETUP_TIMEOUT_NS (30 * NS_PER_S)
#define DRAIN_QUIET_NS (1 * NS_PER_S)

enum scenario { SC_FANIN, SC_FANOUT, SC_PAIRS, SC_IDLE, SC_CONNECT };
enum role { ROLE_PUB, ROLE_SUB, ROLE_IDLE };
enum cstate { CS_NEW, CS_CONNECTING, CS_HANDSHAKE, CS_CONNACK, CS_SUBACK, CS_READY, CS_DEAD };
enum phase { PH_SUBS, PH_PUBS, PH_RUN, PH_DRAIN, PH_DONE };

struct bench_opts {
	enum scenario scenario;
	const char *host, *port;
	const char *sub_host, *sub_port; /* where subscribers connect: another cluster node */
	double settle_s;		 /* pause between the last SUBACK and the first publisher */
	const char *cafile, *cert, *key; /* TLS when cafile is set */
	unsigned long pubs, subs, conns;
	int qos, version;
	unsigned long payload_len, window;
	double rate, duration_s, drain_s;
	unsigned keepalive_s;
	unsigned long session_expiry_s; /* > 0: sessions outlive connections (clean start off) */
	const char *e2e;		/* --e2e ALG: seal payloads end to end; NULL = plain */
};

struct bconn {
	int fd;
	SSL *ssl;	  /* TLS session on fd, or NULL */
	bool rd_wants_wr; /* SSL_read must write first: retry it on EPOLLOUT */
	enum role role;
	enum cstate state;
	uint32_t idx;		/* publisher or subscriber number */
	bool want_out;		/* EPOLLOUT registered */
	struct buf in, out;
	uint64_t last_tx_ns;
	uint64_t open_ns;     /* when socket() was called */
	unsigned long serial; /* connection attempts before this one */
	/* publisher */
	uint64_t seq;		/* messages sent so far = next sequence number */
	uint64_t due_ns;	/* when the next message may go (rate limit) */
	uint32_t inflight, window;
	uint16_t next_id;
	/* subscriber: publishers first_pub .. first_pub + npubs - 1 */
	uint32_t first_pub, npubs;
	uint64_t *next_seq, *got;
};

struct bench {
	struct bench_opts o;
	SSL_CTX *tls;			/* client TLS context, or NULL */
	struct addrinfo *ai;		/* what getaddrinfo returned */
	const struct addrinfo *addr;	/* the address connections go to */
	struct addrinfo *sub_ai;	/* getaddrinfo of the subscribers' broker (--sub-*) */
	const struct addrinfo *sub_addr; /* the address subscribers connect to */
	int epfd;
	struct bconn *c;
	unsigned long n, npub, nsub;	/* connections: subscribers first, then publishers */
	unsigned long opened, pending;	/* connection attempts started, and not yet answered */
	enum phase phase;
	char prefix[64];		/* topic prefix unique to this run */
	uint8_t *payload;
	struct bench_e2e e2e;		/* --e2e: the group key and scratch buffers */
	uint64_t subs_ready_ns;		/* when the last subscriber got its SUBACK */
	uint64_t phase_ns, start_ns, stop_ns, last_rx_ns, last_progress_ns, recv_at_progress;
	unsigned long errors_shown;
	struct bench_result r;
};

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * NS_PER_S + (uint64_t)ts.tv_nsec;
}

static void usage(void)
{
	printf("Usage: moat bench [options]\n"
	       "  --scenario S     fanin (N publishers -> 1 subscriber), fanout (1 -> N),\n"
	       "                   pairs (N publisher/subscriber pairs, own topic each) or\n"
	       "                   idle (N connections that only keep alive) or connect (N\n"
	       "                   clients that connect, get the CONNACK, disconnect and\n"
	       "                   start over: connection rate); default pairs\n"
	       "  --publishers N   fanin publishers (default 8)\n"
	       "  --subscribers N  fanout subscribers (default 50)\n"
	       "  --pairs N        pairs (default 20)\n"
	       "  --connections N  idle connections (default 1000), connect clients (default 50)\n"
	       "  -q 0|1|2         QoS of publications and subscriptions (default 0)\n"
	       "  -s BYTES         payload size, at least %d (default 64)\n"
	       "  --rate R         messages/s per publisher; 0 = as fast as flow control allows\n"
	       "  --window N       QoS 1/2 messages in flight per publisher (default 64)\n"
	       "  --duration S     seconds of publishing, or of holding idle connections (default 10)\n"
	       "  --drain S        after publishing, wait up to S seconds for messages still\n"
	       "                   under way (default 10; 1 s without any ends it sooner)\n"
	       "  -V 311|5         protocol version (default 5)\n"
	       "  -h HOST -p PORT  broker (default localhost 1883)\n"
	       "  --sub-host HOST --sub-port PORT  subscribers connect to this broker\n"
	       "                   instead (another node of a cluster; default -h and -p)\n"
	       "  --settle S       wait S seconds (0..10) after the subscriptions before\n"
	       "                   publishing, for a cluster to spread them (default 0)\n"
	       "  -k SECONDS       keep alive (default 60)\n"
	       "  --e2e ALG        seal every payload end to end (COSE_Encrypt0) with ALG,\n"
	       "                   chacha20-poly1305 or aes-256-gcm; subscribers open it\n"
	       "  --session-expiry S  clients keep their sessions for S seconds (clean start\n"
	       "                   off; 3.1.1: kept until cleaned), so a broker with\n"
	       "                   persistence stores their queues (default 0: clean sessions)\n"
	       "  --cafile FILE    TLS: verify the broker against the CA certificates in FILE\n"
	       "                   and its certificate against HOST\n"
	       "  --cert FILE --key FILE  TLS client certificate and its private key\n"
	       "Progress goes to standard error once a second; the summary and one JSON line\n"
	       "to standard output.\n",
	       HDR_LEN);
}

static int bad(const char *what, const char *arg)
{
	fprintf(stderr, "Error: %s \"%s\"\nUse --help to see usage.\n", what, arg);
	return 1;
}

static bool parse_ul(const char *s, unsigned long min, unsigned long max, unsigned long *out)
{
	char *end;
	unsigned long v;

	if (s[0] < '0' || s[0] > '9')
		return false;
	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno != 0 || *end != '\0' || v < min || v > max)
		return false;
	*out = v;
	return true;
}

static bool parse_double(const char *s, double min, double max, double *out)
{
	char *end;
	double v;

	errno = 0;
	v = strtod(s, &end);
	if (errno != 0 || end == s || *end != '\0' || !(v >= min && v <= max))
		return false;
	*out = v;
	return true;
}

/* Returns 0, 1 after an error message, or 2 after --help. */
static int parse_opts(int argc, char **argv, struct bench_opts *o)
{
	unsigned long pubs = 0, subs = 0, pairs = 0, conns = 0, v;

	*o = (struct bench_opts){ .scenario = SC_PAIRS, .host = "localhost", .port = "1883",
				  .payload_len = 64, .window = 64, .duration_s = 10, .drain_s = 10,
				  .version = 5,
				  .keepalive_s = 60 };
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *arg = i + 1 < argc ? argv[i + 1] : NULL;

		if (strcmp(a, "--help") == 0) {
			usage();
			return 2;
		}
		if (arg == NULL)
			return bad("missing value after", a);
		i++;
		if (strcmp(a, "--scenario") == 0) {
			if (strcmp(arg, "fanin") == 0)
				o->scenario = SC_FANIN;
			else if (strcmp(arg, "fanout") == 0)
				o->scenario = SC_FANOUT;
			else if (strcmp(arg, "pairs") == 0)
				o->scenario = SC_PAIRS;
			else if (strcmp(arg, "idle") == 0)
				o->scenario = SC_IDLE;
			else if (strcmp(arg, "connect") == 0)
				o->scenario = SC_CONNECT;
			else
				return bad("unknown scenario", arg);
		} else if (strcmp(a, "--publishers") == 0) {
			if (!parse_ul(arg, 1, 100000, &pubs))
				return bad("--publishers wants 1..100000, not", arg);
		} else if (strcmp(a, "--subscribers") == 0) {
			if (!parse_ul(arg, 1, 100000, &subs))
				return bad("--subscribers wants 1..100000, not", arg);
		} else if (strcmp(a, "--pairs") == 0) {
			if (!parse_ul(arg, 1, 50000, &pairs))
				return bad("--pairs wants 1..50000, not", arg);
		} else if (strcmp(a, "--connections") == 0) {
			if (!parse_ul(arg, 1, 1000000, &conns))
				return bad("--connections wants 1..1000000, not", arg);
		} else if (strcmp(a, "--e2e") == 0) {
			o->e2e = arg;
		} else if (strcmp(a, "--session-expiry") == 0) {
			if (!parse_ul(arg, 0, UINT32_MAX, &o->session_expiry_s))
				return bad("--session-expiry wants 0..4294967295 seconds, not", arg);
		} else if (strcmp(a, "-q") == 0 || strcmp(a, "--qos") == 0) {
			if (!parse_ul(arg, 0, 2, &v))
				return bad("QoS must be 0, 1 or 2, not", arg);
			o->qos = (int)v;
		} else if (strcmp(a, "-s") == 0 || strcmp(a, "--size") == 0) {
			if (!parse_ul(arg, HDR_LEN, 1u << 20, &o->payload_len))
				return bad("payload size must be 24..1048576 bytes, not", arg);
		} else if (strcmp(a, "--rate") == 0) {
			if (!parse_double(arg, 0, 1e9, &o->rate))
				return bad("--rate wants messages/s >= 0, not", arg);
		} else if (strcmp(a, "--window") == 0) {
			if (!parse_ul(arg, 1, 65535, &o->window))
				return bad("--window wants 1..65535, not", arg);
		} else if (strcmp(a, "--duration") == 0) {
			if (!parse_double(arg, 0.1, 86400, &o->duration_s))
				return bad("--duration wants 0.1..86400 seconds, not", arg);
		} else if (strcmp(a, "--drain") == 0) {
			if (!parse_double(arg, 0, 3600, &o->drain_s))
				return bad("--drain wants 0..3600 seconds, not", arg);
		} else if (strcmp(a, "-V") == 0 || strcmp(a, "--protocol-version") == 0) {
			if (strcmp(arg, "5") == 0 || strcmp(arg, "mqttv5") == 0)
				o->version = MQTT_V5;
			else if (strcmp(arg, "311") == 0 || strcmp(arg, "mqttv311") == 0)
				o->version = MQTT_V311;
			else
				return bad("protocol version must be 311 or 5, not", arg);
		} else if (strcmp(a, "-h") == 0 || strcmp(a, "--host") == 0) {
			o->host = arg;
		} else if (strcmp(a, "-p") == 0 || strcmp(a, "--port") == 0) {
			if (!parse_ul(arg, 1, 65535, &v))
				return bad("port must be 1..65535, not", arg);
			o->port = arg;
		} else if (strcmp(a, "--sub-host") == 0) {
			o->sub_host = arg;
		} else if (strcmp(a, "--sub-port") == 0) {
			if (!parse_ul(arg, 1, 65535, &v))
				return bad("--sub-port must be 1..65535, not", arg);
			o->sub_port = arg;
		} else if (strcmp(a, "--settle") == 0) {
			if (!parse_double(arg, 0, 10, &o->settle_s))
				return bad("--settle wants 0..10 seconds, not", arg);
		} else if (strcmp(a, "-k") == 0 || strcmp(a, "--keepalive") == 0) {
			if (!parse_ul(arg, 0, 65535, &v))
				return bad("keep alive must be 0..65535 seconds, not", arg);
			o->keepalive_s = (unsigned)v;
		} else if (strcmp(a, "--cafile") == 0) {
			o->cafile = arg;
		} else if (strcmp(a, "--cert") == 0) {
			o->cert = arg;
		} else if (strcmp(a, "--key") == 0) {
			o->key = arg;
		} else {
			return bad("unknown option", a);
		}
	}
	if (o->sub_host == NULL)
		o->sub_host = o->host;
	if (o->sub_port == NULL)
		o->sub_port = o->port;
	if ((o->cert == NULL) != (o->key == NULL))
		return bad("--cert and --key go together; missing", o->cert ? "--key" : "--cert");
	if (o->cert != NULL && o->cafile == NULL)
		return bad("a client certificate needs TLS; add --cafile for", o->cert);
	switch (o->scenario) {
	case SC_FANIN:
		o->pubs = pubs ? pubs : 8;
		o->subs = 1;
		break;
	case SC_FANOUT:
		o->pubs = 1;
		o->subs = subs ? subs : 50;
		break;
	case SC_PAIRS:
		o->pubs = o->subs = pairs ? pairs : 20;
		break;
	case SC_IDLE:
		o->conns = conns ? conns : 1000;
		break;
	case SC_CONNECT:
		o->conns = conns ? conns : 50;
		break;
	}
	return 0;
}

static const char *scenario_name(enum scenario s)
{
	static const char *const names[] = { "fanin", "fanout", "pairs", "idle", "connect" };

	return names[s];
}

/* Makes room for <n> more open files than are open now; false when the hard limit is lower. */
static bool raise_nofile(unsigned long n)
{
	struct rlimit rl;
	rlim_t want = (rlim_t)n + 64;

	if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
		return false;
	if (rl.rlim_cur >= want)
		return true;
	rl.rlim_cur = rl.rlim_max == RLIM_INFINITY || rl.rlim_max > want ? want : rl.rlim_max;
	if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
		return false;
	return rl.rlim_cur >= want;
}

static void conn_error(struct bench *b, struct bconn *c, const char *what, int err)
{
	if (b->errors_shown++ < ERRORS_SHOWN)
		fprintf(stderr, "moat bench: connection %ld: %s%s%s\n", (long)(c - b->c), what,
			err ? ": " : "", err ? strerror(err) : "");
}

/* Closes <c> (after a TLS close_notify when <notify>) and frees its buffers; <c> is CS_DEAD. */
static void conn_release(struct bconn *c, bool notify)
{
	c->state = CS_DEAD;
	if (c->ssl != NULL) {
		if (notify)
			SSL_shutdown(c->ssl); /* one try, non-blocking */
		SSL_free(c->ssl);
		ERR_clear_error();
		c->ssl = NULL;
	}
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
	buf_fini(&c->in);
	buf_fini(&c->out);
}

static void conn_kill(struct bench *b, struct bconn *c, const char *what, int err)
{
	if (c->state == CS_DEAD)
		return;
	if (c->state == CS_CONNECTING || c->state == CS_HANDSHAKE || c->state == CS_CONNACK ||
	    c->state == CS_SUBACK)
		b->pending--;
	conn_error(b, c, what, err);
	b->r.errors++;
	conn_release(c, false);
}

/* Kills <c> after the TLS operation <what> failed with SSL_get_error() code <ssl_err>. */
static void tls_fail(struct bench *b, struct bconn *c, const char *what, int ssl_err)
{
	char msg[256];
	int err = errno;
	unsigned long e = ERR_get_error();
	long vr = SSL_get_verify_result(c->ssl);

	if (vr != X509_V_OK)
		snprintf(msg, sizeof(msg), "%s: certificate: %s", what,
			 X509_verify_cert_error_string(vr));
	else if (e != 0 && ERR_reason_error_string(e) != NULL)
		snprintf(msg, sizeof(msg), "%s: %s", what, ERR_reason_error_string(e));
	else if (ssl_err == SSL_ERROR_ZERO_RETURN || (ssl_err == SSL_ERROR_SYSCALL && err == 0))
		snprintf(msg, sizeof(msg), "closed by the broker");
	else
		snprintf(msg, sizeof(msg), "%s: %s", what,
			 ssl_err == SSL_ERROR_SYSCALL ? strerror(err) : "failed");
	ERR_clear_error();
	conn_kill(b, c, msg, 0);
}

static void set_want_out(struct bench *b, struct bconn *c, bool on)
{
	struct epoll_event ev = { .events = EPOLLIN | (on ? EPOLLOUT : 0), .data.ptr = c };

	if (c->want_out == on)
		return;
	if (epoll_ctl(b->epfd, EPOLL_CTL_MOD, c->fd, &ev) != 0)
		conn_kill(b, c, "epoll_ctl", errno);
	else
		c->want_out = on;
}

/*
 * One SSL_write of <c>'s pending output: returns the bytes written, 0 when it
 * must wait (EPOLLOUT registered when the socket is full), -1 after killing <c>.
 */
static int tls_write(struct bench *b, struct bconn *c)
{
	size_t len = buf_used(&c->out);
	int n = SSL_write(c->ssl, buf_head(&c->out), len > INT_MAX ? INT_MAX : (int)len), e;

	if (n > 0)
		return n;
	e = SSL_get_error(c->ssl, n);
	if (e == SSL_ERROR_WANT_WRITE || e == SSL_ERROR_WANT_READ) {
		set_want_out(b, c, e == SSL_ERROR_WANT_WRITE); /* else conn_read flushes again */
		return 0;
	}
	tls_fail(b, c, "TLS write", e);
	return -1;
}

/* Writes what <c> has pending; keeps EPOLLOUT registered while some is left. */
static void conn_flush(struct bench *b, struct bconn *c)
{
	while (c->state != CS_DEAD && buf_used(&c->out) > 0) {
		ssize_t n;

		if (c->ssl != NULL) {
			n = tls_write(b, c);
			if (n <= 0)
				return;
			buf_consume(&c->out, (size_t)n);
			continue;
		}
		n = send(c->fd, buf_head(&c->out), buf_used(&c->out), MSG_NOSIGNAL);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			set_want_out(b, c, true);
			return;
		}
		if (n < 0) {
			conn_kill(b, c, "send", errno);
			return;
		}
		buf_consume(&c->out, (size_t)n);
	}
	if (c->state != CS_DEAD) {
		set_want_out(b, c, false);
		buf_trim(&c->out, OUT_HIGH * 2);
	}
}

/* Appends packet <p> to <c>'s output; false (connection killed) when out of memory. */
static bool conn_queue(struct bench *b, struct bconn *c, const struct mqtt_packet *p, uint64_t now)
{
	size_t need;

	if (c->state == CS_DEAD)
		return false;
	if (buf_reserve(&c->out, 256) != MOAT_OK)
		goto err_nomem;
	need = pkt_encode(c->out.data + c->out.len, c->out.cap - c->out.len, (uint8_t)b->o.version, p);
	if (need == 0) {
		conn_kill(b, c, "packet too large", 0);
		return false;
	}
	if (need > c->out.cap - c->out.len) {
		if (buf_reserve(&c->out, need) != MOAT_OK)
			goto err_nomem;
		pkt_encode(c->out.data + c->out.len, c->out.cap - c->out.len, (uint8_t)b->o.version, p);
	}
	c->out.len += need;
	c->last_tx_ns = now;
	return true;

err_nomem:
	conn_kill(b, c, "out of memory", 0);
	return false;
}

static void queue_ack(struct bench *b, struct bconn *c, uint8_t type, uint16_t id, uint64_t now)
{
	struct mqtt_packet p = { .type = type, .ack = { .packet_id = id } };

	conn_queue(b, c, &p, now);
}

static void format_topic(const struct bench *b, uint32_t pub, char *out, size_t cap)
{
	snprintf(out, cap, "%s/%lu", b->prefix, (unsigned long)pub);
}

static void conn_send_connect(struct bench *b, struct bconn *c, uint64_t now)
{
	char id[64];
	struct mqtt_packet p = { .type = MQTT_CONNECT };

	if (b->o.scenario == SC_CONNECT) /* a new session each time, no takeover */
		snprintf(id, sizeof(id), "%s-c%lu", b->prefix + 6, c->serial);
	else
		snprintf(id, sizeof(id), "%s-%ld", b->prefix + 6, (long)(c - b->c));
	p.connect.version = (uint8_t)b->o.version;
	p.connect.clean_start = b->o.session_expiry_s == 0 || b->o.scenario == SC_CONNECT;
	if (!p.connect.clean_start && b->o.version == MQTT_V5) {
		p.connect.props.session_expiry_s = (uint32_t)b->o.session_expiry_s;
		props_set(&p.connect.props, MQTT_PROP_SESSION_EXPIRY);
	}
	p.connect.keep_alive_s = (uint16_t)b->o.keepalive_s;
	p.connect.client_id = (struct moat_bytes){ .ptr = (const uint8_t *)id, .len = strlen(id) };
	if (conn_queue(b, c, &p, now)) {
		c->state = CS_CONNACK;
		conn_flush(b, c);
	}
}

static void conn_send_subscribe(struct bench *b, struct bconn *c, uint64_t now)
{
	char filter[96];
	uint8_t entry[128];
	struct mqtt_sub_opts so = { .qos = (uint8_t)b->o.qos };
	struct mqtt_packet p = { .type = MQTT_SUBSCRIBE };
	size_t n;

	if (b->o.scenario == SC_FANIN)
		snprintf(filter, sizeof(filter), "%s/+", b->prefix);
	else
		format_topic(b, c->first_pub, filter, sizeof(filter));
	n = pkt_sub_entry(entry, sizeof(entry),
			  (struct moat_bytes){ .ptr = (const uint8_t *)filter, .len = strlen(filter) },
			  &so);
	p.subscribe.packet_id = 1;
	rd_init(&p.subscribe.entries, entry, n);
	if (conn_queue(b, c, &p, now)) {
		c->state = CS_SUBACK;
		conn_flush(b, c);
	}
}

/* Starts a non-blocking connect for <c>; the result arrives as EPOLLOUT. */
static void conn_open(struct bench *b, struct bconn *c)
{
	struct epoll_event ev = { .events = EPOLLIN | EPOLLOUT, .data.ptr = c };
	int one = 1;
	const struct addrinfo *addr = c->role == ROLE_SUB ? b->sub_addr : b->addr;

	c->serial = b->opened++;
	b->pending++;
	c->state = CS_CONNECTING;
	c->want_out = true;
	c->rd_wants_wr = false;
	c->open_ns = now_ns();
	c->fd = socket(addr->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (c->fd < 0) {
		conn_kill(b, c, "socket", errno);
		return;
	}
	setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (connect(c->fd, addr->ai_addr, addr->ai_addrlen) != 0 && errno != EINPROGRESS) {
		conn_kill(b, c, "connect", errno);
		return;
	}
	if (epoll_ctl(b->epfd, EPOLL_CTL_ADD, c->fd, &ev) != 0)
		conn_kill(b, c, "epoll_ctl", errno);
}

/* Encodes as many PUBLISH packets as the rate, the window and the output bound allow. */
static void pub_fill(struct bench *b, struct bconn *c)
{
	char topic[96];
	struct mqtt_packet p = { .type = MQTT_PUBLISH };
	uint64_t now = now_ns(), interval = b->o.rate > 0 ? (uint64_t)(1e9 / b->o.rate) : 0;
	bool wrote = false;

	if (b->phase != PH_RUN)
		return;
	format_topic(b, c->idx, topic, sizeof(topic));
	p.publish.qos = (uint8_t)b->o.qos;
	p.publish.topic = (struct moat_bytes){ .ptr = (const uint8_t *)topic, .len = strlen(topic) };
	p.publish.payload = (struct moat_bytes){ .ptr = b->payload, .len = b->o.payload_len };
	while (c->state == CS_READY && !c->want_out && buf_used(&c->out) < OUT_HIGH) {
		if (b->o.qos > 0 && c->inflight >= c->window)
			break;
		if (interval > 0 && c->due_ns > now)
			break;
		memcpy(b->payload, &c->idx, 4);
		memcpy(b->payload + 8, &c->seq, 8);
		memcpy(b->payload + 16, &now, 8);
		if (b->e2e.alg != 0 &&
		    bench_e2e_seal(&b->e2e, c->idx, c->seq, p.publish.topic,
				   (struct moat_bytes){ b->payload, b->o.payload_len }, &p.publish.payload) < 0) {
			conn_kill(b, c, "sealing failed", 0);
			return;
		}
		if (b->o.qos > 0) {
			if (++c->next_id == 0)
				c->next_id = 1;
			p.publish.packet_id = c->next_id;
		}
		if (!conn_queue(b, c, &p, now))
			return;
		wrote = true;
		c->seq++;
		b->r.sent++;
		if (b->o.qos > 0)
			c->inflight++;
		c->due_ns += interval;
		now = now_ns();
	}
	if (wrote)
		conn_flush(b, c);
}

static void sub_receive(struct bench *b, struct bconn *c, const struct mqtt_publish *pub,
			uint64_t now)
{
	struct moat_bytes payload = pub->payload;
	uint32_t pid;
	uint64_t seq, sent_ns, k;

	if (b->e2e.alg != 0 && bench_e2e_open(&b->e2e, pub->topic, pub->payload, &payload) < 0) {
		b->r.errors++;	/* altered, or not sealed with the run's key */
		return;
	}
	if (payload.len < HDR_LEN) {
		b->r.errors++;
		return;
	}
	memcpy(&pid, payload.ptr, 4);
	memcpy(&seq, payload.ptr + 8, 8);
	memcpy(&sent_ns, payload.ptr + 16, 8);
	k = (uint64_t)pid - c->first_pub;
	if (pid < c->first_pub || k >= c->npubs) {
		b->r.errors++;
		return;
	}
	/* One publisher's messages on one topic arrive in order [MQTT-4.6.0-6]: a sequence
	 * number below the next expected one was delivered already. */
	if (seq < c->next_seq[k]) {
		b->r.dup++;
		return;
	}
	c->next_seq[k] = seq + 1;
	c->got[k]++;
	b->r.received++;
	b->last_rx_ns = now;
	bench_hist_add(&b->r.hist, now > sent_ns ? (now - sent_ns) / 1000 : 0);
}

static void conn_ready(struct bench *b, struct bconn *c)
{
	c->state = CS_READY;
	b->pending--;
	b->r.connected++;
}

/* Connect scenario: counts <c>'s connect time, sends DISCONNECT and closes it. */
static void conn_done(struct bench *b, struct bconn *c, uint64_t now)
{
	struct mqtt_packet p = {.type = MQTT_DISCONNECT};

	conn_ready(b, c);
	bench_hist_add(&b->r.hist, now > c->open_ns ? (now - c->open_ns) / 1000 : 0);
	if (conn_queue(b, c, &p, now))
		conn_flush(b, c);
	if (c->state != CS_DEAD)
		conn_release(c, true);
}

/* Acts on one decoded packet; the connection may be dead afterwards. */
static void conn_packet(struct bench *b, struct bconn *c, const struct mqtt_packet *p, uint64_t now)
{
	switch (p->type) {
	case MQTT_CONNACK:
		if (c->state != CS_CONNACK) {
			conn_kill(b, c, "unexpected CONNACK", 0);
		} else if (p->connack.rc != MQTT_RC_SUCCESS) {
			conn_kill(b, c, mqtt_rc_str(p->connack.rc), 0);
		} else if (b->o.scenario == SC_CONNECT) {
			conn_done(b, c, now);
		} else if (c->role == ROLE_SUB) {
			conn_send_subscribe(b, c, now);
		} else {
			if (props_has(&p->connack.props, MQTT_PROP_RECEIVE_MAX) &&
			    p->connack.props.receive_max < c->window)
				c->window = p->connack.props.receive_max;
			conn_ready(b, c);
		}
		break;
	case MQTT_SUBACK:
		if (c->state != CS_SUBACK || p->suback.rcs.len != 1 || p->suback.rcs.ptr[0] >= 0x80)
			conn_kill(b, c, "subscription refused", 0);
		else
			conn_ready(b, c);
		break;
	case MQTT_PUBLISH:
		if (c->role != ROLE_SUB) {
			conn_kill(b, c, "PUBLISH to a publisher", 0);
			break;
		}
		sub_receive(b, c, &p->publish, now);
		if (p->publish.qos == 1)
			queue_ack(b, c, MQTT_PUBACK, p->publish.packet_id, now);
		else if (p->publish.qos == 2)
			queue_ack(b, c, MQTT_PUBREC, p->publish.packet_id, now);
		break;
	case MQTT_PUBREL:
		queue_ack(b, c, MQTT_PUBCOMP, p->ack.packet_id, now);
		break;
	case MQTT_PUBACK:
	case MQTT_PUBCOMP:
	case MQTT_PUBREC:
		if (c->role != ROLE_PUB || c->inflight == 0) {
			conn_kill(b, c, "unexpected acknowledgement", 0);
			break;
		}
		b->last_rx_ns = now;
		if (p->ack.rc >= 0x80) {
			b->r.errors++;	/* refused: the flow ends here */
			c->inflight--;
		} else if (p->type == MQTT_PUBREC) {
			queue_ack(b, c, MQTT_PUBREL, p->ack.packet_id, now);
		} else {
			c->inflight--;
		}
		break;
	case MQTT_PINGRESP:
		break;
	case MQTT_DISCONNECT:
		conn_kill(b, c, mqtt_rc_str(p->disconnect.rc), 0);
		break;
	default:
		conn_kill(b, c, "unexpected packet", 0);
		break;
	}
}

/*
 * Decrypts into <c>->in all that <c>'s TLS session holds or its socket has
 * now (bytes kept inside the session would raise no epoll event); returns
 * whether any arrived, false also when <c> was killed.
 */
static bool tls_read(struct bench *b, struct bconn *c)
{
	size_t before = c->in.len;

	c->rd_wants_wr = false;
	for (;;) {
		size_t room;
		int n, e;

		if (buf_reserve(&c->in, READ_CHUNK) != MOAT_OK) {
			conn_kill(b, c, "out of memory", 0);
			return false;
		}
		room = c->in.cap - c->in.len;
		n = SSL_read(c->ssl, c->in.data + c->in.len, room > INT_MAX ? INT_MAX : (int)room);
		if (n > 0) {
			c->in.len += (size_t)n;
			continue;
		}
		e = SSL_get_error(c->ssl, n);
		if (e == SSL_ERROR_WANT_READ)
			return c->in.len > before;
		if (e == SSL_ERROR_WANT_WRITE) {
			c->rd_wants_wr = true;
			set_want_out(b, c, true);
			return c->state != CS_DEAD && c->in.len > before;
		}
		tls_fail(b, c, "TLS read", e);
		return false;
	}
}

static void conn_read(struct bench *b, struct bconn *c)
{
	uint64_t now;
	ssize_t n;

	if (c->ssl != NULL) {
		if (!tls_read(b, c))
			return;
	} else {
		if (buf_reserve(&c->in, READ_CHUNK) != MOAT_OK) {
			conn_kill(b, c, "out of memory", 0);
			return;
		}
		n = recv(c->fd, c->in.data + c->in.len, c->in.cap - c->in.len, 0);
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
			return;
		if (n <= 0) {
			conn_kill(b, c, n == 0 ? "closed by the broker" : "recv",
				  n == 0 ? 0 : errno);
			return;
		}
		c->in.len += (size_t)n;
	}
	now = now_ns();
	while (c->state != CS_DEAD && buf_used(&c->in) > 0) {
		struct mqtt_frame f;
		struct mqtt_packet p;
		int rc = frame_decode(buf_head(&c->in), buf_used(&c->in), MQTT_MAX_PACKET_SIZE, &f);

		if (rc == MOAT_E_AGAIN || (rc == MOAT_OK && buf_used(&c->in) < f.hdr_len + f.rem_len))
			break;
		if (rc == MOAT_OK)
			rc = pkt_decode(&f, buf_head(&c->in) + f.hdr_len, (uint8_t)b->o.version, &p);
		if (rc != MOAT_OK) {
			conn_kill(b, c, "malformed packet from the broker", 0);
			return;
		}
		conn_packet(b, c, &p, now);
		if (c->state != CS_DEAD)
			buf_consume(&c->in, f.hdr_len + f.rem_len);
	}
	if (c->state == CS_DEAD)
		return;
	buf_trim(&c->in, 0);
	if (c->role == ROLE_PUB)
		pub_fill(b, c);
	conn_flush(b, c);
}

/* Drives <c>'s TLS handshake one step; sends CONNECT once it is done. */
static void conn_handshake(struct bench *b, struct bconn *c)
{
	int rc = SSL_do_handshake(c->ssl), e;

	if (rc == 1) {
		conn_send_connect(b, c, now_ns());
		return;
	}
	e = SSL_get_error(c->ssl, rc);
	if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
		set_want_out(b, c, e == SSL_ERROR_WANT_WRITE);
	else
		tls_fail(b, c, "TLS handshake", e);
}

static void conn_event(struct bench *b, struct bconn *c, uint32_t events)
{
	if (c->state == CS_DEAD)
		return;	/* closed earlier in this batch of events */
	if (c->state == CS_CONNECTING) {
		int err = 0;
		socklen_t len = sizeof(err);

		if (!(events & (EPOLLOUT | EPOLLERR | EPOLLHUP)))
			return;
		if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0)
			err = errno;
		if (err != 0) {
			conn_kill(b, c, "connect", err);
			return;
		}
		if (b->tls == NULL) {
			conn_send_connect(b, c, now_ns());
			return;
		}
		c->ssl = bench_tls_open(b->tls, c->fd,
					c->role == ROLE_SUB ? b->o.sub_host : b->o.host);
		if (c->ssl == NULL) {
			conn_kill(b, c, "TLS set-up: out of memory", 0);
			return;
		}
		c->state = CS_HANDSHAKE;
	}
	if (c->state == CS_HANDSHAKE) {
		conn_handshake(b, c);
		return;
	}
	if ((events & (EPOLLIN | EPOLLERR | EPOLLHUP)) || (c->rd_wants_wr && (events & EPOLLOUT)))
		conn_read(b, c);
	if (c->state != CS_DEAD && (events & EPOLLOUT)) {
		conn_flush(b, c);
		if (c->role == ROLE_PUB && c->state != CS_DEAD && !c->want_out)
			pub_fill(b, c);
	}
}

/* Opens connections [from, to) at most CONNECT_BURST unanswered at a time. */
static void open_more(struct bench *b, unsigned long from, unsigned long to)
{
	unsigned long i = from + (b->opened > from ? b->opened - from : 0);

	for (; i < to && b->pending < CONNECT_BURST; i++)
		conn_open(b, &b->c[i]);
}

static void send_pings(struct bench *b, uint64_t now)
{
	uint64_t half = (uint64_t)b->o.keepalive_s * NS_PER_S / 2;
	struct mqtt_packet p = { .type = MQTT_PINGREQ };

	if (half == 0)
		return;
	for (unsigned long i = 0; i < b->n; i++) {
		struct bconn *c = &b->c[i];

		if (c->state == CS_READY && now - c->last_tx_ns >= half && conn_queue(b, c, &p, now))
			conn_flush(b, c);
	}
}

static bool all_delivered(const struct bench *b)
{
	for (unsigned long i = 0; i < b->n; i++) {
		const struct bconn *c = &b->c[i];

		if (c->state != CS_READY)
			continue;
		if (c->role == ROLE_PUB && c->inflight > 0)
			return false;
		for (uint32_t k = 0; c->role == ROLE_SUB && k < c->npubs; k++)
			if (c->got[k] < b->c[b->nsub + c->first_pub + k].seq)
				return false;
	}
	return true;
}

/* Connect scenario: reopens every closed slot until the run time is over. */
static uint64_t advance_connect(struct bench *b, uint64_t now)
{
	uint64_t run_ns = (uint64_t)(b->o.duration_s * 1e9);

	if (b->phase < PH_RUN) {
		b->phase = PH_RUN;
		b->start_ns = now;
	}
	if (now - b->start_ns >= run_ns) {
		b->stop_ns = now;
		b->r.elapsed_s = (double)(now - b->start_ns) / 1e9;
		b->phase = PH_DONE;
		return 0;
	}
	for (unsigned long i = 0; i < b->n; i++)
		if (b->c[i].state == CS_NEW || b->c[i].state == CS_DEAD)
			conn_open(b, &b->c[i]);
	return b->start_ns + run_ns - now;
}

/* Moves the run from phase to phase; returns the next wake-up in ns from <now>. */
static uint64_t advance(struct bench *b, uint64_t now)
{
	unsigned long ready_to = b->phase == PH_SUBS ? b->nsub : b->n;

	if (b->o.scenario == SC_CONNECT)
		return advance_connect(b, now);
	if (b->phase == PH_PUBS && now - b->subs_ready_ns < (uint64_t)(b->o.settle_s * 1e9))
		return b->subs_ready_ns + (uint64_t)(b->o.settle_s * 1e9) - now;
	if (b->phase == PH_SUBS || b->phase == PH_PUBS) {
		open_more(b, b->phase == PH_SUBS ? 0 : b->nsub, ready_to);
		if (b->opened == ready_to && b->pending == 0) {
			if (b->npub > 0 && b->r.connected < ready_to) {
				fprintf(stderr, "moat bench: only %lu of %lu connections ready\n",
					b->r.connected, ready_to);
				b->phase = PH_DONE;
				return 0;
			}
			if (b->phase == PH_SUBS && b->npub > 0) {
				b->phase = PH_PUBS;
				b->subs_ready_ns = now;
				return 0;
			}
			b->phase = PH_RUN;
			b->start_ns = b->last_rx_ns = now;
			for (unsigned long i = b->nsub; i < b->n; i++)
				b->c[i].due_ns = now;
		} else if (now - b->phase_ns > SETUP_TIMEOUT_NS) {
			fprintf(stderr, "moat bench: connections not ready after %llu s\n",
				(unsigned long long)(SETUP_TIMEOUT_NS / NS_PER_S));
			b->phase = b->npub == 0 ? PH_RUN : PH_DONE;
			b->start_ns = now;
		}
		return 1000000;
	}
	if (b->phase == PH_RUN && now - b->start_ns >= (uint64_t)(b->o.duration_s * 1e9)) {
		b->stop_ns = now;
		b->r.received_in_run = b->r.received;
		b->phase = b->npub == 0 ? PH_DONE : PH_DRAIN;
	}
	if (b->phase == PH_DRAIN &&
	    (all_delivered(b) || now - b->last_rx_ns > DRAIN_QUIET_NS ||
	     now - b->stop_ns > (uint64_t)(b->o.drain_s * 1e9)))
		b->phase = PH_DONE;
	return b->phase == PH_RUN ? b->start_ns + (uint64_t)(b->o.duration_s * 1e9) - now
				  : 10000000;
}

static void progress(struct bench *b, uint64_t now)
{
	uint64_t origin = b->phase >= PH_RUN ? b->start_ns : b->phase_ns;

	if (now - b->last_progress_ns < NS_PER_S)
		return;
	bench_report_progress(stderr, &b->r, (double)(now - origin) / 1e9,
			      b->r.received - b->recv_at_progress);
	b->last_progress_ns = now;
	b->recv_at_progress = b->r.received;
	send_pings(b, now);
}

static void run_loop(struct bench *b)
{
	struct epoll_event ev[MAX_EVENTS];

	b->phase_ns = b->last_progress_ns = now_ns();
	while (b->phase != PH_DONE) {
		uint64_t now = now_ns(), wait_ns = advance(b, now), next_due = UINT64_MAX;
		int n, timeout_ms;

		if (b->phase == PH_DONE)
			break;
		if (b->phase == PH_RUN) {
			for (unsigned long i = b->nsub; i < b->n; i++) {
				struct bconn *c = &b->c[i];

				pub_fill(b, c);
				if (c->state == CS_READY && !c->want_out && buf_used(&c->out) == 0 &&
				    (b->o.qos == 0 || c->inflight < c->window) && c->due_ns < next_due)
					next_due = c->due_ns;
			}
			now = now_ns();
			if (next_due != UINT64_MAX)
				wait_ns = next_due > now ? (next_due - now < wait_ns ? next_due - now : wait_ns) : 0;
		}
		if (wait_ns > NS_PER_S)
			wait_ns = NS_PER_S;
		timeout_ms = (int)((wait_ns + 999999) / 1000000);
		n = epoll_wait(b->epfd, ev, MAX_EVENTS, timeout_ms);
		for (int i = 0; i < n; i++)
			conn_event(b, ev[i].data.ptr, ev[i].events);
		progress(b, now_ns());
	}
}

static void finish(struct bench *b)
{
	uint64_t end = b->last_rx_ns > b->start_ns ? b->last_rx_ns : b->stop_ns;
	struct mqtt_packet p = { .type = MQTT_DISCONNECT };

	if (b->o.scenario != SC_CONNECT)
		b->r.elapsed_s =
		    b->npub > 0 && end > b->start_ns ? (double)(end - b->start_ns) / 1e9 : 0;
	for (unsigned long i = 0; i < b->n; i++) {
		struct bconn *c = &b->c[i];

		for (uint32_t k = 0; c->role == ROLE_SUB && k < c->npubs; k++) {
			uint64_t sent = b->c[b->nsub + c->first_pub + k].seq;

			b->r.expected += sent;
			b->r.lost += sent > c->got[k] ? sent - c->got[k] : 0;
		}
		if (c->state == CS_READY && conn_queue(b, c, &p, now_ns())) {
			if (c->ssl != NULL) /* best effort, like the plain send */
				SSL_write(c->ssl, buf_head(&c->out), (int)buf_used(&c->out));
			else
				send(c->fd, buf_head(&c->out), buf_used(&c->out), MSG_NOSIGNAL);
		}
		conn_release(c, c->state == CS_READY);
		free(c->next_seq);
		free(c->got);
	}
}

/* Resolves <host>:<port> into *<ai>, pointing *<addr> at its first IPv4
 * address (moatd and mosquitto 2 default to IPv4) or else its first one. */
static int resolve(const char *host, const char *port, struct addrinfo **ai,
		   const struct addrinfo **addr)
{
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM };
	int rc = getaddrinfo(host, port, &hints, ai);

	if (rc != 0) {
		fprintf(stderr, "Error: %s: %s\n", host, gai_strerror(rc));
		*ai = NULL;
		return 1;
	}
	*addr = *ai;
	for (const struct addrinfo *a = *ai; a != NULL; a = a->ai_next)
		if (a->ai_family == AF_INET) {
			*addr = a;
			break;
		}
	return 0;
}

/* Lays out the connections: subscribers first (they must be subscribed before anything is sent). */
static int setup(struct bench *b)
{
	if (b->o.scenario == SC_IDLE || b->o.scenario == SC_CONNECT) {
		b->n = b->nsub = b->o.conns;	/* one group, opened like subscribers */
	} else {
		b->npub = b->o.pubs;
		b->nsub = b->o.subs;
		b->n = b->npub + b->nsub;
	}
	if (!raise_nofile(b->n))
		fprintf(stderr, "moat bench: warning: the open-file limit is below %lu connections\n",
			b->n);
	if (resolve(b->o.host, b->o.port, &b->ai, &b->addr) != 0 ||
	    resolve(b->o.sub_host, b->o.sub_port, &b->sub_ai, &b->sub_addr) != 0)
		return 1;
	b->epfd = epoll_create1(EPOLL_CLOEXEC);
	b->c = calloc(b->n, sizeof(*b->c));
	b->payload = calloc(1, b->o.payload_len);
	if (b->epfd < 0 || b->c == NULL || b->payload == NULL) {
		fprintf(stderr, "Error: out of memory\n");
		return 1;
	}
	memset(b->payload + HDR_LEN, 'x', b->o.payload_len - HDR_LEN);
	snprintf(b->prefix, sizeof(b->prefix), "bench/%ld-%lx", (long)getpid(),
		 (unsigned long)(now_ns() & 0xffffff));
	for (unsigned long i = 0; i < b->n; i++) {
		struct bconn *c = &b->c[i];

		c->fd = -1;
		c->state = CS_NEW;
		if (b->o.scenario == SC_IDLE || b->o.scenario == SC_CONNECT) {
			c->role = ROLE_IDLE;
			c->idx = (uint32_t)i;
			continue;
		}
		c->role = i < b->nsub ? ROLE_SUB : ROLE_PUB;
		c->idx = (uint32_t)(i < b->nsub ? i : i - b->nsub);
		c->window = (uint32_t)b->o.window;
		if (c->role == ROLE_PUB)
			continue;
		c->first_pub = b->o.scenario == SC_PAIRS ? c->idx : 0;
		c->npubs = b->o.scenario == SC_FANIN ? (uint32_t)b->npub : 1;
		c->next_seq = calloc(c->npubs, sizeof(*c->next_seq));
		c->got = calloc(c->npubs, sizeof(*c->got));
		if (c->next_seq == NULL || c->got == NULL) {
			fprintf(stderr, "Error: out of memory\n");
			return 1;
		}
	}
	return 0;
}

int cli_bench_main(int argc, char **argv)
{
	struct bench *b = calloc(1, sizeof(*b));
	int rc;

	if (b == NULL) {
		fprintf(stderr, "Error: out of memory\n");
		return 1;
	}
	b->epfd = -1;
	rc = parse_opts(argc, argv, &b->o);
	if (rc != 0) {
		free(b);
		return rc == 2 ? 0 : 1;
	}
	if (b->o.cafile != NULL) {
		b->tls = bench_tls_ctx_create(b->o.cafile, b->o.cert, b->o.key);
		if (b->tls == NULL) {
			free(b);
			return 1;
		}
	}
	if (b->o.e2e != NULL && bench_e2e_init(&b->e2e, b->o.e2e, b->o.pubs) < 0) {
		SSL_CTX_free(b->tls);
		free(b);
		return 1;
	}
	rc = setup(b);
	if (rc == 0) {
		b->r = (struct bench_result){
			.scenario = scenario_name(b->o.scenario), .tls = b->tls != NULL,
			.e2e = b->e2e.alg != 0 ? e2e_alg_name(b->e2e.alg) : NULL,
			.qos = b->o.qos,
			.version = b->o.version == MQTT_V5 ? 5 : 311, .payload_len = b->o.payload_len,
			.publishers = b->npub, .subscribers = b->npub > 0 ? b->nsub : 0,
			.connections = b->n,
			.rate = b->o.rate, .duration_s = b->o.duration_s
		};
		run_loop(b);
		finish(b);
		bench_report_summary(stdout, &b->r);
		bench_report_json(stdout, &b->r);
		rc = b->r.connected == 0 || (b->npub > 0 && b->r.connected < b->n) ? 1 : 0;
	} else if (b->c != NULL) {
		for (unsigned long i = 0; i < b->n; i++) {
			free(b->c[i].next_seq);
			free(b->c[i].got);
		}
	}
	if (b->ai != NULL)
		freeaddrinfo(b->ai);
	if (b->sub_ai != NULL)
		freeaddrinfo(b->sub_ai);
	if (b->epfd >= 0)
		close(b->epfd);
	free(b->c);
	free(b->payload);
	bench_e2e_fini(&b->e2e);
	SSL_CTX_free(b->tls);
	free(b);
	return rc;
}
