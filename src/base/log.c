/*
 * Logging (see log.h): formats one line per call and writes it with a single
 * write per destination so lines from several threads never interleave. The
 * settings are atomics and the file is swapped under its lock, so SIGHUP can
 * change them while workers log.
 */
#include "base/log.h"

#include <cjson/cJSON.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include <moat/error.h>

static atomic_uint log_types = LOG_T_ERR | LOG_T_WARNING | LOG_T_NOTICE | LOG_T_INFO;
static atomic_uint log_dests = LOG_D_STDERR;
static atomic_int log_format = LOG_F_TEXT;
static FILE *log_file; /* under log_file_lock */
static pthread_mutex_t log_file_lock = PTHREAD_MUTEX_INITIALIZER;

static const struct {
	const char *word;
	int mask;
} type_words[] = {
    {"error", LOG_T_ERR},
    {"warning", LOG_T_WARNING},
    {"notice", LOG_T_NOTICE},
    {"information", LOG_T_INFO},
    {"debug", LOG_T_DEBUG},
    {"subscribe", LOG_T_SUBSCRIBE},
    {"unsubscribe", LOG_T_UNSUBSCRIBE},
    {"websockets", LOG_T_WEBSOCKETS},
    {"all", LOG_T_ALL},
    {"none", 0},
};

int log_configure(unsigned types, unsigned dests, const char *file_path)
{
	FILE *f = NULL, *old;

	if ((dests & LOG_D_FILE) && file_path != NULL) {
		f = fopen(file_path, "ae");
		if (f == NULL)
			return MOAT_E_IO;
	}
	if (dests & LOG_D_SYSLOG)
		openlog("moatd", LOG_PID, LOG_DAEMON);
	pthread_mutex_lock(&log_file_lock);
	old = log_file;
	log_file = f;
	atomic_store(&log_types, types);
	atomic_store(&log_dests, dests);
	pthread_mutex_unlock(&log_file_lock);
	if (old != NULL)
		fclose(old);
	return MOAT_OK;
}

void log_set_format(enum log_format format)
{
	atomic_store(&log_format, (int)format);
}

int log_format_parse(const char *word)
{
	if (strcmp(word, "text") == 0)
		return LOG_F_TEXT;
	if (strcmp(word, "json") == 0)
		return LOG_F_JSON;
	return -1;
}

int log_type_parse(const char *word)
{
	for (size_t i = 0; i < sizeof(type_words) / sizeof(type_words[0]); i++)
		if (strcmp(word, type_words[i].word) == 0)
			return type_words[i].mask;
	return -1;
}

bool log_enabled(enum log_type type)
{
	return (atomic_load_explicit(&log_types, memory_order_relaxed) & (unsigned)type) != 0 &&
	       atomic_load_explicit(&log_dests, memory_order_relaxed) != 0;
}

static int syslog_priority(enum log_type type)
{
	switch (type) {
	case LOG_T_ERR:
		return LOG_ERR;
	case LOG_T_WARNING:
		return LOG_WARNING;
	case LOG_T_NOTICE:
		return LOG_NOTICE;
	case LOG_T_DEBUG:
		return LOG_DEBUG;
	default:
		return LOG_INFO;
	}
}

static const char *type_word(enum log_type type)
{
	for (size_t i = 0; i < sizeof(type_words) / sizeof(type_words[0]); i++)
		if (type_words[i].mask == (int)type)
			return type_words[i].word;
	return "information";
}

/* Length of the valid UTF-8 sequence at <p> (<left> bytes), or 0
 * (RFC 3629: no overlong forms, no surrogates, nothing above U+10FFFF). */
static size_t utf8_seq(const unsigned char *p, size_t left)
{
	unsigned char lo = 0x80, hi = 0xbf;
	size_t n;

	if (p[0] < 0x80)
		return 1;
	if (p[0] >= 0xc2 && p[0] <= 0xdf)
		n = 2;
	else if (p[0] >= 0xe0 && p[0] <= 0xef)
		n = 3;
	else if (p[0] >= 0xf0 && p[0] <= 0xf4)
		n = 4;
	else
		return 0;
	if (left < n)
		return 0;
	if (p[0] == 0xe0)
		lo = 0xa0;
	else if (p[0] == 0xed)
		hi = 0x9f;
	else if (p[0] == 0xf0)
		lo = 0x90;
	else if (p[0] == 0xf4)
		hi = 0x8f;
	if (p[1] < lo || p[1] > hi)
		return 0;
	for (size_t i = 2; i < n; i++)
		if ((p[i] & 0xc0) != 0x80)
			return 0;
	return n;
}

