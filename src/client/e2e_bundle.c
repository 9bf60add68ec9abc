/*
 * Reading a device credential bundle (docs/client.md "End-to-end"):
 * bundle.json {client_id, broker}, sign.key (Ed25519, PKCS#8 PEM),
 * agree.key (X25519, PKCS#8 PEM), sc.pub (the SC's Ed25519 public key,
 * pinned). Private keys must not be readable by group or others. The TLS
 * files (key.pem, cert.pem, ca.pem) are the transport's business.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cjson/cJSON.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/sha.h>

#include "client/e2e_impl.h"

static int fail(char *diag, size_t diag_len, int rc, const char *fmt, ...)
{
	va_list ap;

	if (diag != NULL && diag_len > 0) {
		va_start(ap, fmt);
		vsnprintf(diag, diag_len, fmt, ap);
		va_end(ap);
	}
	return rc;
}

/* Opens <dir>/<name> for reading; a private key must be mode 0600 or stricter. */
static FILE *open_in(const char *dir, const char *name, bool private_key, char *diag,
		     size_t diag_len)
{
	char path[4096];
	struct stat st;
	FILE *f;

	if (snprintf(path, sizeof(path), "%s/%s", dir, name) >= (int)sizeof(path)) {
		fail(diag, diag_len, 0, "%s: path too long", name);
		return NULL;
	}
	f = fopen(path, "rb");
	if (f == NULL) {
		fail(diag, diag_len, 0, "%s: %s", path, strerror(errno));
		return NULL;
	}
	if (private_key && (fstat(fileno(f), &st) != 0 || (st.st_mode & 077) != 0)) {
		fail(diag, diag_len, 0,
		     "%s: a private key must not be readable by others (chmod 600)", path);
		fclose(f);
		return NULL;
	}
	return f;
}

/* Reads the raw 32-byte key of type <type> from a PEM file: private (PKCS#8) or public. */
static int read_raw_key(const char *dir, const char *name, int type, bool private_key,
			uint8_t out[32], char *diag, size_t diag_len)
{
	FILE *f = open_in(dir, name, private_key, diag, diag_len);
	EVP_PKEY *k;
	size_t len = 32;
	int ok;

	if (f == NULL)
		return MOAT_E_CONFIG;
	k = private_key ? PEM_read_PrivateKey(f, NULL, NULL, NULL)
			: PEM_read_PUBKEY(f, NULL, NULL, NULL);
	fclose(f);
	if (k == NULL || EVP_PKEY_get_id(k) != type) {
		EVP_PKEY_free(k);
		return fail(diag, diag_len, MOAT_E_CONFIG, "%s/%s: not a PEM %s %s key", dir, name,
			    type == EVP_PKEY_ED25519 ? "Ed25519" : "X25519",
			    private_key ? "private" : "public");
	}
	ok = private_key ? EVP_PKEY_get_raw_private_key(k, out, &len) == 1
			 : EVP_PKEY_get_raw_public_key(k, out, &len) == 1;
	EVP_PKEY_free(k);
	if (!ok || len != 32)
		return fail(diag, diag_len, MOAT_E_CONFIG, "%s/%s: cannot read the key", dir, name);
	return MOAT_OK;
}

static int read_json(struct moat_e2e *e, const char *dir, char *diag, size_t diag_len)
{
	FILE *f = open_in(dir, "bundle.json", false, diag, diag_len);
	char text[8192];
	size_t n;
	cJSON *j;
	const cJSON *id, *broker;
	int rc = MOAT_OK;

	if (f == NULL)
		return MOAT_E_CONFIG;
	n = fread(text, 1, sizeof(text) - 1, f);
	fclose(f);
	text[n] = '\0';
	j = cJSON_ParseWithLength(text, n);
	id = cJSON_GetObjectItemCaseSensitive(j, "client_id");
	broker = cJSON_GetObjectItemCaseSensitive(j, "broker");
	if (j == NULL || n == sizeof(text) - 1 || !cJSON_IsString(id) ||
	    id->valuestring[0] == '\0' || strlen(id->valuestring) > KEYREL_CLIENT_ID_MAX ||
	    strchr(id->valuestring, '/') != NULL || strpbrk(id->valuestring, "+#") != NULL ||
	    (broker != NULL &&
	     (!cJSON_IsString(broker) || strlen(broker->valuestring) >= sizeof(e->broker))))
		rc = fail(diag, diag_len, MOAT_E_CONFIG,
			  "%s/bundle.json: needs {\"client_id\": \"<1..%d chars, no / + #>\", "
			  "\"broker\": \"mqtt[s]://host:port\"}",
			  dir, KEYREL_CLIENT_ID_MAX);
	if (rc == MOAT_OK) {
		snprintf(e->client_id, sizeof(e->client_id), "%s", id->valuestring);
		snprintf(e->broker, sizeof(e->broker), "%s",
			 broker != NULL ? broker->valuestring : "");
	}
	cJSON_Delete(j);
	return rc;
}

int e2e_bundle_load(struct moat_e2e *e, const char *dir, char *diag, size_t diag_len)
{
	uint8_t agree_pub[32];
	EVP_PKEY *k;
	size_t len = sizeof(agree_pub);
	int rc;

	rc = read_json(e, dir, diag, diag_len);
	if (rc == MOAT_OK)
		rc = read_raw_key(dir, "sign.key", EVP_PKEY_ED25519, true, e->sign_seed, diag,
				  diag_len);
	if (rc == MOAT_OK)
		rc = read_raw_key(dir, "agree.key", EVP_PKEY_X25519, true, e->agree_seed, diag,
				  diag_len);
	if (rc == MOAT_OK)
		rc =
		    read_raw_key(dir, "sc.pub", EVP_PKEY_ED25519, false, e->sc_pub, diag, diag_len);
	if (rc < 0)
		return rc;
	/* the fingerprint the SC seals the key to: SHA-256 of our X25519 public key */
	k = EVP_PKEY_new_raw_private_key(EVP_PKEY_X25519, NULL, e->agree_seed, 32);
	if (k == NULL || EVP_PKEY_get_raw_public_key(k, agree_pub, &len) != 1 || len != 32) {
		EVP_PKEY_free(k);
		return fail(diag, diag_len, MOAT_E_CONFIG, "%s/agree.key: no public key", dir);
	}
	EVP_PKEY_free(k);
	SHA256(agree_pub, sizeof(agree_pub), e->agree_fpr);
	return MOAT_OK;
}
