/*
 * Configuration parser (see config.h). Every option is a row of one table:
 * its name, how its value is parsed, and where it is stored.
 */
#include "conf/config.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <moat/error.h>

#include "base/log.h"
#include "conf/bridge_conf.h"

#define MAX_LINE 4096
#define MAX_WORDS 8

struct parse {
	struct moat_config *cfg;
	const char *name;
	unsigned line;
	struct moat_diag *diag;
	bool log_type_seen, log_dest_seen;	/* the first line replaces the default set */
};

int conf_diag(struct moat_diag *d, const char *name, unsigned line, const char *fmt, ...)
{
	va_list ap;
	int n = snprintf(d->msg, sizeof(d->msg), "%s:%u: ", name, line);

	va_start(ap, fmt);
	if (n > 0 && (size_t)n < sizeof(d->msg))
		vsnprintf(d->msg + n, sizeof(d->msg) - (size_t)n, fmt, ap);
	va_end(ap);
	return MOAT_E_CONFIG;
}

#define diag(p, ...) conf_diag((p)->diag, (p)->name, (p)->line, __VA_ARGS__)

void config_defaults(struct moat_config *cfg)
{
	*cfg = (struct moat_config){
		.allow_anonymous = false,
		.max_inflight_messages = 20,
		.max_queued_messages = 1000,
		.max_keepalive = 65535,
		.max_connections = -1,
		.retain_available = true,
		.persistent_client_expiry_s = -1,
		.log_dest = LOG_D_STDERR,
		.log_type = LOG_T_ERR | LOG_T_WARNING | LOG_T_NOTICE | LOG_T_INFO,
		.sys_interval_s = 10,
		.max_connect_packet_size = 65536,
		.connect_timeout_s = 10,
		.max_topic_alias = 10,
		.max_topic_levels = 200,
		.max_output_bytes = 1u << 20,
		.max_inbound_qos2 = 1000,
		.queue_high_water = 128,
		.token_leeway_s = 30,
		.auth_fail_delay_max_ms = 5000,
		.max_topic_length = 65535,
		.max_user_properties = 1024,
		.max_user_property_bytes = 65536,
		.persistence_sync = 1,	/* STORE_SYNC_BATCH */
		.persistence_batch_ms = 2,
		.shutdown_timeout_s = 5,
		.log_format = LOG_F_TEXT,
	};
}

int config_add_listener(struct moat_config *cfg, const char *bind_address, uint16_t port)
{
	struct moat_listener_conf *l = calloc(1, sizeof(*l)), **tail;

	if (l == NULL)
		return MOAT_E_NOMEM;
	if (bind_address != NULL) {
		l->bind_address = strdup(bind_address);
		if (l->bind_address == NULL) {
			free(l);
			return MOAT_E_NOMEM;
		}
	}
	l->port = port;
	for (tail = &cfg->listeners; *tail != NULL; tail = &(*tail)->next)
		;
	*tail = l;
	return MOAT_OK;
}

static void tls_conf_fini(struct moat_tls_conf *t)
{
	free(t->cafile);
	free(t->capath);
	free(t->certfile);
	free(t->keyfile);
	free(t->crlfile);
	free(t->tls_version);
	free(t->ciphers);
	free(t->ciphers_tls13);
}

void config_fini(struct moat_config *cfg)
{
	while (cfg->listeners != NULL) {
		struct moat_listener_conf *l = cfg->listeners;

		cfg->listeners = l->next;
		free(l->bind_address);
		tls_conf_fini(&l->tls);
		free(l);
	}
	while (cfg->token_keys != NULL) {
		struct moat_token_key *k = cfg->token_keys;

		cfg->token_keys = k->next;
		free(k->path);
		free(k->kid);
		free(k);
	}
	free(cfg->path);
	free(cfg->log_file);
	free(cfg->password_file);
	free(cfg->acl_file);
	free(cfg->token_issuer);
	free(cfg->token_audience);
	free(cfg->token_username_claim);
	free(cfg->audit_file);
	free(cfg->persistence_location);
	free(cfg->sc_username);
	free(cfg->sc_public_key);
	free(cfg->topic_policy_file);
	free(cfg->pid_file);
	free(cfg->metrics_bind);
	bridge_conf_free(cfg->bridges);
	cluster_conf_fini(&cfg->cluster);
	*cfg = (struct moat_config){ 0 };
}

