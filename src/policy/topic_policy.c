/*
 * Topic policy sets (see topic_policy.h): the strict JSON loader, the
 * specificity order and the load-time ambiguity check, the policy ids, and
 * the PUBLISH/SUBSCRIBE decisions. Filter relations (covers, overlaps) are
 * computed level by level with MQTT's rule that a leading wildcard never
 * matches a '$' topic [MQTT-4.7.2-1].
 */
#include "policy/topic_policy.h"

#include "e2e/alg.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <openssl/evp.h>

#include <moat/error.h>

#include "codec/topic.h"

struct entry {
	struct topic_policy pub; /* what callers see */
	char *filter;
	struct policy_expr *publish, *subscribe;
	size_t wildcards, levels;
};

struct topic_policy_set {
	struct entry *e;
	size_t n;
};

__attribute__((format(printf, 3, 4))) static int diag_set(struct policy_diag *d, int rc,
							  const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(d->msg, sizeof(d->msg), fmt, ap);
	va_end(ap);
	return rc;
}

/* At most 40 bytes of <s> for a message, control characters shown as '?'
 * (the text comes from the file and ends up in logs). */
static const char *shown(const char *s, char out[44])
{
	size_t n = 0;

	for (; s[n] != '\0' && n < 40; n++)
		out[n] = (unsigned char)s[n] < 0x20 || s[n] == 0x7f ? '?' : s[n];
	if (s[n] != '\0')
		out[n++] = '.', out[n++] = '.', out[n++] = '.';
	out[n] = '\0';
	return out;
}

/* ---- filters ---- */

struct lv {
	const char *p;
	size_t left;
	bool done;
};

static struct lv lv_of(const char *s)
{
	return (struct lv){s, strlen(s), false};
}

static struct lv lv_of_bytes(struct moat_bytes b)
{
	return (struct lv){(const char *)b.ptr, b.len, false};
}

/* The next level of <it> into <s>/<n>; false after the last one. */
static bool lv_next(struct lv *it, const char **s, size_t *n)
{
	const char *sl;

	if (it->done)
		return false;
	sl = it->left > 0 ? memchr(it->p, '/', it->left) : NULL;
	*s = it->p;
	if (sl == NULL) {
		*n = it->left;
		it->done = true;
		return true;
	}
	*n = (size_t)(sl - it->p);
	it->left -= *n + 1;
	it->p = sl + 1;
	return true;
}

static bool is_lv(const char *s, size_t n, char c)
{
	return n == 1 && s[0] == c;
}

static bool is_wild(const char *s, size_t n)
{
	return is_lv(s, n, '+') || is_lv(s, n, '#');
}

/* A leading wildcard in one and a '$' level in the other: no common topic. */
static bool dollar_split(const char *a, size_t an, const char *b, size_t bn)
{
	return (is_wild(a, an) && bn > 0 && b[0] == '$') ||
	       (is_wild(b, bn) && an > 0 && a[0] == '$');
}

/* True when every topic filter <f> can match is matched by filter <p>. */
static bool covers(struct lv p, struct lv f)
{
	const char *ps, *fs;
	size_t pn, fn;
	bool first = true;

	for (;; first = false) {
		bool hp = lv_next(&p, &ps, &pn), hf = lv_next(&f, &fs, &fn);

		if (hp && hf && first && is_wild(ps, pn) && fn > 0 && fs[0] == '$')
			return false;
		if (hp && is_lv(ps, pn, '#'))
			return true;
		if (!hp || !hf)
			return !hp && !hf;
		if (is_lv(fs, fn, '#'))
			return false;
		if (is_lv(ps, pn, '+'))
			continue;
		if (is_lv(fs, fn, '+') || pn != fn || memcmp(ps, fs, pn) != 0)
			return false;
	}
}

