/*
 * libFuzzer target for the topic policy loader (src/policy/topic_policy.c):
 * the input is a JSON policy document; when it loads, every policy's
 * filter, lookup and decisions are exercised: the policy found for a name
 * must match it, and a SUBSCRIBE to a plain topic must agree with the
 * delivery check on the same name.
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
	topic_policy_set_destroy(s);
	return 0;
}
