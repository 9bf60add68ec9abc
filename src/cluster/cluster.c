/*
 * The node's link to the cluster (see cluster.h): the NATS connection, the
 * cluster's message stream, the node's durable consumer on its own subject
 * "<cluster>.n.<node>.<topic tokens>", and the export of local clients'
 * messages to the nodes interested in them (interest.c). NATS calls back on its own threads; they
 * only decode, post to worker 0 and acknowledge.
 */
#include "cluster/cluster_int.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <moat/error.h>

#include "base/clock.h"
#include "base/log.h"
#include "base/text.h"
#include "broker/broker.h"
#include "broker/persist.h"
#include "cluster/nats_security.h"
#include "cluster/subject.h"
#include "cluster/wire.h"
#include "store/store.h"

/* How long the stream keeps a message no node has consumed. */
#define STREAM_MAX_AGE_NS (24LL * 3600 * 1000000000LL)
/* Unacknowledged asynchronous publishes before js_PublishMsgAsync waits;
 * how long JetStream may take to acknowledge one before it is sent again
 * (without MaxWait a lost acknowledgement would never be reported); the
 * pause before sending again after an error; how long cluster_stop waits
 * for NATS's threads to end (STOP_WAIT_MS), and for NATS in all
 * (STOP_BUDGET_MS: answers, the threads that make requests). */
enum {
	MAX_PENDING_PUBLISHES = 65536,
	STOP_WAIT_MS = 5000,
	STOP_BUDGET_MS = 2000,
	PUBLISH_WAIT_MS = 5000,
	RESEND_PAUSE_US = 100000
};

static struct log_limiter resend_log, left_out_log;

/* The default node name: host name and first listener port. */
static void default_node_name(const struct moat_config *cfg, char *out, size_t cap)
{
	char host[256] = "moatd";

	gethostname(host, sizeof(host) - 1);
	host[sizeof(host) - 1] = '\0';
	snprintf(out, cap, "%s-%u", host, cfg->listeners != NULL ? cfg->listeners->port : 1883);
	for (char *p = out; *p != '\0'; p++)
		if (!text_is_name_char((uint8_t)*p))
			*p = '_';
}

bool cluster_route_post(struct cluster *cl, struct worker *to, const struct inbox_item *item)
{
	int rc = MOAT_E_CLOSED;

	pthread_mutex_lock(&cl->post_lock);
	if (!cl->stopping)
		rc = route_post(to, item);
	pthread_mutex_unlock(&cl->post_lock);
	return rc == MOAT_OK;
}

bool cluster_post(struct cluster *cl, struct msg *m, bool retained_only, natsMsg *ack)
{
	struct inbox_item item = {.msg = m, .retain = retained_only, .cluster_ack = ack};

	if (cluster_route_post(cl, &cl->b->workers[0], &item))
		return true;
	msg_unref(m);
	natsMsg_Destroy(ack);
	return false;
}

int cluster_decode(natsMsg *nm, struct moat_bytes *node, struct msg **m, const char **why)
{
	struct moat_bytes data = {(const uint8_t *)natsMsg_GetData(nm),
				  (size_t)natsMsg_GetDataLength(nm)};

	return wire_decode(data, node, m, why);
}

/* A message of the stream (a NATS thread): handed to worker 0, which
 * acknowledges it once routed (ack.c). Malformed ones, and our own (a node
 * of the same name), are acknowledged and dropped; one that meets out of
 * memory is not acknowledged, so JetStream sends it again. */
static void on_stream_msg(natsConnection *nc, natsSubscription *sub, natsMsg *nm, void *closure)
{
	struct cluster *cl = closure;
	struct moat_bytes node;
	struct msg *m = NULL;
	const char *why = NULL;
	int rc;

	(void)nc;
	(void)sub;
	if (cluster_session_message(cl, nm))
		return; /* handed over for one session (sessions.c) */
	rc = cluster_decode(nm, &node, &m, &why);
	if (rc == MOAT_OK &&
	    (node.len != strlen(cl->node) || memcmp(node.ptr, cl->node, node.len) != 0)) {
		if (!cluster_post(cl, m, false, nm))
			log_warn("cluster: out of memory: a message on %s comes again later",
				 natsMsg_GetSubject(nm));
		return;
	}
	if (rc == MOAT_E_MALFORMED)
		log_warn("cluster: dropped a malformed message on %s: %s", natsMsg_GetSubject(nm),
			 why);
	else if (rc == MOAT_OK)
		log_warn("cluster: dropped a message from a node named as this one (%s)", cl->node);
	if (rc == MOAT_OK || rc == MOAT_E_MALFORMED)
		natsMsg_Ack(nm, NULL);
	msg_unref(m);
	natsMsg_Destroy(nm);
}

