/* ACL checks: sections, patterns with %c/%u and hostile identities, deny
 * precedence, access words, the SUBSCRIBE coverage and overlap rules, $-topics,
 * roles from the file and from the identity, and the empty file. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <unistd.h>

#include <cmocka.h>

#include <moat/error.h>

#include "auth/acl.h"

static struct acl *compile(const char *text)
{
	struct acl_file f;
	struct moat_diag d;
	struct acl *acl = NULL;

	if (acl_file_parse(&f, "acl", text, strlen(text), &d) != MOAT_OK)
		fail_msg("parse: %s", d.msg);
	assert_int_equal(acl_create(&acl, &f), MOAT_OK);
	acl_file_fini(&f);
	return acl;
}

static struct acl_identity ident(const char *user, const char *client)
{
	return (struct acl_identity){
	    .username = user,
	    .username_len = user != NULL ? strlen(user) : 0,
	    .client_id = client,
	    .client_id_len = client != NULL ? strlen(client) : 0,
	};
}

static bool can(const struct acl *acl, const struct acl_identity *id, const char *t,
		enum acl_access a)
{
	return acl_check(acl, id, t, strlen(t), a);
}

static void empty_file_denies_everything(void **state)
{
	static const char *const texts[] = {"", "# only a comment\n\n"};
	(void)state;
	for (size_t i = 0; i < 2; i++) {
		struct acl *acl = compile(texts[i]);
		struct acl_identity anon = ident(NULL, "c1"), u = ident("u", "c2");

		assert_false(can(acl, &anon, "a", ACL_READ));
		assert_false(can(acl, &anon, "a", ACL_WRITE));
		assert_false(can(acl, &u, "#", ACL_SUBSCRIBE));
		assert_false(can(acl, &u, "$SYS/x", ACL_READ));
		acl_destroy(acl);
	}
	acl_destroy(NULL);
}

static void anonymous_and_user_sections(void **state)
{
	struct acl *acl = compile("topic read public/#\n"
				  "user alice\n"
				  "topic readwrite alice/#\n"
				  "user bob jones\n"
				  "topic write bob/in\n"
				  "user alice\n" /* a second section for alice merges */
				  "topic read shared/+\n");
	struct acl_identity anon = ident(NULL, "c"), alice = ident("alice", "c"),
			    bob = ident("bob jones", "c"), bobby = ident("bob", "c");

	(void)state;
	assert_true(can(acl, &anon, "public/news", ACL_READ));
	assert_true(can(acl, &anon, "public", ACL_READ)); /* "#" matches the parent */
	assert_false(can(acl, &anon, "public/news", ACL_WRITE));
	assert_false(can(acl, &anon, "alice/x", ACL_READ));
	assert_false(can(acl, &alice, "public/news", ACL_READ)); /* anon rules are anon only */
	assert_true(can(acl, &alice, "alice/x/y", ACL_WRITE));
	assert_true(can(acl, &alice, "shared/1", ACL_READ));
	assert_false(can(acl, &alice, "shared/1/2", ACL_READ));
	assert_true(can(acl, &bob, "bob/in", ACL_WRITE));
	assert_false(can(acl, &bob, "bob/in", ACL_READ));
	assert_false(can(acl, &bobby, "bob/in", ACL_WRITE)); /* name compared whole */
	acl_destroy(acl);
}

