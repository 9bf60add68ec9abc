/*
 * Crash-safe sequence counter with write-ahead block reservation (see
 * seq.h). The state file holds one line, "moat-seq 1 <boundary>\n"; it is
 * replaced by writing a temporary file, fsyncing it, renaming it over the
 * old one and fsyncing the directory.
 */
#include "e2e/seq.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <moat/error.h>

#include "e2e/kdf.h"

#define SEQ_MAGIC "moat-seq 1 "

static int fsync_dir_of(const char *path)
{
	char *copy = strdup(path);
	int fd, rc = MOAT_OK;

	if (copy == NULL)
		return MOAT_E_NOMEM;
	fd = open(dirname(copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0 || fsync(fd) != 0)
		rc = MOAT_E_IO;
	if (fd >= 0)
		close(fd);
	free(copy);
	return rc;
}

/* Makes <boundary> the durable content of <path>. */
static int persist(const char *path, uint64_t boundary)
{
	char line[64], *tmp;
	size_t len;
	int fd, n, rc = MOAT_E_IO;

	n = snprintf(line, sizeof(line), SEQ_MAGIC "%" PRIu64 "\n", boundary);
	if (n < 0 || (size_t)n >= sizeof(line))
		return MOAT_E_INVAL;
	len = strlen(path) + 5;
	tmp = malloc(len);
	if (tmp == NULL)
		return MOAT_E_NOMEM;
	snprintf(tmp, len, "%s.tmp", path);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd >= 0) {
		if (write(fd, line, (size_t)n) == n && fsync(fd) == 0)
			rc = MOAT_OK;
		if (close(fd) != 0)
			rc = MOAT_E_IO;
	}
	if (rc == MOAT_OK && rename(tmp, path) != 0)
		rc = MOAT_E_IO;
	if (rc != MOAT_OK)
		unlink(tmp);
	free(tmp);
	return rc == MOAT_OK ? fsync_dir_of(path) : rc;
}

/* Reads the boundary from <path>: the exact line format, no leading zeros. */
static int load(const char *path, uint64_t *boundary)
{
	char text[64];
	const size_t magic = sizeof(SEQ_MAGIC) - 1;
	ssize_t n;
	uint64_t v = 0;
	size_t i;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return MOAT_E_IO;
	n = read(fd, text, sizeof(text));
	close(fd);
	if (n < 0)
		return MOAT_E_IO;
	if ((size_t)n == sizeof(text) || (size_t)n < magic + 2 ||
	    memcmp(text, SEQ_MAGIC, magic) != 0 || text[n - 1] != '\n')
		return MOAT_E_PARSE;
	if (text[magic] == '0' && (size_t)n != magic + 2)
		return MOAT_E_PARSE;
	for (i = magic; i < (size_t)n - 1; i++) {
		if (text[i] < '0' || text[i] > '9')
			return MOAT_E_PARSE;
		v = v * 10 + (uint64_t)(text[i] - '0');
		if (v > E2E_SEQ_MAX + 1)
			return MOAT_E_PARSE;
	}
	*boundary = v;
	return MOAT_OK;
}

int seq_open(struct seq_counter *s, const char *path, uint32_t block, bool create)
{
	uint64_t boundary = 0;
	int rc, fd;

	memset(s, 0, sizeof(*s));
	if (path == NULL || block == 0)
		return MOAT_E_INVAL;
	if (create) {
		fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
		if (fd < 0)
			return MOAT_E_IO;
		close(fd);
		rc = persist(path, 0);
	} else {
		rc = load(path, &boundary);
	}
	if (rc < 0)
		return rc;
	s->path = strdup(path);
	if (s->path == NULL)
		return MOAT_E_NOMEM;
	s->next = boundary;
	s->limit = boundary; /* nothing of the stored block may be reused */
	s->block = block;
	return MOAT_OK;
}

int seq_next(struct seq_counter *s, uint64_t *seq)
{
	uint64_t limit;
	int rc;

	if (s->next > E2E_SEQ_MAX)
		return MOAT_E_LIMIT;
	if (s->next == s->limit) {
		limit = E2E_SEQ_MAX + 1 - s->next > s->block ? s->next + s->block : E2E_SEQ_MAX + 1;
		rc = persist(s->path, limit);
		if (rc < 0)
			return rc;
		s->limit = limit;
	}
	*seq = s->next++;
	return MOAT_OK;
}

void seq_close(struct seq_counter *s)
{
	free(s->path);
	s->path = NULL;
}
