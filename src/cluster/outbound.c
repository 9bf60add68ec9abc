/*
 * Degraded mode's outbound queue (docs/cluster.md, "When NATS is
 * unreachable"): while NATS is unreachable, and then until the queue has
 * drained (so a publisher's order holds), the copies a node exports wait in
 * an outq, up to cluster_queue_max_bytes. With persistence on each copy is
 * also a store record ([C][sequence]) written in the exporting worker's
 * batch, so the PUBLISH's answer leaves once it is durable and a restarted
 * node sends it. A drain thread sends the queue in order while connected;
 * an entry leaves (and its record is deleted) only once JetStream has
 * acknowledged storing it.
 */
#include "cluster/cluster_int.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <moat/error.h>

#include "base/clock.h"
#include "base/log.h"
#include "base/text.h"
#include "broker/broker.h"
#include "broker/persist.h"
#include "broker/record.h"
#include "cluster/handover.h"
#include "cluster/subject.h"
#include "cluster/wire.h"

/* Copies sent and not acknowledged at once; how long a refused copy waits
 * before it is sent again; how often the queue looks whether the copies sent
 * before a disconnect are settled; the longest the drain thread sleeps
 * unwoken; how often it acknowledges the messages the stream's thread
 * forwarded whose records are durable now, idle or busy. A node that stops
 * waits for the queue to drain as long as its stop may wait for NATS
 * (cluster_stop_wait_ms). */
enum {
	DRAIN_WINDOW = 1024,
	REFUSED_PAUSE_MS = 100,
	SETTLE_POLL_MS = 20,
	PUBLISH_WAIT_MS = 5000,
	IDLE_WAIT_MS = 1000,
	RELEASE_MS = 1000
};

/* What a copy of a <topic_len>, <payload_len> message may take in the queue
 * at most, for refusing before routing: its subject (up to 3 bytes per
 * topic byte, plus the prefix and a node name) and its wire bytes (the
 * topic and payload again, the record's fields and properties; larger
 * properties than this allows for are refused later, by closing the
 * publisher without its answer). */
#define ENTRY_BYTES_MAX(topic_len, payload_len)                                                    \
	(6 * (uint64_t)(topic_len) + (uint64_t)(payload_len) + 1024u)

static struct log_limiter dropped_log, refused_log, restore_log;

/* Waits on the queue's condition at most <ms> (under out->lock). */
static void wait_ms(struct cluster_outbound *out, uint64_t ms)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	ts.tv_sec += (time_t)(ms / 1000);
	ts.tv_nsec += (long)(ms % 1000) * 1000000L;
	if (ts.tv_nsec >= 1000000000L) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	}
	pthread_cond_timedwait(&out->wake, &out->lock, &ts);
}

/* Whether every QoS 1/2 copy sent directly before the last disconnect is
 * stored or given up (under out->lock): until then the queue waits, so
 * that one of them, sent again, cannot land behind newer copies of its
 * publisher. */
static bool direct_copies_settled(struct cluster *cl)
{
	if (!cl->out.after_disconnect)
		return true;
	for (unsigned i = 0; i < cl->b->nworkers; i++)
		if (atomic_load(&cl->w[i].stored) < cl->w[i].drain_after)
			return false;
	cl->out.after_disconnect = false;
	return true;
}

/* The next entry to send as a NATS message, its number in <*seq> (under
 * out->lock), or NULL. */
static natsMsg *next_message(struct cluster *cl, uint64_t *seq)
{
	struct cluster_outbound *out = &cl->out;
	const struct outq_entry *e;
	natsMsg *nm = NULL;
	char header[48], id[CLUSTER_NODE_MAX + 24];

	if (!atomic_load(&cl->joined) || !atomic_load(&cl->connected) ||
	    clock_mono_ms() < out->pause_until)
		return NULL;
	if (!direct_copies_settled(cl)) {
		out->pause_until = clock_mono_ms() + SETTLE_POLL_MS;
		return NULL;
	}
	e = outq_take(&out->q, DRAIN_WINDOW);
	if (e == NULL)
		return NULL;
	snprintf(header, sizeof(header), "%" PRIu64 " %" PRIu64, e->seq, out->gen);
	snprintf(id, sizeof(id), "%s.q%" PRIu64, cl->node, e->seq);
	if (natsMsg_Create(&nm, e->subject, NULL, (const char *)e->data, (int)e->len) != NATS_OK ||
	    natsMsgHeader_Set(nm, CLUSTER_QUEUE_HEADER, header) != NATS_OK ||
	    natsMsgHeader_Set(nm, CLUSTER_MSG_ID_HEADER, id) != NATS_OK) {
		natsMsg_Destroy(nm);
		outq_unsent(&out->q, e->seq);
		out->pause_until = clock_mono_ms() + REFUSED_PAUSE_MS; /* out of memory */
		return NULL;
	}
	*seq = e->seq;
	return nm;
}

