/*
 * The password database behind `password_file`: loads a mosquitto-style
 * file (conf/passwd_file.h) and checks (username, password) in constant
 * time per format: $6$ (SHA-512), $7$ (PBKDF2-HMAC-SHA512), $argon2id$
 * (libsodium) and Moat's $scram-sha-256$ entries, which also serve SCRAM
 * through passwd_db_scram_lookup. Also makes new argon2id and SCRAM hashes
 * for `moat passwd`. The database is immutable once loaded, so any thread
 * may check against it.
 */
#ifndef MOAT_AUTH_PASSWD_H
#define MOAT_AUTH_PASSWD_H

#include <stddef.h>
#include <stdint.h>

#include "auth/scram.h"
#include "conf/config.h"

/* PBKDF2-SHA512 ($7$) entries below this many iterations, and every $6$
 * entry, count as weak (OWASP 2023 recommends 210000 for PBKDF2-SHA512). */
enum { PASSWD_PBKDF2_MIN_ITERATIONS = 210000 };

/* Longest text passwd_hash_* write, with the NUL. */
enum { PASSWD_HASH_TEXT_MAX = 256 };

struct passwd_db;

/* Loads the password file at <path> into a new database in *<out>.
 * MOAT_OK; MOAT_E_CONFIG or MOAT_E_IO with <diag> "FILE:LINE: problem, fix";
 * MOAT_E_NOMEM; MOAT_E_CRYPTO when libsodium cannot start. */
int passwd_db_load(struct passwd_db **out, const char *path, struct moat_diag *diag);

/* As passwd_db_load, from <len> bytes at <data> named <name> in messages. */
int passwd_db_load_buffer(struct passwd_db **out, const char *name, const char *data, size_t len,
			  struct moat_diag *diag);

/* Checks <password> (<len> bytes) for <username> (NUL-terminated).
 * MOAT_OK or MOAT_E_DENIED. An unknown user costs one verification of the
 * first entry's format, so timing does not tell which users exist. */
int passwd_db_check(const struct passwd_db *db, const char *username, const uint8_t *password,
		    size_t len);

/* Entries hashed weakly ($6$, or $7$ below PASSWD_PBKDF2_MIN_ITERATIONS),
 * for a warning at load. */
size_t passwd_db_weak_count(const struct passwd_db *db);

/* Number of users. */
size_t passwd_db_count(const struct passwd_db *db);

/* A scram_lookup_fn over the database <arg> (a const struct passwd_db *):
 * MOAT_OK for a user with a $scram-sha-256$ entry, MOAT_E_NOTFOUND otherwise. */
int passwd_db_scram_lookup(void *arg, const char *username, struct scram_cred *out);

/* Frees <db> and wipes its hashes. NULL is fine. */
void passwd_db_destroy(struct passwd_db *db);

/* Writes an argon2id hash of <password> (<len> bytes) into <out>
 * (opslimit 2, memlimit 19 MiB: "$argon2id$v=19$m=19456,t=2,p=1$...").
 * MOAT_OK, MOAT_E_NOMEM or MOAT_E_CRYPTO. */
int passwd_hash_argon2id(const uint8_t *password, size_t len, char out[PASSWD_HASH_TEXT_MAX]);

/* Writes "$scram-sha-256$ITERATIONS$SALT$StoredKey$ServerKey" for <password> with
 * a fresh 16-byte salt and <iterations> (>= 4096) into <out>.
 * MOAT_OK, MOAT_E_INVAL or MOAT_E_CRYPTO. */
int passwd_hash_scram(const uint8_t *password, size_t len, uint32_t iterations,
		      char out[PASSWD_HASH_TEXT_MAX]);

#endif
