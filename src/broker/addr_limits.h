/*
 * Limits per client address, shared by every worker under one mutex:
 * connections open at once (max_connections_per_address), new connections
 * per 10 s as a token bucket (connection_rate_per_address), and the growing delay before an
 * address hears that its authentication failed (auth_fail_delay_max), so
 * guessing passwords gets slower with every failure while other addresses
 * are not slowed at all.
 */
#ifndef MOAT_BROKER_ADDR_LIMITS_H
#define MOAT_BROKER_ADDR_LIMITS_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include "conf/config.h"

struct addr_entry;

struct addr_limits {
	pthread_mutex_t lock;
	const struct moat_config *cfg;
	struct addr_entry **buckets;
	size_t bucket_count, entry_count;
};

int addr_limits_init(struct addr_limits *a, const struct moat_config *cfg);
void addr_limits_fini(struct addr_limits *a);

/* Counts a new connection from <addr>. Returns MOAT_OK, or MOAT_E_LIMIT with
 * *<why> set when the address has too many connections open or opened too
 * many in the last 10 s; the connection is counted either way, so every
 * call is paired with addr_release(). */
int addr_admit(struct addr_limits *a, const char *addr, uint64_t now_ms, const char **why);
/* A connection from <addr> closed at <now_ms>. */
void addr_release(struct addr_limits *a, const char *addr, uint64_t now_ms);
/* An authentication from <addr> failed: returns how long to wait before
 * saying so (100 ms, doubling per failure in a row, up to the ceiling). */
uint32_t addr_auth_failed(struct addr_limits *a, const char *addr, uint64_t now_ms);
/* An authentication from <addr> succeeded: failures are forgotten. */
void addr_auth_succeeded(struct addr_limits *a, const char *addr);
/* Failures counted for <addr> (for tests and $SYS). */
uint32_t addr_failures(struct addr_limits *a, const char *addr);

#endif
