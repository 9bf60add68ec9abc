/*
 * Conditional deletes of key-value entries (see kv_delete.h).
 */
#include "cluster/kv_delete.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

const char *cluster_kv_subject(struct buf *out, const char *bucket, const char *key)
{
	buf_consume(out, buf_used(out));
	if (buf_append(out, "$KV.", 4) < 0 || buf_append(out, bucket, strlen(bucket)) < 0 ||
	    buf_append(out, ".", 1) < 0 || buf_append(out, key, strlen(key) + 1) < 0)
		return NULL;
	return (const char *)buf_head(out);
}

/* The delete marker of <key> in <bucket> at revision <rev>, in *<nm>. */
static natsStatus delete_marker(natsMsg **nm, const char *bucket, const char *key, uint64_t rev)
{
	struct buf subject = {0};
	char seq[24];
	natsStatus s = NATS_NO_MEMORY;

	*nm = NULL;
	snprintf(seq, sizeof(seq), "%" PRIu64, rev);
	if (cluster_kv_subject(&subject, bucket, key) != NULL)
		s = natsMsg_Create(nm, (const char *)buf_head(&subject), NULL, NULL, 0);
	if (s == NATS_OK)
		s = natsMsgHeader_Set(*nm, "KV-Operation", "DEL");
	if (s == NATS_OK)
		s = natsMsgHeader_Set(*nm, "Nats-Expected-Last-Subject-Sequence", seq);
	buf_fini(&subject);
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

natsStatus cluster_kv_delete_at_async(jsCtx *js, const char *bucket, const char *key, uint64_t rev)
{
	natsMsg *nm = NULL;
	natsStatus s = delete_marker(&nm, bucket, key, rev);

	if (s == NATS_OK)
		s = js_PublishMsgAsync(js, &nm, NULL);
	natsMsg_Destroy(nm); /* NULL once the library took it */
	return s;
}
