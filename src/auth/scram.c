/*
 * SCRAM-SHA-256 server and client state machines (RFC 5802 §5, §7 grammar;
 * RFC 7677). Every message is parsed through a bounded cursor; the
 * AuthMessage is kept in a buffer; keys are compared with CRYPTO_memcmp and
 * wiped with OPENSSL_cleanse.
 */
#include "auth/scram.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <openssl/sha.h>

#include <moat/error.h>

#include "base/text.h"
#include "base/base64.h"

enum { ST_INIT = 0, ST_STARTED, ST_DONE, ST_FAILED };

enum { MAX_ITERATIONS = 10000000 }; /* a client refuses servers asking for more */

/* ---- primitives ---- */

static int hmac(const uint8_t *key, size_t key_len, const void *data, size_t len,
		uint8_t out[SCRAM_KEY_LEN])
{
	unsigned int n = 0;

	if (HMAC(EVP_sha256(), key, (int)key_len, data, len, out, &n) == NULL || n != SCRAM_KEY_LEN)
		return MOAT_E_CRYPTO;
	return MOAT_OK;
}

/* ClientKey, StoredKey and ServerKey from the password (RFC 5802 §3). */
static int derive_keys(const uint8_t *pw, size_t pw_len, const uint8_t *salt, size_t salt_len,
		       uint32_t iterations, uint8_t client_key[SCRAM_KEY_LEN],
		       uint8_t stored_key[SCRAM_KEY_LEN], uint8_t server_key[SCRAM_KEY_LEN])
{
	uint8_t salted[SCRAM_KEY_LEN];
	int rc = MOAT_E_CRYPTO;

	if (iterations == 0 || iterations > INT32_MAX || pw_len > INT32_MAX || salt_len > INT32_MAX)
		return MOAT_E_INVAL;
	/* an empty password is passed as "" so OpenSSL does not strlen(NULL) */
	if (PKCS5_PBKDF2_HMAC(pw_len == 0 ? "" : (const char *)pw, (int)pw_len, salt, (int)salt_len,
			      (int)iterations, EVP_sha256(), SCRAM_KEY_LEN, salted) != 1)
		goto out;
	if (hmac(salted, sizeof(salted), "Client Key", 10, client_key) < 0 ||
	    hmac(salted, sizeof(salted), "Server Key", 10, server_key) < 0 ||
	    SHA256(client_key, SCRAM_KEY_LEN, stored_key) == NULL)
		goto out;
	rc = MOAT_OK;
out:
	OPENSSL_cleanse(salted, sizeof(salted));
	return rc;
}

int scram_derive(const uint8_t *password, size_t pw_len, const uint8_t *salt, size_t salt_len,
		 uint32_t iterations, uint8_t stored_key[SCRAM_KEY_LEN],
		 uint8_t server_key[SCRAM_KEY_LEN])
{
	uint8_t client_key[SCRAM_KEY_LEN];
	int rc;

	rc = derive_keys(password, pw_len, salt, salt_len, iterations, client_key, stored_key,
			 server_key);
	OPENSSL_cleanse(client_key, sizeof(client_key));
	return rc;
}

int scram_method_check(const char *method, const char **why)
{
	if (strcmp(method, "SCRAM-SHA-256") == 0)
		return MOAT_OK;
	*why = strncmp(method, "SCRAM-SHA-1", 11) == 0
		   ? "SCRAM-SHA-1 is not offered, use SCRAM-SHA-256"
		   : "unsupported authentication method, use SCRAM-SHA-256";
	return MOAT_E_UNSUPPORTED;
}

/* Printable ASCII except ',' (RFC 5802 "printable"). */
static bool printable(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (s[i] < 0x21 || s[i] > 0x7e || s[i] == ',')
			return false;
	return true;
}

/* A nonce of SCRAM_NONCE_BYTES random bytes as base64 (printable, no ','). */
static int make_nonce(char out[SCRAM_NONCE_MAX + 1])
{
	uint8_t raw[SCRAM_NONCE_BYTES];

	if (RAND_bytes(raw, sizeof(raw)) != 1)
		return MOAT_E_CRYPTO;
	b64_encode(raw, sizeof(raw), out, B64_STD);
	return MOAT_OK;
}

