/*
 * The historian's storage: one interface over two backends chosen by the
 * URL, SQLite (a path or sqlite:PATH; WAL, synchronous=NORMAL, busy timeout)
 * and PostgreSQL (postgresql://... or postgres://..., through libpq). It
 * keeps device readings, device state, commands and their acknowledgements,
 * alerts with the envelope that raised them, and counters of rejected
 * inputs, in one schema migrated by version (migrate.c). Decoding MQTT,
 * verifying envelopes and serving HTTP are left to the callers.
 *
 * Times are int64 milliseconds since the Unix epoch everywhere. A handle is
 * used by one thread at a time; open one handle per thread (SQLite in WAL
 * mode and PostgreSQL both let readers run beside the writer). Every failing
 * call returns a negative MOAT_E_* and leaves a message in hist_db_errmsg();
 * messages never contain the URL's password.
 */
#ifndef MOAT_HISTORIAN_DB_H
#define MOAT_HISTORIAN_DB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "conf/config.h" /* struct moat_diag */

enum {
	HIST_DB_SCHEMA_VERSION = 2, /* the newest schema this code writes */
	HIST_NAME_MAX = 64,	    /* device, command id, kind, reason, requester */
	HIST_DETAIL_MAX = 1024,	    /* command and alert detail text, bytes */
	HIST_ENVELOPE_MAX = 65536,  /* an alert's kept envelope, bytes */
	HIST_BATCH_MAX = 10000,	    /* readings per hist_db_add_readings call */
	HIST_LIMIT_MAX = 10000,	    /* rows per query */
	HIST_BUCKETS_MAX = 1000,    /* overview buckets */
	HIST_ROLLUP_MS = 300000,    /* the overview's finest resolution (5 min) */
};

enum hist_relay { HIST_RELAY_UNKNOWN = 0, HIST_RELAY_OFF = 1, HIST_RELAY_ON = 2 };

enum hist_online { HIST_ONLINE_UNKNOWN = 0, HIST_ONLINE_NO = 1, HIST_ONLINE_YES = 2 };

enum hist_cmd_status {
	HIST_CMD_PENDING = 0,
	HIST_CMD_ACKNOWLEDGED = 1,
	HIST_CMD_FAILED = 2,
	HIST_CMD_TIMEOUT = 3,
};

/* One reading. <device> is borrowed: 1..HIST_NAME_MAX of [A-Za-z0-9._:-],
 * starting with a letter or digit. <temperature> and <humidity> are finite
 * or NAN (absent, stored as NULL); a negative <seq> is absent too. */
struct hist_reading {
	const char *device;
	int64_t time_ms;
	int64_t seq;
	double temperature;
	double humidity;
	enum hist_relay relay;
};

/* A device as hist_db_list_devices reports it; 0 times mean "never". */
struct hist_device {
	char name[HIST_NAME_MAX + 1];
	enum hist_online online;
	int64_t online_ms;     /* the newest online/offline event */
	enum hist_relay relay; /* from the newer of the newest reading and hist_db_set_relay */
	int64_t relay_ms;
	int64_t first_seen_ms;	  /* the oldest reading or event when the device was created */
	int64_t last_seen_ms;	  /* the newest reading, or going online when later */
	struct hist_reading last; /* the newest reading (time 0 when none); last.device = name */
};

/* A command: hist_db_add_command reads id, device, on, requested_by and
 * created_ms; hist_db_get_command fills every field. */
struct hist_command {
	char id[HIST_NAME_MAX + 1]; /* chosen by the caller, e.g. a UUID */
	char device[HIST_NAME_MAX + 1];
	bool on; /* the relay state asked for */
	char requested_by[HIST_NAME_MAX + 1];
	int64_t created_ms;
	enum hist_cmd_status status;
	int64_t updated_ms;
	char detail[HIST_DETAIL_MAX + 1];
};

/* An alert. The strings and <envelope> are borrowed (valid during a
 * listing callback only). <kind> is a name as for devices; <detail> is
 * UTF-8 text without control characters (at most HIST_DETAIL_MAX bytes;
 * NULL is ""); <envelope> keeps the signed bytes for audit (at most
 * HIST_ENVELOPE_MAX; may be empty). */
struct hist_alert {
	int64_t id; /* set by the database */
	const char *device;
	int64_t time_ms;
	const char *kind;
	const char *detail;
	const uint8_t *envelope;
	size_t envelope_len;
};

/* One overview cell: device <device>, bucket <index> starting at <start_ms>.
 * Averages are NAN when the bucket had no value of that kind. */
struct hist_bucket {
	const char *device;
	unsigned index;
	int64_t start_ms;
	int64_t count;
	double t_avg, t_min, t_max;
	double h_avg, h_min, h_max;
};

struct hist_db;

/* Listing callbacks: return MOAT_OK to go on; anything else stops the
 * listing and is returned by it. Borrowed pointers are valid during the call. */
typedef int hist_reading_cb(void *arg, const struct hist_reading *r);
typedef int hist_device_cb(void *arg, const struct hist_device *d);
typedef int hist_alert_cb(void *arg, const struct hist_alert *a);
typedef int hist_bucket_cb(void *arg, const struct hist_bucket *b);
typedef int hist_reject_cb(void *arg, const char *reason, int64_t count, int64_t last_ms);

/* Opens the database named by <url> and migrates it to
 * HIST_DB_SCHEMA_VERSION in one transaction. SQLite files are created with
 * mode 0600. MOAT_E_CONFIG for a URL that names no backend,
 * MOAT_E_UNSUPPORTED for a database written by a newer schema, MOAT_E_IO
 * when the database cannot be opened or migrated; <diag> says which. */
