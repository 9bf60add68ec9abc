/*
 * The cluster's retained messages (docs/cluster.md): a JetStream key-value
 * bucket, one key per topic (subject.h's tokens), the value a cluster
 * message (wire.h). A thread watches the bucket (watch.c) and mirrors every
 * change, the values present at start-up first, into the local retained store
 * through worker 0; new subscribers then get them as on one node. A node's
 * own writes come back too and are applied again on purpose: the bucket's
 * order decides between two nodes setting one topic at once, and skipping
 * its own echo would leave a node holding the value the bucket overwrote.
 */
#include "cluster/cluster_int.h"

#include <string.h>

#include <moat/error.h>

#include "base/clock.h"
#include "base/log.h"
#include "broker/broker.h"
#include "cluster/subject.h"
#include "cluster/wire.h"

/* How long a worker waits for the bucket's answer (a waited retained
 * message's check): a slow JetStream holds the worker that long, once per
 * pass (cluster_retained_bucket_newer). */
enum { RETAINED_WAIT_MS = 1000 };

/* The retained message an entry deletes: its topic and no payload. */
static struct msg *deletion(struct moat_bytes key)
{
	struct buf topic = {0};
	struct mqtt_publish p = {.retain = true};
	struct msg *m = NULL;

	if (subject_to_topic(&topic, key) == MOAT_OK) {
		p.topic = (struct moat_bytes){buf_head(&topic), buf_used(&topic)};
		m = msg_create(&p, p.topic, clock_mono_ms());
	}
	if (m != NULL)
		m->remote = true;
	buf_fini(&topic);
	return m;
}

/* Whether <key> is the key of <m>'s topic: a value stored under another
 * key would let one key's writer set any topic (and escape deletion). */
static bool key_matches(const char *key, const struct msg *m)
{
	struct buf subject = {0};
	bool same = subject_from_topic(&subject, m->topic) == MOAT_OK &&
		    buf_used(&subject) == strlen(key) &&
		    memcmp(buf_head(&subject), key, buf_used(&subject)) == 0;

	buf_fini(&subject);
	return same;
}

static void mirror(struct cluster *cl, kvEntry *e)
{
	const char *key = kvEntry_Key(e);
	struct moat_bytes node, data = {kvEntry_Value(e), (size_t)kvEntry_ValueLen(e)};
	struct msg *m = NULL;
	const char *why = "not a topic this mapping makes";

	if (kvEntry_Operation(e) == kvOp_Put)
		wire_decode(data, &node, &m, &why);
	else
		m = deletion((struct moat_bytes){(const uint8_t *)key, strlen(key)});
	if (m != NULL && (wire_topic_is_sys(m->topic) || !key_matches(key, m))) {
		why = "its topic is not its key's (or is in $SYS)";
		msg_unref(m);
		m = NULL;
	}
	if (m == NULL) {
		log_warn("cluster: ignored the retained entry %s: %s", key, why);
		return;
	}
	m->retain = true;
	cluster_post(cl, m, true, NULL);
}

bool cluster_retained_bucket_wins(int64_t created_ns, uint64_t published_ms)
{
	return published_ms == 0 || created_ns < 0 ||
	       (uint64_t)created_ns / 1000000 >= published_ms;
}

bool cluster_retained_bucket_newer(struct cluster *cl, const char *subject, uint64_t published_ms,
				   bool *silent)
{
	size_t prefix = strlen(cl->kv_prefix);
	kvEntry *e = NULL;
	natsStatus st;
	bool wins;

	if (*silent || strncmp(subject, cl->kv_prefix, prefix) != 0)
		return false;
	st = cl->retained_wkv != NULL ? kvStore_Get(&e, cl->retained_wkv, subject + prefix)
				      : NATS_NOT_FOUND;
	if (st != NATS_OK) {
		if (st != NATS_NOT_FOUND) {
			*silent = true;
			log_warn(
			    "cluster: the retained bucket did not answer (%s): retained messages "
			    "published before this node joined are written to it unchecked",
			    natsStatus_GetText(st));
		}
		return false;
	}
	wins = cluster_retained_bucket_wins(kvEntry_Created(e), published_ms);
	kvEntry_Destroy(e);
	return wins;
}

int cluster_retained_start(struct cluster *cl, const char *bucket, char *err, size_t errlen)
{
	jsOptions jo;
	natsStatus s;
	int rc = cluster_watch_start(cl, &cl->retained, bucket, mirror, err, errlen);

	if (rc != MOAT_OK)
		return rc;
	jsOptions_Init(&jo);
	jo.Wait = RETAINED_WAIT_MS;
	s = natsConnection_JetStream(&cl->retained_wjs, cl->nc, &jo);
	if (s == NATS_OK)
		s = js_KeyValue(&cl->retained_wkv, cl->retained_wjs, bucket);
	if (s != NATS_OK) {
		snprintf(err, errlen, "cluster: cannot use the bucket %s: %s", bucket,
			 natsStatus_GetText(s));
		return MOAT_E_IO; /* the join undoes it (cluster_retained_stop) */
	}
	return MOAT_OK;
}

void cluster_retained_stop(struct cluster *cl)
{
	kvStore_Destroy(cl->retained_wkv);
	jsCtx_Destroy(cl->retained_wjs);
	cl->retained_wkv = NULL;
	cl->retained_wjs = NULL;
	cluster_watch_stop(&cl->retained);
}
