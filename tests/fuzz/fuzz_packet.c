/*
 * libFuzzer target for the MQTT packet codec: the first byte picks the
 * connection's protocol version (3, 4 or 5), the rest is framed and decoded.
 * A decoded packet is encoded, decoded and encoded again; the two encodings
 * must match byte for byte (STYLE.md §8).
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <moat/error.h>

#include "codec/frame.h"
#include "codec/mqtt.h"
#include "codec/packet.h"
#include "codec/props.h"
#include "codec/topic.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Walks what the broker would walk after decoding, so the iterators are fuzzed too. */
static void walk(const struct mqtt_packet *p)
{
	static const struct moat_bytes probe = { (const uint8_t *)"a/b", 3 };
	struct moat_bytes filter, group, inner, k, v;
	struct mqtt_sub_opts opts;
	struct rd it;

	switch (p->type) {
	case MQTT_SUBSCRIBE:
		it = p->subscribe.entries;
		while (sub_next(&it, &filter, &opts)) {
			if (topic_share_parse(filter, &group, &inner) == MOAT_OK)
				filter = inner;
			if (topic_filter_is_valid(filter))
				(void)topic_matches(filter, probe);
		}
		if (it.err != 0)
			abort();	/* the decoder validated every entry */
		break;
	case MQTT_UNSUBSCRIBE:
		it = p->unsubscribe.entries;
		while (unsub_next(&it, &filter))
			(void)topic_levels(filter);
		if (it.err != 0)
			abort();
		break;
	case MQTT_PUBLISH:
		if (p->publish.topic.len > 0) {
			(void)topic_matches(probe, p->publish.topic);
			(void)topic_levels(p->publish.topic);
		}
		rd_init(&it, p->publish.props.user.ptr, p->publish.props.user.len);
		while (props_user_next(&it, &k, &v))
			;
		if (it.err != 0)
			abort();
		break;
	}
}

/* Encodes <p> into a fresh exact-size buffer; aborts when it cannot be encoded. */
static uint8_t *encode(uint8_t version, const struct mqtt_packet *p, size_t *len)
{
	size_t n = pkt_encode(NULL, 0, version, p);
	uint8_t *buf;

	if (n == 0 || (buf = malloc(n)) == NULL)
		abort();
	if (pkt_encode(buf, n, version, p) != n)
		abort();
	*len = n;
	return buf;
}

/* Frames and decodes <buf>, which must hold exactly one whole packet. */
static int decode(const uint8_t *buf, size_t len, uint8_t version, struct mqtt_packet *out,
		  uint8_t **body_out)
{
	struct mqtt_frame f;
	uint8_t *body;
	int rc;

	*body_out = NULL;
	rc = frame_decode(buf, len, UINT32_MAX, &f);
	if (rc != MOAT_OK)
		return rc;
	if ((size_t)f.hdr_len + f.rem_len > len)
		return MOAT_E_AGAIN;
	/* an exact copy, so any read past the body is a heap overflow ASan reports */
	body = malloc(f.rem_len > 0 ? f.rem_len : 1);
	if (body == NULL)
		abort();
	memcpy(body, buf + f.hdr_len, f.rem_len);
	*body_out = body;
	return pkt_decode(&f, body, version, out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct mqtt_packet p1, p2, p3;
	uint8_t *body1, *body2 = NULL, *body3 = NULL, *e1, *e2, *e3;
	size_t l1, l2, l3;
	uint8_t version;

	if (size < 1)
		return 0;
	version = (uint8_t)(MQTT_V31 + data[0] % 3);
	if (decode(data + 1, size - 1, version, &p1, &body1) != MOAT_OK) {
		free(body1);
		return 0;
	}
	walk(&p1);
	if (p1.type == MQTT_CONNECT)
		version = p1.connect.version;	/* CONNECT carries its own */

	e1 = encode(version, &p1, &l1);
	if (decode(e1, l1, version, &p2, &body2) != MOAT_OK)
		abort();	/* the encoder wrote something its decoder refuses */
	if (p2.type != p1.type)
		abort();
	walk(&p2);
	e2 = encode(version, &p2, &l2);
	if (l1 != l2 || memcmp(e1, e2, l1) != 0)
		abort();	/* encode(decode(encode(x))) != encode(x) */
	if (decode(e2, l2, version, &p3, &body3) != MOAT_OK)
		abort();
	e3 = encode(version, &p3, &l3);
	if (l3 != l2 || memcmp(e2, e3, l2) != 0)
		abort();
	free(e3);
	free(body3);
	free(e2);
	free(body2);
	free(e1);
	free(body1);
	return 0;
}
