/*
 * The `moat` command: sub-command entry points and the options that
 * `moat pub` and `moat sub` share (mosquitto_pub/mosquitto_sub's flags).
 */
#ifndef MOAT_CLI_CLI_H
#define MOAT_CLI_CLI_H

#include <stdbool.h>
#include <stdint.h>

#include <moat/client.h>
#include <moat/e2e.h>

int cli_pub_main(int argc, char **argv);
int cli_sub_main(int argc, char **argv);
/* `moat passwd`: mosquitto_passwd's flags; returns the exit code (0 ok, 1 error). */
int cli_passwd_main(int argc, char **argv);
/* `moat ctl`: the Security Center's admin channel (ctl.c); the exit code. */
int cli_ctl_main(int argc, char **argv);

#define CLI_MAX_TOPICS 64
#define CLI_MAX_USER_PROPS 32

/* Options shared by pub and sub, plus the ones only one of them reads. */
struct cli_opts {
	struct moat_client_opts client;
	const char *id_prefix;
	bool debug;
	uint8_t qos;
	bool retain;
	const char *topics[CLI_MAX_TOPICS];
	int topic_count;
	/* pub */
	const char *message, *file;
	bool null_msg, stdin_line, stdin_file;
	struct moat_pub_props pub_props;
	struct moat_user_prop user[CLI_MAX_USER_PROPS];
	long repeat, interval_ms, ack_timeout_s;	/* repeat -1: no --repeat; timeout 0: none */
	/* sub */
	const char *filter_out[CLI_MAX_TOPICS];
	int filter_out_count;
	const char *unsub[CLI_MAX_TOPICS];
	int unsub_count;
	bool verbose, no_newline, no_stale_retained, no_local, rap;
	uint8_t retain_handling;
	uint32_t sub_id;
	long count, timeout_s;
	const char *format;
	/* --e2e BUNDLE (e2e_cli.c): payloads sealed/opened with libmoat's e2e API */
	const char *e2e_bundle;
	bool host_set, port_set;
	struct moat_e2e *e2e;
};

/*
 * Parses argv[1..] into <o>. <is_sub> selects which command-only flags are
 * known. Returns 0, or 1 after printing an error (exit code 1, like mosquitto),
 * or 2 when --help was printed (exit code 0).
 */
int cli_parse(int argc, char **argv, bool is_sub, struct cli_opts *o);

/* Creates the client, connects and waits for CONNACK. NULL after printing an error. */
struct moat_client *cli_connect(struct cli_opts *o, const struct moat_callbacks *cb);

/*
 * e2e_cli.c. With --e2e: opens the bundle into o->e2e and takes the client
 * id, and host and port unless -h/-p were given, from it; an mqtts:// broker
 * turns on TLS with the bundle's ca.pem (and cert.pem/key.pem when both
 * exist) unless TLS options were given. 0, or 1 after printing an error.
 * Without --e2e: 0 and nothing happens.
 */
int cli_e2e_prepare(struct cli_opts *o);

/* Attaches o->e2e (if any) to <c>; 0, or 1 after printing an error. */
int cli_e2e_attach(struct cli_opts *o, struct moat_client *c);

/* Frees o->e2e; call after the client is destroyed. */
void cli_e2e_finish(struct cli_opts *o);

#endif
