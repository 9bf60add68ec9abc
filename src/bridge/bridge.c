/*
 * Bridges (see bridge.h): per `connection`, a thread polls two libmoat
 * clients, <remote> (the other broker, failover over the addresses) and
 * <local> (this broker, through the host's internal link). Each client
 * has a queue file in the persistence directory, and a QoS 1/2 message is
 * acknowledged to the client it arrived on (on_message_checked) only after
 * moat_publish on the other client returned MOAT_OK, i.e. after it was
 * synced to that client's queue file; libmoat sends it on, in order, and
 * across restarts, until the far side acknowledges it.
 */
#include "bridge/bridge.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <moat/client.h>
#include <moat/error.h>

#include "base/clock.h"
#include "base/log.h"
#include "bridge/topic_map.h"
#include "conf/bridge_conf.h"

/* What a bridge's queue may hold towards one side; beyond it, messages wait
 * in the side they came from (the acknowledgement is held back). */
enum {
	QUEUE_MAX_MESSAGES = 100000,
	QUEUE_MAX_BYTES = 256u << 20,
	LOCAL_RETRY_MIN_MS = 200,
	LOCAL_RETRY_MAX_MS = 2000,
	POLL_MAX_MS = 1000,
};

struct bridge {
	const struct moat_bridge_conf *conf;
	const struct moat_config *cfg;
	const struct bridge_host *host;
	struct moat_client *remote, *local;
	pthread_t thread;
	bool thread_started;
	int wake_fd;
	atomic_bool stop;
	size_t address;	       /* index of the address in use */
	bool was_up;	       /* the remote connection got its CONNACK */
	bool try_private;      /* the CONNECT says "bridge" (off after a refusal) */
	uint64_t reopen_at_ms; /* the remote client gave up: a new one then; 0 = none */
	atomic_bool connected;
	_Atomic uint64_t msgs_out, msgs_in, msgs_dropped, queued;
	struct log_limiter refused_log; /* error PUBACK/PUBREC; the bridge thread's */
};

struct bridge_set {
	struct bridge_host host;
	size_t count;
	struct bridge b[];
};

static const char *state_payload(bool up)
{
	return up ? "1" : "0";
}

/* Publishes the bridge's state, retained, on this broker (and, when
 * <remote_too>, on the remote one), as mosquitto's notifications do. */
static void notify(struct bridge *br, bool up, bool remote_too)
{
	const struct moat_bridge_conf *c = br->conf;

	if (!c->notifications)
		return;
	moat_publish(br->local, c->notification_topic, state_payload(up), 1, 1, true, NULL, NULL);
	if (remote_too && br->remote != NULL && !c->notifications_local_only)
		moat_publish(br->remote, c->notification_topic, state_payload(up), 1, 1, true, NULL,
			     NULL);
}

/* The v5 properties of <m> to forward with it. */
static struct moat_pub_props forward_props(const struct moat_message *m)
{
	return (struct moat_pub_props){
	    .has_message_expiry = m->has_message_expiry,
	    .message_expiry_s = m->message_expiry_s,
	    .user = m->user,
	    .user_count = m->user_count,
	    .correlation_data = m->correlation_data,
	    .correlation_len = m->correlation_len,
	};
}

/* A C string copy of one counted property (NULL when absent); false on
 * out of memory. The caller frees *<out>. */
static bool prop_string(const uint8_t *p, size_t len, char **out)
{
	*out = NULL;
	if (p == NULL)
		return true;
	*out = strndup((const char *)p, len);
	return *out != NULL;
}

/* Sends <m> on <to> under <topic>. QoS 0 that cannot go now is dropped
 * (MOAT_OK); QoS 1/2 return moat_publish's answer, so that a message
 * <to> could not queue is not acknowledged where it came from. */
static int forward(struct bridge *br, struct moat_client *to, const char *topic,
		   const struct moat_message *m, bool retain)
{
	struct moat_pub_props props = forward_props(m);
	char *content_type, *response_topic;
	int rc = MOAT_E_NOMEM;

	if (prop_string(m->content_type, m->content_type_len, &content_type) &&
	    prop_string(m->response_topic, m->response_topic_len, &response_topic)) {
		props.content_type = content_type;
		props.response_topic = response_topic;
		rc = to == NULL ? MOAT_E_CLOSED /* the remote client is being replaced */
				: moat_publish(to, topic, m->payload, m->payload_len, m->qos,
					       retain, &props, NULL);
		free(response_topic);
	}
	free(content_type);
	if (rc < 0 && m->qos == 0) {
		atomic_fetch_add(&br->msgs_dropped, 1);
		return MOAT_OK;
	}
	if (rc < 0)
		log_warn(
		    "bridge %s: cannot queue a message for %s (%s); it waits and is sent again",
		    br->conf->name, to == br->remote ? "the remote broker" : "this broker",
		    moat_strerror(rc));
	return rc;
}

