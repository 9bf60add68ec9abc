/*
 * Fixed-header framing: finds where a packet ends and refuses oversize
 * packets from the header alone, before anything is buffered for them.
 */
#ifndef MOAT_CODEC_FRAME_H
#define MOAT_CODEC_FRAME_H

#include <stddef.h>
#include <stdint.h>

struct mqtt_frame {
	uint8_t type;		/* enum mqtt_type */
	uint8_t flags;		/* low nibble of the first byte */
	uint8_t hdr_len;	/* 2..5 */
	uint32_t rem_len;
};

/*
 * Decodes the fixed header at <buf> (<len> bytes available). Returns
 * MOAT_E_AGAIN while the header is incomplete, MOAT_E_MALFORMED for a
 * Remaining Length over 4 bytes, an overlong one or packet type 0,
 * MOAT_E_LIMIT when hdr_len + rem_len > <max_packet_size>, MOAT_OK otherwise
 * (the body may still be incomplete).
 */
int frame_decode(const uint8_t *buf, size_t len, uint32_t max_packet_size, struct mqtt_frame *out);

#endif
