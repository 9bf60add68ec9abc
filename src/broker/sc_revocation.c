/*
 * The broker's side of revocation (SECURITY-DESIGN §2.7, step 3): the
 * Security Center publishes a signed, serial-numbered list on $sc/revoked
 * (retained); moatd verifies it with the pinned sc_public_key, refuses
 * older serials, and every worker, at its next loop pass, disconnects the
 * revoked clients (DISCONNECT 0x87) and ends their sessions, persistent
 * subscriptions and stored state included (CVE-2021-34434). Later CONNECTs
 * by a revoked client id, certificate serial or token jti are refused.
 */
#include "broker/broker.h"

#include <stdio.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/pem.h>

#include <moat/error.h>

#include "base/log.h"
#include "broker/audit.h"
#include "broker/retain.h"
#include "broker/revocation.h"
#include "broker/sc_topics.h"
#include "net/tls.h"

int broker_load_sc_key(struct broker *b, char *err, size_t errlen)
{
	const char *path = b->cfg->sc_public_key;
	size_t len = sizeof(b->sc_pub);
	EVP_PKEY *k;
	FILE *f;

	if (path == NULL)
		return MOAT_OK;
	f = fopen(path, "r");
	if (f == NULL) {
		snprintf(err, errlen, "sc_public_key %s: cannot be read", path);
		return MOAT_E_CONFIG;
	}
	k = PEM_read_PUBKEY(f, NULL, NULL, NULL);
	fclose(f);
	if (k == NULL || EVP_PKEY_get_id(k) != EVP_PKEY_ED25519 ||
	    EVP_PKEY_get_raw_public_key(k, b->sc_pub, &len) != 1 || len != sizeof(b->sc_pub)) {
		EVP_PKEY_free(k);
		snprintf(err, errlen, "sc_public_key %s: not an Ed25519 public key in PEM (moat-sc writes one at init)",
			 path);
		return MOAT_E_CONFIG;
	}
	EVP_PKEY_free(k);
	b->has_sc_pub = true;
	return MOAT_OK;
}

/* Makes <r> current when it is newer than the current list. */
static int install(struct broker *b, struct revocation *r, const char **why)
{
	int rc = MOAT_OK;

	pthread_mutex_lock(&b->revocation_lock);
	if (b->revoked != NULL && r->serial <= b->revoked->serial) {
		*why = "a revocation list whose serial is not newer than the current one";
		rc = MOAT_E_PROTOCOL;
	} else {
		revocation_unref(b->revoked);
		b->revoked = r;
		atomic_fetch_add(&b->revocation_gen, 1);
	}
	pthread_mutex_unlock(&b->revocation_lock);
	if (rc < 0)
		revocation_unref(r);
	return rc;
}

int revocation_receive(struct worker *w, struct moat_bytes payload, const char **why)
{
	struct broker *b = w->b;
	struct revocation *r;
	int rc;

	if (!b->has_sc_pub) {
		*why = "no sc_public_key configured to verify revocation lists";
		return MOAT_E_DENIED;
	}
	rc = revocation_parse(payload, b->sc_pub, &r, why);
	if (rc < 0)
		return rc;
	rc = install(b, r, why);
	if (rc < 0)
		return rc;
	log_notice("revocation list %llu from the Security Center: %zu clients, %zu certificates, %zu tokens revoked",
		   (unsigned long long)r->serial, r->n_client_ids, r->n_cert_serials, r->n_jtis);
	for (unsigned i = 0; i < b->nworkers; i++)
		worker_wake(&b->workers[i]);	/* each enforces it at once */
	return MOAT_OK;
}

void revocation_from_cluster(struct worker *w, const struct msg *m)
{
	const char *why = NULL;
	int rc;

	if (!w->b->has_sc_pub || m->payload.len == 0 ||
	    !moat_bytes_eq(m->topic, moat_bytes_str(SC_REVOKED_TOPIC)))
		return;
	rc = revocation_receive(w, m->payload, &why);
	if (rc < 0 && rc != MOAT_E_PROTOCOL) /* PROTOCOL: not newer, e.g. routed then retained */
		log_warn("revocation list from another cluster node refused: %s", why);
}

static bool restore_cb(void *ctx, void *msg)
{
	struct broker *b = ctx;
	const struct msg *m = msg;
	struct revocation *r;
	const char *why = NULL;

	if (revocation_parse(m->payload, b->sc_pub, &r, &why) < 0)
		log_warn("the retained revocation list does not verify (%s); it is ignored", why);
	else if (install(b, r, &why) == MOAT_OK)
		log_notice("revocation list %llu restored", (unsigned long long)r->serial);
	return false;
}

void broker_restore_revocation(struct broker *b)
{
	if (b->has_sc_pub)
		retain_match(b->retained, moat_bytes_str(SC_REVOKED_TOPIC), restore_cb, b);
}

bool worker_adopt_revocation(struct worker *w)
{
	struct broker *b = w->b;
	unsigned gen = atomic_load_explicit(&b->revocation_gen, memory_order_acquire);

	if (gen == w->revocation_gen)
		return false;
	pthread_mutex_lock(&b->revocation_lock);
	revocation_unref(w->revoked);
	w->revoked = b->revoked != NULL ? revocation_ref(b->revoked) : NULL;
	w->revocation_gen = atomic_load(&b->revocation_gen);
	pthread_mutex_unlock(&b->revocation_lock);
	return true;
}

const char *revoked_conn(const struct conn *c, const char *client_id)
{
	const struct revocation *r = c->w->revoked;
	char serial[128];

	if (r == NULL)
		return NULL;
	if (revocation_has_client(r, client_id))
		return "client id revoked by the Security Center";
	if (c->jti != NULL && revocation_has_jti(r, c->jti))
		return "token revoked by the Security Center";
	if (c->tls != NULL && tls_filter_peer_serial_hex(c->tls, serial, sizeof(serial)) == MOAT_OK &&
	    revocation_has_cert(r, serial))
		return "certificate revoked by the Security Center";
	return NULL;
}

void worker_enforce_revocation(struct worker *w)
{
	struct session *s, *next;

	for (struct conn *c = w->conns; c != NULL; c = c->next) {
		const char *why;

		if (!c->connected || c->closing || c->sess == NULL)
			continue;
		why = revoked_conn(c, c->sess->client_id);
		if (why == NULL)
			continue;
		log_notice("client %s: %s; disconnecting and ending its session", c->sess->client_id, why);
		c->sess->expiry_s = 0;	/* the session ends with the connection */
		conn_disconnect(c, MQTT_RC_NOT_AUTHORIZED, why);
	}
	for (s = w->sessions; s != NULL; s = next) {
		next = s->wnext;
		if (s->conn == NULL && revocation_has_client(w->revoked, s->client_id)) {
			log_notice("client %s: revoked by the Security Center; its offline session ends",
				   s->client_id);
			sess_destroy(w, s);
		}
	}
}
