/*
 * libFuzzer target for moat-historian's payload parsers
 * (src/historian/msg.c): any bytes as a topic name, a telemetry reading and
 * a status acknowledgement. Parsed values must stay in their documented
 * ranges; refusals must be MOAT_E_MALFORMED or MOAT_E_DENIED with a reason.
 */
#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <moat/error.h>

#include "historian/msg.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char id[HIST_NAME_MAX + 1], *topic = malloc(size + 1);
	struct hist_reading r;
	struct hist_status s;
	const char *why = NULL;
	int rc;

	if (topic == NULL)
		return 0;
	memcpy(topic, data, size);
	topic[size] = '\0';
	if (hist_topic_parse(topic, id) != HIST_TOPIC_OTHER && !hist_name_is_valid(id, strlen(id)))
		abort();
	free(topic);

	rc = hist_reading_parse("dev-1", data, size, &r, &why);
	if (rc == MOAT_OK) {
		if (r.time_ms <= 0 || strcmp(r.device, "dev-1") != 0 || why != NULL)
			abort();
		if (!isnan(r.temperature) && !isfinite(r.temperature))
			abort();
		if (!isnan(r.humidity) && (r.humidity < 0 || r.humidity > 100))
			abort();
	} else if ((rc != MOAT_E_MALFORMED && rc != MOAT_E_DENIED) || why == NULL) {
		abort();
	}

	why = NULL;
	rc = hist_status_parse("dev-1", data, size, &s, &why);
	if (rc == MOAT_OK) {
		if (!hist_name_is_valid(s.cmd_id, strlen(s.cmd_id)) ||
		    (s.ok && s.relay == HIST_RELAY_UNKNOWN) || strlen(s.reason) > HIST_NAME_MAX)
			abort();
	} else if ((rc != MOAT_E_MALFORMED && rc != MOAT_E_DENIED) || why == NULL) {
		abort();
	}
	return 0;
}
