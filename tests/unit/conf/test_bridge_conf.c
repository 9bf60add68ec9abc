/*
 * Unit tests for the bridge sections of the configuration (src/conf/bridge_conf.c):
 * every option with mosquitto's defaults and meanings, topic lines with
 * their prefixes, and refusals that name the file, the line and the fix.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <moat/error.h>

#include "conf/bridge_conf.h"
#include "conf/config.h"

static int load(struct moat_config *cfg, const char *text, struct moat_diag *d)
{
	config_defaults(cfg);
	return config_load_buffer(cfg, "b.conf", text, strlen(text), d);
}

static void no_bridge_by_default(void **state)
{
	struct moat_config cfg;
	struct moat_diag d;

	(void)state;
	assert_int_equal(load(&cfg, "allow_anonymous true\n", &d), MOAT_OK);
	assert_null(cfg.bridges);
	config_fini(&cfg);
}

static void defaults_follow_mosquitto(void **state)
{
	struct moat_config cfg;
	struct moat_diag d;
	const struct moat_bridge_conf *b;
	char host[256] = "", want[300];

	(void)state;
	assert_int_equal(load(&cfg, "connection up\naddress central.example\n", &d), MOAT_OK);
	b = cfg.bridges;
	assert_non_null(b);
	assert_null(b->next);
	assert_string_equal(b->name, "up");
	assert_int_equal(b->line, 1);
	assert_int_equal(b->address_count, 1);
	assert_string_equal(b->addresses[0].host, "central.example");
	assert_int_equal(b->addresses[0].port, 1883);
	assert_false(b->round_robin);
	assert_null(b->topics);
	assert_int_equal(gethostname(host, sizeof(host) - 1), 0);
	snprintf(want, sizeof(want), "up.%s", host);
	assert_string_equal(b->remote_clientid, want);
	snprintf(want, sizeof(want), "local.up.%s", host);
	assert_string_equal(b->local_clientid, want);
	snprintf(want, sizeof(want), "$SYS/broker/connection/up.%s/state", host);
	assert_string_equal(b->notification_topic, want);
	assert_int_equal(b->protocol_version, 4);
	assert_false(b->cleansession);
	assert_int_equal(b->local_cleansession, 0);
	assert_int_equal(b->keepalive_s, 60);
	assert_int_equal(b->restart_base_s, 5);
	assert_int_equal(b->restart_cap_s, 30);
	assert_true(b->notifications);
	assert_false(b->notifications_local_only);
	assert_true(b->try_private);
	assert_null(b->cafile);
	assert_false(b->insecure);
	assert_true(b->outgoing_retain);
	assert_int_equal(b->max_packet_size, 0);
	assert_true(b->attempt_unsubscribe);
	assert_null(b->remote_username);
	assert_null(b->remote_password);
	config_fini(&cfg);
}

static void every_option_is_read(void **state)
{
	static const char text[] = "listener 1883\n"
				   "connection site\n"
				   "address a.example:1884 b.example\n"
				   "addresses ::1:8883\n"
				   "round_robin true\n"
				   "remote_clientid site-1\n"
				   "local_clientid site-local\n"
				   "remote_username u\n"
				   "remote_password p w\n" /* one word only: refused below */;
	static const char good[] =
	    "connection site\n"
	    "address a.example:1884 b.example\n"
	    "addresses ::1:8883\n"
	    "round_robin true\n"
	    "remote_clientid site-1\n"
	    "local_clientid site-local\n"
	    "remote_username u\n"
	    "remote_password secret\n"
	    "local_username bridge\n"
	    "local_password ignored\n"
	    "bridge_protocol_version mqttv50\n"
	    "cleansession true\n"
	    "local_cleansession false\n"
	    "keepalive_interval 5\n"
	    "restart_timeout 2 9\n"
	    "notifications false\n"
	    "notifications_local_only true\n"
	    "notification_topic state/site\n"
	    "try_private false\n"
	    "bridge_cafile ca.pem\n"
	    "bridge_certfile c.pem\n"
	    "bridge_keyfile k.pem\n"
	    "bridge_insecure true\n"
	    "bridge_outgoing_retain false\n"
	    "bridge_max_packet_size 1000\n"
	    "bridge_attempt_unsubscribe false\n"
	    "start_type automatic\n"
	    "allow_anonymous true\n" /* global options still apply after a section */
	    "connection second\n"
	    "address c.example\n"
	    "restart_timeout 7\n"
	    "clientid old-name\n"
	    "username old-user\n"
	    "password old-pass\n";
	struct moat_config cfg;
	struct moat_diag d;
	const struct moat_bridge_conf *b;

	(void)state;
	assert_int_equal(load(&cfg, text, &d), MOAT_E_CONFIG);
	assert_string_equal(d.msg, "b.conf:9: remote_password expects exactly one value");
	config_fini(&cfg);
	assert_int_equal(load(&cfg, good, &d), MOAT_OK);
	b = cfg.bridges;
	assert_int_equal(b->address_count, 3);
	assert_string_equal(b->addresses[0].host, "a.example");
	assert_int_equal(b->addresses[0].port, 1884);
	assert_string_equal(b->addresses[1].host, "b.example");
	assert_int_equal(b->addresses[1].port, 1883);
	assert_string_equal(b->addresses[2].host, "::1");
	assert_int_equal(b->addresses[2].port, 8883);
	assert_true(b->round_robin);
	assert_string_equal(b->remote_clientid, "site-1");
	assert_string_equal(b->local_clientid, "site-local");
	assert_string_equal(b->remote_username, "u");
	assert_string_equal(b->remote_password, "secret");
	assert_string_equal(b->local_username, "bridge");
	assert_int_equal(b->protocol_version, 5);
	assert_true(b->cleansession);
	assert_int_equal(b->local_cleansession, 0);
	assert_int_equal(b->keepalive_s, 5);
	assert_int_equal(b->restart_base_s, 2);
	assert_int_equal(b->restart_cap_s, 9);
	assert_false(b->notifications);
	assert_true(b->notifications_local_only);
	assert_string_equal(b->notification_topic, "state/site");
	assert_false(b->try_private);
	assert_string_equal(b->cafile, "ca.pem");
	assert_string_equal(b->certfile, "c.pem");
	assert_string_equal(b->keyfile, "k.pem");
	assert_true(b->insecure);
	assert_false(b->outgoing_retain);
	assert_int_equal(b->max_packet_size, 1000);
	assert_false(b->attempt_unsubscribe);
	assert_true(cfg.allow_anonymous);
	b = b->next;
	assert_non_null(b);
	assert_string_equal(b->name, "second");
	assert_int_equal(b->line, 29);
	assert_int_equal(b->restart_base_s, 7);
	assert_int_equal(b->restart_cap_s, 7);
	assert_string_equal(b->remote_clientid, "old-name");
	assert_string_equal(b->local_clientid, "local.old-name");
	assert_string_equal(b->remote_username, "old-user");
	assert_string_equal(b->remote_password, "old-pass");
	assert_null(b->next);
	config_fini(&cfg);
}

