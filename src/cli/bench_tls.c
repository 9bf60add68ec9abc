/*
 * `moat bench` TLS: the client context built from --cafile/--cert/--key and
 * one non-blocking client SSL object per socket. The handshake, reads and
 * writes are driven by bench.c's event loop; this file only sets them up.
 */
#include <arpa/inet.h>
#include <stdio.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "cli/bench.h"

static SSL_CTX *fail(SSL_CTX *ctx, const char *what, const char *file)
{
	char reason[256] = "failed";
	unsigned long e = ERR_get_error();

	if (e != 0)
		ERR_error_string_n(e, reason, sizeof(reason));
	fprintf(stderr, "Error: %s%s%s: %s\n", what, file ? " " : "", file ? file : "", reason);
	ERR_clear_error();
	SSL_CTX_free(ctx);
	return NULL;
}

SSL_CTX *bench_tls_ctx_create(const char *cafile, const char *cert, const char *key)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());

	if (ctx == NULL)
		return fail(NULL, "TLS context", NULL);
	if (SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) != 1)
		return fail(ctx, "TLS 1.2 or later", NULL);
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
	SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
	if (SSL_CTX_load_verify_locations(ctx, cafile, NULL) != 1)
		return fail(ctx, "cannot load CA file", cafile);
	if (cert != NULL) {
		if (SSL_CTX_use_certificate_chain_file(ctx, cert) != 1)
			return fail(ctx, "cannot load certificate", cert);
		if (SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1)
			return fail(ctx, "cannot load private key", key);
		if (SSL_CTX_check_private_key(ctx) != 1)
			return fail(ctx, "private key does not match certificate", cert);
	}
	return ctx;
}

SSL *bench_tls_open(SSL_CTX *ctx, int fd, const char *host)
{
	unsigned char ip[16];
	SSL *ssl = SSL_new(ctx);
	int ok;

	if (ssl == NULL)
		return NULL;
	if (inet_pton(AF_INET, host, ip) == 1 || inet_pton(AF_INET6, host, ip) == 1)
		ok = X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), host);
	else
		ok = SSL_set_tlsext_host_name(ssl, host) == 1 && SSL_set1_host(ssl, host) == 1;
	if (ok != 1 || SSL_set_fd(ssl, fd) != 1) {
		SSL_free(ssl);
		ERR_clear_error();
		return NULL;
	}
	SSL_set_connect_state(ssl);
	return ssl;
}
