/*
 * What cluster.c, gate.c, ack.c, interest.c, retained.c, watch.c, share.c
 * and nodes.c share: the node's NATS handles and each worker's export state.
 */
#ifndef MOAT_CLUSTER_CLUSTER_INT_H
#define MOAT_CLUSTER_CLUSTER_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include <nats/nats.h>

#include <moat/bytes.h>

#include "base/buf.h"
#include "cluster/cluster.h"
#include "cluster/outq.h"
#include "cluster/tickets.h"
#include "conf/cluster_conf.h"

/* A message of another node that is acknowledged to JetStream once the
 * store ticket <gate> is durable (ack.c). */
struct pending_ack {
	uint64_t gate; /* PERSIST_GATE_THIS_PASS until the pass is submitted */
	natsMsg *msg;
};

struct cluster_share;

/* A local client's message exported before the node first joined the
 * cluster (outbound.c): its copies are made once the node knows the other
 * nodes' interest. <seq>: its store record ([C] key), 0 without one;
 * <wall_ms>: when it was published (wall clock), 0 when not known (read
 * back from the store). */
struct waiting_export {
	struct msg *m;
	uint64_t seq, bytes, wall_ms;
};

/* A growable list of shares (share.c). */
struct share_set {
	struct cluster_share **v; /* each holds a reference (share.c) */
	size_t n, cap;
};

/* One worker's share: written by that worker, except <stored> and
 * <tickets> (NATS threads, under <lock>). */
struct cluster_worker {
	struct pending_ack *acks; /* in order */
	size_t ack_n, ack_cap;
	_Atomic uint64_t issued;  /* QoS 1/2 messages exported (read by outbound.c) */
	uint64_t lost;		  /* the last of them that could not be sent */
	_Atomic uint64_t lost_late; /* the last that could not be sent again (NATS threads) */
	_Atomic uint64_t stored;  /* 1..stored all acknowledged by JetStream */
	pthread_mutex_t lock;	  /* for <tickets> */
	struct tickets tickets;	  /* acknowledged, for <stored> (tickets.h) */
	struct conn *held;	  /* connections whose output waits for <stored> */
	struct buf data, subject; /* scratch for export */
	uint64_t drain_after;	  /* outbound.c, under cl->out.lock: <issued> at the last disconnect */
	size_t out_held;	  /* outbound.c: copies queued this pass, held until its batch is submitted */
	uint64_t reserved;	  /* outbound.c, under cl->out.lock: room for its PUBLISH's copies */
	struct waiting_export *waiting; /* outbound.c: exported before the join, in order */
	size_t waiting_n, waiting_cap;
	bool settle_after_join; /* started before the join: claim what was made meanwhile */
	/* this pass of waiting exports: the retained bucket did not answer, it
	 * is not asked again (cluster_retained_bucket_newer) */
	bool retained_silent;
	/* the shares the message being exported was sent to (share.c) */
	struct share_set shares;
};

/* A key-value bucket watched by a thread (watch.c). */
struct cluster_watch {
	struct cluster *cl;
	void (*on_entry)(struct cluster *cl, kvEntry *e);
	void (*on_tick)(struct cluster *cl); /* NULL, or called after every wait (1 s at most) */
	kvStore *kv;
	kvWatcher *watcher;
	pthread_t thread;
	bool running;
	atomic_bool loaded; /* the values present when the watch started were handed over */
};

/* Degraded mode (outbound.c): copies for other nodes wait here while NATS
 * is unreachable, and until the queue has drained (order). */
struct cluster_outbound {
	pthread_mutex_t lock;
	pthread_cond_t wake;
	struct outq q;
	uint64_t gen;	       /* the link's generation: +1 at every disconnect */
	bool after_disconnect; /* the queue waits for copies sent before it (drain_after) */
	uint64_t dropped;      /* QoS 0 copies dropped: the queue was full */
	uint64_t waiting_n, waiting_bytes; /* the workers' waiting exports, counted in the bound */
	uint64_t pause_until;  /* monotonic ms: JetStream refused, wait before sending */
	struct buf key, val;   /* scratch for store records */
	pthread_t thread;
	bool running, stopping;
};

