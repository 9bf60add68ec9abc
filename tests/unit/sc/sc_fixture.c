/*
 * The scratch Security Center of the SC tests (sc_fixture.h).
 */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include <moat/error.h>

#include "sc_fixture.h"

int sc_fixture_open(struct sc_fixture *f, const char *tag)
{
	struct moat_diag d;
	char path[128];

	snprintf(f->dir, sizeof(f->dir), "/tmp/moat-%.20s-XXXXXX", tag);
	if (mkdtemp(f->dir) == NULL)
		return -1;
	snprintf(path, sizeof(path), "%s/registry.db", f->dir);
	if (reg_open(&f->reg, path, &d) != MOAT_OK)
		return -1;
	snprintf(path, sizeof(path), "%s/ca.key", f->dir);
	if (signer_file_create(&f->ca_key, path, SIGNER_ECDSA_P256, &d) != MOAT_OK ||
	    ca_create(&f->ca, f->ca_key, "test", 0, (int64_t)time(NULL), &d) != MOAT_OK)
		return -1;
	snprintf(path, sizeof(path), "%s/token.key", f->dir);
	return signer_file_create(&f->tok, path, SIGNER_ED25519, &d) == MOAT_OK ? 0 : -1;
}

void sc_fixture_close(struct sc_fixture *f)
{
	char cmd[96];

	ca_destroy(f->ca);
	signer_destroy(f->ca_key);
	signer_destroy(f->tok);
	reg_close(f->reg);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->dir);
	if (system(cmd) != 0)
		fprintf(stderr, "could not remove %s\n", f->dir);
}