static void read_write_readwrite_and_deny_precedence(void **state)
{
	struct acl *acl = compile("user u\n"
				  "topic read r/#\n"
				  "topic write w/#\n"
				  "topic readwrite rw/#\n"
				  "topic readwrite home/#\n"
				  "topic deny home/secret/#\n"
				  "pattern deny +/private\n");
	struct acl_identity u = ident("u", "c");

	(void)state;
	assert_true(can(acl, &u, "r/1", ACL_READ));
	assert_false(can(acl, &u, "r/1", ACL_WRITE));
	assert_true(can(acl, &u, "w/1", ACL_WRITE));
	assert_false(can(acl, &u, "w/1", ACL_READ));
	assert_false(can(acl, &u, "w/1", ACL_SUBSCRIBE));
	assert_true(can(acl, &u, "rw/1", ACL_READ));
	assert_true(can(acl, &u, "rw/1", ACL_WRITE));
	assert_true(can(acl, &u, "home/a", ACL_WRITE));
	assert_false(can(acl, &u, "home/secret", ACL_WRITE));
	assert_false(can(acl, &u, "home/secret/k", ACL_READ));
	assert_false(can(acl, &u, "home/private", ACL_READ)); /* deny pattern wins too */
	assert_false(can(acl, &u, "home/#", ACL_SUBSCRIBE));  /* overlaps the deny */
	assert_true(can(acl, &u, "home/a/+", ACL_SUBSCRIBE));
	assert_false(can(acl, &u, "home/+/k", ACL_SUBSCRIBE)); /* home/secret/k */
	/* topic names with wildcards, empty or NUL are refused outright */
	assert_false(can(acl, &u, "rw/+", ACL_WRITE));
	assert_false(can(acl, &u, "", ACL_READ));
	assert_false(acl_check(acl, &u, "rw/a\0b", 6, ACL_WRITE));
	assert_false(can(acl, &u, "rw/1", (enum acl_access)7));
	acl_destroy(acl);
}

static void patterns_substitute_client_id_and_username(void **state)
{
	struct acl *acl =
	    compile("pattern readwrite devices/%c/#\n"
		    "pattern read users/%u/inbox\n"
		    "pattern write x/%u-%c/y\n"
		    "topic read devices/%c/literal\n"); /* %c is literal in topic lines */
	struct acl_identity anon = ident(NULL, "dev1"), al = ident("al", "c9");

	(void)state;
	assert_true(can(acl, &anon, "devices/dev1/t", ACL_WRITE));
	assert_false(can(acl, &anon, "devices/dev2/t", ACL_WRITE));
	assert_false(can(acl, &anon, "users//inbox", ACL_READ)); /* %u needs a username */
	assert_true(can(acl, &anon, "devices/%c/literal", ACL_READ));
	assert_true(can(acl, &al, "users/al/inbox", ACL_READ));
	assert_false(can(acl, &al, "users/al/inbox", ACL_WRITE));
	assert_false(can(acl, &al, "users/alx/inbox", ACL_READ));
	assert_true(can(acl, &al, "x/al-c9/y", ACL_WRITE));
	assert_false(can(acl, &al, "x/al-c/y", ACL_WRITE));
	assert_false(can(acl, &al, "x/al-c99/y", ACL_WRITE));
	assert_true(can(acl, &al, "devices/c9/+", ACL_SUBSCRIBE));
	assert_false(can(acl, &al, "devices/+/t", ACL_SUBSCRIBE));
	acl_destroy(acl);
}

/* %{name} takes a token attribute; an absent or unsafe one never matches, deny rules included. */
static void patterns_substitute_attributes(void **state)
{
	struct acl *acl = compile("pattern readwrite sites/%{site}/#\n"
				  "pattern read fleet/%{site}-%{zone}/+\n"
				  "pattern deny sites/%{site}/secret\n"
				  "pattern read broken/%{site\n");
	const char *s1[] = { "site", "s1", "zone", "z2" };
	const char *bad[] = { "site", "s1/+" };
	const char *dollar[] = { "site", "$SYS" };
	struct acl_identity a = ident("al", "c1"), none = ident("bo", "c2"), b = ident("cy", "c3"),
			    d = ident("dd", "c4");

	(void)state;
	a.attrs = s1;
	a.attr_count = 2;
	b.attrs = bad;
	b.attr_count = 1;
	d.attrs = dollar;
	d.attr_count = 1;
	assert_true(can(acl, &a, "sites/s1/temp", ACL_WRITE));
	assert_false(can(acl, &a, "sites/s2/temp", ACL_WRITE));
	assert_true(can(acl, &a, "fleet/s1-z2/x", ACL_READ));
	assert_false(can(acl, &a, "fleet/s1-z3/x", ACL_READ));
	assert_false(can(acl, &a, "sites/s1/secret", ACL_READ)); /* deny wins */
	assert_true(can(acl, &a, "sites/s1/+/temp", ACL_SUBSCRIBE));
	assert_false(can(acl, &a, "sites/s1/#", ACL_SUBSCRIBE)); /* overlaps the deny */
	assert_false(can(acl, &a, "sites/+/temp", ACL_SUBSCRIBE));
	assert_false(can(acl, &a, "broken/%{site", ACL_READ)); /* no '}': never a match */
	assert_false(can(acl, &none, "sites/s1/temp", ACL_WRITE)); /* no such attribute */
	assert_false(can(acl, &b, "sites/s1/+/temp", ACL_WRITE)); /* unsafe value */
	assert_false(can(acl, &d, "sites/$SYS/x", ACL_WRITE) && can(acl, &d, "+/x", ACL_SUBSCRIBE));
	acl_destroy(acl);
}

