/*
 * The new owner's side of a handover (docs/cluster.md, "Sessions"): a
 * message another node handed over with a session (handover.h) arrives on
 * this node's stream subject. A NATS thread finds the session and posts the
 * message to its owner worker; the worker admits it into the session only
 * as the session's own subscriptions would have delivered it (anyone who
 * may publish on NATS can send such a message), then acknowledges it once
 * it is in the session (and durable, ack.c). A message whose session the
 * sessions bucket says moved on to another node (A -> B -> C in quick
 * succession) is forwarded there through the outbound queue, in order (the
 * owner read once per session and second, 1 s at most), and acknowledged
 * once its store record is durable, without waiting for it; one whose
 * session is not here otherwise (it ended, or is on its way here), or that
 * comes while the node stops, is refused (NAK) and comes again, a few
 * times.
 */
#include "cluster/cluster_int.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <moat/error.h>

#include "base/clock.h"
#include "base/log.h"
#include "broker/broker.h"
#include "broker/persist.h"
#include "broker/security.h"
#include "codec/topic.h"
#include "cluster/handover.h"
#include "cluster/subject.h"
#include "cluster/wire.h"
#include "store/store.h"

/* How long, and how many times, a handed-over message whose session is not
 * here waits for it. How long one forwarded from the stream's thread waits
 * for the workers to take those posted to them before it. How long the
 * owner the sessions bucket named for a session is trusted (a burst of
 * messages for it asks once). How long a stop waits for the owner lookups
 * under way (each waits for the bucket 1 s at most). */
enum {
	HANDOVER_RETRY_MS = 1000,
	HANDOVER_TRIES = 10,
	FORWARD_SETTLE_MS = 2000,
	OWNER_TRUSTED_MS = 1000,
	FORWARDS_END_MS = 2000
};

static struct log_limiter handover_log;

/* Refuses <nm>, handed over for session <who> that is not here (it ended,
 * or moved on): JetStream sends it again HANDOVER_RETRY_MS later, up to
 * HANDOVER_TRIES deliveries (it may come back); then it is dropped
 * (logged). */
static void not_here(natsMsg *nm, struct moat_bytes who)
{
	jsMsgMetaData *meta = NULL;
	bool again = natsMsg_GetMetaData(&meta, nm) == NATS_OK &&
		     meta->NumDelivered < HANDOVER_TRIES &&
		     natsMsg_NakWithDelay(nm, HANDOVER_RETRY_MS, NULL) == NATS_OK;

	jsMsgMetaData_Destroy(meta);
	if (!again) {
		if (log_limiter_allow(&handover_log, 10, 10))
			log_warn("cluster: dropped a message handed over for session %.*s: no "
				 "such session here (it ended, or moved on)",
				 (int)who.len, (const char *)who.ptr);
		natsMsg_Ack(nm, NULL);
	}
	natsMsg_Destroy(nm);
}

void cluster_forwarded_release(struct cluster *cl)
{
	uint64_t durable = cl->b->store != NULL ? store_durable(cl->b->store) : UINT64_MAX;
	size_t done = 0;

	pthread_mutex_lock(&cl->owner_lock);
	while (done < cl->forwarded_n && cl->forwarded[done].gate <= durable) {
		natsMsg_Ack(cl->forwarded[done].msg, NULL);
		natsMsg_Destroy(cl->forwarded[done].msg);
		done++;
	}
	if (done > 0) {
		cl->forwarded_n -= done;
		memmove(cl->forwarded, cl->forwarded + done,
			cl->forwarded_n * sizeof(*cl->forwarded));
	}
	pthread_mutex_unlock(&cl->owner_lock);
}

void cluster_forwarded_fini(struct cluster *cl)
{
	pthread_mutex_lock(&cl->owner_lock);
	for (size_t i = 0; i < cl->forwarded_n; i++)
		natsMsg_Destroy(cl->forwarded[i].msg);
	free(cl->forwarded);
	cl->forwarded = NULL;
	cl->forwarded_n = cl->forwarded_cap = 0;
	pthread_mutex_unlock(&cl->owner_lock);
}

/* <nm>, forwarded by the stream's thread with its record in store batch
 * <ticket> (0: none), is acknowledged once that is durable: now, or by
 * cluster_forwarded_release. Destroyed unacknowledged (it comes again)
 * when the cluster stops or memory is short. */
