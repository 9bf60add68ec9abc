/*
 * `moat ctl thing create`: the device's credential bundle. The private keys
 * are made here (P-256 TLS key + CSR, Ed25519 signing and X25519 agreement
 * keys, each PEM PKCS#8, 0600, never overwritten) or kept by the device
 * (--csr, --sign-pub/--agree-pub); only the CSR and public keys go to the
 * Security Center, whose answer gives cert.pem, ca.pem and sc.pub.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/pem.h>

#include <moat/error.h>

#include "cli/ctl.h"
#include "conf/config.h"
#include "sc/ca.h"
#include "sc/sc_json.h"

enum { PEM_FILE_MAX = 64 * 1024, KEYS = 3 };

/* What thing create makes, so a refusal can take it back. */
struct bundle {
	const char *dir;
	char path[KEYS][4096]; /* private key files written here ("" none) */
	char *csr, *sign_pub, *agree_pub;
	struct moat_diag d;
};

static int fail(const char *what, const char *why)
{
	fprintf(stderr, "moat ctl: %s: %s\n", what, why);
	return 1;
}

/* Writes <text> to DIR/<name> (mode <mode>, replacing a file there). */
static int write_text(const char *dir, const char *name, const char *text, mode_t mode)
{
	char path[4096];
	size_t len = strlen(text);
	int fd;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, mode);
	if (fd < 0 || write(fd, text, len) != (ssize_t)len || fchmod(fd, mode) != 0 ||
	    close(fd) != 0)
		return fail(path, strerror(errno));
	return 0;
}

static char *public_pem(EVP_PKEY *key)
{
	BIO *bio = BIO_new(BIO_s_mem());
	char *p = NULL, *out = NULL;
	long n;

	if (bio != NULL && PEM_write_bio_PUBKEY(bio, key) == 1 &&
	    (n = BIO_get_mem_data(bio, &p)) > 0)
		out = strndup(p, (size_t)n);
	BIO_free(bio);
	return out;
}

/* Makes a key of <type> ("ED25519", "X25519"), writes it to DIR/<file>
 * (0600, O_EXCL) and its public PEM to *<pub>. */
static int make_key(struct bundle *b, int slot, const char *type, const char *file, char **pub)
{
	EVP_PKEY *key = EVP_PKEY_Q_keygen(NULL, NULL, type);
	int rc = 1;

	snprintf(b->path[slot], sizeof(b->path[slot]), "%s/%s", b->dir, file);
	if (key == NULL) {
		b->path[slot][0] = '\0';
		fail(type, "could not make the key");
	} else if (signer_write_key_file(b->path[slot], key, &b->d) < 0) {
		b->path[slot][0] = '\0'; /* not written: nothing of ours to remove */
		fail(file, b->d.msg);
	} else if ((*pub = public_pem(key)) == NULL) {
		fail(type, "out of memory");
	} else {
		rc = 0;
	}
	EVP_PKEY_free(key);
	return rc;
}

static int read_pem(const char *path, char **out)
{
	struct moat_diag d = {{0}};
	size_t len;

	if (conf_read_file(path, PEM_FILE_MAX, out, &len, &d) < 0)
		return fail(path, d.msg[0] != '\0' ? d.msg : "cannot read it");
	return 0;
}

/* The CSR and public keys: from the files given, or made here. */
static int prepare(const struct ctl_opts *o, const char *name, struct bundle *b)
{
	EVP_PKEY *key = NULL;
	int rc = 0;

	if ((o->sign_pub == NULL) != (o->agree_pub == NULL))
		return fail("--sign-pub and --agree-pub", "give both, or neither");
	if (o->csr != NULL) {
		rc = read_pem(o->csr, &b->csr);
	} else if (ca_make_key_csr(name, &key, &b->csr, &b->d) < 0) {
		rc = fail("key.pem", b->d.msg);
	} else {
		snprintf(b->path[0], sizeof(b->path[0]), "%s/key.pem", b->dir);
		if (signer_write_key_file(b->path[0], key, &b->d) < 0) {
			b->path[0][0] = '\0';
			rc = fail("key.pem", b->d.msg);
		}
	}
	EVP_PKEY_free(key);
	if (rc == 0 && o->sign_pub != NULL)
		rc = read_pem(o->sign_pub, &b->sign_pub);
	if (rc == 0 && o->agree_pub != NULL)
		rc = read_pem(o->agree_pub, &b->agree_pub);
	if (rc == 0 && o->sign_pub == NULL)
		rc = make_key(b, 1, "ED25519", "sign.key", &b->sign_pub);
	if (rc == 0 && o->agree_pub == NULL)
		rc = make_key(b, 2, "X25519", "agree.key", &b->agree_pub);
	return rc;
}