/* Sends <*nm> again (a NATS thread): a QoS 1/2 copy JetStream refused or
 * did not acknowledge in time, so its answer still waits. False when it
 * could not (NATS closed, too many publishes pending). */
static bool resend(struct cluster *cl, jsCtx *js, natsMsg **nm, const jsPubAckErr *pae)
{
	jsPubOptions po;
	natsStatus s;

	if (natsConnection_IsClosed(cl->nc))
		return false; /* stopping: no pause, nothing sent */
	if (log_limiter_allow(&resend_log, 10, 10))
		log_warn("cluster: JetStream did not store a message on %s: %s; sending it again",
			 natsMsg_GetSubject(*nm),
			 pae->ErrText != NULL ? pae->ErrText : natsStatus_GetText(pae->Err));
	if (pae->Err != NATS_TIMEOUT)
		usleep(RESEND_PAUSE_US); /* an immediate refusal: no busy loop */
	jsPubOptions_Init(&po);
	po.MaxWait = PUBLISH_WAIT_MS;
	s = js_PublishMsgAsync(js, nm, &po);
	if (s != NATS_OK && log_limiter_allow(&resend_log, 10, 10))
		log_warn("cluster: cannot send a message again (%s): its publisher is "
			 "disconnected without an answer",
			 natsStatus_GetText(s));
	return s == NATS_OK;
}

/* JetStream's answer to an asynchronous publish (a NATS thread): a stored
 * QoS 1/2 copy advances its worker's stored mark and wakes it, so held
 * answers go out; a refused or timed-out one is sent again. */
static void on_publish_ack(jsCtx *js, natsMsg *nm, jsPubAck *pa, jsPubAckErr *pae, void *closure)
{
	struct cluster *cl = closure;
	const char *gate = NULL;
	unsigned wid;
	uint64_t ticket;
	bool gated;

	(void)pa;
	if (cluster_outbound_answer(cl, nm, pae)) {
		natsMsg_Destroy(nm);
		return;
	}
	gated = natsMsgHeader_Get(nm, CLUSTER_GATE_HEADER, &gate) == NATS_OK &&
		sscanf(gate, "%u %" SCNu64, &wid, &ticket) == 2 && wid < cl->b->nworkers;
	if (pae != NULL && gated) {
		if (!resend(cl, js, &nm, pae))
			cluster_gate_lost(cl, wid, ticket);
	} else if (pae != NULL) {
		log_warn("cluster: JetStream did not store a message on %s: %s",
			 natsMsg_GetSubject(nm),
			 pae->ErrText != NULL ? pae->ErrText : natsStatus_GetText(pae->Err));
	} else if (gated) {
		cluster_gate_done(&cl->w[wid], ticket);
		worker_wake(&cl->b->workers[wid]);
	}
	natsMsg_Destroy(nm);
}

static int nats_fail(char *err, size_t errlen, const char *what, natsStatus s, jsErrCode jerr)
{
	const char *hint = "check cluster_url, that nats-server runs with -js, and the "
			   "cluster_tls_* files or cluster_credentials it may demand";

	if (s == NATS_CONNECTION_AUTH_FAILED || s == NATS_NOT_PERMITTED)
		hint = "check cluster_credentials and the NATS user's permissions";
	else if (s == NATS_SSL_ERROR)
		hint = "check cluster_tls_cafile, cluster_tls_certfile and cluster_tls_keyfile";
	snprintf(err, errlen, "cluster: %s: %s (JetStream error %d); %s", what,
		 natsStatus_GetText(s), (int)jerr, hint);
	return MOAT_E_IO;
}

