/*
 * Unit tests for the metrics_listener configuration key (src/conf/config.c):
 * port and optional bind address, the line kept for later messages, and
 * refusals that name the file and line.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include <moat/error.h>

#include "conf/config.h"

static int load(struct moat_config *cfg, const char *text, struct moat_diag *d)
{
	config_defaults(cfg);
	return config_load_buffer(cfg, "m.conf", text, strlen(text), d);
}

static void off_by_default(void **state)
{
	struct moat_config cfg;
	struct moat_diag d;

	(void)state;
	assert_int_equal(load(&cfg, "allow_anonymous true\n", &d), MOAT_OK);
	assert_int_equal(cfg.metrics_port, 0);
	assert_null(cfg.metrics_bind);
	config_fini(&cfg);
}

static void port_and_bind_address(void **state)
{
	struct moat_config cfg;
	struct moat_diag d;

	(void)state;
	assert_int_equal(load(&cfg, "# metrics\n\nmetrics_listener 9100\n", &d), MOAT_OK);
	assert_int_equal(cfg.metrics_port, 9100);
	assert_null(cfg.metrics_bind); /* 127.0.0.1 */
	assert_int_equal(cfg.metrics_line, 3);
	config_fini(&cfg);
	assert_int_equal(load(&cfg, "listener 1883\nmetrics_listener 65535 ::1\n", &d), MOAT_OK);
	assert_int_equal(cfg.metrics_port, 65535);
	assert_string_equal(cfg.metrics_bind, "::1");
	assert_int_equal(cfg.listeners->port, 1883);
	assert_null(cfg.listeners->next); /* a global key: no MQTT listener added */
	config_fini(&cfg);
}

static void refusals_name_file_and_line(void **state)
{
	static const struct {
		const char *text, *want;
	} bad[] = {
	    {"metrics_listener\n", "m.conf:1: metrics_listener expects a port"},
	    {"\nmetrics_listener 1 2 3\n", "m.conf:2: metrics_listener expects a port"},
	    {"metrics_listener 0\n", "m.conf:1: metrics_listener expects a port from 1 to 65535"},
	    {"metrics_listener 65536\n", "m.conf:1: metrics_listener port"},
	    {"metrics_listener -1\n", "m.conf:1: metrics_listener port"},
	    {"metrics_listener x\n", "m.conf:1: metrics_listener port"},
	    {"metrics_listener 1\nmetrics_listener 2\n",
	     "m.conf:2: metrics_listener is set twice (line 1"},
	};

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct moat_config cfg;
		struct moat_diag d = {{0}};

		assert_int_equal(load(&cfg, bad[i].text, &d), MOAT_E_CONFIG);
		assert_memory_equal(d.msg, bad[i].want, strlen(bad[i].want));
		config_fini(&cfg);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(off_by_default),
	    cmocka_unit_test(port_and_bind_address),
	    cmocka_unit_test(refusals_name_file_and_line),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