/* Roughly the PUBLISH <m> makes under <topic>: what bridge_max_packet_size limits. */
static size_t packet_size(const char *topic, const struct moat_message *m)
{
	return 5 + 2 + strlen(topic) + 2 + m->payload_len + m->content_type_len +
	       m->response_topic_len + m->correlation_len;
}

static int on_local_message(void *arg, const struct moat_message *m)
{
	struct bridge *br = arg;
	char *topic;
	int rc = bridge_map_out(br->conf, m->topic, &topic);

	if (rc < 0)
		return rc; /* not acknowledged: the broker delivers it again */
	if (topic == NULL)
		return MOAT_OK; /* a subscription no line sends out: nothing to do */
	if (br->conf->max_packet_size > 0 && packet_size(topic, m) > br->conf->max_packet_size) {
		log_warn("bridge %s: a message on %s is over bridge_max_packet_size (%u); dropped",
			 br->conf->name, m->topic, br->conf->max_packet_size);
		atomic_fetch_add(&br->msgs_dropped, 1);
	} else {
		rc = forward(br, br->remote, topic, m, br->conf->outgoing_retain && m->retain);
		if (rc == MOAT_OK)
			atomic_fetch_add(&br->msgs_out, 1);
	}
	free(topic);
	return rc;
}

static int on_remote_message(void *arg, const struct moat_message *m)
{
	struct bridge *br = arg;
	char *topic;
	int rc = bridge_map_in(br->conf, m->topic, &topic);

	if (rc < 0)
		return rc; /* not acknowledged: the remote broker sends it again */
	if (topic == NULL)
		return MOAT_OK; /* e.g. a subscription an older configuration left there */
	rc = forward(br, br->local, topic, m, m->retain);
	if (rc == MOAT_OK)
		atomic_fetch_add(&br->msgs_in, 1);
	free(topic);
	return rc;
}

/* A broker refused a forwarded QoS 1/2 message (reason code >= 0x80):
 * libmoat dropped it from its queue, so it is counted and logged. */
static void publish_done(struct bridge *br, const char *side, uint8_t rc)
{
	if (rc < 0x80)
		return;
	atomic_fetch_add(&br->msgs_dropped, 1);
	if (log_limiter_allow(&br->refused_log, 10, 10))
		log_warn("bridge %s: %s refused a forwarded message (reason 0x%02x); it is dropped",
			 br->conf->name, side, rc);
}

static void on_local_publish_done(void *arg, uint16_t packet_id, uint8_t rc)
{
	(void)packet_id;
	publish_done(arg, "this broker", rc);
}

static void on_remote_publish_done(void *arg, uint16_t packet_id, uint8_t rc)
{
	(void)packet_id;
	publish_done(arg, "the remote broker", rc);
}

/* Subscribes <c> to <filter>; on MQTT 5 with no-local (no loop back) and
 * retain-as-published (3.1.1 has neither: try_private asks for both). */
static void subscribe(struct moat_client *c, const char *filter, uint8_t qos, bool v5)
{
	struct moat_sub_options o = {.qos = qos, .no_local = v5, .retain_as_published = v5};

	moat_subscribe(c, filter, &o, NULL);
}

static void on_local_connect(void *arg, uint8_t rc, bool session_present)
{
	struct bridge *br = arg;

	(void)session_present;
	if (rc != 0) {
		log_err("bridge %s: this broker refused the bridge's local link (reason 0x%02x)",
			br->conf->name, rc);
		return;
	}
	for (const struct moat_bridge_topic *t = br->conf->topics; t != NULL; t = t->next)
		if (t->direction != BRIDGE_IN)
			subscribe(br->local, t->local_filter, t->qos, true);
	notify(br, atomic_load(&br->connected), false);
}

