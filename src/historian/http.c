/*
 * The HTTP server (http.h): libmicrohttpd in thread-per-connection mode,
 * request bodies gathered up to HTTP_BODY_MAX, the session looked up from
 * the moat_session cookie, API answers from api.c with security headers,
 * and static files below --web-root.
 */
#include "historian/http.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "historian/api.h"
#include "historian/sse.h"
#include "moat/error.h"

struct conn_ctx {
	char body[HTTP_BODY_MAX + 1];
	size_t len;
	bool too_big;
};

const char *http_query(const struct http_req *rq, const char *name)
{
	return MHD_lookup_connection_value(rq->conn, MHD_GET_ARGUMENT_KIND, name);
}

const char *http_header(const struct http_req *rq, const char *name)
{
	return MHD_lookup_connection_value(rq->conn, MHD_HEADER_KIND, name);
}

static enum MHD_Result send_text(struct MHD_Connection *conn, unsigned status, const char *ctype,
				 const char *text)
{
	struct MHD_Response *r =
	    MHD_create_response_from_buffer(strlen(text), (void *)text, MHD_RESPMEM_MUST_COPY);
	enum MHD_Result ret;

	if (r == NULL)
		return MHD_NO;
	MHD_add_response_header(r, "Content-Type", ctype);
	MHD_add_response_header(r, "X-Content-Type-Options", "nosniff");
	MHD_add_response_header(r, "Cache-Control", "no-store");
	ret = MHD_queue_response(conn, status, r);
	MHD_destroy_response(r);
	return ret;
}

static const char *content_type(const char *path)
{
	static const struct {
		const char *ext, *type;
	} types[] = {
	    {".html", "text/html; charset=utf-8"},
	    {".js", "text/javascript"},
	    {".css", "text/css"},
	    {".json", "application/json"},
	    {".svg", "image/svg+xml"},
	    {".png", "image/png"},
	    {".ico", "image/x-icon"},
	    {".map", "application/json"},
	    {".woff2", "font/woff2"},
	};
	const char *dot = strrchr(path, '.');

	for (size_t i = 0; dot != NULL && i < sizeof(types) / sizeof(types[0]); i++)
		if (strcmp(dot, types[i].ext) == 0)
			return types[i].type;
	return "application/octet-stream";
}

/* True for a relative path of [A-Za-z0-9._/-] without "//" or a segment
 * starting with a dot ("..", ".git", ".env"). <p> is already percent-decoded
 * by libmicrohttpd, so "%2e" arrives here as ".". */
static bool safe_path(const char *p)
{
	if (p[0] == '\0' || p[0] == '.' || p[0] == '/' || strstr(p, "/.") != NULL ||
	    strstr(p, "//") != NULL || strlen(p) > 200)
		return false;
	for (; *p != '\0'; p++)
		if (strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._/-",
			   *p) == NULL)
			return false;
	return true;
}

/* Opens the regular file <root>/<rel>; -1 when there is none. */
static int open_file(const char *root, const char *rel, struct stat *st)
{
	char path[1024];
	int fd;

	if (snprintf(path, sizeof(path), "%s/%s", root, rel) >= (int)sizeof(path))
		return -1;
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return -1;
	if (fstat(fd, st) != 0 || !S_ISREG(st->st_mode)) {
		close(fd);
		return -1;
	}
	return fd;
}

