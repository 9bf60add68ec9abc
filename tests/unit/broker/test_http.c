/*
 * Unit tests for the metrics HTTP server (src/broker/http.c): the request
 * head parser (good heads, limits exactly at and one over, bad methods,
 * request lines and header lines, query strings, header floods), the
 * answers (status, headers, HEAD without a body), and a live server on a
 * loopback port with fake callbacks (a slow client does not hold up
 * another, the oldest slow client is evicted when every slot is taken, the
 * head timeout closes a silent client).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <moat/error.h>

#include "broker/http.h"

static int parse(const char *s, struct http_request *r)
{
	return http_parse_request((const uint8_t *)s, strlen(s), r);
}

static bool view_is(struct moat_bytes b, const char *s)
{
	return b.len == strlen(s) && memcmp(b.ptr, s, b.len) == 0;
}

/* ---- parser ---- */

static void parses_a_good_request(void **state)
{
	const char *s =
	    "GET /metrics HTTP/1.1\r\nHost: localhost:9100\r\nAccept: */*\r\n\r\ntrailing";
	struct http_request r;

	(void)state;
	assert_int_equal(parse(s, &r), MOAT_OK);
	assert_int_equal(r.method, HTTP_GET);
	assert_true(view_is(r.path, "/metrics"));
	assert_true(view_is(r.query, ""));
	assert_int_equal(r.minor, 1);
	assert_int_equal(r.headers, 2);
	assert_int_equal(r.head_len, strlen(s) - strlen("trailing"));
	/* bare LF line ends are accepted (RFC 9112 §2.2), HTTP/1.0 too */
	assert_int_equal(parse("HEAD /healthz HTTP/1.0\n\n", &r), MOAT_OK);
	assert_int_equal(r.method, HTTP_HEAD);
	assert_int_equal(r.minor, 0);
	assert_true(view_is(r.path, "/healthz"));
	assert_int_equal(r.headers, 0);
}

static void path_with_query_string(void **state)
{
	struct http_request r;

	(void)state;
	assert_int_equal(parse("GET /metrics?name[]=x&y HTTP/1.1\r\n\r\n", &r), MOAT_OK);
	assert_true(view_is(r.path, "/metrics"));
	assert_true(view_is(r.query, "name[]=x&y"));
	assert_true(view_is(r.target, "/metrics?name[]=x&y"));
	assert_int_equal(parse("GET /? HTTP/1.1\r\n\r\n", &r), MOAT_OK);
	assert_true(view_is(r.path, "/"));
	assert_true(view_is(r.query, ""));
}

static void incomplete_heads_ask_for_more(void **state)
{
	const char *s = "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n";
	struct http_request r;

	(void)state;
	assert_int_equal(http_parse_request(NULL, 0, &r), MOAT_E_AGAIN);
	for (size_t n = 1; n < strlen(s); n++)
		assert_int_equal(http_parse_request((const uint8_t *)s, n, &r), MOAT_E_AGAIN);
	assert_int_equal(http_parse_request((const uint8_t *)s, strlen(s), &r), MOAT_OK);
}

static void methods_other_than_get_and_head(void **state)
{
	struct http_request r;

	(void)state;
	assert_int_equal(parse("POST /metrics HTTP/1.1\r\n\r\n", &r), MOAT_OK);
	assert_int_equal(r.method, HTTP_OTHER);
	assert_int_equal(parse("get /metrics HTTP/1.1\r\n\r\n", &r),
			 MOAT_OK); /* methods are case-sensitive */
	assert_int_equal(r.method, HTTP_OTHER);
	assert_int_equal(parse("GETX /metrics HTTP/1.1\r\n\r\n", &r), MOAT_OK);
	assert_int_equal(r.method, HTTP_OTHER);
	assert_int_equal(parse("G(T /metrics HTTP/1.1\r\n\r\n", &r), MOAT_E_MALFORMED);
	assert_int_equal(parse("ABCDEFGHIJKLMNOPQ / HTTP/1.1\r\n\r\n", &r), MOAT_E_MALFORMED);
	assert_int_equal(parse(" GET / HTTP/1.1\r\n\r\n", &r), MOAT_E_MALFORMED);
}

