/*
 * Bridge sections of the configuration file (see bridge_conf.h): each
 * `connection NAME` starts a section, and the bridge options that follow
 * set it, with mosquitto's names, meanings and defaults (mosquitto.conf(5)).
 */
#include "conf/bridge_conf.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <moat/error.h>

#define diag(...) conf_diag(d, name, line, __VA_ARGS__)

/* Options of mosquitto's bridges that moatd refuses, with what to do. */
static const struct {
	const char *option, *fix;
} refused[] = {
    {"bridge_bind_address", "remove it; the system's routing picks the source address"},
    {"bridge_capath", "put the CA certificates in one PEM file and use bridge_cafile"},
    {"bridge_alpn", "remove it; moatd's bridges speak MQTT over TLS without ALPN"},
    {"bridge_identity",
     "use certificates (bridge_cafile, bridge_certfile, bridge_keyfile); TLS-PSK is not supported"},
    {"bridge_psk",
     "use certificates (bridge_cafile, bridge_certfile, bridge_keyfile); TLS-PSK is not supported"},
    {"bridge_require_ocsp", "remove it; OCSP is not checked by moatd's bridges"},
    {"bridge_tls_version", "remove it; bridges use TLS 1.2 or later"},
    {"idle_timeout", "remove it; only start_type automatic is supported"},
    {"threshold", "remove it; only start_type automatic is supported"},
};

/* Every option a bridge section takes (after `connection`). */
static const char *const options[] = {
    "address",
    "addresses",
    "topic",
    "remote_clientid",
    "clientid",
    "local_clientid",
    "remote_username",
    "username",
    "remote_password",
    "password",
    "local_username",
    "local_password",
    "bridge_protocol_version",
    "cleansession",
    "local_cleansession",
    "keepalive_interval",
    "restart_timeout",
    "notifications",
    "notifications_local_only",
    "notification_topic",
    "try_private",
    "bridge_cafile",
    "bridge_certfile",
    "bridge_keyfile",
    "bridge_insecure",
    "bridge_outgoing_retain",
    "bridge_max_packet_size",
    "bridge_attempt_unsubscribe",
    "round_robin",
    "start_type",
};

static struct moat_bridge_conf *last(struct moat_bridge_conf *b)
{
	while (b != NULL && b->next != NULL)
		b = b->next;
	return b;
}

static bool is_option(const char *w)
{
	for (size_t i = 0; i < sizeof(options) / sizeof(options[0]); i++)
		if (strcmp(w, options[i]) == 0)
			return true;
	return false;
}

static int parse_bool(const char *s, bool *out)
{
	if (strcmp(s, "true") == 0 || strcmp(s, "false") == 0) {
		*out = s[0] == 't';
		return MOAT_OK;
	}
	return MOAT_E_CONFIG;
}

static int parse_u32(const char *s, uint32_t max, uint32_t *out)
{
	char *end;
	unsigned long long v;

	if (s[0] < '0' || s[0] > '9')
		return MOAT_E_CONFIG;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno != 0 || *end != '\0' || v > max)
		return MOAT_E_CONFIG;
	*out = (uint32_t)v;
	return MOAT_OK;
}

/* Client ids: MQTT allows 65535 bytes; ids this long are a mistake. */
enum { CLIENTID_MAX = 256 };

/* A topic name usable as a prefix: no wildcards (mosquitto's pub topic check). */
static bool prefix_is_valid(const char *s)
{
	return strpbrk(s, "+#") == NULL;
}

static char *join(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);
	char *s = malloc(la + lb + 1);

	if (s != NULL) {
		memcpy(s, a, la);
		memcpy(s + la, b, lb + 1);
	}
	return s;
}

/* topic PATTERN [[[out|in|both] QOS] LOCAL-PREFIX REMOTE-PREFIX] */
static int parse_topic(struct moat_bridge_conf *b, const char *name, unsigned line, char **w, int n,
		       struct moat_diag *d)
{
	struct moat_bridge_topic *t, **tail;
	const char *pattern = w[1], *lp = NULL, *rp = NULL;
	bool blank;

