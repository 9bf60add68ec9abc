/*
 * The cluster's configuration lines (docs/cluster.md): the NATS servers a
 * node joins through, the cluster's and the node's names, and how the node
 * authenticates to a secured NATS. Parsed here so config.c only forwards.
 */
#ifndef MOAT_CONF_CLUSTER_CONF_H
#define MOAT_CONF_CLUSTER_CONF_H

#include <stddef.h>
#include <stdint.h>

struct moat_diag;

/* Longest cluster_name / node_name: they become parts of NATS subjects,
 * stream, consumer and bucket names. */
enum { CLUSTER_NAME_MAX = 64, CLUSTER_NODE_MAX = 64 };
/* cluster_queue_max_bytes's default: copies waiting while NATS is unreachable. */
#define CLUSTER_QUEUE_MAX_DEFAULT (64ULL << 20)

struct moat_cluster_conf {
	char **urls; /* cluster_url, in order; NULL = no cluster */
	size_t url_count;
	char *name;	 /* cluster_name; NULL = "moat" */
	char *node_name; /* NULL = host name + "-" + first listener port */
	char *tls_cafile, *tls_certfile, *tls_keyfile;
	char *credentials; /* a NATS .creds file */
	unsigned line;	   /* the first cluster line, for whole-file messages */
	unsigned file_line[4]; /* the lines of the four files above, in order */
	/* cluster_replicas: JetStream copies of the stream and buckets it creates; 0 = 1 */
	unsigned replicas;
	uint64_t queue_max_bytes; /* cluster_queue_max_bytes; 0 = CLUSTER_QUEUE_MAX_DEFAULT */
};

/* Parses one cluster line (words <w>, <n> of them) of file <name> at <line>.
 * MOAT_OK, MOAT_E_NOTFOUND when w[0] is not a cluster option, or
 * MOAT_E_CONFIG / MOAT_E_NOMEM with <d> filled. */
int cluster_conf_parse(struct moat_cluster_conf *c, const char *name, unsigned line, char **w,
		       int n, struct moat_diag *d);

/* Whole-file rules (TLS files in pairs, no cluster option without a
 * cluster_url, every file named readable, reported at its line).
 * MOAT_OK or MOAT_E_CONFIG with <d> filled. */
int cluster_conf_check(const struct moat_cluster_conf *c, const char *name, struct moat_diag *d);

void cluster_conf_fini(struct moat_cluster_conf *c);

#endif
