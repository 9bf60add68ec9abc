/*
 * Interest-based routing (docs/cluster.md, "Interest"). Each node keeps the
 * set of distinct filters its sessions subscribe to (counted, shared
 * subscriptions as written, "$share/<group>/<filter>") and writes it, when
 * it changed, at the end of a loop pass under its own name in the
 * cluster's interest bucket (value: wire.h's filter list). A thread watches
 * the bucket and keeps every other node's plain filters in one subscription
 * index whose owners are the nodes, so an export matches a topic once and
 * publishes one copy per interested node, on that node's subject. Shared
 * filters of every node, this one's included, go to share.c instead: their
 * messages cross once per share, not once per node.
 */
#include "cluster/cluster_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <moat/error.h>

#include "base/clock.h"
#include "base/log.h"
#include "broker/broker.h"
#include "broker/sub_index.h"
#include "cluster/wire.h"
#include "codec/topic.h"

/* How long after a failed write of this node's filters the next is tried. */
enum { FLUSH_RETRY_MS = 1000 };

static struct log_limiter flush_log;

/* One filter of this node with the number of subscriptions on it. */
struct local_filter {
	uint32_t count;
	uint16_t len;
	uint8_t filter[];
};

/* Another node, as its bucket entry describes it; kept until the cluster
 * stops, so an export that matched it may still use it. */
struct remote_node {
	struct remote_node *next;
	struct buf filters; /* its last value: u16-length filters */
	char name[];
};

static size_t find_local(const struct cluster *cl, struct moat_bytes f, bool *found)
{
	size_t lo = 0, hi = cl->local_n;

	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		const struct local_filter *x = cl->local[mid];
		size_t n = x->len < f.len ? x->len : f.len;
		int c = memcmp(x->filter, f.ptr, n);

		if (c == 0)
			c = x->len < f.len ? -1 : x->len > f.len;
		if (c == 0) {
			*found = true;
			return mid;
		}
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	*found = false;
	return lo;
}

static int local_add(struct cluster *cl, struct moat_bytes f)
{
	bool found;
	size_t i = find_local(cl, f, &found);
	struct local_filter *x;

	if (found) {
		cl->local[i]->count++;
		return MOAT_OK;
	}
	if (cl->local_n == cl->local_cap) {
		size_t cap = cl->local_cap ? cl->local_cap * 2 : 16;
		struct local_filter **v = realloc(cl->local, cap * sizeof(*v));

		if (v == NULL)
			return MOAT_E_NOMEM;
		cl->local = v;
		cl->local_cap = cap;
	}
	x = malloc(sizeof(*x) + f.len);
	if (x == NULL)
		return MOAT_E_NOMEM;
	*x = (struct local_filter){.count = 1, .len = (uint16_t)f.len};
	memcpy(x->filter, f.ptr, f.len);
	memmove(&cl->local[i + 1], &cl->local[i], (cl->local_n - i) * sizeof(*cl->local));
	cl->local[i] = x;
	cl->local_n++;
	atomic_store(&cl->local_dirty, true);
	return MOAT_OK;
}

static void local_remove(struct cluster *cl, struct moat_bytes f)
{
	bool found;
	size_t i = find_local(cl, f, &found);

	if (!found || --cl->local[i]->count > 0)
		return;
	free(cl->local[i]);
	memmove(&cl->local[i], &cl->local[i + 1], (cl->local_n - i - 1) * sizeof(*cl->local));
	cl->local_n--;
	atomic_store(&cl->local_dirty, true);
}

void cluster_interest(struct broker *b, struct moat_bytes f, bool add)
{
	struct cluster *cl = b->cluster;

	if (cl == NULL)
		return;
	pthread_mutex_lock(&cl->local_lock);
	if (!add)
		local_remove(cl, f);
	else if (local_add(cl, f) < 0)
		log_warn("cluster: out of memory: other nodes may not send what %.*s matches",
			 (int)f.len, (const char *)f.ptr);
	pthread_mutex_unlock(&cl->local_lock);
}

/* Writes this node's filters to the bucket when they changed. Built under
 * local_lock but published outside it, so a SUBSCRIBE on any worker never
 * waits for NATS; one worker at a time (the others skip: the set stays
 * dirty), so a later set is published after an earlier one. A failed
 * write (a set above NATS's max_payload, NATS unreachable) is logged and
 * tried again after FLUSH_RETRY_MS, not on every pass. */
