/*
 * moat-historian's JSON API (docs/historian.md "HTTP API"): login and
 * sessions, devices, readings, overview, commands, alerts, the event
 * stream, /metrics and /healthz. Every /api/... call but login needs a
 * session; every POST also the X-CSRF-Token header. Parameters are checked
 * strictly, with 4xx answers {"error": "..."}.
 */
#ifndef MOAT_HISTORIAN_API_H
#define MOAT_HISTORIAN_API_H

#include "historian/http.h"

/* Answers <rq> into <rp> (status, body, cookie, or the SSE flag). */
void api_handle(const struct http_req *rq, struct http_reply *rp);

/* The JSON object of a reading (with "device" when <with_device>), or NULL
 * without memory; for the event stream too. */
struct cJSON *api_reading_json(const struct hist_reading *r, bool with_device);

#endif
