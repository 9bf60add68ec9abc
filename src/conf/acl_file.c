/*
 * ACL file parser (see acl_file.h and docs/acl.md). One pass over the text:
 * each line is a keyword and its arguments; `user` and `role` switch the
 * section that later `topic` lines (and, in a role, `pattern` lines) go to.
 * Role references are checked once the whole file is read, so a role may be
 * defined after the users that hold it.
 */
#include "conf/acl_file.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <moat/error.h>

#define MAX_FILE (16u << 20)

struct parse {
	struct acl_file *f;
	const char *name;
	unsigned line;
	struct moat_diag *diag;
	struct acl_file_section *cur; /* where `topic` lines go */
	bool in_role;		      /* cur is a role section: `pattern` lines go there too */
};

#define diag(p, ...) conf_diag((p)->diag, (p)->name, (p)->line, __VA_ARGS__)

/* Makes room for one more element of <size> bytes in *<v> holding <n> of <*cap>. */
static int grow(void **v, size_t *cap, size_t n, size_t size)
{
	size_t ncap;
	void *nv;

	if (n < *cap)
		return MOAT_OK;
	ncap = *cap != 0 ? *cap * 2 : 4;
	if (ncap > SIZE_MAX / size)
		return MOAT_E_NOMEM;
	nv = realloc(*v, ncap * size);
	if (nv == NULL)
		return MOAT_E_NOMEM;
	*v = nv;
	*cap = ncap;
	return MOAT_OK;
}

static bool is_blank(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f';
}

/* Trims blanks at both ends of the NUL-terminated <s>, in place. */
static char *trim(char *s)
{
	size_t n;

	while (is_blank(*s))
		s++;
	n = strlen(s);
	while (n > 0 && is_blank(s[n - 1]))
		s[--n] = '\0';
	return s;
}

/* Cuts the first word off *<rest> (trimmed); returns it, or NULL when none is left. */
static char *next_word(char **rest)
{
	char *s = *rest, *w;

	while (is_blank(*s))
		s++;
	if (*s == '\0')
		return NULL;
	w = s;
	while (*s != '\0' && !is_blank(*s))
		s++;
	if (*s != '\0')
		*s++ = '\0';
	*rest = s;
	return w;
}

/* MQTT filter rules: '#' alone and last, '+' alone in its level, not empty. */
static int check_filter(struct parse *p, const char *kw, const char *t)
{
	size_t n = strlen(t);

	if (n > ACL_FILE_MAX_TOPIC)
		return diag(p, "%s filter is %zu bytes; the limit is %d", kw, n,
			    ACL_FILE_MAX_TOPIC);
	for (size_t i = 0; i < n; i++) {
		bool starts = i == 0 || t[i - 1] == '/';
		bool ends = i + 1 == n || t[i + 1] == '/';

		if (t[i] == '#' && (!starts || i + 1 != n))
			return diag(
			    p,
			    "invalid %s filter \"%s\": '#' must be a whole level and the last "
			    "one (e.g. \"a/#\")",
			    kw, t);
		if (t[i] == '+' && (!starts || !ends))
			return diag(p,
				    "invalid %s filter \"%s\": '+' must be a whole level (e.g. "
				    "\"a/+/b\")",
				    kw, t);
	}
	return MOAT_OK;
}

static bool parse_perm(const char *w, unsigned *perm)
{
	static const struct {
		const char *word;
		unsigned perm;
	} words[] = {
	    {"read", ACL_PERM_READ},
	    {"write", ACL_PERM_WRITE},
	    {"readwrite", ACL_PERM_READWRITE},
	    {"deny", ACL_PERM_DENY},
	};

	for (size_t i = 0; i < sizeof(words) / sizeof(words[0]); i++) {
		if (strcmp(w, words[i].word) == 0) {
			*perm = words[i].perm;
			return true;
		}
	}
	return false;
}

