/*
 * libFuzzer target for what a node reads from NATS (src/cluster): a
 * message's bytes and a node's interest list (wire.c), and a retained
 * bucket key (subject.c). Whatever
 * another node, or anyone who can publish on the cluster's subjects, sends
 * is decoded without reading out of bounds; a message that decodes encodes
 * and decodes again to the same topic and payload; a key that decodes is the
 * one subject_from_topic makes for its topic (the mapping is one to one); a
 * node's interest list that checks as sound is walked to its end and
 * encodes back to the same bytes.
 * Input: a mode byte (bit 0: the record's CRC is recomputed, so the fuzzer
 * reaches the checks behind it), then the bytes.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <zlib.h>

#include <moat/error.h>

#include "cluster/subject.h"
#include "cluster/wire.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The record behind the frame header gets a correct CRC (key: none). */
static void fix_crc(uint8_t *p, size_t n)
{
	size_t rec;
	uLong crc;

	if (n < 2 || (size_t)p[1] + 2 > n || n - 2 - p[1] < 5)
		return;
	rec = 2 + (size_t)p[1];
	crc = crc32_z(crc32(0L, Z_NULL, 0), p + rec, n - rec - 4);
	p[n - 4] = (uint8_t)(crc >> 24);
	p[n - 3] = (uint8_t)(crc >> 16);
	p[n - 2] = (uint8_t)(crc >> 8);
	p[n - 1] = (uint8_t)crc;
}

static void check_message(struct moat_bytes in)
{
	struct moat_bytes node, node2;
	struct msg *m = NULL, *again = NULL;
	struct buf out = {0};
	const char *why;
	char name[256];

	if (wire_decode(in, &node, &m, &why) != MOAT_OK)
		return;
	memcpy(name, node.ptr, node.len);
	name[node.len] = '\0';
	if (strlen(name) == node.len && wire_encode(&out, name, m) == MOAT_OK &&
	    wire_decode((struct moat_bytes){buf_head(&out), buf_used(&out)}, &node2, &again,
			&why) == MOAT_OK) {
		if (again->topic.len != m->topic.len || again->payload.len != m->payload.len ||
		    memcmp(again->topic.ptr, m->topic.ptr, m->topic.len) != 0 ||
		    memcmp(again->payload.ptr, m->payload.ptr, m->payload.len) != 0)
			abort();
	}
	msg_unref(again);
	msg_unref(m);
	buf_fini(&out);
}

static void check_key(struct moat_bytes key)
{
	struct buf topic = {0}, back = {0};

	if (subject_to_topic(&topic, key) == MOAT_OK &&
	    subject_from_topic(&back, (struct moat_bytes){buf_head(&topic), buf_used(&topic)}) ==
		MOAT_OK &&
	    (buf_used(&back) != key.len || memcmp(buf_head(&back), key.ptr, key.len) != 0))
		abort();
	buf_fini(&topic);
	buf_fini(&back);
}

static void put_again(void *ctx, struct moat_bytes f)
{
	if (wire_put_filter(ctx, f) != MOAT_OK)
		abort();
}

static void check_interest(struct moat_bytes value)
{
	struct buf again = {0};

	if (wire_each_filter(value, NULL, NULL)) {
		wire_each_filter(value, put_again, &again);
		if (buf_used(&again) != value.len ||
		    (value.len > 0 && memcmp(buf_head(&again), value.ptr, value.len) != 0))
			abort();
	}
	buf_fini(&again);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t *copy;

	if (size < 1)
		return 0;
	copy = malloc(size);
	if (copy == NULL)
		return 0;
	memcpy(copy, data + 1, size - 1);
	if (data[0] & 1)
		fix_crc(copy, size - 1);
	check_message((struct moat_bytes){copy, size - 1});
	check_key((struct moat_bytes){copy, size - 1});
	check_interest((struct moat_bytes){copy, size - 1});
	free(copy);
	return 0;
}
