/*
 * test_lib_lifecycle.c - libvirgo's life cycle against a real node:
 * virgo_fini with async jobs still running waits for them (the library's
 * own threads must never use a freed client; under ASan a use after
 * free fails this test), and their results stay waitable.
 */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "../harness.h"
#include "virgo.h"

static void fini_waits_for_running_jobs(void **state)
{
	(void)state;
	struct th_cluster c;
	assert_int_equal(th_cluster_start(&c, 1, NULL, NULL), 0);
	assert_int_equal(th_cluster_client(&c), 0);
	struct virgo_call_opts o = {.node_id = 1};
	virgo_job_t j[4];
	for (int i = 0; i < 4; i++)
		assert_int_equal(virgo_clone_submit("virgo_sleep", "300", 3, &o, &j[i]), 0);
	int64_t t0 = th_now_ms();
	virgo_fini();
	int64_t took = th_now_ms() - t0;
	assert_true(took >= 250); /* it waited for the jobs */
	for (int i = 0; i < 4; i++) {
		struct virgo_run_result r;
		assert_int_equal(virgo_job_wait(j[i], 0, &r), 0);
		assert_int_equal(r.node_id, 1);
		virgo_run_result_free(&r);
	}
	assert_int_equal(th_cluster_stop(&c), 0);
}

int main(void)
{
	signal(SIGPIPE, SIG_IGN);
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(fini_waits_for_running_jobs),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
