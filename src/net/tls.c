/*
 * Server TLS on OpenSSL 3 (see tls.h). The SSL_CTX is built once per
 * listener (and per reload) with the weak options refused; connections run
 * the handshake and records over two memory BIOs, so the caller's event
 * loop does every socket read and write. SSL_CTX is itself refcounted by
 * OpenSSL: each SSL holds a reference, so a reload only swaps the pointer
 * new connections get, under a mutex.
 */
#include "net/tls.h"

#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <moat/error.h>

#define DEFAULT_CIPHERS                                                                            \
	"ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"                               \
	"ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"                               \
	"ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305"

struct tls_server {
	pthread_mutex_t lock; /* guards ctx */
	SSL_CTX *ctx;
	atomic_int refs;
};

struct tls_filter {
	struct filter base;
	SSL *ssl;
	BIO *net_in;	  /* peer bytes for OpenSSL to read (owned by ssl) */
	BIO *net_out;	  /* what OpenSSL wrote for the peer (owned by ssl) */
	struct buf early; /* application bytes written before the handshake ended */
	bool done;	  /* handshake over */
	int err;	  /* first fatal error; sticky */
	const char *why;  /* static reason for err */
};

static const struct filter_ops tls_ops;

int tls_fail(struct tls_diag *diag, const char *fmt, ...)
{
	va_list ap;

	if (diag != NULL) {
		va_start(ap, fmt);
		vsnprintf(diag->msg, sizeof(diag->msg), fmt, ap);
		va_end(ap);
	}
	ERR_clear_error();
	return MOAT_E_CONFIG;
}

static bool is_set(const char *s)
{
	return s != NULL && s[0] != '\0';
}

int tls_check_file(const char *opt, const char *path, struct tls_diag *diag)
{
	struct stat st;
	FILE *fp;

	if (stat(path, &st) != 0)
		return tls_fail(diag, "%s %s: cannot be read (missing?); give an existing PEM file",
				opt, path);
	if (!S_ISREG(st.st_mode))
		return tls_fail(diag, "%s %s: not a regular file; give a PEM file", opt, path);
	if (st.st_size == 0)
		return tls_fail(diag, "%s %s: the file is empty; give a PEM file", opt, path);
	fp = fopen(path, "rb");
	if (fp == NULL)
		return tls_fail(diag, "%s %s: cannot be opened (permissions?)", opt, path);
	fclose(fp);
	return MOAT_OK;
}

static int set_versions(SSL_CTX *ctx, const char *v, struct tls_diag *diag)
{
	int min = TLS1_2_VERSION;

	if (!is_set(v) || strcasecmp(v, "tlsv1.2") == 0)
		min = TLS1_2_VERSION;
	else if (strcasecmp(v, "tlsv1.3") == 0)
		min = TLS1_3_VERSION;
	else if (strcasecmp(v, "tlsv1") == 0 || strcasecmp(v, "tlsv1.1") == 0 ||
		 strcasecmp(v, "sslv3") == 0)
		return tls_fail(
		    diag, "tls_version %s: refused, the protocol is broken; use tlsv1.2 or tlsv1.3",
		    v);
	else
		return tls_fail(diag, "tls_version %s: unknown; use tlsv1.2 or tlsv1.3", v);
	if (SSL_CTX_set_min_proto_version(ctx, min) != 1 ||
	    SSL_CTX_set_max_proto_version(ctx, TLS1_3_VERSION) != 1)
		return tls_fail(diag, "tls_version %s: not supported by this OpenSSL", v);
	return MOAT_OK;
}

/* Words of a cipher string that switch on weak suites (unless negated). */
static const char *const weak_words[] = {"RC4",	  "DES",   "3DES",  "NULL", "EXP",  "EXPORT", "ADH",
					 "AECDH", "aNULL", "eNULL", "MD5",  "IDEA", "SEED"};

static bool word_is_weak(const char *w, size_t n)
{
	for (size_t i = 0; i < sizeof(weak_words) / sizeof(weak_words[0]); i++) {
		size_t k = strlen(weak_words[i]);

		/* as a whole word or a dash-separated part of a suite name */
		for (size_t j = 0; j + k <= n; j++) {
			if (strncasecmp(w + j, weak_words[i], k) != 0)
				continue;
			if ((j == 0 || w[j - 1] == '-' || w[j - 1] == '+') &&
			    (j + k == n || w[j + k] == '-' || w[j + k] == '+'))
				return true;
		}
	}
	return false;
}