static int parse_uint(struct parse *p, const char *opt, const char *s, uint64_t max, uint64_t *out)
{
	char *end;
	unsigned long long v;

	errno = 0;
	if (s[0] == '-' || s[0] == '+')
		return diag(p, "%s expects a number from 0 to %llu, got \"%s\"", opt,
			    (unsigned long long)max, s);
	v = strtoull(s, &end, 10);
	if (errno != 0 || end == s || *end != '\0' || v > max)
		return diag(p, "%s expects a number from 0 to %llu, got \"%s\"", opt,
			    (unsigned long long)max, s);
	*out = v;
	return MOAT_OK;
}

static int parse_bool(struct parse *p, const char *opt, const char *s, bool *out)
{
	if (strcmp(s, "true") == 0) {
		*out = true;
		return MOAT_OK;
	}
	if (strcmp(s, "false") == 0) {
		*out = false;
		return MOAT_OK;
	}
	return diag(p, "%s expects true or false, got \"%s\"", opt, s);
}

/* mosquitto's persistent_client_expiry: a number and one of h d w m y. */
static int parse_duration(struct parse *p, const char *opt, const char *s, int64_t *out)
{
	static const struct { char unit; int64_t s; } units[] = {
		{ 'h', 3600 }, { 'd', 86400 }, { 'w', 604800 }, { 'm', 2592000 }, { 'y', 31536000 },
	};
	char *end;
	long long v;

	errno = 0;
	v = strtoll(s, &end, 10);
	if (errno == 0 && end != s && v > 0 && v < 1000000 && end[0] != '\0' && end[1] == '\0') {
		for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
			if (units[i].unit == end[0]) {
				*out = v * units[i].s;
				return MOAT_OK;
			}
		}
	}
	return diag(p, "%s expects a duration like 2h, 3d, 1w, 6m or 1y, got \"%s\"", opt, s);
}

/* K_STR: a global string; K_LSTR/K_LBOOL: a setting of the listener declared
 * last (mosquitto's per-listener options; before any `listener` line they
 * belong to the default listener). */
enum opt_kind {
	K_U16, K_U32, K_U64, K_I32, K_BOOL, K_STR, K_LSTR, K_LBOOL, K_SPECIAL, K_LATER,
	K_IGNORED,	/* accepted for mosquitto compatibility, without effect */
};

struct opt {
	const char *name;
	enum opt_kind kind;
	size_t offset;
	uint64_t max;
};

