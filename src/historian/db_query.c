/*
 * The historian's storage calls, written once in SQL both SQLite and
 * PostgreSQL accept and run through the backend's ops->run: device state,
 * commands, alerts, reject counters, the queries, and the per-statement
 * reading ingest SQLite uses. Every value is a bound parameter.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <moat/error.h>

#include "historian/db_impl.h"

static const char *const status_names[] = {"pending", "acknowledged", "failed", "timeout"};

const char *hist_cmd_status_name(enum hist_cmd_status s)
{
	return (unsigned)s < sizeof(status_names) / sizeof(status_names[0]) ? status_names[s]
									    : NULL;
}

static enum hist_cmd_status status_parse(const char *s)
{
	for (unsigned i = 0; i < sizeof(status_names) / sizeof(status_names[0]); i++)
		if (strcmp(s, status_names[i]) == 0)
			return (enum hist_cmd_status)i;
	return HIST_CMD_PENDING;
}

/* enum hist_relay / hist_online <-> the column: NULL unknown, 0 no/off, 1 yes/on */
static struct hist_val tri_val(int v)
{
	return v == 0 ? (struct hist_val){.type = HIST_NULL} : hv_i64(v - 1);
}

static int tri_col(const struct hist_val *v)
{
	return v->type == HIST_NULL ? 0 : hv_as_i64(v) != 0 ? 2 : 1;
}

static int collect_i64(void *arg, const struct hist_val *cols, size_t n)
{
	if (n > 0)
		*(int64_t *)arg = hv_as_i64(&cols[0]);
	return MOAT_OK;
}

static int count_row(void *arg, const struct hist_val *cols, size_t n)
{
	(void)cols;
	(void)n;
	++*(size_t *)arg;
	return MOAT_OK;
}

/* ---- ingest ---- */

struct cell {
	int64_t bucket_ms, n, t_n, h_n;
	double t_sum, t_min, t_max, h_sum, h_min, h_max;
};

static void cell_start(struct cell *c, int64_t bucket_ms)
{
	*c = (struct cell){
	    .bucket_ms = bucket_ms, .t_min = NAN, .t_max = NAN, .h_min = NAN, .h_max = NAN};
}

static void cell_add(struct cell *c, const struct hist_reading *r)
{
	c->n++;
	if (!isnan(r->temperature)) {
		c->t_n++;
		c->t_sum += r->temperature;
		c->t_min = isnan(c->t_min) || r->temperature < c->t_min ? r->temperature : c->t_min;
		c->t_max = isnan(c->t_max) || r->temperature > c->t_max ? r->temperature : c->t_max;
	}
	if (!isnan(r->humidity)) {
		c->h_n++;
		c->h_sum += r->humidity;
		c->h_min = isnan(c->h_min) || r->humidity < c->h_min ? r->humidity : c->h_min;
		c->h_max = isnan(c->h_max) || r->humidity > c->h_max ? r->humidity : c->h_max;
	}
}

static int cell_flush(struct hist_db *db, int64_t device_id, const struct cell *c)
{
	struct hist_val p[11];

	if (c->n == 0)
		return MOAT_OK;
	p[0] = hv_i64(c->bucket_ms);
	p[1] = hv_i64(device_id);
	p[2] = hv_i64(c->n);
	p[3] = hv_i64(c->t_n);
	p[4] = hv_f64(c->t_sum);
	p[5] = hv_f64(c->t_min);
	p[6] = hv_f64(c->t_max);
	p[7] = hv_i64(c->h_n);
	p[8] = hv_f64(c->h_sum);
	p[9] = hv_f64(c->h_min);
	p[10] = hv_f64(c->h_max);
	return db->ops->run(
	    db, HQ_ROLLUP_UPSERT,
	    "INSERT INTO readings_5m(bucket_ms, device_id, n, t_n, t_sum, t_min,"
	    " t_max, h_n, h_sum, h_min, h_max)"
	    " VALUES($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)" HIST_SQL_ROLLUP_MERGE,
	    p, 11, NULL, NULL);
}

