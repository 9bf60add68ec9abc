/*
 * `moat sub`: subscribes like mosquitto_sub and prints messages; -C N exits
 * after N messages, -W S exits with 27 after S seconds (as mosquitto_sub).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/clock.h"
#include "cli/cli.h"
#include "codec/topic.h"

#define EXIT_TIMEOUT 27

enum { E2E_HELD_MAX = 64, E2E_HOLD_MS = 10000 };

/* A message held until its group key arrives (--e2e). */
struct held {
	struct moat_message m; /* pointers other than topic/payload are not kept */
	char *topic;
	uint8_t *payload;
	uint64_t since_ms;
};

struct sub_state {
	struct cli_opts *o;
	long received;
	bool failed;
	struct held held[E2E_HELD_MAX];
	size_t held_count;
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

/* Prints <m> (its payload opened already with --e2e). */
static void print_message(struct sub_state *st, const struct moat_message *m)
{
	struct cli_opts *o = st->o;

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

/* --e2e: opens <m> and prints the plaintext; a message whose key is being
 * fetched is held and tried again after the next loop turn (E2E_HOLD_MS at
 * most); anything else it cannot open is reported and skipped. */
static void open_and_print(struct sub_state *st, const struct moat_message *m, bool may_hold)
{
	struct moat_message pm = *m;
	uint8_t *pt = NULL;
	size_t n = 0;
	const char *why = NULL;
	int rc =
	    moat_e2e_open(st->o->e2e, m->topic, m->payload, m->payload_len, &pt, &n, NULL, &why);

	if (rc == MOAT_E_AGAIN && may_hold && st->held_count < E2E_HELD_MAX) {
		struct held *h = &st->held[st->held_count];

		h->topic = strdup(m->topic);
		h->payload = malloc(m->payload_len > 0 ? m->payload_len : 1);
		if (h->topic != NULL && h->payload != NULL) {
			memcpy(h->payload, m->payload, m->payload_len);
			h->m = *m;
			h->since_ms = clock_mono_ms();
			st->held_count++;
			return;
		}
		free(h->topic);
		free(h->payload);
	}
	if (rc < 0) {
		fprintf(stderr, "refused: %s: %s\n", m->topic, why != NULL ? why : moat_strerror(rc));
		return;
	}
	pm.payload = pt;
	pm.payload_len = n;
	print_message(st, &pm);
	moat_e2e_free(pt, n);
}

/* Tries the held messages again, in arrival order. */
static void retry_held(struct sub_state *st)
{
	size_t n = st->held_count;
	struct held h[E2E_HELD_MAX];

	memcpy(h, st->held, n * sizeof(h[0]));
	st->held_count = 0;
	for (size_t i = 0; i < n; i++) {
		h[i].m.topic = h[i].topic;
		h[i].m.payload = h[i].payload;
		open_and_print(st, &h[i].m, clock_mono_ms() - h[i].since_ms < E2E_HOLD_MS);
		free(h[i].topic);
		free(h[i].payload);
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
	if (o->e2e != NULL)
		open_and_print(st, m, true);
	else
		print_message(st, m);
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
	if (cli_e2e_prepare(&o) != 0) {
		cli_e2e_finish(&o);
		return 1;
	}
	c = cli_connect(&o, &cb);
	if (c == NULL || cli_e2e_attach(&o, c) != 0) {
		moat_client_destroy(c);
		cli_e2e_finish(&o);
		return 1;
	}
	for (int i = 0; o.e2e != NULL && i < o.topic_count; i++) {
		const char *why = NULL;

		/* keys first, so retained messages find them */
		if (moat_e2e_fetch(o.e2e, o.topics[i], MOAT_E2E_SUBSCRIBE, &why) < 0)
			fprintf(stderr, "Warning: no key yet for %s: %s\n", o.topics[i],
				why != NULL ? why : "unknown");
	}
	for (int i = 0; i < o.topic_count; i++) {
		struct moat_sub_options so = { .qos = o.qos, .no_local = o.no_local,
					       .retain_as_published = o.rap,
					       .retain_handling = o.retain_handling, .sub_id = o.sub_id };

		if (moat_subscribe(c, o.topics[i], &so, NULL) < 0) {
			fprintf(stderr, "Error: cannot subscribe to %s\n", o.topics[i]);
			moat_client_destroy(c);
			cli_e2e_finish(&o);
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
		if (st.held_count > 0)
			retry_held(&st);
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
	for (size_t i = 0; i < st.held_count; i++) {
		free(st.held[i].topic);
		free(st.held[i].payload);
	}
	cli_e2e_finish(&o);
	return st.failed ? 1 : rc;
}