#define O(f) offsetof(struct moat_config, f)
#define L(f) offsetof(struct moat_listener_conf, f)
static const struct opt opts[] = {
	{ "allow_anonymous", K_BOOL, O(allow_anonymous), 0 },
	{ "max_inflight_messages", K_U16, O(max_inflight_messages), 65535 },
	{ "max_queued_messages", K_U32, O(max_queued_messages), UINT32_MAX },
	{ "max_queued_bytes", K_U64, O(max_queued_bytes), UINT64_MAX },
	{ "max_packet_size", K_U32, O(max_packet_size), 268435460 },
	{ "message_size_limit", K_U32, O(message_size_limit), 268435455 },
	{ "max_keepalive", K_U16, O(max_keepalive), 65535 },
	{ "max_connections", K_I32, O(max_connections), INT32_MAX },
	{ "retain_available", K_BOOL, O(retain_available), 0 },
	{ "sys_interval", K_U32, O(sys_interval_s), 86400 },
	{ "threads", K_U32, O(threads), 1024 },
	{ "max_connect_packet_size", K_U32, O(max_connect_packet_size), 268435460 },
	{ "connect_timeout", K_U32, O(connect_timeout_s), 86400 },
	{ "max_topic_alias", K_U16, O(max_topic_alias), 65535 },
	{ "max_topic_levels", K_U32, O(max_topic_levels), 65535 },
	{ "max_subscriptions", K_U32, O(max_subscriptions), UINT32_MAX },
	{ "max_output_bytes", K_U32, O(max_output_bytes), UINT32_MAX },
	{ "max_inbound_qos2", K_U32, O(max_inbound_qos2), 65535 },
	{ "listener", K_SPECIAL, 0, 0 },
	{ "port", K_SPECIAL, 0, 0 },
	{ "bind_address", K_SPECIAL, 0, 0 },
	{ "persistent_client_expiry", K_SPECIAL, 0, 0 },
	{ "persistent_client_expiration", K_SPECIAL, 0, 0 },	/* mosquitto's spelling */
	{ "log_dest", K_SPECIAL, 0, 0 },
	{ "log_type", K_SPECIAL, 0, 0 },
	{ "persistence", K_BOOL, O(persistence), 0 },
	{ "persistence_location", K_STR, O(persistence_location), 0 },
	{ "persistence_sync", K_SPECIAL, 0, 0 },
	{ "sc_username", K_STR, O(sc_username), 0 },
	{ "sc_public_key", K_STR, O(sc_public_key), 0 },
	{ "topic_policy_file", K_STR, O(topic_policy_file), 0 },
	{ "persistence_max_bytes", K_U64, O(persistence_max_bytes), UINT64_MAX },
	/* mosquitto's periodic snapshot: moatd writes as it goes, so these change nothing */
	{ "persistence_file", K_IGNORED, 0, 0 },
	{ "autosave_interval", K_IGNORED, 0, 0 },
	{ "autosave_on_changes", K_IGNORED, 0, 0 },
	{ "protocol", K_SPECIAL, 0, 0 },
	{ "per_listener_settings", K_SPECIAL, 0, 0 },
	{ "queue_high_water", K_U32, O(queue_high_water), UINT32_MAX },
	{ "password_file", K_STR, O(password_file), 0 },
	{ "acl_file", K_STR, O(acl_file), 0 },
	{ "auth_token_issuer", K_STR, O(token_issuer), 0 },
	{ "auth_token_audience", K_STR, O(token_audience), 0 },
	{ "auth_token_username_claim", K_STR, O(token_username_claim), 0 },
	{ "auth_token_leeway", K_U32, O(token_leeway_s), 60 },
	{ "auth_token_key", K_SPECIAL, 0, 0 },
	{ "auth_fail_delay_max", K_U32, O(auth_fail_delay_max_ms), 600000 },
	{ "max_connections_per_address", K_U32, O(max_connections_per_address), UINT32_MAX },
	{ "connection_rate_per_address", K_U32, O(connection_rate_per_address), UINT32_MAX },
	{ "max_topic_length", K_U32, O(max_topic_length), 65535 },
	{ "max_user_properties", K_U32, O(max_user_properties), 1024 },
	{ "max_user_property_bytes", K_U32, O(max_user_property_bytes), 268435455 },
	{ "audit_log", K_SPECIAL, 0, 0 },
	{ "shutdown_timeout", K_U32, O(shutdown_timeout_s), 3600 },
	{ "pid_file", K_STR, O(pid_file), 0 },
	{ "log_format", K_SPECIAL, 0, 0 },
	{ "metrics_listener", K_SPECIAL, 0, 0 },
	{ "cafile", K_LSTR, L(tls.cafile), 0 },
	{ "capath", K_LSTR, L(tls.capath), 0 },
	{ "certfile", K_LSTR, L(tls.certfile), 0 },
	{ "keyfile", K_LSTR, L(tls.keyfile), 0 },
	{ "crlfile", K_LSTR, L(tls.crlfile), 0 },
	{ "tls_version", K_LSTR, L(tls.tls_version), 0 },
	{ "ciphers", K_LSTR, L(tls.ciphers), 0 },
	{ "ciphers_tls1.3", K_LSTR, L(tls.ciphers_tls13), 0 },
	{ "require_certificate", K_LBOOL, L(tls.require_certificate), 0 },
	{ "use_identity_as_username", K_LBOOL, L(tls.use_identity_as_username), 0 },
	{ "use_subject_as_username", K_LBOOL, L(tls.use_subject_as_username), 0 },
	/* Options of later work: recognised, refused clearly. */
	{ "auth_plugin", K_LATER, 0, 0 },     { "plugin", K_LATER, 0, 0 },
	{ "include_dir", K_LATER, 0, 0 },
};

