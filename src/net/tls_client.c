/*
 * Client-side TLS (see tls_client.h): the contexts (libmoat's shared ones
 * are kept by tls_client_shared.c; `moat bench` builds one per run), the
 * client certificates set per connection, and the per-connection peer
 * checks. The record layer is tls.c's filter; this file only sets SSL
 * objects up.
 */
#include "net/tls_client.h"

#include <arpa/inet.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include <moat/error.h>

static bool is_set(const char *s)
{
	return s != NULL && s[0] != '\0';
}

/* Refuses to ask for a passphrase: OpenSSL's default would prompt on a tty. */
static int no_passphrase(char *buf, int size, int rwflag, void *arg)
{
	(void)buf;
	(void)size;
	(void)rwflag;
	(void)arg;
	return 0;
}

static int load_trust(SSL_CTX *ctx, const struct tls_client_settings *s, struct tls_diag *diag)
{
	int rc;

	if (!is_set(s->cafile)) {
		if (SSL_CTX_set_default_verify_paths(ctx) != 1)
			return tls_fail(diag, "cafile: not set and the system's CA store cannot be "
					      "loaded; give a PEM CA file");
		return MOAT_OK;
	}
	rc = tls_check_file("cafile", s->cafile, diag);
	if (rc < 0)
		return rc;
	if (SSL_CTX_load_verify_file(ctx, s->cafile) != 1)
		return tls_fail(diag, "cafile %s: holds no PEM CA certificate", s->cafile);
	return MOAT_OK;
}

/* Whether a client certificate is asked for: 1 with both <certfile> and
 * <keyfile>, 0 with neither, MOAT_E_CONFIG with one of them only. */
static int wants_identity(const char *certfile, const char *keyfile, struct tls_diag *diag)
{
	if (!is_set(certfile) && !is_set(keyfile))
		return 0;
	if (!is_set(certfile) || !is_set(keyfile))
		return tls_fail(diag, "%s: set without %s; a client certificate needs both",
				is_set(certfile) ? "certfile" : "keyfile",
				is_set(certfile) ? "keyfile" : "certfile");
	return 1;
}

static int load_identity(SSL_CTX *ctx, const struct tls_client_settings *s, struct tls_diag *diag)
{
	int rc = wants_identity(s->certfile, s->keyfile, diag);

	if (rc <= 0)
		return rc;
	return tls_use_cert_key(ctx, s->certfile, s->keyfile, diag);
}

/* A context with the settings every client context has, trusting nothing
 * yet. */
static int new_ctx(SSL_CTX **out, struct tls_diag *diag)
{
	SSL_CTX *ctx;

	ERR_clear_error();
	ctx = SSL_CTX_new(TLS_client_method());
	if (ctx == NULL) {
		tls_fail(diag, "out of memory building the TLS context");
		return MOAT_E_NOMEM;
	}
	SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION);
	SSL_CTX_set_default_passwd_cb(ctx, no_passphrase);
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
	SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
	if (SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) != 1) {
		SSL_CTX_free(ctx);
		return tls_fail(diag, "TLS 1.2 is not supported by this OpenSSL");
	}
	*out = ctx;
	return MOAT_OK;
}

int tls_client_ctx_create(const struct tls_client_settings *s, SSL_CTX **out, struct tls_diag *diag)
{
	SSL_CTX *ctx;
	int rc = new_ctx(&ctx, diag);

	if (rc < 0)
		return rc;
	rc = load_trust(ctx, s, diag);
	if (rc == MOAT_OK)
		rc = load_identity(ctx, s, diag);
	if (rc < 0) {
		SSL_CTX_free(ctx);
		return rc;
	}
	*out = ctx;
	return MOAT_OK;
}

/* Adds the certificates of <pem> to <store>; how many, or -1 when out of
 * memory. */
static int add_pem_certs(X509_STORE *store, const void *pem, size_t len)
{
	BIO *bio = BIO_new_mem_buf(pem, (int)len);
	STACK_OF(X509_INFO) *infos;
	int added = 0;

	if (bio == NULL)
		return -1;
	infos = PEM_X509_INFO_read_bio(bio, NULL, no_passphrase, NULL);
	BIO_free(bio);
	if (infos == NULL)
		return 0;
	for (int i = 0; i < sk_X509_INFO_num(infos) && added >= 0; i++) {
		X509_INFO *info = sk_X509_INFO_value(infos, i);

		if (info->x509 == NULL)
			continue;
		if (X509_STORE_add_cert(store, info->x509) == 1)
			added++;
		else if (ERR_GET_REASON(ERR_peek_last_error()) != X509_R_CERT_ALREADY_IN_HASH_TABLE)
			added = -1;
	}
	sk_X509_INFO_pop_free(infos, X509_INFO_free);
	return added;
}

int tls_client_ctx_from_ca_pem(const char *cafile, const void *pem, size_t len, SSL_CTX **out,
			       struct tls_diag *diag)
{
	SSL_CTX *ctx;
	int rc = new_ctx(&ctx, diag);
	int added;

