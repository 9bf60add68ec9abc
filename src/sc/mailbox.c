/* The one-slot mailbox between the admin thread and the daemon (mailbox.h). */
#include "sc/mailbox.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <moat/error.h>

void mailbox_init(struct mailbox *b, int wait_s)
{
	memset(b, 0, sizeof(*b));
	pthread_mutex_init(&b->mu, NULL);
	pthread_cond_init(&b->cv, NULL);
	b->wait_s = wait_s;
}

void mailbox_fini(struct mailbox *b)
{
	pthread_cond_destroy(&b->cv);
	pthread_mutex_destroy(&b->mu);
}

/* Waits for a change until <until>; false once it has passed. */
static bool wait_until(struct mailbox *b, const struct timespec *until)
{
	return pthread_cond_timedwait(&b->cv, &b->mu, until) != ETIMEDOUT;
}

int mailbox_post(struct mailbox *b, int kind, const char *arg, struct moat_diag *d)
{
	struct timespec until;
	int rc = MOAT_OK;

	if (kind <= 0 || (arg != NULL && strlen(arg) > MAILBOX_ARG_MAX))
		return MOAT_E_INVAL;
	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += b->wait_s;
	pthread_mutex_lock(&b->mu);
	while (rc == MOAT_OK && b->busy && !b->stopping)
		if (!wait_until(b, &until))
			rc = MOAT_E_TIMEOUT;
	if (rc == MOAT_OK && !b->stopping) {
		b->kind = kind;
		snprintf(b->arg, sizeof(b->arg), "%s", arg != NULL ? arg : "");
		b->busy = true;
		b->taken = b->done = false;
		/* not taken in time: withdrawn; taken: wait for its end, however long */
		while (!b->done && !b->stopping && rc == MOAT_OK) {
			if (b->taken)
				pthread_cond_wait(&b->cv, &b->mu);
			else if (!wait_until(b, &until) && !b->taken)
				rc = MOAT_E_TIMEOUT;
		}
		if (b->done) {
			rc = b->rc;
			*d = b->d;
		}
		b->busy = false;
		b->kind = 0;
		pthread_cond_broadcast(&b->cv);
	}
	if (rc == MOAT_OK && b->stopping && !b->done)
		rc = MOAT_E_CLOSED;
	pthread_mutex_unlock(&b->mu);
	if (rc == MOAT_E_TIMEOUT || rc == MOAT_E_CLOSED)
		snprintf(d->msg, sizeof(d->msg), "the SC daemon did not take the request");
	return rc;
}

bool mailbox_take(struct mailbox *b, int *kind, char *arg)
{
	bool got;

	pthread_mutex_lock(&b->mu);
	got = b->busy && !b->taken && !b->stopping;
	if (got) {
		b->taken = true;
		*kind = b->kind;
		memcpy(arg, b->arg, sizeof(b->arg));
	}
	pthread_mutex_unlock(&b->mu);
	return got;
}

void mailbox_done(struct mailbox *b, int rc, const struct moat_diag *d)
{
	pthread_mutex_lock(&b->mu);
	b->rc = rc;
	b->d = *d;
	b->done = true;
	pthread_cond_broadcast(&b->cv);
	pthread_mutex_unlock(&b->mu);
}

void mailbox_stop(struct mailbox *b)
{
	pthread_mutex_lock(&b->mu);
	b->stopping = true;
	pthread_cond_broadcast(&b->cv);
	pthread_mutex_unlock(&b->mu);
}
