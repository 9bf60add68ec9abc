/*
 * `moat ctl cluster status`: a moatd cluster's state (docs/cluster.md) read
 * from NATS itself rather than from a node, so a stopped node shows as
 * silent and what waits for it as lag: every node's status (the nodes'
 * bucket, node_status.h), then the cluster's streams and buckets with
 * their messages and bytes, and each consumer of the message and share
 * streams with its pending (not yet delivered) and ack-pending (delivered,
 * not yet acknowledged) counts. Text, or one JSON object with --json.
 * Names that come from NATS are shown with every byte outside printable
 * ASCII as \xNN, so a consumer named with terminal controls cannot reach
 * the terminal. An error NATS answers (permission denied) is printed and
 * ends the command with status 1.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <nats/nats.h>

#include "base/clock.h"
#include "cli/ctl.h"
#include "cluster/nats_security.h"
#include "cluster/node_status.h"

static const char usage[] =
    "Usage: moat ctl cluster status --nats URL [--nats URL]... [--cluster NAME] [--json]\n"
    "                              [--cafile F] [--cert F --key F] [--creds F]\n"
    "Reads the nodes' status and the streams and buckets of cluster NAME (default moat)\n"
    "from NATS: the same servers, TLS files and credentials as moatd's cluster_* options.\n";

enum { MAX_URLS = 8 };

struct cluster_opts {
	const char *urls[MAX_URLS];
	int url_count;
	const char *cluster, *cafile, *cert, *key, *creds;
	bool json;
};

static int fail(const char *what, const char *detail)
{
	fprintf(stderr, "moat ctl cluster: %s%s%s\n", what, detail != NULL ? ": " : "",
		detail != NULL ? detail : "");
	return 1;
}

/* 0, 1 on a bad command line, 2 after --help. */
static int parse(int argc, char **argv, struct cluster_opts *o)
{
	static const struct {
		const char *name;
		size_t off;
	} vals[] = {
	    {"--cluster", offsetof(struct cluster_opts, cluster)},
	    {"--cafile", offsetof(struct cluster_opts, cafile)},
	    {"--cert", offsetof(struct cluster_opts, cert)},
	    {"--key", offsetof(struct cluster_opts, key)},
	    {"--creds", offsetof(struct cluster_opts, creds)},
	};

	if (argc < 2 || strcmp(argv[1], "status") != 0) {
		fputs(usage, stderr);
		return 1;
	}
	o->cluster = "moat";
	for (int i = 2; i < argc; i++) {
		size_t k = 0;

		if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
			fputs(usage, stdout);
			return 2;
		}
		if (strcmp(argv[i], "--json") == 0) {
			o->json = true;
			continue;
		}
		if (i + 1 == argc)
			return fail("missing value after", argv[i]);
		if (strcmp(argv[i], "--nats") == 0) {
			if (o->url_count == MAX_URLS)
				return fail("too many --nats", NULL);
			o->urls[o->url_count++] = argv[++i];
			continue;
		}
		while (k < sizeof(vals) / sizeof(vals[0]) && strcmp(argv[i], vals[k].name) != 0)
			k++;
		if (k == sizeof(vals) / sizeof(vals[0]))
			return fail("unknown option", argv[i]);
		*(const char **)((char *)o + vals[k].off) = argv[++i];
	}
	if (o->url_count == 0)
		return fail("give the NATS server with --nats nats://HOST:PORT", NULL);
	if ((o->cert == NULL) != (o->key == NULL))
		return fail("--cert and --key go together", NULL);
	return 0;
}

static natsStatus connect_nats(const struct cluster_opts *o, natsOptions **opts,
			       natsConnection **nc)
{
	natsStatus s = natsOptions_Create(opts);

	if (s == NATS_OK)
		s = natsOptions_SetServers(*opts, (const char **)o->urls, o->url_count);
	if (s == NATS_OK)
		s = nats_security_set(*opts, o->cafile, o->cert, o->key, o->creds);
	if (s == NATS_OK)
		s = nats_security_connect(nc, *opts, o->creds != NULL);
	return s;
}

static void add_u64(cJSON *o, const char *key, uint64_t v)
{
	cJSON_AddNumberToObject(o, key, (double)v);
}

/* Adds <s>, a string from NATS, with each byte outside printable ASCII
 * (C0 and C1 controls, DEL, any other) written as \xNN. */
static void add_text(cJSON *o, const char *key, const char *s)
{
	size_t n = strlen(s);
	char *out = malloc(4 * n + 1), *p = out;

	if (out == NULL) {
		cJSON_AddStringToObject(o, key, "?");
		return;
	}
	for (const unsigned char *c = (const unsigned char *)s; *c != '\0'; c++) {
		if (*c >= 0x20 && *c < 0x7f)
			*p++ = (char)*c;
		else
			p += sprintf(p, "\\x%02x", *c);
	}
	*p = '\0';
	cJSON_AddStringToObject(o, key, out);
	free(out);
}

