/*
 * The client contexts shared by every libmoat client of a process that
 * trusts the same CAs (tls_client.h, tls_client_ctx_shared). Building an
 * OpenSSL 3 context and loading its CA file costs milliseconds and tens of
 * kilobytes; a simulator with 10,000 clients built one per client. Contexts
 * are keyed by the SHA-256 of the CA file's contents, which are read once
 * and loaded from memory, so what is trusted is exactly what was hashed;
 * each client's certificate is set on its connections instead
 * (tls_client_identity). A short list under one mutex: a process has one or
 * a few CA files.
 */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/sha.h>

#include <moat/error.h>

#include "net/tls_client.h"

#define CAFILE_MAX (16u << 20) /* larger than any CA bundle */

struct shared_ctx {
	struct shared_ctx *next;
	bool system_store; /* no cafile: the system's default store */
	uint8_t ca_sha256[SHA256_DIGEST_LENGTH];
	SSL_CTX *ctx;
	unsigned long uses;
};

static pthread_mutex_t shared_lock = PTHREAD_MUTEX_INITIALIZER;
static struct shared_ctx *shared_list;

/* Reads <cafile> whole into <*out> (free it), <*len> bytes. */
static int read_cafile(const char *cafile, uint8_t **out, size_t *len, struct tls_diag *diag)
{
	int rc = tls_check_file("cafile", cafile, diag);
	FILE *fp = rc == MOAT_OK ? fopen(cafile, "rb") : NULL;
	uint8_t *data = NULL;
	size_t n = 0, cap = 0;

	if (rc < 0)
		return rc;
	if (fp == NULL)
		return tls_fail(diag, "cafile %s: cannot be opened (permissions?)", cafile);
	while (!ferror(fp) && !feof(fp) && cap <= CAFILE_MAX) {
		uint8_t *more = realloc(data, cap == 0 ? 8192 : cap * 2);

		if (more == NULL) {
			fclose(fp);
			free(data);
			tls_fail(diag, "out of memory reading cafile %s", cafile);
			return MOAT_E_NOMEM;
		}
		data = more;
		cap = cap == 0 ? 8192 : cap * 2;
		n += fread(data + n, 1, cap - n, fp);
	}
	rc = ferror(fp)	 ? tls_fail(diag, "cafile %s: read error", cafile)
	     : !feof(fp) ? tls_fail(diag, "cafile %s: larger than %u MiB; not a CA file", cafile,
				    CAFILE_MAX >> 20)
			 : MOAT_OK;
	fclose(fp);
	if (rc < 0) {
		free(data);
		return rc;
	}
	*out = data;
	*len = n;
	return MOAT_OK;
}

/* The entry for <system_store> / <sha256>, or NULL. Under shared_lock. */
static struct shared_ctx *find(bool system_store, const uint8_t *sha256)
{
	for (struct shared_ctx *e = shared_list; e != NULL; e = e->next)
		if (e->system_store == system_store &&
		    (system_store || memcmp(e->ca_sha256, sha256, SHA256_DIGEST_LENGTH) == 0))
			return e;
	return NULL;
}

/* Builds the context for <cafile> (<pem>, or the system store when NULL)
 * and adds it to the list. Under shared_lock. */
static int add(const char *cafile, const uint8_t *pem, size_t len, const uint8_t *sha256,
	       SSL_CTX **out, struct tls_diag *diag)
{
	struct shared_ctx *e = calloc(1, sizeof(*e));
	struct tls_client_settings system_store = {0};
	int rc;

	if (e == NULL) {
		tls_fail(diag, "out of memory building the TLS context");
		return MOAT_E_NOMEM;
	}
	rc = pem != NULL ? tls_client_ctx_from_ca_pem(cafile, pem, len, &e->ctx, diag)
			 : tls_client_ctx_create(&system_store, &e->ctx, diag);
	if (rc < 0) {
		free(e);
		return rc;
	}
	e->system_store = pem == NULL;
	if (pem != NULL)
		memcpy(e->ca_sha256, sha256, SHA256_DIGEST_LENGTH);
	e->uses = 1;
	e->next = shared_list;
	shared_list = e;
	*out = e->ctx;
	return MOAT_OK;
}

int tls_client_ctx_shared(const char *cafile, SSL_CTX **out, struct tls_diag *diag)
{
	bool system_store = cafile == NULL || cafile[0] == '\0';
	uint8_t sha256[SHA256_DIGEST_LENGTH] = {0}, *pem = NULL;
	struct shared_ctx *e;
	size_t len = 0;
	int rc = MOAT_OK;

	if (!system_store) {
		rc = read_cafile(cafile, &pem, &len, diag);
		if (rc < 0)
			return rc;
		SHA256(pem, len, sha256);
	}
	pthread_mutex_lock(&shared_lock);
	e = find(system_store, sha256);
	if (e != NULL) {
		e->uses++;
		*out = e->ctx;
	} else {
		rc = add(cafile, pem, len, sha256, out, diag);
	}
	pthread_mutex_unlock(&shared_lock);
	free(pem);
	return rc;
}

void tls_client_ctx_unshare(SSL_CTX *ctx)
{
	struct shared_ctx **p, *gone = NULL;

	if (ctx == NULL)
		return;
	pthread_mutex_lock(&shared_lock);
	for (p = &shared_list; *p != NULL; p = &(*p)->next)
		if ((*p)->ctx == ctx) {
			if (--(*p)->uses == 0) {
				gone = *p;
				*p = gone->next;
			}
			break;
		}
	pthread_mutex_unlock(&shared_lock);
	if (gone != NULL) {
		SSL_CTX_free(gone->ctx);
		free(gone);
	}
}
