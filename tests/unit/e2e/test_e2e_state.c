/* Replay window (RFC 4303 §3.4.3 semantics at the edges), the crash-safe
 * sequence counter (reopen without a clean close never repeats a number;
 * damaged and missing files refused), and algorithm names (the two AEADs
 * accepted, every weak one refused with its reason and replacement). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include <moat/error.h>

#include "e2e/alg.h"
#include "e2e/kdf.h"
#include "e2e/replay.h"
#include "e2e/seq.h"

static void replay_window_edges(void **state)
{
	struct replay_window w;

	(void)state;
	replay_init(&w);
	assert_int_equal(replay_check(&w, 0), MOAT_OK);
	replay_commit(&w, 0);
	assert_int_equal(replay_check(&w, 0), MOAT_E_PROTOCOL);
	replay_commit(&w, 100);
	assert_int_equal(replay_check(&w, 100), MOAT_E_PROTOCOL);
	assert_int_equal(replay_check(&w, 37), MOAT_OK);	 /* 100 - 63: inside, unseen */
	assert_int_equal(replay_check(&w, 36), MOAT_E_PROTOCOL); /* 100 - 64: below the floor */
	replay_commit(&w, 37);
	assert_int_equal(replay_check(&w, 37), MOAT_E_PROTOCOL);
	assert_int_equal(replay_check(&w, 99), MOAT_OK);
	replay_commit(&w, 101); /* slides by one: 37 falls out */
	assert_int_equal(replay_check(&w, 37), MOAT_E_PROTOCOL);
	assert_int_equal(replay_check(&w, 38), MOAT_OK);
	assert_int_equal(replay_check(&w, 100), MOAT_E_PROTOCOL);
	replay_commit(&w, 1000); /* a jump clears the window */
	assert_int_equal(replay_check(&w, 999), MOAT_OK);
	assert_int_equal(replay_check(&w, 1000), MOAT_E_PROTOCOL);
	assert_int_equal(replay_check(&w, 937), MOAT_OK);
	assert_int_equal(replay_check(&w, 936), MOAT_E_PROTOCOL);
	assert_int_equal(replay_check(&w, 101), MOAT_E_PROTOCOL);
	/* every number in a shuffled run of 64 is accepted once */
	replay_init(&w);
	for (uint64_t i = 0; i < 64; i++) {
		uint64_t s = (i * 37) % 64;

		assert_int_equal(replay_check(&w, s), MOAT_OK);
		replay_commit(&w, s);
		assert_int_equal(replay_check(&w, s), MOAT_E_PROTOCOL);
	}
	replay_commit(&w, E2E_SEQ_MAX);
	assert_int_equal(replay_check(&w, E2E_SEQ_MAX), MOAT_E_PROTOCOL);
}

static char *temp_path(void)
{
	static char dir[] = "/tmp/moat-seq-XXXXXX";
	static char path[64];

	if (dir[sizeof(dir) - 2] == 'X')
		assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/seq", dir);
	unlink(path);
	return path;
}

static void write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	assert_non_null(f);
	fputs(text, f);
	fclose(f);
}

static void seq_survives_crash(void **state)
{
	struct seq_counter a, b;
	const char *path = temp_path();
	uint64_t seq, last = 0;

	(void)state;
	assert_int_equal(seq_open(&a, path, 16, false), MOAT_E_IO); /* no file: not a new context */
	assert_int_equal(seq_open(&a, path, 16, true), MOAT_OK);
	for (uint64_t i = 0; i < 20; i++) {
		assert_int_equal(seq_next(&a, &seq), MOAT_OK);
		assert_true(seq == i);
		last = seq;
	}
	/* crash: <a> is never closed cleanly; a reboot opens the same file */
	assert_int_equal(seq_open(&b, path, 16, false), MOAT_OK);
	assert_int_equal(seq_next(&b, &seq), MOAT_OK);
	assert_true(seq > last);
	assert_true(seq == 32); /* the second block ended at 32 */
	seq_close(&a);
	seq_close(&b);
	/* a context that exists cannot be created again (that would restart at 0) */
	assert_int_equal(seq_open(&a, path, 16, true), MOAT_E_IO);
	/* crash right after the reservation, before any number was used */
	assert_int_equal(seq_open(&a, path, 4, false), MOAT_OK);
	assert_int_equal(seq_next(&a, &seq), MOAT_OK);
	assert_true(seq == 48);
	assert_int_equal(seq_open(&b, path, 4, false), MOAT_OK);
	assert_int_equal(seq_next(&b, &seq), MOAT_OK);
	assert_true(seq == 52);
	seq_close(&a);
	seq_close(&b);
	seq_close(&b); /* twice is fine */
	unlink(path);
}

