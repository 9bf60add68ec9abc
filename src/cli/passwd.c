/*
 * `moat passwd`: mosquitto_passwd's interface over Moat's password files.
 * New entries are argon2id (or SCRAM-SHA-256 with --scram); other lines are
 * kept byte for byte. The file is replaced atomically (temporary file in
 * the same directory, fsync, rename) with mode 0600. Passwords come from
 * -b or from /dev/tty without echo, and are wiped after hashing.
 */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <termios.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include <moat/error.h>

#include "auth/passwd.h"
#include "base/buf.h"
#include "cli/cli.h"
#include "conf/passwd_file.h"

enum { PW_MAX = 1024, FILE_MAX = 64 * 1024 * 1024 };

struct pw_opts {
	bool create, delete, batch, update, scram;
	const char *file, *user, *password;
};

static void usage(FILE *out)
{
	fprintf(out, "Usage: moat passwd [-c | -D] [--scram] FILE USER\n"
		     "       moat passwd [-c] [--scram] -b FILE USER PASSWORD\n"
		     "       moat passwd [--scram] -U FILE\n"
		     " -b       take the password from the command line (visible to other users)\n"
		     " -c       create or overwrite FILE\n"
		     " -D       delete USER\n"
		     " -U       hash every plain-text password in FILE in place\n"
		     " --scram  write SCRAM-SHA-256 entries (4096 iterations) instead of argon2id\n"
		     "Without -b the password is read twice from the terminal, without echo.\n");
}

static int parse(int argc, char **argv, struct pw_opts *o)
{
	const char *pos[3];
	int npos = 0, want;

	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];

		if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
			usage(stdout);
			return 2;
		} else if (strcmp(a, "-c") == 0) {
			o->create = true;
		} else if (strcmp(a, "-D") == 0) {
			o->delete = true;
		} else if (strcmp(a, "-b") == 0) {
			o->batch = true;
		} else if (strcmp(a, "-U") == 0) {
			o->update = true;
		} else if (strcmp(a, "--scram") == 0) {
			o->scram = true;
		} else if (strcmp(a, "-H") == 0 && i + 1 < argc) {
			const char *alg = argv[++i];

			if (strcmp(alg, "argon2id") == 0) {
				o->scram = false;
			} else if (strcmp(alg, "scram-sha-256") == 0) {
				o->scram = true;
			} else {
				fprintf(stderr,
					"moat passwd: hash \"%s\" is not offered (sha512 and "
					"sha512-pbkdf2 are weak), use -H argon2id (default) "
					"or --scram\n",
					alg);
				return 1;
			}
		} else if (a[0] == '-' && a[1] != '\0') {
			fprintf(stderr, "moat passwd: unknown option %s\n", a);
			usage(stderr);
			return 1;
		} else if (npos < 3) {
			pos[npos++] = a;
		} else {
			fprintf(stderr, "moat passwd: too many arguments\n");
			usage(stderr);
			return 1;
		}
	}
	if ((o->create && o->delete) || (o->update && (o->create || o->delete || o->batch)) ||
	    (o->batch && o->delete)) {
		fprintf(stderr, "moat passwd: -c, -D, -U and -b -D cannot be combined\n");
		return 1;
	}
	want = o->update ? 1 : o->batch ? 3 : 2;
	if (npos != want) {
		usage(stderr);
		return 1;
	}
	o->file = pos[0];
	o->user = npos > 1 ? pos[1] : NULL;
	o->password = npos > 2 ? pos[2] : NULL;
	return 0;
}

static bool user_is_valid(const char *u)
{
	size_t n = strlen(u);

	if (n == 0 || n > PWF_USER_MAX)
		return false;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)u[i] < 0x20 || u[i] == 0x7f || u[i] == ':')
			return false;
	return true;
}

/* Reads one line without echo from the terminal <fd> into <out>. */
static int read_hidden(int fd, const char *prompt, char out[PW_MAX + 1])
{
	struct termios old, quiet;
	size_t n = 0;
	char c;
	ssize_t r;

	if (tcgetattr(fd, &old) < 0)
		return -1;
	quiet = old;
	quiet.c_lflag &= ~(tcflag_t)(ECHO | ECHONL);
	quiet.c_lflag |= ICANON;
	if (write(fd, prompt, strlen(prompt)) < 0 || tcsetattr(fd, TCSAFLUSH, &quiet) < 0)
		return -1;
	while ((r = read(fd, &c, 1)) == 1 && c != '\n') {
		if (n < PW_MAX)
			out[n] = c;
		n++;
	}
	tcsetattr(fd, TCSAFLUSH, &old);
	(void)!write(fd, "\n", 1);
	if (r != 1 || n > PW_MAX) {
		OPENSSL_cleanse(out, PW_MAX + 1);
		return -1;
	}
	out[n] = '\0';
	return 0;
}

