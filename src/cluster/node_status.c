/*
 * A node's status value (see node_status.h): written with snprintf, read
 * with cJSON, every member checked for its type and range.
 */
#include "cluster/node_status.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "base/text.h"

size_t node_status_format(const struct node_status *ns, char *out, size_t cap)
{
	int n =
	    snprintf(out, cap,
		     "{\"node\":\"%s\",\"started\":%" PRIu64 ",\"updated\":%" PRIu64
		     ",\"clients\":%" PRIu64 ",\"sessions\":%" PRIu64 ",\"subscriptions\":%" PRIu64
		     ",\"messages_in\":%" PRIu64 ",\"messages_out\":%" PRIu64 "}",
		     ns->node, ns->started_s, ns->updated_ms, ns->clients, ns->sessions,
		     ns->subscriptions, ns->messages_in, ns->messages_out);

	return n > 0 && (size_t)n < cap ? (size_t)n : 0;
}

/* A non-negative integer member (JSON numbers are doubles: exact to 2^53). */
static uint64_t figure(const cJSON *o, const char *key)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
	double d = cJSON_IsNumber(v) ? v->valuedouble : 0;

	return d >= 0 && d <= 9007199254740992.0 && d == floor(d) ? (uint64_t)d : 0;
}

bool node_status_parse(const char *json, size_t len, struct node_status *ns)
{
	cJSON *o = cJSON_ParseWithLength(json, len);
	const cJSON *name = cJSON_GetObjectItemCaseSensitive(o, "node");
	bool ok = cJSON_IsObject(o) && cJSON_IsString(name) &&
		  text_is_name(name->valuestring, CLUSTER_NODE_MAX);

	memset(ns, 0, sizeof(*ns));
	if (ok) {
		snprintf(ns->node, sizeof(ns->node), "%s", name->valuestring);
		ns->started_s = figure(o, "started");
		ns->updated_ms = figure(o, "updated");
		ns->clients = figure(o, "clients");
		ns->sessions = figure(o, "sessions");
		ns->subscriptions = figure(o, "subscriptions");
		ns->messages_in = figure(o, "messages_in");
		ns->messages_out = figure(o, "messages_out");
	}
	cJSON_Delete(o);
	return ok;
}

bool node_status_alive(uint64_t stored_ms, uint64_t now_ms)
{
	return stored_ms + NODE_SILENT_MS >= now_ms;
}
