/*
 * A topic-level trie shared by the subscription index and the retained store:
 * one node per topic level, children in a per-node hash table, parent links so
 * walks and pruning need no recursion and no stack proportional to depth
 * (CVE-2019-11779). Not thread-safe: the owning module holds its own lock.
 */
#ifndef MOAT_BROKER_TRIE_H
#define MOAT_BROKER_TRIE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <moat/bytes.h>

struct trie_node {
	struct trie_node *parent;	/* NULL for the root */
	struct trie_node *hnext;	/* next in the parent's bucket */
	struct trie_node **buckets;	/* children by hash of their level */
	uint32_t nbuckets, nkids;
	uint32_t depth;			/* the root is 0, its children 1 */
	uint32_t hash;			/* of name, picks the bucket in the parent */
	void *val;			/* the owning module's data; NULL = none */
	size_t len;
	uint8_t name[];			/* the level, not NUL-terminated */
};

/* Allocates an empty root. NULL on out of memory. */
struct trie_node *trie_create(void);

/* Frees <root> and every node below it; <free_val> (may be NULL) gets each
 * node's non-NULL val first. NULL is fine. Iterative. */
void trie_destroy(struct trie_node *root, void (*free_val)(void *val));

/* The child of <n> whose level is <level>, or NULL. */
struct trie_node *trie_child(const struct trie_node *n, struct moat_bytes level);

/* The child of <n> named <level>, created when absent. NULL on out of memory. */
struct trie_node *trie_child_add(struct trie_node *n, struct moat_bytes level);

/* Frees <n> if it has no val and no children, then each ancestor left the
 * same way; stops at the first node still in use and never frees the root. */
void trie_prune(struct trie_node *n);

/* Frees <n> alone when it is not the root and has no val and no children;
 * its parent stays even if left empty. True when <n> was freed. Siblings stay
 * valid, so a post-order walk may remove the node it has just left. */
bool trie_remove_if_empty(struct trie_node *n);

/* First child of <n> in bucket order, or NULL. */
struct trie_node *trie_first_child(const struct trie_node *n);

/* The next child of <n>'s parent after <n> in bucket order, or NULL. */
struct trie_node *trie_next_sibling(const struct trie_node *n);

/* Iterates the levels of <t>: start with *<pos> = 0; each call sets <level> to
 * the next level ("a//b" has three, "" has one) and returns false after the last. */
static inline bool trie_levels_next(struct moat_bytes t, size_t *pos, struct moat_bytes *level)
{
	size_t start = *pos, end = start;

	if (start > t.len)
		return false;
	while (end < t.len && t.ptr[end] != '/')
		end++;
	*level = (struct moat_bytes){ .ptr = t.len > 0 ? t.ptr + start : t.ptr, .len = end - start };
	*pos = end + 1;
	return true;
}

#endif
