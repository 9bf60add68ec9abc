/*
 * `moat ctl`: administration of the Security Center over its admin socket
 * (src/sc/admin.h): parses the command line, builds one JSON request, sends
 * it, prints the answer (tables, or the server's JSON with --json).
 * `moat ctl cluster` is ctl_cluster.c's.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <moat/error.h>

#include "base/buf.h"
#include "cli/cli.h"
#include "cli/ctl.h"
#include "sc/admin.h"
#include "sc/sc_json.h"

enum { ANSWER_MAX = 64 * 1024 * 1024 };

static const char usage[] =
    "Usage: moat ctl [--sc-dir DIR | --socket PATH] [--json] [--actor NAME] COMMAND\n"
    "  thing create NAME [--attr k=v]... [--csr FILE] [--sign-pub F --agree-pub F] --out DIR\n"
    "  thing list | thing show NAME | thing update NAME [--attr k=v]...\n"
    "  thing revoke NAME [--reason unspecified|key-compromise|superseded|cessation]\n"
    "  policy set FILTER --publish EXPR --subscribe EXPR [--alg A] [--signed] [--max-age S]\n"
    "  policy list | policy show FILTER | policy delete FILTER\n"
    "  key rotate FILTER\n"
    "  token issue NAME [--ttl S]        S from 300 to 3600 (default 900)\n"
    "  audit tail [-n N]\n"
    "  cluster status --nats URL [--json] ...  a moatd cluster's nodes, streams and lag\n"
    "                                    (read from NATS; moat ctl cluster --help)\n"
    "The socket is DIR/admin.sock of the Security Center (DIR defaults to $MOAT_SC_DIR);\n"
    "`moat-sc serve` must be running. --json prints the server's answer as it is.\n";

static int die(const char *msg, const char *arg)
{
	fprintf(stderr, "moat ctl: %s%s\n", msg, arg != NULL ? arg : "");
	return 1;
}

static int parse(int argc, char **argv, struct ctl_opts *o)
{
	static const struct {
		const char *name;
		size_t off;
	} vals[] = {
	    {"--socket", offsetof(struct ctl_opts, socket)},
	    {"--sc-dir", offsetof(struct ctl_opts, sc_dir)},
	    {"--actor", offsetof(struct ctl_opts, actor)},
	    {"--csr", offsetof(struct ctl_opts, csr)},
	    {"--sign-pub", offsetof(struct ctl_opts, sign_pub)},
	    {"--agree-pub", offsetof(struct ctl_opts, agree_pub)},
	    {"--out", offsetof(struct ctl_opts, out)},
	    {"--reason", offsetof(struct ctl_opts, reason)},
	    {"--publish", offsetof(struct ctl_opts, publish)},
	    {"--subscribe", offsetof(struct ctl_opts, subscribe)},
	    {"--alg", offsetof(struct ctl_opts, alg)},
	    {"--max-age", offsetof(struct ctl_opts, max_age)},
	    {"--ttl", offsetof(struct ctl_opts, ttl)},
	    {"-n", offsetof(struct ctl_opts, tail)},
	};

	o->sc_dir = getenv("MOAT_SC_DIR");
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		size_t k = 0;

		if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
			fputs(usage, stdout);
			return 2;
		}
		if (strcmp(a, "--json") == 0 || strcmp(a, "--signed") == 0) {
			*(a[2] == 'j' ? &o->json : &o->sign_flag) = true;
			continue;
		}
		if (a[0] != '-') {
			if (o->pos_count == sizeof(o->pos) / sizeof(o->pos[0]))
				return die("too many arguments at ", a);
			o->pos[o->pos_count++] = a;
			continue;
		}
		if (i + 1 == argc)
			return die("a value is needed after ", a);
		if (strcmp(a, "--attr") == 0) {
			if (o->attr_count == REG_ATTRS_MAX)
				return die("at most 32 attributes", NULL);
			o->attrs[o->attr_count++] = argv[++i];
			continue;
		}
		while (k < sizeof(vals) / sizeof(vals[0]) && strcmp(a, vals[k].name) != 0)
			k++;
		if (k == sizeof(vals) / sizeof(vals[0]))
			return die("unknown option (see moat ctl --help): ", a);
		*(const char **)((char *)o + vals[k].off) = argv[++i];
	}
	if (o->pos_count < 2) {
		fputs(usage, stderr);
		return 1;
	}
	if (o->socket == NULL && o->sc_dir == NULL)
		return die("give the Security Center with --sc-dir DIR, --socket PATH or "
			   "MOAT_SC_DIR",
			   NULL);
	if (o->socket == NULL) {
		snprintf(o->socket_buf, sizeof(o->socket_buf), "%s/%s", o->sc_dir, SC_ADMIN_SOCKET);
		o->socket = o->socket_buf;
	}
	return 0;
}

cJSON *ctl_request(const struct ctl_opts *o, const char *op)
{
	cJSON *j = cJSON_CreateObject();

	cJSON_AddStringToObject(j, "op", op);
	if (o->actor != NULL)
		cJSON_AddStringToObject(j, "actor", o->actor);
	return j;
}

/* Reads one answer line from <fd> into <in> (NUL-terminated). */
static bool read_line(int fd, struct buf *in)
{
	while (in->len == 0 || in->data[in->len - 1] != '\n') {
		ssize_t n;

		if (in->len > ANSWER_MAX || buf_reserve(in, 65536) != MOAT_OK)
			return false;
		n = recv(fd, in->data + in->len, in->cap - in->len - 1, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return false;
		in->len += (size_t)n;
	}
	in->data[in->len] = '\0';
	return true;
}

int ctl_call(const struct ctl_opts *o, cJSON *req, cJSON **res)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	char *text = req != NULL ? cJSON_PrintUnformatted(req) : NULL;
	struct buf in = {0};
	int fd = -1, rc = 1;

	cJSON_Delete(req);
	*res = NULL;
	if (text == NULL)
		return die("out of memory", NULL);
	if (strlen(o->socket) >= sizeof(sa.sun_path)) {
		free(text);
		return die("socket path too long: ", o->socket);
	}
	memcpy(sa.sun_path, o->socket, strlen(o->socket) + 1);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
		fprintf(stderr,
			"moat ctl: cannot reach the Security Center at %s: is `moat-sc serve` "
			"running? (%s)\n",
			o->socket, strerror(errno));
	} else if (!sc_admin_send_line(fd, text) || !read_line(fd, &in)) {
		die("the Security Center closed the connection without an answer", NULL);
	} else if ((*res = cJSON_Parse((char *)in.data)) == NULL || !cJSON_IsObject(*res)) {
		cJSON_Delete(*res);
		*res = NULL;
		die("the Security Center's answer is not JSON", NULL);
	} else {
		rc = 0;
	}
	if (fd >= 0)
		close(fd);
	cJSON_free(text);
	buf_fini(&in);
	return rc;
}

