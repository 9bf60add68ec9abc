/*
 * libFuzzer target for a message handed over with its session
 * (src/cluster/handover.c), which a node reads from NATS: whatever bytes
 * arrive are decoded without reading out of bounds, and an envelope that
 * decodes, with a message inside that decodes (wire.c, fuzzed by
 * fuzz_cluster_msg.c), encodes and decodes again to the same delivery,
 * session key, origin node and message (topic, payload, QoS, retain). The
 * session key is read as a client id's subject tokens as the receiving node
 * does (subject.c): refused or not, never out of bounds.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <moat/error.h>

#include "cluster/handover.h"
#include "cluster/subject.h"
#include "cluster/wire.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static bool same_bytes(struct moat_bytes a, struct moat_bytes b)
{
	return a.len == b.len && (a.len == 0 || memcmp(a.ptr, b.ptr, a.len) == 0);
}

/* The message in <again> is <m> from <node>. */
static void same_message(const struct handover *again, const struct msg *m,
			 struct moat_bytes node)
{
	struct moat_bytes node2;
	struct msg *m2 = NULL;
	const char *why;

	if (wire_decode(again->wire, &node2, &m2, &why) != MOAT_OK || !same_bytes(node2, node) ||
	    !same_bytes(m2->topic, m->topic) || !same_bytes(m2->payload, m->payload) ||
	    m2->qos != m->qos || m2->retain != m->retain)
		abort();
	msg_unref(m2);
}

static void check_again(const struct handover *h, struct msg *m, struct moat_bytes node)
{
	struct delivery d = {
	    .msg = m, .qos = h->qos, .retain = h->retain, .sub_id_count = h->sub_id_count};
	char key[65536], name[256];
	struct buf out = {0}, scratch = {0};
	struct handover again;
	const char *why;

	memcpy(key, h->key.ptr, h->key.len);
	key[h->key.len] = '\0';
	memcpy(name, node.ptr, node.len);
	name[node.len] = '\0';
	memcpy(d.sub_ids, h->sub_ids, sizeof(d.sub_ids));
	if (strlen(key) != h->key.len || strlen(name) != node.len)
		return; /* a NUL inside: not a key or name a node writes */
	if (handover_encode(&out, &scratch, name, key, &d) != MOAT_OK ||
	    handover_decode((struct moat_bytes){buf_head(&out), buf_used(&out)}, &again, &why) !=
		MOAT_OK)
		abort();
	if (again.qos != h->qos || again.retain != h->retain ||
	    again.sub_id_count != h->sub_id_count ||
	    memcmp(again.sub_ids, h->sub_ids, h->sub_id_count * sizeof(h->sub_ids[0])) != 0 ||
	    again.key.len != h->key.len || memcmp(again.key.ptr, h->key.ptr, h->key.len) != 0)
		abort();
	same_message(&again, m, node);
	buf_fini(&out);
	buf_fini(&scratch);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct handover h;
	struct moat_bytes node;
	struct msg *m = NULL;
	const char *why = NULL;

	struct buf id = {0};

	if (handover_decode((struct moat_bytes){data, size}, &h, &why) == MOAT_OK) {
		subject_to_topic(&id, h.key); /* the session's client id */
		if (wire_decode(h.wire, &node, &m, &why) == MOAT_OK)
			check_again(&h, m, node);
	}
	buf_fini(&id);
	msg_unref(m);
	return 0;
}