static int connect_nats(struct cluster *cl, const struct moat_cluster_conf *cc, char *err,
			size_t errlen)
{
	natsStatus s = natsOptions_Create(&cl->opts);
	jsOptions jo;

	if (s == NATS_OK)
		s = natsOptions_SetServers(cl->opts, (const char **)cc->urls, (int)cc->url_count);
	if (s == NATS_OK)
		s = natsOptions_SetName(cl->opts, cl->node);
	if (s == NATS_OK)
		s = cluster_link_options(cl);
	if (s == NATS_OK)
		s = nats_security_set(cl->opts, cc->tls_cafile, cc->tls_certfile, cc->tls_keyfile,
				      cc->credentials);
	if (s != NATS_OK)
		return nats_fail(err, errlen,
				 "cannot set the NATS options (TLS files, credentials)", s, 0);
	s = nats_security_connect(&cl->nc, cl->opts, cc->credentials != NULL);
	if (s == NATS_NO_SERVER) {
		/* no NATS server answers (TLS and credentials refusals still stop
		 * the node): start without, join once one does */
		s = cluster_link_retry(cl);
		if (s == NATS_OK)
			s = natsConnection_Connect(&cl->nc, cl->opts);
		if (s == NATS_NOT_YET_CONNECTED)
			log_warn("cluster: no NATS server reachable (cluster_url); serving local "
				 "clients, keeping what other nodes may want "
				 "(cluster_queue_max_bytes), joining cluster %s once NATS is there",
				 cl->name);
	}
	if (s != NATS_OK && s != NATS_NOT_YET_CONNECTED)
		return nats_fail(err, errlen, "cannot connect to NATS", s, 0);
	if (s == NATS_OK) /* else on_connected (link.c) may have stored true already */
		atomic_store(&cl->connected, true);
	jsOptions_Init(&jo);
	jo.PublishAsync.MaxPending = MAX_PENDING_PUBLISHES;
	jo.PublishAsync.AckHandler = on_publish_ack;
	jo.PublishAsync.AckHandlerClosure = cl;
	s = natsConnection_JetStream(&cl->js, cl->nc, &jo);
	return s == NATS_OK ? MOAT_OK : nats_fail(err, errlen, "cannot use JetStream", s, 0);
}

int cluster_replicas(const struct cluster *cl)
{
	unsigned replicas = cl->b->cfg->cluster.replicas;

	return replicas != 0 ? (int)replicas : 1;
}

/* Creates the cluster's stream (or finds it) and the node's durable
 * consumer, which resumes where it stopped when the node restarts. */
static int consume_stream(struct cluster *cl, const char *cluster_name, char *err, size_t errlen)
{
	char stream[CLUSTER_NAME_MAX + 8], all[sizeof(cl->msg_prefix) + 1];
	char filter[sizeof(cl->msg_prefix) + CLUSTER_NODE_MAX + 2];
	const char *subjects[1] = {all};
	jsStreamConfig sc;
	jsSubOptions so;
	jsErrCode jerr = 0;
	natsStatus s;

	snprintf(stream, sizeof(stream), "%s_msgs", cluster_name);
	snprintf(all, sizeof(all), "%s>", cl->msg_prefix);
	snprintf(filter, sizeof(filter), "%s%s.>", cl->msg_prefix, cl->node);
	jsStreamConfig_Init(&sc);
	sc.Name = stream;
	sc.Subjects = subjects;
	sc.SubjectsLen = 1;
	sc.Storage = js_FileStorage;
	sc.MaxAge = STREAM_MAX_AGE_NS;
	sc.Duplicates = CLUSTER_DUPLICATE_WINDOW_NS;
	sc.Replicas = cluster_replicas(cl);
	s = js_AddStream(NULL, cl->js, &sc, NULL, &jerr);
	if (s != NATS_OK && jerr == JSStreamNameExistErr)
		s = js_GetStreamInfo(NULL, cl->js, stream, NULL, &jerr);
	if (s != NATS_OK)
		return nats_fail(err, errlen, "cannot create the message stream", s, jerr);
	jsSubOptions_Init(&so);
	so.Stream = stream;
	so.ManualAck = true;
	so.Config.Durable = cl->node;
	so.Config.DeliverPolicy = js_DeliverNew;
	so.Config.AckPolicy = js_AckExplicit;
	s = js_Subscribe(&cl->sub, cl->js, filter, on_stream_msg, cl, NULL, &so, &jerr);
	return s == NATS_OK ? MOAT_OK
			    : nats_fail(err, errlen, "cannot create the node's consumer", s, jerr);
}