void cluster_interest_flush(struct cluster *cl)
{
	struct buf *v = &cl->local_value;
	char subject[sizeof(cl->interest_prefix) + CLUSTER_NODE_MAX];
	natsMsg *nm = NULL;
	natsStatus s = NATS_NO_MEMORY;
	bool ok = true;
	uint64_t now;

	if (!atomic_load(&cl->local_dirty) || pthread_mutex_trylock(&cl->flush_lock) != 0)
		return;
	now = clock_mono_ms();
	if (now < cl->flush_retry_ms) {
		pthread_mutex_unlock(&cl->flush_lock);
		return;
	}
	pthread_mutex_lock(&cl->local_lock);
	atomic_store(&cl->local_dirty, false);
	buf_consume(v, buf_used(v));
	for (size_t i = 0; i < cl->local_n && ok; i++)
		ok = wire_put_filter(v, (struct moat_bytes){cl->local[i]->filter,
							    cl->local[i]->len}) == MOAT_OK;
	pthread_mutex_unlock(&cl->local_lock);
	snprintf(subject, sizeof(subject), "%s%s", cl->interest_prefix, cl->node);
	if (ok && buf_used(v) <= INT32_MAX &&
	    (s = natsMsg_Create(&nm, subject, NULL, (const char *)buf_head(v), (int)buf_used(v))) ==
		NATS_OK) {
		s = js_PublishMsgAsync(cl->js, &nm, NULL);
		natsMsg_Destroy(nm); /* NULL when NATS took it */
	}
	if (s != NATS_OK) {
		atomic_store(&cl->local_dirty, true);
		cl->flush_retry_ms = now + FLUSH_RETRY_MS;
		if (log_limiter_allow(&flush_log, 1, 60))
			log_warn(
			    "cluster: cannot write this node's interest (%zu bytes): %s; other "
			    "nodes do not send it what its new subscriptions match",
			    buf_used(v), natsStatus_GetText(s));
	}
	pthread_mutex_unlock(&cl->flush_lock);
}

struct node_ctx {
	struct cluster *cl;
	struct remote_node *node;
	bool here; /* this node's own entry: only its shares count */
};

static bool is_shared(struct moat_bytes f)
{
	struct moat_bytes group, inner;

	return topic_share_parse(f, &group, &inner) == MOAT_OK;
}

static void remote_remove(void *ctx, struct moat_bytes f)
{
	struct node_ctx *nc = ctx;

	if (is_shared(f))
		cluster_share_seen(nc->cl, nc->node, nc->here, f, false);
	else if (!nc->here)
		subidx_remove(nc->cl->remote, f, nc->node);
}

static void remote_add(void *ctx, struct moat_bytes f)
{
	struct node_ctx *nc = ctx;
	struct sub_entry e = {.owner = nc->node};

	if (is_shared(f))
		cluster_share_seen(nc->cl, nc->node, nc->here, f, true);
	else if (!nc->here && subidx_add(nc->cl->remote, f, &e, NULL) < 0)
		log_warn("cluster: node %s's filter %.*s is not usable here", nc->node->name,
			 (int)f.len, (const char *)f.ptr);
}

static struct remote_node *remote_node(struct cluster *cl, const char *name)
{
	struct remote_node *n;

	for (n = cl->nodes; n != NULL; n = n->next)
		if (strcmp(n->name, name) == 0)
			return n;
	n = calloc(1, sizeof(*n) + strlen(name) + 1);
	if (n == NULL)
		return NULL;
	strcpy(n->name, name);
	n->next = cl->nodes;
	cl->nodes = n;
	return n;
}

/* A node's entry changed (the watch thread): its filters are replaced,
 * new ones first. */
#ifndef NDEBUG
/* Test hook (debug builds only, MOAT_TEST_INTEREST_HOLD_MS): the watch holds
 * the first entry it reads that long, so a join's wait for the other nodes'
 * interest ends before it is read (tests/integration/test_cluster_join.py). */
static void test_hold_first(void)
{
	static atomic_bool held;
	const char *hold = getenv("MOAT_TEST_INTEREST_HOLD_MS");

	if (hold == NULL || atomic_exchange(&held, true))
		return;
	log_notice("cluster: test hook: holding the interest watch's first entry for %s ms", hold);
	usleep((useconds_t)strtoul(hold, NULL, 10) * 1000);
}
#endif

