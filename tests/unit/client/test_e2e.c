/* libmoat end-to-end (include/moat/e2e.h, src/client/e2e*.c, keycache.c)
 * without a network: two devices' bundles made here, group keys put into
 * their caches as a key release would, then real envelopes sealed by one
 * and opened by the other. Covers every refusal of open (each byte
 * flipped, topic swapped, replay, old epoch after the grace window, wrong
 * alg, too old, unsigned on a signed topic, bad signature), sequence
 * numbers across a reopen, and the encrypted cache (round trip, tampered
 * or foreign file discarded, dropped entries wiped). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include <moat/e2e.h>
#include <moat/error.h>

#include "base/clock.h"
#include "client/e2e_impl.h"
#include "e2e/alg.h"
#include "e2e/cose.h"

static char root[64];

static void write_bytes(const char *path, const uint8_t *p, size_t len)
{
	FILE *f = fopen(path, "wb");

	assert_non_null(f);
	assert_int_equal(fwrite(p, 1, len, f), len);
	fclose(f);
}

static void write_key(const char *dir, const char *name, EVP_PKEY *k, bool pub)
{
	char path[512];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "w");
	assert_non_null(f);
	assert_int_equal(pub ? PEM_write_PUBKEY(f, k)
			     : PEM_write_PrivateKey(f, k, NULL, NULL, 0, NULL, NULL),
			 1);
	fclose(f);
	chmod(path, 0600);
}

static EVP_PKEY *keygen(int type)
{
	EVP_PKEY *k = NULL;
	EVP_PKEY_CTX *c = EVP_PKEY_CTX_new_id(type, NULL);

	assert_non_null(c);
	assert_int_equal(EVP_PKEY_keygen_init(c), 1);
	assert_int_equal(EVP_PKEY_keygen(c, &k), 1);
	EVP_PKEY_CTX_free(c);
	return k;
}

/* Makes bundle <name> under root (fresh) and returns its path in <dir>. */
static void make_bundle(const char *name, char *dir, size_t n, EVP_PKEY **sign_out)
{
	char path[512];
	EVP_PKEY *sign = keygen(EVP_PKEY_ED25519), *agree = keygen(EVP_PKEY_X25519);
	EVP_PKEY *sc = keygen(EVP_PKEY_ED25519);
	FILE *f;

	snprintf(dir, n, "%s/%s", root, name);
	assert_int_equal(mkdir(dir, 0700), 0);
	snprintf(path, sizeof(path), "%s/bundle.json", dir);
	f = fopen(path, "w");
	assert_non_null(f);
	fprintf(f, "{\"client_id\": \"%s\", \"broker\": \"mqtt://127.0.0.1:1883\"}", name);
	fclose(f);
	write_key(dir, "sign.key", sign, false);
	write_key(dir, "agree.key", agree, false);
	write_key(dir, "sc.pub", sc, true);
	if (sign_out != NULL)
		*sign_out = sign;
	else
		EVP_PKEY_free(sign);
	EVP_PKEY_free(agree);
	EVP_PKEY_free(sc);
}

static struct kc_entry entry(uint8_t gid, uint32_t epoch, int alg, const char *filter,
			     bool is_signed, uint32_t max_age, uint8_t sid)
{
	struct kc_entry e = {.alg = alg, .is_signed = is_signed, .max_age_s = max_age};

	memset(e.group.group_id, gid, COSE_GROUP_ID_LEN);
	e.group.epoch = epoch;
	memset(e.group.master_secret, (int)(gid ^ epoch), 32);
	snprintf(e.filter, sizeof(e.filter), "%s", filter);
	e.not_after = clock_wall_s() + 3600;
	e.sender_id[0] = sid;
	e.sender_id_len = sid != 0 ? 1 : 0;
	return e;
}

struct pair {
	struct moat_e2e *pub, *sub;
	EVP_PKEY *pub_sign;
	char pub_dir[256], sub_dir[256];
};

