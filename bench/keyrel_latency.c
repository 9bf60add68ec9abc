/*
 * keyrel_latency: key-release latency of the Security Center (issue 6) for
 * 1, 100 and 10,000 registered devices. For each N it makes a fresh SC
 * directory (`moat-sc init`), registers N things through the registry API
 * (attribute role=sensor, Ed25519 and X25519 keys derived from the name),
 * then measures (a) keyserver_handle alone, in process: signed request in,
 * signed response out, µs per request, and (b) end to end through moatd and
 * `moat-sc serve` on loopback (krb_e2e.c): request published on
 * $sc/req/<id> until its response on $sc/resp/<id> has been opened, one at
 * a time, then with 16 in flight. Prints a table. Run by hand or by
 * bench/run.sh; ctest runs a short smoke pass.
 *
 * Usage: keyrel_latency [--devices N[,N...]] [--requests R] [--inflight K]
 *                       [--bin DIR] [--dir DIR] [--keep] [--no-e2e]
 */
#define _XOPEN_SOURCE 700
#include <ftw.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <fcntl.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/sha.h>
#include <spawn.h>

#include <moat/error.h>

#include "e2e/hpke.h"
#include "policy/topic_policy.h"
#include "sc/keyserver.h"
#include "sc/registry.h"
#include "sc/sc_keys.h"
#include "sc/signer.h"

#include "krb.h"

extern char **environ;

static const char POLICIES[] =
    "{\"policies\": [{\"filter\": \"plant/#\", "
    "\"publish\": \"role == sensor\", \"subscribe\": \"role == sensor\"}]}";

enum { SIZES_MAX = 8 };

struct opts {
	size_t sizes[SIZES_MAX], n_sizes;
	size_t requests, inflight;
	const char *bindir, *dir;
	bool keep, e2e;
};

/* What one N came to. */
struct result {
	size_t n;
	double setup_s;
	struct krb_stats inproc, seq, thr;
	bool e2e_ok;
};

double krb_now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

double krb_cpu_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

