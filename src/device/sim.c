/*
 * moat-device: the simulator's loop (sim.h). All devices run on one thread:
 * one epoll set holds every client socket plus the control socket, a heap
 * holds each device's own wake-up time (keep alive, reconnect backoff, next
 * reading, a retry), and a device is serviced when its socket is ready or
 * its time has come, so a turn costs O(ready + due), not O(N). One thread,
 * no locks: 10,000 libmoat threads would cost 10,000 stacks and context
 * switches for clients that are idle 99 % of the time.
 *
 * Control: a datagram Unix socket <bundles>/moat-device.sock takes
 * "tamper <id>" (moat-device --tamper ID); SIGUSR1 raises a tamper alert
 * for the first device. SIGINT/SIGTERM stop the simulator (each device
 * disconnects with its will, so it is marked offline).
 */
#include "device/sim.h"

#include <dirent.h>
#include <errno.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "base/clock.h"

/* epoll data of the control socket; a device's is its index */
#define CTL_EVENT UINT64_MAX

enum { TURN_MS = 50 }; /* servicing devices in one turn stops after this */

static volatile sig_atomic_t stop_flag, tamper_flag;

static void on_stop(int sig)
{
	(void)sig;
	stop_flag = 1;
}

static void on_usr1(int sig)
{
	(void)sig;
	tamper_flag = 1;
}

bool sim_split_hostport(const char *s, char *host, size_t host_len, uint16_t *port)
{
	const char *colon = strrchr(s, ':');
	unsigned long v;
	char *end;

	if (colon == NULL || colon == s || (size_t)(colon - s) >= host_len || colon[1] < '0' ||
	    colon[1] > '9')
		return false;
	errno = 0;
	v = strtoul(colon + 1, &end, 10);
	if (errno != 0 || *end != '\0' || v < 1 || v > 65535)
		return false;
	snprintf(host, host_len, "%.*s", (int)(colon - s), s);
	*port = (uint16_t)v;
	return true;
}

static int load_signer(struct sim *s, const char *path)
{
	size_t len = 32;
	EVP_PKEY *k;
	FILE *f = fopen(path, "r");

	if (f == NULL) {
		fprintf(stderr, "moat-device: --command-signer %s: %s\n", path, strerror(errno));
		return -1;
	}
	k = PEM_read_PUBKEY(f, NULL, NULL, NULL);
	fclose(f);
	if (k == NULL || EVP_PKEY_get_base_id(k) != EVP_PKEY_ED25519 ||
	    EVP_PKEY_get_raw_public_key(k, s->signer_pub, &len) != 1 || len != 32) {
		EVP_PKEY_free(k);
		fprintf(stderr,
			"moat-device: --command-signer %s: not an Ed25519 public key (PEM)\n",
			path);
		return -1;
	}
	EVP_PKEY_free(k);
	s->have_signer = true;
	return 0;
}

static int by_name(const struct dirent **a, const struct dirent **b)
{
	return strcmp((*a)->d_name, (*b)->d_name);
}

/* Opens the devices of the bundle directories under o->bundles (sorted by name). */
static int open_devices(struct sim *s)
{
	const struct sim_opts *o = s->o;
	struct dirent **ents;
	char path[4200], diag[600];
	struct stat st;
	int n, i, rc = 0;

	n = scandir(o->bundles, &ents, NULL, by_name);
	if (n < 0) {
		fprintf(stderr, "moat-device: --bundles %s: %s\n", o->bundles, strerror(errno));
		return -1;
	}
	s->devs = calloc(o->count, sizeof(*s->devs));
	if (s->devs == NULL)
		rc = -1;
	for (i = 0; i < n; i++) {
		if (rc == 0 && s->n < o->count && ents[i]->d_name[0] != '.') {
			snprintf(path, sizeof(path), "%s/%s/bundle.json", o->bundles,
				 ents[i]->d_name);
			if (stat(path, &st) == 0) {
				snprintf(path, sizeof(path), "%s/%s", o->bundles, ents[i]->d_name);
				if (dev_open(&s->devs[s->n], s, s->n, path, diag, sizeof(diag)) <
				    0) {
					fprintf(stderr, "moat-device: %s\n", diag);
					dev_close(&s->devs[s->n]);
					rc = -1;
				} else {
					s->n++;
				}
			}
		}
		free(ents[i]);
	}
	free(ents);
	if (rc == 0 && s->n == 0) {
		fprintf(stderr, "moat-device: no bundle (sub-directory with bundle.json) in %s\n",
			o->bundles);
		rc = -1;
	}
	return rc;
}

static int ctl_address(const char *bundles, struct sockaddr_un *a, char *path, size_t len)
{
	memset(a, 0, sizeof(*a));
	a->sun_family = AF_UNIX;
	snprintf(path, len, "%s/moat-device.sock", bundles);
	if (strlen(path) >= sizeof(a->sun_path)) {
		fprintf(stderr, "moat-device: control socket path too long: %s\n", path);
		return -1;
	}
	memcpy(a->sun_path, path, strlen(path) + 1);
	return 0;
}

