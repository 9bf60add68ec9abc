/*
 * A key-value bucket watched by a thread (see cluster_int.h): the values
 * present when the watch starts, then every change, each handed to the
 * bucket's handler on that thread. Also opens (or creates) a bucket for
 * those that read and write it without a watch.
 */
#include "cluster/cluster_int.h"

#include <stdio.h>

#include <moat/error.h>

enum { WATCH_WAIT_MS = 1000 };

static void *watch(void *arg)
{
	struct cluster_watch *cw = arg;

	for (;;) {
		kvEntry *e = NULL;
		natsStatus s = kvWatcher_Next(&e, cw->watcher, WATCH_WAIT_MS);

		if (s == NATS_ILLEGAL_STATE)
			break; /* stopped */
		if (s == NATS_OK && e != NULL)
			cw->on_entry(cw->cl, e);
		else if (s == NATS_OK)
			atomic_store(&cw->loaded, true); /* the end of the initial values */
		kvEntry_Destroy(e);
		if (cw->on_tick != NULL)
			cw->on_tick(cw->cl);
	}
	return NULL;
}

natsStatus cluster_bucket(struct cluster *cl, const char *bucket, kvStore **kv)
{
	natsStatus s = js_KeyValue(kv, cl->js, bucket);
	kvConfig kc;

	if (s == NATS_NOT_FOUND) {
		kvConfig_Init(&kc);
		kc.Bucket = bucket;
		kc.History = 1;
		kc.Replicas = cluster_replicas(cl);
		s = js_CreateKeyValue(kv, cl->js, &kc);
	}
	return s;
}

int cluster_watch_start(struct cluster *cl, struct cluster_watch *cw, const char *bucket,
			void (*on_entry)(struct cluster *cl, kvEntry *e), char *err, size_t errlen)
{
	natsStatus s = cluster_bucket(cl, bucket, &cw->kv);

	cw->cl = cl;
	cw->on_entry = on_entry;
	if (s == NATS_OK)
		s = kvStore_WatchAll(&cw->watcher, cw->kv, NULL);
	if (s == NATS_OK && pthread_create(&cw->thread, NULL, watch, cw) != 0)
		s = NATS_SYS_ERROR;
	if (s != NATS_OK) {
		const char *why = nats_GetLastError(NULL);

		snprintf(err, errlen,
			 "cluster: cannot use the bucket %s: %s (%s); check that nats-server runs "
			 "with -js and that cluster_replicas is at most its number of servers",
			 bucket, natsStatus_GetText(s), why != NULL ? why : "no details");
		return MOAT_E_IO;
	}
	cw->running = true;
	return MOAT_OK;
}

void cluster_watch_stop(struct cluster_watch *cw)
{
	if (cw->watcher != NULL)
		kvWatcher_Stop(cw->watcher);
	if (cw->running)
		pthread_join(cw->thread, NULL);
	cw->running = false;
	kvWatcher_Destroy(cw->watcher);
	kvStore_Destroy(cw->kv);
	cw->watcher = NULL;
	cw->kv = NULL;
}
