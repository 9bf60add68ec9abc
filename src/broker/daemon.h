/*
 * moatd -d: going to the background without losing start-up errors. The
 * original process forks early (before any thread exists) and waits; the
 * daemon opens its listeners with the terminal still on its stderr, and only
 * once it serves does it detach its stdio and release the waiting parent,
 * which exits 0. A daemon that fails first exits non-zero, and so does the
 * parent, its error already on the terminal.
 */
#ifndef MOAT_BROKER_DAEMON_H
#define MOAT_BROKER_DAEMON_H

/* Forks twice (setsid between: no controlling terminal, not a session
 * leader). Returns MOAT_OK in the daemon with *<ready_fd> for daemon_ready(),
 * or MOAT_E_IO (nothing forked, errno set). The original process does not
 * return: it exits 0 once the daemon calls daemon_ready(), or 1 if the
 * daemon ends before that. Call before any thread starts, signals blocked. */
int daemon_start(int *ready_fd);

/* The daemon serves: chdir("/"), stdin, stdout and stderr to /dev/null (log
 * to a file or syslog), and the parent is released. MOAT_OK or MOAT_E_IO. */
int daemon_ready(int ready_fd);

#endif