/* `topic|pattern [read|write|readwrite|deny] <filter>`: the filter is the rest of the line. */
static int parse_rule(struct parse *p, const char *kw, char *rest, bool pattern)
{
	struct acl_file_section *s;
	struct acl_file_rule *r;
	unsigned perm = ACL_PERM_READWRITE;
	char *first = next_word(&rest), *topic;
	int rc;

	if (first == NULL)
		return diag(p, "%s needs a topic filter, e.g. \"%s read sensors/#\"", kw, kw);
	topic = trim(rest);
	if (*topic == '\0') {
		if (parse_perm(first, &perm))
			return diag(p, "%s %s needs a topic filter after the access word", kw,
				    first);
		topic = first;
	} else if (!parse_perm(first, &perm)) {
		return diag(p,
			    "unknown access \"%s\"; use read, write, readwrite or deny before the "
			    "topic",
			    first);
	}
	rc = check_filter(p, kw, topic);
	if (rc < 0)
		return rc;
	s = pattern && !p->in_role ? &p->f->patterns : p->cur;
	if (grow((void **)&s->rules, &s->rule_cap, s->rule_count, sizeof(*s->rules)) < 0)
		return MOAT_E_NOMEM;
	r = &s->rules[s->rule_count];
	r->topic = strdup(topic);
	if (r->topic == NULL)
		return MOAT_E_NOMEM;
	r->perm = perm;
	r->pattern = pattern;
	r->line = p->line;
	s->rule_count++;
	return MOAT_OK;
}

/* Appends a new named section to *<v> and makes it current. */
static int new_section(struct parse *p, struct acl_file_section ***v, size_t *count, size_t *cap,
		       const char *name)
{
	struct acl_file_section *s;

	if (grow((void **)v, cap, *count, sizeof(**v)) < 0)
		return MOAT_E_NOMEM;
	s = calloc(1, sizeof(*s));
	if (s == NULL)
		return MOAT_E_NOMEM;
	s->name = strdup(name);
	if (s->name == NULL) {
		free(s);
		return MOAT_E_NOMEM;
	}
	(*v)[(*count)++] = s;
	p->cur = s;
	return MOAT_OK;
}

static int parse_roles(struct parse *p, char *rest)
{
	struct acl_file_section *s = p->cur;
	char *w;

	if (s == &p->f->anon || p->in_role)
		return diag(p, "roles is only allowed inside a user section; put it after "
			       "\"user <name>\"");
	w = next_word(&rest);
	if (w == NULL)
		return diag(p, "roles needs at least one role name, e.g. \"roles operators\"");
	for (; w != NULL; w = next_word(&rest)) {
		if (grow((void **)&s->roles, &s->role_cap, s->role_count, sizeof(*s->roles)) < 0)
			return MOAT_E_NOMEM;
		s->roles[s->role_count].name = strdup(w);
		if (s->roles[s->role_count].name == NULL)
			return MOAT_E_NOMEM;
		s->roles[s->role_count].line = p->line;
		s->role_count++;
	}
	return MOAT_OK;
}

