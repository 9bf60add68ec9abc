/*
 * libFuzzer target for a node's status value as a node or `moat ctl cluster
 * status` reads it from the cluster's nodes' bucket (src/cluster/
 * node_status.c): any bytes are parsed without reading past them, and a
 * value that parses is written and read again to the same figures.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cluster/node_status.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct node_status ns, again;
	char json[512];
	size_t n;

	if (!node_status_parse((const char *)data, size, &ns))
		return 0;
	n = node_status_format(&ns, json, sizeof(json));
	if (n == 0 || !node_status_parse(json, n, &again) || memcmp(&ns, &again, sizeof(ns)) != 0)
		abort();
	return 0;
}