/* True when some topic name matches both filters. */
static bool overlaps(struct lv a, struct lv b)
{
	const char *as, *bs;
	size_t an, bn;
	bool first = true;

	for (;; first = false) {
		bool ha = lv_next(&a, &as, &an), hb = lv_next(&b, &bs, &bn);

		if (ha && hb && first && dollar_split(as, an, bs, bn))
			return false;
		if ((ha && is_lv(as, an, '#')) || (hb && is_lv(bs, bn, '#')))
			return true;
		if (!ha || !hb)
			return !ha && !hb;
		if (is_lv(as, an, '+') || is_lv(bs, bn, '+'))
			continue;
		if (an != bn || memcmp(as, bs, an) != 0)
			return false;
	}
}

/* < 0 when <a> is more specific than <b>: fewer wildcards, more levels, more bytes. */
static int rank_cmp(const struct entry *a, const struct entry *b)
{
	size_t al = strlen(a->filter), bl = strlen(b->filter);

	if (a->wildcards != b->wildcards)
		return a->wildcards < b->wildcards ? -1 : 1;
	if (a->levels != b->levels)
		return a->levels > b->levels ? -1 : 1;
	if (al != bl)
		return al > bl ? -1 : 1;
	return 0;
}

/* ---- loading ---- */

const char *topic_policy_alg_name(enum topic_policy_alg alg)
{
	return e2e_alg_name((int)alg);
}

/* The one list of what is offered and what is refused by name is e2e/alg.c. */
static int parse_alg(const cJSON *v, enum topic_policy_alg *alg, const char *at,
		     struct policy_diag *d)
{
	const char *why = NULL;
	char sh[44];
	int id;

	if (!cJSON_IsString(v))
		return diag_set(d, MOAT_E_CONFIG, "%s: must be a string", at);
	if (e2e_alg_from_name(v->valuestring, &id, &why) < 0)
		return diag_set(d, MOAT_E_CONFIG, "%s: \"%s\" is refused: %s", at, shown(v->valuestring, sh),
				why != NULL ? why : "unknown algorithm; use chacha20-poly1305 (the default) or aes-256-gcm");
	*alg = (enum topic_policy_alg)id;
	return MOAT_OK;
}

/* Parses expression field <v> (NULL: absent = "false") into *<out>. */
static int parse_expr_field(const cJSON *v, struct policy_expr **out, const char *at,
			    struct policy_diag *d)
{
	struct policy_diag ed;
	const char *text = "false";
	int rc;

	if (v != NULL) {
		if (!cJSON_IsString(v))
			return diag_set(d, MOAT_E_CONFIG, "%s: must be a string (an expression)",
					at);
		text = v->valuestring;
	}
	rc = policy_expr_parse(out, text, strlen(text), &ed);
	if (rc != MOAT_OK) {
		d->column = ed.column;
		diag_set(d, rc, "%s: %s", at, ed.msg);
	}
	return rc;
}

static int parse_filter(const cJSON *v, struct entry *e, const char *at, struct policy_diag *d)
{
	struct moat_bytes f;
	struct lv it;
	const char *s;
	char sh[44];
	size_t n;

	if (v == NULL)
		return diag_set(d, MOAT_E_CONFIG,
				"%s: missing (a topic filter, e.g. \"plant/+/temp\")", at);
	if (!cJSON_IsString(v))
		return diag_set(d, MOAT_E_CONFIG, "%s: must be a string (a topic filter)", at);
	f = moat_bytes_str(v->valuestring);
	if (!topic_filter_is_valid(f))
		return diag_set(d, MOAT_E_CONFIG,
				"%s: \"%s\" is not a valid MQTT topic filter (non-empty UTF-8; "
				"'+' and '#' only as whole levels, '#' last)",
				at, shown(v->valuestring, sh));
	if (strncmp(v->valuestring, "$share/", 7) == 0)
		return diag_set(d, MOAT_E_CONFIG,
				"%s: a \"$share/\" filter names no topics; write the inner filter",
				at);
	e->filter = strdup(v->valuestring);
	if (e->filter == NULL)
		return MOAT_E_NOMEM;
	it = lv_of(e->filter);
	while (lv_next(&it, &s, &n)) {
		e->levels++;
		e->wildcards += is_wild(s, n);
	}
	return MOAT_OK;
}

