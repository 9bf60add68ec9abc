/*
 * MQTT UTF-8 validation (see utf8.h).
 */
#include "codec/utf8.h"

#include <stdint.h>

bool utf8_is_valid_mqtt(struct moat_bytes s)
{
	size_t i = 0;

	while (i < s.len) {
		uint8_t c = s.ptr[i];
		uint32_t cp;
		size_t n;

		if (c < 0x80) {
			if (c < 0x20 || c == 0x7f)
				return false;
			i++;
			continue;
		}
		if ((c & 0xe0) == 0xc0) {
			cp = c & 0x1fu;
			n = 1;
		} else if ((c & 0xf0) == 0xe0) {
			cp = c & 0x0fu;
			n = 2;
		} else if ((c & 0xf8) == 0xf0) {
			cp = c & 0x07u;
			n = 3;
		} else {
			return false;
		}
		if (s.len - i - 1 < n)
			return false;
		for (size_t k = 1; k <= n; k++) {
			uint8_t cc = s.ptr[i + k];

			if ((cc & 0xc0) != 0x80)
				return false;
			cp = (cp << 6) | (cc & 0x3fu);
		}
		if ((n == 1 && cp < 0x80) || (n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000))
			return false;	/* overlong */
		if (cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
			return false;
		if (cp <= 0x9f || (cp & 0xfffe) == 0xfffe)
			return false;
		i += n + 1;
	}
	return true;
}
