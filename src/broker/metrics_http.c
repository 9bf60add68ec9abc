/*
 * Serving /metrics and /healthz for the broker (see metrics_http.h): the
 * two callbacks the HTTP server asks, on its own thread.
 */
#include "broker/metrics_http.h"

#include <moat/error.h>

#include "base/clock.h"
#include "broker/broker.h"
#include "broker/http.h"
#include "broker/metrics.h"
#include "broker/stats.h"

static int render_metrics(void *arg, struct buf *body)
{
	struct stats st;
	int rc = stats_collect(arg, &st, clock_mono_ms());

	if (rc == MOAT_OK)
		rc = metrics_render(&st, body);
	stats_fini(&st);
	return rc;
}

static bool is_stopping(void *arg)
{
	const struct broker *b = arg;

	return atomic_load(&b->stop);
}

static const struct http_ops broker_http_ops = {render_metrics, is_stopping};

int metrics_http_start(struct broker *b, struct moat_diag *d)
{
	const struct moat_config *cfg = b->cfg;
	const char *bind_address = cfg->metrics_bind != NULL ? cfg->metrics_bind : "127.0.0.1";
	struct moat_diag why = {{0}};
	int rc;

	if (cfg->metrics_port == 0)
		return MOAT_OK;
	rc = http_server_start(&b->metrics_http, bind_address, cfg->metrics_port, &broker_http_ops,
			       b, &why);
	if (rc < 0)
		conf_diag(d, cfg->path != NULL ? cfg->path : "-", cfg->metrics_line,
			  "metrics_listener %u: %.400s", cfg->metrics_port, why.msg);
	return rc;
}

void metrics_http_stop(struct broker *b)
{
	http_server_stop(b->metrics_http);
	b->metrics_http = NULL;
}
