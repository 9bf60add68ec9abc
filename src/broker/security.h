/*
 * What moatd authenticates and authorizes with: the password file, the ACL
 * file and the token keys, loaded together from the configuration and
 * swapped whole on SIGHUP. A loaded set is immutable and refcounted; each
 * worker holds the current one and picks up a new one at the start of a
 * loop pass, so checks on the hot path take no lock.
 */
#ifndef MOAT_BROKER_SECURITY_H
#define MOAT_BROKER_SECURITY_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"
#include "conf/config.h"

struct passwd_db;
struct acl;
struct jwt_keys;
struct topic_policy_set;

struct security {
	atomic_uint refs;
	struct passwd_db *passwd;	/* NULL: no password_file */
	struct acl *acl;		/* NULL: no acl_file, everything allowed */
	struct jwt_keys *tokens;	/* NULL: no auth_token_key */
	struct topic_policy_set *policies;	/* NULL: no topic_policy_file */
	const struct moat_config *cfg;
};

/* Loads every file <cfg> names. NULL on failure with <err> saying which file
 * and line and what to do. */
struct security *security_load(const struct moat_config *cfg, char *err, size_t err_len);
struct security *security_ref(struct security *s);
void security_unref(struct security *s);	/* NULL is fine */

/* Whether <password> is <username>'s, from the password file (constant time;
 * unknown users cost the same). MOAT_OK or MOAT_E_DENIED. Slow on purpose:
 * call from the verification pool. */
int security_check_password(const struct security *s, const char *username, const uint8_t *password,
			    size_t password_len);

struct scram_server;
/* Starts a SCRAM-SHA-256 exchange on <srv> with the client-first-message
 * <msg>, looking users up in the password file; appends the server-first-
 * message to <out>. MOAT_E_UNSUPPORTED when there is no password file;
 * otherwise as scram_server_start. */
int security_scram_start(const struct security *s, struct scram_server *srv, const uint8_t *msg,
			 size_t len, struct buf *out);

/* What a verified token says about its holder. */
struct token_identity {
	char *username;
	char *client_id;	/* NULL when the token names none */
	char **roles;		/* NULL-terminated; NULL when none */
	char **attrs;		/* name, value, ..., NULL; NULL when none */
	int64_t expires_s;	/* wall clock */
	char *cnf_x5t_s256;	/* the certificate the token is bound to (RFC 8705); NULL = none */
	char *jti;		/* the token's id (for revocation); NULL = none */
};
void token_identity_fini(struct token_identity *t);
/* NULL-terminated string arrays (roles, attributes): a deep copy (NULL for
 * NULL, or when out of memory) and its release (NULL is fine). */
char **strv_dup(char *const *v);
void strv_free(char **v);

/* Whether <password> has the shape of a JWT (three base64url parts). */
bool security_is_token(const struct security *s, const uint8_t *password, size_t len);
/* Verifies a token. MOAT_OK with <out> filled, or an error with *<why> set. */
int security_check_token(const struct security *s, const uint8_t *token, size_t len, int64_t now_s,
			 struct token_identity *out, const char **why);

/* The identity an ACL check is about. */
struct acl_subject {
	const char *username;	/* NULL = anonymous */
	const char *client_id;
	char *const *roles;	/* NULL-terminated; NULL when none */
	char *const *attrs;	/* name, value, ..., NULL; NULL when none (for %{name}) */
};

enum security_access {
	ACCESS_READ = 1,	/* a message on the topic is delivered to the client */
	ACCESS_WRITE = 2,	/* the client publishes on the topic (Wills included) */
	ACCESS_SUBSCRIBE = 4,	/* the client subscribes to the filter */
};

/* Whether <subject> may do <access> on <topic> (a filter for SUBSCRIBE):
 * the ACL file (when configured) and the topic policies (when configured,
 * evaluated over the subject's token attributes, each role also as an
 * attribute "role") must both allow it. True when neither is configured. */
bool security_allows(const struct security *s, const struct acl_subject *subject, const uint8_t *topic,
		     size_t len, enum security_access access);

#endif