/* CVE-2017-7650, nanomq#2344: wildcards or separators in an identity never widen a pattern. */
static void hostile_identities_never_match_patterns(void **state)
{
	static const char *const evil[] = {"#", "+", "a/b", "a+", "x#", "", "../a"};
	struct acl *acl = compile("pattern readwrite devices/%c/#\n"
				  "pattern readwrite users/%u\n");

	(void)state;
	for (size_t i = 0; i < sizeof(evil) / sizeof(evil[0]); i++) {
		struct acl_identity c = ident(NULL, evil[i]), u = ident(evil[i], "ok");

		assert_false(can(acl, &c, "devices/#", ACL_SUBSCRIBE));
		assert_false(can(acl, &c, "devices/x/y", ACL_READ));
		assert_false(can(acl, &c, "devices/a/b/c", ACL_WRITE));
		assert_false(can(acl, &u, "users/+", ACL_SUBSCRIBE));
		assert_false(can(acl, &u, "users/a/b", ACL_WRITE));
		assert_false(can(acl, &u, "users/#", ACL_SUBSCRIBE));
	}
	/* an embedded NUL: "ok\0x" must not act as "ok" */
	struct acl_identity nul = {.client_id = "ok\0x", .client_id_len = 4};
	assert_false(can(acl, &nul, "devices/ok/t", ACL_READ));
	struct acl_identity fine = ident(NULL, "ok");
	assert_true(can(acl, &fine, "devices/ok/t", ACL_READ));
	acl_destroy(acl);
}

/* Both directions of the SUBSCRIBE rule: cover for allow rules, overlap for deny rules. */
static void subscribe_coverage_table(void **state)
{
	static const struct {
		const char *rule, *filter;
		bool covered;
	} table[] = {
	    {"a/#", "a/+/b", true},   {"a/#", "a/#", true},	{"a/#", "a", true},
	    {"a/#", "a/b/c/d", true}, {"a/#", "b/#", false},	{"a/#", "#", false},
	    {"a/+", "a/b", true},     {"a/+", "a/+", true},	{"a/+", "a/#", false},
	    {"a/+", "a", false},      {"a/+", "a/b/c", false},	{"+/x", "#", false},
	    {"+/x", "+/x", true},     {"+/x", "a/x", true},	{"+/x", "+/+", false},
	    {"#", "#", true},	      {"#", "+/+/#", true},	{"#", "$SYS/#", false},
	    {"#", "$SYS/x", false},   {"+/#", "$SYS/x", false}, {"+/#", "#", true},
	    {"+/+/#", "#", false},    {"a/+/#", "a/#", false},	{"$SYS/#", "$SYS/+", true},
	    {"$SYS/#", "#", false},   {"+", "+", true},		{"+", "a", true},
	    {"+", "a/b", false},      {"a/b", "a/b", true},	{"a/b", "a/+", false},
	    {"a/b", "a/b/#", false},  {"a//b", "a/+/b", false}, {"a/+/b", "a//b", true},
	    {"a/+/#", "a/b", true},   {"a/+/#", "a", false},	{"+/+", "$x/y", false},
	};
	(void)state;
	for (size_t i = 0; i < sizeof(table) / sizeof(table[0]); i++) {
		char text[64];
		struct acl *acl;
		struct acl_identity u = ident("u", "c");

		snprintf(text, sizeof(text), "user u\ntopic read %s\n", table[i].rule);
		acl = compile(text);
		if (can(acl, &u, table[i].filter, ACL_SUBSCRIBE) != table[i].covered)
			fail_msg("rule %s filter %s: expected %d", table[i].rule, table[i].filter,
				 table[i].covered);
		acl_destroy(acl);
	}
}

