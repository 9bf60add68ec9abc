/* Topic policy sets: loading the JSON document (fields, defaults, every
 * refusal with its "policies[i].field" prefix, weak algorithms by name),
 * lookup by specificity, ambiguity refused at load time, the policy id
 * (a fixed SHA-256 vector, equal for equivalent spellings), the
 * PUBLISH/SUBSCRIBE decisions with deny by default, and lookup, ambiguity
 * and SUBSCRIBE soundness against brute force over a small topic universe. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <moat/error.h>

#include "codec/topic.h"
#include "policy/topic_policy.h"

static struct topic_policy_set *load(const char *json)
{
	struct topic_policy_set *s = NULL;
	struct policy_diag d;
	int rc = topic_policy_set_parse(&s, json, strlen(json), &d);

	if (rc != MOAT_OK)
		fail_msg("load: %d %s", rc, d.msg);
	return s;
}

/* Loading <json> fails with <rc> and a message holding <part>. */
static void refused(const char *json, int rc, const char *part)
{
	struct topic_policy_set *s = NULL;
	struct policy_diag d;
	int got = topic_policy_set_parse(&s, json, strlen(json), &d);

	if (got != rc || strstr(d.msg, part) == NULL)
		fail_msg("%.80s: rc %d \"%s\"; want %d \"%s\"", json, got, d.msg, rc, part);
	assert_null(s);
}

static struct moat_bytes b(const char *s)
{
	return moat_bytes_str(s);
}

static const char *filter_for(const struct topic_policy_set *s, const char *topic)
{
	const struct topic_policy *p = topic_policy_for(s, b(topic));

	return p != NULL ? p->filter : NULL;
}

static void loads_fields_and_defaults(void **state)
{
	struct topic_policy_set *s = load(
	    "{\"policies\":[{\"filter\":\"plant/+/temp\","
	    "\"publish\":\"role == sensor && site == \\\"plant-7\\\"\","
	    "\"subscribe\":\"role in [operator, historian]\",\"alg\":\"chacha20-poly1305\","
	    "\"signed\":false,\"max_age_s\":300},"
	    "{\"filter\":\"alerts/#\",\"publish\":\"true\",\"alg\":\"aes-256-gcm\",\"signed\":true,"
	    "\"max_age_s\":4294967295},"
	    "{\"filter\":\"x\"}]}");
	const struct topic_policy *p;
	(void)state;

	assert_int_equal(topic_policy_count(s), 3);
	p = topic_policy_at(s, 0);
	assert_string_equal(p->filter, "plant/+/temp");
	assert_string_equal(policy_expr_canonical(p->publish),
			    "role == \"sensor\" && site == \"plant-7\"");
	assert_string_equal(policy_expr_canonical(p->subscribe),
			    "role in [\"historian\", \"operator\"]");
	assert_int_equal(p->alg, TOPIC_POLICY_CHACHA20_POLY1305);
	assert_int_equal(p->alg, 24); /* COSE id */
	assert_false(p->must_sign);
	assert_int_equal(p->max_age_s, 300);
	p = topic_policy_at(s, 1);
	assert_int_equal(p->alg, TOPIC_POLICY_AES_256_GCM);
	assert_int_equal(p->alg, 3);
	assert_true(p->must_sign);
	assert_int_equal(p->max_age_s, UINT32_MAX);
	assert_string_equal(policy_expr_canonical(p->subscribe), "false"); /* absent */
	p = topic_policy_at(s, 2);
	assert_int_equal(p->alg, TOPIC_POLICY_CHACHA20_POLY1305); /* default */
	assert_false(p->must_sign);
	assert_int_equal(p->max_age_s, 0);
	assert_string_equal(policy_expr_canonical(p->publish), "false");
	assert_null(topic_policy_at(s, 3));
	assert_string_equal(topic_policy_alg_name(TOPIC_POLICY_AES_256_GCM), "aes-256-gcm");
	assert_string_equal(topic_policy_alg_name(TOPIC_POLICY_CHACHA20_POLY1305),
			    "chacha20-poly1305");
	topic_policy_set_destroy(s);

	s = load(" {\"policies\": []} ");
	assert_int_equal(topic_policy_count(s), 0);
	topic_policy_set_destroy(s);
	topic_policy_set_destroy(NULL);
}

