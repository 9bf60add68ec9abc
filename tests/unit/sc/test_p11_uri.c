/*
 * Unit tests for src/sc/p11_uri.c: RFC 7512's examples, percent-encoding,
 * the attributes that are refused and why, limits, and the normalized form.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include <moat/error.h>

#include "sc/p11_uri.h"

static void parses_token_object_id_type(void **state)
{
	struct p11_uri u;
	struct moat_diag d = {""};

	(void)state;
	assert_int_equal(p11_uri_parse("pkcs11:token=moat-ca;object=ca", &u, &d), MOAT_OK);
	assert_string_equal(u.token, "moat-ca");
	assert_string_equal(u.object, "ca");
	assert_true(u.has_object);
	assert_false(u.has_id);
	assert_int_equal(u.type, P11_TYPE_ANY);
	assert_int_equal(p11_uri_parse("pkcs11:type=private;id=%01%fF;token=t%20x", &u, &d),
			 MOAT_OK);
	assert_string_equal(u.token, "t x");
	assert_false(u.has_object);
	assert_int_equal(u.id_len, 2);
	assert_memory_equal(u.id, "\x01\xff", 2);
	assert_int_equal(u.type, P11_TYPE_PRIVATE);
	/* RFC 7512 section 7's token label, with its %23 */
	assert_int_equal(p11_uri_parse("pkcs11:token=The%20Software%20PKCS%2311%20Softtoken;"
				       "object=my-key",
				       &u, &d),
			 MOAT_OK);
	assert_string_equal(u.token, "The Software PKCS#11 Softtoken");
}

/* <uri> is refused with <rc> and a message holding <want>. */
static void refused(const char *uri, int rc, const char *want)
{
	struct p11_uri u;
	struct moat_diag d = {""};

	assert_int_equal(p11_uri_parse(uri, &u, &d), rc);
	if (strstr(d.msg, want) == NULL)
		fail_msg("%s: \"%s\" does not say \"%s\"", uri, d.msg, want);
}

static void refuses_what_does_not_pick_one_key(void **state)
{
	(void)state;
	refused("token=moat-ca;object=ca", MOAT_E_MALFORMED, "must start with \"pkcs11:\"");
	refused("pkcs11:", MOAT_E_MALFORMED, "no token=");
	refused("pkcs11:token=moat-ca", MOAT_E_MALFORMED, "no object= or id=");
	refused("pkcs11:object=ca", MOAT_E_MALFORMED, "no token=");
	refused("pkcs11:token=a;token=b;object=c", MOAT_E_MALFORMED, "token= given twice");
	refused("pkcs11:token=a;object=c;", MOAT_E_MALFORMED, "ends with ';'");
	refused("pkcs11:token=a;object", MOAT_E_MALFORMED, "not name=value");
	refused("pkcs11:token=a;label=c", MOAT_E_MALFORMED, "unknown attribute");
	refused("pkcs11:token=a;object=c;serial=42", MOAT_E_UNSUPPORTED, "serial=");
	refused("pkcs11:token=a;object=c;slot-id=1", MOAT_E_UNSUPPORTED, "slot-id=");
	refused("pkcs11:token=a;object=c;type=cert", MOAT_E_UNSUPPORTED, "type=private");
	/* RFC 7512's examples with a query */
	refused("pkcs11:token=a;object=my-key;type=private?pin-source=file:/etc/token",
		MOAT_E_UNSUPPORTED, "--pin-file");
	refused("pkcs11:token=Software%20PKCS%2311%20softtoken;object=k?pin-value=the-pin",
		MOAT_E_DENIED, "0600 file");
	/* encoding */
	refused("pkcs11:token=a b;object=c", MOAT_E_MALFORMED, "percent-encoded");
	refused("pkcs11:token=a;object=c%2", MOAT_E_MALFORMED, "percent-encoded");
	refused("pkcs11:token=a;object=c%zz", MOAT_E_MALFORMED, "percent-encoded");
	refused("pkcs11:token=a%00b;object=c", MOAT_E_MALFORMED, "NUL");
	refused("pkcs11:token=;object=c", MOAT_E_MALFORMED, "empty");
	refused("pkcs11:token=a;id=", MOAT_E_MALFORMED, "id=");
}

static void limits_at_the_boundary(void **state)
{
	char uri[P11_URI_MAX + 64];
	struct p11_uri u;

	(void)state;
	/* a 32-byte token label fits, 33 does not */
	snprintf(uri, sizeof(uri), "pkcs11:token=%.32s;object=o",
		 "0123456789abcdef0123456789abcdef");
	assert_int_equal(p11_uri_parse(uri, &u, NULL), MOAT_OK);
	assert_int_equal(strlen(u.token), 32);
	snprintf(uri, sizeof(uri), "pkcs11:token=%.33s;object=o",
		 "0123456789abcdef0123456789abcdefX");
	assert_int_equal(p11_uri_parse(uri, &u, NULL), MOAT_E_MALFORMED);
	/* the whole URI: P11_URI_MAX bytes are read, one more is refused */
	memset(uri, 'a', sizeof(uri));
	memcpy(uri, "pkcs11:token=t;id=", 18);
	uri[P11_URI_MAX + 1] = '\0';
	assert_int_equal(p11_uri_parse(uri, &u, NULL), MOAT_E_MALFORMED);
	assert_int_equal(p11_uri_parse(NULL, &u, NULL), MOAT_E_MALFORMED);
}

static void formats_a_normalized_uri(void **state)
{
	char out[P11_URI_MAX + 1];
	struct p11_uri u, v;

	(void)state;
	assert_int_equal(
	    p11_uri_parse("pkcs11:object=my%20key;type=private;token=moat-ca;id=%2A", &u, NULL),
	    MOAT_OK);
	assert_int_equal(p11_uri_format(&u, out, sizeof(out)), 56);
	assert_string_equal(out, "pkcs11:token=moat-ca;object=my%20key;id=%2A;type=private");
	assert_int_equal(p11_uri_parse(out, &v, NULL), MOAT_OK);
	assert_string_equal(v.object, "my key");
	assert_int_equal(p11_uri_format(&u, out, 20), MOAT_E_LIMIT);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(parses_token_object_id_type),
	    cmocka_unit_test(refuses_what_does_not_pick_one_key),
	    cmocka_unit_test(limits_at_the_boundary),
	    cmocka_unit_test(formats_a_normalized_uri),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
