/*
 * Password-file parser: splits lines, checks usernames and strictly
 * validates every hash field (base64 through base/base64.h). Knows the
 * formats, not the algorithms; auth/passwd.c verifies passwords.
 */
#include "conf/passwd_file.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <moat/error.h>

#include "base/text.h"
#include "base/base64.h"

enum { FILE_MAX = 64 * 1024 * 1024 };

/* A walk over the '$'-separated fields of a hash; <done> once the last one was read. */
struct fields {
	const char *p;
	const char *end;
	bool done;
};

/* Next field: sets <f>/<n>; false when there is none left. */
static bool next_field(struct fields *c, const char **f, size_t *n)
{
	const char *d;

	if (c->done)
		return false;
	d = memchr(c->p, '$', (size_t)(c->end - c->p));
	*f = c->p;
	*n = d == NULL ? (size_t)(c->end - c->p) : (size_t)(d - c->p);
	if (d == NULL)
		c->done = true;
	else
		c->p = d + 1;
	return true;
}

/* Decodes base64 field [s, s+n) into exactly <want> bytes (or 1..cap when want == 0). */
static bool decode(const char *s, size_t n, uint8_t *out, size_t cap, size_t want, size_t *got)
{
	int rc;

	if (n == 0)
		return false;
	rc = b64_decode(s, n, out, cap, B64_STD);
	if (rc <= 0 || (want != 0 && (size_t)rc != want))
		return false;
	*got = (size_t)rc;
	return true;
}

static int parse_sha512(struct fields c, struct pwf_hash *h, const char **why)
{
	const char *f;
	size_t n;

	h->kind = PWF_SHA512;
	if (!next_field(&c, &f, &n) || !decode(f, n, h->salt, sizeof(h->salt), 0, &h->salt_len)) {
		*why = "$6$ salt is not base64 of 1 to 64 bytes, recreate the entry with `moat "
		       "passwd`";
		return MOAT_E_CONFIG;
	}
	if (!next_field(&c, &f, &n) || !c.done ||
	    !decode(f, n, h->hash, sizeof(h->hash), 64, &h->hash_len)) {
		*why =
		    "$6$ hash is not base64 of a 64-byte SHA-512 digest, recreate the entry with "
		    "`moat passwd`";
		return MOAT_E_CONFIG;
	}
	return MOAT_OK;
}

static int parse_pbkdf2(struct fields c, struct pwf_hash *h, const char **why)
{
	const char *f;
	size_t n;

	h->kind = PWF_PBKDF2_SHA512;
	if (!next_field(&c, &f, &n) || !text_parse_u32(f, n, &h->iterations)) {
		*why =
		    "$7$ iteration count is not a positive decimal number, recreate the entry with "
		    "`moat passwd`";
		return MOAT_E_CONFIG;
	}
	if (!next_field(&c, &f, &n) || !decode(f, n, h->salt, sizeof(h->salt), 0, &h->salt_len)) {
		*why = "$7$ salt is not base64 of 1 to 64 bytes, recreate the entry with `moat "
		       "passwd`";
		return MOAT_E_CONFIG;
	}
	if (!next_field(&c, &f, &n) || !c.done ||
	    !decode(f, n, h->hash, sizeof(h->hash), 64, &h->hash_len)) {
		*why = "$7$ hash is not base64 of a 64-byte PBKDF2-SHA512 key, recreate the entry "
		       "with "
		       "`moat passwd`";
		return MOAT_E_CONFIG;
	}
	return MOAT_OK;
}

static int parse_scram(struct fields c, struct pwf_hash *h, const char **why)
{
	const char *f;
	size_t n, got;

	h->kind = PWF_SCRAM_SHA256;
	if (!next_field(&c, &f, &n) || !text_parse_u32(f, n, &h->iterations) ||
	    h->iterations < PWF_SCRAM_MIN_ITER) {
		*why = "SCRAM iteration count is not a number of at least 4096, recreate the entry "
		       "with `moat passwd --scram`";
		return MOAT_E_CONFIG;
	}
	if (!next_field(&c, &f, &n) || !decode(f, n, h->salt, sizeof(h->salt), 0, &h->salt_len)) {
		*why = "SCRAM salt is not base64 of 1 to 64 bytes, recreate the entry with "
		       "`moat passwd --scram`";
		return MOAT_E_CONFIG;
	}
	if (!next_field(&c, &f, &n) ||
	    !decode(f, n, h->hash, sizeof(h->hash), PWF_SCRAM_KEY_LEN, &h->hash_len) ||
	    !next_field(&c, &f, &n) || !c.done ||
	    !decode(f, n, h->server_key, sizeof(h->server_key), PWF_SCRAM_KEY_LEN, &got)) {
		*why = "SCRAM StoredKey or ServerKey is not base64 of 32 bytes, recreate the entry "
		       "with `moat passwd --scram`";
		return MOAT_E_CONFIG;
	}
	return MOAT_OK;
}

