/*
 * 64-entry sliding anti-replay window (see replay.h).
 */
#include "e2e/replay.h"

#include <moat/error.h>

void replay_init(struct replay_window *w)
{
	w->top = 0;
	w->seen = 0;
	w->any = false;
}

int replay_check(const struct replay_window *w, uint64_t seq)
{
	uint64_t diff;

	if (!w->any || seq > w->top)
		return MOAT_OK;
	diff = w->top - seq;
	if (diff >= REPLAY_WINDOW)
		return MOAT_E_PROTOCOL; /* below the window floor */
	return (w->seen >> diff & 1u) != 0 ? MOAT_E_PROTOCOL : MOAT_OK;
}

void replay_commit(struct replay_window *w, uint64_t seq)
{
	uint64_t shift;

	if (!w->any) {
		w->any = true;
		w->top = seq;
		w->seen = 1;
		return;
	}
	if (seq > w->top) {
		shift = seq - w->top;
		w->seen = shift >= REPLAY_WINDOW ? 1 : w->seen << shift | 1u;
		w->top = seq;
		return;
	}
	if (w->top - seq < REPLAY_WINDOW)
		w->seen |= (uint64_t)1 << (w->top - seq);
}
