/*
 * Per-address limits (see addr_limits.h): a chained hash table of small
 * entries, freed as soon as an address has no connection open and nothing
 * to remember.
 */
#include "broker/addr_limits.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <moat/error.h>

enum { RATE_WINDOW_MS = 10000, FIRST_DELAY_MS = 100, FAILURES_FORGOTTEN_MS = 600000 };

struct addr_entry {
	struct addr_entry *next;
	uint32_t open;			/* connections now */
	uint64_t rate_credit;		/* connections allowed now, in 1/RATE_WINDOW_MS units */
	uint64_t rate_updated_ms;	/* when rate_credit was last refilled; 0 = never */
	uint32_t failures;		/* authentication failures in a row */
	uint64_t last_failure_ms;
	char addr[];
};

static size_t hash_str(const char *s)
{
	uint64_t h = 1469598103934665603ull;	/* FNV-1a */

	for (; *s != '\0'; s++)
		h = (h ^ (uint8_t)*s) * 1099511628211ull;
	return (size_t)h;
}

int addr_limits_init(struct addr_limits *a, const struct moat_config *cfg)
{
	*a = (struct addr_limits){ .cfg = cfg, .bucket_count = 1024 };
	a->buckets = calloc(a->bucket_count, sizeof(*a->buckets));
	if (a->buckets == NULL)
		return MOAT_E_NOMEM;
	pthread_mutex_init(&a->lock, NULL);
	return MOAT_OK;
}

void addr_limits_fini(struct addr_limits *a)
{
	if (a->buckets == NULL)
		return;
	for (size_t i = 0; i < a->bucket_count; i++) {
		while (a->buckets[i] != NULL) {
			struct addr_entry *e = a->buckets[i];

			a->buckets[i] = e->next;
			free(e);
		}
	}
	free(a->buckets);
	a->buckets = NULL;
	pthread_mutex_destroy(&a->lock);
}

/* Where <addr>'s entry is, or would be linked. */
static struct addr_entry **find(struct addr_limits *a, const char *addr)
{
	struct addr_entry **pp = &a->buckets[hash_str(addr) % a->bucket_count];

	while (*pp != NULL && strcmp((*pp)->addr, addr) != 0)
		pp = &(*pp)->next;
	return pp;
}

/* <addr>'s entry, created when absent; NULL when out of memory. */
static struct addr_entry *get(struct addr_limits *a, const char *addr)
{
	struct addr_entry **pp = find(a, addr);
	size_t len = strlen(addr);

	if (*pp == NULL) {
		*pp = calloc(1, sizeof(**pp) + len + 1);
		if (*pp == NULL)
			return NULL;
		memcpy((*pp)->addr, addr, len + 1);
		a->entry_count++;
	}
	return *pp;
}

/*
 * The connection rate is a token bucket: it holds up to N connections
 * (connection_rate_per_address) and refills at N per RATE_WINDOW_MS, so no
 * span of that length admits more than N plus what refilled within it (a
 * counter reset every window let 2N through across a window's edge). The
 * credit is kept in units of 1/RATE_WINDOW_MS connection, so refilling needs
 * no division: each millisecond adds N units and a connection costs
 * RATE_WINDOW_MS units.
 */
static uint64_t rate_full(uint32_t n)
{
	return (uint64_t)n * RATE_WINDOW_MS;
}

/* Refills <e>'s credit up to <now_ms>; an entry never used starts full. */
static void rate_refill(struct addr_entry *e, uint32_t n, uint64_t now_ms)
{
	uint64_t elapsed = now_ms - e->rate_updated_ms;

	if (e->rate_updated_ms == 0 || elapsed >= RATE_WINDOW_MS)
		e->rate_credit = rate_full(n);
	else
		e->rate_credit += elapsed * n;
	if (e->rate_credit > rate_full(n))
		e->rate_credit = rate_full(n);
	e->rate_updated_ms = now_ms;
}

/* Takes one connection's credit from <e>; false when there is none. */
static bool rate_take(struct addr_entry *e, uint32_t n, uint64_t now_ms)
{
	rate_refill(e, n, now_ms);
	if (e->rate_credit < RATE_WINDOW_MS)
		return false;
	e->rate_credit -= RATE_WINDOW_MS;
	return true;
}

/* Frees <addr>'s entry once it holds nothing worth remembering. */
static void maybe_forget(struct addr_limits *a, const char *addr, uint64_t now_ms)
{
	struct addr_entry **pp = find(a, addr), *e = *pp;

	if (e == NULL || e->open > 0 ||
	    (e->failures > 0 && now_ms - e->last_failure_ms <= FAILURES_FORGOTTEN_MS) ||
	    (a->cfg->connection_rate_per_address > 0 && now_ms - e->rate_updated_ms < RATE_WINDOW_MS))
		return;
	*pp = e->next;
	free(e);
	a->entry_count--;
}

int addr_admit(struct addr_limits *a, const char *addr, uint64_t now_ms, const char **why)
{
	const struct moat_config *cfg = a->cfg;
	struct addr_entry *e;
	int rc = MOAT_OK;

	pthread_mutex_lock(&a->lock);
	e = get(a, addr);
	if (e == NULL) {
		pthread_mutex_unlock(&a->lock);
		return MOAT_OK;	/* out of memory: do not refuse for our own shortage */
	}
	e->open++;
	if (cfg->max_connections_per_address > 0 && e->open > cfg->max_connections_per_address) {
		*why = "too many connections from this address (max_connections_per_address)";
		rc = MOAT_E_LIMIT;
	} else if (cfg->connection_rate_per_address > 0 &&
		   !rate_take(e, cfg->connection_rate_per_address, now_ms)) {
		*why = "connection rate from this address exceeded (connection_rate_per_address)";
		rc = MOAT_E_LIMIT;
	}
	pthread_mutex_unlock(&a->lock);
	return rc;
}

void addr_release(struct addr_limits *a, const char *addr, uint64_t now_ms)
{
	struct addr_entry *e;

	pthread_mutex_lock(&a->lock);
	e = *find(a, addr);
	if (e != NULL && e->open > 0) {
		e->open--;
		maybe_forget(a, addr, now_ms);
	}
	pthread_mutex_unlock(&a->lock);
}

uint32_t addr_auth_failed(struct addr_limits *a, const char *addr, uint64_t now_ms)
{
	uint32_t max = a->cfg->auth_fail_delay_max_ms, delay;
	struct addr_entry *e;

	pthread_mutex_lock(&a->lock);
	e = get(a, addr);
	if (e == NULL) {
		pthread_mutex_unlock(&a->lock);
		return max;
	}
	if (e->failures > 0 && now_ms - e->last_failure_ms > FAILURES_FORGOTTEN_MS)
		e->failures = 0;
	e->failures++;
	e->last_failure_ms = now_ms;
	delay = e->failures > 20 ? max : (uint32_t)FIRST_DELAY_MS << (e->failures - 1);
	pthread_mutex_unlock(&a->lock);
	return delay < max ? delay : max;
}

void addr_auth_succeeded(struct addr_limits *a, const char *addr)
{
	struct addr_entry *e;

	pthread_mutex_lock(&a->lock);
	e = *find(a, addr);
	if (e != NULL)
		e->failures = 0;
	pthread_mutex_unlock(&a->lock);
}

uint32_t addr_failures(struct addr_limits *a, const char *addr)
{
	struct addr_entry *e;
	uint32_t n;

	pthread_mutex_lock(&a->lock);
	e = *find(a, addr);
	n = e != NULL ? e->failures : 0;
	pthread_mutex_unlock(&a->lock);
	return n;
}
