/*
 * test_cpupool_pool.c - the cpupool worker pool: jobs run, a full pool
 * refuses at once, queued jobs are dropped at free, and freeing gives up
 * on a job that never returns after its timeout (issue 14 #6: SIGTERM
 * never finished while a plugin ignored its cancel flag).
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <time.h>

#include <cmocka.h>

#include "../harness.h"

#include "../../src/services/cpupool_pool.h"

static atomic_int ran, dropped, release, started;

static void run_job(void *arg)
{
	(void)arg;
	atomic_fetch_add(&started, 1);
	while (!atomic_load(&release)) {
		struct timespec ts = {0, 1000000};
		nanosleep(&ts, NULL);
	}
	atomic_fetch_add(&ran, 1);
}

static void drop_job(void *arg)
{
	(void)arg;
	atomic_fetch_add(&dropped, 1);
}

static void wait_started(int n)
{
	int64_t deadline = th_now_ms() + 5000;
	while (atomic_load(&started) < n) {
		assert_true(th_now_ms() < deadline);
		struct timespec ts = {0, 1000000};
		nanosleep(&ts, NULL);
	}
}

static void runs_refuses_drops(void **s)
{
	(void)s;
	atomic_store(&ran, 0), atomic_store(&dropped, 0), atomic_store(&started, 0);
	atomic_store(&release, 0);
	struct cp_pool *p = cp_pool_new(1, 1, run_job, drop_job);
	assert_non_null(p);
	assert_int_equal(cp_pool_submit(p, NULL), 0);
	wait_started(1);
	assert_int_equal(cp_pool_submit(p, NULL), 0); /* queued */
	assert_int_equal(cp_pool_submit(p, NULL), -EBUSY);
	struct cp_pool_counts c;
	cp_pool_counts(p, &c);
	assert_int_equal(c.running, 1);
	assert_int_equal(c.queued, 1);
	atomic_store(&release, 1);
	assert_int_equal(cp_pool_free(p, 5000), 0);
	assert_true(atomic_load(&ran) >= 1);
	assert_int_equal(atomic_load(&ran) + atomic_load(&dropped), 2);
}

/* kept reachable: the pool given up on is deliberately never freed */
static struct cp_pool *abandoned;

static void free_gives_up_on_a_stuck_job(void **s)
{
	(void)s;
	atomic_store(&ran, 0), atomic_store(&dropped, 0), atomic_store(&started, 0);
	atomic_store(&release, 0);
	abandoned = cp_pool_new(2, 4, run_job, drop_job);
	assert_non_null(abandoned);
	assert_int_equal(cp_pool_submit(abandoned, NULL), 0);
	wait_started(1);
	assert_int_equal(cp_pool_submit(abandoned, NULL), 0);
	wait_started(2);
	assert_int_equal(cp_pool_submit(abandoned, NULL), 0); /* queued: dropped */
	int64_t t0 = th_now_ms();
	assert_int_equal(cp_pool_free(abandoned, 300), -1);
	int64_t took = th_now_ms() - t0;
	assert_true(took >= 250 && took < 3000);
	assert_int_equal(atomic_load(&dropped), 1);
	/* the stuck jobs may still return: their threads then leave */
	atomic_store(&release, 1);
	int64_t deadline = th_now_ms() + 5000;
	while (atomic_load(&ran) < 2) {
		assert_true(th_now_ms() < deadline);
		struct timespec ts = {0, 1000000};
		nanosleep(&ts, NULL);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(runs_refuses_drops),
		cmocka_unit_test(free_gives_up_on_a_stuck_job),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