/* Sends the queue, oldest first, while the link is up. */
static void *drain(void *arg)
{
	struct cluster *cl = arg;
	struct cluster_outbound *out = &cl->out;
	jsPubOptions po;
	uint64_t release_at = 0;

	jsPubOptions_Init(&po);
	po.MaxWait = PUBLISH_WAIT_MS;
	pthread_mutex_lock(&out->lock);
	while (!out->stopping) {
		uint64_t seq = 0, now = clock_mono_ms();
		natsMsg *nm;

		if (now >= release_at) {
			pthread_mutex_unlock(&out->lock);
			cluster_forwarded_release(cl);
			pthread_mutex_lock(&out->lock);
			release_at = now + RELEASE_MS;
		}
		nm = next_message(cl, &seq);
		if (nm == NULL) {
			wait_ms(out,
				out->pause_until > now ? out->pause_until - now : IDLE_WAIT_MS);
			continue;
		}
		pthread_mutex_unlock(&out->lock);
		if (js_PublishMsgAsync(cl->js, &nm, &po) != NATS_OK) {
			natsMsg_Destroy(nm);
			pthread_mutex_lock(&out->lock);
			outq_unsent(&out->q, seq);
			out->pause_until = clock_mono_ms() + REFUSED_PAUSE_MS;
			continue;
		}
		pthread_mutex_lock(&out->lock);
	}
	pthread_mutex_unlock(&out->lock);
	return NULL;
}

void cluster_outbound_init(struct cluster *cl, uint64_t max_bytes)
{
	struct cluster_outbound *out = &cl->out;
	pthread_condattr_t ca;

	outq_init(&out->q, max_bytes);
	/* entry numbers are this node's ids of its queued copies (Nats-Msg-Id):
	 * the same every time one is sent, across restarts too (its store
	 * record keeps it), and never used again: a run numbers from the wall
	 * clock in microseconds, above what its store gives back */
	out->q.next_seq = cl->run;
	pthread_mutex_init(&out->lock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&out->wake, &ca);
	pthread_condattr_destroy(&ca);
}

int cluster_outbound_start(struct cluster *cl, char *err, size_t errlen)
{
	struct cluster_outbound *out = &cl->out;

	if (pthread_create(&out->thread, NULL, drain, cl) != 0) {
		snprintf(err, errlen, "cluster: cannot start the outbound queue's thread");
		return MOAT_E_NOMEM;
	}
	out->running = true;
	return MOAT_OK;
}

void cluster_outbound_stop(struct cluster *cl)
{
	struct cluster_outbound *out = &cl->out;

	uint64_t deadline = clock_mono_ms() + (uint64_t)cluster_stop_wait_ms(cl);
	const struct outq_entry *front;

	if (!out->running)
		return;
	pthread_mutex_lock(&out->lock);
	/* connected: what can go (not held for a batch never submitted now) goes */
	while (atomic_load(&cl->connected) && (front = outq_front(&out->q)) != NULL &&
	       front->holder == 0 && clock_mono_ms() < deadline)
		wait_ms(out, deadline - clock_mono_ms());
	out->stopping = true;
	pthread_cond_signal(&out->wake);
	pthread_mutex_unlock(&out->lock);
	pthread_join(out->thread, NULL);
	out->running = false;
	if (!outq_empty(&out->q))
		log_warn("cluster: %zu copies for other nodes were not sent%s", out->q.n,
			 cl->b->store != NULL ? "; they are in the store and go at the next start"
					      : " and are lost (persistence is off)");
}

void cluster_outbound_fini(struct cluster *cl)
{
	struct cluster_outbound *out = &cl->out;

	outq_fini(&out->q);
	buf_fini(&out->key);
	buf_fini(&out->val);
	pthread_cond_destroy(&out->wake);
	pthread_mutex_destroy(&out->lock);
}

