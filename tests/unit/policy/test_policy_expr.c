/* The policy expression language: every operator, precedence, parentheses,
 * escapes and UTF-8, every syntax error with its column, the caps at and
 * over their limits, evaluation with present, absent and repeated
 * attributes, and the canonical form (equal for equivalent spellings,
 * different for different policies, re-parsing to itself). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <moat/error.h>

#include "policy/expr.h"

static struct policy_expr *parse(const char *text)
{
	struct policy_expr *e = NULL;
	struct policy_diag d;
	int rc = policy_expr_parse(&e, text, strlen(text), &d);

	if (rc != MOAT_OK)
		fail_msg("parse \"%s\": %d %s", text, rc, d.msg);
	return e;
}

/* The canonical text of <text> is <want>, and re-parses to itself. */
static void canon_is(const char *text, const char *want)
{
	struct policy_expr *e = parse(text), *again;

	assert_string_equal(policy_expr_canonical(e), want);
	again = parse(policy_expr_canonical(e));
	assert_string_equal(policy_expr_canonical(again), want);
	policy_expr_free(again);
	policy_expr_free(e);
}

static void same_canon(const char *a, const char *b)
{
	struct policy_expr *x = parse(a), *y = parse(b);

	if (strcmp(policy_expr_canonical(x), policy_expr_canonical(y)) != 0)
		fail_msg("\"%s\" -> %s but \"%s\" -> %s", a, policy_expr_canonical(x), b,
			 policy_expr_canonical(y));
	policy_expr_free(x);
	policy_expr_free(y);
}

static void other_canon(const char *a, const char *b)
{
	struct policy_expr *x = parse(a), *y = parse(b);

	assert_string_not_equal(policy_expr_canonical(x), policy_expr_canonical(y));
	policy_expr_free(x);
	policy_expr_free(y);
}

/* Parsing the <len> bytes at <text> fails with <rc> at <column> and a message holding <part>. */
static void fails_n(const char *text, size_t len, int rc, size_t column, const char *part)
{
	struct policy_expr *e = NULL;
	struct policy_diag d;
	int got = policy_expr_parse(&e, text, len, &d);

	if (got != rc || d.column != column || strstr(d.msg, part) == NULL)
		fail_msg("\"%.60s\": rc %d column %zu \"%s\"; want rc %d column %zu \"%s\"", text,
			 got, d.column, d.msg, rc, column, part);
	assert_null(e);
	if (column > 0) {
		char prefix[32];

		snprintf(prefix, sizeof(prefix), "column %zu: ", column);
		assert_int_equal(strncmp(d.msg, prefix, strlen(prefix)), 0);
	}
}

static void fails(const char *text, int rc, size_t column, const char *part)
{
	fails_n(text, strlen(text), rc, column, part);
}

static bool eval(const char *text, char *const *attrs)
{
	struct policy_expr *e = parse(text);
	bool r = policy_eval(e, attrs);

	policy_expr_free(e);
	return r;
}

static void parses_every_operator(void **state)
{
	(void)state;
	canon_is("role==sensor", "role == \"sensor\"");
	canon_is("role != \"sensor\"", "role != \"sensor\"");
	canon_is("role in [b,a]", "role in [\"a\", \"b\"]");
	canon_is("!(role == a)", "!(role == \"a\")");
	canon_is("!role == a", "!(role == \"a\")");
	canon_is("true", "true");
	canon_is("false", "false");
	canon_is("!true", "!true");
	canon_is("a == 1 && b == 2", "a == \"1\" && b == \"2\"");
	canon_is("a == 1 || b == 2", "a == \"1\" || b == \"2\"");
	canon_is(" \t\r\n( x.y-z_1 == v.1-2_ ) \n", "x.y-z_1 == \"v.1-2_\"");
	canon_is("in == x", "in == \"x\""); /* 'in' is a keyword only after a name */
	canon_is("a == true", "a == \"true\"");
	canon_is("site == \"\"", "site == \"\"");
}

static void precedence_not_and_or(void **state)
{
	char *a1[] = {"a", "1", NULL};
	char *none[] = {NULL};
	char *a1b2[] = {"a", "1", "b", "2", NULL};
	(void)state;

	/* && binds tighter than || */
	assert_true(eval("a == 1 || b == 2 && c == 3", a1));
	assert_false(eval("(a == 1 || b == 2) && c == 3", a1));
	canon_is("a == 1 || b == 2 && c == 3", "a == \"1\" || b == \"2\" && c == \"3\"");
	canon_is("(a == 1 || b == 2) && c == 3", "c == \"3\" && (a == \"1\" || b == \"2\")");
	/* ! binds tighter than && */
	assert_false(eval("!a == 1 && b == 2", none));
	assert_true(eval("!(a == 1 && b == 2)", none));
	assert_false(eval("!a == 1 && b == 2", a1b2));
	/* ! binds tighter than || */
	assert_true(eval("!a == 1 || b == 2", a1b2));
	assert_false(eval("!(a == 1 || b == 2)", a1b2));
	/* parentheses nest */
	assert_true(eval("((a == 1)) && (((b == 2)))", a1b2));
	assert_true(eval("!!a == 1", a1));
}

