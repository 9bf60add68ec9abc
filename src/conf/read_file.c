/*
 * Reading a whole configuration-style file (the configuration, password and
 * ACL files) with one size check and one set of messages.
 */
#include "conf/config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <moat/error.h>

int conf_read_file(const char *path, size_t max_bytes, char **data, size_t *len, struct moat_diag *d)
{
	struct stat st;
	ssize_t got;
	size_t have = 0;
	char *buf;
	int fd;

	*data = NULL;
	*len = 0;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		snprintf(d->msg, sizeof(d->msg), "%s: cannot open: %s; check the path", path,
			 strerror(errno));
		return MOAT_E_IO;
	}
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || (uint64_t)st.st_size > max_bytes) {
		snprintf(d->msg, sizeof(d->msg), "%s: not a regular file of at most %zu MiB; check the path",
			 path, max_bytes >> 20);
		close(fd);
		return MOAT_E_CONFIG;
	}
	buf = malloc((size_t)st.st_size + 1);
	if (buf == NULL) {
		close(fd);
		return MOAT_E_NOMEM;
	}
	/* read one byte past the size fstat saw, so a file that grew is refused */
	while ((got = read(fd, buf + have, (size_t)st.st_size + 1 - have)) > 0 &&
	       have + (size_t)got <= (size_t)st.st_size)
		have += (size_t)got;
	close(fd);
	if (got != 0) {
		snprintf(d->msg, sizeof(d->msg), "%s: %s", path,
			 got < 0 ? "read error; check the file" : "file changed while read; retry");
		explicit_bzero(buf, (size_t)st.st_size + 1);
		free(buf);
		return got < 0 ? MOAT_E_IO : MOAT_E_CONFIG;
	}
	buf[have] = '\0';
	*data = buf;
	*len = have;
	return MOAT_OK;
}
