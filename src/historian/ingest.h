/*
 * moat-historian's MQTT side, run on the main thread: subscribes to the
 * contract's topics, opens envelopes, stores readings in batches (every
 * 100 ms or 500 readings), presence, alerts and command acknowledgements,
 * counts and logs what it refuses, and seals, signs and publishes the
 * commands the HTTP threads queue.
 */
#ifndef MOAT_HISTORIAN_INGEST_H
#define MOAT_HISTORIAN_INGEST_H

#include "historian/app.h"

struct moat_callbacks;
struct moat_client;
struct moat_e2e;

/* The ingest state (private to ingest.c). */
struct ingest;

/* Creates the ingest state over <app>, the storage handle <db> (owned by
 * the caller) and the opened bundle <e2e>. NULL without memory. */
struct ingest *ingest_create(struct hist_app *app, struct hist_db *db, struct moat_e2e *e2e);

/* Frees <in>; NULL is fine. */
void ingest_destroy(struct ingest *in);

/* The callbacks to create the client with (arg = <in>). */
void ingest_callbacks(struct ingest *in, struct moat_callbacks *cb);

/* Runs client <c> (connected or connecting, e2e attached) until
 * app->stop; stores what arrives and sends queued commands. */
void ingest_run(struct ingest *in, struct moat_client *c);

#endif
