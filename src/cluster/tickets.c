/*
 * A worker's contiguous JetStream acknowledgement mark (tickets.h): early
 * acknowledgements wait, sorted, until the gap below them closes.
 */
#include "cluster/tickets.h"

#include <stdlib.h>
#include <string.h>

#include <moat/error.h>

/* Inserts <ticket> in t->early (sorted, no duplicates). */
static int add_early(struct tickets *t, uint64_t ticket)
{
	size_t i = t->early_n;

	while (i > 0 && t->early[i - 1] > ticket)
		i--;
	if (i > 0 && t->early[i - 1] == ticket)
		return MOAT_OK;
	if (t->early_n == t->early_cap) {
		size_t cap = t->early_cap != 0 ? t->early_cap * 2 : 16;
		uint64_t *p = realloc(t->early, cap * sizeof(*p));

		if (p == NULL)
			return MOAT_E_NOMEM;
		t->early = p;
		t->early_cap = cap;
	}
	memmove(&t->early[i + 1], &t->early[i], (t->early_n - i) * sizeof(*t->early));
	t->early[i] = ticket;
	t->early_n++;
	return MOAT_OK;
}

int tickets_done(struct tickets *t, uint64_t ticket, uint64_t *stored)
{
	size_t i = 0;
	int rc = MOAT_OK;

	if (ticket > t->stored + 1)
		rc = add_early(t, ticket);
	else if (ticket == t->stored + 1)
		t->stored = ticket;
	while (i < t->early_n && t->early[i] <= t->stored + 1) {
		if (t->early[i] == t->stored + 1)
			t->stored++;
		i++;
	}
	if (i > 0) {
		memmove(t->early, &t->early[i], (t->early_n - i) * sizeof(*t->early));
		t->early_n -= i;
	}
	*stored = t->stored;
	return rc;
}

void tickets_fini(struct tickets *t)
{
	free(t->early);
	*t = (struct tickets){0};
}
