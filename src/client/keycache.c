/*
 * The end-to-end key cache (keycache.h): entries in memory, and their file
 * sealed with ChaCha20-Poly1305 under HKDF-SHA256(IKM = the device's X25519
 * private key, info = "moat/key-cache/1"). File layout:
 *   "MKC1" || nonce (12, random per write) || AEAD(entries) || tag (16)
 * with the magic as associated data. Entries, big-endian:
 *   count (2), then per entry: group_id (8) epoch (4) alg (4, signed)
 *   filter_len (2) filter, signed (1), max_age_s (4), not_after (8),
 *   superseded_at (8), sender_id_len (1), sender_id (6), master secret (32).
 */
#include "client/keycache.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/rand.h>

#include <moat/error.h>

#include "base/buf.h"
#include "codec/topic.h"
#include "e2e/aead.h"
#include "e2e/alg.h"

#define KC_MAGIC "MKC1"
#define KC_INFO "moat/key-cache/1"

enum {
	KC_MAGIC_LEN = 4,
	KC_HEAD_LEN = KC_MAGIC_LEN + E2E_NONCE_LEN,
	KC_ENTRY_FIXED = 8 + 4 + 4 + 2 + 1 + 4 + 8 + 8 + 1 + E2E_SENDER_ID_MAX + 32,
	KC_FILE_MAX = KC_HEAD_LEN + 2 + KEYCACHE_MAX_ENTRIES * (KC_ENTRY_FIXED + KEYREL_TOPIC_MAX) +
		      E2E_TAG_LEN,
};

static int derive_file_key(const uint8_t seed[32], uint8_t key[32])
{
	EVP_PKEY_CTX *p = EVP_PKEY_CTX_new_id(EVP_PKEY_HKDF, NULL);
	size_t len = 32;
	int ok;

	if (p == NULL)
		return MOAT_E_NOMEM;
	ok = EVP_PKEY_derive_init(p) > 0 && EVP_PKEY_CTX_set_hkdf_md(p, EVP_sha256()) > 0 &&
	     EVP_PKEY_CTX_set1_hkdf_key(p, seed, 32) > 0 &&
	     EVP_PKEY_CTX_add1_hkdf_info(p, (const unsigned char *)KC_INFO, sizeof(KC_INFO) - 1) >
		 0 &&
	     EVP_PKEY_derive(p, key, &len) > 0 && len == 32;
	EVP_PKEY_CTX_free(p);
	return ok ? MOAT_OK : MOAT_E_CRYPTO;
}

static void put_be(uint8_t *p, uint64_t v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		p[i] = (uint8_t)(v >> (8 * (n - 1 - i)));
}

static uint64_t get_be(const uint8_t *p, size_t n)
{
	uint64_t v = 0;

	for (size_t i = 0; i < n; i++)
		v = v << 8 | p[i];
	return v;
}

/* Appends the plaintext of every entry to <b> (secret: the caller wipes). */
static int encode_entries(const struct keycache *kc, struct buf *b)
{
	uint8_t n[2];

	put_be(n, kc->n, 2);
	if (buf_append(b, n, 2) < 0)
		return MOAT_E_NOMEM;
	for (size_t i = 0; i < kc->n; i++) {
		const struct kc_entry *e = &kc->e[i];
		size_t fl = strlen(e->filter);
		uint8_t f[KC_ENTRY_FIXED + KEYREL_TOPIC_MAX], *p = f;

		memcpy(p, e->group.group_id, 8);
		put_be(p + 8, e->group.epoch, 4);
		put_be(p + 12, (uint32_t)e->alg, 4);
		put_be(p + 16, fl, 2);
		p += 18;
		memcpy(p, e->filter, fl);
		p += fl;
		*p++ = e->is_signed ? 1 : 0;
		put_be(p, e->max_age_s, 4);
		put_be(p + 4, (uint64_t)e->not_after, 8);
		put_be(p + 12, (uint64_t)e->superseded_at, 8);
		p[20] = (uint8_t)e->sender_id_len;
		memcpy(p + 21, e->sender_id, E2E_SENDER_ID_MAX);
		memcpy(p + 21 + E2E_SENDER_ID_MAX, e->group.master_secret, 32);
		p += 21 + E2E_SENDER_ID_MAX + 32;
		int rc = buf_append(b, f, (size_t)(p - f));

		OPENSSL_cleanse(f, sizeof(f));
		if (rc < 0)
			return MOAT_E_NOMEM;
	}
	return MOAT_OK;
}

/* Parses the decrypted entries <p>/<len> into <kc>; MOAT_E_PARSE when they do not fit the
 * layout or a value is out of range. */
