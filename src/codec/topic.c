/*
 * Topic validation and matching (see topic.h). Iterative, so the depth of a
 * topic costs time, never stack (CVE-2019-11779).
 */
#include "codec/topic.h"

#include <string.h>

#include <moat/error.h>

#include "codec/utf8.h"

bool topic_name_is_valid(struct moat_bytes t)
{
	if (t.len == 0 || t.len > 65535)
		return false;
	if (memchr(t.ptr, '+', t.len) != NULL || memchr(t.ptr, '#', t.len) != NULL)
		return false;
	return utf8_is_valid_mqtt(t);
}

bool topic_filter_is_valid(struct moat_bytes f)
{
	if (f.len == 0 || f.len > 65535)
		return false;
	for (size_t i = 0; i < f.len; i++) {
		bool level_start = i == 0 || f.ptr[i - 1] == '/';
		bool level_end = i + 1 == f.len || f.ptr[i + 1] == '/';

		if (f.ptr[i] == '+' && !(level_start && level_end))
			return false;
		if (f.ptr[i] == '#' && !(level_start && i + 1 == f.len))
			return false;
	}
	return utf8_is_valid_mqtt(f);
}

int topic_share_parse(struct moat_bytes f, struct moat_bytes *group, struct moat_bytes *inner)
{
	static const char prefix[] = "$share/";
	const size_t plen = sizeof(prefix) - 1;
	const uint8_t *slash;

	if (f.len < plen || memcmp(f.ptr, prefix, plen) != 0)
		return MOAT_E_NOTFOUND;
	slash = memchr(f.ptr + plen, '/', f.len - plen);
	if (slash == NULL)
		return MOAT_E_PROTOCOL;
	*group = (struct moat_bytes){ f.ptr + plen, (size_t)(slash - (f.ptr + plen)) };
	*inner = (struct moat_bytes){ slash + 1, f.len - plen - group->len - 1 };
	if (group->len == 0 || memchr(group->ptr, '+', group->len) != NULL ||
	    memchr(group->ptr, '#', group->len) != NULL || !topic_filter_is_valid(*inner))
		return MOAT_E_PROTOCOL;
	return MOAT_OK;
}

bool topic_matches(struct moat_bytes filter, struct moat_bytes name)
{
	size_t fi = 0, ni = 0;

	if (name.len > 0 && name.ptr[0] == '$' && filter.len > 0 &&
	    (filter.ptr[0] == '+' || filter.ptr[0] == '#'))
		return false;
	for (;;) {
		if (fi == filter.len)
			return ni == name.len;
		if (filter.ptr[fi] == '#')
			return true;	/* also matches the parent: "a/#" matches "a" */
		if (filter.ptr[fi] == '+') {
			while (ni < name.len && name.ptr[ni] != '/')
				ni++;
			fi++;
		} else {
			while (fi < filter.len && filter.ptr[fi] != '/') {
				if (ni == name.len || name.ptr[ni] != filter.ptr[fi])
					return false;
				fi++;
				ni++;
			}
			if (ni < name.len && name.ptr[ni] != '/')
				return false;
		}
		/* both sit at a '/' or at their end */
		if (fi == filter.len)
			return ni == name.len;
		if (ni == name.len) {
			/* "a/#" matches "a" [MQTT-4.7.1-2] */
			return filter.len - fi == 2 && filter.ptr[fi + 1] == '#';
		}
		fi++;
		ni++;
	}
}

size_t topic_levels(struct moat_bytes t)
{
	size_t n = 1;

	for (size_t i = 0; i < t.len; i++)
		n += t.ptr[i] == '/';
	return n;
}
