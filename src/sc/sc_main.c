/*
 * moat-sc: the Security Center's command line: the offline commands init
 * (directory, registry, CA, token key, storage key), thing add/renew/attrs/
 * list/show/revoke/key, crl and audit, and serve, the daemon (serve.c: key
 * release, tamper alerts, epoch and revocation pushes). Everything real
 * lives in the library (registry.c, signer.c, ca.c, groups.c, ...); this
 * file parses arguments and prints.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <openssl/crypto.h>
#include <openssl/pem.h>

#include <moat/error.h>

#include "sc/ca.h"
#include "sc/enrol.h"
#include "sc/groups.h"
#include "sc/sc_json.h"
#include "sc/sc_keys.h"
#include "sc/serve.h"

static const char usage[] =
    "usage: moat-sc [--dir DIR] COMMAND ...\n"
    "  init [--name NAME]             create DIR (0700): registry.db, ca.key + ca.pem (P-256),\n"
    "                                 token.key (Ed25519) + token.pub, store.key (group keys)\n"
    "       [--pkcs11-module SO [--pin-file FILE] [--ca-key-uri URI] [--token-key-uri URI]]\n"
    "                                 keys in PKCS#11 tokens instead (pkcs11:token=T;object=O),\n"
    "                                 recorded in DIR/sc.json; the PIN from FILE (0600) or\n"
    "                                 MOAT_SC_PIN. Keep the Ed25519 key in a token of its own\n"
    "  thing add NAME [--attr k=v]... [--csr FILE] [--broker [--san DNS:h|IP:a]...]\n"
    "            [--days N] --out OUT register NAME and issue its certificate into OUT:\n"
    "                                 cert.pem, ca.pem, and key.pem (0600) when no --csr\n"
    "  thing renew NAME [--csr FILE] [--broker [--san ...]] [--days N] --out OUT\n"
    "                                 a new certificate for NAME (the old one stays valid),\n"
    "                                 for OUT/key.pem when there is one\n"
    "  thing attrs NAME [--attr k=v]...  replace all of NAME's attributes\n"
    "  thing list [--json]\n"
    "  thing show NAME [--json]\n"
    "  thing revoke NAME [--reason unspecified|key-compromise|superseded|cessation]\n"
    "  thing key NAME [--ed25519-pub FILE] [--x25519-pub FILE]\n"
    "                                 register NAME's signing / key-agreement public keys (PEM)\n"
    "  crl --out FILE [--days N]      write the CRL (PEM) for moatd's crlfile\n"
    "  audit [--tail N] [--json]      the last N audit rows (default 20)\n"
    "  serve [--broker HOST:PORT] [--username NAME --password-file FILE]\n"
    "        [--policy-file FILE] [--epoch-period S] [--grace S] [--rate N/s]\n"
    "        [--tamper-action revoke|alert] [--broker-url URL] [--token-audience AUD]\n"
    "                                 the daemon: key and token release on $sc/req/+, tamper\n"
    "                                 alerts, $sc/epoch/<group> and $sc/revoked, and the admin\n"
    "                                 socket DIR/admin.sock for moat ctl (defaults: "
    "127.0.0.1:1883,\n"
    "                                 DIR/policies.json, 86400 s epochs, 3600 s grace, 5/s,\n"
    "                                 tokens for audience \"moat\")\n"
    "DIR defaults to $MOAT_SC_DIR. Devices' certificates last 30 days, brokers' 90.\n";

enum { ATTRS_MAX = REG_ATTRS_MAX };

struct opts {
	const char *dir, *name, *csr, *out, *reason;
	const char *pkcs11_module, *pin_file, *key_uri[2]; /* init; key_uri by enum sc_key */
	unsigned days, tail;
	/* thing key */
	const char *ed_pub, *x_pub;
	/* serve */
	const char *broker_addr, *username, *password_file, *policy_file, *tamper_action,
	    *broker_url, *token_audience;
	unsigned epoch_period, rate;
	long grace; /* -1: default */
	bool json, broker;
	const char *attrs[ATTRS_MAX + 1];
	size_t attr_count;
	const char *sans[CA_SANS_MAX + 1];
	size_t san_count;
	const char *pos[4];
	size_t pos_count;
};