static void ack_when_durable(struct cluster *cl, natsMsg *nm, uint64_t ticket)
{
	bool kept = false;

	if (ticket == 0 || store_durable(cl->b->store) >= ticket) {
		natsMsg_Ack(nm, NULL);
		natsMsg_Destroy(nm);
		return;
	}
	pthread_mutex_lock(&cl->owner_lock);
	if (!atomic_load(&cl->stop_begun) && cl->forwarded_n == cl->forwarded_cap) {
		size_t cap = cl->forwarded_cap ? cl->forwarded_cap * 2 : 64;
		struct pending_ack *v = realloc(cl->forwarded, cap * sizeof(*v));

		if (v != NULL) {
			cl->forwarded = v;
			cl->forwarded_cap = cap;
		}
	}
	if (!atomic_load(&cl->stop_begun) && cl->forwarded_n < cl->forwarded_cap) {
		cl->forwarded[cl->forwarded_n++] = (struct pending_ack){ticket, nm};
		kept = true;
	}
	pthread_mutex_unlock(&cl->owner_lock);
	if (!kept)
		natsMsg_Destroy(nm);
}

/* Waits (FORWARD_SETTLE_MS at most, not once the cluster stops: the
 * workers have) until the workers have taken every handed-over message
 * posted to them so far (cluster_handover_admit). */
static void settled_soon(struct cluster *cl)
{
	uint64_t posted = atomic_load(&cl->handover_posted);
	uint64_t deadline = clock_mono_ms() + FORWARD_SETTLE_MS;

	while (atomic_load(&cl->handover_settled) < posted && clock_mono_ms() < deadline &&
	       !atomic_load(&cl->stop_begun))
		usleep(1000);
}

/* cluster_session_owner, its answer (also "no answer") kept for the same
 * <key> OWNER_TRUSTED_MS: many messages for one session wait for the
 * bucket once, 1 s at most. */
static int owner_of(struct cluster *cl, struct moat_bytes key, char owner[CLUSTER_NODE_MAX + 1])
{
	int rc;

	pthread_mutex_lock(&cl->owner_lock);
	if (clock_mono_ms() < cl->owner_until_ms && buf_used(&cl->owner_key) == key.len &&
	    memcmp(buf_head(&cl->owner_key), key.ptr, key.len) == 0) {
		rc = cl->owner_rc;
		memcpy(owner, cl->owner, sizeof(cl->owner));
		pthread_mutex_unlock(&cl->owner_lock);
		return rc;
	}
	pthread_mutex_unlock(&cl->owner_lock);
	/* counted before stop_begun is read: cluster_stop sets it, then waits
	 * for the count (cluster_forwards_end), then frees the handles */
	atomic_fetch_add(&cl->owner_lookups, 1);
	rc = atomic_load(&cl->stop_begun) ? MOAT_E_IO : cluster_session_owner(cl, key, owner);
	atomic_fetch_sub(&cl->owner_lookups, 1);
	if (rc != MOAT_OK)
		owner[0] = '\0';
	pthread_mutex_lock(&cl->owner_lock);
	buf_consume(&cl->owner_key, buf_used(&cl->owner_key));
	cl->owner_until_ms = 0;
	if (buf_append(&cl->owner_key, key.ptr, key.len) == 0) {
		cl->owner_rc = rc;
		memcpy(cl->owner, owner, sizeof(cl->owner));
		cl->owner_until_ms = clock_mono_ms() + OWNER_TRUSTED_MS;
	}
	pthread_mutex_unlock(&cl->owner_lock);
	return rc;
}

bool cluster_forwards_end(struct cluster *cl)
{
	uint64_t deadline = clock_mono_ms() + FORWARDS_END_MS;

	while (atomic_load(&cl->owner_lookups) > 0) {
		if (clock_mono_ms() >= deadline) {
			log_err("cluster: a forwarded message's owner lookup did not end in %d ms; "
				"leaving the cluster's memory to it",
				FORWARDS_END_MS);
			return false;
		}
		usleep(1000);
	}
	return true;
}

/* When the sessions bucket names another node, <owner>, as the owner of
 * the session of <key> now (its client moved on again): that node's stream
 * subject for <topic> in <subject> (true). False when it names this node
 * or none, did not answer, or the cluster stops. */