static int parse_log_dest(struct parse *p, char **w, int n)
{
	struct moat_config *cfg = p->cfg;
	unsigned d;

	if (n == 3 && strcmp(w[1], "file") == 0) {
		free(cfg->log_file);
		cfg->log_file = strdup(w[2]);
		if (cfg->log_file == NULL)
			return diag(p, "out of memory");
		d = LOG_D_FILE;
	} else if (n == 2 && strcmp(w[1], "stderr") == 0) {
		d = LOG_D_STDERR;
	} else if (n == 2 && strcmp(w[1], "stdout") == 0) {
		d = LOG_D_STDOUT;
	} else if (n == 2 && strcmp(w[1], "syslog") == 0) {
		d = LOG_D_SYSLOG;
	} else if (n == 2 && strcmp(w[1], "none") == 0) {
		d = 0;
	} else {
		return diag(p, "log_dest expects stderr, stdout, syslog, none or \"file <path>\"");
	}
	cfg->log_dest = d == 0 ? 0 : (p->log_dest_seen ? cfg->log_dest : 0) | d;
	p->log_dest_seen = true;
	return MOAT_OK;
}

/* The listener per-listener options apply to: the one declared last, or
 * the default one (port 1883) when none is declared yet, as in mosquitto. */
static struct moat_listener_conf *current_listener(struct parse *p)
{
	struct moat_listener_conf *l = p->cfg->listeners;

	if (l == NULL && config_add_listener(p->cfg, NULL, 1883) < 0)
		return NULL;
	for (l = p->cfg->listeners; l->next != NULL; l = l->next)
		;
	return l;
}

int conf_set_string(char **slot, const char *value)
{
	char *copy = strdup(value);

	if (copy == NULL)
		return MOAT_E_NOMEM;
	free(*slot);
	*slot = copy;
	return MOAT_OK;
}

static int replace_string(struct parse *p, char **slot, const char *value)
{
	return conf_set_string(slot, value) == MOAT_OK ? MOAT_OK : diag(p, "out of memory");
}

static int parse_token_key(struct parse *p, char **w, int n)
{
	struct moat_token_key *k, **tail;

	if (n < 2 || n > 3)
		return diag(p, "auth_token_key expects a public key file and an optional key id, e.g. \"auth_token_key /etc/moat/sc.pem sc-2026\"");
	k = calloc(1, sizeof(*k));
	if (k == NULL || (k->path = strdup(w[1])) == NULL || (n == 3 && (k->kid = strdup(w[2])) == NULL)) {
		if (k != NULL)
			free(k->path);
		free(k);
		return diag(p, "out of memory");
	}
	for (tail = &p->cfg->token_keys; *tail != NULL; tail = &(*tail)->next)
		;
	*tail = k;
	return MOAT_OK;
}

static int parse_audit_log(struct parse *p, char **w, int n)
{
	struct moat_config *cfg = p->cfg;

	if (n == 3 && strcmp(w[1], "file") == 0) {
		cfg->audit_syslog = false;
		return replace_string(p, &cfg->audit_file, w[2]);
	}
	if (n == 2 && (strcmp(w[1], "syslog") == 0 || strcmp(w[1], "none") == 0)) {
		free(cfg->audit_file);
		cfg->audit_file = NULL;
		cfg->audit_syslog = strcmp(w[1], "syslog") == 0;
		return MOAT_OK;
	}
	return diag(p, "audit_log expects \"file <path>\", syslog or none");
}

