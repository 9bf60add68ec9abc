/*
 * The broker's metrics_listener: the HTTP server of http.h answering
 * /metrics with a fresh stats snapshot rendered by metrics.c, and /healthz
 * with 503 once the broker is stopping.
 */
#ifndef MOAT_BROKER_METRICS_HTTP_H
#define MOAT_BROKER_METRICS_HTTP_H

#include "conf/config.h"

struct broker;

/* Starts b->metrics_http when the configuration has a metrics_listener
 * (MOAT_OK and nothing started when not). On error <d> says why, naming the
 * configuration file and line. From the main thread, after broker_init();
 * the server reads the workers' counters from its own thread. */
int metrics_http_start(struct broker *b, struct moat_diag *d);
/* Stops b->metrics_http, if started; before broker_fini(). */
void metrics_http_stop(struct broker *b);

#endif
