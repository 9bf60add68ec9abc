/*
 * Time sources: a monotonic clock for timeouts and a wall clock for
 * timestamps. Both read the OS clock; tests that need control over time pass
 * explicit "now" values to the modules instead of calling these.
 */
#ifndef MOAT_BASE_CLOCK_H
#define MOAT_BASE_CLOCK_H

#include <stdint.h>
#include <time.h>

/* Milliseconds on the monotonic clock (arbitrary origin). */
static inline uint64_t clock_mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* Microseconds on the monotonic clock (arbitrary origin). */
static inline uint64_t clock_mono_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

/* Milliseconds since the Unix epoch: for times that must survive a restart. */
static inline uint64_t clock_wall_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* Seconds since the Unix epoch. */
static inline int64_t clock_wall_s(void)
{
	return (int64_t)time(NULL);
}

#endif