static int append_str(struct buf *b, const char *s)
{
	return buf_append(b, s, strlen(s));
}

static int append_b64(struct buf *b, const uint8_t *p, size_t n)
{
	char text[2 * SCRAM_SALT_MAX + 4];

	b64_encode(p, n, text, B64_STD);
	return append_str(b, text);
}

/* ---- message cursor ---- */

struct cur {
	const char *p;
	size_t left;
};

/* Reads "<name>=value" up to the next ',' (consumed) or the end. */
static bool attr(struct cur *c, char name, const char **val, size_t *n)
{
	const char *comma;

	if (c->left < 2 || c->p[0] != name || c->p[1] != '=')
		return false;
	c->p += 2;
	c->left -= 2;
	comma = memchr(c->p, ',', c->left);
	*val = c->p;
	*n = comma == NULL ? c->left : (size_t)(comma - c->p);
	c->p += *n;
	c->left -= *n;
	if (comma != NULL) {
		c->p++;
		c->left--;
		if (c->left == 0)
			return false; /* a trailing ',' is never valid */
	}
	return true;
}

/* Skips optional extensions "x=value" (RFC 5802 attr-val) up to the end or <stop>. */
static bool skip_extensions(struct cur *c, char stop)
{
	while (c->left > 0 && c->p[0] != stop) {
		const char *v;
		size_t n;
		char a = c->p[0];

		if (!((a >= 'a' && a <= 'z') || (a >= 'A' && a <= 'Z')) || !attr(c, a, &v, &n))
			return false;
	}
	return true;
}

/* The saslname <s>/<n> unescaped ("=2C" ",", "=3D" "=") into <out>. */
static bool unescape_name(const char *s, size_t n, char out[SCRAM_USER_MAX + 1])
{
	size_t o = 0;

	for (size_t i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)s[i];

		if (o == SCRAM_USER_MAX)
			return false;
		if (ch == '=') {
			if (n - i < 3)
				return false;
			if (s[i + 1] == '2' && s[i + 2] == 'C')
				ch = ',';
			else if (s[i + 1] == '3' && s[i + 2] == 'D')
				ch = '=';
			else
				return false;
			i += 2;
		} else if (ch < 0x20 || ch == 0x7f) {
			return false;
		}
		out[o++] = (char)ch;
	}
	out[o] = '\0';
	return o > 0;
}

/* ---- server ---- */

static pthread_once_t secret_once = PTHREAD_ONCE_INIT;
static uint8_t secret[32];
static int secret_rc;

static void secret_init(void)
{
	secret_rc = RAND_bytes(secret, sizeof(secret)) == 1 ? MOAT_OK : MOAT_E_CRYPTO;
}

/* A credential for a user who does not exist: salt and keys are HMACs of
 * the per-process secret and the name, so a repeated query gets the same
 * reply, and the 16-byte salt and 4096 iterations look like `moat passwd --scram`. */
static int fake_cred(const char *username, struct scram_cred *cred)
{
	uint8_t mac[SCRAM_KEY_LEN];
	struct buf b = {0};
	int rc;

	pthread_once(&secret_once, secret_init);
	if (secret_rc < 0)
		return secret_rc;
	rc = append_str(&b, "moat-scram-fake:");
	if (rc == MOAT_OK)
		rc = append_str(&b, username);
	if (rc == MOAT_OK)
		rc = hmac(secret, sizeof(secret), buf_head(&b), buf_used(&b), mac);
	buf_fini(&b);
	if (rc < 0)
		return rc;
	memcpy(cred->salt, mac, 16);
	cred->salt_len = 16;
	cred->iterations = SCRAM_MIN_ITERATIONS;
	memcpy(cred->stored_key, mac, SCRAM_KEY_LEN); /* never matches: known stays false */
	memcpy(cred->server_key, mac, SCRAM_KEY_LEN);
	OPENSSL_cleanse(mac, sizeof(mac));
	return MOAT_OK;
}

void scram_server_init(struct scram_server *s)
{
	memset(s, 0, sizeof(*s));
}

