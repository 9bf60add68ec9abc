/*
 * moat-historian's MQTT payload parsers (contract: docs/historian.md):
 * topics moat/<id>/<kind> and alerts/<id>/tamper, the plaintext of a
 * telemetry reading and of a command status acknowledgement. Pure
 * functions over untrusted bytes; nothing here does I/O.
 */
#ifndef MOAT_HISTORIAN_MSG_H
#define MOAT_HISTORIAN_MSG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "historian/db.h"

enum hist_topic_kind {
	HIST_TOPIC_OTHER = 0,
	HIST_TOPIC_TELEMETRY,
	HIST_TOPIC_STATUS,
	HIST_TOPIC_ONLINE,
	HIST_TOPIC_ALERT,
};

/* A command acknowledgement from moat/<id>/status. */
struct hist_status {
	char cmd_id[HIST_NAME_MAX + 1];
	bool ok;
	enum hist_relay relay; /* the state reported when ok */
	char reason[HIST_NAME_MAX + 1];
};

/* True when <name> is a valid device name for the storage (1..HIST_NAME_MAX
 * of [A-Za-z0-9._:-], starting with a letter or digit). */
bool hist_name_is_valid(const char *name, size_t len);

/* Splits <topic> into its kind and the device id (copied into <id>).
 * HIST_TOPIC_OTHER when it is none of the historian's topics or the id is
 * not a valid name. */
enum hist_topic_kind hist_topic_parse(const char *topic, char id[HIST_NAME_MAX + 1]);

/* Parses the reading <p> (<len> bytes of JSON) received for device <id>
 * into <out> (out->device = <id>). MOAT_E_MALFORMED for bad JSON or a bad
 * field, MOAT_E_DENIED when "device" is not <id> (an unknown device);
 * <why> gets a static reason name either way. */
int hist_reading_parse(const char *id, const uint8_t *p, size_t len, struct hist_reading *out,
		       const char **why);

/* Parses the status acknowledgement <p> (<len> bytes of JSON) from device
 * <id> into <out>; errors as hist_reading_parse. */
int hist_status_parse(const char *id, const uint8_t *p, size_t len, struct hist_status *out,
		      const char **why);

/* "on", "off" or NULL for <r>. */
const char *hist_relay_name(enum hist_relay r);

#endif