static bool moved_on(struct cluster *cl, struct moat_bytes key, struct moat_bytes topic,
		     struct buf *subject, char owner[CLUSTER_NODE_MAX + 1])
{
	return !atomic_load(&cl->stop_begun) && owner_of(cl, key, owner) == MOAT_OK &&
	       strcmp(owner, cl->node) != 0 &&
	       cluster_subject(subject, cl->msg_prefix, owner, topic) == MOAT_OK;
}

static void log_forwarded(struct moat_bytes key, const char *owner)
{
	if (log_limiter_allow(&handover_log, 10, 10))
		log_info("cluster: forwarded a message handed over for session %.*s to node %s, "
			 "where it is now",
			 (int)key.len, (const char *)key.ptr, owner);
}

/* Forwards <nm> (the stream's thread), handed over for the session of
 * <key> (a message on <topic>) that is not here, when its session moved on
 * (moved_on): queued for that node's stream subject (outbound.c: behind
 * what came before, kept until JetStream stored it), acknowledged once its
 * record is durable (ack_when_durable). False (nothing done) otherwise. */
static bool forward(struct cluster *cl, natsMsg *nm, struct moat_bytes key, struct moat_bytes topic)
{
	struct moat_bytes data = {(const uint8_t *)natsMsg_GetData(nm),
				  (size_t)natsMsg_GetDataLength(nm)};
	char owner[CLUSTER_NODE_MAX + 1];
	struct buf subject = {0};
	uint64_t ticket = 0;
	bool sent = moved_on(cl, key, topic, &subject, owner) &&
		    cluster_outbound_forward(cl, (const char *)buf_head(&subject), data, &ticket) ==
			MOAT_OK;

	buf_fini(&subject);
	if (!sent)
		return false;
	log_forwarded(key, owner);
	ack_when_durable(cl, nm, ticket);
	cluster_forwarded_release(cl); /* those before it, durable now */
	return true;
}

/* forward, from worker <w>: queued in <w>'s pass (its record in <w>'s
 * batch), acknowledged once that is durable (ack.c), without waiting. */
static bool forward_from(struct worker *w, natsMsg *nm, struct moat_bytes key,
			 struct moat_bytes topic)
{
	struct cluster *cl = w->b->cluster;
	char owner[CLUSTER_NODE_MAX + 1];
	struct buf subject = {0}, data = {0};
	uint32_t mark = persist_mark(w);
	bool sent =
	    moved_on(cl, key, topic, &subject, owner) &&
	    buf_append(&data, natsMsg_GetData(nm), (size_t)natsMsg_GetDataLength(nm)) == 0 &&
	    cluster_outbound_push_handover(w, (const char *)buf_head(&subject), &data) == MOAT_OK;

	buf_fini(&subject);
	buf_fini(&data);
	if (!sent)
		return false;
	log_forwarded(key, owner);
	cluster_routed(w, nm, mark);
	return true;
}

bool cluster_session_message(struct cluster *cl, natsMsg *nm)
{
	struct moat_bytes data = {(const uint8_t *)natsMsg_GetData(nm),
				  (size_t)natsMsg_GetDataLength(nm)};
	struct inbox_item item = {.cluster_ack = nm};
	struct handover h;
	struct moat_bytes node;
	const char *why = NULL;
	struct buf id = {0};
	int rc;

	if (!handover_is(data))
		return false;
	rc = handover_decode(data, &h, &why);
	if (rc == MOAT_OK && (rc = subject_to_topic(&id, h.key)) == MOAT_E_MALFORMED)
		why = "its session key is not a client id's subject tokens";
	if (rc == MOAT_OK)
		rc = wire_decode(h.wire, &node, &item.msg, &why);
	if (rc != MOAT_OK) {
		buf_fini(&id);
		if (rc == MOAT_E_MALFORMED) { /* else out of memory: it comes again */
			if (log_limiter_allow(&handover_log, 10, 10))
				log_warn(
				    "cluster: dropped a malformed handed-over message on %s: %s",
				    natsMsg_GetSubject(nm), why);
			natsMsg_Ack(nm, NULL);
		}
		natsMsg_Destroy(nm);
		return true;
	}
	item.qos = h.qos;
	item.retain = h.retain;
	item.sub_id_count = h.sub_id_count;
	memcpy(item.sub_ids, h.sub_ids, sizeof(item.sub_ids));
	item.sess = sess_find_ref(cl->b, (struct moat_bytes){buf_head(&id), buf_used(&id)});
	buf_fini(&id);
	if (item.sess == NULL) {
		/* the messages posted before it go first: into the session, handed
		 * over with it, or forwarded by its worker (order) */
		settled_soon(cl);
		if (!forward(cl, nm, h.key, item.msg->topic))
			not_here(nm, h.key);
		msg_unref(item.msg);
		return true;
	}
	/* its owner acknowledges it once it is in the session (and durable) */
	atomic_fetch_add_explicit(&item.sess->backlog, 1, memory_order_relaxed);
	atomic_fetch_add(&cl->handover_posted, 1);
	if (!cluster_route_post(cl, item.sess->owner, &item)) {
		/* inbox full, or stopping: not acknowledged, JetStream sends it again */
		atomic_fetch_sub(&cl->handover_posted, 1);
		atomic_fetch_sub_explicit(&item.sess->backlog, 1, memory_order_relaxed);
		sess_unref(item.sess);
		msg_unref(item.msg);
		natsMsg_Destroy(nm);
	}
	return true;
}

