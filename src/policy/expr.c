/*
 * The policy expression language (see expr.h): a hand-written lexer and
 * recursive-descent parser with caps on length, depth, list size and node
 * count, a normalisation pass that makes the tree canonical (flattened and
 * sorted && / ||, sorted lists), the printer of the canonical text, and the
 * evaluator. The tree is never changed after policy_expr_parse returns.
 */
#include "policy/expr.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <moat/error.h>

#include "base/buf.h"
#include "codec/utf8.h"

enum kind {
	K_FALSE = 0,
	K_TRUE,
	K_EQ,
	K_NE,
	K_IN,
	K_NOT,
	K_AND,
	K_OR,
};

struct node {
	enum kind kind;
	size_t n;	    /* K_AND/K_OR: kids; K_EQ/K_NE/K_IN: values */
	struct node **kids; /* K_AND/K_OR: n; K_NOT: 1 */
	char *name;	    /* comparisons */
	char **vals;	    /* comparisons; K_IN sorted, distinct */
};

struct policy_expr {
	struct node *root;
	char *canon;
};

enum tok {
	T_END = 0,
	T_LP,
	T_RP,
	T_LB,
	T_RB,
	T_COMMA,
	T_NOT,
	T_AND,
	T_OR,
	T_EQ,
	T_NE,
	T_WORD,
	T_STR,
};

struct parser {
	const char *s;
	size_t len, pos; /* pos: first byte after the current token */
	enum tok t;	 /* current token, at s[tpos], tlen bytes */
	size_t tpos, tlen;
	size_t nodes, depth;
	int err; /* first error; the parse unwinds once set */
	struct policy_diag *d;
};

/* ---- errors ---- */

/* 1-based character column of byte offset <pos> (UTF-8 continuation bytes don't count). */
static size_t column(const struct parser *p, size_t pos)
{
	size_t col = 1;

	for (size_t i = 0; i < pos && i < p->len; i++)
		col += ((unsigned char)p->s[i] & 0xC0) != 0x80;
	return col;
}

__attribute__((format(printf, 4, 5))) static void fail(struct parser *p, int rc, size_t pos,
						       const char *fmt, ...)
{
	va_list ap;
	int n;

	if (p->err != 0)
		return;
	p->err = rc;
	p->d->column = column(p, pos);
	n = snprintf(p->d->msg, sizeof(p->d->msg), "column %zu: ", p->d->column);
	va_start(ap, fmt);
	vsnprintf(p->d->msg + n, sizeof(p->d->msg) - (size_t)n, fmt, ap);
	va_end(ap);
}

static void nomem(struct parser *p)
{
	if (p->err == 0) {
		p->err = MOAT_E_NOMEM;
		snprintf(p->d->msg, sizeof(p->d->msg), "out of memory");
	}
}

/* What the current token is, for "got ..." in messages. */
static const char *got(const struct parser *p, char *tmp, size_t size)
{
	switch (p->t) {
	case T_END:
		return "end of text";
	case T_STR:
		return "a quoted string";
	case T_WORD:
		snprintf(tmp, size, "'%.*s%s'", (int)(p->tlen > 24 ? 24 : p->tlen), p->s + p->tpos,
			 p->tlen > 24 ? "..." : "");
		return tmp;
	default:
		snprintf(tmp, size, "'%.*s'", (int)p->tlen, p->s + p->tpos);
		return tmp;
	}
}

/* ---- lexer ---- */

static bool is_word_char(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       c == '_' || c == '.' || c == '-';
}

static bool is_name_start(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}

