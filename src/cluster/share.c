/*
 * Shared subscriptions across nodes (docs/cluster.md, "Shared
 * subscriptions"). A share is one "$share/<group>/<filter>"; its id is the
 * hex of the first 8 bytes of the SHA-256 of that string. Every node lists
 * its shares in its interest entry (interest.c), and the watch thread keeps
 * the shares of all entries, this node's own included, in an index by
 * inner filter. A local client's message goes once to each matching share,
 * on "<cluster>.g.<id>.<topic tokens>", into the work-queue stream
 * "<cluster>_shares". Each share has a durable consumer "share-<id>" that
 * delivers to the NATS queue group of the same name; the nodes whose own
 * entry lists the share are its members, so JetStream hands each message
 * to one node, which routes it to one of its members (subidx_pick) and
 * acknowledges it once routed (ack.c), or refuses it when it has no member
 * any more so that another node takes it. A consumer no node subscribes to
 * is deleted by JetStream after SHARE_IDLE_NS. A share no node holds any
 * more is retired: out of the index, then freed once no NATS callback,
 * message on its way to worker 0 or worker's share_set uses it (refs).
 */
#include "cluster/cluster_int.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include <moat/error.h>

#include "base/log.h"
#include "broker/broker.h"
#include "broker/sub_index.h"
#include "codec/topic.h"

/* How long JetStream keeps a share's consumer that no node subscribes to
 * (its last member left everywhere, or its nodes are all down); how long
 * the shares' stream keeps a message no consumer took. */
#define SHARE_IDLE_NS (3600LL * 1000000000LL)
#define SHARE_MAX_AGE_NS (24LL * 3600 * 1000000000LL)
/* When JetStream sends a refused message again (to any node of the share):
 * not at once, so a node that has not left the queue group yet does not
 * spin on it. */
enum { REFUSE_DELAY_MS = 500 };

static struct log_limiter refuse_log, drop_log;

static struct cluster_share *share_find(struct cluster *cl, struct moat_bytes f)
{
	for (struct cluster_share *sh = cl->share_list; sh != NULL; sh = sh->next)
		if (sh->len == f.len && memcmp(sh->filter, f.ptr, f.len) == 0)
			return sh;
	return NULL;
}

static struct cluster_share *share_new(struct cluster *cl, struct moat_bytes f)
{
	struct cluster_share *sh = calloc(1, sizeof(*sh) + f.len);
	uint8_t md[EVP_MAX_MD_SIZE];
	unsigned mdlen = 0;

	if (sh == NULL || EVP_Digest(f.ptr, f.len, md, &mdlen, EVP_sha256(), NULL) != 1) {
		free(sh);
		return NULL;
	}
	for (int i = 0; i < CLUSTER_SHARE_ID_LEN / 2; i++)
		snprintf(&sh->id[2 * i], 3, "%02x", md[i]);
	sh->cl = cl;
	sh->len = (uint16_t)f.len;
	memcpy(sh->filter, f.ptr, f.len);
	sh->next = cl->share_list;
	cl->share_list = sh;
	atomic_fetch_add(&cl->shares_kept, 1);
	return sh;
}

static void share_free(struct cluster *cl, struct cluster_share *sh)
{
	atomic_fetch_sub(&cl->shares_kept, 1);
	free(sh->holders);
	free(sh);
}

static void share_ref(struct cluster_share *sh)
{
	atomic_fetch_add(&sh->refs, 1);
}

void cluster_share_unref(struct cluster_share *sh)
{
	atomic_fetch_sub(&sh->refs, 1);
}

/* Frees the retired shares no one uses any more (the watch thread). */
static void shares_sweep(struct cluster *cl)
{
	struct cluster_share **p = &cl->share_retired;

	while (*p != NULL) {
		struct cluster_share *sh = *p;

		if (atomic_load(&sh->refs) == 0) {
			*p = sh->next;
			share_free(cl, sh);
		} else {
			p = &sh->next;
		}
	}
}

/* No node holds <sh> any more, and it is out of the index (no worker finds
 * it there again): it moves to the retired list, freed once unused. */
static void share_retire(struct cluster *cl, struct cluster_share *sh)
{
	struct cluster_share **p = &cl->share_list;

	while (*p != sh)
		p = &(*p)->next;
	*p = sh->next;
	sh->next = cl->share_retired;
	cl->share_retired = sh;
	shares_sweep(cl);
}

/* Whether <topic> is one share <sh> may carry: its inner filter matches. */
static bool share_carries(const struct cluster_share *sh, struct moat_bytes topic)
{
	struct moat_bytes group, inner;

	return topic_share_parse((struct moat_bytes){sh->filter, sh->len}, &group, &inner) ==
		   MOAT_OK &&
	       topic_matches(inner, topic);
}