static int set_ciphers(SSL_CTX *ctx, const struct tls_settings *s, struct tls_diag *diag)
{
	const char *list = is_set(s->ciphers) ? s->ciphers : DEFAULT_CIPHERS;
	STACK_OF(SSL_CIPHER) * sk;
	char bad[256] = "";
	size_t bad_len = 0;
	int count = 0;

	/* by the words written: OpenSSL 3 may silently drop some weak suites */
	for (const char *p = list; *p != '\0';) {
		size_t n = strcspn(p, ": ,;");

		if (n > 0 && p[0] != '!' && p[0] != '-' && word_is_weak(p, n) &&
		    bad_len + n + 2 < sizeof(bad)) {
			bad_len += (size_t)snprintf(bad + bad_len, sizeof(bad) - bad_len, "%s%.*s",
						    bad_len > 0 ? ", " : "", (int)n, p);
		}
		p += n;
		if (*p != '\0')
			p++;
	}
	if (bad_len > 0)
		return tls_fail(diag,
				"ciphers: refused weak suites (%s); use ECDHE with AES-GCM or "
				"CHACHA20-POLY1305, e.g. the default " DEFAULT_CIPHERS,
				bad);
	if (SSL_CTX_set_cipher_list(ctx, list) != 1)
		return tls_fail(
		    diag, "ciphers %s: no usable cipher suite; use the default " DEFAULT_CIPHERS,
		    list);
	/* by what the list expands to */
	sk = SSL_CTX_get_ciphers(ctx);
	for (int i = 0; i < sk_SSL_CIPHER_num(sk); i++) {
		const SSL_CIPHER *c = sk_SSL_CIPHER_value(sk, i);
		const char *name = SSL_CIPHER_get_name(c);

		if (strcmp(SSL_CIPHER_get_version(c), "TLSv1.3") == 0)
			continue;
		count++;
		if (SSL_CIPHER_is_aead(c) && SSL_CIPHER_get_auth_nid(c) != NID_auth_null &&
		    SSL_CIPHER_get_auth_nid(c) != NID_auth_psk &&
		    SSL_CIPHER_get_auth_nid(c) != NID_auth_srp)
			continue;
		if (bad_len + strlen(name) + 3 < sizeof(bad))
			bad_len += (size_t)snprintf(bad + bad_len, sizeof(bad) - bad_len, "%s%s",
						    bad_len > 0 ? ", " : "", name);
	}
	if (bad_len > 0)
		return tls_fail(
		    diag,
		    "ciphers %s: enables non-AEAD or anonymous suites (%s); use ECDHE with "
		    "AES-GCM or CHACHA20-POLY1305, e.g. the default " DEFAULT_CIPHERS,
		    list, bad);
	if (count == 0)
		return tls_fail(
		    diag, "ciphers %s: no TLS 1.2 suite left; use the default " DEFAULT_CIPHERS,
		    list);
	if (is_set(s->ciphers_tls13) && SSL_CTX_set_ciphersuites(ctx, s->ciphers_tls13) != 1)
		return tls_fail(
		    diag,
		    "ciphers_tls1.3 %s: not a valid TLS 1.3 suite list; use e.g. "
		    "TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256:TLS_AES_128_GCM_SHA256",
		    s->ciphers_tls13);
	return MOAT_OK;
}

int tls_use_cert_key(SSL_CTX *ctx, const char *certfile, const char *keyfile, struct tls_diag *diag)
{
	int rc;

	rc = tls_check_file("certfile", certfile, diag);
	if (rc < 0)
		return rc;
	rc = tls_check_file("keyfile", keyfile, diag);
	if (rc < 0)
		return rc;
	if (SSL_CTX_use_certificate_chain_file(ctx, certfile) != 1)
		return tls_fail(diag, "certfile %s: no PEM certificate could be loaded", certfile);
	if (SSL_CTX_use_PrivateKey_file(ctx, keyfile, SSL_FILETYPE_PEM) != 1) {
		int r = ERR_GET_REASON(ERR_peek_last_error());

		if (r == X509_R_KEY_VALUES_MISMATCH || r == X509_R_KEY_TYPE_MISMATCH)
			return tls_fail(diag, "keyfile %s does not match certfile %s", keyfile,
					certfile);
		return tls_fail(
		    diag, "keyfile %s: no usable PEM private key (wrong format or encrypted?)",
		    keyfile);
	}
	if (SSL_CTX_check_private_key(ctx) != 1)
		return tls_fail(diag, "keyfile %s does not match certfile %s", keyfile, certfile);
	return MOAT_OK;
}