/* Reads the next token into p->t; false (p->err set) on a lexical error. */
static bool next(struct parser *p)
{
	size_t i = p->pos;
	unsigned char c, c2;

	if (p->err != 0)
		return false;
	while (i < p->len &&
	       (p->s[i] == ' ' || p->s[i] == '\t' || p->s[i] == '\r' || p->s[i] == '\n'))
		i++;
	p->tpos = i;
	if (i == p->len) {
		p->t = T_END;
		p->tlen = 0;
		p->pos = i;
		return true;
	}
	c = (unsigned char)p->s[i];
	c2 = i + 1 < p->len ? (unsigned char)p->s[i + 1] : 0;
	p->tlen = 1;
	switch (c) {
	case '(':
		p->t = T_LP;
		break;
	case ')':
		p->t = T_RP;
		break;
	case '[':
		p->t = T_LB;
		break;
	case ']':
		p->t = T_RB;
		break;
	case ',':
		p->t = T_COMMA;
		break;
	case '!':
		p->t = c2 == '=' ? T_NE : T_NOT;
		p->tlen = c2 == '=' ? 2 : 1;
		break;
	case '&':
	case '|':
	case '=':
		if (c2 != c) {
			fail(p, MOAT_E_CONFIG, i, "unexpected '%c' (write '%c%c')", c, c, c);
			return false;
		}
		p->t = c == '&' ? T_AND : c == '|' ? T_OR : T_EQ;
		p->tlen = 2;
		break;
	case '"':
		for (size_t j = i + 1;; j++) {
			if (j >= p->len) {
				fail(p, MOAT_E_CONFIG, i, "unterminated string (no closing '\"')");
				return false;
			}
			if (p->s[j] == '\\') {
				if (j + 1 >= p->len ||
				    (p->s[j + 1] != '"' && p->s[j + 1] != '\\')) {
					fail(p, MOAT_E_CONFIG, j,
					     "unknown escape in string (only \\\" and \\\\)");
					return false;
				}
				j++;
			} else if (p->s[j] == '"') {
				p->tlen = j + 1 - i;
				break;
			}
		}
		p->t = T_STR;
		break;
	default:
		if (!is_word_char(c)) {
			if (c >= 0x21 && c < 0x7F)
				fail(p, MOAT_E_CONFIG, i, "unexpected character '%c'", c);
			else if (c >= 0x80)
				fail(p, MOAT_E_CONFIG, i,
				     "unexpected byte 0x%02X (non-ASCII text must be quoted)", c);
			else
				fail(p, MOAT_E_CONFIG, i, "unexpected byte 0x%02X", c);
			return false;
		}
		while (i + p->tlen < p->len && is_word_char((unsigned char)p->s[i + p->tlen]))
			p->tlen++;
		p->t = T_WORD;
		break;
	}
	p->pos = i + p->tlen;
	return true;
}

static bool word_is(const struct parser *p, const char *w)
{
	return p->t == T_WORD && p->tlen == strlen(w) && memcmp(p->s + p->tpos, w, p->tlen) == 0;
}

/* ---- tree ---- */

static void node_free(struct node *n)
{
	if (n == NULL)
		return;
	if (n->kind == K_AND || n->kind == K_OR || n->kind == K_NOT) {
		size_t k = n->kind == K_NOT ? 1 : n->n;

		for (size_t i = 0; i < k && n->kids != NULL; i++)
			node_free(n->kids[i]);
	} else if (n->vals != NULL) {
		for (size_t i = 0; i < n->n; i++)
			free(n->vals[i]);
	}
	free(n->kids);
	free(n->vals);
	free(n->name);
	free(n);
}

static struct node *node_new(struct parser *p, enum kind kind, size_t pos)
{
	struct node *n;

	if (++p->nodes > POLICY_EXPR_MAX_NODES) {
		fail(p, MOAT_E_LIMIT, pos, "more than %d operators and comparisons (cap)",
		     POLICY_EXPR_MAX_NODES);
		return NULL;
	}
	n = calloc(1, sizeof(*n));
	if (n == NULL)
		nomem(p);
	else
		n->kind = kind;
	return n;
}

/* Appends <kid> to the K_AND/K_OR/K_NOT node <n>; consumes <kid>. */
static bool add_kid(struct parser *p, struct node *n, struct node *kid)
{
	struct node **k = realloc(n->kids, (n->n + 1) * sizeof(*k));

	if (k == NULL) {
		node_free(kid);
		nomem(p);
		return false;
	}
	n->kids = k;
	n->kids[n->n++] = kid;
	return true;
}

/* ---- parser ---- */

static struct node *parse_or(struct parser *p);

