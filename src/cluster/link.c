/*
 * The node's link to NATS (docs/cluster.md, "When NATS is unreachable"):
 * libnats reconnects for ever, pausing 100 ms doubling to 5 s with jitter
 * between rounds; this file keeps cl->connected, counts and logs each lost
 * connection and each reconnection once (not per attempt), and tells the
 * outbound queue, which holds exports meanwhile.
 */
#include "cluster/cluster_int.h"

#include <sys/random.h>

#include "base/clock.h"
#include "base/log.h"

enum { BACKOFF_FIRST_MS = 100, BACKOFF_MAX_MS = 5000, BACKOFF_JITTER_PCT = 20 };

int64_t cluster_backoff_ms(int attempts, uint32_t rnd)
{
	int64_t ms = BACKOFF_FIRST_MS;
	int64_t spread;

	for (int i = 1; i < attempts && ms < BACKOFF_MAX_MS; i++)
		ms *= 2;
	if (ms > BACKOFF_MAX_MS)
		ms = BACKOFF_MAX_MS;
	spread = ms * BACKOFF_JITTER_PCT / 100;
	return ms - spread + (int64_t)(rnd % (uint32_t)(2 * spread + 1));
}

static int64_t reconnect_delay(natsConnection *nc, int attempts, void *closure)
{
	uint32_t rnd;

	(void)nc;
	(void)closure;
	/* nodes must not retry in step: a kernel random number, or the clock */
	if (getrandom(&rnd, sizeof(rnd), GRND_NONBLOCK) != (ssize_t)sizeof(rnd))
		rnd = (uint32_t)clock_mono_ms();
	return cluster_backoff_ms(attempts, rnd);
}

static void on_disconnected(natsConnection *nc, void *closure)
{
	struct cluster *cl = closure;

	if (natsConnection_IsClosed(nc) || !atomic_exchange(&cl->connected, false))
		return; /* closing (cluster_stop), or reported already */
	atomic_fetch_add(&cl->disconnects, 1);
	atomic_store(&cl->down_since_ms, clock_mono_ms());
	cluster_outbound_link(cl, false);
	log_warn("cluster: lost the connection to NATS; serving local clients, queuing what other "
		 "nodes want (cluster_queue_max_bytes), reconnecting");
}

static void on_reconnected(natsConnection *nc, void *closure)
{
	struct cluster *cl = closure;
	char url[256] = "";

	if (atomic_exchange(&cl->connected, true))
		return;
	natsConnection_GetConnectedUrl(nc, url, sizeof(url));
	log_notice("cluster: reconnected to NATS at %s after %.1f s; sending the queue", url,
		   (double)(clock_mono_ms() - atomic_load(&cl->down_since_ms)) / 1000.0);
	cluster_outbound_link(cl, true);
	atomic_store(&cl->shares_recheck, true);
}

/* The first connection, NATS having been unreachable at start. */
static void on_connected(natsConnection *nc, void *closure)
{
	struct cluster *cl = closure;
	char url[256] = "";

	natsConnection_GetConnectedUrl(nc, url, sizeof(url));
	log_notice("cluster: connected to NATS at %s; joining the cluster", url);
	atomic_store(&cl->connected, true);
	cluster_outbound_link(cl, true);
}

static void on_closed(natsConnection *nc, void *closure)
{
	struct cluster *cl = closure;

	(void)nc;
	atomic_store(&cl->connected, false);
}

natsStatus cluster_link_options(struct cluster *cl)
{
	natsStatus s = natsOptions_SetMaxReconnect(cl->opts, -1);

	if (s == NATS_OK)
		s = natsOptions_SetCustomReconnectDelay(cl->opts, reconnect_delay, cl);
	if (s == NATS_OK)
		s = natsOptions_SetDisconnectedCB(cl->opts, on_disconnected, cl);
	if (s == NATS_OK)
		s = natsOptions_SetReconnectedCB(cl->opts, on_reconnected, cl);
	if (s == NATS_OK)
		s = natsOptions_SetClosedCB(cl->opts, on_closed, cl);
	return s;
}

natsStatus cluster_link_retry(struct cluster *cl)
{
	return natsOptions_SetRetryOnFailedConnect(cl->opts, true, on_connected, cl);
}
