/*
 * Strict text parsers (see text.h).
 */
#include "base/text.h"

#include <stdlib.h>
#include <string.h>

bool text_parse_u32(const char *s, size_t n, uint32_t *out)
{
	uint64_t v = 0;

	if (n == 0 || n > 10 || s[0] == '0')
		return false;
	for (size_t i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return false;
		v = v * 10 + (uint64_t)(s[i] - '0');
	}
	if (v > UINT32_MAX)
		return false;
	*out = (uint32_t)v;
	return true;
}

bool text_is_name_char(uint8_t c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
	       c == '-' || c == '_';
}

bool text_is_name(const char *s, size_t max)
{
	size_t n = strnlen(s, max + 1);

	if (n == 0 || n > max)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!text_is_name_char((uint8_t)s[i]))
			return false;
	return true;
}

char *text_dup_bytes(struct moat_bytes b)
{
	char *s = malloc(b.len + 1);

	if (s != NULL) {
		if (b.len > 0)
			memcpy(s, b.ptr, b.len);
		s[b.len] = '\0';
	}
	return s;
}
