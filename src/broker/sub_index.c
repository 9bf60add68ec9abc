/*
 * Subscription index (see sub_index.h). Each trie node's val is a struct
 * node_subs holding the plain subscriptions of that filter and its shared
 * groups. Matching walks the trie with an explicit stack of at most one
 * pending sibling per level, so its memory depends on the deepest filter
 * (capped at max_levels), never on the topic.
 */
#include "broker/sub_index.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include <moat/error.h>

#include "broker/trie.h"
#include "codec/topic.h"

struct entries {
	struct sub_entry *v;
	uint32_t n, cap;
};

struct group {
	struct group *next;
	struct entries members;
	atomic_uint rr;		/* whose turn it is, modulo members.n */
	size_t len;		/* of the name, after "$share/" in <shared> */
	size_t shared_len;
	uint8_t shared[];	/* "$share/<name>/<filter>" as subscribed */
};

enum { SHARE_PREFIX_LEN = 7 };	/* "$share/" */

struct node_subs {
	struct entries plain;
	struct group *groups;
};

struct subidx {
	pthread_rwlock_t lock;
	struct trie_node *root;
	uint32_t max_levels;
	uint32_t max_depth;	/* deepest filter ever added: bounds the match stack */
	size_t count;
};

enum { LOCAL_FRAMES = 64 };

struct subidx *subidx_create(uint32_t max_levels)
{
	struct subidx *idx = calloc(1, sizeof(*idx));
	pthread_rwlockattr_t attr;

	if (idx == NULL)
		return NULL;
	idx->root = trie_create();
	if (idx->root == NULL)
		goto err_free_idx;
	if (pthread_rwlockattr_init(&attr) != 0)
		goto err_free_root;
	/* Writers first, so subscribes are not starved by a stream of publishes. */
	pthread_rwlockattr_setkind_np(&attr, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
	if (pthread_rwlock_init(&idx->lock, &attr) != 0) {
		pthread_rwlockattr_destroy(&attr);
		goto err_free_root;
	}
	pthread_rwlockattr_destroy(&attr);
	idx->max_levels = max_levels != 0 ? max_levels : SUBIDX_DEFAULT_MAX_LEVELS;
	return idx;

err_free_root:
	free(idx->root);
err_free_idx:
	free(idx);
	return NULL;
}

static void free_node_subs(void *val)
{
	struct node_subs *ns = val;

	while (ns->groups != NULL) {
		struct group *g = ns->groups;

		ns->groups = g->next;
		free(g->members.v);
		free(g);
	}
	free(ns->plain.v);
	free(ns);
}

void subidx_destroy(struct subidx *idx)
{
	if (idx == NULL)
		return;
	trie_destroy(idx->root, free_node_subs);
	pthread_rwlock_destroy(&idx->lock);
	free(idx);
}

static struct sub_entry *entries_find(const struct entries *es, const void *owner)
{
	for (uint32_t i = 0; i < es->n; i++) {
		if (es->v[i].owner == owner)
			return &es->v[i];
	}
	return NULL;
}

/* Appends <e> to <es>. MOAT_OK or MOAT_E_NOMEM. */
static int entries_push(struct entries *es, const struct sub_entry *e)
{
	if (es->n == es->cap) {
		uint32_t cap = es->cap == 0 ? 2 : es->cap * 2;
		struct sub_entry *v = realloc(es->v, cap * sizeof(*v));

		if (v == NULL)
			return MOAT_E_NOMEM;
		es->v = v;
		es->cap = cap;
	}
	es->v[es->n++] = *e;
	return MOAT_OK;
}

/* Removes <e>, an element of <es>, keeping the order (round-robin fairness). */
static void entries_del(struct entries *es, struct sub_entry *e)
{
	size_t i = (size_t)(e - es->v);

	memmove(e, e + 1, (es->n - i - 1) * sizeof(*e));
	es->n--;
	if (es->n == 0) {
		free(es->v);
		*es = (struct entries){ 0 };
	}
}

static struct group **group_find(struct node_subs *ns, struct moat_bytes name)
{
	struct group **gp;

	for (gp = &ns->groups; *gp != NULL; gp = &(*gp)->next) {
		if ((*gp)->len == name.len &&
		    memcmp((*gp)->shared + SHARE_PREFIX_LEN, name.ptr, name.len) == 0)
			break;
	}
	return gp;
}

/* Splits <filter> into the shared group (empty for a plain filter) and the
 * filter that goes in the trie. MOAT_OK or MOAT_E_PROTOCOL. */
static int split_filter(struct moat_bytes filter, struct moat_bytes *group, struct moat_bytes *inner)
{
	int rc = topic_share_parse(filter, group, inner);

	if (rc == MOAT_E_NOTFOUND) {
		*group = (struct moat_bytes){ 0 };
		*inner = filter;
		return topic_filter_is_valid(filter) ? MOAT_OK : MOAT_E_PROTOCOL;
	}
	return rc == MOAT_OK ? MOAT_OK : MOAT_E_PROTOCOL;
}

/* The entry list <owner>'s subscription to <filter> belongs in at <ns>: the
 * plain list or group <group>'s members. With <create>, a missing group is
 * created (NULL on out of memory); otherwise NULL when the group does not
 * exist. */
static struct entries *entries_for(struct node_subs *ns, struct moat_bytes filter,
				   struct moat_bytes group, bool create)
{
	struct group **gp, *g;

