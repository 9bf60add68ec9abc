/*
 * moat-historian: options, the storage handles, users, the HTTP server and
 * the MQTT client with the historian's credential bundle; then the ingest
 * loop on this thread until SIGINT or SIGTERM (docs/historian.md).
 */
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "auth/passwd.h"
#include "conf/config.h"
#include "historian/app.h"
#include "historian/http.h"
#include "historian/ingest.h"
#include "historian/loginlimit.h"
#include "historian/session.h"
#include "historian/sse.h"
#include "moat/client.h"
#include "moat/e2e.h"

/* How long moatd keeps the historian's session (and queues its messages)
 * while it is away: a day, so a restart of either side loses no reading. */
#define HIST_SESSION_EXPIRY_S (24U * 3600U)

static struct hist_app app;

int64_t hist_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void on_signal(int sig)
{
	(void)sig;
	atomic_store(&app.stop, true);
}

static void usage(FILE *f)
{
	fprintf(
	    f,
	    "Usage: moat-historian --bundle DIR [--broker HOST:PORT] [--cafile F --cert F "
	    "--key F]\n"
	    "       [--username U --password-file F] [--db URL] [--state DIR] [--http ADDR:PORT]\n"
	    "       [--users FILE] [--web-root DIR (" MOAT_HISTORIAN_WEB_ROOT
	    ")] [--tls-cert F --tls-key F]\n"
	    "       [--command-timeout S]\n");
}

/* "host:port" into the options; false when malformed. */
static bool parse_hostport(const char *s, struct hist_opts *o)
{
	static char host[256];
	const char *colon = strrchr(s, ':');
	char *end;
	long p;

	if (colon == NULL || colon == s || (size_t)(colon - s) >= sizeof(host))
		return false;
	p = strtol(colon + 1, &end, 10);
	if (*end != '\0' || end == colon + 1 || p < 1 || p > 65535)
		return false;
	snprintf(host, sizeof(host), "%.*s", (int)(colon - s), s);
	o->broker_host = host;
	o->broker_port = (uint16_t)p;
	return true;
}

