/*
 * The store directory's owner lock (see lock.h).
 */
#include "store/lock.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <moat/error.h>

/* The pid the current holder wrote, or 0 when unreadable. */
static long holder_pid(int fd)
{
	char text[32];
	ssize_t n = pread(fd, text, sizeof(text) - 1, 0);
	long pid;
	char *end;

	if (n <= 0)
		return 0;
	text[n] = '\0';
	pid = strtol(text, &end, 10);
	return (end != text && pid > 0) ? pid : 0;
}

int store_lock_take(const char *dir, bool create, char *err, size_t errlen)
{
	char path[4096], text[32];
	int fd, n;
	long pid;

	if (create && mkdir(dir, 0700) != 0 && errno != EEXIST) {
		snprintf(err, errlen, "persistence_location %s cannot be created: %s", dir,
			 strerror(errno));
		return MOAT_E_IO;
	}
	if ((size_t)snprintf(path, sizeof(path), "%s/moat.lock", dir) >= sizeof(path)) {
		snprintf(err, errlen, "persistence_location %.200s...: the path is too long", dir);
		return MOAT_E_IO;
	}
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0) {
		snprintf(err, errlen, "%s cannot be opened: %s", path, strerror(errno));
		return MOAT_E_IO;
	}
	if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
		if (errno == EWOULDBLOCK) {
			pid = holder_pid(fd);
			if (pid > 0)
				snprintf(
				    err, errlen,
				    "persistence_location %s is in use by another moatd (pid %ld)",
				    dir, pid);
			else
				snprintf(err, errlen,
					 "persistence_location %s is in use by another moatd", dir);
		} else {
			snprintf(err, errlen, "%s cannot be locked: %s", path, strerror(errno));
		}
		close(fd);
		return MOAT_E_IO;
	}
	n = snprintf(text, sizeof(text), "%ld\n", (long)getpid());
	if (ftruncate(fd, 0) != 0 || pwrite(fd, text, (size_t)n, 0) != n) {
		snprintf(err, errlen, "%s cannot be written: %s", path, strerror(errno));
		close(fd);
		return MOAT_E_IO;
	}
	return fd;
}

void store_lock_release(int fd)
{
	if (fd >= 0)
		close(fd); /* drops the flock; the file stays, its pid is stale but harmless */
}
