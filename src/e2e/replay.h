/*
 * Anti-replay window for one (group, epoch, sender): the last 64 sequence
 * numbers as a bitmap below the highest one seen (RFC 4303 §3.4.3).
 * Check before decrypting, commit only after the tag verified, so forged
 * messages cannot move the window.
 */
#ifndef MOAT_E2E_REPLAY_H
#define MOAT_E2E_REPLAY_H

#include <stdbool.h>
#include <stdint.h>

enum { REPLAY_WINDOW = 64 };

struct replay_window {
	uint64_t top;  /* highest sequence number committed */
	uint64_t seen; /* bit i: top - i was committed */
	bool any;      /* false until the first commit */
};

/* Empties <w>: every sequence number is new. */
void replay_init(struct replay_window *w);

/*
 * MOAT_OK when <seq> may be accepted: above the window, or inside it and not
 * yet committed. MOAT_E_PROTOCOL when it was committed already (a replay)
 * or lies below the window (too old to tell).
 */
int replay_check(const struct replay_window *w, uint64_t seq);

/* Records <seq>, which replay_check() accepted and whose message decrypted. */
void replay_commit(struct replay_window *w, uint64_t seq);

#endif