int cluster_consume_once_ready(struct cluster *cl, char *err, size_t errlen)
{
	int rc;

	if (!atomic_load(&cl->joined) || !atomic_load(&cl->restored) ||
	    atomic_exchange(&cl->consuming, true))
		return MOAT_OK;
	rc = consume_stream(cl, cl->name, err, errlen);
	if (rc < 0)
		atomic_store(&cl->consuming, false); /* the join thread tries again */
	return rc;
}

int cluster_start(struct broker *b, char *err, size_t errlen)
{
	const struct moat_cluster_conf *cc = &b->cfg->cluster;
	struct cluster *cl;
	int rc;

	if (cc->url_count == 0)
		return MOAT_OK;
	cl = calloc(1, sizeof(*cl));
	if (cl == NULL || (cl->w = calloc(b->nworkers, sizeof(*cl->w))) == NULL) {
		free(cl);
		snprintf(err, errlen, "cluster: out of memory");
		return MOAT_E_NOMEM;
	}
	for (unsigned i = 0; i < b->nworkers; i++)
		pthread_mutex_init(&cl->w[i].lock, NULL);
	cl->run = clock_wall_ms() * 1000;
	cluster_outbound_init(cl, cc->queue_max_bytes != 0 ? cc->queue_max_bytes
							   : CLUSTER_QUEUE_MAX_DEFAULT);
	cl->b = b;
	b->cluster = cl;
	pthread_mutex_init(&cl->post_lock, NULL);
	pthread_mutex_init(&cl->owner_lock, NULL);
	if (cc->node_name != NULL)
		snprintf(cl->node, sizeof(cl->node), "%s", cc->node_name);
	else
		default_node_name(b->cfg, cl->node, sizeof(cl->node));
	snprintf(cl->name, sizeof(cl->name), "%s", cc->name != NULL ? cc->name : "moat");
	snprintf(cl->msg_prefix, sizeof(cl->msg_prefix), "%s.n.", cl->name);
	snprintf(cl->wait_prefix, sizeof(cl->wait_prefix), "%s.p.", cl->name);
	snprintf(cl->kv_prefix, sizeof(cl->kv_prefix), "$KV.%s_retained.", cl->name);
	snprintf(cl->interest_prefix, sizeof(cl->interest_prefix), "$KV.%s_interest.", cl->name);
	rc = cluster_interest_init(cl, err, errlen);
	if (rc == MOAT_OK)
		rc = cluster_shares_init(cl, err, errlen);
	if (rc == MOAT_OK)
		rc = cluster_sessions_init(cl, err, errlen);
	if (rc == MOAT_OK)
		rc = connect_nats(cl, cc, err, errlen);
	if (rc == MOAT_OK)
		rc = cluster_join_start(cl, err, errlen);
	if (rc == MOAT_OK)
		rc = cluster_outbound_start(cl, err, errlen);
	if (rc < 0) {
		cluster_stop(b);
		return rc;
	}
	return MOAT_OK;
}

int cluster_consume(struct broker *b, char *err, size_t errlen)
{
	int rc;

	if (b->cluster == NULL)
		return MOAT_OK;
	atomic_store(&b->cluster->restored, true);
	rc = cluster_consume_once_ready(b->cluster, err, errlen);
	if (rc < 0)
		cluster_stop(b);
	return rc;
}

/* Closes the NATS connection: a request waiting for an answer fails at
 * once, and nothing waits for NATS any more. */
static void cut_nats(struct cluster *cl)
{
	if (cl->nc != NULL)
		natsConnection_Close(cl->nc);
	atomic_store(&cl->connected, false);
}

int cluster_stop_wait_ms(struct cluster *cl)
{
	uint64_t now = clock_mono_ms();

	if (!atomic_load(&cl->connected) || now >= cl->stop_by_ms)
		return 0;
	return (int)(cl->stop_by_ms - now);
}