struct inbox_item;
struct local_filter;
struct node_entry;
struct remote_node;
struct subidx;

/* Most nodes one message is copied to. */
enum { CLUSTER_MAX_NODES = 64 };

struct cluster {
	struct broker *b;
	char node[CLUSTER_NODE_MAX + 1];
	char name[CLUSTER_NAME_MAX + 1];	     /* cluster_name */
	char wait_prefix[CLUSTER_NAME_MAX + 8];	     /* "<cluster>.p.": a waiting export's record */
	char msg_prefix[CLUSTER_NAME_MAX + 8];	     /* "<cluster>.n." */
	char kv_prefix[CLUSTER_NAME_MAX + 32];	     /* "$KV.<cluster>_retained." */
	char interest_prefix[CLUSTER_NAME_MAX + 32]; /* "$KV.<cluster>_interest." */
	natsOptions *opts;
	natsConnection *nc;
	jsCtx *js;
	natsSubscription *sub; /* the node's durable consumer */
	struct cluster_watch retained, interest;
	/* retained.c: the retained bucket through a JetStream context that
	 * waits RETAINED_WAIT_MS (workers ask it) */
	jsCtx *retained_wjs;
	kvStore *retained_wkv;
	/* this node's filters (interest.c), sorted, under local_lock */
	pthread_mutex_t local_lock;
	struct local_filter **local;
	size_t local_n, local_cap;
	atomic_bool local_dirty; /* changed since last written */
	/* one worker at a time writes them, outside local_lock */
	pthread_mutex_t flush_lock;
	struct buf local_value;	 /* under flush_lock */
	uint64_t flush_retry_ms; /* under flush_lock: no write before (after a failure) */
	/* the other nodes' filters: owners are struct remote_node */
	struct subidx *remote;
	struct remote_node *nodes; /* the watch thread's */
	struct cluster_worker *w;  /* one per worker */
	/* shared subscriptions across nodes (share.c) */
	struct subidx *shares;		  /* every node's shares, by inner filter */
	struct cluster_share *share_list; /* the watch thread's: those some node holds */
	/* the watch thread's: no node holds them; each freed once unused */
	struct cluster_share *share_retired;
	_Atomic uint64_t shares_kept;		  /* on both lists */
	char share_stream[CLUSTER_NAME_MAX + 8];  /* "<cluster>_shares" */
	char share_prefix[CLUSTER_NAME_MAX + 8];  /* "<cluster>.g." */
	char share_deliver[CLUSTER_NAME_MAX + 8]; /* "<cluster>.gd." */
	/* node status and totals (nodes.c) */
	struct cluster_watch nodes_watch;
	bool nodes_started;
	pthread_mutex_t nodes_lock;
	struct node_entry *node_list;		  /* under nodes_lock */
	char nodes_prefix[CLUSTER_NAME_MAX + 16]; /* "$KV.<cluster>_nodes." */
	uint64_t next_status_ms;		  /* worker 0's */
	/* cluster-wide sessions (sessions.c, liveness.c) */
	struct cluster_sessions *sessions;
	struct cluster_liveness *liveness;
	struct cluster_adoption *adoption; /* adopt.c; under post_lock for NATS threads */
	/* messages handed to workers (cluster_route_post) */
	pthread_mutex_t post_lock;
	bool stopping; /* under post_lock: no more */
	/* degraded mode (link.c, outbound.c) */
	uint64_t run;			  /* wall-clock microseconds at start: this run's ids */
	atomic_bool connected;		  /* to NATS now */
	_Atomic uint64_t disconnects;	  /* connections to NATS lost */
	_Atomic uint64_t down_since_ms;	  /* monotonic; when it was lost last */
	atomic_bool shares_recheck;	  /* reconnected: shares' consumers may be gone (share.c) */
	/* joining: at start, or (NATS unreachable then) by <join_thread> once
	 * connected; until <joined> exports wait (outbound.c) and nothing else
	 * uses NATS */
	atomic_bool joined, join_stop;
	/* joined and the other nodes' interest read (the interest watch's
	 * first values): until then local clients' messages wait (join.c) */
	atomic_bool exporting;
	/* the store is restored (cluster_consume); the durable consumer is
	 * started (once both that and <joined>) */
	atomic_bool restored, consuming;
	pthread_t join_thread;
	bool join_running;
	size_t join_done; /* join.c: the steps of the join done (it resumes there) */
	struct cluster_outbound out;
	/* monotonic ms: cluster_stop waits for NATS until then at most */
	uint64_t stop_by_ms;
	/* messages that matched more than CLUSTER_MAX_NODES nodes (cluster.c) */
	_Atomic uint64_t left_out;
	/* handed-over messages posted to workers, and those the workers have
	 * admitted or passed on (handover_in.c: a forward waits for them) */
	_Atomic uint64_t handover_posted, handover_settled;
	/* set first thing in cluster_stop: a forward gives up (handover_in.c);
	 * owner lookups using the sessions' handles now (cluster_forwards_end) */
	atomic_bool stop_begun;
	atomic_uint owner_lookups;
	/* handover_in.c: the owner the sessions bucket named last for the
	 * session of <owner_key> (<owner_rc>: cluster_session_owner's answer),
	 * trusted until <owner_until_ms> (monotonic), under <owner_lock> */
	pthread_mutex_t owner_lock;
	struct buf owner_key;
	char owner[CLUSTER_NODE_MAX + 1];
	int owner_rc;
	uint64_t owner_until_ms;
	/* handover_in.c: messages the stream's thread forwarded, acknowledged
	 * once their store records are durable, under <owner_lock> */
	struct pending_ack *forwarded;
	size_t forwarded_n, forwarded_cap;
};

