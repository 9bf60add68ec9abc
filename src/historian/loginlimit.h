/*
 * moat-historian's login rate limit: failed logins are counted per client
 * address and per (address, user); past a free allowance each further
 * failure blocks that key for twice as long as the one before (1 s, 2 s,
 * 4 s ... up to 5 min), and a blocked login is answered 429 with
 * Retry-After without checking its password. A success clears its (address,
 * user) key (not the address's: one good account must not reset a guesser
 * of others); a key unused for 15 minutes is forgotten. Kept in memory, thread-safe.
 */
#ifndef MOAT_HISTORIAN_LOGINLIMIT_H
#define MOAT_HISTORIAN_LOGINLIMIT_H

#include <stdint.h>

enum {
	LOGIN_FREE_PER_USER = 5,	  /* failures for one (address, user) before back-off */
	LOGIN_FREE_PER_ADDRESS = 20,	  /* failures from one address, any users */
	LOGIN_FIRST_BLOCK_MS = 1000,	  /* the first block; doubled by each failure */
	LOGIN_MAX_BLOCK_MS = 300 * 1000,  /* the longest block */
	LOGIN_FORGET_MS = 15 * 60 * 1000, /* a key unused this long (and not blocked) */
	LOGIN_KEYS_MAX = 4096,		  /* keys kept; a full table drops the oldest */
};

struct login_limit;

/* A new, empty limiter, or NULL without memory. */
struct login_limit *login_limit_create(void);

/* Frees <l>; NULL is fine. */
void login_limit_destroy(struct login_limit *l);

/* 0 when a login for <user> from <addr> may be tried at <now_ms>, else
 * the seconds until it may (rounded up; the Retry-After value). */
unsigned login_limit_wait_s(struct login_limit *l, const char *addr, const char *user,
			    int64_t now_ms);

/* Counts a failed login for <user> from <addr> at <now_ms>. */
void login_limit_failed(struct login_limit *l, const char *addr, const char *user, int64_t now_ms);

/* A successful login: clears what (<addr>, <user>) had. */
void login_limit_succeeded(struct login_limit *l, const char *addr, const char *user);

#endif