/* persistence_sync always | batch [window ms] | none */
static int parse_persistence_sync(struct parse *p, char **w, int n)
{
	static const char *const names[] = { "always", "batch", "none" };	/* enum store_sync */
	uint64_t ms;

	for (uint8_t i = 0; i < 3; i++) {
		if (strcmp(w[1 < n ? 1 : 0], names[i]) != 0)
			continue;
		if (n == 3 && i == 1) {
			if (parse_uint(p, "persistence_sync batch window (ms)", w[2], 1000, &ms) < 0)
				return MOAT_E_CONFIG;
			p->cfg->persistence_batch_ms = (uint32_t)ms;
		} else if (n != 2) {
			break;
		}
		p->cfg->persistence_sync = i;
		return MOAT_OK;
	}
	return diag(p, "persistence_sync expects always, none, or batch with an optional window in milliseconds, e.g. \"persistence_sync batch 2\"");
}

/* metrics_listener PORT [BIND]: one HTTP listener for /metrics and /healthz. */
static int parse_metrics_listener(struct parse *p, char **w, int n)
{
	struct moat_config *cfg = p->cfg;
	uint64_t v;
	int rc;

	if (n < 2 || n > 3)
		return diag(p, "metrics_listener expects a port and an optional bind address, e.g. \"metrics_listener 9100 127.0.0.1\"");
	rc = parse_uint(p, "metrics_listener port", w[1], 65535, &v);
	if (rc < 0)
		return rc;
	if (v == 0)
		return diag(p, "metrics_listener expects a port from 1 to 65535; remove the line to turn metrics off");
	if (cfg->metrics_port != 0)
		return diag(p, "metrics_listener is set twice (line %u first); keep one", cfg->metrics_line);
	if (n == 3 && (rc = replace_string(p, &cfg->metrics_bind, w[2])) < 0)
		return rc;
	cfg->metrics_port = (uint16_t)v;
	cfg->metrics_line = p->line;
	return MOAT_OK;
}

static int parse_special(struct parse *p, char **w, int n)
{
	struct moat_config *cfg = p->cfg;
	uint64_t v;
	int rc;

	if (strcmp(w[0], "listener") == 0) {
		if (n < 2 || n > 3)
			return diag(p, "listener expects a port and an optional bind address, e.g. \"listener 1883 127.0.0.1\"");
		rc = parse_uint(p, "listener port", w[1], 65535, &v);
		if (rc < 0)
			return rc;
		if (config_add_listener(cfg, n == 3 ? w[2] : NULL, (uint16_t)v) < 0)
			return diag(p, "out of memory");
		current_listener(p)->line = p->line;
		return MOAT_OK;
	}
	if (strcmp(w[0], "log_dest") == 0)
		return parse_log_dest(p, w, n);
	if (strcmp(w[0], "persistence_sync") == 0)
		return parse_persistence_sync(p, w, n);
	if (strcmp(w[0], "auth_token_key") == 0)
		return parse_token_key(p, w, n);
	if (strcmp(w[0], "audit_log") == 0)
		return parse_audit_log(p, w, n);
	if (strcmp(w[0], "metrics_listener") == 0)
		return parse_metrics_listener(p, w, n);
	if (n != 2)
		return diag(p, "%s expects exactly one value", w[0]);
	if (strcmp(w[0], "port") == 0) {
		rc = parse_uint(p, "port", w[1], 65535, &v);
		if (rc < 0)
			return rc;
		if (cfg->listeners == NULL && config_add_listener(cfg, NULL, 0) < 0)
			return diag(p, "out of memory");
		cfg->listeners->port = (uint16_t)v;
		return MOAT_OK;
	}
	if (strcmp(w[0], "bind_address") == 0) {
		struct moat_listener_conf *l;

		if (cfg->listeners == NULL && config_add_listener(cfg, NULL, 1883) < 0)
			return diag(p, "out of memory");
		l = cfg->listeners;
		free(l->bind_address);
		l->bind_address = strdup(w[1]);
		return l->bind_address != NULL ? MOAT_OK : diag(p, "out of memory");
	}
	if (strcmp(w[0], "persistent_client_expiry") == 0 ||
	    strcmp(w[0], "persistent_client_expiration") == 0)
		return parse_duration(p, w[0], w[1], &cfg->persistent_client_expiry_s);
	if (strcmp(w[0], "log_type") == 0) {
		int m = log_type_parse(w[1]);

		if (m < 0)
			return diag(p, "log_type expects error, warning, notice, information, debug, subscribe, unsubscribe, websockets, all or none, got \"%s\"", w[1]);
		cfg->log_type = m == 0 ? 0 : (p->log_type_seen ? cfg->log_type : 0) | (unsigned)m;
		p->log_type_seen = true;
		return MOAT_OK;
	}
	if (strcmp(w[0], "log_format") == 0) {
		int f = log_format_parse(w[1]);

		if (f < 0)
			return diag(p, "log_format expects text or json, got \"%s\"", w[1]);
		cfg->log_format = (unsigned)f;
		return MOAT_OK;
	}
	if (strcmp(w[0], "protocol") == 0) {
		struct moat_listener_conf *l = current_listener(p);

		if (l == NULL)
			return diag(p, "out of memory");
		if (strcmp(w[1], "mqtt") == 0)
			l->protocol = LISTENER_MQTT;
		else if (strcmp(w[1], "websockets") == 0)
			l->protocol = LISTENER_WEBSOCKETS;
		else
			return diag(p, "protocol expects mqtt or websockets, got \"%s\"", w[1]);
		return MOAT_OK;
	}
	if (strcmp(w[0], "per_listener_settings") == 0) {
		bool b = false;

		rc = parse_bool(p, w[0], w[1], &b);
		if (rc < 0)
			return rc;
		return b ? diag(p, "per_listener_settings true is not supported yet; set it to false") : MOAT_OK;
	}
	return MOAT_E_NOTFOUND;
}

