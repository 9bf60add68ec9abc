/*
 * moatd: command line, configuration and start-up (daemon, pid file, log
 * settings, and reloading the latter on SIGHUP). Everything else lives in
 * the broker library so tests link what ships.
 */
#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <moat/error.h>

#include "base/log.h"
#include "broker/audit.h"
#include "broker/broker.h"
#include "broker/daemon.h"
#include "broker/persist.h"
#include "broker/pidfile.h"
#include "conf/config.h"

/* What the start-up hooks need beyond the configuration. */
static struct {
	bool verbose;
	int ready_fd; /* -d: the waiting parent's pipe; -1 otherwise */
	bool pid_written;
} run = {.ready_fd = -1};

static void usage(FILE *out)
{
	fprintf(out, "Usage: moatd [-c FILE] [-p PORT] [-d] [-v] [-h] [--check-store | --repair-store]\n"
		     "  -c FILE  read a mosquitto-compatible configuration file\n"
		     "  -p PORT  listen on PORT (on 127.0.0.1 unless the file says otherwise)\n"
		     "  -d       run in the background once listening (--daemon)\n"
		     "  -v       verbose logging (all log types)\n"
		     "  -h       this help\n"
		     "  --check-store   read every record of the persistence store, list damaged ones, exit\n"
		     "  --repair-store  delete the damaged records (each is listed), exit\n"
		     "With no configuration file moatd listens on 127.0.0.1:1883 only.\n");
}

/* Applies <cfg>'s log settings (-v: every type); until a daemon is ready,
 * its start-up errors reach the terminal too. MOAT_OK or MOAT_E_IO. */
static int apply_log_settings(const struct moat_config *cfg)
{
	unsigned dests = cfg->log_dest | (run.ready_fd >= 0 ? LOG_D_STDERR : 0u);
	int rc = log_configure(run.verbose ? LOG_T_ALL : cfg->log_type, dests, cfg->log_file);

	if (rc == MOAT_OK)
		log_set_format((enum log_format)cfg->log_format);
	return rc;
}

/* server_run's on_ready: the listeners are open; the pid file names the
 * process that serves, and a daemon lets its parent go. */
static int on_ready(struct broker *b)
{
	const char *pid_file = b->cfg->pid_file;

	if (pid_file != NULL) {
		if (pidfile_write(pid_file) < 0) {
			log_err("pid_file %s: %s; check that its directory exists and is writable",
				pid_file, strerror(errno));
			return MOAT_E_IO;
		}
		run.pid_written = true;
	}
	if (run.ready_fd >= 0) {
		int rc = daemon_ready(run.ready_fd);

		run.ready_fd = -1;
		if (rc < 0) {
			log_err("cannot detach from the terminal: %s", strerror(errno));
			return rc;
		}
		if (apply_log_settings(b->cfg) <
		    0) /* the terminal is gone: only the configured log */
			return MOAT_E_IO;
	}
	return MOAT_OK;
}

/* server_run's on_reload (SIGHUP): log_type, log_dest (the log file is
 * opened again, for logrotate) and log_format from the file read again.
 * Everything else in the file takes effect at the next start. */
static void on_reload(struct broker *b)
{
	struct moat_config fresh;
	struct moat_diag diag = {0};

	if (b->cfg->path == NULL)
		return;
	config_defaults(&fresh);
	if (config_load(&fresh, b->cfg->path, &diag) < 0)
		log_err("reload: %s; keeping the log settings", diag.msg);
	else if (apply_log_settings(&fresh) < 0)
		log_err("reload: log_dest file %s: %s; keeping the log settings", fresh.log_file,
			strerror(errno));
	config_fini(&fresh);
}

/* The listener when neither the file nor -p gives one, or -p's port. */
static int choose_listener(struct moat_config *cfg, long port)
{
	if (port > 0) {
		if (cfg->listeners == NULL)
			return config_add_listener(cfg, "127.0.0.1", (uint16_t)port);
		cfg->listeners->port = (uint16_t)port;
		return MOAT_OK;
	}
	if (cfg->listeners != NULL)
		return MOAT_OK;
	fprintf(stderr, "moatd: no listener configured: listening on 127.0.0.1:1883 only (local "
			"clients); add \"listener 1883\" to accept others\n");
	return config_add_listener(cfg, "127.0.0.1", 1883);
}

/* Checks the pid file and, with -d, goes to the background. 0 to go on,
 * else the exit status. */
