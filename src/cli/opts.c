/*
 * Option parsing shared by `moat pub` and `moat sub`, with mosquitto's flag
 * names so existing scripts keep working, and the connect-and-wait helper.
 */
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"

static void usage(bool is_sub)
{
	printf("Usage: moat %s [options]\n", is_sub ? "sub" : "pub");
	printf("  -h HOST          broker host (default localhost)\n"
	       "  -p PORT          broker port (default 1883; 8883 with TLS)\n"
	       "  -i ID            client id; -I PREFIX: prefix-<pid>\n"
	       "  -u USER -P PASS  user name and password\n"
	       "  --scram          prove the password with SCRAM-SHA-256 (MQTT 5 AUTH) instead of sending it\n"
	       "  --cafile FILE    TLS: trust the CAs in FILE (PEM) for the broker's certificate\n"
	       "  --cert FILE --key FILE   TLS: client certificate and key (PEM) for mutual TLS;\n"
	       "                   any of the three turns TLS on (no --cafile: the system's CAs)\n"
	       "  --insecure       TLS: do not check that the certificate names the host (the\n"
	       "                   chain is still verified)\n"
	       "  -k SECONDS       keep alive (default 60)\n"
	       "  -V 311|5         protocol version (mqttv311 and mqttv5 also accepted; default 5)\n"
	       "  -q 0|1|2         QoS\n"
	       "  -c               persistent session (clean start off); -x SECONDS session expiry (v5)\n"
	       "  -t TOPIC         topic (sub: repeatable filter)\n"
	       "  -d               debug output\n"
	       "  --e2e BUNDLE     end-to-end: %s with the group keys of the device credential\n"
	       "                   bundle directory BUNDLE (client id and broker from it unless -i/-h/-p)\n"
	       "  --will-topic T --will-payload P --will-qos Q --will-retain\n"
	       "  -D CMD PROP VAL  v5 property, e.g. -D publish user-property k v,\n"
	       "                   -D publish message-expiry-interval 30, -D connect session-expiry-interval 60\n",
	       is_sub ? "open payloads" : "seal the payload");
	if (is_sub)
		printf("  -v               print the topic before each payload\n"
		       "  -C N             exit after N messages; -W SECONDS exit 27 after that long\n"
		       "  -R               skip retained messages older than the subscription\n"
		       "  -N               no newline after the payload\n"
		       "  -T FILTER        do not print topics matching FILTER (repeatable)\n"
		       "  -U FILTER        unsubscribe from FILTER (repeatable)\n"
		       "  -F FORMAT        %%t topic %%p payload %%q qos %%r retain %%l length %%%% percent; \\n \\t\n"
		       "  --nl --rap --retain-handling 0|1|2   v5 subscription options\n");
	else
		printf("  -m MSG           message; -f FILE whole file; -n empty message\n"
		       "  -l               one message per line of standard input; -s all of standard input\n"
		       "  -r               retain\n"
		       "  --repeat N       publish N messages \"MSG i\" (i = 1..N; MSG from -m, default \"msg\");\n"
		       "                   --repeat 0 only sends what the queue file holds\n"
		       "  --interval-ms M  wait M ms between --repeat messages (default 0)\n"
		       "  --queue-file F   keep QoS 1/2 messages in F until acknowledged (survives a\n"
		       "                   restart; needs -i ID); reconnects automatically\n"
		       "  --queue-overflow drop-oldest|refuse-new   when the queue is full (default refuse-new:\n"
		       "                   wait for acknowledgements)\n"
		       "  --drain-rate N   send the backlog at most N messages/s after a reconnect\n"
		       "  --ack-timeout S  give up (exit 1) when messages are unacknowledged S s after the last publish\n");
}

static int bad(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int bad(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "Error: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\nUse --help to see usage.\n");
	return 1;
}

static bool parse_long(const char *s, long min, long max, long *out)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno != 0 || end == s || *end != '\0' || v < min || v > max)
		return false;
	*out = v;
	return true;
}

