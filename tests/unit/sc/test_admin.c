/* Admin channel over a real socket in a temp SC directory: thing.create
 * from a CSR with Ed25519/X25519 public keys (registered; cert, CA and SC
 * key returned), duplicates refused; malformed, unknown and over-long
 * requests answered with an error while the connection goes on;
 * list/show/update/revoke with the revocation hook called (and its failure
 * reported); policy set/show/list/delete edit the file only after the
 * policy engine accepts the whole new document (a weak alg is refused by
 * name, the file unchanged), with policies_changed called; key.rotate
 * calls its hook for a known filter only; NULL hooks say no daemon acted;
 * token.issue gives a token the broker's verifier accepts; every request
 * leaves an audit row with its actor; a live socket is not taken over, a
 * stale one is replaced; the socket is 0600; another user is turned away. */
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <cmocka.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include <moat/error.h>

#include "auth/jwt.h"
#include "sc/admin.h"
#include "sc/ca.h"
#include "sc_fixture.h"

struct calls {
	int revoked, rotated, changed;
	char last[128];
	int fail; /* hooks return MOAT_E_IO when set */
};

struct fx {
	struct sc_fixture sc;
	char path[160], policy[160], sock[100];
	struct sc_admin *admin;
	struct sc_admin_ctx ctx;
	struct calls calls;
	int fd;
	struct moat_diag d;
};

static int hook_revoked(void *arg, const char *name, struct moat_diag *d)
{
	struct calls *c = arg;

	c->revoked++;
	snprintf(c->last, sizeof(c->last), "%s", name);
	if (c->fail)
		snprintf(d->msg, sizeof(d->msg), "push failed");
	return c->fail ? MOAT_E_IO : MOAT_OK;
}

static int hook_rotate(void *arg, const char *filter, struct moat_diag *d)
{
	struct calls *c = arg;

	(void)d;
	c->rotated++;
	snprintf(c->last, sizeof(c->last), "%s", filter);
	return MOAT_OK;
}

static int hook_changed(void *arg, struct moat_diag *d)
{
	struct calls *c = arg;

	(void)d;
	c->changed++;
	return MOAT_OK;
}

static int connect_to(const char *path)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	int fd = socket(AF_UNIX, SOCK_STREAM, 0);

	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	assert_true(fd >= 0);
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
		close(fd);
		return -1;
	}
	return fd;
}

static void start(struct fx *f, bool hooks)
{
	f->ctx = (struct sc_admin_ctx){
	    .dir = f->sc.dir,
	    .reg = f->sc.reg,
	    .ca = f->sc.ca,
	    .token_signer = f->sc.tok,
	    .policy_file = f->policy,
	    .broker_url = "mqtts://127.0.0.1:8883",
	    .token_audience = "broker-1",
	};
	if (hooks)
		f->ctx.hooks =
		    (struct sc_admin_hooks){&f->calls, hook_revoked, hook_rotate, hook_changed};
	assert_int_equal(sc_admin_start(&f->admin, &f->ctx, &f->d), MOAT_OK);
	f->fd = connect_to(f->sock);
	assert_true(f->fd >= 0);
}

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));

	assert_int_equal(sc_fixture_open(&f->sc, "sc-admin"), 0);
	snprintf(f->policy, sizeof(f->policy), "%s/policies.json", f->sc.dir);
	snprintf(f->sock, sizeof(f->sock), "%s/%s", f->sc.dir, SC_ADMIN_SOCKET);
	f->fd = -1;
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;

	if (f->fd >= 0)
		close(f->fd);
	sc_admin_stop(f->admin);
	sc_fixture_close(&f->sc);
	free(f);
	return 0;
}

/* Sends <line> (a newline is added) and returns the parsed answer. */
static cJSON *ask_raw(struct fx *f, const char *line)
{
	static char in[1 << 20];
	size_t n = 0;

	assert_int_equal(write(f->fd, line, strlen(line)), (ssize_t)strlen(line));
	assert_int_equal(write(f->fd, "\n", 1), 1);
	while (n == 0 || in[n - 1] != '\n') {
		ssize_t r = read(f->fd, in + n, sizeof(in) - 1 - n);

		assert_true(r > 0);
		n += (size_t)r;
	}
	in[n] = '\0';
	assert_null(memchr(in, '\n', n - 1)); /* one line per answer */
	return cJSON_Parse(in);
}