bool cluster_outbound_wanted(struct cluster *cl)
{
	bool wanted;

	if (!atomic_load(&cl->connected) || !atomic_load(&cl->exporting))
		return true;
	pthread_mutex_lock(&cl->out.lock);
	wanted = !outq_only_beyond(&cl->out.q); /* handed-over messages do not hold exports */
	pthread_mutex_unlock(&cl->out.lock);
	return wanted;
}

/* Writes entry <seq> into <batch> (under out->lock). */
static int put_record(struct cluster_outbound *out, struct store_batch *batch, uint64_t seq,
		      const char *subject, struct moat_bytes data)
{
	struct moat_bytes key;

	if (rec_key_cluster_out(&out->key, seq) < 0)
		return MOAT_E_NOMEM;
	key = (struct moat_bytes){buf_head(&out->key), buf_used(&out->key)};
	if (rec_put_cluster_out(&out->val, key,
				(struct moat_bytes){(const uint8_t *)subject, strlen(subject)},
				data) < 0)
		return MOAT_E_NOMEM;
	return store_batch_put(batch, key.ptr, key.len, buf_head(&out->val), buf_used(&out->val));
}

/* cluster_outbound_push (<promised>: a waiting export's copy, queued even
 * over the bound), or <beyond> the bound and outside it (a handover). */
static int queue_copy(struct worker *w, const char *subject, const struct buf *data, bool promised,
		      bool beyond)
{
	struct cluster *cl = w->b->cluster;
	struct cluster_outbound *out = &cl->out;
	bool stored = w->b->store != NULL;
	uint64_t seq, max;
	int rc;

	pthread_mutex_lock(&out->lock);
	seq = out->q.next_seq;
	if (beyond) {
		rc = outq_push_beyond(&out->q, seq, subject, buf_head(data), buf_used(data),
				      stored ? w->id + 1 : 0);
	} else {
		/* the bound counts the waiting exports too; their copies go over
		 * it; a copy uses its PUBLISH's reservation (cluster_queue_full) */
		max = out->q.max_bytes;
		if (promised)
			out->q.max_bytes = 0;
		rc = outq_push_reserved(&out->q, seq, subject, buf_head(data), buf_used(data),
					stored ? w->id + 1 : 0, out->waiting_bytes,
					&cl->w[w->id].reserved);
		out->q.max_bytes = max;
	}
	if (rc == MOAT_OK && stored &&
	    put_record(out, &w->batch, seq, subject,
		       (struct moat_bytes){buf_head(data), buf_used(data)}) < 0) {
		outq_acked(&out->q, seq); /* cannot be promised: not queued */
		rc = MOAT_E_NOMEM;
	} else if (rc == MOAT_OK && stored) {
		cl->w[w->id].out_held++;
	} else if (rc == MOAT_OK) {
		pthread_cond_signal(&out->wake);
	}
	pthread_mutex_unlock(&out->lock);
	return rc;
}

int cluster_outbound_push(struct worker *w, const char *subject, const struct buf *data,
			  bool promised)
{
	return queue_copy(w, subject, data, promised, false);
}

int cluster_outbound_push_handover(struct worker *w, const char *subject, const struct buf *data)
{
	return queue_copy(w, subject, data, false, true);
}

int cluster_outbound_forward(struct cluster *cl, const char *subject, struct moat_bytes data,
			     uint64_t *ticket)
{
	struct cluster_outbound *out = &cl->out;
	struct store_batch batch;
	uint64_t seq;
	int rc;

	*ticket = 0;
	store_batch_init(&batch);
	pthread_mutex_lock(&out->lock);
	seq = out->q.next_seq;
	rc = outq_push_beyond(&out->q, seq, subject, data.ptr, data.len, 0);
	if (rc == MOAT_OK && cl->b->store != NULL) {
		if (put_record(out, &batch, seq, subject, data) < 0) {
			outq_acked(&out->q, seq); /* not queued */
			rc = MOAT_E_NOMEM;
		} else {
			/* under the lock: before the deletion its acknowledgement submits */
			*ticket = store_submit(cl->b->store, &batch, -1);
		}
	}
	if (rc == MOAT_OK)
		pthread_cond_signal(&out->wake);
	pthread_mutex_unlock(&out->lock);
	store_batch_fini(&batch);
	return rc;
}

