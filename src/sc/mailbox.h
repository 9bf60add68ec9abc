/*
 * A one-slot mailbox through which another thread (the SC's admin channel)
 * hands a job to the daemon's main thread and waits for its result: the
 * registry and the MQTT client are used only on the main thread. A poster
 * waits at most <wait_s> seconds for the main thread to take its job; once
 * taken, until it is done. Jobs are a kind (a small int) and a text.
 */
#ifndef MOAT_SC_MAILBOX_H
#define MOAT_SC_MAILBOX_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>

#include "conf/config.h" /* struct moat_diag */

enum { MAILBOX_ARG_MAX = 1024 };

struct mailbox {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int wait_s;
	int kind; /* 0: empty */
	char arg[MAILBOX_ARG_MAX + 1];
	bool busy, taken, done, stopping;
	int rc;
	struct moat_diag d;
};

/* Sets up <b>; posters give up after <wait_s> seconds when nobody takes. */
void mailbox_init(struct mailbox *b, int wait_s);

/* Frees <b>'s lock; no poster may still be inside. */
void mailbox_fini(struct mailbox *b);

/*
 * Any thread but the taker's: posts job <kind> (> 0) with <arg> (NULL for
 * "", at most MAILBOX_ARG_MAX bytes) and returns its result and <d>.
 * MOAT_E_TIMEOUT when it was not taken in time, MOAT_E_CLOSED after
 * mailbox_stop, MOAT_E_INVAL for a bad argument.
 */
int mailbox_post(struct mailbox *b, int kind, const char *arg, struct moat_diag *d);

/* The taker: true with the waiting job's kind and text (<arg>: MAILBOX_ARG_MAX
 * + 1 bytes), which it then runs and ends with mailbox_done. */
bool mailbox_take(struct mailbox *b, int *kind, char *arg);

/* The taker: the result of the job it took. */
void mailbox_done(struct mailbox *b, int rc, const struct moat_diag *d);

/* Refuses further posts and releases waiting posters (MOAT_E_CLOSED). */
void mailbox_stop(struct mailbox *b);

#endif
