/*
 * moat-device: many simulated devices in one process (docs/device.md).
 * Each device is a libmoat client (mutual TLS from its credential bundle,
 * durable queue file, Last Will) with, unless plain, the bundle's
 * end-to-end context; all of them run on the calling thread, driven by one
 * epoll set over their sockets and a heap of their wake-up times (sim.c).
 * dev.c is one device's behaviour.
 */
#ifndef MOAT_DEVICE_SIM_H
#define MOAT_DEVICE_SIM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/epoll.h>

#include <moat/client.h>
#include <moat/e2e.h>

#include "device/command.h"
#include "device/reading.h"
#include "device/wake_heap.h"

struct sim_opts {
	const char *bundles;	 /* directory of bundle directories */
	size_t count;		 /* devices at most (default 10) */
	uint32_t interval_ms;	 /* between readings (default 5000) */
	const char *broker_host; /* NULL: each bundle's URL */
	uint16_t broker_port;
	const char *queue_dir;	    /* NULL: <bundle>/state/queue */
	uint32_t drain_rate;	    /* messages/s after a reconnect; 0 = no limit */
	const char *command_signer; /* PEM Ed25519 public key file, or NULL */
	bool plain;		    /* no e2e: payloads are not sealed */
	bool has_seed;
	uint64_t seed;
	uint32_t connect_rate; /* connections started per second (default 200) */
};

/* One queued plaintext, published (sealed unless plain) in order. */
struct dev_msg {
	struct dev_msg *next;
	uint8_t kind; /* enum dev_topic */
	size_t len;
	char text[];
};

enum dev_topic { DEV_TELEMETRY = 0, DEV_STATUS = 1 };

struct dev {
	struct sim *sim;
	size_t index;
	char id[129];
	char *dir;
	struct moat_e2e *e2e; /* NULL when plain */
	struct moat_client *c;
	uint8_t sign_seed[32];
	bool has_sign_seed;
	char topic[4][160]; /* telemetry, status, cmd, online */
	struct sensor sensor;
	bool relay_on;
	uint64_t seq;
	uint64_t next_reading_ms;
	bool just_connected, tamper;
	bool online_once;		     /* connected at least once: readings are being taken */
	struct dev_msg *out_head, *out_tail; /* waiting to be sealed / queued */
	size_t out_count;
	struct dev_msg *in_head, *in_tail; /* commands waiting to be opened */
	size_t in_count;
	struct cmd_seen seen;
	/* the loop's bookkeeping (sim.c) */
	int watched_fd; /* the socket in the epoll set, or -1 */
	bool due;	/* to be serviced in this turn */
};

struct sim {
	const struct sim_opts *o;
	struct dev *devs;
	size_t n;
	bool have_signer;
	uint8_t signer_pub[32];
	int ctl_fd; /* the control socket (tamper), or -1 */
	char ctl_path[4096];
	int epoll_fd;		    /* the control socket and every device's socket */
	struct epoll_event *events; /* n + 1: what one epoll_wait returns */
	struct wake_heap wakes;	    /* the started devices' wake-up times */
	size_t *todo;		    /* the devices to service in this turn */
};

enum { DEV_TOPIC_CMD = 2, DEV_TOPIC_ONLINE = 3 };

/*
 * Opens the device of bundle directory <dir> (index <index> in <s>): the
 * e2e context (unless plain), the sign key, the client with TLS, queue
 * file and will. Not connected yet. MOAT_OK, or an error with one line in
 * <diag>.
 */
int dev_open(struct dev *d, struct sim *s, size_t index, const char *dir, char *diag,
	     size_t diag_len);

/* Starts connecting; the first reading comes after the first connection (dev_service). */
int dev_start(struct dev *d);

/* Runs the device at <now_ms>: its client (non-blocking), the commands
 * received, the readings due, the queued messages. Returns when it must run
 * again at the latest (sooner when its socket is ready). */
uint64_t dev_service(struct dev *d, uint64_t now_ms);

/* Asks for a signed tamper alert on alerts/<id>/tamper (sent by the next dev_service). */
void dev_request_tamper(struct dev *d);

/* Sends DISCONNECT (no will) when connected, and frees everything. */
void dev_close(struct dev *d);

/* Splits "HOST:PORT" (port 1..65535) into <host> (<host_len> bytes) and <port>; false when it is
 * not one. */
bool sim_split_hostport(const char *s, char *host, size_t host_len, uint16_t *port);

/* Runs the devices of o->bundles until SIGINT/SIGTERM. Returns the exit status. */
int sim_run(const struct sim_opts *o);

/* Sends "tamper <id>" to the moat-device running on <bundles>. Exit status. */
int sim_send_tamper(const char *bundles, const char *id);

#endif