/* Adds the --attr k=v arguments as {"attrs": {k: v}}. */
static int add_attrs(const struct ctl_opts *o, cJSON *req)
{
	cJSON *attrs = cJSON_AddObjectToObject(req, "attrs");
	struct moat_diag d = {{0}};
	struct reg_attr a;

	for (size_t i = 0; i < o->attr_count; i++) {
		if (sc_parse_attr(o->attrs[i], &a, &d) < 0)
			return die(d.msg, NULL);
		cJSON_AddStringToObject(attrs, a.name, a.value);
	}
	return 0;
}

/* Adds the option <val> as the whole number <key> (<what> for errors). */
static int add_number(cJSON *req, const char *key, const char *val, const char *what)
{
	char *end;
	unsigned long v;

	if (val == NULL)
		return 0;
	errno = 0;
	v = strtoul(val, &end, 10);
	if (val[0] < '0' || val[0] > '9' || *end != '\0' || errno != 0 || v > UINT32_MAX)
		return die(what, val);
	cJSON_AddNumberToObject(req, key, (double)v);
	return 0;
}

/* Builds the request for the command in <o>; NULL after printing why. */
static cJSON *build(const struct ctl_opts *o, char *op, size_t op_len)
{
	const char *noun = o->pos[0], *verb = o->pos[1], *arg = o->pos[2];
	static const char *const needs_arg[] = {"thing.show", "thing.update", "thing.revoke",
						"policy.set", "policy.show",  "policy.delete",
						"key.rotate", "token.issue"};
	static const char *const known[] = {"thing.list", "policy.list", "audit.tail"};
	bool ok = false;
	cJSON *req;
	int rc = 0;

	snprintf(op, op_len, "%s.%s", noun, verb);
	for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++)
		ok = ok || strcmp(op, known[i]) == 0;
	for (size_t i = 0; i < sizeof(needs_arg) / sizeof(needs_arg[0]); i++)
		if (strcmp(op, needs_arg[i]) == 0) {
			if (arg == NULL)
				return die("give a name or filter after ", op), NULL;
			ok = true;
		}
	if (!ok)
		return die("unknown command (see moat ctl --help): ", op), NULL;
	req = ctl_request(o, op);
	if (strcmp(noun, "thing") == 0 || strcmp(noun, "token") == 0) {
		if (arg != NULL)
			cJSON_AddStringToObject(req, "name", arg);
	} else if (arg != NULL) {
		cJSON_AddStringToObject(req, "filter", arg);
	}
	if (strcmp(op, "thing.update") == 0)
		rc = add_attrs(o, req);
	if (strcmp(op, "thing.revoke") == 0 && o->reason != NULL)
		cJSON_AddStringToObject(req, "reason", o->reason);
	if (strcmp(op, "policy.set") == 0) {
		if (o->publish != NULL)
			cJSON_AddStringToObject(req, "publish", o->publish);
		if (o->subscribe != NULL)
			cJSON_AddStringToObject(req, "subscribe", o->subscribe);
		if (o->alg != NULL)
			cJSON_AddStringToObject(req, "alg", o->alg);
		if (o->sign_flag)
			cJSON_AddTrueToObject(req, "signed");
		rc = add_number(req, "max_age_s", o->max_age, "--max-age: seconds, not ");
	}
	if (rc == 0 && strcmp(op, "token.issue") == 0)
		rc = add_number(req, "ttl_s", o->ttl, "--ttl: seconds, not ");
	if (rc == 0 && strcmp(op, "audit.tail") == 0)
		rc = add_number(req, "n", o->tail, "-n: a count, not ");
	if (rc != 0) {
		cJSON_Delete(req);
		return NULL;
	}
	return req;
}

