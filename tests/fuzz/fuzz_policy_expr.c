/*
 * libFuzzer target for the policy expression parser (src/policy/expr.c):
 * the input is parsed as an expression; on success the canonical form must
 * re-parse to the same canonical form, evaluation against a few fixed
 * attribute lists must not crash, and the canonical form must evaluate like
 * the original. On failure the diagnostic must be a non-empty string.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <moat/error.h>

#include "policy/expr.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static char *a0[] = {NULL};
	static char *a1[] = {"role", "sensor", "site", "plant-7", NULL};
	static char *a2[] = {"role", "operator", "role", "a", "x", "", "b", "1", NULL};
	static char *a3[] = {"a", "b", "c", "d", "in", "true", "role", NULL};
	static char *const *attrs[] = {NULL, a0, a1, a2, a3};
	struct policy_expr *e = NULL, *again = NULL;
	struct policy_diag d;
	const char *c;
	int rc;

	rc = policy_expr_parse(&e, (const char *)data, size, &d);
	if (rc != MOAT_OK) {
		if (e != NULL || d.msg[0] == '\0' || memchr(d.msg, '\0', sizeof(d.msg)) == NULL)
			abort();
		return 0;
	}
	c = policy_expr_canonical(e);
	if (policy_expr_parse(&again, c, strlen(c), &d) != MOAT_OK)
		abort();
	if (strcmp(c, policy_expr_canonical(again)) != 0)
		abort();
	for (size_t i = 0; i < sizeof(attrs) / sizeof(attrs[0]); i++)
		if (policy_eval(e, attrs[i]) != policy_eval(again, attrs[i]))
			abort();
	policy_expr_free(again);
	policy_expr_free(e);
	return 0;
}
