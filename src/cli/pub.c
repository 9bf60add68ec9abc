/*
 * `moat pub`: publishes one message (or one per input line, or a numbered
 * series with --repeat) like mosquitto_pub, waits until QoS 1/2 messages are
 * acknowledged, and exits 0, or 1 on any error. With --queue-file the
 * messages wait in libmoat's durable queue while the broker is away.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/clock.h"
#include "cli/cli.h"

struct pub_state {
	size_t done, failed;
};

static void on_publish_done(void *arg, uint16_t packet_id, uint8_t rc)
{
	struct pub_state *st = arg;

	(void)packet_id;
	st->done++;
	if (rc >= 0x80) {
		st->failed++;
		fprintf(stderr, "Warning: publish %u refused by the broker (reason 0x%02x)\n", packet_id, rc);
	}
}

/* Reads all of <f> into a malloc'd buffer; NULL on error. */
static char *read_all(FILE *f, size_t *len)
{
	size_t cap = 65536, n = 0;
	char *buf = malloc(cap);

	while (buf != NULL) {
		size_t got = fread(buf + n, 1, cap - n, f);

		n += got;
		if (got == 0)
			break;
		if (n == cap) {
			char *nb = cap < (256u << 20) ? realloc(buf, cap * 2) : NULL;

			if (nb == NULL) {
				free(buf);
				return NULL;
			}
			buf = nb;
			cap *= 2;
		}
	}
	*len = n;
	return buf;
}

static int publish_one(struct moat_client *c, struct cli_opts *o, const void *p, size_t len)
{
	struct moat_pub_props props = o->pub_props;
	uint8_t *sealed = NULL;
	size_t sealed_len = 0;
	const char *why = NULL;
	int rc;

	if (o->e2e != NULL) {
		/* --e2e: the COSE envelope goes out, with its content type, as bytes */
		rc = moat_e2e_seal(o->e2e, o->topics[0], p, len, &sealed, &sealed_len,
				   &props.content_type, &why);
		if (rc < 0) {
			fprintf(stderr, "Error: cannot seal for %s: %s\n", o->topics[0],
				why != NULL ? why : moat_strerror(rc));
			return rc;
		}
		props.has_payload_format = true;
		props.payload_format = 0;
		p = sealed;
		len = sealed_len;
	}
	while ((rc = moat_publish(c, o->topics[0], p, len, o->qos, o->retain, &props, NULL)) ==
	       MOAT_E_LIMIT) {
		if (moat_loop_once(c, 100) < 0) {
			rc = MOAT_E_CLOSED; /* queue full: let acknowledgements drain it */
			break;
		}
	}
	if (rc < 0 && rc != MOAT_E_CLOSED)
		fprintf(stderr, "Error publishing: %s\n", moat_strerror(rc));
	moat_e2e_free(sealed, sealed_len);
	return rc;
}

/* Runs the client loop at least once and until <deadline_ms> (monotonic).
 * 0, or 1 when the client closed for good. */
static int run_until(struct moat_client *c, uint64_t deadline_ms)
{
	uint64_t now = clock_mono_ms();

	do {
		if (moat_loop_once(c, now < deadline_ms ? (int)(deadline_ms - now) : 0) < 0)
			return 1;
		now = clock_mono_ms();
	} while (now < deadline_ms);
	return 0;
}

/* --repeat: messages "<prefix> <i>", one every --interval-ms; with -d each
 * one the library accepted (with a queue file: is on disk) is printed as
 * "queued <payload>" on standard error. */
static int publish_series(struct moat_client *c, struct cli_opts *o)
{
	uint64_t next = clock_mono_ms();
	char msg[512];
	int rc = 0;

	for (long i = 1; rc == 0 && i <= o->repeat; i++) {
		int n = snprintf(msg, sizeof(msg), "%s %ld", o->message != NULL ? o->message : "msg", i);

		if (n < 0 || (size_t)n >= sizeof(msg)) {
			fprintf(stderr, "Error: the -m prefix is too long for --repeat\n");
			return 1;
		}
		rc = publish_one(c, o, msg, (size_t)n);
		if (rc == 0 && o->debug)
			fprintf(stderr, "queued %s\n", msg);
		next += (uint64_t)o->interval_ms;
		if (rc == 0)
			rc = run_until(c, next);
	}
	return rc;
}

int cli_pub_main(int argc, char **argv)
{
	struct cli_opts o;
	struct pub_state st = { 0 };
	struct moat_callbacks cb = { .arg = &st, .on_publish_done = on_publish_done };
	struct moat_client *c;
	char *data = NULL;
	size_t len = 0;
	int rc = cli_parse(argc, argv, false, &o);

	if (rc != 0)
		return rc == 2 ? 0 : 1;
	if (cli_e2e_prepare(&o) != 0) {
		cli_e2e_finish(&o);
		return 1;
	}
	if (o.file != NULL || o.stdin_file) {
		FILE *f = o.file != NULL ? fopen(o.file, "rb") : stdin;

		data = f != NULL ? read_all(f, &len) : NULL;
		if (f != NULL && f != stdin)
			fclose(f);
		if (data == NULL) {
			fprintf(stderr, "Error: cannot read %s\n", o.file != NULL ? o.file : "standard input");
			cli_e2e_finish(&o);
			return 1;
		}
	}
	c = cli_connect(&o, &cb);
	if (c == NULL || cli_e2e_attach(&o, c) != 0) {
		moat_client_destroy(c);
		cli_e2e_finish(&o);
		free(data);
		return 1;
	}
	if (o.repeat >= 0) {
		rc = publish_series(c, &o);
	} else if (o.stdin_line) {
		char *line = NULL;
		size_t cap = 0;
		ssize_t n;

		while (rc == 0 && (n = getline(&line, &cap, stdin)) >= 0) {
			if (n > 0 && line[n - 1] == '\n')
				n--;
			rc = publish_one(c, &o, line, (size_t)n);
		}
		free(line);
	} else if (data != NULL) {
		rc = publish_one(c, &o, data, len);
	} else {
		rc = publish_one(c, &o, o.message != NULL ? o.message : "",
				 o.message != NULL ? strlen(o.message) : 0);
	}
	uint64_t give_up = o.ack_timeout_s > 0 ? clock_mono_ms() + (uint64_t)o.ack_timeout_s * 1000u
					       : UINT64_MAX;
	while (rc == 0 && moat_pending_count(c) > 0) {
		if (clock_mono_ms() >= give_up) {
			fprintf(stderr, "Error: %zu messages not acknowledged within %ld s%s\n",
				moat_pending_count(c), o.ack_timeout_s,
				o.client.queue_file != NULL ? "; they stay in the queue file" : "");
			rc = 1;
		} else if (moat_loop_once(c, 1000) < 0) {
			rc = 1;
		}
	}
	if (moat_dropped_count(c) > 0)
		fprintf(stderr, "Warning: %llu messages dropped: the offline queue was full\n",
			(unsigned long long)moat_dropped_count(c));
	while (rc == 0 && moat_want_write(c))
		if (moat_loop_once(c, 100) < 0)
			rc = 1;
	if (rc != 0 && !moat_is_connected(c)) {
		char why[256];

		if (moat_last_error(c, why, sizeof(why))[0] != '\0')
			fprintf(stderr, "Error: connection closed: %s\n", why);
	}
	moat_disconnect(c, 0);
	moat_client_destroy(c);
	cli_e2e_finish(&o);
	free(data);
	return rc == 0 && st.failed == 0 ? 0 : 1;
}
