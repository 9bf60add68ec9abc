/*
 * Fuzzes moat-device's command parser (src/device/command.c) with
 * untrusted plaintext, then the decision and the status it leads to.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "device/command.h"
#include "device/reading.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct cmd_seen seen;
	static int ready;
	struct cmd c;
	char out[512];
	const char *reason;

	if (!ready) {
		cmd_seen_init(&seen);
		ready = 1;
	}
	reason = cmd_parse(data, size, &c) == 0 ? cmd_decide(&seen, &c, c.iat) : "malformed";
	(void)status_format(out, sizeof(out), "dev-1", c.id, c.on, reason);
	return 0;
}
