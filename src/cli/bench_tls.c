/*
 * `moat bench` TLS: the client context built from --cafile/--cert/--key and
 * one non-blocking client SSL object per socket, both set up by libmoat's
 * client TLS (net/tls_client.h). The handshake, reads and writes are driven
 * by bench.c's event loop; this file only sets them up.
 */
#include <stdio.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include <moat/error.h>

#include "cli/bench.h"
#include "net/tls_client.h"

SSL_CTX *bench_tls_ctx_create(const char *cafile, const char *cert, const char *key)
{
	struct tls_client_settings s = {.cafile = cafile, .certfile = cert, .keyfile = key};
	struct tls_diag d = {""};
	SSL_CTX *ctx = NULL;

	if (tls_client_ctx_create(&s, &ctx, &d) < 0) {
		fprintf(stderr, "Error: %s\n", d.msg);
		return NULL;
	}
	return ctx;
}

SSL *bench_tls_open(SSL_CTX *ctx, int fd, const char *host)
{
	SSL *ssl = SSL_new(ctx);

	if (ssl == NULL)
		return NULL;
	if (tls_client_set_peer(ssl, host, true) != MOAT_OK || SSL_set_fd(ssl, fd) != 1) {
		SSL_free(ssl);
		ERR_clear_error();
		return NULL;
	}
	SSL_set_connect_state(ssl);
	return ssl;
}