static int prepare_process(const struct moat_config *cfg, bool daemonize)
{
	char err[600];
	long pid = 0;

	if (cfg->pid_file != NULL && pidfile_check(cfg->pid_file, &pid, err, sizeof(err)) < 0) {
		fprintf(stderr, "moatd: %s\n", err);
		return 1;
	}
	if (!daemonize)
		return 0;
	if ((cfg->log_dest & (LOG_D_FILE | LOG_D_SYSLOG)) == 0)
		fprintf(stderr, "moatd: -d: logs go to /dev/null once moatd is in the background; "
				"set \"log_dest syslog\" or \"log_dest file PATH\"\n");
	if (daemon_start(&run.ready_fd) < 0) {
		fprintf(stderr, "moatd: cannot go to the background: %s\n", strerror(errno));
		return 1;
	}
	if (apply_log_settings(cfg) < 0) { /* now with stderr until ready */
		fprintf(stderr, "moatd: cannot set up logging: %s\n", strerror(errno));
		return 1;
	}
	return 0;
}

int main(int argc, char **argv)
{
	static const struct option long_opts[] = {
	    {"daemon", no_argument, NULL, 'd'},
	    {"check-store", no_argument, NULL, 'K'},
	    {"repair-store", no_argument, NULL, 'R'},
	    {NULL, 0, NULL, 0},
	};
	struct moat_config cfg;
	struct moat_diag diag = {0};
	struct broker b;
	const char *conf_path = NULL;
	long port = -1;
	bool daemonize = false;
	int check_store = 0; /* 1 check, 2 repair */
	sigset_t stop_signals;
	int opt, rc;

	/* blocked from the start, so a SIGHUP during start-up waits for
	 * server_run's sigwaitinfo() instead of killing the process */
	sigemptyset(&stop_signals);
	sigaddset(&stop_signals, SIGTERM);
	sigaddset(&stop_signals, SIGINT);
	sigaddset(&stop_signals, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &stop_signals, NULL);

	while ((opt = getopt_long(argc, argv, "c:p:vhd", long_opts, NULL)) != -1) {
		switch (opt) {
		case 'c':
			conf_path = optarg;
			break;
		case 'p': {
			char *end;

			port = strtol(optarg, &end, 10);
			if (*end != '\0' || port < 1 || port > 65535) {
				fprintf(stderr,
					"moatd: -p expects a port from 1 to 65535, got \"%s\"\n",
					optarg);
				return 1;
			}
			break;
		}
		case 'v':
			run.verbose = true;
			break;
		case 'h':
			usage(stdout);
			return 0;
		case 'K':
			check_store = 1;
			break;
		case 'R':
			check_store = 2;
			break;
		case 'd':
			daemonize = true;
			break;
		default:
			usage(stderr);
			return 1;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "moatd: unexpected argument \"%s\"\n", argv[optind]);
		usage(stderr);
		return 1;
	}
	config_defaults(&cfg);
	if (conf_path != NULL) {
		rc = config_load(&cfg, conf_path, &diag);
		if (rc < 0) {
			fprintf(stderr, "moatd: %s\n", diag.msg);
			config_fini(&cfg);
			return 1;
		}
	}
	if (check_store != 0) {
		rc = persist_check(&cfg, check_store == 2);
		config_fini(&cfg);
		return rc;
	}
	rc = choose_listener(&cfg, port);
	if (rc < 0 || apply_log_settings(&cfg) < 0) {
		fprintf(stderr, "moatd: cannot set up logging or listeners: %s\n",
			rc < 0 ? moat_strerror(rc) : strerror(errno));
		config_fini(&cfg);
		return 1;
	}
	rc = prepare_process(&cfg, daemonize);
	if (rc != 0) {
		config_fini(&cfg);
		return rc;
	}
	log_notice("moatd %s starting", MOAT_VERSION);
	if (audit_open(&cfg) < 0) {
		log_err("audit_log file %s: %s", cfg.audit_file, strerror(errno));
		config_fini(&cfg);
		return 1;
	}
	rc = broker_init(&b, &cfg);
	if (rc == MOAT_OK) {
		b.on_ready = on_ready;
		b.on_reload = on_reload;
		rc = server_run(&b);
		broker_shutdown_flush(&b);
	}
	broker_fini(&b);
	if (run.pid_written)
		pidfile_remove(cfg.pid_file);
	audit_close();
	config_fini(&cfg);
	if (rc == MOAT_OK)
		log_notice("moatd stopped");
	return rc == MOAT_OK ? 0 : 1;
}
