/*
 * test_mempool_store.c - allocation table: accounting against the limit,
 * bounds, stored-length semantics, release, and concurrency.
 */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "../../src/common/vuid.h"
#include "../../src/services/mempool_store.h"

struct capture {
	uint8_t buf[256];
	size_t n;
	int calls;
};

static void cap_emit(void *ctx, const uint8_t *b, size_t n)
{
	struct capture *c = ctx;
	c->calls++;
	c->n = n;
	memcpy(c->buf, b, n < sizeof c->buf ? n : sizeof c->buf);
}

static void accounting_and_limit(void **state)
{
	(void)state;
	/* the limit holds exactly a 600- and a 400-byte allocation, each
	 * with its overhead */
	uint64_t limit = mp_store_cost(600) + mp_store_cost(400);
	struct mp_store *st = mp_store_new(4, limit, 600, UINT64_C(1800000000000));
	uint64_t a, b, c;
	assert_int_equal(mp_store_alloc(st, 0, false, &a), -EINVAL);
	assert_int_equal(mp_store_alloc(st, 601, false, &a), -EINVAL);
	assert_int_equal(mp_store_alloc(st, 600, false, &a), 0);
	assert_int_equal(vuid_node(a), 4);
	assert_int_equal(mp_store_alloc(st, 416, false, &b), -ENOMEM);
	assert_int_equal(mp_store_alloc(st, 400, true, &b), 0);
	assert_true(vuid_is_span(b));
	assert_int_equal(mp_store_alloc(st, 1, false, &c), -ENOMEM);
	struct mp_stats s;
	mp_store_stats(st, &s);
	assert_int_equal(s.allocations, 2);
	assert_int_equal(s.bytes, 1000);
	assert_int_equal(s.accounted, limit);
	assert_int_equal(s.limit, limit);
	assert_int_equal(mp_store_release(st, a), 0);
	assert_int_equal(mp_store_release(st, a), -ENOENT);
	mp_store_stats(st, &s);
	assert_int_equal(s.bytes, 400);
	assert_int_equal(mp_store_alloc(st, 600, false, &c), 0);
	assert_true(c != a); /* never reused */
	mp_store_free_all(st);
}

/* What an allocation counts against the limit: never less than what
 * malloc really takes for it (its bytes, the entry, malloc's header and
 * rounding), growing with the size, and impossible for absurd sizes. */
static void cost_counts_overhead(void **state)
{
	(void)state;
	assert_true(mp_store_cost(1) >= 48); /* 1 byte: a 48-byte malloc block */
	assert_true(mp_store_cost(1) <= 64);
	for (uint64_t n = 1; n < 300000; n += n / 7 + 1) {
		assert_true(mp_store_cost(n) >= n + 40);
		assert_true(mp_store_cost(n + 1) >= mp_store_cost(n));
		assert_true(mp_store_cost(n) % 8 == 0);
	}
	/* mmapped sizes: whole pages */
	assert_true(mp_store_cost(1 << 20) >= (1 << 20) + 4096);
	assert_true(mp_store_cost(1 << 20) <= (1 << 20) + 8192);
	assert_true(mp_store_cost(UINT64_MAX) == UINT64_MAX);
	assert_true(mp_store_cost(UINT64_MAX / 2 + 1) == UINT64_MAX);
}

