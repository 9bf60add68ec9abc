/*
 * A NATS connection's TLS and credentials options (see nats_security.h).
 */
#include "cluster/nats_security.h"

natsStatus nats_security_set(natsOptions *o, const char *cafile, const char *certfile,
			     const char *keyfile, const char *credentials)
{
	natsStatus s = NATS_OK;

	if (cafile != NULL || certfile != NULL)
		s = natsOptions_SetSecure(o, true);
	if (s == NATS_OK && cafile != NULL)
		s = natsOptions_LoadCATrustedCertificates(o, cafile);
	if (s == NATS_OK && certfile != NULL)
		s = natsOptions_LoadCertificatesChain(o, certfile, keyfile);
	if (s == NATS_OK && credentials != NULL)
		s = natsOptions_SetUserCredentialsFromFiles(o, credentials, NULL);
	return s;
}

natsStatus nats_security_connect(natsConnection **nc, natsOptions *o, bool credentials)
{
	natsStatus s = natsConnection_Connect(nc, o);

	for (int i = 1; credentials && s == NATS_CONNECTION_AUTH_FAILED && i < NATS_AUTH_TRIES; i++)
		s = natsConnection_Connect(nc, o);
	return s;
}
