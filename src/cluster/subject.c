/*
 * Topic <-> subject escaping (see subject.h).
 */
#include "cluster/subject.h"

#include <stdint.h>

#include <moat/error.h>

#include "base/text.h"

static const char hex[] = "0123456789ABCDEF";

static int hex_value(uint8_t c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Appends one level's token. */
static int put_level(struct buf *out, const uint8_t *p, size_t n)
{
	if (n == 0)
		return buf_append(out, "=", 1);
	for (size_t i = 0; i < n; i++) {
		uint8_t esc[3] = {'=', (uint8_t)hex[p[i] >> 4], (uint8_t)hex[p[i] & 15]};
		int rc =
		    text_is_name_char(p[i]) ? buf_append(out, &p[i], 1) : buf_append(out, esc, 3);

		if (rc < 0)
			return rc;
	}
	return MOAT_OK;
}

int subject_from_topic(struct buf *out, struct moat_bytes topic)
{
	size_t start = 0;

	for (size_t i = 0; i <= topic.len; i++) {
		int rc;

		if (i < topic.len && topic.ptr[i] != '/')
			continue;
		if (start > 0 && (rc = buf_append(out, ".", 1)) < 0)
			return rc;
		if ((rc = put_level(out, topic.ptr + start, i - start)) < 0)
			return rc;
		start = i + 1;
	}
	return MOAT_OK;
}

/* Appends the level that token <p>, <n> encodes. */
static int get_level(struct buf *out, const uint8_t *p, size_t n)
{
	if (n == 1 && p[0] == '=')
		return MOAT_OK;
	if (n == 0)
		return MOAT_E_MALFORMED;
	for (size_t i = 0; i < n; i++) {
		uint8_t c = p[i];
		int rc;

		if (c == '=') {
			int hi = i + 2 < n ? hex_value(p[i + 1]) : -1;
			int lo = hi >= 0 ? hex_value(p[i + 2]) : -1;

			/* only the escapes put_level writes: the mapping stays one to one */
			if (lo < 0 || text_is_name_char((uint8_t)(hi << 4 | lo)))
				return MOAT_E_MALFORMED;
			c = (uint8_t)(hi << 4 | lo);
			i += 2;
		} else if (!text_is_name_char(c)) {
			return MOAT_E_MALFORMED;
		}
		if ((rc = buf_append(out, &c, 1)) < 0)
			return rc;
	}
	return MOAT_OK;
}

int subject_to_topic(struct buf *out, struct moat_bytes tokens)
{
	size_t start = 0;

	for (size_t i = 0; i <= tokens.len; i++) {
		int rc;

		if (i < tokens.len && tokens.ptr[i] != '.')
			continue;
		if (start > 0 && (rc = buf_append(out, "/", 1)) < 0)
			return rc;
		if ((rc = get_level(out, tokens.ptr + start, i - start)) < 0)
			return rc;
		start = i + 1;
	}
	return MOAT_OK;
}

int subject_from_filter(struct buf *out, struct moat_bytes filter, bool *exact)
{
	size_t start = 0;

	*exact = true;
	for (size_t i = 0; i <= filter.len; i++) {
		const uint8_t *lvl = filter.ptr + start;
		size_t n = i - start;
		int rc;

		if (i < filter.len && filter.ptr[i] != '/')
			continue;
		if (start > 0 && (rc = buf_append(out, ".", 1)) < 0)
			return rc;
		if (n == 1 && (lvl[0] == '+' || lvl[0] == '#')) {
			/* see subject.h for the two inexact cases */
			if (lvl[0] == '#' || start == 0)
				*exact = false;
			rc = buf_append(out, lvl[0] == '+' ? "*" : ">", 1);
		} else {
			rc = put_level(out, lvl, n);
		}
		if (rc < 0)
			return rc;
		start = i + 1;
	}
	return MOAT_OK;
}