void krb_stats_add(struct krb_stats *s, double us)
{
	if (s->n == s->cap) {
		size_t cap = s->cap != 0 ? 2 * s->cap : 1024;
		double *v = realloc(s->us, cap * sizeof(*v));

		if (v == NULL) {
			fprintf(stderr, "keyrel_latency: out of memory\n");
			exit(1);
		}
		s->us = v;
		s->cap = cap;
	}
	s->us[s->n++] = us;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

double krb_stats_q(struct krb_stats *s, double q)
{
	size_t i;

	if (s->n == 0)
		return 0;
	qsort(s->us, s->n, sizeof(*s->us), cmp_double);
	i = (size_t)ceil(q * (double)s->n);
	return s->us[i > 0 ? i - 1 : 0];
}

size_t krb_rand(size_t n)
{
	static uint64_t x = 0x9e3779b97f4a7c15u;

	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	return (size_t)(x % n);
}

int krb_spawn(char *const argv[], const char *log)
{
	posix_spawn_file_actions_t fa;
	pid_t pid;
	int rc;

	posix_spawn_file_actions_init(&fa);
	if (log != NULL) {
		posix_spawn_file_actions_addopen(&fa, 1, log, O_WRONLY | O_CREAT | O_APPEND, 0600);
		posix_spawn_file_actions_adddup2(&fa, 1, 2);
	}
	rc = posix_spawn(&pid, argv[0], &fa, NULL, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	if (rc != 0) {
		fprintf(stderr, "keyrel_latency: cannot run %s: %s\n", argv[0], strerror(rc));
		return -1;
	}
	return pid;
}

int krb_run(char *const argv[])
{
	int pid = krb_spawn(argv, NULL), st = 0;

	if (pid < 0 || waitpid(pid, &st, 0) != pid || !WIFEXITED(st) || WEXITSTATUS(st) != 0) {
		fprintf(stderr, "keyrel_latency: %s %s failed\n", argv[0], argv[1]);
		return -1;
	}
	return 0;
}

int krb_request(const struct krb_dev *d, struct keyrel_request *req, struct buf *out)
{
	*req = (struct keyrel_request){
	    .op = KEYREL_GET_KEY,
	    .client_id = moat_bytes_str(d->name),
	    .topic = moat_bytes_str(KRB_TOPIC),
	    .intent = KEYREL_PUBLISH,
	    .iat = (int64_t)time(NULL),
	};
	if (RAND_bytes(req->nonce, sizeof(req->nonce)) != 1)
		return MOAT_E_CRYPTO;
	SHA256(d->x_pub, sizeof(d->x_pub), req->agree_fpr);
	return keyrel_request_build(req, d->seed, out);
}

/* Derives device <i>'s name and keys. */
static int derive_dev(size_t i, struct krb_dev *d, uint8_t ed_pub[32])
{
	char label[64];
	uint8_t ikm[32];
	size_t len = 32;
	EVP_PKEY *k;
	int rc;

	snprintf(d->name, sizeof(d->name), "krb-%05zu", i);
	snprintf(label, sizeof(label), "krbench/ed25519/%s", d->name);
	SHA256((const uint8_t *)label, strlen(label), d->seed);
	snprintf(label, sizeof(label), "krbench/x25519/%s", d->name);
	SHA256((const uint8_t *)label, strlen(label), ikm);
	rc = hpke_derive_keypair(ikm, sizeof(ikm), d->x_sk, d->x_pub);
	k = EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, NULL, d->seed, 32);
	if (rc == MOAT_OK && (k == NULL || EVP_PKEY_get_raw_public_key(k, ed_pub, &len) != 1))
		rc = MOAT_E_CRYPTO;
	EVP_PKEY_free(k);
	return rc;
}

/* Registers <n> devices into <reg>, filling <devs>. */
static int register_devs(struct registry *reg, struct krb_dev *devs, size_t n)
{
	const struct reg_attr attrs[] = {{"role", "sensor"}, {"site", "bench"}};
	struct moat_diag d = {0};
	uint8_t ed_pub[32];
	int rc = MOAT_OK;

	for (size_t i = 0; rc == MOAT_OK && i < n; i++) {
		rc = derive_dev(i, &devs[i], ed_pub);
		if (rc == MOAT_OK)
			rc = reg_thing_create(reg, "krbench", devs[i].name, attrs, 2, NULL, &d);
		if (rc == MOAT_OK)
			rc = reg_key_add(reg, "krbench", devs[i].name, REG_KEY_ED25519_SIGN, ed_pub,
					 &d);
		if (rc == MOAT_OK)
			rc = reg_key_add(reg, "krbench", devs[i].name, REG_KEY_X25519_AGREE,
					 devs[i].x_pub, &d);
	}
	if (rc < 0)
		fprintf(stderr, "keyrel_latency: registering: %s\n", d.msg);
	return rc;
}

int krb_sc_public_key(const char *dir, uint8_t pub[32])
{
	char path[4096];
	size_t len = 32;
	EVP_PKEY *k = NULL;
	FILE *f;

	snprintf(path, sizeof(path), "%s/token.pub", dir);
	f = fopen(path, "r");
	if (f != NULL) {
		k = PEM_read_PUBKEY(f, NULL, NULL, NULL);
		fclose(f);
	}
	len = k != NULL && EVP_PKEY_get_raw_public_key(k, pub, &len) == 1 ? len : 0;
	EVP_PKEY_free(k);
	return len == 32 ? MOAT_OK : MOAT_E_CONFIG;
}

/* (a) keyserver_handle alone: <requests> requests of random devices. */
static int run_inproc(const char *dir, struct registry *reg, const struct krb_dev *devs, size_t n,
		      size_t requests, struct krb_stats *st)
{
	const struct keyserver_config cfg = {.rate_per_s = 1000000, .burst = 1000000};
	struct topic_policy_set *set = NULL;
	struct policy_diag pd = {0};
	struct moat_diag d = {0};
	struct keyserver *ks = NULL;
	struct signer *signer = NULL;
	struct sc_keys keys;
	uint8_t store_key[GROUPS_STORE_KEY_LEN], sc_pub[32];
	char path[4096];
	int rc;

	snprintf(path, sizeof(path), "%s/store.key", dir);
	rc = groups_store_key_load(path, true, store_key, &d);
	if (rc == MOAT_OK)
		rc = sc_keys_load(dir, &keys, &d);
	if (rc == MOAT_OK)
		rc = sc_keys_open(&signer, dir, &keys, SC_KEY_TOKEN, &d);
	if (rc == MOAT_OK)
		rc = krb_sc_public_key(dir, sc_pub);
	if (rc == MOAT_OK)
		rc = topic_policy_set_parse(&set, POLICIES, strlen(POLICIES), &pd);
	if (rc == MOAT_OK)
		rc = keyserver_create(&ks, reg, store_key, keyserver_sign, signer, &cfg);
	if (rc == MOAT_OK)
		keyserver_set_policies(ks, set);
	for (size_t i = 0; rc == MOAT_OK && i < requests; i++) {
		const struct krb_dev *dev = &devs[krb_rand(n)];
		struct keyrel_request req;
		struct keyserver_outcome res;
		struct keyrel_grant g;
		struct buf msg = {0}, out = {0};
		char topic[64];
		double t0, c0;

		snprintf(topic, sizeof(topic), "%s%s", KEYREL_REQ_PREFIX, dev->name);
		rc = krb_request(dev, &req, &msg);
		c0 = krb_cpu_us();
		t0 = krb_now_us();
		if (rc == MOAT_OK)
			rc = keyserver_handle(
			    ks, (struct moat_bytes){buf_head(&msg), buf_used(&msg)},
			    moat_bytes_str(topic), (int64_t)time(NULL), &out, &res);
		if (rc == MOAT_OK) {
			krb_stats_add(st, krb_now_us() - t0);
			st->cpu_us += krb_cpu_us() - c0;
		}
		snprintf(topic, sizeof(topic), "%s%s", KEYREL_RESP_PREFIX, dev->name);
		if (rc == MOAT_OK &&
		    (keyrel_response_open((struct moat_bytes){buf_head(&out), buf_used(&out)},
					  moat_bytes_str(topic), dev->name, req.req_hash, sc_pub,
					  dev->x_sk, &g, NULL) != MOAT_OK ||
		     g.status != KEYREL_OK))
			st->errors++;
		OPENSSL_cleanse(&g, sizeof(g));
		buf_fini(&msg);
		buf_fini(&out);
	}
	st->cpu_us /= st->n > 0 ? (double)st->n : 1;
	if (rc < 0)
		fprintf(stderr, "keyrel_latency: in-process run: %s %s %s\n", moat_strerror(rc),
			d.msg, pd.msg);
	keyserver_destroy(ks);
	topic_policy_set_destroy(set);
	signer_destroy(signer);
	OPENSSL_cleanse(store_key, sizeof(store_key));
	return rc;
}

static int write_text(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");
	int ok = f != NULL && fputs(text, f) >= 0;

	if (f != NULL && fclose(f) != 0)
		ok = 0;
	return ok ? 0 : -1;
}

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb, (void)flag, (void)ftw;
	return remove(path);
}