/* The header that tells the acknowledgement handler which worker's ticket a
 * QoS 1/2 message carries ("<worker> <ticket>"). */
#define CLUSTER_GATE_HEADER "Moat-Gate"
/* Longest subject a message is sent on: NATS refuses control lines over
 * 4 KiB (max_control_line) and would close the node's connection. */
enum { CLUSTER_SUBJECT_MAX = 3072 };
/* The header of a queued copy: "<sequence> <generation>" (outbound.c). */
#define CLUSTER_QUEUE_HEADER "Moat-Queue"
/* JetStream's de-duplication header: a copy sent again with the same id
 * within the streams' duplicate window (CLUSTER_DUPLICATE_WINDOW_NS) is
 * acknowledged without being stored twice. A QoS 1/2 copy sent directly is
 * "<node>.<run>.<worker>.<ticket>" (<run>: the wall clock in microseconds at
 * start), a queued copy "<node>.q<entry number>" (outbound.c). */
#define CLUSTER_MSG_ID_HEADER "Nats-Msg-Id"
#define CLUSTER_DUPLICATE_WINDOW_NS (120LL * 1000000000LL)

/* cluster.c: the JetStream copies (cluster_replicas) of the stream and buckets a node creates. */
int cluster_replicas(const struct cluster *cl);
/* cluster.c: "<prefix>[<name>.]<tokens of topic>" (<name> may be NULL) as a
 * C string in <out> (emptied first). MOAT_OK, MOAT_E_LIMIT (longer than
 * CLUSTER_SUBJECT_MAX) or MOAT_E_NOMEM. */
int cluster_subject(struct buf *out, const char *prefix, const char *name, struct moat_bytes topic);
/* join.c: joins now (NATS connected: MOAT_OK or an error with <err>), or
 * starts the thread that joins once NATS is, and again after a failure.
 * cluster_join_stop ends that thread (cluster_stop). */
