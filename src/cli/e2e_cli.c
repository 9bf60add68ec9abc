/*
 * `moat pub --e2e BUNDLE` / `moat sub --e2e BUNDLE`: opening the device
 * credential bundle with libmoat's e2e API (include/moat/e2e.h), taking the
 * client id and broker address from it (for mqtts://, mutual TLS with the
 * bundle's ca.pem, cert.pem and key.pem), and attaching it to the client.
 * Sealing and opening happen in pub.c and sub.c.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"

/* Splits "mqtt://host:port" (or mqtts://) into <host> and <port>; false when it is not one. */
static bool parse_broker(const char *url, char *host, size_t host_len, uint16_t *port, bool *tls)
{
	const char *rest, *colon;
	char *end;
	long p;

	if (strncmp(url, "mqtt://", 7) == 0) {
		rest = url + 7;
		*tls = false;
	} else if (strncmp(url, "mqtts://", 8) == 0) {
		rest = url + 8;
		*tls = true;
	} else {
		return false;
	}
	colon = strrchr(rest, ':');
	if (colon == NULL || colon == rest || (size_t)(colon - rest) >= host_len)
		return false;
	p = strtol(colon + 1, &end, 10);
	if (*end != '\0' || end == colon + 1 || p < 1 || p > 65535)
		return false;
	snprintf(host, host_len, "%.*s", (int)(colon - rest), rest);
	*port = (uint16_t)p;
	return true;
}

/* Points <o>'s TLS options at the bundle's ca.pem, cert.pem and key.pem
 * (the certificate and key only when both exist); 0, or 1 after an error. */
static int use_bundle_tls(struct cli_opts *o)
{
	static char ca[4096], cert[4096], key[4096];
	int n = 0;

	n |= snprintf(ca, sizeof(ca), "%s/ca.pem", o->e2e_bundle) >= (int)sizeof(ca);
	n |= snprintf(cert, sizeof(cert), "%s/cert.pem", o->e2e_bundle) >= (int)sizeof(cert);
	n |= snprintf(key, sizeof(key), "%s/key.pem", o->e2e_bundle) >= (int)sizeof(key);
	if (n != 0) {
		fprintf(stderr, "Error: --e2e %s: the path is too long\n", o->e2e_bundle);
		return 1;
	}
	o->client.tls = true;
	o->client.cafile = ca;
	if (access(cert, F_OK) == 0 && access(key, F_OK) == 0) {
		o->client.certfile = cert;
		o->client.keyfile = key;
	}
	return 0;
}

int cli_e2e_prepare(struct cli_opts *o)
{
	static char host[256];
	char diag[512];
	const char *broker;
	uint16_t port;
	bool tls;
	int rc;

	if (o->e2e_bundle == NULL)
		return 0;
	if (o->client.version != 5) {
		fprintf(stderr, "Error: --e2e needs MQTT 5 (key requests use response topics)\n");
		return 1;
	}
	rc = moat_e2e_open_bundle(&o->e2e, o->e2e_bundle, diag, sizeof(diag));
	if (rc < 0) {
		fprintf(stderr, "Error: --e2e %s: %s\n", o->e2e_bundle,
			diag[0] != '\0' ? diag : moat_strerror(rc));
		return 1;
	}
	if (diag[0] != '\0')
		fprintf(stderr, "Warning: %s\n", diag);
	if (o->client.client_id != NULL &&
	    strcmp(o->client.client_id, moat_e2e_client_id(o->e2e)) != 0) {
		fprintf(stderr, "Error: -i %s is not the bundle's client id %s\n",
			o->client.client_id, moat_e2e_client_id(o->e2e));
		return 1;
	}
	o->client.client_id = moat_e2e_client_id(o->e2e);
	broker = moat_e2e_broker(o->e2e);
	if (broker[0] == '\0' || (o->host_set && o->port_set))
		return 0;
	if (!parse_broker(broker, host, sizeof(host), &port, &tls)) {
		fprintf(stderr,
			"Error: the bundle's broker \"%s\" is not mqtt://host:port or "
			"mqtts://host:port\n",
			broker);
		return 1;
	}
	if (tls && !o->client.tls && use_bundle_tls(o) != 0)
		return 1;
	if (!o->host_set)
		o->client.host = host;
	if (!o->port_set)
		o->client.port = port;
	return 0;
}

int cli_e2e_attach(struct cli_opts *o, struct moat_client *c)
{
	if (o->e2e == NULL)
		return 0;
	if (moat_e2e_attach(o->e2e, c) < 0) {
		fprintf(stderr, "Error: cannot use the bundle with this client\n");
		return 1;
	}
	return 0;
}

void cli_e2e_finish(struct cli_opts *o)
{
	moat_e2e_destroy(o->e2e);
	o->e2e = NULL;
}
