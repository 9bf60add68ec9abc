/*
 * The systemd readiness protocol (sd_notify) without libsystemd: one
 * datagram to the AF_UNIX socket named by $NOTIFY_SOCKET ("@..." names an
 * abstract socket). With no $NOTIFY_SOCKET every call does nothing, so moatd
 * behaves the same under any other supervisor.
 */
#ifndef MOAT_BROKER_NOTIFY_H
#define MOAT_BROKER_NOTIFY_H

/* Sends <state> ("READY=1", "RELOADING=1", "STOPPING=1", "STATUS=...",
 * several separated by '\n') to the service manager. MOAT_OK when sent or
 * when $NOTIFY_SOCKET is unset; MOAT_E_CONFIG when it is not an absolute path
 * or '@' name that fits a socket address; MOAT_E_IO when the send fails.
 * Any thread. */
int notify_send(const char *state);

#endif