/* A message of a share this node is a member of (a NATS thread): handed to
 * worker 0 for one member of the share. One whose topic the share's filter
 * does not match (injected into NATS) is acknowledged and dropped. */
static void on_share_msg(natsConnection *nc, natsSubscription *sub, natsMsg *nm, void *closure)
{
	struct cluster_share *sh = closure;
	struct moat_bytes node;
	struct msg *m = NULL;
	const char *why = NULL;
	int rc = cluster_decode(nm, &node, &m, &why);

	(void)nc;
	(void)sub;
	if (rc == MOAT_OK && share_carries(sh, m->topic)) {
		struct inbox_item item = {
		    .msg = m, .cluster_ack = nm, .share = {sh->filter, sh->len}};

		share_ref(sh); /* worker 0 lets go of it (cluster_share_done) */
		if (cluster_route_post(sh->cl, &sh->cl->b->workers[0], &item))
			return;
		cluster_share_unref(sh);
		log_warn("cluster: out of memory: a message of %.*s comes again later",
			 (int)sh->len, (const char *)sh->filter);
		msg_unref(m);
	} else if (rc == MOAT_OK || rc == MOAT_E_MALFORMED) {
		if (log_limiter_allow(&drop_log, 10, 60))
			log_warn("cluster: dropped a message on %s: %s", natsMsg_GetSubject(nm),
				 rc == MOAT_OK ? "its topic is not one of the share's" : why);
		msg_unref(m);
		natsMsg_Ack(nm, NULL);
	}
	natsMsg_Destroy(nm);
}

void cluster_share_done(struct moat_bytes share)
{
	/* on_share_msg's item names the filter of the share it holds */
	cluster_share_unref(
	    (struct cluster_share *)(share.ptr - offsetof(struct cluster_share, filter)));
}

void cluster_refuse(void *cluster_ack)
{
	if (log_limiter_allow(&refuse_log, 1, 60))
		log_info("cluster: a share's message came after its last member here left (%s); "
			 "another node takes it",
			 natsMsg_GetSubject(cluster_ack));
	natsMsg_NakWithDelay(cluster_ack, REFUSE_DELAY_MS, NULL);
	natsMsg_Destroy(cluster_ack);
}

/* Whether <sh> may describe its consumer: nats.c writes the description
 * into a JSON request unescaped, so only bytes that need no escaping. */
