/*
 * Server-side TLS (OpenSSL 3) as a stream filter over memory BIOs. A
 * tls_server holds the listener's SSL_CTX, built from mosquitto's listener
 * options and refusing weak settings by name; each connection gets a filter
 * (filter.h) from it. Reading and writing sockets is left to the caller.
 */
#ifndef MOAT_NET_TLS_H
#define MOAT_NET_TLS_H

#include <stdbool.h>
#include <stddef.h>

#include "net/filter.h"

/* A listener's TLS options, with mosquitto's names. Strings are borrowed
 * for the duration of a create/reload call only; NULL or "" = unset. */
struct tls_settings {
	const char *cafile;	       /* PEM CA bundle for client certificates */
	const char *capath;	       /* directory of hashed CA certificates */
	const char *certfile;	       /* PEM server certificate chain (required) */
	const char *keyfile;	       /* PEM server private key (required) */
	const char *crlfile;	       /* PEM CRL; enables X509_V_FLAG_CRL_CHECK */
	const char *tls_version;       /* minimum: "tlsv1.2" (default) or "tlsv1.3" */
	const char *ciphers;	       /* TLS <= 1.2 list; default ECDHE + AEAD only */
	const char *ciphers_tls13;     /* TLS 1.3 suites; default OpenSSL's */
	bool require_certificate;      /* mTLS: a client certificate is verified and required */
	bool use_identity_as_username; /* needs require_certificate */
	bool use_subject_as_username;  /* needs require_certificate */
};

/* Configuration errors: "what is wrong (naming the file/value); what to do". */
struct tls_diag {
	char msg[512];
};

struct tls_server;

/* Builds a server context (one reference) from <s>. Every file named in
 * <s> must exist, be readable and hold what it should; the key must match
 * the certificate; require_certificate needs cafile or capath; tlsv1,
 * tlsv1.1 and sslv3 and cipher lists enabling non-AEAD, RC4, DES, 3DES,
 * NULL, EXPORT or anonymous suites are refused. Returns MOAT_OK and sets
 * <*out>, or MOAT_E_CONFIG / MOAT_E_NOMEM with <diag> filled. Any thread. */
int tls_server_create(const struct tls_settings *s, struct tls_server **out, struct tls_diag *diag);

/* Builds a new SSL_CTX from <s> (checked as in tls_server_create) and
 * makes it the one new connections get; existing connections keep theirs.
 * On error <srv> is unchanged and <diag> says why. Any thread. */
int tls_server_reload(struct tls_server *srv, const struct tls_settings *s, struct tls_diag *diag);

/* One more reference to <srv>; returns <srv>. Any thread. */
struct tls_server *tls_server_ref(struct tls_server *srv);

/* Drops a reference; frees at zero. NULL is fine. Any thread. Filters
 * already created stay valid (they hold their own SSL_CTX reference). */
void tls_server_unref(struct tls_server *srv);

/* A new server-side TLS filter using <srv>'s current SSL_CTX, or NULL when
 * out of memory. Any thread; the filter is then used by one thread at a
 * time. Handshake failures make input() return MOAT_E_DENIED (certificate
 * refused) or MOAT_E_CRYPTO (anything else) with a short reason in <why>
 * ("certificate revoked", "unknown CA", "protocol version", ...). */
struct filter *tls_filter_create(struct tls_server *srv);

struct ssl_st;

/* The record layer of tls_filter_create for an SSL object set up by the
 * caller (its side, host checks, ...): input() runs its handshake and
 * records over two memory BIOs, with the same failures and reasons. Used
 * for the client side by tls_client.c. Consumes <ssl>, also on failure;
 * NULL when <ssl> is NULL or out of memory. */
struct filter *tls_filter_wrap(struct ssl_st *ssl);

/* Formats a configuration error into <diag> (may be NULL), clears
 * OpenSSL's error queue and returns MOAT_E_CONFIG. */
int tls_fail(struct tls_diag *diag, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Checks that option <opt> names a readable, non-empty regular file
 * <path>: MOAT_OK, or MOAT_E_CONFIG with <diag> naming both. */
int tls_check_file(const char *opt, const char *path, struct tls_diag *diag);

struct ssl_ctx_st;

/* Loads the PEM certificate chain <certfile> and the unencrypted PEM key
 * <keyfile> (both checked with tls_check_file) into <ctx>: MOAT_OK, or
 * MOAT_E_CONFIG with <diag> naming the file, and a key that does not match
 * the certificate said as such. */
int tls_use_cert_key(struct ssl_ctx_st *ctx, const char *certfile, const char *keyfile,
		     struct tls_diag *diag);

enum tls_identity {
	TLS_ID_CN = 0,	    /* the subject's commonName (use_identity_as_username) */
	TLS_ID_SUBJECT = 1, /* the whole subject, RFC 2253 (use_subject_as_username) */
};

/* Copies the verified peer certificate's identity <which> into <out>
 * (room for <cap> bytes, NUL-terminated). <f> must come from
 * tls_filter_create (not a stack). Returns MOAT_OK; MOAT_E_AGAIN before
 * the handshake completes; MOAT_E_NOTFOUND without a verified certificate
 * or CN; MOAT_E_MALFORMED for a CN with NUL bytes; MOAT_E_LIMIT when <cap>
 * is too small; MOAT_E_INVAL when <f> is not a TLS filter. */
int tls_filter_peer_identity(const struct filter *f, enum tls_identity which, char *out,
			     size_t cap);

/* The SHA-256 of the verified peer certificate's DER encoding (RFC 8705's
 * x5t#S256 thumbprint) into <out>. MOAT_OK; MOAT_E_AGAIN before the
 * handshake completes; MOAT_E_NOTFOUND without a verified certificate;
 * MOAT_E_INVAL when <f> is not a TLS filter. */
int tls_filter_peer_cert_sha256(const struct filter *f, uint8_t out[32]);

/* The verified peer certificate's serial number as lowercase hex without
 * leading zeros into <out> (room for <cap> bytes, NUL-terminated); the same
 * return values as tls_filter_peer_cert_sha256, and MOAT_E_LIMIT. */
int tls_filter_peer_serial_hex(const struct filter *f, char *out, size_t cap);

/* The negotiated protocol ("TLSv1.3", ...) for logging; "unknown" before
 * the handshake or when <f> is not a TLS filter. Never NULL. */
const char *tls_filter_version(const struct filter *f);

#endif
