/*
 * A reader in a forked child, reporting through a pipe (see child.h).
 */
#include "store/child.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <moat/error.h>

int store_child_start(void (*fn)(int wfd, void *arg), void *arg, pid_t *pid, int *rfd)
{
	int fds[2];

	if (pipe2(fds, O_CLOEXEC) != 0)
		return MOAT_E_IO;
	*pid = fork();
	if (*pid < 0) {
		close(fds[0]);
		close(fds[1]);
		return MOAT_E_IO;
	}
	if (*pid == 0) {
		close(fds[0]);
		fn(fds[1], arg);
		_exit(0);
	}
	close(fds[1]);
	*rfd = fds[0];
	return MOAT_OK;
}

int store_child_wait(pid_t pid)
{
	int status = 0;

	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	return status;
}

bool store_child_write(int fd, const void *p, size_t len)
{
	const uint8_t *q = p;

	while (len > 0) {
		ssize_t n = write(fd, q, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return false;
		q += n;
		len -= (size_t)n;
	}
	return true;
}

bool store_child_write_text(int fd, const void *p, size_t len, size_t max)
{
	uint16_t n = (uint16_t)(len > max ? max : len);

	return store_child_write(fd, &n, sizeof(n)) && store_child_write(fd, p, n);
}

bool store_child_take(const uint8_t **p, const uint8_t *end, void *out, size_t len)
{
	if ((size_t)(end - *p) < len)
		return false;
	memcpy(out, *p, len);
	*p += len;
	return true;
}

bool store_child_take_text(const uint8_t **p, const uint8_t *end, const uint8_t **text, size_t *len)
{
	uint16_t n;

	if (!store_child_take(p, end, &n, sizeof(n)) || (size_t)(end - *p) < n)
		return false;
	*text = *p;
	*len = n;
	*p += n;
	return true;
}