int cluster_join_start(struct cluster *cl, char *err, size_t errlen);
void cluster_join_stop(struct cluster *cl);
/* Once joined and the other nodes' interest is read (the join, then the
 * interest watch's thread every second): exports start, the workers are
 * woken to send what waited. */
void cluster_join_exports(struct cluster *cl);
/* cluster.c: starts the node's durable consumer once both the node has
 * joined and its store is restored (handed-over messages then find their
 * sessions), from whichever of the two comes last (the join, or
 * cluster_consume after persist_open); once it worked. */
int cluster_consume_once_ready(struct cluster *cl, char *err, size_t errlen);
/* cluster.c, while the cluster stops: how long it may still wait for an
 * answer from NATS (0 once its time is spent, or NATS is not connected). */
int cluster_stop_wait_ms(struct cluster *cl);
/* Joins <thread>, which may wait on a request to NATS: once the stop's time
 * is spent, the NATS connection is closed (the request fails at once).
 * Outside cluster_stop (a failed join undone) it simply joins. */
void cluster_stop_join(struct cluster *cl, pthread_t thread);

/* watch.c: watches <bucket> (created when missing) in <cw>, calling
 * <on_entry> on the watch thread. MOAT_OK or an error with <err>. */
int cluster_watch_start(struct cluster *cl, struct cluster_watch *cw, const char *bucket,
			void (*on_entry)(struct cluster *cl, kvEntry *e), char *err, size_t errlen);
void cluster_watch_stop(struct cluster_watch *cw);

/* interest.c: this node's filters written to, and the others' read from,
 * the interest bucket. Init (memory only) before the workers run, start
 * once joined. */
int cluster_interest_init(struct cluster *cl, char *err, size_t errlen);
int cluster_interest_start(struct cluster *cl, const char *bucket, char *err, size_t errlen);
void cluster_interest_stop(struct cluster *cl);
void cluster_interest_flush(struct cluster *cl);
/* Puts in <names> (at most <cap>, itself at most CLUSTER_MAX_NODES) the
 * other nodes subscribed to <topic>; returns how many. *<more> (may be
 * NULL): whether further nodes are subscribed too (left out). */
size_t cluster_interested(struct cluster *cl, struct moat_bytes topic, const char **names,
			  size_t cap, bool *more);

/* gate.c: JetStream stored (or refused for good) worker <cw>'s <ticket>:
 * advances <stored> over the contiguous run (any thread). */
void cluster_gate_done(struct cluster_worker *cw, uint64_t ticket);
/* <ticket>'s copy could not be sent again (a NATS thread): it is done, and
 * the connections whose answers waited for it close without them. */
void cluster_gate_lost(struct cluster *cl, unsigned wid, uint64_t ticket);

/* ack.c: acknowledges what worker <w> routed or stored from other nodes
 * and is durable; <submitted>: right after persist_submit (end of a pass). */
void cluster_ack_release(struct worker *w, bool submitted);
/* Destroys <w>'s unacknowledged messages: JetStream sends them again. */
void cluster_ack_fini(struct cluster_worker *cw);

/* retained.c: mirrors the cluster's retained bucket into the local retained
 * store (a thread watching the bucket). MOAT_OK or an error with <err>. */
int cluster_retained_start(struct cluster *cl, const char *bucket, char *err, size_t errlen);
void cluster_retained_stop(struct cluster *cl);
/* Whether a retained message published at <published_ms> (wall clock; 0:
 * not known) before the join gives way to the bucket's value for its
 * topic, written at <created_ns> (wall clock, JetStream's): when that is
 * as recent, or when the message's time is not known. */
