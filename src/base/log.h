/*
 * Process-wide logging with mosquitto's types (log_type) and destinations
 * (log_dest). Only the layer that decides what to do about an error logs it.
 * Never pass a password, token or key to these functions.
 */
#ifndef MOAT_BASE_LOG_H
#define MOAT_BASE_LOG_H

#include <stdbool.h>
#include <stdint.h>

enum log_type {
	LOG_T_ERR = 1 << 0,
	LOG_T_WARNING = 1 << 1,
	LOG_T_NOTICE = 1 << 2,
	LOG_T_INFO = 1 << 3,
	LOG_T_DEBUG = 1 << 4,
	LOG_T_SUBSCRIBE = 1 << 5,
	LOG_T_UNSUBSCRIBE = 1 << 6,
	LOG_T_WEBSOCKETS = 1 << 7,
	LOG_T_ALL = 0xff,
};

enum log_dest {
	LOG_D_STDERR = 1 << 0,
	LOG_D_STDOUT = 1 << 1,
	LOG_D_FILE = 1 << 2,
	LOG_D_SYSLOG = 1 << 3,
};

/* How a line looks: "<unix time>: <message>" (mosquitto's), or one JSON
 * object per line {"time": ISO 8601 UTC with milliseconds, "level": the
 * log_type word, "message"}. */
enum log_format {
	LOG_F_TEXT = 0,
	LOG_F_JSON = 1,
};

/* Which types are written and where; <file_path> is used with LOG_D_FILE and
 * opened again on every call (after logrotate, SIGHUP reopens it). Returns
 * MOAT_OK, or MOAT_E_IO when the file cannot be opened: then nothing changes.
 * Any thread: a reload while workers log is safe. */
int log_configure(unsigned types, unsigned dests, const char *file_path);

/* Sets the line format. Any thread. */
void log_set_format(enum log_format format);

/* Parses a log_format word ("text", "json"); returns the format or -1. */
int log_format_parse(const char *word);

/* Parses a mosquitto log_type word ("error", "warning", "notice",
 * "information", "debug", "subscribe", "unsubscribe", "websockets", "all",
 * "none"); returns the mask or -1 for an unknown word. */
int log_type_parse(const char *word);

/* True when messages of <type> are written; lets callers skip formatting. */
bool log_enabled(enum log_type type);

/* Writes one line "<time>: <message>" of <type>. Thread-safe. */
void log_msg(enum log_type type, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/*
 * Rate limiter for repeated messages: at most <burst> lines per <period_s>.
 * The first line held back says so ("further similar messages suppressed for
 * up to N s"), and the first call after the period counts them ("(N similar
 * messages suppressed)"). One limiter per kind of message, static in the file
 * that logs it.
 */
struct log_limiter {
	int64_t window_start_s;
	uint32_t in_window;
	uint32_t suppressed;
};

/* Returns true when a line may be written now; counts the suppressed ones.
 * Any thread. */
bool log_limiter_allow(struct log_limiter *l, uint32_t burst, uint32_t period_s);

#define log_err(...) log_msg(LOG_T_ERR, __VA_ARGS__)
#define log_warn(...) log_msg(LOG_T_WARNING, __VA_ARGS__)
#define log_notice(...) log_msg(LOG_T_NOTICE, __VA_ARGS__)
#define log_info(...) log_msg(LOG_T_INFO, __VA_ARGS__)
#define log_debug(...) log_msg(LOG_T_DEBUG, __VA_ARGS__)

#endif
