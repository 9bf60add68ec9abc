/*
 * libFuzzer target for a session's entry in the cluster's sessions bucket
 * (src/cluster/snapshot.c), which a node reads from NATS: whatever bytes
 * arrive are decoded without reading out of bounds or leaking, and an
 * entry that decodes encodes and decodes again to the same session (owner,
 * state, identity, Will, subscriptions with their options). The Will inside
 * is a cluster message (fuzz_cluster_msg.c fuzzes that decoding itself).
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <moat/error.h>

#include "broker/broker.h"
#include "cluster/snapshot.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static bool same(struct moat_bytes a, struct moat_bytes b)
{
	return a.len == b.len && (a.len == 0 || memcmp(a.ptr, b.ptr, a.len) == 0);
}

static bool same_will(const struct msg *a, const struct msg *b)
{
	if (a == NULL || b == NULL)
		return a == b;
	return a->qos == b->qos && a->retain == b->retain && same(a->topic, b->topic) &&
	       same(a->payload, b->payload);
}

static void check_again(const struct snapshot *s)
{
	struct snapshot again;
	struct buf out = {0};
	const char *why;

	if (snapshot_encode(&out, s) != MOAT_OK ||
	    snapshot_decode((struct moat_bytes){buf_head(&out), buf_used(&out)}, &again, &why) !=
		MOAT_OK)
		abort(); /* what decodes is an entry a node could write */
	if (!same(again.owner, s->owner) || again.online != s->online ||
	    again.offline_wall_ms != s->offline_wall_ms || again.version != s->version ||
	    again.expiry_s != s->expiry_s || again.has_username != s->has_username ||
	    !same(again.username, s->username) || !same_will(again.will, s->will) ||
	    (s->will != NULL && again.will_delay_s != s->will_delay_s) || again.sub_n != s->sub_n)
		abort();
	for (size_t i = 0; i < s->sub_n; i++)
		if (!same(again.subs[i].filter, s->subs[i].filter) ||
		    memcmp(&again.subs[i].opts, &s->subs[i].opts, sizeof(s->subs[i].opts)) != 0 ||
		    again.subs[i].sub_id != s->subs[i].sub_id)
			abort();
	snapshot_fini(&again);
	buf_fini(&out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct snapshot s;
	const char *why = NULL;

	if (snapshot_decode((struct moat_bytes){data, size}, &s, &why) == MOAT_OK)
		check_again(&s);
	snapshot_fini(&s);
	return 0;
}
