/*
 * Client-side TLS (OpenSSL 3) for libmoat and `moat bench`: a client
 * context (TLS 1.2 or later, OpenSSL's default cipher suites, the server's
 * chain always verified, an optional certificate for mutual TLS), contexts
 * shared by every client trusting the same CAs (tls_client_shared.c) with
 * each client's own certificate set per connection, and, per connection,
 * the peer settings (SNI, host-name check) and a filter (filter.h) running
 * tls.c's record layer on the client side. Sockets are left to the caller.
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
 * Builds a client context as tls_client_ctx_create does, without a client
 * certificate, trusting the CA certificates of the <len> bytes of PEM at
 * <pem>, read from <cafile> (named in errors). MOAT_OK, MOAT_E_CONFIG (no
 * CA certificate in them) or MOAT_E_NOMEM. Any thread.
 */
int tls_client_ctx_from_ca_pem(const char *cafile, const void *pem, size_t len, SSL_CTX **out,
			       struct tls_diag *diag);

/*
 * A context without a client certificate that trusts <cafile> (NULL or ""
 * = the system's default store), shared by every caller whose CA file has
 * the same contents (the key is their SHA-256, so copies of one CA file
 * under other paths share it too): 10,000 clients of one process cost one
 * context. Errors as tls_client_ctx_create's. Release with
 * tls_client_ctx_unshare, not SSL_CTX_free. Any thread.
 */
int tls_client_ctx_shared(const char *cafile, SSL_CTX **out, struct tls_diag *diag);

/* Drops one use of a context from tls_client_ctx_shared; frees it with its
 * last use. NULL is fine. Any thread. */
void tls_client_ctx_unshare(SSL_CTX *ctx);

/* A client certificate chain and its private key, set on each connection
 * (SSL object) rather than on a shared context. */
struct tls_client_identity;

/*
 * Loads the PEM certificate chain <certfile> and the unencrypted PEM key
 * <keyfile>, checked as tls_client_ctx_create checks them. Both unset:
 * MOAT_OK with <*out> NULL (no client certificate). MOAT_OK, MOAT_E_CONFIG
 * with <diag> naming the option and file, or MOAT_E_NOMEM.
 */
int tls_client_identity_load(const char *certfile, const char *keyfile,
			     struct tls_client_identity **out, struct tls_diag *diag);

/* Frees <id> (the key is wiped by OpenSSL); NULL is fine. */
void tls_client_identity_free(struct tls_client_identity *id);

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
 * <check_host>), presenting <id> when not NULL (else <ctx>'s certificate,
 * if any). The handshake starts at the first input() call, which may
 * pass no bytes; application bytes written before it ends are sent after.
 * input() fails with MOAT_E_DENIED when the server's certificate does not
 * verify (<why>: "unknown CA", "hostname mismatch", "certificate expired",
 * ...) and with MOAT_E_CRYPTO otherwise (<why>: e.g. the alert the server
 * sent, "tlsv13 alert certificate required"). NULL when out of memory.
 */
struct filter *tls_client_filter_create(SSL_CTX *ctx, const struct tls_client_identity *id,
					const char *name, bool check_host);

#endif
