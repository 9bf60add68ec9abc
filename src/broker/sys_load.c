/*
 * Load averages for $SYS (see sys_load.h): the idea is mosquitto's
 * (new = rate + e^(-dt/T) * (old - rate), rate per minute), the code ours.
 */
#include "broker/sys_load.h"

#include <math.h>

static const char *const topics[LOAD_SERIES] = {
    [LOAD_MSGS_RECEIVED] = "messages/received",
    [LOAD_MSGS_SENT] = "messages/sent",
    [LOAD_PUB_RECEIVED] = "publish/received",
    [LOAD_PUB_SENT] = "publish/sent",
    [LOAD_PUB_DROPPED] = "publish/dropped",
    [LOAD_BYTES_RECEIVED] = "bytes/received",
    [LOAD_BYTES_SENT] = "bytes/sent",
    [LOAD_CONNECTIONS] = "connections",
    [LOAD_SOCKETS] = "sockets",
};

static const char *const windows[LOAD_WINDOWS] = {"1min", "5min", "15min"};
static const double window_s[LOAD_WINDOWS] = {60.0, 300.0, 900.0};

const char *sys_load_topic(enum sys_load_series series)
{
	return (unsigned)series < LOAD_SERIES ? topics[series] : "";
}

const char *sys_load_window(unsigned i)
{
	return i < LOAD_WINDOWS ? windows[i] : "";
}

void sys_load_update(struct sys_load *l, const uint64_t totals[LOAD_SERIES], uint64_t now_ms)
{
	double dt_s, decay[LOAD_WINDOWS];

	if (!l->started || now_ms < l->last_ms) {
		l->started = true;
		l->last_ms = now_ms;
		for (unsigned s = 0; s < LOAD_SERIES; s++)
			l->last[s] = totals[s];
		return;
	}
	if (now_ms == l->last_ms)
		return;
	dt_s = (double)(now_ms - l->last_ms) / 1000.0;
	for (unsigned k = 0; k < LOAD_WINDOWS; k++)
		decay[k] = exp(-dt_s / window_s[k]);
	for (unsigned s = 0; s < LOAD_SERIES; s++) {
		uint64_t delta = totals[s] > l->last[s] ? totals[s] - l->last[s] : 0;
		double rate = (double)delta * 60.0 / dt_s;

		for (unsigned k = 0; k < LOAD_WINDOWS; k++)
			l->avg[s][k] = rate + decay[k] * (l->avg[s][k] - rate);
		l->last[s] = totals[s];
	}
	l->last_ms = now_ms;
}