static int parse_line(struct parse *p, char *line)
{
	char *w[MAX_WORDS];
	int n = 0, bridge_rc;
	char *save = NULL;

	line += strspn(line, " \t\r");
	if (line[0] == '#')
		return MOAT_OK;	/* a comment may hold any number of words */
	for (char *t = strtok_r(line, " \t\r", &save); t != NULL; t = strtok_r(NULL, " \t\r", &save)) {
		if (n == MAX_WORDS)
			return diag(p, "too many values on one line");
		w[n++] = t;
	}
	if (n == 0 || w[0][0] == '#')
		return MOAT_OK;
	bridge_rc = bridge_conf_parse_line(&p->cfg->bridges, p->name, p->line, w, n, p->diag);
	if (bridge_rc != MOAT_E_NOTFOUND)
		return bridge_rc == MOAT_E_NOMEM ? diag(p, "out of memory") : bridge_rc;
	for (size_t i = 0; i < sizeof(opts) / sizeof(opts[0]); i++) {
		const struct opt *o = &opts[i];
		uint64_t v;
		int rc;

		if (strcmp(w[0], o->name) != 0)
			continue;
		if (o->kind == K_LATER)
			return diag(p, "%s is not supported yet by this version of moatd; remove the line", o->name);
		if (o->kind == K_SPECIAL)
			return parse_special(p, w, n);
		if (o->kind == K_IGNORED)
			return MOAT_OK;
		if (n != 2)
			return diag(p, "%s expects exactly one value", o->name);
		if (o->kind == K_BOOL)
			return parse_bool(p, o->name, w[1], (bool *)((char *)p->cfg + o->offset));
		if (o->kind == K_STR)
			return replace_string(p, (char **)((char *)p->cfg + o->offset), w[1]);
		if (o->kind == K_LSTR || o->kind == K_LBOOL) {
			struct moat_listener_conf *l = current_listener(p);

			if (l == NULL)
				return diag(p, "out of memory");
			if (o->kind == K_LBOOL)
				return parse_bool(p, o->name, w[1], (bool *)((char *)l + o->offset));
			return replace_string(p, (char **)((char *)l + o->offset), w[1]);
		}
		if (o->kind == K_I32 && strcmp(w[1], "-1") == 0) {
			*(int32_t *)((char *)p->cfg + o->offset) = -1;
			return MOAT_OK;
		}
		rc = parse_uint(p, o->name, w[1], o->max, &v);
		if (rc < 0)
			return rc;
		switch (o->kind) {
		case K_U16: *(uint16_t *)((char *)p->cfg + o->offset) = (uint16_t)v; break;
		case K_U32: *(uint32_t *)((char *)p->cfg + o->offset) = (uint32_t)v; break;
		case K_U64: *(uint64_t *)((char *)p->cfg + o->offset) = v; break;
		case K_I32: *(int32_t *)((char *)p->cfg + o->offset) = (int32_t)v; break;
		default: break;
		}
		return MOAT_OK;
	}
	if (strncmp(w[0], "cluster_", 8) == 0 || strcmp(w[0], "node_name") == 0) {
		int rc = cluster_conf_parse(&p->cfg->cluster, p->name, p->line, w, n, p->diag);

		if (rc != MOAT_E_NOTFOUND)
			return rc;
	}
	return diag(p, "unknown option \"%s\"; check the spelling (see docs/configuration.md)", w[0]);
}

