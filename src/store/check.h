/*
 * Reading every record of a store in a child process, so that a damaged
 * page that makes LMDB abort or crash kills the child, not moatd (internal
 * to src/store; check.c).
 */
#ifndef MOAT_STORE_CHECK_H
#define MOAT_STORE_CHECK_H

#include "store/store.h"

/* Reads every record of the store in <dir> (whose lock the caller holds and
 * which no one has open) in a forked child. Each record <check_value> (may
 * be NULL) rejects is passed to <bad> (may be NULL) with the reason, in the
 * calling thread. Returns MOAT_OK, or MOAT_E_PARSE (damaged: the engine
 * reported damage or the reader died), MOAT_E_IO or MOAT_E_NOMEM, with a
 * sentence naming the file in <err>. Call only where fork is safe. */
int store_verify(const char *dir, store_check_fn check_value, store_report_fn bad, void *ctx,
		 char *err, size_t errlen);

#endif
