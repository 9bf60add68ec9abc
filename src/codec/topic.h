/*
 * Topic names and filters: validation, wildcard matching and shared
 * subscription parsing. Pure functions over byte views.
 */
#ifndef MOAT_CODEC_TOPIC_H
#define MOAT_CODEC_TOPIC_H

#include <stdbool.h>
#include <stddef.h>

#include <moat/bytes.h>

/* Non-empty, no '+' or '#', valid MQTT UTF-8 [MQTT-4.7.3-1, -2]. */
bool topic_name_is_valid(struct moat_bytes t);

/* Non-empty, '#' only as the whole last level, '+' only as a whole level, valid UTF-8. */
bool topic_filter_is_valid(struct moat_bytes f);

/*
 * Splits "$share/<group>/<inner>". Returns MOAT_E_NOTFOUND when <f> is not a
 * shared filter, MOAT_E_PROTOCOL for an empty or wildcard group or an invalid
 * inner filter ("$share/", "$share/g", "$share//t", "$share/g/"), MOAT_OK with
 * views into <f> otherwise.
 */
int topic_share_parse(struct moat_bytes f, struct moat_bytes *group, struct moat_bytes *inner);

/*
 * True when topic name <name> matches filter <filter>; a name starting with
 * '$' is not matched by a filter starting with a wildcard [MQTT-4.7.2-1].
 */
bool topic_matches(struct moat_bytes filter, struct moat_bytes name);

/* Number of levels ('/' count + 1). */
size_t topic_levels(struct moat_bytes t);

#endif