void cluster_outbound_flush(struct worker *w)
{
	struct cluster *cl = w->b->cluster;
	struct cluster_worker *cw = &cl->w[w->id];

	if (cw->out_held == 0)
		return;
	pthread_mutex_lock(&cl->out.lock);
	outq_release(&cl->out.q, w->id + 1, cw->out_held);
	cw->out_held = 0;
	pthread_cond_signal(&cl->out.wake);
	pthread_mutex_unlock(&cl->out.lock);
}

void cluster_outbound_dropped(struct cluster *cl)
{
	pthread_mutex_lock(&cl->out.lock);
	cl->out.dropped++;
	pthread_mutex_unlock(&cl->out.lock);
	if (log_limiter_allow(&dropped_log, 1, 60))
		log_warn("cluster: the outbound queue is full (cluster_queue_max_bytes): QoS 0 "
			 "copies for other nodes are dropped, QoS 1/2 PUBLISHes refused");
}

void cluster_outbound_link(struct cluster *cl, bool up)
{
	struct cluster_outbound *out = &cl->out;

	pthread_mutex_lock(&out->lock);
	if (!up) {
		/* what was sent may be lost with the connection: sent again, in
		 * order, once it is back; late answers of this generation that
		 * report a failure are ignored */
		out->gen++;
		outq_unsend_all(&out->q);
		for (unsigned i = 0; i < cl->b->nworkers; i++)
			cl->w[i].drain_after = atomic_load(&cl->w[i].issued);
		out->after_disconnect = true;
	}
	pthread_cond_signal(&out->wake);
	pthread_mutex_unlock(&out->lock);
}

/* Deletes the record of entry <seq> (JetStream stored it). */
static void delete_record(struct cluster *cl, uint64_t seq)
{
	struct store_batch del;

	store_batch_init(&del);
	if (rec_key_cluster_out(&cl->out.key, seq) < 0 ||
	    store_batch_del(&del, buf_head(&cl->out.key), buf_used(&cl->out.key)) < 0)
		log_warn("cluster: out of memory: a sent copy stays in the store and is sent "
			 "again at the next start");
	store_submit(cl->b->store, &del, -1);
	store_batch_fini(&del);
}

bool cluster_outbound_answer(struct cluster *cl, natsMsg *nm, const jsPubAckErr *pae)
{
	struct cluster_outbound *out = &cl->out;
	const char *h = NULL;
	uint64_t seq = 0, gen = 0;

	if (natsMsgHeader_Get(nm, CLUSTER_QUEUE_HEADER, &h) != NATS_OK ||
	    sscanf(h, "%" SCNu64 " %" SCNu64, &seq, &gen) != 2)
		return false;
	pthread_mutex_lock(&out->lock);
	if (pae == NULL) {
		if (outq_acked(&out->q, seq) && cl->b->store != NULL)
			delete_record(cl, seq);
	} else if (gen == out->gen) {
		outq_unsent(&out->q, seq);
		if (pae->Err != NATS_TIMEOUT)
			out->pause_until = clock_mono_ms() + REFUSED_PAUSE_MS;
		if (log_limiter_allow(&refused_log, 5, 60))
			log_warn(
			    "cluster: JetStream did not store a queued copy on %s: %s; sending "
			    "it again",
			    natsMsg_GetSubject(nm),
			    pae->ErrText != NULL ? pae->ErrText : natsStatus_GetText(pae->Err));
	}
	pthread_cond_broadcast(&out->wake); /* the drain thread, and a stopping one */
	pthread_mutex_unlock(&out->lock);
	return true;
}

bool cluster_link_status(struct broker *b, struct cluster_link *st)
{
	struct cluster *cl = b->cluster;

	if (cl == NULL)
		return false;
	pthread_mutex_lock(&cl->out.lock);
	*st = (struct cluster_link){.connected = atomic_load(&cl->connected),
				    .queued_msgs = cl->out.q.n + cl->out.waiting_n,
				    .queued_bytes = cl->out.q.bytes + cl->out.waiting_bytes,
				    .dropped = cl->out.dropped,
				    .disconnects = atomic_load(&cl->disconnects),
				    .shares = atomic_load(&cl->shares_kept)};
	pthread_mutex_unlock(&cl->out.lock);
	return true;
}