static int parse_property(struct cli_opts *o, char **argv, int *i, int argc)
{
	const char *cmd, *prop;
	long v;

	/* the caller checked that a command, a property and one value follow */
	cmd = argv[++*i];
	prop = argv[++*i];
	if (strcmp(prop, "user-property") == 0) {
		size_t n = o->pub_props.user_count;

		if (*i + 2 >= argc)
			return bad("user-property needs a key and a value");
		if (n == CLI_MAX_USER_PROPS)
			return bad("too many user properties");
		o->user[n].key = argv[++*i];
		o->user[n].value = argv[++*i];
		o->pub_props.user = o->user;
		o->pub_props.user_count = n + 1;
		return 0;
	}
	const char *val = argv[++*i];
	if (strcmp(cmd, "publish") == 0 && strcmp(prop, "message-expiry-interval") == 0 &&
	    parse_long(val, 0, UINT32_MAX, &v)) {
		o->pub_props.has_message_expiry = true;
		o->pub_props.message_expiry_s = (uint32_t)v;
	} else if (strcmp(cmd, "publish") == 0 && strcmp(prop, "payload-format-indicator") == 0 &&
		   parse_long(val, 0, 1, &v)) {
		o->pub_props.has_payload_format = true;
		o->pub_props.payload_format = (uint8_t)v;
	} else if (strcmp(cmd, "publish") == 0 && strcmp(prop, "content-type") == 0) {
		o->pub_props.content_type = val;
	} else if (strcmp(cmd, "publish") == 0 && strcmp(prop, "response-topic") == 0) {
		o->pub_props.response_topic = val;
	} else if (strcmp(cmd, "publish") == 0 && strcmp(prop, "correlation-data") == 0) {
		o->pub_props.correlation_data = val;
		o->pub_props.correlation_len = strlen(val);
	} else if (strcmp(cmd, "connect") == 0 && strcmp(prop, "session-expiry-interval") == 0 &&
		   parse_long(val, 0, UINT32_MAX, &v)) {
		o->client.session_expiry_s = (uint32_t)v;
	} else if (strcmp(cmd, "connect") == 0 && strcmp(prop, "receive-maximum") == 0 &&
		   parse_long(val, 1, 65535, &v)) {
		o->client.receive_max = (uint16_t)v;
	} else if (strcmp(cmd, "subscribe") == 0 && strcmp(prop, "subscription-identifier") == 0 &&
		   parse_long(val, 1, 268435455, &v)) {
		o->sub_id = (uint32_t)v;
	} else if (strcmp(cmd, "will") == 0 && strcmp(prop, "will-delay-interval") == 0 &&
		   parse_long(val, 0, UINT32_MAX, &v)) {
		o->client.will_delay_s = (uint32_t)v;
	} else {
		return bad("unsupported or invalid -D property \"%s\"", prop);
	}
	return 0;
}

