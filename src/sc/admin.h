/*
 * The Security Center's administration channel, used by `moat ctl`: a Unix
 * stream socket (DIR/admin.sock, mode 0600 in the 0700 SC directory; the
 * peer's uid is checked with SO_PEERCRED and must be ours or root) carrying
 * one JSON object per line each way:
 *
 *   request   {"op": "thing.create", "actor": "alice", ...op fields}
 *   response  {"ok": true, ...result}  or  {"ok": false, "error": "text"}
 *
 * Ops: thing.create, thing.list, thing.show, thing.update, thing.revoke,
 * policy.set, policy.list, policy.show, policy.delete, key.rotate,
 * token.issue, audit.tail (fields in docs/security-center.md "moat ctl").
 * A request line is capped at SC_ADMIN_LINE_MAX bytes.
 *
 * admin.c owns the socket and the op handlers; what only the running SC
 * daemon can do (publish the revocation list, rotate group epochs, reload
 * the topic policies) it asks through the hooks the daemon passes in.
 */
#ifndef MOAT_SC_ADMIN_H
#define MOAT_SC_ADMIN_H

#include <stdbool.h>
#include <stddef.h>

#include "conf/config.h" /* struct moat_diag */

struct registry;
struct ca;
struct signer;
struct sc_admin;

enum { SC_ADMIN_LINE_MAX = 256 * 1024 };

#define SC_ADMIN_SOCKET "admin.sock"

/* What the running daemon does for the admin ops; each returns MOAT_OK or
 * an error with <d> filled. Called on the admin thread. */
struct sc_admin_hooks {
	void *arg;
	/* The thing <name> was just revoked in the registry: push the new
	 * revocation list and rotate every group it held a key of. */
	int (*thing_revoked)(void *arg, const char *name, struct moat_diag *d);
	/* Start a new epoch now for the group of the policy with <filter>. */
	int (*rotate)(void *arg, const char *filter, struct moat_diag *d);
	/* The policy file changed (set or delete): reload it, rotating the
	 * groups whose publish or subscribe expression changed. */
	int (*policies_changed)(void *arg, struct moat_diag *d);
};

/* What the op handlers work on. The registry handle is the admin thread's
 * own (SQLite handles are one thread at a time). */
struct sc_admin_ctx {
	const char *dir;	    /* the SC directory */
	struct registry *reg;	    /* opened for the admin thread */
	struct ca *ca;		    /* issues certificates */
	struct signer *token_signer; /* Ed25519, signs tokens */
	const char *policy_file;    /* DIR/policies.json */
	const char *broker_url;	    /* written into credential bundles */
	struct sc_admin_hooks hooks;
	/* Added by the ctl branch for token.issue; NULL: "moat-sc" and "moat". */
	const char *token_issuer;   /* iss of issued tokens */
	const char *token_audience; /* aud: the broker id moatd expects */
};

/*
 * Binds DIR/admin.sock (replacing a stale socket file, refusing when
 * another SC answers on it) and starts a thread that serves one
 * connection at a time with <ctx> (borrowed until sc_admin_stop).
 */
int sc_admin_start(struct sc_admin **out, const struct sc_admin_ctx *ctx, struct moat_diag *d);

/* Stops the thread, closes and unlinks the socket; NULL is fine. */
void sc_admin_stop(struct sc_admin *a);

/* Writes <text> and a newline to the stream socket <fd> (both sides of the
 * channel frame their JSON this way; no SIGPIPE). False when the peer is
 * gone. */
bool sc_admin_send_line(int fd, const char *text);

#endif