static void refuses_bad_documents_naming_the_field(void **state)
{
	(void)state;
	refused("{\"policies\":[{\"filter\":\"a\"},{\"filter\":\"b\",\"publish\":\"role = x\"}]}",
		MOAT_E_CONFIG, "policies[1].publish: column 6: unexpected '=' (write '==')");
	refused("{\"policies\":[{\"filter\":\"a\",\"subscribe\":\"(a == b\"}]}", MOAT_E_CONFIG,
		"policies[0].subscribe: column 8: expected ')'");
	refused("{\"policies\":[{\"filter\":\"a\",\"subscribe\":7}]}", MOAT_E_CONFIG,
		"policies[0].subscribe: must be a string");
	refused("{\"policies\":[{\"publish\":\"true\"}]}", MOAT_E_CONFIG,
		"policies[0].filter: missing");
	refused("{\"policies\":[{\"filter\":\"a/#/b\"}]}", MOAT_E_CONFIG,
		"policies[0].filter: \"a/#/b\" is not a valid MQTT topic filter");
	refused("{\"policies\":[{\"filter\":\"\"}]}", MOAT_E_CONFIG,
		"not a valid MQTT topic filter");
	refused("{\"policies\":[{\"filter\":\"a+\"}]}", MOAT_E_CONFIG, "not a valid");
	refused("{\"policies\":[{\"filter\":\"$share/g/a\"}]}", MOAT_E_CONFIG,
		"policies[0].filter: a \"$share/\" filter names no topics");
	refused("{\"policies\":[{\"filter\":true}]}", MOAT_E_CONFIG,
		"policies[0].filter: must be a string");
	refused("{\"policies\":[{\"filter\":\"a\",\"signd\":true}]}", MOAT_E_CONFIG,
		"policies[0]: unknown key \"signd\"");
	refused("{\"policies\":[{\"filter\":\"a\",\"publish\":\"true\",\"publish\":\"false\"}]}",
		MOAT_E_CONFIG, "policies[0].publish: given twice");
	refused("{\"policies\":[{\"filter\":\"a\",\"signed\":1}]}", MOAT_E_CONFIG,
		"policies[0].signed: must be true or false");
	refused("{\"policies\":[{\"filter\":\"a\",\"max_age_s\":-1}]}", MOAT_E_CONFIG,
		"policies[0].max_age_s: must be a whole number");
	refused("{\"policies\":[{\"filter\":\"a\",\"max_age_s\":1.5}]}", MOAT_E_CONFIG,
		"max_age_s: must be a whole number");
	refused("{\"policies\":[{\"filter\":\"a\",\"max_age_s\":4294967296}]}", MOAT_E_CONFIG,
		"max_age_s: must be a whole number");
	refused("{\"policies\":[{\"filter\":\"a\",\"max_age_s\":\"300\"}]}", MOAT_E_CONFIG,
		"max_age_s: must be a whole number");
	refused("{\"policies\":[{\"filter\":\"a\",\"alg\":24}]}", MOAT_E_CONFIG,
		"policies[0].alg: must be a string");
	refused("{\"policies\":[\"a\"]}", MOAT_E_CONFIG, "policies[0]: must be an object");
	refused("{\"policies\":{}}", MOAT_E_CONFIG, "\"policies\" must be an array");
	refused("{}", MOAT_E_CONFIG, "\"policies\" must be an array");
	refused("[]", MOAT_E_CONFIG, "the document must be an object");
	refused("{\"policies\":[],\"policies\":[]}", MOAT_E_CONFIG, "\"policies\" given twice");
	refused("{\"policies\":[{\"filter\":\"a\",\"alg\":\"x\\ny\\u001b[31m\"}]}", MOAT_E_CONFIG,
		"policies[0].alg: \"x?y?[31m\" is refused: unknown payload algorithm");
	refused("{\"policies\":[{\"filter\":\"a\",\"a\\r\":1}]}", MOAT_E_CONFIG,
		"policies[0]: unknown key \"a?\"");
	refused("{\"policies\":[{\"filter\":"
		"\"01234567890123456789012345678901234567890123456789/#/x\"}]}",
		MOAT_E_CONFIG, "\"0123456789012345678901234567890123456789...\" is not a valid");
	refused("{\"policies\":[],\"version\":1}", MOAT_E_CONFIG,
		"unknown top-level key \"version\"");
	refused("{\"policies\":[", MOAT_E_CONFIG, "not valid JSON");
	refused("", MOAT_E_CONFIG, "not valid JSON");
	refused("{\"policies\":[]} x", MOAT_E_CONFIG, "text after the JSON document (byte 16)");
	topic_policy_set_destroy(load("{\"policies\":[]} \n\t"));
	/* cJSON would cut the expression at the NUL: "true" alone */
	refused("{\"policies\":[{\"filter\":\"a\",\"publish\":\"true\\u0000 && role == admin\"}]}",
		MOAT_E_CONFIG, "NUL characters");
	refused("{\"policies\":[{\"filter\":\"a\\u0000b\"}]}", MOAT_E_CONFIG, "NUL characters");
	{
		struct topic_policy_set *s = NULL;
		struct policy_diag d;

		assert_int_equal(topic_policy_set_parse(&s, "{\"policies\":[]}\0", 16, &d),
				 MOAT_E_CONFIG);
		assert_non_null(strstr(d.msg, "NUL"));
	}
	/* an escaped backslash before u0000 is not a NUL escape */
	topic_policy_set_destroy(load("{\"policies\":[{\"filter\":\"a\",\"publish\":\"x == "
				      "\\\"\\\\\\\\u0000\\\"\"}]}"));
}