void cluster_stop_join(struct cluster *cl, pthread_t thread)
{
	int left = cluster_stop_wait_ms(cl);
	struct timespec until;

	if (cl->stop_by_ms == 0) { /* not stopping: a failed join's step undone */
		pthread_join(thread, NULL);
		return;
	}
	if (left > 0) {
		clock_gettime(CLOCK_REALTIME, &until);
		until.tv_sec += left / 1000;
		until.tv_nsec += (long)(left % 1000) * 1000000L;
		if (until.tv_nsec >= 1000000000L) {
			until.tv_sec++;
			until.tv_nsec -= 1000000000L;
		}
		if (pthread_timedjoin_np(thread, NULL, &until) == 0)
			return;
	}
	if (atomic_load(&cl->connected))
		log_warn("cluster: NATS did not answer within %d ms while stopping; leaving "
			 "without its answers",
			 STOP_BUDGET_MS);
	cut_nats(cl);
	pthread_join(thread, NULL);
}

void cluster_stop(struct broker *b)
{
	struct cluster *cl = b->cluster;
	jsPubOptions po;

	if (cl == NULL)
		return;
	/* from now on NATS is waited for STOP_BUDGET_MS in all, and not at all
	 * while it is unreachable (cluster_stop_wait_ms) */
	cl->stop_by_ms = clock_mono_ms() + STOP_BUDGET_MS;
	atomic_store(&cl->stop_begun, true);
	cluster_join_stop(cl);
	/* first: until they end, the heartbeat thread may find a node dead and
	 * the adopting thread claim its sessions; the claims no worker made
	 * into sessions (the workers have stopped) are made here, so their
	 * entries naming this node are kept in the store, or their Wills go
	 * out and the entries are deleted just below; then the node's alive
	 * key goes (a clean leave) */
	cluster_liveness_halt(cl);
	cluster_adopt_left(cl);
	cluster_sessions_leave(cl); /* without persistence: its entries go, while NATS is there */
	cluster_liveness_stop(cl);  /* after them: its key goes */
	if (cl->js != NULL && cluster_stop_wait_ms(cl) > 0) {
		jsPubOptions_Init(&po);
		po.MaxWait = cluster_stop_wait_ms(cl);
		if (js_PublishAsyncComplete(cl->js, &po) != NATS_OK)
			log_warn(
			    "cluster: messages exported last, or this node's leave, may not be "
			    "stored in JetStream");
	}
	if (cluster_stop_wait_ms(cl) == 0)
		cut_nats(cl); /* spent: the queue's drain is not waited for */
	cluster_outbound_stop(cl);
	for (unsigned i = 0; i < b->nworkers; i++)
		cluster_outbound_forget_waiting(cl, &cl->w[i]);
	/* the messages the stream's thread forwarded whose records are
	 * durable (all of them, once the store has the workers' last batches)
	 * are acknowledged while NATS is there; the rest come again */
	if (b->store != NULL)
		store_flush(b->store);
	cluster_forwarded_release(cl);
	/* closed, not unsubscribed: unsubscribing would delete the durable
	 * consumer the library created, and the node could not resume. Closed
	 * before the watchers stop: stopping one deletes its consumer, a
	 * request that would wait for its timeout while NATS is unreachable
	 * (the server drops a closed client's ephemeral consumers anyway) */
	if (cl->nc != NULL)
		natsConnection_Close(cl->nc);
	/* no more messages reach the workers; those waiting there, and those
	 * routed but not acknowledged, are freed while NATS still can (JetStream
	 * sends them again) */
	pthread_mutex_lock(&cl->post_lock);
	cl->stopping = true;
	pthread_mutex_unlock(&cl->post_lock);
	broker_forget_cluster_acks(b);
	for (unsigned i = 0; i < b->nworkers; i++)
		cluster_ack_fini(&cl->w[i]);
	cluster_retained_stop(cl);
	cluster_nodes_stop(cl);
	if (!cluster_forwards_end(cl)) { /* they use the sessions' handles */
		b->cluster = NULL;
		return;
	}
	cluster_forwarded_fini(cl);
	cluster_sessions_stop(cl);
	if (cl->remote != NULL)
		cluster_interest_stop(cl);
	natsSubscription_Destroy(cl->sub);
	cluster_shares_stop(cl);
	jsCtx_Destroy(cl->js);
	natsConnection_Destroy(cl->nc);
	natsOptions_Destroy(cl->opts);
	/* NATS's threads (message delivery, acknowledgements, the link's
	 * callbacks) use <cl> until they end: wait for them before freeing */
	b->cluster = NULL;
	if (nats_CloseAndWait(STOP_WAIT_MS) != NATS_OK) {
		log_err("cluster: NATS's threads did not end in %d ms; leaving the cluster's "
			"memory to them",
			STOP_WAIT_MS);
		return;
	}
	for (unsigned i = 0; i < b->nworkers; i++) {
		tickets_fini(&cl->w[i].tickets);
		pthread_mutex_destroy(&cl->w[i].lock);
		buf_fini(&cl->w[i].data);
		buf_fini(&cl->w[i].subject);
		free(cl->w[i].shares.v);
	}
	cluster_shares_fini(cl); /* after NATS's threads: a subscription's last callback */
	buf_fini(&cl->owner_key);
	pthread_mutex_destroy(&cl->owner_lock);
	cluster_outbound_fini(cl);
	pthread_mutex_destroy(&cl->post_lock);
	free(cl->w);
	free(cl);
}

