/*
 * Listener contexts (see listen.h): the configuration's TLS options turned
 * into OpenSSL server contexts, and the filter stack of each connection.
 */
#include "broker/listen.h"

#include <stdlib.h>

#include <moat/error.h>

#include "base/log.h"
#include "net/tls.h"
#include "net/ws.h"

static struct tls_settings settings_of(const struct moat_tls_conf *t)
{
	return (struct tls_settings){
		.cafile = t->cafile, .capath = t->capath, .certfile = t->certfile,
		.keyfile = t->keyfile, .crlfile = t->crlfile, .tls_version = t->tls_version,
		.ciphers = t->ciphers, .ciphers_tls13 = t->ciphers_tls13,
		.require_certificate = t->require_certificate,
		.use_identity_as_username = t->use_identity_as_username,
		.use_subject_as_username = t->use_subject_as_username,
	};
}

int listen_ctx_create(const struct moat_config *cfg, struct listen_ctx **out, unsigned *count)
{
	unsigned n = 0, i = 0;
	struct listen_ctx *l;

	for (const struct moat_listener_conf *lc = cfg->listeners; lc != NULL; lc = lc->next)
		n++;
	l = calloc(n ? n : 1, sizeof(*l));
	if (l == NULL)
		return MOAT_E_NOMEM;
	for (const struct moat_listener_conf *lc = cfg->listeners; lc != NULL; lc = lc->next, i++) {
		struct tls_settings ts = settings_of(&lc->tls);
		struct tls_diag d;

		l[i].conf = lc;
		if (lc->tls.certfile == NULL)
			continue;
		if (tls_server_create(&ts, &l[i].tls, &d) < 0) {
			log_err("%s:%u: listener %u: %s", cfg->path != NULL ? cfg->path : "-p", lc->line, lc->port,
				d.msg);
			listen_ctx_destroy(l, i);
			return MOAT_E_CONFIG;
		}
	}
	*out = l;
	*count = n;
	return MOAT_OK;
}

void listen_ctx_destroy(struct listen_ctx *l, unsigned count)
{
	if (l == NULL)
		return;
	for (unsigned i = 0; i < count; i++)
		tls_server_unref(l[i].tls);
	free(l);
}

void listen_ctx_reload(struct listen_ctx *l, unsigned count)
{
	for (unsigned i = 0; i < count; i++) {
		struct tls_settings ts;
		struct tls_diag d;

		if (l[i].tls == NULL)
			continue;
		ts = settings_of(&l[i].conf->tls);
		if (tls_server_reload(l[i].tls, &ts, &d) < 0)
			log_err("listener %u: TLS reload failed, keeping the old certificates: %s",
				l[i].conf->port, d.msg);
		else
			log_notice("listener %u: certificates, key and CRL reloaded", l[i].conf->port);
	}
}

int listen_filter(const struct listen_ctx *l, struct filter **out, struct filter **tls)
{
	struct filter *t = NULL, *ws = NULL;

	*out = *tls = NULL;
	if (l->tls != NULL && (t = tls_filter_create(l->tls)) == NULL)
		return MOAT_E_NOMEM;
	if (l->conf->protocol == LISTENER_WEBSOCKETS) {
		ws = ws_filter_create(0);	/* frames may hold several packets: only packets are bounded [MQTT-6.0.0-2] */
		if (ws == NULL) {
			filter_destroy(t);
			return MOAT_E_NOMEM;
		}
	}
	if (t != NULL && ws != NULL) {
		*out = filter_stack(t, ws);	/* consumes both */
		if (*out == NULL)
			return MOAT_E_NOMEM;
	} else {
		*out = t != NULL ? t : ws;
	}
	*tls = t;
	return MOAT_OK;
}