static void on_interest(struct cluster *cl, kvEntry *e)
{
	const char *name = kvEntry_Key(e);
	struct moat_bytes value = {kvEntry_Value(e), (size_t)kvEntry_ValueLen(e)};
	struct node_ctx nc = {cl, NULL, strcmp(name, cl->node) == 0};

#ifndef NDEBUG
	test_hold_first();
#endif
	if (kvEntry_Operation(e) != kvOp_Put)
		value.len = 0;
	if (!wire_each_filter(value, NULL, NULL)) {
		log_warn("cluster: ignored node %s's malformed interest", name);
		return;
	}
	nc.node = remote_node(cl, name);
	if (nc.node == NULL) {
		log_warn("cluster: out of memory: node %s's interest is not known here", name);
		return;
	}
	/* the new filters are added before the dropped ones go: an export
	 * running meanwhile never misses a filter the node kept */
	if (wire_replace_filters(
		(struct moat_bytes){buf_head(&nc.node->filters), buf_used(&nc.node->filters)},
		value, remote_add, remote_remove, &nc) < 0) {
		/* its old filters stay too (extra copies, nothing lost), and are
		 * dropped by a later change */
		log_warn("cluster: out of memory: node %s's dropped filters are kept", name);
		if (buf_append(&nc.node->filters, value.ptr, value.len) < 0)
			log_warn("cluster: out of memory: node %s's interest is not known here",
				 name);
		return;
	}
	buf_consume(&nc.node->filters, buf_used(&nc.node->filters));
	if (buf_append(&nc.node->filters, value.ptr, value.len) < 0)
		log_warn("cluster: out of memory: node %s's interest is not known here", name);
}

struct match_ctx {
	struct remote_node **v;
	size_t n, cap;
	bool more; /* a node beyond <cap> matched too */
};

static void on_match(void *ctx, const struct sub_entry *e, struct moat_bytes share_group)
{
	struct match_ctx *mc = ctx;

	(void)share_group;
	for (size_t i = 0; i < mc->n; i++)
		if (mc->v[i] == e->owner)
			return;
	if (mc->n < mc->cap)
		mc->v[mc->n++] = e->owner;
	else
		mc->more = true;
}

size_t cluster_interested(struct cluster *cl, struct moat_bytes topic, const char **names,
			  size_t cap, bool *more)
{
	struct remote_node *v[CLUSTER_MAX_NODES];
	struct match_ctx mc = {v, 0, cap < CLUSTER_MAX_NODES ? cap : CLUSTER_MAX_NODES, false};

	subidx_match(cl->remote, topic, on_match, NULL, &mc);
	for (size_t i = 0; i < mc.n; i++)
		names[i] = v[i]->name;
	if (more != NULL)
		*more = mc.more;
	return mc.n;
}

int cluster_interest_init(struct cluster *cl, char *err, size_t errlen)
{
	pthread_mutex_init(&cl->local_lock, NULL);
	pthread_mutex_init(&cl->flush_lock, NULL);
	cl->remote = subidx_create(cl->b->cfg->max_topic_levels);
	if (cl->remote == NULL) {
		snprintf(err, errlen, "cluster: out of memory");
		return MOAT_E_NOMEM;
	}
	return MOAT_OK;
}

/* The watch thread, every second: exports start once the interest is read
 * (join.c), and the shares are checked (share.c). */
static void on_interest_tick(struct cluster *cl)
{
	cluster_join_exports(cl);
	cluster_shares_recheck(cl);
}

int cluster_interest_start(struct cluster *cl, const char *bucket, char *err, size_t errlen)
{
	atomic_store(&cl->local_dirty, true); /* an empty set replaces what a past run left */
	cl->interest.on_tick = on_interest_tick;
	return cluster_watch_start(cl, &cl->interest, bucket, on_interest, err, errlen);
}

void cluster_interest_stop(struct cluster *cl)
{
	cluster_watch_stop(&cl->interest);
	while (cl->nodes != NULL) {
		struct remote_node *n = cl->nodes;

		cl->nodes = n->next;
		buf_fini(&n->filters);
		free(n);
	}
	subidx_destroy(cl->remote);
	cl->remote = NULL;
	for (size_t i = 0; i < cl->local_n; i++)
		free(cl->local[i]);
	free(cl->local);
	cl->local = NULL;
	cl->local_n = cl->local_cap = 0;
	buf_fini(&cl->local_value);
	pthread_mutex_destroy(&cl->local_lock);
	pthread_mutex_destroy(&cl->flush_lock);
}