static int ctl_open(struct sim *s)
{
	struct sockaddr_un a;
	int fd;

	if (ctl_address(s->o->bundles, &a, s->ctl_path, sizeof(s->ctl_path)) < 0)
		return -1;
	fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd >= 0 && connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0) {
		fprintf(stderr, "moat-device: another moat-device runs on %s\n", s->o->bundles);
		close(fd);
		return -1;
	}
	(void)unlink(s->ctl_path); /* a stale one from a killed process */
	if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof(a)) < 0 ||
	    chmod(s->ctl_path, 0600) < 0) {
		fprintf(stderr, "moat-device: control socket %s: %s\n", s->ctl_path,
			strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	s->ctl_fd = fd;
	return 0;
}

/* Asks device <i> for a tamper alert, sent when it is serviced in this turn. */
static void request_tamper(struct sim *s, size_t i)
{
	dev_request_tamper(&s->devs[i]);
	wake_heap_set(&s->wakes, i, 0);
}

static void tamper_by_id(struct sim *s, const char *id)
{
	size_t i;

	for (i = 0; i < s->n; i++)
		if (strcmp(s->devs[i].id, id) == 0) {
			request_tamper(s, i);
			return;
		}
	fprintf(stderr, "moat-device: --tamper %s: no such device here\n", id);
}

static void ctl_read(struct sim *s)
{
	char msg[256];
	ssize_t n;

	while ((n = recv(s->ctl_fd, msg, sizeof(msg) - 1, 0)) > 0) {
		msg[n] = '\0';
		if (strncmp(msg, "tamper ", 7) == 0)
			tamper_by_id(s, msg + 7);
		else
			fprintf(stderr, "moat-device: unknown control message\n");
	}
}

int sim_send_tamper(const char *bundles, const char *id)
{
	struct sockaddr_un a;
	char path[4200], msg[256];
	int fd, n;

	if (ctl_address(bundles, &a, path, sizeof(path)) < 0)
		return 1;
	n = snprintf(msg, sizeof(msg), "tamper %s", id);
	if (n < 0 || (size_t)n >= sizeof(msg)) {
		fprintf(stderr, "moat-device: --tamper: id too long\n");
		return 1;
	}
	fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || sendto(fd, msg, (size_t)n, 0, (struct sockaddr *)&a, sizeof(a)) != n) {
		fprintf(stderr, "moat-device: --tamper: no moat-device running on %s (%s)\n",
			bundles, strerror(errno));
		if (fd >= 0)
			close(fd);
		return 1;
	}
	close(fd);
	return 0;
}

static void install_signals(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_stop;
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sa.sa_handler = on_usr1;
	sigaction(SIGUSR1, &sa, NULL);
	sa.sa_handler = SIG_IGN;
	sigaction(SIGPIPE, &sa, NULL);
}

/* Makes the epoll set follow device <i>'s socket: read always, write while
 * libmoat has output waiting. libmoat may have closed the socket (which
 * left the set by itself) and even opened a new one under the same number,
 * so a MOD that finds nothing becomes an ADD. */
static void watch(struct sim *s, size_t i)
{
	struct dev *d = &s->devs[i];
	int fd = moat_socket(d->c);
	struct epoll_event ev = {
	    .events = EPOLLIN | (fd >= 0 && moat_want_write(d->c) ? EPOLLOUT : 0u),
	    .data.u64 = i,
	};

	if (d->watched_fd >= 0 && d->watched_fd != fd)
		(void)epoll_ctl(s->epoll_fd, EPOLL_CTL_DEL, d->watched_fd, &ev);
	d->watched_fd = fd;
	if (fd >= 0 && epoll_ctl(s->epoll_fd, EPOLL_CTL_MOD, fd, &ev) < 0 &&
	    epoll_ctl(s->epoll_fd, EPOLL_CTL_ADD, fd, &ev) < 0) {
		fprintf(stderr, "moat-device: %s: cannot watch its socket: %s\n", d->id,
			strerror(errno));
		d->watched_fd = -1;
	}
}

static void mark_due(struct sim *s, size_t *n_todo, size_t i)
{
	if (!s->devs[i].due) {
		s->devs[i].due = true;
		s->todo[(*n_todo)++] = i;
	}
}

/* Milliseconds until the earliest wake-up, at most <max_ms>. */
static int wait_ms(const struct sim *s, uint64_t now, int max_ms)
{
	uint64_t next = wake_heap_next_ms(&s->wakes);

	if (next <= now)
		return 0;
	return next - now < (uint64_t)max_ms ? (int)(next - now) : max_ms;
}

