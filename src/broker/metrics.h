/*
 * The Prometheus text exposition format, version 0.0.4, of a stats snapshot
 * (stats.h): one function per metric family, each writing its "# HELP" and
 * "# TYPE" lines and its samples. More families (the store's) are added with
 * metrics_family() and metrics_sample() in a function of their own. No
 * broker state is touched: rendering works on the snapshot alone.
 */
#ifndef MOAT_BROKER_METRICS_H
#define MOAT_BROKER_METRICS_H

#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"
#include "broker/stats.h"

/* Where text goes; the first error sticks and later writes do nothing. */
struct metrics_writer {
	struct buf *out;
	int err; /* MOAT_OK, or MOAT_E_NOMEM once an append failed */
};

struct metrics_label {
	const char *name;  /* [a-zA-Z_][a-zA-Z0-9_]*, not checked */
	const char *value; /* any text: escaped as the format asks */
};

/* Writes "# HELP <name> <help>" (help with \ and newline escaped) and
 * "# TYPE <name> <type>" (<type>: "counter", "gauge", "histogram"...). */
void metrics_family(struct metrics_writer *w, const char *name, const char *type, const char *help);

/* Writes one sample line "<name>{<l>="<v>",...} <value>": label values
 * with \, " and newline escaped; no braces when <nlabels> is 0. */
void metrics_sample(struct metrics_writer *w, const char *name, const struct metrics_label *labels,
		    size_t nlabels, uint64_t value);

/* The same with a floating-point value (a histogram's _sum), printed with
 * up to 17 significant digits; NaN and infinities as the format spells them. */
void metrics_sample_f(struct metrics_writer *w, const char *name,
		      const struct metrics_label *labels, size_t nlabels, double value);

/* Writes a whole histogram family <name> ("# HELP", "# TYPE histogram",
 * then <name>_bucket{le="..."} cumulative counts, <name>_sum and
 * <name>_count). <counts>[i] counts the observations of bucket i alone (at
 * most <le>[i], above <le>[i-1]); <le> is ascending, in the metric's unit
 * (seconds for latencies), and may end with INFINITY: a +Inf bucket is added
 * when it does not. <sum> is the sum of every observation. */
void metrics_histogram(struct metrics_writer *w, const char *name, const char *help,
		       const double *le, const uint64_t *counts, size_t nbuckets, double sum);

/* Appends every family of <st> to <out>. MOAT_OK or MOAT_E_NOMEM (<out>
 * then holds a partial text the caller discards). */
int metrics_render(const struct stats *st, struct buf *out);

#endif
