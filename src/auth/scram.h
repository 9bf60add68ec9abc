/*
 * SCRAM-SHA-256 (RFC 5802, RFC 7677) as pure state machines for MQTT 5
 * enhanced authentication (method "SCRAM-SHA-256"): messages in, messages
 * out, no I/O. Channel binding is not offered (gs2 flag "p=" is refused);
 * "n,," and "y,," are accepted. Passwords are used as given bytes (no
 * SASLprep). Unknown users get a fake salt and iteration count derived from
 * a per-process secret, so replies do not reveal which users exist; they
 * fail at the proof. SCRAM-SHA-1 is never offered.
 */
#ifndef MOAT_AUTH_SCRAM_H
#define MOAT_AUTH_SCRAM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"

enum {
	SCRAM_KEY_LEN = 32,	     /* SHA-256 */
	SCRAM_MIN_ITERATIONS = 4096, /* RFC 7677 §4 */
	SCRAM_SALT_MAX = 64,
	SCRAM_NONCE_BYTES = 18, /* random bytes in each side's nonce */
	SCRAM_NONCE_MAX = 256,	/* characters of a nonce from the peer */
	SCRAM_USER_MAX = 1024,	/* bytes of a username after unescaping */
};

/* A user's SCRAM credential, as the password database stores it. */
struct scram_cred {
	uint8_t salt[SCRAM_SALT_MAX];
	size_t salt_len;
	uint32_t iterations;
	uint8_t stored_key[SCRAM_KEY_LEN];
	uint8_t server_key[SCRAM_KEY_LEN];
};

/* Fills <out> for <username> (NUL-terminated). Returns MOAT_OK, or
 * MOAT_E_NOTFOUND when the user has no SCRAM credential. */
typedef int scram_lookup_fn(void *arg, const char *username, struct scram_cred *out);

struct scram_server {
	int state;
	bool known; /* the user exists; otherwise the proof always fails */
	char username[SCRAM_USER_MAX + 1];
	char gs2[4];			     /* "n,," or "y,," */
	struct buf auth;		     /* client-first-bare "," server-first "," */
	char nonce[2 * SCRAM_NONCE_MAX + 2]; /* client + server nonce */
	struct scram_cred cred;
	const char *why; /* static reason for the last error; never secret */
};

struct scram_client {
	int state;
	char nonce[SCRAM_NONCE_MAX + 1];
	struct buf auth;
	uint8_t server_sig[SCRAM_KEY_LEN];
	const char *why;
};

/* Returns MOAT_OK for "SCRAM-SHA-256"; MOAT_E_UNSUPPORTED for any other
 * method, with <why> saying to use SCRAM-SHA-256 (e.g. for SCRAM-SHA-1). */
int scram_method_check(const char *method, const char **why);

/* Derives the stored credential from <password> (<pw_len> bytes), <salt> and
 * <iterations> (>= 1): StoredKey = H(HMAC(SaltedPassword, "Client Key")),
 * ServerKey = HMAC(SaltedPassword, "Server Key"). Wipes intermediates.
 * MOAT_OK or MOAT_E_CRYPTO. */
int scram_derive(const uint8_t *password, size_t pw_len, const uint8_t *salt, size_t salt_len,
		 uint32_t iterations, uint8_t stored_key[SCRAM_KEY_LEN],
		 uint8_t server_key[SCRAM_KEY_LEN]);

/* Zeroes <s>: ready for scram_server_start. */
void scram_server_init(struct scram_server *s);

/* Handles the client-first-message (<len> bytes at <msg>), looks the user up
 * with <lookup>(<arg>) and appends the server-first-message to <out>.
 * MOAT_OK; MOAT_E_MALFORMED for a message that breaks RFC 5802;
 * MOAT_E_UNSUPPORTED for channel binding, authzid or mandatory extensions;
 * MOAT_E_PROTOCOL out of order; MOAT_E_NOMEM, MOAT_E_CRYPTO. <s>->why says why. */
int scram_server_start(struct scram_server *s, const uint8_t *msg, size_t len,
		       scram_lookup_fn *lookup, void *arg, struct buf *out);

/* As scram_server_start with the server nonce <nonce> (printable, no ',')
 * instead of a random one: for test vectors only. */
int scram_server_start_nonce(struct scram_server *s, const uint8_t *msg, size_t len,
			     const char *nonce, scram_lookup_fn *lookup, void *arg,
			     struct buf *out);

/* Checks the client-final-message and, when the proof is right, appends the
 * server-final-message "v=..." to <out>. MOAT_OK; MOAT_E_DENIED for a wrong
 * proof or an unknown user (compared in constant time); MOAT_E_MALFORMED;
 * MOAT_E_PROTOCOL for a wrong nonce, channel-binding data or order. */
int scram_server_finish(struct scram_server *s, const uint8_t *msg, size_t len, struct buf *out);

/* Wipes the credential and frees what <s> owns. NULL is fine. */
void scram_server_fini(struct scram_server *s);

/* Zeroes <c>: ready for scram_client_first. */
void scram_client_init(struct scram_client *c);

/* Appends the client-first-message "n,,n=USER,r=NONCE" for <username>
 * (NUL-terminated, escaped as saslname) to <out>. MOAT_OK, MOAT_E_INVAL for
 * an empty or too long name, MOAT_E_NOMEM, MOAT_E_CRYPTO. */
int scram_client_first(struct scram_client *c, const char *username, struct buf *out);

/* As scram_client_first with the client nonce <nonce>: for test vectors only. */
int scram_client_first_nonce(struct scram_client *c, const char *username, const char *nonce,
			     struct buf *out);

/* Handles the server-first-message and appends the client-final-message,
 * proving knowledge of <password> (<pw_len> bytes) to <out>. MOAT_OK;
 * MOAT_E_MALFORMED; MOAT_E_PROTOCOL when the nonce does not extend ours;
 * MOAT_E_DENIED when the iteration count is below 4096. */
int scram_client_final(struct scram_client *c, const uint8_t *msg, size_t len,
		       const uint8_t *password, size_t pw_len, struct buf *out);

/* Checks the server-final-message: MOAT_OK when the server signature is
 * right (constant-time), MOAT_E_DENIED otherwise or for "e=...",
 * MOAT_E_MALFORMED, MOAT_E_PROTOCOL out of order. */
int scram_client_verify(struct scram_client *c, const uint8_t *msg, size_t len);

/* Wipes and frees what <c> owns. NULL is fine. */
void scram_client_fini(struct scram_client *c);

#endif
