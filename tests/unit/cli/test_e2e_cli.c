/*
 * Unit tests for `moat pub/sub --e2e BUNDLE` set-up (src/cli/e2e_cli.c):
 * the client id, host and port come from the bundle; an mqtts:// broker
 * turns on mutual TLS with the bundle's ca.pem, cert.pem and key.pem unless
 * TLS options or both -h and -p were given; a broker URL that is neither
 * mqtt:// nor mqtts:// and MQTT 3.1.1 are refused. Bundles are made with
 * the openssl command (Ed25519 and X25519 keys).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"

static char dir[64];
static char bundle[128];

/* Writes <dir>/bundle.json naming <broker>; with <tls_files> also empty cert.pem and key.pem. */
static void write_bundle(const char *broker, bool tls_files)
{
	char cmd[1024];
	FILE *f;

	snprintf(cmd, sizeof(cmd), "%s/bundle.json", bundle);
	f = fopen(cmd, "w");
	assert_non_null(f);
	fprintf(f, "{\"client_id\": \"dev-7\", \"broker\": \"%s\"}", broker);
	fclose(f);
	snprintf(cmd, sizeof(cmd), "cd '%s' && rm -f cert.pem key.pem%s", bundle,
		 tls_files ? " && touch cert.pem key.pem" : "");
	assert_int_equal(system(cmd), 0);
}

static int setup(void **state)
{
	char cmd[1024];

	(void)state;
	strcpy(dir, "/tmp/moat-e2ecli-XXXXXX");
	if (mkdtemp(dir) == NULL)
		return -1;
	snprintf(bundle, sizeof(bundle), "%s/b", dir);
	snprintf(cmd, sizeof(cmd),
		 "mkdir -m 700 '%s' && cd '%s' && umask 077 && "
		 "openssl genpkey -algorithm ed25519 -out sign.key && "
		 "openssl genpkey -algorithm x25519 -out agree.key && "
		 "openssl genpkey -algorithm ed25519 | openssl pkey -pubout -out sc.pub",
		 bundle, bundle);
	return system(cmd) == 0 ? 0 : -1;
}

static int teardown(void **state)
{
	char cmd[128];

	(void)state;
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	return system(cmd) == 0 ? 0 : -1;
}

/* Options as cli_parse leaves them for `moat pub --e2e BUNDLE` plus <argv>. */
static int parse(struct cli_opts *o, const char *const *extra, int n)
{
	const char *argv[16] = {"pub", "--e2e", bundle, "-t", "a", "-m", "x"};
	int argc = 7;

	for (int i = 0; i < n; i++)
		argv[argc++] = extra[i];
	memset(o, 0, sizeof(*o));
	return cli_parse(argc, (char **)argv, false, o);
}

static void path_is(const char *got, const char *name)
{
	char want[256];

	assert_non_null(got);
	snprintf(want, sizeof(want), "%s/%s", bundle, name);
	assert_string_equal(got, want);
}

static void mqtts_bundle_turns_on_mutual_tls(void **state)
{
	struct cli_opts o;

	(void)state;
	write_bundle("mqtts://127.0.0.1:8884", true);
	assert_int_equal(parse(&o, NULL, 0), 0);
	assert_int_equal(cli_e2e_prepare(&o), 0);
	assert_true(o.client.tls);
	path_is(o.client.cafile, "ca.pem");
	path_is(o.client.certfile, "cert.pem");
	path_is(o.client.keyfile, "key.pem");
	assert_string_equal(o.client.host, "127.0.0.1");
	assert_int_equal(o.client.port, 8884);
	assert_string_equal(o.client.client_id, "dev-7");
	cli_e2e_finish(&o);

	/* a bundle made with --csr has no key.pem: the CA only, the certificate comes from --cert
	 */
	write_bundle("mqtts://127.0.0.1:8884", false);
	assert_int_equal(parse(&o, NULL, 0), 0);
	assert_int_equal(cli_e2e_prepare(&o), 0);
	assert_true(o.client.tls);
	path_is(o.client.cafile, "ca.pem");
	assert_null(o.client.certfile);
	assert_null(o.client.keyfile);
	cli_e2e_finish(&o);
}

static void tls_options_and_host_port_override_the_bundle(void **state)
{
	const char *cafile[] = {"--cafile", "/etc/other-ca.pem"};
	const char *hostport[] = {"-h", "broker.example", "-p", "1999"};
	const char *port_only[] = {"-p", "1999"};
	struct cli_opts o;

	(void)state;
	write_bundle("mqtts://127.0.0.1:8884", true);
	assert_int_equal(parse(&o, cafile, 2), 0);
	assert_int_equal(cli_e2e_prepare(&o), 0);
	assert_true(o.client.tls);
	assert_string_equal(o.client.cafile, "/etc/other-ca.pem");
	assert_null(o.client.certfile);
	assert_int_equal(o.client.port, 8884);
	cli_e2e_finish(&o);

	assert_int_equal(parse(&o, hostport, 4), 0);
	assert_int_equal(cli_e2e_prepare(&o), 0);
	assert_false(o.client.tls);
	assert_null(o.client.cafile);
	assert_string_equal(o.client.host, "broker.example");
	assert_int_equal(o.client.port, 1999);
	cli_e2e_finish(&o);

	assert_int_equal(parse(&o, port_only, 2), 0);
	assert_int_equal(cli_e2e_prepare(&o), 0);
	assert_true(o.client.tls);
	assert_string_equal(o.client.host, "127.0.0.1");
	assert_int_equal(o.client.port, 1999);
	cli_e2e_finish(&o);
}

static void plain_and_bad_brokers(void **state)
{
	const char *v311[] = {"-V", "311"};
	struct cli_opts o;

	(void)state;
	write_bundle("mqtt://localhost:1884", true);
	assert_int_equal(parse(&o, NULL, 0), 0);
	assert_int_equal(cli_e2e_prepare(&o), 0);
	assert_false(o.client.tls);
	assert_null(o.client.cafile);
	assert_string_equal(o.client.host, "localhost");
	assert_int_equal(o.client.port, 1884);
	cli_e2e_finish(&o);

	write_bundle("https://localhost:1884", true);
	assert_int_equal(parse(&o, NULL, 0), 0);
	assert_int_equal(cli_e2e_prepare(&o), 1);
	assert_false(o.client.tls);
	cli_e2e_finish(&o);

	assert_int_equal(parse(&o, v311, 2), 0);
	assert_int_equal(cli_e2e_prepare(&o), 1);
	cli_e2e_finish(&o);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(mqtts_bundle_turns_on_mutual_tls),
	    cmocka_unit_test(tls_options_and_host_port_override_the_bundle),
	    cmocka_unit_test(plain_and_bad_brokers),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
