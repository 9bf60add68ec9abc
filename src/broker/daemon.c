/*
 * Daemonizing with a readiness pipe (see daemon.h). The parent blocks on the
 * pipe's read end; the daemon holds the only write end, so the parent sees a
 * byte (ready) or end of file (the daemon exited or crashed).
 */
#include "broker/daemon.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <moat/error.h>

/* The original process: waits for the daemon's word, then exits without
 * running atexit handlers (they belong to the daemon). */
static _Noreturn void parent_wait(int rd, pid_t middle)
{
	char c;
	ssize_t n;

	while (waitpid(middle, NULL, 0) < 0 && errno == EINTR)
		;
	do
		n = read(rd, &c, 1);
	while (n < 0 && errno == EINTR);
	_exit(n == 1 ? 0 : 1);
}

int daemon_start(int *ready_fd)
{
	int fds[2];
	pid_t pid;

	if (pipe2(fds, O_CLOEXEC) < 0)
		return MOAT_E_IO;
	pid = fork();
	if (pid < 0) {
		int e = errno;

		close(fds[0]);
		close(fds[1]);
		errno = e;
		return MOAT_E_IO;
	}
	if (pid > 0) {
		close(fds[1]);
		parent_wait(fds[0], pid);
	}
	close(fds[0]);
	if (setsid() < 0)
		_exit(1);
	pid = fork();
	if (pid < 0)
		_exit(1);
	if (pid > 0)
		_exit(0); /* the session leader goes; its child can never get a terminal */
	*ready_fd = fds[1];
	return MOAT_OK;
}

int daemon_ready(int ready_fd)
{
	int fd = open("/dev/null", O_RDWR | O_CLOEXEC);
	int rc = MOAT_OK;

	if (chdir("/") < 0 || fd < 0)
		rc = MOAT_E_IO;
	if (fd >= 0) {
		if (dup2(fd, STDIN_FILENO) < 0 || dup2(fd, STDOUT_FILENO) < 0 ||
		    dup2(fd, STDERR_FILENO) < 0)
			rc = MOAT_E_IO;
		if (fd > STDERR_FILENO)
			close(fd);
	}
	if (rc == MOAT_OK && write(ready_fd, "1", 1) != 1)
		rc = MOAT_E_IO;
	close(ready_fd);
	return rc;
}