/* One N: a fresh SC directory under <top>, registration, both runs. */
static int run_size(const struct opts *o, const char *top, size_t n, struct result *r)
{
	char dir[2048], path[4096], sc[4096];
	struct krb_dev *devs = calloc(n, sizeof(*devs));
	struct registry *reg = NULL;
	struct moat_diag d = {0};
	double t0;
	int rc = devs != NULL ? MOAT_OK : MOAT_E_NOMEM;

	*r = (struct result){.n = n};
	snprintf(dir, sizeof(dir), "%s/n%zu", top, n);
	snprintf(sc, sizeof(sc), "%s/moat-sc", o->bindir);
	char *init[] = {sc, "--dir", dir, "init", "--name", "krbench", NULL};

	if (rc == MOAT_OK && krb_run(init) != 0)
		rc = MOAT_E_IO;
	snprintf(path, sizeof(path), "%s/registry.db", dir);
	if (rc == MOAT_OK)
		rc = reg_open(&reg, path, &d);
	t0 = krb_now_us();
	if (rc == MOAT_OK)
		rc = register_devs(reg, devs, n);
	r->setup_s = (krb_now_us() - t0) / 1e6;
	snprintf(path, sizeof(path), "%s/policies.json", dir);
	if (rc == MOAT_OK && write_text(path, POLICIES) != 0)
		rc = MOAT_E_IO;
	if (rc == MOAT_OK)
		rc = run_inproc(dir, reg, devs, n, o->requests, &r->inproc);
	reg_close(reg);
	if (rc == MOAT_OK && o->e2e)
		r->e2e_ok = krb_e2e_run(dir, o->bindir, devs, n, o->requests, o->inflight, &r->seq,
					&r->thr) == 0;
	if (rc < 0 && d.msg[0] != '\0')
		fprintf(stderr, "keyrel_latency: %s\n", d.msg);
	OPENSSL_cleanse(devs, n * sizeof(*devs));
	free(devs);
	return rc;
}