	if (group.len == 0)
		return &ns->plain;
	gp = group_find(ns, group);
	if (*gp != NULL)
		return &(*gp)->members;
	if (!create)
		return NULL;
	g = calloc(1, sizeof(*g) + filter.len);
	if (g == NULL)
		return NULL;
	memcpy(g->shared, filter.ptr, filter.len);
	g->shared_len = filter.len;
	g->len = group.len;
	atomic_init(&g->rr, 0);
	*gp = g;
	return &g->members;
}

/* Frees groups without members, then <n>'s node_subs and nodes if unused. */
static void tidy(struct trie_node *n)
{
	struct node_subs *ns = n->val;

	if (ns == NULL)
		return;
	for (struct group **gp = &ns->groups; *gp != NULL;) {
		struct group *g = *gp;

		if (g->members.n == 0) {
			*gp = g->next;
			free(g);
		} else {
			gp = &g->next;
		}
	}
	if (ns->plain.n == 0 && ns->groups == NULL) {
		free(ns->plain.v);
		free(ns);
		n->val = NULL;
	}
	trie_prune(n);
}

/* Finds (or with <create>, builds) the node of plain filter <f>. */
static struct trie_node *filter_node(struct subidx *idx, struct moat_bytes f, bool create)
{
	struct trie_node *n = idx->root;
	struct moat_bytes level;
	size_t pos = 0;

