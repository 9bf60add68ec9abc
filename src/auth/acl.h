/*
 * Topic authorization from an ACL file (conf/acl_file.h, docs/acl.md):
 * READ, WRITE and SUBSCRIBE checks for an identity made of a username, a
 * client id and role names. The rules are compiled once (levels split,
 * users and roles sorted for binary search); a check allocates nothing and
 * substitutes %c/%u level by level while comparing. A struct acl is
 * immutable after acl_create, so any number of threads may check against
 * it concurrently; to reload, build a new one and swap the pointer.
 */
#ifndef MOAT_AUTH_ACL_H
#define MOAT_AUTH_ACL_H

#include <stdbool.h>
#include <stddef.h>

#include "conf/acl_file.h"

struct acl;

enum acl_access {
	ACL_READ = 1,	   /* deliver a message on topic T to the client */
	ACL_WRITE = 2,	   /* the client publishes to topic T */
	ACL_SUBSCRIBE = 3, /* the client subscribes to filter F */
};

/*
 * Who asks. Strings are borrowed for the call and carry their length, so an
 * embedded NUL is seen (and makes the string unusable for substitution).
 */
struct acl_identity {
	const char *username; /* NULL: anonymous (the file's anonymous section) */
	size_t username_len;
	const char *client_id; /* NULL or empty: %c patterns never match */
	size_t client_id_len;
	const char *const *roles; /* NUL-terminated names from a token or certificate */
	size_t role_count;	  /* names with no role section grant nothing */
	/* attributes (from a token) for %{name} in patterns: attrs[2i] is a
	 * name, attrs[2i + 1] its value */
	const char *const *attrs;
	size_t attr_count;
};

/*
 * Compiles the parsed file <f> (borrowed; may be freed afterwards) into
 * *<out>. MOAT_OK or MOAT_E_NOMEM. A file without rules gives an acl that
 * denies everything.
 */
int acl_create(struct acl **out, const struct acl_file *f);

/*
 * Reads, parses and compiles the ACL file at <path>. MOAT_OK;
 * MOAT_E_CONFIG / MOAT_E_IO with <diag> filled; MOAT_E_NOMEM.
 */
int acl_load(struct acl **out, const char *path, struct moat_diag *diag);

/* Frees <acl>. NULL is fine. No check may be running on it. */
void acl_destroy(struct acl *acl);

/*
 * True only when <id> may do <access> on the <len> bytes at <topic_or_filter>:
 * a topic name for READ/WRITE (wildcards there deny), a topic filter for
 * SUBSCRIBE (a "$share/<group>/" prefix is removed first and the inner
 * filter checked). Rules considered: the user's section (the anonymous one
 * when username is NULL), every pattern, and the sections of the user's
 * file roles and of <id>'s roles. A matching deny rule (for SUBSCRIBE: one
 * that overlaps F) always wins; otherwise a rule with the access must match
 * (for SUBSCRIBE: a read rule whose filter covers every topic F can match).
 * Thread-safe; allocates nothing.
 */
bool acl_check(const struct acl *acl, const struct acl_identity *id, const char *topic_or_filter,
	       size_t len, enum acl_access access);

#endif