static void on_remote_connect(void *arg, uint8_t rc, bool session_present)
{
	struct bridge *br = arg;
	const struct moat_bridge_address *a = &br->conf->addresses[br->address];

	(void)session_present;
	if (rc != 0) {
		log_warn("bridge %s: %s:%u refused the connection (reason 0x%02x)", br->conf->name,
			 a->host, a->port, rc);
		if (rc == 0x84 && br->try_private) {
			/* as mosquitto: a broker that does not know try_private's
			 * protocol level gets a plain CONNECT next time */
			log_notice("bridge %s: connecting without try_private", br->conf->name);
			br->try_private = false;
		}
		return;
	}
	log_notice("bridge %s: connected to %s:%u", br->conf->name, a->host, a->port);
	br->was_up = true;
	atomic_store(&br->connected, true);
	for (const struct moat_bridge_topic *t = br->conf->topics; t != NULL; t = t->next) {
		if (t->direction != BRIDGE_OUT)
			subscribe(br->remote, t->remote_filter, t->qos,
				  br->conf->protocol_version == 5);
		else if (br->conf->attempt_unsubscribe)
			moat_unsubscribe(br->remote, t->remote_filter, NULL);
	}
	notify(br, true, true);
}

/* The next address after a failure: round_robin moves on; otherwise the
 * first is the main one, and a bridge that was up on another goes back to
 * it (mosquitto checks the main one periodically instead). */
static void pick_next_address(struct bridge *br)
{
	const struct moat_bridge_conf *c = br->conf;
	const struct moat_bridge_address *a;

	if (c->address_count < 2)
		return;
	if (!c->round_robin && br->was_up && br->address != 0)
		br->address = 0;
	else
		br->address = (br->address + 1) % c->address_count;
	a = &c->addresses[br->address];
	if (moat_set_server(br->remote, a->host, a->port) < 0)
		log_err("bridge %s: out of memory switching to %s:%u", c->name, a->host, a->port);
}

static void on_remote_disconnect(void *arg, int err, uint8_t rc)
{
	struct bridge *br = arg;
	char why[256];

	moat_last_error(br->remote, why, sizeof(why));
	if (atomic_exchange(&br->connected, false)) {
		log_warn("bridge %s: connection to the remote broker lost: %s", br->conf->name,
			 why);
		notify(br, false, false);
	} else if (!atomic_load(&br->stop)) {
		log_info("bridge %s: cannot connect: %s", br->conf->name, why);
	}
	if (err == MOAT_E_DENIED && rc == 0)
		log_err("bridge %s: the remote broker's certificate does not verify; fix "
			"bridge_cafile or the address (tried again every restart_timeout cap)",
			br->conf->name);
	pick_next_address(br);
	br->was_up = false;
}

static void on_local_disconnect(void *arg, int err, uint8_t rc)
{
	struct bridge *br = arg;

	(void)rc;
	if (!atomic_load(&br->stop))
		log_info("bridge %s: local link closed (%s); it reconnects", br->conf->name,
			 moat_strerror(err));
}

static int connect_local(void *arg)
{
	struct bridge *br = arg;
	char peer[48];

	snprintf(peer, sizeof(peer), "bridge:%s", br->conf->name);
	return br->host->connect_local(br->host->arg, peer);
}

/* "<dir>/bridge-<name>.<side>.queue" or NULL without persistence. */
static char *queue_path(const struct moat_config *cfg, const char *name, const char *side)
{
	const char *dir = cfg->persistence_location != NULL ? cfg->persistence_location : ".";
	size_t n;
	char *p;

	if (!cfg->persistence)
		return NULL;
	n = strlen(dir) + strlen(name) + strlen(side) + 32;
	p = malloc(n);
	if (p != NULL)
		snprintf(p, n, "%s/bridge-%s.%s.queue", dir, name, side);
	return p;
}

/* Opens <*out> with <o> and <cb>, its queue file (persistence on) named after
 * <side>; logs what libmoat reports. */
static int open_side(struct bridge *br, struct moat_client **out, struct moat_client_opts *o,
		     const struct moat_callbacks *cb, const char *side)
{
	const struct moat_bridge_conf *c = br->conf;
	char diag[256];
	char *queue = queue_path(br->cfg, c->name, side);
	int rc;

	if (br->cfg->persistence && queue == NULL) {
		log_err("bridge %s: out of memory", c->name);
		return MOAT_E_NOMEM;
	}
	o->queue_file = queue;
	rc = moat_client_open(out, o, cb, diag, sizeof(diag));
	o->queue_file = NULL;
	free(queue);
	if (rc < 0)
		log_err("bridge %s (line %u): %s", c->name, c->line, diag);
	else if (diag[0] != '\0')
		log_warn("bridge %s: %s", c->name, diag);
	return rc;
}