/* "m=<n>,t=<n>,p=<n>" with positive decimal values. */
static bool argon2_params(const char *s, size_t n)
{
	static const char keys[3] = {'m', 't', 'p'};
	const char *end = s + n;
	uint32_t v;

	for (int i = 0; i < 3; i++) {
		const char *c;

		if (end - s < 3 || s[0] != keys[i] || s[1] != '=')
			return false;
		s += 2;
		c = memchr(s, ',', (size_t)(end - s));
		if ((c == NULL) != (i == 2))
			return false;
		if (c == NULL)
			c = end;
		if (!text_parse_u32(s, (size_t)(c - s), &v))
			return false;
		s = c + (i < 2);
	}
	return true;
}

/* Unpadded standard base64 of at least <min> characters (the PHC string format). */
static bool phc_b64(const char *s, size_t n, size_t min)
{
	if (n < min || n % 4 == 1)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];

		if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
		      c == '+' || c == '/'))
			return false;
	}
	return true;
}

static int parse_argon2id(const char *text, size_t len, struct pwf_hash *h, const char **why)
{
	struct fields c = {text + strlen("$argon2id$"), text + len, false};
	const char *f;
	size_t n;

	h->kind = PWF_ARGON2ID;
	*why = "argon2id entry is not $argon2id$v=19$m=M,t=T,p=P$SALT$HASH, recreate the entry "
	       "with `moat passwd`";
	if (len > PWF_PHC_MAX)
		return MOAT_E_CONFIG;
	if (!next_field(&c, &f, &n) || n != 4 || memcmp(f, "v=19", 4) != 0)
		return MOAT_E_CONFIG;
	if (!next_field(&c, &f, &n) || !argon2_params(f, n))
		return MOAT_E_CONFIG;
	if (!next_field(&c, &f, &n) || !phc_b64(f, n, 11)) /* 8-byte minimum salt */
		return MOAT_E_CONFIG;
	if (!next_field(&c, &f, &n) || !c.done || !phc_b64(f, n, 22)) /* 16-byte hash */
		return MOAT_E_CONFIG;
	memcpy(h->phc, text, len);
	h->phc[len] = '\0';
	return MOAT_OK;
}

static bool has_prefix(const char *s, size_t n, const char *prefix)
{
	size_t pn = strlen(prefix);

	return n >= pn && memcmp(s, prefix, pn) == 0;
}

int pwf_hash_parse(const char *text, size_t len, struct pwf_hash *out, const char **why)
{
	const char *end = text + len;

	memset(out, 0, sizeof(*out));
	if (len == 0) {
		*why = "empty password hash, set a password with `moat passwd FILE USER`";
		return MOAT_E_CONFIG;
	}
	if (text[0] != '$') {
		*why = "password is in plain text, hash the file with `moat passwd -U FILE`";
		return MOAT_E_CONFIG;
	}
	if (has_prefix(text, len, "$6$"))
		return parse_sha512((struct fields){text + 3, end, false}, out, why);
	if (has_prefix(text, len, "$7$"))
		return parse_pbkdf2((struct fields){text + 3, end, false}, out, why);
	if (has_prefix(text, len, "$argon2id$"))
		return parse_argon2id(text, len, out, why);
	if (has_prefix(text, len, "$scram-sha-256$"))
		return parse_scram((struct fields){text + 15, end, false}, out, why);
	if (has_prefix(text, len, "$scram-sha-1$"))
		*why = "SCRAM-SHA-1 is not supported, use SCRAM-SHA-256 (`moat passwd --scram`)";
	else
		*why = "unknown hash format (known: $6$, $7$, $argon2id$, $scram-sha-256$), "
		       "recreate the entry with `moat passwd`";
	memset(out, 0, sizeof(*out));
	return MOAT_E_CONFIG;
}

static void entry_fini(struct pwf_entry *e)
{
	free(e->username);
	explicit_bzero(&e->h, sizeof(e->h));
}

void pwf_fini(struct pwf *f)
{
	if (f == NULL)
		return;
	for (size_t i = 0; i < f->count; i++)
		entry_fini(&f->entries[i]);
	free(f->entries);
	free(f->by_name);
	memset(f, 0, sizeof(*f));
}

static int by_name_cmp(const void *a, const void *b)
{
	const struct pwf_entry *const *x = a;
	const struct pwf_entry *const *y = b;

	return strcmp((*x)->username, (*y)->username);
}

static int key_cmp(const void *key, const void *elem)
{
	const struct pwf_entry *const *e = elem;

	return strcmp(key, (*e)->username);
}

const struct pwf_entry *pwf_find(const struct pwf *f, const char *username)
{
	const struct pwf_entry *const *e;

	if (f->count == 0)
		return NULL;
	e = bsearch(username, f->by_name, f->count, sizeof(*f->by_name), key_cmp);
	return e == NULL ? NULL : *e;
}