/* SHA-256 over a domain tag, the filter, both canonical expressions and the alg, NUL-separated. */
static int policy_id(struct entry *e)
{
	const char *parts[] = {"moat/topic-policy/1", e->filter, policy_expr_canonical(e->publish),
			       policy_expr_canonical(e->subscribe),
			       topic_policy_alg_name(e->pub.alg)};
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	int ok = ctx != NULL && EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) == 1;

	for (size_t i = 0; ok && i < sizeof(parts) / sizeof(parts[0]); i++)
		ok = EVP_DigestUpdate(ctx, parts[i], strlen(parts[i]) + 1) == 1;
	ok = ok && EVP_DigestFinal_ex(ctx, e->pub.id, NULL) == 1;
	EVP_MD_CTX_free(ctx);
	return ok ? MOAT_OK : MOAT_E_NOMEM;
}

static const char *const keys[] = {"filter", "publish", "subscribe", "alg", "signed", "max_age_s"};
enum { KEY_FILTER, KEY_PUBLISH, KEY_SUBSCRIBE, KEY_ALG, KEY_SIGNED, KEY_MAX_AGE, KEY_COUNT };

static int parse_entry(const cJSON *obj, size_t idx, struct entry *e, struct policy_diag *d)
{
	const cJSON *f[KEY_COUNT] = {0}, *c;
	char at[64], sh[44];
	int rc;

	if (!cJSON_IsObject(obj))
		return diag_set(d, MOAT_E_CONFIG, "policies[%zu]: must be an object", idx);
	cJSON_ArrayForEach(c, obj)
	{
		size_t k = 0;

		while (k < KEY_COUNT && strcmp(c->string, keys[k]) != 0)
			k++;
		if (k == KEY_COUNT)
			return diag_set(
			    d, MOAT_E_CONFIG,
			    "policies[%zu]: unknown key \"%s\" (known: filter, publish, "
			    "subscribe, alg, signed, max_age_s)",
			    idx, shown(c->string, sh));
		if (f[k] != NULL)
			return diag_set(d, MOAT_E_CONFIG, "policies[%zu].%s: given twice", idx,
					keys[k]);
		f[k] = c;
	}
	snprintf(at, sizeof(at), "policies[%zu].filter", idx);
	rc = parse_filter(f[KEY_FILTER], e, at, d);
	if (rc != MOAT_OK)
		return rc;
	snprintf(at, sizeof(at), "policies[%zu].publish", idx);
	rc = parse_expr_field(f[KEY_PUBLISH], &e->publish, at, d);
	if (rc != MOAT_OK)
		return rc;
	snprintf(at, sizeof(at), "policies[%zu].subscribe", idx);
	rc = parse_expr_field(f[KEY_SUBSCRIBE], &e->subscribe, at, d);
	if (rc != MOAT_OK)
		return rc;
	e->pub.alg = TOPIC_POLICY_CHACHA20_POLY1305;
	snprintf(at, sizeof(at), "policies[%zu].alg", idx);
	if (f[KEY_ALG] != NULL && (rc = parse_alg(f[KEY_ALG], &e->pub.alg, at, d)) != MOAT_OK)
		return rc;
	if (f[KEY_SIGNED] != NULL) {
		if (!cJSON_IsBool(f[KEY_SIGNED]))
			return diag_set(d, MOAT_E_CONFIG,
					"policies[%zu].signed: must be true or false", idx);
		e->pub.must_sign = cJSON_IsTrue(f[KEY_SIGNED]);
	}
	if (f[KEY_MAX_AGE] != NULL) {
		double v = f[KEY_MAX_AGE]->valuedouble;

		if (!cJSON_IsNumber(f[KEY_MAX_AGE]) || !(v >= 0 && v <= 4294967295.0) ||
		    (double)(uint32_t)v != v)
			return diag_set(
			    d, MOAT_E_CONFIG,
			    "policies[%zu].max_age_s: must be a whole number of seconds "
			    "from 0 (no maximum) to 4294967295",
			    idx);
		e->pub.max_age_s = (uint32_t)v;
	}
	e->pub.filter = e->filter;
	e->pub.publish = e->publish;
	e->pub.subscribe = e->subscribe;
	return policy_id(e);
}

