/*
 * moatd's cluster over NATS JetStream (docs/cluster.md). Nodes with the same
 * cluster_name share one stream of messages, a key-value bucket of retained
 * messages and one of each node's filters, so a message is copied only to
 * the nodes with a matching subscription, on that node's subject. The
 * broker calls in at a few places: start and stop, when a local client's
 * message has been routed (export), when a session's filters change, at
 * the end of a loop pass, and around QoS 1/2 answers (their connection's
 * output waits until JetStream has stored what the packet exported).
 * Messages of other nodes arrive on NATS threads and reach the local
 * routing through worker 0's inbox, marked remote so they are never
 * exported again. Without cluster_url b->cluster is NULL, every function
 * returns at once and no NATS code runs.
 */
#ifndef MOAT_CLUSTER_CLUSTER_H
#define MOAT_CLUSTER_CLUSTER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <moat/bytes.h>

struct broker;
struct worker;
struct conn;
struct msg;
struct inbox_item;

/* Joins the cluster when cluster_url is configured (b->cluster set): its
 * workers and retained store exist, their threads need not run. MOAT_OK
 * (also without a cluster) or an error with <err> filled. */
int cluster_start(struct broker *b, char *err, size_t errlen);
/* Starts consuming the node's durable consumer (other nodes' messages and
 * sessions' handed-over ones), once the store gave the sessions back (so
 * a handed-over message finds its session, in order). MOAT_OK (also without
 * a cluster) or an error with <err> filled (then the cluster is stopped). */
int cluster_consume(struct broker *b, char *err, size_t errlen);
/* Waits (bounded) for what was exported to be stored, then leaves the
 * cluster. Safe to call twice and without a cluster. */
void cluster_stop(struct broker *b);

/* Worker <w> routes <m>, a local client's message: publishes it to the
 * stream (QoS 1/2: its answer is gated), and to the retained bucket when it
 * is retained. Does nothing for remote messages and $SYS topics. True for
 * a remote message: the cluster delivered it to shared subscriptions
 * already (share.c), so local routing skips them all. False otherwise
 * (also without a cluster); then local routing skips only the shared
 * subscriptions for which cluster_share_exported() is true. */
bool cluster_export(struct worker *w, const struct msg *m);
/* Whether worker <w>'s last cluster_export() sent its message to shared
 * subscription <shared> ("$share/<group>/<filter>") through the cluster, so
 * that share's members here get it from there (share.c). */
bool cluster_share_exported(struct worker *w, struct moat_bytes shared);

/* A session of this node subscribed to (<add>) or left <filter>: other
 * nodes send this node only what its filters match (interest.c). */
void cluster_interest(struct broker *b, struct moat_bytes filter, bool add);
/* End of worker <w>'s loop pass: writes this node's filters if they changed. */
void cluster_flush(struct worker *w);

/* Worker <w> routed or stored a message of another node (an inbox item's
 * <cluster_ack>); <mark> is persist_mark() from before. The NATS message is
 * acknowledged now, or once what that wrote to the store is durable, so a
 * node that dies first gets it again from its durable consumer. */
void cluster_routed(struct worker *w, void *cluster_ack, uint32_t mark);
/* Destroys <cluster_ack> unacknowledged (an inbox item dropped). */
void cluster_forget(void *cluster_ack);
/* A share's message found no member here: JetStream gives it to another
 * node of the share (share.c). */
void cluster_refuse(void *cluster_ack);
/* Worker 0 is done with <share>, a share's message's inbox_item.share
 * (share.c): the share may be freed once no node holds it. */
void cluster_share_done(struct moat_bytes share);
/* Worker <w>, the owner of <item>'s session, about to deliver <item>, a
 * message handed over with the session (<cluster_ack> set): true with the
 * QoS to deliver it at in *<qos> (no higher than the session's matching
 * subscriptions grant; <item>'s identifiers cut to theirs); false when it
 * must not go in (the session is gone: refused, JetStream sends it again;
 * no subscription of the session matches it, or its ACL forbids it:
 * acknowledged, dropped, logged), <cluster_ack> then consumed (NULL). */