	if (n < 2 || n == 5 || n > 6)
		return diag("topic expects PATTERN [[[out|in|both] QOS] LOCAL-PREFIX "
			    "REMOTE-PREFIX], e.g. \"topic sensors/# out 1 site/ central/\"");
	blank = strcmp(pattern, "\"\"") == 0;
	t = calloc(1, sizeof(*t));
	if (t == NULL)
		return MOAT_E_NOMEM;
	t->line = line;
	if (n >= 3) {
		if (strcmp(w[2], "out") == 0)
			t->direction = BRIDGE_OUT;
		else if (strcmp(w[2], "in") == 0)
			t->direction = BRIDGE_IN;
		else if (strcmp(w[2], "both") == 0)
			t->direction = BRIDGE_BOTH;
		else {
			free(t);
			return diag("topic direction must be out, in or both, got \"%s\"", w[2]);
		}
	}
	if (n >= 4) {
		if (strlen(w[3]) != 1 || w[3][0] < '0' || w[3][0] > '2') {
			free(t);
			return diag("topic QoS must be 0, 1 or 2, got \"%s\"", w[3]);
		}
		t->qos = (uint8_t)(w[3][0] - '0');
	}
	if (n == 6) {
		lp = strcmp(w[4], "\"\"") == 0 ? NULL : w[4];
		rp = strcmp(w[5], "\"\"") == 0 ? NULL : w[5];
	}
	if ((lp != NULL && !prefix_is_valid(lp)) || (rp != NULL && !prefix_is_valid(rp))) {
		free(t);
		return diag("topic prefixes must not contain + or #; put wildcards in the pattern");
	}
	if (blank && (lp == NULL || rp == NULL)) {
		free(t);
		return diag("a blank (\"\") topic pattern needs both a local and a remote prefix "
			    "(the whole topic on each side)");
	}
	t->local_prefix = lp != NULL ? strdup(lp) : NULL;
	t->remote_prefix = rp != NULL ? strdup(rp) : NULL;
	t->local_filter = join(lp != NULL ? lp : "", blank ? "" : pattern);
	t->remote_filter = join(rp != NULL ? rp : "", blank ? "" : pattern);
	if ((lp != NULL && t->local_prefix == NULL) || (rp != NULL && t->remote_prefix == NULL) ||
	    t->local_filter == NULL || t->remote_filter == NULL) {
		free(t->local_prefix);
		free(t->remote_prefix);
		free(t->local_filter);
		free(t->remote_filter);
		free(t);
		return MOAT_E_NOMEM;
	}
	for (tail = &b->topics; *tail != NULL; tail = &(*tail)->next)
		;
	*tail = t;
	return MOAT_OK;
}

/* address HOST[:PORT] [HOST[:PORT] ...]: the port after the last ':' (so an
 * IPv6 address needs one, as in mosquitto). Lines add to the list. */
static int parse_addresses(struct moat_bridge_conf *b, const char *name, unsigned line, char **w,
			   int n, struct moat_diag *d)
{
	struct moat_bridge_address *a;

	if (n < 2)
		return diag("%s expects HOST[:PORT] (several for failover), e.g. \"address "
			    "broker.example:1883\"",
			    w[0]);
	a = realloc(b->addresses, (b->address_count + (size_t)n - 1) * sizeof(*a));
	if (a == NULL)
		return MOAT_E_NOMEM;
	b->addresses = a;
	for (int i = 1; i < n; i++) {
		const char *colon = strrchr(w[i], ':');
		size_t host_len = colon != NULL ? (size_t)(colon - w[i]) : strlen(w[i]);
		uint32_t port = 1883;

		if (colon != NULL && (parse_u32(colon + 1, 65535, &port) < 0 || port == 0))
			return diag(
			    "%s: bad port in \"%s\"; write HOST:PORT with a port from 1 to 65535",
			    w[0], w[i]);
		if (host_len == 0)
			return diag("%s: no host in \"%s\"", w[0], w[i]);
		a[b->address_count].host = strndup(w[i], host_len);
		if (a[b->address_count].host == NULL)
			return MOAT_E_NOMEM;
		a[b->address_count++].port = (uint16_t)port;
	}
	return MOAT_OK;
}