/* The current token as a value (decoded, UTF-8 checked); advances. NULL on error. */
static char *parse_value(struct parser *p, const char *after)
{
	char tmp[48], *v;
	size_t o = 0;

	if (p->t == T_WORD) {
		v = strndup(p->s + p->tpos, p->tlen);
		if (v == NULL)
			nomem(p);
	} else if (p->t == T_STR) {
		v = malloc(p->tlen);
		if (v == NULL) {
			nomem(p);
			return NULL;
		}
		for (size_t i = p->tpos + 1; i + 1 < p->tpos + p->tlen; i++) {
			if (p->s[i] == '\\')
				i++;
			v[o++] = p->s[i];
		}
		v[o] = '\0';
		if (!utf8_is_valid_mqtt((struct moat_bytes){(const uint8_t *)v, o})) {
			fail(p, MOAT_E_CONFIG, p->tpos,
			     "string is not valid UTF-8 or holds a control character");
			free(v);
			return NULL;
		}
	} else {
		fail(p, MOAT_E_CONFIG, p->tpos,
		     "expected a value (a quoted string or a bare word) after %s, got %s", after,
		     got(p, tmp, sizeof(tmp)));
		return NULL;
	}
	if (v != NULL && !next(p)) {
		free(v);
		return NULL;
	}
	return v;
}

static bool add_val(struct parser *p, struct node *n, char *v)
{
	char **vs;

	if (v == NULL)
		return false;
	vs = realloc(n->vals, (n->n + 1) * sizeof(*vs));
	if (vs == NULL) {
		free(v);
		nomem(p);
		return false;
	}
	n->vals = vs;
	n->vals[n->n++] = v;
	return true;
}

/* NAME ('==' | '!=') VALUE | NAME 'in' '[' VALUE (',' VALUE)* ']'; the current token is NAME. */
static struct node *parse_cmp(struct parser *p)
{
	char tmp[48];
	size_t name_pos = p->tpos, lb_pos;
	struct node *n;

	if (!is_name_start((unsigned char)p->s[p->tpos])) {
		fail(p, MOAT_E_CONFIG, p->tpos, "attribute name %s must start with a letter or '_'",
		     got(p, tmp, sizeof(tmp)));
		return NULL;
	}
	n = node_new(p, K_EQ, name_pos);
	if (n == NULL)
		return NULL;
	n->name = strndup(p->s + p->tpos, p->tlen);
	if (n->name == NULL) {
		nomem(p);
		goto err;
	}
	if (!next(p))
		goto err;
	if (p->t == T_EQ || p->t == T_NE) {
		n->kind = p->t == T_EQ ? K_EQ : K_NE;
		if (!next(p) || !add_val(p, n, parse_value(p, n->kind == K_EQ ? "'=='" : "'!='")))
			goto err;
		return n;
	}
	if (!word_is(p, "in")) {
		fail(p, MOAT_E_CONFIG, p->tpos,
		     "expected '==', '!=' or 'in' after attribute '%s', got %s", n->name,
		     got(p, tmp, sizeof(tmp)));
		goto err;
	}
	n->kind = K_IN;
	if (!next(p))
		goto err;
	if (p->t != T_LB) {
		fail(p, MOAT_E_CONFIG, p->tpos, "expected '[' after 'in', got %s",
		     got(p, tmp, sizeof(tmp)));
		goto err;
	}
	lb_pos = p->tpos;
	if (!next(p))
		goto err;
	for (;;) {
		if (n->n == POLICY_EXPR_MAX_LIST) {
			fail(p, MOAT_E_LIMIT, p->tpos, "list has more than %d values (cap)",
			     POLICY_EXPR_MAX_LIST);
			goto err;
		}
		if (!add_val(p, n, parse_value(p, n->n == 0 ? "'['" : "','")))
			goto err;
		if (p->t == T_RB)
			break;
		if (p->t != T_COMMA) {
			fail(p, MOAT_E_CONFIG, p->tpos,
			     "expected ',' or ']' to close the list opened at column %zu, got %s",
			     column(p, lb_pos), got(p, tmp, sizeof(tmp)));
			goto err;
		}
		if (!next(p))
			goto err;
	}
	if (!next(p))
		goto err;
	return n;

err:
	node_free(n);
	return NULL;
}

static bool enter(struct parser *p)
{
	if (p->depth == POLICY_EXPR_MAX_DEPTH) {
		fail(p, MOAT_E_LIMIT, p->tpos, "nesting of '(' and '!' deeper than %d (cap)",
		     POLICY_EXPR_MAX_DEPTH);
		return false;
	}
	p->depth++;
	return true;
}

static struct node *parse_unary(struct parser *p)
{
	char tmp[48];
	size_t open;
	struct node *n;