struct sc {
	struct registry *reg;
	struct signer *ca_key;
	struct ca *ca;
	char actor[REG_NAME_MAX + 1];
	char path[4096];
};

/* Prints "moat-sc: <fmt>" with <arg> for its one %s; returns 2. */
static int die(const char *fmt, const char *arg)
{
	const char *at = strstr(fmt, "%s");

	fprintf(stderr, "moat-sc: %.*s%s%s\n", (int)(at - fmt), fmt, arg, at + 2);
	return 2;
}

static int report(int rc, const struct moat_diag *d)
{
	fprintf(stderr, "moat-sc: %s\n", d->msg[0] != '\0' ? d->msg : moat_strerror(rc));
	return 1;
}

static bool parse_uint(const char *s, unsigned max, unsigned *out)
{
	char *end;
	unsigned long v;

	if (s == NULL || *s < '0' || *s > '9')
		return false;
	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno != 0 || *end != '\0' || v == 0 || v > max)
		return false;
	*out = (unsigned)v;
	return true;
}

/* serve's options; false when <a> is not one of them */
static bool parse_serve_opt(const char *a, const char *v, struct opts *o, int *rc)
{
	char *end;

	*rc = 0;
	if (strcmp(a, "--username") == 0)
		o->username = v;
	else if (strcmp(a, "--password-file") == 0)
		o->password_file = v;
	else if (strcmp(a, "--policy-file") == 0)
		o->policy_file = v;
	else if (strcmp(a, "--tamper-action") == 0)
		o->tamper_action = v;
	else if (strcmp(a, "--broker-url") == 0)
		o->broker_url = v;
	else if (strcmp(a, "--token-audience") == 0)
		o->token_audience = v;
	else if (strcmp(a, "--epoch-period") == 0) {
		if (!parse_uint(v, 10 * 365 * 86400, &o->epoch_period))
			*rc = die("--epoch-period %s: seconds, 1 to ten years", v);
	} else if (strcmp(a, "--grace") == 0) {
		errno = 0;
		o->grace = strtol(v, &end, 10);
		if (*v < '0' || *v > '9' || errno != 0 || *end != '\0' || o->grace > 30 * 86400)
			*rc = die("--grace %s: seconds, 0 to 30 days", v);
	} else if (strcmp(a, "--rate") == 0) {
		char n[16];

		snprintf(n, sizeof(n), "%.*s", (int)strcspn(v, "/"), v);
		if (!parse_uint(n, 100000, &o->rate) ||
		    (v[strlen(n)] != '\0' && strcmp(v + strlen(n), "/s") != 0))
			*rc = die("--rate %s: requests per second per thing, as N or N/s", v);
	} else if (strcmp(a, "--ed25519-pub") == 0)
		o->ed_pub = v;
	else if (strcmp(a, "--x25519-pub") == 0)
		o->x_pub = v;
	else
		return false;
	return true;
}

