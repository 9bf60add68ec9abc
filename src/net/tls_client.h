/*
 * Client-side TLS (OpenSSL 3) for libmoat and `moat bench`: a client
 * context (TLS 1.2 or later, OpenSSL's default cipher suites, the server's
 * chain always verified, an optional certificate for mutual TLS) and, per
 * connection, the peer settings (SNI, host-name check) and a filter
 * (filter.h) running tls.c's record layer on the client side. Sockets are
 * left to the caller.
 */
#ifndef MOAT_NET_TLS_CLIENT_H
#define MOAT_NET_TLS_CLIENT_H

#include <stdbool.h>

#include <openssl/ssl.h>

#include "net/filter.h"
#include "net/tls.h"

/* Strings are borrowed for the duration of tls_client_ctx_create only. */
struct tls_client_settings {
	const char *cafile;   /* PEM CA bundle; NULL or "" = the system's default store */
	const char *certfile; /* PEM client certificate chain for mutual TLS, with keyfile */
	const char *keyfile;  /* PEM private key of certfile (not encrypted) */
};

/*
 * Builds a client context from <s>: minimum TLS 1.2, no compression or
 * renegotiation, SSL_VERIFY_PEER. Every file named must be readable and
 * hold what it should; certfile and keyfile go together and must match;
 * an encrypted key is refused (nothing prompts for a passphrase). Returns
 * MOAT_OK and <*out> (free with SSL_CTX_free), or MOAT_E_CONFIG /
 * MOAT_E_NOMEM with <diag> naming the option and file. Any thread.
 */
int tls_client_ctx_create(const struct tls_client_settings *s, SSL_CTX **out,
			  struct tls_diag *diag);

/*
 * Sets what <ssl> expects of the server: <name> is sent as SNI unless it is
 * an IP address, and with <check_host> the certificate must name it (DNS
 * name with wildcards per RFC 6125, or IP address). Without <check_host>
 * the chain is still verified. MOAT_OK, MOAT_E_INVAL (empty name) or
 * MOAT_E_NOMEM.
 */
int tls_client_set_peer(SSL *ssl, const char *name, bool check_host);

/*
 * A client-side filter of <ctx> for server <name> (tls_client_set_peer with
 * <check_host>). The handshake starts at the first input() call, which may
 * pass no bytes; application bytes written before it ends are sent after.
 * input() fails with MOAT_E_DENIED when the server's certificate does not
 * verify (<why>: "unknown CA", "hostname mismatch", "certificate expired",
 * ...) and with MOAT_E_CRYPTO otherwise (<why>: e.g. the alert the server
 * sent, "tlsv13 alert certificate required"). NULL when out of memory.
 */
struct filter *tls_client_filter_create(SSL_CTX *ctx, const char *name, bool check_host);

#endif