int cli_parse(int argc, char **argv, bool is_sub, struct cli_opts *o)
{
	long v;

	memset(o, 0, sizeof(*o));
	o->client.keep_alive_s = 60;
	o->client.clean_start = true;
	o->client.version = 5;
	o->client.host = "localhost";
	o->client.port = 0; /* 1883, or 8883 with TLS: set after the loop */
	o->count = -1;
	o->repeat = -1;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		bool has_arg = i + 1 < argc;
		const char *arg = has_arg ? argv[i + 1] : NULL;

#define NEED_ARG()                                                         \
	do {                                                               \
		if (!has_arg)                                              \
			return bad("option %s needs a value", a);          \
		i++;                                                       \
	} while (0)
		if (strcmp(a, "--help") == 0) {
			usage(is_sub);
			return 2;
		} else if (strcmp(a, "-h") == 0 || strcmp(a, "--host") == 0) {
			NEED_ARG();
			o->client.host = arg;
			o->host_set = true;
		} else if (strcmp(a, "-p") == 0 || strcmp(a, "--port") == 0) {
			NEED_ARG();
			if (!parse_long(arg, 1, 65535, &v))
				return bad("invalid port \"%s\"", arg);
			o->client.port = (uint16_t)v;
			o->port_set = true;
		} else if (strcmp(a, "--e2e") == 0) {
			NEED_ARG();
			o->e2e_bundle = arg;
		} else if (strcmp(a, "-i") == 0 || strcmp(a, "--id") == 0) {
			NEED_ARG();
			o->client.client_id = arg;
		} else if (strcmp(a, "-I") == 0 || strcmp(a, "--id-prefix") == 0) {
			NEED_ARG();
			o->id_prefix = arg;
		} else if (strcmp(a, "-u") == 0 || strcmp(a, "--username") == 0) {
			NEED_ARG();
			o->client.username = arg;
		} else if (strcmp(a, "-P") == 0 || strcmp(a, "--pw") == 0) {
			NEED_ARG();
			o->client.password = arg;
		} else if (strcmp(a, "--cafile") == 0) {
			NEED_ARG();
			o->client.cafile = arg;
			o->client.tls = true;
		} else if (strcmp(a, "--cert") == 0) {
			NEED_ARG();
			o->client.certfile = arg;
			o->client.tls = true;
		} else if (strcmp(a, "--key") == 0) {
			NEED_ARG();
			o->client.keyfile = arg;
			o->client.tls = true;
		} else if (strcmp(a, "--insecure") == 0) {
			o->client.tls_insecure = true;
		} else if (strcmp(a, "--scram") == 0) {
			o->client.scram = true;
		} else if (strcmp(a, "-k") == 0 || strcmp(a, "--keepalive") == 0) {
			NEED_ARG();
			if (!parse_long(arg, 0, 65535, &v))
				return bad("invalid keep alive \"%s\"", arg);
			o->client.keep_alive_s = (uint16_t)v;
		} else if (strcmp(a, "-V") == 0 || strcmp(a, "--protocol-version") == 0) {
			NEED_ARG();
			if (strcmp(arg, "5") == 0 || strcmp(arg, "mqttv5") == 0)
				o->client.version = 5;
			else if (strcmp(arg, "311") == 0 || strcmp(arg, "mqttv311") == 0)
				o->client.version = 4;
			else
				return bad("unsupported protocol version \"%s\" (use 311 or 5)", arg);
		} else if (strcmp(a, "-q") == 0 || strcmp(a, "--qos") == 0) {
			NEED_ARG();
			if (!parse_long(arg, 0, 2, &v))
				return bad("QoS must be 0, 1 or 2, got \"%s\"", arg);
			o->qos = (uint8_t)v;
		} else if (strcmp(a, "-t") == 0 || strcmp(a, "--topic") == 0) {
			NEED_ARG();
			if (o->topic_count == CLI_MAX_TOPICS || (!is_sub && o->topic_count == 1))
				return bad("too many topics (%s)", arg);
			o->topics[o->topic_count++] = arg;
		} else if (strcmp(a, "-c") == 0 || strcmp(a, "--disable-clean-session") == 0) {
			o->client.clean_start = false;
		} else if (strcmp(a, "-x") == 0) {
			NEED_ARG();
			if (!parse_long(arg, 0, UINT32_MAX, &v))
				return bad("invalid session expiry \"%s\"", arg);
			o->client.session_expiry_s = (uint32_t)v;
		} else if (strcmp(a, "-d") == 0 || strcmp(a, "--debug") == 0) {
			o->debug = true;
		} else if (strcmp(a, "--will-topic") == 0) {
			NEED_ARG();
			o->client.will_topic = arg;
		} else if (strcmp(a, "--will-payload") == 0) {
			NEED_ARG();
			o->client.will_payload = arg;
			o->client.will_len = strlen(arg);
		} else if (strcmp(a, "--will-qos") == 0) {
			NEED_ARG();
			if (!parse_long(arg, 0, 2, &v))
				return bad("will QoS must be 0, 1 or 2, got \"%s\"", arg);
			o->client.will_qos = (uint8_t)v;
		} else if (strcmp(a, "--will-retain") == 0) {
			o->client.will_retain = true;
		} else if (strcmp(a, "-D") == 0 || strcmp(a, "--property") == 0) {
			if (i + 3 >= argc)
				return bad("-D needs a command, a property and a value");
			if (parse_property(o, argv, &i, argc) != 0)
				return 1;
		} else if (!is_sub && (strcmp(a, "-m") == 0 || strcmp(a, "--message") == 0)) {
			NEED_ARG();
			o->message = arg;
		} else if (!is_sub && (strcmp(a, "-f") == 0 || strcmp(a, "--file") == 0)) {
			NEED_ARG();
			o->file = arg;
		} else if (!is_sub && (strcmp(a, "-n") == 0 || strcmp(a, "--null-message") == 0)) {
			o->null_msg = true;
		} else if (!is_sub && (strcmp(a, "-l") == 0 || strcmp(a, "--stdin-line") == 0)) {
			o->stdin_line = true;
		} else if (!is_sub && (strcmp(a, "-s") == 0 || strcmp(a, "--stdin-file") == 0)) {
			o->stdin_file = true;
		} else if (!is_sub && (strcmp(a, "-r") == 0 || strcmp(a, "--retain") == 0)) {
			o->retain = true;
		} else if (!is_sub && strcmp(a, "--repeat") == 0) {
			NEED_ARG();
			if (!parse_long(arg, 0, LONG_MAX, &o->repeat))
				return bad("invalid repeat count \"%s\"", arg);
		} else if (!is_sub && strcmp(a, "--interval-ms") == 0) {
			NEED_ARG();
			if (!parse_long(arg, 0, 86400000, &o->interval_ms))
				return bad("invalid interval \"%s\"", arg);
		} else if (!is_sub && strcmp(a, "--ack-timeout") == 0) {
			NEED_ARG();
			if (!parse_long(arg, 1, 86400 * 365, &o->ack_timeout_s))
				return bad("invalid acknowledgement timeout \"%s\"", arg);
		} else if (!is_sub && strcmp(a, "--queue-file") == 0) {
			NEED_ARG();
			o->client.queue_file = arg;
			o->client.auto_reconnect = true;
		} else if (!is_sub && strcmp(a, "--queue-overflow") == 0) {
			NEED_ARG();
			if (strcmp(arg, "drop-oldest") == 0)
				o->client.queue_overflow = MOAT_QUEUE_DROP_OLDEST;
			else if (strcmp(arg, "refuse-new") == 0)
				o->client.queue_overflow = MOAT_QUEUE_REFUSE_NEW;
			else
				return bad("--queue-overflow is drop-oldest or refuse-new, got \"%s\"", arg);
		} else if (!is_sub && strcmp(a, "--drain-rate") == 0) {
			NEED_ARG();
			if (!parse_long(arg, 0, 1000000, &v))
				return bad("invalid drain rate \"%s\" (messages per second, 0 = no limit)", arg);
			o->client.drain_rate = (uint32_t)v;
		} else if (is_sub && (strcmp(a, "-v") == 0 || strcmp(a, "--verbose") == 0)) {
			o->verbose = true;
		} else if (is_sub && (strcmp(a, "-C") == 0)) {
			NEED_ARG();
			if (!parse_long(arg, 1, LONG_MAX, &o->count))
				return bad("invalid message count \"%s\"", arg);
		} else if (is_sub && (strcmp(a, "-W") == 0)) {
			NEED_ARG();
			if (!parse_long(arg, 1, 86400 * 365, &o->timeout_s))
				return bad("invalid timeout \"%s\"", arg);
		} else if (is_sub && strcmp(a, "-R") == 0) {
			o->no_stale_retained = true;
		} else if (is_sub && strcmp(a, "-N") == 0) {
			o->no_newline = true;
		} else if (is_sub && strcmp(a, "-T") == 0) {
			NEED_ARG();
			if (o->filter_out_count == CLI_MAX_TOPICS)
				return bad("too many -T filters (%s)", arg);
			o->filter_out[o->filter_out_count++] = arg;
		} else if (is_sub && strcmp(a, "-U") == 0) {
			NEED_ARG();
			if (o->unsub_count == CLI_MAX_TOPICS)
				return bad("too many -U filters (%s)", arg);
			o->unsub[o->unsub_count++] = arg;
		} else if (is_sub && strcmp(a, "-F") == 0) {
			NEED_ARG();
			o->format = arg;
		} else if (is_sub && strcmp(a, "--nl") == 0) {
			o->no_local = true;
		} else if (is_sub && strcmp(a, "--rap") == 0) {
			o->rap = true;
		} else if (is_sub && strcmp(a, "--retain-handling") == 0) {
			NEED_ARG();
			if (!parse_long(arg, 0, 2, &v))
				return bad("retain handling must be 0, 1 or 2, got \"%s\"", arg);
			o->retain_handling = (uint8_t)v;
		} else {
			return bad("unknown option \"%s\"", a);
		}
#undef NEED_ARG
	}
	if (o->topic_count == 0 && o->unsub_count == 0)
		return bad("no topic given: use -t TOPIC");
	if (o->client.will_payload != NULL && o->client.will_topic == NULL)
		return bad("--will-payload needs --will-topic");
	if (!is_sub && o->repeat >= 0 && (o->file != NULL) + o->null_msg + o->stdin_line + o->stdin_file != 0)
		return bad("--repeat takes its messages from -m (a prefix), not -f, -n, -l or -s");
	if (!is_sub && o->repeat < 0 && (o->message != NULL) + (o->file != NULL) + o->null_msg + o->stdin_line +
			       o->stdin_file != 1)
		return bad("give exactly one of -m, -f, -n, -l, -s or --repeat");
	if (o->client.queue_file != NULL && o->client.client_id == NULL)
		return bad("--queue-file needs a fixed client id: use -i ID");
	if ((o->client.certfile == NULL) != (o->client.keyfile == NULL))
		return bad("--cert and --key go together (a client certificate and its key)");
	if (o->client.tls_insecure && !o->client.tls)
		return bad("--insecure is for TLS: give --cafile (or --cert and --key)");
	if (o->client.port == 0)
		o->client.port = o->client.tls ? 8883 : 1883;
	return 0;
}

