/*
 * The SSE hub (sse.h): SSE_RING formatted events with sequence numbers
 * under a mutex; each stream keeps the next number it wants and a
 * libmicrohttpd content reader copies events out as they come.
 */
#include "historian/sse.h"

#include <microhttpd.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "historian/wait.h"

enum { SSE_RING = 256, SSE_KEEPALIVE_S = 15 };

struct sse_hub {
	pthread_mutex_t lock;
	pthread_cond_t cond; /* CLOCK_MONOTONIC */
	char *ring[SSE_RING];
	uint64_t next; /* the sequence number of the next event */
	unsigned clients;
	bool closing;
};

struct sse_stream {
	struct sse_hub *hub;
	uint64_t want;
	char *pending; /* formatted bytes not yet copied out */
	size_t off, len;
};

struct sse_hub *sse_hub_create(void)
{
	struct sse_hub *h = calloc(1, sizeof(*h));

	if (h == NULL)
		return NULL;
	pthread_mutex_init(&h->lock, NULL);
	wait_cond_init(&h->cond);
	return h;
}

void sse_hub_close(struct sse_hub *h)
{
	pthread_mutex_lock(&h->lock);
	h->closing = true;
	pthread_cond_broadcast(&h->cond);
	pthread_mutex_unlock(&h->lock);
}

void sse_hub_destroy(struct sse_hub *h)
{
	if (h == NULL)
		return;
	for (size_t i = 0; i < SSE_RING; i++)
		free(h->ring[i]);
	pthread_cond_destroy(&h->cond);
	pthread_mutex_destroy(&h->lock);
	free(h);
}

void sse_publish(struct sse_hub *h, const char *event, const char *json)
{
	size_t n = strlen(event) + strlen(json) + 20;
	char *text = malloc(n);

	if (text == NULL)
		return;
	snprintf(text, n, "event: %s\ndata: %s\n\n", event, json);
	pthread_mutex_lock(&h->lock);
	free(h->ring[h->next % SSE_RING]);
	h->ring[h->next % SSE_RING] = text;
	h->next++;
	pthread_cond_broadcast(&h->cond);
	pthread_mutex_unlock(&h->lock);
}

unsigned sse_clients(struct sse_hub *h)
{
	unsigned n;

	pthread_mutex_lock(&h->lock);
	n = h->clients;
	pthread_mutex_unlock(&h->lock);
	return n;
}

/* Fills s->pending with the next event, or a keep-alive after a quiet
 * SSE_KEEPALIVE_S; false when the hub closes. */
static bool next_chunk(struct sse_stream *s)
{
	struct sse_hub *h = s->hub;
	struct timespec until = wait_deadline(SSE_KEEPALIVE_S * 1000);
	bool ok = true;

	pthread_mutex_lock(&h->lock);
	while (!h->closing && s->want == h->next &&
	       pthread_cond_timedwait(&h->cond, &h->lock, &until) == 0)
		;
	if (h->closing) {
		ok = false;
	} else if (s->want == h->next) {
		s->pending = strdup(": keep-alive\n\n");
	} else {
		if (h->next - s->want > SSE_RING)
			s->want = h->next - SSE_RING;
		s->pending = strdup(h->ring[s->want % SSE_RING]);
		s->want++;
	}
	pthread_mutex_unlock(&h->lock);
	if (ok && s->pending == NULL)
		return false;
	s->off = 0;
	s->len = ok ? strlen(s->pending) : 0;
	return ok;
}

static ssize_t reader(void *cls, uint64_t pos, char *buf, size_t max)
{
	struct sse_stream *s = cls;
	size_t n;

	(void)pos;
	if (s->pending == NULL && !next_chunk(s))
		return MHD_CONTENT_READER_END_OF_STREAM;
	n = s->len - s->off < max ? s->len - s->off : max;
	memcpy(buf, s->pending + s->off, n);
	s->off += n;
	if (s->off == s->len) {
		free(s->pending);
		s->pending = NULL;
	}
	return (ssize_t)n;
}

static void stream_free(void *cls)
{
	struct sse_stream *s = cls;

	pthread_mutex_lock(&s->hub->lock);
	s->hub->clients--;
	pthread_mutex_unlock(&s->hub->lock);
	free(s->pending);
	free(s);
}

struct MHD_Response *sse_response(struct sse_hub *h)
{
	struct sse_stream *s = calloc(1, sizeof(*s));
	struct MHD_Response *r;

	if (s == NULL)
		return NULL;
	s->hub = h;
	s->pending = strdup(": connected\n\n");
	s->len = s->pending != NULL ? strlen(s->pending) : 0;
	pthread_mutex_lock(&h->lock);
	s->want = h->next;
	h->clients++;
	pthread_mutex_unlock(&h->lock);
	r = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 4096, reader, s, stream_free);
	if (r == NULL) {
		stream_free(s);
		return NULL;
	}
	MHD_add_response_header(r, "Content-Type", "text/event-stream");
	MHD_add_response_header(r, "Cache-Control", "no-store");
	return r;
}
