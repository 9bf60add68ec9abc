/*
 * The verification pool (see verify_pool.h): a mutex-protected FIFO and a
 * condition variable; jobs are intrusive, so queueing allocates nothing.
 */
#include "broker/verify_pool.h"

#include <signal.h>
#include <stdlib.h>

#include <moat/error.h>

static void *pool_thread(void *arg)
{
	struct verify_pool *p = arg;

	for (;;) {
		struct verify_job *job;

		pthread_mutex_lock(&p->lock);
		while (p->head == NULL && !p->stop)
			pthread_cond_wait(&p->ready, &p->lock);
		job = p->head;
		if (job == NULL) {	/* stopping and nothing left */
			pthread_mutex_unlock(&p->lock);
			return NULL;
		}
		p->head = job->next;
		if (p->head == NULL)
			p->tail = NULL;
		p->queued--;
		pthread_mutex_unlock(&p->lock);
		job->next = NULL;
		job->run(job);
		job->done(job);
	}
}

int verify_pool_start(struct verify_pool *p, unsigned nthreads, size_t max_queued)
{
	sigset_t all, old;
	int rc = MOAT_OK;

	*p = (struct verify_pool){ .max_queued = max_queued };
	if (nthreads == 0)
		nthreads = 1;
	p->threads = calloc(nthreads, sizeof(*p->threads));
	if (p->threads == NULL)
		return MOAT_E_NOMEM;
	pthread_mutex_init(&p->lock, NULL);
	pthread_cond_init(&p->ready, NULL);
	/* the threads start with every signal blocked: SIGHUP and SIGTERM are
	 * for the main thread's sigwaitinfo(), whenever they arrive */
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	for (; p->nthreads < nthreads; p->nthreads++) {
		if (pthread_create(&p->threads[p->nthreads], NULL, pool_thread, p) != 0) {
			rc = MOAT_E_IO;
			break;
		}
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (rc < 0)
		verify_pool_stop(p);
	return rc;
}

int verify_pool_submit(struct verify_pool *p, struct verify_job *job)
{
	pthread_mutex_lock(&p->lock);
	if (p->queued >= p->max_queued || p->stop) {
		pthread_mutex_unlock(&p->lock);
		return MOAT_E_LIMIT;
	}
	job->next = NULL;
	if (p->tail != NULL)
		p->tail->next = job;
	else
		p->head = job;
	p->tail = job;
	p->queued++;
	pthread_cond_signal(&p->ready);
	pthread_mutex_unlock(&p->lock);
	return MOAT_OK;
}

void verify_pool_stop(struct verify_pool *p)
{
	if (p->threads == NULL)
		return;
	pthread_mutex_lock(&p->lock);
	p->stop = true;
	pthread_cond_broadcast(&p->ready);
	pthread_mutex_unlock(&p->lock);
	for (unsigned i = 0; i < p->nthreads; i++)
		pthread_join(p->threads[i], NULL);
	free(p->threads);
	p->threads = NULL;
	pthread_mutex_destroy(&p->lock);
	pthread_cond_destroy(&p->ready);
}
