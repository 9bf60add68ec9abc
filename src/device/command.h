/*
 * moat-device: the commands a simulated device obeys (docs/device.md,
 * contract topic moat/<id>/cmd). The plaintext is
 * {"id":"<32 hex>","state":"on"|"off","iat":<unix s>}; this file parses it
 * and decides, with the ids already obeyed, whether it may be obeyed. No
 * I/O and no clock: the caller passes "now".
 */
#ifndef MOAT_DEVICE_COMMAND_H
#define MOAT_DEVICE_COMMAND_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum {
	CMD_ID_LEN = 32,     /* hex characters of a command id */
	CMD_MAX_AGE_S = 30,  /* older commands (iat) are stale; newer than now + this too */
	CMD_SEEN_MAX = 32,   /* ids remembered per device */
	CMD_JSON_MAX = 1024, /* a longer plaintext is malformed unread */
};

struct cmd {
	char id[CMD_ID_LEN + 1];
	bool on;
	int64_t iat;
};

/* The ids of commands obeyed lately. Once an id is forgotten (the ring is
 * full), every command not newer than it is refused as replayed: an id is
 * never accepted twice, however many commands come within CMD_MAX_AGE_S. */
struct cmd_seen {
	struct {
		char id[CMD_ID_LEN + 1];
		int64_t iat;
	} ring[CMD_SEEN_MAX];
	size_t count, next;
	int64_t floor_iat; /* highest iat forgotten; INT64_MIN when none */
};

void cmd_seen_init(struct cmd_seen *s);

/*
 * Parses the untrusted plaintext <json> (<len> bytes, not NUL-terminated)
 * into <c>: an object with exactly the members id (32 lower- or upper-case
 * hex digits), state ("on"/"off") and iat (an integer). MOAT_OK or
 * MOAT_E_MALFORMED; on MOAT_E_MALFORMED c->id holds the id when at least
 * that was readable ("" otherwise), for the refusal's cmd_id.
 */
int cmd_parse(const uint8_t *json, size_t len, struct cmd *c);

/*
 * Decides on the parsed command <c> at wall time <now_s>: NULL when it may
 * be obeyed (its id is then remembered in <s>), or the contract's reason:
 * "stale" (iat more than CMD_MAX_AGE_S in the past or the future) or
 * "replayed" (its id was obeyed before, or it is not newer than the
 * highest forgotten id's iat).
 */
const char *cmd_decide(struct cmd_seen *s, const struct cmd *c, int64_t now_s);

#endif
