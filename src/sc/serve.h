/*
 * `moat-sc serve`: the Security Center daemon (docs/security-center.md "Key
 * release"). One MQTT 5 connection (libmoat, client id "moat-sc", auto
 * reconnect) answers key requests on $sc/req/+ with the key server
 * (keyserver.h), acts on signed tamper alerts on alerts/+/tamper, and
 * publishes, retained, the signed epoch announcements $sc/epoch/<group hex>
 * and the revocation list $sc/revoked. Group epochs rotate on their
 * schedule, when the policy file changes (SIGHUP, or its mtime/size/hash
 * checked every few seconds) and at once when a thing is revoked (by a
 * tamper alert, through the admin hooks, or by the offline `moat-sc thing
 * revoke`, which the daemon notices within seconds). It also serves the
 * admin channel `moat ctl` talks to (admin.h, DIR/admin.sock) on a thread
 * of its own. Everything else touching the registry runs on the daemon's
 * main thread; the admin hooks, called on the admin thread, hand their
 * work to it and wait.
 */
#ifndef MOAT_SC_SERVE_H
#define MOAT_SC_SERVE_H

#include <stdbool.h>
#include <stdint.h>

#include "conf/config.h" /* struct moat_diag */

struct serve_opts {
	const char *dir;	   /* the SC directory */
	const char *host;	   /* default 127.0.0.1 */
	uint16_t port;		   /* default 1883 */
	const char *username;	   /* the SC's broker identity (moatd's sc_username) */
	const char *password_file; /* its password, first line */
	const char *policy_file;   /* default DIR/policies.json */
	int64_t epoch_period_s;	   /* default 86400 */
	int64_t grace_s;	   /* default 3600; < 0 = default */
	uint32_t rate_per_s;	   /* default 5 */
	bool tamper_alert_only;	   /* --tamper-action alert: audit, do not revoke */
	const char *broker_url;	   /* for moat ctl's bundles (admin channel) */
	const char *token_audience; /* aud of issued tokens; NULL = "moat" */
};

struct serve;

/*
 * Runs the daemon until SIGTERM or SIGINT: MOAT_OK after a clean stop, or
 * an error with <d> filled when it cannot start (registry, keys, policy
 * file that does not parse, broker address).
 */
int serve_run(const struct serve_opts *o, struct moat_diag *d);

/*
 * The admin channel's hooks (struct sc_admin_hooks in admin.h), with <arg>
 * the struct serve of the running daemon. Each may be called from another
 * thread: it queues the work for the daemon's thread and waits for it
 * (up to 30 s: MOAT_E_TIMEOUT).
 */
int serve_hook_thing_revoked(void *arg, const char *name, struct moat_diag *d);
int serve_hook_rotate(void *arg, const char *filter, struct moat_diag *d);
int serve_hook_policies_changed(void *arg, struct moat_diag *d);

#endif