	switch (p->t) {
	case T_NOT:
		if (!enter(p))
			return NULL;
		n = node_new(p, K_NOT, p->tpos);
		if (n == NULL || !next(p) || !add_kid(p, n, parse_unary(p)) || n->kids[0] == NULL) {
			node_free(n);
			return NULL;
		}
		p->depth--;
		return n;
	case T_LP:
		if (!enter(p))
			return NULL;
		open = p->tpos;
		if (!next(p))
			return NULL;
		n = parse_or(p);
		if (n == NULL)
			return NULL;
		if (p->t != T_RP) {
			fail(p, MOAT_E_CONFIG, p->tpos,
			     "expected ')' to close the '(' at column %zu, got %s", column(p, open),
			     got(p, tmp, sizeof(tmp)));
			node_free(n);
			return NULL;
		}
		p->depth--;
		if (!next(p)) {
			node_free(n);
			return NULL;
		}
		return n;
	case T_WORD:
		if (word_is(p, "true") || word_is(p, "false")) {
			n = node_new(p, word_is(p, "true") ? K_TRUE : K_FALSE, p->tpos);
			if (n != NULL && !next(p)) {
				node_free(n);
				return NULL;
			}
			return n;
		}
		return parse_cmp(p);
	default:
		fail(p, MOAT_E_CONFIG, p->tpos,
		     "expected a comparison, 'true', 'false', '!' or '(', got %s",
		     got(p, tmp, sizeof(tmp)));
		return NULL;
	}
}

/* and := unary ('&&' unary)*  and  or := and ('||' and)*, one function for both. */
static struct node *parse_bin(struct parser *p, enum tok op)
{
	struct node *first, *n;

	first = op == T_AND ? parse_unary(p) : parse_bin(p, T_AND);
	if (first == NULL || p->t != op)
		return first;
	n = node_new(p, op == T_AND ? K_AND : K_OR, p->tpos);
	if (n == NULL || !add_kid(p, n, first)) {
		if (n == NULL)
			node_free(first);
		node_free(n);
		return NULL;
	}
	while (p->t == op) {
		if (!next(p) ||
		    !add_kid(p, n, op == T_AND ? parse_unary(p) : parse_bin(p, T_AND)) ||
		    n->kids[n->n - 1] == NULL) {
			node_free(n);
			return NULL;
		}
	}
	return n;
}

static struct node *parse_or(struct parser *p)
{
	return parse_bin(p, T_OR);
}

/* ---- normalisation ---- */

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static int rank(enum kind k)
{
	switch (k) {
	case K_FALSE:
	case K_TRUE:
		return 0;
	case K_EQ:
	case K_NE:
	case K_IN:
		return 1;
	case K_NOT:
		return 2;
	default:
		return 3;
	}
}

/* A total order on normalised trees; 0 exactly when they are the same policy text. */
static int node_cmp(const struct node *a, const struct node *b)
{
	int c = rank(a->kind) - rank(b->kind);

	if (c != 0)
		return c;
	if (rank(a->kind) == 1) {
		c = strcmp(a->name, b->name);
		if (c != 0)
			return c;
	}
	if (a->kind != b->kind)
		return (int)a->kind - (int)b->kind;
	if (a->kind == K_NOT)
		return node_cmp(a->kids[0], b->kids[0]);
	if (a->n != b->n)
		return a->n < b->n ? -1 : 1;
	for (size_t i = 0; i < a->n; i++) {
		c = a->kind == K_AND || a->kind == K_OR ? node_cmp(a->kids[i], b->kids[i])
							: strcmp(a->vals[i], b->vals[i]);
		if (c != 0)
			return c;
	}
	return 0;
}

static int node_cmp_qsort(const void *a, const void *b)
{
	return node_cmp(*(struct node *const *)a, *(struct node *const *)b);
}

/* Returns the normal form of <n> (maybe another node; <n> consumed), NULL on out of memory. */
static struct node *normalise(struct node *n)
{
	struct node *kid;
	size_t o = 0, total = 0;