int hist_db_open(struct hist_db **out, const char *url, struct moat_diag *diag);

/* As hist_db_open, but migrates only up to <version> (0..HIST_DB_SCHEMA_VERSION;
 * 0 creates nothing). For tests and upgrade tools. */
int hist_db_open_at(struct hist_db **out, const char *url, int version, struct moat_diag *diag);

/* Closes <db>; NULL is fine. */
void hist_db_close(struct hist_db *db);

/* "sqlite" or "postgresql". */
const char *hist_db_backend(const struct hist_db *db);

/* The message of the last failing call on <db> (kept until the next
 * failure); "" when there was none. */
const char *hist_db_errmsg(const struct hist_db *db);

/* Stores *<version> = the schema version the database is at. */
int hist_db_schema_version(struct hist_db *db, int *version);

/* Stores <n> readings (0..HIST_BATCH_MAX) in one transaction: all or
 * none. <r> is borrowed for the call; its order does not matter. A device
 * seen for the first time is created; its state (last seen, newest reading,
 * relay) follows from its newest reading. A reading whose device and time
 * are already stored is skipped (MQTT redelivery). Feeds the overview's
 * 5-minute rollup.
 * MOAT_E_INVAL (nothing stored) when any reading is invalid, MOAT_E_LIMIT
 * for too many. */
int hist_db_add_readings(struct hist_db *db, const struct hist_reading *r, size_t n);

/* Records that <device> went online (<online> true) or offline at
 * <time_ms>, creating it when new. An older event than the stored one is
 * ignored, so out-of-order status messages cannot flip a device back. */
int hist_db_set_online(struct hist_db *db, const char *device, bool online, int64_t time_ms);

/* Records <device>'s relay state <on> at <time_ms> (e.g. from a command
 * acknowledgement), creating the device when new; older events are ignored. */
int hist_db_set_relay(struct hist_db *db, const char *device, bool on, int64_t time_ms);

/* Records the command <c> (id, device, on, requested_by, created_ms) with
 * status pending. MOAT_E_DENIED when the id is taken, MOAT_E_INVAL for a
 * bad field. */
int hist_db_add_command(struct hist_db *db, const struct hist_command *c);

/* Moves the pending command <id> to <status> (not pending) at <time_ms>
 * with <detail> (NULL, or UTF-8 text without control characters of at most
 * HIST_DETAIL_MAX bytes).
 * MOAT_E_NOTFOUND when there is no such command, MOAT_E_DENIED when it is
 * not pending any more (a late acknowledgement after a timeout). */
int hist_db_update_command(struct hist_db *db, const char *id, enum hist_cmd_status status,
			   int64_t time_ms, const char *detail);

/* Fills <out> with the command <id>; MOAT_E_NOTFOUND when there is none. */
int hist_db_get_command(struct hist_db *db, const char *id, struct hist_command *out);

/* Stores the alert <a> (its id is ignored) and, when <id> is not NULL,
 * its new id in *<id>. */
int hist_db_add_alert(struct hist_db *db, const struct hist_alert *a, int64_t *id);

/* Adds one to the counter of rejected inputs <reason> (a name as for
 * devices, e.g. "bad-signature"), last at <time_ms>. Counters live in the
 * database (table rejects), so they survive restarts and every handle sees them. */
int hist_db_count_reject(struct hist_db *db, const char *reason, int64_t time_ms);

/* Calls <cb> for every device, by name. */
int hist_db_list_devices(struct hist_db *db, hist_device_cb *cb, void *arg);

/* Calls <cb> for the readings of <device> with from_ms <= time < to_ms,
 * newest first, at most <limit> (1..HIST_LIMIT_MAX). MOAT_E_INVAL for a
 * bad limit, range or name; an unknown device has no readings. */
int hist_db_readings(struct hist_db *db, const char *device, int64_t from_ms, int64_t to_ms,
		     unsigned limit, hist_reading_cb *cb, void *arg);

/* Calls <cb> with the overview of [from_ms, to_ms) in at most <buckets>
 * (1..HIST_BUCKETS_MAX) buckets per device, ordered by bucket, then by
 * device (creation order); cells without readings are left out. Computed
 * in SQL from a 5-minute rollup kept at ingest: the start is rounded down
 * and the bucket width up to a multiple of HIST_ROLLUP_MS, so every bucket
 * is exact. A width of exactly HIST_ROLLUP_MS (e.g. 288 buckets a day)
 * reads the rollup without grouping, the fastest case. <device> NULL means
 * all devices. */
int hist_db_overview(struct hist_db *db, const char *device, int64_t from_ms, int64_t to_ms,
		     unsigned buckets, hist_bucket_cb *cb, void *arg);

/* hist_db_overview of temperature only (h_avg, h_min and h_max are NAN):
 * what the HTTP API serves, reading fewer columns (about a third faster
 * for all devices; docs/performance.md). */
int hist_db_temperature_overview(struct hist_db *db, const char *device, int64_t from_ms,
				 int64_t to_ms, unsigned buckets, hist_bucket_cb *cb, void *arg);

/* Calls <cb> for the newest <limit> (1..HIST_LIMIT_MAX) alerts, newest first. */
int hist_db_recent_alerts(struct hist_db *db, unsigned limit, hist_alert_cb *cb, void *arg);

/* Calls <cb> for every reject counter, by reason. */
int hist_db_list_rejects(struct hist_db *db, hist_reject_cb *cb, void *arg);

/* "pending", "acknowledged", "failed", "timeout"; NULL for another value. */
const char *hist_cmd_status_name(enum hist_cmd_status s);

#endif
