/*
 * libFuzzer target for the ACL file parser and the checks: the input is
 * parsed as ACL text; when it loads, it is compiled and checked with a few
 * identities (anonymous, a user, hostile ids, given roles) against fixed
 * topics and filters and against the input's first line used as a topic and
 * as a filter. Checks must not crash and must agree with a simple invariant:
 * a SUBSCRIBE to a plain topic allowed implies READ of it allowed.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <moat/error.h>

#include "auth/acl.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void probe(const struct acl *acl, const struct acl_identity *id, const char *t, size_t n)
{
	bool plain = memchr(t, '+', n) == NULL && memchr(t, '#', n) == NULL;
	bool sub = acl_check(acl, id, t, n, ACL_SUBSCRIBE);
	bool rd = acl_check(acl, id, t, n, ACL_READ);

	(void)acl_check(acl, id, t, n, ACL_WRITE);
	if (plain && n > 0 && memchr(t, '\0', n) == NULL &&
	    strncmp(t, "$share/", n < 7 ? n : 7) != 0 && sub && !rd)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const topics[] = {
	    "a",      "a/b",	   "#",		  "+/+",	  "a/#",
	    "$SYS/x", "users/u/x", "devices/c/#", "$share/g/a/+", ""};
	static const char *const roles[] = {"ops", "viewer", ""};
	const struct acl_identity ids[] = {
	    {.client_id = "c", .client_id_len = 1},
	    {.username = "u", .username_len = 1, .client_id = "c", .client_id_len = 1},
	    {.username = "#", .username_len = 1, .client_id = "+", .client_id_len = 1},
	    {.username = "a b",
	     .username_len = 3,
	     .client_id = "c",
	     .client_id_len = 1,
	     .roles = roles,
	     .role_count = 3},
	};
	struct acl_file f;
	struct moat_diag d;
	struct acl *acl;
	const char *text = (const char *)data;
	const char *nl = memchr(text, '\n', size);
	size_t first = nl != NULL ? (size_t)(nl - text) : size;

	if (acl_file_parse(&f, "fuzz", text, size, &d) != MOAT_OK)
		return 0;
	if (acl_create(&acl, &f) == MOAT_OK) {
		for (size_t i = 0; i < sizeof(ids) / sizeof(ids[0]); i++) {
			for (size_t t = 0; t < sizeof(topics) / sizeof(topics[0]); t++)
				probe(acl, &ids[i], topics[t], strlen(topics[t]));
			probe(acl, &ids[i], text, first);
		}
		acl_destroy(acl);
	}
	acl_file_fini(&f);
	return 0;
}
