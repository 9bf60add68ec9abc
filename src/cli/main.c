/*
 * moat: one command-line tool for Moat. Dispatches to the sub-commands.
 */
#include <stdio.h>
#include <string.h>

#include "cli/bench.h"
#include "cli/cli.h"

static void usage(FILE *out)
{
	fprintf(out, "Usage: moat <command> [options]\n"
		     "Commands:\n"
		     "  pub     publish a message (flags like mosquitto_pub)\n"
		     "  sub     subscribe and print messages (flags like mosquitto_sub)\n"
		     "  bench   load generator: fan-in, fan-out, pairs, idle connections\n"
		     "  passwd  manage a password file (flags like mosquitto_passwd)\n"
		     "  ctl     administer the Security Center: things, policies, keys, tokens\n"
		     "  help C  options of command C\n"
		     "Options: --help, --version\n");
}

int main(int argc, char **argv)
{
	static const struct {
		const char *name;
		int (*fn)(int argc, char **argv);
	} cmds[] = { { "pub", cli_pub_main },
		     { "sub", cli_sub_main },
		     { "bench", cli_bench_main },
		     { "passwd", cli_passwd_main },
		     { "ctl", cli_ctl_main } };

	if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
		usage(argc < 2 ? stderr : stdout);
		return argc < 2 ? 1 : 0;
	}
	if (strcmp(argv[1], "--version") == 0) {
		printf("moat %s\n", MOAT_VERSION);
		return 0;
	}
	if (strcmp(argv[1], "help") == 0 && argc == 3) {
		char *help_argv[] = { argv[2], "--help", NULL };

		for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++)
			if (strcmp(argv[2], cmds[i].name) == 0)
				return cmds[i].fn(2, help_argv);
	}
	for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++)
		if (strcmp(argv[1], cmds[i].name) == 0)
			return cmds[i].fn(argc - 1, argv + 1);
	fprintf(stderr, "moat: unknown command \"%s\"\n", argv[1]);
	usage(stderr);
	return 1;
}
