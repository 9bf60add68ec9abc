/*
 * Rebuilding a store whose LMDB pages are damaged from the records that can
 * still be read (internal to src/store; salvage.c). For --repair-store.
 */
#ifndef MOAT_STORE_SALVAGE_H
#define MOAT_STORE_SALVAGE_H

#include "store/store.h"

/* Copies every readable record of the store in <dir> (whose lock the caller
 * holds and which no one has open) that <check_value> (may be NULL) accepts
 * into a new store, reporting the rejected records and the lost key range
 * through <report> (may be NULL), then puts the new store in place and keeps
 * the old file as <dir>/data.mdb.damaged. Returns MOAT_OK, or MOAT_E_IO,
 * MOAT_E_NOMEM or MOAT_E_PARSE with a sentence in <err> (the old store is
 * then untouched). Call only where fork is safe. */
int store_salvage(const char *dir, store_check_fn check_value, store_report_fn report, void *ctx,
		  char *err, size_t errlen);

#endif
