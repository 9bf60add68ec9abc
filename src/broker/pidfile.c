/*
 * The pid file (see pidfile.h). A file's contents are untrusted: at most 32
 * bytes are read, and only "<digits>\n" counts as a pid.
 */
#include "broker/pidfile.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <moat/error.h>

#include "base/text.h"

enum { PID_TEXT_MAX = 32 };

/* Reads <path>: 1 with the pid in *<pid>, 0 when missing or empty, or
 * MOAT_E_CONFIG (not a pid) / MOAT_E_IO. */
static int read_pid(const char *path, long *pid)
{
	char text[PID_TEXT_MAX + 1];
	ssize_t n;
	size_t len;
	uint32_t v;
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);

	if (fd < 0)
		return errno == ENOENT ? 0 : MOAT_E_IO;
	n = read(fd, text, sizeof(text));
	close(fd);
	if (n < 0)
		return MOAT_E_IO;
	len = (size_t)n;
	if (len == 0)
		return 0;
	if (len > PID_TEXT_MAX)
		return MOAT_E_CONFIG;
	if (text[len - 1] == '\n')
		len--;
	if (!text_parse_u32(text, len, &v) || v > 0x7fffffff)
		return MOAT_E_CONFIG;
	*pid = (long)v;
	return 1;
}

/* Whether process <pid> runs a program called moatd. When /proc cannot tell,
 * a live process counts as one. */
static int is_running_moatd(long pid)
{
	char path[64], comm[32] = {0};
	ssize_t n;
	int fd;

	if (kill((pid_t)pid, 0) < 0 && errno != EPERM)
		return 0;
	snprintf(path, sizeof(path), "/proc/%ld/comm", pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 1;
	n = read(fd, comm, sizeof(comm) - 1);
	close(fd);
	if (n <= 0)
		return 1;
	return strncmp(comm, "moatd\n", 6) == 0;
}

int pidfile_check(const char *path, long *pid, char *err, size_t err_len)
{
	int rc = read_pid(path, pid);

	if (rc == MOAT_E_IO) {
		snprintf(err, err_len, "pid_file %s: %s", path, strerror(errno));
		return rc;
	}
	if (rc == MOAT_E_CONFIG) {
		snprintf(err, err_len,
			 "pid_file %s holds something other than a process id; check the path, or "
			 "remove the file",
			 path);
		return rc;
	}
	if (rc == 1 && *pid != (long)getpid() && is_running_moatd(*pid)) {
		snprintf(err, err_len,
			 "pid_file %s: moatd is already running as process %ld; stop it first, or "
			 "give this one another pid_file",
			 path, *pid);
		return MOAT_E_DENIED;
	}
	return MOAT_OK;
}

int pidfile_write(const char *path)
{
	char text[PID_TEXT_MAX];
	int n = snprintf(text, sizeof(text), "%ld\n", (long)getpid());
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0644);
	ssize_t w;

	if (fd < 0)
		return MOAT_E_IO;
	w = write(fd, text, (size_t)n);
	if (close(fd) < 0 || w != n) {
		int e = w < 0 ? errno : EIO;

		unlink(path);
		errno = e;
		return MOAT_E_IO;
	}
	return MOAT_OK;
}

void pidfile_remove(const char *path)
{
	long pid;

	if (read_pid(path, &pid) == 1 && pid == (long)getpid())
		unlink(path);
}
