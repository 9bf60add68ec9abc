/*
 * Server-Sent Events for moat-historian's GET /api/events: a ring of the
 * newest events that every connected client reads from at its own pace
 * (a client that falls more than the ring behind skips ahead). Thread-safe.
 */
#ifndef MOAT_HISTORIAN_SSE_H
#define MOAT_HISTORIAN_SSE_H

#include <stdint.h>

struct MHD_Response;
struct sse_hub;

/* A hub, or NULL without memory. */
struct sse_hub *sse_hub_create(void);

/* Ends every stream: readers return end-of-stream from now on. */
void sse_hub_close(struct sse_hub *h);

/* Frees <h> once no stream is left (stop the HTTP daemon first); NULL is fine. */
void sse_hub_destroy(struct sse_hub *h);

/* Queues the event <event> with data <json> (one line) for every client. */
void sse_publish(struct sse_hub *h, const char *event, const char *json);

/* A streaming response for a new client (thread-per-connection: its reader
 * blocks until an event or a 15 s keep-alive comment); NULL without memory. */
struct MHD_Response *sse_response(struct sse_hub *h);

/* Clients connected now. */
unsigned sse_clients(struct sse_hub *h);

#endif