void scram_server_fini(struct scram_server *s)
{
	if (s == NULL)
		return;
	buf_fini(&s->auth);
	OPENSSL_cleanse(s, sizeof(*s));
}

static int server_fail(struct scram_server *s, int rc, const char *why)
{
	s->state = ST_FAILED;
	s->why = why;
	return rc;
}

/* gs2-header: "n," / "y," then an empty authzid ","; channel binding refused. */
static int parse_gs2(struct scram_server *s, struct cur *c)
{
	if (c->left >= 2 && c->p[0] == 'p' && c->p[1] == '=')
		return server_fail(s, MOAT_E_UNSUPPORTED,
				   "channel binding is not supported, use gs2 flag \"n\"");
	if (c->left < 3 || (c->p[0] != 'n' && c->p[0] != 'y') || c->p[1] != ',')
		return server_fail(s, MOAT_E_MALFORMED, "bad gs2 header");
	if (c->p[2] == 'a' && c->left >= 4 && c->p[3] == '=')
		return server_fail(s, MOAT_E_UNSUPPORTED,
				   "authzid is not supported, leave it empty");
	if (c->p[2] != ',')
		return server_fail(s, MOAT_E_MALFORMED, "bad gs2 header");
	memcpy(s->gs2, c->p, 3);
	s->gs2[3] = '\0';
	c->p += 3;
	c->left -= 3;
	return MOAT_OK;
}

int scram_server_start_nonce(struct scram_server *s, const uint8_t *msg, size_t len,
			     const char *nonce, scram_lookup_fn *lookup, void *arg, struct buf *out)
{
	struct cur c = {(const char *)msg, len};
	const char *bare, *v, *cn;
	size_t n, cn_len, bare_len;
	char snonce[SCRAM_NONCE_MAX + 1];
	int rc;

	if (s->state != ST_INIT)
		return server_fail(s, MOAT_E_PROTOCOL, "client-first-message out of order");
	rc = parse_gs2(s, &c);
	if (rc < 0)
		return rc;
	bare = c.p;
	bare_len = c.left;
	if (c.left >= 2 && c.p[0] == 'm' && c.p[1] == '=')
		return server_fail(s, MOAT_E_UNSUPPORTED, "mandatory extensions are not supported");
	if (!attr(&c, 'n', &v, &n) || !unescape_name(v, n, s->username))
		return server_fail(s, MOAT_E_MALFORMED, "bad or missing username (n=)");
	if (!attr(&c, 'r', &cn, &cn_len) || cn_len == 0 || cn_len > SCRAM_NONCE_MAX ||
	    !printable(cn, cn_len))
		return server_fail(s, MOAT_E_MALFORMED, "bad or missing client nonce (r=)");
	if (!skip_extensions(&c, '\0'))
		return server_fail(s, MOAT_E_MALFORMED, "bad extension after the nonce");
	if (nonce == NULL) {
		rc = make_nonce(snonce);
		if (rc < 0)
			return server_fail(s, rc, "no random bytes for the nonce");
	} else {
		n = strlen(nonce);
		if (n == 0 || n > SCRAM_NONCE_MAX || !printable(nonce, n))
			return server_fail(s, MOAT_E_INVAL, "bad injected nonce");
		memcpy(snonce, nonce, n + 1);
	}
	memcpy(s->nonce, cn, cn_len);
	memcpy(s->nonce + cn_len, snonce, strlen(snonce) + 1);

	rc = lookup(arg, s->username, &s->cred);
	s->known = rc == MOAT_OK;
	if (rc == MOAT_OK && (s->cred.iterations < SCRAM_MIN_ITERATIONS || s->cred.salt_len == 0 ||
			      s->cred.salt_len > SCRAM_SALT_MAX))
		return server_fail(s, MOAT_E_CONFIG, "stored credential is unusable");
	if (rc == MOAT_E_NOTFOUND)
		rc = fake_cred(s->username, &s->cred);
	if (rc < 0)
		return server_fail(s, rc, "credential lookup failed");

	/* AuthMessage so far: client-first-bare "," server-first "," */
	rc = buf_append(&s->auth, bare, bare_len);
	if (rc == MOAT_OK)
		rc = append_str(&s->auth, ",r=");
	if (rc == MOAT_OK)
		rc = append_str(&s->auth, s->nonce);
	if (rc == MOAT_OK)
		rc = append_str(&s->auth, ",s=");
	if (rc == MOAT_OK)
		rc = append_b64(&s->auth, s->cred.salt, s->cred.salt_len);
	if (rc == MOAT_OK) {
		char it[16];

		snprintf(it, sizeof(it), ",i=%u", s->cred.iterations);
		rc = append_str(&s->auth, it);
	}
	if (rc == MOAT_OK)
		rc = buf_append(out, buf_head(&s->auth) + bare_len + 1,
				buf_used(&s->auth) - bare_len - 1);
	if (rc == MOAT_OK)
		rc = buf_append(&s->auth, ",", 1);
	if (rc < 0)
		return server_fail(s, rc, "out of memory");
	s->state = ST_STARTED;
	return MOAT_OK;
}