/* What NATS refused, for the error message: <what> and its status. */
struct nats_error {
	const char *what;
	natsStatus s;
};

/* True when <s> is an error; the first one is kept in <err>. */
static bool failed(struct nats_error *err, const char *what, natsStatus s)
{
	if (s == NATS_OK)
		return false;
	if (err->s == NATS_OK) {
		err->what = what;
		err->s = s;
	}
	return true;
}

/* The nodes' bucket: one object per node, with "alive" and "age_ms" (since
 * NATS stored its last status). No bucket: no node wrote its status yet. */
static cJSON *nodes(jsCtx *js, const char *cluster, struct nats_error *err)
{
	cJSON *out = cJSON_CreateArray();
	char bucket[128];
	kvStore *kv = NULL;
	kvKeysList keys = {0};
	uint64_t now = clock_wall_ms();
	natsStatus s;

	snprintf(bucket, sizeof(bucket), "%s_nodes", cluster);
	s = js_KeyValue(&kv, js, bucket);
	if (s == NATS_OK)
		s = kvStore_Keys(&keys, kv, NULL);
	/* not found: no bucket, or no key in it */
	if (s == NATS_NOT_FOUND || failed(err, "cannot read the nodes' bucket", s)) {
		kvStore_Destroy(kv);
		return out;
	}
	for (int i = 0; i < keys.Count; i++) {
		kvEntry *e = NULL;
		struct node_status st;
		cJSON *n;
		uint64_t stored, age;

		s = kvStore_Get(&e, kv, keys.Keys[i]);
		if (s != NATS_OK && s != NATS_NOT_FOUND) { /* not found: deleted since listed */
			failed(err, "cannot read a node's status", s);
			break;
		}
		if (s != NATS_OK ||
		    !node_status_parse(kvEntry_ValueString(e), (size_t)kvEntry_ValueLen(e), &st)) {
			kvEntry_Destroy(e);
			continue;
		}
		stored = (uint64_t)(kvEntry_Created(e) / 1000000);
		age = now > stored ? now - stored : 0;
		n = cJSON_CreateObject();
		cJSON_AddItemToArray(out, n);
		add_text(n, "node", st.node);
		cJSON_AddBoolToObject(n, "alive", node_status_alive(stored, now));
		add_u64(n, "age_ms", age);
		add_u64(n, "started", st.started_s);
		add_u64(n, "clients", st.clients);
		add_u64(n, "sessions", st.sessions);
		add_u64(n, "subscriptions", st.subscriptions);
		add_u64(n, "messages_in", st.messages_in);
		add_u64(n, "messages_out", st.messages_out);
		kvEntry_Destroy(e);
	}
	kvKeysList_Destroy(&keys);
	kvStore_Destroy(kv);
	return out;
}

/* One stream's messages and bytes, with its consumers when <consumers>. */
static cJSON *stream(jsCtx *js, const char *name, const char *kind, bool consumers,
		     struct nats_error *err)
{
	cJSON *out = cJSON_CreateObject(), *list;
	jsStreamInfo *si = NULL;
	jsConsumerInfoList *cl = NULL;
	jsErrCode jerr = 0;
	natsStatus s;

	cJSON_AddStringToObject(out, "name", name);
	cJSON_AddStringToObject(out, "kind", kind);
	s = js_GetStreamInfo(&si, js, name, NULL, &jerr);
	if (s == NATS_NOT_FOUND || failed(err, "cannot read a stream's information", s)) {
		cJSON_AddBoolToObject(out, "exists", false);
		return out;
	}
	cJSON_AddBoolToObject(out, "exists", true);
	add_u64(out, "messages", si->State.Msgs);
	add_u64(out, "bytes", si->State.Bytes);
	jsStreamInfo_Destroy(si);
	if (!consumers)
		return out;
	list = cJSON_AddArrayToObject(out, "consumers");
	s = js_Consumers(&cl, js, name, NULL, &jerr);
	if (s == NATS_NOT_FOUND || failed(err, "cannot list a stream's consumers", s))
		return out; /* not found: it has none */
	for (int i = 0; i < cl->Count; i++) {
		const jsConsumerInfo *ci = cl->List[i];
		cJSON *c = cJSON_CreateObject();

		add_text(c, "name", ci->Name != NULL ? ci->Name : "");
		if (ci->Config != NULL && ci->Config->Description != NULL)
			add_text(c, "share", ci->Config->Description);
		add_u64(c, "pending", ci->NumPending);
		add_u64(c, "ack_pending", ci->NumAckPending > 0 ? (uint64_t)ci->NumAckPending : 0);
		cJSON_AddItemToArray(list, c);
	}
	jsConsumerInfoList_Destroy(cl);
	return out;
}

