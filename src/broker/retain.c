/*
 * Retained messages (see retain.h): a topic trie whose node vals are the
 * messages. A filter walk visits only the branches the filter admits, in
 * pre-order with parent links; the sweep walks in post-order so it can free
 * each node it has emptied as soon as it leaves it.
 */
#include "broker/retain.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <moat/error.h>

#include "broker/trie.h"
#include "codec/topic.h"

struct retain {
	pthread_rwlock_t lock;
	const struct retain_ops *ops;
	struct trie_node *root;
	uint32_t max_levels;
	size_t count;
};

enum { LOCAL_LEVELS = 64 };

struct retain *retain_create(const struct retain_ops *ops, uint32_t max_levels)
{
	struct retain *r = calloc(1, sizeof(*r));

	if (r == NULL)
		return NULL;
	r->root = trie_create();
	if (r->root == NULL || pthread_rwlock_init(&r->lock, NULL) != 0) {
		free(r->root);
		free(r);
		return NULL;
	}
	r->ops = ops;
	r->max_levels = max_levels != 0 ? max_levels : RETAIN_DEFAULT_MAX_LEVELS;
	return r;
}

void retain_destroy(struct retain *r)
{
	if (r == NULL)
		return;
	trie_destroy(r->root, r->ops->unref);
	pthread_rwlock_destroy(&r->lock);
	free(r);
}

/* The node of topic <t>; with <create> missing levels are made (NULL on out
 * of memory, with the levels made for <t> removed again). */
static struct trie_node *topic_node(struct trie_node *root, struct moat_bytes t, bool create)
{
	struct trie_node *n = root;
	struct moat_bytes level;
	size_t pos = 0;

	while (n != NULL && trie_levels_next(t, &pos, &level)) {
		struct trie_node *c = create ? trie_child_add(n, level) : trie_child(n, level);

		if (c == NULL && create)
			trie_prune(n);
		n = c;
	}
	return n;
}

int retain_set(struct retain *r, struct moat_bytes topic, void *msg)
{
	struct trie_node *n;
	int rc = MOAT_OK;

	if (!topic_name_is_valid(topic))
		return MOAT_E_INVAL;
	if (topic_levels(topic) > r->max_levels)
		return MOAT_E_LIMIT;
	pthread_rwlock_wrlock(&r->lock);
	n = topic_node(r->root, topic, msg != NULL);
	if (n == NULL) {
		rc = msg != NULL ? MOAT_E_NOMEM : MOAT_OK;
		goto out;
	}
	if (n->val != NULL) {
		r->ops->unref(n->val);
		r->count--;
	}
	n->val = msg;
	if (msg != NULL) {
		r->ops->ref(msg);
		r->count++;
	} else {
		trie_prune(n);
	}
out:
	pthread_rwlock_unlock(&r->lock);
	return rc;
}

/* A filter cut into levels, so the level facing a node is found by its depth. */
struct filter_levels {
	struct moat_bytes *v;
	size_t n;
	size_t hash_at;		/* index of a final "#", or SIZE_MAX */
};

static bool level_is(struct moat_bytes l, char ch)
{
	return l.len == 1 && l.ptr[0] == (uint8_t)ch;
}

/* Whether child <c> lies on a branch <f> admits. */
static bool admits(const struct filter_levels *f, const struct trie_node *c)
{
	size_t i = c->depth - 1;
	bool dollar = c->depth == 1 && c->len > 0 && c->name[0] == '$';

	if (i > f->hash_at)
		return true;	/* below the node a "#" admitted */
	if (i >= f->n)
		return false;
	if (level_is(f->v[i], '#') || level_is(f->v[i], '+'))
		return !dollar;	/* [MQTT-4.7.2-1] */
	return c->len == f->v[i].len && memcmp(c->name, f->v[i].ptr, c->len) == 0;
}

/* Whether <n>, reached through admitted levels, is itself matched by <f>:
 * at the filter's depth, or anywhere from the parent of its "#" down
 * ("a/#" matches "a" [MQTT-4.7.1-2]). */
static bool matched(const struct filter_levels *f, const struct trie_node *n)
{
	return f->hash_at != SIZE_MAX ? n->depth >= f->hash_at : n->depth == f->n;
}

/* The first child of <n> that <f> admits, from <c> on (NULL: none). */
static struct trie_node *admitted_from(const struct filter_levels *f, struct trie_node *c)
{
	while (c != NULL && !admits(f, c))
		c = trie_next_sibling(c);
	return c;
}

/* Pre-order over the admitted branches, calling <cb> on each matched
 * message until it returns false. */
static void walk_filter(struct retain *r, const struct filter_levels *f, retain_match_cb *cb,
			void *ctx)
{
	struct trie_node *n = r->root;

	for (;;) {
		struct trie_node *next;

		if (n->val != NULL && matched(f, n) && !cb(ctx, n->val))
			return;
		next = admitted_from(f, trie_first_child(n));
		while (next == NULL && n != r->root) {
			next = admitted_from(f, trie_next_sibling(n));
			n = n->parent;
		}
		if (next == NULL)
			return;
		n = next;
	}
}

int retain_match(struct retain *r, struct moat_bytes filter, retain_match_cb *cb, void *ctx)
{
	struct moat_bytes local[LOCAL_LEVELS], level;
	struct filter_levels f = { .v = local, .hash_at = SIZE_MAX };
	size_t levels, pos = 0;

	if (!topic_filter_is_valid(filter))
		return MOAT_E_PROTOCOL;
	levels = topic_levels(filter);
	/* Deeper than any stored topic can be (a final "#" may match one level less). */
	if (levels > (size_t)r->max_levels + 1)
		return MOAT_OK;
	if (levels > LOCAL_LEVELS) {
		f.v = malloc(levels * sizeof(*f.v));
		if (f.v == NULL)
			return MOAT_E_NOMEM;
	}
	while (trie_levels_next(filter, &pos, &level)) {
		if (level_is(level, '#'))
			f.hash_at = f.n;
		f.v[f.n++] = level;
	}
	pthread_rwlock_rdlock(&r->lock);
	walk_filter(r, &f, cb, ctx);
	pthread_rwlock_unlock(&r->lock);
	if (f.v != local)
		free(f.v);
	return MOAT_OK;
}

/* The first node in post-order of the subtree under <n>: its deepest first descendant. */
static struct trie_node *deepest_first(struct trie_node *n)
{
	struct trie_node *c;

	while ((c = trie_first_child(n)) != NULL)
		n = c;
	return n;
}

size_t retain_sweep(struct retain *r, bool (*drop)(void *ctx, void *msg), void *ctx)
{
	struct trie_node *n;
	size_t dropped = 0;

	pthread_rwlock_wrlock(&r->lock);
	n = deepest_first(r->root);
	for (;;) {
		struct trie_node *sibling, *parent = n->parent;

		if (n->val != NULL && drop(ctx, n->val)) {
			r->ops->unref(n->val);
			n->val = NULL;
			r->count--;
			dropped++;
		}
		if (n == r->root)
			break;
		sibling = trie_next_sibling(n);
		trie_remove_if_empty(n);
		n = sibling != NULL ? deepest_first(sibling) : parent;
	}
	pthread_rwlock_unlock(&r->lock);
	return dropped;
}

size_t retain_count(struct retain *r)
{
	size_t n;

	pthread_rwlock_rdlock(&r->lock);
	n = r->count;
	pthread_rwlock_unlock(&r->lock);
	return n;
}
