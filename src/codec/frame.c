/*
 * Fixed-header framing (see frame.h).
 */
#include "codec/frame.h"

#include <moat/error.h>

int frame_decode(const uint8_t *buf, size_t len, uint32_t max_packet_size, struct mqtt_frame *out)
{
	uint32_t rem = 0;
	size_t i;

	if (len < 2)
		return MOAT_E_AGAIN;
	if ((buf[0] >> 4) == 0)
		return MOAT_E_MALFORMED;
	for (i = 1; i <= 4; i++) {
		if (i >= len)
			return MOAT_E_AGAIN;
		rem |= (uint32_t)(buf[i] & 0x7f) << (7 * (i - 1));
		if ((buf[i] & 0x80) == 0)
			break;
	}
	if (i > 4)
		return MOAT_E_MALFORMED;	/* a fifth length byte (CVE-2026-21888) */
	if (i > 1 && buf[i] == 0)
		return MOAT_E_MALFORMED;	/* overlong: 0x80 0x00 */
	out->type = (uint8_t)(buf[0] >> 4);
	out->flags = (uint8_t)(buf[0] & 0x0f);
	out->hdr_len = (uint8_t)(i + 1);
	out->rem_len = rem;
	if ((uint64_t)rem + out->hdr_len > max_packet_size)
		return MOAT_E_LIMIT;
	return MOAT_OK;
}
