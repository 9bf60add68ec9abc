/*
 * `moat ctl` internals: the parsed command line, the admin-channel client
 * (ctl.c), `thing create`'s credential bundle (ctl_thing.c), the human
 * output of each answer (ctl_print.c) and the cluster's status read from
 * NATS (ctl_cluster.c).
 */
#ifndef MOAT_CLI_CTL_H
#define MOAT_CLI_CTL_H

#include <stdbool.h>
#include <stddef.h>

#include <cjson/cJSON.h>

#include "sc/registry.h"

struct ctl_opts {
	const char *socket, *sc_dir, *actor;
	bool json, sign_flag;
	const char *pos[4];
	size_t pos_count;
	const char *attrs[REG_ATTRS_MAX];
	size_t attr_count;
	const char *csr, *sign_pub, *agree_pub, *out, *reason;
	const char *publish, *subscribe, *alg, *max_age, *ttl, *tail;
	char socket_buf[4096];
};

/* Sends the request <req> (consumed) over the admin socket of <o> and
 * returns the answer in *<res> (the caller deletes it). 0, or 1 after
 * printing why (SC not running, bad answer). */
int ctl_call(const struct ctl_opts *o, cJSON *req, cJSON **res);

/* A new request {"op": <op>} with "actor" when given. */
cJSON *ctl_request(const struct ctl_opts *o, const char *op);

/* `thing create NAME`: makes the keys and CSR, asks the SC, writes the
 * bundle into --out. Returns the exit code. */
int ctl_thing_create(const struct ctl_opts *o, const char *name);

/* `moat ctl cluster ...` (ctl_cluster.c): <argv>[0] is "cluster". Returns
 * the exit code. */
int ctl_cluster_main(int argc, char **argv);

/* Prints the successful answer <res> of <op> for people. */
void ctl_print(const char *op, const cJSON *res);

#endif
