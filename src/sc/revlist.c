/*
 * Building the Security Center's revocation list (see revlist.h): the
 * serial counter in the registry (ca_state.revlist_number, schema 2) and
 * the signed CBOR list.
 */
#include "sc/revlist.h"

#include <string.h>

#include <moat/error.h>

#include "e2e/cbor.h"
#include "sc/registry_impl.h"

/* One CBOR array being collected: its items' encodings and their count. */
struct names {
	struct buf items;
	size_t count;
	int rc;
};

static void add_name(struct names *n, const char *s)
{
	if (n->rc == MOAT_OK && n->count == REVLIST_MAX_ENTRIES)
		n->rc = MOAT_E_LIMIT;
	if (n->rc == MOAT_OK)
		n->rc = cbor_put_tstr(&n->items, s, strlen(s));
	if (n->rc == MOAT_OK)
		n->count++;
}

static int add_revoked_thing(void *arg, const struct reg_thing *t)
{
	struct names *n = arg;

	if (t->status == REG_REVOKED)
		add_name(n, t->name);
	return n->rc;
}

static int add_cert(void *arg, const struct reg_cert *c)
{
	struct names *n = arg;
	char lower[REG_SERIAL_HEX_MAX + 1];
	size_t i;

	for (i = 0; c->serial[i] != '\0' && i < REG_SERIAL_HEX_MAX; i++)
		lower[i] =
		    (char)(c->serial[i] >= 'A' && c->serial[i] <= 'F' ? c->serial[i] - 'A' + 'a'
								      : c->serial[i]);
	lower[i] = '\0';
	add_name(n, lower);
	return n->rc;
}

static int put_names(struct buf *b, unsigned key, const struct names *n)
{
	int rc = cbor_put_uint(b, key);

	if (rc == MOAT_OK)
		rc = cbor_put_array(b, n->count);
	if (rc == MOAT_OK)
		rc = buf_append(b, buf_head(&n->items), buf_used(&n->items));
	return rc;
}

static int put_payload(struct buf *p, uint64_t serial, int64_t now_s, int64_t next_update_s,
		       const struct names lists[3], bool with_jtis)
{
	int rc = cbor_put_map(p, with_jtis ? 6 : 5);

	if (rc == MOAT_OK)
		rc = cbor_put_uint(p, 1);
	if (rc == MOAT_OK)
		rc = cbor_put_uint(p, serial);
	if (rc == MOAT_OK)
		rc = cbor_put_uint(p, 2);
	if (rc == MOAT_OK)
		rc = cbor_put_int(p, now_s);
	if (rc == MOAT_OK)
		rc = cbor_put_uint(p, 3);
	if (rc == MOAT_OK)
		rc = cbor_put_int(p, now_s + next_update_s);
	for (unsigned i = 0; rc == MOAT_OK && i < (with_jtis ? 3u : 2u); i++)
		rc = put_names(p, 4 + i, &lists[i]);
	return rc;
}

int revlist_build(struct registry *r, const char *actor, int64_t now_s, int64_t next_update_s,
		  const char *const *jtis, keyrel_sign_fn *sign, void *sign_arg, struct buf *out,
		  uint64_t *serial, struct moat_diag *diag)
{
	struct names lists[3] = {{{0}, 0, MOAT_OK}, {{0}, 0, MOAT_OK}, {{0}, 0, MOAT_OK}};
	struct buf payload = {0};
	int64_t n = 0;
	int rc = reg_check_actor(actor, diag);

	if (rc == MOAT_OK && next_update_s <= 0)
		rc = reg_fail(diag, MOAT_E_INVAL, "revocation list: next update must be later");
	if (rc == MOAT_OK)
		rc = reg_thing_list_revoked(r, add_revoked_thing, &lists[0], diag);
	if (rc == MOAT_OK)
		rc = reg_cert_list_revoked(r, now_s, add_cert, &lists[1], diag);
	for (size_t i = 0; rc == MOAT_OK && jtis != NULL && jtis[i] != NULL; i++) {
		add_name(&lists[2], jtis[i]);
		rc = lists[2].rc;
	}
	if (rc == MOAT_E_LIMIT)
		rc = reg_fail(diag, rc, "revocation list: more than %d entries in a list",
			      REVLIST_MAX_ENTRIES);
	if (rc == MOAT_OK)
		rc = reg_counter_next(r, actor,
				      "UPDATE ca_state SET revlist_number = revlist_number + 1"
				      " WHERE id = 1 RETURNING revlist_number",
				      "revlist.issue", "serial", &n, diag);
	if (rc == MOAT_OK)
		rc = put_payload(&payload, (uint64_t)n, now_s, next_update_s, lists, jtis != NULL);
	if (rc == MOAT_OK)
		rc = cose_sign1_sign_with(
		    sign, sign_arg, moat_bytes_str(KEYREL_SC_KID), moat_bytes_str(REVLIST_TOPIC),
		    (struct moat_bytes){buf_head(&payload), buf_used(&payload)}, out);
	if (rc < 0 && diag != NULL && diag->msg[0] == '\0')
		reg_fail(diag, rc, "revocation list: %s", moat_strerror(rc));
	if (rc == MOAT_OK && serial != NULL)
		*serial = (uint64_t)n;
	for (int i = 0; i < 3; i++)
		buf_fini(&lists[i].items);
	buf_fini(&payload);
	return rc;
}
