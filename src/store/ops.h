/*
 * The encoding of a store batch (internal to src/store). A batch's buffer
 * starts with room for a struct store_node, so that store_submit can queue
 * the buffer itself without allocating; the operations follow, each a type
 * byte, a 4-byte key length, for a put a 4-byte value length, then the key
 * and the value. Built by batch.c, read by the commit thread.
 */
#ifndef MOAT_STORE_OPS_H
#define MOAT_STORE_OPS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum store_op_type {
	STORE_OP_PUT = 'P',
	STORE_OP_DEL = 'D',
	STORE_OP_DEL_PREFIX = 'X',
};

/* A queued batch: the head of its own ops buffer. */
struct store_node {
	struct store_node *next;
	uint64_t ticket;
	uint64_t arrived_ms; /* monotonic */
	size_t len;	     /* bytes of the buffer in use, this header included */
	int wake_fd;
};

struct store_op {
	enum store_op_type type;
	const uint8_t *key;
	size_t klen;
	const uint8_t *val; /* put only */
	size_t vlen;
};

/* Reads the operation at *<p> (before <end>) into <op> and advances *<p>.
 * Returns false at the end or on bytes that batch.c did not write. */
bool store_op_next(const uint8_t **p, const uint8_t *end, struct store_op *op);

/* The operations of a queued batch: [*begin, *end). */
static inline void store_node_ops(const struct store_node *n, const uint8_t **begin,
				  const uint8_t **end)
{
	*begin = (const uint8_t *)n + sizeof(*n);
	*end = (const uint8_t *)n + n->len;
}

#endif
