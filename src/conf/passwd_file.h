/*
 * Mosquitto-compatible password files ("username:hash" per line, '#'
 * comments), parsed and validated without any cryptography: verification
 * lives in auth/passwd.c. Loading stops at the first bad line with
 * "FILE:LINE: what is wrong, how to fix it". Plain-text passwords, empty
 * users or hashes and blank lines are errors, so no line can ever create a
 * user without a password (CVE-2018-12551).
 */
#ifndef MOAT_CONF_PASSWD_FILE_H
#define MOAT_CONF_PASSWD_FILE_H

#include <stddef.h>
#include <stdint.h>

#include "conf/config.h"

enum pwf_kind {
	PWF_SHA512 = 1,	   /* $6$salt$hash: SHA-512(password || salt), mosquitto <= 1.6 */
	PWF_PBKDF2_SHA512, /* $7$iterations$salt$hash: mosquitto 2.0 */
	PWF_ARGON2ID,	   /* $argon2id$v=19$m=..,t=..,p=..$salt$hash (PHC string) */
	PWF_SCRAM_SHA256,  /* $scram-sha-256$iterations$salt$StoredKey$ServerKey */
};

enum {
	PWF_SALT_MAX = 64,	   /* bytes of decoded salt */
	PWF_HASH_MAX = 64,	   /* bytes of a SHA-512 digest */
	PWF_SCRAM_KEY_LEN = 32,	   /* bytes of a SHA-256 StoredKey / ServerKey */
	PWF_SCRAM_MIN_ITER = 4096, /* RFC 7677 §4 */
	PWF_PHC_MAX = 127,    /* characters of an argon2id string (crypto_pwhash_STRBYTES - 1) */
	PWF_LINE_MAX = 65536, /* bytes per line, newline excluded */
	PWF_USER_MAX = 65535, /* bytes of an MQTT username */
};

struct pwf_hash {
	enum pwf_kind kind;
	uint32_t iterations;	    /* $7$ and SCRAM */
	uint8_t salt[PWF_SALT_MAX]; /* $6$, $7$, SCRAM */
	size_t salt_len;
	uint8_t hash[PWF_HASH_MAX]; /* $6$/$7$: 64-byte digest; SCRAM: StoredKey */
	size_t hash_len;
	uint8_t server_key[PWF_SCRAM_KEY_LEN]; /* SCRAM only */
	char phc[PWF_PHC_MAX + 1];	       /* argon2id only: the whole NUL-terminated string */
};

struct pwf_entry {
	char *username; /* NUL-terminated, owned */
	size_t line;	/* 1-based line in the file */
	struct pwf_hash h;
};

struct pwf {
	struct pwf_entry *entries; /* in file order */
	size_t count;
	size_t cap;
	const struct pwf_entry **by_name; /* <count> entries sorted by username, for pwf_find */
};

/* Parses the <len> characters at <text> (no ':' or newline) as one hash in
 * the formats above into <out>. Returns MOAT_OK, or MOAT_E_CONFIG with <why>
 * set to a static "what is wrong, how to fix it" text. Does not allocate. */
int pwf_hash_parse(const char *text, size_t len, struct pwf_hash *out, const char **why);

/* Parses <len> bytes of password-file text named <name> (for messages) into
 * <out>, which must be zeroed or fini'd. MOAT_OK, MOAT_E_NOMEM, or
 * MOAT_E_CONFIG with <diag> "NAME:LINE: problem, fix"; <out> is empty on error. */
int pwf_parse(struct pwf *out, const char *name, const char *data, size_t len,
	      struct moat_diag *diag);

/* Reads and parses the file at <path> (at most 64 MiB). As pwf_parse, plus
 * MOAT_E_IO with <diag> naming the file when it cannot be read. */
int pwf_load(struct pwf *out, const char *path, struct moat_diag *diag);

/* Returns the entry for <username> (binary search), or NULL. Valid until pwf_fini. */
const struct pwf_entry *pwf_find(const struct pwf *f, const char *username);

/* Wipes the hashes and frees what <f> owns; <f> is empty and reusable afterwards. NULL is fine. */
void pwf_fini(struct pwf *f);

#endif
