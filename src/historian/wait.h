/*
 * Condition variables on CLOCK_MONOTONIC and their deadlines, for the
 * historian's waits (commands in flight, the event stream).
 */
#ifndef MOAT_HISTORIAN_WAIT_H
#define MOAT_HISTORIAN_WAIT_H

#include <pthread.h>
#include <stdint.h>
#include <time.h>

/* Initialises <c> to time its waits on CLOCK_MONOTONIC. */
void wait_cond_init(pthread_cond_t *c);

/* The CLOCK_MONOTONIC time <ms> milliseconds from now, for pthread_cond_timedwait. */
struct timespec wait_deadline(int64_t ms);

#endif
