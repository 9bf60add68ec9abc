/*
 * The rules of the Security Center's reserved topics (sc_topics.h).
 */
#include "broker/sc_topics.h"

#include <stdbool.h>
#include <string.h>

#include "broker/security.h"

/* A topic or filter split at its first two separators: $sc / <kind> / <rest>. */
struct sc_parts {
	struct moat_bytes kind, rest;
	bool has_rest;
};

static bool split(struct moat_bytes t, struct sc_parts *p)
{
	const uint8_t *slash;
	size_t off = 4; /* "$sc/" */

	if (t.len < off || memcmp(t.ptr, "$sc/", off) != 0)
		return false;
	slash = memchr(t.ptr + off, '/', t.len - off);
	p->kind = (struct moat_bytes){ t.ptr + off, slash != NULL ? (size_t)(slash - t.ptr) - off : t.len - off };
	p->has_rest = slash != NULL;
	p->rest = slash != NULL ? (struct moat_bytes){ slash + 1, t.len - (size_t)(slash - t.ptr) - 1 }
				: (struct moat_bytes){ t.ptr + t.len, 0 };
	return true;
}

static bool is(struct moat_bytes b, const char *s)
{
	return b.len == strlen(s) && memcmp(b.ptr, s, b.len) == 0;
}

/* <rest> is exactly the client id <cid>: one level, no wildcard. */
static bool names_client(const struct sc_parts *p, const char *cid)
{
	return p->has_rest && cid != NULL && is(p->rest, cid) && memchr(p->rest.ptr, '/', p->rest.len) == NULL;
}

/* One level without wildcards (a client id or a group name). */
static bool one_plain_level(const struct sc_parts *p)
{
	for (size_t i = 0; i < p->rest.len; i++)
		if (p->rest.ptr[i] == '/' || p->rest.ptr[i] == '+' || p->rest.ptr[i] == '#')
			return false;
	return p->has_rest && p->rest.len > 0;
}

/* What the Security Center publishes for every client to read. */
static bool public_announcement(const struct sc_parts *p)
{
	return (!p->has_rest && (is(p->kind, "revoked") || is(p->kind, "keys"))) ||
	       (is(p->kind, "epoch") && p->has_rest);
}

enum sc_verdict sc_topic_check(struct moat_bytes topic, int access, const char *client_id,
			       const char *username, const char *sc_username)
{
	bool sc = sc_username != NULL && username != NULL && strcmp(sc_username, username) == 0;
	struct sc_parts p;

	if (topic.len == 3 && memcmp(topic.ptr, "$sc", 3) == 0)
		return SC_DENY;
	if (!split(topic, &p))
		return SC_NOT_RESERVED;
	switch (access) {
	case ACCESS_WRITE:
		if (is(p.kind, "req") && names_client(&p, client_id))
			return SC_ALLOW;
		if (sc && ((is(p.kind, "resp") && one_plain_level(&p)) ||
			   (!p.has_rest && (is(p.kind, "revoked") || is(p.kind, "keys"))) ||
			   (is(p.kind, "epoch") && one_plain_level(&p))))
			return SC_ALLOW;
		return SC_DENY;
	case ACCESS_SUBSCRIBE:
	case ACCESS_READ:
		if (sc || public_announcement(&p))
			return SC_ALLOW;
		if (is(p.kind, "resp") && names_client(&p, client_id))
			return SC_ALLOW;
		return SC_DENY;
	default:
		return SC_DENY;
	}
}
