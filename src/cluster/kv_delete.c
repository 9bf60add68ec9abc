/*
 * Conditional deletes of key-value entries (see kv_delete.h).
 */
#include "cluster/kv_delete.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

natsStatus cluster_kv_delete_at(jsCtx *js, const char *bucket, const char *key, uint64_t rev,
				jsErrCode *jerr)
{
	size_t len = strlen("$KV..") + strlen(bucket) + strlen(key) + 1;
	char *subject = malloc(len), seq[24];
	natsMsg *nm = NULL;
	natsStatus s = NATS_NO_MEMORY;

	*jerr = 0;
	if (subject == NULL)
		return s;
	snprintf(subject, len, "$KV.%s.%s", bucket, key);
	snprintf(seq, sizeof(seq), "%" PRIu64, rev);
	s = natsMsg_Create(&nm, subject, NULL, NULL, 0);
	if (s == NATS_OK)
		s = natsMsgHeader_Set(nm, "KV-Operation", "DEL");
	if (s == NATS_OK)
		s = natsMsgHeader_Set(nm, "Nats-Expected-Last-Subject-Sequence", seq);
	if (s == NATS_OK)
		s = js_PublishMsg(NULL, js, nm, NULL, jerr);
	natsMsg_Destroy(nm);
	free(subject);
	return s;
}
