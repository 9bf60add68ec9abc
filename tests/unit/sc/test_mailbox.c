/* The admin hooks' mailbox (src/sc/mailbox.c) with a real second thread: a
 * posted job reaches the taker with its text and its result and message go
 * back; a job nobody takes times out and is withdrawn (a later take finds
 * nothing); posts after stop, and posters waiting at stop, get
 * MOAT_E_CLOSED; bad arguments are refused. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include <moat/error.h>

#include "sc/mailbox.h"

struct poster {
	struct mailbox *box;
	int kind;
	const char *arg;
	int rc;
	struct moat_diag d;
};

static void *post_thread(void *arg)
{
	struct poster *p = arg;

	p->rc = mailbox_post(p->box, p->kind, p->arg, &p->d);
	return NULL;
}

static void take_when_posted(struct mailbox *b, int *kind, char *arg)
{
	for (int i = 0; i < 500 && !mailbox_take(b, kind, arg); i++)
		usleep(2000);
}

static void job_and_result_cross_threads(void **state)
{
	struct mailbox b;
	struct poster p = {.box = &b, .kind = 2, .arg = "plant/#"};
	struct moat_diag d = {0};
	char arg[MAILBOX_ARG_MAX + 1];
	int kind = 0;
	pthread_t t;

	(void)state;
	mailbox_init(&b, 5);
	assert_int_equal(pthread_create(&t, NULL, post_thread, &p), 0);
	take_when_posted(&b, &kind, arg);
	assert_int_equal(kind, 2);
	assert_string_equal(arg, "plant/#");
	usleep(20000); /* the poster keeps waiting while the job runs */
	snprintf(d.msg, sizeof(d.msg), "no group for plant/#");
	mailbox_done(&b, MOAT_E_NOTFOUND, &d);
	assert_int_equal(pthread_join(t, NULL), 0);
	assert_int_equal(p.rc, MOAT_E_NOTFOUND);
	assert_string_equal(p.d.msg, "no group for plant/#");
	/* and the next one */
	p = (struct poster){.box = &b, .kind = 1};
	assert_int_equal(pthread_create(&t, NULL, post_thread, &p), 0);
	take_when_posted(&b, &kind, arg);
	assert_int_equal(kind, 1);
	assert_string_equal(arg, "");
	d.msg[0] = '\0';
	mailbox_done(&b, MOAT_OK, &d);
	assert_int_equal(pthread_join(t, NULL), 0);
	assert_int_equal(p.rc, MOAT_OK);
	mailbox_fini(&b);
}

static void untaken_job_times_out_and_is_withdrawn(void **state)
{
	struct mailbox b;
	struct moat_diag d = {0};
	char arg[MAILBOX_ARG_MAX + 1], big[MAILBOX_ARG_MAX + 2];
	int kind;

	(void)state;
	mailbox_init(&b, 1);
	assert_int_equal(mailbox_post(&b, 3, NULL, &d), MOAT_E_TIMEOUT);
	assert_non_null(strstr(d.msg, "did not take"));
	assert_false(mailbox_take(&b, &kind, arg));
	assert_int_equal(mailbox_post(&b, 0, NULL, &d), MOAT_E_INVAL);
	memset(big, 'a', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	assert_int_equal(mailbox_post(&b, 1, big, &d), MOAT_E_INVAL);
	mailbox_fini(&b);
}

static void stop_releases_posters(void **state)
{
	struct mailbox b;
	struct poster p;
	struct moat_diag d = {0};
	char arg[MAILBOX_ARG_MAX + 1];
	int kind;
	pthread_t t;

	(void)state;
	mailbox_init(&b, 30);
	p = (struct poster){.box = &b, .kind = 1, .arg = "dev-1"};
	assert_int_equal(pthread_create(&t, NULL, post_thread, &p), 0);
	usleep(50000);
	mailbox_stop(&b);
	assert_int_equal(pthread_join(t, NULL), 0);
	assert_int_equal(p.rc, MOAT_E_CLOSED);
	assert_int_equal(mailbox_post(&b, 1, "x", &d), MOAT_E_CLOSED);
	assert_false(mailbox_take(&b, &kind, arg));
	mailbox_fini(&b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(job_and_result_cross_threads),
	    cmocka_unit_test(untaken_job_times_out_and_is_withdrawn),
	    cmocka_unit_test(stop_releases_posters),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
