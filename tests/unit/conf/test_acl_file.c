/* ACL file parser: the accepted forms (sections, access words, roles), and
 * every malformed line refused with "FILE:LINE: problem; fix". */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include <moat/error.h>

#include "conf/acl_file.h"

static int parse(struct acl_file *f, const char *text, struct moat_diag *d)
{
	return acl_file_parse(f, "acl", text, strlen(text), d);
}

static void empty_and_comment_only_files_hold_no_rule(void **state)
{
	static const char *const texts[] = {"", "\n\n", "# nothing\n  # indented\n\t\n",
					    "#topic read a\n"};
	(void)state;
	for (size_t i = 0; i < sizeof(texts) / sizeof(texts[0]); i++) {
		struct acl_file f;
		struct moat_diag d;

		assert_int_equal(parse(&f, texts[i], &d), MOAT_OK);
		assert_int_equal(f.anon.rule_count, 0);
		assert_int_equal(f.patterns.rule_count, 0);
		assert_int_equal(f.user_count, 0);
		assert_int_equal(f.role_count, 0);
		acl_file_fini(&f);
	}
}

static void sections_and_access_words(void **state)
{
	const char *text = "topic read public/#\n"
			   "topic pub/x\n"
			   "pattern write devices/%c/out\n"
			   "user alice smith\r\n"
			   "topic deny secret/#\n"
			   "topic readwrite home/alice/#   \n"
			   "pattern read users/%u/#\n"
			   "topic write a b c\n";
	struct acl_file f;
	struct moat_diag d;

	(void)state;
	assert_int_equal(parse(&f, text, &d), MOAT_OK);
	assert_int_equal(f.anon.rule_count, 2);
	assert_string_equal(f.anon.rules[0].topic, "public/#");
	assert_int_equal(f.anon.rules[0].perm, ACL_PERM_READ);
	assert_string_equal(f.anon.rules[1].topic, "pub/x");
	assert_int_equal(f.anon.rules[1].perm, ACL_PERM_READWRITE);
	assert_int_equal(f.patterns.rule_count, 2);
	assert_true(f.patterns.rules[0].pattern);
	assert_int_equal(f.patterns.rules[0].perm, ACL_PERM_WRITE);
	assert_string_equal(f.patterns.rules[1].topic, "users/%u/#");
	assert_int_equal(f.patterns.rules[1].line, 7);
	assert_int_equal(f.user_count, 1);
	assert_string_equal(f.users[0]->name, "alice smith");
	assert_int_equal(f.users[0]->rule_count, 3);
	assert_int_equal(f.users[0]->rules[0].perm, ACL_PERM_DENY);
	assert_string_equal(f.users[0]->rules[1].topic, "home/alice/#");
	assert_string_equal(f.users[0]->rules[2].topic, "a b c");
	assert_false(f.users[0]->rules[2].pattern);
	acl_file_fini(&f);
}

static void roles_sections_and_references(void **state)
{
	const char *text = "user bob\n"
			   "roles ops viewers\n"
			   "role ops\n"
			   "topic write ops/#\n"
			   "pattern read ops/%c\n"
			   "role viewers\n"
			   "topic read dash/#\n";
	struct acl_file f;
	struct moat_diag d;

	(void)state;
	assert_int_equal(parse(&f, text, &d), MOAT_OK);
	assert_int_equal(f.user_count, 1);
	assert_int_equal(f.users[0]->role_count, 2);
	assert_string_equal(f.users[0]->roles[1].name, "viewers");
	assert_int_equal(f.role_count, 2);
	assert_string_equal(f.roles[0]->name, "ops");
	assert_int_equal(f.roles[0]->rule_count, 2); /* the pattern belongs to the role */
	assert_true(f.roles[0]->rules[1].pattern);
	assert_int_equal(f.patterns.rule_count, 0);
	assert_int_equal(f.roles[1]->rule_count, 1);
	acl_file_fini(&f);
}