static int decode_entries(struct keycache *kc, const uint8_t *p, size_t len)
{
	size_t n, off = 2;

	if (len < 2)
		return MOAT_E_PARSE;
	n = (size_t)get_be(p, 2);
	if (n > KEYCACHE_MAX_ENTRIES)
		return MOAT_E_PARSE;
	kc->e = calloc(n > 0 ? n : 1, sizeof(*kc->e));
	if (kc->e == NULL)
		return MOAT_E_NOMEM;
	kc->cap = n > 0 ? n : 1;
	for (size_t i = 0; i < n; i++) {
		struct kc_entry *e = &kc->e[i];
		size_t fl;

		if (len - off < 18)
			return MOAT_E_PARSE;
		fl = (size_t)get_be(p + off + 16, 2);
		if (fl == 0 || fl > KEYREL_TOPIC_MAX || len - off < KC_ENTRY_FIXED + fl)
			return MOAT_E_PARSE;
		memcpy(e->group.group_id, p + off, 8);
		e->group.epoch = (uint32_t)get_be(p + off + 8, 4);
		e->alg = (int)(int32_t)(uint32_t)get_be(p + off + 12, 4);
		off += 18;
		memcpy(e->filter, p + off, fl);
		e->filter[fl] = '\0';
		off += fl;
		if (p[off] > 1 || !topic_filter_is_valid((struct moat_bytes){p + off - fl, fl}))
			return MOAT_E_PARSE;
		e->is_signed = p[off] == 1;
		e->max_age_s = (uint32_t)get_be(p + off + 1, 4);
		e->not_after = (int64_t)get_be(p + off + 5, 8);
		e->superseded_at = (int64_t)get_be(p + off + 13, 8);
		e->sender_id_len = p[off + 21];
		memcpy(e->sender_id, p + off + 22, E2E_SENDER_ID_MAX);
		memcpy(e->group.master_secret, p + off + 22 + E2E_SENDER_ID_MAX, 32);
		off += 22 + E2E_SENDER_ID_MAX + 32;
		kc->n = i + 1;
		if (!e2e_alg_is_valid(e->alg) || e->sender_id_len > E2E_SENDER_ID_MAX)
			return MOAT_E_PARSE;
	}
	return off == len ? MOAT_OK : MOAT_E_PARSE;
}

static void drop_all(struct keycache *kc)
{
	if (kc->e != NULL)
		OPENSSL_cleanse(kc->e, kc->cap * sizeof(*kc->e));
	free(kc->e);
	kc->e = NULL;
	kc->n = kc->cap = 0;
}

/* Reads the whole file at <path> into <b>; MOAT_E_NOTFOUND when it does not exist. */
static int read_file(const char *path, struct buf *b)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	int rc = MOAT_OK;

	if (fd < 0)
		return errno == ENOENT ? MOAT_E_NOTFOUND : MOAT_E_IO;
	for (;;) {
		ssize_t got;

		if (buf_used(b) > KC_FILE_MAX) {
			rc = MOAT_E_PARSE;
			break;
		}
		if (buf_reserve(b, 4096) < 0) {
			rc = MOAT_E_NOMEM;
			break;
		}
		got = read(fd, b->data + b->len, 4096);
		if (got < 0 && errno == EINTR)
			continue;
		if (got < 0) {
			rc = MOAT_E_IO;
			break;
		}
		if (got == 0)
			break;
		b->len += (size_t)got;
	}
	close(fd);
	return rc;
}

/* Opens and parses the sealed file in <b> into <kc>. */
static int load(struct keycache *kc, const struct buf *b)
{
	const uint8_t *p = buf_head(b);
	size_t len = buf_used(b), ptlen;
	uint8_t *pt;
	int rc;

	if (len < KC_HEAD_LEN + 2 + E2E_TAG_LEN || memcmp(p, KC_MAGIC, KC_MAGIC_LEN) != 0)
		return MOAT_E_PARSE;
	ptlen = len - KC_HEAD_LEN - E2E_TAG_LEN;
	pt = malloc(ptlen);
	if (pt == NULL)
		return MOAT_E_NOMEM;
	rc = e2e_aead_open(E2E_ALG_CHACHA20_POLY1305, kc->file_key, p + KC_MAGIC_LEN,
			   (struct moat_bytes){p, KC_MAGIC_LEN},
			   (struct moat_bytes){p + KC_HEAD_LEN, len - KC_HEAD_LEN}, pt);
	if (rc == MOAT_OK)
		rc = decode_entries(kc, pt, ptlen);
	else
		rc = MOAT_E_PARSE;
	OPENSSL_cleanse(pt, ptlen);
	free(pt);
	if (rc < 0)
		drop_all(kc);
	return rc;
}

