/*
 * moat-device: simulated things for Moat (docs/device.md). Parses the
 * command line and runs the simulator (sim.c), or with --tamper asks a
 * running one for a tamper alert.
 */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "device/sim.h"

static void usage(FILE *f)
{
	fprintf(f,
		"usage: moat-device --bundles DIR [--count N] [--interval S] [--broker HOST:PORT]\n"
		"                   [--queue-dir DIR] [--drain-rate N] [--command-signer PEM]\n"
		"                   [--plain] [--seed N] [--connect-rate N]\n"
		"       moat-device --bundles DIR --tamper ID\n"
		"Runs one simulated device per bundle sub-directory of DIR (default at most 10).\n"
		"SIGUSR1 raises a tamper alert for the first device. See docs/device.md.\n");
}

static bool parse_u64(const char *s, uint64_t max, uint64_t *out)
{
	char *end;
	unsigned long long v;

	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno != 0 || end == s || *end != '\0' || s[0] == '-' || v > max)
		return false;
	*out = v;
	return true;
}

static bool parse_broker(const char *s, struct sim_opts *o)
{
	static char host[256];

	o->broker_host = host;
	return sim_split_hostport(s, host, sizeof(host), &o->broker_port);
}

static const char *name_of(const struct option *longs, int ch)
{
	for (; longs->name != NULL; longs++)
		if (longs->val == ch)
			return longs->name;
	return "?";
}

int main(int argc, char **argv)
{
	static const struct option longs[] = {
	    {"bundles", required_argument, NULL, 'b'},
	    {"count", required_argument, NULL, 'n'},
	    {"interval", required_argument, NULL, 'i'},
	    {"broker", required_argument, NULL, 'B'},
	    {"queue-dir", required_argument, NULL, 'q'},
	    {"drain-rate", required_argument, NULL, 'd'},
	    {"command-signer", required_argument, NULL, 's'},
	    {"tamper", required_argument, NULL, 't'},
	    {"plain", no_argument, NULL, 'p'},
	    {"seed", required_argument, NULL, 'S'},
	    {"connect-rate", required_argument, NULL, 'r'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	struct sim_opts o = {.count = 10, .interval_ms = 5000, .connect_rate = 200};
	const char *tamper = NULL;
	uint64_t v = 0;
	int ch;
	bool ok;

	while ((ch = getopt_long(argc, argv, "h", longs, NULL)) != -1) {
		ok = true;
		switch (ch) {
		case 'b':
			o.bundles = optarg;
			break;
		case 'n':
			ok = parse_u64(optarg, 1000000, &v) && v > 0;
			o.count = (size_t)v;
			break;
		case 'i':
			ok = parse_u64(optarg, 86400, &v) && v > 0;
			o.interval_ms = (uint32_t)(v * 1000);
			break;
		case 'B':
			ok = parse_broker(optarg, &o);
			break;
		case 'q':
			o.queue_dir = optarg;
			break;
		case 'd':
			ok = parse_u64(optarg, 1000000, &v);
			o.drain_rate = (uint32_t)v;
			break;
		case 's':
			o.command_signer = optarg;
			break;
		case 't':
			tamper = optarg;
			break;
		case 'p':
			o.plain = true;
			break;
		case 'S':
			ok = parse_u64(optarg, UINT64_MAX, &o.seed);
			o.has_seed = true;
			break;
		case 'r':
			ok = parse_u64(optarg, 1000000, &v) && v > 0;
			o.connect_rate = (uint32_t)v;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
		if (!ok) {
			fprintf(stderr, "moat-device: bad value for --%s: %s\n", name_of(longs, ch),
				optarg);
			return 2;
		}
	}
	if (optind != argc || o.bundles == NULL) {
		usage(stderr);
		return 2;
	}
	if (tamper != NULL)
		return sim_send_tamper(o.bundles, tamper);
	if (!o.has_seed)
		o.seed = (uint64_t)time(NULL);
	return sim_run(&o);
}
