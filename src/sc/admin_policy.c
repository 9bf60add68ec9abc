/*
 * Admin ops on the topic policy file (admin_impl.h): policy.set, list,
 * show, delete, and key.rotate. A change edits the JSON document, has the
 * whole new document checked by topic_policy's parser (the broker's and
 * key release's own), and only then replaces the file atomically (write a
 * temporary file, fsync, rename) and tells the daemon.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <moat/error.h>

#include "policy/topic_policy.h"
#include "sc/admin_impl.h"

/* Reads the policy file into *<doc> ({"policies":[...]}); a missing file is
 * an empty set. *<list> is its "policies" array. */
static int load(struct admin_req *r, cJSON **doc, cJSON **list)
{
	char *text = NULL;
	size_t len = 0;
	int rc;

	*doc = NULL;
	if (access(r->ctx->policy_file, F_OK) != 0 && errno == ENOENT) {
		*doc = cJSON_CreateObject();
		*list = *doc != NULL ? cJSON_AddArrayToObject(*doc, "policies") : NULL;
		return *list != NULL ? MOAT_OK : MOAT_E_NOMEM;
	}
	rc = conf_read_file(r->ctx->policy_file, TOPIC_POLICY_MAX_DOC, &text, &len, r->d);
	if (rc < 0)
		return rc;
	*doc = cJSON_ParseWithLength(text, len);
	free(text);
	*list = cJSON_GetObjectItemCaseSensitive(*doc, "policies");
	if (!cJSON_IsArray(*list)) {
		cJSON_Delete(*doc);
		*doc = NULL;
		snprintf(r->d->msg, sizeof(r->d->msg),
			 "%.300s: not a policy document {\"policies\": [...]}",
			 r->ctx->policy_file);
		return MOAT_E_PARSE;
	}
	return MOAT_OK;
}

/* The entry of <list> whose filter is <filter>, or NULL; its index to *<at>. */
static cJSON *find(cJSON *list, const char *filter, int *at)
{
	cJSON *e;
	int i = 0;

	cJSON_ArrayForEach(e, list)
	{
		const cJSON *f = cJSON_GetObjectItemCaseSensitive(e, "filter");

		if (cJSON_IsString(f) && strcmp(f->valuestring, filter) == 0) {
			*at = i;
			return e;
		}
		i++;
	}
	return NULL;
}

/* The request's "filter", also noted in the audit row. */
static int filter_of(struct admin_req *r, const char **filter)
{
	int rc = admin_str(r, "filter", true, filter);

	if (rc == MOAT_OK)
		cJSON_AddStringToObject(r->detail, "filter", *filter);
	return rc;
}