static int parse(int argc, char **argv, struct opts *o)
{
	o->dir = getenv("MOAT_SC_DIR");
	o->grace = -1;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
		int rc;

		if (strcmp(a, "--json") == 0) {
			o->json = true;
			continue;
		}
		if (strcmp(a, "--broker") == 0 && o->pos_count > 0 &&
		    strcmp(o->pos[0], "serve") == 0) {
			if (v == NULL)
				return die("%s needs HOST:PORT", a);
			o->broker_addr = v; /* serve's --broker takes the broker's address */
			i++;
			continue;
		}
		if (strcmp(a, "--broker") == 0) {
			o->broker = true;
			continue;
		}
		if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
			fputs(usage, stdout);
			exit(0);
		}
		if (strncmp(a, "--", 2) != 0) {
			if (o->pos_count == sizeof(o->pos) / sizeof(o->pos[0]))
				return die("too many arguments at %s", a);
			o->pos[o->pos_count++] = a;
			continue;
		}
		if (v == NULL)
			return die("%s needs a value", a);
		i++;
		if (parse_serve_opt(a, v, o, &rc)) {
			if (rc != 0)
				return rc;
			continue;
		}
		if (strcmp(a, "--dir") == 0)
			o->dir = v;
		else if (strcmp(a, "--name") == 0)
			o->name = v;
		else if (strcmp(a, "--csr") == 0)
			o->csr = v;
		else if (strcmp(a, "--out") == 0)
			o->out = v;
		else if (strcmp(a, "--reason") == 0)
			o->reason = v;
		else if (strcmp(a, "--pkcs11-module") == 0)
			o->pkcs11_module = v;
		else if (strcmp(a, "--pin-file") == 0)
			o->pin_file = v;
		else if (strcmp(a, "--ca-key-uri") == 0)
			o->key_uri[SC_KEY_CA] = v;
		else if (strcmp(a, "--token-key-uri") == 0)
			o->key_uri[SC_KEY_TOKEN] = v;
		else if (strcmp(a, "--days") == 0) {
			if (!parse_uint(v, 3650, &o->days))
				return die("--days %s: a number of days, 1 to 3650", v);
		} else if (strcmp(a, "--tail") == 0) {
			if (!parse_uint(v, 100000, &o->tail))
				return die("--tail %s: a count, 1 to 100000", v);
		} else if (strcmp(a, "--attr") == 0) {
			if (o->attr_count == ATTRS_MAX)
				return die("at most %s attributes", "32");
			o->attrs[o->attr_count++] = v;
		} else if (strcmp(a, "--san") == 0) {
			if (o->san_count == CA_SANS_MAX)
				return die("at most %s SANs", "16");
			o->sans[o->san_count++] = v;
		} else {
			return die("unknown option %s (see --help)", a);
		}
	}
	if (o->pos_count == 0) {
		fputs(usage, stderr);
		return 2;
	}
	if (o->dir == NULL)
		return die("%s", "give the Security Center directory with --dir or MOAT_SC_DIR");
	return 0;
}

static const char *in_dir(struct sc *sc, const char *dir, const char *file)
{
	snprintf(sc->path, sizeof(sc->path), "%s/%s", dir, file);
	return sc->path;
}

/* Opens the registry, and the CA when <with_ca>. */
static int sc_open(struct sc *sc, const struct opts *o, bool with_ca, struct moat_diag *d)
{
	struct sc_keys keys;
	int rc;

	snprintf(sc->actor, sizeof(sc->actor), "cli:uid%u", (unsigned)geteuid());
	if (access(in_dir(sc, o->dir, "registry.db"), F_OK) != 0) {
		snprintf(d->msg, sizeof(d->msg), "%s: no registry; run moat-sc init --dir %s",
			 o->dir, o->dir);
		return MOAT_E_NOTFOUND;
	}
	rc = reg_open(&sc->reg, in_dir(sc, o->dir, "registry.db"), d);
	if (rc == MOAT_OK && with_ca)
		rc = sc_keys_load(o->dir, &keys, d);
	if (rc == MOAT_OK && with_ca)
		rc = sc_keys_open(&sc->ca_key, o->dir, &keys, SC_KEY_CA, d);
	if (rc == MOAT_OK && with_ca)
		rc = ca_load(&sc->ca, sc->ca_key, in_dir(sc, o->dir, "ca.pem"), d);
	return rc;
}

static void sc_close(struct sc *sc)
{
	ca_destroy(sc->ca);
	signer_destroy(sc->ca_key);
	reg_close(sc->reg);
}

/* init's --pkcs11-* options as sc.json will hold them, the paths absolute
 * (later commands may run elsewhere). */
