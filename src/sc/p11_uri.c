/*
 * RFC 7512 PKCS#11 URIs (see p11_uri.h): a strict reader of the path
 * attributes that pick one key, and the normalized writer sc.json keeps.
 */
#include "sc/p11_uri.h"

#include <stdio.h>
#include <string.h>

#include <moat/error.h>

#include "sc/signer.h" /* signer_fail */

static bool is_unreserved(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       c == '-' || c == '.' || c == '_' || c == '~';
}

/* RFC 7512 pk11-path-res-avail: what a path value may hold unencoded. */
static bool is_path_char(unsigned char c)
{
	return is_unreserved(c) || (c != '\0' && strchr(":[]@!$'()*+,=&", c) != NULL);
}

static int hex(unsigned char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Decodes the value <v> (<n> bytes) into <out> (room for <cap> bytes);
 * the decoded length, or -1 when malformed or too long. */
static long decode(const char *v, size_t n, uint8_t *out, size_t cap)
{
	size_t len = 0;

	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)v[i];

		if (c == '%') {
			if (n - i < 3 || hex((unsigned char)v[i + 1]) < 0 ||
			    hex((unsigned char)v[i + 2]) < 0)
				return -1;
			c = (unsigned char)(hex((unsigned char)v[i + 1]) * 16 +
					    hex((unsigned char)v[i + 2]));
			i += 2;
		} else if (!is_path_char(c)) {
			return -1;
		}
		if (len == cap)
			return -1;
		out[len++] = c;
	}
	return (long)len;
}

/* Decodes a label value into the NUL-terminated <out> of <max> + 1 bytes. */
static int label(const char *name, const char *v, size_t n, char *out, size_t max,
		 struct moat_diag *diag)
{
	long len = decode(v, n, (uint8_t *)out, max);

	if (len < 0)
		return signer_fail(
		    diag, MOAT_E_MALFORMED,
		    "PKCS#11 URI: %s= is not percent-encoded as RFC 7512 says, or longer "
		    "than %zu bytes",
		    name, max);
	if (len == 0 || memchr(out, '\0', (size_t)len) != NULL)
		return signer_fail(diag, MOAT_E_MALFORMED,
				   "PKCS#11 URI: %s= is empty or holds a NUL", name);
	out[len] = '\0';
	return MOAT_OK;
}

/* Path attributes RFC 7512 defines that we do not use to pick a key. */
static const char *const other_attrs[] = {
    "manufacturer",
    "model",
    "serial",
    "library-manufacturer",
    "library-description",
    "library-version",
    "slot-description",
    "slot-manufacturer",
    "slot-id",
};

static int attribute(struct p11_uri *u, const char *a, size_t n, unsigned *seen,
		     struct moat_diag *diag)
{
	const char *eq = memchr(a, '=', n);
	size_t k = eq != NULL ? (size_t)(eq - a) : n;
	const char *v = eq != NULL ? eq + 1 : NULL;
	size_t vn = eq != NULL ? n - k - 1 : 0;
	unsigned bit;

	if (eq == NULL)
		return signer_fail(
		    diag, MOAT_E_MALFORMED,
		    "PKCS#11 URI: \"%.*s\" is not name=value; write e.g. token=moat-ca",
		    (int)(n > 64 ? 64 : n), a);
	if (k == 5 && memcmp(a, "token", 5) == 0)
		bit = 1;
	else if (k == 6 && memcmp(a, "object", 6) == 0)
		bit = 2;
	else if (k == 2 && memcmp(a, "id", 2) == 0)
		bit = 4;
	else if (k == 4 && memcmp(a, "type", 4) == 0)
		bit = 8;
	else
		bit = 0;
	if (bit == 0) {
		for (size_t i = 0; i < sizeof(other_attrs) / sizeof(other_attrs[0]); i++)
			if (strlen(other_attrs[i]) == k && memcmp(a, other_attrs[i], k) == 0)
				return signer_fail(
				    diag, MOAT_E_UNSUPPORTED,
				    "PKCS#11 URI: %s= is not supported; name the token "
				    "with token= and the key with object= or id=",
				    other_attrs[i]);
		return signer_fail(
		    diag, MOAT_E_MALFORMED,
		    "PKCS#11 URI: unknown attribute \"%.*s\"; use token=, object=, id=, "
		    "type=",
		    (int)(k > 64 ? 64 : k), a);
	}
	if ((*seen & bit) != 0)
		return signer_fail(diag, MOAT_E_MALFORMED, "PKCS#11 URI: %.*s= given twice", (int)k,
				   a);
	*seen |= bit;
	switch (bit) {
	case 1:
		return label("token", v, vn, u->token, P11_TOKEN_MAX, diag);
	case 2:
		u->has_object = true;
		return label("object", v, vn, u->object, P11_OBJECT_MAX, diag);
	case 4: {
		long len = decode(v, vn, u->id, sizeof(u->id));

		if (len <= 0)
			return signer_fail(
			    diag, MOAT_E_MALFORMED,
			    "PKCS#11 URI: id= must be 1 to %d percent-encoded bytes, e.g. "
			    "id=%%01",
			    P11_ID_MAX);
		u->id_len = (size_t)len;
		u->has_id = true;
		return MOAT_OK;
	}
	default:
		if (vn == 7 && memcmp(v, "private", 7) == 0)
			u->type = P11_TYPE_PRIVATE;
		else if (vn == 6 && memcmp(v, "public", 6) == 0)
			u->type = P11_TYPE_PUBLIC;
		else
			return signer_fail(diag, MOAT_E_UNSUPPORTED,
					   "PKCS#11 URI: type=%.*s; a signing key is type=private",
					   (int)(vn > 32 ? 32 : vn), v);
		return MOAT_OK;
	}
}

