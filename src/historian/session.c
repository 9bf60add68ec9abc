/*
 * Login sessions (session.h): a fixed table under a mutex, ids and tokens
 * from libsodium's randombytes_buf, compared with sodium_memcmp, wiped with
 * sodium_memzero when they end.
 */
#include "historian/session.h"

#include <pthread.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "moat/error.h"

struct session {
	bool used;
	char id[SESSION_HEX_LEN + 1];
	char csrf[SESSION_HEX_LEN + 1];
	char user[HIST_NAME_MAX + 1];
	int64_t last_ms;
};

struct sessions {
	pthread_mutex_t lock;
	struct session tab[SESSION_MAX];
};

struct sessions *sessions_create(void)
{
	struct sessions *s;

	if (sodium_init() < 0)
		return NULL;
	s = calloc(1, sizeof(*s));
	if (s != NULL)
		pthread_mutex_init(&s->lock, NULL);
	return s;
}

void sessions_destroy(struct sessions *s)
{
	if (s == NULL)
		return;
	sodium_memzero(s->tab, sizeof(s->tab));
	pthread_mutex_destroy(&s->lock);
	free(s);
}

bool sessions_token_equal(const char *a, const char *b)
{
	size_t n = strlen(b);
	if (strlen(a) != n || n != SESSION_HEX_LEN)
		return false;
	return sodium_memcmp(a, b, n) == 0;
}

static void random_hex(char out[SESSION_HEX_LEN + 1])
{
	unsigned char raw[SESSION_HEX_LEN / 2];

	randombytes_buf(raw, sizeof(raw));
	sodium_bin2hex(out, SESSION_HEX_LEN + 1, raw, sizeof(raw));
	sodium_memzero(raw, sizeof(raw));
}

int sessions_open(struct sessions *s, const char *user, int64_t now_ms,
		  char id[SESSION_HEX_LEN + 1], char csrf[SESSION_HEX_LEN + 1])
{
	struct session *slot = NULL;

	pthread_mutex_lock(&s->lock);
	for (size_t i = 0; i < SESSION_MAX; i++) {
		struct session *t = &s->tab[i];
		if (t->used && now_ms - t->last_ms > SESSION_IDLE_MS)
			t->used = false;
		if (!t->used) {
			if (slot == NULL || slot->used)
				slot = t;
		} else if (slot == NULL || (slot->used && t->last_ms < slot->last_ms)) {
			slot = t; /* the oldest, used only when the table is full */
		}
	}
	sodium_memzero(slot, sizeof(*slot));
	slot->used = true;
	random_hex(slot->id);
	random_hex(slot->csrf);
	snprintf(slot->user, sizeof(slot->user), "%s", user);
	slot->last_ms = now_ms;
	memcpy(id, slot->id, SESSION_HEX_LEN + 1);
	memcpy(csrf, slot->csrf, SESSION_HEX_LEN + 1);
	pthread_mutex_unlock(&s->lock);
	return MOAT_OK;
}

/* The live session <id>, or NULL; with the lock held. */
static struct session *lookup(struct sessions *s, const char *id, int64_t now_ms)
{
	struct session *found = NULL;

	for (size_t i = 0; i < SESSION_MAX; i++) {
		struct session *t = &s->tab[i];
		if (t->used && sessions_token_equal(id, t->id))
			found = t;
	}
	if (found != NULL && now_ms - found->last_ms > SESSION_IDLE_MS) {
		sodium_memzero(found, sizeof(*found));
		found = NULL;
	}
	return found;
}

bool sessions_find(struct sessions *s, const char *id, int64_t now_ms, char user[HIST_NAME_MAX + 1],
		   char csrf[SESSION_HEX_LEN + 1])
{
	struct session *t;

	pthread_mutex_lock(&s->lock);
	t = lookup(s, id, now_ms);
	if (t != NULL) {
		t->last_ms = now_ms;
		memcpy(user, t->user, HIST_NAME_MAX + 1);
		memcpy(csrf, t->csrf, SESSION_HEX_LEN + 1);
	}
	pthread_mutex_unlock(&s->lock);
	return t != NULL;
}

void sessions_close(struct sessions *s, const char *id)
{
	struct session *t;

	pthread_mutex_lock(&s->lock);
	t = lookup(s, id, 0);
	if (t != NULL)
		sodium_memzero(t, sizeof(*t));
	pthread_mutex_unlock(&s->lock);
}