static void refuses_caps(void **state)
{
	size_t n = TOPIC_POLICY_MAX_COUNT + 1, len = 0;
	char *doc = malloc(n * 32 + 32);
	struct topic_policy_set *s = NULL;
	struct policy_diag d;
	(void)state;

	assert_non_null(doc);
	len += (size_t)sprintf(doc, "{\"policies\":[");
	for (size_t i = 0; i < n; i++)
		len += (size_t)sprintf(doc + len, "%s{\"filter\":\"t/%zu\"}", i > 0 ? "," : "", i);
	strcpy(doc + len, "]}");
	refused(doc, MOAT_E_LIMIT, "more than 1024 policies (cap)");
	/* exactly the cap loads */
	sprintf(strstr(doc, ",{\"filter\":\"t/1024\"}"), "]}");
	topic_policy_set_destroy(load(doc));
	free(doc);

	assert_int_equal(topic_policy_set_parse(&s, "{}", TOPIC_POLICY_MAX_DOC + 1, &d),
			 MOAT_E_LIMIT);
	assert_non_null(strstr(d.msg, "over the cap"));
	doc = malloc(256);
	assert_non_null(doc);
	len = (size_t)sprintf(doc, "{\"policies\":[{\"filter\":\"a\",\"publish\":\"");
	for (size_t i = 0; i < 33; i++)
		doc[len++] = '(';
	strcpy(doc + len, "a == b\"}]}");
	refused(doc, MOAT_E_LIMIT, "policies[0].publish: column 33: nesting of '(' and '!'");
	free(doc);
}