static cJSON *ask(struct fx *f, cJSON *req)
{
	char *text = cJSON_PrintUnformatted(req);
	cJSON *res = ask_raw(f, text);

	cJSON_free(text);
	cJSON_Delete(req);
	return res;
}

static bool ok(const cJSON *res);
static const char *field(const cJSON *res, const char *key);

/* Asks <req> and checks it is refused, with <text> in the error unless NULL. */
static void refused(struct fx *f, cJSON *req, const char *text)
{
	cJSON *res = ask(f, req);

	assert_false(ok(res));
	if (text != NULL)
		assert_non_null(strstr(field(res, "error"), text));
	cJSON_Delete(res);
}

static cJSON *op(const char *name)
{
	cJSON *j = cJSON_CreateObject();

	cJSON_AddStringToObject(j, "op", name);
	return j;
}

static bool ok(const cJSON *res)
{
	return cJSON_IsTrue(cJSON_GetObjectItem(res, "ok"));
}

static const char *field(const cJSON *res, const char *key)
{
	const cJSON *v = cJSON_GetObjectItem(res, key);

	return cJSON_IsString(v) ? v->valuestring : "";
}

static char *public_pem(const char *type)
{
	EVP_PKEY *k = EVP_PKEY_Q_keygen(NULL, NULL, type);
	BIO *bio = BIO_new(BIO_s_mem());
	char *p, *out;
	long n;

	assert_int_equal(PEM_write_bio_PUBKEY(bio, k), 1);
	n = BIO_get_mem_data(bio, &p);
	out = strndup(p, (size_t)n);
	BIO_free(bio);
	EVP_PKEY_free(k);
	return out;
}

static cJSON *create_req(const char *name, bool keys)
{
	cJSON *j = op("thing.create"), *attrs;
	EVP_PKEY *key = NULL;
	char *csr = NULL, *pem;
	struct moat_diag d;

	assert_int_equal(ca_make_key_csr(name, &key, &csr, &d), MOAT_OK);
	cJSON_AddStringToObject(j, "name", name);
	cJSON_AddStringToObject(j, "csr", csr);
	attrs = cJSON_AddObjectToObject(j, "attrs");
	cJSON_AddStringToObject(attrs, "role", "sensor");
	cJSON_AddStringToObject(attrs, "site", "plant-7");
	if (keys) {
		pem = public_pem("ED25519");
		cJSON_AddStringToObject(j, "sign_pub", pem);
		free(pem);
		pem = public_pem("X25519");
		cJSON_AddStringToObject(j, "agree_pub", pem);
		free(pem);
	}
	free(csr);
	EVP_PKEY_free(key);
	return j;
}

static cJSON *named(const char *opname, const char *name)
{
	cJSON *j = op(opname);

	cJSON_AddStringToObject(j, "name", name);
	return j;
}

static void test_thing_create_registers_keys_and_returns_the_bundle(void **state)
{
	struct fx *f = *state;
	struct stat st;
	cJSON *res, *t;
	char *pem;

	start(f, true);
	assert_int_equal(stat(f->sock, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	res = ask(f, create_req("dev-1", true));
	assert_true(ok(res));
	assert_non_null(strstr(field(res, "cert"), "BEGIN CERTIFICATE"));
	assert_non_null(strstr(field(res, "ca"), "BEGIN CERTIFICATE"));
	assert_non_null(strstr(field(res, "sc_pub"), "BEGIN PUBLIC KEY"));
	assert_string_equal(field(res, "broker"), "mqtts://127.0.0.1:8883");
	assert_true(strlen(field(res, "serial")) > 0);
	cJSON_Delete(res);
	res = ask(f, named("thing.show", "dev-1"));
	assert_true(ok(res));
	t = cJSON_GetObjectItem(res, "thing");
	assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(t, "keys")), 2);
	assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(t, "certs")), 1);
	assert_string_equal(field(cJSON_GetObjectItem(t, "attrs"), "site"), "plant-7");
	cJSON_Delete(res);
	/* a taken name, a CSR that is no CSR, an X25519 key given as signing key */
	refused(f, create_req("dev-1", false), "dev-1");
	res = create_req("dev-2", false);
	cJSON_ReplaceItemInObject(res, "csr", cJSON_CreateString("not a CSR"));
	refused(f, res, NULL);
	res = create_req("dev-2", false);
	pem = public_pem("X25519");
	cJSON_AddStringToObject(res, "sign_pub", pem);
	free(pem);
	refused(f, res, "sign_pub: not a PEM Ed25519");
	res = ask(f, named("thing.show", "dev-2"));
	assert_false(ok(res)); /* nothing registered for the refused requests */
	cJSON_Delete(res);
}