int p11_uri_parse(const char *text, struct p11_uri *out, struct moat_diag *diag)
{
	static const char scheme[] = "pkcs11:";
	const char *p, *q;
	unsigned seen = 0;
	size_t len;

	memset(out, 0, sizeof(*out));
	len = text != NULL ? strnlen(text, P11_URI_MAX + 1) : 0;
	if (len > P11_URI_MAX)
		return signer_fail(diag, MOAT_E_MALFORMED, "PKCS#11 URI: longer than %d bytes",
				   P11_URI_MAX);
	if (len < sizeof(scheme) - 1 || memcmp(text, scheme, sizeof(scheme) - 1) != 0)
		return signer_fail(diag, MOAT_E_MALFORMED,
				   "PKCS#11 URI: must start with \"pkcs11:\", e.g. "
				   "pkcs11:token=moat-ca;object=ca");
	p = text + sizeof(scheme) - 1;
	q = memchr(p, '?', len - (size_t)(p - text));
	if (q != NULL) {
		if (strstr(q, "pin-value") != NULL)
			return signer_fail(
			    diag, MOAT_E_DENIED,
			    "PKCS#11 URI: a PIN in the URI is refused; put it in a 0600 "
			    "file (--pin-file) or MOAT_SC_PIN");
		return signer_fail(
		    diag, MOAT_E_UNSUPPORTED,
		    "PKCS#11 URI: query attributes (?...) are not supported; give the "
		    "module with --pkcs11-module and the PIN with --pin-file");
	}
	for (const char *end = text + len; p < end;) {
		const char *semi = memchr(p, ';', (size_t)(end - p));
		size_t n = semi != NULL ? (size_t)(semi - p) : (size_t)(end - p);
		int rc = attribute(out, p, n, &seen, diag);

		if (rc < 0)
			return rc;
		p += n + (semi != NULL);
		if (semi != NULL && p == end)
			return signer_fail(diag, MOAT_E_MALFORMED, "PKCS#11 URI: ends with ';'");
	}
	if ((seen & 1) == 0)
		return signer_fail(diag, MOAT_E_MALFORMED,
				   "PKCS#11 URI: no token=; name the token, e.g. token=moat-ca");
	if ((seen & 6) == 0)
		return signer_fail(diag, MOAT_E_MALFORMED,
				   "PKCS#11 URI: no object= or id=; name the key, e.g. object=ca");
	return MOAT_OK;
}

/* Appends "<name>=" and <v> (<n> bytes) percent-encoded at <*at>. */
static bool put(char *out, size_t cap, size_t *at, const char *name, const uint8_t *v, size_t n)
{
	int w = snprintf(out + *at, cap - *at, "%s%s=", *at > 7 ? ";" : "", name);

	if (w < 0 || (size_t)w >= cap - *at)
		return false;
	*at += (size_t)w;
	for (size_t i = 0; i < n; i++) {
		w = is_unreserved(v[i]) ? snprintf(out + *at, cap - *at, "%c", v[i])
					: snprintf(out + *at, cap - *at, "%%%02X", v[i]);
		if (w < 0 || (size_t)w >= cap - *at)
			return false;
		*at += (size_t)w;
	}
	return true;
}

int p11_uri_format(const struct p11_uri *u, char *out, size_t cap)
{
	size_t at = 7;
	bool ok;

	if (cap < 8)
		return MOAT_E_LIMIT;
	memcpy(out, "pkcs11:", 8);
	ok = put(out, cap, &at, "token", (const uint8_t *)u->token, strlen(u->token));
	if (ok && u->has_object)
		ok = put(out, cap, &at, "object", (const uint8_t *)u->object, strlen(u->object));
	if (ok && u->has_id)
		ok = put(out, cap, &at, "id", u->id, u->id_len);
	if (ok && u->type != P11_TYPE_ANY) {
		const char *t = u->type == P11_TYPE_PRIVATE ? "private" : "public";

		ok = put(out, cap, &at, "type", (const uint8_t *)t, strlen(t));
	}
	if (!ok || at > P11_URI_MAX)
		return MOAT_E_LIMIT;
	return (int)at;
}