/* Prompts twice on /dev/tty. 0, or 1 after printing an error. */
static int prompt(char pw[PW_MAX + 1])
{
	char again[PW_MAX + 1];
	int fd = open("/dev/tty", O_RDWR | O_NOCTTY | O_CLOEXEC);
	int rc = 1;

	if (fd < 0 || !isatty(fd)) {
		fprintf(stderr, "moat passwd: no terminal to read the password from; use -b FILE "
				"USER PASSWORD\n");
		if (fd >= 0)
			close(fd);
		return 1;
	}
	if (read_hidden(fd, "Password: ", pw) < 0 ||
	    read_hidden(fd, "Reenter password: ", again) < 0)
		fprintf(stderr, "moat passwd: could not read a password of at most %d bytes\n",
			PW_MAX);
	else if (strcmp(pw, again) != 0)
		fprintf(stderr, "moat passwd: passwords do not match\n");
	else
		rc = 0;
	OPENSSL_cleanse(again, sizeof(again));
	close(fd);
	return rc;
}

/* "user:hash\n" for <user> and <pw> appended to <out>. 0, or 1 after printing an error. */
static int append_entry(struct buf *out, const char *user, const char *pw, size_t pw_len,
			bool scram)
{
	char hash[PASSWD_HASH_TEXT_MAX];
	int rc;

	if (pw_len == 0) {
		fprintf(stderr, "moat passwd: empty password for \"%s\", choose one\n", user);
		return 1;
	}
	rc = scram ? passwd_hash_scram((const uint8_t *)pw, pw_len, SCRAM_MIN_ITERATIONS, hash)
		   : passwd_hash_argon2id((const uint8_t *)pw, pw_len, hash);
	if (rc == MOAT_OK)
		rc = buf_append(out, user, strlen(user));
	if (rc == MOAT_OK)
		rc = buf_append(out, ":", 1);
	if (rc == MOAT_OK)
		rc = buf_append(out, hash, strlen(hash));
	if (rc == MOAT_OK)
		rc = buf_append(out, "\n", 1);
	OPENSSL_cleanse(hash, sizeof(hash));
	if (rc < 0) {
		fprintf(stderr, "moat passwd: hashing failed: %s\n", moat_strerror(rc));
		return 1;
	}
	return 0;
}

/* Reads <path> into <out>. 0, or 1 after printing an error. */
static int read_file(const char *path, struct buf *out)
{
	char chunk[65536];
	ssize_t n;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0) {
		fprintf(stderr, "moat passwd: cannot open %s: %s (use -c to create it)\n", path,
			strerror(errno));
		return 1;
	}
	while ((n = read(fd, chunk, sizeof(chunk))) > 0) {
		if (buf_used(out) + (size_t)n > FILE_MAX || buf_append(out, chunk, (size_t)n) < 0) {
			n = -1;
			errno = EFBIG;
			break;
		}
	}
	close(fd);
	OPENSSL_cleanse(chunk, sizeof(chunk));
	if (n < 0) {
		fprintf(stderr, "moat passwd: cannot read %s: %s\n", path, strerror(errno));
		return 1;
	}
	return 0;
}

/* Replaces <path> with <data> atomically, mode 0600. 0, or 1 after printing an error. */
static int write_atomic(const char *path, const struct buf *data)
{
	char *dcopy = strdup(path), *tmp = NULL;
	const char *dir;
	size_t off = 0, len = buf_used(data);
	int fd = -1, dfd, ok = 0;

	if (dcopy == NULL)
		goto out;
	dir = dirname(dcopy);
	if (asprintf(&tmp, "%s/.moat-passwd.XXXXXX", dir) < 0) {
		tmp = NULL;
		goto out;
	}
	fd = mkstemp(tmp); /* mode 0600 */
	if (fd < 0)
		goto out;
	while (off < len) {
		ssize_t n = write(fd, buf_head(data) + off, len - off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			goto out_unlink;
		off += (size_t)n;
	}
	if (fchmod(fd, 0600) < 0 || fsync(fd) < 0 || close(fd) < 0) {
		fd = -1;
		goto out_unlink;
	}
	fd = -1;
	if (rename(tmp, path) < 0)
		goto out_unlink;
	dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd >= 0) {
		(void)fsync(dfd);
		close(dfd);
	}
	ok = 1;
	goto out;
out_unlink:
	unlink(tmp);
out:
	if (!ok)
		fprintf(stderr, "moat passwd: cannot write %s: %s\n", path, strerror(errno));
	if (fd >= 0)
		close(fd);
	free(tmp);
	free(dcopy);
	return ok ? 0 : 1;
}

/* Next line of [*p, end): start and length without the newline; *p moves past it. */
static bool next_line(const char **p, const char *end, const char **s, size_t *n, size_t *full)
{
	const char *nl;

	if (*p >= end)
		return false;
	nl = memchr(*p, '\n', (size_t)(end - *p));
	*s = *p;
	*n = nl == NULL ? (size_t)(end - *p) : (size_t)(nl - *p);
	*full = nl == NULL ? *n : *n + 1;
	*p += *full;
	return true;
}

