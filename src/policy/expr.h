/*
 * The attribute policy language shared by moatd, moat-sc and libmoat
 * (docs/e2e.md "Topic policies"): boolean expressions over a session's
 * attributes, parsed once into an immutable tree and evaluated many times.
 * No broker types, no I/O, no logging: errors come back as a code and a
 * struct policy_diag.
 *
 * Grammar (whitespace = space, tab, CR, LF between tokens):
 *   expr    := or
 *   or      := and ('||' and)*
 *   and     := unary ('&&' unary)*
 *   unary   := '!' unary | primary
 *   primary := '(' expr ')' | 'true' | 'false' | cmp
 *   cmp     := NAME ('==' | '!=') VALUE | NAME 'in' '[' VALUE (',' VALUE)* ']'
 *   NAME    := [A-Za-z_][A-Za-z0-9_.-]*          (not 'true' or 'false')
 *   VALUE   := '"' chars '"' | [A-Za-z0-9_.-]+   (in quotes: \" and \\ are the
 *              only escapes; the text must be MQTT-valid UTF-8, no controls)
 * Precedence: '!' binds tighter than '&&', which binds tighter than '||'.
 *
 * Semantics: attributes are the broker's list name, value, name, value, ...,
 * NULL; a name may appear more than once (several roles). NAME == V and
 * NAME in [...] are true when some value of NAME is equal (bytewise) to V /
 * to a list member. NAME != V is true when NAME has at least one value and
 * none of them is V. An absent attribute makes every comparison false,
 * '!=' included: write !(site == "a") for "not a, or no site at all".
 *
 * Caps (each refused with a message naming it): text 4096 bytes (the input
 * and its canonical form), nesting of '(' and '!' 32, list 64 values, 256
 * nodes (comparisons, operators, literals).
 */
#ifndef MOAT_POLICY_EXPR_H
#define MOAT_POLICY_EXPR_H

#include <stdbool.h>
#include <stddef.h>

enum {
	POLICY_EXPR_MAX_LEN = 4096,
	POLICY_EXPR_MAX_DEPTH = 32,
	POLICY_EXPR_MAX_LIST = 64,
	POLICY_EXPR_MAX_NODES = 256,
};

/* Why a parse or load failed. <msg> never holds secrets; it quotes at most a
 * short piece of the input. */
struct policy_diag {
	size_t column; /* 1-based character column in the expression, 0 when none */
	char msg[320]; /* "column 14: expected ')' to close the '(' at column 3, got end of text" */
};

struct policy_expr;

/*
 * Parses the <len> bytes at <text> (need not be NUL-terminated) into *<out>,
 * normalised (see policy_expr_canonical). MOAT_OK; MOAT_E_CONFIG for a
 * syntax error and MOAT_E_LIMIT for a cap, both with <diag> filled (column
 * and message); MOAT_E_NOMEM. *<out> is set only on success.
 */
int policy_expr_parse(struct policy_expr **out, const char *text, size_t len,
		      struct policy_diag *diag);

/*
 * True when the attributes <attrs> (name, value, ..., NULL; NULL = none)
 * satisfy <e>. Pure and allocation-free: any thread, any number at once.
 */
bool policy_eval(const struct policy_expr *e, char *const *attrs);

/*
 * The canonical text of <e>, owned by <e>: one space around binary
 * operators, values always quoted, 'in' lists sorted bytewise and without
 * duplicates, nested && / || flattened, their operands sorted and without
 * duplicates, !!x written x, parentheses only where needed. Equal texts mean
 * equal policies; it re-parses to itself. (It is not a full boolean
 * minimiser: equivalent policies written differently, e.g. by De Morgan,
 * may still differ, which only costs an extra policy group.)
 */
const char *policy_expr_canonical(const struct policy_expr *e);

/* Frees <e>. NULL is fine. */
void policy_expr_free(struct policy_expr *e);

#endif