/* mosquitto.conf(5)'s table of patterns and prefixes. */
static void topic_lines_build_both_filters(void **state)
{
	static const char text[] = "connection t\naddress h\n"
				   "topic a/#\n"
				   "topic b/+ in\n"
				   "topic c both 2\n"
				   "topic d/# out 1 L/ R/\n"
				   "topic e out 0 L/ \"\"\n"
				   "topic f in 1 \"\" R/\n"
				   "topic g both 1 \"\" \"\"\n"
				   "topic \"\" in 2 local/one remote/one\n";
	static const struct {
		enum bridge_direction dir;
		uint8_t qos;
		const char *lp, *rp, *local, *remote;
	} want[] = {
	    {BRIDGE_OUT, 0, NULL, NULL, "a/#", "a/#"},
	    {BRIDGE_IN, 0, NULL, NULL, "b/+", "b/+"},
	    {BRIDGE_BOTH, 2, NULL, NULL, "c", "c"},
	    {BRIDGE_OUT, 1, "L/", "R/", "L/d/#", "R/d/#"},
	    {BRIDGE_OUT, 0, "L/", NULL, "L/e", "e"},
	    {BRIDGE_IN, 1, NULL, "R/", "f", "R/f"},
	    {BRIDGE_BOTH, 1, NULL, NULL, "g", "g"},
	    {BRIDGE_IN, 2, "local/one", "remote/one", "local/one", "remote/one"},
	};
	struct moat_config cfg;
	struct moat_diag d;
	const struct moat_bridge_topic *t;
	size_t i = 0;

	(void)state;
	assert_int_equal(load(&cfg, text, &d), MOAT_OK);
	for (t = cfg.bridges->topics; t != NULL; t = t->next, i++) {
		assert_true(i < sizeof(want) / sizeof(want[0]));
		assert_int_equal(t->direction, want[i].dir);
		assert_int_equal(t->qos, want[i].qos);
		if (want[i].lp == NULL)
			assert_null(t->local_prefix);
		else
			assert_string_equal(t->local_prefix, want[i].lp);
		if (want[i].rp == NULL)
			assert_null(t->remote_prefix);
		else
			assert_string_equal(t->remote_prefix, want[i].rp);
		assert_string_equal(t->local_filter, want[i].local);
		assert_string_equal(t->remote_filter, want[i].remote);
		assert_int_equal(t->line, 3 + i);
	}
	assert_int_equal(i, sizeof(want) / sizeof(want[0]));
	config_fini(&cfg);
}