bool cluster_handover_admit(struct worker *w, struct inbox_item *item, uint8_t *qos);

/* ---- gating answers on JetStream (as persist.h gates them on the store) ---- */
/* How many QoS 1/2 messages <w> has exported so far: compare after a packet. */
uint64_t cluster_mark(const struct worker *w);
/* Holds <c>'s output until what its worker exported since <mark> is stored. */
void cluster_gate_since(struct conn *c, uint64_t mark);
/* Whether <c>'s output must wait (then it is on its worker's held list). */
bool cluster_hold_output(struct worker *w, struct conn *c);
/* Marks dirty every held connection whose messages are now stored (on wake). */
void cluster_release(struct worker *w);
/* <c> closes: it leaves the held list. */
void cluster_conn_closed(struct worker *w, struct conn *c);

/* ---- node status and cluster totals (nodes.c, node_status.h) ---- */

/* Every live node's last figures summed (silent ones are counted in
 * <nodes> only). */
struct cluster_totals {
	uint64_t nodes, nodes_alive;
	uint64_t clients_connected, sessions, subscriptions;
	uint64_t messages_received, messages_sent;
};

/* Worker 0, once a second: writes this node's status every few seconds. */
void cluster_tick(struct broker *b, uint64_t now_ms);
/* Fills <t> from the nodes' bucket; false (zeros) without a cluster. Any thread. */
bool cluster_totals(struct broker *b, struct cluster_totals *t);
/* ---- cluster-wide sessions (sessions.c) ---- */
struct session;
/* <c> connected with its session c->sess (set up, CONNACK not yet sent;
 * <present>: it resumed this node's copy): claims it in the sessions bucket
 * (another node's connection for it closes). A copy another node has had
 * since is stale: reset. Without <clean_start> a session another node had
 * goes on here (its subscriptions restored, its messages handed over).
 * Returns whether the session is present. */
bool cluster_session_connect(struct conn *c, bool clean_start, bool present);
/* <s>'s client went; the session stays (offline). */
void cluster_session_offline(struct worker *w, struct session *s);
/* <s> ends on this node: its entry goes, unless another node took it. */
void cluster_session_ended(struct worker *w, struct session *s);
/* <s>'s subscriptions changed: its entry is written at the end of the pass. */
void cluster_session_changed(struct worker *w, struct session *s);
/* Worker <w> starts, its sessions restored from the store: their delayed
 * Wills are held until, once joined, the sessions bucket is asked about
 * them; those whose entry names another node (it adopted or resumed them
 * while this node was down) or was deleted are stale here and end quietly
 * (no Will). */
void cluster_worker_started(struct worker *w);
/* ---- degraded mode: NATS unreachable (link.c, outbound.c) ---- */
/* The link to NATS and the outbound queue, for $SYS and /metrics. */
struct cluster_link {
	bool connected;
	uint64_t queued_msgs, queued_bytes; /* copies waiting for JetStream */
	uint64_t dropped;		    /* QoS 0 copies dropped: the queue was full */
	uint64_t disconnects;		    /* connections to NATS lost */
	uint64_t shares;		    /* shares this node keeps (share.c) */
};
/* False without a cluster; otherwise fills <st>. Any thread. */
bool cluster_link_status(struct broker *b, struct cluster_link *st);
/* Whether a QoS 1/2 PUBLISH of <topic> with <payload_len> bytes must be
 * refused by worker <w>: other nodes want it, and the queue it would wait
 * in is full. Otherwise the room for its copies is reserved for <w>'s next
 * cluster_export (which gives back what it does not use; so does the
 * next call, and cluster_flush). */
bool cluster_queue_full(struct worker *w, struct moat_bytes topic, size_t payload_len);
/* A queued copy read back from the store at start-up (persist_restore.c).
 * MOAT_OK, MOAT_E_NOTFOUND (no cluster: the record is dropped),
 * MOAT_E_MALFORMED (not a copy of this cluster's: dropped, logged here) or
 * MOAT_E_NOMEM. */
int cluster_outbound_restore(struct broker *b, uint64_t seq, struct moat_bytes subject,
			     struct moat_bytes data);

#endif