static int init_keys(const struct opts *o, struct sc_keys *k, struct moat_diag *d)
{
	memset(k, 0, sizeof(*k));
	if (o->key_uri[SC_KEY_CA] == NULL && o->key_uri[SC_KEY_TOKEN] == NULL) {
		if (o->pkcs11_module == NULL && o->pin_file == NULL)
			return MOAT_OK;
		snprintf(d->msg, sizeof(d->msg),
			 "--pkcs11-module and --pin-file go with --ca-key-uri and/or "
			 "--token-key-uri");
		return MOAT_E_CONFIG;
	}
	if (o->pkcs11_module == NULL) {
		snprintf(d->msg, sizeof(d->msg),
			 "a key URI needs --pkcs11-module (the token's .so)");
		return MOAT_E_CONFIG;
	}
	if (realpath(o->pkcs11_module, k->module) == NULL ||
	    (o->pin_file != NULL && realpath(o->pin_file, k->pin_file) == NULL)) {
		snprintf(d->msg, sizeof(d->msg), "%.400s: %s",
			 k->module[0] == '\0' ? o->pkcs11_module : o->pin_file, strerror(errno));
		return MOAT_E_IO;
	}
	for (int i = 0; i < 2; i++) {
		struct p11_uri u;
		int rc = o->key_uri[i] != NULL ? p11_uri_parse(o->key_uri[i], &u, d) : MOAT_OK;

		if (rc < 0)
			return rc;
		if (o->key_uri[i] != NULL && p11_uri_format(&u, k->uri[i], sizeof(k->uri[i])) < 0)
			return MOAT_E_LIMIT;
	}
	return MOAT_OK;
}

/* Opens key <which> from its token, or creates its key file. */
static int init_key(struct sc *sc, const struct opts *o, const struct sc_keys *k, enum sc_key which,
		    struct signer **out, struct moat_diag *d)
{
	if (k->uri[which][0] != '\0')
		return sc_keys_open(out, o->dir, k, which, d);
	return signer_file_create(out,
				  in_dir(sc, o->dir, which == SC_KEY_CA ? "ca.key" : "token.key"),
				  which == SC_KEY_CA ? SIGNER_ECDSA_P256 : SIGNER_ED25519, d);
}

static int cmd_init(const struct opts *o, struct moat_diag *d)
{
	struct sc_keys keys;
	struct sc sc = {0};
	struct signer *token = NULL;
	char *pub = NULL;
	struct stat sb;
	FILE *f;
	int rc;

	if (mkdir(o->dir, 0700) != 0 && errno != EEXIST) {
		snprintf(d->msg, sizeof(d->msg), "%s: %s", o->dir, strerror(errno));
		return MOAT_E_IO;
	}
	if (stat(o->dir, &sb) != 0 || !S_ISDIR(sb.st_mode) || (sb.st_mode & 077) != 0) {
		snprintf(d->msg, sizeof(d->msg),
			 "%.400s: not a directory that only its owner can use (chmod 700)", o->dir);
		return MOAT_E_DENIED;
	}
	if (access(in_dir(&sc, o->dir, "registry.db"), F_OK) == 0) {
		snprintf(d->msg, sizeof(d->msg), "%s is initialized already", o->dir);
		return MOAT_E_DENIED;
	}
	snprintf(sc.actor, sizeof(sc.actor), "cli:uid%u", (unsigned)geteuid());
	rc = init_keys(o, &keys, d);
	if (rc == MOAT_OK)
		rc = reg_open(&sc.reg, in_dir(&sc, o->dir, "registry.db"), d);
	if (rc == MOAT_OK)
		rc = init_key(&sc, o, &keys, SC_KEY_CA, &sc.ca_key, d);
	if (rc == MOAT_OK)
		rc = ca_create(&sc.ca, sc.ca_key, o->name != NULL ? o->name : "moat", 0,
			       (int64_t)time(NULL), d);
	if (rc == MOAT_OK)
		rc = ca_write_pem_cert(ca_cert(sc.ca), in_dir(&sc, o->dir, "ca.pem"), d);
	if (rc == MOAT_OK)
		rc = init_key(&sc, o, &keys, SC_KEY_TOKEN, &token, d);
	if (rc == MOAT_OK && (pub = signer_public_pem(token)) == NULL)
		rc = MOAT_E_NOMEM;
	if (rc == MOAT_OK) {
		f = fopen(in_dir(&sc, o->dir, "token.pub"), "we");
		if (f == NULL || fputs(pub, f) < 0 || fclose(f) != 0) {
			snprintf(d->msg, sizeof(d->msg), "%.400s: could not write it", sc.path);
			rc = MOAT_E_IO;
		}
	}
	if (rc == MOAT_OK) {
		uint8_t store_key[GROUPS_STORE_KEY_LEN];

		rc = groups_store_key_load(in_dir(&sc, o->dir, "store.key"), true, store_key, d);
		OPENSSL_cleanse(store_key, sizeof(store_key));
	}
	if (rc == MOAT_OK && keys.module[0] != '\0')
		rc = sc_keys_save(o->dir, &keys, d);
	if (rc == MOAT_OK)
		rc = reg_audit_append(sc.reg, sc.actor, "sc.init", NULL, NULL, d);
	if (rc == MOAT_OK)
		printf("initialized %s: registry.db, %s, ca.pem, %s, token.pub, store.key%s\n",
		       o->dir, keys.uri[SC_KEY_CA][0] != '\0' ? keys.uri[SC_KEY_CA] : "ca.key",
		       keys.uri[SC_KEY_TOKEN][0] != '\0' ? keys.uri[SC_KEY_TOKEN] : "token.key",
		       keys.module[0] != '\0' ? ", sc.json" : "");
	free(pub);
	signer_destroy(token);
	sc_close(&sc);
	return rc;
}