static int setup(void **state)
{
	static int run;
	struct pair *p = calloc(1, sizeof(*p));
	char name[32];

	snprintf(root, sizeof(root), "/tmp/moat_e2e_%d_%d", (int)getpid(), run++);
	assert_int_equal(mkdir(root, 0700), 0);
	make_bundle("pubdev", p->pub_dir, sizeof(p->pub_dir), &p->pub_sign);
	snprintf(name, sizeof(name), "subdev");
	make_bundle(name, p->sub_dir, sizeof(p->sub_dir), NULL);
	assert_int_equal(moat_e2e_open_bundle(&p->pub, p->pub_dir, NULL, 0), MOAT_OK);
	assert_int_equal(moat_e2e_open_bundle(&p->sub, p->sub_dir, NULL, 0), MOAT_OK);
	*state = p;
	return 0;
}

static int teardown(void **state)
{
	struct pair *p = *state;
	char cmd[128];

	moat_e2e_destroy(p->pub);
	moat_e2e_destroy(p->sub);
	EVP_PKEY_free(p->pub_sign);
	free(p);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", root);
	assert_int_equal(system(cmd), 0);
	return 0;
}

/* Both devices hold group 1 epoch 1 for "t/+"; the publisher with sender id 7. */
static void give_keys(struct pair *p, int sub_alg, bool is_signed, uint32_t max_age)
{
	struct kc_entry pe = entry(1, 1, E2E_ALG_CHACHA20_POLY1305, "t/+", is_signed, max_age, 7);
	struct kc_entry se = entry(1, 1, sub_alg, "t/+", is_signed, max_age, 0);

	assert_int_equal(e2e_counter_create(p->pub, &pe), MOAT_OK);
	assert_int_equal(keycache_put(&p->pub->kc, &pe, clock_wall_s()), MOAT_OK);
	assert_int_equal(keycache_put(&p->sub->kc, &se, clock_wall_s()), MOAT_OK);
}

static void seal(struct pair *p, const char *topic, const char *msg, uint8_t **env, size_t *len)
{
	const char *ct = NULL, *why = NULL;

	assert_int_equal(moat_e2e_seal(p->pub, topic, msg, strlen(msg), env, len, &ct, &why),
			 MOAT_OK);
	assert_non_null(ct);
}

static int open_msg(struct pair *p, const char *topic, const uint8_t *env, size_t len,
		    const char **why)
{
	uint8_t *pt = NULL;
	size_t n = 0;
	struct moat_e2e_info info;
	int rc = moat_e2e_open(p->sub, topic, env, len, &pt, &n, &info, why);

	if (rc == MOAT_OK)
		assert_null(*why);
	else
		assert_non_null(*why);
	moat_e2e_free(pt, n);
	return rc;
}

static void round_trip_and_flips(void **state)
{
	struct pair *p = *state;
	uint8_t *env, *pt = NULL;
	size_t len, n;
	const char *why;
	struct moat_e2e_info info;

	give_keys(p, E2E_ALG_CHACHA20_POLY1305, false, 0);
	seal(p, "t/a", "hello", &env, &len);
	assert_null(memmem(env, len, "hello", 5)); /* encrypted */
	for (size_t i = 0; i < len; i++) {
		for (int bit = 0; bit < 8; bit += 7) {
			env[i] ^= (uint8_t)(1u << bit);
			assert_int_not_equal(open_msg(p, "t/a", env, len, &why), MOAT_OK);
			env[i] ^= (uint8_t)(1u << bit);
		}
	}
	assert_int_not_equal(open_msg(p, "t/a", env, len - 1, &why), MOAT_OK);
	assert_int_equal(open_msg(p, "t/b", env, len, &why), MOAT_E_CRYPTO); /* topic swapped */
	assert_int_equal(moat_e2e_open(p->sub, "t/a", env, len, &pt, &n, &info, &why), MOAT_OK);
	assert_int_equal(n, 5);
	assert_memory_equal(pt, "hello", 5);
	assert_int_equal(info.sender_id_len, 1);
	assert_int_equal(info.sender_id[0], 7);
	assert_int_equal(info.epoch, 1);
	assert_true(info.has_iat);
	assert_false(info.is_signed);
	moat_e2e_free(pt, n);
	assert_int_equal(open_msg(p, "t/a", env, len, &why), MOAT_E_PROTOCOL); /* replayed */
	assert_non_null(strstr(why, "replayed"));
	/* a topic outside the group's filter */
	assert_int_equal(open_msg(p, "u/a", env, len, &why), MOAT_E_PROTOCOL);
	free(env);
}