static void refuses_weak_algorithms_by_name(void **state)
{
	static const struct {
		const char *alg, *why;
	} cases[] = {
	    {"des", "DES has a 56-bit key"},
	    {"DES-EDE3-CBC", "3DES"},
	    {"3des", "3DES"},
	    {"blowfish", "Blowfish"},
	    {"rc4", "RC4"},
	    {"aes-128-ecb", "ECB"},
	    {"aes-256-cbc", "CBC without authentication"},
	    {"aes-256-cfb", "CFB without authentication"},
	    {"aes-256-ofb", "OFB without authentication"},
	    {"rsa", "RSA key transport"},
	    {"rsa-oaep", "RSA key transport"},
	    {"ecc-160", "ECC-160"},
	    {"secp160r1", "ECC-160"},
	};
	char doc[256];
	(void)state;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		snprintf(doc, sizeof(doc), "{\"policies\":[{\"filter\":\"a\",\"alg\":\"%s\"}]}",
			 cases[i].alg);
		refused(doc, MOAT_E_CONFIG, "policies[0].alg: \"");
		refused(doc, MOAT_E_CONFIG, cases[i].why);
		refused(doc, MOAT_E_CONFIG, "is refused");
		refused(doc, MOAT_E_CONFIG, "chacha20-poly1305 or aes-256-gcm");
	}
	refused("{\"policies\":[{\"filter\":\"a\",\"alg\":\"aes-128-gcm\"}]}", MOAT_E_CONFIG,
		"policies[0].alg: \"aes-128-gcm\" is refused: unknown payload algorithm; only "
		"chacha20-poly1305 and aes-256-gcm are offered");
}

static void lookup_picks_the_most_specific(void **state)
{
	struct topic_policy_set *s = load("{\"policies\":["
					  "{\"filter\":\"plant/#\"},"
					  "{\"filter\":\"plant/+/temp\"},"
					  "{\"filter\":\"plant/7/temp\"},"
					  "{\"filter\":\"plant/+/+/x\"},"
					  "{\"filter\":\"#\"},"
					  "{\"filter\":\"$SYS/#\"}]}");
	(void)state;

	assert_string_equal(filter_for(s, "plant/7/temp"), "plant/7/temp");
	assert_string_equal(filter_for(s, "plant/8/temp"), "plant/+/temp");
	assert_string_equal(filter_for(s, "plant/8/hum"), "plant/#");
	assert_string_equal(filter_for(s, "plant"), "plant/#"); /* '#' matches the parent */
	/* fewest wildcards first: plant/# (1) beats plant/+/+/x (2) */
	assert_string_equal(filter_for(s, "plant/a/b/x"), "plant/#");
	assert_string_equal(filter_for(s, "other/a/b/x"), "#");
	assert_string_equal(filter_for(s, "office/1"), "#");
	assert_string_equal(filter_for(s, "$SYS/load"), "$SYS/#");
	assert_null(filter_for(s, "$other/x"));	    /* '#' does not match '$' topics */
	assert_null(filter_for(s, "plant/+/temp")); /* not a topic name */
	assert_null(filter_for(s, ""));
	topic_policy_set_destroy(s);

	/* more levels win at equal wildcards; then more bytes */
	s = load("{\"policies\":[{\"filter\":\"a/#\"},{\"filter\":\"+/b/c\"},"
		 "{\"filter\":\"+/bb\"}]}");
	assert_string_equal(filter_for(s, "a/b/c"), "+/b/c");
	assert_string_equal(filter_for(s, "a/bb"), "+/bb");
	assert_string_equal(filter_for(s, "a/b"), "a/#");
	topic_policy_set_destroy(s);
}