static void bad_request_lines(void **state)
{
	struct http_request r;

	(void)state;
	assert_int_equal(parse("GET  /metrics HTTP/1.1\r\n\r\n", &r), MOAT_E_MALFORMED);
	assert_int_equal(parse("GET /metrics\r\n\r\n", &r), MOAT_E_MALFORMED);
	assert_int_equal(parse("GET /metrics HTTP/1.1 \r\n\r\n", &r), MOAT_E_MALFORMED);
	assert_int_equal(parse("GET /metrics HTTP/1.x\r\n\r\n", &r), MOAT_E_MALFORMED);
	assert_int_equal(parse("GET /met\trics HTTP/1.1\r\n\r\n", &r), MOAT_E_MALFORMED);
	assert_int_equal(parse("GET /m\xc3\xa9 HTTP/1.1\r\n\r\n", &r), MOAT_E_MALFORMED);
	assert_int_equal(parse("GET /metrics HTTP/2.0\r\n\r\n", &r), MOAT_E_UNSUPPORTED);
	assert_int_equal(parse("\r\n\r\n", &r), MOAT_E_MALFORMED);
	/* reported as soon as the line is complete, before the blank line */
	assert_int_equal(parse("BAD\r\n", &r), MOAT_E_MALFORMED);
	assert_int_equal(parse("GET / HTTP/1.1\rX\r\n\r\n", &r), MOAT_E_MALFORMED);
}

static void bad_header_lines(void **state)
{
	struct http_request r;
	const char nul[] = "GET / HTTP/1.1\r\nA: b\0c\r\n\r\n";

	(void)state;
	assert_int_equal(parse("GET / HTTP/1.1\r\nNo-Colon\r\n\r\n", &r), MOAT_E_MALFORMED);
	assert_int_equal(parse("GET / HTTP/1.1\r\n: empty-name\r\n\r\n", &r), MOAT_E_MALFORMED);
	assert_int_equal(parse("GET / HTTP/1.1\r\nBad Name: x\r\n\r\n", &r), MOAT_E_MALFORMED);
	assert_int_equal(parse("GET / HTTP/1.1\r\nA: b\r\n folded\r\n\r\n", &r), MOAT_E_MALFORMED);
	assert_int_equal(parse("GET / HTTP/1.1\r\nA: b\rc\r\n\r\n", &r), MOAT_E_MALFORMED);
	assert_int_equal(http_parse_request((const uint8_t *)nul, sizeof(nul) - 1, &r),
			 MOAT_E_MALFORMED);
	assert_int_equal(parse("GET / HTTP/1.1\r\nA:\r\nB: \t x \xff\r\n\r\n", &r), MOAT_OK);
	assert_int_equal(r.headers, 2);
}

/* A head of exactly <total> bytes: request line, one header padding it, blank line. */
static char *head_of(size_t total)
{
	const char *start = "GET / HTTP/1.1\r\nX: ";
	char *s = malloc(total + 1);

	assert_non_null(s);
	memset(s, 'a', total);
	memcpy(s, start, strlen(start));
	memcpy(s + total - 4, "\r\n\r\n", 4);
	s[total] = '\0';
	return s;
}

static void head_size_limit(void **state)
{
	struct http_request r;
	char *at = head_of(HTTP_MAX_HEAD_BYTES), *over = head_of(HTTP_MAX_HEAD_BYTES + 1);

	(void)state;
	assert_int_equal(parse(at, &r), MOAT_OK);
	assert_int_equal(r.head_len, HTTP_MAX_HEAD_BYTES);
	assert_int_equal(parse(over, &r), MOAT_E_LIMIT);
	over[HTTP_MAX_HEAD_BYTES - 1] = '\0'; /* no line end within the limit yet */
	assert_int_equal(parse(over, &r), MOAT_E_AGAIN);
	free(at);
	free(over);
}

static void header_flood(void **state)
{
	char s[4096];
	struct http_request r;
	int n = snprintf(s, sizeof(s), "GET / HTTP/1.1\r\n");

	(void)state;
	for (int i = 0; i < HTTP_MAX_HEADERS; i++)
		n += snprintf(s + n, sizeof(s) - (size_t)n, "H%d: v\r\n", i);
	snprintf(s + n, sizeof(s) - (size_t)n, "\r\n");
	assert_int_equal(parse(s, &r), MOAT_OK);
	assert_int_equal(r.headers, HTTP_MAX_HEADERS);
	snprintf(s + n, sizeof(s) - (size_t)n, "One: more\r\n"); /* refused before the blank line */
	assert_int_equal(parse(s, &r), MOAT_E_LIMIT);
}

/* ---- answers ---- */

struct fake {
	int metrics_rc;
	bool stopping;
	int metrics_calls;
};

static int fake_metrics(void *arg, struct buf *body)
{
	struct fake *f = arg;

	f->metrics_calls++;
	if (f->metrics_rc < 0)
		return f->metrics_rc;
	return buf_append(body, "moat_up 1\n", 10);
}