/* One turn: waits for a socket or the earliest wake-up (at most <max_ms>),
 * then services each device that is ready or due, once, for at most
 * TURN_MS: what is left waits for the next turn, so the devices' output
 * (written by their next moat_loop_once) and TLS handshakes are not held
 * back for seconds behind thousands of readings and their fdatasyncs. Ready
 * sockets come first, and every one is taken from epoll in one turn.
 * -1 when epoll fails. */
static int turn(struct sim *s, int max_ms)
{
	size_t n_todo = 0, i;
	uint64_t now;
	int n, k;

	n = epoll_wait(s->epoll_fd, s->events, (int)s->n + 1, wait_ms(s, clock_mono_ms(), max_ms));
	if (n < 0 && errno != EINTR)
		return -1;
	if (tamper_flag) {
		tamper_flag = 0;
		request_tamper(s, 0);
	}
	now = clock_mono_ms();
	for (k = 0; k < n; k++) {
		if (s->events[k].data.u64 == CTL_EVENT)
			ctl_read(s);
		else
			mark_due(s, &n_todo, (size_t)s->events[k].data.u64);
	}
	while (wake_heap_pop_due(&s->wakes, now, &i))
		mark_due(s, &n_todo, i);
	for (i = 0; i < n_todo; i++) {
		struct dev *d = &s->devs[s->todo[i]];

		d->due = false;
		if (clock_mono_ms() - now < TURN_MS) {
			wake_heap_set(&s->wakes, d->index, dev_service(d, now));
			watch(s, d->index);
		} else {
			wake_heap_set(&s->wakes, d->index, now); /* first in the next turn */
		}
	}
	return 0;
}

/* Runs until SIGINT/SIGTERM (0), or -1 when epoll fails. */
static int loop(struct sim *s)
{
	uint32_t rate = s->o->connect_rate != 0 ? s->o->connect_rate : 200;
	uint64_t t0 = clock_mono_ms(), now;
	size_t started = 0;

	while (!stop_flag) {
		now = clock_mono_ms();
		/* start connections at <rate> per second */
		while (started < s->n && (now - t0) * rate / 1000 + 1 > started) {
			if (dev_start(&s->devs[started]) < 0)
				fprintf(stderr, "moat-device: %s: cannot resolve the broker\n",
					s->devs[started].id);
			wake_heap_set(&s->wakes, started, now);
			watch(s, started);
			started++;
		}
		if (turn(s, started < s->n ? 5 : 1000) < 0) {
			fprintf(stderr, "moat-device: epoll_wait: %s\n", strerror(errno));
			return -1;
		}
	}
	return 0;
}

/* The epoll set (with the control socket), the wake-up heap and the turn's list. */
static int loop_open(struct sim *s)
{
	struct epoll_event ev = {.events = EPOLLIN, .data.u64 = CTL_EVENT};

	s->epoll_fd = epoll_create1(EPOLL_CLOEXEC);
	if (s->epoll_fd < 0 || epoll_ctl(s->epoll_fd, EPOLL_CTL_ADD, s->ctl_fd, &ev) < 0) {
		fprintf(stderr, "moat-device: epoll: %s\n", strerror(errno));
		return -1;
	}
	s->events = calloc(s->n + 1, sizeof(*s->events));
	s->todo = calloc(s->n, sizeof(*s->todo));
	if (s->events == NULL || s->todo == NULL || wake_heap_init(&s->wakes, s->n) < 0) {
		fprintf(stderr, "moat-device: out of memory\n");
		return -1;
	}
	return 0;
}

int sim_run(const struct sim_opts *o)
{
	struct sim s = {.o = o, .ctl_fd = -1, .epoll_fd = -1};
	int rc = 1;
	size_t i;

	install_signals();
	if (o->command_signer != NULL && load_signer(&s, o->command_signer) < 0)
		return 1;
	if (o->command_signer == NULL && !o->plain)
		fprintf(stderr, "moat-device: warning: no --command-signer: command signatures are "
				"not verified\n");
	if (o->queue_dir != NULL && mkdir(o->queue_dir, 0700) < 0 && errno != EEXIST) {
		fprintf(stderr, "moat-device: --queue-dir %s: %s\n", o->queue_dir, strerror(errno));
		return 1;
	}
	if (open_devices(&s) == 0 && ctl_open(&s) == 0 && loop_open(&s) == 0) {
		fprintf(stderr, "moat-device: running %zu devices\n", s.n);
		rc = loop(&s) == 0 ? 0 : 1;
	}
	for (i = 0; i < s.n; i++)
		dev_close(&s.devs[i]);
	free(s.devs);
	free(s.events);
	free(s.todo);
	wake_heap_fini(&s.wakes);
	if (s.epoll_fd >= 0)
		close(s.epoll_fd);
	if (s.ctl_fd >= 0) {
		close(s.ctl_fd);
		unlink(s.ctl_path);
	}
	OPENSSL_cleanse(s.signer_pub, sizeof(s.signer_pub));
	return rc;
}
