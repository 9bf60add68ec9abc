/*
 * The broker's shared state and its workers: set up before the loops start
 * and torn down after they stop (server.c runs them). Tearing down ends every
 * session and lets go of whatever work is still queued between workers.
 */
#include "broker/broker.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <moat/error.h>

#include "base/clock.h"
#include "base/log.h"
#include "broker/audit.h"
#include "broker/persist.h"
#include "cluster/cluster.h"
#include "broker/revocation.h"
#include "broker/security.h"
#include "broker/sys_load.h"

enum { SESSION_TABLE_BUCKETS = 4096, MAX_WORKERS = 64, VERIFY_QUEUE_MAX = 1024 };

/* cfg->threads, or one per online core when it is 0. */
static unsigned worker_count(const struct moat_config *cfg)
{
	long cores = sysconf(_SC_NPROCESSORS_ONLN);
	unsigned n = cfg->threads != 0 ? cfg->threads : (cores > 0 ? (unsigned)cores : 1);

	return n < MAX_WORKERS ? n : MAX_WORKERS;
}

int broker_init(struct broker *b, struct moat_config *cfg)
{
	char err[600];
	int rc;

	memset(b, 0, sizeof(*b));
	b->cfg = cfg;
	b->nworkers = worker_count(cfg);
	b->session_buckets = SESSION_TABLE_BUCKETS;
	b->sessions = calloc(b->session_buckets, sizeof(*b->sessions));
	b->workers = calloc(b->nworkers, sizeof(*b->workers));
	if (b->sessions == NULL || b->workers == NULL || route_init(b) < 0)
		goto err;
	pthread_mutex_init(&b->table_lock, NULL);
	pthread_mutex_init(&b->revocation_lock, NULL);
	for (const struct moat_listener_conf *l = cfg->listeners; l != NULL; l = l->next)
		b->nstat_listeners++;
	b->load = calloc(1, sizeof(*b->load));
	if (b->load == NULL)
		goto err;
	for (unsigned i = 0; i < b->nworkers; i++) {
		struct worker *w = &b->workers[i];

		w->b = b;
		w->id = i;
		w->epfd = w->wake_fd = -1;
		pthread_mutex_init(&w->inbox_lock, NULL);
		store_batch_init(&w->batch);
		w->outbox = calloc(b->nworkers, sizeof(*w->outbox));
		w->sys.listeners = calloc(b->nstat_listeners + 1, sizeof(*w->sys.listeners));
		if (w->outbox == NULL || w->sys.listeners == NULL)
			goto err;
	}
	b->security = security_load(cfg, err, sizeof(err));
	if (b->security == NULL) {
		log_err("%s", err);
		broker_fini(b);
		return MOAT_E_CONFIG;
	}
	pthread_mutex_init(&b->security_lock, NULL);
	for (unsigned i = 0; i < b->nworkers; i++)
		b->workers[i].security = security_ref(b->security);
	if (addr_limits_init(&b->addrs, cfg) < 0 ||
	    verify_pool_start(&b->pool, b->nworkers < 4 ? b->nworkers : 4, VERIFY_QUEUE_MAX) < 0)
		goto err;
	rc = broker_load_sc_key(b, err, sizeof(err));
	/* first: the subscriptions the store gives back are this node's interest */
	if (rc == MOAT_OK)
		rc = cluster_start(b, err, sizeof(err));
	if (rc == MOAT_OK)
		rc = persist_open(b, err, sizeof(err));
	if (rc == MOAT_OK)
		rc = cluster_consume(b, err, sizeof(err));
	if (rc < 0) {
		log_err("%s", err);
		broker_fini(b);
		return rc;
	}
	broker_restore_revocation(b);
	b->started_ms = clock_mono_ms();
	b->started_wall_s = clock_wall_s();
	return MOAT_OK;
err:
	broker_fini(b);
	return MOAT_E_NOMEM;
}

int broker_reload_security(struct broker *b)
{
	char err[600];
	struct security *fresh = security_load(b->cfg, err, sizeof(err)), *old;
	struct audit_event e = { .event = "reload", .result = fresh != NULL ? "ok" : "fail",
				 .reason = fresh != NULL ? "password, ACL and token files reloaded" : err };

	audit_write(&e);
	if (fresh == NULL) {
		log_err("reload failed, keeping the files loaded before: %s", err);
		return MOAT_E_CONFIG;
	}
	pthread_mutex_lock(&b->security_lock);
	old = b->security;
	b->security = fresh;
	atomic_fetch_add(&b->security_gen, 1);
	pthread_mutex_unlock(&b->security_lock);
	security_unref(old);
	log_notice("reloaded the password, ACL and token files");
	return MOAT_OK;
}