/* Parses "k=v" attributes into <attrs>. */
static int parse_attrs(const struct opts *o, struct reg_attr *attrs, struct moat_diag *d)
{
	int rc = MOAT_OK;

	for (size_t i = 0; rc == MOAT_OK && i < o->attr_count; i++)
		rc = sc_parse_attr(o->attrs[i], &attrs[i], d);
	return rc;
}

/* Issues a certificate for <name> into <o->out>: with --csr from that CSR;
 * when renewing (!<create>) a bundle with a key.pem, for that key; else for
 * a key made here (written to key.pem, 0600). <create> registers the thing
 * first, once the CSR and the request are known good. */
static int issue(const struct opts *o, const char *name, bool create, struct moat_diag *d)
{
	struct reg_attr attrs[ATTRS_MAX];
	struct sc sc = {0};
	struct sc_enrol_req req = {
	    .create = create,
	    .attrs = attrs,
	    .attr_count = o->attr_count,
	    .issue =
		{
		    .thing = name,
		    .profile = o->broker ? REG_CERT_BROKER : REG_CERT_DEVICE,
		    .sans = o->sans,
		    .san_count = o->san_count,
		    .days = o->days,
		},
	};
	char keypath[4096];
	struct signer *own = NULL;
	bool reuse_key;
	EVP_PKEY *key = NULL;
	char *csr = NULL;
	size_t csr_len = 0;
	X509 *x = NULL;
	int rc;

	if (o->out == NULL) {
		snprintf(d->msg, sizeof(d->msg), "give the output directory with --out");
		return MOAT_E_INVAL;
	}
	rc = parse_attrs(o, attrs, d);
	if (rc < 0)
		return rc;
	if (mkdir(o->out, 0700) != 0 && errno != EEXIST) {
		snprintf(d->msg, sizeof(d->msg), "%s: %s", o->out, strerror(errno));
		return MOAT_E_IO;
	}
	snprintf(keypath, sizeof(keypath), "%s/key.pem", o->out);
	/* renewing a bundle made here: a new certificate for the key it has */
	reuse_key = !create && o->csr == NULL && access(keypath, F_OK) == 0;
	if (create && o->csr == NULL && access(keypath, F_OK) == 0) {
		snprintf(d->msg, sizeof(d->msg),
			 "%.400s exists; remove it or give a --out without a key", keypath);
		return MOAT_E_DENIED;
	}
	rc = sc_open(&sc, o, true, d);
	if (rc < 0)
		goto out;
	if (o->csr != NULL) {
		rc = conf_read_file(o->csr, 64 * 1024, &csr, &csr_len, d);
	} else if (reuse_key) {
		rc = signer_file_open(&own, keypath, SIGNER_ECDSA_P256, d);
		if (rc == MOAT_OK)
			rc = ca_make_csr(name, signer_pkey(own), &csr, d);
	} else {
		rc = ca_make_key_csr(name, &key, &csr, d);
	}
	if (rc == MOAT_OK && csr_len == 0)
		csr_len = strlen(csr);
	req.csr_pem = csr;
	req.csr_len = csr_len;
	if (rc == MOAT_OK)
		rc = sc_enrol(sc.ca, sc.reg, sc.actor, &req, (int64_t)time(NULL), &x, d);
	if (rc == MOAT_OK && key != NULL)
		rc = signer_write_key_file(keypath, key, d);
	if (rc == MOAT_OK)
		rc = ca_write_pem_cert(x, in_dir(&sc, o->out, "cert.pem"), d);
	if (rc == MOAT_OK)
		rc = ca_write_pem_cert(ca_cert(sc.ca), in_dir(&sc, o->out, "ca.pem"), d);
	if (rc == MOAT_OK)
		printf("%s: certificate issued into %s\n", name, o->out);
out:
	X509_free(x);
	EVP_PKEY_free(key);
	signer_destroy(own);
	free(csr);
	sc_close(&sc);
	return rc;
}

