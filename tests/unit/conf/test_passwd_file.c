/* Password-file parser: each accepted format, and every malformed form
 * refused with MOAT_E_CONFIG and a diagnostic naming the file and line. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <moat/error.h>

#include "conf/passwd_file.h"

#define H7                                                                                         \
	"$7$101$Y7LQFOvzELEiQJb7$Z6M2YTJcVK6TEV3Fy5xogvCgnPXdVw/UiButL3o41vT6sIjne+z/"             \
	"94908zU2kCaapMVwoKnhw0W9cxCaAbvhpQ=="
#define H6                                                                                         \
	"$6$JcLpy0ZqQmQ/6TXa$F+ZNe/"                                                               \
	"P9qP8F2znGG6WwLZU7LApzmYICFGGijqCumZiIY2zfzWCk0XnuQ6QRwyJtpee++NavMrdF3bgKmxWT+A=="
#define HA                                                                                         \
	"$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$PFm7nGmCjmYHyEHEZz+ku0SE8Z9vQBkbA/" \
	"mr1OttOOo"
#define HS                                                                                         \
	"$scram-sha-256$4096$W22ZaJ0SNY7soEsUEjb6gQ==$"                                            \
	"WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4qY=$"                                            \
	"wfPLwcE6nTWhTAmQ7tl2KeoiWGPlZqQxSrmfPwDl2dU="

static void accepts_every_format(void **state)
{
	static const char text[] = "# comment\n"
				   "a:" H7 "\n"
				   "b:" H6 "\r\n"
				   "#\n"
				   "c:" HA "\n"
				   "d d:" HS; /* no final newline; spaces in names are fine */
	struct pwf f;
	struct moat_diag diag = {{0}};
	const struct pwf_entry *e;

	(void)state;
	assert_int_equal(pwf_parse(&f, "pw", text, strlen(text), &diag), MOAT_OK);
	assert_int_equal(f.count, 4);
	e = pwf_find(&f, "a");
	assert_non_null(e);
	assert_int_equal(e->h.kind, PWF_PBKDF2_SHA512);
	assert_int_equal(e->h.iterations, 101);
	assert_int_equal(e->h.salt_len, 12);
	assert_int_equal(e->h.hash_len, 64);
	assert_int_equal(pwf_find(&f, "b")->h.kind, PWF_SHA512);
	assert_int_equal(pwf_find(&f, "c")->h.kind, PWF_ARGON2ID);
	assert_string_equal(pwf_find(&f, "c")->h.phc, HA);
	e = pwf_find(&f, "d d");
	assert_int_equal(e->h.kind, PWF_SCRAM_SHA256);
	assert_int_equal(e->h.iterations, 4096);
	assert_int_equal(e->h.salt_len, 16);
	assert_int_equal(e->h.hash_len, 32);
	assert_null(pwf_find(&f, "e"));
	pwf_fini(&f);
	pwf_fini(&f);
	assert_int_equal(pwf_parse(&f, "pw", "", 0, &diag), MOAT_OK);
	assert_int_equal(f.count, 0);
	pwf_fini(&f);
}

/* <len> bytes of <text> fail on line 2 with a message containing <what>. */
static void refused_n(const char *text, size_t len, const char *what)
{
	static const char first[] = "ok:" H6 "\n";
	struct pwf f;
	struct moat_diag diag = {{0}};
	char *full = malloc(sizeof(first) + len);

	assert_non_null(full);
	memcpy(full, first, sizeof(first) - 1);
	memcpy(full + sizeof(first) - 1, text, len);
	assert_int_equal(pwf_parse(&f, "pw.txt", full, sizeof(first) - 1 + len, &diag),
			 MOAT_E_CONFIG);
	assert_int_equal(f.count, 0);
	assert_int_equal(strncmp(diag.msg, "pw.txt:2: ", 10), 0);
	if (strstr(diag.msg, what) == NULL)
		fail_msg("\"%s\" lacks \"%s\"", diag.msg, what);
	free(full);
}

/* A string literal, embedded NULs included. */
#define refused(lit, what) refused_n(lit, sizeof(lit) - 1, what)

static void malformed_lines_refused(void **state)
{
	(void)state;
	refused("\n", "blank line");
	refused("  \t\nx:" H6, "blank line");
	refused("nocolon\n", "no ':'");
	refused(":" H6 "\n", "empty username");
	refused("a\x01:" H6 "\n", "control character");
	refused("a:\n", "empty password hash");
	refused("a:secret\n", "plain text, hash the file with `moat passwd -U FILE`");
	refused("ok:" H7 "\n", "duplicate user");
	refused("a:$1$abc$def\n", "unknown hash format");
	refused("a:$scram-sha-1$4096$c2FsdA==$a$b\n", "use SCRAM-SHA-256");
	refused("a:" H6 "\0x\n", "NUL");
}