int scram_server_start(struct scram_server *s, const uint8_t *msg, size_t len,
		       scram_lookup_fn *lookup, void *arg, struct buf *out)
{
	return scram_server_start_nonce(s, msg, len, NULL, lookup, arg, out);
}

int scram_server_finish(struct scram_server *s, const uint8_t *msg, size_t len, struct buf *out)
{
	struct cur c = {(const char *)msg, len};
	uint8_t cb[8], proof[SCRAM_KEY_LEN], sig[SCRAM_KEY_LEN], key[SCRAM_KEY_LEN];
	uint8_t stored[SCRAM_KEY_LEN];
	const char *v, *without_proof_end;
	size_t n;
	int rc, cb_len;
	bool ok;

	if (s->state != ST_STARTED)
		return server_fail(s, MOAT_E_PROTOCOL, "client-final-message out of order");
	if (!attr(&c, 'c', &v, &n) || (cb_len = b64_decode(v, n, cb, sizeof(cb), B64_STD)) < 0)
		return server_fail(s, MOAT_E_MALFORMED, "bad or missing channel binding (c=)");
	if ((size_t)cb_len != 3 || memcmp(cb, s->gs2, 3) != 0)
		return server_fail(s, MOAT_E_PROTOCOL,
				   "channel binding (c=) differs from gs2 header");
	if (!attr(&c, 'r', &v, &n))
		return server_fail(s, MOAT_E_MALFORMED, "missing nonce (r=)");
	if (n != strlen(s->nonce) || memcmp(v, s->nonce, n) != 0)
		return server_fail(s, MOAT_E_PROTOCOL, "nonce (r=) differs from the server's");
	if (c.left == 0 || !skip_extensions(&c, 'p'))
		return server_fail(s, MOAT_E_MALFORMED, "missing proof (p=)");
	without_proof_end = c.p - 1; /* the ',' before "p=" */
	if (!attr(&c, 'p', &v, &n) || c.left != 0 ||
	    b64_decode(v, n, proof, sizeof(proof), B64_STD) != SCRAM_KEY_LEN)
		return server_fail(s, MOAT_E_MALFORMED, "bad proof (p=)");

	rc = buf_append(&s->auth, msg, (size_t)(without_proof_end - (const char *)msg));
	if (rc < 0)
		return server_fail(s, rc, "out of memory");
	/* ClientKey = proof XOR HMAC(StoredKey, AuthMessage); H(ClientKey) must be StoredKey */
	rc = hmac(s->cred.stored_key, SCRAM_KEY_LEN, buf_head(&s->auth), buf_used(&s->auth), sig);
	for (size_t i = 0; i < SCRAM_KEY_LEN; i++)
		key[i] = proof[i] ^ sig[i];
	if (rc == MOAT_OK && SHA256(key, sizeof(key), stored) == NULL)
		rc = MOAT_E_CRYPTO;
	ok = rc == MOAT_OK && CRYPTO_memcmp(stored, s->cred.stored_key, SCRAM_KEY_LEN) == 0;
	ok = ok && s->known;
	if (ok)
		rc = hmac(s->cred.server_key, SCRAM_KEY_LEN, buf_head(&s->auth), buf_used(&s->auth),
			  sig);
	if (ok && rc == MOAT_OK) {
		rc = append_str(out, "v=");
		if (rc == MOAT_OK)
			rc = append_b64(out, sig, sizeof(sig));
	}
	OPENSSL_cleanse(key, sizeof(key));
	OPENSSL_cleanse(sig, sizeof(sig));
	OPENSSL_cleanse(stored, sizeof(stored));
	OPENSSL_cleanse(&s->cred, sizeof(s->cred));
	if (rc < 0)
		return server_fail(s, rc, "cryptographic operation failed");
	if (!ok)
		return server_fail(s, MOAT_E_DENIED, "invalid proof");
	s->state = ST_DONE;
	return MOAT_OK;
}

