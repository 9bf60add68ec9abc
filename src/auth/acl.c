/*
 * ACL checks (see acl.h). Rules are compiled into levels: literal, '+', '#'
 * or a template (a pattern level holding %c or %u). Matching walks the rule
 * levels and the topic (or filter) levels side by side; a template level is
 * compared piece by piece against the identity's strings, so a substituted
 * value is never parsed again and nothing is allocated. Identity strings
 * that contain '+', '#', '/' or NUL, or are empty, never match a template
 * (CVE-2017-7650).
 */
#include "auth/acl.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <moat/error.h>

enum lv_kind {
	LV_LIT = 0,
	LV_PLUS,
	LV_HASH,
	LV_TMPL,
};

struct level {
	const char *s; /* into rule.text, not NUL-terminated */
	size_t len;
	unsigned kind; /* enum lv_kind */
};

struct rule {
	char *text; /* owned copy of the filter */
	struct level *lv;
	size_t n;
	unsigned perm; /* enum acl_perm */
	bool uses_c, uses_u;
};

/* The anonymous section, the patterns, or one merged user or role. */
struct set {
	char *name; /* owned; NULL for anon and patterns */
	size_t name_len;
	struct rule *rules;
	size_t n;
	size_t *roles; /* indexes into acl.roles (users only) */
	size_t nroles;
};

struct acl {
	struct set anon, patterns;
	struct set *users; /* sorted by name */
	size_t nusers;
	struct set *roles; /* sorted by name */
	size_t nroles;
};

/* The identity as the checks see it: substitution allowed or not, once per call. */
struct ident {
	const char *u, *c;
	size_t ul, cl;
	bool u_ok, c_ok;
	const char *const *attrs;	/* name, value, name, value ... */
	size_t nattrs;
};

/* Walks the '/'-separated levels of a topic or filter. */
struct it {
	const char *p;
	size_t left;
	bool done;
};

static bool it_next(struct it *it, const char **s, size_t *n)
{
	const char *sl;

	if (it->done)
		return false;
	sl = it->left > 0 ? memchr(it->p, '/', it->left) : NULL;
	*s = it->p;
	if (sl != NULL) {
		*n = (size_t)(sl - it->p);
		it->left -= *n + 1;
		it->p = sl + 1;
	} else {
		*n = it->left;
		it->done = true;
	}
	return true;
}

static unsigned level_kind(const char *s, size_t n)
{
	if (n == 1 && s[0] == '+')
		return LV_PLUS;
	if (n == 1 && s[0] == '#')
		return LV_HASH;
	return LV_LIT;
}

/* ---- compiling ---- */

static bool has_subst(const char *s, size_t n, char which)
{
	for (size_t i = 0; i + 1 < n; i++)
		if (s[i] == '%' && s[i + 1] == which)
			return true;
	return false;
}

static int rule_compile(struct rule *r, const struct acl_file_rule *fr)
{
	struct it it;
	const char *s;
	size_t n, count = 1;

	r->text = strdup(fr->topic);
	if (r->text == NULL)
		return MOAT_E_NOMEM;
	for (const char *c = r->text; *c != '\0'; c++)
		count += *c == '/';
	r->lv = calloc(count, sizeof(*r->lv));
	if (r->lv == NULL)
		return MOAT_E_NOMEM;
	r->perm = fr->perm;
	it = (struct it){r->text, strlen(r->text), false};
	while (it_next(&it, &s, &n)) {
		struct level *l = &r->lv[r->n++];
		bool c = fr->pattern && has_subst(s, n, 'c');
		bool u = fr->pattern && has_subst(s, n, 'u');
		bool a = fr->pattern && has_subst(s, n, '{');

		*l = (struct level){s, n, level_kind(s, n)};
		if (c || u || a)
			l->kind = LV_TMPL;
		r->uses_c |= c;
		r->uses_u |= u;
	}
	return MOAT_OK;
}

static void set_fini(struct set *s)
{
	for (size_t i = 0; i < s->n; i++) {
		free(s->rules[i].text);
		free(s->rules[i].lv);
	}
	free(s->rules);
	free(s->roles);
	free(s->name);
}

