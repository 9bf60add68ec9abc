/* The password database: a file made by Debian's mosquitto_passwd ($7$ and
 * $6$), a $6$ entry made with python3 hashlib, argon2id and SCRAM entries
 * made by the hash makers; right password OK, wrong or unknown denied. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include <moat/error.h>

#include "auth/passwd.h"

/* python3: salt = b'moat-test-salt12'; sha512(b'pencil' + salt) */
#define DAVE_SHA512                                                                                \
	"dave:$6$bW9hdC10ZXN0LXNhbHQxMg==$ziMEUpV5BTilfoUQ52NdPcSgg8rppYhTKzWVLPv+8fA/"            \
	"FnxXovNrsx4uwjCcyWyP0BpK/GVVbnsKZ+yupx3UUA==\n"
/* RFC 7677 §3: password "pencil", its salt and 4096 iterations, keys from scram_derive */
#define ERIN_SCRAM                                                                                 \
	"erin:$scram-sha-256$4096$W22ZaJ0SNY7soEsUEjb6gQ==$"                                       \
	"WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4qY=$"                                            \
	"wfPLwcE6nTWhTAmQ7tl2KeoiWGPlZqQxSrmfPwDl2dU=\n"

static const uint8_t *u(const char *s)
{
	return (const uint8_t *)s;
}

static void mosquitto_file(void **state)
{
	struct passwd_db *db = NULL;
	struct moat_diag diag = {{0}};

	(void)state;
	assert_int_equal(passwd_db_load(&db, MOAT_TEST_DATA "/passwd/mosquitto_passwd.txt", &diag),
			 MOAT_OK);
	assert_int_equal(passwd_db_count(db), 3);
	assert_int_equal(passwd_db_check(db, "alice", u("pencil"), 6), MOAT_OK);
	assert_int_equal(passwd_db_check(db, "alice", u("pencil "), 7), MOAT_E_DENIED);
	assert_int_equal(passwd_db_check(db, "alice", u(""), 0), MOAT_E_DENIED);
	assert_int_equal(passwd_db_check(db, "bob", u("correct horse"), 13), MOAT_OK);
	assert_int_equal(passwd_db_check(db, "bob", u("pencil"), 6), MOAT_E_DENIED);
	assert_int_equal(passwd_db_check(db, "carol", u("pencil"), 6), MOAT_OK);
	assert_int_equal(passwd_db_check(db, "carol", u("Pencil"), 6), MOAT_E_DENIED);
	assert_int_equal(passwd_db_check(db, "mallory", u("pencil"), 6), MOAT_E_DENIED);
	/* mosquitto's 101 PBKDF2 iterations and plain SHA-512 are both weak */
	assert_int_equal(passwd_db_weak_count(db), 3);
	passwd_db_destroy(db);
}

static void sha512_from_python(void **state)
{
	struct passwd_db *db = NULL;
	struct moat_diag diag = {{0}};

	(void)state;
	assert_int_equal(passwd_db_load_buffer(&db, "t", DAVE_SHA512, strlen(DAVE_SHA512), &diag),
			 MOAT_OK);
	assert_int_equal(passwd_db_check(db, "dave", u("pencil"), 6), MOAT_OK);
	assert_int_equal(passwd_db_check(db, "dave", u("pencil"), 5), MOAT_E_DENIED);
	assert_int_equal(passwd_db_check(db, "Dave", u("pencil"), 6), MOAT_E_DENIED);
	passwd_db_destroy(db);
}

static void argon2id_and_scram(void **state)
{
	char argon[PASSWD_HASH_TEXT_MAX], scram[PASSWD_HASH_TEXT_MAX], text[1024];
	struct passwd_db *db = NULL;
	struct moat_diag diag = {{0}};
	struct scram_cred cred;

	(void)state;
	assert_int_equal(passwd_hash_argon2id(u("s3cret"), 6, argon), MOAT_OK);
	assert_int_equal(strncmp(argon, "$argon2id$v=19$m=19456,t=2,p=1$", 31), 0);
	assert_int_equal(passwd_hash_scram(u("s3cret"), 6, 4096, scram), MOAT_OK);
	assert_int_equal(strncmp(scram, "$scram-sha-256$4096$", 20), 0);
	assert_int_equal(passwd_hash_scram(u("s3cret"), 6, 4095, scram + 0), MOAT_E_INVAL);
	snprintf(text, sizeof(text), "frank:%s\r\ngrace:%s\n%s", argon, scram, ERIN_SCRAM);
	assert_int_equal(passwd_db_load_buffer(&db, "t", text, strlen(text), &diag), MOAT_OK);
	assert_int_equal(passwd_db_weak_count(db), 0);
	assert_int_equal(passwd_db_check(db, "frank", u("s3cret"), 6), MOAT_OK);
	assert_int_equal(passwd_db_check(db, "frank", u("s3cret!"), 7), MOAT_E_DENIED);
	assert_int_equal(passwd_db_check(db, "grace", u("s3cret"), 6), MOAT_OK);
	assert_int_equal(passwd_db_check(db, "grace", u("s3creT"), 6), MOAT_E_DENIED);
	assert_int_equal(passwd_db_check(db, "erin", u("pencil"), 6), MOAT_OK);
	assert_int_equal(passwd_db_check(db, "erin", u("pencil2"), 7), MOAT_E_DENIED);
	assert_int_equal(passwd_db_check(db, "nobody", u("s3cret"), 6), MOAT_E_DENIED);
	/* SCRAM lookup: only $scram-sha-256$ entries */
	assert_int_equal(passwd_db_scram_lookup(db, "erin", &cred), MOAT_OK);
	assert_int_equal(cred.iterations, 4096);
	assert_int_equal(cred.salt_len, 16);
	assert_int_equal(passwd_db_scram_lookup(db, "frank", &cred), MOAT_E_NOTFOUND);
	assert_int_equal(passwd_db_scram_lookup(db, "nobody", &cred), MOAT_E_NOTFOUND);
	passwd_db_destroy(db);
}

static void load_errors_name_the_file(void **state)
{
	struct passwd_db *db = NULL;
	struct moat_diag diag = {{0}};

	(void)state;
	assert_int_equal(passwd_db_load(&db, MOAT_TEST_DATA "/passwd/absent.txt", &diag),
			 MOAT_E_IO);
	assert_non_null(strstr(diag.msg, "absent.txt"));
	assert_int_equal(passwd_db_load_buffer(&db, "pw", "a:b\n", 4, &diag), MOAT_E_CONFIG);
	assert_string_equal(diag.msg, "pw:1: password is in plain text, hash the file with "
				      "`moat passwd -U FILE`");
	assert_null(db);
	passwd_db_destroy(NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(mosquitto_file),
	    cmocka_unit_test(sha512_from_python),
	    cmocka_unit_test(argon2id_and_scram),
	    cmocka_unit_test(load_errors_name_the_file),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
