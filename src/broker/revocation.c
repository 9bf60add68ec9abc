/*
 * Parsing and looking up the Security Center's revocation list
 * (revocation.h). The bytes are untrusted until the signature verifies, and
 * bounded after.
 */
#include "broker/revocation.h"

#include <stdlib.h>
#include <string.h>

#include <moat/error.h>

#include "base/text.h"
#include "broker/sc_topics.h"
#include "broker/security.h"
#include "e2e/cbor.h"
#include "e2e/cose.h"


void revocation_unref(struct revocation *r)
{
	if (r == NULL || atomic_fetch_sub_explicit(&r->refs, 1, memory_order_acq_rel) != 1)
		return;
	strv_free(r->client_ids); /* NULL-terminated even when read_names stopped early */
	strv_free(r->cert_serials);
	strv_free(r->jtis);
	free(r);
}

struct revocation *revocation_ref(struct revocation *r)
{
	atomic_fetch_add_explicit(&r->refs, 1, memory_order_relaxed);
	return r;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Reads an array of text strings into a sorted, NULL-terminated list. */
static int read_names(struct cbor_dec *d, char ***out, size_t *n, const char **why)
{
	struct moat_bytes s;
	size_t count;

	if (*out != NULL)
		return *why = "a list appears twice", MOAT_E_MALFORMED;
	if (!cbor_read_array(d, &count))
		return *why = "a list is not an array", MOAT_E_MALFORMED;
	if (count > REVOCATION_MAX_ENTRIES)
		return *why = "too many entries in a list", MOAT_E_LIMIT;
	*out = calloc(count + 1, sizeof(**out));
	if (*out == NULL)
		return *why = "out of memory", MOAT_E_NOMEM;
	for (*n = 0; *n < count; (*n)++) {
		if (!cbor_read_tstr(d, &s) || s.len == 0 || s.len > REVOCATION_MAX_ID ||
		    memchr(s.ptr, 0, s.len) != NULL)
			return *why = "a list entry is not a short text string", MOAT_E_MALFORMED;
		(*out)[*n] = text_dup_bytes(s);
		if ((*out)[*n] == NULL)
			return *why = "out of memory", MOAT_E_NOMEM;
	}
	qsort(*out, *n, sizeof(**out), cmp_str);
	return MOAT_OK;
}

static int read_payload(struct moat_bytes payload, struct revocation *r, const char **why)
{
	struct cbor_dec d;
	bool has_serial = false;
	size_t pairs;
	int rc = MOAT_OK;

	if (cbor_check(payload.ptr, payload.len) != MOAT_OK)
		return *why = "the list is not strict CBOR", MOAT_E_MALFORMED;
	cbor_dec_init(&d, payload.ptr, payload.len);
	if (!cbor_read_map(&d, &pairs))
		return *why = "the list is not a CBOR map", MOAT_E_MALFORMED;
	for (size_t i = 0; i < pairs && rc == MOAT_OK; i++) {
		uint64_t key;

		if (!cbor_read_uint(&d, &key))
			return *why = "a key of the list is not an unsigned integer", MOAT_E_MALFORMED;
		switch (key) {
		case 1:
			has_serial = cbor_read_uint(&d, &r->serial);
			if (!has_serial)
				return *why = "serial is not an unsigned integer", MOAT_E_MALFORMED;
			break;
		case 2:
		case 3:
			if (!cbor_read_int(&d, key == 2 ? &r->issued : &r->next_update))
				return *why = "a time is not an integer", MOAT_E_MALFORMED;
			break;
		case 4: rc = read_names(&d, &r->client_ids, &r->n_client_ids, why); break;
		case 5: rc = read_names(&d, &r->cert_serials, &r->n_cert_serials, why); break;
		case 6: rc = read_names(&d, &r->jtis, &r->n_jtis, why); break;
		default: return *why = "unknown key in the list", MOAT_E_MALFORMED;
		}
	}
	if (rc == MOAT_OK && (!has_serial || d.err != 0 || d.left != 0))
		return *why = !has_serial ? "the list has no serial" : "trailing bytes after the list",
		       MOAT_E_MALFORMED;
	return rc;
}

int revocation_parse(struct moat_bytes env, const uint8_t pub[32], struct revocation **out,
		     const char **why)
{
	struct cose_sign1 s;
	struct revocation *r;
	int rc;

	*out = NULL;
	rc = cose_sign1_decode(env, &s, why);
	if (rc < 0)
		return rc;
	rc = cose_sign1_verify(&s, pub, moat_bytes_str(SC_REVOKED_TOPIC), why);
	if (rc < 0)
		return rc;
	r = calloc(1, sizeof(*r));
	if (r == NULL)
		return *why = "out of memory", MOAT_E_NOMEM;
	atomic_init(&r->refs, 1);
	rc = read_payload(s.payload, r, why);
	if (rc < 0) {
		revocation_unref(r);
		return rc;
	}
	*out = r;
	return MOAT_OK;
}

static bool has(char *const *v, size_t n, const char *name)
{
	return v != NULL && name != NULL && bsearch(&name, v, n, sizeof(*v), cmp_str) != NULL;
}

bool revocation_has_client(const struct revocation *r, const char *client_id)
{
	return r != NULL && has(r->client_ids, r->n_client_ids, client_id);
}

bool revocation_has_cert(const struct revocation *r, const char *serial_hex)
{
	return r != NULL && has(r->cert_serials, r->n_cert_serials, serial_hex);
}

bool revocation_has_jti(const struct revocation *r, const char *jti)
{
	return r != NULL && has(r->jtis, r->n_jtis, jti);
}