static void wrong_alg_refused(void **state)
{
	struct pair *p = *state;
	uint8_t *env;
	size_t len;
	const char *why;

	give_keys(p, E2E_ALG_A256GCM, false, 0); /* the receiver's grant says A256GCM */
	seal(p, "t/a", "x", &env, &len);
	assert_int_equal(open_msg(p, "t/a", env, len, &why), MOAT_E_PROTOCOL);
	assert_non_null(strstr(why, "alg"));
	free(env);
}

static void old_epoch_after_grace(void **state)
{
	struct pair *p = *state;
	struct kc_entry next = entry(1, 2, E2E_ALG_CHACHA20_POLY1305, "t/+", false, 0, 0);
	uint8_t *e1, *e2;
	size_t l1, l2;
	const char *why;

	give_keys(p, E2E_ALG_CHACHA20_POLY1305, false, 0);
	seal(p, "t/a", "one", &e1, &l1);
	seal(p, "t/a", "two", &e2, &l2);
	assert_int_equal(keycache_put(&p->sub->kc, &next, clock_wall_s()), MOAT_OK);
	assert_int_equal(open_msg(p, "t/a", e1, l1, &why), MOAT_OK); /* within the grace window */
	keycache_find(&p->sub->kc, next.group.group_id, 1)->superseded_at = clock_wall_s() - 10;
	moat_e2e_set_grace_s(p->sub, 5);
	assert_int_equal(open_msg(p, "t/a", e2, l2, &why), MOAT_E_PROTOCOL);
	assert_non_null(strstr(why, "grace"));
	/* the next epoch's messages are unreadable with the old epoch's key */
	struct kc_entry pnext = entry(1, 2, E2E_ALG_CHACHA20_POLY1305, "t/+", false, 0, 7);
	struct moat_e2e *third;
	char dir[256];

	assert_int_equal(e2e_counter_create(p->pub, &pnext), MOAT_OK);
	assert_int_equal(keycache_put(&p->pub->kc, &pnext, clock_wall_s()), MOAT_OK);
	free(e1);
	seal(p, "t/a", "three", &e1, &l1);
	make_bundle("third", dir, sizeof(dir), NULL);
	assert_int_equal(moat_e2e_open_bundle(&third, dir, NULL, 0), MOAT_OK);
	struct kc_entry old = entry(1, 1, E2E_ALG_CHACHA20_POLY1305, "t/+", false, 0, 0);
	uint8_t *pt = NULL;
	size_t n = 0;

	assert_int_equal(keycache_put(&third->kc, &old, clock_wall_s()), MOAT_OK);
	/* not attached: no key for epoch 2 can be fetched */
	assert_int_equal(moat_e2e_open(third, "t/a", e1, l1, &pt, &n, NULL, &why), MOAT_E_CLOSED);
	assert_null(pt);
	moat_e2e_destroy(third);
	free(e1);
	free(e2);
}

static void too_old_refused(void **state)
{
	struct pair *p = *state;
	struct kc_entry *ent;
	struct cose_seal_params sp = {.alg = E2E_ALG_CHACHA20_POLY1305, .seq = 99, .has_iat = true};
	struct buf b = {0};
	const char *why;

	give_keys(p, E2E_ALG_CHACHA20_POLY1305, false, 30);
	ent = keycache_current(&p->pub->kc, (uint8_t[8]){1, 1, 1, 1, 1, 1, 1, 1});
	assert_non_null(ent);
	sp.sender_id = (struct moat_bytes){ent->sender_id, 1};
	sp.iat = clock_wall_s() - 100;
	assert_int_equal(cose_encrypt0_seal(&ent->group, &sp, moat_bytes_str("t/a"),
					    moat_bytes_str("stale"), &b),
			 MOAT_OK);
	assert_int_equal(open_msg(p, "t/a", buf_head(&b), buf_used(&b), &why), MOAT_E_PROTOCOL);
	assert_non_null(strstr(why, "maximum age"));
	buf_fini(&b);
	sp.iat = clock_wall_s();
	assert_int_equal(cose_encrypt0_seal(&ent->group, &sp, moat_bytes_str("t/a"),
					    moat_bytes_str("fresh"), &b),
			 MOAT_OK);
	assert_int_equal(open_msg(p, "t/a", buf_head(&b), buf_used(&b), &why), MOAT_OK);
	buf_fini(&b);
}

static uint8_t signer_pub[32];

