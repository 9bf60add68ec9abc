/*
 * Parser for mosquitto's acl_file format plus Moat's roles extension
 * (docs/acl.md). It only reads and validates text into plain data; the
 * checks, and the precompiled form they run on, live in auth/acl.h.
 * Loading stops at the first bad line with "FILE:LINE: problem; fix".
 */
#ifndef MOAT_CONF_ACL_FILE_H
#define MOAT_CONF_ACL_FILE_H

#include <stdbool.h>
#include <stddef.h>

#include "conf/config.h"

/* Longest topic filter a rule may hold (MQTT's string limit). */
#define ACL_FILE_MAX_TOPIC 65535

/* What a rule grants; DENY is exclusive of the others. */
enum acl_perm {
	ACL_PERM_READ = 1,
	ACL_PERM_WRITE = 2,
	ACL_PERM_READWRITE = 3,
	ACL_PERM_DENY = 4,
};

struct acl_file_rule {
	char *topic;   /* owned; a valid MQTT topic filter, NUL-terminated */
	unsigned perm; /* enum acl_perm */
	bool pattern;  /* a `pattern` line: %c and %u are substituted at check time */
	unsigned line;
};

/* A `roles` name inside a user section; resolved against the role sections at the end. */
struct acl_file_role_ref {
	char *name; /* owned */
	unsigned line;
};

/* The anonymous section, the global patterns, one `user` or one `role` section. */
struct acl_file_section {
	char *name; /* owned; NULL for the anonymous and pattern sections */
	struct acl_file_rule *rules;
	size_t rule_count, rule_cap;
	struct acl_file_role_ref *roles; /* user sections only */
	size_t role_count, role_cap;
};

/*
 * A parsed file. A user or role named twice has two sections here, in file
 * order (auth/acl.c merges them). Every role reference names a role section.
 */
struct acl_file {
	struct acl_file_section anon;	  /* `topic` lines before the first user/role */
	struct acl_file_section patterns; /* `pattern` lines outside role sections */
	struct acl_file_section **users;
	size_t user_count, user_cap;
	struct acl_file_section **roles; /* Moat extension: `role <name>` sections */
	size_t role_count, role_cap;
};

/*
 * Parses <len> bytes of ACL text named <name> (for messages) into <f>, which
 * the call initialises. MOAT_OK; MOAT_E_CONFIG with <diag> filled for a bad
 * line or an unknown role; MOAT_E_NOMEM. On error <f> is left empty (no need,
 * but no harm, to call acl_file_fini). An empty or comment-only text is valid
 * and holds no rule: it denies everything.
 */
int acl_file_parse(struct acl_file *f, const char *name, const char *data, size_t len,
		   struct moat_diag *diag);

/* Reads and parses the file at <path> (at most 16 MiB). As acl_file_parse, plus
 * MOAT_E_IO with <diag> filled when the file cannot be read. */
int acl_file_load(struct acl_file *f, const char *path, struct moat_diag *diag);

/* Frees what <f> owns and leaves it empty. NULL is fine. */
void acl_file_fini(struct acl_file *f);

#endif
