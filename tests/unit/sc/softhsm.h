/*
 * Test helper: a softhsm2 store in a temporary directory (SOFTHSM2_CONF)
 * with the Security Center's two tokens, made with softhsm2-util and
 * OpenSC's pkcs11-tool as SECURITY-DESIGN.md 4.3 describes: "moat-ca" with
 * the P-256 key "ca" and "moat-tok" with the Ed25519 key "token", user PIN
 * 123456 in the 0600 file pin. Header-only (static functions).
 */
#ifndef MOAT_TESTS_SC_SOFTHSM_H
#define MOAT_TESTS_SC_SOFTHSM_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char hsm_dir[64];
static const char *hsm_module; /* NULL: softhsm2 or pkcs11-tool missing */

static const char *hsm_path(const char *name)
{
	static char slots[8][128];
	static unsigned next;
	char *p = slots[next++ % 8];

	snprintf(p, 128, "%s/%s", hsm_dir, name);
	return p;
}

static int hsm_run(const char *cmd)
{
	char full[1024];

	snprintf(full, sizeof(full), "%s >/dev/null 2>&1", cmd);
	return system(full) == 0 ? 0 : -1;
}

/* Builds the store; 0 also when softhsm2 is missing (hsm_module stays NULL). */
static int hsm_setup(void)
{
	static const char *const modules[] = {"/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so",
					      "/usr/lib/aarch64-linux-gnu/softhsm/libsofthsm2.so",
					      "/usr/lib/softhsm/libsofthsm2.so"};
	char cmd[768];
	FILE *f;

	for (size_t i = 0; i < sizeof(modules) / sizeof(modules[0]) && hsm_module == NULL; i++)
		if (access(modules[i], R_OK) == 0)
			hsm_module = modules[i];
	if (hsm_module == NULL || hsm_run("command -v softhsm2-util") < 0 ||
	    hsm_run("command -v pkcs11-tool") < 0) {
		hsm_module = NULL;
		return 0;
	}
	strcpy(hsm_dir, "/tmp/moat-hsm-XXXXXX");
	if (mkdtemp(hsm_dir) == NULL || mkdir(hsm_path("tokens"), 0700) != 0)
		return -1;
	f = fopen(hsm_path("softhsm2.conf"), "w");
	if (f == NULL)
		return -1;
	fprintf(f, "directories.tokendir = %s\nobjectstore.backend = file\nlog.level = ERROR\n",
		hsm_path("tokens"));
	fclose(f);
	setenv("SOFTHSM2_CONF", hsm_path("softhsm2.conf"), 1);
	unsetenv("MOAT_SC_PIN");
	f = fopen(hsm_path("pin"), "w");
	if (f == NULL || fputs("123456\n", f) < 0 || fclose(f) != 0 ||
	    chmod(hsm_path("pin"), 0600) != 0)
		return -1;
	for (int t = 0; t < 2; t++) {
		const char *label = t == 0 ? "moat-ca" : "moat-tok";

		snprintf(
		    cmd, sizeof(cmd),
		    "softhsm2-util --init-token --free --label %s --pin 123456 --so-pin 654321",
		    label);
		if (hsm_run(cmd) < 0)
			return -1;
		snprintf(cmd, sizeof(cmd),
			 "pkcs11-tool --module %s --token-label %s -l --pin 123456 --keypairgen "
			 "--key-type %s --label %s --id %s",
			 hsm_module, label, t == 0 ? "EC:prime256v1" : "EC:edwards25519",
			 t == 0 ? "ca" : "token", t == 0 ? "01" : "02");
		if (hsm_run(cmd) < 0)
			return -1;
	}
	return 0;
}

static void hsm_teardown(void)
{
	char cmd[128];

	if (hsm_dir[0] == '\0')
		return;
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", hsm_dir);
	(void)hsm_run(cmd);
}

#endif