/* Writes what the SC answered: cert.pem, ca.pem, sc.pub, bundle.json. */
static int write_answer(const char *dir, const char *name, const cJSON *res)
{
	static const char *const files[][2] = {
	    {"cert", "cert.pem"}, {"ca", "ca.pem"}, {"sc_pub", "sc.pub"}};
	const cJSON *broker = cJSON_GetObjectItem(res, "broker");
	cJSON *b = cJSON_CreateObject();
	char *text;
	int rc = 0;

	for (size_t i = 0; rc == 0 && i < sizeof(files) / sizeof(files[0]); i++) {
		const cJSON *v = cJSON_GetObjectItem(res, files[i][0]);

		rc = cJSON_IsString(v)
			 ? write_text(dir, files[i][1], v->valuestring, 0644)
			 : fail(files[i][1], "missing in the Security Center's answer");
	}
	cJSON_AddStringToObject(b, "client_id", name);
	cJSON_AddStringToObject(b, "broker", cJSON_IsString(broker) ? broker->valuestring : "");
	text = cJSON_Print(b);
	if (rc == 0)
		rc = text != NULL ? write_text(dir, "bundle.json", text, 0644)
				  : fail("bundle.json", "out of memory");
	cJSON_free(text);
	cJSON_Delete(b);
	return rc;
}

int ctl_thing_create(const struct ctl_opts *o, const char *name)
{
	struct bundle b = {.dir = o->out};
	cJSON *req, *res = NULL, *attrs;
	bool registered;
	int rc;

	if (o->out == NULL)
		return fail("thing create", "give the bundle directory with --out DIR");
	if (mkdir(o->out, 0700) != 0 && errno != EEXIST)
		return fail(o->out, errno == ENOENT
					? "its parent directory does not exist (create it "
					  "first)"
					: strerror(errno));
	if (chmod(o->out, 0700) != 0)
		return fail(o->out, strerror(errno));
	rc = prepare(o, name, &b);
	if (rc == 0) {
		req = ctl_request(o, "thing.create");
		cJSON_AddStringToObject(req, "name", name);
		cJSON_AddStringToObject(req, "csr", b.csr);
		cJSON_AddStringToObject(req, "sign_pub", b.sign_pub);
		cJSON_AddStringToObject(req, "agree_pub", b.agree_pub);
		attrs = cJSON_AddObjectToObject(req, "attrs");
		for (size_t i = 0; rc == 0 && i < o->attr_count; i++) {
			struct reg_attr a;

			if (sc_parse_attr(o->attrs[i], &a, &b.d) < 0)
				rc = fail("--attr", b.d.msg);
			else
				cJSON_AddStringToObject(attrs, a.name, a.value);
		}
		rc = rc == 0 ? ctl_call(o, req, &res) : (cJSON_Delete(req), rc);
	}
	registered = rc == 0 && cJSON_IsTrue(cJSON_GetObjectItem(res, "ok"));
	if (rc == 0 && !registered)
		rc = fail("thing create", cJSON_IsString(cJSON_GetObjectItem(res, "error"))
					      ? cJSON_GetObjectItem(res, "error")->valuestring
					      : "refused");
	if (registered)
		rc = write_answer(o->out, name, res);
	if (res != NULL && o->json) {
		char *text = cJSON_Print(res);

		puts(text != NULL ? text : "{}");
		cJSON_free(text);
	} else if (rc == 0) {
		printf("%s: registered; credential bundle in %s (certificate serial %s)\n", name,
		       o->out, cJSON_GetStringValue(cJSON_GetObjectItem(res, "serial")));
	}
	for (int i = 0; !registered && i < KEYS; i++)
		if (b.path[i][0] != '\0')
			unlink(b.path[i]); /* the SC refused: no keys for nothing */
	cJSON_Delete(res);
	free(b.csr);
	free(b.sign_pub);
	free(b.agree_pub);
	return rc;
}
