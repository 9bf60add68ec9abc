/*
 * Client-side TLS (see tls_client.h): the context libmoat builds once per
 * client and `moat bench` once per run, and the per-connection peer checks.
 * The record layer is tls.c's filter; this file only sets SSL objects up.
 */
#include "net/tls_client.h"

#include <arpa/inet.h>
#include <stdio.h>

#include <openssl/err.h>
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

static int load_identity(SSL_CTX *ctx, const struct tls_client_settings *s, struct tls_diag *diag)
{
	if (!is_set(s->certfile) && !is_set(s->keyfile))
		return MOAT_OK;
	if (!is_set(s->certfile) || !is_set(s->keyfile))
		return tls_fail(diag, "%s: set without %s; a client certificate needs both",
				is_set(s->certfile) ? "certfile" : "keyfile",
				is_set(s->certfile) ? "keyfile" : "certfile");
	return tls_use_cert_key(ctx, s->certfile, s->keyfile, diag);
}

int tls_client_ctx_create(const struct tls_client_settings *s, SSL_CTX **out, struct tls_diag *diag)
{
	SSL_CTX *ctx;
	int rc;

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
	if (SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) != 1)
		rc = tls_fail(diag, "TLS 1.2 is not supported by this OpenSSL");
	else
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

struct filter *tls_client_filter_create(SSL_CTX *ctx, const char *name, bool check_host)
{
	SSL *ssl = SSL_new(ctx);

	if (ssl == NULL)
		return NULL;
	if (tls_client_set_peer(ssl, name, check_host) != MOAT_OK) {
		SSL_free(ssl);
		return NULL;
	}
	SSL_set_connect_state(ssl);
	return tls_filter_wrap(ssl);
}
