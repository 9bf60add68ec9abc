/*
 * The cluster's outbound queue (docs/cluster.md, "When NATS is
 * unreachable"): copies a node could not hand to JetStream wait here, in
 * the order they were exported, until they are sent and JetStream has
 * acknowledged them. Each entry has a sequence number (its store key when
 * persistence is on), a subject and the wire bytes. The queue is bounded
 * by the bytes its entries hold, and the bytes reserved for entries to
 * come (a PUBLISH accepted only if its copies have room, outq_reserve).
 * Pure bookkeeping, no NATS and no store; not locked: the caller
 * serialises.
 */
#ifndef MOAT_CLUSTER_OUTQ_H
#define MOAT_CLUSTER_OUTQ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct outq_entry {
	uint64_t seq;
	bool sent;	 /* handed to NATS, its acknowledgement awaited */
	bool acked;	 /* acknowledged out of order: leaves once it is first */
	unsigned holder; /* not to be sent yet: held by its queuer (outq_release); 0 = free */
	bool beyond;	 /* outside the bound (outq_push_beyond) */
	char *subject;
	uint8_t *data;
	size_t len;
};

struct outq {
	struct outq_entry *v; /* v[head .. head + n), oldest first */
	size_t head, n, cap;
	uint64_t bytes, max_bytes; /* subject + data bytes held; the bound (0 = none) */
	uint64_t next_seq;	   /* the next entry's number (> every held one; may be set higher) */
	size_t sent;		   /* entries sent and not yet acknowledged */
	/* of <n> and <bytes>, the entries outside the bound (outq_push_beyond) */
	size_t beyond_n;
	uint64_t beyond_bytes;
	uint64_t reserved; /* bytes reserved for entries to come (outq_reserve) */
};

/* An empty queue of at most <max_bytes> (0 = unbounded). */
void outq_init(struct outq *q, uint64_t max_bytes);
void outq_fini(struct outq *q);

/* The bytes an entry of <subject> and <len> data bytes counts for. */
uint64_t outq_entry_bytes(const char *subject, size_t len);

/* Appends a copy of <subject> and <data> as entry <seq> (0: the next
 * number), which must be above every held one, held by <holder> (0: none);
 * the next number stays above <seq> (it never goes down).
 * MOAT_OK, MOAT_E_LIMIT (it would go over max_bytes, counting every
 * reservation) or MOAT_E_NOMEM; then nothing changed. */
int outq_push(struct outq *q, uint64_t seq, const char *subject, const uint8_t *data, size_t len,
	      unsigned holder);
/* Whether entries of <bytes> fit within the bound beside <outside> bytes it
 * also counts (held elsewhere) and every reservation but <reservation>. */
bool outq_fits(const struct outq *q, uint64_t bytes, uint64_t outside, uint64_t reservation);
/* Reserves <bytes> within the bound (outq_fits) for its holder's entries to
 * come: MOAT_OK and *<reservation> grows by <bytes>, or MOAT_E_LIMIT and
 * nothing changed. */
int outq_reserve(struct outq *q, uint64_t *reservation, uint64_t bytes, uint64_t outside);
/* <bytes> of *<reservation> are used (as much as it still holds). */
void outq_consume(struct outq *q, uint64_t *reservation, uint64_t bytes);
/* Gives back what is left of *<reservation> (0 afterwards). */
void outq_unreserve(struct outq *q, uint64_t *reservation);
/* outq_push for the holder of *<reservation>, which the entry uses first:
 * refused (MOAT_E_LIMIT) unless it fits (outq_fits) beside <outside>. */
int outq_push_reserved(struct outq *q, uint64_t seq, const char *subject, const uint8_t *data,
		       size_t len, unsigned holder, uint64_t outside, uint64_t *reservation);
/* outq_push, but the entry neither counts against max_bytes nor is
 * refused by it (a session's handed-over messages, docs/cluster.md). */
int outq_push_beyond(struct outq *q, uint64_t seq, const char *subject, const uint8_t *data,
		     size_t len, unsigned holder);
/* Frees the newest <n> entries held by <holder> (its queuer submitted their
 * store writes: a deletion submitted later cannot come first). */
void outq_release(struct outq *q, unsigned holder, size_t n);

/* The oldest entry not sent yet, marked sent; NULL when there is none, it
 * is held, or <window> entries already wait for their acknowledgement. */
const struct outq_entry *outq_take(struct outq *q, size_t window);

/* Entry <seq> was acknowledged: it leaves (with every acknowledged entry
 * now at the front). False when it is not held (acknowledged before). */
bool outq_acked(struct outq *q, uint64_t seq);
/* Entry <seq> was not stored (refused, timed out): it is sent again. */
void outq_unsent(struct outq *q, uint64_t seq);
/* Every sent entry is sent again (the connection was lost). */
void outq_unsend_all(struct outq *q);

static inline bool outq_empty(const struct outq *q)
{
	return q->n == 0;
}

/* Whether every entry is outside the bound (none is: outq_empty). */
static inline bool outq_only_beyond(const struct outq *q)
{
	return q->n == q->beyond_n;
}

/* The bytes the entries within the bound hold. */
static inline uint64_t outq_bounded_bytes(const struct outq *q)
{
	return q->bytes - q->beyond_bytes;
}

/* The oldest entry, or NULL. */
static inline const struct outq_entry *outq_front(const struct outq *q)
{
	return q->n != 0 ? &q->v[q->head] : NULL;
}

#endif