bool worker_adopt_security(struct worker *w)
{
	struct broker *b = w->b;
	unsigned gen = atomic_load_explicit(&b->security_gen, memory_order_acquire);

	if (gen == w->security_gen)
		return false;
	pthread_mutex_lock(&b->security_lock);
	security_unref(w->security);
	w->security = security_ref(b->security);
	w->security_gen = atomic_load(&b->security_gen);
	pthread_mutex_unlock(&b->security_lock);
	return true;
}

void broker_shutdown_flush(struct broker *b)
{
	cluster_stop(b);	/* its last messages reach worker inboxes: dropped with them */
	for (unsigned i = 0; i < b->nworkers; i++)
		persist_submit(&b->workers[i]);
	persist_close(b);
}

static void forget_acks(struct item_list *l)
{
	for (size_t i = 0; i < l->n; i++) {
		cluster_forget(l->v[i].cluster_ack);
		l->v[i].cluster_ack = NULL;
	}
}

void broker_forget_cluster_acks(struct broker *b)
{
	for (unsigned i = 0; b->workers != NULL && i < b->nworkers; i++) {
		struct worker *w = &b->workers[i];

		pthread_mutex_lock(&w->inbox_lock);
		forget_acks(&w->inbox);
		pthread_mutex_unlock(&w->inbox_lock);
		for (unsigned k = 0; w->outbox != NULL && k < b->nworkers; k++)
			forget_acks(&w->outbox[k]); /* the worker's own: it has stopped */
	}
}

/* Lets go of the items in <l> without acting on them; a connection still
 * on its way between workers is closed. */
static void drop_items(struct item_list *l)
{
	for (size_t i = 0; i < l->n; i++) {
		struct inbox_item *item = &l->v[i];

		if (item->conn != NULL)
			server_drop_conn(item->conn);
		if (item->job != NULL)
			auth_job_returned(NULL, item->job);	/* its connection is gone */
		cluster_forget(item->cluster_ack);
		msg_unref(item->msg);
		if (item->sess != NULL)
			sess_unref(item->sess);
	}
	free(l->v);
	*l = (struct item_list){ 0 };
}

void broker_fini(struct broker *b)
{
	verify_pool_stop(&b->pool);	/* every job is back in an inbox */
	cluster_stop(b);	/* no more items from NATS threads */
	persist_close(b);	/* first: what is torn down below stays in the store */
	if (b->workers == NULL) {
		free(b->sessions);
		route_fini(b);
		security_unref(b->security);
		addr_limits_fini(&b->addrs);
		free(b->load);
		return;
	}
	for (unsigned i = 0; i < b->nworkers; i++)
		while (b->workers[i].sessions != NULL)
			sess_destroy(&b->workers[i], b->workers[i].sessions);
	for (unsigned i = 0; i < b->nworkers; i++) {
		struct worker *w = &b->workers[i];

		drop_items(&w->inbox);
		for (unsigned k = 0; w->outbox != NULL && k < b->nworkers; k++)
			drop_items(&w->outbox[k]);
	}
	for (unsigned i = 0; i < b->nworkers; i++) {
		struct worker *w = &b->workers[i];

		while (w->free_deliveries != NULL) {
			struct delivery *d = w->free_deliveries;

			w->free_deliveries = d->next;
			free(d);
		}
		free(w->outbox);
		free(w->sys.listeners);
		free(w->route.t);
		persist_worker_fini(w);
		revocation_unref(w->revoked);
		security_unref(w->security);
		pthread_mutex_destroy(&w->inbox_lock);
	}
	pthread_mutex_destroy(&b->table_lock);
	pthread_mutex_destroy(&b->revocation_lock);
	revocation_unref(b->revoked);
	b->revoked = NULL;
	if (b->security != NULL)
		pthread_mutex_destroy(&b->security_lock);
	security_unref(b->security);
	b->security = NULL;
	addr_limits_fini(&b->addrs);
	route_fini(b);
	free(b->workers);
	free(b->sessions);
	free(b->load);
	b->load = NULL;
	b->workers = NULL;
	b->sessions = NULL;
}
