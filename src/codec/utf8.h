/*
 * MQTT's UTF-8 rules for strings from the network.
 */
#ifndef MOAT_CODEC_UTF8_H
#define MOAT_CODEC_UTF8_H

#include <stdbool.h>

#include <moat/bytes.h>

/*
 * True when <s> is well-formed UTF-8 in shortest form, without surrogates or
 * U+0000 [MQTT-1.5.4-1, -2], and, like mosquitto, without the control
 * characters U+0001..U+001F, U+007F..U+009F and the noncharacters U+xFFFE/U+xFFFF
 * that the spec lets a receiver refuse [MQTT-1.5.4-3 note].
 */
bool utf8_is_valid_mqtt(struct moat_bytes s);

#endif
