/*
 * test_mempool_memacct.c - when the node accountant gives freed memory
 * back (ma_tick: enough freed and the node quiet), and
 * libvirgo's list of chunks still to free (orphans.c: bounded, nothing
 * lost or duplicated under threads).
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "../../src/lib/orphans.h"
#include "../../src/services/memacct.h"

static void tick_trims_after_a_quiet_burst(void **state)
{
	(void)state;
	struct ma_acct *ma = ma_new(UINT64_C(1) << 30);
	struct ma_usage u;
	/* little freed: nothing to do */
	assert_true(ma_reserve_pinned(ma, 4096));
	ma_release_pinned(ma, 4096);
	assert_false(ma_tick(ma));
	/* a burst freed: trimmed at the first quiet tick */
	for (int i = 0; i < 16; i++)
		assert_true(ma_reserve_pinned(ma, UINT64_C(1) << 20));
	for (int i = 0; i < 16; i++)
		ma_release_pinned(ma, UINT64_C(1) << 20);
	assert_true(ma_tick(ma));
	ma_get_usage(ma, &u);
	assert_int_equal(u.trims, 1);
	assert_int_equal(u.freed_since_trim, 0);
	assert_false(ma_tick(ma)); /* nothing new since */
	/* cache bytes count too */
	assert_true(ma_reserve_cache(ma, MA_TRIM_MIN));
	ma_release_cache(ma, MA_TRIM_MIN);
	assert_true(ma_tick(ma));
	ma_free(ma);
}

/* A busy node does not stall its workers on a trim; the first quiet
 * second after the burst does it. */
static void busy_node_trims_when_quiet(void **state)
{
	(void)state;
	struct ma_acct *ma = ma_new(UINT64_C(1) << 30);
	assert_true(ma_reserve_pinned(ma, MA_TRIM_MIN));
	ma_release_pinned(ma, MA_TRIM_MIN);
	for (int tick = 0; tick < 5; tick++) {
		/* a busy second: many small reservations and releases */
		for (int i = 0; i < MA_TRIM_BUSY_OPS; i++) {
			assert_true(ma_reserve_pinned(ma, 16));
			ma_release_pinned(ma, 16);
		}
		assert_false(ma_tick(ma));
	}
	assert_true(ma_tick(ma)); /* quiet now */
	ma_free(ma);
}

static void orphans_keep_and_bound(void **state)
{
	(void)state;
	struct vc_orphans o;
	orphans_init(&o);
	uint64_t out[8];
	assert_int_equal(orphans_take(&o, out, 8), 0);
	for (uint64_t v = 1; v <= 5; v++)
		orphans_add(&o, v);
	size_t n = orphans_take(&o, out, 3);
	assert_int_equal(n, 3);
	n += orphans_take(&o, out + 3, 8);
	assert_int_equal(n, 5);
	uint64_t sum = 0;
	for (size_t i = 0; i < n; i++)
		sum += out[i];
	assert_int_equal(sum, 15);
	assert_int_equal(orphans_take(&o, out, 8), 0);
	/* bounded: what does not fit is counted as lost */
	for (uint64_t v = 0; v < VC_ORPHANS_MAX + 10; v++)
		orphans_add(&o, v + 1);
	assert_int_equal(atomic_load(&o.count), VC_ORPHANS_MAX);
	assert_int_equal(atomic_load(&o.lost), 10);
	orphans_destroy(&o);
}

static struct vc_orphans shared;

static void *adder(void *arg)
{
	uint64_t base = (uint64_t)(uintptr_t)arg;
	for (uint64_t i = 0; i < 10000; i++)
		orphans_add(&shared, base + i);
	return NULL;
}

static void orphans_under_threads(void **state)
{
	(void)state;
	orphans_init(&shared);
	pthread_t th[4];
	for (int i = 0; i < 4; i++)
		pthread_create(&th[i], NULL, adder, (void *)(uintptr_t)(i * 100000 + 1));
	uint8_t *seen = calloc(400000, 1);
	assert_non_null(seen);
	size_t got = 0;
	uint64_t buf[64];
	struct timespec t0, t;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (int done = 0; done < 2;) {
		clock_gettime(CLOCK_MONOTONIC, &t);
		assert_true(t.tv_sec - t0.tv_sec < 30); /* none may get lost */
		size_t n = orphans_take(&shared, buf, 64);
		for (size_t i = 0; i < n; i++) {
			assert_true(buf[i] > 0 && buf[i] < 400000);
			assert_int_equal(seen[buf[i]], 0);
			seen[buf[i]] = 1;
		}
		got += n;
		if (got == 40000)
			done = 2;
	}
	for (int i = 0; i < 4; i++)
		pthread_join(th[i], NULL);
	assert_int_equal(orphans_take(&shared, buf, 64), 0);
	free(seen);
	orphans_destroy(&shared);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(tick_trims_after_a_quiet_burst),
		cmocka_unit_test(busy_node_trims_when_quiet),
		cmocka_unit_test(orphans_keep_and_bound),
		cmocka_unit_test(orphans_under_threads),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
