/*
 * `moat sub`: subscribes like mosquitto_sub and prints messages; -C N exits
 * after N messages, -W S exits with 27 after S seconds (as mosquitto_sub).
 */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "cli/cli.h"
#include "codec/topic.h"

#define EXIT_TIMEOUT 27

struct sub_state {
	struct cli_opts *o;
	long received;
	bool failed;
};

static void print_formatted(const char *fmt, const struct moat_message *m)
{
	for (const char *f = fmt; *f != '\0'; f++) {
		if (*f == '\\' && f[1] != '\0') {
			f++;
			putchar(*f == 'n' ? '\n' : *f == 't' ? '\t' : *f);
			continue;
		}
		if (*f != '%' || f[1] == '\0') {
			putchar(*f);
			continue;
		}
		switch (*++f) {
		case 't': fputs(m->topic, stdout); break;
		case 'p': fwrite(m->payload, 1, m->payload_len, stdout); break;
		case 'q': printf("%u", m->qos); break;
		case 'r': printf("%d", m->retain ? 1 : 0); break;
		case 'l': printf("%zu", m->payload_len); break;
		case '%': putchar('%'); break;
		default: putchar('%'); putchar(*f); break;
		}
	}
}

static void on_message(void *arg, const struct moat_message *m)
{
	struct sub_state *st = arg;
	struct cli_opts *o = st->o;

	if (o->no_stale_retained && m->retain)
		return;
	for (int i = 0; i < o->filter_out_count; i++)
		if (topic_matches(moat_bytes_str(o->filter_out[i]), moat_bytes_str(m->topic)))
			return;
	if (o->count > 0 && st->received >= o->count)
		return;
	if (o->format != NULL) {
		print_formatted(o->format, m);
	} else {
		if (o->verbose)
			printf("%s ", m->topic);
		fwrite(m->payload, 1, m->payload_len, stdout);
		if (!o->no_newline)
			putchar('\n');
	}
	fflush(stdout);
	st->received++;
}

static void on_subscribe(void *arg, uint16_t packet_id, const uint8_t *codes, size_t n)
{
	struct sub_state *st = arg;

	(void)packet_id;
	for (size_t i = 0; i < n; i++) {
		if (codes[i] >= 0x80) {
			fprintf(stderr, "Subscription refused by the broker (reason 0x%02x)\n", codes[i]);
			st->failed = true;
		}
	}
}

int cli_sub_main(int argc, char **argv)
{
	struct cli_opts o;
	struct sub_state st = { .o = &o };
	struct moat_callbacks cb = { .arg = &st, .on_message = on_message, .on_subscribe = on_subscribe };
	struct moat_client *c;
	struct timespec start;
	int rc = cli_parse(argc, argv, true, &o);

	if (rc != 0)
		return rc == 2 ? 0 : 1;
	c = cli_connect(&o, &cb);
	if (c == NULL)
		return 1;
	for (int i = 0; i < o.topic_count; i++) {
		struct moat_sub_options so = { .qos = o.qos, .no_local = o.no_local,
					       .retain_as_published = o.rap,
					       .retain_handling = o.retain_handling, .sub_id = o.sub_id };

		if (moat_subscribe(c, o.topics[i], &so, NULL) < 0) {
			fprintf(stderr, "Error: cannot subscribe to %s\n", o.topics[i]);
			moat_client_destroy(c);
			return 1;
		}
	}
	for (int i = 0; i < o.unsub_count; i++)
		moat_unsubscribe(c, o.unsub[i], NULL);
	clock_gettime(CLOCK_MONOTONIC, &start);
	rc = 0;
	while (!st.failed && (o.count < 0 || st.received < o.count)) {
		struct timespec now;

		if (moat_loop_once(c, 200) < 0) {
			char why[256];

			fprintf(stderr, "Error: connection lost: %s\n",
				moat_last_error(c, why, sizeof(why)));
			rc = 1;
			break;
		}
		clock_gettime(CLOCK_MONOTONIC, &now);
		if (o.timeout_s > 0 && now.tv_sec - start.tv_sec >= o.timeout_s) {
			fprintf(stderr, "Timed out\n");
			rc = EXIT_TIMEOUT;
			break;
		}
		if (o.topic_count == 0 && moat_is_connected(c) && !moat_want_write(c))
			break;	/* -U only: done once the UNSUBSCRIBE is sent */
	}
	moat_disconnect(c, 0);
	moat_client_destroy(c);
	return st.failed ? 1 : rc;
}
