/*
 * A few threads for work too slow for an event loop: password hashes
 * (argon2id costs tens of milliseconds and MiB of memory on purpose). A
 * worker submits a job; a pool thread runs it and hands it back to that
 * worker through its inbox, so the job's result is used in the thread that
 * owns the connection. The queue is bounded: when it is full, submission
 * fails and the caller refuses the client as "server busy".
 */
#ifndef MOAT_BROKER_VERIFY_POOL_H
#define MOAT_BROKER_VERIFY_POOL_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>

struct verify_job {
	struct verify_job *next;
	/* runs in a pool thread; must touch only what the job owns */
	void (*run)(struct verify_job *job);
	/* runs in a pool thread after run(): hands the job back to its owner */
	void (*done)(struct verify_job *job);
};

struct verify_pool {
	pthread_mutex_t lock;
	pthread_cond_t ready;
	struct verify_job *head, *tail;
	size_t queued, max_queued;
	pthread_t *threads;
	unsigned nthreads;
	bool stop;
};

/* Starts <nthreads> threads (at least 1) with room for <max_queued> jobs. */
int verify_pool_start(struct verify_pool *p, unsigned nthreads, size_t max_queued);
/* Queues <job>. MOAT_OK, or MOAT_E_LIMIT when the queue is full (the job is
 * then still the caller's). */
int verify_pool_submit(struct verify_pool *p, struct verify_job *job);
/* Stops the threads after the jobs already running; queued jobs are run
 * first, so every job reaches its done(). */
void verify_pool_stop(struct verify_pool *p);

#endif