bool cluster_retained_bucket_wins(int64_t created_ns, uint64_t published_ms);
/* Whether the bucket's value under <subject> ("$KV.<cluster>_retained.<tokens>")
 * wins over such a message (cluster_retained_bucket_wins); false when the
 * topic has none or the bucket did not answer (a worker; a request, 1 s at
 * most): a message is never dropped for want of an answer. Once the bucket
 * did not answer, *<silent> is set and, while it is, the bucket is not
 * asked (false at once). */
bool cluster_retained_bucket_newer(struct cluster *cl, const char *subject, uint64_t published_ms,
				   bool *silent);

/* Decodes the cluster message in <nm>'s data (wire_decode): its origin
 * node in <node>, the message in <m>. */
int cluster_decode(natsMsg *nm, struct moat_bytes *node, struct msg **m, const char **why);
/* route_post, unless the cluster is stopping (false then, as when the
 * inbox is full: the caller still owns what <item> holds). */
bool cluster_route_post(struct cluster *cl, struct worker *to, const struct inbox_item *item);
/* Hands <m> (its reference) to worker 0: routed, or only stored as retained
 * when <retained_only>; <ack> (may be NULL) is acknowledged once that is
 * done (and durable). False when it could not (then <m> is released and
 * <ack> destroyed unacknowledged). */
bool cluster_post(struct cluster *cl, struct msg *m, bool retained_only, natsMsg *ack);

/* nodes.c: writes this node's status, watches every node's. MOAT_OK or an
 * error with <err>. */
int cluster_nodes_start(struct cluster *cl, const char *cluster_name, char *err, size_t errlen);
void cluster_nodes_stop(struct cluster *cl);

/* ---- shared subscriptions across nodes (share.c) ---- */

/* Hex digits of a share's id. */
enum { CLUSTER_SHARE_ID_LEN = 16 };
/* One "$share/<group>/<filter>" some node holds. */
struct cluster_share {
	struct cluster_share *next;
	struct cluster *cl;
	const void **holders; /* the nodes whose interest lists it (watch thread) */
	size_t holders_n, holders_cap;
	natsSubscription *sub; /* this node's place in its queue group, or NULL */
	/* users besides the watch thread's lists, each of which may hold a
	 * pointer after this node left: a subscription until NATS has called
	 * its callback for the last time, a message on its way to worker 0, a
	 * worker's share_set. Retired (no node holds it), it is freed at 0. */
	atomic_uint refs;
	/* this node holds it but could not join its queue group: this node's
	 * messages go to its members here directly (read by workers) */
	atomic_bool join_failed;
	char id[CLUSTER_SHARE_ID_LEN + 1];
	uint16_t len;
	uint8_t filter[];
};

/* The shares' names and index (memory only, before the workers run). MOAT_OK
 * or an error with <err>. */
int cluster_shares_init(struct cluster *cl, char *err, size_t errlen);
/* Creates the shares' stream (joining). MOAT_OK or an error with <err>. */
int cluster_shares_start(struct cluster *cl, char *err, size_t errlen);
/* Closes this node's subscriptions to them (the NATS connection is closed). */
void cluster_shares_stop(struct cluster *cl);
/* Frees them all, referenced or not (NATS's threads have ended). */
void cluster_shares_fini(struct cluster *cl);
/* Lets go of the shares in <set> (its worker): empties it. */
void cluster_share_set_clear(struct share_set *set);
/* Lets go of a reference to <sh> (any thread). */
void cluster_share_unref(struct cluster_share *sh);
/* The watch thread: <node> (identity only; <here> when it is this node)
 * lists (<add>) or no longer lists shared filter <f>. */
void cluster_share_seen(struct cluster *cl, const void *node, bool here, struct moat_bytes f,
			bool add);
/* Empties <out>, then puts in it the cluster's shares matching <topic>
 * that take this node's messages (not those it holds but could not join);
 * on out of memory some are left out (logged): their members here get the
 * message directly. */
