/*
 * moat-historian's login sessions: random 32-byte ids (64 hex characters)
 * with a CSRF token each, kept in memory, expiring after 8 hours idle.
 * Thread-safe; ids are compared in constant time.
 */
#ifndef MOAT_HISTORIAN_SESSION_H
#define MOAT_HISTORIAN_SESSION_H

#include <stdbool.h>
#include <stdint.h>

#include "historian/db.h"

enum {
	SESSION_HEX_LEN = 64,		   /* id and CSRF token, hex */
	SESSION_MAX = 1024,		   /* live sessions; the oldest idle one is dropped */
	SESSION_IDLE_MS = 8 * 3600 * 1000, /* expiry after this long unused */
};

struct sessions;

/* A new, empty session table, or NULL without memory. */
struct sessions *sessions_create(void);

/* Wipes and frees <s>; NULL is fine. */
void sessions_destroy(struct sessions *s);

/* Opens a session for <user> at <now_ms>; writes its id and CSRF token
 * (NUL-terminated hex). MOAT_OK or MOAT_E_CRYPTO. */
int sessions_open(struct sessions *s, const char *user, int64_t now_ms,
		  char id[SESSION_HEX_LEN + 1], char csrf[SESSION_HEX_LEN + 1]);

/* Looks up the session <id> (any string): when it is live at <now_ms>,
 * refreshes it, copies its user and CSRF token and returns true. */
bool sessions_find(struct sessions *s, const char *id, int64_t now_ms, char user[HIST_NAME_MAX + 1],
		   char csrf[SESSION_HEX_LEN + 1]);

/* Ends the session <id> (nothing when unknown). */
void sessions_close(struct sessions *s, const char *id);

/* True when <a> equals the token <b> (constant time in the token's length). */
bool sessions_token_equal(const char *a, const char *b);

#endif