static int lookup(void *arg, const uint8_t *kid, size_t kid_len, uint8_t pub[32])
{
	(void)arg;
	if (kid_len != 6 || memcmp(kid, "pubdev", 6) != 0)
		return MOAT_E_NOTFOUND;
	memcpy(pub, signer_pub, 32);
	return MOAT_OK;
}

static void signed_topic(void **state)
{
	struct pair *p = *state;
	uint8_t *env, *pt = NULL;
	size_t len, n = 0, pl = 32;
	const char *ct, *why;
	struct moat_e2e_info info;

	give_keys(p, E2E_ALG_CHACHA20_POLY1305, true, 0);
	assert_int_equal(moat_e2e_seal(p->pub, "t/s", "signed", 6, &env, &len, &ct, &why), MOAT_OK);
	assert_string_equal(ct, COSE_CONTENT_TYPE_SIGN1);
	assert_int_equal(env[0], 0xd2);
	/* no lookup: opened, signer reported but not verified */
	assert_int_equal(moat_e2e_open(p->sub, "t/s", env, len, &pt, &n, &info, &why), MOAT_OK);
	assert_true(info.is_signed);
	assert_string_equal(info.signer, "pubdev");
	assert_false(info.signer_verified);
	moat_e2e_free(pt, n);
	free(env);
	/* with a lookup: verified; a wrong key refuses */
	assert_int_equal(EVP_PKEY_get_raw_public_key(p->pub_sign, signer_pub, &pl), 1);
	moat_e2e_set_signer_lookup(p->sub, lookup, NULL);
	assert_int_equal(moat_e2e_seal(p->pub, "t/s", "signed", 6, &env, &len, &ct, &why), MOAT_OK);
	assert_int_equal(moat_e2e_open(p->sub, "t/s", env, len, &pt, &n, &info, &why), MOAT_OK);
	assert_true(info.signer_verified);
	moat_e2e_free(pt, n);
	free(env);
	signer_pub[0] ^= 1;
	assert_int_equal(moat_e2e_seal(p->pub, "t/s", "signed", 6, &env, &len, &ct, &why), MOAT_OK);
	assert_int_equal(open_msg(p, "t/s", env, len, &why), MOAT_E_CRYPTO);
	free(env);
	/* the inner Encrypt0 alone on a signed topic is refused */
	struct kc_entry *ent = keycache_current(&p->pub->kc, (uint8_t[8]){1, 1, 1, 1, 1, 1, 1, 1});

	ent->is_signed = false;
	assert_int_equal(moat_e2e_seal(p->pub, "t/s", "plain", 5, &env, &len, &ct, &why), MOAT_OK);
	assert_int_equal(open_msg(p, "t/s", env, len, &why), MOAT_E_PROTOCOL);
	assert_non_null(strstr(why, "Sign1"));
	free(env);
}

static void seq_survives_reopen(void **state)
{
	struct pair *p = *state;
	uint8_t *env, *pt;
	size_t len, n;
	const char *why;
	struct moat_e2e_info info;
	uint64_t first;

	give_keys(p, E2E_ALG_CHACHA20_POLY1305, false, 0);
	assert_int_equal(keycache_save(&p->pub->kc), MOAT_OK);
	seal(p, "t/a", "a", &env, &len);
	assert_int_equal(moat_e2e_open(p->sub, "t/a", env, len, &pt, &n, &info, &why), MOAT_OK);
	first = info.seq;
	moat_e2e_free(pt, n);
	free(env);
	moat_e2e_destroy(p->pub);
	assert_int_equal(moat_e2e_open_bundle(&p->pub, p->pub_dir, NULL, 0), MOAT_OK);
	assert_int_equal(p->pub->kc.n, 1); /* the cache came back from disk */
	seal(p, "t/a", "b", &env, &len);
	assert_int_equal(moat_e2e_open(p->sub, "t/a", env, len, &pt, &n, &info, &why), MOAT_OK);
	assert_true(info.seq > first);
	moat_e2e_free(pt, n);
	free(env);
	/* the same grant again keeps its counter going */
	assert_int_equal(e2e_counter_create(p->pub, &p->pub->kc.e[0]), MOAT_OK);
	seal(p, "t/a", "c", &env, &len);
	assert_int_equal(moat_e2e_open(p->sub, "t/a", env, len, &pt, &n, &info, &why), MOAT_OK);
	assert_true(info.seq > first + 1);
	moat_e2e_free(pt, n);
	free(env);
	/* a lost counter is never restarted at zero */
	char path[600];

	snprintf(path, sizeof(path), "%s/state/seq-0101010101010101-1-07", p->pub_dir);
	assert_int_equal(unlink(path), 0);
	moat_e2e_destroy(p->pub);
	assert_int_equal(moat_e2e_open_bundle(&p->pub, p->pub_dir, NULL, 0), MOAT_OK);
	assert_int_equal(moat_e2e_seal(p->pub, "t/a", "d", 1, &env, &len, &why, &why), MOAT_E_IO);
	assert_non_null(strstr(why, "lost"));
	/* a key past its not_after is refetched before use: no client, so refused */
	p->pub->kc.e[0].not_after = clock_wall_s() - 1;
	assert_int_equal(moat_e2e_seal(p->pub, "t/a", "c", 1, &env, &len, &why, &why),
			 MOAT_E_CLOSED);
}

