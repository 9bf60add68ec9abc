/*
 * libFuzzer target for the WebSocket filter (src/net/ws.c). Byte 0 picks
 * the set-up: bit 0 prepends a valid upgrade request (so most runs reach
 * the framer), bits 1-5 pick max_frame (2^n, 0 = the MQTT maximum) and
 * bits 6-7 the chunk size the rest is fed in (1, 7, 64 or all at once).
 * Checks: application bytes never outnumber the input, an error is sticky,
 * and output/shutdown work in every state.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <moat/error.h>

#include "net/ws.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char upgrade_req[] = "GET /mqtt HTTP/1.1\r\n"
				  "Host: x\r\n"
				  "Upgrade: websocket\r\n"
				  "Connection: Upgrade\r\n"
				  "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
				  "Sec-WebSocket-Protocol: mqtt\r\n"
				  "Sec-WebSocket-Version: 13\r\n\r\n";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const size_t chunks[4] = {1, 7, 64, SIZE_MAX};
	struct buf app = {0}, wire = {0};
	struct filter *f;
	size_t chunk, fed = 0;
	unsigned bits;
	int rc = MOAT_OK;

	if (size < 1)
		return 0;
	bits = (data[0] >> 1) & 31;
	chunk = chunks[data[0] >> 6];
	f = ws_filter_create(bits == 0 ? 0 : (uint64_t)1 << bits);
	if (f == NULL)
		return 0;
	data++;
	size--;
	if (f->ops->output(f, (const uint8_t *)"\x10\x00", 2, &wire) != MOAT_OK)
		abort();
	if ((data[-1] & 1) != 0) {
		rc = f->ops->input(f, (const uint8_t *)upgrade_req, sizeof(upgrade_req) - 1, &app,
				   &wire, NULL);
		if (rc != MOAT_OK || !f->ops->ready(f))
			abort(); /* the valid request must be accepted */
	}
	while (fed < size && rc == MOAT_OK) {
		size_t n = size - fed < chunk ? size - fed : chunk;
		const char *why = NULL;

		rc = f->ops->input(f, data + fed, n, &app, &wire, &why);
		if (rc < 0 && why == NULL)
			abort();
		fed += n;
	}
	if (buf_used(&app) > size)
		abort();
	if (rc < 0) {
		if (f->ops->input(f, (const uint8_t *)"\x82", 1, &app, &wire, NULL) != rc)
			abort();
		if (f->ops->ready(f))
			abort();
	}
	(void)f->ops->output(f, (const uint8_t *)"\xd0\x00", 2, &wire);
	f->ops->shutdown(f, &wire);
	filter_destroy(f);
	buf_fini(&app);
	buf_fini(&wire);
	return 0;
}
