/*
 * libFuzzer target for the password-file parser (conf/passwd_file.c): any
 * bytes either load or fail with MOAT_E_CONFIG and a "NAME:LINE: " message;
 * every loaded user is found again by name.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <moat/error.h>

#include "conf/passwd_file.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct moat_diag diag = {{0}};
	struct pwf f;
	int rc = pwf_parse(&f, "f", (const char *)data, size, &diag);

	if (rc == MOAT_E_CONFIG && strncmp(diag.msg, "f:", 2) != 0)
		abort();
	if (rc != MOAT_OK && rc != MOAT_E_CONFIG && rc != MOAT_E_NOMEM)
		abort();
	if (rc != MOAT_OK && f.count != 0)
		abort();
	for (size_t i = 0; i < f.count; i++) {
		const struct pwf_entry *e = pwf_find(&f, f.entries[i].username);

		if (e != &f.entries[i] || e->username[0] == '\0')
			abort();
		if (e->h.kind == PWF_SCRAM_SHA256 && e->h.iterations < PWF_SCRAM_MIN_ITER)
			abort();
	}
	pwf_fini(&f);
	return 0;
}
