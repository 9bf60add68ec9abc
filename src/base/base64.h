/*
 * Base64 (RFC 4648 §4) and base64url (§5) encoding and strict decoding, for
 * password files, SCRAM, JWT and the WebSocket handshake. Decoding refuses
 * characters outside the alphabet, misplaced or missing padding and
 * non-zero trailing bits, so one text has one meaning.
 */
#ifndef MOAT_BASE_BASE64_H
#define MOAT_BASE_BASE64_H

#include <stddef.h>
#include <stdint.h>

enum b64_alphabet {
	B64_STD = 0,	/* + / with = padding */
	B64_URL = 1,	/* - _ without padding (JWT) */
};

/* Characters b64_encode writes for <n> bytes, without the terminating NUL. */
size_t b64_encoded_len(size_t n, enum b64_alphabet a);
/* Most bytes b64_decode can produce from <text_len> characters. */
size_t b64_decoded_max(size_t text_len);

/* Writes <n> bytes of <in> as text into <out>, which has room for
 * b64_encoded_len(n, a) + 1 characters; NUL-terminates. Returns the length. */
size_t b64_encode(const uint8_t *in, size_t n, char *out, enum b64_alphabet a);

/* Decodes <text_len> characters of <text> into <out> (room for <out_cap>
 * bytes). Returns the byte count, MOAT_E_MALFORMED for text that is not
 * canonical base64 of alphabet <a>, or MOAT_E_LIMIT when <out_cap> is short. */
int b64_decode(const char *text, size_t text_len, uint8_t *out, size_t out_cap,
	       enum b64_alphabet a);

#endif
