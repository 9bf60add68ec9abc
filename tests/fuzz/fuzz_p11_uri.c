/*
 * libFuzzer target for PKCS#11 URIs (src/sc/p11_uri.c), which come from
 * moat-sc's command line and DIR/sc.json. A URI that parses is formatted,
 * parsed again and formatted again: both parses must agree and the two
 * formats must match byte for byte.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <moat/error.h>

#include "sc/p11_uri.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char text[P11_URI_MAX + 2], a[P11_URI_MAX + 1], b[P11_URI_MAX + 1];
	struct p11_uri u, v;
	struct moat_diag d;
	int na, nb;

	if (size > P11_URI_MAX + 1)
		return 0;
	memcpy(text, data, size);
	text[size] = '\0';
	if (p11_uri_parse(text, &u, &d) != MOAT_OK)
		return 0;
	na = p11_uri_format(&u, a, sizeof(a));
	if (na == MOAT_E_LIMIT)
		return 0; /* percent-encoding grew it past the limit */
	if (na < 0 || p11_uri_parse(a, &v, &d) != MOAT_OK)
		abort();
	if (strcmp(u.token, v.token) != 0 || strcmp(u.object, v.object) != 0 ||
	    u.has_object != v.has_object || u.has_id != v.has_id || u.id_len != v.id_len ||
	    memcmp(u.id, v.id, u.id_len) != 0 || u.type != v.type)
		abort();
	nb = p11_uri_format(&v, b, sizeof(b));
	if (nb != na || memcmp(a, b, (size_t)na + 1) != 0)
		abort();
	return 0;
}
