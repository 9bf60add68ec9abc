/*
 * moat-device: the simulator's loop (sim.h). All devices run on one thread:
 * one poll() over every client socket plus the control socket, and each
 * device is serviced when its socket is ready or its own wake-up time
 * (keep alive, reconnect backoff, next reading, a retry) has come. One
 * thread, no locks: 10,000 libmoat threads would cost 10,000 stacks and
 * context switches for clients that are idle 99 % of the time.
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
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "base/clock.h"

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

static void tamper_by_id(struct sim *s, const char *id)
{
	size_t i;

	for (i = 0; i < s->n; i++)
		if (strcmp(s->devs[i].id, id) == 0) {
			dev_request_tamper(&s->devs[i]);
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

/* Builds the poll set (slot 0: control socket) and returns the poll timeout. */
static int poll_set(struct sim *s, struct pollfd *pf, uint64_t now)
{
	uint64_t wake = now + 1000;
	size_t i;

	pf[0] = (struct pollfd){.fd = s->ctl_fd, .events = POLLIN};
	for (i = 0; i < s->n; i++) {
		struct dev *d = &s->devs[i];
		int fd = d->started ? moat_socket(d->c) : -1;

		pf[i + 1] = (struct pollfd){
		    .fd = fd,
		    .events = (short)(POLLIN | (fd >= 0 && moat_want_write(d->c) ? POLLOUT : 0))};
		if (d->started && d->wake_ms < wake)
			wake = d->wake_ms;
	}
	return wake <= now ? 0 : (int)(wake - now);
}

static void loop(struct sim *s, struct pollfd *pf)
{
	uint32_t rate = s->o->connect_rate != 0 ? s->o->connect_rate : 200;
	uint64_t t0 = clock_mono_ms(), now;
	size_t started = 0, i;
	int timeout;

	while (!stop_flag) {
		now = clock_mono_ms();
		/* start connections at <rate> per second */
		while (started < s->n && (now - t0) * rate / 1000 + 1 > started) {
			if (dev_start(&s->devs[started], now) < 0)
				fprintf(stderr, "moat-device: %s: cannot resolve the broker\n",
					s->devs[started].id);
			started++;
		}
		timeout = poll_set(s, pf, now);
		if (started < s->n && timeout > 5)
			timeout = 5;
		if (poll(pf, s->n + 1, timeout) < 0 && errno != EINTR)
			break;
		if (tamper_flag) {
			tamper_flag = 0;
			dev_request_tamper(&s->devs[0]);
		}
		if (pf[0].revents != 0)
			ctl_read(s);
		now = clock_mono_ms();
		for (i = 0; i < s->n; i++)
			if (s->devs[i].started &&
			    (pf[i + 1].revents != 0 || s->devs[i].wake_ms <= now))
				dev_service(&s->devs[i], now);
	}
}

int sim_run(const struct sim_opts *o)
{
	struct sim s = {.o = o, .ctl_fd = -1};
	struct pollfd *pf = NULL;
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
	if (open_devices(&s) == 0 && ctl_open(&s) == 0) {
		pf = calloc(s.n + 1, sizeof(*pf));
		if (pf != NULL) {
			fprintf(stderr, "moat-device: running %zu devices\n", s.n);
			loop(&s, pf);
			rc = 0;
		}
	}
	for (i = 0; i < s.n; i++)
		dev_close(&s.devs[i]);
	free(s.devs);
	free(pf);
	if (s.ctl_fd >= 0) {
		close(s.ctl_fd);
		unlink(s.ctl_path);
	}
	OPENSSL_cleanse(s.signer_pub, sizeof(s.signer_pub));
	return rc;
}
