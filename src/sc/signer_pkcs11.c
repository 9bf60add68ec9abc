/*
 * The PKCS#11 signer (see signer_pkcs11.h). ECDSA keys come from libp11's
 * engine (OpenSSL's ENGINE API, deprecated in 3.0 but the one libp11 0.4.12
 * offers); Ed25519 keys are reached through the module's own function list
 * (dlopen + C_GetFunctionList). Both share the process-wide module state
 * below, finalized only when the last PKCS#11 signer goes.
 */
#define OPENSSL_SUPPRESS_DEPRECATED /* ENGINE_* */

#include "sc/signer_pkcs11.h"

#include <dlfcn.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/engine.h>
#include <openssl/err.h>
#include <p11-kit/pkcs11.h>

#include <moat/error.h>

#include "sc/p11_uri.h"

enum { PIN_MAX = 256 };

struct p11_signer {
	struct signer base;
	EVP_PKEY *pkey; /* the engine's key (ECDSA) or the public key (Ed25519) */
	/* Ed25519: the module reached directly */
	void *dl;
	CK_FUNCTION_LIST *f;
	CK_SESSION_HANDLE session;
	CK_OBJECT_HANDLE key;
	bool has_session;
	pthread_mutex_t lock; /* one C_SignInit + C_Sign at a time on <session> */
};

/* Process-wide: the module all PKCS#11 signers use, and how many there are. */
static pthread_mutex_t mod_lock = PTHREAD_MUTEX_INITIALIZER;
static unsigned mod_users;
static char mod_path[PATH_MAX];
static ENGINE *mod_engine;		  /* libp11, initialized, when an ECDSA key was opened */
static CK_FUNCTION_LIST *mod_direct_init; /* we called C_Initialize through it */

/* Reads the user PIN from the 0600 file <path>, or $MOAT_SC_PIN. */
static int read_pin(const char *path, char pin[PIN_MAX], struct moat_diag *diag)
{
	const char *env = getenv("MOAT_SC_PIN");
	ssize_t n;
	int fd;

	if (path == NULL) {
		if (env == NULL || env[0] == '\0' || strlen(env) >= PIN_MAX)
			return signer_fail(
			    diag, MOAT_E_DENIED,
			    "no PKCS#11 PIN: give --pin-file FILE (mode 0600) or set "
			    "MOAT_SC_PIN");
		strcpy(pin, env);
		return MOAT_OK;
	}
	fd = signer_open_secret_file(path, "a PIN file", diag);
	if (fd < 0)
		return fd;
	n = read(fd, pin, PIN_MAX - 1);
	close(fd);
	if (n < 0)
		return signer_fail(diag, MOAT_E_IO, "%s: cannot be read", path);
	while (n > 0 && (pin[n - 1] == '\n' || pin[n - 1] == '\r'))
		n--;
	pin[n] = '\0';
	if (n == 0 || memchr(pin, '\0', (size_t)n) != NULL) {
		OPENSSL_cleanse(pin, PIN_MAX);
		return signer_fail(diag, MOAT_E_DENIED, "%s: holds no PIN (one line)", path);
	}
	return MOAT_OK;
}

static const char *rv_text(CK_RV rv)
{
	switch (rv) {
	case CKR_PIN_INCORRECT:
		return "wrong PIN";
	case CKR_PIN_LOCKED:
		return "the PIN is locked";
	case CKR_PIN_EXPIRED:
		return "the PIN has expired";
	case CKR_TOKEN_NOT_PRESENT:
		return "the token is not present";
	case CKR_MECHANISM_INVALID:
		return "the token cannot sign with EdDSA";
	case CKR_KEY_TYPE_INCONSISTENT:
		return "the key does not fit the mechanism";
	case CKR_DEVICE_ERROR:
		return "device error";
	default:
		return "failed";
	}
}

static int rv_fail(struct moat_diag *diag, CK_RV rv, const char *what)
{
	int rc = rv == CKR_PIN_INCORRECT || rv == CKR_PIN_LOCKED || rv == CKR_PIN_EXPIRED
		     ? MOAT_E_DENIED
		     : MOAT_E_CRYPTO;

	return signer_fail(diag, rc, "PKCS#11 %s: %s (CKR 0x%lx)", what, rv_text(rv),
			   (unsigned long)rv);
}

/* Counts a new PKCS#11 user of module <path>; under mod_lock. */
static int join_module(const char *path, struct moat_diag *diag)
{
	if (mod_users > 0 && strcmp(mod_path, path) != 0)
		return signer_fail(
		    diag, MOAT_E_UNSUPPORTED,
		    "PKCS#11: module %s is in use already; all keys must be in tokens of "
		    "one module",
		    mod_path);
	if (strlen(path) >= sizeof(mod_path))
		return signer_fail(diag, MOAT_E_CONFIG, "PKCS#11 module path too long");
	if (access(path, R_OK) != 0)
		return signer_fail(diag, MOAT_E_CONFIG,
				   "PKCS#11 module %s: cannot be read (installed?)", path);
	strcpy(mod_path, path);
	mod_users++;
	return MOAT_OK;
}