static void refusals_name_file_line_and_fix(void **state)
{
	static const struct {
		const char *text, *want;
	} bad[] = {
	    {"address h\n",
	     "b.conf:1: address is a bridge option; put it after a \"connection NAME\" line"},
	    {"connection\n", "b.conf:1: connection expects one name"},
	    {"connection a\n",
	     "b.conf:1: connection a has no address; add \"address HOST[:PORT]\""},
	    {"connection a/b\n", "b.conf:1: connection name \"a/b\" names files and $SYS topics"},
	    {"connection ..\n", "b.conf:1: connection name \"..\" names files"},
	    {"connection a\naddress h:0\n", "b.conf:2: address: bad port in \"h:0\""},
	    {"connection a\naddress h:x\n", "b.conf:2: address: bad port"},
	    {"connection a\naddress :1883\n", "b.conf:2: address: no host in \":1883\""},
	    {"connection a\naddress h\ntopic\n", "b.conf:3: topic expects PATTERN"},
	    {"connection a\naddress h\ntopic a sideways\n",
	     "b.conf:3: topic direction must be out, in or both, got \"sideways\""},
	    {"connection a\naddress h\ntopic a in 3\n",
	     "b.conf:3: topic QoS must be 0, 1 or 2, got \"3\""},
	    {"connection a\naddress h\ntopic a in 1 L/\n", "b.conf:3: topic expects PATTERN"},
	    {"connection a\naddress h\ntopic a in 1 L/# R/\n",
	     "b.conf:3: topic prefixes must not contain + or #"},
	    {"connection a\naddress h\ntopic \"\" in 1 L/ \"\"\n",
	     "b.conf:3: a blank (\"\") topic pattern needs both a local and a remote prefix"},
	    {"connection a\naddress h\nbridge_protocol_version mqttv31\n",
	     "b.conf:3: bridge_protocol_version mqttv31 is not supported; use mqttv311 or mqttv50"},
	    {"connection a\naddress h\nbridge_protocol_version 5\n",
	     "b.conf:3: bridge_protocol_version expects mqttv311 or mqttv50"},
	    {"connection a\naddress h\nkeepalive_interval 4\n",
	     "b.conf:3: keepalive_interval expects seconds from 5 to 65535"},
	    {"connection a\naddress h\nrestart_timeout 10 5\n",
	     "b.conf:3: restart_timeout expects seconds"},
	    {"connection a\naddress h\nrestart_timeout 0\n",
	     "b.conf:3: restart_timeout expects seconds"},
	    {"connection a\naddress h\ncleansession yes\n",
	     "b.conf:3: cleansession expects true or false, got \"yes\""},
	    {"connection a\naddress h\nbridge_max_packet_size -1\n",
	     "b.conf:3: bridge_max_packet_size expects bytes"},
	    {"connection a\naddress h\nnotification_topic a/#\n",
	     "b.conf:3: notification_topic must be a topic name without + or #"},
	    {"connection a\naddress h\nremote_clientid site/#\n",
	     "b.conf:3: remote_clientid must be a client id without + or # (at most 256 bytes)"},
	    {"connection a\naddress h\nclientid a+b\n",
	     "b.conf:3: clientid must be a client id without + or # (at most 256 bytes)"},
	    {"connection a\naddress h\nlocal_clientid x#\n",
	     "b.conf:3: local_clientid must be a client id without + or # (at most 256 bytes)"},
	    {"connection a\naddress h\nstart_type lazy\n",
	     "b.conf:3: start_type lazy is not supported; use automatic"},
	    {"connection a\naddress h\nbridge_capath /etc/ssl/certs\n",
	     "b.conf:3: bridge option bridge_capath is not supported by moatd; put the CA "
	     "certificates in one PEM file and use bridge_cafile"},
	    {"connection a\naddress h\nbridge_psk 00\n",
	     "b.conf:3: bridge option bridge_psk is not supported by moatd"},
	    {"connection a\naddress h\nbridge_identity me\n",
	     "b.conf:3: bridge option bridge_identity is not supported"},
	    {"connection a\naddress h\nbridge_bind_address 10.0.0.1\n",
	     "b.conf:3: bridge option bridge_bind_address is not supported"},
	    {"connection a\naddress h\nbridge_alpn mqtt\n",
	     "b.conf:3: bridge option bridge_alpn is not supported"},
	    {"connection a\naddress h\nbridge_require_ocsp true\n",
	     "b.conf:3: bridge option bridge_require_ocsp is not supported"},
	    {"connection a\naddress h\nbridge_tls_version tlsv1.2\n",
	     "b.conf:3: bridge option bridge_tls_version is not supported"},
	    {"connection a\naddress h\nidle_timeout 60\n",
	     "b.conf:3: bridge option idle_timeout is not supported"},
	    {"connection a\naddress h\nthreshold 10\n",
	     "b.conf:3: bridge option threshold is not supported"},
	    {"connection a\naddress h\nremote_password p\n",
	     "b.conf:1: connection a has remote_password without remote_username"},
	    {"connection a\naddress h\nbridge_cafile ca\nbridge_certfile c\n",
	     "b.conf:1: connection a: bridge_certfile and bridge_keyfile go together"},
	    {"connection a\naddress h\nbridge_insecure true\n",
	     "b.conf:1: connection a has TLS options but no bridge_cafile"},
	    {"connection a\naddress h\nconnection a\naddress i\n",
	     "b.conf:3: connection a is declared twice (line 1 first)"},
	    {"connection a\naddress h\nlocal_clientid x\nconnection b\naddress i\nlocal_clientid "
	     "x\n",
	     "b.conf:4: connection b uses local_clientid x like connection a"},
	    {"connection a\naddress h\nbridge_unknown 1\n",
	     "b.conf:3: unknown option \"bridge_unknown\""},
	};
	struct moat_config cfg;
	struct moat_diag d;

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(load(&cfg, bad[i].text, &d), MOAT_E_CONFIG);
		if (strncmp(d.msg, bad[i].want, strlen(bad[i].want)) != 0)
			fail_msg("case %zu: got \"%s\", want \"%s...\"", i, d.msg, bad[i].want);
		config_fini(&cfg);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(no_bridge_by_default),
	    cmocka_unit_test(defaults_follow_mosquitto),
	    cmocka_unit_test(every_option_is_read),
	    cmocka_unit_test(topic_lines_build_both_filters),
	    cmocka_unit_test(refusals_name_file_line_and_fix),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
