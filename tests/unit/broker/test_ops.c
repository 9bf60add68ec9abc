/*
 * Unit tests for moatd's operation helpers: sd_notify datagrams
 * (src/broker/notify.c) and the pid file (src/broker/pidfile.c).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <moat/error.h>

#include "broker/notify.h"
#include "broker/pidfile.h"

struct fixture {
	char dir[64];
	char path[128];
};

static int setup_dir(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	if (f == NULL)
		return -1;
	snprintf(f->dir, sizeof(f->dir), "/tmp/moat-ops-XXXXXX");
	if (mkdtemp(f->dir) == NULL)
		return -1;
	*state = f;
	return 0;
}

static int teardown_dir(void **state)
{
	struct fixture *f = *state;

	unlink(f->path);
	rmdir(f->dir);
	free(f);
	unsetenv("NOTIFY_SOCKET");
	return 0;
}

/* A datagram socket bound to <name> (a path, or "@..." for an abstract name). */
static int bind_dgram(const char *name)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	size_t len = strlen(name);
	socklen_t salen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len);
	int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);

	assert_true(fd >= 0);
	memcpy(sa.sun_path, name, len);
	if (name[0] == '@')
		sa.sun_path[0] = '\0';
	else
		salen++;
	assert_int_equal(bind(fd, (struct sockaddr *)&sa, salen), 0);
	return fd;
}

static void expect_datagram(int fd, const char *text)
{
	char got[256];
	ssize_t n = recv(fd, got, sizeof(got), MSG_DONTWAIT);

	assert_int_equal(n, (ssize_t)strlen(text));
	assert_memory_equal(got, text, strlen(text));
}

static void notify_without_socket_does_nothing(void **state)
{
	(void)state;
	unsetenv("NOTIFY_SOCKET");
	assert_int_equal(notify_send("READY=1"), MOAT_OK);
	setenv("NOTIFY_SOCKET", "", 1);
	assert_int_equal(notify_send("READY=1"), MOAT_OK);
}

static void notify_sends_one_datagram_to_a_path(void **state)
{
	struct fixture *f = *state;
	int fd;

	snprintf(f->path, sizeof(f->path), "%s/notify", f->dir);
	fd = bind_dgram(f->path);
	setenv("NOTIFY_SOCKET", f->path, 1);
	assert_int_equal(notify_send("READY=1\nSTATUS=serving"), MOAT_OK);
	expect_datagram(fd, "READY=1\nSTATUS=serving");
	assert_int_equal(notify_send("STOPPING=1"), MOAT_OK);
	expect_datagram(fd, "STOPPING=1");
	close(fd);
}

static void notify_reaches_an_abstract_socket(void **state)
{
	char name[64];
	int fd;

	(void)state;
	snprintf(name, sizeof(name), "@moat-notify-test-%ld", (long)getpid());
	fd = bind_dgram(name);
	setenv("NOTIFY_SOCKET", name, 1);
	assert_int_equal(notify_send("RELOADING=1"), MOAT_OK);
	expect_datagram(fd, "RELOADING=1");
	close(fd);
}

static void notify_refuses_bad_names_and_reports_a_missing_socket(void **state)
{
	char longname[200];

	(void)state;
	setenv("NOTIFY_SOCKET", "relative/path", 1);
	assert_int_equal(notify_send("READY=1"), MOAT_E_CONFIG);
	setenv("NOTIFY_SOCKET", "@", 1);
	assert_int_equal(notify_send("READY=1"), MOAT_E_CONFIG);
	memset(longname, 'a', sizeof(longname) - 1);
	longname[0] = '/';
	longname[sizeof(longname) - 1] = '\0';
	setenv("NOTIFY_SOCKET", longname, 1); /* longer than sun_path */
	assert_int_equal(notify_send("READY=1"), MOAT_E_CONFIG);
	setenv("NOTIFY_SOCKET", "/nonexistent/moat/notify", 1);
	assert_int_equal(notify_send("READY=1"), MOAT_E_IO);
}

static void write_file(const char *path, const char *text)
{
	FILE *fp = fopen(path, "w");

	assert_non_null(fp);
	fputs(text, fp);
	fclose(fp);
}

static void pidfile_missing_or_empty_may_be_written(void **state)
{
	struct fixture *f = *state;
	char err[256];
	long pid = -1;

	snprintf(f->path, sizeof(f->path), "%s/moatd.pid", f->dir);
	assert_int_equal(pidfile_check(f->path, &pid, err, sizeof(err)), MOAT_OK);
	write_file(f->path, "");
	assert_int_equal(pidfile_check(f->path, &pid, err, sizeof(err)), MOAT_OK);
}