static void bad_fields_refused(void **state)
{
	static const char *const bad[] = {
	    /* $6$ */
	    "$6$",
	    "$6$$hash",
	    "$6$JcLpy0ZqQmQ/6TX$"
	    "F+ZN",
	    "$6$JcLpy0ZqQmQ/6TXa$AAAA",
	    "$6$JcLpy0ZqQmQ/6TXa$"
	    "F+ZNe/"
	    "P9qP8F2znGG6WwLZU7LApzmYICFGGijqCumZiIY2zfzWCk0XnuQ6QRwyJtpee++NavMrdF3bgKmxWT+A==$",
	    "$6$JcLpy0ZqQmQ/6TXa",
	    /* $7$ */
	    "$7$0$Y7LQFOvzELEiQJb7$Z6M2",
	    "$7$x$Y7LQFOvzELEiQJb7$Z6M2",
	    "$7$0101$Y7LQ$Z6M2",
	    "$7$99999999999$Y7LQFOvzELEiQJb7$Z6M2",
	    "$7$101$Y7LQFOvzELEiQJb7",
	    "$7$101$Y7LQFOvzELEiQJb7$Z6M2YTJcVK6TEV3F",
	    "$7$101$!!!!$Z6M2YTJcVK6TEV3Fy5xogvCgnPXdVw/UiButL3o41vT6sIjne+z/"
	    "94908zU2kCaapMVwoKnhw0W9cxCaAbvhpQ==",
	    /* argon2id */
	    "$argon2id$v=16$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$PFm7nGmCjmYHyEHEZz+"
	    "ku0SE8Z9vQBkbA/mr1OttOOo",
	    "$argon2id$v=19$m=19456,t=2$c29tZXNhbHRzb21lc2FsdA$PFm7nGmCjmYHyEHEZz+ku0SE8Z9vQBkbA/"
	    "mr1OttOOo",
	    "$argon2id$v=19$m=19456,t=2,p=1$c29t$PFm7nGmCjmYHyEHEZz+ku0SE8Z9vQBkbA/mr1OttOOo",
	    "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$PFm7nGmCjmYHyEHEZz+"
	    "ku0SE8Z9vQBkbA/mr1OttOOo=",
	    "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA",
	    /* SCRAM */
	    "$scram-sha-256$4095$W22ZaJ0SNY7soEsUEjb6gQ==$"
	    "WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4qY=$"
	    "wfPLwcE6nTWhTAmQ7tl2KeoiWGPlZqQxSrmfPwDl2dU=",
	    "$scram-sha-256$4096$W22ZaJ0SNY7soEsUEjb6gQ==$"
	    "WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4qY=",
	    "$scram-sha-256$4096$W22ZaJ0SNY7soEsUEjb6gQ==$"
	    "WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4q=$"
	    "wfPLwcE6nTWhTAmQ7tl2KeoiWGPlZqQxSrmfPwDl2dU=",
	    "$scram-sha-256$4096$W22ZaJ0SNY7soEsUEjb6gQ==$"
	    "WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4qY=$"
	    "wfPLwcE6nTWhTAmQ7tl2KeoiWGPlZqQxSrmfPwDl2dU=$",
	};
	struct pwf_hash h;
	const char *why;

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		why = NULL;
		if (pwf_hash_parse(bad[i], strlen(bad[i]), &h, &why) != MOAT_E_CONFIG)
			fail_msg("accepted %s", bad[i]);
		assert_non_null(why);
	}
	refused("a:$7$101$Y7LQFOvzELEiQJb7$Z6M2YTJcVK6TEV3F\n", "$7$ hash is not base64");
}

static void duplicate_named_at_second_line(void **state)
{
	static const char text[] = "b:" H6 "\nc:" H6 "\na:" H7 "\nc:" H7 "\nb:" H7 "\n";
	struct pwf f;
	struct moat_diag diag = {{0}};

	(void)state;
	assert_int_equal(pwf_parse(&f, "pw", text, strlen(text), &diag), MOAT_E_CONFIG);
	assert_int_equal(strncmp(diag.msg, "pw:4: duplicate user", 20), 0);
}

static void long_line_refused(void **state)
{
	size_t n = PWF_LINE_MAX + 10;
	char *text = malloc(n + 1);
	struct pwf f;
	struct moat_diag diag = {{0}};

	(void)state;
	assert_non_null(text);
	memset(text, 'a', n);
	text[n] = '\0';
	assert_int_equal(pwf_parse(&f, "pw", text, n, &diag), MOAT_E_CONFIG);
	assert_string_equal(diag.msg, "pw:1: line longer than 64 KiB, shorten it");
	free(text);
}

static void missing_file_is_io(void **state)
{
	struct pwf f;
	struct moat_diag diag = {{0}};

	(void)state;
	assert_int_equal(pwf_load(&f, "/nonexistent/pw", &diag), MOAT_E_IO);
	assert_non_null(strstr(diag.msg, "/nonexistent/pw"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(accepts_every_format),
	    cmocka_unit_test(malformed_lines_refused),
	    cmocka_unit_test(bad_fields_refused),
	    cmocka_unit_test(duplicate_named_at_second_line),
	    cmocka_unit_test(long_line_refused),
	    cmocka_unit_test(missing_file_is_io),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
