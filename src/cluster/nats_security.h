/*
 * How moatd's cluster (cluster.c) and `moat ctl cluster status` secure
 * their NATS connection: the same options, so they read as one
 * (docs/cluster.md, "Configuration").
 */
#ifndef MOAT_CLUSTER_NATS_SECURITY_H
#define MOAT_CLUSTER_NATS_SECURITY_H

#include <nats/nats.h>

/* Turns TLS on when <cafile> or <certfile> is given, trusts <cafile>,
 * presents <certfile> with <keyfile>, and authenticates with the .creds
 * file <credentials>; each may be NULL. NATS_OK or the first failure. */
natsStatus nats_security_set(natsOptions *o, const char *cafile, const char *certfile,
			     const char *keyfile, const char *credentials);

#endif