static void escapes_and_utf8(void **state)
{
	char *attrs[] = {"name", "a\"b\\c", "site", "Z\xc3\xbcrich", NULL};
	(void)state;

	assert_true(eval("name == \"a\\\"b\\\\c\"", attrs));
	canon_is("name == \"a\\\"b\\\\c\"", "name == \"a\\\"b\\\\c\"");
	assert_true(eval("site == \"Z\xc3\xbcrich\"", attrs));
	assert_false(eval("site == \"Zurich\"", attrs));
	fails("a == \"\xff\"", MOAT_E_CONFIG, 6, "not valid UTF-8");
	fails("a == \"\xc3\"", MOAT_E_CONFIG, 6, "not valid UTF-8");
	fails("a == \"x\x01\"", MOAT_E_CONFIG, 6, "control character");
	fails("a == \"\xed\xa0\x80\"", MOAT_E_CONFIG, 6, "not valid UTF-8"); /* surrogate */
	fails("a == \"a\\nb\"", MOAT_E_CONFIG, 8, "unknown escape");
	fails("a == \"a\\", MOAT_E_CONFIG, 8, "unknown escape");
	fails("a == \"abc", MOAT_E_CONFIG, 6, "unterminated string");
	fails_n("a == \"a\0b\"", 10, MOAT_E_CONFIG, 6, "control character");
	fails_n("a == b\0", 7, MOAT_E_CONFIG, 7, "unexpected byte 0x00");
	fails("a == b\x7f", MOAT_E_CONFIG, 7, "unexpected byte 0x7F");
}

static void errors_report_column_and_expectation(void **state)
{
	(void)state;
	fails("", MOAT_E_CONFIG, 1, "expected a comparison, 'true', 'false', '!' or '(', got end");
	fails("   ", MOAT_E_CONFIG, 4, "got end of text");
	fails("role", MOAT_E_CONFIG, 5, "expected '==', '!=' or 'in' after attribute 'role'");
	fails("role ==", MOAT_E_CONFIG, 8,
	      "expected a value (a quoted string or a bare word) after '=='");
	fails("role != )", MOAT_E_CONFIG, 9, "after '!=', got ')'");
	fails("(a == b", MOAT_E_CONFIG, 8,
	      "expected ')' to close the '(' at column 1, got end of text");
	fails("a == b)", MOAT_E_CONFIG, 7, "unmatched ')'");
	fails("a == b c == d", MOAT_E_CONFIG, 8, "expected '&&', '||' or end of text, got 'c'");
	fails("a = b", MOAT_E_CONFIG, 3, "unexpected '=' (write '==')");
	fails("a == b & c == d", MOAT_E_CONFIG, 8, "unexpected '&' (write '&&')");
	fails("a == b | c == d", MOAT_E_CONFIG, 8, "unexpected '|' (write '||')");
	fails("a in b", MOAT_E_CONFIG, 6, "expected '[' after 'in', got 'b'");
	fails("a in [x y]", MOAT_E_CONFIG, 9,
	      "expected ',' or ']' to close the list opened at column 6, got 'y'");
	fails("a in []", MOAT_E_CONFIG, 7, "after '[', got ']'");
	fails("a in [x,]", MOAT_E_CONFIG, 9, "after ',', got ']'");
	fails("a in [x", MOAT_E_CONFIG, 8, "got end of text");
	fails("1a == b", MOAT_E_CONFIG, 1, "attribute name '1a' must start with a letter or '_'");
	fails("a == b && ", MOAT_E_CONFIG, 11, "expected a comparison");
	fails("&& a == b", MOAT_E_CONFIG, 1, "expected a comparison");
	fails("a == @", MOAT_E_CONFIG, 6, "unexpected character '@'");
	fails("a == \xc3\xa9", MOAT_E_CONFIG, 6,
	      "unexpected byte 0xC3 (non-ASCII text must be quoted)");
	fails("true == a", MOAT_E_CONFIG, 6, "expected '&&', '||' or end of text, got '=='");
	fails("()", MOAT_E_CONFIG, 2, "got ')'");
	fails("!", MOAT_E_CONFIG, 2, "got end of text");
	/* columns count characters, not bytes */
	fails("site == \"\xc3\xa9\" && x", MOAT_E_CONFIG, 17, "after attribute 'x'");
	/* a long word is shortened in the message */
	fails("a == b cccccccccccccccccccccccccccccccccccccccc", MOAT_E_CONFIG, 8,
	      "got 'cccccccccccccccccccccccc...'");
}