/* Appends the compiled rules of <sec> to <s>. */
static int set_add_section(struct set *s, const struct acl_file_section *sec)
{
	struct rule *nr;

	if (sec->rule_count == 0)
		return MOAT_OK;
	if (sec->rule_count > SIZE_MAX / sizeof(*nr) - s->n)
		return MOAT_E_NOMEM;
	nr = realloc(s->rules, (s->n + sec->rule_count) * sizeof(*nr));
	if (nr == NULL)
		return MOAT_E_NOMEM;
	s->rules = nr;
	for (size_t j = 0; j < sec->rule_count; j++) {
		struct rule *r = &s->rules[s->n];

		memset(r, 0, sizeof(*r));
		s->n++; /* counted first so set_fini frees a half-built rule */
		if (rule_compile(r, &sec->rules[j]) < 0)
			return MOAT_E_NOMEM;
	}
	return MOAT_OK;
}

static int cmp_section(const void *a, const void *b)
{
	return strcmp((*(struct acl_file_section *const *)a)->name,
		      (*(struct acl_file_section *const *)b)->name);
}

static int cmp_set_name(const void *key, const void *elem)
{
	return strcmp(key, ((const struct set *)elem)->name);
}

/* Looks a role up by its NUL-terminated name. */
static const struct set *find_role(const struct acl *acl, const char *name)
{
	if (acl->nroles == 0 || name == NULL)
		return NULL;
	return bsearch(name, acl->roles, acl->nroles, sizeof(*acl->roles), cmp_set_name);
}

/* Sorts <secs> by name and builds one set per distinct name into *<out>. */
static int build_named(struct acl *acl, struct acl_file_section **in, size_t count,
		       struct set **out, size_t *nout)
{
	struct acl_file_section **secs;
	int rc = MOAT_OK;

	*out = NULL;
	*nout = 0;
	if (count == 0)
		return MOAT_OK;
	secs = malloc(count * sizeof(*secs));
	*out = calloc(count, sizeof(**out));
	if (secs == NULL || *out == NULL) {
		free(secs);
		return MOAT_E_NOMEM;
	}
	memcpy(secs, in, count * sizeof(*secs));
	qsort(secs, count, sizeof(*secs), cmp_section);
	for (size_t i = 0; i < count && rc == MOAT_OK;) {
		size_t j = i + 1, nroles = 0;
		struct set *s = &(*out)[(*nout)++];

		while (j < count && strcmp(secs[j]->name, secs[i]->name) == 0)
			j++;
		s->name = strdup(secs[i]->name);
		if (s->name == NULL) {
			rc = MOAT_E_NOMEM;
			break;
		}
		s->name_len = strlen(s->name);
		for (size_t k = i; k < j && rc == MOAT_OK; k++)
			rc = set_add_section(s, secs[k]);
		for (size_t k = i; k < j; k++)
			nroles += secs[k]->role_count;
		if (rc == MOAT_OK && nroles > 0) {
			s->roles = calloc(nroles, sizeof(*s->roles));
			if (s->roles == NULL)
				rc = MOAT_E_NOMEM;
			for (size_t k = i; k < j && rc == MOAT_OK; k++) {
				for (size_t m = 0; m < secs[k]->role_count; m++) {
					const struct set *r =
					    find_role(acl, secs[k]->roles[m].name);

					/* parse checked references; skip, never index NULL */
					if (r != NULL)
						s->roles[s->nroles++] = (size_t)(r - acl->roles);
				}
			}
		}
		i = j;
	}
	free(secs);
	return rc;
}

int acl_create(struct acl **out, const struct acl_file *f)
{
	struct acl *acl = calloc(1, sizeof(*acl));
	int rc;

	if (acl == NULL)
		return MOAT_E_NOMEM;
	rc = set_add_section(&acl->anon, &f->anon);
	if (rc == MOAT_OK)
		rc = set_add_section(&acl->patterns, &f->patterns);
	if (rc == MOAT_OK) /* roles first: users refer to them by index */
		rc = build_named(acl, f->roles, f->role_count, &acl->roles, &acl->nroles);
	if (rc == MOAT_OK)
		rc = build_named(acl, f->users, f->user_count, &acl->users, &acl->nusers);
	if (rc < 0) {
		acl_destroy(acl);
		return rc;
	}
	*out = acl;
	return MOAT_OK;
}