static bool line_is_user(const char *s, size_t n, const char *user)
{
	size_t ulen = strlen(user);

	return s[0] != '#' && n > ulen && s[ulen] == ':' && memcmp(s, user, ulen) == 0;
}

/* -U: hashes every line whose password is not a known hash. */
static int update_all(const struct pw_opts *o, const struct buf *in, struct buf *out)
{
	const char *p = (const char *)buf_head(in), *end = p + buf_used(in), *s;
	size_t n, full, line = 0;

	while (next_line(&p, end, &s, &n, &full)) {
		struct pwf_hash h;
		const char *colon, *why;
		char user[PWF_USER_MAX + 1], pw[PW_MAX + 1];
		size_t plen, ulen;
		int rc;

		line++;
		if (n > 0 && s[n - 1] == '\r')
			n--; /* CRLF: the CR is not part of the password */
		colon = memchr(s, ':', n);
		if (n == 0 || s[0] == '#' ||
		    (colon != NULL &&
		     pwf_hash_parse(colon + 1, (size_t)(s + n - colon - 1), &h, &why) == MOAT_OK)) {
			if (buf_append(out, s, full) < 0)
				return 1;
			continue;
		}
		ulen = colon == NULL ? 0 : (size_t)(colon - s);
		plen = colon == NULL ? 0 : (size_t)(s + n - colon - 1);
		if (colon == NULL || ulen == 0 || ulen > PWF_USER_MAX || plen > PW_MAX) {
			fprintf(stderr, "moat passwd: %s:%zu: not USER:PASSWORD, fix the line\n",
				o->file, line);
			return 1;
		}
		memcpy(user, s, ulen);
		user[ulen] = '\0';
		memcpy(pw, colon + 1, plen);
		pw[plen] = '\0';
		rc = user_is_valid(user) ? append_entry(out, user, pw, plen, o->scram) : -1;
		OPENSSL_cleanse(pw, sizeof(pw));
		if (rc == -1)
			fprintf(stderr, "moat passwd: %s:%zu: bad username, fix the line\n",
				o->file, line);
		if (rc != 0)
			return 1;
	}
	return 0;
}

/* Copies <in> to <out> without <user>'s lines; sets <found>. */
static int drop_user(const struct buf *in, const char *user, struct buf *out, bool *found)
{
	const char *p = (const char *)buf_head(in), *end = p + buf_used(in), *s;
	size_t n, full;

	*found = false;
	while (next_line(&p, end, &s, &n, &full)) {
		if (n > 0 && line_is_user(s, n, user)) {
			*found = true;
			continue;
		}
		if (buf_append(out, s, full) < 0)
			return 1;
		if (full == n && n > 0 &&
		    buf_append(out, "\n", 1) < 0) /* a last line without newline */
			return 1;
	}
	return 0;
}

int cli_passwd_main(int argc, char **argv)
{
	struct pw_opts o = {0};
	struct buf in = {0}, out = {0};
	char pw[PW_MAX + 1] = {0};
	bool found = false;
	int rc;

	rc = parse(argc, argv, &o);
	if (rc != 0)
		return rc == 2 ? 0 : 1;
	if (o.user != NULL && !user_is_valid(o.user)) {
		fprintf(stderr, "moat passwd: username must be non-empty, without ':' or control "
				"characters\n");
		return 1;
	}
	if (!o.create && read_file(o.file, &in) != 0)
		return 1;
	if (o.update) {
		rc = update_all(&o, &in, &out);
	} else if (o.delete) {
		rc = drop_user(&in, o.user, &out, &found);
		if (rc == 0 && !found) {
			fprintf(stderr, "moat passwd: user \"%s\" is not in %s\n", o.user, o.file);
			rc = 1;
		}
	} else {
		if (o.batch) {
			if (strlen(o.password) > PW_MAX) {
				fprintf(stderr, "moat passwd: password longer than %d bytes\n",
					PW_MAX);
				rc = 1;
			} else {
				strcpy(pw, o.password);
			}
		} else {
			rc = prompt(pw);
		}
		if (rc == 0)
			rc = drop_user(&in, o.user, &out, &found);
		if (rc == 0)
			rc = append_entry(&out, o.user, pw, strlen(pw), o.scram);
		OPENSSL_cleanse(pw, sizeof(pw));
	}
	if (rc == 0)
		rc = write_atomic(o.file, &out);
	if (in.data != NULL)
		OPENSSL_cleanse(in.data, in.cap);
	if (out.data != NULL)
		OPENSSL_cleanse(out.data, out.cap);
	buf_fini(&in);
	buf_fini(&out);
	return rc;
}
