/*
 * `moat pub`: publishes one message (or one per input line) like
 * mosquitto_pub, waits until QoS 1/2 messages are acknowledged, and exits 0,
 * or 1 on any error.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
	int rc;

	while ((rc = moat_publish(c, o->topics[0], p, len, o->qos, o->retain, &o->pub_props, NULL)) ==
	       MOAT_E_LIMIT) {
		if (moat_loop_once(c, 100) < 0)
			return MOAT_E_CLOSED;	/* queue full: let acknowledgements drain it */
	}
	if (rc < 0)
		fprintf(stderr, "Error publishing: %s\n", moat_strerror(rc));
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
	if (o.file != NULL || o.stdin_file) {
		FILE *f = o.file != NULL ? fopen(o.file, "rb") : stdin;

		data = f != NULL ? read_all(f, &len) : NULL;
		if (f != NULL && f != stdin)
			fclose(f);
		if (data == NULL) {
			fprintf(stderr, "Error: cannot read %s\n", o.file != NULL ? o.file : "standard input");
			return 1;
		}
	}
	c = cli_connect(&o, &cb);
	if (c == NULL) {
		free(data);
		return 1;
	}
	if (o.stdin_line) {
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
	while (rc == 0 && moat_pending_count(c) > 0)
		if (moat_loop_once(c, 1000) < 0)
			rc = 1;
	while (rc == 0 && moat_want_write(c))
		if (moat_loop_once(c, 100) < 0)
			rc = 1;
	moat_disconnect(c, 0);
	moat_client_destroy(c);
	free(data);
	return rc == 0 && st.failed == 0 ? 0 : 1;
}
