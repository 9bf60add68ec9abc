/*
 * Small strict parsers for text from files and the network.
 */
#ifndef MOAT_BASE_TEXT_H
#define MOAT_BASE_TEXT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Parses the <n> characters at <s> as a decimal 1..UINT32_MAX without sign
 * or leading zeros. False for anything else. */
bool text_parse_u32(const char *s, size_t n, uint32_t *out);

#endif
