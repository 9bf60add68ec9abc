/*
 * libFuzzer target for the SCRAM-SHA-256 server (auth/scram.c) fed
 * arbitrary client messages: the input up to the first NUL byte is the
 * client-first-message, the rest the client-final-message. Nothing but the
 * right proof may succeed, and that needs the password, so any MOAT_OK
 * from finish is a bug.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <moat/error.h>

#include "auth/scram.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct scram_cred user_cred;

/* "user" exists (password unknown to the fuzzer); everyone else does not. */
static int lookup(void *arg, const char *username, struct scram_cred *out)
{
	(void)arg;
	if (strcmp(username, "user") != 0)
		return MOAT_E_NOTFOUND;
	*out = user_cred;
	return MOAT_OK;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const uint8_t *nul = memchr(data, 0, size);
	size_t first = nul == NULL ? size : (size_t)(nul - data);
	struct scram_server s;
	struct buf out = {0};
	int rc;

	if (user_cred.iterations == 0) {
		user_cred.salt_len = 16;
		memset(user_cred.salt, 0x5a, 16);
		user_cred.iterations = 4096;
		if (scram_derive((const uint8_t *)"fuzz-secret-9f3b", 16, user_cred.salt, 16, 4096,
				 user_cred.stored_key, user_cred.server_key) != MOAT_OK)
			abort();
	}
	scram_server_init(&s);
	rc = scram_server_start_nonce(&s, data, first, "SNONCE", lookup, NULL, &out);
	if (rc == MOAT_OK) {
		if (buf_used(&out) == 0)
			abort();
		buf_consume(&out, buf_used(&out));
		if (nul != NULL) {
			rc = scram_server_finish(&s, nul + 1, size - first - 1, &out);
			if (rc == MOAT_OK)
				abort();
		}
	} else if (s.why == NULL) {
		abort();
	}
	scram_server_fini(&s);
	buf_fini(&out);
	return 0;
}
