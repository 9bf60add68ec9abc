/*
 * Test helper: an in-memory OpenSSL TLS client talking to a server filter,
 * shared by test_tls.c and test_filter.c. Header-only (static functions).
 */
#ifndef MOAT_TESTS_NET_TLS_PEER_H
#define MOAT_TESTS_NET_TLS_PEER_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include "base/buf.h"
#include "net/filter.h"

struct peer {
	SSL_CTX *ctx;
	SSL *ssl;
	BIO *in;  /* bytes from the server, for the client to read */
	BIO *out; /* bytes the client wrote */
};

static char cert_dir[256];

/* Path of file <name> in the generated cert dir (rotating static storage). */
static const char *cpath(const char *name)
{
	static char slots[16][320];
	static unsigned next;
	char *p = slots[next++ % 16];

	snprintf(p, 320, "%s/%s", cert_dir, name);
	return p;
}

static int make_certs(void)
{
	char cmd[600];

	strcpy(cert_dir, "/tmp/moat-net-XXXXXX");
	if (mkdtemp(cert_dir) == NULL)
		return -1;
	snprintf(cmd, sizeof(cmd), "sh '%s' '%s' >/dev/null 2>&1", MOAT_MAKE_CERTS, cert_dir);
	return system(cmd) == 0 ? 0 : -1;
}

static void remove_certs(void)
{
	char cmd[300];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", cert_dir);
	if (system(cmd) != 0)
		fprintf(stderr, "could not remove %s\n", cert_dir);
}

/* cmocka group setup and teardown: the certificates in a fresh directory. */
static int certs_setup(void **state)
{
	(void)state;
	return make_certs();
}

static int certs_teardown(void **state)
{
	(void)state;
	remove_certs();
	return 0;
}

/* A client limited to protocol <max_ver> (0 = any), presenting <cert> (NULL = none). */
static void peer_init(struct peer *c, int max_ver, const char *cert, const char *key)
{
	c->ctx = SSL_CTX_new(TLS_client_method());
	if (max_ver != 0 && max_ver < TLS1_2_VERSION) {
		SSL_CTX_set_min_proto_version(c->ctx, max_ver);
		SSL_CTX_set_cipher_list(c->ctx, "ALL:@SECLEVEL=0");
	}
	if (max_ver != 0)
		SSL_CTX_set_max_proto_version(c->ctx, max_ver);
	SSL_CTX_load_verify_file(c->ctx, cpath("ca.crt"));
	SSL_CTX_set_verify(c->ctx, SSL_VERIFY_PEER, NULL);
	if (cert != NULL) {
		SSL_CTX_use_certificate_file(c->ctx, cpath(cert), SSL_FILETYPE_PEM);
		SSL_CTX_use_PrivateKey_file(c->ctx, cpath(key), SSL_FILETYPE_PEM);
	}
	c->ssl = SSL_new(c->ctx);
	c->in = BIO_new(BIO_s_mem());
	c->out = BIO_new(BIO_s_mem());
	BIO_set_mem_eof_return(c->in, -1);
	SSL_set_bio(c->ssl, c->in, c->out);
	SSL_set1_host(c->ssl, "localhost");
	SSL_set_connect_state(c->ssl);
}

static void peer_fini(struct peer *c)
{
	SSL_free(c->ssl);
	SSL_CTX_free(c->ctx);
	ERR_clear_error();
}

/* Moves the client's pending output into <f>; server output back to the client. */
static int peer_flush(struct peer *c, struct filter *f, struct buf *app, const char **why)
{
	uint8_t tmp[16384];
	struct buf wire = {0};
	int n, rc = 0;

	while ((n = BIO_read(c->out, tmp, sizeof(tmp))) > 0) {
		rc = f->ops->input(f, tmp, (size_t)n, app, &wire, why);
		if (rc < 0)
			break;
	}
	if (buf_used(&wire) > 0)
		BIO_write(c->in, buf_head(&wire), (int)buf_used(&wire));
	buf_fini(&wire);
	return rc;
}

/* Runs the TLS handshake through <f> until <tls> is ready. Returns the filter's
 * result (0 when both sides finished). */
static int peer_handshake_via(struct peer *c, struct filter *f, const struct filter *tls,
			      struct buf *app, const char **why)
{
	for (int i = 0; i < 20; i++) {
		int r = SSL_do_handshake(c->ssl);
		int e = r == 1 ? SSL_ERROR_NONE : SSL_get_error(c->ssl, r);
		int rc = peer_flush(c, f, app, why);

		if (rc < 0)
			return rc;
		if (r == 1 && tls->ops->ready(tls)) {
			/* TLS 1.3 tickets and late alerts: let the client read them */
			(void)SSL_read(c->ssl, (uint8_t[1]){0}, 0);
			ERR_clear_error();
			return 0;
		}
		if (r != 1 && e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE)
			return 1; /* client gave up */
	}
	return 2;
}

static int peer_handshake(struct peer *c, struct filter *f, struct buf *app, const char **why)
{
	return peer_handshake_via(c, f, f, app, why);
}

/* Sends <s> from the client; returns the filter's result. */
static int peer_send(struct peer *c, struct filter *f, const void *p, size_t n, struct buf *app)
{
	SSL_write(c->ssl, p, (int)n);
	return peer_flush(c, f, app, NULL);
}

/* Hands server bytes <wire> to the client and reads up to <cap> application bytes. */
static int peer_recv(struct peer *c, struct buf *wire, uint8_t *out, size_t cap)
{
	if (buf_used(wire) > 0) {
		BIO_write(c->in, buf_head(wire), (int)buf_used(wire));
		buf_consume(wire, buf_used(wire));
	}
	return SSL_read(c->ssl, out, (int)cap);
}

#endif
