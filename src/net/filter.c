/*
 * Filter stacking (see filter.h): two filters run as one, so the broker
 * sees wss = filter_stack(tls, ws) as a single filter. What the upper
 * filter must send to the peer (101 response, pong, close) is encoded by
 * the lower one like any other output.
 */
#include "net/filter.h"

#include <stdlib.h>

#include <moat/error.h>

struct stack {
	struct filter base;
	struct filter *lower;
	struct filter *upper;
	struct buf mid;	    /* lower's application bytes = upper's input */
	struct buf up_wire; /* upper's bytes for the peer, before lower encodes them */
};

/* Sends what upper produced for the peer through lower. */
static int route_up_wire(struct stack *s, struct buf *wire_out)
{
	int rc = MOAT_OK;

	if (buf_used(&s->up_wire) > 0) {
		rc = s->lower->ops->output(s->lower, buf_head(&s->up_wire), buf_used(&s->up_wire),
					   wire_out);
		buf_consume(&s->up_wire, buf_used(&s->up_wire));
	}
	return rc;
}

static int stack_input(struct filter *f, const uint8_t *in, size_t n, struct buf *app_in,
		       struct buf *wire_out, const char **why)
{
	struct stack *s = (struct stack *)f;
	const char *lower_why = NULL;
	int lower_rc, r2, rc = MOAT_OK;

	lower_rc = s->lower->ops->input(s->lower, in, n, &s->mid, wire_out, &lower_why);
	/* bytes lower decoded before failing or closing still reach upper */
	if (buf_used(&s->mid) > 0) {
		rc = s->upper->ops->input(s->upper, buf_head(&s->mid), buf_used(&s->mid), app_in,
					  &s->up_wire, why);
		buf_consume(&s->mid, buf_used(&s->mid));
		/* after lower failed its output refuses this and the bytes are dropped */
		r2 = route_up_wire(s, wire_out);
		if (rc == MOAT_OK && lower_rc == MOAT_OK)
			rc = r2;
		if (rc < 0)
			return rc;
	}
	if (lower_rc < 0 && why != NULL)
		*why = lower_why;
	return lower_rc;
}

static int stack_output(struct filter *f, const uint8_t *p, size_t n, struct buf *wire_out)
{
	struct stack *s = (struct stack *)f;
	int rc;

	rc = s->upper->ops->output(s->upper, p, n, &s->up_wire);
	if (rc < 0) {
		buf_consume(&s->up_wire, buf_used(&s->up_wire));
		return rc;
	}
	return route_up_wire(s, wire_out);
}

static void stack_shutdown(struct filter *f, struct buf *wire_out)
{
	struct stack *s = (struct stack *)f;

	s->upper->ops->shutdown(s->upper, &s->up_wire);
	(void)route_up_wire(s, wire_out);
	s->lower->ops->shutdown(s->lower, wire_out);
}

static int stack_ready(const struct filter *f)
{
	const struct stack *s = (const struct stack *)f;

	return s->lower->ops->ready(s->lower) && s->upper->ops->ready(s->upper);
}

static void stack_destroy(struct filter *f)
{
	struct stack *s = (struct stack *)f;

	filter_destroy(s->upper);
	filter_destroy(s->lower);
	buf_fini(&s->mid);
	buf_fini(&s->up_wire);
	free(s);
}

static const struct filter_ops stack_ops = {
    .input = stack_input,
    .output = stack_output,
    .shutdown = stack_shutdown,
    .ready = stack_ready,
    .destroy = stack_destroy,
};

struct filter *filter_stack(struct filter *lower, struct filter *upper)
{
	struct stack *s;

	if (lower == NULL || upper == NULL)
		goto err;
	s = calloc(1, sizeof(*s));
	if (s == NULL)
		goto err;
	s->base.ops = &stack_ops;
	s->lower = lower;
	s->upper = upper;
	return &s->base;

err:
	filter_destroy(lower);
	filter_destroy(upper);
	return NULL;
}
