/*
 * File-system helpers (see file.h).
 */
#include "base/file.h"

#include <errno.h>
#include <fcntl.h>
#include <unistd.h>

int file_create_private(const char *path)
{
	int fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);

	if (fd < 0)
		return errno == EEXIST ? 0 : -1;
	close(fd);
	return 0;
}
