/*
 * The Prometheus exposition of moat-historian (metrics.h), written into a
 * growable buffer; reject counters come from the API's storage handle.
 */
#include "historian/metrics.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "historian/sse.h"
#include "moat/error.h"

static int add(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int add(struct buf *b, const char *fmt, ...)
{
	char line[256];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof(line))
		return MOAT_E_LIMIT;
	return buf_append(b, line, (size_t)n);
}

static int reject_cb(void *arg, const char *reason, int64_t count, int64_t last_ms)
{
	(void)last_ms;
	return add(arg, "moat_historian_rejects_total{reason=\"%s\"} %lld\n", reason,
		   (long long)count);
}

char *metrics_format(struct hist_app *app)
{
	struct buf b = {0};
	char *out;
	int rc;

	rc = add(&b,
		 "# HELP moat_historian_readings_stored_total Readings stored since start.\n"
		 "# TYPE moat_historian_readings_stored_total counter\n"
		 "moat_historian_readings_stored_total %llu\n",
		 (unsigned long long)atomic_load(&app->readings_stored));
	if (rc == MOAT_OK)
		rc = add(&b, "# HELP moat_historian_rejects_total Inputs refused, by reason.\n"
			     "# TYPE moat_historian_rejects_total counter\n");
	if (rc == MOAT_OK) {
		pthread_mutex_lock(&app->api_lock);
		rc = hist_db_list_rejects(app->api_db, reject_cb, &b);
		pthread_mutex_unlock(&app->api_lock);
	}
	if (rc == MOAT_OK)
		rc = add(&b, "# HELP moat_historian_commands_total Commands finished, by status.\n"
			     "# TYPE moat_historian_commands_total counter\n");
	for (int s = HIST_CMD_ACKNOWLEDGED; rc == MOAT_OK && s <= HIST_CMD_TIMEOUT; s++)
		rc = add(&b, "moat_historian_commands_total{status=\"%s\"} %llu\n",
			 hist_cmd_status_name((enum hist_cmd_status)s),
			 (unsigned long long)atomic_load(&app->commands[s]));
	if (rc == MOAT_OK)
		rc = add(&b,
			 "# TYPE moat_historian_sse_clients gauge\nmoat_historian_sse_clients %u\n"
			 "# TYPE moat_historian_mqtt_connected gauge\n"
			 "moat_historian_mqtt_connected %d\n",
			 sse_clients(app->sse), atomic_load(&app->mqtt_connected) ? 1 : 0);
	if (rc == MOAT_OK)
		rc = buf_append(&b, "", 1);
	if (rc != MOAT_OK) {
		buf_fini(&b);
		return NULL;
	}
	out = strdup((const char *)buf_head(&b));
	buf_fini(&b);
	return out;
}