static int print_json(cJSON *j)
{
	char *text = cJSON_Print(j);

	cJSON_Delete(j);
	if (text == NULL)
		return MOAT_E_NOMEM;
	puts(text);
	cJSON_free(text);
	return MOAT_OK;
}

static int list_one(void *arg, const struct reg_thing *t)
{
	cJSON *array = arg;

	if (array != NULL) {
		cJSON_AddItemToArray(array, sc_json_thing(t));
		return MOAT_OK;
	}
	printf("%s %s", t->name, sc_status_name(t->status));
	for (size_t i = 0; i < t->attr_count; i++)
		printf(" %s=%s", t->attrs[i].name, t->attrs[i].value);
	putchar('\n');
	return MOAT_OK;
}

static int show_cert(void *arg, const struct reg_cert *c)
{
	(void)arg;
	printf("cert %s %s not_before=%lld not_after=%lld%s\n", c->serial,
	       c->profile == REG_CERT_BROKER ? "broker" : "device", (long long)c->not_before_s,
	       (long long)c->not_after_s, c->revoked_at_s != 0 ? " revoked" : "");
	return MOAT_OK;
}

static int show_key(void *arg, const struct reg_key *k)
{
	char hex[2 * REG_KEY_LEN + 1];

	(void)arg;
	for (size_t i = 0; i < REG_KEY_LEN; i++)
		snprintf(hex + 2 * i, 3, "%02x", k->pub[i]);
	printf("key %s %s\n", k->kind == REG_KEY_X25519_AGREE ? "x25519-agree" : "ed25519-sign",
	       hex);
	return MOAT_OK;
}

/* Registers the PEM public key in <path> (Ed25519 or X25519, per <kind>) to <name>. */
static int add_key(struct sc *sc, const char *name, const char *path, enum reg_key_kind kind,
		   struct moat_diag *d)
{
	int want = kind == REG_KEY_ED25519_SIGN ? EVP_PKEY_ED25519 : EVP_PKEY_X25519;
	uint8_t pub[REG_KEY_LEN];
	size_t len = sizeof(pub);
	EVP_PKEY *k = NULL;
	FILE *f = fopen(path, "re");
	int rc;

	if (f != NULL) {
		k = PEM_read_PUBKEY(f, NULL, NULL, NULL);
		fclose(f);
	}
	if (k == NULL || EVP_PKEY_get_id(k) != want ||
	    EVP_PKEY_get_raw_public_key(k, pub, &len) != 1 || len != sizeof(pub)) {
		EVP_PKEY_free(k);
		snprintf(d->msg, sizeof(d->msg), "%.300s: not an %s public key in PEM", path,
			 want == EVP_PKEY_ED25519 ? "Ed25519" : "X25519");
		return MOAT_E_INVAL;
	}
	EVP_PKEY_free(k);
	rc = reg_key_add(sc->reg, sc->actor, name, kind, pub, d);
	if (rc == MOAT_OK)
		printf("%s: %s key added\n", name,
		       kind == REG_KEY_ED25519_SIGN ? "ed25519-sign" : "x25519-agree");
	return rc;
}

