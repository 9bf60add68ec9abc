/*
 * Parser of the cluster's configuration lines (see cluster_conf.h).
 */
#include "conf/cluster_conf.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <moat/error.h>

#include "base/text.h"
#include "conf/config.h"

static bool valid_url(const char *s)
{
	return strncmp(s, "nats://", 7) == 0 || strncmp(s, "tls://", 6) == 0;
}

static int add_url(struct moat_cluster_conf *c, const char *url)
{
	char **v = realloc(c->urls, (c->url_count + 1) * sizeof(*v));

	if (v == NULL)
		return MOAT_E_NOMEM;
	c->urls = v;
	if ((v[c->url_count] = strdup(url)) == NULL)
		return MOAT_E_NOMEM;
	c->url_count++;
	return MOAT_OK;
}

/* The file options, in the order of moat_cluster_conf's file_line. */
static const struct {
	const char *opt;
	size_t offset;
} files[] = {
    {"cluster_tls_cafile", offsetof(struct moat_cluster_conf, tls_cafile)},
    {"cluster_tls_certfile", offsetof(struct moat_cluster_conf, tls_certfile)},
    {"cluster_tls_keyfile", offsetof(struct moat_cluster_conf, tls_keyfile)},
    {"cluster_credentials", offsetof(struct moat_cluster_conf, credentials)},
};

static char *const *file_slot(const struct moat_cluster_conf *c, size_t i)
{
	return (char *const *)((const char *)c + files[i].offset);
}

/* cluster_queue_max_bytes N: the outbound queue's bound, 1 or more bytes. */
static int parse_queue_max(struct moat_cluster_conf *c, const char *name, unsigned line, char **w,
			   int n, struct moat_diag *d)
{
	char *end = NULL;
	unsigned long long v = 0;

	errno = 0;
	if (n == 2 && w[1][0] >= '0' && w[1][0] <= '9')
		v = strtoull(w[1], &end, 10);
	if (n != 2 || end == NULL || *end != '\0' || errno != 0 || v == 0)
		return conf_diag(d, name, line,
				 "cluster_queue_max_bytes expects a number of bytes above 0, e.g. "
				 "\"cluster_queue_max_bytes 67108864\" (64 MiB, the default)");
	c->queue_max_bytes = v;
	if (c->line == 0)
		c->line = line;
	return MOAT_OK;
}

int cluster_conf_parse(struct moat_cluster_conf *c, const char *name, unsigned line, char **w,
		       int n, struct moat_diag *d)
{
	char **slot = NULL;
	int rc = MOAT_OK;

	if (strcmp(w[0], "cluster_url") == 0) {
		if (n != 2 || !valid_url(w[1]))
			return conf_diag(
			    d, name, line,
			    "cluster_url expects one NATS server URL, e.g. \"cluster_url "
			    "nats://127.0.0.1:4222\" (repeat the line for more servers)");
		rc = add_url(c, w[1]);
	} else if (strcmp(w[0], "cluster_name") == 0 || strcmp(w[0], "node_name") == 0) {
		if (n != 2 || !text_is_name(w[1], CLUSTER_NAME_MAX))
			return conf_diag(
			    d, name, line,
			    "%s expects one name of 1 to %d letters, digits, '-' or '_'", w[0],
			    CLUSTER_NAME_MAX);
		slot = w[0][0] == 'c' ? &c->name : &c->node_name;
	} else if (strcmp(w[0], "cluster_replicas") == 0) {
		if (n != 2 ||
		    (strcmp(w[1], "1") != 0 && strcmp(w[1], "3") != 0 && strcmp(w[1], "5") != 0))
			return conf_diag(
			    d, name, line,
			    "cluster_replicas expects 1, 3 or 5 (the JetStream copies of "
			    "the stream and buckets; 3 with a 3-server NATS cluster)");
		c->replicas = (unsigned)(w[1][0] - '0');
	} else if (strcmp(w[0], "cluster_queue_max_bytes") == 0) {
		return parse_queue_max(c, name, line, w, n, d);
	} else {
		for (size_t i = 0; i < sizeof(files) / sizeof(files[0]) && slot == NULL; i++)
			if (strcmp(w[0], files[i].opt) == 0) {
				slot = (char **)((char *)c + files[i].offset);
				c->file_line[i] = line;
			}
		if (slot == NULL)
			return MOAT_E_NOTFOUND;
		if (n != 2)
			return conf_diag(d, name, line, "%s expects one file path", w[0]);
	}
	if (slot != NULL)
		rc = conf_set_string(slot, w[1]);
	if (rc < 0)
		return conf_diag(d, name, line, "out of memory");
	if (c->line == 0)
		c->line = line;
	return MOAT_OK;
}

int cluster_conf_check(const struct moat_cluster_conf *c, const char *name, struct moat_diag *d)
{
	if (c->line == 0)
		return MOAT_OK;
	if (c->url_count == 0)
		return conf_diag(d, name, c->line,
				 "cluster options without cluster_url; add \"cluster_url "
				 "nats://HOST:PORT\" or remove them");
	if ((c->tls_certfile == NULL) != (c->tls_keyfile == NULL))
		return conf_diag(d, name, c->line,
				 "cluster_tls_certfile and cluster_tls_keyfile go together; set "
				 "both or neither");
	/* checked here, so a wrong path is reported at its line rather than
	 * as NATS's "cannot set the options" when the node starts */
	for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
		const char *path = *file_slot(c, i);

		if (path != NULL && access(path, R_OK) != 0)
			return conf_diag(d, name, c->file_line[i],
					 "%s %s: cannot read it (%s); check the path and its "
					 "permissions",
					 files[i].opt, path, strerror(errno));
	}
	return MOAT_OK;
}

void cluster_conf_fini(struct moat_cluster_conf *c)
{
	for (size_t i = 0; i < c->url_count; i++)
		free(c->urls[i]);
	free(c->urls);
	free(c->name);
	free(c->node_name);
	free(c->tls_cafile);
	free(c->tls_certfile);
	free(c->tls_keyfile);
	free(c->credentials);
	*c = (struct moat_cluster_conf){0};
}
