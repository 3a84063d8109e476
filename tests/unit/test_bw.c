/*
 * test_bw.c - MaxNetworkBandwidth's token bucket (src/daemon/bw.h): no
 * cap grants everything; a cap grants at least a quantum or nothing with
 * a bounded wait; what it grants over time follows the rate; a refund is
 * granted again; a new cap starts afresh.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <cmocka.h>

#include "../../src/daemon/bw.h"

static int64_t mono_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static void uncapped_grants_all(void **state)
{
	(void)state;
	bw_set_mbit(0);
	uint64_t wait = 7;
	assert_int_equal(bw_take(BW_TX, 123456789, &wait), 123456789);
	assert_int_equal(wait, 0);
	assert_int_equal(bw_take(BW_RX, 1, &wait), 1);
}

static void capped_waits_then_grants(void **state)
{
	(void)state;
	bw_set_mbit(8); /* 1,000,000 B/s: a new cap starts with two grants */
	uint64_t wait;
	assert_int_equal(bw_take(BW_TX, 1 << 20, &wait), 32768);
	size_t got = bw_take(BW_TX, 1 << 20, &wait);
	if (got == 0) {
		assert_true(wait > 0 && wait <= BW_MAX_WAIT_US);
		assert_true(wait <= 16400 + 1000); /* 16 KiB at 1 MB/s, about */
	}
	/* less than a quantum wanted: granted whole or not at all */
	got = bw_take(BW_TX, 100, &wait);
	assert_true(got == 0 || got == 100);
	/* the other direction has its own bucket */
	assert_int_equal(bw_take(BW_RX, 1 << 20, &wait), 32768);
	bw_set_mbit(0);
}

static void refund_is_granted_again(void **state)
{
	(void)state;
	bw_set_mbit(8);
	uint64_t wait;
	assert_int_equal(bw_take(BW_TX, 32768, &wait), 32768);
	bw_refund(BW_TX, 20000);
	assert_true(bw_take(BW_TX, 20000, &wait) >= 16384);
	bw_set_mbit(0);
}

/* Takes as fast as granted for 300 ms (waiting as told): the bytes stay
 * within 10% of rate x time (plus the starting two grants). */
static void rate_is_followed(void **state)
{
	(void)state;
	bw_set_mbit(80); /* 10 MB/s */
	int64_t t0 = mono_us(), now;
	uint64_t bytes = 0;
	while ((now = mono_us()) - t0 < 300000) {
		uint64_t wait;
		size_t got = bw_take(BW_TX, 1 << 20, &wait);
		bytes += got;
		if (!got) {
			struct timespec ts = {0, (long)wait * 1000};
			nanosleep(&ts, NULL);
		}
	}
	double want = 10e6 * (double)(now - t0) / 1e6 + 32768;
	assert_true((double)bytes <= want * 1.1);
	assert_true((double)bytes >= want * 0.9);
	assert_int_equal(bw_mbit(), 80);
	bw_set_mbit(0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(uncapped_grants_all),
		cmocka_unit_test(capped_waits_then_grants),
		cmocka_unit_test(refund_is_granted_again),
		cmocka_unit_test(rate_is_followed),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