void cluster_shares_matching(struct cluster *cl, struct moat_bytes topic, struct share_set *out);
/* The interest watch thread, every second: frees the retired shares no
 * one uses any more; after a reconnection to NATS (cl->shares_recheck),
 * joins again each share this node holds whose
 * consumer JetStream deleted meanwhile (InactiveThreshold: no node was
 * subscribed), creating it again; tries again next time while JetStream
 * does not answer. */
void cluster_shares_recheck(struct cluster *cl);
/* How many shares cluster_shares_matching would put in <out> (any thread). */
size_t cluster_shares_count(struct cluster *cl, struct moat_bytes topic);

/* ---- cluster-wide sessions ---- */
/* watch.c: opens <bucket> (history 1), created when missing. */
natsStatus cluster_bucket(struct cluster *cl, const char *bucket, kvStore **kv);
/* sessions.c: the workers' shares, before the join (cluster_worker_started
 * holds the Wills of the sessions from the store there); then, at the join,
 * the sessions bucket and this node's takeover notices. */
int cluster_sessions_init(struct cluster *cl, char *err, size_t errlen);
int cluster_sessions_start(struct cluster *cl, const char *name, char *err, size_t errlen);
/* Undoes cluster_sessions_start only (a failed join step, tried again
 * later): the workers' shares and what they hold stay. */
void cluster_sessions_unstart(struct cluster *cl);
void cluster_sessions_stop(struct cluster *cl);
/* End of worker <w>'s pass: takeovers and adoptions for it, changed sessions written. */
void cluster_sessions_flush(struct worker *w);
/* Worker <w>'s first pass after a late join: claims the sessions made (or
 * resumed by their clients) while the node was out of the cluster. */
void cluster_sessions_claim_made_while_out(struct worker *w);
/* handover_in.c: a stream message handed over for one session (handover.h):
 * posted to its owner worker, which acknowledges it once it is in the
 * session (true; also when it is malformed or waits for its session), or
 * not such a message (false, nothing done). */
bool cluster_session_message(struct cluster *cl, natsMsg *nm);
/* cluster_stop, the connection closed: waits until no forward looks up a
 * session's owner any more (at once, NATS being closed; 2 s at most), so
 * the sessions' handles can go. False (logged) when one still does: then
 * nothing of the cluster may be freed. */
bool cluster_forwards_end(struct cluster *cl);
/* Acknowledges the messages the stream's thread forwarded whose store
 * records are durable now (the outbound queue's thread, every second). */
void cluster_forwarded_release(struct cluster *cl);
/* cluster_stop, after cluster_forwards_end: destroys those still waiting
 * (JetStream sends them again). */
void cluster_forwarded_fini(struct cluster *cl);
/* sessions.c: the node the sessions bucket names as the owner of the
 * session of <key> (its client id's subject tokens), in <owner>; waits for
 * the bucket 1 s at most (the workers' JetStream context). MOAT_OK,
 * MOAT_E_NOTFOUND (no entry), MOAT_E_MALFORMED (an entry no node wrote) or
 * MOAT_E_IO (the bucket did not answer). */
int cluster_session_owner(struct cluster *cl, struct moat_bytes key,
			  char owner[CLUSTER_NODE_MAX + 1]);
/* A clean stop without persistence (the workers have stopped): this node's
 * sessions end with it, so their entries are deleted (if still its own). */
void cluster_sessions_leave(struct cluster *cl);
/* liveness.c: heartbeats, and adoption of a silent node's sessions. Halt
 * ends their threads (nothing is claimed any more); stop frees them too
 * and, when the cluster stops, deletes this node's key (a clean leave,
 * published for cluster_stop to wait for). */
int cluster_liveness_start(struct cluster *cl, const char *name, char *err, size_t errlen);
void cluster_liveness_halt(struct cluster *cl);
void cluster_liveness_stop(struct cluster *cl);
/* ---- degraded mode ---- */
/* link.c: reconnects for ever with backoff and tracks the link's state
 * (cl->connected, logged once per transition). */
