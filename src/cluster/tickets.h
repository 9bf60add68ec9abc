/*
 * A worker's JetStream tickets (see gate.c): tickets are issued 1, 2, 3...
 * and acknowledged in any order; <stored> is the highest ticket below which
 * every ticket is acknowledged, so a connection's answer waiting for ticket
 * n leaves only once n and every ticket before it are stored. Not locked:
 * the caller serialises.
 */
#ifndef MOAT_CLUSTER_TICKETS_H
#define MOAT_CLUSTER_TICKETS_H

#include <stddef.h>
#include <stdint.h>

struct tickets {
	uint64_t stored; /* 1..stored all acknowledged */
	uint64_t *early; /* acknowledged above stored + 1, sorted */
	size_t early_n, early_cap;
};

/* Ticket <ticket> is acknowledged: returns the new <stored>. A ticket seen
 * before is ignored; MOAT_E_NOMEM (the mark unchanged, <ticket> forgotten:
 * its answer waits until the connection closes) when out of memory. */
int tickets_done(struct tickets *t, uint64_t ticket, uint64_t *stored);
void tickets_fini(struct tickets *t);

#endif