int hist_device_id(struct hist_db *db, const char *name, int64_t first_ms, int64_t *id)
{
	struct hist_val p[2];
	int rc;

	if (devcache_get(&db->devices, name, id))
		return MOAT_OK;
	p[0] = hv_text(name);
	p[1] = hv_i64(first_ms);
	*id = -1;
	rc =
	    db->ops->run(db, HQ_DEVICE_CREATE,
			 "INSERT INTO devices(name, first_seen_ms) VALUES($1, $2)"
			 " ON CONFLICT(name) DO UPDATE SET first_seen_ms = CASE"
			 " WHEN excluded.first_seen_ms < devices.first_seen_ms"
			 " THEN excluded.first_seen_ms ELSE devices.first_seen_ms END RETURNING id",
			 p, 2, collect_i64, id);
	if (rc == MOAT_OK && *id < 0)
		rc = hist_fail(db, MOAT_E_IO, "device %s: no id", name);
	if (rc == MOAT_OK && devcache_put(&db->devices, name, *id) < 0)
		rc = hist_fail(db, MOAT_E_NOMEM, "out of memory");
	return rc;
}

static int insert_reading(struct hist_db *db, int64_t device_id, const struct hist_reading *r,
			  bool *inserted)
{
	struct hist_val p[6];
	int rc;

	p[0] = hv_i64(device_id);
	p[1] = hv_i64(r->time_ms);
	p[2] = r->seq >= 0 ? hv_i64(r->seq) : (struct hist_val){.type = HIST_NULL};
	p[3] = hv_f64(r->temperature);
	p[4] = hv_f64(r->humidity);
	p[5] = tri_val((int)r->relay);
	rc = db->ops->run(
	    db, HQ_READING_INSERT,
	    "INSERT INTO readings(device_id, time_ms, seq, temperature, humidity, relay)"
	    " VALUES($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING",
	    p, 6, NULL, NULL);
	*inserted = db->changes > 0;
	return rc;
}

/* Stores one device's readings r[0..n) (sorted by time). */
static int add_device_run(struct hist_db *db, int64_t id, const struct hist_reading *const *r,
			  size_t n)
{
	struct cell c;
	int rc = MOAT_OK;

	cell_start(&c, hist_rollup_cell(r[0]->time_ms));
	for (size_t i = 0; rc == MOAT_OK && i < n; i++) {
		bool inserted;

		rc = insert_reading(db, id, r[i], &inserted);
		if (rc < 0 || !inserted)
			continue;
		if (hist_rollup_cell(r[i]->time_ms) != c.bucket_ms) {
			rc = cell_flush(db, id, &c);
			cell_start(&c, hist_rollup_cell(r[i]->time_ms));
		}
		cell_add(&c, r[i]);
	}
	return rc == MOAT_OK ? cell_flush(db, id, &c) : rc;
}

int hist_add_readings_rows(struct hist_db *db, const struct hist_reading *const *r,
			   const int64_t *ids, size_t n)
{
	size_t i = 0;
	int rc = MOAT_OK;

	while (rc == MOAT_OK && i < n) {
		size_t j = i + 1;

		while (j < n && ids[j] == ids[i])
			j++;
		rc = add_device_run(db, ids[i], r + i, j - i);
		i = j;
	}
	return rc;
}

/* ---- device state ---- */

/* Checks the name <name> and the time of an event about it. */
static int check_name_time(struct hist_db *db, const char *what, const char *name, int64_t time_ms)
{
	int rc = hist_check_name(db, what, name);

	return rc == MOAT_OK ? hist_check_time(db, what, time_ms) : rc;
}

/* Sets column <col> (with its time column <at>) of a device, creating the
 * device when new; an event older than the stored one changes nothing. */