/* Drops a user; the last one finalizes the module; under mod_lock. */
static void leave_module(void)
{
	if (--mod_users > 0)
		return;
	if (mod_direct_init != NULL)
		mod_direct_init->C_Finalize(NULL);
	mod_direct_init = NULL;
	if (mod_engine != NULL) {
		ENGINE_finish(mod_engine); /* libp11 finalizes and unloads its module */
		ENGINE_free(mod_engine);
	}
	mod_engine = NULL;
	ERR_clear_error();
}

static int sign_engine(struct signer *s, const uint8_t *msg, size_t len, uint8_t *sig,
		       size_t *sig_len)
{
	return signer_evp_sign(((struct p11_signer *)s)->pkey, s->algo, msg, len, sig, sig_len);
}

static int sign_eddsa(struct signer *s, const uint8_t *msg, size_t len, uint8_t *sig,
		      size_t *sig_len)
{
	struct p11_signer *p = (struct p11_signer *)s;
	CK_MECHANISM mech = {CKM_EDDSA, NULL, 0};
	CK_ULONG n = SIGNER_SIG_MAX;
	CK_RV rv;

	pthread_mutex_lock(&p->lock);
	rv = p->f->C_SignInit(p->session, &mech, p->key);
	/* single-part: softhsm2's EdDSA has no C_SignUpdate (SECURITY-DESIGN 4.3) */
	if (rv == CKR_OK)
		rv = p->f->C_Sign(p->session, (CK_BYTE *)msg, len, sig, &n);
	pthread_mutex_unlock(&p->lock);
	if (rv != CKR_OK || n != 64)
		return MOAT_E_CRYPTO;
	*sig_len = n;
	return MOAT_OK;
}

static EVP_PKEY *p11_pkey(struct signer *s)
{
	return ((struct p11_signer *)s)->pkey;
}

static void p11_destroy(struct signer *s)
{
	struct p11_signer *p = (struct p11_signer *)s;

	EVP_PKEY_free(p->pkey);
	pthread_mutex_lock(&mod_lock);
	if (p->has_session)
		p->f->C_CloseSession(p->session);
	leave_module();
	pthread_mutex_unlock(&mod_lock);
	if (p->dl != NULL)
		dlclose(p->dl);
	pthread_mutex_destroy(&p->lock);
	free(p);
}

static const struct signer_ops engine_ops = {
    .abi_version = SIGNER_ABI_VERSION,
    .name = "pkcs11",
    .sign = sign_engine,
    .pkey = p11_pkey,
    .destroy = p11_destroy,
};

static const struct signer_ops eddsa_ops = {
    .abi_version = SIGNER_ABI_VERSION,
    .name = "pkcs11",
    .sign = sign_eddsa,
    .pkey = p11_pkey,
    .destroy = p11_destroy,
};

/* ECDSA: the key through libp11's engine; under mod_lock. */
static int open_engine_key(struct p11_signer *p, const char *module, const char *uri,
			   const char *pin, struct moat_diag *diag)
{
	if (mod_engine == NULL) {
		ENGINE *e = ENGINE_by_id("pkcs11");

		if (e == NULL)
			return signer_fail(
			    diag, MOAT_E_CONFIG,
			    "PKCS#11: OpenSSL's pkcs11 engine (libp11) is not installed; "
			    "apt-get install libengine-pkcs11-openssl");
		if (ENGINE_ctrl_cmd_string(e, "MODULE_PATH", module, 0) != 1 ||
		    ENGINE_init(e) != 1) {
			ENGINE_free(e);
			return signer_fail(diag, MOAT_E_CONFIG,
					   "PKCS#11: the pkcs11 engine cannot load module %s",
					   module);
		}
		mod_engine = e;
	}
	if (ENGINE_ctrl_cmd_string(mod_engine, "PIN", pin, 0) != 1)
		return signer_fail(diag, MOAT_E_NOMEM,
				   "PKCS#11: cannot hand the PIN to the engine");
	p->pkey = ENGINE_load_private_key(mod_engine, uri, NULL, NULL);
	if (p->pkey == NULL)
		return signer_fail(
		    diag, MOAT_E_NOTFOUND,
		    "PKCS#11: no usable private key %s (token, object or PIN wrong?)", uri);
	if (!signer_key_is(p->pkey, SIGNER_ECDSA_P256))
		return signer_fail(diag, MOAT_E_CRYPTO, "PKCS#11: %s is not an ECDSA P-256 key",
				   uri);
	p->base.ops = &engine_ops;
	return MOAT_OK;
}