static void subscribe_deny_blocks_on_any_overlap(void **state)
{
	static const struct {
		const char *deny, *filter;
		bool blocked;
	} table[] = {
	    {"a/b", "a/+", true},	{"a/b", "#", true},	 {"a/b", "a/#", true},
	    {"a/b", "a/c", false},	{"a/b", "+/c", false},	 {"a/+/c", "a/b/+", true},
	    {"a/+/c", "a/b/d", false},	{"a/#", "a", true},	 {"a", "a/#", true},
	    {"a/#", "b/#", false},	{"+/x", "#", true},	 {"$SYS/#", "#", false},
	    {"$SYS/#", "+/x", false},	{"#", "$SYS/x", false},	 {"+", "$SYS", false},
	    {"$SYS/#", "$SYS/b", true}, {"a/b/c", "a/+", false}, {"a/b", "a/b/c", false},
	};
	(void)state;
	for (size_t i = 0; i < sizeof(table) / sizeof(table[0]); i++) {
		char text[96];
		struct acl *acl;
		struct acl_identity u = ident("u", "c");

		/* "#" and "$SYS/#" together cover every filter, so only the deny decides */
		snprintf(text, sizeof(text),
			 "user u\ntopic read #\ntopic read $SYS/#\ntopic deny %s\n", table[i].deny);
		acl = compile(text);
		if (can(acl, &u, table[i].filter, ACL_SUBSCRIBE) == table[i].blocked)
			fail_msg("deny %s filter %s: expected blocked=%d", table[i].deny,
				 table[i].filter, table[i].blocked);
		acl_destroy(acl);
	}
}

static void dollar_topics_not_matched_by_leading_wildcards(void **state)
{
	struct acl *acl = compile("user u\ntopic readwrite #\ntopic read +/stats\n"
				  "user admin\ntopic read $SYS/#\n");
	struct acl_identity u = ident("u", "c"), admin = ident("admin", "c");

	(void)state;
	assert_true(can(acl, &u, "a/b", ACL_READ));
	assert_false(can(acl, &u, "$SYS/broker/uptime", ACL_READ));
	assert_false(can(acl, &u, "$SYS/stats", ACL_READ));
	assert_false(can(acl, &u, "$SYS/#", ACL_SUBSCRIBE));
	assert_false(can(acl, &u, "$foo", ACL_WRITE));
	assert_true(can(acl, &admin, "$SYS/broker/uptime", ACL_READ));
	assert_true(can(acl, &admin, "$SYS/#", ACL_SUBSCRIBE));
	assert_false(can(acl, &admin, "#", ACL_SUBSCRIBE));
	acl_destroy(acl);
}

static void shared_subscriptions_check_the_inner_filter(void **state)
{
	struct acl *acl = compile("user u\ntopic read jobs/#\n");
	struct acl_identity u = ident("u", "c");

	(void)state;
	assert_true(can(acl, &u, "$share/g1/jobs/+", ACL_SUBSCRIBE));
	assert_true(can(acl, &u, "jobs/+", ACL_SUBSCRIBE));
	assert_false(can(acl, &u, "$share/g1/other/#", ACL_SUBSCRIBE));
	assert_false(can(acl, &u, "$share/g1/#", ACL_SUBSCRIBE));
	assert_false(can(acl, &u, "$share//jobs/a", ACL_SUBSCRIBE));
	assert_false(can(acl, &u, "$share/g1", ACL_SUBSCRIBE));
	assert_false(can(acl, &u, "$share/g1/", ACL_SUBSCRIBE));
	assert_false(can(acl, &u, "$share/g+/jobs/a", ACL_SUBSCRIBE));
	assert_false(can(acl, &u, "jobs/#/x", ACL_SUBSCRIBE)); /* invalid filter */
	acl_destroy(acl);
}

