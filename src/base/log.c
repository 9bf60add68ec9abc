/*
 * Logging (see log.h): formats one line per call and writes it with a single
 * write per destination so lines from several threads never interleave.
 */
#include "base/log.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include <moat/error.h>

static unsigned log_types = LOG_T_ERR | LOG_T_WARNING | LOG_T_NOTICE | LOG_T_INFO;
static unsigned log_dests = LOG_D_STDERR;
static FILE *log_file;
static pthread_mutex_t log_file_lock = PTHREAD_MUTEX_INITIALIZER;

int log_configure(unsigned types, unsigned dests, const char *file_path)
{
	if ((dests & LOG_D_FILE) && file_path != NULL) {
		FILE *f = fopen(file_path, "a");

		if (f == NULL)
			return MOAT_E_IO;
		if (log_file != NULL)
			fclose(log_file);
		log_file = f;
	}
	if (dests & LOG_D_SYSLOG)
		openlog("moatd", LOG_PID, LOG_DAEMON);
	log_types = types;
	log_dests = dests;
	return MOAT_OK;
}

int log_type_parse(const char *word)
{
	static const struct {
		const char *word;
		int mask;
	} words[] = {
		{ "error", LOG_T_ERR },		{ "warning", LOG_T_WARNING },
		{ "notice", LOG_T_NOTICE },	{ "information", LOG_T_INFO },
		{ "debug", LOG_T_DEBUG },	{ "subscribe", LOG_T_SUBSCRIBE },
		{ "unsubscribe", LOG_T_UNSUBSCRIBE }, { "websockets", LOG_T_WEBSOCKETS },
		{ "all", LOG_T_ALL },		{ "none", 0 },
	};

	for (size_t i = 0; i < sizeof(words) / sizeof(words[0]); i++)
		if (strcmp(word, words[i].word) == 0)
			return words[i].mask;
	return -1;
}

bool log_enabled(enum log_type type)
{
	return (log_types & (unsigned)type) != 0 && log_dests != 0;
}

static int syslog_priority(enum log_type type)
{
	switch (type) {
	case LOG_T_ERR: return LOG_ERR;
	case LOG_T_WARNING: return LOG_WARNING;
	case LOG_T_NOTICE: return LOG_NOTICE;
	case LOG_T_DEBUG: return LOG_DEBUG;
	default: return LOG_INFO;
	}
}

void log_msg(enum log_type type, const char *fmt, ...)
{
	char line[1024];
	size_t n;
	int m;
	va_list ap;

	if (!log_enabled(type))
		return;
	m = snprintf(line, sizeof(line), "%lld: ", (long long)time(NULL));
	n = m > 0 ? (size_t)m : 0;
	va_start(ap, fmt);
	m = vsnprintf(line + n, sizeof(line) - n - 1, fmt, ap);
	va_end(ap);
	if (m > 0)
		n += (size_t)m < sizeof(line) - n - 1 ? (size_t)m : sizeof(line) - n - 2;
	line[n++] = '\n';
	if (log_dests & LOG_D_STDERR)
		(void)!write(STDERR_FILENO, line, n);
	if (log_dests & LOG_D_STDOUT)
		(void)!write(STDOUT_FILENO, line, n);
	if ((log_dests & LOG_D_FILE) && log_file != NULL) {
		pthread_mutex_lock(&log_file_lock);
		fwrite(line, 1, n, log_file);
		fflush(log_file);
		pthread_mutex_unlock(&log_file_lock);
	}
	if (log_dests & LOG_D_SYSLOG)
		syslog(syslog_priority(type), "%.*s", (int)(n - 1), line);
}

/* One lock for every limiter: they are consulted only on rare events (bad input). */
static pthread_mutex_t limiter_lock = PTHREAD_MUTEX_INITIALIZER;

bool log_limiter_allow(struct log_limiter *l, uint32_t burst, uint32_t period_s)
{
	int64_t now = (int64_t)time(NULL);
	uint32_t suppressed = 0;
	bool allow;

	pthread_mutex_lock(&limiter_lock);
	if (now - l->window_start_s >= (int64_t)period_s) {
		suppressed = l->suppressed;
		l->window_start_s = now;
		l->in_window = 0;
		l->suppressed = 0;
	}
	allow = l->in_window < burst;
	if (allow)
		l->in_window++;
	else
		l->suppressed++;
	pthread_mutex_unlock(&limiter_lock);
	if (suppressed > 0)
		log_warn("(%u similar messages suppressed)", suppressed);
	return allow;
}