static int load_identity(SSL_CTX *ctx, const struct tls_settings *s, struct tls_diag *diag)
{
	if (!is_set(s->certfile))
		return tls_fail(diag,
				"certfile: not set; a TLS listener needs certfile and keyfile");
	if (!is_set(s->keyfile))
		return tls_fail(diag,
				"keyfile: not set; a TLS listener needs certfile and keyfile");
	return tls_use_cert_key(ctx, s->certfile, s->keyfile, diag);
}

static int load_trust(SSL_CTX *ctx, const struct tls_settings *s, struct tls_diag *diag)
{
	X509_STORE *store = SSL_CTX_get_cert_store(ctx);
	struct stat st;
	int rc;

	if (s->require_certificate && !is_set(s->cafile) && !is_set(s->capath))
		return tls_fail(diag,
				"require_certificate: needs cafile or capath to verify clients");
	if (!s->require_certificate && (s->use_identity_as_username || s->use_subject_as_username))
		return tls_fail(diag, "%s: only works with require_certificate true",
				s->use_identity_as_username ? "use_identity_as_username"
							    : "use_subject_as_username");
	if (is_set(s->cafile)) {
		rc = tls_check_file("cafile", s->cafile, diag);
		if (rc < 0)
			return rc;
		if (SSL_CTX_load_verify_file(ctx, s->cafile) != 1)
			return tls_fail(diag, "cafile %s: holds no PEM CA certificate", s->cafile);
	}
	if (is_set(s->capath)) {
		if (stat(s->capath, &st) != 0 || !S_ISDIR(st.st_mode))
			return tls_fail(diag, "capath %s: not a readable directory", s->capath);
		if (SSL_CTX_load_verify_dir(ctx, s->capath) != 1)
			return tls_fail(diag, "capath %s: cannot be used as a CA directory",
					s->capath);
	}
	if (is_set(s->crlfile)) {
		X509_LOOKUP *lk;

		rc = tls_check_file("crlfile", s->crlfile, diag);
		if (rc < 0)
			return rc;
		lk = X509_STORE_add_lookup(store, X509_LOOKUP_file());
		if (lk == NULL || X509_load_crl_file(lk, s->crlfile, X509_FILETYPE_PEM) < 1)
			return tls_fail(diag, "crlfile %s: holds no PEM CRL", s->crlfile);
		X509_STORE_set_flags(store, X509_V_FLAG_CRL_CHECK);
	}
	if (s->require_certificate)
		SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
	else
		SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
	return MOAT_OK;
}

static int build_ctx(const struct tls_settings *s, SSL_CTX **out, struct tls_diag *diag)
{
	SSL_CTX *ctx;
	int rc;

	if (s == NULL)
		return tls_fail(diag, "TLS settings missing");
	ERR_clear_error();
	ctx = SSL_CTX_new(TLS_server_method());
	if (ctx == NULL) {
		tls_fail(diag, "out of memory building the TLS context");
		return MOAT_E_NOMEM;
	}
	SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION |
				     SSL_OP_CIPHER_SERVER_PREFERENCE);
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
	rc = set_versions(ctx, s->tls_version, diag);
	if (rc == MOAT_OK)
		rc = set_ciphers(ctx, s, diag);
	if (rc == MOAT_OK)
		rc = load_identity(ctx, s, diag);
	if (rc == MOAT_OK)
		rc = load_trust(ctx, s, diag);
	if (rc < 0) {
		SSL_CTX_free(ctx);
		return rc;
	}
	*out = ctx;
	return MOAT_OK;
}

int tls_server_create(const struct tls_settings *s, struct tls_server **out, struct tls_diag *diag)
{
	struct tls_server *srv;
	int rc;

	srv = calloc(1, sizeof(*srv));
	if (srv == NULL) {
		tls_fail(diag, "out of memory");
		return MOAT_E_NOMEM;
	}
	rc = build_ctx(s, &srv->ctx, diag);
	if (rc < 0)
		goto err_free;
	if (pthread_mutex_init(&srv->lock, NULL) != 0) {
		rc = MOAT_E_NOMEM;
		goto err_ctx;
	}
	atomic_init(&srv->refs, 1);
	*out = srv;
	return MOAT_OK;

err_ctx:
	SSL_CTX_free(srv->ctx);
err_free:
	free(srv);
	return rc;
}

