/*
 * Taking a snapshot of the broker's figures (see stats.h): every worker's
 * counters summed, the shared structures' counts, and the heap as glibc
 * reports it.
 */
#include "broker/stats.h"

#include <malloc.h>
#include <stdlib.h>

#include <moat/error.h>

#include "bridge/bridge.h"
#include "broker/broker.h"

static uint64_t load(const _Atomic uint64_t *c)
{
	return atomic_load_explicit(c, memory_order_relaxed);
}

/* Adds worker counters <c> into <out>; <open> collects accepted - closed. */
static void add_listener(struct stats_listener *out, int64_t *open,
			 const struct listener_counters *c)
{
	uint64_t accepted = load(&c->accepted);

	out->accepted += accepted;
	*open += (int64_t)(accepted - load(&c->closed));
	for (unsigned q = 0; q < 3; q++) {
		out->msgs_in[q] += load(&c->msgs_in[q]);
		out->msgs_out[q] += load(&c->msgs_out[q]);
		out->pub_bytes_in[q] += load(&c->pub_bytes_in[q]);
		out->pub_bytes_out[q] += load(&c->pub_bytes_out[q]);
	}
	out->pkts_in += load(&c->pkts_in);
	out->pkts_out += load(&c->pkts_out);
	out->bytes_in += load(&c->bytes_in);
	out->bytes_out += load(&c->bytes_out);
}

static void add_totals(struct stats_listener *t, const struct stats_listener *l)
{
	t->connections += l->connections;
	t->accepted += l->accepted;
	for (unsigned q = 0; q < 3; q++) {
		t->msgs_in[q] += l->msgs_in[q];
		t->msgs_out[q] += l->msgs_out[q];
		t->pub_bytes_in[q] += l->pub_bytes_in[q];
		t->pub_bytes_out[q] += l->pub_bytes_out[q];
	}
	t->pkts_in += l->pkts_in;
	t->pkts_out += l->pkts_out;
	t->bytes_in += l->bytes_in;
	t->bytes_out += l->bytes_out;
}

/* Adds listener <l> to st->listeners: listeners on the same port (on
 * different addresses) are one entry, as they are one label value. */
static void add_listener_stats(struct stats *st, const struct stats_listener *l)
{
	for (unsigned i = 0; i < st->nlisteners; i++) {
		if (st->listeners[i].port == l->port) {
			add_totals(&st->listeners[i], l);
			return;
		}
	}
	st->listeners[st->nlisteners++] = *l;
}

/* A gauge summed over workers: each worker's share wraps modulo 2^64, the
 * sum does not, except for a moment while a change is half seen. */
static uint64_t gauge(uint64_t sum)
{
	return (int64_t)sum < 0 ? 0 : sum;
}

static void heap(struct broker *b, struct stats *st)
{
	struct mallinfo2 mi = mallinfo2();
	uint64_t max = atomic_load_explicit(&b->heap_maximum, memory_order_relaxed);

	st->heap_current = (uint64_t)mi.uordblks + (uint64_t)mi.hblkhd;
	while (st->heap_current > max &&
	       !atomic_compare_exchange_weak(&b->heap_maximum, &max, st->heap_current))
		;
	st->heap_maximum = st->heap_current > max ? st->heap_current : max;
}

/* The bridges' counters (none configured: nothing). */
static int bridge_stats(const struct broker *b, struct stats *st)
{
	size_t n = bridges_status(b->bridges, NULL, 0);

	if (n == 0)
		return MOAT_OK;
	st->bridges = calloc(n, sizeof(*st->bridges));
	if (st->bridges == NULL)
		return MOAT_E_NOMEM;
	st->nbridges = bridges_status(b->bridges, st->bridges, n);
	return MOAT_OK;
}

int stats_collect(struct broker *b, struct stats *st, uint64_t now_ms)
{
	const struct moat_listener_conf *lc = b->cfg->listeners;
	uint64_t queued = 0, queued_bytes = 0, inflight = 0, inflight_bytes = 0, shared = 0;

	*st = (struct stats){.version = MOAT_VERSION};
	st->uptime_s = now_ms > b->started_ms ? (now_ms - b->started_ms) / 1000u : 0;
	st->listeners = calloc(b->nstat_listeners ? b->nstat_listeners : 1, sizeof(*st->listeners));
	if (st->listeners == NULL)
		return MOAT_E_NOMEM;
	for (unsigned i = 0; i <= b->nstat_listeners; i++) {
		struct stats_listener one = {0};
		int64_t open = 0;

		for (unsigned k = 0; k < b->nworkers; k++)
			add_listener(&one, &open, &b->workers[k].sys.listeners[i]);
		one.connections = open > 0 ? (uint64_t)open : 0;
		add_totals(&st->total, &one);
		if (i < b->nstat_listeners) {
			one.port = lc != NULL ? lc->port : 0;
			lc = lc != NULL ? lc->next : NULL;
			add_listener_stats(st, &one);
		}
	}
	for (unsigned k = 0; k < b->nworkers; k++) {
		const struct sys_counters *c = &b->workers[k].sys;

		st->publish_dropped += load(&c->publish_dropped);
		st->publish_refused += load(&c->publish_refused);
		st->clients_refused += load(&c->clients_refused);
		st->clients_expired += load(&c->clients_expired);
		st->connects += load(&c->connects);
		queued += load(&c->queued_msgs);
		queued_bytes += load(&c->queued_bytes);
		inflight += load(&c->inflight_msgs);
		inflight_bytes += load(&c->inflight_bytes);
		shared += load(&c->shared_subs);
	}
	st->has_cluster = cluster_link_status(b, &st->cluster_link);
	st->queued_msgs = gauge(queued);
	st->queued_bytes = gauge(queued_bytes);
	st->inflight_msgs = gauge(inflight);
	st->inflight_bytes = gauge(inflight_bytes);
	st->shared_subscriptions = gauge(shared);
	st->auth_failures = atomic_load_explicit(&b->auth_failures, memory_order_relaxed);
	st->acl_denials = atomic_load_explicit(&b->acl_denials, memory_order_relaxed);
	st->clients_connected = atomic_load_explicit(&b->clients_connected, memory_order_relaxed);
	st->clients_maximum = atomic_load_explicit(&b->clients_maximum, memory_order_relaxed);
	pthread_mutex_lock(&b->table_lock);
	st->sessions = b->session_count;
	pthread_mutex_unlock(&b->table_lock);
	st->clients_disconnected =
	    st->sessions > st->clients_connected ? st->sessions - st->clients_connected : 0;
	st->subscriptions = route_sub_count(b);
	st->retained = route_retained_count(b);
	heap(b, st);
	st->has_store = b->store != NULL;
	if (st->has_store) {
		store_get_stats(b->store, &st->store);
		st->store_refusing = store_refusing(b->store);
	}
	cluster_totals(b, &st->cluster); /* zeros without a cluster */
	return bridge_stats(b, st);
}

void stats_fini(struct stats *st)
{
	free(st->listeners);
	st->listeners = NULL;
	st->nlisteners = 0;
	free(st->bridges);
	st->bridges = NULL;
	st->nbridges = 0;
}