	switch (n->kind) {
	case K_NOT:
		n->kids[0] = normalise(n->kids[0]);
		if (n->kids[0] == NULL) {
			free(n->kids);
			free(n);
			return NULL;
		}
		if (n->kids[0]->kind != K_NOT)
			return n;
		kid = n->kids[0]; /* !!x = x */
		n->kids[0] = kid->kids[0];
		kid->kids[0] = NULL;
		free(kid->kids);
		free(kid);
		kid = n->kids[0];
		free(n->kids);
		free(n);
		return kid;
	case K_IN:
		qsort(n->vals, n->n, sizeof(*n->vals), cmp_str);
		for (size_t i = 0; i < n->n; i++) {
			if (o > 0 && strcmp(n->vals[o - 1], n->vals[i]) == 0)
				free(n->vals[i]);
			else
				n->vals[o++] = n->vals[i];
		}
		n->n = o;
		if (n->n == 1)
			n->kind = K_EQ; /* x in [a] = x == a */
		return n;
	case K_AND:
	case K_OR: {
		struct node **flat;

		for (size_t i = 0; i < n->n; i++) {
			n->kids[i] = normalise(n->kids[i]);
			if (n->kids[i] == NULL) {
				for (size_t j = i + 1; j < n->n; j++)
					node_free(n->kids[j]);
				n->n = i;
				node_free(n);
				return NULL;
			}
			total += n->kids[i]->kind == n->kind ? n->kids[i]->n : 1;
		}
		flat = malloc(total * sizeof(*flat));
		if (flat == NULL) {
			node_free(n);
			return NULL;
		}
		for (size_t i = 0; i < n->n; i++) {
			kid = n->kids[i];
			if (kid->kind != n->kind) {
				flat[o++] = kid;
				continue;
			}
			memcpy(flat + o, kid->kids, kid->n * sizeof(*flat));
			o += kid->n;
			free(kid->kids);
			free(kid);
		}
		free(n->kids);
		n->kids = flat;
		n->n = o;
		qsort(n->kids, n->n, sizeof(*n->kids), node_cmp_qsort);
		o = 0;
		for (size_t i = 0; i < n->n; i++) {
			if (o > 0 && node_cmp(n->kids[o - 1], n->kids[i]) == 0)
				node_free(n->kids[i]);
			else
				n->kids[o++] = n->kids[i];
		}
		n->n = o;
		if (n->n > 1)
			return n;
		kid = n->kids[0];
		free(n->kids);
		free(n);
		return kid;
	}
	default:
		return n;
	}
}

/* ---- canonical text ---- */

static int put(struct buf *b, const char *s)
{
	return buf_append(b, s, strlen(s));
}

static int put_quoted(struct buf *b, const char *v)
{
	int rc = put(b, "\"");

	for (; rc == MOAT_OK && *v != '\0'; v++) {
		if (*v == '"' || *v == '\\')
			rc = put(b, "\\");
		if (rc == MOAT_OK)
			rc = buf_append(b, v, 1);
	}
	return rc == MOAT_OK ? put(b, "\"") : rc;
}

static int print(struct buf *b, const struct node *n)
{
	int rc = MOAT_OK;

	switch (n->kind) {
	case K_TRUE:
		return put(b, "true");
	case K_FALSE:
		return put(b, "false");
	case K_EQ:
	case K_NE:
		rc = put(b, n->name);
		if (rc == MOAT_OK)
			rc = put(b, n->kind == K_EQ ? " == " : " != ");
		return rc == MOAT_OK ? put_quoted(b, n->vals[0]) : rc;
	case K_IN:
		rc = put(b, n->name);
		if (rc == MOAT_OK)
			rc = put(b, " in [");
		for (size_t i = 0; rc == MOAT_OK && i < n->n; i++) {
			if (i > 0)
				rc = put(b, ", ");
			if (rc == MOAT_OK)
				rc = put_quoted(b, n->vals[i]);
		}
		return rc == MOAT_OK ? put(b, "]") : rc;
	case K_NOT:
		if (rank(n->kids[0]->kind) == 0)
			return put(b, "!") == MOAT_OK ? print(b, n->kids[0]) : MOAT_E_NOMEM;
		rc = put(b, "!(");
		if (rc == MOAT_OK)
			rc = print(b, n->kids[0]);
		return rc == MOAT_OK ? put(b, ")") : rc;
	default:
		for (size_t i = 0; rc == MOAT_OK && i < n->n; i++) {
			bool paren = n->kind == K_AND && n->kids[i]->kind == K_OR;

			if (i > 0)
				rc = put(b, n->kind == K_AND ? " && " : " || ");
			if (rc == MOAT_OK && paren)
				rc = put(b, "(");
			if (rc == MOAT_OK)
				rc = print(b, n->kids[i]);
			if (rc == MOAT_OK && paren)
				rc = put(b, ")");
		}
		return rc;
	}
}

