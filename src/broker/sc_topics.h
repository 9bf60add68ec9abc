/*
 * The Security Center's reserved topics ($sc/...; docs/security-center.md):
 * who may publish, subscribe and receive there is fixed by the broker, not
 * by the ACL file. A device asks for keys on $sc/req/<its client id> and
 * hears the answer on $sc/resp/<its client id>; only the Security Center's
 * identity (sc_username) answers, and only it publishes the revocation list,
 * its keys and epoch announcements, which every client may read.
 */
#ifndef MOAT_BROKER_SC_TOPICS_H
#define MOAT_BROKER_SC_TOPICS_H

#include <moat/bytes.h>

/* Where the Security Center publishes its signed revocation list. */
#define SC_REVOKED_TOPIC "$sc/revoked"

enum sc_verdict {
	SC_NOT_RESERVED = 0, /* not under $sc: the ACL decides */
	SC_ALLOW,
	SC_DENY,
};

/* The verdict for <access> (security.h's ACCESS_*) on <topic> (a filter for
 * ACCESS_SUBSCRIBE) by <client_id> authenticated as <username> (NULL =
 * anonymous), when the Security Center connects as <sc_username> (NULL =
 * none configured: nobody speaks for it). */
enum sc_verdict sc_topic_check(struct moat_bytes topic, int access, const char *client_id,
			       const char *username, const char *sc_username);

#endif