static int cmd_thing(const struct opts *o, struct moat_diag *d)
{
	const char *verb = o->pos_count > 1 ? o->pos[1] : "";
	const char *name = o->pos_count > 2 ? o->pos[2] : NULL;
	struct reg_thing *t;
	struct sc sc = {0};
	cJSON *j = NULL;
	int rc;

	if (strcmp(verb, "list") != 0 && name == NULL) {
		snprintf(d->msg, sizeof(d->msg), "thing %s: give a thing name (see --help)", verb);
		return MOAT_E_INVAL;
	}
	if (strcmp(verb, "add") == 0)
		return issue(o, name, true, d);
	if (strcmp(verb, "renew") == 0)
		return issue(o, name, false, d);
	rc = sc_open(&sc, o, false, d);
	if (rc < 0)
		goto out;
	if (strcmp(verb, "list") == 0) {
		j = o->json ? cJSON_CreateArray() : NULL;
		rc = reg_thing_list(sc.reg, list_one, j, d);
		if (rc == MOAT_OK && j != NULL)
			rc = print_json(j);
		else
			cJSON_Delete(j);
	} else if (strcmp(verb, "show") == 0) {
		t = malloc(sizeof(*t));
		rc = t != NULL ? reg_thing_get(sc.reg, name, t, d) : MOAT_E_NOMEM;
		if (rc == MOAT_OK && o->json) {
			rc = sc_json_thing_full(sc.reg, name, &j, d);
			if (rc == MOAT_OK)
				rc = print_json(j);
		} else if (rc == MOAT_OK) {
			list_one(NULL, t);
			rc = reg_cert_list(sc.reg, name, show_cert, NULL, d);
			if (rc == MOAT_OK)
				rc = reg_key_list(sc.reg, name, show_key, NULL, d);
		}
		free(t);
	} else if (strcmp(verb, "attrs") == 0) {
		struct reg_attr attrs[ATTRS_MAX];

		rc = parse_attrs(o, attrs, d);
		if (rc == MOAT_OK)
			rc = reg_thing_set_attrs(sc.reg, sc.actor, name, attrs, o->attr_count, d);
		if (rc == MOAT_OK)
			printf("%s: %zu attributes set\n", name, o->attr_count);
	} else if (strcmp(verb, "revoke") == 0) {
		int reason = sc_reason_code(o->reason);

		if (reason == -1) {
			snprintf(d->msg, sizeof(d->msg),
				 "--reason: unspecified, key-compromise, superseded or cessation");
			rc = MOAT_E_INVAL;
		} else {
			rc = reg_thing_revoke(sc.reg, sc.actor, name, reason, d);
		}
		if (rc == MOAT_OK)
			printf("%s revoked; run moat-sc crl --out FILE and reload moatd (SIGHUP)\n",
			       name);
	} else if (strcmp(verb, "key") == 0) {
		rc = o->ed_pub == NULL && o->x_pub == NULL ? MOAT_E_INVAL : MOAT_OK;
		if (rc < 0)
			snprintf(d->msg, sizeof(d->msg),
				 "thing key: give --ed25519-pub and/or "
				 "--x25519-pub");
		if (rc == MOAT_OK && o->ed_pub != NULL)
			rc = add_key(&sc, name, o->ed_pub, REG_KEY_ED25519_SIGN, d);
		if (rc == MOAT_OK && o->x_pub != NULL)
			rc = add_key(&sc, name, o->x_pub, REG_KEY_X25519_AGREE, d);
	} else {
		snprintf(d->msg, sizeof(d->msg),
			 "thing %s: unknown (add, renew, attrs, list, show, revoke, key)", verb);
		rc = MOAT_E_INVAL;
	}
out:
	sc_close(&sc);
	return rc;
}