int acl_load(struct acl **out, const char *path, struct moat_diag *diag)
{
	struct acl_file f;
	int rc = acl_file_load(&f, path, diag);

	if (rc < 0)
		return rc;
	rc = acl_create(out, &f);
	if (rc == MOAT_E_NOMEM)
		snprintf(diag->msg, sizeof(diag->msg), "%s: out of memory", path);
	acl_file_fini(&f);
	return rc;
}

void acl_destroy(struct acl *acl)
{
	if (acl == NULL)
		return;
	set_fini(&acl->anon);
	set_fini(&acl->patterns);
	for (size_t i = 0; i < acl->nusers; i++)
		set_fini(&acl->users[i]);
	for (size_t i = 0; i < acl->nroles; i++)
		set_fini(&acl->roles[i]);
	free(acl->users);
	free(acl->roles);
	free(acl);
}

/* ---- checking ---- */

/* A value may be substituted into a level only if it is one non-empty, wildcard-free level. */
static bool safe_value(const char *s, size_t n)
{
	if (s == NULL || n == 0)
		return false;
	for (size_t i = 0; i < n; i++)
		if (s[i] == '+' || s[i] == '#' || s[i] == '/' || s[i] == '\0')
			return false;
	return true;
}

/* The value %{name} stands for at <l->s + i> (which starts "%{"), with
 * *<used> set to the characters of the reference; NULL when the identity
 * has no such attribute, its value is unsafe, or the reference has no '}'. */
static const char *attr_value(const struct level *l, size_t i, const struct ident *id, size_t *used,
			      size_t *vlen)
{
	const char *name = l->s + i + 2, *end = memchr(name, '}', l->len - i - 2);
	size_t nl;

	if (end == NULL)
		return NULL;
	nl = (size_t)(end - name);
	*used = nl + 3;
	for (size_t k = 0; k < id->nattrs; k++) {
		const char *key = id->attrs[2 * k], *v = id->attrs[2 * k + 1];

		if (strlen(key) == nl && memcmp(key, name, nl) == 0) {
			*vlen = strlen(v);
			return safe_value(v, *vlen) ? v : NULL;
		}
	}
	return NULL;
}

/* Compares template level <l> with substitution against the <n> bytes at <s>. */
static bool tmpl_match(const struct level *l, const struct ident *id, const char *s, size_t n)
{
	size_t i = 0, j = 0;

	while (i < l->len) {
		if (l->s[i] == '%' && i + 1 < l->len && l->s[i + 1] == '{') {
			size_t used = 0, vl = 0;
			const char *v = attr_value(l, i, id, &used, &vl);

			if (v == NULL || n - j < vl || memcmp(s + j, v, vl) != 0)
				return false;	/* no such attribute: the rule never matches */
			j += vl;
			i += used;
			continue;
		}
		if (l->s[i] == '%' && i + 1 < l->len &&
		    (l->s[i + 1] == 'c' || l->s[i + 1] == 'u')) {
			const char *v = l->s[i + 1] == 'c' ? id->c : id->u;
			size_t vl = l->s[i + 1] == 'c' ? id->cl : id->ul;

			if (n - j < vl || memcmp(s + j, v, vl) != 0)
				return false;
			j += vl;
			i += 2;
			continue;
		}
		if (j >= n || s[j] != l->s[i])
			return false;
		i++;
		j++;
	}
	return j == n;
}

/* Does rule level <l> equal the literal level <s,n>? (<l> is LIT or TMPL.) */
static bool lit_eq(const struct level *l, const struct ident *id, const char *s, size_t n)
{
	if (l->kind == LV_TMPL)
		return tmpl_match(l, id, s, n);
	return l->len == n && memcmp(l->s, s, n) == 0;
}

/* Does the literal or template level <l> start with '$' once substituted? */
static bool lvl_dollar(const struct level *l, const struct ident *id)
{
	if (l->len == 0)
		return false;
	if (l->kind == LV_TMPL && l->len >= 2 && l->s[0] == '%' &&
	    (l->s[1] == 'c' || l->s[1] == 'u'))
		return (l->s[1] == 'c' ? id->c : id->u)[0] == '$';
	if (l->kind == LV_TMPL && l->len >= 2 && l->s[0] == '%' && l->s[1] == '{') {
		size_t used, vl;
		const char *v = attr_value(l, 0, id, &used, &vl);

		return v != NULL && v[0] == '$';
	}
	return l->s[0] == '$';
}