#define DEVICE_STATE_SQL(col, at)                                                                  \
	"INSERT INTO devices(name, first_seen_ms, " col ", " at ") VALUES($1, $2, $3, $2)"         \
	" ON CONFLICT(name) DO UPDATE SET " col                                                    \
	" = CASE WHEN " HIST_NEWER(at) " THEN excluded." col " ELSE devices." col " END, " at      \
				       " = CASE WHEN " HIST_NEWER(at) " THEN excluded." at         \
								      " ELSE devices." at " END"

static const char online_sql[] = DEVICE_STATE_SQL("online", "online_ms");
static const char relay_sql[] = DEVICE_STATE_SQL("relay", "relay_ms");

static int set_state(struct hist_db *db, enum hist_q q, const char *sql, const char *device,
		     bool value, int64_t time_ms)
{
	struct hist_val p[3];
	int rc = check_name_time(db, "device", device, time_ms);

	if (rc < 0)
		return rc;
	p[0] = hv_text(device);
	p[1] = hv_i64(time_ms);
	p[2] = hv_i64(value ? 1 : 0);
	return db->ops->run(db, q, sql, p, 3, NULL, NULL);
}

int hist_db_set_online(struct hist_db *db, const char *device, bool online, int64_t time_ms)
{
	return set_state(db, HQ_DEVICE_ONLINE, online_sql, device, online, time_ms);
}

int hist_db_set_relay(struct hist_db *db, const char *device, bool on, int64_t time_ms)
{
	return set_state(db, HQ_DEVICE_RELAY, relay_sql, device, on, time_ms);
}

/* ---- commands ---- */

int hist_db_add_command(struct hist_db *db, const struct hist_command *c)
{
	struct hist_val p[5];
	size_t rows = 0;
	int rc = check_name_time(db, "command device", c->device, c->created_ms);

	if (rc == MOAT_OK)
		rc = hist_check_name(db, "command id", c->id);
	if (rc == MOAT_OK)
		rc = hist_check_name(db, "command requester", c->requested_by);
	if (rc < 0)
		return rc;
	p[0] = hv_text(c->id);
	p[1] = hv_text(c->device);
	p[2] = hv_i64(c->on ? 1 : 0);
	p[3] = hv_text(c->requested_by);
	p[4] = hv_i64(c->created_ms);
	rc =
	    db->ops->run(db, HQ_COMMAND_INSERT,
			 "INSERT INTO commands(id, device, state, requested_by, created_ms, status,"
			 " updated_ms) VALUES($1, $2, $3, $4, $5, 'pending', $5)"
			 " ON CONFLICT(id) DO NOTHING RETURNING id",
			 p, 5, count_row, &rows);
	if (rc == MOAT_OK && rows == 0)
		return hist_fail(db, MOAT_E_DENIED, "command %s exists already", c->id);
	return rc;
}

struct status_arg {
	bool found;
	enum hist_cmd_status status;
};

static int collect_status(void *arg, const struct hist_val *cols, size_t n)
{
	struct status_arg *s = arg;

	s->found = n > 0;
	if (n > 0)
		s->status = status_parse(hv_as_text(&cols[0]));
	return MOAT_OK;
}

