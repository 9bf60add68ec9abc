/*
 * Conditional deletes of key-value entries (see kv_delete.h).
 */
#include "cluster/kv_delete.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The delete marker of <key> in <bucket> at revision <rev>, in *<nm>. */
static natsStatus delete_marker(natsMsg **nm, const char *bucket, const char *key, uint64_t rev)
{
	size_t len = strlen("$KV..") + strlen(bucket) + strlen(key) + 1;
	char *subject = malloc(len), seq[24];
	natsStatus s = NATS_NO_MEMORY;

	*nm = NULL;
	if (subject == NULL)
		return s;
	snprintf(subject, len, "$KV.%s.%s", bucket, key);
	snprintf(seq, sizeof(seq), "%" PRIu64, rev);
	s = natsMsg_Create(nm, subject, NULL, NULL, 0);
	if (s == NATS_OK)
		s = natsMsgHeader_Set(*nm, "KV-Operation", "DEL");
	if (s == NATS_OK)
		s = natsMsgHeader_Set(*nm, "Nats-Expected-Last-Subject-Sequence", seq);
	free(subject);
	return s;
}

natsStatus cluster_kv_delete_at(jsCtx *js, const char *bucket, const char *key, uint64_t rev,
				jsErrCode *jerr)
{
	natsMsg *nm = NULL;
	natsStatus s = delete_marker(&nm, bucket, key, rev);

	*jerr = 0;
	if (s == NATS_OK)
		s = js_PublishMsg(NULL, js, nm, NULL, jerr);
	natsMsg_Destroy(nm);
	return s;
}

natsStatus cluster_kv_delete_at_async(jsCtx *js, const char *bucket, const char *key,
				      uint64_t rev)
{
	natsMsg *nm = NULL;
	natsStatus s = delete_marker(&nm, bucket, key, rev);

	if (s == NATS_OK)
		s = js_PublishMsgAsync(js, &nm, NULL);
	natsMsg_Destroy(nm); /* NULL once the library took it */
	return s;
}