static bool fake_stopping(void *arg)
{
	return ((struct fake *)arg)->stopping;
}

static const struct http_ops fake_ops = {fake_metrics, fake_stopping};

/* The answer to <req> as a string (the caller frees it); *<status> gets the status. */
static char *answer(const char *req, struct fake *f, int *status)
{
	struct http_request r;
	struct buf out = {0};
	int rc = parse(req, &r);
	char *s;

	*status = http_respond(rc, &r, &fake_ops, f, &out);
	s = calloc(1, buf_used(&out) + 1);
	assert_non_null(s);
	if (buf_used(&out) > 0)
		memcpy(s, buf_head(&out), buf_used(&out));
	buf_fini(&out);
	return s;
}

static void answers(void **state)
{
	struct fake f = {0};
	int st;
	char *a;

	(void)state;
	a = answer("GET /metrics?x=1 HTTP/1.1\r\n\r\n", &f, &st);
	assert_int_equal(st, 200);
	assert_string_equal(
	    a, "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\n"
	       "Content-Length: 10\r\nConnection: close\r\n\r\nmoat_up 1\n");
	free(a);
	a = answer("HEAD /metrics HTTP/1.1\r\n\r\n", &f, &st);
	assert_int_equal(st, 200);
	assert_non_null(strstr(a, "Content-Length: 10\r\n"));
	assert_int_equal(a[strlen(a) - 1], '\n');
	assert_null(strstr(a, "moat_up"));
	free(a);
	a = answer("GET /healthz HTTP/1.1\r\n\r\n", &f, &st);
	assert_int_equal(st, 200);
	assert_non_null(strstr(a, "\r\n\r\nok\n"));
	free(a);
	f.stopping = true;
	a = answer("GET /healthz HTTP/1.1\r\n\r\n", &f, &st);
	assert_int_equal(st, 503);
	assert_non_null(strstr(a, "HTTP/1.1 503 Service Unavailable\r\n"));
	free(a);
	a = answer("GET /metricsx HTTP/1.1\r\n\r\n", &f, &st);
	assert_int_equal(st, 404);
	free(a);
	a = answer("DELETE /metrics HTTP/1.1\r\n\r\n", &f, &st);
	assert_int_equal(st, 405);
	assert_non_null(strstr(a, "\r\nAllow: GET, HEAD\r\n"));
	free(a);
	a = answer("GET /metrics HTTP/3.0\r\n\r\n", &f, &st);
	assert_int_equal(st, 505);
	free(a);
	a = answer("GET\r\n\r\n", &f, &st);
	assert_int_equal(st, 400);
	assert_non_null(strstr(a, "Content-Length: 12\r\n"));
	assert_non_null(strstr(a, "\r\n\r\nBad Request\n"));
	free(a);
	assert_int_equal(f.metrics_calls, 2);
	f.metrics_rc = MOAT_E_NOMEM;
	a = answer("GET /metrics HTTP/1.1\r\n\r\n", &f, &st);
	assert_int_equal(st, 500);
	assert_non_null(strstr(a, "Content-Type: text/plain; charset=utf-8\r\n"));
	free(a);
	a = answer("GET / HTTP/1.1\r\n", &f, &st); /* never called with AGAIN; a flood says 431 */
	free(a);
	{
		struct buf out = {0};

		assert_int_equal(http_respond(MOAT_E_LIMIT, NULL, &fake_ops, &f, &out), 431);
		buf_fini(&out);
	}
}

/* ---- a live server ---- */

static int dial(uint16_t port)
{
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(port)};
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	assert_true(fd >= 0);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	return fd;
}

static void send_all(int fd, const char *s)
{
	assert_int_equal(send(fd, s, strlen(s), MSG_NOSIGNAL), (ssize_t)strlen(s));
}

/* Reads until EOF or <timeout_ms>; returns what came (the caller frees it)
 * and whether EOF was seen. */
