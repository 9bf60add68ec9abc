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

#include <moat/error.h>

#include "sc/admin_impl.h"
#include "../unit/sc/sc_fixture.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct sc_fixture sc;
static char policy[96];

static void cleanup(void)
{
	sc_fixture_close(&sc);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct sc_admin_ctx ctx;
	cJSON *res;
	char *text;

	if (sc.reg == NULL) {
		if (sc_fixture_open(&sc, "fuzz-admin") != 0)
			abort();
		snprintf(policy, sizeof(policy), "%s/policies.json", sc.dir);
		atexit(cleanup);
	}
	ctx = (struct sc_admin_ctx){.dir = sc.dir,
				    .reg = sc.reg,
				    .ca = sc.ca,
				    .token_signer = sc.tok,
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