/* ---- client ---- */

void scram_client_init(struct scram_client *c)
{
	memset(c, 0, sizeof(*c));
}

void scram_client_fini(struct scram_client *c)
{
	if (c == NULL)
		return;
	buf_fini(&c->auth);
	OPENSSL_cleanse(c, sizeof(*c));
}

static int client_fail(struct scram_client *c, int rc, const char *why)
{
	c->state = ST_FAILED;
	c->why = why;
	return rc;
}

int scram_client_first_nonce(struct scram_client *c, const char *username, const char *nonce,
			     struct buf *out)
{
	size_t ulen = strlen(username);
	size_t n = strlen(nonce);
	int rc = MOAT_OK;

	if (c->state != ST_INIT)
		return client_fail(c, MOAT_E_PROTOCOL, "client-first-message already sent");
	if (ulen == 0 || ulen > SCRAM_USER_MAX)
		return client_fail(c, MOAT_E_INVAL, "username is empty or too long");
	if (n == 0 || n > SCRAM_NONCE_MAX || !printable(nonce, n))
		return client_fail(c, MOAT_E_INVAL, "bad nonce");
	memcpy(c->nonce, nonce, n + 1);
	rc = append_str(&c->auth, "n=");
	for (size_t i = 0; i < ulen && rc == MOAT_OK; i++) {
		if (username[i] == ',')
			rc = append_str(&c->auth, "=2C");
		else if (username[i] == '=')
			rc = append_str(&c->auth, "=3D");
		else
			rc = buf_append(&c->auth, &username[i], 1);
	}
	if (rc == MOAT_OK)
		rc = append_str(&c->auth, ",r=");
	if (rc == MOAT_OK)
		rc = append_str(&c->auth, nonce);
	if (rc == MOAT_OK)
		rc = append_str(out, "n,,");
	if (rc == MOAT_OK)
		rc = buf_append(out, buf_head(&c->auth), buf_used(&c->auth));
	if (rc == MOAT_OK)
		rc = buf_append(&c->auth, ",", 1);
	if (rc < 0)
		return client_fail(c, rc, "out of memory");
	c->state = ST_STARTED;
	return MOAT_OK;
}

int scram_client_first(struct scram_client *c, const char *username, struct buf *out)
{
	char nonce[SCRAM_NONCE_MAX + 1];
	int rc = make_nonce(nonce);

	if (rc < 0)
		return client_fail(c, rc, "no random bytes for the nonce");
	return scram_client_first_nonce(c, username, nonce, out);
}