static bool is_wild(unsigned kind)
{
	return kind == LV_PLUS || kind == LV_HASH;
}

/* Rule <r> as a filter matches topic name T (MQTT 4.7, $-topics at level 0). */
static bool match_topic(const struct rule *r, const struct ident *id, const char *t, size_t len)
{
	struct it it = {t, len, false};
	const char *s;
	size_t n;

	if (len > 0 && t[0] == '$' && r->n > 0 && is_wild(r->lv[0].kind))
		return false;
	for (size_t i = 0; i < r->n; i++) {
		const struct level *l = &r->lv[i];

		if (l->kind == LV_HASH)
			return true; /* also matches the parent level: "a/#" matches "a" */
		if (!it_next(&it, &s, &n))
			return false;
		if (l->kind != LV_PLUS && !lit_eq(l, id, s, n))
			return false;
	}
	return it.done;
}

/* Every topic that filter F matches is matched by rule <r>. */
static bool covers(const struct rule *r, const struct ident *id, const char *f, size_t len)
{
	struct it it = {f, len, false};
	const char *s = NULL;
	size_t n = 0;

	for (size_t i = 0;; i++) {
		bool r_end = i == r->n;
		bool f_end = !it_next(&it, &s, &n);
		unsigned fk = f_end ? LV_LIT : level_kind(s, n);
		const struct level *l = r_end ? NULL : &r->lv[i];

		if (l != NULL && l->kind == LV_HASH)
			/* "#" or "+" at level 0 never match $-topics, so they cannot cover "$x" */
			return !(i == 0 && !f_end && fk == LV_LIT && n > 0 && s[0] == '$');
		if (r_end || f_end)
			return r_end && f_end;
		if (fk == LV_HASH)
			/* a leading "#" has no parent topic to match, so "+/#" covers it */
			return i == 0 && l->kind == LV_PLUS && r->n == 2 &&
			       r->lv[1].kind == LV_HASH;
		if (fk == LV_PLUS) {
			if (l->kind != LV_PLUS)
				return false;
			continue; /* '+' covers '+' */
		}
		if (l->kind == LV_PLUS) {
			if (i == 0 && n > 0 && s[0] == '$')
				return false;
			continue;
		}
		if (!lit_eq(l, id, s, n))
			return false;
	}
}

/* Some topic is matched both by rule <r> and by filter F. */
static bool overlaps(const struct rule *r, const struct ident *id, const char *f, size_t len)
{
	struct it it = {f, len, false};
	const char *s = NULL;
	size_t n = 0;

	for (size_t i = 0;; i++) {
		bool r_end = i == r->n;
		bool f_end = !it_next(&it, &s, &n);
		unsigned fk = f_end ? LV_LIT : level_kind(s, n);
		const struct level *l = r_end ? NULL : &r->lv[i];

		if (i == 0 && !r_end && !f_end) {
			if (is_wild(l->kind) && fk == LV_LIT && n > 0 && s[0] == '$')
				return false;
			if (is_wild(fk) && !is_wild(l->kind) && lvl_dollar(l, id))
				return false;
		}
		if ((l != NULL && l->kind == LV_HASH) || (!f_end && fk == LV_HASH))
			return true;
		if (r_end || f_end)
			return r_end && f_end;
		if (l->kind == LV_PLUS || fk == LV_PLUS)
			continue;
		if (!lit_eq(l, id, s, n))
			return false;
	}
}

/* A topic name: non-empty, no wildcard, no NUL, within MQTT's length. */
static bool valid_topic(const char *t, size_t len)
{
	if (len == 0 || len > ACL_FILE_MAX_TOPIC)
		return false;
	for (size_t i = 0; i < len; i++)
		if (t[i] == '+' || t[i] == '#' || t[i] == '\0')
			return false;
	return true;
}

/* A topic filter: non-empty, '+' and '#' whole levels, '#' last, no NUL. */
static bool valid_filter(const char *f, size_t len)
{
	if (len == 0 || len > ACL_FILE_MAX_TOPIC)
		return false;
	for (size_t i = 0; i < len; i++) {
		bool starts = i == 0 || f[i - 1] == '/';
		bool ends = i + 1 == len || f[i + 1] == '/';

		if (f[i] == '\0')
			return false;
		if (f[i] == '#' && (!starts || i + 1 != len))
			return false;
		if (f[i] == '+' && (!starts || !ends))
			return false;
	}
	return true;
}

