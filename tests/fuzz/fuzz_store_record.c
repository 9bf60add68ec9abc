/*
 * libFuzzer target for the broker's store records (src/broker/record.c):
 * whatever bytes a damaged store holds, rec_check judges them without
 * reading out of bounds, and a session record it finds sound yields its
 * role and attribute lists. Input: a mode byte (odd: the value's CRC is
 * recomputed first, so the fuzzer also reaches the checks behind it), the
 * key's length, the key, then the value.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <zlib.h>

#include "broker/record.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fix_crc(const uint8_t *key, size_t klen, uint8_t *val, size_t vlen)
{
	uLong crc = crc32(0L, Z_NULL, 0);

	crc = crc32_z(crc, key, klen);
	crc = crc32_z(crc, val, vlen - 4);
	val[vlen - 4] = (uint8_t)(crc >> 24);
	val[vlen - 3] = (uint8_t)(crc >> 16);
	val[vlen - 2] = (uint8_t)(crc >> 8);
	val[vlen - 1] = (uint8_t)crc;
}

static void free_strv(char **v)
{
	for (size_t i = 0; v != NULL && v[i] != NULL; i++)
		free(v[i]);
	free(v);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct rec_session s;
	const char *why;
	struct rd body;
	uint8_t *val;
	size_t klen, vlen;
	bool nomem;

	if (size < 2 || (size_t)data[1] > size - 2)
		return 0;
	klen = data[1];
	vlen = size - 2 - klen;
	val = malloc(vlen + 1); /* never 0 bytes */
	if (val == NULL)
		return 0;
	memcpy(val, data + 2 + klen, vlen);
	if ((data[0] & 1) && vlen >= 5)
		fix_crc(data + 2, klen, val, vlen);
	if (rec_check(data + 2, klen, val, vlen) == NULL && klen > 0 && data[2] == REC_SESSION &&
	    rec_open(data + 2, klen, val, vlen, &body, &why) == 0 &&
	    rec_get_session(&body, &s, &why) == 0) {
		char **roles = rec_strv(s.ident.roles, s.ident.role_count, &nomem);
		char **attrs = rec_strv(s.ident.attrs, s.ident.attr_count, &nomem);

		for (size_t i = 0; roles != NULL && i < s.ident.role_count; i++)
			if (roles[i] == NULL || strlen(roles[i]) > s.ident.roles.len)
				abort(); /* each string is a NUL-free piece of the run */
		free_strv(roles);
		free_strv(attrs);
	}
	free(val);
	return 0;
}