/* restart_timeout BASE [CAP], or one constant. */
static int parse_restart(struct moat_bridge_conf *b, const char *name, unsigned line, char **w,
			 int n, struct moat_diag *d)
{
	uint32_t base, cap;

	if (n < 2 || n > 3 || parse_u32(w[1], 86400, &base) < 0 || base == 0 ||
	    (n == 3 && (parse_u32(w[2], 86400, &cap) < 0 || cap < base)))
		return diag("restart_timeout expects seconds (1 to 86400): a constant, or a base "
			    "and a cap at least as large, e.g. \"restart_timeout 5 30\"");
	b->restart_base_s = base;
	b->restart_cap_s = n == 3 ? cap : base;
	return MOAT_OK;
}

/* A connection name: part of queue file names and $SYS topics. */
static bool name_is_valid(const char *s)
{
	if (s[0] == '.' || strlen(s) > 64)
		return false;
	return strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-") ==
	       strlen(s);
}

static struct moat_bridge_conf *bridge_new(const char *bridge_name, unsigned line)
{
	struct moat_bridge_conf *b = calloc(1, sizeof(*b));

	if (b == NULL)
		return NULL;
	b->name = strdup(bridge_name);
	if (b->name == NULL) {
		free(b);
		return NULL;
	}
	b->line = line;
	b->protocol_version = 4;
	b->local_cleansession = -1;
	b->keepalive_s = 60;
	b->restart_base_s = 5;
	b->restart_cap_s = 30;
	b->notifications = true;
	b->try_private = true;
	b->outgoing_retain = true;
	b->attempt_unsubscribe = true;
	return b;
}

/* The options with one value. */
static int parse_single(struct moat_bridge_conf *b, const char *name, unsigned line, char **w,
			struct moat_diag *d)
{
	const char *o = w[0], *v = w[1];
	uint32_t u;
	bool f;