static void bounds_and_stored_length(void **state)
{
	(void)state;
	struct mp_store *st = mp_store_new(1, 1 << 20, 1 << 20, UINT64_C(1800000000000));
	uint64_t v;
	struct capture cap = {0};
	assert_int_equal(mp_store_alloc(st, 10, false, &v), 0);
	/* fresh allocation: empty value, zero bytes by range */
	assert_int_equal(mp_store_read(st, v, true, 0, 0, cap_emit, &cap), 0);
	assert_int_equal(cap.n, 0);
	assert_int_equal(mp_store_read(st, v, false, 0, 10, cap_emit, &cap), 0);
	assert_int_equal(cap.n, 10);
	for (int i = 0; i < 10; i++)
		assert_int_equal(cap.buf[i], 0);
	assert_int_equal(mp_store_write(st, v, 0, "hello world", 11, true), -ERANGE);
	assert_int_equal(mp_store_write(st, v, 0, "helloworld", 10, true), 0);
	assert_int_equal(mp_store_write(st, v, 0, "HI", 2, true), 0); /* replace */
	assert_int_equal(mp_store_read(st, v, true, 0, 0, cap_emit, &cap), 0);
	assert_int_equal(cap.n, 2);
	assert_memory_equal(cap.buf, "HI", 2);
	assert_int_equal(mp_store_write(st, v, 5, "xy", 2, false), 0); /* patch */
	assert_int_equal(mp_store_read(st, v, true, 0, 0, cap_emit, &cap), 0);
	assert_int_equal(cap.n, 7);
	assert_memory_equal(cap.buf, "HIllox", 6);
	assert_int_equal(mp_store_write(st, v, 9, "ab", 2, false), -ERANGE);
	assert_int_equal(mp_store_write(st, v, UINT64_MAX, "a", 1, false), -ERANGE);
	assert_int_equal(mp_store_read(st, v, false, 9, 2, cap_emit, &cap), -ERANGE);
	assert_int_equal(mp_store_read(st, v, false, UINT64_MAX, 2, cap_emit, &cap), -ERANGE);
	assert_int_equal(mp_store_write(st, v + 1, 0, "a", 1, true), -ENOENT);
	mp_store_free_all(st);
}

static struct mp_store *shared;

static void *churn(void *arg)
{
	(void)arg;
	for (int i = 0; i < 20000; i++) {
		uint64_t v;
		if (mp_store_alloc(shared, 100, false, &v) != 0)
			continue;
		char buf[8] = "abcdefg";
		mp_store_write(shared, v, 0, buf, sizeof buf, true);
		mp_store_release(shared, v);
	}
	return NULL;
}

static void concurrent_churn_keeps_accounting(void **state)
{
	(void)state;
	shared = mp_store_new(1, 100 * 64, 1000, UINT64_C(1800000000000));
	pthread_t th[4];
	for (int i = 0; i < 4; i++)
		pthread_create(&th[i], NULL, churn, NULL);
	for (int i = 0; i < 4; i++)
		pthread_join(th[i], NULL);
	struct mp_stats s;
	mp_store_stats(shared, &s);
	assert_int_equal(s.allocations, 0);
	assert_int_equal(s.bytes, 0);
	mp_store_free_all(shared);
}

static void many_allocations_grow_table(void **state)
{
	(void)state;
	struct mp_store *st = mp_store_new(1, 1 << 30, 100, UINT64_C(1800000000000));
	enum { N = 50000 };
	uint64_t *v = malloc(N * sizeof *v);
	for (int i = 0; i < N; i++)
		assert_int_equal(mp_store_alloc(st, 8, false, &v[i]), 0);
	for (int i = 0; i < N; i++)
		assert_int_equal(mp_store_write(st, v[i], 0, &i, sizeof i, true), 0);
	struct capture cap;
	for (int i = 0; i < N; i++) {
		assert_int_equal(mp_store_read(st, v[i], true, 0, 0, cap_emit, &cap), 0);
		assert_memory_equal(cap.buf, &i, sizeof i);
	}
	for (int i = 0; i < N; i += 2)
		assert_int_equal(mp_store_release(st, v[i]), 0);
	struct mp_stats s;
	mp_store_stats(st, &s);
	assert_int_equal(s.allocations, N / 2);
	free(v);
	mp_store_free_all(st);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(accounting_and_limit),
		cmocka_unit_test(cost_counts_overhead),
		cmocka_unit_test(bounds_and_stored_length),
		cmocka_unit_test(concurrent_churn_keeps_accounting),
		cmocka_unit_test(many_allocations_grow_table),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
