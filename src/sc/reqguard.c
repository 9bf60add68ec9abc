/*
 * Replay cache and token buckets for the key server (see reqguard.h):
 * open-addressing tables of fixed size, allocated once.
 */
#include "sc/reqguard.h"

#include <stdlib.h>
#include <string.h>

#include <moat/error.h>

#include "sc/registry.h"

/* ---- nonces ---- */

struct nonce_gen {
	uint8_t (*keys)[NONCE_KEY_LEN];
	bool *used;
	size_t count;
	int64_t start_s;
};

struct nonce_cache {
	struct nonce_gen gen[2]; /* [0] current, [1] previous */
	size_t cap, slots;	 /* slots = 2 * cap keeps probes short */
	int64_t ttl_s;
};

static int gen_init(struct nonce_gen *g, size_t slots)
{
	g->keys = calloc(slots, sizeof(*g->keys));
	g->used = calloc(slots, sizeof(*g->used));
	return g->keys != NULL && g->used != NULL ? MOAT_OK : MOAT_E_NOMEM;
}

static void gen_clear(struct nonce_gen *g, size_t slots, int64_t now_s)
{
	memset(g->used, 0, slots * sizeof(*g->used));
	g->count = 0;
	g->start_s = now_s;
}

int nonce_cache_create(struct nonce_cache **out, size_t cap, int64_t ttl_s)
{
	struct nonce_cache *c;

	if (cap < 4 || cap > SIZE_MAX / 4 / NONCE_KEY_LEN || ttl_s <= 0)
		return MOAT_E_INVAL;
	c = calloc(1, sizeof(*c));
	if (c == NULL)
		return MOAT_E_NOMEM;
	c->cap = cap;
	c->slots = 2 * cap;
	c->ttl_s = ttl_s;
	if (gen_init(&c->gen[0], c->slots) < 0 || gen_init(&c->gen[1], c->slots) < 0) {
		nonce_cache_destroy(c);
		return MOAT_E_NOMEM;
	}
	*out = c;
	return MOAT_OK;
}

void nonce_cache_destroy(struct nonce_cache *c)
{
	if (c == NULL)
		return;
	for (int i = 0; i < 2; i++) {
		free(c->gen[i].keys);
		free(c->gen[i].used);
	}
	free(c);
}

static size_t slot_of(const uint8_t key[NONCE_KEY_LEN], size_t slots)
{
	uint64_t h;

	memcpy(&h, key, sizeof(h)); /* keys are hashes already */
	return (size_t)(h % slots);
}

/* The slot holding <key>, or the free slot where it would go. */
static size_t probe(const struct nonce_gen *g, size_t slots, const uint8_t key[NONCE_KEY_LEN])
{
	size_t i = slot_of(key, slots);

	while (g->used[i] && memcmp(g->keys[i], key, NONCE_KEY_LEN) != 0)
		i = (i + 1) % slots;
	return i;
}

int nonce_cache_check(struct nonce_cache *c, const uint8_t key[NONCE_KEY_LEN], int64_t now_s)
{
	struct nonce_gen *cur = &c->gen[0], *prev = &c->gen[1];
	size_t i;

	if (now_s - cur->start_s >= 2 * c->ttl_s) {
		gen_clear(cur, c->slots, now_s);
		gen_clear(prev, c->slots, now_s);
	} else if (now_s - cur->start_s >= c->ttl_s) {
		struct nonce_gen t = *prev;

		*prev = *cur;
		*cur = t;
		gen_clear(cur, c->slots, now_s);
	}
	if (prev->count > 0 && prev->used[probe(prev, c->slots, key)])
		return MOAT_E_DENIED;
	i = probe(cur, c->slots, key);
	if (cur->used[i])
		return MOAT_E_DENIED;
	if (cur->count >= c->cap)
		return MOAT_E_LIMIT;
	memcpy(cur->keys[i], key, NONCE_KEY_LEN);
	cur->used[i] = true;
	cur->count++;
	return MOAT_OK;
}

/* ---- token buckets ---- */

struct bucket {
	char name[REG_NAME_MAX + 1]; /* "" = free */
	double tokens;
	int64_t last_s;
};

struct rate_limiter {
	struct bucket *b;
	size_t n;
	double rate, burst;
};

int rate_limiter_create(struct rate_limiter **out, size_t buckets, uint32_t rate_per_s,
			uint32_t burst)
{
	struct rate_limiter *rl;

	if (buckets == 0 || rate_per_s == 0 || burst == 0)
		return MOAT_E_INVAL;
	rl = calloc(1, sizeof(*rl));
	if (rl == NULL)
		return MOAT_E_NOMEM;
	rl->b = calloc(buckets, sizeof(*rl->b));
	if (rl->b == NULL) {
		free(rl);
		return MOAT_E_NOMEM;
	}
	rl->n = buckets;
	rl->rate = rate_per_s;
	rl->burst = burst;
	*out = rl;
	return MOAT_OK;
}

void rate_limiter_destroy(struct rate_limiter *rl)
{
	if (rl == NULL)
		return;
	free(rl->b);
	free(rl);
}

static double refilled(const struct rate_limiter *rl, const struct bucket *b, int64_t now_s)
{
	double t = b->tokens;

	if (now_s > b->last_s)
		t += (double)(now_s - b->last_s) * rl->rate;
	return t < rl->burst ? t : rl->burst;
}

static size_t name_hash(const char *name)
{
	uint64_t h = 1469598103934665603u; /* FNV-1a */

	for (; *name != '\0'; name++)
		h = (h ^ (uint8_t)*name) * 1099511628211u;
	return (size_t)h;
}

bool rate_limiter_take(struct rate_limiter *rl, const char *name, int64_t now_s)
{
	size_t n = strnlen(name, REG_NAME_MAX + 1), start, reuse = SIZE_MAX;
	struct bucket *b = NULL;

	if (n == 0 || n > REG_NAME_MAX)
		return false;
	start = name_hash(name) % rl->n;
	/* a bucket that has refilled completely is as good as a free slot */
	for (size_t k = 0; k < rl->n && b == NULL; k++) {
		struct bucket *s = &rl->b[(start + k) % rl->n];

		if (strcmp(s->name, name) == 0)
			b = s;
		else if (reuse == SIZE_MAX &&
			 (s->name[0] == '\0' || refilled(rl, s, now_s) >= rl->burst))
			reuse = (start + k) % rl->n;
		if (s->name[0] == '\0')
			break; /* no entry for <name> past a never-used slot */
	}
	if (b == NULL) {
		if (reuse == SIZE_MAX)
			return false;
		b = &rl->b[reuse];
		memcpy(b->name, name, n + 1);
		b->tokens = rl->burst;
		b->last_s = now_s;
	}
	b->tokens = refilled(rl, b, now_s);
	if (now_s > b->last_s)
		b->last_s = now_s;
	if (b->tokens < 1.0)
		return false;
	b->tokens -= 1.0;
	return true;
}