static void roles_from_file_and_from_identity(void **state)
{
	static const char *const ops_role[] = {"ops"};
	static const char *const given[] = {"viewer", "no-such-role"};
	struct acl *acl = compile("user carol\n"
				  "roles ops\n"
				  "topic read carol/#\n"
				  "role ops\n"
				  "topic readwrite ops/#\n"
				  "topic deny ops/keys\n"
				  "pattern write logs/%u\n"
				  "role viewer\n"
				  "topic read dash/#\n");
	struct acl_identity carol = ident("carol", "c"), dave = ident("dave", "d");
	struct acl_identity anon = ident(NULL, "x");

	(void)state;
	assert_true(can(acl, &carol, "carol/a", ACL_READ));
	assert_true(can(acl, &carol, "ops/a", ACL_WRITE));
	assert_false(can(acl, &carol, "ops/keys", ACL_READ)); /* the role's deny applies */
	assert_true(can(acl, &carol, "logs/carol", ACL_WRITE));
	assert_false(can(acl, &carol, "logs/dave", ACL_WRITE));
	assert_false(can(acl, &carol, "dash/a", ACL_READ));
	assert_false(can(acl, &dave, "ops/a", ACL_READ)); /* no section, no role */
	dave.roles = given;
	dave.role_count = 2; /* unknown names grant nothing and break nothing */
	assert_true(can(acl, &dave, "dash/a", ACL_READ));
	assert_false(can(acl, &dave, "ops/a", ACL_READ));
	anon.roles = ops_role;
	anon.role_count = 1;
	assert_true(can(acl, &anon, "ops/a", ACL_WRITE));
	assert_false(can(acl, &anon, "ops/keys", ACL_WRITE));
	assert_false(can(acl, &anon, "logs/x", ACL_WRITE)); /* %u needs a username */
	carol.roles = given;
	carol.role_count = 1; /* identity roles add to the file's */
	assert_true(can(acl, &carol, "dash/a", ACL_READ));
	assert_true(can(acl, &carol, "ops/a", ACL_READ));
	acl_destroy(acl);
}

static void many_users_are_found_and_kept_apart(void **state)
{
	struct acl_file f;
	struct moat_diag d;
	struct acl *acl;
	char *text = malloc(200 * 48);
	size_t n = 0;

	(void)state;
	assert_non_null(text);
	for (int i = 199; i >= 0; i--) /* reverse order: lookups rely on the sort */
		n += (size_t)sprintf(text + n, "user u%d\ntopic readwrite t/%d\n", i, i);
	assert_int_equal(acl_file_parse(&f, "acl", text, n, &d), MOAT_OK);
	assert_int_equal(acl_create(&acl, &f), MOAT_OK);
	acl_file_fini(&f);
	for (int i = 0; i < 200; i++) {
		char user[16], own[16], other[16];
		struct acl_identity id;

		snprintf(user, sizeof(user), "u%d", i);
		snprintf(own, sizeof(own), "t/%d", i);
		snprintf(other, sizeof(other), "t/%d", (i + 1) % 200);
		id = ident(user, "c");
		assert_true(can(acl, &id, own, ACL_WRITE));
		assert_false(can(acl, &id, other, ACL_WRITE));
	}
	acl_destroy(acl);
	free(text);
}

static void load_compiles_a_file_and_reports_errors(void **state)
{
	static const char ok[] = "user u\ntopic read x/#\n";
	static const char bad[] = "user u\ntopic read x/#/y\n";
	char path[] = "/tmp/moat_acl_XXXXXX";
	int fd = mkstemp(path);
	struct moat_diag d;
	struct acl *acl = NULL;
	struct acl_identity u = ident("u", "c");

	(void)state;
	assert_true(fd >= 0);
	assert_int_equal(write(fd, ok, strlen(ok)), (ssize_t)strlen(ok));
	close(fd);
	assert_int_equal(acl_load(&acl, path, &d), MOAT_OK);
	assert_true(can(acl, &u, "x/y", ACL_READ));
	acl_destroy(acl);
	fd = open(path, O_WRONLY | O_TRUNC);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, bad, strlen(bad)), (ssize_t)strlen(bad));
	close(fd);
	assert_int_equal(acl_load(&acl, path, &d), MOAT_E_CONFIG);
	assert_non_null(strstr(d.msg, ":2: invalid topic filter"));
	unlink(path);
	assert_int_equal(acl_load(&acl, path, &d), MOAT_E_IO);
}

/*
 * Cover and overlap checked against brute force: over the alphabet {a, b, $s,
 * +, #} (filters up to 3 levels) and {a, b, $s, q} (topics up to 4 levels, q
 * matching no literal), rule R covers F iff every topic F matches R matches,
 * and a deny R blocks F iff some topic matches both.
 */
#define BF_FILTERS 105
#define BF_TOPICS 340