static void cache_round_trip_and_tamper(void **state)
{
	struct pair *p = *state;
	struct kc_entry a = entry(2, 5, E2E_ALG_A256GCM, "x/#", true, 60, 3);
	struct kc_entry b = entry(3, 1, E2E_ALG_CHACHA20_POLY1305, "y/z", false, 0, 0);
	struct keycache kc;
	char path[300], diag[300];
	bool discarded;
	FILE *f;
	long size;
	uint8_t *raw;

	assert_int_equal(keycache_put(&p->pub->kc, &a, 100), MOAT_OK);
	assert_int_equal(keycache_put(&p->pub->kc, &b, 100), MOAT_OK);
	assert_int_equal(keycache_save(&p->pub->kc), MOAT_OK);
	snprintf(path, sizeof(path), "%s/state/keys.cache", p->pub_dir);
	struct stat st;

	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	assert_int_equal(keycache_open(&kc, path, p->pub->agree_seed, &discarded), MOAT_OK);
	assert_false(discarded);
	assert_int_equal(kc.n, 2);
	assert_memory_equal(&kc.e[0].group, &a.group, sizeof(a.group));
	assert_string_equal(kc.e[0].filter, "x/#");
	assert_int_equal(kc.e[0].alg, E2E_ALG_A256GCM);
	assert_true(kc.e[0].is_signed);
	assert_int_equal(kc.e[0].max_age_s, 60);
	assert_int_equal(kc.e[0].not_after, a.not_after);
	assert_int_equal(kc.e[0].sender_id_len, 1);
	assert_int_equal(kc.e[1].sender_id_len, 0);
	keycache_fini(&kc);
	/* the file holds no secret in the clear */
	f = fopen(path, "rb");
	assert_non_null(f);
	fseek(f, 0, SEEK_END);
	size = ftell(f);
	rewind(f);
	raw = malloc((size_t)size);
	assert_int_equal(fread(raw, 1, (size_t)size, f), (size_t)size);
	fclose(f);
	assert_null(memmem(raw, (size_t)size, a.group.master_secret, 32));
	assert_null(memmem(raw, (size_t)size, "x/#", 3));
	/* every flipped byte: discarded (and the file removed), never trusted */
	for (long i = 0; i < size; i += 7) {
		raw[i] ^= 0x20;
		write_bytes(path, raw, (size_t)size);
		assert_int_equal(keycache_open(&kc, path, p->pub->agree_seed, &discarded), MOAT_OK);
		assert_true(discarded);
		assert_int_equal(kc.n, 0);
		assert_int_not_equal(access(path, F_OK), 0);
		keycache_fini(&kc);
		raw[i] ^= 0x20;
	}
	/* another device's key (a copied cache): discarded; reported by open_bundle */
	write_bytes(path, raw, (size_t)size);
	assert_int_equal(keycache_open(&kc, path, p->sub->agree_seed, &discarded), MOAT_OK);
	assert_true(discarded);
	keycache_fini(&kc);
	write_bytes(path, raw, (size_t)size - 1);
	moat_e2e_destroy(p->pub);
	assert_int_equal(moat_e2e_open_bundle(&p->pub, p->pub_dir, diag, sizeof(diag)), MOAT_OK);
	assert_non_null(strstr(diag, "discarded"));
	assert_int_equal(p->pub->kc.n, 0);
	free(raw);
}

