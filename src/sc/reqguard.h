/*
 * Guards in front of the key server (keyserver.c), in bounded memory: a
 * replay cache of request nonces that remembers each one at least <ttl_s>
 * seconds (two generations of a fixed-size table), and per-thing token
 * buckets. Both take the time as an argument and do no I/O. One thread.
 */
#ifndef MOAT_SC_REQGUARD_H
#define MOAT_SC_REQGUARD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum { NONCE_KEY_LEN = 16 };

struct nonce_cache;
struct rate_limiter;

/* A cache of up to <cap> (>= 4) keys per generation of <ttl_s> (> 0)
 * seconds. MOAT_E_NOMEM, MOAT_E_INVAL. */
int nonce_cache_create(struct nonce_cache **out, size_t cap, int64_t ttl_s);

/* Frees <c>; NULL is fine. */
void nonce_cache_destroy(struct nonce_cache *c);

/*
 * Remembers <key> at <now_s>. MOAT_OK when it was not seen in the last
 * <ttl_s> seconds (at least), MOAT_E_DENIED when it was (a replay),
 * MOAT_E_LIMIT when this generation is full (refuse the request: nothing
 * is forgotten early).
 */
int nonce_cache_check(struct nonce_cache *c, const uint8_t key[NONCE_KEY_LEN], int64_t now_s);

/* Token buckets for up to <buckets> names at once, each refilled with
 * <rate_per_s> tokens a second up to <burst>. MOAT_E_NOMEM, MOAT_E_INVAL. */
int rate_limiter_create(struct rate_limiter **out, size_t buckets, uint32_t rate_per_s,
			uint32_t burst);

/* Frees <rl>; NULL is fine. */
void rate_limiter_destroy(struct rate_limiter *rl);

/*
 * Takes one token from the bucket of <name> (1..64 bytes) at <now_s>:
 * true when there was one. A name not seen yet starts with a full bucket;
 * when every slot holds a bucket that is not full, new names are refused.
 */
bool rate_limiter_take(struct rate_limiter *rl, const char *name, int64_t now_s);

#endif