static int cmd_crl(const struct opts *o, struct moat_diag *d)
{
	struct sc sc = {0};
	int rc;

	if (o->out == NULL) {
		snprintf(d->msg, sizeof(d->msg), "crl: give the output file with --out");
		return MOAT_E_INVAL;
	}
	rc = sc_open(&sc, o, true, d);
	if (rc == MOAT_OK)
		rc = ca_write_crl(sc.ca, sc.reg, sc.actor, o->out, o->days, (int64_t)time(NULL), d);
	if (rc == MOAT_OK)
		printf("CRL written to %s\n", o->out);
	sc_close(&sc);
	return rc;
}

static int audit_one(void *arg, const struct reg_audit *a)
{
	cJSON *array = arg;

	if (array == NULL) {
		printf("%lld %s %s %s %s\n", (long long)a->time_s, a->actor, a->action,
		       a->thing[0] != '\0' ? a->thing : "-", a->detail);
		return MOAT_OK;
	}
	cJSON_AddItemToArray(array, sc_json_audit(a));
	return MOAT_OK;
}

static int cmd_audit(const struct opts *o, struct moat_diag *d)
{
	struct sc sc = {0};
	cJSON *j = o->json ? cJSON_CreateArray() : NULL;
	int rc;

	rc = sc_open(&sc, o, false, d);
	if (rc == MOAT_OK)
		rc = reg_audit_tail(sc.reg, o->tail != 0 ? o->tail : 20, audit_one, j, d);
	if (rc == MOAT_OK && j != NULL)
		rc = print_json(j);
	else
		cJSON_Delete(j);
	sc_close(&sc);
	return rc;
}

static int cmd_serve(const struct opts *o, struct moat_diag *d)
{
	struct serve_opts so = {
	    .dir = o->dir,
	    .host = "127.0.0.1",
	    .port = 1883,
	    .username = o->username,
	    .password_file = o->password_file,
	    .policy_file = o->policy_file,
	    .epoch_period_s = o->epoch_period,
	    .grace_s = o->grace,
	    .rate_per_s = o->rate,
	    .broker_url = o->broker_url,
	    .token_audience = o->token_audience,
	};
	char host[256];
	unsigned port;

	if (o->broker_addr != NULL) {
		const char *colon = strrchr(o->broker_addr, ':');

		if (colon == NULL || colon == o->broker_addr ||
		    (size_t)(colon - o->broker_addr) >= sizeof(host) ||
		    !parse_uint(colon + 1, 65535, &port)) {
			snprintf(d->msg, sizeof(d->msg), "--broker %.200s: give HOST:PORT",
				 o->broker_addr);
			return MOAT_E_INVAL;
		}
		snprintf(host, sizeof(host), "%.*s", (int)(colon - o->broker_addr), o->broker_addr);
		so.host = host;
		so.port = (uint16_t)port;
	}
	if (o->tamper_action != NULL && strcmp(o->tamper_action, "revoke") != 0) {
		if (strcmp(o->tamper_action, "alert") != 0) {
			snprintf(d->msg, sizeof(d->msg), "--tamper-action: revoke or alert");
			return MOAT_E_INVAL;
		}
		so.tamper_alert_only = true;
	}
	return serve_run(&so, d);
}

int main(int argc, char **argv)
{
	struct moat_diag d = {{0}};
	struct opts o = {0};
	int rc;

	rc = parse(argc, argv, &o);
	if (rc != 0)
		return rc;
	if (strcmp(o.pos[0], "init") == 0)
		rc = cmd_init(&o, &d);
	else if (strcmp(o.pos[0], "thing") == 0)
		rc = cmd_thing(&o, &d);
	else if (strcmp(o.pos[0], "crl") == 0)
		rc = cmd_crl(&o, &d);
	else if (strcmp(o.pos[0], "audit") == 0)
		rc = cmd_audit(&o, &d);
	else if (strcmp(o.pos[0], "serve") == 0)
		rc = cmd_serve(&o, &d);
	else
		return die("unknown command %s (see --help)", o.pos[0]);
	return rc < 0 ? report(rc, &d) : 0;
}