static void cache_epochs_and_wipe(void **state)
{
	struct pair *p = *state;
	struct keycache *kc = &p->sub->kc;
	static const uint8_t zero[sizeof(struct kc_entry)];
	struct kc_entry e1 = entry(4, 1, E2E_ALG_CHACHA20_POLY1305, "a/b", false, 0, 0);
	struct kc_entry e2 = entry(4, 2, E2E_ALG_CHACHA20_POLY1305, "a/b", false, 0, 0);
	struct kc_entry e3 = entry(4, 3, E2E_ALG_CHACHA20_POLY1305, "a/b", false, 0, 0);
	struct kc_entry pubg = entry(4, 3, E2E_ALG_CHACHA20_POLY1305, "a/b", false, 0, 9);

	assert_int_equal(keycache_put(kc, &e1, 10), MOAT_OK);
	assert_int_equal(keycache_put(kc, &e2, 20), MOAT_OK);
	assert_int_equal(keycache_find(kc, e1.group.group_id, 1)->superseded_at, 20);
	assert_int_equal(keycache_put(kc, &e3, 30), MOAT_OK);
	assert_int_equal(kc->n, 2); /* current and previous only */
	assert_null(keycache_find(kc, e1.group.group_id, 1));
	assert_memory_equal(&kc->e[kc->n], zero, sizeof(zero)); /* the dropped one is wiped */
	assert_int_equal(keycache_current(kc, e1.group.group_id)->group.epoch, 3);
	assert_int_equal(keycache_put(kc, &e1, 40), MOAT_E_PROTOCOL);
	/* a publish grant's sender id survives a later subscribe grant */
	assert_int_equal(keycache_put(kc, &pubg, 40), MOAT_OK);
	assert_int_equal(keycache_put(kc, &e3, 40), MOAT_OK);
	assert_int_equal(keycache_current(kc, e1.group.group_id)->sender_id_len, 1);
	/* the most specific filter wins */
	struct kc_entry wide = entry(5, 1, E2E_ALG_CHACHA20_POLY1305, "a/#", false, 0, 0);

	assert_int_equal(keycache_put(kc, &wide, 40), MOAT_OK);
	assert_int_equal(keycache_for_topic(kc, moat_bytes_str("a/b"))->group.group_id[0], 4);
	assert_int_equal(keycache_for_topic(kc, moat_bytes_str("a/c"))->group.group_id[0], 5);
	assert_null(keycache_for_topic(kc, moat_bytes_str("b")));
}

static void bundle_errors(void **state)
{
	struct pair *p = *state;
	struct moat_e2e *e = NULL;
	char path[300], diag[300];

	(void)p;
	snprintf(path, sizeof(path), "%s/sign.key", p->sub_dir);
	chmod(path, 0644);
	assert_int_equal(moat_e2e_open_bundle(&e, p->sub_dir, diag, sizeof(diag)), MOAT_E_CONFIG);
	assert_non_null(strstr(diag, "readable"));
	chmod(path, 0600);
	snprintf(path, sizeof(path), "%s/sc.pub", p->sub_dir);
	unlink(path);
	assert_int_equal(moat_e2e_open_bundle(&e, p->sub_dir, diag, sizeof(diag)), MOAT_E_CONFIG);
	assert_non_null(strstr(diag, "sc.pub"));
	assert_int_equal(moat_e2e_open_bundle(&e, "/nonexistent", diag, sizeof(diag)),
			 MOAT_E_CONFIG);
	assert_string_equal(moat_e2e_client_id(p->pub), "pubdev");
	assert_string_equal(moat_e2e_broker(p->pub), "mqtt://127.0.0.1:1883");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(round_trip_and_flips, setup, teardown),
	    cmocka_unit_test_setup_teardown(wrong_alg_refused, setup, teardown),
	    cmocka_unit_test_setup_teardown(old_epoch_after_grace, setup, teardown),
	    cmocka_unit_test_setup_teardown(too_old_refused, setup, teardown),
	    cmocka_unit_test_setup_teardown(signed_topic, setup, teardown),
	    cmocka_unit_test_setup_teardown(seq_survives_reopen, setup, teardown),
	    cmocka_unit_test_setup_teardown(cache_round_trip_and_tamper, setup, teardown),
	    cmocka_unit_test_setup_teardown(cache_epochs_and_wipe, setup, teardown),
	    cmocka_unit_test_setup_teardown(bundle_errors, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