/* The cluster's state, or NULL with <err> set when NATS refused a request. */
static cJSON *status(jsCtx *js, const char *cluster, struct nats_error *err)
{
	static const struct {
		const char *prefix, *suffix, *kind;
		bool consumers;
	} streams[] = {
	    {"", "_msgs", "messages", true},	   {"", "_shares", "shares", true},
	    {"KV_", "_retained", "bucket", false}, {"KV_", "_interest", "bucket", false},
	    {"KV_", "_nodes", "bucket", false},
	};
	cJSON *out = cJSON_CreateObject(), *list;
	char name[128];

	cJSON_AddStringToObject(out, "cluster", cluster);
	cJSON_AddItemToObject(out, "nodes", nodes(js, cluster, err));
	list = cJSON_AddArrayToObject(out, "streams");
	for (size_t i = 0; i < sizeof(streams) / sizeof(streams[0]) && err->s == NATS_OK; i++) {
		snprintf(name, sizeof(name), "%s%s%s", streams[i].prefix, cluster,
			 streams[i].suffix);
		cJSON_AddItemToArray(list,
				     stream(js, name, streams[i].kind, streams[i].consumers, err));
	}
	if (err->s == NATS_OK)
		return out;
	cJSON_Delete(out);
	return NULL;
}

static uint64_t u64(const cJSON *o, const char *key)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);

	return cJSON_IsNumber(v) && v->valuedouble > 0 ? (uint64_t)v->valuedouble : 0;
}

static void print_text(const cJSON *st)
{
	const cJSON *n, *s, *c;

	printf("cluster %s\n\n%-20s %-7s %8s %8s %8s %12s %12s %s\n",
	       cJSON_GetObjectItem(st, "cluster")->valuestring, "NODE", "STATE", "CLIENTS",
	       "SESSIONS", "SUBS", "MSGS IN", "MSGS OUT", "LAST UPDATE");
	cJSON_ArrayForEach(n, cJSON_GetObjectItem(st, "nodes"))
	{
		printf("%-20s %-7s %8" PRIu64 " %8" PRIu64 " %8" PRIu64 " %12" PRIu64 " %12" PRIu64
		       " %.1f s ago\n",
		       cJSON_GetObjectItem(n, "node")->valuestring,
		       cJSON_IsTrue(cJSON_GetObjectItem(n, "alive")) ? "alive" : "silent",
		       u64(n, "clients"), u64(n, "sessions"), u64(n, "subscriptions"),
		       u64(n, "messages_in"), u64(n, "messages_out"),
		       (double)u64(n, "age_ms") / 1000);
	}
	printf("\n%-28s %-9s %10s %12s\n", "STREAM", "KIND", "MESSAGES", "BYTES");
	cJSON_ArrayForEach(s, cJSON_GetObjectItem(st, "streams"))
	{
		const char *name = cJSON_GetObjectItem(s, "name")->valuestring;
		const char *kind = cJSON_GetObjectItem(s, "kind")->valuestring;

		if (!cJSON_IsTrue(cJSON_GetObjectItem(s, "exists"))) {
			printf("%-28s %-9s %10s\n", name, kind, "(missing)");
			continue;
		}
		printf("%-28s %-9s %10" PRIu64 " %12" PRIu64 "\n", name, kind, u64(s, "messages"),
		       u64(s, "bytes"));
		cJSON_ArrayForEach(c, cJSON_GetObjectItem(s, "consumers"))
		{
			const cJSON *share = cJSON_GetObjectItem(c, "share");

			printf("  consumer %-26s pending %-8" PRIu64 " ack pending %" PRIu64
			       "%s%s\n",
			       cJSON_GetObjectItem(c, "name")->valuestring, u64(c, "pending"),
			       u64(c, "ack_pending"), cJSON_IsString(share) ? "  share " : "",
			       cJSON_IsString(share) ? share->valuestring : "");
		}
	}
}

int ctl_cluster_main(int argc, char **argv)
{
	struct cluster_opts o = {0};
	struct nats_error err = {0};
	natsOptions *opts = NULL;
	natsConnection *nc = NULL;
	jsCtx *js = NULL;
	cJSON *st;
	natsStatus s;
	int rc = parse(argc, argv, &o);

	if (rc != 0)
		return rc == 2 ? 0 : rc;
	s = connect_nats(&o, &opts, &nc);
	if (s == NATS_OK)
		s = natsConnection_JetStream(&js, nc, NULL);
	if (s != NATS_OK) {
		rc = fail("cannot reach NATS (check --nats and that nats-server runs with -js)",
			  natsStatus_GetText(s));
	} else if ((st = status(js, o.cluster, &err)) == NULL) {
		fprintf(stderr,
			"moat ctl cluster: %s: %s (check the NATS permissions in docs/cli.md)\n",
			err.what, natsStatus_GetText(err.s));
		rc = 1;
	} else {
		if (o.json) {
			char *text = cJSON_Print(st);

			puts(text != NULL ? text : "{}");
			cJSON_free(text);
		} else {
			print_text(st);
		}
		cJSON_Delete(st);
	}
	jsCtx_Destroy(js);
	natsConnection_Destroy(nc);
	natsOptions_Destroy(opts);
	nats_Close();
	return rc;
}
