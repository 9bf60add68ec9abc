/*
 * libFuzzer target for the Security Center's admin channel: the input is
 * one untrusted request line as a peer on DIR/admin.sock sends it, handled
 * by admin_handle_line over a scratch SC (registry, CA, token key, policy
 * file in a temporary directory, no daemon hooks). Every input must get one
 * JSON object with a boolean "ok", and nothing may leak.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <moat/error.h>

#include "sc/admin_impl.h"
#include "sc/ca.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char dir[64], policy[96];
static struct registry *reg;
static struct signer *ca_key, *tok;
static struct ca *ca;

static void cleanup(void)
{
	char cmd[96];

	ca_destroy(ca);
	signer_destroy(ca_key);
	signer_destroy(tok);
	reg_close(reg);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	if (system(cmd) != 0)
		fprintf(stderr, "could not remove %s\n", dir);
}

static void init(void)
{
	struct moat_diag d;
	char path[96];

	snprintf(dir, sizeof(dir), "/tmp/moat-fuzz-admin-XXXXXX");
	if (mkdtemp(dir) == NULL)
		abort();
	snprintf(path, sizeof(path), "%s/registry.db", dir);
	if (reg_open(&reg, path, &d) != MOAT_OK)
		abort();
	snprintf(path, sizeof(path), "%s/ca.key", dir);
	if (signer_file_create(&ca_key, path, SIGNER_ECDSA_P256, &d) != MOAT_OK ||
	    ca_create(&ca, ca_key, "fuzz", 0, (int64_t)time(NULL), &d) != MOAT_OK)
		abort();
	snprintf(path, sizeof(path), "%s/token.key", dir);
	if (signer_file_create(&tok, path, SIGNER_ED25519, &d) != MOAT_OK)
		abort();
	snprintf(policy, sizeof(policy), "%s/policies.json", dir);
	atexit(cleanup);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct sc_admin_ctx ctx;
	cJSON *res;
	char *text;

	if (reg == NULL)
		init();
	ctx = (struct sc_admin_ctx){.dir = dir,
				    .reg = reg,
				    .ca = ca,
				    .token_signer = tok,
				    .policy_file = policy,
				    .broker_url = "mqtts://fuzz:8883"};
	text = admin_handle_line(&ctx, "fuzz", (const char *)data, size);
	if (text == NULL)
		abort();
	res = cJSON_Parse(text);
	if (!cJSON_IsBool(cJSON_GetObjectItem(res, "ok")))
		abort();
	cJSON_Delete(res);
	cJSON_free(text);
	return 0;
}