static void ambiguity_and_duplicates_refused_at_load(void **state)
{
	struct topic_policy_set *s;
	(void)state;

	refused(
	    "{\"policies\":[{\"filter\":\"a/b\"},{\"filter\":\"a/+/c\"},{\"filter\":\"a/b/+\"}]}",
	    MOAT_E_CONFIG,
	    "policies[2].filter: \"a/b/+\" overlaps policies[1].filter \"a/+/c\" and is as "
	    "specific");
	refused("{\"policies\":[{\"filter\":\"a/#\"},{\"filter\":\"+/b\"}]}", MOAT_E_CONFIG,
		"ambiguous");
	refused("{\"policies\":[{\"filter\":\"a/b\"},{\"filter\":\"a/b\"}]}", MOAT_E_CONFIG,
		"policies[1].filter: \"a/b\" is already the filter of policies[0]");
	/* equally specific but disjoint: fine */
	s = load("{\"policies\":[{\"filter\":\"a/+/c\"},{\"filter\":\"b/+/c\"},"
		 "{\"filter\":\"+/x/d\"},{\"filter\":\"$x/#\"},{\"filter\":\"+/#\"}]}");
	assert_int_equal(topic_policy_count(s), 5);
	topic_policy_set_destroy(s);
}

/* The id of the only policy in {"policies":[{<entry>}]}. */
static void id_of(const char *entry, uint8_t id[TOPIC_POLICY_ID_LEN])
{
	char doc[512];
	struct topic_policy_set *s;

	snprintf(doc, sizeof(doc), "{\"policies\":[{%s}]}", entry);
	s = load(doc);
	memcpy(id, topic_policy_at(s, 0)->id, TOPIC_POLICY_ID_LEN);
	topic_policy_set_destroy(s);
}

static void policy_id_is_sha256_of_canonical_parts(void **state)
{
	/* python3: sha256(b'moat/topic-policy/1\0plant/+/temp\0role == "sensor"\0false\0'
	 *                 b'chacha20-poly1305\0') */
	static const uint8_t want[32] = {0xda, 0x3e, 0xb2, 0xbb, 0xe3, 0x1d, 0x80, 0xad,
					 0xfb, 0xca, 0xe5, 0x51, 0xd8, 0xd4, 0x64, 0x37,
					 0x7e, 0x48, 0xf9, 0xed, 0x4b, 0x7c, 0x0e, 0xa2,
					 0xc0, 0xe2, 0xd3, 0xc1, 0x42, 0xf6, 0x84, 0xdd};
	uint8_t a[32], x[32];
	(void)state;

	id_of("\"filter\":\"plant/+/temp\",\"publish\":\"role==sensor\"", a);
	assert_memory_equal(a, want, 32);
	/* spelling, "signed" and the max age do not change the id */
	id_of("\"filter\":\"plant/+/temp\",\"publish\":\"(role == \\\"sensor\\\")\","
	      "\"subscribe\":\"false\",\"signed\":true,\"max_age_s\":9,"
	      "\"alg\":\"chacha20-poly1305\"",
	      x);
	assert_memory_equal(a, x, 32);
	/* the filter, the alg, an operator, publish vs subscribe do */
	id_of("\"filter\":\"plant/+/hum\",\"publish\":\"role==sensor\"", x);
	assert_memory_not_equal(a, x, 32);
	id_of("\"filter\":\"plant/+/temp\",\"publish\":\"role==sensor\",\"alg\":\"aes-256-gcm\"",
	      x);
	assert_memory_not_equal(a, x, 32);
	id_of("\"filter\":\"plant/+/temp\",\"publish\":\"role!=sensor\"", x);
	assert_memory_not_equal(a, x, 32);
	id_of("\"filter\":\"plant/+/temp\",\"subscribe\":\"role==sensor\"", x);
	assert_memory_not_equal(a, x, 32);
}