static void pidfile_write_check_remove_round_trip(void **state)
{
	struct fixture *f = *state;
	char text[32] = {0}, want[32], err[256];
	long pid = 0;
	FILE *fp;

	snprintf(f->path, sizeof(f->path), "%s/moatd.pid", f->dir);
	assert_int_equal(pidfile_write(f->path), MOAT_OK);
	fp = fopen(f->path, "r");
	assert_non_null(fp);
	assert_non_null(fgets(text, sizeof(text), fp));
	fclose(fp);
	snprintf(want, sizeof(want), "%ld\n", (long)getpid());
	assert_string_equal(text, want);
	/* our own pid (a restart in a container that reuses it) is not "running" */
	assert_int_equal(pidfile_check(f->path, &pid, err, sizeof(err)), MOAT_OK);
	pidfile_remove(f->path);
	assert_int_equal(access(f->path, F_OK), -1);
}

static void pidfile_of_a_dead_process_is_stale(void **state)
{
	struct fixture *f = *state;
	char text[32], err[256];
	long pid = 0;
	pid_t child = fork();

	assert_true(child >= 0);
	if (child == 0)
		_exit(0);
	waitpid(child, NULL, 0); /* reaped: the pid names no process */
	snprintf(f->path, sizeof(f->path), "%s/moatd.pid", f->dir);
	snprintf(text, sizeof(text), "%ld\n", (long)child);
	write_file(f->path, text);
	assert_int_equal(pidfile_check(f->path, &pid, err, sizeof(err)), MOAT_OK);
	assert_int_equal(pid, child);
}

static void pidfile_of_a_live_process_that_is_not_moatd_is_stale(void **state)
{
	struct fixture *f = *state;
	char text[32], err[256];
	long pid = 0;

	/* this test program is alive but is not called moatd (a reused pid) */
	snprintf(f->path, sizeof(f->path), "%s/moatd.pid", f->dir);
	snprintf(text, sizeof(text), "%ld\n", (long)getppid());
	write_file(f->path, text);
	assert_int_equal(pidfile_check(f->path, &pid, err, sizeof(err)), MOAT_OK);
}

static void pidfile_with_foreign_content_is_refused(void **state)
{
	static const char *bad[] = {
	    "root:x:0:0:root:/root:/bin/bash\n",
	    "12ab\n",
	    "-1\n",
	    "0\n",
	    "007\n",
	    "1 2\n",
	    "99999999999\n",
	    "\n",
	    "123456789012345678901234567890123\n",
	};
	struct fixture *f = *state;
	char err[256];
	long pid = 0;

	snprintf(f->path, sizeof(f->path), "%s/moatd.pid", f->dir);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		write_file(f->path, bad[i]);
		assert_int_equal(pidfile_check(f->path, &pid, err, sizeof(err)), MOAT_E_CONFIG);
		assert_non_null(strstr(err, "something other than a process id"));
		assert_non_null(strstr(err, f->path));
	}
}

static void pidfile_remove_leaves_a_successors_file(void **state)
{
	struct fixture *f = *state;

	snprintf(f->path, sizeof(f->path), "%s/moatd.pid", f->dir);
	write_file(f->path, "1\n");
	pidfile_remove(f->path);
	assert_int_equal(access(f->path, F_OK), 0);
}

static void pidfile_write_does_not_follow_a_symlink(void **state)
{
	struct fixture *f = *state;
	char target[160];

	snprintf(target, sizeof(target), "%s/target", f->dir);
	write_file(target, "keep\n");
	snprintf(f->path, sizeof(f->path), "%s/moatd.pid", f->dir);
	assert_int_equal(symlink(target, f->path), 0);
	assert_int_equal(pidfile_write(f->path), MOAT_E_IO);
	unlink(target);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(notify_without_socket_does_nothing, setup_dir,
					    teardown_dir),
	    cmocka_unit_test_setup_teardown(notify_sends_one_datagram_to_a_path, setup_dir,
					    teardown_dir),
	    cmocka_unit_test_setup_teardown(notify_reaches_an_abstract_socket, setup_dir,
					    teardown_dir),
	    cmocka_unit_test_setup_teardown(notify_refuses_bad_names_and_reports_a_missing_socket,
					    setup_dir, teardown_dir),
	    cmocka_unit_test_setup_teardown(pidfile_missing_or_empty_may_be_written, setup_dir,
					    teardown_dir),
	    cmocka_unit_test_setup_teardown(pidfile_write_check_remove_round_trip, setup_dir,
					    teardown_dir),
	    cmocka_unit_test_setup_teardown(pidfile_of_a_dead_process_is_stale, setup_dir,
					    teardown_dir),
	    cmocka_unit_test_setup_teardown(pidfile_of_a_live_process_that_is_not_moatd_is_stale,
					    setup_dir, teardown_dir),
	    cmocka_unit_test_setup_teardown(pidfile_with_foreign_content_is_refused, setup_dir,
					    teardown_dir),
	    cmocka_unit_test_setup_teardown(pidfile_remove_leaves_a_successors_file, setup_dir,
					    teardown_dir),
	    cmocka_unit_test_setup_teardown(pidfile_write_does_not_follow_a_symlink, setup_dir,
					    teardown_dir),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
