/*
 * moatd: command line, configuration and start-up. Everything else lives in
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
#include "broker/persist.h"
#include "conf/config.h"

static void usage(FILE *out)
{
	fprintf(out,
		"Usage: moatd [-c FILE] [-p PORT] [-v] [-h] [--check-store | --repair-store]\n"
		"  -c FILE  read a mosquitto-compatible configuration file\n"
		"  -p PORT  listen on PORT (on 127.0.0.1 unless the file says otherwise)\n"
		"  -v       verbose logging (all log types)\n"
		"  -h       this help\n"
		"  --check-store   read every record of the persistence store, list damaged ones, exit\n"
		"  --repair-store  delete the damaged records (each is listed), exit\n"
		"With no configuration file moatd listens on 127.0.0.1:1883 only.\n");
}

int main(int argc, char **argv)
{
	struct moat_config cfg;
	struct moat_diag diag = { 0 };
	struct broker b;
	const char *conf_path = NULL;
	long port = -1;
	bool verbose = false;
	int check_store = 0;	/* 1 check, 2 repair */
	static const struct option long_opts[] = {
		{ "check-store", no_argument, NULL, 'K' },
		{ "repair-store", no_argument, NULL, 'R' },
		{ NULL, 0, NULL, 0 },
	};
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
		case 'K': check_store = 1; break;
		case 'R': check_store = 2; break;
		case 'c': conf_path = optarg; break;
		case 'p': {
			char *end;

			port = strtol(optarg, &end, 10);
			if (*end != '\0' || port < 1 || port > 65535) {
				fprintf(stderr, "moatd: -p expects a port from 1 to 65535, got \"%s\"\n", optarg);
				return 1;
			}
			break;
		}
		case 'v': verbose = true; break;
		case 'h': usage(stdout); return 0;
		case 'd':
			fprintf(stderr, "moatd: -d (daemonize) is not supported yet; run it under a service manager\n");
			return 1;
		default: usage(stderr); return 1;
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
	if (port > 0) {
		if (cfg.listeners == NULL)
			rc = config_add_listener(&cfg, "127.0.0.1", (uint16_t)port);
		else {
			cfg.listeners->port = (uint16_t)port;
			rc = MOAT_OK;
		}
	} else if (cfg.listeners == NULL) {
		rc = config_add_listener(&cfg, "127.0.0.1", 1883);
		fprintf(stderr, "moatd: no listener configured: listening on 127.0.0.1:1883 only (local clients); add \"listener 1883\" to accept others\n");
	} else {
		rc = MOAT_OK;
	}
	if (rc < 0 || log_configure(verbose ? LOG_T_ALL : cfg.log_type, cfg.log_dest, cfg.log_file) < 0) {
		fprintf(stderr, "moatd: cannot set up logging or listeners: %s\n", moat_strerror(rc));
		config_fini(&cfg);
		return 1;
	}
	log_notice("moatd %s starting", MOAT_VERSION);
	if (audit_open(&cfg) < 0) {
		log_err("audit_log file %s: %s", cfg.audit_file, strerror(errno));
		config_fini(&cfg);
		return 1;
	}
	rc = broker_init(&b, &cfg);
	if (rc == MOAT_OK)
		rc = server_run(&b);
	broker_fini(&b);
	audit_close();
	config_fini(&cfg);
	return rc == MOAT_OK ? 0 : 1;
}
