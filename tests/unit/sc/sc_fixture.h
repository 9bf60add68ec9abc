/*
 * A scratch Security Center for the SC tests and the sc_admin fuzz target:
 * a new /tmp directory holding a registry, a CA (P-256 key + certificate)
 * and an Ed25519 token key, all made through the SC library.
 */
#ifndef MOAT_TESTS_SC_FIXTURE_H
#define MOAT_TESTS_SC_FIXTURE_H

#include "sc/ca.h"

struct sc_fixture {
	char dir[64];
	struct registry *reg;
	struct signer *ca_key, *tok;
	struct ca *ca;
};

/* Makes it in /tmp/moat-<tag>-XXXXXX. 0, or -1 on any failure. */
int sc_fixture_open(struct sc_fixture *f, const char *tag);

/* Frees it and removes its directory. */
void sc_fixture_close(struct sc_fixture *f);

#endif