int hist_db_update_command(struct hist_db *db, const char *id, enum hist_cmd_status status,
			   int64_t time_ms, const char *detail)
{
	struct status_arg st = {0};
	struct hist_val p[4];
	size_t rows = 0;
	int rc = hist_check_name(db, "command id", id);

	if (rc == MOAT_OK && (status == HIST_CMD_PENDING || hist_cmd_status_name(status) == NULL))
		rc = hist_fail(db, MOAT_E_INVAL,
			       "command %s: a new status must be acknowledged,"
			       " failed or timeout",
			       id);
	if (rc == MOAT_OK)
		rc = hist_check_time(db, "command time", time_ms);
	if (rc == MOAT_OK && detail != NULL)
		rc = hist_check_text(db, "command detail", detail, HIST_DETAIL_MAX);
	if (rc < 0)
		return rc;
	p[0] = hv_text(hist_cmd_status_name(status));
	p[1] = hv_i64(time_ms);
	p[2] = hv_text(detail != NULL ? detail : "");
	p[3] = hv_text(id);
	rc = db->ops->begin(db);
	if (rc < 0)
		return rc;
	rc = db->ops->run(db, HQ_COMMAND_UPDATE,
			  "UPDATE commands SET status = $1, updated_ms = $2, detail = $3"
			  " WHERE id = $4 AND status = 'pending' RETURNING id",
			  p, 4, count_row, &rows);
	if (rc == MOAT_OK && rows == 0)
		rc =
		    db->ops->run(db, HQ_COMMAND_STATUS, "SELECT status FROM commands WHERE id = $1",
				 &p[3], 1, collect_status, &st);
	if (rc == MOAT_OK && rows == 0)
		rc = st.found ? hist_fail(db, MOAT_E_DENIED, "command %s is %s already", id,
					  hist_cmd_status_name(st.status))
			      : hist_fail(db, MOAT_E_NOTFOUND, "no command %s", id);
	return db->ops->end(db, rc);
}

static int collect_command(void *arg, const struct hist_val *cols, size_t n)
{
	struct hist_command *c = arg;

	if (n < 8)
		return MOAT_E_PARSE;
	snprintf(c->id, sizeof(c->id), "%s", hv_as_text(&cols[0]));
	snprintf(c->device, sizeof(c->device), "%s", hv_as_text(&cols[1]));
	c->on = hv_as_i64(&cols[2]) != 0;
	snprintf(c->requested_by, sizeof(c->requested_by), "%s", hv_as_text(&cols[3]));
	c->created_ms = hv_as_i64(&cols[4]);
	c->status = status_parse(hv_as_text(&cols[5]));
	c->updated_ms = hv_as_i64(&cols[6]);
	snprintf(c->detail, sizeof(c->detail), "%s", hv_as_text(&cols[7]));
	return MOAT_OK;
}

int hist_db_get_command(struct hist_db *db, const char *id, struct hist_command *out)
{
	struct hist_val p;
	int rc = hist_check_name(db, "command id", id);

	if (rc < 0)
		return rc;
	memset(out, 0, sizeof(*out));
	p = hv_text(id);
	rc = db->ops->run(db, HQ_COMMAND_GET,
			  "SELECT id, device, state, requested_by, created_ms, status, updated_ms,"
			  " detail FROM commands WHERE id = $1",
			  &p, 1, collect_command, out);
	if (rc == MOAT_OK && out->id[0] == '\0')
		return hist_fail(db, MOAT_E_NOTFOUND, "no command %s", id);
	return rc;
}

/* ---- alerts and rejects ---- */

int hist_db_add_alert(struct hist_db *db, const struct hist_alert *a, int64_t *id)
{
	struct hist_val p[5];
	int64_t new_id = 0;
	int rc = check_name_time(db, "alert device", a->device, a->time_ms);

	if (rc == MOAT_OK)
		rc = hist_check_name(db, "alert kind", a->kind);
	if (rc == MOAT_OK)
		rc = hist_check_text(db, "alert detail", a->detail != NULL ? a->detail : "",
				     HIST_DETAIL_MAX);
	if (rc == MOAT_OK &&
	    (a->envelope_len > HIST_ENVELOPE_MAX || (a->envelope == NULL && a->envelope_len > 0)))
		rc = hist_fail(db, MOAT_E_INVAL, "alert envelope: at most %d bytes",
			       HIST_ENVELOPE_MAX);
	if (rc < 0)
		return rc;
	p[0] = hv_text(a->device);
	p[1] = hv_i64(a->time_ms);
	p[2] = hv_text(a->kind);
	p[3] = hv_text(a->detail != NULL ? a->detail : "");
	p[4] = hv_blob(a->envelope, a->envelope_len);
	rc = db->ops->run(db, HQ_ALERT_INSERT,
			  "INSERT INTO alerts(device, time_ms, kind, detail, envelope)"
			  " VALUES($1, $2, $3, $4, $5) RETURNING id",
			  p, 5, collect_i64, &new_id);
	if (rc == MOAT_OK && id != NULL)
		*id = new_id;
	return rc;
}