static void test_bad_requests_keep_the_connection(void **state)
{
	struct fx *f = *state;
	char *big = malloc(SC_ADMIN_LINE_MAX + 10);
	cJSON *res;

	start(f, true);
	res = ask_raw(f, "{not json");
	assert_false(ok(res));
	cJSON_Delete(res);
	res = ask_raw(f, "[1,2]");
	assert_false(ok(res));
	cJSON_Delete(res);
	refused(f, op("thing.fly"), "unknown op");
	res = ask(f, op("thing.show"));
	assert_false(ok(res));
	assert_non_null(strstr(field(res, "error"), "\"name\""));
	cJSON_Delete(res);
	memset(big, 'x', SC_ADMIN_LINE_MAX + 9);
	big[SC_ADMIN_LINE_MAX + 9] = '\0';
	res = ask_raw(f, big);
	assert_false(ok(res));
	assert_non_null(strstr(field(res, "error"), "over"));
	cJSON_Delete(res);
	free(big);
	res = ask(f, op("thing.list"));
	assert_true(ok(res));
	cJSON_Delete(res);
}

static void test_update_list_revoke_with_hooks(void **state)
{
	struct fx *f = *state;
	cJSON *res, *req, *attrs;

	start(f, true);
	cJSON_Delete(ask(f, create_req("dev-1", false)));
	req = named("thing.update", "dev-1");
	attrs = cJSON_AddObjectToObject(req, "attrs");
	cJSON_AddStringToObject(attrs, "role", "actuator");
	res = ask(f, req);
	assert_true(ok(res));
	assert_string_equal(
	    field(cJSON_GetObjectItem(cJSON_GetObjectItem(res, "thing"), "attrs"), "role"),
	    "actuator");
	cJSON_Delete(res);
	res = ask(f, op("thing.list"));
	assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(res, "things")), 1);
	cJSON_Delete(res);
	req = named("thing.revoke", "dev-1");
	cJSON_AddStringToObject(req, "reason", "stolen");
	res = ask(f, req);
	assert_false(ok(res));
	assert_int_equal(f->calls.revoked, 0);
	cJSON_Delete(res);
	req = named("thing.revoke", "dev-1");
	cJSON_AddStringToObject(req, "reason", "key-compromise");
	res = ask(f, req);
	assert_true(ok(res));
	assert_true(cJSON_IsTrue(cJSON_GetObjectItem(res, "daemon")));
	assert_int_equal(f->calls.revoked, 1);
	assert_string_equal(f->calls.last, "dev-1");
	cJSON_Delete(res);
	res = ask(f, named("thing.revoke", "dev-1"));
	assert_false(ok(res));
	assert_int_equal(f->calls.revoked, 1);
	cJSON_Delete(res);
	/* a failing hook: the registry change stands, the answer says what failed */
	cJSON_Delete(ask(f, create_req("dev-2", false)));
	f->calls.fail = 1;
	res = ask(f, named("thing.revoke", "dev-2"));
	assert_false(ok(res));
	assert_non_null(strstr(field(res, "error"), "revoked in the registry, but the daemon "
						    "failed: push failed"));
	cJSON_Delete(res);
}

static bool file_has(const char *path, const char *text)
{
	char buf[8192];
	FILE *fp = fopen(path, "r");
	size_t n = fp != NULL ? fread(buf, 1, sizeof(buf) - 1, fp) : 0;

	if (fp != NULL)
		fclose(fp);
	buf[n] = '\0';
	return strstr(buf, text) != NULL;
}

static cJSON *policy_req(const char *filter, const char *alg)
{
	cJSON *j = op("policy.set");

	cJSON_AddStringToObject(j, "filter", filter);
	cJSON_AddStringToObject(j, "publish", "role == sensor");
	cJSON_AddStringToObject(j, "subscribe", "role in [historian, operator]");
	if (alg != NULL)
		cJSON_AddStringToObject(j, "alg", alg);
	cJSON_AddTrueToObject(j, "signed");
	cJSON_AddNumberToObject(j, "max_age_s", 300);
	return j;
}