natsStatus cluster_link_options(struct cluster *cl);
/* NATS was unreachable at start: connects in the background from now on
 * (cl->connected is set, and logged, once it is reachable). */
natsStatus cluster_link_retry(struct cluster *cl);
/* The pause before reconnect attempt <attempts> (1, 2, ...): 100 ms doubling
 * up to 5 s, each spread by up to +-20 % from <rnd> (any 32-bit value). */
int64_t cluster_backoff_ms(int attempts, uint32_t rnd);

/* outbound.c: the queue for copies NATS cannot take now. Init before
 * connecting (the link's callbacks use it), start (the drain thread) once
 * connected, stop before the connection closes, fini once NATS's threads
 * have ended. */
void cluster_outbound_init(struct cluster *cl, uint64_t max_bytes);
int cluster_outbound_start(struct cluster *cl, char *err, size_t errlen);
void cluster_outbound_stop(struct cluster *cl);
void cluster_outbound_fini(struct cluster *cl);
/* Whether exports go to the queue: NATS unreachable, exports not started
 * yet (join.c), or older copies wait (handed-over messages do not count). */
bool cluster_outbound_wanted(struct cluster *cl);
/* Queues the copy <data> for <subject> exported by worker <w> (with
 * persistence on, written in <w>'s batch, so its answer waits for the
 * store, and held until cluster_outbound_flush: a deletion submitted once
 * JetStream stored it must not come before that batch); <promised>: a
 * waiting export's copy, queued even over the bound. MOAT_OK,
 * MOAT_E_LIMIT (full) or MOAT_E_NOMEM. */
int cluster_outbound_push(struct worker *w, const char *subject, const struct buf *data,
			  bool promised);
/* Worker <w> exports local message <m> before the node joined (or while
 * earlier ones still wait): it waits in <w>'s list, counted in the queue's
 * bound and, with persistence on, as a store record in <w>'s batch. A QoS 0
 * message that does not fit is dropped (counted); a QoS 1/2 one's publisher
 * is closed without its answer. */
void cluster_outbound_wait(struct worker *w, const struct msg *m);
/* Once joined, worker <w> (end of its pass) exports its waiting messages
 * through <export> (their copies queued), deletes their records and
 * submits that batch. */
void cluster_outbound_export_waiting(struct worker *w,
				     void (*export)(struct worker *w, const struct msg *m,
						    uint64_t published_ms));
/* Frees <cw>'s waiting messages (stopping; their records stay in the store). */
void cluster_outbound_forget_waiting(struct cluster *cl, struct cluster_worker *cw);
/* cluster_outbound_push for a message handed over with a session: over
 * the bound if need be, and not counted by cluster_outbound_wanted or
 * cluster_queue_full (so a handover neither loses messages nor holds up or
 * refuses publishers). MOAT_OK or MOAT_E_NOMEM. */
int cluster_outbound_push_handover(struct worker *w, const char *subject, const struct buf *data);
/* cluster_outbound_push_handover from a thread that is no worker's (a
 * handed-over message forwarded, handover_in.c): with persistence on, its
 * record is submitted in a batch of its own, store ticket *<ticket> (0:
 * none), before it can be sent. MOAT_OK or MOAT_E_NOMEM. */
int cluster_outbound_forward(struct cluster *cl, const char *subject, struct moat_bytes data,
			     uint64_t *ticket);
/* End of <w>'s pass, its batch submitted: what it queued may be sent. */
void cluster_outbound_flush(struct worker *w);
/* Gives back what <cw>'s PUBLISH reserved in the queue and did not use
 * (cluster_queue_full). */
