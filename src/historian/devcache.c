/*
 * The device id cache: open addressing with linear probing over FNV-1a
 * hashes, grown at half full. Names are copied in.
 */
#include <stdlib.h>
#include <string.h>

#include <moat/error.h>

#include "historian/devcache.h"

struct devcache_slot {
	char *name; /* NULL: free */
	int64_t id;
};

static size_t hash(const char *s)
{
	uint64_t h = 1469598103934665603ULL;

	for (; *s != '\0'; s++)
		h = (h ^ (uint8_t)*s) * 1099511628211ULL;
	return (size_t)h;
}

static struct devcache_slot *find(const struct devcache *c, const char *name)
{
	size_t i = hash(name) & (c->cap - 1);

	while (c->slots[i].name != NULL && strcmp(c->slots[i].name, name) != 0)
		i = (i + 1) & (c->cap - 1);
	return &c->slots[i];
}

bool devcache_get(const struct devcache *c, const char *name, int64_t *id)
{
	const struct devcache_slot *s;

	if (c->cap == 0)
		return false;
	s = find(c, name);
	if (s->name == NULL)
		return false;
	*id = s->id;
	return true;
}

static int grow(struct devcache *c)
{
	struct devcache old = *c;

	c->cap = old.cap == 0 ? 64 : old.cap * 2;
	c->slots = calloc(c->cap, sizeof(*c->slots));
	if (c->slots == NULL) {
		*c = old;
		return MOAT_E_NOMEM;
	}
	for (size_t i = 0; i < old.cap; i++)
		if (old.slots[i].name != NULL)
			*find(c, old.slots[i].name) = old.slots[i];
	free(old.slots);
	return MOAT_OK;
}

int devcache_put(struct devcache *c, const char *name, int64_t id)
{
	struct devcache_slot *s;

	if ((c->used + 1) * 2 > c->cap && grow(c) < 0)
		return MOAT_E_NOMEM;
	s = find(c, name);
	if (s->name == NULL) {
		s->name = strdup(name);
		if (s->name == NULL)
			return MOAT_E_NOMEM;
		c->used++;
	}
	s->id = id;
	return MOAT_OK;
}

void devcache_fini(struct devcache *c)
{
	for (size_t i = 0; i < c->cap; i++)
		free(c->slots[i].name);
	free(c->slots);
	*c = (struct devcache){0};
}
