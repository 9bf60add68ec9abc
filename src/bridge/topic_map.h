/*
 * A bridge's topic remapping, mosquitto's rules (mosquitto.conf(5), topic):
 * the first `topic` line whose filter matches the message on its side and
 * whose direction allows it decides; its prefix on that side is removed and
 * the other side's prefix put in front. Pure functions, no I/O.
 */
#ifndef MOAT_BRIDGE_TOPIC_MAP_H
#define MOAT_BRIDGE_TOPIC_MAP_H

#include "conf/bridge_conf.h"

/* Sets <*out> to the remote topic for local topic <topic> leaving through
 * <b> (an out or both line), or to NULL when no line sends it. MOAT_OK or
 * MOAT_E_NOMEM (<*out> NULL; the message must not be acknowledged). The
 * caller frees <*out>. */
int bridge_map_out(const struct moat_bridge_conf *b, const char *topic, char **out);

/* The same for remote topic <topic> coming in through <b> (an in or both
 * line): <*out> the local topic, or NULL when no line takes it. */
int bridge_map_in(const struct moat_bridge_conf *b, const char *topic, char **out);

#endif
