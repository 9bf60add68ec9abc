/*
 * moat-device: parsing the command plaintext and the stale/replay decision
 * (command.h).
 */
#include "device/command.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <string.h>
#include <strings.h>

#include <moat/error.h>

void cmd_seen_init(struct cmd_seen *s)
{
	memset(s, 0, sizeof(*s));
	s->floor_iat = INT64_MIN;
}

static bool is_hex_id(const char *s)
{
	size_t i;

	for (i = 0; i < CMD_ID_LEN; i++) {
		char ch = s[i];
		if (!((ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'f') ||
		      (ch >= 'A' && ch <= 'F')))
			return false;
	}
	return s[CMD_ID_LEN] == '\0';
}

static int parse_obj(const cJSON *root, struct cmd *c)
{
	const cJSON *id = cJSON_GetObjectItemCaseSensitive(root, "id");
	const cJSON *state = cJSON_GetObjectItemCaseSensitive(root, "state");
	const cJSON *iat = cJSON_GetObjectItemCaseSensitive(root, "iat");
	double v;

	if (!cJSON_IsString(id) || !is_hex_id(id->valuestring))
		return MOAT_E_MALFORMED;
	memcpy(c->id, id->valuestring, CMD_ID_LEN + 1);
	if (cJSON_GetArraySize(root) != 3 || !cJSON_IsString(state) || !cJSON_IsNumber(iat))
		return MOAT_E_MALFORMED;
	if (strcmp(state->valuestring, "on") == 0)
		c->on = true;
	else if (strcmp(state->valuestring, "off") == 0)
		c->on = false;
	else
		return MOAT_E_MALFORMED;
	v = iat->valuedouble;
	if (!(v >= 0 && v <= 9007199254740991.0) || floor(v) != v)
		return MOAT_E_MALFORMED;
	c->iat = (int64_t)v;
	return MOAT_OK;
}

int cmd_parse(const uint8_t *json, size_t len, struct cmd *c)
{
	const char *text = (const char *)json, *end = NULL;
	cJSON *root;
	int rc;

	memset(c, 0, sizeof(*c));
	if (len == 0 || len > CMD_JSON_MAX || memchr(json, '\0', len) != NULL)
		return MOAT_E_MALFORMED;
	root = cJSON_ParseWithLengthOpts(text, len, &end, false);
	if (root == NULL)
		return MOAT_E_MALFORMED;
	while (end < text + len && strchr(" \t\r\n", *end) != NULL)
		end++;
	rc = cJSON_IsObject(root) && end == text + len ? parse_obj(root, c) : MOAT_E_MALFORMED;
	cJSON_Delete(root);
	return rc;
}

const char *cmd_decide(struct cmd_seen *s, const struct cmd *c, int64_t now_s)
{
	size_t i, slot;

	if (c->iat < now_s - CMD_MAX_AGE_S || c->iat > now_s + CMD_MAX_AGE_S)
		return "stale";
	if (c->iat <= s->floor_iat)
		return "replayed";
	for (i = 0; i < s->count; i++)
		if (strcasecmp(s->ring[i].id, c->id) == 0)
			return "replayed";
	slot = s->next;
	if (s->count == CMD_SEEN_MAX && s->ring[slot].iat > s->floor_iat)
		s->floor_iat = s->ring[slot].iat;
	memcpy(s->ring[slot].id, c->id, CMD_ID_LEN + 1);
	s->ring[slot].iat = c->iat;
	s->next = (slot + 1) % CMD_SEEN_MAX;
	if (s->count < CMD_SEEN_MAX)
		s->count++;
	return NULL;
}