static int parse_args(int argc, char **argv, struct hist_opts *o)
{
	static const struct option longs[] = {
	    {"broker", required_argument, NULL, 'b'},
	    {"cafile", required_argument, NULL, 'A'},
	    {"cert", required_argument, NULL, 'C'},
	    {"key", required_argument, NULL, 'K'},
	    {"username", required_argument, NULL, 'u'},
	    {"password-file", required_argument, NULL, 'P'},
	    {"bundle", required_argument, NULL, 'B'},
	    {"db", required_argument, NULL, 'd'},
	    {"state", required_argument, NULL, 's'},
	    {"http", required_argument, NULL, 'H'},
	    {"users", required_argument, NULL, 'U'},
	    {"web-root", required_argument, NULL, 'w'},
	    {"tls-cert", required_argument, NULL, 'c'},
	    {"tls-key", required_argument, NULL, 'k'},
	    {"command-timeout", required_argument, NULL, 't'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	char *end;
	long v;
	int c;

	o->http_addr = "127.0.0.1:8080";
	o->web_root = MOAT_HISTORIAN_WEB_ROOT;
	o->state_dir = ".";
	o->command_timeout_s = 10;
	while ((c = getopt_long(argc, argv, "h", longs, NULL)) != -1) {
		switch (c) {
		case 'b':
			if (!parse_hostport(optarg, o)) {
				fprintf(stderr, "Error: --broker %s: expected HOST:PORT\n", optarg);
				return 1;
			}
			break;
		case 'A':
			o->cafile = optarg;
			break;
		case 'C':
			o->certfile = optarg;
			break;
		case 'K':
			o->keyfile = optarg;
			break;
		case 'u':
			o->username = optarg;
			break;
		case 'P':
			o->password_file = optarg;
			break;
		case 'B':
			o->bundle_dir = optarg;
			break;
		case 'd':
			o->db_url = optarg;
			break;
		case 's':
			o->state_dir = optarg;
			break;
		case 'H':
			o->http_addr = optarg;
			break;
		case 'U':
			o->users_file = optarg;
			break;
		case 'w':
			o->web_root = optarg;
			break;
		case 'c':
			o->tls_cert = optarg;
			break;
		case 'k':
			o->tls_key = optarg;
			break;
		case 't':
			v = strtol(optarg, &end, 10);
			if (*end != '\0' || v < 1 || v > 300) {
				fprintf(stderr, "Error: --command-timeout %s: expected 1..300 s\n",
					optarg);
				return 1;
			}
			o->command_timeout_s = (unsigned)v;
			break;
		case 'h':
			usage(stdout);
			exit(0);
		default:
			usage(stderr);
			return 1;
		}
	}
	if (optind != argc || o->bundle_dir == NULL) {
		usage(stderr);
		return 1;
	}
	if ((o->certfile != NULL || o->keyfile != NULL) && o->cafile == NULL) {
		fprintf(stderr, "Error: --cert/--key need --cafile (TLS to the broker)\n");
		return 1;
	}
	return 0;
}

/* The broker address from --broker, else the bundle's mqtt://host:port. */
static bool broker_from_bundle(struct moat_e2e *e2e, struct hist_opts *o)
{
	const char *url = moat_e2e_broker(e2e);

	if (o->broker_host != NULL)
		return true;
	if (strncmp(url, "mqtt://", 7) == 0)
		return parse_hostport(url + 7, o);
	if (strncmp(url, "mqtts://", 8) == 0 && o->cafile != NULL)
		return parse_hostport(url + 8, o);
	return false;
}

static int open_storage(struct hist_db **ingest_db, struct moat_diag *diag)
{
	static char url[1024];

	if (app.o.db_url == NULL) {
		snprintf(url, sizeof(url), "sqlite:%s/historian.db", app.o.state_dir);
		app.o.db_url = url;
	}
	if (hist_db_open(ingest_db, app.o.db_url, diag) < 0 ||
	    hist_db_open(&app.api_db, app.o.db_url, diag) < 0)
		return 1;
	return 0;
}

/* The broker password: the first line of --password-file, in *<out> (malloc'd). */
static int read_password(char **out, struct moat_diag *diag)
{
	size_t len;
	int rc = conf_read_file(app.o.password_file, 4096, out, &len, diag);

	if (rc < 0)
		return rc;
	(*out)[strcspn(*out, "\r\n")] = '\0';
	return MOAT_OK;
}

static int run(struct moat_e2e *e2e)
{
	struct moat_client_opts co = {0};
	struct moat_callbacks cb;
	struct moat_client *c = NULL;
	struct MHD_Daemon *httpd = NULL;
	struct hist_db *ingest_db = NULL;
	struct ingest *in = NULL;
	struct moat_diag diag = {{0}};
	char err[512] = "";
	char *password = NULL;
	bool cmds_open = false;
	int status = 1;

	if (open_storage(&ingest_db, &diag) != 0) {
		fprintf(stderr, "Error: --db: %s\n", diag.msg);
		goto out;
	}
	if (app.o.users_file != NULL && passwd_db_load(&app.users, app.o.users_file, &diag) < 0) {
		fprintf(stderr, "Error: --users: %s\n", diag.msg);
		goto out;
	}
	app.sessions = sessions_create();
	app.logins = login_limit_create();
	app.sse = sse_hub_create();
	in = ingest_create(&app, ingest_db, e2e);
	if (app.sessions == NULL || app.logins == NULL || app.sse == NULL || in == NULL) {
		fprintf(stderr, "Error: out of memory\n");
		goto out;
	}
	if (cmdq_init(&app.cmds) < 0) {
		fprintf(stderr, "Error: cannot make the command queue's pipe\n");
		goto out;
	}
	cmds_open = true;
	if (app.o.password_file != NULL && read_password(&password, &diag) < 0) {
		fprintf(stderr, "Error: --password-file: %s\n", diag.msg);
		goto out;
	}
	co.host = app.o.broker_host;
	co.port = app.o.broker_port;
	co.client_id = moat_e2e_client_id(e2e);
	co.username = app.o.username;
	co.password = password;
	co.version = 5;
	/* a kept session: what arrives while the historian reconnects (after a
	 * broker restart the devices may drain their queues first) waits for it */
	co.clean_start = false;
	co.session_expiry_s = HIST_SESSION_EXPIRY_S;
	co.auto_reconnect = true;
	co.tls = app.o.cafile != NULL;
	co.cafile = app.o.cafile;
	co.certfile = app.o.certfile;
	co.keyfile = app.o.keyfile;
	ingest_callbacks(in, &cb);
	if (moat_client_open(&c, &co, &cb, err, sizeof(err)) < 0 || moat_e2e_attach(e2e, c) < 0) {
		fprintf(stderr, "Error: MQTT client: %s\n", err[0] != '\0' ? err : "bad options");
		goto out;
	}
	if (http_start(&app, &httpd, &diag) < 0) {
		fprintf(stderr, "Error: %s\n", diag.msg);
		goto out;
	}
	if (moat_connect(c) < 0) {
		fprintf(stderr, "Error: cannot resolve %s\n", co.host);
		goto out;
	}
	fprintf(stderr, "moat-historian: %s storage, HTTP on %s, broker %s:%u as %s\n",
		hist_db_backend(app.api_db), app.o.http_addr, co.host, co.port, co.client_id);
	ingest_run(in, c);
	moat_disconnect(c, 0);
	status = 0;
out:
	if (app.sse != NULL)
		sse_hub_close(app.sse);
	http_stop(httpd);
	if (c != NULL)
		moat_e2e_attach(e2e, NULL);
	moat_client_destroy(c);
	ingest_destroy(in);
	hist_db_close(ingest_db);
	if (cmds_open)
		cmdq_fini(&app.cmds);
	if (password != NULL) {
		explicit_bzero(password, strlen(password));
		free(password);
	}
	return status;
}

int main(int argc, char **argv)
{
	struct moat_e2e *e2e = NULL;
	struct sigaction sa = {.sa_handler = on_signal};
	char diag[512] = "";
	int status;

	if (parse_args(argc, argv, &app.o) != 0)
		return 2;
	signal(SIGPIPE, SIG_IGN);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	pthread_mutex_init(&app.api_lock, NULL);
	if (moat_e2e_open_bundle(&e2e, app.o.bundle_dir, diag, sizeof(diag)) < 0) {
		fprintf(stderr, "Error: --bundle %s: %s\n", app.o.bundle_dir, diag);
		return 1;
	}
	if (diag[0] != '\0')
		fprintf(stderr, "Warning: %s\n", diag);
	if (!broker_from_bundle(e2e, &app.o)) {
		fprintf(stderr,
			"Error: give --broker HOST:PORT (the bundle's broker \"%s\" is not "
			"mqtt://host:port, or mqtts:// without --cafile)\n",
			moat_e2e_broker(e2e));
		moat_e2e_destroy(e2e);
		return 1;
	}
	status = run(e2e);
	moat_e2e_destroy(e2e);
	hist_db_close(app.api_db);
	passwd_db_destroy(app.users);
	sessions_destroy(app.sessions);
	login_limit_destroy(app.logins);
	sse_hub_destroy(app.sse);
	return status;
}
