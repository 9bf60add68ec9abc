/*
 * sc_admin_serve: a test program that runs the SC admin channel without the
 * daemon (NULL hooks) over an SC directory made by `moat-sc init`, for
 * tests/integration/test_ctl.py. Prints "ready" once DIR/admin.sock
 * listens, and stops when its standard input closes.
 *
 *   sc_admin_serve DIR [BROKER_URL [AUDIENCE]]
 */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <moat/error.h>

#include "sc/admin.h"
#include "sc/ca.h"

int main(int argc, char **argv)
{
	struct moat_diag d = {{0}};
	struct registry *reg = NULL;
	struct signer *ca_key = NULL, *tok = NULL;
	struct ca *ca = NULL;
	struct sc_admin *admin = NULL;
	char reg_path[4096], ca_key_path[4096], ca_path[4096], tok_path[4096], policy[4096];
	char c;
	int rc;

	if (argc < 2 || argc > 4) {
		fprintf(stderr, "usage: sc_admin_serve DIR [BROKER_URL [AUDIENCE]]\n");
		return 2;
	}
	snprintf(reg_path, sizeof(reg_path), "%s/registry.db", argv[1]);
	snprintf(ca_key_path, sizeof(ca_key_path), "%s/ca.key", argv[1]);
	snprintf(ca_path, sizeof(ca_path), "%s/ca.pem", argv[1]);
	snprintf(tok_path, sizeof(tok_path), "%s/token.key", argv[1]);
	snprintf(policy, sizeof(policy), "%s/policies.json", argv[1]);
	rc = reg_open(&reg, reg_path, &d);
	if (rc == MOAT_OK)
		rc = signer_file_open(&ca_key, ca_key_path, SIGNER_ECDSA_P256, &d);
	if (rc == MOAT_OK)
		rc = ca_load(&ca, ca_key, ca_path, &d);
	if (rc == MOAT_OK)
		rc = signer_file_open(&tok, tok_path, SIGNER_ED25519, &d);
	if (rc == MOAT_OK) {
		struct sc_admin_ctx ctx = {
		    .dir = argv[1],
		    .reg = reg,
		    .ca = ca,
		    .token_signer = tok,
		    .policy_file = policy,
		    .broker_url = argc > 2 ? argv[2] : "mqtts://localhost:8883",
		    .token_audience = argc > 3 ? argv[3] : NULL,
		};

		rc = sc_admin_start(&admin, &ctx, &d);
		if (rc == MOAT_OK) {
			puts("ready");
			fflush(stdout);
			while (read(0, &c, 1) > 0)
				;
			sc_admin_stop(admin);
		}
	}
	if (rc < 0)
		fprintf(stderr, "sc_admin_serve: %s\n",
			d.msg[0] != '\0' ? d.msg : moat_strerror(rc));
	signer_destroy(tok);
	ca_destroy(ca);
	signer_destroy(ca_key);
	reg_close(reg);
	return rc < 0 ? 1 : 0;
}
