/*
 * DIR/sc.json (see sc_keys.h): which signer each Security Center key uses.
 * The file is small, ours (0600 in a 0700 directory) and read strictly.
 */
#include "sc/sc_keys.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include <moat/error.h>

#include "sc/signer_pkcs11.h"

static const char *const uri_field[2] = {"ca_key", "token_key"};

static const char *path_of(const char *dir, const char *file, char *buf, size_t cap)
{
	snprintf(buf, cap, "%s/%s", dir, file);
	return buf;
}

/* Copies the string member <name> of <obj> (if present) into <out>. */
static int field(const cJSON *obj, const char *name, char *out, size_t cap, const char *path,
		 struct moat_diag *d)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, name);

	if (v == NULL)
		return MOAT_OK;
	if (!cJSON_IsString(v) || v->valuestring[0] == '\0' || strlen(v->valuestring) >= cap) {
		snprintf(d->msg, sizeof(d->msg), "%.300s: pkcs11.%s must be a non-empty string",
			 path, name);
		return MOAT_E_CONFIG;
	}
	strcpy(out, v->valuestring);
	return MOAT_OK;
}

static int check(const cJSON *root, struct sc_keys *k, const char *path, struct moat_diag *d)
{
	const cJSON *p11 = cJSON_GetObjectItemCaseSensitive(root, "pkcs11");
	static const char *const known[] = {"module", "pin_file", "ca_key", "token_key"};
	const cJSON *it;
	int rc;

	if (!cJSON_IsObject(root) || cJSON_GetArraySize(root) != (p11 != NULL) ||
	    (p11 != NULL && !cJSON_IsObject(p11))) {
		snprintf(d->msg, sizeof(d->msg),
			 "%.300s: must be an object with one member, \"pkcs11\"", path);
		return MOAT_E_CONFIG;
	}
	if (p11 == NULL)
		return MOAT_OK;
	cJSON_ArrayForEach(it, p11)
	{
		size_t i = 0;

		while (i < 4 && strcmp(it->string, known[i]) != 0)
			i++;
		if (i == 4) {
			snprintf(d->msg, sizeof(d->msg),
				 "%.300s: unknown field pkcs11.%.64s (a PIN never goes here)", path,
				 it->string);
			return MOAT_E_CONFIG;
		}
	}
	rc = field(p11, "module", k->module, sizeof(k->module), path, d);
	if (rc == MOAT_OK)
		rc = field(p11, "pin_file", k->pin_file, sizeof(k->pin_file), path, d);
	for (int i = 0; i < 2 && rc == MOAT_OK; i++) {
		struct p11_uri u;

		rc = field(p11, uri_field[i], k->uri[i], sizeof(k->uri[i]), path, d);
		if (rc == MOAT_OK && k->uri[i][0] != '\0' && p11_uri_parse(k->uri[i], &u, d) < 0)
			rc = MOAT_E_CONFIG;
	}
	if (rc == MOAT_OK && k->module[0] == '\0') {
		snprintf(d->msg, sizeof(d->msg), "%.300s: pkcs11.module is missing", path);
		rc = MOAT_E_CONFIG;
	}
	return rc;
}

int sc_keys_load(const char *dir, struct sc_keys *k, struct moat_diag *d)
{
	char path[PATH_MAX], *text = NULL;
	size_t len;
	cJSON *root;
	int rc;

	memset(k, 0, sizeof(*k));
	path_of(dir, "sc.json", path, sizeof(path));
	if (access(path, F_OK) != 0 && errno == ENOENT)
		return MOAT_OK;
	rc = conf_read_file(path, 64 * 1024, &text, &len, d);
	if (rc < 0)
		return rc;
	root = cJSON_ParseWithLength(text, len);
	free(text);
	if (root == NULL) {
		snprintf(d->msg, sizeof(d->msg), "%.300s: not valid JSON", path);
		return MOAT_E_CONFIG;
	}
	rc = check(root, k, path, d);
	cJSON_Delete(root);
	return rc;
}

int sc_keys_save(const char *dir, const struct sc_keys *k, struct moat_diag *d)
{
	cJSON *root = cJSON_CreateObject(), *p11 = cJSON_AddObjectToObject(root, "pkcs11");
	char path[PATH_MAX], *text = NULL;
	int fd, rc = MOAT_E_NOMEM;
	bool ok = p11 != NULL && cJSON_AddStringToObject(p11, "module", k->module) != NULL;

	if (ok && k->pin_file[0] != '\0')
		ok = cJSON_AddStringToObject(p11, "pin_file", k->pin_file) != NULL;
	for (int i = 0; i < 2 && ok; i++)
		if (k->uri[i][0] != '\0')
			ok = cJSON_AddStringToObject(p11, uri_field[i], k->uri[i]) != NULL;
	text = ok ? cJSON_Print(root) : NULL;
	cJSON_Delete(root);
	if (text == NULL)
		return MOAT_E_NOMEM;
	path_of(dir, "sc.json", path, sizeof(path));
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0) {
		snprintf(d->msg, sizeof(d->msg), "%.300s: %s", path, strerror(errno));
		rc = errno == EEXIST ? MOAT_E_DENIED : MOAT_E_IO;
	} else {
		size_t n = strlen(text);

		rc = write(fd, text, n) == (ssize_t)n && write(fd, "\n", 1) == 1 && fsync(fd) == 0
			 ? MOAT_OK
			 : MOAT_E_IO;
		close(fd);
		if (rc < 0) {
			snprintf(d->msg, sizeof(d->msg), "%.300s: could not write it", path);
			unlink(path);
		}
	}
	free(text);
	return rc;
}

int sc_keys_open(struct signer **out, const char *dir, const struct sc_keys *k, enum sc_key which,
		 struct moat_diag *d)
{
	enum signer_algo algo = which == SC_KEY_CA ? SIGNER_ECDSA_P256 : SIGNER_ED25519;
	char path[PATH_MAX];

	if (k->uri[which][0] != '\0') {
		struct signer_pkcs11_opts o = {.module = k->module,
					       .uri = k->uri[which],
					       .pin_file =
						   k->pin_file[0] != '\0' ? k->pin_file : NULL};

		return signer_pkcs11_open(out, &o, algo, d);
	}
	return signer_file_open(
	    out, path_of(dir, which == SC_KEY_CA ? "ca.key" : "token.key", path, sizeof(path)),
	    algo, d);
}