static int write_atomic(struct admin_req *r, const char *text)
{
	char tmp[4096];
	size_t len = strlen(text);
	int fd, rc = MOAT_OK;

	if ((size_t)snprintf(tmp, sizeof(tmp), "%s.XXXXXX", r->ctx->policy_file) >= sizeof(tmp))
		return admin_fail(r, MOAT_E_INVAL, "policy file path too long");
	fd = mkostemp(tmp, O_CLOEXEC);
	if (fd < 0)
		return admin_fail(r, MOAT_E_IO, "%.300s: %s", tmp, strerror(errno));
	for (size_t off = 0; rc == MOAT_OK && off < len;) {
		ssize_t n = write(fd, text + off, len - off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			rc = MOAT_E_IO;
		else
			off += (size_t)n;
	}
	if (rc == MOAT_OK && (fchmod(fd, 0644) != 0 || fsync(fd) != 0))
		rc = MOAT_E_IO;
	if (close(fd) != 0)
		rc = MOAT_E_IO;
	if (rc == MOAT_OK && rename(tmp, r->ctx->policy_file) != 0)
		rc = MOAT_E_IO;
	if (rc < 0) {
		snprintf(r->d->msg, sizeof(r->d->msg), "%.300s: could not replace it: %s",
			 r->ctx->policy_file, strerror(errno));
		unlink(tmp);
	}
	return rc;
}

/* Checks the whole document <doc> with the policy engine, then replaces the
 * file with it and tells the daemon. */
static int commit(struct admin_req *r, const cJSON *doc)
{
	const struct sc_admin_hooks *h = &r->ctx->hooks;
	struct topic_policy_set *set = NULL;
	struct policy_diag pd = {0};
	char *text = cJSON_Print(doc);
	int rc;

	if (text == NULL)
		return MOAT_E_NOMEM;
	rc = topic_policy_set_parse(&set, text, strlen(text), &pd);
	topic_policy_set_destroy(set);
	if (rc < 0)
		snprintf(r->d->msg, sizeof(r->d->msg), "refused: %s", pd.msg);
	else
		rc = write_atomic(r, text);
	cJSON_free(text);
	if (rc < 0)
		return rc;
	return admin_daemon(r, h->policies_changed != NULL,
			    h->policies_changed != NULL ? h->policies_changed(h->arg, r->d)
							: MOAT_OK,
			    "the policy file was replaced");
}

/* Builds the policy entry of a policy.set request into *<out>. */
static int entry_of(struct admin_req *r, const char *filter, cJSON **out)
{
	static const char *const exprs[] = {"publish", "subscribe", "alg"};
	const cJSON *sig = cJSON_GetObjectItemCaseSensitive(r->in, "signed");
	cJSON *e = cJSON_CreateObject();
	const char *v;
	uint32_t age;
	int rc = e != NULL ? MOAT_OK : MOAT_E_NOMEM;

	if (rc == MOAT_OK)
		cJSON_AddStringToObject(e, "filter", filter);
	for (size_t i = 0; rc == MOAT_OK && i < sizeof(exprs) / sizeof(exprs[0]); i++) {
		rc = admin_str(r, exprs[i], false, &v);
		if (rc == MOAT_OK && v != NULL)
			cJSON_AddStringToObject(e, exprs[i], v);
	}
	if (rc == MOAT_OK && sig != NULL && !cJSON_IsBool(sig))
		rc = admin_fail(r, MOAT_E_INVAL, "\"signed\": true or false");
	if (rc == MOAT_OK && sig != NULL)
		cJSON_AddBoolToObject(e, "signed", cJSON_IsTrue(sig));
	if (rc == MOAT_OK)
		rc = admin_uint(r, "max_age_s", 0, UINT32_MAX, 0, &age);
	if (rc == MOAT_OK && cJSON_GetObjectItemCaseSensitive(r->in, "max_age_s") != NULL)
		cJSON_AddNumberToObject(e, "max_age_s", age);
	if (rc < 0) {
		cJSON_Delete(e);
		return rc;
	}
	*out = e;
	return MOAT_OK;
}

int admin_policy_set(struct admin_req *r)
{
	cJSON *doc = NULL, *list, *e = NULL;
	const char *filter;
	int at = -1, rc;

	rc = filter_of(r, &filter);
	if (rc == MOAT_OK)
		rc = entry_of(r, filter, &e);
	if (rc == MOAT_OK)
		rc = load(r, &doc, &list);
	if (rc == MOAT_OK) {
		bool replaced = find(list, filter, &at) != NULL;

		if (replaced)
			cJSON_ReplaceItemInArray(list, at, e);
		else
			cJSON_AddItemToArray(list, e);
		cJSON_AddItemToObject(r->out, "policy", cJSON_Duplicate(e, true));
		cJSON_AddBoolToObject(r->out, "replaced", replaced);
		e = NULL;
		rc = commit(r, doc);
	}
	cJSON_Delete(e);
	cJSON_Delete(doc);
	return rc;
}

int admin_policy_list(struct admin_req *r)
{
	cJSON *doc = NULL, *list;
	int rc = load(r, &doc, &list);

	if (rc == MOAT_OK)
		cJSON_AddItemToObject(r->out, "policies", cJSON_DetachItemViaPointer(doc, list));
	cJSON_Delete(doc);
	return rc;
}

/* Loads the file and finds the request's filter: MOAT_E_NOTFOUND if none. */
static int load_one(struct admin_req *r, cJSON **doc, cJSON **list, int *at)
{
	const char *filter;
	int rc = filter_of(r, &filter);

	if (rc == MOAT_OK)
		rc = load(r, doc, list);
	if (rc == MOAT_OK && find(*list, filter, at) == NULL)
		rc = admin_fail(r, MOAT_E_NOTFOUND, "no policy for the filter %.200s", filter);
	return rc;
}

int admin_policy_show(struct admin_req *r)
{
	cJSON *doc = NULL, *list;
	int at, rc = load_one(r, &doc, &list, &at);

	if (rc == MOAT_OK)
		cJSON_AddItemToObject(r->out, "policy", cJSON_DetachItemFromArray(list, at));
	cJSON_Delete(doc);
	return rc;
}

int admin_policy_delete(struct admin_req *r)
{
	cJSON *doc = NULL, *list;
	int at, rc = load_one(r, &doc, &list, &at);

	if (rc == MOAT_OK) {
		cJSON_DeleteItemFromArray(list, at);
		cJSON_AddTrueToObject(r->out, "deleted");
		rc = commit(r, doc);
	}
	cJSON_Delete(doc);
	return rc;
}

int admin_key_rotate(struct admin_req *r)
{
	const struct sc_admin_hooks *h = &r->ctx->hooks;
	cJSON *doc = NULL, *list;
	const char *filter;
	int at, rc = load_one(r, &doc, &list, &at);

	cJSON_Delete(doc);
	if (rc == MOAT_OK)
		rc = admin_str(r, "filter", true, &filter);
	if (rc < 0)
		return rc;
	cJSON_AddStringToObject(r->out, "filter", filter);
	return admin_daemon(r, h->rotate != NULL,
			    h->rotate != NULL ? h->rotate(h->arg, filter, r->d) : MOAT_OK,
			    "the policy exists");
}