	if (strcmp(o, "remote_clientid") == 0 || strcmp(o, "clientid") == 0 ||
	    strcmp(o, "local_clientid") == 0) {
		/* the default notification_topic contains remote_clientid; a bridge
		 * publishes under its own client id (conn.c) */
		if (!prefix_is_valid(v) || strlen(v) > CLIENTID_MAX)
			return diag("%s must be a client id without + or # (at most %d bytes)", o,
				    CLIENTID_MAX);
		return conf_set_string(o[0] == 'l' ? &b->local_clientid : &b->remote_clientid, v);
	}
	if (strcmp(o, "remote_username") == 0 || strcmp(o, "username") == 0)
		return conf_set_string(&b->remote_username, v);
	if (strcmp(o, "remote_password") == 0 || strcmp(o, "password") == 0)
		return conf_set_string(&b->remote_password, v);
	if (strcmp(o, "local_username") == 0)
		return conf_set_string(&b->local_username, v);
	if (strcmp(o, "local_password") == 0)
		return MOAT_OK; /* the local link is internal: nothing to prove */
	if (strcmp(o, "notification_topic") == 0) {
		if (!prefix_is_valid(v))
			return diag("notification_topic must be a topic name without + or #");
		return conf_set_string(&b->notification_topic, v);
	}
	if (strcmp(o, "bridge_cafile") == 0)
		return conf_set_string(&b->cafile, v);
	if (strcmp(o, "bridge_certfile") == 0)
		return conf_set_string(&b->certfile, v);
	if (strcmp(o, "bridge_keyfile") == 0)
		return conf_set_string(&b->keyfile, v);
	if (strcmp(o, "bridge_protocol_version") == 0) {
		if (strcmp(v, "mqttv311") == 0 || strcmp(v, "mqttv50") == 0) {
			b->protocol_version = v[5] == '5' ? 5 : 4;
			return MOAT_OK;
		}
		if (strcmp(v, "mqttv31") == 0)
			return diag("bridge_protocol_version mqttv31 is not supported; use "
				    "mqttv311 or mqttv50");
		return diag("bridge_protocol_version expects mqttv311 or mqttv50, got \"%s\"", v);
	}
	if (strcmp(o, "start_type") == 0) {
		if (strcmp(v, "automatic") == 0)
			return MOAT_OK;
		return diag("start_type %s is not supported; use automatic (the default) or remove "
			    "the line",
			    v);
	}
	if (strcmp(o, "keepalive_interval") == 0) {
		if (parse_u32(v, 65535, &u) < 0 || u < 5)
			return diag(
			    "keepalive_interval expects seconds from 5 to 65535, got \"%s\"", v);
		b->keepalive_s = (uint16_t)u;
		return MOAT_OK;
	}
	if (strcmp(o, "bridge_max_packet_size") == 0) {
		if (parse_u32(v, 268435460, &u) < 0)
			return diag("bridge_max_packet_size expects bytes from 0 (no limit) to "
				    "268435460, got \"%s\"",
				    v);
		b->max_packet_size = u;
		return MOAT_OK;
	}
	if (parse_bool(v, &f) < 0)
		return diag("%s expects true or false, got \"%s\"", o, v);
	if (strcmp(o, "cleansession") == 0)
		b->cleansession = f;
	else if (strcmp(o, "local_cleansession") == 0)
		b->local_cleansession = f;
	else if (strcmp(o, "notifications") == 0)
		b->notifications = f;
	else if (strcmp(o, "notifications_local_only") == 0)
		b->notifications_local_only = f;
	else if (strcmp(o, "try_private") == 0)
		b->try_private = f;
	else if (strcmp(o, "bridge_insecure") == 0)
		b->insecure = f;
	else if (strcmp(o, "bridge_outgoing_retain") == 0)
		b->outgoing_retain = f;
	else if (strcmp(o, "bridge_attempt_unsubscribe") == 0)
		b->attempt_unsubscribe = f;
	else
		b->round_robin = f; /* is_option()'s last boolean: round_robin */
	return MOAT_OK;
}

int bridge_conf_parse_line(struct moat_bridge_conf **bridges, const char *name, unsigned line,
			   char **w, int n, struct moat_diag *d)
{
	struct moat_bridge_conf *b = last(*bridges);

	for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++)
		if (strcmp(w[0], refused[i].option) == 0)
			return diag("bridge option %s is not supported by moatd; %s", w[0],
				    refused[i].fix);
	if (strcmp(w[0], "connection") == 0) {
		struct moat_bridge_conf *nb;

		if (n != 2)
			return diag(
			    "connection expects one name, e.g. \"connection site-to-central\"");
		if (!name_is_valid(w[1]))
			return diag("connection name \"%s\" names files and $SYS topics: use "
				    "letters, digits, '.', '_' and '-' (not first '.')",
				    w[1]);
		nb = bridge_new(w[1], line);
		if (nb == NULL)
			return MOAT_E_NOMEM;
		if (b != NULL)
			b->next = nb;
		else
			*bridges = nb;
		return MOAT_OK;
	}
	if (!is_option(w[0]))
		return MOAT_E_NOTFOUND;
	if (b == NULL)
		return diag("%s is a bridge option; put it after a \"connection NAME\" line", w[0]);
	if (strcmp(w[0], "address") == 0 || strcmp(w[0], "addresses") == 0)
		return parse_addresses(b, name, line, w, n, d);
	if (strcmp(w[0], "topic") == 0)
		return parse_topic(b, name, line, w, n, d);
	if (strcmp(w[0], "restart_timeout") == 0)
		return parse_restart(b, name, line, w, n, d);
	if (n != 2)
		return diag("%s expects exactly one value", w[0]);
	return parse_single(b, name, line, w, d);
}

/* "<what>.<hostname>" for the default remote client id. */
static char *default_remote_clientid(const char *bridge_name)
{
	char host[256] = "localhost";
	char *s;

	if (gethostname(host, sizeof(host) - 1) < 0)
		snprintf(host, sizeof(host), "localhost");
	host[sizeof(host) - 1] = '\0';
	s = malloc(strlen(bridge_name) + strlen(host) + 2);
	if (s != NULL)
		sprintf(s, "%s.%s", bridge_name, host);
	return s;
}

