/*
 * libFuzzer target for the strict CBOR decoder (src/e2e/cbor.c). Checks:
 * cbor_check() and cbor_canonical() agree; what decodes re-encodes to an
 * item of the same length that decodes again, and re-encoding is a fixed
 * point (deterministic encoding); the cursor readers never read past the
 * input.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <moat/error.h>

#include "e2e/cbor.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Walks one level with the typed readers; they must stay inside the input. */
static void walk(const uint8_t *data, size_t size)
{
	struct cbor_dec d;
	struct moat_bytes s;
	uint64_t u;
	size_t n;

	cbor_dec_init(&d, data, size);
	while (cbor_peek(&d) >= 0) {
		const uint8_t *before = d.p;

		switch (cbor_peek(&d)) {
		case CBOR_BSTR:
			cbor_read_bstr(&d, &s);
			break;
		case CBOR_TSTR:
			cbor_read_tstr(&d, &s);
			break;
		case CBOR_ARRAY:
			cbor_read_array(&d, &n);
			break;
		case CBOR_MAP:
			cbor_read_map(&d, &n);
			break;
		case CBOR_TAG:
			cbor_read_tag(&d, &u);
			break;
		default:
			cbor_skip(&d, NULL);
			break;
		}
		if (d.err == MOAT_OK && (d.p <= before || d.p > data + size))
			abort();
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct buf once = {0}, twice = {0};
	int rc = cbor_check(data, size);
	int rc2 = cbor_canonical(data, size, &once);

	walk(data, size);
	if (rc != rc2)
		abort();
	if (rc == MOAT_OK) {
		if (buf_used(&once) != size ||
		    cbor_check(buf_head(&once), buf_used(&once)) != MOAT_OK)
			abort();
		if (cbor_canonical(buf_head(&once), buf_used(&once), &twice) != MOAT_OK ||
		    buf_used(&twice) != buf_used(&once) ||
		    memcmp(buf_head(&twice), buf_head(&once), buf_used(&once)) != 0)
			abort();
	}
	buf_fini(&once);
	buf_fini(&twice);
	return 0;
}
