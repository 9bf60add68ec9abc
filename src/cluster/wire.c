/*
 * The cluster's message encoding (see wire.h).
 */
#include "cluster/wire.h"

#include <stdlib.h>
#include <string.h>

#include <moat/error.h>

#include "base/clock.h"
#include "broker/persist.h"
#include "broker/record.h"
#include "codec/topic.h"

enum { WIRE_FORMAT = 1 };

/* The record's CRC covers a key; a cluster message has none. */
static const struct moat_bytes no_key = {(const uint8_t *)"", 0};

int wire_encode(struct buf *out, const char *node, const struct msg *m)
{
	struct rec_ident_src author;
	struct rec_msg rm;
	struct buf rec = {0};
	size_t n = strlen(node);
	uint8_t head[2] = {WIRE_FORMAT, (uint8_t)n};
	int rc;

	if (n > UINT8_MAX)
		return MOAT_E_INVAL;
	persist_msg_to_rec(m, &rm, &author);
	buf_consume(out, buf_used(out));
	rc = rec_put_msg(&rec, no_key, &rm);
	if (rc == MOAT_OK)
		rc = buf_append(out, head, sizeof(head));
	if (rc == MOAT_OK)
		rc = buf_append(out, node, n);
	if (rc == MOAT_OK)
		rc = buf_append(out, buf_head(&rec), buf_used(&rec));
	buf_fini(&rec);
	return rc;
}

int wire_decode(struct moat_bytes data, struct moat_bytes *node, struct msg **m, const char **why)
{
	struct rec_msg rm = {0};
	struct rd body;
	size_t n;
	int rc;

	if (data.len < 2 || data.ptr[0] != WIRE_FORMAT) {
		*why = "not a cluster message of format 1";
		return MOAT_E_MALFORMED;
	}
	n = data.ptr[1];
	if (data.len - 2 < n) {
		*why = "node name longer than the message";
		return MOAT_E_MALFORMED;
	}
	*node = (struct moat_bytes){data.ptr + 2, n};
	rc = rec_open(no_key.ptr, 0, data.ptr + 2 + n, data.len - 2 - n, &body, why);
	if (rc == MOAT_OK)
		rc = rec_get_msg(&body, &rm, why);
	if (rc < 0)
		return rc;
	/* what a node exports was a valid name: anything else is damage or a
	 * peer that is not a node, and must not reach the broker's own area */
	if (!topic_name_is_valid(rm.topic) || wire_topic_is_sys(rm.topic)) {
		*why = "not a topic name a node exports (wildcard, empty, bad UTF-8 or $SYS)";
		return MOAT_E_MALFORMED;
	}
	*m = persist_msg_from_rec(&rm, clock_mono_ms(), clock_wall_ms());
	if (*m == NULL)
		return MOAT_E_NOMEM;
	(*m)->remote = true;
	return MOAT_OK;
}

bool wire_topic_is_sys(struct moat_bytes topic)
{
	return topic.len >= 4 && memcmp(topic.ptr, "$SYS", 4) == 0 &&
	       (topic.len == 4 || topic.ptr[4] == '/');
}

int wire_put_filter(struct buf *out, struct moat_bytes f)
{
	uint8_t len[2] = {(uint8_t)(f.len >> 8), (uint8_t)f.len};
	int rc;

	if (f.len > UINT16_MAX)
		return MOAT_E_INVAL;
	rc = buf_append(out, len, sizeof(len));
	return rc == MOAT_OK ? buf_append(out, f.ptr, f.len) : rc;
}

bool wire_each_filter(struct moat_bytes value, void (*fn)(void *ctx, struct moat_bytes f),
		      void *ctx)
{
	size_t pos = 0;

	while (pos < value.len) {
		size_t n;

		if (value.len - pos < 2)
			return false;
		n = (size_t)value.ptr[pos] << 8 | value.ptr[pos + 1];
		pos += 2;
		if (value.len - pos < n)
			return false;
		if (fn != NULL)
			fn(ctx, (struct moat_bytes){value.ptr + pos, n});
		pos += n;
	}
	return true;
}

struct filter_set {
	struct moat_bytes *v;
	size_t n, cap;
	bool nomem;
};

static void collect(void *ctx, struct moat_bytes f)
{
	struct filter_set *fs = ctx;

	if (fs->nomem)
		return;
	if (fs->n == fs->cap) {
		size_t cap = fs->cap != 0 ? fs->cap * 2 : 64;
		struct moat_bytes *v = realloc(fs->v, cap * sizeof(*v));

		if (v == NULL) {
			fs->nomem = true;
			return;
		}
		fs->v = v;
		fs->cap = cap;
	}
	fs->v[fs->n++] = f;
}

static int cmp_filter(const void *a, const void *b)
{
	const struct moat_bytes *x = a, *y = b;
	int c = memcmp(x->ptr, y->ptr, x->len < y->len ? x->len : y->len);

	return c != 0 ? c : (x->len > y->len) - (x->len < y->len);
}

struct drop_ctx {
	const struct filter_set *keep;
	void (*drop)(void *ctx, struct moat_bytes f);
	void *ctx;
};

static void drop_unless_kept(void *ctx, struct moat_bytes f)
{
	struct drop_ctx *dc = ctx;

	if (dc->keep->n == 0 ||
	    bsearch(&f, dc->keep->v, dc->keep->n, sizeof(f), cmp_filter) == NULL)
		dc->drop(dc->ctx, f);
}

int wire_replace_filters(struct moat_bytes old, struct moat_bytes next,
			 void (*add)(void *ctx, struct moat_bytes f),
			 void (*drop)(void *ctx, struct moat_bytes f), void *ctx)
{
	struct filter_set keep = {0};
	struct drop_ctx dc = {&keep, drop, ctx};

	wire_each_filter(next, add, ctx);
	wire_each_filter(next, collect, &keep);
	if (keep.nomem) {
		free(keep.v);
		return MOAT_E_NOMEM;
	}
	if (keep.n > 0)
		qsort(keep.v, keep.n, sizeof(*keep.v), cmp_filter);
	wire_each_filter(old, drop_unless_kept, &dc);
	free(keep.v);
	return MOAT_OK;
}
