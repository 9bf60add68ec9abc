/*
 * Acknowledging other nodes' messages (see cluster.h, cluster_routed): a
 * message is acknowledged to JetStream once worker 0 has routed it and,
 * when routing wrote entries for stored sessions, once the store made that
 * pass durable. Until then the node's durable consumer would send it again
 * after a crash, so a QoS 1/2 message for a persistent session is never
 * lost between the stream and the session's queue (it may come twice).
 */
#include "cluster/cluster_int.h"

#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "broker/broker.h"
#include "broker/persist.h"

static void ack(natsMsg *m)
{
	natsMsg_Ack(m, NULL);
	natsMsg_Destroy(m);
}

void cluster_routed(struct worker *w, void *cluster_ack, uint32_t mark)
{
	struct cluster_worker *cw;

	if (cluster_ack == NULL)
		return;
	if (persist_mark(w) == mark) {
		ack(cluster_ack); /* nothing to wait for */
		return;
	}
	cw = &w->b->cluster->w[w->id];
	if (cw->ack_n == cw->ack_cap) {
		size_t cap = cw->ack_cap ? cw->ack_cap * 2 : 64;
		struct pending_ack *v = realloc(cw->acks, cap * sizeof(*v));

		if (v == NULL) {
			/* not acknowledged: JetStream sends it again, so it may come twice */
			log_warn("cluster: out of memory: a message will be delivered again");
			natsMsg_Destroy(cluster_ack);
			return;
		}
		cw->acks = v;
		cw->ack_cap = cap;
	}
	cw->acks[cw->ack_n++] = (struct pending_ack){PERSIST_GATE_THIS_PASS, cluster_ack};
}

void cluster_forget(void *cluster_ack)
{
	natsMsg_Destroy(cluster_ack);
}

void cluster_ack_release(struct worker *w, bool submitted)
{
	struct cluster_worker *cw = &w->b->cluster->w[w->id];
	uint64_t durable;
	size_t done = 0;

	if (cw->ack_n == 0)
		return;
	/* this pass's writes have their ticket once persist_submit ran */
	for (size_t i = cw->ack_n;
	     submitted && i > 0 && cw->acks[i - 1].gate == PERSIST_GATE_THIS_PASS; i--)
		cw->acks[i - 1].gate = w->pass_ticket;
	durable = store_durable(w->b->store);
	while (done < cw->ack_n && cw->acks[done].gate <= durable)
		ack(cw->acks[done++].msg); /* THIS_PASS is UINT64_MAX: never durable */
	cw->ack_n -= done;
	memmove(cw->acks, cw->acks + done, cw->ack_n * sizeof(*cw->acks));
}

void cluster_ack_fini(struct cluster_worker *cw)
{
	for (size_t i = 0; i < cw->ack_n; i++)
		natsMsg_Destroy(cw->acks[i].msg);
	free(cw->acks);
	cw->acks = NULL;
	cw->ack_n = cw->ack_cap = 0;
}