/* GET / and /static/...: <root>/index.html and <root>/static/X (or <root>/X). */
static enum MHD_Result serve_static(struct hist_app *app, struct MHD_Connection *conn,
				    const char *url)
{
	const char *rel = strcmp(url, "/") == 0 ? "index.html" : url + 1;
	struct MHD_Response *r;
	enum MHD_Result ret;
	struct stat st;
	int fd = -1;

	if (app->o.web_root != NULL && safe_path(rel)) {
		fd = open_file(app->o.web_root, rel, &st);
		if (fd < 0 && strncmp(rel, "static/", 7) == 0)
			fd = open_file(app->o.web_root, rel + 7, &st);
	}
	if (fd < 0)
		return send_text(conn, MHD_HTTP_NOT_FOUND, "application/json",
				 "{\"error\":\"not found\"}");
	r = MHD_create_response_from_fd((uint64_t)st.st_size, fd);
	if (r == NULL) {
		close(fd);
		return MHD_NO;
	}
	MHD_add_response_header(r, "Content-Type", content_type(rel));
	MHD_add_response_header(r, "X-Content-Type-Options", "nosniff");
	MHD_add_response_header(r, "Content-Security-Policy",
				"default-src 'self'; frame-ancestors 'none'");
	ret = MHD_queue_response(conn, MHD_HTTP_OK, r);
	MHD_destroy_response(r);
	return ret;
}

/* The client's address as text, "?" when unknown (the login rate limit's key). */
static void client_address(struct MHD_Connection *conn, char *out, size_t size)
{
	const union MHD_ConnectionInfo *ci =
	    MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
	const struct sockaddr *sa = ci != NULL ? ci->client_addr : NULL;
	const void *bin = NULL;

	if (sa != NULL && sa->sa_family == AF_INET)
		bin = &((const struct sockaddr_in *)(const void *)sa)->sin_addr;
	else if (sa != NULL && sa->sa_family == AF_INET6)
		bin = &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr;
	if (bin == NULL || inet_ntop(sa->sa_family, bin, out, (socklen_t)size) == NULL)
		snprintf(out, size, "?");
}

static enum MHD_Result send_reply(struct hist_app *app, struct MHD_Connection *conn,
				  struct http_reply *rp)
{
	struct MHD_Response *r;
	enum MHD_Result ret;

	if (rp->events) {
		r = sse_response(app->sse);
	} else {
		const char *body = rp->body != NULL ? rp->body : "";
		r = MHD_create_response_from_buffer(strlen(body), (void *)body,
						    MHD_RESPMEM_MUST_COPY);
		if (r != NULL)
			MHD_add_response_header(r, "Content-Type",
						rp->ctype != NULL ? rp->ctype : "application/json");
	}
	free(rp->body);
	if (r == NULL)
		return MHD_NO;
	MHD_add_response_header(r, "X-Content-Type-Options", "nosniff");
	MHD_add_response_header(r, "Cache-Control", "no-store");
	if (rp->cookie[0] != '\0')
		MHD_add_response_header(r, "Set-Cookie", rp->cookie);
	if (rp->retry_after_s > 0) {
		char secs[16];
		snprintf(secs, sizeof(secs), "%u", rp->retry_after_s);
		MHD_add_response_header(r, "Retry-After", secs);
	}
	ret = MHD_queue_response(conn, rp->status, r);
	MHD_destroy_response(r);
	return ret;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
				  const char *method, const char *version, const char *upload_data,
				  size_t *upload_data_size, void **con_cls)
{
	struct hist_app *app = cls;
	struct conn_ctx *cx = *con_cls;
	struct http_reply rp = {.status = 500};
	struct http_req rq = {.app = app, .conn = conn, .method = method, .path = url};
	const char *cookie;

	(void)version;
	if (cx == NULL) {
		cx = calloc(1, sizeof(*cx));
		if (cx == NULL)
			return MHD_NO;
		*con_cls = cx;
		return MHD_YES;
	}
	if (*upload_data_size > 0) {
		if (cx->len + *upload_data_size > HTTP_BODY_MAX) {
			cx->too_big = true;
		} else {
			memcpy(cx->body + cx->len, upload_data, *upload_data_size);
			cx->len += *upload_data_size;
		}
		*upload_data_size = 0;
		return MHD_YES;
	}
	if (cx->too_big)
		return send_text(conn, MHD_HTTP_CONTENT_TOO_LARGE, "application/json",
				 "{\"error\":\"request body too large\"}");
	if (strncmp(url, "/api/", 5) != 0 && strcmp(url, "/metrics") != 0 &&
	    strcmp(url, "/healthz") != 0) {
		if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0)
			return send_text(conn, MHD_HTTP_METHOD_NOT_ALLOWED, "application/json",
					 "{\"error\":\"method not allowed\"}");
		return serve_static(app, conn, url);
	}
	cx->body[cx->len] = '\0';
	client_address(conn, rq.addr, sizeof(rq.addr));
	rq.body = cx->body;
	rq.body_len = cx->len;
	cookie = MHD_lookup_connection_value(conn, MHD_COOKIE_KIND, "moat_session");
	if (cookie != NULL && strlen(cookie) == SESSION_HEX_LEN &&
	    sessions_find(app->sessions, cookie, hist_now_ms(), rq.user, rq.csrf)) {
		rq.has_session = true;
		memcpy(rq.session, cookie, SESSION_HEX_LEN + 1);
	}
	api_handle(&rq, &rp);
	return send_reply(app, conn, &rp);
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
			 enum MHD_RequestTerminationCode toe)
{
	(void)cls;
	(void)conn;
	(void)toe;
	free(*con_cls);
	*con_cls = NULL;
}

