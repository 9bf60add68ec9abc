/*
 * A registry in a fresh temp directory for the SC tests (test_groups.c,
 * test_keyserver.c, test_revlist.c), and a row count by SQL on its file.
 * Failures abort: they are the test's own mistakes.
 */
#ifndef MOAT_TESTS_SC_TESTKIT_H
#define MOAT_TESTS_SC_TESTKIT_H

#include "sc/registry.h"

struct sc_tmp {
	char dir[64];
	char path[128]; /* dir/registry.db */
};

/* Makes /tmp/<prefix>-XXXXXX and opens the registry in it into *<r>. */
void sc_tmp_open(struct sc_tmp *t, const char *prefix, struct registry **r);

/* Closes <r> (may be NULL) and removes the directory. */
void sc_tmp_remove(struct sc_tmp *t, struct registry *r);

/* The integer the query <sql> gives on the registry file of <t>. */
int sc_tmp_count(const struct sc_tmp *t, const char *sql);

#endif
