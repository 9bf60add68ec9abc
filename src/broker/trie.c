/*
 * Topic-level trie (see trie.h). Children hang in a per-node chained hash
 * table that doubles when it fills; every walk here follows parent links, so
 * nothing recurses on the depth of a topic.
 */
#include "broker/trie.h"

#include <stdlib.h>
#include <string.h>

enum { FIRST_BUCKETS = 4 };

static uint32_t level_hash(struct moat_bytes level)
{
	uint32_t h = 2166136261u;	/* FNV-1a */

	for (size_t i = 0; i < level.len; i++)
		h = (h ^ level.ptr[i]) * 16777619u;
	return h;
}

struct trie_node *trie_create(void)
{
	return calloc(1, sizeof(struct trie_node));
}

struct trie_node *trie_child(const struct trie_node *n, struct moat_bytes level)
{
	uint32_t h;

	if (n->nkids == 0)
		return NULL;
	h = level_hash(level);
	for (struct trie_node *c = n->buckets[h & (n->nbuckets - 1)]; c != NULL; c = c->hnext) {
		if (c->hash == h && c->len == level.len &&
		    (level.len == 0 || memcmp(c->name, level.ptr, level.len) == 0))
			return c;
	}
	return NULL;
}

/* Doubles <n>'s bucket array (or creates it). False on out of memory. */
static bool grow(struct trie_node *n)
{
	uint32_t nb = n->nbuckets == 0 ? FIRST_BUCKETS : n->nbuckets * 2;
	struct trie_node **b = calloc(nb, sizeof(*b));

	if (b == NULL)
		return false;
	for (uint32_t i = 0; i < n->nbuckets; i++) {
		while (n->buckets[i] != NULL) {
			struct trie_node *c = n->buckets[i];

			n->buckets[i] = c->hnext;
			c->hnext = b[c->hash & (nb - 1)];
			b[c->hash & (nb - 1)] = c;
		}
	}
	free(n->buckets);
	n->buckets = b;
	n->nbuckets = nb;
	return true;
}

struct trie_node *trie_child_add(struct trie_node *n, struct moat_bytes level)
{
	struct trie_node *c = trie_child(n, level), **slot;

	if (c != NULL)
		return c;
	if (n->nkids >= n->nbuckets && !grow(n))
		return NULL;
	c = calloc(1, sizeof(*c) + level.len);
	if (c == NULL)
		return NULL;
	c->parent = n;
	c->depth = n->depth + 1;
	c->hash = level_hash(level);
	c->len = level.len;
	if (level.len > 0)
		memcpy(c->name, level.ptr, level.len);
	slot = &n->buckets[c->hash & (n->nbuckets - 1)];
	c->hnext = *slot;
	*slot = c;
	n->nkids++;
	return c;
}

/* Takes childless <c> out of its parent's table and frees it. */
static void unlink_free(struct trie_node *c)
{
	struct trie_node *p = c->parent;
	struct trie_node **pp = &p->buckets[c->hash & (p->nbuckets - 1)];

	while (*pp != c)
		pp = &(*pp)->hnext;
	*pp = c->hnext;
	p->nkids--;
	if (p->nkids == 0) {
		free(p->buckets);
		p->buckets = NULL;
		p->nbuckets = 0;
	}
	free(c->buckets);
	free(c);
}

bool trie_remove_if_empty(struct trie_node *n)
{
	if (n->parent == NULL || n->val != NULL || n->nkids != 0)
		return false;
	unlink_free(n);
	return true;
}

void trie_prune(struct trie_node *n)
{
	struct trie_node *p = n->parent;

	while (trie_remove_if_empty(n)) {
		n = p;
		p = n->parent;
	}
}

struct trie_node *trie_first_child(const struct trie_node *n)
{
	for (uint32_t i = 0; i < n->nbuckets; i++) {
		if (n->buckets[i] != NULL)
			return n->buckets[i];
	}
	return NULL;
}

struct trie_node *trie_next_sibling(const struct trie_node *n)
{
	const struct trie_node *p = n->parent;

	if (p == NULL)
		return NULL;
	if (n->hnext != NULL)
		return n->hnext;
	for (uint32_t i = (n->hash & (p->nbuckets - 1)) + 1; i < p->nbuckets; i++) {
		if (p->buckets[i] != NULL)
			return p->buckets[i];
	}
	return NULL;
}

void trie_destroy(struct trie_node *root, void (*free_val)(void *val))
{
	struct trie_node *n = root;

	if (root == NULL)
		return;
	/* Post-order without a stack: descend to a leaf, free it, resume at its parent. */
	for (;;) {
		struct trie_node *c = trie_first_child(n);

		if (c != NULL) {
			n = c;
			continue;
		}
		if (n->val != NULL && free_val != NULL)
			free_val(n->val);
		n->val = NULL;
		if (n == root)
			break;
		c = n;
		n = n->parent;
		unlink_free(c);
	}
	free(root->buckets);
	free(root);
}