/* Refuses duplicate filters and equally specific filters that overlap. */
static int check_ambiguity(const struct topic_policy_set *s, struct policy_diag *d)
{
	for (size_t j = 1; j < s->n; j++) {
		for (size_t i = 0; i < j; i++) {
			const struct entry *a = &s->e[i], *b = &s->e[j];

			if (strcmp(a->filter, b->filter) == 0)
				return diag_set(
				    d, MOAT_E_CONFIG,
				    "policies[%zu].filter: \"%.60s\" is already the filter "
				    "of policies[%zu]",
				    j, b->filter, i);
			if (rank_cmp(a, b) == 0 && overlaps(lv_of(a->filter), lv_of(b->filter)))
				return diag_set(
				    d, MOAT_E_CONFIG,
				    "policies[%zu].filter: \"%.60s\" overlaps policies[%zu].filter "
				    "\"%.60s\" and is as specific (same wildcards, levels and "
				    "length): "
				    "ambiguous; add or change a filter so one is more specific",
				    j, b->filter, i, a->filter);
		}
	}
	return MOAT_OK;
}

/* Refuses NUL bytes and \u0000 escapes, which cJSON would silently cut strings at. */
static bool has_nul(const char *json, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		if (json[i] == '\0')
			return true;
		if (json[i] != '\\' || i + 1 >= len)
			continue;
		i++;
		if (json[i] == 'u' && i + 4 < len && memcmp(json + i + 1, "0000", 4) == 0)
			return true;
	}
	return false;
}

int topic_policy_set_parse(struct topic_policy_set **out, const char *json, size_t len,
			   struct policy_diag *diag)
{
	struct topic_policy_set *s;
	const cJSON *pol = NULL, *c;
	const char *end = NULL;
	char sh[44];
	cJSON *root;
	int rc;

	diag->column = 0;
	diag->msg[0] = '\0';
	if (len > TOPIC_POLICY_MAX_DOC)
		return diag_set(diag, MOAT_E_LIMIT, "document is %zu bytes, over the cap of %d",
				len, TOPIC_POLICY_MAX_DOC);
	if (has_nul(json, len))
		return diag_set(diag, MOAT_E_CONFIG, "NUL characters (\\u0000) are not allowed");
	root = cJSON_ParseWithLengthOpts(json, len, &end, false);
	if (root == NULL)
		return diag_set(diag, MOAT_E_CONFIG, "not valid JSON (near byte %zu)",
				end != NULL && end >= json ? (size_t)(end - json) : (size_t)0);
	rc = MOAT_E_CONFIG;
	while (end < json + len && (*end == ' ' || *end == '\t' || *end == '\r' || *end == '\n'))
		end++;
	if (end != json + len) {
		diag_set(diag, rc, "text after the JSON document (byte %zu)", (size_t)(end - json));
		goto err_json;
	}
	if (!cJSON_IsObject(root)) {
		diag_set(diag, rc, "the document must be an object {\"policies\": [...]}");
		goto err_json;
	}
	cJSON_ArrayForEach(c, root)
	{
		if (strcmp(c->string, "policies") != 0) {
			diag_set(diag, rc, "unknown top-level key \"%s\" (known: policies)",
				 shown(c->string, sh));
			goto err_json;
		}
		if (pol != NULL) {
			diag_set(diag, rc, "\"policies\" given twice");
			goto err_json;
		}
		pol = c;
	}
	if (!cJSON_IsArray(pol)) {
		diag_set(diag, rc, "\"policies\" must be an array of policy objects");
		goto err_json;
	}
	if ((size_t)cJSON_GetArraySize(pol) > TOPIC_POLICY_MAX_COUNT) {
		rc = diag_set(diag, MOAT_E_LIMIT, "more than %d policies (cap)",
			      TOPIC_POLICY_MAX_COUNT);
		goto err_json;
	}
	s = calloc(1, sizeof(*s));
	if (s == NULL ||
	    (s->e = calloc((size_t)cJSON_GetArraySize(pol) + 1, sizeof(*s->e))) == NULL) {
		rc = diag_set(diag, MOAT_E_NOMEM, "out of memory");
		goto err_set;
	}
	cJSON_ArrayForEach(c, pol)
	{
		rc = parse_entry(c, s->n, &s->e[s->n], diag);
		s->n++; /* counted first so a half-built entry is freed */
		if (rc != MOAT_OK)
			goto err_set;
	}
	rc = check_ambiguity(s, diag);
	if (rc != MOAT_OK)
		goto err_set;
	cJSON_Delete(root);
	*out = s;
	return MOAT_OK;

err_set:
	if (rc == MOAT_E_NOMEM)
		diag_set(diag, rc, "out of memory");
	topic_policy_set_destroy(s);
err_json:
	cJSON_Delete(root);
	return rc;
}