	if (rc < 0)
		return rc;
	added = len > INT32_MAX ? 0 : add_pem_certs(SSL_CTX_get_cert_store(ctx), pem, len);
	if (added <= 0) {
		SSL_CTX_free(ctx);
		if (added < 0) {
			tls_fail(diag, "out of memory loading cafile %s", cafile);
			return MOAT_E_NOMEM;
		}
		return tls_fail(diag, "cafile %s: holds no PEM CA certificate", cafile);
	}
	*out = ctx;
	return MOAT_OK;
}

struct tls_client_identity {
	X509 *cert;
	STACK_OF(X509) *chain; /* the intermediates after <cert> in certfile */
	EVP_PKEY *key;
};

void tls_client_identity_free(struct tls_client_identity *id)
{
	if (id == NULL)
		return;
	X509_free(id->cert);
	sk_X509_pop_free(id->chain, X509_free);
	EVP_PKEY_free(id->key);
	free(id);
}

/* Reads certfile's leaf and chain into <id>: MOAT_OK or MOAT_E_CONFIG. */
static int read_chain(struct tls_client_identity *id, const char *certfile, struct tls_diag *diag)
{
	BIO *bio = BIO_new_file(certfile, "r");
	X509 *x = NULL;

	if (bio != NULL)
		id->cert = PEM_read_bio_X509_AUX(bio, NULL, no_passphrase, NULL);
	id->chain = sk_X509_new_null();
	while (id->cert != NULL && id->chain != NULL &&
	       (x = PEM_read_bio_X509(bio, NULL, no_passphrase, NULL)) != NULL)
		if (sk_X509_push(id->chain, x) <= 0) {
			X509_free(x);
			break;
		}
	BIO_free(bio);
	/* the loop ends on "no start line" after the last certificate */
	if (id->cert == NULL || id->chain == NULL ||
	    ERR_GET_REASON(ERR_peek_last_error()) != PEM_R_NO_START_LINE)
		return tls_fail(diag, "certfile %s: no PEM certificate could be loaded", certfile);
	ERR_clear_error();
	return MOAT_OK;
}

static int read_key(struct tls_client_identity *id, const char *certfile, const char *keyfile,
		    struct tls_diag *diag)
{
	BIO *bio = BIO_new_file(keyfile, "r");

	if (bio != NULL)
		id->key = PEM_read_bio_PrivateKey(bio, NULL, no_passphrase, NULL);
	BIO_free(bio);
	if (id->key == NULL)
		return tls_fail(
		    diag, "keyfile %s: no usable PEM private key (wrong format or encrypted?)",
		    keyfile);
	if (X509_check_private_key(id->cert, id->key) != 1)
		return tls_fail(diag, "keyfile %s does not match certfile %s", keyfile, certfile);
	return MOAT_OK;
}

int tls_client_identity_load(const char *certfile, const char *keyfile,
			     struct tls_client_identity **out, struct tls_diag *diag)
{
	struct tls_client_identity *id;
	int rc;

	*out = NULL;
	rc = wants_identity(certfile, keyfile, diag);
	if (rc <= 0)
		return rc;
	rc = tls_check_file("certfile", certfile, diag);
	if (rc == MOAT_OK)
		rc = tls_check_file("keyfile", keyfile, diag);
	if (rc < 0)
		return rc;
	id = calloc(1, sizeof(*id));
	if (id == NULL) {
		tls_fail(diag, "out of memory loading certfile %s", certfile);
		return MOAT_E_NOMEM;
	}
	ERR_clear_error();
	rc = read_chain(id, certfile, diag);
	if (rc == MOAT_OK)
		rc = read_key(id, certfile, keyfile, diag);
	if (rc < 0) {
		tls_client_identity_free(id);
		return rc;
	}
	*out = id;
	return MOAT_OK;
}

int tls_client_set_peer(SSL *ssl, const char *name, bool check_host)
{
	unsigned char ip[16];
	bool is_ip;

	if (name == NULL || name[0] == '\0')
		return MOAT_E_INVAL;
	is_ip = inet_pton(AF_INET, name, ip) == 1 || inet_pton(AF_INET6, name, ip) == 1;
	/* RFC 6066 3: SNI carries host names only, never an address */
	if (!is_ip && SSL_set_tlsext_host_name(ssl, name) != 1)
		goto err;
	if (check_host) {
		X509_VERIFY_PARAM *vp = SSL_get0_param(ssl);

		X509_VERIFY_PARAM_set_hostflags(vp, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
		if ((is_ip ? X509_VERIFY_PARAM_set1_ip_asc(vp, name)
			   : X509_VERIFY_PARAM_set1_host(vp, name, 0)) != 1)
			goto err;
	}
	return MOAT_OK;

err:
	ERR_clear_error();
	return MOAT_E_NOMEM;
}

struct filter *tls_client_filter_create(SSL_CTX *ctx, const struct tls_client_identity *id,
					const char *name, bool check_host)
{
	SSL *ssl = SSL_new(ctx);

	if (ssl == NULL)
		return NULL;
	if ((id != NULL && SSL_use_cert_and_key(ssl, id->cert, id->key, id->chain, 1) != 1) ||
	    tls_client_set_peer(ssl, name, check_host) != MOAT_OK) {
		ERR_clear_error();
		SSL_free(ssl);
		return NULL;
	}
	SSL_set_connect_state(ssl);
	return tls_filter_wrap(ssl);
}