bool cluster_queue_full(struct worker *w, struct moat_bytes topic, size_t payload_len)
{
	struct cluster *cl = w->b->cluster;
	const char *nodes[CLUSTER_MAX_NODES];
	struct cluster_worker *cw;
	uint64_t copies;
	bool full;

	if (cl == NULL)
		return false;
	cw = &cl->w[w->id];
	cluster_outbound_unreserve(cl, cw); /* a PUBLISH that did not get to cluster_export */
	if (!cluster_outbound_wanted(cl))
		return false;
	/* cluster_export's copies: one per interested node and one per share;
	 * before exports start (join.c), the message itself waits (its copies
	 * are promised) */
	if (atomic_load(&cl->exporting))
		copies = cluster_interested(cl, topic, nodes, CLUSTER_MAX_NODES, NULL) +
			 cluster_shares_count(cl, topic);
	else
		copies = 1;
	if (copies == 0)
		return false;
	/* reserved, so that no other worker's PUBLISH takes the room first; its
	 * copies use the reservation, cluster_export gives back the rest */
	pthread_mutex_lock(&cl->out.lock);
	full = outq_reserve(&cl->out.q, &cw->reserved,
			    copies * ENTRY_BYTES_MAX(topic.len, payload_len),
			    cl->out.waiting_bytes) != MOAT_OK;
	pthread_mutex_unlock(&cl->out.lock);
	return full;
}

void cluster_outbound_unreserve(struct cluster *cl, struct cluster_worker *cw)
{
	if (cw->reserved == 0) /* only its worker changes it */
		return;
	pthread_mutex_lock(&cl->out.lock);
	outq_unreserve(&cl->out.q, &cw->reserved);
	pthread_mutex_unlock(&cl->out.lock);
}

/* Whether <rest> is "<name>.<tokens>" with a name of <name_max> bytes at
 * most that <name_ok> accepts byte by byte; *<tokens> gets the tokens. */
static bool split_name(struct moat_bytes rest, size_t name_max, bool (*name_ok)(uint8_t c),
		       struct moat_bytes *tokens)
{
	size_t i = 0;

	while (i < rest.len && i <= name_max && rest.ptr[i] != '.' && name_ok(rest.ptr[i]))
		i++;
	if (i == 0 || i > name_max || i + 1 >= rest.len || rest.ptr[i] != '.')
		return false;
	*tokens = (struct moat_bytes){rest.ptr + i + 1, rest.len - i - 1};
	return true;
}

static bool is_share_id_char(uint8_t c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
}

static bool has_prefix(struct moat_bytes s, const char *prefix, struct moat_bytes *rest)
{
	size_t n = strlen(prefix);

	if (s.len < n || memcmp(s.ptr, prefix, n) != 0)
		return false;
	*rest = (struct moat_bytes){s.ptr + n, s.len - n};
	return true;
}

/* Whether a store record's <subject> and <data> are what this node writes:
 * a copy "<cluster>.n.<node>.<tokens>" or "<cluster>.g.<share id>.<tokens>"
 * of this cluster, or a waiting export "<cluster>.p.<tokens>" (*<waiting>),
 * carrying a message whose topic the tokens encode (in *<m>, which the
 * caller releases); a node's copy may be a session's handed-over message
 * (handover.h), whose key must be a client id's. Otherwise *<why> says what
 * is wrong. */
static bool check_record(struct cluster *cl, struct moat_bytes subject, struct moat_bytes data,
			 bool *waiting, struct msg **m, const char **why)
{
	struct moat_bytes rest, tokens, node;
	struct buf topic = {0};
	struct handover h;
	bool ok;

	*waiting = has_prefix(subject, cl->wait_prefix, &tokens);
	if (!*waiting &&
	    !(has_prefix(subject, cl->msg_prefix, &rest) &&
	      split_name(rest, CLUSTER_NODE_MAX, text_is_name_char, &tokens)) &&
	    !(has_prefix(subject, cl->share_prefix, &rest) &&
	      split_name(rest, CLUSTER_SHARE_ID_LEN, is_share_id_char, &tokens) &&
	      rest.len - tokens.len - 1 == CLUSTER_SHARE_ID_LEN)) {
		*why = "its subject is not a node's or a share's of this cluster (cluster_name "
		       "changed?)";
		return false;
	}
	if (handover_is(data)) {
		if (*waiting || !has_prefix(subject, cl->msg_prefix, &rest)) {
			*why = "a handed-over message not for a node";
			return false;
		}
		if (handover_decode(data, &h, why) < 0)
			return false;
		ok = subject_to_topic(&topic, h.key) == MOAT_OK;
		buf_consume(&topic, buf_used(&topic));
		if (!ok) {
			*why = "its session key is not a client id's";
			buf_fini(&topic);
			return false;
		}
		data = h.wire;
	}
	if (wire_decode(data, &node, m, why) < 0) {
		buf_fini(&topic);
		return false;
	}
	ok = subject_to_topic(&topic, tokens) == MOAT_OK && buf_used(&topic) == (*m)->topic.len &&
	     memcmp(buf_head(&topic), (*m)->topic.ptr, (*m)->topic.len) == 0;
	if (!ok)
		*why = "its subject is not its message's topic";
	buf_fini(&topic);
	return ok;
}

