/*
 * Server-to-client topic aliases (MQTT 5 §3.3.2.3.4). A connection whose
 * CONNECT announced a Topic Alias Maximum gets up to that many (at most
 * ALIAS_OUT_SLOTS) aliases: the first PUBLISH of a topic carries the topic and
 * a new alias, later ones only the alias. When every alias is taken the
 * oldest assignment is reused, so a client with many topics still saves the
 * bytes of its busiest recent ones. The table lives and dies with the
 * connection: a reconnect starts afresh [MQTT-3.3.2-7].
 */
#include "broker/broker.h"

#include <stdlib.h>
#include <string.h>

static uint32_t topic_hash(struct moat_bytes t)
{
	uint32_t h = 2166136261u;	/* FNV-1a */

	for (size_t i = 0; i < t.len; i++)
		h = (h ^ t.ptr[i]) * 16777619u;
	return h;
}

void alias_out_init(struct alias_out *a, uint16_t client_max)
{
	*a = (struct alias_out){ .max = client_max < ALIAS_OUT_SLOTS ? client_max : ALIAS_OUT_SLOTS };
}

uint16_t alias_out_pick(struct alias_out *a, struct moat_bytes topic, bool *known)
{
	uint32_t h = topic_hash(topic);
	struct alias_slot *s;
	uint8_t *copy;

	*known = false;
	if (a->max == 0)
		return 0;
	for (uint16_t i = 0; i < a->used; i++) {
		s = &a->slots[i];
		if (s->hash == h && s->len == topic.len && memcmp(s->topic, topic.ptr, topic.len) == 0) {
			*known = true;
			return (uint16_t)(i + 1);
		}
	}
	if (a->slots == NULL) {
		a->slots = calloc(a->max, sizeof(*a->slots));
		if (a->slots == NULL)
			return 0;
	}
	copy = malloc(topic.len);
	if (copy == NULL)
		return 0;
	if (a->used < a->max) {
		s = &a->slots[a->used++];
	} else {
		s = &a->slots[a->next_reuse];
		a->next_reuse = (uint16_t)((a->next_reuse + 1) % a->max);
		free(s->topic);
	}
	memcpy(copy, topic.ptr, topic.len);
	*s = (struct alias_slot){ .hash = h, .len = topic.len, .topic = copy };
	return (uint16_t)(s - a->slots + 1);
}

void alias_out_forget(struct alias_out *a, uint16_t alias)
{
	struct alias_slot *s = &a->slots[alias - 1];

	free(s->topic);
	/* an impossible hash/length pair keeps the slot from matching until reused */
	*s = (struct alias_slot){ .len = SIZE_MAX };
}

void alias_out_fini(struct alias_out *a)
{
	for (uint16_t i = 0; i < a->used; i++)
		free(a->slots[i].topic);
	free(a->slots);
	*a = (struct alias_out){ 0 };
}