/* Publishes <nm> asynchronously; NATS owns it afterwards either way. False
 * when it could not (NATS unreachable, too many publishes pending). */
static bool publish(struct cluster *cl, natsMsg *nm)
{
	jsPubOptions po;
	natsStatus s;

	jsPubOptions_Init(&po);
	po.MaxWait = PUBLISH_WAIT_MS;
	s = js_PublishMsgAsync(cl->js, &nm, &po);

	if (s == NATS_OK)
		return true;
	log_warn("cluster: cannot export a message on %s: %s", natsMsg_GetSubject(nm),
		 natsStatus_GetText(s));
	natsMsg_Destroy(nm);
	return false;
}

int cluster_subject(struct buf *out, const char *prefix, const char *name, struct moat_bytes topic)
{
	buf_consume(out, buf_used(out));
	if (buf_append(out, prefix, strlen(prefix)) < 0 ||
	    (name != NULL &&
	     (buf_append(out, name, strlen(name)) < 0 || buf_append(out, ".", 1) < 0)) ||
	    subject_from_topic(out, topic) < 0 || buf_append(out, "", 1) < 0)
		return MOAT_E_NOMEM;
	return buf_used(out) > CLUSTER_SUBJECT_MAX ? MOAT_E_LIMIT : MOAT_OK;
}

/* Builds "<prefix><node>.<tokens of topic>" (no node when NULL) as a C
 * string in the worker's scratch. */
static const char *subject_for(struct cluster_worker *cw, const char *prefix, const char *node,
			       const struct msg *m)
{
	int rc = cluster_subject(&cw->subject, prefix, node, m->topic);

	if (rc == MOAT_E_LIMIT)
		log_warn("cluster: topic too long to cross the cluster (%zu bytes)", m->topic.len);
	return rc == MOAT_OK ? (const char *)buf_head(&cw->subject) : NULL;
}

/* Sets or deletes the topic's key in the retained bucket; for a message
 * that waited for the join (published at <published_ms>, 0: not known),
 * not when the bucket's value is as recent (set meanwhile on another node). */
static void export_retained(struct cluster *cl, struct cluster_worker *cw, const struct msg *m,
			    bool waited, uint64_t published_ms)
{
	const char *subject = subject_for(cw, cl->kv_prefix, NULL, m);
	bool del = m->payload.len == 0;
	natsMsg *nm = NULL;

	if (subject != NULL && waited &&
	    cluster_retained_bucket_newer(cl, subject, published_ms, &cw->retained_silent)) {
		log_notice("cluster: a retained message on %.*s published before this node joined "
			   "is not written to the cluster: another node set the topic since",
			   (int)m->topic.len, (const char *)m->topic.ptr);
		return;
	}
	if (subject == NULL ||
	    natsMsg_Create(&nm, subject, NULL, del ? NULL : (const char *)buf_head(&cw->data),
			   del ? 0 : (int)buf_used(&cw->data)) != NATS_OK ||
	    (del && natsMsgHeader_Set(nm, "KV-Operation", "DEL") != NATS_OK)) {
		log_warn("cluster: cannot export a retained message: out of memory");
		natsMsg_Destroy(nm);
		return;
	}
	publish(cl, nm);
}