/* Whether subscription <x> (plain or shared) matches <topic>. */
static bool sub_matches(const struct sub *x, struct moat_bytes topic)
{
	struct moat_bytes f = {x->filter, x->len}, group, inner;

	if (topic_share_parse(f, &group, &inner) == MOAT_OK)
		f = inner;
	return topic_matches(f, topic);
}

/* The highest QoS of <s>'s subscriptions matching <topic> (-1: none); of
 * the <*n> identifiers in <ids>, keeps only those of such a subscription. */
static int granted_qos(const struct session *s, struct moat_bytes topic, uint32_t *ids, uint8_t *n)
{
	int granted = -1;
	uint8_t kept = 0;

	for (const struct sub *x = s->subs; x != NULL; x = x->next)
		if (x->opts.qos > granted && sub_matches(x, topic))
			granted = x->opts.qos;
	for (uint8_t i = 0; i < *n; i++) {
		const struct sub *x = s->subs;

		while (x != NULL && (x->sub_id != ids[i] || !sub_matches(x, topic)))
			x = x->next;
		if (x != NULL)
			ids[kept++] = ids[i];
	}
	*n = kept;
	return granted;
}

/* <item>'s session ended or moved on since it was posted here: forwarded
 * to where the bucket says it is now (worker <w> waits for the bucket, 1 s
 * at most, once per session and second), else refused (not_here). */
static void gone_meanwhile(struct worker *w, struct inbox_item *item)
{
	const struct session *s = item->sess;
	struct buf key = {0};

	if (subject_from_topic(&key, moat_bytes_str(s->client_id)) != MOAT_OK ||
	    !forward_from(w, item->cluster_ack, (struct moat_bytes){buf_head(&key), buf_used(&key)},
			  item->msg->topic))
		not_here(item->cluster_ack, moat_bytes_str(s->client_id));
	buf_fini(&key);
	item->cluster_ack = NULL;
}

/* cluster_handover_admit, but for its count of settled messages. */
static bool admit(struct worker *w, struct inbox_item *item, uint8_t *qos)
{
	struct session *s = item->sess;
	struct moat_bytes topic = item->msg->topic;
	const char *why;
	int granted;

	if (s->dead) {
		gone_meanwhile(w, item);
		return false;
	}
	granted = granted_qos(s, topic, item->sub_ids, &item->sub_id_count);
	if (granted >= 0 && authz_session(w, s, topic, ACCESS_READ)) {
		*qos = item->qos < granted ? item->qos : (uint8_t)granted;
		return true;
	}
	why = granted < 0 ? "it matches none of the session's subscriptions"
			  : "the session may not read its topic";
	if (log_limiter_allow(&handover_log, 10, 10))
		log_warn("cluster: dropped a message handed over for session %s: %s", s->client_id,
			 why);
	cluster_routed(w, item->cluster_ack, persist_mark(w));
	item->cluster_ack = NULL;
	return false;
}

bool cluster_handover_admit(struct worker *w, struct inbox_item *item, uint8_t *qos)
{
	bool admitted = admit(w, item, qos);

	atomic_fetch_add(&w->b->cluster->handover_settled, 1);
	return admitted;
}