/* Strips "$share/<group>/"; false when the shared form is malformed. */
static bool strip_share(const char **f, size_t *len)
{
	static const char pfx[] = "$share/";
	const size_t pl = sizeof(pfx) - 1;
	const char *g, *sl;

	if (*len < pl || memcmp(*f, pfx, pl) != 0)
		return true;
	g = *f + pl;
	sl = memchr(g, '/', *len - pl);
	if (sl == NULL || sl == g || memchr(g, '+', (size_t)(sl - g)) != NULL ||
	    memchr(g, '#', (size_t)(sl - g)) != NULL)
		return false;
	*len -= (size_t)(sl + 1 - *f);
	*f = sl + 1;
	return true;
}

enum verdict {
	V_NONE = 0,
	V_ALLOW,
	V_DENY,
};

static enum verdict eval_set(const struct set *set, const struct ident *id, const char *t,
			     size_t len, enum acl_access access)
{
	enum verdict v = V_NONE;
	unsigned need = access == ACL_WRITE ? ACL_PERM_WRITE : ACL_PERM_READ;

	for (size_t i = 0; i < set->n; i++) {
		const struct rule *r = &set->rules[i];

		if ((r->uses_u && !id->u_ok) || (r->uses_c && !id->c_ok))
			continue;
		if (r->perm == ACL_PERM_DENY) {
			if (access == ACL_SUBSCRIBE ? overlaps(r, id, t, len)
						    : match_topic(r, id, t, len))
				return V_DENY;
		} else if (v == V_NONE && (r->perm & need) != 0) {
			if (access == ACL_SUBSCRIBE ? covers(r, id, t, len)
						    : match_topic(r, id, t, len))
				v = V_ALLOW;
		}
	}
	return v;
}

static int cmp_user(const void *key, const void *elem)
{
	const struct ident *id = key;
	const struct set *s = elem;
	size_t n = id->ul < s->name_len ? id->ul : s->name_len;
	int c = memcmp(id->u, s->name, n);

	if (c != 0)
		return c;
	return id->ul < s->name_len ? -1 : id->ul > s->name_len;
}

bool acl_check(const struct acl *acl, const struct acl_identity *identity,
	       const char *topic_or_filter, size_t len, enum acl_access access)
{
	const char *t = topic_or_filter;
	const struct set *own = NULL;
	struct ident id;
	bool allowed = false;
	enum verdict v;

	if (acl == NULL || identity == NULL || t == NULL)
		return false;
	if (access == ACL_SUBSCRIBE) {
		if (!strip_share(&t, &len) || !valid_filter(t, len))
			return false;
	} else if (access == ACL_READ || access == ACL_WRITE) {
		if (!valid_topic(t, len))
			return false;
	} else {
		return false;
	}
	id = (struct ident){
	    .u = identity->username,
	    .ul = identity->username_len,
	    .c = identity->client_id,
	    .cl = identity->client_id_len,
	    .attrs = identity->attrs,
	    .nattrs = identity->attr_count,
	};
	id.u_ok = safe_value(id.u, id.ul);
	id.c_ok = safe_value(id.c, id.cl);
	if (id.u == NULL)
		own = &acl->anon;
	else if (acl->nusers > 0)
		own = bsearch(&id, acl->users, acl->nusers, sizeof(*acl->users), cmp_user);

	if (own != NULL) {
		v = eval_set(own, &id, t, len, access);
		if (v == V_DENY)
			return false;
		allowed |= v == V_ALLOW;
		for (size_t i = 0; i < own->nroles; i++) {
			v = eval_set(&acl->roles[own->roles[i]], &id, t, len, access);
			if (v == V_DENY)
				return false;
			allowed |= v == V_ALLOW;
		}
	}
	v = eval_set(&acl->patterns, &id, t, len, access);
	if (v == V_DENY)
		return false;
	allowed |= v == V_ALLOW;
	for (size_t i = 0; i < identity->role_count; i++) {
		const struct set *r = find_role(acl, identity->roles[i]);

		if (r == NULL)
			continue;
		v = eval_set(r, &id, t, len, access);
		if (v == V_DENY)
			return false;
		allowed |= v == V_ALLOW;
	}
	return allowed;
}