int hist_db_count_reject(struct hist_db *db, const char *reason, int64_t time_ms)
{
	struct hist_val p[2];
	int rc = check_name_time(db, "reject reason", reason, time_ms);

	if (rc < 0)
		return rc;
	p[0] = hv_text(reason);
	p[1] = hv_i64(time_ms);
	return db->ops->run(db, HQ_REJECT_COUNT,
			    "INSERT INTO rejects(reason, count, last_ms) VALUES($1, 1, $2)"
			    " ON CONFLICT(reason) DO UPDATE SET count = rejects.count + 1,"
			    " last_ms = CASE WHEN excluded.last_ms > rejects.last_ms"
			    " THEN excluded.last_ms ELSE rejects.last_ms END",
			    p, 2, NULL, NULL);
}

/* ---- queries ---- */

struct id_name {
	int64_t id;
	char name[HIST_NAME_MAX + 1];
};

struct list_arg {
	hist_device_cb *device_cb;
	hist_reading_cb *reading_cb;
	hist_bucket_cb *bucket_cb;
	hist_alert_cb *alert_cb;
	hist_reject_cb *reject_cb;
	void *arg;
	const char *device;
	int64_t from_ms, width_ms;
	struct id_name *names; /* the overview's device names, by id */
	size_t names_count, names_cap;
};

static int device_row(void *arg, const struct hist_val *cols, size_t n)
{
	struct list_arg *l = arg;
	struct hist_device d = {0};

	if (n < 11)
		return MOAT_E_PARSE;
	snprintf(d.name, sizeof(d.name), "%s", hv_as_text(&cols[0]));
	d.online = (enum hist_online)tri_col(&cols[1]);
	d.online_ms = hv_as_i64(&cols[2]);
	d.relay = (enum hist_relay)tri_col(&cols[3]);
	d.relay_ms = hv_as_i64(&cols[4]);
	d.first_seen_ms = hv_as_i64(&cols[5]);
	d.last.device = d.name;
	d.last.time_ms = hv_as_i64(&cols[6]);
	d.last.seq = cols[7].type == HIST_NULL ? -1 : hv_as_i64(&cols[7]);
	d.last.temperature = hv_as_f64(&cols[8]);
	d.last.humidity = hv_as_f64(&cols[9]);
	d.last.relay = (enum hist_relay)tri_col(&cols[10]);
	/* the newer of the newest reading and the last relay event wins */
	if (d.last.relay != HIST_RELAY_UNKNOWN &&
	    (d.relay == HIST_RELAY_UNKNOWN || d.last.time_ms >= d.relay_ms)) {
		d.relay = d.last.relay;
		d.relay_ms = d.last.time_ms;
	}
	d.last_seen_ms = d.last.time_ms;
	if (d.online == HIST_ONLINE_YES && d.online_ms > d.last_seen_ms)
		d.last_seen_ms = d.online_ms;
	return l->device_cb(l->arg, &d);
}

int hist_db_list_devices(struct hist_db *db, hist_device_cb *cb, void *arg)
{
	struct list_arg l = {.device_cb = cb, .arg = arg};

	return db->ops->run(
	    db, HQ_DEVICES,
	    "SELECT d.name, d.online, d.online_ms, d.relay, d.relay_ms,"
	    " d.first_seen_ms, r.time_ms, r.seq, r.temperature, r.humidity, r.relay"
	    " FROM devices d LEFT JOIN readings r ON r.device_id = d.id AND r.time_ms ="
	    " (SELECT max(time_ms) FROM readings WHERE device_id = d.id)"
	    " ORDER BY d.name",
	    NULL, 0, device_row, &l);
}

