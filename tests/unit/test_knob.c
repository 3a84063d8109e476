/*
 * test_knob.c - the live-knob registry (daemon/knob.h): a knob's
 * validate+apply callback decides, a refused value keeps the old one and
 * says why, names are unique, unregistering removes a module's knobs and
 * reporters; and the cpupool's live pool resize (cpupool_pool.h): fewer
 * workers let running jobs finish and then run one at a time, more start
 * at once.
 */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "../../src/daemon/knob.h"
#include "../../src/services/cpupool_pool.h"

static int level = 3;

static int level_set(void *ctx, const char *v, char *why, size_t cap)
{
	(void)ctx;
	char *end;
	long x = strtol(v, &end, 10);
	if (*v == '\0' || *end || x < 0 || x > 9) {
		snprintf(why, cap, "level must be 0..9");
		return -EINVAL;
	}
	level = (int)x;
	return 0;
}

static void level_get(void *ctx, char *buf, size_t cap)
{
	(void)ctx;
	snprintf(buf, cap, "%d", level);
}

static void emit_cb(void *arg, const char *key, const char *value)
{
	char *out = arg;
	strcat(out, key);
	strcat(out, "=");
	strcat(out, value);
	strcat(out, ";");
}

static void report(void *ctx, vknob_emit_fn emit, void *arg)
{
	(void)ctx;
	emit(arg, "learnt_x", "42");
}

static void registry(void **state)
{
	(void)state;
	static int owner;
	char why[VKNOB_WHY], buf[64];
	assert_int_equal(vknob_register("level", "a test knob", level_set, level_get, &owner), 0);
	assert_int_equal(vknob_register("level", "again", level_set, level_get, &owner), -EEXIST);
	assert_true(vknob_exists("level"));
	assert_int_equal(vknob_set("level", "7", why, sizeof why), 0);
	assert_int_equal(level, 7);
	assert_int_equal(vknob_set("level", "70", why, sizeof why), -EINVAL);
	assert_string_equal(why, "level must be 0..9");
	assert_int_equal(level, 7); /* the old value stays */
	assert_int_equal(vknob_get("level", buf, sizeof buf), 0);
	assert_string_equal(buf, "7");
	assert_int_equal(vknob_set("nope", "1", why, sizeof why), -ENOENT);
	assert_int_equal(vknob_add_reporter(report, &owner), 0);
	char out[256] = "";
	vknob_report(emit_cb, out);
	assert_string_equal(out, "learnt_x=42;");
	vknob_unregister(&owner);
	assert_false(vknob_exists("level"));
	out[0] = '\0';
	vknob_report(emit_cb, out);
	assert_string_equal(out, "");
	/* the node-level knobs */
	vknob_node_init();
	assert_int_equal(vknob_weight(), 100);
	assert_int_equal(vknob_set("weight", "0", why, sizeof why), 0);
	assert_int_equal(vknob_weight(), 0);
	assert_int_equal(vknob_set("weight", "1001", why, sizeof why), -EINVAL);
	assert_int_equal(vknob_weight(), 0);
	assert_int_equal(vknob_set("MaxNetworkBandwidth", "255", why, sizeof why), 0);
	assert_true(vknob_bandwidth_mbit() == 255);
	assert_int_equal(vknob_set("MaxNetworkBandwidth", "-1", why, sizeof why), -EINVAL);
	assert_true(vknob_bandwidth_mbit() == 255);
	/* no analytics service: no variables */
	assert_int_equal(vknob_var("x", buf, sizeof buf), -ENOENT);
	assert_int_equal(vknob_env(buf, sizeof buf), 0);
}

static _Atomic int running, peak;

static void job_run(void *arg)
{
	(void)arg;
	int now = atomic_fetch_add(&running, 1) + 1;
	int p = atomic_load(&peak);
	while (now > p && !atomic_compare_exchange_weak(&peak, &p, now))
		;
	struct timespec ts = {0, 60 * 1000 * 1000};
	nanosleep(&ts, NULL);
	atomic_fetch_sub(&running, 1);
}

static void wait_idle(struct cp_pool *p)
{
	for (int i = 0; i < 500; i++) {
		struct cp_pool_counts c;
		cp_pool_counts(p, &c);
		if (c.running == 0 && c.queued == 0)
			return;
		struct timespec ts = {0, 5 * 1000 * 1000};
		nanosleep(&ts, NULL);
	}
	fail_msg("the pool never became idle");
}

static void pool_resize(void **state)
{
	(void)state;
	struct cp_pool *p = cp_pool_new(2, 8, job_run, NULL);
	assert_non_null(p);
	for (int i = 0; i < 4; i++)
		assert_int_equal(cp_pool_submit(p, NULL), 0);
	wait_idle(p);
	assert_int_equal(atomic_load(&peak), 2);
	assert_int_equal(cp_pool_resize(p, 1, 8), 0);
	atomic_store(&peak, 0);
	for (int i = 0; i < 4; i++)
		assert_int_equal(cp_pool_submit(p, NULL), 0);
	wait_idle(p);
	assert_int_equal(atomic_load(&peak), 1); /* one at a time */
	assert_int_equal(cp_pool_resize(p, 3, 0), 0);
	atomic_store(&peak, 0);
	int ok = 0;
	for (int i = 0; i < 5; i++)
		ok += cp_pool_submit(p, NULL) == 0;
	assert_int_equal(ok, 3); /* 3 workers, no queue */
	wait_idle(p);
	assert_int_equal(atomic_load(&peak), 3);
	struct cp_pool_counts c;
	cp_pool_counts(p, &c);
	assert_int_equal(c.workers, 3);
	assert_int_equal(c.queue_max, 0);
	assert_int_equal(cp_pool_resize(p, 0, 0), -EINVAL);
	assert_int_equal(cp_pool_free(p, 1000), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(registry),
		cmocka_unit_test(pool_resize),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