static void print_results(const struct opts *o, struct result *r, size_t count)
{
	printf("\nKey release latency (%zu requests per N; e2e: moatd + moat-sc serve on loopback, "
	       "--rate 100000/s, %zu in flight; cpu: per request, of this thread or of moat-sc)\n",
	       o->requests, o->inflight);
	printf("%8s %8s | %-35s | %-35s | %-27s\n", "devices", "setup s", "keyserver_handle us",
	       "e2e sequential ms", "e2e in flight");
	printf("%8s %8s | %8s %8s %8s %8s | %8s %8s %8s %8s | %8s %6s %6s %4s\n", "", "", "cpu",
	       "p50", "p99", "max", "sc cpu", "p50", "p99", "max", "req/s", "p50", "p99", "err");
	for (size_t i = 0; i < count; i++) {
		struct result *x = &r[i];

		printf("%8zu %8.2f | %8.0f %8.0f %8.0f %8.0f", x->n, x->setup_s, x->inproc.cpu_us,
		       krb_stats_q(&x->inproc, 0.5), krb_stats_q(&x->inproc, 0.99),
		       krb_stats_q(&x->inproc, 1));
		if (x->e2e_ok)
			printf(" | %8.2f %8.2f %8.2f %8.2f | %8.0f %6.2f %6.2f %4zu\n",
			       x->seq.cpu_us / 1e3, krb_stats_q(&x->seq, 0.5) / 1e3,
			       krb_stats_q(&x->seq, 0.99) / 1e3, krb_stats_q(&x->seq, 1) / 1e3,
			       x->thr.elapsed_s > 0 ? (double)x->thr.n / x->thr.elapsed_s : 0,
			       krb_stats_q(&x->thr, 0.5) / 1e3, krb_stats_q(&x->thr, 0.99) / 1e3,
			       x->seq.errors + x->thr.errors);
		else
			printf(" | %-35s |\n", o->e2e ? "failed" : "not run");
		if (x->inproc.errors != 0)
			printf("         in-process: %zu responses did not open as granted\n",
			       x->inproc.errors);
	}
}

static int usage(void)
{
	fprintf(stderr, "usage: keyrel_latency [--devices N[,N...]] [--requests R] "
			"[--inflight K] [--bin DIR] [--dir DIR] [--keep] [--no-e2e]\n");
	return 2;
}

static bool parse_args(int argc, char **argv, struct opts *o, char *bindir, size_t size)
{
	char *end;

	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;

		if (strcmp(a, "--keep") == 0) {
			o->keep = true;
			continue;
		}
		if (strcmp(a, "--no-e2e") == 0) {
			o->e2e = false;
			continue;
		}
		if (v == NULL)
			return false;
		i++;
		if (strcmp(a, "--devices") == 0) {
			o->n_sizes = 0;
			for (const char *p = v; *p != '\0' && o->n_sizes < SIZES_MAX; p = end) {
				unsigned long x = strtoul(p, &end, 10);

				if (end == p || x == 0 || x > 1000000 || (*end != ',' && *end))
					return false;
				o->sizes[o->n_sizes++] = x;
				end += *end == ',';
			}
		} else if (strcmp(a, "--requests") == 0) {
			o->requests = strtoul(v, &end, 10);
			/* the SC remembers 32768 nonces per 2 minutes; e2e sends 2 R */
			if (*end != '\0' || o->requests == 0 || o->requests > 16000)
				return false;
		} else if (strcmp(a, "--inflight") == 0) {
			o->inflight = strtoul(v, &end, 10);
			if (*end != '\0' || o->inflight == 0 || o->inflight > 200)
				return false;
		} else if (strcmp(a, "--bin") == 0) {
			snprintf(bindir, size, "%s", v);
		} else if (strcmp(a, "--dir") == 0) {
			o->dir = v;
		} else {
			return false;
		}
	}
	return o->n_sizes > 0;
}

int main(int argc, char **argv)
{
	struct opts o = {
	    .sizes = {1, 100, 10000}, .n_sizes = 3, .requests = 1000, .inflight = 16, .e2e = true};
	struct result r[SIZES_MAX];
	char bindir[1024], top[1024];
	ssize_t len = readlink("/proc/self/exe", bindir, sizeof(bindir) - 1);
	int rc = 0;

	bindir[len > 0 ? len : 0] = '\0';
	if (strrchr(bindir, '/') != NULL)
		*strrchr(bindir, '/') = '\0';
	if (!parse_args(argc, argv, &o, bindir, sizeof(bindir)))
		return usage();
	o.bindir = bindir;
	snprintf(top, sizeof(top), "%s/krbench.XXXXXX", o.dir != NULL ? o.dir : "/tmp");
	if (mkdtemp(top) == NULL) {
		perror("keyrel_latency: mkdtemp");
		return 1;
	}
	fprintf(stderr, "keyrel_latency: SC directories under %s\n", top);
	for (size_t i = 0; i < o.n_sizes; i++) {
		if (run_size(&o, top, o.sizes[i], &r[i]) != MOAT_OK)
			rc = 1;
		if (o.e2e && !r[i].e2e_ok)
			rc = 1;
		if (r[i].inproc.errors != 0 || r[i].seq.errors != 0 || r[i].thr.errors != 0)
			rc = 1;
	}
	print_results(&o, r, o.n_sizes);
	for (size_t i = 0; i < o.n_sizes; i++) {
		free(r[i].inproc.us);
		free(r[i].seq.us);
		free(r[i].thr.us);
	}
	if (!o.keep)
		nftw(top, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
	return rc;
}
