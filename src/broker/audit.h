/*
 * The audit log: one JSON object per line for every authentication
 * decision, every refusal by the ACL, allowed subscriptions, session
 * takeovers, limits hit and configuration reloads, written to a file or
 * syslog (audit_log in the configuration). Never a password, token or key:
 * events carry identities and reasons only.
 */
#ifndef MOAT_BROKER_AUDIT_H
#define MOAT_BROKER_AUDIT_H

#include <stdint.h>

#include "conf/config.h"

struct audit_event {
	const char *event;	/* "auth", "acl", "takeover", "limit", "reload" */
	const char *result;	/* "allow", "deny", "ok", "fail" */
	const char *reason;	/* why; NULL for none */
	unsigned listener;	/* port; 0 = broker-wide */
	const char *address;	/* peer address; NULL = none */
	const char *client_id, *username;	/* NULL = unknown / anonymous */
	const char *method;	/* auth: "password", "scram-sha-256", "token", "certificate", "anonymous" */
	const char *topic;	/* acl: topic or filter */
	const char *access;	/* acl: "publish", "subscribe", "receive", "will" */
};

/* Opens the destination <cfg> names (audit_log file PATH | syslog). MOAT_OK,
 * or MOAT_E_IO with errno set. Call before the worker threads start. */
int audit_open(const struct moat_config *cfg);
/* Writes <e> as one line, from any thread; does nothing when no audit log
 * is configured. */
void audit_write(const struct audit_event *e);
void audit_close(void);

#endif