static int reading_row(void *arg, const struct hist_val *cols, size_t n)
{
	struct list_arg *l = arg;
	struct hist_reading r;

	if (n < 5)
		return MOAT_E_PARSE;
	r.device = l->device;
	r.time_ms = hv_as_i64(&cols[0]);
	r.seq = cols[1].type == HIST_NULL ? -1 : hv_as_i64(&cols[1]);
	r.temperature = hv_as_f64(&cols[2]);
	r.humidity = hv_as_f64(&cols[3]);
	r.relay = (enum hist_relay)tri_col(&cols[4]);
	return l->reading_cb(l->arg, &r);
}

static int check_range(struct hist_db *db, int64_t from_ms, int64_t to_ms)
{
	int rc = hist_check_time(db, "from", from_ms);

	if (rc == MOAT_OK)
		rc = hist_check_time(db, "to", to_ms);
	if (rc == MOAT_OK && from_ms >= to_ms)
		rc = hist_fail(db, MOAT_E_INVAL, "range: from must be before to");
	return rc;
}

int hist_db_readings(struct hist_db *db, const char *device, int64_t from_ms, int64_t to_ms,
		     unsigned limit, hist_reading_cb *cb, void *arg)
{
	struct list_arg l = {.reading_cb = cb, .arg = arg, .device = device};
	struct hist_val p[4];
	int rc = hist_check_name(db, "device", device);

	if (rc == MOAT_OK)
		rc = check_range(db, from_ms, to_ms);
	if (rc == MOAT_OK)
		rc = hist_check_limit(db, limit, HIST_LIMIT_MAX);
	if (rc < 0)
		return rc;
	p[0] = hv_text(device);
	p[1] = hv_i64(from_ms);
	p[2] = hv_i64(to_ms);
	p[3] = hv_i64(limit);
	return db->ops->run(db, HQ_READINGS,
			    "SELECT time_ms, seq, temperature, humidity, relay FROM readings"
			    " WHERE device_id = (SELECT id FROM devices WHERE name = $1)"
			    " AND time_ms >= $2 AND time_ms < $3 ORDER BY time_ms DESC LIMIT $4",
			    p, 4, reading_row, &l);
}

static int name_row(void *arg, const struct hist_val *cols, size_t n)
{
	struct list_arg *l = arg;

	if (n < 2)
		return MOAT_E_PARSE;
	if (l->names_count == l->names_cap) {
		size_t cap = l->names_cap == 0 ? 256 : l->names_cap * 2;
		struct id_name *names = realloc(l->names, cap * sizeof(*names));

		if (names == NULL)
			return MOAT_E_NOMEM;
		l->names = names;
		l->names_cap = cap;
	}
	l->names[l->names_count].id = hv_as_i64(&cols[0]);
	snprintf(l->names[l->names_count].name, sizeof(l->names[0].name), "%s",
		 hv_as_text(&cols[1]));
	l->names_count++;
	return MOAT_OK;
}

/* The name of device <id> (l->names is sorted by id), or "" when unknown. */
static const char *name_of(const struct list_arg *l, int64_t id)
{
	size_t lo = 0, hi = l->names_count;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (l->names[mid].id == id)
			return l->names[mid].name;
		if (l->names[mid].id < id)
			lo = mid + 1;
		else
			hi = mid;
	}
	return "";
}

static int bucket_row(void *arg, const struct hist_val *cols, size_t n)
{
	struct list_arg *l = arg;
	struct hist_bucket b;

	if (n < 6)
		return MOAT_E_PARSE;
	b.device = l->device != NULL ? l->device : name_of(l, hv_as_i64(&cols[0]));
	b.index = (unsigned)hv_as_i64(&cols[1]);
	b.start_ms = l->from_ms + (int64_t)b.index * l->width_ms;
	b.count = hv_as_i64(&cols[2]);
	b.t_avg = hv_as_f64(&cols[3]);
	b.t_min = hv_as_f64(&cols[4]);
	b.t_max = hv_as_f64(&cols[5]);
	b.h_avg = n >= 9 ? hv_as_f64(&cols[6]) : NAN;
	b.h_min = n >= 9 ? hv_as_f64(&cols[7]) : NAN;
	b.h_max = n >= 9 ? hv_as_f64(&cols[8]) : NAN;
	return l->bucket_cb(l->arg, &b);
}