	while (n != NULL && trie_levels_next(f, &pos, &level)) {
		struct trie_node *c = create ? trie_child_add(n, level) : trie_child(n, level);

		if (c == NULL && create)
			trie_prune(n);	/* undo the levels made for this filter */
		n = c;
	}
	return n;
}

int subidx_add(struct subidx *idx, struct moat_bytes filter, const struct sub_entry *e,
	       bool *existed)
{
	struct moat_bytes group, inner;
	struct trie_node *n;
	struct node_subs *ns;
	struct entries *es;
	struct sub_entry *old;
	size_t levels;
	int rc = split_filter(filter, &group, &inner);

	if (rc < 0)
		return rc;
	levels = topic_levels(inner);
	if (levels > idx->max_levels)
		return MOAT_E_LIMIT;
	pthread_rwlock_wrlock(&idx->lock);
	n = filter_node(idx, inner, true);
	if (n == NULL) {
		rc = MOAT_E_NOMEM;
		goto out;
	}
	if (n->val == NULL) {
		n->val = calloc(1, sizeof(struct node_subs));
		if (n->val == NULL) {
			rc = MOAT_E_NOMEM;
			goto err_tidy;
		}
	}
	ns = n->val;
	es = entries_for(ns, filter, group, true);
	if (es == NULL) {
		rc = MOAT_E_NOMEM;
		goto err_tidy;
	}
	old = entries_find(es, e->owner);
	if (existed != NULL)
		*existed = old != NULL;
	if (old != NULL) {
		*old = *e;
		goto out;
	}
	rc = entries_push(es, e);
	if (rc < 0)
		goto err_tidy;
	idx->count++;
	if (levels > idx->max_depth)
		idx->max_depth = (uint32_t)levels;
	goto out;

err_tidy:
	tidy(n);
out:
	pthread_rwlock_unlock(&idx->lock);
	return rc;
}

int subidx_remove(struct subidx *idx, struct moat_bytes filter, void *owner)
{
	struct moat_bytes group, inner;
	struct trie_node *n;
	struct entries *es = NULL;
	struct sub_entry *e = NULL;
	int rc = split_filter(filter, &group, &inner);

	if (rc < 0)
		return MOAT_E_NOTFOUND;	/* an invalid filter was never added */
	pthread_rwlock_wrlock(&idx->lock);
	n = filter_node(idx, inner, false);
	if (n != NULL && n->val != NULL)
		es = entries_for(n->val, filter, group, false);
	if (es != NULL)
		e = entries_find(es, owner);
	if (e == NULL) {
		rc = MOAT_E_NOTFOUND;
	} else {
		entries_del(es, e);
		idx->count--;
		tidy(n);
	}
	pthread_rwlock_unlock(&idx->lock);
	return rc;
}

/* Delivers one member of <g>, round-robin, preferring those <member_ok> accepts. */
static void emit_member(struct group *g, subidx_match_cb *cb, subidx_member_ok_cb *member_ok,
			void *ctx)
{
	uint32_t cnt = g->members.n;
	uint32_t turn = atomic_fetch_add_explicit(&g->rr, 1, memory_order_relaxed) % cnt;
	uint32_t pick = turn;

	if (member_ok != NULL) {
		for (uint32_t k = 0; k < cnt; k++) {
			if (member_ok(ctx, &g->members.v[(turn + k) % cnt])) {
				pick = (turn + k) % cnt;
				break;
			}
		}
	}
	cb(ctx, &g->members.v[pick], (struct moat_bytes){ .ptr = g->shared, .len = g->shared_len });
}

/* Delivers node <n>'s subscriptions: every plain entry, one member per group. */
static void emit(const struct trie_node *n, subidx_match_cb *cb, subidx_member_ok_cb *member_ok,
		 void *ctx)
{
	const struct node_subs *ns = n->val;

	if (ns == NULL)
		return;
	for (uint32_t i = 0; i < ns->plain.n; i++)
		cb(ctx, &ns->plain.v[i], (struct moat_bytes){ 0 });
	for (struct group *g = ns->groups; g != NULL; g = g->next)
		emit_member(g, cb, member_ok, ctx);
}

struct frame {
	const struct trie_node *n;
	size_t pos;	/* where the next topic level starts; > topic.len when none is left */
};

int subidx_match(struct subidx *idx, struct moat_bytes topic, subidx_match_cb *cb,
		 subidx_member_ok_cb *member_ok, void *ctx)
{
	static const struct moat_bytes plus = { (const uint8_t *)"+", 1 };
	static const struct moat_bytes hash = { (const uint8_t *)"#", 1 };
	struct frame local[LOCAL_FRAMES], *stack = local;
	size_t top = 0, cap = LOCAL_FRAMES;
	bool dollar = topic.len > 0 && topic.ptr[0] == '$';

	pthread_rwlock_rdlock(&idx->lock);
	/* Each popped frame pushes at most two children one level down, so at
	 * most one sibling per level waits: depth + 2 frames suffice. */
	if ((size_t)idx->max_depth + 2 > cap) {
		cap = (size_t)idx->max_depth + 2;
		stack = malloc(cap * sizeof(*stack));
		if (stack == NULL) {
			pthread_rwlock_unlock(&idx->lock);
			return MOAT_E_NOMEM;
		}
	}
	stack[top++] = (struct frame){ idx->root, 0 };
	while (top > 0) {
		struct frame f = stack[--top];
		bool wild_ok = !(dollar && f.n == idx->root);	/* [MQTT-4.7.2-1] */
		const struct trie_node *c;
		struct moat_bytes level;
		size_t next = f.pos;

		/* "#" matches the remaining levels, none included [MQTT-4.7.1-2] */
		if (wild_ok && (c = trie_child(f.n, hash)) != NULL)
			emit(c, cb, member_ok, ctx);
		if (!trie_levels_next(topic, &next, &level)) {
			emit(f.n, cb, member_ok, ctx);
			continue;
		}
		if (wild_ok && (c = trie_child(f.n, plus)) != NULL)
			stack[top++] = (struct frame){ c, next };
		if (!moat_bytes_eq(level, plus) && !moat_bytes_eq(level, hash) &&
		    (c = trie_child(f.n, level)) != NULL)
			stack[top++] = (struct frame){ c, next };
	}
	pthread_rwlock_unlock(&idx->lock);
	if (stack != local)
		free(stack);
	return MOAT_OK;
}

size_t subidx_count(struct subidx *idx)
{
	size_t n;

	pthread_rwlock_rdlock(&idx->lock);
	n = idx->count;
	pthread_rwlock_unlock(&idx->lock);
	return n;
}

/* ---- one shared subscription (cluster shares, src/cluster/share.c) ---- */

bool subidx_pick(struct subidx *idx, struct moat_bytes shared_filter, subidx_match_cb *cb,
		 subidx_member_ok_cb *member_ok, void *ctx)
{
	struct moat_bytes group, inner;
	struct trie_node *n;
	struct group *g = NULL;

	if (topic_share_parse(shared_filter, &group, &inner) != MOAT_OK)
		return false;
	pthread_rwlock_rdlock(&idx->lock);
	n = filter_node(idx, inner, false);
	if (n != NULL && n->val != NULL)
		g = *group_find(n->val, group);
	if (g != NULL)
		emit_member(g, cb, member_ok, ctx);
	pthread_rwlock_unlock(&idx->lock);
	return g != NULL;
}