int http_start(struct hist_app *app, struct MHD_Daemon **out, struct moat_diag *diag)
{
	unsigned flags =
	    MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG;
	struct sockaddr_in sa = {.sin_family = AF_INET};
	const char *colon = strrchr(app->o.http_addr, ':');
	char host[64], *end, *cert = NULL, *key = NULL;
	long port;

	if (colon == NULL || (size_t)(colon - app->o.http_addr) >= sizeof(host))
		goto bad_addr;
	snprintf(host, sizeof(host), "%.*s", (int)(colon - app->o.http_addr), app->o.http_addr);
	if (strcmp(host, "localhost") == 0)
		strcpy(host, "127.0.0.1");
	port = strtol(colon + 1, &end, 10);
	if (*end != '\0' || end == colon + 1 || port < 1 || port > 65535 ||
	    inet_pton(AF_INET, host, &sa.sin_addr) != 1)
		goto bad_addr;
	sa.sin_port = htons((uint16_t)port);
	if (app->o.tls_cert != NULL) {
		size_t n;
		int rc = conf_read_file(app->o.tls_cert, 1 << 20, &cert, &n, diag);
		if (rc == MOAT_OK)
			rc = conf_read_file(app->o.tls_key != NULL ? app->o.tls_key
								   : app->o.tls_cert,
					    1 << 20, &key, &n, diag);
		if (rc < 0) {
			free(cert);
			return rc;
		}
		flags |= MHD_USE_TLS;
	}
	struct MHD_OptionItem tls_opts[] = {
	    {MHD_OPTION_HTTPS_MEM_CERT, 0, cert},
	    {MHD_OPTION_HTTPS_MEM_KEY, 0, key},
	    {MHD_OPTION_END, 0, NULL},
	};
	*out = MHD_start_daemon(flags, 0, NULL, NULL, on_request, app, MHD_OPTION_SOCK_ADDR,
				(struct sockaddr *)&sa, MHD_OPTION_NOTIFY_COMPLETED, on_completed,
				NULL, MHD_OPTION_CONNECTION_LIMIT, 256U, MHD_OPTION_ARRAY,
				cert != NULL ? tls_opts : tls_opts + 2, MHD_OPTION_END);
	if (key != NULL)
		memset(key, 0, strlen(key));
	free(cert);
	free(key);
	if (*out == NULL) {
		snprintf(diag->msg, sizeof(diag->msg),
			 "--http %s: cannot listen (in use, or TLS files wrong)", app->o.http_addr);
		return MOAT_E_IO;
	}
	return MOAT_OK;
bad_addr:
	snprintf(diag->msg, sizeof(diag->msg),
		 "--http %s: expected IPV4-ADDRESS:PORT, e.g. 127.0.0.1:8080", app->o.http_addr);
	return MOAT_E_CONFIG;
}

void http_stop(struct MHD_Daemon *d)
{
	if (d != NULL)
		MHD_stop_daemon(d);
}
