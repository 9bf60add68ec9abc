/*
 * Two writers on one key of a key-value bucket, for test_cluster_handover's
 * check of cluster_kv_delete_at (src/cluster/kv_delete.h): writer A creates
 * the key, writer B updates it (another node's claim), A's delete at its
 * own revision must then fail and leave B's value, and B's delete at its
 * revision must succeed. Usage: cluster_kv_writers nats://HOST:PORT; prints
 * the first step that went wrong and exits 1, or exits 0.
 */
#include <stdio.h>
#include <string.h>

#include <nats/nats.h>

#include "cluster/kv_delete.h"

#define BUCKET "kv_writers"
#define KEY "client=2Fone"

struct writer {
	natsConnection *nc;
	jsCtx *js;
	kvStore *kv;
};

static int fail(const char *step, natsStatus s)
{
	fprintf(stderr, "cluster_kv_writers: %s: %s\n", step, natsStatus_GetText(s));
	return 1;
}

static natsStatus open_writer(struct writer *w, const char *url, bool create)
{
	natsStatus s = natsConnection_ConnectTo(&w->nc, url);
	kvConfig kc;

	if (s == NATS_OK)
		s = natsConnection_JetStream(&w->js, w->nc, NULL);
	if (s == NATS_OK && create) {
		kvConfig_Init(&kc);
		kc.Bucket = BUCKET;
		kc.History = 1;
		return js_CreateKeyValue(&w->kv, w->js, &kc);
	}
	return s == NATS_OK ? js_KeyValue(&w->kv, w->js, BUCKET) : s;
}

static void close_writer(struct writer *w)
{
	kvStore_Destroy(w->kv);
	jsCtx_Destroy(w->js);
	natsConnection_Destroy(w->nc);
}

/* The value of KEY as <w> reads it, compared with <want> (NULL: absent). */
static bool value_is(struct writer *w, const char *want)
{
	kvEntry *e = NULL;
	natsStatus s = kvStore_Get(&e, w->kv, KEY);
	bool same = want == NULL ? s == NATS_NOT_FOUND
				 : s == NATS_OK && kvEntry_ValueLen(e) == (int)strlen(want) &&
				       memcmp(kvEntry_Value(e), want, strlen(want)) == 0;

	kvEntry_Destroy(e);
	return same;
}

static int run(struct writer *a, struct writer *b)
{
	uint64_t rev_a = 0, rev_b = 0;
	jsErrCode jerr = 0;
	natsStatus s;

	if ((s = kvStore_CreateString(&rev_a, a->kv, KEY, "a")) != NATS_OK)
		return fail("A creates the key", s);
	if ((s = kvStore_UpdateString(&rev_b, b->kv, KEY, "b", rev_a)) != NATS_OK)
		return fail("B claims it", s);
	s = cluster_kv_delete_at(a->js, BUCKET, KEY, rev_a, &jerr);
	if (s == NATS_OK || jerr != JSStreamWrongLastSequenceErr)
		return fail("A's delete at its old revision is refused", s);
	if (!value_is(a, "b"))
		return fail("B's value is still there", NATS_ERR);
	if ((s = cluster_kv_delete_at(b->js, BUCKET, KEY, rev_b, &jerr)) != NATS_OK)
		return fail("B's delete at its revision", s);
	if (!value_is(a, NULL))
		return fail("the key is gone", NATS_ERR);
	if ((s = kvStore_CreateString(&rev_a, a->kv, KEY, "a2")) != NATS_OK)
		return fail("A creates it again after the delete", s);
	return 0;
}

int main(int argc, char **argv)
{
	struct writer a = {0}, b = {0};
	natsStatus s;
	int rc;

	if (argc != 2) {
		fprintf(stderr, "usage: cluster_kv_writers nats://HOST:PORT\n");
		return 2;
	}
	s = open_writer(&a, argv[1], true);
	if (s == NATS_OK)
		s = open_writer(&b, argv[1], false);
	rc = s == NATS_OK ? run(&a, &b) : fail("connect and open the bucket", s);
	close_writer(&a);
	close_writer(&b);
	nats_Close();
	return rc;
}