static void publish_is_denied_by_default(void **state)
{
	struct topic_policy_set *s =
	    load("{\"policies\":[{\"filter\":\"plant/+/temp\","
		 "\"publish\":\"role == sensor && site == \\\"plant-7\\\"\","
		 "\"subscribe\":\"role in [historian, operator]\"}]}");
	struct topic_policy_set *empty = load("{\"policies\":[]}");
	char *sensor[] = {"role", "sensor", "site", "plant-7", NULL};
	char *other_site[] = {"role", "sensor", "site", "plant-8", NULL};
	char *op[] = {"role", "operator", NULL};
	(void)state;

	assert_true(topic_policy_allows(s, b("plant/1/temp"), sensor, TOPIC_POLICY_PUB));
	assert_false(topic_policy_allows(s, b("plant/1/temp"), other_site, TOPIC_POLICY_PUB));
	assert_false(topic_policy_allows(s, b("plant/1/temp"), op, TOPIC_POLICY_PUB));
	assert_false(topic_policy_allows(s, b("plant/1/temp"), NULL, TOPIC_POLICY_PUB));
	/* no policy for the topic: deny */
	assert_false(topic_policy_allows(s, b("plant/1/hum"), sensor, TOPIC_POLICY_PUB));
	assert_false(topic_policy_allows(empty, b("plant/1/temp"), sensor, TOPIC_POLICY_PUB));
	assert_false(topic_policy_allows(empty, b("#"), op, TOPIC_POLICY_SUB));
	/* a filter is not a topic name to publish to */
	assert_false(topic_policy_allows(s, b("plant/+/temp"), sensor, TOPIC_POLICY_PUB));
	assert_false(topic_policy_allows(s, b("plant/1/temp"), sensor, 0));
	/* subscribe side */
	assert_true(topic_policy_allows(s, b("plant/1/temp"), op, TOPIC_POLICY_SUB));
	assert_true(topic_policy_allows(s, b("plant/+/temp"), op, TOPIC_POLICY_SUB));
	assert_false(topic_policy_allows(s, b("plant/+/temp"), sensor, TOPIC_POLICY_SUB));
	assert_false(topic_policy_allows(s, b("plant/#"), op, TOPIC_POLICY_SUB)); /* not covered */
	topic_policy_set_destroy(s);
	topic_policy_set_destroy(empty);
}

static void subscribe_filters_need_every_applicable_policy(void **state)
{
	struct topic_policy_set *s =
	    load("{\"policies\":["
		 "{\"filter\":\"#\",\"subscribe\":\"false\"},"
		 "{\"filter\":\"plant/#\",\"subscribe\":\"role == op\"},"
		 "{\"filter\":\"plant/secret/#\",\"subscribe\":\"level == 9\"},"
		 "{\"filter\":\"$SYS/#\",\"subscribe\":\"role == admin\"}]}");
	char *op[] = {"role", "op", NULL};
	char *op9[] = {"role", "op", "level", "9", NULL};
	char *admin[] = {"role", "admin", NULL};
	(void)state;

	/* plant/7/# is covered by plant/#; the less specific '#' never applies inside it */
	assert_true(topic_policy_allows(s, b("plant/7/#"), op, TOPIC_POLICY_SUB));
	assert_true(topic_policy_allows(s, b("plant/7/temp"), op, TOPIC_POLICY_SUB));
	/* plant/+/temp also delivers plant/secret/temp: its policy must allow too */
	assert_false(topic_policy_allows(s, b("plant/+/temp"), op, TOPIC_POLICY_SUB));
	assert_true(topic_policy_allows(s, b("plant/+/temp"), op9, TOPIC_POLICY_SUB));
	assert_false(topic_policy_allows(s, b("plant/#"), op, TOPIC_POLICY_SUB));
	assert_true(topic_policy_allows(s, b("plant/#"), op9, TOPIC_POLICY_SUB));
	assert_false(topic_policy_allows(s, b("plant/secret/x"), op, TOPIC_POLICY_SUB));
	assert_true(topic_policy_allows(s, b("plant/secret/x"), op9, TOPIC_POLICY_SUB));
	/* '#' is the covering policy for '#' and for +/temp, and it denies */
	assert_false(topic_policy_allows(s, b("#"), op9, TOPIC_POLICY_SUB));
	assert_false(topic_policy_allows(s, b("+/temp"), op9, TOPIC_POLICY_SUB));
	/* '$' topics: '#' neither covers nor overlaps them */
	assert_true(topic_policy_allows(s, b("$SYS/#"), admin, TOPIC_POLICY_SUB));
	assert_true(topic_policy_allows(s, b("$SYS/+/load"), admin, TOPIC_POLICY_SUB));
	assert_false(topic_policy_allows(s, b("$SYS/#"), op9, TOPIC_POLICY_SUB));
	assert_false(topic_policy_allows(s, b("$other/#"), admin, TOPIC_POLICY_SUB));
	/* shared subscriptions are checked on their inner filter */
	assert_true(topic_policy_allows(s, b("$share/g/plant/7/#"), op, TOPIC_POLICY_SUB));
	assert_false(topic_policy_allows(s, b("$share/g/plant/#"), op, TOPIC_POLICY_SUB));
	assert_false(topic_policy_allows(s, b("$share/g"), op9, TOPIC_POLICY_SUB));
	assert_false(topic_policy_allows(s, b("$share//plant/7/#"), op9, TOPIC_POLICY_SUB));
	/* invalid filters */
	assert_false(topic_policy_allows(s, b("plant/#/x"), op9, TOPIC_POLICY_SUB));
	assert_false(topic_policy_allows(s, b(""), op9, TOPIC_POLICY_SUB));
	topic_policy_set_destroy(s);
}