int keycache_open(struct keycache *kc, const char *path, const uint8_t agree_seed[32],
		  bool *discarded)
{
	struct buf b = {0};
	int rc;

	*kc = (struct keycache){0};
	if (discarded != NULL)
		*discarded = false;
	kc->path = strdup(path);
	if (kc->path == NULL)
		return MOAT_E_NOMEM;
	rc = derive_file_key(agree_seed, kc->file_key);
	if (rc < 0)
		goto err;
	rc = read_file(path, &b);
	if (rc == MOAT_E_NOTFOUND) {
		rc = MOAT_OK;
	} else if (rc == MOAT_OK || rc == MOAT_E_PARSE) {
		if (rc == MOAT_OK)
			rc = load(kc, &b);
		if (rc == MOAT_E_PARSE) {
			/* damaged or foreign: never trusted, fetched again */
			if (discarded != NULL)
				*discarded = true;
			if (unlink(path) < 0 && errno != ENOENT)
				rc = MOAT_E_IO;
			else
				rc = MOAT_OK;
		}
	}
	buf_fini(&b);
	if (rc < 0)
		goto err;
	return MOAT_OK;
err:
	keycache_fini(kc);
	return rc;
}

static int write_all(int fd, const uint8_t *p, size_t len)
{
	while (len > 0) {
		ssize_t w = write(fd, p, len);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return MOAT_E_IO;
		p += w;
		len -= (size_t)w;
	}
	return MOAT_OK;
}

/* fsyncs the directory holding <path> so the rename is durable. */
static int sync_dir(const char *path)
{
	char dir[4096];
	const char *slash = strrchr(path, '/');
	int fd, rc;

	if (slash == NULL)
		snprintf(dir, sizeof(dir), ".");
	else if ((size_t)(slash - path) >= sizeof(dir))
		return MOAT_E_IO;
	else
		snprintf(dir, sizeof(dir), "%.*s", slash == path ? 1 : (int)(slash - path), path);
	fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return MOAT_E_IO;
	rc = fsync(fd) == 0 ? MOAT_OK : MOAT_E_IO;
	close(fd);
	return rc;
}

int keycache_save(const struct keycache *kc)
{
	struct buf pt = {0}, out = {0};
	char tmp[4200];
	int fd, rc;

	if (snprintf(tmp, sizeof(tmp), "%s.tmp", kc->path) >= (int)sizeof(tmp))
		return MOAT_E_IO;
	rc = encode_entries(kc, &pt);
	if (rc == MOAT_OK && buf_reserve(&out, KC_HEAD_LEN + buf_used(&pt) + E2E_TAG_LEN) < 0)
		rc = MOAT_E_NOMEM;
	if (rc == MOAT_OK) {
		uint8_t *p = out.data;

		memcpy(p, KC_MAGIC, KC_MAGIC_LEN);
		if (RAND_bytes(p + KC_MAGIC_LEN, E2E_NONCE_LEN) != 1)
			rc = MOAT_E_CRYPTO;
		else
			rc = e2e_aead_seal(E2E_ALG_CHACHA20_POLY1305, kc->file_key,
					   p + KC_MAGIC_LEN, (struct moat_bytes){p, KC_MAGIC_LEN},
					   (struct moat_bytes){buf_head(&pt), buf_used(&pt)},
					   p + KC_HEAD_LEN);
		out.len = KC_HEAD_LEN + buf_used(&pt) + E2E_TAG_LEN;
	}
	if (pt.data != NULL)
		OPENSSL_cleanse(pt.data, pt.cap);
	buf_fini(&pt);
	if (rc < 0)
		goto out;
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0) {
		rc = MOAT_E_IO;
		goto out;
	}
	rc = write_all(fd, buf_head(&out), buf_used(&out));
	if (rc == MOAT_OK && fsync(fd) != 0)
		rc = MOAT_E_IO;
	if (close(fd) != 0 && rc == MOAT_OK)
		rc = MOAT_E_IO;
	if (rc == MOAT_OK && rename(tmp, kc->path) != 0)
		rc = MOAT_E_IO;
	if (rc == MOAT_OK)
		rc = sync_dir(kc->path);
	else
		unlink(tmp);
out:
	buf_fini(&out);
	return rc;
}

struct kc_entry *keycache_find(struct keycache *kc, const uint8_t gid[COSE_GROUP_ID_LEN],
			       uint32_t epoch)
{
	for (size_t i = 0; i < kc->n; i++)
		if (kc->e[i].group.epoch == epoch &&
		    memcmp(kc->e[i].group.group_id, gid, COSE_GROUP_ID_LEN) == 0)
			return &kc->e[i];
	return NULL;
}