/* ---- public ---- */

int policy_expr_parse(struct policy_expr **out, const char *text, size_t len,
		      struct policy_diag *diag)
{
	struct parser p = {.s = text, .len = len, .d = diag};
	struct policy_expr *e;
	struct buf b = {0};
	struct node *root;
	char tmp[48];

	diag->column = 0;
	diag->msg[0] = '\0';
	if (len > POLICY_EXPR_MAX_LEN) {
		snprintf(diag->msg, sizeof(diag->msg),
			 "expression is %zu bytes, over the cap of %d", len, POLICY_EXPR_MAX_LEN);
		return MOAT_E_LIMIT;
	}
	if (!next(&p))
		return p.err;
	root = parse_or(&p);
	if (root != NULL && p.t != T_END) {
		fail(&p, MOAT_E_CONFIG, p.tpos,
		     p.t == T_RP ? "unmatched ')', got %s"
				 : "expected '&&', '||' or end of text, got %s",
		     got(&p, tmp, sizeof(tmp)));
		node_free(root);
		return p.err;
	}
	if (root == NULL)
		return p.err;
	root = normalise(root);
	e = calloc(1, sizeof(*e));
	if (root == NULL || e == NULL || print(&b, root) != MOAT_OK || buf_append(&b, "", 1) != 0) {
		node_free(root);
		free(e);
		buf_fini(&b);
		p.err = 0;
		nomem(&p);
		return MOAT_E_NOMEM;
	}
	if (b.len - 1 > POLICY_EXPR_MAX_LEN) {
		/* quoting can make the canonical text longer than the input; refuse
		 * here so that every accepted policy's canonical text is accepted too */
		snprintf(diag->msg, sizeof(diag->msg),
			 "canonical form is %zu bytes (values quoted), over the cap of %d; "
			 "shorten the expression",
			 b.len - 1, POLICY_EXPR_MAX_LEN);
		node_free(root);
		free(e);
		buf_fini(&b);
		return MOAT_E_LIMIT;
	}
	e->root = root;
	e->canon = (char *)b.data;
	*out = e;
	return MOAT_OK;
}

/* True when <v> is one of the values of attribute <name> (attrs: see expr.h). */
static bool has_value(char *const *attrs, const char *name, const struct node *n, bool *present)
{
	*present = false;
	for (size_t i = 0; attrs != NULL && attrs[i] != NULL && attrs[i + 1] != NULL; i += 2) {
		if (strcmp(attrs[i], name) != 0)
			continue;
		*present = true;
		if (n->kind == K_IN) {
			if (bsearch(&attrs[i + 1], n->vals, n->n, sizeof(*n->vals), cmp_str) !=
			    NULL)
				return true;
		} else if (strcmp(attrs[i + 1], n->vals[0]) == 0) {
			return true;
		}
	}
	return false;
}

static bool eval(const struct node *n, char *const *attrs)
{
	bool present, hit;

	switch (n->kind) {
	case K_TRUE:
		return true;
	case K_FALSE:
		return false;
	case K_NOT:
		return !eval(n->kids[0], attrs);
	case K_AND:
		for (size_t i = 0; i < n->n; i++)
			if (!eval(n->kids[i], attrs))
				return false;
		return true;
	case K_OR:
		for (size_t i = 0; i < n->n; i++)
			if (eval(n->kids[i], attrs))
				return true;
		return false;
	case K_NE:
		hit = has_value(attrs, n->name, n, &present);
		return present && !hit;
	default:
		return has_value(attrs, n->name, n, &present);
	}
}

bool policy_eval(const struct policy_expr *e, char *const *attrs)
{
	return eval(e->root, attrs);
}

const char *policy_expr_canonical(const struct policy_expr *e)
{
	return e->canon;
}

void policy_expr_free(struct policy_expr *e)
{
	if (e == NULL)
		return;
	node_free(e->root);
	free(e->canon);
	free(e);
}
