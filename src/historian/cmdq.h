/*
 * Commands in flight between the HTTP threads that ask for them and the
 * MQTT thread that seals, publishes and matches their acknowledgements.
 * An entry lives on the asking thread's stack from cmdq_submit to the end
 * of cmdq_wait; the queue only links it. Thread-safe.
 */
#ifndef MOAT_HISTORIAN_CMDQ_H
#define MOAT_HISTORIAN_CMDQ_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "historian/db.h"

struct cmdq_entry {
	char id[HIST_NAME_MAX + 1];
	char device[HIST_NAME_MAX + 1];
	bool on;
	/* set by the MQTT thread under the queue's lock */
	bool sent, done;
	enum hist_cmd_status status;
	char reason[HIST_NAME_MAX + 1];
	struct cmdq_entry *next;
};

struct cmdq {
	pthread_mutex_t lock;
	pthread_cond_t cond; /* CLOCK_MONOTONIC */
	struct cmdq_entry *head;
	int wake[2]; /* a pipe: readable when there is something to send */
};

/* Initialises <q>. MOAT_OK or MOAT_E_IO. */
int cmdq_init(struct cmdq *q);

/* Frees what <q> holds (no entry may be linked). */
void cmdq_fini(struct cmdq *q);

/* Links <e> (id, device, on filled in) and wakes the MQTT thread. */
void cmdq_submit(struct cmdq *q, struct cmdq_entry *e);

/* Waits up to <timeout_ms> for <e> to be completed, then unlinks it.
 * True when it was completed (status and reason are set). */
bool cmdq_wait(struct cmdq *q, struct cmdq_entry *e, int64_t timeout_ms);

/* Copies up to <max> entries not yet sent into <out>, marks them sent and
 * drains the wake pipe. Returns how many. */
size_t cmdq_take_unsent(struct cmdq *q, struct cmdq_entry *out, size_t max);

/* Completes the linked entry <id> with <status> and <reason> (may be NULL)
 * and wakes its waiter. False when no such entry waits. */
bool cmdq_complete(struct cmdq *q, const char *id, enum hist_cmd_status status, const char *reason);

/* The fd the MQTT thread polls for reading. */
int cmdq_fd(const struct cmdq *q);

#endif