/* The slot whose token is labelled <label> (blank-padded in CK_TOKEN_INFO). */
static int find_slot(struct p11_signer *p, const char *label, CK_SLOT_ID *out,
		     struct moat_diag *diag)
{
	CK_SLOT_ID *slots;
	CK_ULONG n = 0;
	size_t len = strlen(label);
	CK_RV rv;
	int rc = MOAT_E_NOTFOUND;

	rv = p->f->C_GetSlotList(CK_TRUE, NULL, &n);
	if (rv != CKR_OK)
		return rv_fail(diag, rv, "C_GetSlotList");
	slots = calloc(n > 0 ? n : 1, sizeof(*slots));
	if (slots == NULL)
		return MOAT_E_NOMEM;
	rv = p->f->C_GetSlotList(CK_TRUE, slots, &n);
	for (CK_ULONG i = 0; rv == CKR_OK && i < n && rc == MOAT_E_NOTFOUND; i++) {
		CK_TOKEN_INFO ti;
		const unsigned char *l = ti.label;

		if (p->f->C_GetTokenInfo(slots[i], &ti) != CKR_OK)
			continue;
		if (memcmp(l, label, len) != 0)
			continue;
		rc = MOAT_OK;
		for (size_t k = len; k < sizeof(ti.label); k++)
			if (l[k] != ' ')
				rc = MOAT_E_NOTFOUND;
		if (rc == MOAT_OK)
			*out = slots[i];
	}
	free(slots);
	if (rv != CKR_OK)
		return rv_fail(diag, rv, "C_GetSlotList");
	if (rc < 0)
		return signer_fail(diag, rc, "PKCS#11: no token labelled \"%s\" in %s", label,
				   mod_path);
	return MOAT_OK;
}

/* The one Ed25519 key of class <cls> that <u> names. */
static int find_key(struct p11_signer *p, CK_OBJECT_CLASS cls, const struct p11_uri *u,
		    CK_OBJECT_HANDLE *out, struct moat_diag *diag)
{
	CK_KEY_TYPE type = CKK_EC_EDWARDS;
	CK_ATTRIBUTE t[4] = {{CKA_CLASS, &cls, sizeof(cls)}, {CKA_KEY_TYPE, &type, sizeof(type)}};
	CK_ULONG nt = 2, found = 0;
	CK_OBJECT_HANDLE h[2];
	const char *what = cls == CKO_PRIVATE_KEY ? "private" : "public";
	CK_RV rv;

	if (u->has_object)
		t[nt++] = (CK_ATTRIBUTE){CKA_LABEL, (void *)u->object, strlen(u->object)};
	if (u->has_id)
		t[nt++] = (CK_ATTRIBUTE){CKA_ID, (void *)u->id, u->id_len};
	rv = p->f->C_FindObjectsInit(p->session, t, nt);
	if (rv == CKR_OK) {
		rv = p->f->C_FindObjects(p->session, h, 2, &found);
		p->f->C_FindObjectsFinal(p->session);
	}
	if (rv != CKR_OK)
		return rv_fail(diag, rv, "C_FindObjects");
	if (found == 0)
		return signer_fail(
		    diag, MOAT_E_NOTFOUND,
		    "PKCS#11: no Ed25519 %s key \"%s\" in token \"%s\" (an Ed25519 key "
		    "needs a token of its own; see docs/security-center.md)",
		    what, u->has_object ? u->object : "(by id)", u->token);
	if (found > 1)
		return signer_fail(
		    diag, MOAT_E_CONFIG,
		    "PKCS#11: more than one Ed25519 %s key matches in token \"%s\"; add "
		    "id= to the URI",
		    what, u->token);
	*out = h[0];
	return MOAT_OK;
}

/* The public key <pub>'s CKA_EC_POINT as an OpenSSL key: a DER OCTET
 * STRING of 32 bytes (softhsm2, PKCS#11 3.0) or the 32 bytes bare. */
static int public_key(struct p11_signer *p, CK_OBJECT_HANDLE pub, struct moat_diag *diag)
{
	uint8_t point[64];
	CK_ATTRIBUTE a = {CKA_EC_POINT, point, sizeof(point)};
	const uint8_t *raw = point;
	CK_RV rv = p->f->C_GetAttributeValue(p->session, pub, &a, 1);

	if (rv != CKR_OK)
		return rv_fail(diag, rv, "C_GetAttributeValue(CKA_EC_POINT)");
	if (a.ulValueLen == 34 && point[0] == 0x04 && point[1] == 32)
		raw = point + 2;
	else if (a.ulValueLen != 32)
		return signer_fail(diag, MOAT_E_CRYPTO,
				   "PKCS#11: the Ed25519 public key has %lu bytes",
				   (unsigned long)a.ulValueLen);
	p->pkey = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, raw, 32);
	return p->pkey != NULL ? MOAT_OK : MOAT_E_NOMEM;
}

