/*
 * moat-device: a binary min-heap of wake-up times keyed by device index
 * (wake_heap.h). slot[] lets wake_heap_set move a queued id in O(log N).
 */
#include "device/wake_heap.h"

#include <stdlib.h>

#include <moat/error.h>

int wake_heap_init(struct wake_heap *h, size_t cap)
{
	h->ids = calloc(cap, sizeof(*h->ids));
	h->slot = calloc(cap, sizeof(*h->slot));
	h->at_ms = calloc(cap, sizeof(*h->at_ms));
	h->len = 0;
	h->cap = cap;
	if (cap > 0 && (h->ids == NULL || h->slot == NULL || h->at_ms == NULL)) {
		wake_heap_fini(h);
		return MOAT_E_NOMEM;
	}
	return MOAT_OK;
}

void wake_heap_fini(struct wake_heap *h)
{
	free(h->ids);
	free(h->slot);
	free(h->at_ms);
	*h = (struct wake_heap){0};
}

static bool earlier(const struct wake_heap *h, size_t a, size_t b)
{
	return h->at_ms[h->ids[a]] < h->at_ms[h->ids[b]];
}

static void swap(struct wake_heap *h, size_t a, size_t b)
{
	size_t id = h->ids[a];

	h->ids[a] = h->ids[b];
	h->ids[b] = id;
	h->slot[h->ids[a]] = a + 1;
	h->slot[h->ids[b]] = b + 1;
}

static void sift_up(struct wake_heap *h, size_t i)
{
	while (i > 0 && earlier(h, i, (i - 1) / 2)) {
		swap(h, i, (i - 1) / 2);
		i = (i - 1) / 2;
	}
}

static void sift_down(struct wake_heap *h, size_t i)
{
	for (;;) {
		size_t first = i, l = 2 * i + 1, r = l + 1;

		if (l < h->len && earlier(h, l, first))
			first = l;
		if (r < h->len && earlier(h, r, first))
			first = r;
		if (first == i)
			return;
		swap(h, i, first);
		i = first;
	}
}

void wake_heap_set(struct wake_heap *h, size_t id, uint64_t at_ms)
{
	size_t i;

	h->at_ms[id] = at_ms;
	if (h->slot[id] == 0) {
		i = h->len++;
		h->ids[i] = id;
		h->slot[id] = i + 1;
	} else {
		i = h->slot[id] - 1;
	}
	sift_up(h, i);
	sift_down(h, h->slot[id] - 1);
}

uint64_t wake_heap_next_ms(const struct wake_heap *h)
{
	return h->len > 0 ? h->at_ms[h->ids[0]] : UINT64_MAX;
}

bool wake_heap_pop_due(struct wake_heap *h, uint64_t now_ms, size_t *id)
{
	if (h->len == 0 || h->at_ms[h->ids[0]] > now_ms)
		return false;
	*id = h->ids[0];
	swap(h, 0, h->len - 1);
	h->len--;
	h->slot[*id] = 0;
	sift_down(h, 0);
	return true;
}
