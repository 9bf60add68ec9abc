/*
 * moat-historian's HTTP server on libmicrohttpd (a thread per connection):
 * request bodies (capped), the session cookie and CSRF header, static
 * dashboard files from --web-root, and dispatch of /api/..., /metrics and
 * /healthz to api.c.
 */
#ifndef MOAT_HISTORIAN_HTTP_H
#define MOAT_HISTORIAN_HTTP_H

#include <stdbool.h>
#include <stddef.h>

#include "conf/config.h"
#include "historian/app.h"
#include "historian/session.h"

enum { HTTP_BODY_MAX = 4096 }; /* bytes of a request body */

struct MHD_Connection;
struct MHD_Daemon;

/* One request as api.c sees it. */
struct http_req {
	struct hist_app *app;
	struct MHD_Connection *conn;
	const char *method, *path;
	const char *body; /* NUL-terminated, body_len bytes */
	size_t body_len;
	char addr[48];	  /* the client's address, e.g. "127.0.0.1" */
	bool has_session; /* a live session cookie came with it */
	char session[SESSION_HEX_LEN + 1];
	char user[HIST_NAME_MAX + 1];
	char csrf[SESSION_HEX_LEN + 1];
};

/* What api.c answers. */
struct http_reply {
	unsigned status;
	char *body;	   /* malloc'd, or NULL for none */
	const char *ctype; /* NULL: application/json */
	char cookie[256];  /* a Set-Cookie value, or "" */
	bool events;	   /* answer with the SSE stream instead */
	unsigned retry_after_s; /* > 0: a Retry-After header */
};

/* Starts serving on app->o.http_addr (IPv4 ADDR:PORT), with TLS when
 * app->o.tls_cert is set. MOAT_OK; MOAT_E_CONFIG or MOAT_E_IO with <diag>. */
int http_start(struct hist_app *app, struct MHD_Daemon **out, struct moat_diag *diag);

/* Stops the server and joins its threads; NULL is fine. */
void http_stop(struct MHD_Daemon *d);

/* The query parameter <name> of <rq>, or NULL. */
const char *http_query(const struct http_req *rq, const char *name);

/* The request header <name> of <rq>, or NULL. */
const char *http_header(const struct http_req *rq, const char *name);

#endif
