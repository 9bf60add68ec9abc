/*
 * Base64 and base64url, strict in what they read (see base64.h).
 */
#include "base/base64.h"

#include <moat/error.h>

static const char std_chars[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
static const char url_chars[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

size_t b64_encoded_len(size_t n, enum b64_alphabet a)
{
	if (a == B64_STD)
		return (n + 2) / 3 * 4;
	return n / 3 * 4 + (n % 3 == 0 ? 0 : n % 3 + 1);
}

size_t b64_decoded_max(size_t text_len)
{
	return text_len / 4 * 3 + (text_len % 4 > 1 ? text_len % 4 - 1 : 0);
}

size_t b64_encode(const uint8_t *in, size_t n, char *out, enum b64_alphabet a)
{
	const char *chars = a == B64_STD ? std_chars : url_chars;
	size_t o = 0, i = 0;

	for (; i + 3 <= n; i += 3) {
		uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];

		out[o++] = chars[v >> 18];
		out[o++] = chars[(v >> 12) & 63];
		out[o++] = chars[(v >> 6) & 63];
		out[o++] = chars[v & 63];
	}
	if (n - i > 0) {
		uint32_t v = (uint32_t)in[i] << 16 | (n - i == 2 ? (uint32_t)in[i + 1] << 8 : 0);

		out[o++] = chars[v >> 18];
		out[o++] = chars[(v >> 12) & 63];
		if (n - i == 2)
			out[o++] = chars[(v >> 6) & 63];
		else if (a == B64_STD)
			out[o++] = '=';
		if (a == B64_STD)
			out[o++] = '=';
	}
	out[o] = '\0';
	return o;
}

static int sextet(char c, enum b64_alphabet a)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == (a == B64_STD ? '+' : '-'))
		return 62;
	if (c == (a == B64_STD ? '/' : '_'))
		return 63;
	return -1;
}

int b64_decode(const char *text, size_t text_len, uint8_t *out, size_t out_cap,
	       enum b64_alphabet a)
{
	size_t len = text_len, o = 0;
	uint32_t acc = 0;
	unsigned bits = 0;

	if (a == B64_STD) {
		if (len % 4 != 0)
			return MOAT_E_MALFORMED;
		if (len > 0 && text[len - 1] == '=')
			len--;
		if (len > 0 && text[len - 1] == '=')
			len--;
	} else if (len % 4 == 1) {
		return MOAT_E_MALFORMED;
	}
	for (size_t i = 0; i < len; i++) {
		int v = sextet(text[i], a);

		if (v < 0)
			return MOAT_E_MALFORMED;
		acc = acc << 6 | (uint32_t)v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			if (o == out_cap)
				return MOAT_E_LIMIT;
			out[o++] = (uint8_t)(acc >> bits);
			acc &= (1u << bits) - 1;
		}
	}
	if (acc != 0)
		return MOAT_E_MALFORMED;	/* trailing bits must be zero */
	return (int)o;
}