struct kc_entry *keycache_current(struct keycache *kc, const uint8_t gid[COSE_GROUP_ID_LEN])
{
	for (size_t i = 0; i < kc->n; i++)
		if (kc->e[i].superseded_at == 0 &&
		    memcmp(kc->e[i].group.group_id, gid, COSE_GROUP_ID_LEN) == 0)
			return &kc->e[i];
	return NULL;
}

static void remove_at(struct keycache *kc, size_t i)
{
	OPENSSL_cleanse(&kc->e[i], sizeof(kc->e[i]));
	memmove(&kc->e[i], &kc->e[i + 1], (kc->n - i - 1) * sizeof(kc->e[i]));
	kc->n--;
	OPENSSL_cleanse(&kc->e[kc->n], sizeof(kc->e[kc->n]));
}

int keycache_put(struct keycache *kc, const struct kc_entry *in, int64_t now)
{
	struct kc_entry *same = keycache_find(kc, in->group.group_id, in->group.epoch);
	struct kc_entry *cur = keycache_current(kc, in->group.group_id);

	if (same != NULL) {
		int64_t superseded = same->superseded_at;
		uint8_t sid[E2E_SENDER_ID_MAX];
		size_t sid_len = same->sender_id_len;

		memcpy(sid, same->sender_id, sizeof(sid));
		*same = *in;
		same->superseded_at = superseded;
		if (in->sender_id_len == 0 && sid_len > 0) {
			memcpy(same->sender_id, sid, sizeof(sid));
			same->sender_id_len = sid_len;
		}
		return MOAT_OK;
	}
	if (cur != NULL && in->group.epoch < cur->group.epoch)
		return MOAT_E_PROTOCOL; /* only current and previous are kept */
	if (cur != NULL) {
		/* drop the group's previous epoch: current becomes previous */
		for (size_t i = 0; i < kc->n; i++) {
			if (kc->e[i].superseded_at != 0 &&
			    memcmp(kc->e[i].group.group_id, in->group.group_id,
				   COSE_GROUP_ID_LEN) == 0) {
				if (&kc->e[i] < cur)
					cur--;
				remove_at(kc, i);
				break;
			}
		}
		cur->superseded_at = now > 0 ? now : 1;
	}
	if (kc->n == kc->cap) {
		size_t ncap = kc->cap > 0 ? kc->cap * 2 : 4;
		struct kc_entry *ne;

		if (kc->n >= KEYCACHE_MAX_ENTRIES)
			return MOAT_E_LIMIT;
		ne = calloc(ncap, sizeof(*ne));
		if (ne == NULL)
			return MOAT_E_NOMEM;
		if (kc->n > 0)
			memcpy(ne, kc->e, kc->n * sizeof(*ne));
		if (kc->e != NULL)
			OPENSSL_cleanse(kc->e, kc->cap * sizeof(*kc->e));
		free(kc->e);
		kc->e = ne;
		kc->cap = ncap;
	}
	kc->e[kc->n] = *in;
	kc->e[kc->n].superseded_at = 0;
	kc->n++;
	return MOAT_OK;
}

/* Filter rank as the SC's topic policies use it: fewer wildcards, more levels, longer. */
static void rank_of(const char *f, size_t *wild, size_t *levels, size_t *len)
{
	*wild = 0;
	*levels = 1;
	*len = strlen(f);
	for (const char *p = f; *p != '\0'; p++) {
		if (*p == '+' || *p == '#')
			(*wild)++;
		if (*p == '/')
			(*levels)++;
	}
}

static bool more_specific(const char *a, const char *b)
{
	size_t aw, al, an, bw, bl, bn;

	rank_of(a, &aw, &al, &an);
	rank_of(b, &bw, &bl, &bn);
	if (aw != bw)
		return aw < bw;
	if (al != bl)
		return al > bl;
	return an > bn;
}

struct kc_entry *keycache_for_topic(struct keycache *kc, struct moat_bytes topic)
{
	struct kc_entry *best = NULL;

	for (size_t i = 0; i < kc->n; i++) {
		struct kc_entry *e = &kc->e[i];

		if (e->superseded_at == 0 && topic_matches(moat_bytes_str(e->filter), topic) &&
		    (best == NULL || more_specific(e->filter, best->filter)))
			best = e;
	}
	return best;
}

void keycache_fini(struct keycache *kc)
{
	if (kc == NULL)
		return;
	drop_all(kc);
	OPENSSL_cleanse(kc->file_key, sizeof(kc->file_key));
	free(kc->path);
	kc->path = NULL;
}
