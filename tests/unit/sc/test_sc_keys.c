/*
 * Unit tests for src/sc/sc_keys.c: DIR/sc.json written and read back, its
 * strict reading (unknown fields such as a PIN, URIs without a module, bad
 * URIs, not JSON), never overwritten, and key files when there is none.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <moat/error.h>

#include "sc/sc_keys.h"

static char dir[64];

static void write_json(const char *text)
{
	char path[128];
	FILE *f;

	snprintf(path, sizeof(path), "%s/sc.json", dir);
	unlink(path);
	f = fopen(path, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
}

static void saved_keys_load_back(void **state)
{
	struct sc_keys k = {0}, l;
	struct moat_diag d = {""};
	char path[128];
	struct stat sb;

	(void)state;
	strcpy(k.module, "/usr/lib/softhsm/libsofthsm2.so");
	strcpy(k.pin_file, "/etc/moat/pin");
	strcpy(k.uri[SC_KEY_CA], "pkcs11:token=moat-ca;object=ca");
	assert_int_equal(sc_keys_save(dir, &k, &d), MOAT_OK);
	snprintf(path, sizeof(path), "%s/sc.json", dir);
	assert_int_equal(stat(path, &sb), 0);
	assert_int_equal(sb.st_mode & 0777, 0600);
	assert_int_equal(sc_keys_load(dir, &l, &d), MOAT_OK);
	assert_memory_equal(&k, &l, sizeof(k));
	/* never overwritten */
	assert_int_equal(sc_keys_save(dir, &k, &d), MOAT_E_DENIED);
	unlink(path);
}

/* sc.json holding <text> is refused with a message holding <want>. */
static void refused(const char *text, const char *want)
{
	struct sc_keys k;
	struct moat_diag d = {""};

	write_json(text);
	assert_int_equal(sc_keys_load(dir, &k, &d), MOAT_E_CONFIG);
	if (strstr(d.msg, want) == NULL)
		fail_msg("%s: \"%s\" does not say \"%s\"", text, d.msg, want);
}

static void strict_reading(void **state)
{
	char path[128];

	(void)state;
	refused("{", "not valid JSON");
	refused("[]", "one member");
	refused("{\"pkcs11\":{},\"x\":1}", "one member");
	refused("{\"pkcs11\":{\"module\":\"/m.so\",\"pin\":\"1234\"}}",
		"unknown field pkcs11.pin (a PIN never goes here)");
	refused("{\"pkcs11\":{\"ca_key\":\"pkcs11:token=a;object=b\"}}",
		"pkcs11.module is missing");
	refused("{\"pkcs11\":{\"module\":\"/m.so\",\"ca_key\":\"pkcs11:object=b\"}}", "no token=");
	refused("{\"pkcs11\":{\"module\":7}}", "pkcs11.module must be a non-empty string");
	refused("{\"pkcs11\":{\"module\":\"\"}}", "pkcs11.module must be a non-empty string");
	snprintf(path, sizeof(path), "%s/sc.json", dir);
	unlink(path);
}

static void key_files_without_sc_json(void **state)
{
	struct sc_keys k;
	struct moat_diag d = {""};
	struct signer *s = NULL, *t = NULL;
	char path[128];

	(void)state;
	assert_int_equal(sc_keys_load(dir, &k, &d), MOAT_OK);
	assert_string_equal(k.module, "");
	assert_string_equal(k.uri[SC_KEY_CA], "");
	assert_int_equal(sc_keys_open(&s, dir, &k, SC_KEY_TOKEN, &d), MOAT_E_IO);
	assert_non_null(strstr(d.msg, "token.key"));
	snprintf(path, sizeof(path), "%s/token.key", dir);
	assert_int_equal(signer_file_create(&t, path, SIGNER_ED25519, &d), MOAT_OK);
	assert_int_equal(sc_keys_open(&s, dir, &k, SC_KEY_TOKEN, &d), MOAT_OK);
	assert_string_equal(s->ops->name, "file");
	assert_int_equal(s->algo, SIGNER_ED25519);
	signer_destroy(s);
	signer_destroy(t);
	unlink(path);
}

static int setup(void **state)
{
	(void)state;
	strcpy(dir, "/tmp/moat-sckeys-XXXXXX");
	return mkdtemp(dir) != NULL ? 0 : -1;
}

static int teardown(void **state)
{
	(void)state;
	return rmdir(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(saved_keys_load_back),
	    cmocka_unit_test(strict_reading),
	    cmocka_unit_test(key_files_without_sc_json),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