static void test_policies_are_checked_before_the_file_changes(void **state)
{
	struct fx *f = *state;
	cJSON *res, *req;

	start(f, true);
	res = ask(f, policy_req("plant/+/temp", NULL));
	assert_true(ok(res));
	assert_false(cJSON_IsTrue(cJSON_GetObjectItem(res, "replaced")));
	assert_int_equal(f->calls.changed, 1);
	assert_true(file_has(f->policy, "plant/+/temp"));
	cJSON_Delete(res);
	res = ask(f, policy_req("plant/+/temp", "aes-256-gcm"));
	assert_true(ok(res));
	assert_true(cJSON_IsTrue(cJSON_GetObjectItem(res, "replaced")));
	cJSON_Delete(res);
	/* weak alg and bad expression: refused by the engine, file unchanged */
	refused(f, policy_req("plant/+/hum", "des"), "use chacha20-poly1305");
	req = policy_req("plant/+/hum", NULL);
	cJSON_ReplaceItemInObject(req, "publish", cJSON_CreateString("role == (sensor"));
	refused(f, req, NULL);
	assert_false(file_has(f->policy, "plant/+/hum"));
	assert_int_equal(f->calls.changed, 2);
	req = op("policy.show");
	cJSON_AddStringToObject(req, "filter", "plant/+/temp");
	res = ask(f, req);
	assert_true(ok(res));
	assert_string_equal(field(cJSON_GetObjectItem(res, "policy"), "alg"), "aes-256-gcm");
	cJSON_Delete(res);
	res = ask(f, op("policy.list"));
	assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(res, "policies")), 1);
	cJSON_Delete(res);
	req = op("key.rotate");
	cJSON_AddStringToObject(req, "filter", "plant/+/temp");
	res = ask(f, req);
	assert_true(ok(res));
	assert_int_equal(f->calls.rotated, 1);
	assert_string_equal(f->calls.last, "plant/+/temp");
	cJSON_Delete(res);
	req = op("key.rotate");
	cJSON_AddStringToObject(req, "filter", "other/#");
	res = ask(f, req);
	assert_false(ok(res));
	assert_int_equal(f->calls.rotated, 1);
	cJSON_Delete(res);
	req = op("policy.delete");
	cJSON_AddStringToObject(req, "filter", "plant/+/temp");
	res = ask(f, req);
	assert_true(ok(res));
	assert_int_equal(f->calls.changed, 3);
	assert_false(file_has(f->policy, "plant/+/temp"));
	cJSON_Delete(res);
}

static void test_null_hooks_say_no_daemon_acted(void **state)
{
	struct fx *f = *state;
	cJSON *res;

	start(f, false);
	cJSON_Delete(ask(f, create_req("dev-1", false)));
	res = ask(f, named("thing.revoke", "dev-1"));
	assert_true(ok(res));
	assert_true(cJSON_IsFalse(cJSON_GetObjectItem(res, "daemon")));
	assert_non_null(strstr(field(res, "note"), "nothing was pushed"));
	cJSON_Delete(res);
}

