/*
 * Parsers for the historian's MQTT topics and JSON payloads (msg.h), with
 * cJSON; every field is type- and range-checked before use.
 */
#include "historian/msg.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <string.h>

#include "moat/error.h"

bool hist_name_is_valid(const char *name, size_t len)
{
	if (len == 0 || len > HIST_NAME_MAX)
		return false;
	for (size_t i = 0; i < len; i++) {
		char c = name[i];
		bool alnum =
		    (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
		if (!alnum && (i == 0 || (c != '.' && c != '_' && c != ':' && c != '-')))
			return false;
	}
	return true;
}

enum hist_topic_kind hist_topic_parse(const char *topic, char id[HIST_NAME_MAX + 1])
{
	static const struct {
		const char *prefix, *suffix;
		enum hist_topic_kind kind;
	} forms[] = {
	    {"moat/", "/telemetry", HIST_TOPIC_TELEMETRY},
	    {"moat/", "/status", HIST_TOPIC_STATUS},
	    {"moat/", "/online", HIST_TOPIC_ONLINE},
	    {"alerts/", "/tamper", HIST_TOPIC_ALERT},
	};
	size_t n = strlen(topic);

	for (size_t i = 0; i < sizeof(forms) / sizeof(forms[0]); i++) {
		size_t pl = strlen(forms[i].prefix), sl = strlen(forms[i].suffix);
		if (n <= pl + sl || strncmp(topic, forms[i].prefix, pl) != 0 ||
		    strcmp(topic + n - sl, forms[i].suffix) != 0)
			continue;
		size_t idl = n - pl - sl;
		if (!hist_name_is_valid(topic + pl, idl))
			return HIST_TOPIC_OTHER;
		memcpy(id, topic + pl, idl);
		id[idl] = '\0';
		return forms[i].kind;
	}
	return HIST_TOPIC_OTHER;
}

/* An integer-valued JSON number in [lo, hi] into *v. */
static bool get_int(const cJSON *o, const char *key, int64_t lo, int64_t hi, int64_t *v)
{
	const cJSON *it = cJSON_GetObjectItemCaseSensitive(o, key);
	if (!cJSON_IsNumber(it) || !isfinite(it->valuedouble) || it->valuedouble < (double)lo ||
	    it->valuedouble > (double)hi || floor(it->valuedouble) != it->valuedouble)
		return false;
	*v = (int64_t)it->valuedouble;
	return true;
}

/* An optional finite number in [lo, hi]: NAN when absent; false when present but bad. */
static bool get_measure(const cJSON *o, const char *key, double lo, double hi, double *v)
{
	const cJSON *it = cJSON_GetObjectItemCaseSensitive(o, key);
	*v = NAN;
	if (it == NULL || cJSON_IsNull(it))
		return true;
	if (!cJSON_IsNumber(it) || !isfinite(it->valuedouble) || it->valuedouble < lo ||
	    it->valuedouble > hi)
		return false;
	*v = it->valuedouble;
	return true;
}

/* "on"/"off" into *r; absent is UNKNOWN; false when present but not one of them. */
static bool get_relay(const cJSON *o, const char *key, enum hist_relay *r)
{
	const cJSON *it = cJSON_GetObjectItemCaseSensitive(o, key);
	*r = HIST_RELAY_UNKNOWN;
	if (it == NULL)
		return true;
	if (!cJSON_IsString(it))
		return false;
	if (strcmp(it->valuestring, "on") == 0)
		*r = HIST_RELAY_ON;
	else if (strcmp(it->valuestring, "off") == 0)
		*r = HIST_RELAY_OFF;
	else
		return false;
	return true;
}

/* Printable ASCII of 1..HIST_NAME_MAX bytes (a status reason such as "bad signer"). */
static bool is_short_text(const char *s)
{
	size_t n = strlen(s);
	if (n == 0 || n > HIST_NAME_MAX)
		return false;
	for (size_t i = 0; i < n; i++)
		if (s[i] < 0x20 || s[i] > 0x7e)
			return false;
	return true;
}

/* Parses <p> as a JSON object whose "device" must be <id>. */
static int parse_object(const char *id, const uint8_t *p, size_t len, cJSON **out, const char **why)
{
	const cJSON *dev;

	*out = cJSON_ParseWithLength((const char *)p, len);
	if (*out == NULL || !cJSON_IsObject(*out)) {
		*why = "malformed-json";
		goto bad;
	}
	dev = cJSON_GetObjectItemCaseSensitive(*out, "device");
	if (!cJSON_IsString(dev)) {
		*why = "malformed-json";
		goto bad;
	}
	if (strcmp(dev->valuestring, id) != 0) {
		*why = "unknown-device";
		cJSON_Delete(*out);
		*out = NULL;
		return MOAT_E_DENIED;
	}
	return MOAT_OK;
bad:
	cJSON_Delete(*out);
	*out = NULL;
	return MOAT_E_MALFORMED;
}

int hist_reading_parse(const char *id, const uint8_t *p, size_t len, struct hist_reading *out,
		       const char **why)
{
	cJSON *o;
	int rc = parse_object(id, p, len, &o, why);

	if (rc < 0)
		return rc;
	memset(out, 0, sizeof(*out));
	out->device = id;
	out->seq = -1;
	*why = "malformed-reading";
	rc = MOAT_E_MALFORMED;
	/* time: after 2001 and before 2100, in ms */
	if (!get_int(o, "time", 1000000000000LL, 4102444800000LL, &out->time_ms))
		goto done;
	if (cJSON_GetObjectItemCaseSensitive(o, "seq") != NULL &&
	    !get_int(o, "seq", 0, INT64_C(1) << 52, &out->seq))
		goto done;
	if (!get_measure(o, "temperature", -273.15, 1000.0, &out->temperature) ||
	    !get_measure(o, "humidity", 0.0, 100.0, &out->humidity) ||
	    !get_relay(o, "relay", &out->relay))
		goto done;
	rc = MOAT_OK;
	*why = NULL;
done:
	cJSON_Delete(o);
	return rc;
}

int hist_status_parse(const char *id, const uint8_t *p, size_t len, struct hist_status *out,
		      const char **why)
{
	const cJSON *cid, *ok, *reason;
	cJSON *o;
	int rc = parse_object(id, p, len, &o, why);

	if (rc < 0)
		return rc;
	memset(out, 0, sizeof(*out));
	*why = "malformed-status";
	rc = MOAT_E_MALFORMED;
	cid = cJSON_GetObjectItemCaseSensitive(o, "cmd_id");
	ok = cJSON_GetObjectItemCaseSensitive(o, "ok");
	reason = cJSON_GetObjectItemCaseSensitive(o, "reason");
	if (!cJSON_IsString(cid) ||
	    !hist_name_is_valid(cid->valuestring, strlen(cid->valuestring)) || !cJSON_IsBool(ok) ||
	    !get_relay(o, "state", &out->relay))
		goto done;
	out->ok = cJSON_IsTrue(ok);
	if (out->ok && out->relay == HIST_RELAY_UNKNOWN)
		goto done;
	if (reason != NULL) {
		if (!cJSON_IsString(reason) || !is_short_text(reason->valuestring))
			goto done;
		strcpy(out->reason, reason->valuestring);
	}
	strcpy(out->cmd_id, cid->valuestring);
	rc = MOAT_OK;
	*why = NULL;
done:
	cJSON_Delete(o);
	return rc;
}

const char *hist_relay_name(enum hist_relay r)
{
	return r == HIST_RELAY_ON ? "on" : r == HIST_RELAY_OFF ? "off" : NULL;
}