static int open_remote(struct bridge *br)
{
	const struct moat_bridge_conf *c = br->conf;
	struct moat_callbacks cb = {.arg = br,
				    .on_connect = on_remote_connect,
				    .on_message_checked = on_remote_message,
				    .on_publish_done = on_remote_publish_done,
				    .on_disconnect = on_remote_disconnect};
	struct moat_client_opts o = {
	    .host = c->addresses[br->address].host,
	    .port = c->addresses[br->address].port,
	    .client_id = c->remote_clientid,
	    .username = c->remote_username,
	    .password = c->remote_password,
	    .keep_alive_s = c->keepalive_s,
	    .clean_start = c->cleansession,
	    .version = c->protocol_version,
	    .session_expiry_s = c->cleansession ? 0 : UINT32_MAX,
	    .auto_reconnect = true,
	    .reconnect_min_ms = c->restart_base_s * 1000,
	    .reconnect_max_ms = c->restart_cap_s * 1000,
	    .offline_max_messages = QUEUE_MAX_MESSAGES,
	    .offline_max_bytes = QUEUE_MAX_BYTES,
	    .tls = c->cafile != NULL,
	    .cafile = c->cafile,
	    .certfile = c->certfile,
	    .keyfile = c->keyfile,
	    .tls_insecure = c->insecure,
	    .bridge = br->try_private,
	};

	if (c->notifications && !c->notifications_local_only) {
		o.will_topic = c->notification_topic;
		o.will_payload = state_payload(false);
		o.will_len = 1;
		o.will_qos = 1;
		o.will_retain = true;
	}
	return open_side(br, &br->remote, &o, &cb, "remote");
}

static int open_local(struct bridge *br)
{
	const struct moat_bridge_conf *c = br->conf;
	struct moat_callbacks cb = {.arg = br,
				    .on_connect = on_local_connect,
				    .on_message_checked = on_local_message,
				    .on_publish_done = on_local_publish_done,
				    .on_disconnect = on_local_disconnect};
	struct moat_client_opts o = {
	    .client_id = c->local_clientid,
	    .username = c->local_username,
	    .keep_alive_s = 60,
	    .clean_start = c->local_cleansession,
	    .version = 5,
	    .session_expiry_s = c->local_cleansession ? 0 : UINT32_MAX,
	    .auto_reconnect = true,
	    .reconnect_min_ms = LOCAL_RETRY_MIN_MS,
	    .reconnect_max_ms = LOCAL_RETRY_MAX_MS,
	    .offline_max_messages = QUEUE_MAX_MESSAGES,
	    .offline_max_bytes = QUEUE_MAX_BYTES,
	    .bridge = true,
	    .open_socket = connect_local,
	    .open_socket_arg = br,
	};

	return open_side(br, &br->local, &o, &cb, "local");
}

/* Adds <c>'s socket to <p>; returns how many entries it used. */
static nfds_t poll_entry(struct moat_client *c, struct pollfd *p)
{
	int fd = moat_socket(c);

	if (fd < 0)
		return 0;
	p->fd = fd;
	p->events = (short)(POLLIN | (moat_want_write(c) ? POLLOUT : 0));
	p->revents = 0;
	return 1;
}

static int min_timeout(int a, int b)
{
	return a < b ? a : b;
}

/* The remote client ended for good (refused, or a certificate that does
 * not verify): libmoat does not retry those, mosquitto's bridges do. Its
 * queue file keeps what it held; a new client takes it over later. */
static void give_up_remote(struct bridge *br)
{
	moat_client_destroy(br->remote);
	br->remote = NULL;
	br->reopen_at_ms = clock_mono_ms() + br->conf->restart_cap_s * 1000ull;
}

static void reopen_remote(struct bridge *br)
{
	if (open_remote(br) == MOAT_OK)
		moat_connect(br->remote);
	else
		br->reopen_at_ms = clock_mono_ms() + br->conf->restart_cap_s * 1000ull;
}

static void *bridge_loop(void *arg)
{
	struct bridge *br = arg;

	moat_connect(br->local);
	moat_connect(br->remote);
	while (!atomic_load(&br->stop)) {
		struct pollfd p[3] = {{.fd = br->wake_fd, .events = POLLIN}};
		nfds_t n = 1;
		int timeout = min_timeout(POLL_MAX_MS, moat_next_timeout_ms(br->local));

		n += poll_entry(br->local, &p[n]);
		if (br->remote != NULL) {
			timeout = min_timeout(timeout, moat_next_timeout_ms(br->remote));
			n += poll_entry(br->remote, &p[n]);
		}
		if (poll(p, n, timeout < 0 ? 0 : timeout) < 0 && errno != EINTR)
			break;
		if (p[0].revents & POLLIN) {
			uint64_t v;

			while (read(br->wake_fd, &v, sizeof(v)) < 0 && errno == EINTR)
				;
		}
		moat_loop_once(br->local, 0);
		if (br->remote != NULL && moat_loop_once(br->remote, 0) == MOAT_E_CLOSED)
			give_up_remote(br);
		else if (br->remote == NULL && clock_mono_ms() >= br->reopen_at_ms)
			reopen_remote(br);
		if (br->remote != NULL)
			atomic_store(&br->queued, moat_pending_count(br->remote));
	}
	/* the remote hears nothing: its Will says the bridge is gone */
	notify(br, false, false);
	moat_disconnect(br->local, 0);
	return NULL;
}