static char *repeat(const char *head, const char *unit, size_t n, const char *tail)
{
	size_t hl = strlen(head), ul = strlen(unit), tl = strlen(tail);
	char *s = malloc(hl + ul * n + tl + 1), *p = s;

	assert_non_null(s);
	memcpy(p, head, hl);
	p += hl;
	for (size_t i = 0; i < n; i++, p += ul)
		memcpy(p, unit, ul);
	memcpy(p, tail, tl + 1);
	return s;
}

static void caps_at_and_over_the_limit(void **state)
{
	struct policy_expr *e;
	char *s, *t;
	(void)state;

	/* length: exactly 4096 bytes parses, 4097 does not */
	s = repeat("a == \"", "x", POLICY_EXPR_MAX_LEN - 7, "\"");
	assert_int_equal(strlen(s), POLICY_EXPR_MAX_LEN);
	policy_expr_free(parse(s));
	free(s);
	s = repeat("a == \"", "x", POLICY_EXPR_MAX_LEN - 6, "\"");
	fails(s, MOAT_E_LIMIT, 0, "expression is 4097 bytes, over the cap of 4096");
	free(s);

	/* depth: 32 '(' or '!' parse, the 33rd is refused where it stands */
	s = repeat("", "(", 32, "a == b");
	t = repeat(s, ")", 32, "");
	policy_expr_free(parse(t));
	free(s);
	free(t);
	s = repeat("", "(", 33, "a == b");
	fails(s, MOAT_E_LIMIT, 33, "nesting of '(' and '!' deeper than 32 (cap)");
	free(s);
	s = repeat("", "!", 32, "true");
	canon_is(s, "true");
	free(s);
	s = repeat("", "!", 33, "true");
	fails(s, MOAT_E_LIMIT, 33, "deeper than 32");
	free(s);
	s = repeat("", "(!", 16, "true");
	t = repeat(s, ")", 16, "");
	policy_expr_free(parse(t));
	free(s);
	free(t);

	/* list: 64 values parse, the 65th is refused */
	s = repeat("a in [v", ",v", 63, "]");
	e = parse(s);
	assert_string_equal(policy_expr_canonical(e), "a == \"v\""); /* deduplicated */
	policy_expr_free(e);
	free(s);
	s = repeat("a in [v", ",v", 64, "]");
	fails(s, MOAT_E_LIMIT, 135, "list has more than 64 values (cap)");
	free(s);

	/* canonical text over the length cap (quotes added): refused, so that a
	 * canonical text always re-parses */
	s = malloc(POLICY_EXPR_MAX_LEN + 1);
	assert_non_null(s);
	for (size_t n = 0, len = 0; n < 10; n++) {
		len += (size_t)sprintf(s + len, "%sa%zu in [", n > 0 ? "&&" : "", n);
		for (int v = 0; v < 64; v++)
			len += (size_t)sprintf(s + len, "%sv%02d", v > 0 ? "," : "", v);
		len += (size_t)sprintf(s + len, "]");
		assert_true(len <= POLICY_EXPR_MAX_LEN);
	}
	fails(s, MOAT_E_LIMIT, 0, "canonical form is 4576 bytes (values quoted), over the cap");
	free(s);

	/* nodes: 255 comparisons under one || are 256 nodes; one more is refused */
	s = repeat("a == b", " || a == b", 254, "");
	policy_expr_free(parse(s));
	free(s);
	s = repeat("a == b", " || a == b", 255, "");
	fails(s, MOAT_E_LIMIT, 2551, "more than 256 operators and comparisons (cap)");
	free(s);
}

