/*
 * The command hand-off between HTTP threads and the MQTT thread (cmdq.h):
 * a linked list under a mutex, a condition variable for the waiters and a
 * non-blocking pipe that wakes the MQTT thread's poll.
 */
#include "historian/cmdq.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "historian/wait.h"
#include "moat/error.h"

int cmdq_init(struct cmdq *q)
{
	memset(q, 0, sizeof(*q));
	if (pipe2(q->wake, O_CLOEXEC | O_NONBLOCK) != 0)
		return MOAT_E_IO;
	pthread_mutex_init(&q->lock, NULL);
	wait_cond_init(&q->cond);
	return MOAT_OK;
}

void cmdq_fini(struct cmdq *q)
{
	close(q->wake[0]);
	close(q->wake[1]);
	pthread_cond_destroy(&q->cond);
	pthread_mutex_destroy(&q->lock);
}

void cmdq_submit(struct cmdq *q, struct cmdq_entry *e)
{
	char b = 1;

	e->sent = e->done = false;
	e->status = HIST_CMD_PENDING;
	e->reason[0] = '\0';
	pthread_mutex_lock(&q->lock);
	e->next = q->head;
	q->head = e;
	pthread_mutex_unlock(&q->lock);
	if (write(q->wake[1], &b, 1) < 0 && errno != EAGAIN)
		perror("moat-historian: command wake-up");
}

bool cmdq_wait(struct cmdq *q, struct cmdq_entry *e, int64_t timeout_ms)
{
	struct timespec until = wait_deadline(timeout_ms);
	bool done;

	pthread_mutex_lock(&q->lock);
	while (!e->done && pthread_cond_timedwait(&q->cond, &q->lock, &until) != ETIMEDOUT)
		;
	done = e->done;
	for (struct cmdq_entry **p = &q->head; *p != NULL; p = &(*p)->next) {
		if (*p == e) {
			*p = e->next;
			break;
		}
	}
	pthread_mutex_unlock(&q->lock);
	return done;
}

size_t cmdq_take_unsent(struct cmdq *q, struct cmdq_entry *out, size_t max)
{
	char drain[64];
	size_t n = 0;

	while (read(q->wake[0], drain, sizeof(drain)) > 0)
		;
	pthread_mutex_lock(&q->lock);
	for (struct cmdq_entry *e = q->head; e != NULL && n < max; e = e->next) {
		if (!e->sent) {
			e->sent = true;
			out[n++] = *e;
		}
	}
	pthread_mutex_unlock(&q->lock);
	return n;
}

bool cmdq_complete(struct cmdq *q, const char *id, enum hist_cmd_status status, const char *reason)
{
	bool found = false;

	pthread_mutex_lock(&q->lock);
	for (struct cmdq_entry *e = q->head; e != NULL; e = e->next) {
		if (!e->done && strcmp(e->id, id) == 0) {
			e->done = true;
			e->status = status;
			snprintf(e->reason, sizeof(e->reason), "%s", reason != NULL ? reason : "");
			found = true;
			break;
		}
	}
	if (found)
		pthread_cond_broadcast(&q->cond);
	pthread_mutex_unlock(&q->lock);
	return found;
}

int cmdq_fd(const struct cmdq *q)
{
	return q->wake[0];
}
