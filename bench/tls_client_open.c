/*
 * What opening many TLS clients of one CA costs libmoat (docs/performance.md,
 * "Simulator scale"), run by hand:
 *
 *   tls_client_open N CAFILE CERTFILE KEYFILE
 *
 * Opens N clients (moat_client_open with tls, each given the same files, no
 * connection) and prints the wall and CPU time per client and the resident
 * memory they added (VmRSS before and after). Built against an older
 * libmoat it gives the baseline.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <moat/client.h>
#include <moat/error.h>

static double seconds(clockid_t clock)
{
	struct timespec t;

	clock_gettime(clock, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static long rss_kb(void)
{
	char line[256];
	long kb = 0;
	FILE *f = fopen("/proc/self/status", "r");

	while (f != NULL && fgets(line, sizeof(line), f) != NULL)
		if (strncmp(line, "VmRSS:", 6) == 0)
			kb = strtol(line + 6, NULL, 10);
	if (f != NULL)
		fclose(f);
	return kb;
}

int main(int argc, char **argv)
{
	struct moat_client_opts o = {.host = "127.0.0.1", .port = 8883, .version = 5, .tls = true};
	struct moat_client **c;
	double wall, cpu;
	long n, rss;
	char id[32], diag[256];

	if (argc != 5 || (n = strtol(argv[1], NULL, 10)) <= 0) {
		fprintf(stderr, "usage: tls_client_open N CAFILE CERTFILE KEYFILE\n");
		return 2;
	}
	o.cafile = argv[2];
	o.certfile = argv[3];
	o.keyfile = argv[4];
	c = calloc((size_t)n, sizeof(*c));
	if (c == NULL)
		return 1;
	rss = rss_kb();
	wall = seconds(CLOCK_MONOTONIC);
	cpu = seconds(CLOCK_PROCESS_CPUTIME_ID);
	for (long i = 0; i < n; i++) {
		snprintf(id, sizeof(id), "dev-%05ld", i);
		o.client_id = id;
		if (moat_client_open(&c[i], &o, NULL, diag, sizeof(diag)) != MOAT_OK) {
			fprintf(stderr, "tls_client_open: client %ld: %s\n", i, diag);
			return 1;
		}
	}
	wall = seconds(CLOCK_MONOTONIC) - wall;
	cpu = seconds(CLOCK_PROCESS_CPUTIME_ID) - cpu;
	printf("%ld clients: %.3f ms wall, %.3f ms CPU per client; %.1f KB resident per client\n",
	       n, 1e3 * wall / (double)n, 1e3 * cpu / (double)n,
	       (double)(rss_kb() - rss) / (double)n);
	for (long i = 0; i < n; i++)
		moat_client_destroy(c[i]);
	free(c);
	return 0;
}