int scram_client_final(struct scram_client *c, const uint8_t *msg, size_t len,
		       const uint8_t *password, size_t pw_len, struct buf *out)
{
	struct cur cu = {(const char *)msg, len};
	uint8_t salt[SCRAM_SALT_MAX], client_key[SCRAM_KEY_LEN], stored[SCRAM_KEY_LEN];
	uint8_t server_key[SCRAM_KEY_LEN], sig[SCRAM_KEY_LEN];
	const char *nonce, *v;
	size_t nonce_len, n, own = strlen(c->nonce), mark;
	uint32_t iterations;
	int rc, salt_len;

	if (c->state != ST_STARTED)
		return client_fail(c, MOAT_E_PROTOCOL, "server-first-message out of order");
	if (len >= 2 && msg[0] == 'm' && msg[1] == '=')
		return client_fail(c, MOAT_E_UNSUPPORTED, "mandatory extensions are not supported");
	if (!attr(&cu, 'r', &nonce, &nonce_len) || nonce_len > 2 * SCRAM_NONCE_MAX ||
	    !printable(nonce, nonce_len))
		return client_fail(c, MOAT_E_MALFORMED, "bad or missing nonce (r=)");
	if (nonce_len <= own || memcmp(nonce, c->nonce, own) != 0)
		return client_fail(c, MOAT_E_PROTOCOL, "server nonce does not extend ours");
	if (!attr(&cu, 's', &v, &n) ||
	    (salt_len = b64_decode(v, n, salt, sizeof(salt), B64_STD)) <= 0)
		return client_fail(c, MOAT_E_MALFORMED, "bad or missing salt (s=)");
	if (!attr(&cu, 'i', &v, &n) || !text_parse_u32(v, n, &iterations) || !skip_extensions(&cu, '\0'))
		return client_fail(c, MOAT_E_MALFORMED, "bad or missing iteration count (i=)");
	if (iterations < SCRAM_MIN_ITERATIONS || iterations > MAX_ITERATIONS)
		return client_fail(c, MOAT_E_DENIED, "iteration count below 4096 or above 10^7");

	rc = buf_append(&c->auth, msg, len);
	if (rc == MOAT_OK)
		rc = append_str(&c->auth, ",");
	mark = buf_used(&c->auth);
	if (rc == MOAT_OK)
		rc = append_str(&c->auth, "c=biws,r=");
	if (rc == MOAT_OK)
		rc = buf_append(&c->auth, nonce, nonce_len);
	if (rc < 0)
		return client_fail(c, rc, "out of memory");
	rc = derive_keys(password, pw_len, salt, (size_t)salt_len, iterations, client_key, stored,
			 server_key);
	if (rc == MOAT_OK)
		rc = hmac(stored, sizeof(stored), buf_head(&c->auth), buf_used(&c->auth), sig);
	if (rc == MOAT_OK)
		rc = hmac(server_key, sizeof(server_key), buf_head(&c->auth), buf_used(&c->auth),
			  c->server_sig);
	for (size_t i = 0; i < SCRAM_KEY_LEN; i++)
		client_key[i] ^= sig[i]; /* now the ClientProof */
	if (rc == MOAT_OK)
		rc = buf_append(out, buf_head(&c->auth) + mark, buf_used(&c->auth) - mark);
	if (rc == MOAT_OK)
		rc = append_str(out, ",p=");
	if (rc == MOAT_OK)
		rc = append_b64(out, client_key, sizeof(client_key));
	OPENSSL_cleanse(client_key, sizeof(client_key));
	OPENSSL_cleanse(stored, sizeof(stored));
	OPENSSL_cleanse(server_key, sizeof(server_key));
	OPENSSL_cleanse(sig, sizeof(sig));
	if (rc < 0)
		return client_fail(c, rc, "key derivation failed");
	c->state = ST_DONE;
	return MOAT_OK;
}

int scram_client_verify(struct scram_client *c, const uint8_t *msg, size_t len)
{
	struct cur cu = {(const char *)msg, len};
	uint8_t sig[SCRAM_KEY_LEN + 4];
	const char *v;
	size_t n;
	int rc;

	if (c->state != ST_DONE)
		return client_fail(c, MOAT_E_PROTOCOL, "server-final-message out of order");
	if (len >= 2 && msg[0] == 'e' && msg[1] == '=')
		return client_fail(c, MOAT_E_DENIED, "server refused the proof");
	if (!attr(&cu, 'v', &v, &n) || cu.left != 0 ||
	    b64_decode(v, n, sig, sizeof(sig), B64_STD) != SCRAM_KEY_LEN)
		return client_fail(c, MOAT_E_MALFORMED, "bad server signature (v=)");
	rc = CRYPTO_memcmp(sig, c->server_sig, SCRAM_KEY_LEN) == 0 ? MOAT_OK : MOAT_E_DENIED;
	OPENSSL_cleanse(c->server_sig, sizeof(c->server_sig));
	if (rc < 0)
		return client_fail(c, rc, "wrong server signature");
	c->state = ST_FAILED; /* one verification per exchange */
	return MOAT_OK;
}
