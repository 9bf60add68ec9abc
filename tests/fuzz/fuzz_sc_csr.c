/*
 * libFuzzer target for the Security Center's CSR check (ca_issue_check): the
 * input is an untrusted PEM certificate request as `moat-sc thing add --csr`
 * and, later, the SC's enrolment requests receive it. Valid requests must
 * also pass a second time (the check has no state), and nothing may leak.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <moat/error.h>

#include "sc/ca.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct moat_diag d;
	int rc;

	rc = ca_issue_check((const char *)data, size, NULL, &d);
	if (rc == MOAT_OK && ca_issue_check((const char *)data, size, NULL, &d) != MOAT_OK)
		abort();
	if (rc != MOAT_OK && rc != MOAT_E_PARSE && rc != MOAT_E_LIMIT && rc != MOAT_E_DENIED &&
	    rc != MOAT_E_CRYPTO && rc != MOAT_E_NOMEM)
		abort();
	return 0;
}
