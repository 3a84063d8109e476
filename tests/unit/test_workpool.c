/*
 * test_workpool.c - the node's shared pool for blocking work: every job
 * runs exactly once, the queue bound answers -EBUSY at once, freeing
 * cancels what waits, and a job that never ends cannot hang the free.
 */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "../../src/daemon/workpool.h"

static _Atomic int ran, cancelled;
static _Atomic bool release_gate;

static void count_job(void *arg, bool was_cancelled)
{
	(void)arg;
	atomic_fetch_add(was_cancelled ? &cancelled : &ran, 1);
}

/* holds its thread until release_gate (or, for a stuck one, for ever) */
static void gate_job(void *arg, bool was_cancelled)
{
	bool forever = arg != NULL;
	if (was_cancelled) {
		atomic_fetch_add(&cancelled, 1);
		return;
	}
	while (forever || !atomic_load(&release_gate))
		usleep(1000);
	atomic_fetch_add(&ran, 1);
}

static void runs_every_job_once(void **state)
{
	(void)state;
	atomic_store(&ran, 0);
	struct vd_workpool *p = vd_workpool_new(3, 10000, "wp");
	assert_non_null(p);
	for (int i = 0; i < 5000; i++)
		while (vd_workpool_submit(p, count_job, NULL) == -EBUSY)
			usleep(100);
	for (int i = 0; i < 5000 && atomic_load(&ran) < 5000; i++)
		usleep(1000);
	assert_int_equal(atomic_load(&ran), 5000);
	assert_int_equal(vd_workpool_free(p, 1000), 0);
}

static void bounded_queue_and_cancel(void **state)
{
	(void)state;
	atomic_store(&ran, 0);
	atomic_store(&cancelled, 0);
	atomic_store(&release_gate, false);
	struct vd_workpool *p = vd_workpool_new(2, 3, "wp");
	assert_non_null(p);
	/* two run (held), three wait, the sixth is refused at once */
	for (int i = 0; i < 5; i++)
		assert_int_equal(vd_workpool_submit(p, gate_job, NULL), 0);
	int busy = 0;
	for (int i = 0; i < 3; i++)
		busy += vd_workpool_submit(p, gate_job, NULL) == -EBUSY;
	assert_true(busy >= 1);
	atomic_store(&release_gate, true);
	assert_int_equal(vd_workpool_free(p, 5000), 0);
	/* every job accepted ran or was cancelled, exactly once */
	assert_int_equal(atomic_load(&ran) + atomic_load(&cancelled), 5 + 3 - busy);
}

static void stuck_job_cannot_hang_free(void **state)
{
	(void)state;
	struct vd_workpool *p = vd_workpool_new(1, 4, "wp");
	assert_non_null(p);
	assert_int_equal(vd_workpool_submit(p, gate_job, (void *)1), 0);
	usleep(10000);
	struct timespec a, b;
	clock_gettime(CLOCK_MONOTONIC, &a);
	assert_int_equal(vd_workpool_free(p, 200), 1);
	clock_gettime(CLOCK_MONOTONIC, &b);
	long ms = (b.tv_sec - a.tv_sec) * 1000 + (b.tv_nsec - a.tv_nsec) / 1000000;
	assert_true(ms >= 150 && ms < 3000);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(runs_every_job_once),
		cmocka_unit_test(bounded_queue_and_cancel),
		cmocka_unit_test(stuck_job_cannot_hang_free),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