/* Ed25519: the module directly; under mod_lock. */
static int open_direct_key(struct p11_signer *p, const char *module, const struct p11_uri *u,
			   const char *pin, struct moat_diag *diag)
{
	CK_C_INITIALIZE_ARGS args = {.flags = CKF_OS_LOCKING_OK};
	CK_C_GetFunctionList get;
	CK_OBJECT_HANDLE pub;
	CK_SLOT_ID slot = 0; /* set by find_slot on success; 0 keeps gcc -O2 quiet */
	CK_RV rv;
	int rc;

	get = NULL;
	p->dl = dlopen(module, RTLD_NOW | RTLD_LOCAL | RTLD_NODELETE); /* unloading buys nothing */
	if (p->dl != NULL) {
		void *sym = dlsym(p->dl, "C_GetFunctionList");

		memcpy(&get, &sym, sizeof(get)); /* POSIX: a data pointer can hold a function's */
	}
	if (get == NULL || get(&p->f) != CKR_OK || p->f == NULL)
		return signer_fail(diag, MOAT_E_CONFIG, "PKCS#11 module %s: cannot be loaded (%s)",
				   module, p->dl == NULL ? dlerror() : "no C_GetFunctionList");
	rv = p->f->C_Initialize(&args);
	if (rv == CKR_OK)
		mod_direct_init = p->f;
	else if (rv != CKR_CRYPTOKI_ALREADY_INITIALIZED)
		return rv_fail(diag, rv, "C_Initialize");
	rc = find_slot(p, u->token, &slot, diag);
	if (rc < 0)
		return rc;
	rv = p->f->C_OpenSession(slot, CKF_SERIAL_SESSION, NULL, NULL, &p->session);
	if (rv != CKR_OK)
		return rv_fail(diag, rv, "C_OpenSession");
	p->has_session = true;
	rv = p->f->C_Login(p->session, CKU_USER, (CK_UTF8CHAR *)pin, strlen(pin));
	if (rv != CKR_OK && rv != CKR_USER_ALREADY_LOGGED_IN)
		return rv_fail(diag, rv, "login");
	rc = find_key(p, CKO_PRIVATE_KEY, u, &p->key, diag);
	if (rc == MOAT_OK)
		rc = find_key(p, CKO_PUBLIC_KEY, u, &pub, diag);
	if (rc == MOAT_OK)
		rc = public_key(p, pub, diag);
	if (rc == MOAT_OK)
		p->base.ops = &eddsa_ops;
	return rc;
}

int signer_pkcs11_open(struct signer **out, const struct signer_pkcs11_opts *o,
		       enum signer_algo algo, struct moat_diag *diag)
{
	char pin[PIN_MAX], uri[P11_URI_MAX + 1];
	struct p11_signer *p;
	struct p11_uri u;
	int rc;

	if (o == NULL || o->module == NULL || o->uri == NULL)
		return signer_fail(diag, MOAT_E_INVAL,
				   "PKCS#11: give the module and the key's URI");
	rc = p11_uri_parse(o->uri, &u, diag);
	if (rc < 0)
		return rc;
	if (u.type == P11_TYPE_PUBLIC)
		return signer_fail(diag, MOAT_E_CONFIG,
				   "PKCS#11 URI %s: a signing key is type=private", o->uri);
	u.type = P11_TYPE_PRIVATE;
	if (p11_uri_format(&u, uri, sizeof(uri)) < 0)
		return signer_fail(diag, MOAT_E_MALFORMED, "PKCS#11 URI %s: too long", o->uri);
	p = calloc(1, sizeof(*p));
	if (p == NULL)
		return signer_fail(diag, MOAT_E_NOMEM, "out of memory");
	p->base.algo = algo;
	pthread_mutex_init(&p->lock, NULL);
	rc = read_pin(o->pin_file, pin, diag);
	if (rc < 0) {
		pthread_mutex_destroy(&p->lock);
		free(p);
		return rc;
	}
	pthread_mutex_lock(&mod_lock);
	rc = join_module(o->module, diag);
	if (rc < 0) {
		pthread_mutex_unlock(&mod_lock);
		pthread_mutex_destroy(&p->lock);
		free(p);
		OPENSSL_cleanse(pin, sizeof(pin));
		return rc;
	}
	rc = algo == SIGNER_ED25519 ? open_direct_key(p, o->module, &u, pin, diag)
				    : open_engine_key(p, o->module, uri, pin, diag);
	pthread_mutex_unlock(&mod_lock);
	OPENSSL_cleanse(pin, sizeof(pin));
	if (rc < 0) {
		ERR_clear_error(); /* the engine's, said in <diag> */
		p11_destroy(&p->base);
		return rc;
	}
	*out = &p->base;
	return MOAT_OK;
}