static void seq_exhaustion_and_damage(void **state)
{
	struct seq_counter s;
	const char *path = temp_path();
	char text[64];
	uint64_t seq;

	(void)state;
	snprintf(text, sizeof(text), "moat-seq 1 %llu\n", (unsigned long long)(E2E_SEQ_MAX - 1));
	write_file(path, text);
	assert_int_equal(seq_open(&s, path, 1000, false), MOAT_OK);
	assert_int_equal(seq_next(&s, &seq), MOAT_OK);
	assert_true(seq == E2E_SEQ_MAX - 1);
	assert_int_equal(seq_next(&s, &seq), MOAT_OK);
	assert_true(seq == E2E_SEQ_MAX);
	assert_int_equal(seq_next(&s, &seq), MOAT_E_LIMIT);
	seq_close(&s);
	assert_int_equal(seq_open(&s, path, 1000, false), MOAT_OK);
	assert_int_equal(seq_next(&s, &seq), MOAT_E_LIMIT); /* stays exhausted after a restart */
	seq_close(&s);

	static const char *const damaged[] = {
	    "",
	    "moat-seq 1 \n",
	    "moat-seq 1 12",
	    "moat-seq 1 012\n",
	    "moat-seq 1 -1\n",
	    "moat-seq 2 5\n",
	    "moat-seq 1 5 \n",
	    "moat-seq 1 1099511627777\n",
	    "moat-seq 1 99999999999999999999999\n",
	};
	for (size_t i = 0; i < sizeof(damaged) / sizeof(damaged[0]); i++) {
		write_file(path, damaged[i]);
		assert_int_equal(seq_open(&s, path, 8, false), MOAT_E_PARSE);
	}
	assert_int_equal(seq_open(&s, path, 0, false), MOAT_E_INVAL);
	unlink(path);
}

static void alg_names(void **state)
{
	static const char *const weak[][2] = {
	    {"des", "56-bit"},		 {"DES-CBC", "56-bit"},	   {"3des", "Sweet32"},
	    {"des-ede3-cbc", "Sweet32"}, {"TripleDES", "Sweet32"}, {"blowfish", "Sweet32"},
	    {"bf-cbc", "Sweet32"},	 {"rc4", "RFC 7465"},	   {"arcfour", "RFC 7465"},
	    {"aes-128-ecb", "ECB"},	 {"aes-256-cbc", "CBC"},   {"aes-256-cfb8", "CFB"},
	    {"aes-256-ofb", "OFB"},	 {"rsa", "RSA"},	   {"RSA-OAEP", "RSA"},
	    {"ecc-160", "80-bit"},	 {"secp160r1", "80-bit"},  {"ecc160", "80-bit"},
	};
	const char *why;
	int alg = 0;

	(void)state;
	assert_int_equal(e2e_alg_from_name("chacha20-poly1305", &alg, &why), MOAT_OK);
	assert_int_equal(alg, E2E_ALG_CHACHA20_POLY1305);
	assert_int_equal(e2e_alg_from_name("AES-256-GCM", &alg, &why), MOAT_OK);
	assert_int_equal(alg, E2E_ALG_A256GCM);
	for (size_t i = 0; i < sizeof(weak) / sizeof(weak[0]); i++) {
		why = NULL;
		alg = 0;
		assert_int_equal(e2e_alg_from_name(weak[i][0], &alg, &why), MOAT_E_UNSUPPORTED);
		assert_int_equal(alg, 0);
		assert_non_null(why);
		assert_non_null(strstr(why, weak[i][1]));
		/* each refusal names the replacement */
		assert_true(strstr(why, "chacha20-poly1305") != NULL);
	}
	assert_int_equal(e2e_alg_from_name("aes-128-gcm", &alg, &why), MOAT_E_UNSUPPORTED);
	assert_non_null(strstr(why, "only chacha20-poly1305 and aes-256-gcm"));
	assert_int_equal(e2e_alg_from_name("xchacha20-poly1305", &alg, &why), MOAT_E_UNSUPPORTED);
	assert_int_equal(e2e_alg_from_name(NULL, &alg, &why), MOAT_E_INVAL);
	assert_string_equal(e2e_alg_name(E2E_ALG_A256GCM), "aes-256-gcm");
	assert_null(e2e_alg_name(1));
	assert_false(e2e_alg_is_valid(1));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(replay_window_edges),
	    cmocka_unit_test(seq_survives_crash),
	    cmocka_unit_test(seq_exhaustion_and_damage),
	    cmocka_unit_test(alg_names),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