static void absent_attribute_makes_every_comparison_false(void **state)
{
	char *ra[] = {"role", "a", NULL};
	char *rb[] = {"role", "b", NULL};
	char *none[] = {NULL};
	char *other[] = {"site", "a", NULL};
	char *dangling[] = {"role", NULL};
	(void)state;

	assert_true(eval("role == a", ra));
	assert_false(eval("role == a", rb));
	assert_false(eval("role == a", none));
	assert_false(eval("role == a", other));

	assert_false(eval("role != a", ra));
	assert_true(eval("role != a", rb));
	assert_false(eval("role != a", none)); /* absent: false, '!=' included */
	assert_false(eval("role != a", other));
	assert_false(eval("role != a", NULL));
	assert_false(eval("role != a", dangling));

	assert_false(eval("!(role == a)", ra));
	assert_true(eval("!(role == a)", rb));
	assert_true(eval("!(role == a)", none)); /* the way to say "not a, or absent" */

	assert_true(eval("role in [a, b]", ra));
	assert_true(eval("role in [a, b]", rb));
	assert_false(eval("role in [c, d]", ra));
	assert_false(eval("role in [a, b]", none));
	assert_false(eval("role in [a, b]", dangling));

	assert_true(eval("true", NULL));
	assert_false(eval("false", NULL));
	assert_true(eval("!false", none));
	/* names and values are case-sensitive, bytewise */
	assert_false(eval("Role == a", ra));
	assert_false(eval("role == A", ra));
	assert_false(eval("role == \"a \"", ra));
}

static void repeated_attribute_means_any_value(void **state)
{
	char *roles[] = {"role", "x", "site", "s", "role", "a", NULL};
	(void)state;

	assert_true(eval("role == a", roles));
	assert_true(eval("role == x", roles));
	assert_false(eval("role != a", roles)); /* one of its values is a */
	assert_true(eval("role != z", roles));
	assert_true(eval("role in [a, q]", roles));
	assert_false(eval("role in [q, r]", roles));
}

static void and_or_truth_tables(void **state)
{
	char *tt[] = {"a", "1", "b", "1", NULL};
	char *tf[] = {"a", "1", "b", "0", NULL};
	char *ft[] = {"a", "0", "b", "1", NULL};
	char *ff[] = {"a", "0", "b", "0", NULL};
	char *const *rows[] = {tt, tf, ft, ff};
	const bool and_want[] = {true, false, false, false};
	const bool or_want[] = {true, true, true, false};
	(void)state;

	for (size_t i = 0; i < 4; i++) {
		assert_int_equal(eval("a == 1 && b == 1", rows[i]), and_want[i]);
		assert_int_equal(eval("a == 1 || b == 1", rows[i]), or_want[i]);
		assert_int_equal(eval("!(a == 1 && b == 1)", rows[i]), !and_want[i]);
		assert_int_equal(eval("a == 1 && b == 1 || false", rows[i]), and_want[i]);
		assert_int_equal(eval("true && (a == 1 || b == 1)", rows[i]), or_want[i]);
	}
}

static void canonical_equal_for_equivalent_spellings(void **state)
{
	(void)state;
	same_canon("role==sensor&&site==\"plant-7\"",
		   "( site == plant-7 ) && (role == \"sensor\")");
	same_canon("role==sensor&&site==\"plant-7\"",
		   "site==\"plant-7\" && role==sensor && role == sensor");
	same_canon("role in [b, a, b]", "role in [\"a\",\"b\"]");
	same_canon("role in [a]", "role == a");
	same_canon("!!(a==b)", "a==b");
	same_canon("a==b || (c==d || e==f)", "(a==b || c==d) || e==f");
	same_canon("a==b || c==d && e==f", "e==f && c==d || a==b");
	same_canon("x in [\"b\\\"\", a] && !(y != z)", "!(y != z) && x in [a, \"b\\\"\"]");
	canon_is("z == 1 && (b == 2 || !(c == 3)) && true && a in [q, p]",
		 "true && a in [\"p\", \"q\"] && z == \"1\" && (b == \"2\" || !(c == \"3\"))");
}

static void canonical_differs_for_different_policies(void **state)
{
	(void)state;
	other_canon("role == a", "role != a");
	other_canon("!(role == a)", "role != a"); /* differ on absent attributes */
	other_canon("a == b && c == d", "a == b || c == d");
	other_canon("role == \"a b\"", "role == a");
	other_canon("role in [a, b]", "role in [a, b, c]");
	other_canon("role == a", "role == b");
	other_canon("a == \"x\\\"\"", "a == \"x\\\\\"");
	other_canon("true", "false");
	other_canon("a == b", "a.x == b");
}

static void free_accepts_null(void **state)
{
	(void)state;
	policy_expr_free(NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(parses_every_operator),
	    cmocka_unit_test(precedence_not_and_or),
	    cmocka_unit_test(escapes_and_utf8),
	    cmocka_unit_test(errors_report_column_and_expectation),
	    cmocka_unit_test(caps_at_and_over_the_limit),
	    cmocka_unit_test(absent_attribute_makes_every_comparison_false),
	    cmocka_unit_test(repeated_attribute_means_any_value),
	    cmocka_unit_test(and_or_truth_tables),
	    cmocka_unit_test(canonical_equal_for_equivalent_spellings),
	    cmocka_unit_test(canonical_differs_for_different_policies),
	    cmocka_unit_test(free_accepts_null),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