static void test_token_issue_verifies_and_is_audited(void **state)
{
	struct fx *f = *state;
	struct jwt_key_spec spec = {.path = f->path};
	struct jwt_claims c = {0};
	struct jwt_keys *ks = NULL;
	struct jwt_expect e;
	cJSON *res, *req, *rows, *row;
	const char *token;
	char *pub = signer_public_pem(f->sc.tok);
	FILE *fp;
	bool seen = false;

	start(f, true);
	cJSON_Delete(ask(f, create_req("dev-1", false)));
	req = named("token.issue", "dev-1");
	cJSON_AddNumberToObject(req, "ttl_s", 60);
	refused(f, req, NULL);
	req = named("token.issue", "dev-1");
	cJSON_AddStringToObject(req, "actor", "alice");
	res = ask(f, req);
	assert_true(ok(res));
	token = field(res, "token");
	snprintf(f->path, sizeof(f->path), "%s/token.pub", f->sc.dir);
	fp = fopen(f->path, "w");
	fputs(pub, fp);
	fclose(fp);
	free(pub);
	spec.kid = field(res, "kid");
	assert_int_equal(jwt_keys_load(&ks, &spec, 1, NULL, 0), MOAT_OK);
	jwt_expect_init(&e);
	e.audience = "broker-1";
	e.issuer = "moat-sc";
	assert_int_equal(jwt_verify(ks, token, strlen(token), &e, (int64_t)time(NULL), &c, NULL, 0),
			 MOAT_OK);
	assert_string_equal(c.sub, "dev-1");
	assert_string_equal(c.jti, field(res, "jti"));
	jwt_claims_fini(&c);
	jwt_keys_unref(ks);
	cJSON_Delete(res);
	req = op("audit.tail");
	cJSON_AddNumberToObject(req, "n", 5);
	res = ask(f, req);
	rows = cJSON_GetObjectItem(res, "audit");
	assert_int_equal(cJSON_GetArraySize(rows), 5);
	cJSON_ArrayForEach(row, rows)
	{
		if (strcmp(field(row, "action"), "admin.token.issue") == 0 &&
		    strcmp(field(row, "actor"), "alice") == 0) {
			seen = true;
			/* the row names the token, never holds it */
			assert_non_null(
			    cJSON_GetObjectItem(cJSON_GetObjectItem(row, "detail"), "jti"));
			assert_null(
			    cJSON_GetObjectItem(cJSON_GetObjectItem(row, "detail"), "token"));
		}
	}
	assert_true(seen);
	/* the failed request left its row too, under the peer's own name */
	row = cJSON_GetArrayItem(rows, 3);
	assert_string_equal(field(row, "action"), "admin.token.issue");
	assert_true(cJSON_IsFalse(cJSON_GetObjectItem(cJSON_GetObjectItem(row, "detail"), "ok")));
	assert_string_not_equal(field(row, "actor"), "alice");
	cJSON_Delete(res);
}

static void test_live_socket_refused_stale_replaced(void **state)
{
	struct fx *f = *state;
	struct sc_admin *second = NULL;
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	int fd;

	start(f, true);
	assert_int_equal(sc_admin_start(&second, &f->ctx, &f->d), MOAT_E_DENIED);
	assert_non_null(strstr(f->d.msg, "another Security Center"));
	close(f->fd);
	f->fd = -1;
	sc_admin_stop(f->admin);
	f->admin = NULL;
	assert_int_equal(access(f->sock, F_OK), -1);
	/* a socket file left by a crashed SC */
	fd = socket(AF_UNIX, SOCK_STREAM, 0);
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", f->sock);
	assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	close(fd);
	start(f, true);
	cJSON_Delete(ask(f, op("thing.list")));
}

/* Another user reaching the socket (permissions opened up on purpose) is
 * turned away by SO_PEERCRED. Needs root to become that user. */
static void test_other_users_are_refused(void **state)
{
	struct fx *f = *state;
	int status;
	pid_t pid;

	if (geteuid() != 0)
		skip();
	start(f, true);
	close(f->fd); /* one connection at a time: make way */
	f->fd = -1;
	assert_int_equal(chmod(f->sc.dir, 0755), 0);
	assert_int_equal(chmod(f->sock, 0666), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		char in[512] = {0};
		int fd;
		ssize_t n;

		if (setgid(65534) != 0 || setuid(65534) != 0)
			_exit(10);
		fd = connect_to(f->sock);
		if (fd < 0)
			_exit(11);
		/* the server may refuse and close before the request is written
		 * (the refusal is then already buffered): no SIGPIPE, no exit */
		signal(SIGPIPE, SIG_IGN);
		if (write(fd, "{\"op\":\"thing.list\"}\n", 20) != 20 && errno != EPIPE)
			_exit(12);
		/* the answer, then the end of the connection (the answer may
		 * come in more than one read: it is a stream) */
		size_t got = 0;

		while (got < sizeof(in) - 1 && (n = read(fd, in + got, sizeof(in) - 1 - got)) > 0)
			got += (size_t)n;
		_exit(got < sizeof(in) - 1 && strstr(in, "may not administer") != NULL &&
			      strstr(in, "\"ok\":false") != NULL
			  ? 0
			  : 13);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_thing_create_registers_keys_and_returns_the_bundle,
					    setup, teardown),
	    cmocka_unit_test_setup_teardown(test_bad_requests_keep_the_connection, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_update_list_revoke_with_hooks, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_policies_are_checked_before_the_file_changes,
					    setup, teardown),
	    cmocka_unit_test_setup_teardown(test_null_hooks_say_no_daemon_acted, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_token_issue_verifies_and_is_audited, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(test_live_socket_refused_stale_replaced, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(test_other_users_are_refused, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
