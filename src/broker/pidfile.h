/*
 * moatd's pid file (pid_file PATH): refused when it names a moatd that is
 * still running, written once the broker serves, removed at a clean exit.
 * Unlike mosquitto, which overwrites it, a second moatd started by mistake
 * with the same configuration stops before it touches anything.
 */
#ifndef MOAT_BROKER_PIDFILE_H
#define MOAT_BROKER_PIDFILE_H

#include <stddef.h>

/* Checks that <path> may be (over)written: it does not exist, is empty, or
 * names a process that is gone, is this one, or is not a moatd (a pid reused
 * after a crash). MOAT_OK; MOAT_E_DENIED when it names a running moatd (its
 * pid in *<pid>); MOAT_E_CONFIG when it holds something other than a pid
 * (not our file: never overwritten); MOAT_E_IO when it cannot be read. <err>
 * (<err_len> bytes) gets a message naming the file and the fix. */
int pidfile_check(const char *path, long *pid, char *err, size_t err_len);

/* Writes this process's pid and a newline to <path> (created 0644, not
 * following a symbolic link). MOAT_OK or MOAT_E_IO (errno set). */
int pidfile_write(const char *path);

/* Removes <path> if it still names this process (a successor's file stays). */
void pidfile_remove(const char *path);

#endif
