/*
 * The audit log (see audit.h): cJSON builds each line, so every string is
 * escaped the same way; a mutex keeps lines whole across worker threads.
 */
#include "broker/audit.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <syslog.h>
#include <time.h>

#include <cjson/cJSON.h>

#include <moat/error.h>

static pthread_mutex_t audit_lock = PTHREAD_MUTEX_INITIALIZER;
static FILE *audit_file;
static int audit_to_syslog;

int audit_open(const struct moat_config *cfg)
{
	if (cfg->audit_file != NULL) {
		audit_file = fopen(cfg->audit_file, "ae");
		if (audit_file == NULL)
			return MOAT_E_IO;
	}
	if (cfg->audit_syslog) {
		openlog("moatd", LOG_PID, LOG_AUTHPRIV);
		audit_to_syslog = 1;
	}
	return MOAT_OK;
}

static void add_string(cJSON *o, const char *name, const char *value)
{
	if (value != NULL)
		cJSON_AddStringToObject(o, name, value);
}

void audit_write(const struct audit_event *e)
{
	char when[40];
	struct timespec ts;
	struct tm tm;
	cJSON *o;
	char *line;

	if (audit_file == NULL && !audit_to_syslog)
		return;
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(when + 19, sizeof(when) - 19, ".%03ldZ", ts.tv_nsec / 1000000);
	o = cJSON_CreateObject();
	if (o == NULL)
		return;
	add_string(o, "time", when);
	add_string(o, "event", e->event);
	add_string(o, "result", e->result);
	if (e->listener != 0)
		cJSON_AddNumberToObject(o, "listener", e->listener);
	add_string(o, "address", e->address);
	add_string(o, "client_id", e->client_id);
	add_string(o, "username", e->username);
	add_string(o, "method", e->method);
	add_string(o, "access", e->access);
	add_string(o, "topic", e->topic);
	add_string(o, "reason", e->reason);
	line = cJSON_PrintUnformatted(o);
	cJSON_Delete(o);
	if (line == NULL)
		return;
	pthread_mutex_lock(&audit_lock);
	if (audit_file != NULL) {
		fputs(line, audit_file);
		fputc('\n', audit_file);
		fflush(audit_file);
	}
	if (audit_to_syslog)
		syslog(LOG_INFO, "%s", line);
	pthread_mutex_unlock(&audit_lock);
	cJSON_free(line);
}

void audit_close(void)
{
	if (audit_file != NULL)
		fclose(audit_file);
	if (audit_to_syslog)
		closelog();
	audit_file = NULL;
	audit_to_syslog = 0;
}
