/*
 * The cluster's outbound queue (outq.h): a growable ring of entries in
 * export order, each owning one allocation for its subject and data.
 */
#include "cluster/outq.h"

#include <stdlib.h>
#include <string.h>

#include <moat/error.h>

void outq_init(struct outq *q, uint64_t max_bytes)
{
	*q = (struct outq){.max_bytes = max_bytes, .next_seq = 1};
}

static struct outq_entry *at(const struct outq *q, size_t i)
{
	return &q->v[(q->head + i) % q->cap];
}

void outq_fini(struct outq *q)
{
	for (size_t i = 0; i < q->n; i++)
		free(at(q, i)->subject);
	free(q->v);
	*q = (struct outq){0};
}

uint64_t outq_entry_bytes(const char *subject, size_t len)
{
	return (uint64_t)strlen(subject) + len;
}

/* Doubles the ring, unrolling it so head is 0. */
static int grow(struct outq *q)
{
	size_t cap = q->cap != 0 ? q->cap * 2 : 64;
	struct outq_entry *v = malloc(cap * sizeof(*v));

	if (v == NULL)
		return MOAT_E_NOMEM;
	for (size_t i = 0; i < q->n; i++)
		v[i] = *at(q, i);
	free(q->v);
	q->v = v;
	q->cap = cap;
	q->head = 0;
	return MOAT_OK;
}

/* Appends entry <seq> (see outq_push), <beyond> the bound or not. */
static int append(struct outq *q, uint64_t seq, const char *subject, const uint8_t *data,
		  size_t len, unsigned holder, bool beyond)
{
	size_t slen = strlen(subject) + 1;
	uint64_t bytes = outq_entry_bytes(subject, len);
	struct outq_entry *e;
	char *mem;

	if (q->n == q->cap && grow(q) < 0)
		return MOAT_E_NOMEM;
	mem = malloc(slen + len);
	if (mem == NULL)
		return MOAT_E_NOMEM;
	memcpy(mem, subject, slen);
	if (len > 0)
		memcpy(mem + slen, data, len);
	if (seq == 0)
		seq = q->next_seq;
	e = at(q, q->n++);
	*e = (struct outq_entry){.seq = seq,
				 .subject = mem,
				 .data = (uint8_t *)mem + slen,
				 .len = len,
				 .holder = holder,
				 .beyond = beyond};
	if (seq >= q->next_seq)
		q->next_seq = seq + 1;
	q->bytes += bytes;
	if (beyond) {
		q->beyond_n++;
		q->beyond_bytes += bytes;
	}
	return MOAT_OK;
}

bool outq_fits(const struct outq *q, uint64_t bytes, uint64_t outside, uint64_t reservation)
{
	return q->max_bytes == 0 ||
	       outq_bounded_bytes(q) + (q->reserved - reservation) + outside + bytes <=
		   q->max_bytes;
}

int outq_reserve(struct outq *q, uint64_t *reservation, uint64_t bytes, uint64_t outside)
{
	if (!outq_fits(q, bytes, outside, 0))
		return MOAT_E_LIMIT;
	q->reserved += bytes;
	*reservation += bytes;
	return MOAT_OK;
}

void outq_consume(struct outq *q, uint64_t *reservation, uint64_t bytes)
{
	uint64_t used = bytes < *reservation ? bytes : *reservation;

	q->reserved -= used;
	*reservation -= used;
}

void outq_unreserve(struct outq *q, uint64_t *reservation)
{
	outq_consume(q, reservation, *reservation);
}

int outq_push_reserved(struct outq *q, uint64_t seq, const char *subject, const uint8_t *data,
		       size_t len, unsigned holder, uint64_t outside, uint64_t *reservation)
{
	uint64_t bytes = outq_entry_bytes(subject, len);
	int rc;

	if (!outq_fits(q, bytes, outside, *reservation))
		return MOAT_E_LIMIT;
	rc = append(q, seq, subject, data, len, holder, false);
	if (rc == MOAT_OK)
		outq_consume(q, reservation, bytes);
	return rc;
}

int outq_push(struct outq *q, uint64_t seq, const char *subject, const uint8_t *data, size_t len,
	      unsigned holder)
{
	uint64_t none = 0;

	return outq_push_reserved(q, seq, subject, data, len, holder, 0, &none);
}

int outq_push_beyond(struct outq *q, uint64_t seq, const char *subject, const uint8_t *data,
		     size_t len, unsigned holder)
{
	return append(q, seq, subject, data, len, holder, true);
}

void outq_release(struct outq *q, unsigned holder, size_t n)
{
	for (size_t i = q->n; i > 0 && n > 0; i--) {
		struct outq_entry *e = at(q, i - 1);

		if (e->holder == holder) {
			e->holder = 0;
			n--;
		}
	}
}

const struct outq_entry *outq_take(struct outq *q, size_t window)
{
	if (q->sent >= window)
		return NULL;
	for (size_t i = 0; i < q->n; i++) {
		struct outq_entry *e = at(q, i);

		if (e->holder != 0 && !e->sent && !e->acked)
			return NULL; /* the order holds: nothing newer goes first */
		if (!e->sent && !e->acked) {
			e->sent = true;
			q->sent++;
			return e;
		}
	}
	return NULL;
}

/* The held entry numbered <seq>, or NULL (numbers grow from head on). */
static struct outq_entry *find(const struct outq *q, uint64_t seq)
{
	size_t lo = 0, hi = q->n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (at(q, mid)->seq < seq)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < q->n && at(q, lo)->seq == seq ? at(q, lo) : NULL;
}

bool outq_acked(struct outq *q, uint64_t seq)
{
	struct outq_entry *e = find(q, seq);

	if (e == NULL || e->acked)
		return false;
	if (e->sent)
		q->sent--;
	e->sent = false;
	e->acked = true;
	e->holder = 0; /* never sent now: not counted as held */
	while (q->n > 0 && at(q, 0)->acked) {
		uint64_t bytes;

		e = at(q, 0);
		bytes = outq_entry_bytes(e->subject, e->len);
		q->bytes -= bytes;
		if (e->beyond) {
			q->beyond_n--;
			q->beyond_bytes -= bytes;
		}
		free(e->subject);
		q->head = (q->head + 1) % q->cap;
		q->n--;
	}
	return true;
}

void outq_unsent(struct outq *q, uint64_t seq)
{
	struct outq_entry *e = find(q, seq);

	if (e != NULL && e->sent) {
		e->sent = false;
		q->sent--;
	}
}

void outq_unsend_all(struct outq *q)
{
	for (size_t i = 0; i < q->n; i++)
		at(q, i)->sent = false;
	q->sent = 0;
}