static char *read_all(int fd, int timeout_ms, bool *eof)
{
	char *s = calloc(1, 65536);
	size_t n = 0;

	assert_non_null(s);
	*eof = false;
	while (n < 65535) {
		struct pollfd p = {.fd = fd, .events = POLLIN};
		ssize_t k;

		if (poll(&p, 1, timeout_ms) <= 0)
			break;
		k = recv(fd, s + n, 65535 - n, 0);
		if (k <= 0) {
			*eof = true;
			break;
		}
		n += (size_t)k;
	}
	return s;
}

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void live_server_and_slow_clients(void **state)
{
	struct fake f = {0};
	struct http_server *s;
	struct moat_diag d;
	int slow[HTTP_MAX_CLIENTS], fd;
	uint64_t t0;
	bool eof;
	char *a;

	(void)state;
	assert_int_equal(http_server_start(&s, "127.0.0.1", 0, &fake_ops, &f, &d), MOAT_OK);
	assert_true(http_server_port(s) != 0);
	/* every slot taken by a client that sent half a request */
	for (int i = 0; i < HTTP_MAX_CLIENTS; i++) {
		slow[i] = dial(http_server_port(s));
		send_all(slow[i], "GET /metr");
	}
	usleep(100 * 1000);
	t0 = now_ms();
	fd = dial(http_server_port(s));
	send_all(fd, "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
	a = read_all(fd, 1500, &eof);
	assert_true(eof);
	assert_true(now_ms() - t0 < 1000); /* not held up by the slow ones */
	assert_non_null(strstr(a, "HTTP/1.1 200 OK\r\n"));
	assert_non_null(strstr(a, "\r\n\r\nmoat_up 1\n"));
	free(a);
	close(fd);
	/* the oldest slow client made room for it and was closed */
	a = read_all(slow[0], 200, &eof);
	assert_true(eof);
	assert_string_equal(a, "");
	free(a);
	/* another slow one finishes its request and is answered */
	send_all(slow[5], "ics HTTP/1.1\r\n\r\n");
	a = read_all(slow[5], 1500, &eof);
	assert_non_null(strstr(a, "HTTP/1.1 200 OK\r\n"));
	free(a);
	/* a header flood is refused with 431 */
	fd = dial(http_server_port(s));
	for (int i = 0; i < 100; i++)
		send_all(fd, "X-Flood: 0123456789\r\n");
	a = read_all(fd, 1500, &eof);
	assert_non_null(
	    strstr(a, "HTTP/1.1 400 Bad Request\r\n")); /* "X-Flood: ..." is no request line */
	free(a);
	close(fd);
	fd = dial(http_server_port(s));
	send_all(fd, "GET / HTTP/1.1\r\n");
	for (int i = 0; i < 100; i++)
		send_all(fd, "X-Flood: 0123456789\r\n");
	a = read_all(fd, 1500, &eof);
	assert_non_null(strstr(a, "HTTP/1.1 431 Request Header Fields Too Large\r\n"));
	free(a);
	close(fd);
	/* the rest are closed at the head timeout */
	t0 = now_ms();
	a = read_all(slow[1], HTTP_HEAD_TIMEOUT_MS + 1000, &eof);
	assert_true(eof);
	assert_true(now_ms() - t0 <= HTTP_HEAD_TIMEOUT_MS + 500);
	free(a);
	for (int i = 0; i < HTTP_MAX_CLIENTS; i++)
		close(slow[i]);
	/* stopping with a connection open frees it */
	fd = dial(http_server_port(s));
	send_all(fd, "GET");
	usleep(50 * 1000);
	http_server_stop(s);
	close(fd);
}

static void start_fails_with_a_reason(void **state)
{
	struct fake f = {0};
	struct http_server *a, *b;
	struct moat_diag d = {{0}};

	(void)state;
	assert_int_equal(http_server_start(&a, "127.0.0.1", 0, &fake_ops, &f, &d), MOAT_OK);
	assert_int_equal(http_server_start(&b, "127.0.0.1", http_server_port(a), &fake_ops, &f, &d),
			 MOAT_E_IO);
	assert_null(b);
	assert_non_null(strstr(d.msg, "in use"));
	assert_int_equal(http_server_start(&b, "not-an-address.invalid", 0, &fake_ops, &f, &d),
			 MOAT_E_CONFIG);
	assert_non_null(strstr(d.msg, "not-an-address.invalid"));
	http_server_stop(a);
	http_server_stop(NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(parses_a_good_request),
	    cmocka_unit_test(path_with_query_string),
	    cmocka_unit_test(incomplete_heads_ask_for_more),
	    cmocka_unit_test(methods_other_than_get_and_head),
	    cmocka_unit_test(bad_request_lines),
	    cmocka_unit_test(bad_header_lines),
	    cmocka_unit_test(head_size_limit),
	    cmocka_unit_test(header_flood),
	    cmocka_unit_test(answers),
	    cmocka_unit_test(live_server_and_slow_clients),
	    cmocka_unit_test(start_fails_with_a_reason),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
