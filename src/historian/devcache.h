/*
 * Device name -> row id, remembered per storage handle so ingest looks a
 * device up in the database once. Ids never change (devices are never
 * deleted), so a cached id stays right while other handles write.
 */
#ifndef MOAT_HISTORIAN_DEVCACHE_H
#define MOAT_HISTORIAN_DEVCACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct devcache {
	struct devcache_slot *slots; /* NULL until the first put */
	size_t cap, used;	     /* cap is 0 or a power of two */
};

/* Stores the id of <name> in *<id> and returns true when it is cached. */
bool devcache_get(const struct devcache *c, const char *name, int64_t *id);

/* Remembers <name> -> <id> (copying the name). MOAT_OK or MOAT_E_NOMEM. */
int devcache_put(struct devcache *c, const char *name, int64_t id);

/* Frees what <c> holds; it is empty and reusable afterwards. */
void devcache_fini(struct devcache *c);

#endif