/* ---- exhaustive check of the filter relations on a small universe ---- */

static size_t make_topics(char out[][16], bool filters)
{
	static const char *const lit[] = {"a", "b", "$s"};
	static const char *const all[] = {"a", "b", "$s", "+", "#"};
	const char *const *lv = filters ? all : lit;
	size_t nlv = filters ? 5 : 3, n = 0;

	for (size_t len = 1; len <= 3; len++) {
		size_t combos = 1;

		for (size_t i = 0; i < len; i++)
			combos *= nlv;
		for (size_t c = 0; c < combos; c++) {
			size_t k = c, o = 0;
			bool ok = true;

			for (size_t i = 0; i < len; i++, k /= nlv) {
				const char *l = lv[k % nlv];

				if (strcmp(l, "#") == 0 && i + 1 < len)
					ok = false;
				if (strcmp(l, "$s") == 0 && i > 0)
					l = "s$"; /* '$' matters only in the first level */
				o += (size_t)sprintf(out[n] + o, "%s%s", i > 0 ? "/" : "", l);
			}
			if (ok)
				n++;
		}
	}
	return n;
}

static void rank_of(const char *f, size_t r[3])
{
	r[0] = 0;
	r[1] = 1;
	r[2] = strlen(f);
	for (const char *c = f; *c != '\0'; c++) {
		r[0] += *c == '+' || *c == '#';
		r[1] += *c == '/';
	}
}

/* -1 when filter <a> is more specific than <b>, 1 when less, 0 when equal. */
static int rank_cmp_ref(const char *a, const char *b)
{
	size_t ra[3], rb[3];

	rank_of(a, ra);
	rank_of(b, rb);
	if (ra[0] != rb[0])
		return ra[0] < rb[0] ? -1 : 1;
	for (size_t i = 1; i < 3; i++)
		if (ra[i] != rb[i])
			return ra[i] > rb[i] ? -1 : 1;
	return 0;
}