/* How a copy goes: sent (queued when NATS does not take it), queued
 * (degraded mode, or older copies wait), or queued even over the bound (a
 * waiting export's, promised when its PUBLISH was answered). */
enum export_mode { EXPORT_SEND, EXPORT_QUEUE, EXPORT_PROMISED };

/* Queues the copy in cw->data for <subject> (degraded mode, outbound.c).
 * A QoS 1/2 copy's ticket (the last issued) is done at once: its answer
 * waits only for the store. When the queue cannot take it (false), a QoS 0
 * copy is dropped, and a QoS 1/2 copy's publisher is closed without its
 * answer. */
static bool queue_copy(struct cluster *cl, struct worker *w, const char *subject,
		       const struct msg *m, enum export_mode mode)
{
	struct cluster_worker *cw = &cl->w[w->id];
	int rc = cluster_outbound_push(w, subject, &cw->data, mode == EXPORT_PROMISED);

	if (m->qos == 0) {
		if (rc != MOAT_OK)
			cluster_outbound_dropped(cl);
		return rc == MOAT_OK;
	}
	if (rc != MOAT_OK)
		cw->lost = cw->issued;
	cluster_gate_done(cw, cw->issued);
	return rc == MOAT_OK;
}

/* Sends <m> (encoded in cw->data) on "<prefix><name>.<tokens>" (a node's
 * or a share's subject), for QoS 1/2 with the worker's next ticket; queues
 * it instead when <mode> says so or when NATS does not take it now. False
 * when it was neither sent nor queued. */
static bool export_to(struct cluster *cl, struct worker *w, const char *prefix, const char *name,
		      const struct msg *m, enum export_mode mode)
{
	struct cluster_worker *cw = &cl->w[w->id];
	const char *subject = subject_for(cw, prefix, name, m);
	natsMsg *nm = NULL;
	char gate[48], id[CLUSTER_NODE_MAX + 64];

	if (subject == NULL) {
		log_warn("cluster: cannot export a message on %s%s", prefix, name);
		return false;
	}
	if (m->qos > 0)
		cw->issued++;
	if (mode == EXPORT_SEND) {
		snprintf(gate, sizeof(gate), "%u %" PRIu64, w->id, cw->issued);
		/* a QoS 1/2 copy may be sent again (resend): JetStream drops the
		 * second by its id; QoS 0 copies are sent once */
		snprintf(id, sizeof(id), "%s.%" PRIu64 ".%u.%" PRIu64, cl->node, cl->run, w->id,
			 cw->issued);
		if (natsMsg_Create(&nm, subject, NULL, (const char *)buf_head(&cw->data),
				   (int)buf_used(&cw->data)) != NATS_OK ||
		    (m->qos > 0 && (natsMsgHeader_Set(nm, CLUSTER_GATE_HEADER, gate) != NATS_OK ||
				    natsMsgHeader_Set(nm, CLUSTER_MSG_ID_HEADER, id) != NATS_OK))) {
			natsMsg_Destroy(nm);
			log_warn("cluster: cannot export a message on %s%s: out of memory", prefix,
				 name);
			/* no acknowledgement will come: the ticket is done, so later
			 * ones are not held behind it, and the connection that
			 * exported it closes without its answer (cluster_gate_since) */
			if (m->qos > 0) {
				cw->lost = cw->issued;
				cluster_gate_done(cw, cw->issued);
			}
			return false;
		}
		if (publish(cl, nm))
			return true;
	}
	return queue_copy(cl, w, subject, m, mode);
}

/* <m> matched more than CLUSTER_MAX_NODES nodes: the nodes beyond go
 * without it (counted, logged at most once a minute). */