/* The overview's eight statements, by [temperature only][cells][one
 * device]. Buckets of one rollup cell read the cells as they are, in key
 * order, with no grouping (the fast path, e.g. 288 buckets a day); wider
 * buckets group cells in SQL. The rollup is read alone: its rows exist
 * only for devices in `devices`, which are never deleted. What an
 * all-device overview costs is reading 288,000 rows a day, and SQLite
 * spends as much per column read as per row: temperature only (what the
 * HTTP API serves) reads 7 columns of the 11. */
#define OVERVIEW_FROM " FROM readings_5m r WHERE r.bucket_ms >= $1 AND r.bucket_ms < $3"
#define OVERVIEW_ONE " AND r.device_id = (SELECT id FROM devices WHERE name = $4)"
#define OVERVIEW_CELLS_T                                                                           \
	"SELECT r.device_id, (r.bucket_ms - $1) / $2, r.n, r.t_sum / NULLIF(r.t_n, 0), r.t_min,"   \
	" r.t_max"
#define OVERVIEW_CELLS_H ", r.h_sum / NULLIF(r.h_n, 0), r.h_min, r.h_max"
#define OVERVIEW_CELLS_ORDER " ORDER BY r.bucket_ms, r.device_id"
#define OVERVIEW_GROUPS_T                                                                          \
	"SELECT r.device_id, (r.bucket_ms - $1) / $2 AS b, CAST(sum(r.n) AS BIGINT),"              \
	" sum(r.t_sum) / CAST(NULLIF(sum(r.t_n), 0) AS DOUBLE PRECISION), min(r.t_min),"           \
	" max(r.t_max)"
#define OVERVIEW_GROUPS_H                                                                          \
	", sum(r.h_sum) / CAST(NULLIF(sum(r.h_n), 0) AS DOUBLE PRECISION), min(r.h_min),"          \
	" max(r.h_max)"
#define OVERVIEW_GROUPS_ORDER " GROUP BY b, r.device_id ORDER BY b, r.device_id"
#define OVERVIEW_SET(t, h)                                                                         \
	{                                                                                          \
		{OVERVIEW_GROUPS_T h OVERVIEW_FROM OVERVIEW_GROUPS_ORDER,                          \
		 OVERVIEW_GROUPS_T h OVERVIEW_FROM OVERVIEW_ONE OVERVIEW_GROUPS_ORDER},            \
		{OVERVIEW_CELLS_T t OVERVIEW_FROM OVERVIEW_CELLS_ORDER,                            \
		 OVERVIEW_CELLS_T t OVERVIEW_FROM OVERVIEW_ONE OVERVIEW_CELLS_ORDER},              \
	}

static const char *const overview_sql[2][2][2] = {
    OVERVIEW_SET(OVERVIEW_CELLS_H, OVERVIEW_GROUPS_H),
    OVERVIEW_SET("", ""),
};