void cluster_outbound_unreserve(struct cluster *cl, struct cluster_worker *cw);
/* A QoS 0 copy was dropped, the queue being full (counted, logged rarely). */
void cluster_outbound_dropped(struct cluster *cl);
/* The link is down (<up> false: sent copies are sent again later) or up. */
void cluster_outbound_link(struct cluster *cl, bool up);
/* JetStream's answer for <nm> (a NATS thread): true when it was a queued
 * copy, which then leaves the queue (stored) or is sent again (refused). */
bool cluster_outbound_answer(struct cluster *cl, natsMsg *nm, const jsPubAckErr *pae);

/* ---- adoption of a silent node's sessions (adopt.c) ---- */
/* Most node names liveness.c tracks (the cluster's nodes, live or silent). */
enum { CLUSTER_KNOWN_NODES = 2 * CLUSTER_MAX_NODES };

enum action_kind { ACT_TAKEN, ACT_ADOPT };

/* Work a NATS thread or the adopting thread hands a worker (the session's
 * owner, or worker 0). */
struct action {
	struct action *next;
	enum action_kind kind;
	bool hand_over; /* ACT_TAKEN: send the new owner the messages (the entry's) */
	char node[CLUSTER_NODE_MAX + 1]; /* ACT_TAKEN: the new owner (the entry's) */
	uint64_t rev;			 /* ACT_ADOPT: the entry's revision */
	unsigned tries;			 /* ACT_TAKEN: bucket checks that got no answer */
	char *key;
	struct buf value; /* ACT_ADOPT: the entry */
};

struct snapshot;

/* sessions.c: hands <a> to worker <wid> (any thread); dropped once the
 * cluster is stopping. */
void cluster_sessions_post(struct cluster *cl, unsigned wid, struct action *a);
void cluster_action_free(struct action *a);
/* Takes the actions posted to worker <wid> so far (its pass, or cluster_stop
 * once the workers have stopped). */
struct action *cluster_sessions_take(struct cluster *cl, unsigned wid);
/* Gives <s> the subscriptions of <snap>; with <check>, only those its
 * identity may make here (deny by default: this node's ACL decides). */
void cluster_session_restore_subs(struct worker *w, struct session *s, const struct snapshot *snap,
				  bool check);

/* adopt.c: the adopting thread, with its own handle on "<name>_sessions";
 * <alive> is the heartbeats' bucket, whose key of a node is deleted once its
 * sessions are adopted. MOAT_OK or an error with <err>. */
int cluster_adopt_start(struct cluster *cl, const char *name, kvStore *alive, char *err,
			size_t errlen);
/* Halt ends the thread (between two entries); stop also frees what it
 * holds (the claims' window: cluster_adopt_left comes between). */
void cluster_adopt_halt(struct cluster *cl);
void cluster_adopt_stop(struct cluster *cl);
/* The liveness thread: node <dead> stopped answering, adopt its sessions
 * (this node has the lowest living name); or <node> answers again, left or
 * is no longer watched (NULL: every node, NATS was unreachable): adopt none
 * of its sessions from now on. */
void cluster_adopt_request(struct cluster *cl, const char *dead);
void cluster_adopt_cancel(struct cluster *cl, const char *node);
/* A NATS thread: a takeover notice for <key>, which this node claimed for
 * an adoption whose session does not exist yet: remembered for it (true),
 * or no such adoption (false). Only that one came counts, not what it
 * claims: the bucket decides once the session exists (check_claim). */
bool cluster_adopt_park(struct cluster *cl, const char *key);
/* Worker 0: makes <a>'s entry (ACT_ADOPT, claimed for this node) an offline
 * session; when a takeover notice was parked for it, <a> becomes that
 * notice (ACT_TAKEN) for the caller to act on. */
void cluster_adopt(struct worker *w, struct action *a);
/* cluster_stop, once the adopting thread and the workers have stopped:
 * makes the sessions claimed but not made yet (left in worker 0's actions)
 * offline sessions, as worker 0 would have; those the store does not keep
 * send their Wills now, as at any clean stop. */
void cluster_adopt_left(struct cluster *cl);

#endif