/* Appends <m> (its reference), record <seq>, to <cw>'s waiting exports
 * (under out->lock). */
static int waiting_add(struct cluster_outbound *out, struct cluster_worker *cw, struct msg *m,
		       uint64_t seq, uint64_t bytes, uint64_t wall_ms)
{
	if (cw->waiting_n == cw->waiting_cap) {
		size_t cap = cw->waiting_cap ? cw->waiting_cap * 2 : 16;
		struct waiting_export *v = realloc(cw->waiting, cap * sizeof(*v));

		if (v == NULL)
			return MOAT_E_NOMEM;
		cw->waiting = v;
		cw->waiting_cap = cap;
	}
	cw->waiting[cw->waiting_n++] = (struct waiting_export){m, seq, bytes, wall_ms};
	out->waiting_n++;
	out->waiting_bytes += bytes;
	return MOAT_OK;
}

int cluster_outbound_restore(struct broker *b, uint64_t seq, struct moat_bytes subject,
			     struct moat_bytes data)
{
	struct cluster *cl = b->cluster;
	char name[CLUSTER_SUBJECT_MAX + 1];
	const char *why = "its subject is too long";
	struct msg *m = NULL;
	bool waiting = false;
	uint64_t max;
	int rc;

	if (cl == NULL)
		return MOAT_E_NOTFOUND;
	if (subject.len > CLUSTER_SUBJECT_MAX ||
	    !check_record(cl, subject, data, &waiting, &m, &why)) {
		if (log_limiter_allow(&restore_log, 10, 60))
			log_warn("persistence: dropped a copy queued for other cluster nodes: %s",
				 why);
		msg_unref(m);
		return MOAT_E_MALFORMED;
	}
	memcpy(name, subject.ptr, subject.len);
	name[subject.len] = '\0';
	pthread_mutex_lock(&cl->out.lock);
	if (waiting) {
		/* exported before a join that did not come: worker 0 makes its
		 * copies once the node has joined */
		m->remote = false;
		rc = waiting_add(&cl->out, &cl->w[0], m, seq, outq_entry_bytes(name, data.len),
				 0 /* when it was published is not stored */);
		if (rc == MOAT_OK && seq >= cl->out.q.next_seq)
			cl->out.q.next_seq = seq + 1;
	} else {
		msg_unref(m);
		/* a restarted node sends what it promised, even over a lowered
		 * bound (handed-over messages stay outside it, as when queued) */
		max = cl->out.q.max_bytes;
		cl->out.q.max_bytes = 0;
		rc = (handover_is(data) ? outq_push_beyond : outq_push)(&cl->out.q, seq, name,
									data.ptr, data.len, 0);
		cl->out.q.max_bytes = max;
	}
	pthread_mutex_unlock(&cl->out.lock);
	if (rc != MOAT_OK && waiting)
		msg_unref(m);
	return rc;
}

/* "<cluster>.p.<tokens of m's topic>" in <cw>'s scratch, or NULL (too long,
 * out of memory). */
static const char *waiting_subject(struct cluster *cl, struct cluster_worker *cw,
				   const struct msg *m)
{
	buf_consume(&cw->subject, buf_used(&cw->subject));
	if (buf_append(&cw->subject, cl->wait_prefix, strlen(cl->wait_prefix)) < 0 ||
	    subject_from_topic(&cw->subject, m->topic) < 0 || buf_append(&cw->subject, "", 1) < 0 ||
	    buf_used(&cw->subject) > CLUSTER_SUBJECT_MAX)
		return NULL;
	return (const char *)buf_head(&cw->subject);
}

