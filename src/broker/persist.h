/*
 * The broker's durable state (docs/persistence.md): what changes in
 * sessions, subscriptions, queues, in-flight windows, inbound QoS 2 ids,
 * retained messages and delayed Wills is written to the store (src/store)
 * as it happens, and read back at start-up.
 *
 * Each worker collects its writes during a loop pass in one batch and
 * submits it at the end of the pass, before the pass's deliveries go to
 * other workers (so a record is always written before another worker can
 * change or delete it). An answer that promises durability (PUBACK, PUBREC,
 * PUBCOMP, SUBACK; a QoS 2 PUBLISH or PUBREL sent) holds its connection's
 * whole output (its "gate") until the store reports the pass's batch
 * durable; the store wakes the worker then. With persistence off, b->store
 * is NULL and every function here returns at once.
 */
#ifndef MOAT_BROKER_PERSIST_H
#define MOAT_BROKER_PERSIST_H

#include "broker/broker.h"

/* The gate value meaning "the batch of this pass", resolved at submission. */
#define PERSIST_GATE_THIS_PASS UINT64_MAX

/* Opens the store (when cfg->persistence) and restores what it holds into
 * <b>, whose workers, index and retained store exist but whose threads do
 * not run yet. On error fills <err> (naming the store and the record, and
 * the way out) and returns a negative moat_err. */
int persist_open(struct broker *b, char *err, size_t errlen);
/* Makes everything submitted durable and closes the store; after the
 * workers stopped. */
void persist_close(struct broker *b);
void persist_worker_fini(struct worker *w);

/* Whether new QoS 1/2 messages must be refused: the store is full or failing. */
bool persist_refusing(const struct broker *b);

/* ---- sessions (their owner only) ---- */
/* Writes <s> (version, expiry, identity; offline since <offline_wall_ms>, 0 =
 * online) when it outlives its connection; drops its records otherwise. */
void persist_session_save(struct worker *w, struct session *s, uint64_t offline_wall_ms);
/* Deletes every record of <s>. */
void persist_session_drop(struct worker *w, struct session *s);
void persist_sub_save(struct worker *w, const struct session *s, struct moat_bytes filter,
		      const struct mqtt_sub_opts *o, uint32_t sub_id);
void persist_sub_drop(struct worker *w, const struct session *s, struct moat_bytes filter);
void persist_qos2_in(struct worker *w, const struct session *s, uint16_t packet_id, bool add);
/* Writes <s>'s delayed Will, or deletes it when s->will is NULL. */
void persist_will(struct worker *w, const struct session *s);

/* ---- messages ---- */
/* Before <m> is delivered to the targets in w->route: writes the message
 * once and an entry per stored session it goes to at QoS 1/2, setting each
 * target's store_id. <m> must be new (never routed before). */
void persist_route(struct worker *w, struct msg *m);
/* Writes retained message <m> under its topic (or deletes the topic's
 * record when <m> has an empty payload). */
void persist_retain(struct worker *w, const struct msg *m);
void persist_retain_drop(struct worker *w, struct moat_bytes topic);
/* A delivery to stored session <s> that has no entry yet (a retained
 * message after SUBSCRIBE): writes one with the message inline. */
void persist_entry_add(struct worker *w, const struct session *s, struct delivery *d);
/* Writes <d>'s new state (sent with its packet id, or PUBREL sent). */
void persist_entry_update(struct worker *w, const struct session *s, const struct delivery *d);
/* Deletes entry <entry_id> of client <client_id>, and the shared message
 * <m> with its last entry when <shared>. */
void persist_entry_drop(struct worker *w, const char *client_id, uint64_t entry_id, struct msg *m,
			bool shared);

/* ---- gating answers on durability ---- */
/* The number of writes in <w>'s open batch: compare after handling a packet. */
uint32_t persist_mark(const struct worker *w);
/* Holds <c>'s output until this pass's batch is durable, if anything was
 * written since <mark>. */
void persist_gate_since(struct conn *c, uint32_t mark);
/* Submits <w>'s batch (end of a loop pass, before route_flush_outboxes). */
void persist_submit(struct worker *w);
/* Whether <c>'s output must wait (then it is on w's gated list). */
bool persist_hold_output(struct worker *w, struct conn *c);
/* Marks dirty every gated connection whose batch is now durable (on wake). */
void persist_release(struct worker *w);
/* <c> closes: it leaves the gated list. */
void persist_conn_closed(struct worker *w, struct conn *c);

/* ---- shared by persist.c and persist_restore.c ---- */
struct rec_msg;
struct rec_ident_src;
/* <m> as a record (views into <m>; <author> holds its author's identity). */
void persist_msg_to_rec(const struct msg *m, struct rec_msg *r, struct rec_ident_src *author);
/* A message read back (refs = 1); NULL on out of memory. Its expiry may have passed. */
struct msg *persist_msg_from_rec(const struct rec_msg *r, uint64_t now_mono, uint64_t now_wall);
/* A wall-clock time as a monotonic one (now when it has passed). */
uint64_t persist_wall_to_mono(uint64_t wall_ms, uint64_t now_mono, uint64_t now_wall);

/* ---- `moatd --check-store` / `--repair-store` ---- */
/* Reads every record of the configured store and reports damage on stdout;
 * with <repair>, deletes the damaged records (each is listed). Returns 0 when
 * the store is sound (or repaired), 1 when damage remains, 2 on errors. */
int persist_check(const struct moat_config *cfg, bool repair);

#endif
