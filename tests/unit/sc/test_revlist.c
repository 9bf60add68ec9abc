/* The Security Center's revocation list (src/sc/revlist.c) read back by
 * moatd's own parser (src/broker/revocation.c): revoked things as client
 * ids, revoked unexpired certificate serials in lower-case hex, token ids,
 * times, serials increasing across lists and reopening; a changed byte or
 * another key is refused by the broker. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <openssl/evp.h>

#include <moat/error.h>

#include "broker/revocation.h"
#include "broker/sc_topics.h"
#include "sc/revlist.h"
#include "sc_testkit.h"
#include "../e2e/keys_testkit.h"

#define NOW 1764567890

struct fx {
	struct sc_tmp t;
	struct registry *r;
	struct moat_diag d;
};

static uint8_t sc_seed[32], sc_pub[32];

static void record_cert(struct fx *f, const char *serial, const char *thing, int64_t not_after)
{
	struct reg_cert c = {
	    .profile = REG_CERT_DEVICE, .not_before_s = NOW - 10, .not_after_s = not_after};

	snprintf(c.serial, sizeof(c.serial), "%s", serial);
	snprintf(c.thing, sizeof(c.thing), "%s", thing);
	assert_int_equal(reg_cert_record(f->r, "test", &c, &f->d), MOAT_OK);
}

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));

	memset(sc_seed, 0x24, sizeof(sc_seed));
	testkit_raw_pub(EVP_PKEY_ED25519, sc_seed, sc_pub);
	sc_tmp_open(&f->t, "moat-sc-rl", &f->r);
	for (int i = 1; i <= 3; i++) {
		char name[8];

		snprintf(name, sizeof(name), "dev%d", i);
		assert_int_equal(reg_thing_create(f->r, "test", name, NULL, 0, NULL, &f->d),
				 MOAT_OK);
	}
	record_cert(f, "A1B2C", "dev1", NOW + 1000);
	record_cert(f, "FF01", "dev1", NOW - 1); /* expired: off the list */
	record_cert(f, "BEEF", "dev2", NOW + 1000);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;

	sc_tmp_remove(&f->t, f->r);
	free(f);
	return 0;
}

static struct revocation *parse(const struct buf *b)
{
	struct revocation *rl = NULL;
	const char *why = NULL;

	assert_int_equal(
	    revocation_parse((struct moat_bytes){buf_head(b), buf_used(b)}, sc_pub, &rl, &why),
	    MOAT_OK);
	return rl;
}

static void broker_accepts_the_list(void **state)
{
	struct fx *f = *state;
	const char *const jtis[] = {"jti-1", NULL};
	struct buf b = {0};
	struct revocation *rl;
	uint64_t serial = 0;

	assert_string_equal(REVLIST_TOPIC, SC_REVOKED_TOPIC);
	assert_int_equal(revlist_build(f->r, "test", NOW, 3600, NULL, testkit_ed25519_sign, sc_seed,
				       &b, &serial, &f->d),
			 MOAT_OK);
	assert_int_equal(serial, 1);
	rl = parse(&b);
	assert_int_equal(rl->serial, 1);
	assert_int_equal(rl->issued, NOW);
	assert_int_equal(rl->next_update, NOW + 3600);
	assert_int_equal(rl->n_client_ids, 0);
	assert_int_equal(rl->n_jtis, 0);
	revocation_unref(rl);
	buf_fini(&b);

	assert_int_equal(reg_thing_revoke(f->r, "test", "dev1", 1, &f->d), MOAT_OK);
	assert_int_equal(reg_thing_revoke(f->r, "test", "dev3", 0, &f->d), MOAT_OK);
	assert_int_equal(revlist_build(f->r, "test", NOW, 3600, jtis, testkit_ed25519_sign, sc_seed,
				       &b, &serial, &f->d),
			 MOAT_OK);
	assert_int_equal(serial, 2);
	rl = parse(&b);
	assert_int_equal(rl->serial, 2);
	assert_int_equal(rl->n_client_ids, 2);
	assert_true(revocation_has_client(rl, "dev1"));
	assert_true(revocation_has_client(rl, "dev3"));
	assert_false(revocation_has_client(rl, "dev2"));
	assert_int_equal(rl->n_cert_serials, 1);
	assert_true(revocation_has_cert(rl, "a1b2c"));
	assert_false(revocation_has_cert(rl, "beef"));
	assert_true(revocation_has_jti(rl, "jti-1"));
	revocation_unref(rl);
	buf_fini(&b);
}

static void serial_survives_reopen_and_tampering_is_refused(void **state)
{
	struct fx *f = *state;
	struct revocation *rl = NULL;
	struct buf b = {0};
	uint8_t other[32];
	const char *why = NULL;
	uint64_t serial = 0;

	assert_int_equal(revlist_build(f->r, "test", NOW, 60, NULL, testkit_ed25519_sign, sc_seed,
				       &b, &serial, &f->d),
			 MOAT_OK);
	buf_fini(&b);
	reg_close(f->r);
	assert_int_equal(reg_open(&f->r, f->t.path, &f->d), MOAT_OK);
	assert_int_equal(revlist_build(f->r, "test", NOW, 60, NULL, testkit_ed25519_sign, sc_seed,
				       &b, &serial, &f->d),
			 MOAT_OK);
	assert_int_equal(serial, 2);
	for (size_t i = 0; i < buf_used(&b); i++) {
		buf_head(&b)[i] ^= 0x01;
		assert_int_not_equal(
		    revocation_parse((struct moat_bytes){buf_head(&b), buf_used(&b)}, sc_pub, &rl,
				     &why),
		    MOAT_OK);
		assert_null(rl);
		buf_head(&b)[i] ^= 0x01;
	}
	memset(other, 0x25, sizeof(other));
	assert_int_not_equal(
	    revocation_parse((struct moat_bytes){buf_head(&b), buf_used(&b)}, other, &rl, &why),
	    MOAT_OK);
	assert_int_equal(revlist_build(f->r, "test", NOW, 0, NULL, testkit_ed25519_sign, sc_seed,
				       &b, &serial, &f->d),
			 MOAT_E_INVAL);
	buf_fini(&b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(broker_accepts_the_list, setup, teardown),
	    cmocka_unit_test_setup_teardown(serial_survives_reopen_and_tampering_is_refused, setup,
					    teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