/* Sorts the index; returns the line of the first repeated user (in file order), or 0. */
static size_t index_names(struct pwf *f)
{
	size_t dup = 0;

	for (size_t i = 0; i < f->count; i++)
		f->by_name[i] = &f->entries[i];
	qsort(f->by_name, f->count, sizeof(*f->by_name), by_name_cmp);
	for (size_t i = 1; i < f->count; i++) {
		const struct pwf_entry *a = f->by_name[i - 1], *b = f->by_name[i];
		size_t later = a->line > b->line ? a->line : b->line;

		if (strcmp(a->username, b->username) == 0 && (dup == 0 || later < dup))
			dup = later;
	}
	return dup;
}

static int fail(struct moat_diag *diag, const char *name, size_t line, const char *why)
{
	return conf_diag(diag, name, (unsigned)line, "%s", why);
}

static bool blank(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (s[i] != ' ' && s[i] != '\t')
			return false;
	return true;
}

/* Adds one "user:hash" line of <n> bytes (no newline) to <f>. */
static int parse_line(struct pwf *f, size_t line, const char *s, size_t n, const char **why)
{
	const char *colon = memchr(s, ':', n);
	struct pwf_entry e = {.line = line};
	size_t ulen;
	int rc;

	if (colon == NULL) {
		*why = "line has no ':', write USER:HASH (use `moat passwd FILE USER`)";
		return MOAT_E_CONFIG;
	}
	ulen = (size_t)(colon - s);
	if (ulen == 0) {
		*why = "empty username, write USER:HASH or remove the line";
		return MOAT_E_CONFIG;
	}
	if (ulen > PWF_USER_MAX) {
		*why = "username longer than 65535 bytes, shorten it";
		return MOAT_E_CONFIG;
	}
	for (size_t i = 0; i < ulen; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c < 0x20 || c == 0x7f) {
			*why = "username contains a control character, remove it";
			return MOAT_E_CONFIG;
		}
	}
	rc = pwf_hash_parse(colon + 1, n - ulen - 1, &e.h, why);
	if (rc < 0)
		return rc;
	e.username = strndup(s, ulen);
	if (e.username == NULL) {
		rc = MOAT_E_NOMEM;
		goto err_wipe;
	}
	if (f->count == f->cap) {
		size_t cap = f->cap == 0 ? 16 : f->cap * 2;
		struct pwf_entry *ne = realloc(f->entries, cap * sizeof(*ne));

		if (ne == NULL) {
			rc = MOAT_E_NOMEM;
			goto err_wipe;
		}
		f->entries = ne;
		f->cap = cap;
	}
	f->entries[f->count++] = e;
	return MOAT_OK;

err_wipe:
	entry_fini(&e);
	return rc;
}

int pwf_parse(struct pwf *out, const char *name, const char *data, size_t len,
	      struct moat_diag *diag)
{
	const char *p = data;
	const char *end = data + len;
	size_t line = 0;
	const char *why;
	int rc;

	memset(out, 0, sizeof(*out));
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		size_t n = nl == NULL ? (size_t)(end - p) : (size_t)(nl - p);
		const char *s = p;

		line++;
		p = nl == NULL ? end : nl + 1;
		if (n > 0 && s[n - 1] == '\r')
			n--;
		if (n > PWF_LINE_MAX) {
			rc = fail(diag, name, line, "line longer than 64 KiB, shorten it");
			goto err;
		}
		if (memchr(s, '\0', n) != NULL || memchr(s, '\r', n) != NULL) {
			rc = fail(diag, name, line, "line contains a NUL or CR byte, remove it");
			goto err;
		}
		if (n > 0 && s[0] == '#')
			continue;
		if (blank(s, n)) {
			rc = fail(diag, name, line,
				  "blank line, remove it (comments start with '#')");
			goto err;
		}
		rc = parse_line(out, line, s, n, &why);
		if (rc == MOAT_E_CONFIG)
			fail(diag, name, line, why);
		if (rc < 0)
			goto err;
	}
	if (out->count > 0) {
		out->by_name = malloc(out->count * sizeof(*out->by_name));
		if (out->by_name == NULL) {
			rc = MOAT_E_NOMEM;
			goto err;
		}
		line = index_names(out);
		if (line != 0) {
			rc = fail(diag, name, line,
				  "duplicate user, keep one line per user and delete the others");
			goto err;
		}
	}
	return MOAT_OK;

err:
	pwf_fini(out);
	return rc;
}

int pwf_load(struct pwf *out, const char *path, struct moat_diag *diag)
{
	char *data;
	size_t len;
	int rc;

	memset(out, 0, sizeof(*out));
	rc = conf_read_file(path, FILE_MAX, &data, &len, diag);
	if (rc < 0)
		return rc;
	rc = pwf_parse(out, path, data, len, diag);
	explicit_bzero(data, len);	/* it may hold plain-text passwords */
	free(data);
	return rc;
}
