/*
 * Small strict parsers for text from files and the network, and copying
 * counted bytes into C strings.
 */
#ifndef MOAT_BASE_TEXT_H
#define MOAT_BASE_TEXT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <moat/bytes.h>

/* Parses the <n> characters at <s> as a decimal 1..UINT32_MAX without sign
 * or leading zeros. False for anything else. */
bool text_parse_u32(const char *s, size_t n, uint32_t *out);

/* Whether <c> is one of A-Z a-z 0-9 '-' '_': the bytes a NATS subject
 * token, stream or bucket name takes as they are (cluster names, escaping). */
bool text_is_name_char(uint8_t c);
/* Whether <s> is 1..<max> such characters: a cluster's or a node's name. */
bool text_is_name(const char *s, size_t max);

/* A NUL-terminated copy of <b> (the caller frees it), or NULL on out of memory. */
char *text_dup_bytes(struct moat_bytes b);

#endif