static void left_out(struct cluster *cl, const struct msg *m)
{
	uint64_t n = atomic_fetch_add(&cl->left_out, 1) + 1;

	if (log_limiter_allow(&left_out_log, 1, 60))
		log_warn("cluster: a message on %.*s matched more than %d nodes: the nodes beyond "
			 "did not get it (%" PRIu64 " such messages so far)",
			 (int)m->topic.len, (const char *)m->topic.ptr, CLUSTER_MAX_NODES, n);
}

/* Exports <m> to the nodes and shares that want it; <waited>: it was
 * exported before the node joined (published at <published_ms>) and
 * answered then, so its copies are queued over the bound, and not to
 * shares, whose members here had it (the shares were not known). */
static void export_copies(struct worker *w, const struct msg *m, bool waited, uint64_t published_ms)
{
	struct cluster *cl = w->b->cluster;
	const char *nodes[CLUSTER_MAX_NODES];
	struct cluster_worker *cw = &cl->w[w->id];
	struct share_set *shares = &cw->shares;
	enum export_mode mode = EXPORT_SEND;
	size_t n, sent = 0;
	bool more;

	n = cluster_interested(cl, m->topic, nodes, CLUSTER_MAX_NODES, &more);
	if (more)
		left_out(cl, m);
	if (waited)
		cluster_share_set_clear(shares);
	else
		cluster_shares_matching(cl, m->topic, shares);
	if ((n > 0 || shares->n > 0 || m->retain) &&
	    (wire_encode(&cw->data, cl->node, m) < 0 || buf_used(&cw->data) > INT32_MAX)) {
		log_warn("cluster: cannot export a message: out of memory");
		cluster_share_set_clear(shares);
		return;
	}
	if (waited)
		mode = EXPORT_PROMISED;
	else if ((n > 0 || shares->n > 0) && cluster_outbound_wanted(cl))
		mode = EXPORT_QUEUE;
	for (size_t i = 0; i < n; i++)
		export_to(cl, w, cl->msg_prefix, nodes[i], m, mode);
	/* only the shares it reached are the cluster's to deliver */
	for (size_t i = 0; i < shares->n; i++)
		if (export_to(cl, w, cl->share_prefix, shares->v[i]->id, m, mode))
			shares->v[sent++] = shares->v[i];
		else
			cluster_share_unref(shares->v[i]);
	shares->n = sent;
	if (m->retain)
		export_retained(cl, cw, m, waited, published_ms);
}

static void export_waited(struct worker *w, const struct msg *m, uint64_t published_ms)
{
	export_copies(w, m, true, published_ms);
}

bool cluster_export(struct worker *w, const struct msg *m)
{
	struct cluster *cl = w->b->cluster;
	struct cluster_worker *cw;

	if (cl == NULL)
		return false;
	cw = &cl->w[w->id];
	/* none sent yet: local routing delivers to every share */
	cluster_share_set_clear(&cw->shares);
	if (wire_topic_is_sys(m->topic))
		return false;
	if (m->remote)
		return true;
	/* not joined yet, or the other nodes' interest not read yet (join.c),
	 * or earlier messages still wait: this one waits behind them */
	if (!atomic_load(&cl->exporting) || cw->waiting_n > 0)
		cluster_outbound_wait(w, m);
	else
		export_copies(w, m, false, 0);
	cluster_outbound_unreserve(cl, cw); /* what its copies did not use */
	return false;
}

void cluster_flush(struct worker *w)
{
	struct cluster *cl = w->b->cluster;

	if (cl == NULL)
		return;
	cluster_outbound_unreserve(cl, &cl->w[w->id]); /* a PUBLISH that never got exported */
	if (!atomic_load(&cl->joined))
		return; /* before the join nothing was queued or received */
	if (cl->w[w->id].settle_after_join) {
		/* the sessions made while out of the cluster; those from the
		 * store are settled by cluster_sessions_flush */
		cl->w[w->id].settle_after_join = false;
		cluster_sessions_claim_made_while_out(w);
	}
	cluster_outbound_export_waiting(w, export_waited);
	cluster_sessions_flush(w);
	cluster_interest_flush(w->b->cluster);
	cluster_ack_release(w, true);
	cluster_outbound_flush(w);
	/* this pass's messages are routed: the shares they went to may go */
	cluster_share_set_clear(&cl->w[w->id].shares);
}
