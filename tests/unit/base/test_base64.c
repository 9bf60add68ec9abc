/* Base64 and base64url: RFC 4648 §10 vectors both ways, and every
 * non-canonical form refused. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include <moat/error.h>

#include "base/base64.h"

static const char *const plain[] = { "", "f", "fo", "foo", "foob", "fooba", "foobar" };
static const char *const std_text[] = { "", "Zg==", "Zm8=", "Zm9v", "Zm9vYg==", "Zm9vYmE=", "Zm9vYmFy" };
static const char *const url_text[] = { "", "Zg", "Zm8", "Zm9v", "Zm9vYg", "Zm9vYmE", "Zm9vYmFy" };

static void rfc4648_vectors(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(plain) / sizeof(plain[0]); i++) {
		char text[16];
		uint8_t back[16];
		size_t n = strlen(plain[i]);

		assert_int_equal(b64_encode((const uint8_t *)plain[i], n, text, B64_STD), strlen(std_text[i]));
		assert_string_equal(text, std_text[i]);
		assert_int_equal(b64_encoded_len(n, B64_STD), strlen(std_text[i]));
		assert_int_equal(b64_decode(text, strlen(text), back, sizeof(back), B64_STD), (int)n);
		assert_memory_equal(back, plain[i], n);
		assert_int_equal(b64_encode((const uint8_t *)plain[i], n, text, B64_URL), strlen(url_text[i]));
		assert_string_equal(text, url_text[i]);
		assert_int_equal(b64_encoded_len(n, B64_URL), strlen(url_text[i]));
		assert_int_equal(b64_decode(text, strlen(text), back, sizeof(back), B64_URL), (int)n);
		assert_memory_equal(back, plain[i], n);
		assert_true(b64_decoded_max(strlen(std_text[i])) >= n);
	}
}

static void alphabets_differ(void **state)
{
	const uint8_t in[] = { 0xfb, 0xff };
	char text[8];
	uint8_t out[4];

	(void)state;
	b64_encode(in, 2, text, B64_STD);
	assert_string_equal(text, "+/8=");
	b64_encode(in, 2, text, B64_URL);
	assert_string_equal(text, "-_8");
	assert_int_equal(b64_decode("-_8=", 4, out, 4, B64_STD), MOAT_E_MALFORMED);
	assert_int_equal(b64_decode("+/8", 3, out, 4, B64_URL), MOAT_E_MALFORMED);
}

static void non_canonical_refused(void **state)
{
	static const char *const bad_std[] = { "Zg", "Zg=", "Zh==", "Z===", "Zm9v\n", "Zm 9", "=Zm9",
					       "Zg==Zg==" };
	static const char *const bad_url[] = { "Z", "Zh", "Zg==", "Zm9v.", "Zm9vY" };
	uint8_t out[16];

	(void)state;
	for (size_t i = 0; i < sizeof(bad_std) / sizeof(bad_std[0]); i++)
		assert_int_equal(b64_decode(bad_std[i], strlen(bad_std[i]), out, sizeof(out), B64_STD),
				 MOAT_E_MALFORMED);
	for (size_t i = 0; i < sizeof(bad_url) / sizeof(bad_url[0]); i++)
		assert_int_equal(b64_decode(bad_url[i], strlen(bad_url[i]), out, sizeof(out), B64_URL),
				 MOAT_E_MALFORMED);
}

static void short_output_refused(void **state)
{
	uint8_t out[2];

	(void)state;
	assert_int_equal(b64_decode("Zm9v", 4, out, sizeof(out), B64_STD), MOAT_E_LIMIT);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(rfc4648_vectors),
		cmocka_unit_test(alphabets_differ),
		cmocka_unit_test(non_canonical_refused),
		cmocka_unit_test(short_output_refused),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