/* Stops <br>'s thread and frees its clients; twice is fine. */
static void bridge_stop(struct bridge *br)
{
	if (br->thread_started) {
		uint64_t one = 1;

		atomic_store(&br->stop, true);
		if (write(br->wake_fd, &one, sizeof(one)) < 0)
			log_warn("bridge %s: wake-up: %s", br->conf->name, strerror(errno));
		pthread_join(br->thread, NULL);
		br->thread_started = false;
	}
	moat_client_destroy(br->remote);
	moat_client_destroy(br->local);
	br->remote = br->local = NULL;
	if (br->wake_fd >= 0)
		close(br->wake_fd);
	br->wake_fd = -1;
	atomic_store(&br->connected, false);
}

static int bridge_start(struct bridge *br, const struct moat_config *cfg)
{
	const struct moat_bridge_address *a = &br->conf->addresses[0];
	int rc;

	br->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (br->wake_fd < 0) {
		log_err("bridge %s: eventfd: %s", br->conf->name, strerror(errno));
		return MOAT_E_IO;
	}
	rc = open_remote(br);
	if (rc == MOAT_OK)
		rc = open_local(br);
	if (rc < 0)
		return rc; /* logged by open_remote / open_local */
	rc = pthread_create(&br->thread, NULL, bridge_loop, br);
	if (rc != 0) {
		log_err("bridge %s: cannot start its thread: %s", br->conf->name, strerror(rc));
		return MOAT_E_NOMEM;
	}
	br->thread_started = true;
	log_notice("bridge %s: to %s:%u%s (%zu address%s), %s", br->conf->name, a->host, a->port,
		   br->conf->cafile != NULL ? " over TLS" : "", br->conf->address_count,
		   br->conf->address_count == 1 ? "" : "es",
		   cfg->persistence ? "queues in the persistence directory"
				    : "queues in memory only (persistence is off)");
	return MOAT_OK;
}

int bridges_start(struct bridge_set **out, const struct moat_config *cfg,
		  const struct bridge_host *host)
{
	struct bridge_set *set;
	size_t count = 0, i = 0;
	int rc = MOAT_OK;

	*out = NULL;
	for (const struct moat_bridge_conf *c = cfg->bridges; c != NULL; c = c->next)
		count++;
	if (count == 0)
		return MOAT_OK;
	set = calloc(1, sizeof(*set) + count * sizeof(set->b[0]));
	if (set == NULL) {
		log_err("bridges: out of memory");
		return MOAT_E_NOMEM;
	}
	set->host = *host;
	for (const struct moat_bridge_conf *c = cfg->bridges; c != NULL && rc == MOAT_OK;
	     c = c->next) {
		struct bridge *br = &set->b[i++];

		br->conf = c;
		br->cfg = cfg;
		/* v5 has no-local and retain-as-published of its own, and
		 * mosquitto 2.0 closes a v5 CONNECT with the bridge bit */
		br->try_private = c->try_private && c->protocol_version != 5;
		br->host = &set->host;
		br->wake_fd = -1;
		set->count = i;
		rc = bridge_start(br, cfg);
	}
	if (rc < 0) {
		bridges_free(set);
		return rc;
	}
	*out = set;
	return MOAT_OK;
}

void bridges_stop(struct bridge_set *set)
{
	if (set == NULL)
		return;
	for (size_t i = 0; i < set->count; i++)
		bridge_stop(&set->b[i]);
}

void bridges_free(struct bridge_set *set)
{
	bridges_stop(set);
	free(set);
}

size_t bridges_status(const struct bridge_set *set, struct bridge_status *out, size_t max)
{
	if (set == NULL)
		return 0;
	for (size_t i = 0; i < set->count && i < max && out != NULL; i++) {
		const struct bridge *br = &set->b[i];

		out[i] = (struct bridge_status){
		    .name = br->conf->name,
		    .connected = atomic_load(&br->connected),
		    .msgs_out = atomic_load(&br->msgs_out),
		    .msgs_in = atomic_load(&br->msgs_in),
		    .msgs_dropped = atomic_load(&br->msgs_dropped),
		    .queued = atomic_load(&br->queued),
		};
	}
	return set->count;
}