int tls_server_reload(struct tls_server *srv, const struct tls_settings *s, struct tls_diag *diag)
{
	SSL_CTX *fresh, *old;
	int rc;

	if (srv == NULL)
		return MOAT_E_INVAL;
	rc = build_ctx(s, &fresh, diag);
	if (rc < 0)
		return rc;
	pthread_mutex_lock(&srv->lock);
	old = srv->ctx;
	srv->ctx = fresh;
	pthread_mutex_unlock(&srv->lock);
	SSL_CTX_free(old); /* connections made from it hold their own reference */
	return MOAT_OK;
}

struct tls_server *tls_server_ref(struct tls_server *srv)
{
	atomic_fetch_add(&srv->refs, 1);
	return srv;
}

void tls_server_unref(struct tls_server *srv)
{
	if (srv == NULL || atomic_fetch_sub(&srv->refs, 1) != 1)
		return;
	SSL_CTX_free(srv->ctx);
	pthread_mutex_destroy(&srv->lock);
	free(srv);
}

/* Moves what OpenSSL wrote for the peer into <out>. */
static int drain(struct tls_filter *t, struct buf *out)
{
	size_t pending;
	int n;

	while ((pending = BIO_ctrl_pending(t->net_out)) > 0) {
		if (pending > INT_MAX)
			pending = INT_MAX;
		if (buf_reserve(out, pending) != MOAT_OK)
			return MOAT_E_NOMEM;
		n = BIO_read(t->net_out, out->data + out->len, (int)pending);
		if (n <= 0)
			return MOAT_E_CRYPTO;
		out->len += (size_t)n;
	}
	return MOAT_OK;
}

static const char *verify_reason(long v)
{
	switch (v) {
	case X509_V_ERR_CERT_REVOKED:
		return "certificate revoked";
	case X509_V_ERR_CERT_HAS_EXPIRED:
		return "certificate expired";
	case X509_V_ERR_CERT_NOT_YET_VALID:
		return "certificate not yet valid";
	case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT:
	case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY:
	case X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT:
	case X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN:
	case X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE:
		return "unknown CA";
	case X509_V_ERR_UNABLE_TO_GET_CRL:
		return "no CRL for the issuer";
	default:
		return X509_verify_cert_error_string(v);
	}
}

/* OpenSSL's static text for error <e> (an alert received, ...), else <dflt>. */
static const char *reason_or(unsigned long e, const char *dflt)
{
	const char *r = e != 0 ? ERR_reason_error_string(e) : NULL;

	return r != NULL ? r : dflt;
}

/* Classifies a failed handshake for the audit log. */
static int handshake_error(struct tls_filter *t)
{
	long v = SSL_get_verify_result(t->ssl);
	unsigned long e = ERR_peek_last_error();
	int reason = ERR_GET_REASON(e);

	if (v != X509_V_OK) {
		t->why = verify_reason(v);
		return MOAT_E_DENIED;
	}
	switch (reason) {
	case SSL_R_PEER_DID_NOT_RETURN_A_CERTIFICATE:
		t->why = "no client certificate";
		return MOAT_E_DENIED;
	case SSL_R_UNSUPPORTED_PROTOCOL:
	case SSL_R_WRONG_VERSION_NUMBER:
	case SSL_R_VERSION_TOO_LOW:
	case SSL_R_TLSV1_ALERT_PROTOCOL_VERSION:
		t->why = "protocol version";
		return MOAT_E_CRYPTO;
	case SSL_R_NO_SHARED_CIPHER:
		t->why = "no shared cipher";
		return MOAT_E_CRYPTO;
	case SSL_R_HTTP_REQUEST:
		t->why = "plain HTTP on a TLS port";
		return MOAT_E_CRYPTO;
	default:
		t->why = reason_or(e, "handshake failed");
		return MOAT_E_CRYPTO;
	}
}

static int write_app(struct tls_filter *t, const uint8_t *p, size_t n, struct buf *wire_out)
{
	while (n > 0) {
		int chunk = n > (1u << 30) ? (1 << 30) : (int)n;
		int w = SSL_write(t->ssl, p, chunk);

		if (w <= 0) {
			t->err = MOAT_E_CRYPTO;
			t->why = "TLS write failed";
			ERR_clear_error();
			return t->err;
		}
		p += w;
		n -= (size_t)w;
	}
	return drain(t, wire_out);
}

static int tls_input(struct filter *f, const uint8_t *in, size_t n, struct buf *app_in,
		     struct buf *wire_out, const char **why)
{
	struct tls_filter *t = (struct tls_filter *)f;
	int rc;