/* Fills the defaults that depend on other options. */
static int fill_defaults(struct moat_bridge_conf *b)
{
	static const char sys[] = "$SYS/broker/connection/";

	if (b->remote_clientid == NULL &&
	    (b->remote_clientid = default_remote_clientid(b->name)) == NULL)
		return MOAT_E_NOMEM;
	if (b->local_clientid == NULL &&
	    (b->local_clientid = join("local.", b->remote_clientid)) == NULL)
		return MOAT_E_NOMEM;
	if (b->notification_topic == NULL) {
		char *head = join(sys, b->remote_clientid);

		b->notification_topic = head != NULL ? join(head, "/state") : NULL;
		free(head);
		if (b->notification_topic == NULL)
			return MOAT_E_NOMEM;
	}
	if (b->local_cleansession < 0)
		b->local_cleansession = b->cleansession;
	return MOAT_OK;
}

int bridge_conf_check(struct moat_bridge_conf *bridges, const char *name, struct moat_diag *d)
{
	for (struct moat_bridge_conf *b = bridges; b != NULL; b = b->next) {
		unsigned line = b->line;
		int rc;

		if (b->address_count == 0)
			return diag("connection %s has no address; add \"address HOST[:PORT]\"",
				    b->name);
		if (b->remote_password != NULL && b->remote_username == NULL)
			return diag("connection %s has remote_password without remote_username; "
				    "add remote_username",
				    b->name);
		if ((b->certfile == NULL) != (b->keyfile == NULL))
			return diag("connection %s: bridge_certfile and bridge_keyfile go "
				    "together; set both or neither",
				    b->name);
		if (b->cafile == NULL && (b->certfile != NULL || b->insecure))
			return diag("connection %s has TLS options but no bridge_cafile; add "
				    "bridge_cafile (TLS is on when it is set)",
				    b->name);
		rc = fill_defaults(b);
		if (rc < 0)
			return rc;
		for (struct moat_bridge_conf *o = bridges; o != b; o = o->next) {
			if (strcmp(o->name, b->name) == 0)
				return diag("connection %s is declared twice (line %u first); give "
					    "each bridge its own name",
					    b->name, o->line);
			if (strcmp(o->local_clientid, b->local_clientid) == 0)
				return diag("connection %s uses local_clientid %s like connection "
					    "%s; give each its own",
					    b->name, b->local_clientid, o->name);
		}
	}
	return MOAT_OK;
}

bool bridge_conf_is_local_id(const struct moat_bridge_conf *bridges, const void *id, size_t len)
{
	for (const struct moat_bridge_conf *b = bridges; b != NULL; b = b->next) {
		if (b->local_clientid != NULL && strlen(b->local_clientid) == len &&
		    memcmp(b->local_clientid, id, len) == 0)
			return true;
	}
	return false;
}

static void wipe_free(char *s)
{
	if (s != NULL)
		explicit_bzero(s, strlen(s));
	free(s);
}

void bridge_conf_free(struct moat_bridge_conf *bridges)
{
	while (bridges != NULL) {
		struct moat_bridge_conf *b = bridges;

		bridges = b->next;
		while (b->topics != NULL) {
			struct moat_bridge_topic *t = b->topics;

			b->topics = t->next;
			free(t->local_prefix);
			free(t->remote_prefix);
			free(t->local_filter);
			free(t->remote_filter);
			free(t);
		}
		for (size_t i = 0; i < b->address_count; i++)
			free(b->addresses[i].host);
		free(b->addresses);
		free(b->name);
		free(b->remote_clientid);
		free(b->local_clientid);
		free(b->remote_username);
		wipe_free(b->remote_password);
		free(b->local_username);
		free(b->notification_topic);
		free(b->cafile);
		free(b->certfile);
		free(b->keyfile);
		free(b);
	}
}
