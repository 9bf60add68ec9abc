/*
 * Topic remapping for bridges (see topic_map.h).
 */
#include "bridge/topic_map.h"

#include <stdlib.h>
#include <string.h>

#include <moat/bytes.h>
#include <moat/error.h>

#include "codec/topic.h"

/* <topic> without <strip> in front (when it starts with it), with <add>
 * in front instead (when not NULL). */
static char *swap_prefix(const char *topic, const char *strip, const char *add)
{
	size_t strip_len = strip != NULL ? strlen(strip) : 0,
	       add_len = add != NULL ? strlen(add) : 0;
	size_t rest_len;
	char *s;

	if (strip_len > 0 && strncmp(topic, strip, strip_len) == 0)
		topic += strip_len;
	rest_len = strlen(topic);
	s = malloc(add_len + rest_len + 1);
	if (s == NULL)
		return NULL;
	if (add_len > 0)
		memcpy(s, add, add_len);
	memcpy(s + add_len, topic, rest_len + 1);
	return s;
}

/* Sets <*out> to <topic> with its prefix swapped; MOAT_OK or MOAT_E_NOMEM. */
static int map(const char *topic, const char *strip, const char *add, char **out)
{
	*out = swap_prefix(topic, strip, add);
	return *out != NULL ? MOAT_OK : MOAT_E_NOMEM;
}

int bridge_map_out(const struct moat_bridge_conf *b, const char *topic, char **out)
{
	*out = NULL;
	for (const struct moat_bridge_topic *t = b->topics; t != NULL; t = t->next)
		if (t->direction != BRIDGE_IN &&
		    topic_matches(moat_bytes_str(t->local_filter), moat_bytes_str(topic)))
			return map(topic, t->local_prefix, t->remote_prefix, out);
	return MOAT_OK;
}

int bridge_map_in(const struct moat_bridge_conf *b, const char *topic, char **out)
{
	*out = NULL;
	for (const struct moat_bridge_topic *t = b->topics; t != NULL; t = t->next)
		if (t->direction != BRIDGE_OUT &&
		    topic_matches(moat_bytes_str(t->remote_filter), moat_bytes_str(topic)))
			return map(topic, t->remote_prefix, t->local_prefix, out);
	return MOAT_OK;
}