void topic_policy_set_destroy(struct topic_policy_set *set)
{
	if (set == NULL)
		return;
	for (size_t i = 0; set->e != NULL && i < set->n; i++) {
		free(set->e[i].filter);
		policy_expr_free(set->e[i].publish);
		policy_expr_free(set->e[i].subscribe);
	}
	free(set->e);
	free(set);
}

/* ---- queries ---- */

size_t topic_policy_count(const struct topic_policy_set *set)
{
	return set->n;
}

const struct topic_policy *topic_policy_at(const struct topic_policy_set *set, size_t i)
{
	return i < set->n ? &set->e[i].pub : NULL;
}

/* The most specific policy whose filter covers (all of) filter or name <f>, or NULL. */
static const struct entry *best_cover(const struct topic_policy_set *set, struct moat_bytes f)
{
	const struct entry *best = NULL;

	for (size_t i = 0; i < set->n; i++) {
		const struct entry *e = &set->e[i];

		if (covers(lv_of(e->filter), lv_of_bytes(f)) &&
		    (best == NULL || rank_cmp(e, best) < 0))
			best = e;
	}
	return best;
}

const struct topic_policy *topic_policy_for(const struct topic_policy_set *set,
					    struct moat_bytes topic)
{
	const struct entry *e;

	if (!topic_name_is_valid(topic))
		return NULL;
	e = best_cover(set, topic);
	return e != NULL ? &e->pub : NULL;
}

bool topic_policy_allows(const struct topic_policy_set *set, struct moat_bytes topic,
			 char *const *attrs, enum topic_policy_op op)
{
	const struct topic_policy *p;
	const struct entry *best;
	struct moat_bytes group, inner;

	if (op == TOPIC_POLICY_PUB) {
		p = topic_policy_for(set, topic);
		return p != NULL && policy_eval(p->publish, attrs);
	}
	if (op != TOPIC_POLICY_SUB)
		return false;
	if (topic_share_parse(topic, &group, &inner) == MOAT_OK)
		topic = inner;
	else if (!topic_filter_is_valid(topic) ||
		 (topic.len >= 7 && memcmp(topic.ptr, "$share/", 7) == 0))
		return false;
	/* Each topic F delivers is decided by the covering policy or by a more
	 * specific one that overlaps F; less specific ones never apply inside F. */
	best = best_cover(set, topic);
	if (best == NULL || !policy_eval(best->subscribe, attrs))
		return false;
	for (size_t i = 0; i < set->n; i++) {
		const struct entry *e = &set->e[i];

		if (rank_cmp(e, best) < 0 && overlaps(lv_of(e->filter), lv_of_bytes(topic)) &&
		    !policy_eval(e->subscribe, attrs))
			return false;
	}
	return true;
}
