/*
 * test_balancer.c - every placement policy's choice (lb_choose) on fixed
 * node views with a fixed seed: repeatable, no sockets.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "../../src/lib/balancer.h"

static void random_is_uniform_and_repeatable(void **s)
{
	(void)s;
	struct lb_view v[4] = {{0, 1, -1}, {0, 1, -1}, {0, 1, -1}, {0, 1, -1}};
	uint64_t rng = 15, rng2 = 15;
	unsigned rr = 0;
	int count[4] = {0};
	for (int i = 0; i < 40000; i++) {
		int k = lb_choose(VC_POLICY_RANDOM, v, 4, &rng, &rr);
		assert_true(k >= 0 && k < 4);
		count[k]++;
		/* same seed, same sequence */
		assert_int_equal(k, (int)(lb_rng_next(&rng2) % 4));
	}
	for (int i = 0; i < 4; i++)
		assert_true(count[i] > 9500 && count[i] < 10500);
	assert_int_equal(lb_choose(VC_POLICY_RANDOM, v, 0, &rng, &rr), -1);
}

static void round_robin_cycles(void **s)
{
	(void)s;
	struct lb_view v[3] = {{5, 1, -1}, {0, 1, -1}, {9, 1, -1}};
	uint64_t rng = 1;
	unsigned rr = 0;
	for (int i = 0; i < 9; i++)
		assert_int_equal(lb_choose(VC_POLICY_ROUND_ROBIN, v, 3, &rng, &rr), i % 3);
}

static void least_loaded_uses_jobs_per_worker(void **s)
{
	(void)s;
	uint64_t rng = 3;
	unsigned rr = 0;
	/* 4 jobs on 8 workers is lighter than 1 job on 1 worker */
	struct lb_view v[3] = {{1, 1, -1}, {4, 8, -1}, {3, 2, -1}};
	for (int i = 0; i < 10; i++)
		assert_int_equal(lb_choose(VC_POLICY_LEAST_LOADED, v, 3, &rng, &rr), 1);
	/* ties: spread over the tied nodes only */
	struct lb_view t[3] = {{0, 2, -1}, {5, 2, -1}, {0, 2, -1}};
	int seen[3] = {0};
	for (int i = 0; i < 200; i++)
		seen[lb_choose(VC_POLICY_LEAST_LOADED, t, 3, &rng, &rr)]++;
	assert_int_equal(seen[1], 0);
	assert_true(seen[0] > 50 && seen[2] > 50);
}

static void power_of_two_never_picks_the_heaviest(void **s)
{
	(void)s;
	uint64_t rng = 99;
	unsigned rr = 0;
	struct lb_view v[3] = {{9, 1, -1}, {1, 1, -1}, {0, 1, -1}};
	int seen[3] = {0};
	for (int i = 0; i < 300; i++)
		seen[lb_choose(VC_POLICY_POWER_OF_TWO, v, 3, &rng, &rr)]++;
	assert_int_equal(seen[0], 0);
	/* node 1 wins only when paired with node 0: about a third */
	assert_true(seen[1] > 60 && seen[1] < 140);
	assert_true(seen[2] > 150);
	struct lb_view one = {3, 1, -1};
	assert_int_equal(lb_choose(VC_POLICY_POWER_OF_TWO, &one, 1, &rng, &rr), 0);
}

static void learned_explores_then_exploits(void **s)
{
	(void)s;
	uint64_t rng = 5;
	unsigned rr = 0;
	/* node 2 not measured yet: it is tried first, even though loaded */
	struct lb_view v[3] = {{0, 1, 10}, {0, 1, 200}, {3, 1, -1}};
	assert_int_equal(lb_choose(VC_POLICY_LEARNED, v, 3, &rng, &rr), 2);
	/* all measured: lowest ewma * (1 + jobs/workers) */
	v[2].ewma_ms = 10;
	assert_int_equal(lb_choose(VC_POLICY_LEARNED, v, 3, &rng, &rr), 0); /* 10 vs 40 */
	v[0].jobs = 4; /* 10*5 = 50 > node 2's 40 */
	assert_int_equal(lb_choose(VC_POLICY_LEARNED, v, 3, &rng, &rr), 2);
	v[1].ewma_ms = 1;
	assert_int_equal(lb_choose(VC_POLICY_LEARNED, v, 3, &rng, &rr), 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(random_is_uniform_and_repeatable),
		cmocka_unit_test(round_robin_cycles),
		cmocka_unit_test(least_loaded_uses_jobs_per_worker),
		cmocka_unit_test(power_of_two_never_picks_the_heaviest),
		cmocka_unit_test(learned_explores_then_exploits),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
