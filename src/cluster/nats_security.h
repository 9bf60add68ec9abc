/*
 * How moatd's cluster (cluster.c) and `moat ctl cluster status` secure
 * their NATS connection: the same options, so they read as one
 * (docs/cluster.md, "Configuration").
 */
#ifndef MOAT_CLUSTER_NATS_SECURITY_H
#define MOAT_CLUSTER_NATS_SECURITY_H

#include <stdbool.h>

#include <nats/nats.h>

/* Turns TLS on when <cafile> or <certfile> is given, trusts <cafile>,
 * presents <certfile> with <keyfile>, and authenticates with the .creds
 * file <credentials>; each may be NULL. NATS_OK or the first failure. */
natsStatus nats_security_set(natsOptions *o, const char *cafile, const char *certfile,
			     const char *keyfile, const char *credentials);
/* natsConnection_Connect with <o>, tried again while NATS refuses it for
 * authentication, at most NATS_AUTH_TRIES times in all, when <credentials>
 * are set: libnats before 3.10 (Debian 12 has 3.4.1) leaves out its
 * signature of the server's nonce when the signature's first byte is 0
 * (its base64 encoder took the bytes for a C string; nats.c PR 705), so
 * about one connection in 256 with valid credentials is refused. Each try
 * signs a new nonce. */
enum { NATS_AUTH_TRIES = 3 };
natsStatus nats_security_connect(natsConnection **nc, natsOptions *o, bool credentials);

#endif