/* Replaces each byte of <s> that does not start a valid UTF-8 sequence with
 * '?' (a message cut at the buffer's end, or a peer's bytes), so the JSON
 * line is valid UTF-8. */
static void utf8_sanitize(char *s, size_t len)
{
	unsigned char *p = (unsigned char *)s;

	for (size_t i = 0; i < len;) {
		size_t n = utf8_seq(p + i, len - i);

		if (n == 0) {
			p[i++] = '?';
			continue;
		}
		i += n;
	}
}

/* Formats {"time","level","message"} into <out> (at most <cap> bytes, a
 * newline included). Returns the length, or 0 when out of memory. */
static size_t format_json(enum log_type type, char *msg, size_t msg_len, char *out, size_t cap)
{
	struct timespec ts;
	struct tm tm;
	char when[64];
	cJSON *o = cJSON_CreateObject();
	char *text;
	size_t n = 0;

	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	snprintf(when, sizeof(when), "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ", tm.tm_year + 1900,
		 tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
		 (ts.tv_nsec / 1000000) % 1000);
	utf8_sanitize(msg, msg_len);
	if (o == NULL || cJSON_AddStringToObject(o, "time", when) == NULL ||
	    cJSON_AddStringToObject(o, "level", type_word(type)) == NULL ||
	    cJSON_AddStringToObject(o, "message", msg) == NULL)
		goto out;
	text = cJSON_PrintUnformatted(o);
	if (text == NULL)
		goto out;
	n = strlen(text);
	if (n + 1 <= cap) {
		memcpy(out, text, n);
		out[n++] = '\n';
	} else {
		n = 0;
	}
	cJSON_free(text);
out:
	cJSON_Delete(o);
	return n;
}

void log_msg(enum log_type type, const char *fmt, ...)
{
	char msg[1024], line[sizeof(msg) * 6 + 128]; /* JSON escapes a byte in at most 6 */
	unsigned dests = atomic_load_explicit(&log_dests, memory_order_relaxed);
	size_t n = 0, msg_len;
	int m;
	va_list ap;

	if (!log_enabled(type))
		return;
	va_start(ap, fmt);
	m = vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	msg_len = m < 0 ? 0 : (size_t)m < sizeof(msg) ? (size_t)m : sizeof(msg) - 1;
	msg[msg_len] = '\0';
	if (atomic_load_explicit(&log_format, memory_order_relaxed) == LOG_F_JSON)
		n = format_json(type, msg, msg_len, line, sizeof(line));
	if (n == 0) {
		m = snprintf(line, sizeof(line), "%lld: %s\n", (long long)time(NULL), msg);
		n = m > 0 && (size_t)m < sizeof(line) ? (size_t)m : 0;
	}
	if (dests & LOG_D_STDERR)
		(void)!write(STDERR_FILENO, line, n);
	if (dests & LOG_D_STDOUT)
		(void)!write(STDOUT_FILENO, line, n);
	if (dests & LOG_D_FILE) {
		pthread_mutex_lock(&log_file_lock);
		if (log_file != NULL) {
			fwrite(line, 1, n, log_file);
			fflush(log_file);
		}
		pthread_mutex_unlock(&log_file_lock);
	}
	if (dests & LOG_D_SYSLOG)
		syslog(syslog_priority(type), "%s", msg);
}

/* One lock for every limiter: they are consulted only on rare events (bad input). */
static pthread_mutex_t limiter_lock = PTHREAD_MUTEX_INITIALIZER;

bool log_limiter_allow(struct log_limiter *l, uint32_t burst, uint32_t period_s)
{
	int64_t now = (int64_t)time(NULL);
	uint32_t suppressed = 0;
	bool allow, first_held = false;

	pthread_mutex_lock(&limiter_lock);
	if (now - l->window_start_s >= (int64_t)period_s) {
		suppressed = l->suppressed;
		l->window_start_s = now;
		l->in_window = 0;
		l->suppressed = 0;
	}
	allow = l->in_window < burst;
	if (allow) {
		l->in_window++;
	} else {
		first_held = l->suppressed == 0;
		l->suppressed++;
	}
	pthread_mutex_unlock(&limiter_lock);
	if (suppressed > 0)
		log_warn("(%u similar messages suppressed)", suppressed);
	if (first_held)
		log_warn("(further similar messages suppressed for up to %u s)", period_s);
	return allow;
}