static size_t bf_filters(char out[][16])
{
	static const char *const tok[] = {"a", "b", "$s", "+", "#"};
	size_t n = 0;

	for (int d = 1; d <= 3; d++) {
		int total = 1;

		for (int i = 0; i < d; i++)
			total *= 5;
		for (int k = 0; k < total; k++) {
			char buf[16] = "";
			bool ok = true;

			for (int i = 0, v = k; i < d; i++, v /= 5) {
				if (v % 5 == 4 && i != d - 1)
					ok = false;
				strcat(buf, i > 0 ? "/" : "");
				strcat(buf, tok[v % 5]);
			}
			if (ok)
				strcpy(out[n++], buf);
		}
	}
	return n;
}

static size_t bf_topics(char out[][16])
{
	static const char *const tok[] = {"a", "b", "$s", "q"};
	size_t n = 0;

	for (int d = 1; d <= 4; d++) {
		int total = 1;

		for (int i = 0; i < d; i++)
			total *= 4;
		for (int k = 0; k < total; k++) {
			out[n][0] = '\0';
			for (int i = 0, v = k; i < d; i++, v /= 4) {
				strcat(out[n], i > 0 ? "/" : "");
				strcat(out[n], tok[v % 4]);
			}
			n++;
		}
	}
	return n;
}

static void subscribe_rule_agrees_with_brute_force(void **state)
{
	static char filters[BF_FILTERS][16], topics[BF_TOPICS][16];
	static bool m[BF_FILTERS][BF_TOPICS];
	static struct acl *allow[BF_FILTERS], *deny[BF_FILTERS];
	struct acl_identity u = ident("u", "c");

	(void)state;
	assert_int_equal(bf_filters(filters), BF_FILTERS);
	assert_int_equal(bf_topics(topics), BF_TOPICS);
	for (size_t r = 0; r < BF_FILTERS; r++) {
		char text[96];

		snprintf(text, sizeof(text), "user u\ntopic read %.15s\n", filters[r]);
		allow[r] = compile(text);
		snprintf(text, sizeof(text),
			 "user u\ntopic read #\ntopic read $s/#\ntopic deny %.15s\n", filters[r]);
		deny[r] = compile(text);
		for (size_t t = 0; t < BF_TOPICS; t++)
			m[r][t] = can(allow[r], &u, topics[t], ACL_READ);
	}
	for (size_t r = 0; r < BF_FILTERS; r++) {
		for (size_t f = 0; f < BF_FILTERS; f++) {
			bool cover = true, overlap = false;

			for (size_t t = 0; t < BF_TOPICS; t++) {
				cover &= !m[f][t] || m[r][t];
				overlap |= m[f][t] && m[r][t];
			}
			if (can(allow[r], &u, filters[f], ACL_SUBSCRIBE) != cover)
				fail_msg("rule %s filter %s: cover should be %d", filters[r],
					 filters[f], cover);
			if (can(deny[r], &u, filters[f], ACL_SUBSCRIBE) != !overlap)
				fail_msg("deny %s filter %s: overlap should be %d", filters[r],
					 filters[f], overlap);
		}
	}
	for (size_t r = 0; r < BF_FILTERS; r++) {
		acl_destroy(allow[r]);
		acl_destroy(deny[r]);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(empty_file_denies_everything),
	    cmocka_unit_test(anonymous_and_user_sections),
	    cmocka_unit_test(read_write_readwrite_and_deny_precedence),
	    cmocka_unit_test(patterns_substitute_client_id_and_username),
	    cmocka_unit_test(patterns_substitute_attributes),
	    cmocka_unit_test(hostile_identities_never_match_patterns),
	    cmocka_unit_test(subscribe_coverage_table),
	    cmocka_unit_test(subscribe_deny_blocks_on_any_overlap),
	    cmocka_unit_test(subscribe_rule_agrees_with_brute_force),
	    cmocka_unit_test(dollar_topics_not_matched_by_leading_wildcards),
	    cmocka_unit_test(shared_subscriptions_check_the_inner_filter),
	    cmocka_unit_test(roles_from_file_and_from_identity),
	    cmocka_unit_test(many_users_are_found_and_kept_apart),
	    cmocka_unit_test(load_compiles_a_file_and_reports_errors),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