static int parse_line(struct parse *p, char *line)
{
	char *rest = line, *kw = next_word(&rest), *arg;

	if (kw == NULL || kw[0] == '#')
		return MOAT_OK;
	if (strcmp(kw, "topic") == 0)
		return parse_rule(p, kw, rest, false);
	if (strcmp(kw, "pattern") == 0)
		return parse_rule(p, kw, rest, true);
	if (strcmp(kw, "user") == 0) {
		arg = trim(rest); /* a user name may contain spaces, as in mosquitto */
		if (*arg == '\0')
			return diag(p, "user needs a name, e.g. \"user alice\"");
		if (strlen(arg) > ACL_FILE_MAX_TOPIC)
			return diag(p, "user name longer than %d bytes; MQTT usernames are shorter",
				    ACL_FILE_MAX_TOPIC);
		p->in_role = false;
		return new_section(p, &p->f->users, &p->f->user_count, &p->f->user_cap, arg);
	}
	if (strcmp(kw, "role") == 0) {
		arg = next_word(&rest);
		if (arg == NULL || next_word(&rest) != NULL)
			return diag(p, "role needs exactly one name without spaces, e.g. \"role "
				       "operators\"");
		p->in_role = true;
		return new_section(p, &p->f->roles, &p->f->role_count, &p->f->role_cap, arg);
	}
	if (strcmp(kw, "roles") == 0)
		return parse_roles(p, rest);
	return diag(p, "unknown keyword \"%s\"; use topic, pattern, user, role or roles", kw);
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Every `roles` name must have a role section somewhere in the file. */
static int check_roles(struct parse *p)
{
	const char **names;
	int rc = MOAT_OK;

	if (p->f->user_count == 0)
		return MOAT_OK;
	names = malloc((p->f->role_count + 1) * sizeof(*names));
	if (names == NULL)
		return MOAT_E_NOMEM;
	for (size_t i = 0; i < p->f->role_count; i++)
		names[i] = p->f->roles[i]->name;
	qsort(names, p->f->role_count, sizeof(*names), cmp_str);
	for (size_t u = 0; u < p->f->user_count && rc == MOAT_OK; u++) {
		const struct acl_file_section *s = p->f->users[u];

		for (size_t i = 0; i < s->role_count; i++) {
			const char *key = s->roles[i].name;

			if (bsearch(&key, names, p->f->role_count, sizeof(*names), cmp_str) ==
			    NULL) {
				p->line = s->roles[i].line;
				rc = diag(p,
					  "unknown role \"%s\" for user \"%s\"; define it with "
					  "\"role %s\"",
					  key, s->name, key);
				break;
			}
		}
	}
	free(names);
	return rc;
}

int acl_file_parse(struct acl_file *f, const char *name, const char *data, size_t len,
		   struct moat_diag *d)
{
	struct parse p = {.f = f, .name = name, .diag = d, .cur = &f->anon};
	char *text;
	size_t pos = 0;
	int rc = MOAT_OK;

	memset(f, 0, sizeof(*f));
	p.cur = &f->anon;
	d->msg[0] = '\0';
	text = malloc(len + 1);
	if (text == NULL)
		return MOAT_E_NOMEM;
	memcpy(text, data, len);
	text[len] = '\0';
	while (pos < len && rc == MOAT_OK) {
		char *nl = memchr(text + pos, '\n', len - pos);
		size_t n = nl != NULL ? (size_t)(nl - (text + pos)) : len - pos;

		p.line++;
		if (memchr(text + pos, '\0', n) != NULL) {
			rc = diag(&p, "NUL byte in the line; the file must be text");
			break;
		}
		text[pos + n] = '\0';
		rc = parse_line(&p, text + pos);
		pos += n + 1;
	}
	free(text);
	if (rc == MOAT_OK)
		rc = check_roles(&p);
	if (rc < 0) {
		if (rc == MOAT_E_NOMEM)
			snprintf(d->msg, sizeof(d->msg), "%s:%u: out of memory", name, p.line);
		acl_file_fini(f);
	}
	return rc;
}

int acl_file_load(struct acl_file *f, const char *path, struct moat_diag *d)
{
	char *data;
	size_t len;
	int rc;

	memset(f, 0, sizeof(*f));
	rc = conf_read_file(path, MAX_FILE, &data, &len, d);
	if (rc < 0)
		return rc;
	rc = acl_file_parse(f, path, data, len, d);
	free(data);
	return rc;
}

static void section_fini(struct acl_file_section *s)
{
	for (size_t i = 0; i < s->rule_count; i++)
		free(s->rules[i].topic);
	for (size_t i = 0; i < s->role_count; i++)
		free(s->roles[i].name);
	free(s->rules);
	free(s->roles);
	free(s->name);
	memset(s, 0, sizeof(*s));
}

void acl_file_fini(struct acl_file *f)
{
	if (f == NULL)
		return;
	section_fini(&f->anon);
	section_fini(&f->patterns);
	for (size_t i = 0; i < f->user_count; i++) {
		section_fini(f->users[i]);
		free(f->users[i]);
	}
	for (size_t i = 0; i < f->role_count; i++) {
		section_fini(f->roles[i]);
		free(f->roles[i]);
	}
	free(f->users);
	free(f->roles);
	memset(f, 0, sizeof(*f));
}