/* Whole-file rules: a listener's TLS options must make sense together. */
static int check_listeners(struct parse *p)
{
	for (struct moat_listener_conf *l = p->cfg->listeners; l != NULL; l = l->next) {
		const struct moat_tls_conf *t = &l->tls;
		bool any = t->cafile || t->capath || t->keyfile || t->crlfile || t->tls_version ||
			   t->ciphers || t->ciphers_tls13 || t->require_certificate ||
			   t->use_identity_as_username || t->use_subject_as_username;

		p->line = l->line;
		if (t->certfile == NULL && any)
			return diag(p, "listener %u has TLS options but no certfile; add certfile and keyfile (TLS needs both) or remove the TLS options",
				    l->port);
		if (t->certfile != NULL && t->keyfile == NULL)
			return diag(p, "listener %u has a certfile but no keyfile; add keyfile", l->port);
		if (t->require_certificate && t->cafile == NULL && t->capath == NULL)
			return diag(p, "listener %u: require_certificate needs cafile or capath to verify client certificates against",
				    l->port);
		if ((t->use_identity_as_username || t->use_subject_as_username) && !t->require_certificate)
			return diag(p, "listener %u: use_identity_as_username and use_subject_as_username need require_certificate true",
				    l->port);
		if (t->use_identity_as_username && t->use_subject_as_username)
			return diag(p, "listener %u: choose one of use_identity_as_username and use_subject_as_username",
				    l->port);
	}
	return MOAT_OK;
}

int config_load_buffer(struct moat_config *cfg, const char *name, const char *data, size_t len,
		       struct moat_diag *d)
{
	struct parse p = { .cfg = cfg, .name = name, .diag = d };
	char line[MAX_LINE];
	size_t pos = 0;
	int rc;

	while (pos < len) {
		const char *nl = memchr(data + pos, '\n', len - pos);
		size_t n = nl != NULL ? (size_t)(nl - (data + pos)) : len - pos;

		p.line++;
		if (n >= sizeof(line))
			return diag(&p, "line longer than %d bytes", MAX_LINE - 1);
		if (memchr(data + pos, '\0', n) != NULL)
			return diag(&p, "NUL byte in the line; the file must be text");
		memcpy(line, data + pos, n);
		line[n] = '\0';
		rc = parse_line(&p, line);
		if (rc < 0)
			return rc;
		pos += n + 1;
	}
	rc = check_listeners(&p);
	if (rc == 0)
		rc = cluster_conf_check(&cfg->cluster, name, d);
	return rc < 0 ? rc : bridge_conf_check(cfg->bridges, name, d);
}

int config_load(struct moat_config *cfg, const char *path, struct moat_diag *d)
{
	char *data;
	size_t len;
	int rc = conf_read_file(path, 16u << 20, &data, &len, d);

	if (rc < 0)
		return rc;
	rc = config_load_buffer(cfg, path, data, len, d);
	if (rc == MOAT_OK && (cfg->path = strdup(path)) == NULL)
		rc = MOAT_E_NOMEM;
	free(data);
	return rc;
}