void cluster_outbound_wait(struct worker *w, const struct msg *m)
{
	struct cluster *cl = w->b->cluster;
	struct cluster_outbound *out = &cl->out;
	struct cluster_worker *cw = &cl->w[w->id];
	const char *subject = waiting_subject(cl, cw, m);
	uint64_t seq = 0, bytes;
	int rc = MOAT_E_NOMEM;

	if (subject != NULL && wire_encode(&cw->data, cl->node, m) == MOAT_OK) {
		bytes = outq_entry_bytes(subject, buf_used(&cw->data));
		pthread_mutex_lock(&out->lock);
		if (!outq_fits(&out->q, bytes, out->waiting_bytes, cw->reserved))
			rc = MOAT_E_LIMIT;
		else if (w->b->store == NULL ||
			 (rc = put_record(out, &w->batch, seq = out->q.next_seq++, subject,
					  (struct moat_bytes){buf_head(&cw->data),
							      buf_used(&cw->data)})) == MOAT_OK)
			rc = waiting_add(out, cw, msg_ref((struct msg *)m), seq, bytes,
					 clock_wall_ms());
		if (rc == MOAT_OK)
			outq_consume(&out->q, &cw->reserved, bytes); /* now in waiting_bytes */
		pthread_mutex_unlock(&out->lock);
	}
	if (rc == MOAT_OK)
		return;
	if (rc == MOAT_E_NOMEM)
		log_warn("cluster: cannot keep a message for other nodes until this node joins: "
			 "%s",
			 subject == NULL ? "its topic is too long, or out of memory"
					 : "out of memory");
	if (m->qos == 0) {
		cluster_outbound_dropped(cl);
		return;
	}
	/* its publisher closes without the answer (cluster_gate_since) */
	cw->lost = ++cw->issued;
	cluster_gate_done(cw, cw->issued);
}

void cluster_outbound_export_waiting(struct worker *w,
				     void (*export)(struct worker *w, const struct msg *m,
						    uint64_t published_ms))
{
	struct cluster *cl = w->b->cluster;
	struct cluster_outbound *out = &cl->out;
	struct cluster_worker *cw = &cl->w[w->id];
	bool stored = w->b->store != NULL;
	uint64_t bytes = 0;

	if (cw->waiting_n == 0 || !atomic_load(&cl->exporting))
		return;
	cw->retained_silent = false; /* asked again at each pass */
	for (size_t i = 0; i < cw->waiting_n; i++) {
		struct waiting_export *we = &cw->waiting[i];

		export(w, we->m, we->wall_ms);
		bytes += we->bytes;
		msg_unref(we->m);
		if (!stored || we->seq == 0)
			continue;
		/* in the batch that writes its copies' records: one or the other */
		pthread_mutex_lock(&out->lock);
		if (rec_key_cluster_out(&out->key, we->seq) < 0 ||
		    store_batch_del(&w->batch, buf_head(&out->key), buf_used(&out->key)) < 0)
			log_warn("cluster: out of memory: a message published before this node "
				 "joined stays in the store and is sent again at the next start");
		pthread_mutex_unlock(&out->lock);
	}
	log_notice("cluster: %zu messages published before this node joined the cluster are "
		   "exported now",
		   cw->waiting_n);
	pthread_mutex_lock(&out->lock);
	out->waiting_n -= cw->waiting_n;
	out->waiting_bytes -= bytes;
	pthread_mutex_unlock(&out->lock);
	cw->waiting_n = 0;
	if (stored)
		persist_submit(w); /* before cluster_outbound_flush lets the copies go */
}

void cluster_outbound_forget_waiting(struct cluster *cl, struct cluster_worker *cw)
{
	if (cw->waiting_n > 0)
		log_warn("cluster: %zu messages published before this node joined the cluster "
			 "were not exported%s",
			 cw->waiting_n,
			 cl->b->store != NULL ? "; they are in the store and go at the next start"
					      : " and are lost (persistence is off)");
	for (size_t i = 0; i < cw->waiting_n; i++)
		msg_unref(cw->waiting[i].m);
	free(cw->waiting);
	cw->waiting = NULL;
	cw->waiting_n = cw->waiting_cap = 0;
}
