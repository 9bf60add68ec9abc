/*
 * libFuzzer target for the topic policy loader (src/policy/topic_policy.c):
 * the input is a JSON policy document; when it loads, every policy's
 * filter, lookup and decisions are exercised: the policy found for a name
 * must match it, a SUBSCRIBE to a plain topic must agree with the
 * delivery check on the same name, and a SUBSCRIBE allowed on a filter
 * must allow the delivery of every probe topic the filter matches.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <moat/error.h>

#include "codec/topic.h"
#include "policy/topic_policy.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void probe(const struct topic_policy_set *s, const char *t)
{
	static char *a1[] = {"role", "sensor", "site", "plant-7", NULL};
	static char *a2[] = {"role", "operator", "role", "admin", NULL};
	char *const *attrs[] = {NULL, a1, a2};
	struct moat_bytes b = moat_bytes_str(t);
	const struct topic_policy *p = topic_policy_for(s, b);

	if (p != NULL && !topic_matches(moat_bytes_str(p->filter), b))
		abort();
	for (size_t i = 0; i < sizeof(attrs) / sizeof(attrs[0]); i++) {
		bool pub = topic_policy_allows(s, b, attrs[i], TOPIC_POLICY_PUB);
		bool sub = topic_policy_allows(s, b, attrs[i], TOPIC_POLICY_SUB);

		if (pub && (p == NULL || !policy_eval(p->publish, attrs[i])))
			abort();
		if (topic_name_is_valid(b) &&
		    sub != (p != NULL && policy_eval(p->subscribe, attrs[i])))
			abort();
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const topics[] = {
	    "a",      "a/b",	      "plant/7/temp", "plant/+/temp", "#", "+/+",
	    "$SYS/x", "$share/g/a/#", "alerts/x",     "plant/#",      ""};
	static const char *const names[] = {
	    "a",      "a/b",	  "a/b/c",  "plant/7/temp", "plant/7",		"plant",
	    "$SYS/x", "alerts/x", "x/temp", "alerts",	    "plant/secret/temp"};
	struct topic_policy_set *s = NULL;
	struct policy_diag d;

	if (topic_policy_set_parse(&s, (const char *)data, size, &d) != MOAT_OK) {
		if (s != NULL || d.msg[0] == '\0')
			abort();
		return 0;
	}
	for (size_t i = 0; i < sizeof(topics) / sizeof(topics[0]); i++)
		probe(s, topics[i]);
	for (size_t i = 0; i < topic_policy_count(s); i++)
		probe(s, topic_policy_at(s, i)->filter);
	/* a SUBSCRIBE allowed on a filter allows every topic it delivers */
	for (size_t f = 0; f < sizeof(topics) / sizeof(topics[0]); f++) {
		if (!topic_policy_allows(s, moat_bytes_str(topics[f]), NULL, TOPIC_POLICY_SUB))
			continue;
		for (size_t t = 0; t < sizeof(names) / sizeof(names[0]); t++)
			if (topic_matches(moat_bytes_str(topics[f]), moat_bytes_str(names[t])) &&
			    !topic_policy_allows(s, moat_bytes_str(names[t]), NULL,
						 TOPIC_POLICY_SUB))
				abort();
	}
	topic_policy_set_destroy(s);
	return 0;
}
