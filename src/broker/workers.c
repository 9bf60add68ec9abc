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

enum { SESSION_TABLE_BUCKETS = 4096, MAX_WORKERS = 64 };

/* cfg->threads, or one per online core when it is 0. */
static unsigned worker_count(const struct moat_config *cfg)
{
	long cores = sysconf(_SC_NPROCESSORS_ONLN);
	unsigned n = cfg->threads != 0 ? cfg->threads : (cores > 0 ? (unsigned)cores : 1);

	return n < MAX_WORKERS ? n : MAX_WORKERS;
}

int broker_init(struct broker *b, struct moat_config *cfg)
{
	memset(b, 0, sizeof(*b));
	b->cfg = cfg;
	b->nworkers = worker_count(cfg);
	b->session_buckets = SESSION_TABLE_BUCKETS;
	b->sessions = calloc(b->session_buckets, sizeof(*b->sessions));
	b->workers = calloc(b->nworkers, sizeof(*b->workers));
	if (b->sessions == NULL || b->workers == NULL || route_init(b) < 0)
		goto err;
	pthread_mutex_init(&b->table_lock, NULL);
	for (unsigned i = 0; i < b->nworkers; i++) {
		struct worker *w = &b->workers[i];

		w->b = b;
		w->id = i;
		w->epfd = w->wake_fd = -1;
		pthread_mutex_init(&w->inbox_lock, NULL);
		w->outbox = calloc(b->nworkers, sizeof(*w->outbox));
		if (w->outbox == NULL)
			goto err;
	}
	b->started_ms = clock_mono_ms();
	b->started_wall_s = clock_wall_s();
	return MOAT_OK;
err:
	broker_fini(b);
	return MOAT_E_NOMEM;
}

/* Lets go of the items in <l> without acting on them; a connection still
 * on its way between workers is closed. */
static void drop_items(struct item_list *l)
{
	for (size_t i = 0; i < l->n; i++) {
		struct inbox_item *item = &l->v[i];

		if (item->conn != NULL) {
			close(item->conn->fd);
			conn_on_close(item->conn);
			buf_fini(&item->conn->in);
			buf_fini(&item->conn->out);
			free(item->conn);
		}
		msg_unref(item->msg);
		if (item->sess != NULL)
			sess_unref(item->sess);
	}
	free(l->v);
	*l = (struct item_list){ 0 };
}

void broker_fini(struct broker *b)
{
	if (b->workers == NULL) {
		free(b->sessions);
		route_fini(b);
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
		free(w->route.t);
		pthread_mutex_destroy(&w->inbox_lock);
	}
	pthread_mutex_destroy(&b->table_lock);
	route_fini(b);
	free(b->workers);
	free(b->sessions);
	b->workers = NULL;
	b->sessions = NULL;
}
