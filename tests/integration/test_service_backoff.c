/*
 * test_service_backoff.c - back-off is per node *and* service: a node that
 * runs the mempool but has its cpupool turned off keeps getting memory,
 * while CPU placement skips it.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "../harness.h"
#include "virgo.h"

static struct th_cluster cl;

static int setup(void **state)
{
	(void)state;
	const char *const extra[] = {NULL, "cpupool_port = 0", NULL};
	if (th_cluster_start_nodes(&cl, 3, NULL, extra,
				   "backoff_ms = 30000\nbackoff_max_ms = 60000\npolicy = random\n"
				   "clone_policy = random\n") != 0)
		return -1;
	return th_cluster_client(&cl);
}

static int teardown(void **state)
{
	(void)state;
	return th_cluster_teardown(&cl);
}

static void cpupool_off_does_not_starve_mempool(void **state)
{
	(void)state;
	struct virgo_load l;
	/* node 2's cpupool refuses: that puts its cpupool in back-off (30 s) */
	assert_int_equal(virgo_load(1, &l), -ECONNREFUSED);
	/* CPU work never lands on node 2 and always succeeds */
	for (int i = 0; i < 30; i++) {
		void *out = NULL;
		size_t len = 0;
		unsigned on = 0;
		struct virgo_call_opts o = {.policy = VIRGO_POLICY_RANDOM};
		assert_int_equal(virgo_clone_ex("virgo_cloud_test", "x", 1, &o, &out, &len, &on), 0);
		assert_true(on == 1 || on == 3);
		free(out);
	}
	/* memory placement still uses node 2 (its mempool is healthy) */
	int on2 = 0;
	for (int i = 0; i < 60; i++) {
		virgo_vuid_t v;
		assert_int_equal(virgo_malloc(8, &v), 0);
		on2 += virgo_vuid_node(v) == 2;
		assert_int_equal(virgo_free(v), 0);
	}
	assert_true(on2 > 0);
	struct virgo_node_info ni;
	assert_int_equal(virgo_node_info(1, &ni), 0);
	assert_int_equal(ni.up, 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(cpupool_off_does_not_starve_mempool),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
