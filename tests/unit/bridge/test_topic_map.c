/*
 * Unit tests for bridge topic remapping (src/bridge/topic_map.c), on
 * sections read by the real configuration parser: mosquitto's rules for
 * prefixes, "" markers, directions and the first matching line.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include <moat/error.h>

#include "bridge/topic_map.h"
#include "conf/config.h"

static const char text[] = "connection t\naddress h\n"
			   "topic sensors/# out 1 site/ central/\n"
			   "topic cmd/+ in 1 local/ remote/\n"
			   "topic chat/# both 0\n"
			   "topic up/# out 0 \"\" fleet/a/\n"
			   "topic down/# in 0 dev/ \"\"\n"
			   "topic \"\" both 1 alarm/now central/alarms/site-a\n";

static struct moat_config cfg;

static int setup(void **state)
{
	struct moat_diag d;

	(void)state;
	config_defaults(&cfg);
	return config_load_buffer(&cfg, "t.conf", text, strlen(text), &d);
}

static int teardown(void **state)
{
	(void)state;
	config_fini(&cfg);
	return 0;
}

static char *out(const struct moat_bridge_conf *b, const char *topic)
{
	char *got = (char *)"unset";

	assert_int_equal(bridge_map_out(b, topic, &got), MOAT_OK);
	return got;
}

static char *in(const struct moat_bridge_conf *b, const char *topic)
{
	char *got = (char *)"unset";

	assert_int_equal(bridge_map_in(b, topic, &got), MOAT_OK);
	return got;
}

static void expect(char *got, const char *want)
{
	if (want == NULL) {
		assert_null(got);
		return;
	}
	assert_non_null(got);
	assert_string_equal(got, want);
	free(got);
}

static void outgoing_topics(void **state)
{
	const struct moat_bridge_conf *b = cfg.bridges;

	(void)state;
	expect(out(b, "site/sensors/t1"), "central/sensors/t1");
	expect(out(b, "site/sensors"), "central/sensors"); /* # matches the parent */
	expect(out(b, "sensors/t1"), NULL);  /* the local prefix is part of the filter */
	expect(out(b, "local/cmd/x"), NULL); /* an in line */
	expect(out(b, "chat/room"), "chat/room");
	expect(out(b, "up/x"), "fleet/a/up/x");
	expect(out(b, "dev/down/x"), NULL);
	expect(out(b, "alarm/now"), "central/alarms/site-a");
	expect(out(b, "alarm/now/more"), NULL);
}

static void incoming_topics(void **state)
{
	const struct moat_bridge_conf *b = cfg.bridges;

	(void)state;
	expect(in(b, "remote/cmd/open"), "local/cmd/open");
	expect(in(b, "remote/cmd/a/b"), NULL);	   /* + is one level */
	expect(in(b, "central/sensors/t1"), NULL); /* an out line */
	expect(in(b, "chat/room"), "chat/room");
	expect(in(b, "down/x"), "dev/down/x");
	expect(in(b, "central/alarms/site-a"), "alarm/now");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(outgoing_topics),
	    cmocka_unit_test(incoming_topics),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