static int connack_rc;
static bool connack_seen;

static void on_connect(void *arg, uint8_t rc, bool present)
{
	(void)arg;
	(void)present;
	connack_rc = rc;
	connack_seen = true;
}

struct moat_client *cli_connect(struct cli_opts *o, const struct moat_callbacks *cb_in)
{
	static char id[64];
	struct moat_callbacks cb = *cb_in;
	struct moat_client *c;
	char diag[256];
	int rc;

	if (o->id_prefix != NULL && o->client.client_id == NULL) {
		snprintf(id, sizeof(id), "%s%ld", o->id_prefix, (long)getpid());
		o->client.client_id = id;
	}
	if (cb.on_connect == NULL)
		cb.on_connect = on_connect;
	rc = moat_client_open(&c, &o->client, &cb, diag, sizeof(diag));
	if (rc < 0) {
		fprintf(stderr, "Error: %s\n", diag[0] != '\0' ? diag : moat_strerror(rc));
		return NULL;
	}
	if (diag[0] != '\0')
		fprintf(stderr, "Warning: %s\n", diag);
	if (moat_connect(c) < 0) {
		fprintf(stderr, "Error: cannot resolve or reach %s:%u\n", o->client.host, o->client.port);
		moat_client_destroy(c);
		return NULL;
	}
	/* with a queue file, publishing starts offline: messages wait in the file */
	while (!moat_is_connected(c) && o->client.queue_file == NULL) {
		if (moat_loop_once(c, 1000) < 0) {
			if (connack_seen && connack_rc != 0)
				fprintf(stderr, "Connection error: Connection Refused: %s (0x%02x)\n",
					moat_strerror(MOAT_E_DENIED), connack_rc);
			else
				fprintf(stderr, "Error: connection to %s:%u failed: %s\n",
					o->client.host, o->client.port,
					moat_last_error(c, diag, sizeof(diag)));
			moat_client_destroy(c);
			return NULL;
		}
	}
	if (o->debug && moat_is_connected(c))
		fprintf(stderr, "Client connected to %s:%u\n", o->client.host, o->client.port);
	return c;
}