	if (t->err != 0)
		goto out;
	while (n > 0) {
		int chunk = n > (1u << 30) ? (1 << 30) : (int)n;
		int w = BIO_write(t->net_in, in, chunk);

		if (w <= 0) {
			t->err = MOAT_E_NOMEM;
			t->why = "out of memory";
			goto out;
		}
		in += w;
		n -= (size_t)w;
	}
	ERR_clear_error();
	if (!t->done) {
		rc = SSL_do_handshake(t->ssl);
		if (rc != 1) {
			int e = SSL_get_error(t->ssl, rc);

			if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
				return drain(t, wire_out);
			t->err = handshake_error(t);
			ERR_clear_error();
			(void)drain(t, wire_out); /* the alert */
			goto out;
		}
		t->done = true;
		rc = drain(t, wire_out);
		if (rc == MOAT_OK && buf_used(&t->early) > 0)
			rc = write_app(t, buf_head(&t->early), buf_used(&t->early), wire_out);
		OPENSSL_cleanse(t->early.data, t->early.cap);
		buf_fini(&t->early);
		if (rc < 0)
			return rc;
	}
	for (;;) {
		int r;

		if (buf_reserve(app_in, 16384) != MOAT_OK) {
			t->err = MOAT_E_NOMEM;
			t->why = "out of memory";
			goto out;
		}
		r = SSL_read(t->ssl, app_in->data + app_in->len, 16384);
		if (r > 0) {
			app_in->len += (size_t)r;
			continue;
		}
		switch (SSL_get_error(t->ssl, r)) {
		case SSL_ERROR_WANT_READ:
		case SSL_ERROR_WANT_WRITE:
			return drain(t, wire_out);
		case SSL_ERROR_ZERO_RETURN:
			t->err = MOAT_E_CLOSED;
			t->why = "peer closed TLS";
			(void)drain(t, wire_out);
			goto out;
		default:
			t->err = MOAT_E_CRYPTO;
			t->why = reason_or(ERR_peek_last_error(), "TLS record error");
			ERR_clear_error();
			(void)drain(t, wire_out);
			goto out;
		}
	}
out:
	if (why != NULL)
		*why = t->why;
	return t->err;
}

static int tls_output(struct filter *f, const uint8_t *p, size_t n, struct buf *wire_out)
{
	struct tls_filter *t = (struct tls_filter *)f;

	if (t->err != 0)
		return t->err;
	if (n == 0)
		return MOAT_OK;
	if (!t->done)
		return buf_append(&t->early, p, n);
	return write_app(t, p, n, wire_out);
}

static void tls_shutdown(struct filter *f, struct buf *wire_out)
{
	struct tls_filter *t = (struct tls_filter *)f;

	if (!t->done || (t->err != 0 && t->err != MOAT_E_CLOSED))
		return;
	(void)SSL_shutdown(t->ssl);
	ERR_clear_error();
	(void)drain(t, wire_out);
}

static int tls_ready(const struct filter *f)
{
	return ((const struct tls_filter *)f)->done;
}

static void tls_destroy(struct filter *f)
{
	struct tls_filter *t = (struct tls_filter *)f;

	SSL_free(t->ssl);
	if (t->early.data != NULL)
		OPENSSL_cleanse(t->early.data, t->early.cap);
	buf_fini(&t->early);
	free(t);
}

static const struct filter_ops tls_ops = {
    .input = tls_input,
    .output = tls_output,
    .shutdown = tls_shutdown,
    .ready = tls_ready,
    .destroy = tls_destroy,
};

struct filter *tls_filter_wrap(SSL *ssl)
{
	struct tls_filter *t;

	if (ssl == NULL)
		return NULL;
	t = calloc(1, sizeof(*t));
	if (t == NULL)
		goto err_ssl;
	t->base.ops = &tls_ops;
	t->ssl = ssl;
	t->net_in = BIO_new(BIO_s_mem());
	t->net_out = BIO_new(BIO_s_mem());
	if (t->net_in == NULL || t->net_out == NULL)
		goto err_bio;
	BIO_set_mem_eof_return(t->net_in, -1); /* empty = "want more", not EOF */
	SSL_set_bio(t->ssl, t->net_in, t->net_out);
	return &t->base;

err_bio:
	BIO_free(t->net_in);
	BIO_free(t->net_out);
	free(t);
err_ssl:
	SSL_free(ssl);
	ERR_clear_error();
	return NULL;
}

struct filter *tls_filter_create(struct tls_server *srv)
{
	SSL *ssl;