static bool describable(const struct cluster_share *sh)
{
	static const char safe[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
				   "0123456789/_+#$-";

	for (size_t i = 0; i < sh->len; i++)
		if (sh->filter[i] == '\0' || strchr(safe, sh->filter[i]) == NULL)
			return false;
	return true;
}

/* NATS will not call on_share_msg for <closure>'s subscription any more. */
static void on_share_sub_closed(void *closure)
{
	cluster_share_unref(closure);
}

/* This node holds <sh> now: it joins the share's queue group, creating the
 * consumer unless another node (or a past run) did. */
static void join(struct cluster *cl, struct cluster_share *sh)
{
	char durable[CLUSTER_SHARE_ID_LEN + 8], deliver[sizeof(cl->share_deliver) + sizeof(sh->id)];
	char filter[sizeof(cl->share_prefix) + sizeof(sh->id) + 2];
	char *description = describable(sh) ? strndup((const char *)sh->filter, sh->len) : NULL;
	jsConsumerConfig cc;
	jsSubOptions so;
	jsErrCode jerr = 0;
	natsStatus s;

	snprintf(durable, sizeof(durable), "share-%s", sh->id);
	snprintf(deliver, sizeof(deliver), "%s%s", cl->share_deliver, sh->id);
	snprintf(filter, sizeof(filter), "%s%s.>", cl->share_prefix, sh->id);
	jsConsumerConfig_Init(&cc);
	cc.Durable = durable;
	cc.Description = description; /* the share, for moat ctl cluster status (NULL: none) */
	cc.DeliverSubject = deliver;
	cc.DeliverGroup = durable;
	cc.FilterSubject = filter;
	cc.AckPolicy = js_AckExplicit;
	cc.DeliverPolicy = js_DeliverAll;
	cc.InactiveThreshold = SHARE_IDLE_NS;
	/* already there (same configuration) is fine: the subscription binds */
	js_AddConsumer(NULL, cl->js, cl->share_stream, &cc, NULL, &jerr);
	free(description);
	jsSubOptions_Init(&so);
	so.Stream = cl->share_stream;
	so.Consumer = durable;
	so.Queue = durable;
	so.ManualAck = true;
	share_ref(sh); /* the subscription's, until on_share_sub_closed */
	s = js_Subscribe(&sh->sub, cl->js, filter, on_share_msg, sh, NULL, &so, &jerr);
	/* not set (the subscription closed at once, the connection with it):
	 * the reference stays, and the share with it until the cluster stops */
	if (s == NATS_OK)
		natsSubscription_SetOnCompleteCB(sh->sub, on_share_sub_closed, sh);
	atomic_store(&sh->join_failed, s != NATS_OK);
	if (s != NATS_OK) {
		cluster_share_unref(sh);
		sh->sub = NULL;
		log_warn("cluster: cannot join the share %.*s (consumer %s): %s (JetStream error "
			 "%d); this node's messages go to its members here directly until this "
			 "node's subscriptions change (then it tries again)",
			 (int)sh->len, (const char *)sh->filter, durable, natsStatus_GetText(s),
			 (int)jerr);
	}
}

/* This node no longer holds <sh>: it leaves the queue group (the consumer
 * stays for the other members; JetStream deletes it when none is left). */
static void leave(struct cluster_share *sh)
{
	atomic_store(&sh->join_failed, false);
	if (sh->sub == NULL)
		return;
	natsSubscription_Unsubscribe(sh->sub);
	natsSubscription_Destroy(sh->sub);
	sh->sub = NULL;
}

void cluster_shares_recheck(struct cluster *cl)
{
	shares_sweep(cl);
	if (!atomic_exchange(&cl->shares_recheck, false))
		return;
	for (struct cluster_share *sh = cl->share_list; sh != NULL; sh = sh->next) {
		char durable[CLUSTER_SHARE_ID_LEN + 8];
		jsConsumerInfo *ci = NULL;
		jsErrCode jerr = 0;
		natsStatus s;

		if (sh->sub == NULL)
			continue;
		snprintf(durable, sizeof(durable), "share-%s", sh->id);
		s = js_GetConsumerInfo(&ci, cl->js, cl->share_stream, durable, NULL, &jerr);
		jsConsumerInfo_Destroy(ci);
		if (s == NATS_NOT_FOUND || jerr == JSConsumerNotFoundErr) {
			log_notice("cluster: the share %.*s's consumer %s was gone (JetStream "
				   "deleted it while no node was subscribed); joining it again",
				   (int)sh->len, (const char *)sh->filter, durable);
			leave(sh);
			join(cl, sh);
		} else if (s != NATS_OK) {
			atomic_store(&cl->shares_recheck, true); /* JetStream not ready yet */
			return;
		}
	}
}

static bool holders_add(struct cluster_share *sh, const void *node)
{
	for (size_t i = 0; i < sh->holders_n; i++)
		if (sh->holders[i] == node)
			return true;
	if (sh->holders_n == sh->holders_cap) {
		size_t cap = sh->holders_cap ? sh->holders_cap * 2 : 4;
		const void **v = realloc(sh->holders, cap * sizeof(*v));

		if (v == NULL)
			return false;
		sh->holders = v;
		sh->holders_cap = cap;
	}
	sh->holders[sh->holders_n++] = node;
	return true;
}

static void holders_del(struct cluster_share *sh, const void *node)
{
	for (size_t i = 0; i < sh->holders_n; i++)
		if (sh->holders[i] == node) {
			sh->holders[i] = sh->holders[--sh->holders_n];
			return;
		}
}

void cluster_share_seen(struct cluster *cl, const void *node, bool here, struct moat_bytes f,
			bool add)
{
	struct cluster_share *sh = share_find(cl, f);
	struct moat_bytes group, inner;
	struct sub_entry e;

	if (topic_share_parse(f, &group, &inner) != MOAT_OK)
		return;
	if (sh == NULL && add)
		sh = share_new(cl, f);
	if (sh == NULL) {
		if (add)
			log_warn("cluster: out of memory: the share %.*s is not known here",
				 (int)f.len, (const char *)f.ptr);
		return;
	}
	e = (struct sub_entry){.owner = sh};
	if (add) {
		/* joined first: this node's messages reach the share once it has
		 * a consumer, and its members here directly until then */
		if (here && sh->sub == NULL)
			join(cl, sh);
		if (!holders_add(sh, node) ||
		    (sh->holders_n == 1 && subidx_add(cl->shares, inner, &e, NULL) < 0))
			log_warn("cluster: the share %.*s is not usable here", (int)f.len,
				 (const char *)f.ptr);
	} else {
		if (here)
			leave(sh);
		holders_del(sh, node);
	}
	if (sh->holders_n == 0) {
		leave(sh);
		subidx_remove(cl->shares, inner, sh);
		share_retire(cl, sh);
	}
}

static struct log_limiter match_log;

static void on_match(void *ctx, const struct sub_entry *e, struct moat_bytes shared)
{
	struct share_set *out = ctx;
	struct cluster_share *sh = e->owner;

	(void)shared;
	if (atomic_load_explicit(&sh->join_failed, memory_order_relaxed))
		return;
	if (out->n == out->cap) {
		size_t cap = out->cap ? out->cap * 2 : 16;
		struct cluster_share **v = realloc(out->v, cap * sizeof(*v));

		if (v == NULL) {
			if (log_limiter_allow(&match_log, 1, 60))
				log_warn("cluster: out of memory: a message goes to the members of "
					 "some shares on this node only");
			return;
		}
		out->v = v;
		out->cap = cap;
	}
	share_ref(sh); /* under the index's read lock: not retired yet */
	out->v[out->n++] = sh;
}

void cluster_share_set_clear(struct share_set *set)
{
	for (size_t i = 0; i < set->n; i++)
		cluster_share_unref(set->v[i]);
	set->n = 0;
}

void cluster_shares_matching(struct cluster *cl, struct moat_bytes topic, struct share_set *out)
{
	cluster_share_set_clear(out);
	subidx_match(cl->shares, topic, on_match, NULL, out);
}

static void on_count(void *ctx, const struct sub_entry *e, struct moat_bytes shared)
{
	const struct cluster_share *sh = e->owner;

	(void)shared;
	if (!atomic_load_explicit(&sh->join_failed, memory_order_relaxed))
		++*(size_t *)ctx;
}

size_t cluster_shares_count(struct cluster *cl, struct moat_bytes topic)
{
	size_t n = 0;

	subidx_match(cl->shares, topic, on_count, NULL, &n);
	return n;
}

bool cluster_share_exported(struct worker *w, struct moat_bytes shared)
{
	const struct share_set *sent;

	if (w->b->cluster == NULL)
		return false;
	sent = &w->b->cluster->w[w->id].shares;
	for (size_t i = 0; i < sent->n; i++)
		if (sent->v[i]->len == shared.len &&
		    memcmp(sent->v[i]->filter, shared.ptr, shared.len) == 0)
			return true;
	return false;
}

int cluster_shares_init(struct cluster *cl, char *err, size_t errlen)
{
	snprintf(cl->share_stream, sizeof(cl->share_stream), "%s_shares", cl->name);
	snprintf(cl->share_prefix, sizeof(cl->share_prefix), "%s.g.", cl->name);
	snprintf(cl->share_deliver, sizeof(cl->share_deliver), "%s.gd.", cl->name);
	cl->shares = subidx_create(cl->b->cfg->max_topic_levels);
	if (cl->shares == NULL) {
		snprintf(err, errlen, "cluster: out of memory");
		return MOAT_E_NOMEM;
	}
	return MOAT_OK;
}

int cluster_shares_start(struct cluster *cl, char *err, size_t errlen)
{
	char all[sizeof(cl->share_prefix) + 1];
	const char *subjects[1] = {all};
	jsStreamConfig sc;
	jsErrCode jerr = 0;
	natsStatus s;

	snprintf(all, sizeof(all), "%s>", cl->share_prefix);
	jsStreamConfig_Init(&sc);
	sc.Name = cl->share_stream;
	sc.Subjects = subjects;
	sc.SubjectsLen = 1;
	sc.Storage = js_FileStorage;
	sc.Retention = js_WorkQueuePolicy;
	sc.MaxAge = SHARE_MAX_AGE_NS;
	sc.Duplicates = CLUSTER_DUPLICATE_WINDOW_NS;
	sc.Replicas = cluster_replicas(cl);
	s = js_AddStream(NULL, cl->js, &sc, NULL, &jerr);
	if (s != NATS_OK && jerr == JSStreamNameExistErr)
		s = js_GetStreamInfo(NULL, cl->js, cl->share_stream, NULL, &jerr);
	if (s != NATS_OK) {
		snprintf(err, errlen,
			 "cluster: cannot create the shares' stream %s: %s (JetStream error %d)",
			 cl->share_stream, natsStatus_GetText(s), (int)jerr);
		return MOAT_E_IO;
	}
	return MOAT_OK;
}

void cluster_shares_stop(struct cluster *cl)
{
	for (struct cluster_share *sh = cl->share_list; sh != NULL; sh = sh->next) {
		natsSubscription_Destroy(
		    sh->sub); /* closed with the connection: the consumer stays */
		sh->sub = NULL;
	}
}

void cluster_shares_fini(struct cluster *cl)
{
	struct cluster_share *lists[] = {cl->share_list, cl->share_retired};

	for (size_t i = 0; i < sizeof(lists) / sizeof(lists[0]); i++)
		while (lists[i] != NULL) {
			struct cluster_share *sh = lists[i];

			lists[i] = sh->next;
			share_free(cl, sh);
		}
	cl->share_list = cl->share_retired = NULL;
	subidx_destroy(cl->shares);
	cl->shares = NULL;
}
