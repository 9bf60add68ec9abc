/*
 * The load averages of $SYS/broker/load/...: for each counted series, the
 * rate per minute smoothed over 1, 5 and 15 minutes the way mosquitto does
 * it (an exponentially-decayed average updated at every $SYS interval). Pure
 * arithmetic on counter totals: the caller sums the counters and owns the
 * state; one thread (worker 0) updates it.
 */
#ifndef MOAT_BROKER_SYS_LOAD_H
#define MOAT_BROKER_SYS_LOAD_H

#include <stdbool.h>
#include <stdint.h>

enum sys_load_series {
	LOAD_MSGS_RECEIVED = 0, /* every MQTT packet */
	LOAD_MSGS_SENT,
	LOAD_PUB_RECEIVED, /* PUBLISH packets */
	LOAD_PUB_SENT,
	LOAD_PUB_DROPPED,
	LOAD_BYTES_RECEIVED,
	LOAD_BYTES_SENT,
	LOAD_CONNECTIONS, /* CONNECTs accepted */
	LOAD_SOCKETS,	  /* sockets accepted */
	LOAD_SERIES
};

enum { LOAD_WINDOWS = 3 }; /* 1, 5 and 15 minutes */

struct sys_load {
	bool started;
	uint64_t last_ms;
	uint64_t last[LOAD_SERIES];
	double avg[LOAD_SERIES][LOAD_WINDOWS]; /* per minute */
};

/* The topic below $SYS/broker/load/ of <series> ("messages/received", ...). */
const char *sys_load_topic(enum sys_load_series series);
/* The name of window <i> ("1min", "5min", "15min"). */
const char *sys_load_window(unsigned i);

/* Feeds the series' totals <totals> counted up to <now_ms>: every average
 * moves towards the rate per minute since the previous call, keeping
 * exp(-elapsed / window) of its old value. The first call only records the
 * totals; a call with no time elapsed changes nothing. A total smaller than
 * the previous one counts as no change. */
void sys_load_update(struct sys_load *l, const uint64_t totals[LOAD_SERIES], uint64_t now_ms);

#endif
