/*
 * The login rate limit (loginlimit.h): a fixed table of keys ("ADDR" and
 * "ADDR USER") with their failure count, block end and last use, searched
 * linearly under a mutex (at most LOGIN_KEYS_MAX; logins are rare).
 */
#include "historian/loginlimit.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "historian/db.h"

enum { KEY_MAX = 64 + 1 + HIST_NAME_MAX }; /* an address, a space, a user */

struct limit_key {
	char key[KEY_MAX + 1]; /* "" when free */
	unsigned failures;
	int64_t blocked_until_ms, last_ms;
};

struct login_limit {
	pthread_mutex_t lock;
	struct limit_key keys[LOGIN_KEYS_MAX];
};

struct login_limit *login_limit_create(void)
{
	struct login_limit *l = calloc(1, sizeof(*l));

	if (l != NULL && pthread_mutex_init(&l->lock, NULL) != 0) {
		free(l);
		return NULL;
	}
	return l;
}

void login_limit_destroy(struct login_limit *l)
{
	if (l == NULL)
		return;
	pthread_mutex_destroy(&l->lock);
	free(l);
}

static bool forgotten(const struct limit_key *k, int64_t now_ms)
{
	return k->key[0] == '\0' ||
	       (now_ms >= k->blocked_until_ms && now_ms - k->last_ms > LOGIN_FORGET_MS);
}

/* The entry of <key>; with <add>, a new one (a free slot, a forgotten one,
 * else the one unused longest) when there is none. NULL otherwise. */
static struct limit_key *find(struct login_limit *l, const char *key, bool add, int64_t now_ms)
{
	struct limit_key *spare = NULL;

	for (size_t i = 0; i < LOGIN_KEYS_MAX; i++) {
		struct limit_key *k = &l->keys[i];
		if (k->key[0] != '\0' && strcmp(k->key, key) == 0)
			return k;
		if (spare == NULL || (!forgotten(spare, now_ms) &&
				      (forgotten(k, now_ms) || k->last_ms < spare->last_ms)))
			spare = k;
	}
	if (!add)
		return NULL;
	memset(spare, 0, sizeof(*spare));
	snprintf(spare->key, sizeof(spare->key), "%s", key);
	return spare;
}

static void pair_key(char out[KEY_MAX + 1], const char *addr, const char *user)
{
	snprintf(out, KEY_MAX + 1, "%.64s %s", addr, user);
}

static int64_t blocked_ms(struct login_limit *l, const char *key, int64_t now_ms)
{
	struct limit_key *k = find(l, key, false, now_ms);

	return k != NULL && k->blocked_until_ms > now_ms ? k->blocked_until_ms - now_ms : 0;
}

unsigned login_limit_wait_s(struct login_limit *l, const char *addr, const char *user,
			    int64_t now_ms)
{
	char pair[KEY_MAX + 1];
	int64_t a, p;

	pair_key(pair, addr, user);
	pthread_mutex_lock(&l->lock);
	a = blocked_ms(l, addr, now_ms);
	p = blocked_ms(l, pair, now_ms);
	pthread_mutex_unlock(&l->lock);
	if (p > a)
		a = p;
	return (unsigned)((a + 999) / 1000);
}

static void count_failure(struct login_limit *l, const char *key, unsigned free_failures,
			  int64_t now_ms)
{
	struct limit_key *k = find(l, key, true, now_ms);
	int64_t block = LOGIN_FIRST_BLOCK_MS;

	if (forgotten(k, now_ms))
		k->failures = 0;
	k->failures++;
	k->last_ms = now_ms;
	if (k->failures <= free_failures)
		return;
	for (unsigned i = free_failures + 1; i < k->failures && block < LOGIN_MAX_BLOCK_MS; i++)
		block *= 2;
	if (block > LOGIN_MAX_BLOCK_MS)
		block = LOGIN_MAX_BLOCK_MS;
	k->blocked_until_ms = now_ms + block;
}

void login_limit_failed(struct login_limit *l, const char *addr, const char *user, int64_t now_ms)
{
	char pair[KEY_MAX + 1];

	pair_key(pair, addr, user);
	pthread_mutex_lock(&l->lock);
	count_failure(l, addr, LOGIN_FREE_PER_ADDRESS, now_ms);
	count_failure(l, pair, LOGIN_FREE_PER_USER, now_ms);
	pthread_mutex_unlock(&l->lock);
}

void login_limit_succeeded(struct login_limit *l, const char *addr, const char *user)
{
	char pair[KEY_MAX + 1];
	struct limit_key *k;

	pair_key(pair, addr, user);
	pthread_mutex_lock(&l->lock);
	if ((k = find(l, pair, false, 0)) != NULL)
		memset(k, 0, sizeof(*k));
	pthread_mutex_unlock(&l->lock);
}