/* Each bad text fails with MOAT_E_CONFIG, and the message names its line and a word. */
static void malformed_lines_are_refused(void **state)
{
	static const struct {
		const char *text;
		const char *where;
		const char *word;
	} bad[] = {
	    {"topic\n", "acl:1:", "needs a topic"},
	    {"topic read\n", "acl:1:", "needs a topic filter"},
	    {"pattern deny   \n", "acl:1:", "needs a topic filter"},
	    {"topic reed a/b\n", "acl:1:", "unknown access"},
	    {"topic read a/#/b\n", "acl:1:", "'#'"},
	    {"topic read a#\n", "acl:1:", "'#'"},
	    {"topic read a+\n", "acl:1:", "'+'"},
	    {"topic read a/+b/c\n", "acl:1:", "'+'"},
	    {"\n# ok\npattern write +a\n", "acl:3:", "'+'"},
	    {"user\n", "acl:1:", "user needs a name"},
	    {"user   \t\n", "acl:1:", "user needs a name"},
	    {"role\n", "acl:1:", "role needs"},
	    {"role a b\n", "acl:1:", "role needs"},
	    {"roles ops\nrole ops\n", "acl:1:", "inside a user section"},
	    {"role ops\nroles ops\n", "acl:2:", "inside a user section"},
	    {"user a\nroles\n", "acl:2:", "at least one role"},
	    {"user a\nroles ops nope\nrole ops\n", "acl:2:", "unknown role \"nope\""},
	    {"topics read a\n", "acl:1:", "unknown keyword"},
	    {"TOPIC read a\n", "acl:1:", "unknown keyword"},
	    {"allow a\n", "acl:1:", "unknown keyword"},
	};
	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct acl_file f;
		struct moat_diag d;

		assert_int_equal(parse(&f, bad[i].text, &d), MOAT_E_CONFIG);
		if (strncmp(d.msg, bad[i].where, strlen(bad[i].where)) != 0 ||
		    strstr(d.msg, bad[i].word) == NULL)
			fail_msg("text %zu: \"%s\"", i, d.msg);
		assert_int_equal(f.user_count, 0); /* nothing half-loaded */
		assert_int_equal(f.anon.rule_count, 0);
		acl_file_fini(&f);
	}
}

static void nul_byte_and_overlong_topic_are_refused(void **state)
{
	static const char nul[] = "topic read a\nuser x\0y\n";
	struct acl_file f;
	struct moat_diag d;
	size_t n = ACL_FILE_MAX_TOPIC + 1;
	char *big = malloc(n + 16);

	(void)state;
	assert_int_equal(acl_file_parse(&f, "acl", nul, sizeof(nul) - 1, &d), MOAT_E_CONFIG);
	assert_non_null(strstr(d.msg, "acl:2: NUL"));
	acl_file_fini(&f);

	assert_non_null(big);
	memcpy(big, "topic ", 6);
	memset(big + 6, 'a', n);
	big[6 + n] = '\0';
	assert_int_equal(parse(&f, big, &d), MOAT_E_CONFIG);
	assert_non_null(strstr(d.msg, "limit"));
	big[6 + n - 1] = '\0'; /* exactly the maximum */
	assert_int_equal(parse(&f, big, &d), MOAT_OK);
	assert_int_equal(strlen(f.anon.rules[0].topic), ACL_FILE_MAX_TOPIC);
	acl_file_fini(&f);
	memcpy(big, "user  ", 6); /* a name one byte over the limit */
	big[6 + n - 1] = 'a';
	assert_int_equal(parse(&f, big, &d), MOAT_E_CONFIG);
	assert_non_null(strstr(d.msg, "user name longer"));
	free(big);
}

static void load_reads_a_file_and_reports_a_missing_one(void **state)
{
	char path[] = "/tmp/moat_acl_XXXXXX";
	int fd = mkstemp(path);
	struct acl_file f;
	struct moat_diag d;

	(void)state;
	assert_true(fd >= 0);
	assert_int_equal(write(fd, "user u\ntopic x\n", 15), 15);
	close(fd);
	assert_int_equal(acl_file_load(&f, path, &d), MOAT_OK);
	assert_int_equal(f.user_count, 1);
	acl_file_fini(&f);
	unlink(path);
	assert_int_equal(acl_file_load(&f, path, &d), MOAT_E_IO);
	assert_non_null(strstr(d.msg, "cannot open"));
	acl_file_fini(NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(empty_and_comment_only_files_hold_no_rule),
	    cmocka_unit_test(sections_and_access_words),
	    cmocka_unit_test(roles_sections_and_references),
	    cmocka_unit_test(malformed_lines_are_refused),
	    cmocka_unit_test(nul_byte_and_overlong_topic_are_refused),
	    cmocka_unit_test(load_reads_a_file_and_reports_a_missing_one),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
