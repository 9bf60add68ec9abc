/*
 * moat-historian's GET /metrics: Prometheus text of readings stored,
 * rejected inputs by reason (from the storage), commands by status, SSE
 * clients and whether MQTT is connected.
 */
#ifndef MOAT_HISTORIAN_METRICS_H
#define MOAT_HISTORIAN_METRICS_H

#include "historian/app.h"

/* The exposition text (malloc'd), or NULL without memory. */
char *metrics_format(struct hist_app *app);

#endif
