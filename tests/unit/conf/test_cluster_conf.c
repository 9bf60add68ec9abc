/*
 * Unit tests for the cluster's configuration lines (src/conf/cluster_conf.c):
 * values kept (cluster_queue_max_bytes too), cluster_url repeatable, and refusals that name the file, the
 * line and the fix (an unreadable TLS or credentials file included).
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
	return config_load_buffer(cfg, "c.conf", text, strlen(text), d);
}

static void no_cluster_by_default(void **state)
{
	struct moat_config cfg;
	struct moat_diag d;

	(void)state;
	assert_int_equal(load(&cfg, "allow_anonymous true\n", &d), MOAT_OK);
	assert_int_equal(cfg.cluster.url_count, 0);
	assert_null(cfg.cluster.urls);
	assert_null(cfg.cluster.name);
	assert_null(cfg.cluster.node_name);
	assert_int_equal(cfg.cluster.replicas, 0); /* one copy */
	assert_int_equal(cfg.cluster.queue_max_bytes, 0); /* CLUSTER_QUEUE_MAX_DEFAULT */
	config_fini(&cfg);
}

static void every_line_kept(void **state)
{
	static const char text[] = "cluster_url nats://10.0.0.1:4222\n"
				   "cluster_url tls://10.0.0.2:4222\n"
				   "cluster_name plant-7\n"
				   "node_name node_a\n"
				   "cluster_tls_cafile /dev/null\n"
				   "cluster_tls_certfile /dev/zero\n"
				   "cluster_tls_keyfile /dev/random\n"
				   "cluster_credentials /dev/urandom\n"
				   "cluster_replicas 3\n"
				   "cluster_queue_max_bytes 1048576\n";
	struct moat_config cfg;
	struct moat_diag d;

	(void)state;
	assert_int_equal(load(&cfg, text, &d), MOAT_OK);
	assert_int_equal(cfg.cluster.url_count, 2);
	assert_string_equal(cfg.cluster.urls[0], "nats://10.0.0.1:4222");
	assert_string_equal(cfg.cluster.urls[1], "tls://10.0.0.2:4222");
	assert_string_equal(cfg.cluster.name, "plant-7");
	assert_string_equal(cfg.cluster.node_name, "node_a");
	assert_string_equal(cfg.cluster.tls_cafile, "/dev/null");
	assert_string_equal(cfg.cluster.tls_certfile, "/dev/zero");
	assert_string_equal(cfg.cluster.tls_keyfile, "/dev/random");
	assert_string_equal(cfg.cluster.credentials, "/dev/urandom");
	assert_int_equal(cfg.cluster.replicas, 3);
	assert_int_equal(cfg.cluster.queue_max_bytes, 1048576);
	config_fini(&cfg);
}

static void refusals_name_file_line_and_fix(void **state)
{
	static const struct {
		const char *text, *want;
	} bad[] = {
	    {"cluster_url\n", "c.conf:1: cluster_url expects one NATS server URL"},
	    {"cluster_url http://x:4222\n", "c.conf:1: cluster_url expects one NATS server URL"},
	    {"cluster_url nats://a:1\ncluster_name a.b\n",
	     "c.conf:2: cluster_name expects one name of 1 to 64 letters, digits, '-' or '_'"},
	    {"cluster_url nats://a:1\nnode_name *\n", "c.conf:2: node_name expects one name"},
	    {"cluster_url nats://a:1\nnode_name "
	     "a12345678901234567890123456789012345678901234567890123456789012345\n",
	     "c.conf:2: node_name expects one name"},
	    {"cluster_url nats://a:1\ncluster_credentials\n",
	     "c.conf:2: cluster_credentials expects one file path"},
	    {"\ncluster_name x\n", "c.conf:2: cluster options without cluster_url; add"},
	    {"cluster_url nats://a:1\ncluster_tls_certfile /c.pem\n",
	     "c.conf:1: cluster_tls_certfile and cluster_tls_keyfile go together"},
	    {"cluster_url nats://a:1\ncluster_replicas 2\n",
	     "c.conf:2: cluster_replicas expects 1, 3 or 5"},
	    {"cluster_urls nats://a:1\n", "c.conf:1: unknown option \"cluster_urls\""},
	    {"cluster_url nats://a:1\ncluster_queue_max_bytes 0\n",
	     "c.conf:2: cluster_queue_max_bytes expects a number of bytes above 0"},
	    {"cluster_url nats://a:1\ncluster_queue_max_bytes 64M\n",
	     "c.conf:2: cluster_queue_max_bytes expects a number of bytes above 0"},
	    {"cluster_url nats://a:1\ncluster_queue_max_bytes -1\n",
	     "c.conf:2: cluster_queue_max_bytes expects a number of bytes above 0"},
	    {"cluster_queue_max_bytes 1000\n", "c.conf:1: cluster options without cluster_url"},
	    {"cluster_url nats://a:1\ncluster_tls_cafile /dev/null\n\n"
	     "cluster_credentials /nonexistent/node.creds\n",
	     "c.conf:4: cluster_credentials /nonexistent/node.creds: cannot read it"},
	    {"cluster_url nats://a:1\ncluster_tls_certfile /dev/null\n"
	     "cluster_tls_keyfile /nonexistent/k.pem\n",
	     "c.conf:3: cluster_tls_keyfile /nonexistent/k.pem: cannot read it"},
	};

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct moat_config cfg;
		struct moat_diag d = {{0}};

		assert_int_equal(load(&cfg, bad[i].text, &d), MOAT_E_CONFIG);
		if (strncmp(d.msg, bad[i].want, strlen(bad[i].want)) != 0)
			fail_msg("case %zu: got \"%s\", want \"%s...\"", i, d.msg, bad[i].want);
		config_fini(&cfg);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(no_cluster_by_default),
	    cmocka_unit_test(every_line_kept),
	    cmocka_unit_test(refusals_name_file_line_and_fix),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
