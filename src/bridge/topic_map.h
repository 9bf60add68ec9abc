/*
 * A bridge's topic remapping, mosquitto's rules (mosquitto.conf(5), topic):
 * the first `topic` line whose filter matches the message on its side and
 * whose direction allows it decides; its prefix on that side is removed and
 * the other side's prefix put in front. Pure functions, no I/O.
 */
#ifndef MOAT_BRIDGE_TOPIC_MAP_H
#define MOAT_BRIDGE_TOPIC_MAP_H

#include "conf/bridge_conf.h"

/* The remote topic for local topic <topic> leaving through <b> (an out or
 * both line), or NULL when no line sends it (or out of memory). The caller
 * frees it. */
char *bridge_map_out(const struct moat_bridge_conf *b, const char *topic);

/* The local topic for remote topic <topic> coming in through <b> (an in or
 * both line), or NULL when no line takes it (or out of memory). */
char *bridge_map_in(const struct moat_bridge_conf *b, const char *topic);

#endif
