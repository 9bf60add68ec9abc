/*
 * Answers that wait for JetStream (see cluster.h): a PUBACK or PUBREC for a
 * message exported at QoS 1/2 leaves only once JetStream has acknowledged
 * storing it. Tickets are counted per worker and acknowledged in any
 * order (a lost acknowledgement times out and is sent again), so a
 * worker's "stored" mark is the end of the contiguous run of acknowledged
 * tickets (tickets.h). A ticket that could not be sent (or sent again)
 * closes the connections whose answers waited for it, unacknowledged.
 */
#include "cluster/cluster_int.h"

#include "base/log.h"
#include "broker/broker.h"

void cluster_gate_done(struct cluster_worker *cw, uint64_t ticket)
{
	uint64_t stored;

	pthread_mutex_lock(&cw->lock);
	if (tickets_done(&cw->tickets, ticket, &stored) < 0)
		log_warn("cluster: out of memory: answers wait for JetStream until their "
			 "connections close");
	atomic_store(&cw->stored, stored);
	pthread_mutex_unlock(&cw->lock);
}

void cluster_gate_lost(struct cluster *cl, unsigned wid, uint64_t ticket)
{
	struct cluster_worker *cw = &cl->w[wid];
	uint64_t seen = atomic_load(&cw->lost_late);

	while (seen < ticket && !atomic_compare_exchange_weak(&cw->lost_late, &seen, ticket))
		;
	cluster_gate_done(cw, ticket); /* after: a release sees it lost */
	worker_wake(&cl->b->workers[wid]);
}

/* Closes <c> without the answers in its output: the client sends again
 * what they acknowledged. */
static void drop_answers(struct conn *c)
{
	buf_consume(&c->out, buf_used(&c->out));
	c->closing = true;
	server_mark_dirty(c);
}

/* Whether a ticket <c>'s answers waited for was lost after all (the
 * latest lost one only: losses are rare, and a connection spanning an
 * earlier one has usually been released by then). */
static bool lost_late(struct cluster_worker *cw, const struct conn *c)
{
	uint64_t t = atomic_load(&cw->lost_late);

	return t != 0 && c->cluster_gate_from <= t && t <= c->cluster_gate;
}

uint64_t cluster_mark(const struct worker *w)
{
	const struct cluster *cl = w->b->cluster;

	return cl != NULL ? cl->w[w->id].issued : 0;
}

void cluster_gate_since(struct conn *c, uint64_t mark)
{
	uint64_t now = cluster_mark(c->w);

	if (now <= mark)
		return;
	if (c->cluster_gate == 0)
		c->cluster_gate_from = mark + 1;
	c->cluster_gate = now;
	/* a copy was never sent: no answer goes out, so the client sends the
	 * message again (after reconnecting) */
	if (c->w->b->cluster->w[c->w->id].lost > mark)
		drop_answers(c);
}

bool cluster_hold_output(struct worker *w, struct conn *c)
{
	struct cluster_worker *cw;

	if (c->cluster_gate == 0)
		return false;
	cw = &w->b->cluster->w[w->id];
	if (c->cluster_gate <= atomic_load(&cw->stored)) {
		if (lost_late(cw, c))
			drop_answers(c);
		c->cluster_gate = 0;
		return false;
	}
	if (!c->cluster_held) {
		c->cluster_held = true;
		c->cluster_held_next = cw->held;
		cw->held = c;
	}
	return true;
}

void cluster_release(struct worker *w)
{
	struct cluster *cl = w->b->cluster;
	struct cluster_worker *cw;
	struct conn **pp;
	uint64_t stored;

	if (cl == NULL)
		return;
	cluster_ack_release(w, false);
	cw = &cl->w[w->id];
	stored = atomic_load(&cw->stored);
	for (pp = &cw->held; *pp != NULL;) {
		struct conn *c = *pp;

		if (c->cluster_gate > stored) {
			pp = &c->cluster_held_next;
			continue;
		}
		*pp = c->cluster_held_next;
		c->cluster_held = false;
		if (lost_late(cw, c))
			drop_answers(c);
		c->cluster_gate = 0;
		server_mark_dirty(c);
	}
}

void cluster_conn_closed(struct worker *w, struct conn *c)
{
	struct conn **pp;

	if (!c->cluster_held)
		return;
	for (pp = &w->b->cluster->w[w->id].held; *pp != c; pp = &(*pp)->cluster_held_next)
		;
	*pp = c->cluster_held_next;
	c->cluster_held = false;
}