static void relations_agree_with_brute_force(void **state)
{
	static char filters[256][16], names[64][16];
	size_t nf = make_topics(filters, true), nn = make_topics(names, false);
	uint32_t seed = 12345;
	size_t loaded = 0, ambiguous = 0;
	(void)state;

	assert_true(nf > 100 && nf < 256);
	assert_int_equal(nn, 39);
	for (int iter = 0; iter < 600; iter++) {
		char doc[1024];
		size_t pick[4], k, len;
		bool sub[4];
		struct topic_policy_set *s = NULL;
		struct policy_diag d;
		bool clash = false;
		int rc;

		seed = seed * 1103515245u + 12345u;
		k = 1 + (seed >> 16) % 4;
		len = (size_t)sprintf(doc, "{\"policies\":[");
		for (size_t i = 0; i < k; i++) {
			seed = seed * 1103515245u + 12345u;
			pick[i] = (seed >> 8) % nf;
			sub[i] = (seed >> 4) & 1;
			for (size_t j = 0; j < i; j++)
				if (pick[j] == pick[i])
					pick[i] = (pick[i] + 1) %
						  nf; /* distinct enough; duplicates refused */
			len += (size_t)sprintf(
			    doc + len, "%s{\"filter\":\"%s\",\"subscribe\":\"%s\"}",
			    i > 0 ? "," : "", filters[pick[i]], sub[i] ? "true" : "false");
		}
		strcpy(doc + len, "]}");
		/* equally specific filters with a common topic name: must be refused */
		for (size_t i = 0; i < k; i++)
			for (size_t j = 0; j < i; j++) {
				struct moat_bytes fi = b(filters[pick[i]]),
						  fj = b(filters[pick[j]]);

				if (strcmp(filters[pick[i]], filters[pick[j]]) == 0)
					clash = true;
				if (rank_cmp_ref(filters[pick[i]], filters[pick[j]]) != 0)
					continue;
				for (size_t t = 0; t < nn; t++)
					if (topic_matches(fi, b(names[t])) &&
					    topic_matches(fj, b(names[t])))
						clash = true;
			}
		rc = topic_policy_set_parse(&s, doc, strlen(doc), &d);
		if (clash) {
			if (rc != MOAT_E_CONFIG)
				fail_msg("%s loaded", doc);
			ambiguous++;
			continue;
		}
		if (rc != MOAT_OK)
			fail_msg("%s: %s", doc, d.msg);
		loaded++;
		/* lookup: the most specific matching policy, found by brute force */
		for (size_t t = 0; t < nn; t++) {
			const struct topic_policy *p = topic_policy_for(s, b(names[t]));
			const char *best = NULL;

			for (size_t i = 0; i < k; i++)
				if (topic_matches(b(filters[pick[i]]), b(names[t])) &&
				    (best == NULL || rank_cmp_ref(filters[pick[i]], best) < 0))
					best = filters[pick[i]];
			if ((p == NULL) != (best == NULL) ||
			    (p != NULL && strcmp(p->filter, best) != 0))
				fail_msg("%s: %s -> %s, want %s", doc, names[t],
					 p != NULL ? p->filter : "none",
					 best != NULL ? best : "none");
		}
		/* a SUBSCRIBE allowed on F allows every topic F delivers */
		for (size_t f = 0; f < nf; f++) {
			if (!topic_policy_allows(s, b(filters[f]), NULL, TOPIC_POLICY_SUB))
				continue;
			for (size_t t = 0; t < nn; t++)
				if (topic_matches(b(filters[f]), b(names[t])) &&
				    !topic_policy_allows(s, b(names[t]), NULL, TOPIC_POLICY_SUB))
					fail_msg("%s: %s allowed but not %s", doc, filters[f],
						 names[t]);
		}
		topic_policy_set_destroy(s);
	}
	assert_true(loaded > 100);
	assert_true(ambiguous > 10);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(loads_fields_and_defaults),
	    cmocka_unit_test(refuses_bad_documents_naming_the_field),
	    cmocka_unit_test(refuses_caps),
	    cmocka_unit_test(refuses_weak_algorithms_by_name),
	    cmocka_unit_test(lookup_picks_the_most_specific),
	    cmocka_unit_test(ambiguity_and_duplicates_refused_at_load),
	    cmocka_unit_test(policy_id_is_sha256_of_canonical_parts),
	    cmocka_unit_test(publish_is_denied_by_default),
	    cmocka_unit_test(subscribe_filters_need_every_applicable_policy),
	    cmocka_unit_test(relations_agree_with_brute_force),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
