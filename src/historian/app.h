/*
 * moat-historian's shared state: the options, the API's storage handle
 * (one, under a lock: HTTP threads take turns), users, sessions, the SSE
 * hub, the command queue and the counters /metrics reports. The MQTT
 * thread (ingest.c) owns a storage handle of its own.
 */
#ifndef MOAT_HISTORIAN_APP_H
#define MOAT_HISTORIAN_APP_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "historian/cmdq.h"
#include "historian/db.h"

struct login_limit;
struct passwd_db;
struct sessions;
struct sse_hub;

struct hist_opts {
	const char *broker_host;
	uint16_t broker_port;
	const char *cafile, *certfile, *keyfile; /* TLS to the broker when cafile is set */
	const char *username, *password_file;	 /* optional broker login */
	const char *bundle_dir, *db_url, *state_dir;
	const char *http_addr; /* ADDR:PORT */
	const char *users_file, *web_root, *tls_cert, *tls_key;
	unsigned command_timeout_s;
};

struct hist_app {
	struct hist_opts o;
	struct hist_db *api_db;
	pthread_mutex_t api_lock;
	struct passwd_db *users;
	struct sessions *sessions;
	struct login_limit *logins; /* failed-login back-off */
	struct sse_hub *sse;
	struct cmdq cmds;
	atomic_bool mqtt_connected;
	atomic_uint_fast64_t readings_stored;
	atomic_uint_fast64_t commands[4]; /* by enum hist_cmd_status, as finished */
	atomic_bool stop;
};

/* Milliseconds since the Unix epoch. */
int64_t hist_now_ms(void);

#endif