static int overview(struct hist_db *db, bool temperature_only, const char *device, int64_t from_ms,
		    int64_t to_ms, unsigned buckets, hist_bucket_cb *cb, void *arg)
{
	struct list_arg l = {.bucket_cb = cb, .arg = arg};
	struct hist_val p[4];
	int64_t width;
	bool cells, one = device != NULL;
	int rc = one ? hist_check_name(db, "device", device) : MOAT_OK;

	if (rc == MOAT_OK)
		rc = check_range(db, from_ms, to_ms);
	if (rc == MOAT_OK && (buckets < 1 || buckets > HIST_BUCKETS_MAX))
		rc = hist_fail(db, MOAT_E_INVAL, "buckets %u: must be 1 to %d", buckets,
			       HIST_BUCKETS_MAX);
	if (rc < 0)
		return rc;
	l.from_ms = hist_rollup_cell(from_ms);
	width = (to_ms - l.from_ms + buckets - 1) / buckets;
	l.width_ms = (width + HIST_ROLLUP_MS - 1) / HIST_ROLLUP_MS * HIST_ROLLUP_MS;
	cells = l.width_ms == HIST_ROLLUP_MS;
	p[0] = hv_i64(l.from_ms);
	p[1] = hv_i64(l.width_ms);
	p[2] = hv_i64(to_ms);
	if (one) {
		p[3] = hv_text(device);
		l.device = device;
	} else {
		rc = db->ops->run(db, HQ_DEVICE_NAMES, "SELECT id, name FROM devices ORDER BY id",
				  NULL, 0, name_row, &l);
	}
	if (rc == MOAT_OK)
		rc = db->ops->run(db,
				  (enum hist_q)(HQ_OVERVIEW + 4 * temperature_only + 2 * cells + one),
				  overview_sql[temperature_only][cells][one], p, one ? 4 : 3,
				  bucket_row, &l);
	free(l.names);
	return rc == MOAT_E_NOMEM ? hist_fail(db, rc, "out of memory") : rc;
}

int hist_db_overview(struct hist_db *db, const char *device, int64_t from_ms, int64_t to_ms,
		     unsigned buckets, hist_bucket_cb *cb, void *arg)
{
	return overview(db, false, device, from_ms, to_ms, buckets, cb, arg);
}

int hist_db_temperature_overview(struct hist_db *db, const char *device, int64_t from_ms,
				 int64_t to_ms, unsigned buckets, hist_bucket_cb *cb, void *arg)
{
	return overview(db, true, device, from_ms, to_ms, buckets, cb, arg);
}

static int alert_row(void *arg, const struct hist_val *cols, size_t n)
{
	struct list_arg *l = arg;
	struct hist_alert a;

	if (n < 6)
		return MOAT_E_PARSE;
	a.id = hv_as_i64(&cols[0]);
	a.device = hv_as_text(&cols[1]);
	a.time_ms = hv_as_i64(&cols[2]);
	a.kind = hv_as_text(&cols[3]);
	a.detail = hv_as_text(&cols[4]);
	a.envelope = cols[5].type == HIST_BLOB ? cols[5].p : NULL;
	a.envelope_len = cols[5].type == HIST_BLOB ? cols[5].len : 0;
	return l->alert_cb(l->arg, &a);
}

int hist_db_recent_alerts(struct hist_db *db, unsigned limit, hist_alert_cb *cb, void *arg)
{
	struct list_arg l = {.alert_cb = cb, .arg = arg};
	struct hist_val p;
	int rc = hist_check_limit(db, limit, HIST_LIMIT_MAX);

	if (rc < 0)
		return rc;
	p = hv_i64(limit);
	return db->ops->run(db, HQ_ALERTS,
			    "SELECT id, device, time_ms, kind, detail, envelope FROM alerts"
			    " ORDER BY time_ms DESC, id DESC LIMIT $1",
			    &p, 1, alert_row, &l);
}

static int reject_row(void *arg, const struct hist_val *cols, size_t n)
{
	struct list_arg *l = arg;

	if (n < 3)
		return MOAT_E_PARSE;
	return l->reject_cb(l->arg, hv_as_text(&cols[0]), hv_as_i64(&cols[1]), hv_as_i64(&cols[2]));
}

int hist_db_list_rejects(struct hist_db *db, hist_reject_cb *cb, void *arg)
{
	struct list_arg l = {.reject_cb = cb, .arg = arg};

	return db->ops->run(db, HQ_REJECTS,
			    "SELECT reason, count, last_ms FROM rejects ORDER BY reason", NULL, 0,
			    reject_row, &l);
}