	pthread_mutex_lock(&srv->lock);
	ssl = SSL_new(srv->ctx); /* takes its own SSL_CTX reference */
	pthread_mutex_unlock(&srv->lock);
	if (ssl != NULL)
		SSL_set_accept_state(ssl);
	return tls_filter_wrap(ssl);
}

static int copy_out(const char *s, size_t n, char *out, size_t cap)
{
	if (memchr(s, '\0', n) != NULL)
		return MOAT_E_MALFORMED;
	if (n >= cap)
		return MOAT_E_LIMIT;
	memcpy(out, s, n);
	out[n] = '\0';
	return MOAT_OK;
}

/* The peer's certificate once the handshake is done and it verified:
 * MOAT_OK, MOAT_E_INVAL (not a TLS filter), MOAT_E_AGAIN or MOAT_E_NOTFOUND. */
static int verified_peer_cert(const struct filter *f, X509 **cert)
{
	const struct tls_filter *t = (const struct tls_filter *)f;

	if (f == NULL || f->ops != &tls_ops)
		return MOAT_E_INVAL;
	if (!t->done)
		return MOAT_E_AGAIN;
	*cert = SSL_get0_peer_certificate(t->ssl);
	if (*cert == NULL || SSL_get_verify_result(t->ssl) != X509_V_OK)
		return MOAT_E_NOTFOUND;
	return MOAT_OK;
}

int tls_filter_peer_cert_sha256(const struct filter *f, uint8_t out[32])
{
	unsigned int len = 0;
	X509 *cert = NULL;
	int rc = verified_peer_cert(f, &cert);

	if (rc < 0)
		return rc;
	if (X509_digest(cert, EVP_sha256(), out, &len) != 1 || len != 32)
		return MOAT_E_NOMEM;
	return MOAT_OK;
}

int tls_filter_peer_serial_hex(const struct filter *f, char *out, size_t cap)
{
	BIGNUM *bn;
	char *hex;
	X509 *cert = NULL;
	int rc = out == NULL || cap == 0 ? MOAT_E_INVAL : verified_peer_cert(f, &cert);

	if (rc < 0)
		return rc;
	bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(cert), NULL);
	hex = bn != NULL ? BN_bn2hex(bn) : NULL;
	BN_free(bn);
	if (hex == NULL)
		return MOAT_E_NOMEM;
	for (char *p = hex; *p != '\0'; p++)
		*p = (char)(*p >= 'A' && *p <= 'F' ? *p - 'A' + 'a' : *p);
	rc = copy_out(hex, strlen(hex), out, cap);
	OPENSSL_free(hex);
	return rc;
}

int tls_filter_peer_identity(const struct filter *f, enum tls_identity which, char *out, size_t cap)
{
	X509 *cert = NULL;
	X509_NAME *name;
	int rc = out == NULL || cap == 0 ? MOAT_E_INVAL : verified_peer_cert(f, &cert);

	if (rc < 0)
		return rc;
	name = X509_get_subject_name(cert);
	if (which == TLS_ID_CN) {
		int i = X509_NAME_get_index_by_NID(name, NID_commonName, -1);
		unsigned char *utf8 = NULL;
		int len;

		if (i < 0)
			return MOAT_E_NOTFOUND;
		len = ASN1_STRING_to_UTF8(&utf8,
					  X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, i)));
		if (len < 0)
			return MOAT_E_MALFORMED;
		rc = len == 0 ? MOAT_E_NOTFOUND
			      : copy_out((const char *)utf8, (size_t)len, out, cap);
		OPENSSL_free(utf8);
		return rc;
	}
	if (which == TLS_ID_SUBJECT) {
		BIO *mem = BIO_new(BIO_s_mem());
		char *text;
		long len;

		if (mem == NULL)
			return MOAT_E_NOMEM;
		if (X509_NAME_print_ex(mem, name, 0, XN_FLAG_RFC2253) < 0) {
			BIO_free(mem);
			return MOAT_E_MALFORMED;
		}
		len = BIO_get_mem_data(mem, &text);
		rc = len <= 0 ? MOAT_E_NOTFOUND : copy_out(text, (size_t)len, out, cap);
		BIO_free(mem);
		return rc;
	}
	return MOAT_E_INVAL;
}

const char *tls_filter_version(const struct filter *f)
{
	const struct tls_filter *t = (const struct tls_filter *)f;

	if (f == NULL || f->ops != &tls_ops || !t->done)
		return "unknown";
	return SSL_get_version(t->ssl);
}