int cli_ctl_main(int argc, char **argv)
{
	struct ctl_opts o = {0};
	cJSON *req, *res = NULL;
	char op[64];
	int rc;

	if (argc > 1 && strcmp(argv[1], "cluster") == 0)
		return ctl_cluster_main(argc - 1, argv + 1);
	rc = parse(argc, argv, &o);
	if (rc != 0)
		return rc == 2 ? 0 : rc;
	if (strcmp(o.pos[0], "thing") == 0 && strcmp(o.pos[1], "create") == 0) {
		if (o.pos[2] == NULL)
			return die("give a name after thing create", NULL);
		return ctl_thing_create(&o, o.pos[2]);
	}
	req = build(&o, op, sizeof(op));
	if (req == NULL || ctl_call(&o, req, &res) != 0)
		return 1;
	rc = cJSON_IsTrue(cJSON_GetObjectItem(res, "ok")) ? 0 : 1;
	if (o.json) {
		char *text = cJSON_Print(res);

		puts(text != NULL ? text : "{}");
		cJSON_free(text);
	} else if (rc == 0) {
		ctl_print(op, res);
	}
	if (rc != 0)
		fprintf(stderr, "moat ctl: %s\n",
			cJSON_IsString(cJSON_GetObjectItem(res, "error"))
			    ? cJSON_GetObjectItem(res, "error")->valuestring
			    : "the Security Center refused the request");
	cJSON_Delete(res);
	return rc;
}
