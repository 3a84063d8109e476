/*
 * test_mempool_store.c - allocation table: accounting against the limit,
 * bounds, stored-length semantics, release, and concurrency.
 */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
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
	/* 1 byte: a 64-byte malloc block (the entry keeps times, lease and
	 * tag length since issue 15) plus its bucket slot */
	assert_true(mp_store_cost(1) >= 64);
	assert_true(mp_store_cost(1) <= 80);
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

static bool count_cb(void *ctx, const struct mp_info *in)
{
	uint64_t *seen = ctx;
	seen[in->vuid % 4096]++; /* the test's vuids are distinct mod 4096 */
	return true;
}

/* Paging lists every entry present for the whole walk exactly once, also
 * when the table grows (buckets double) and entries go between pages. */
static void list_pages_exactly_once(void **state)
{
	(void)state;
	struct mp_store *st = mp_store_new(1, UINT64_C(1) << 30, 100, 1);
	enum { N = 3000 };
	static uint64_t v[N], extra[20000];
	for (int i = 0; i < N; i++)
		assert_int_equal(mp_store_alloc(st, 1, false, &v[i]), 0);
	/* consecutive sequence numbers: distinct mod 4096 */
	static uint64_t seen[4096];
	memset(seen, 0, sizeof seen);
	uint64_t cursor = 0;
	int pages = 0, ne = 0;
	do {
		cursor = mp_store_list(st, cursor, 37, count_cb, seen);
		pages++;
		/* grow the table between pages; the extras are listed or not */
		for (int k = 0; k < 200 && ne < 20000; k++)
			assert_int_equal(mp_store_alloc(st, 1, false, &extra[ne++]), 0);
	} while (cursor != 0);
	assert_true(pages > N / 40);
	for (int i = 0; i < N; i++)
		assert_true(seen[v[i] % 4096] >= 1);
	/* the originals are distinct mod 4096 from each other; an extra
	 * may share a residue, so check originals' residues hit at most
	 * once plus the extras that share them */
	for (int i = 0; i < ne; i++)
		if (seen[extra[i] % 4096])
			seen[extra[i] % 4096]--;
	for (int i = 0; i < N; i++)
		assert_true(seen[v[i] % 4096] <= 1);
	mp_store_free_all(st);
}

static bool stop_cb(void *ctx, const struct mp_info *in)
{
	(void)in;
	int *n = ctx;
	return ++*n < 1; /* stop after the first */
}

/* A callback that says stop ends the page at its bucket's end. */
static void list_stops_early(void **state)
{
	(void)state;
	struct mp_store *st = mp_store_new(1, UINT64_C(1) << 30, 100, 1);
	uint64_t v;
	for (int i = 0; i < 1000; i++)
		assert_int_equal(mp_store_alloc(st, 1, false, &v), 0);
	int n = 0;
	uint64_t cur = mp_store_list(st, 0, 1000, stop_cb, &n);
	assert_true(cur != 0);
	assert_true(n >= 1 && n <= 8); /* one bucket's chain */
	mp_store_free_all(st);
}

struct info_cap {
	struct mp_info in;
	int n;
};

static bool info_cb(void *ctx, const struct mp_info *in)
{
	struct info_cap *c = ctx;
	c->in = *in;
	c->n++;
	return true;
}

/* Leases: the sweep frees what ended, only that; renew moves the end;
 * owner tags cost memory and free by tag; bad tags are refused. */
static void leases_and_owners(void **state)
{
	(void)state;
	uint64_t limit = UINT64_C(1) << 20;
	struct mp_store *st = mp_store_new(1, limit, 1000, 1);
	struct mp_alloc_opts lease = {.ttl_ms = 2000, .owner = "me", .owner_len = 2};
	uint64_t a, b, c;
	assert_int_equal(mp_store_alloc_ex(st, 10, false, &lease, &a), 0);
	assert_int_equal(mp_store_alloc_ex(st, 10, false, &lease, &b), 0);
	assert_int_equal(mp_store_alloc(st, 10, false, &c), 0);
	struct mp_stats s;
	mp_store_stats(st, &s);
	assert_int_equal(s.leased, 2);
	assert_true(s.accounted >= 2 * mp_store_cost(10) + mp_store_cost(10));
	uint64_t now = mp_store_now_ms();
	assert_int_equal(mp_store_expire(st, now, 100000), 0); /* not yet */
	assert_int_equal(mp_store_renew(st, b, 60000), 0);
	assert_int_equal(mp_store_expire(st, now + 3500, 100000), 1);
	struct capture cap = {0};
	assert_int_equal(mp_store_read(st, a, true, 0, 0, cap_emit, &cap), -ENOENT);
	assert_int_equal(mp_store_read(st, b, true, 0, 0, cap_emit, &cap), 0);
	struct info_cap ic = {0};
	assert_int_equal(mp_store_list(st, 0, 100, info_cb, &ic), 0);
	assert_int_equal(ic.n, 2);
	assert_int_equal(mp_store_renew(st, a, 1000), -ENOENT);
	/* removing the lease: never expires */
	assert_int_equal(mp_store_renew(st, b, 0), 0);
	assert_int_equal(mp_store_expire(st, now + 10000000, 100000), 0);
	mp_store_stats(st, &s);
	assert_int_equal(s.leased, 0);
	assert_int_equal(s.expired, 1);
	/* by tag: b (tagged) goes, c (untagged) stays */
	assert_int_equal(mp_store_free_owner(st, "me", 2), 1);
	assert_int_equal(mp_store_free_owner(st, "me", 2), 0);
	struct mp_alloc_opts bad = {.owner = "a b", .owner_len = 3};
	assert_int_equal(mp_store_alloc_ex(st, 10, false, &bad, &a), -EINVAL);
	assert_int_equal(mp_store_release(st, c), 0);
	mp_store_stats(st, &s);
	assert_int_equal(s.allocations, 0);
	assert_int_equal(s.accounted, 0);
	mp_store_free_all(st);
}

/* A request id seen again returns the first VUID and allocates nothing;
 * a failed first attempt is not remembered. */
static void rid_replays(void **state)
{
	(void)state;
	struct mp_store *st = mp_store_new(1, mp_store_cost(100) * 2, 1000, 1);
	struct mp_alloc_opts o = {.has_rid = true, .rid = 42};
	uint64_t a, b;
	assert_int_equal(mp_store_alloc_ex(st, 10, false, &o, &a), 0);
	assert_int_equal(mp_store_alloc_ex(st, 10, false, &o, &b), 0);
	assert_true(a == b);
	struct mp_stats s;
	mp_store_stats(st, &s);
	assert_int_equal(s.allocations, 1);
	assert_int_equal(s.replayed, 1);
	o.rid = 43;
	assert_int_equal(mp_store_alloc_ex(st, 1000, false, &o, &b), -ENOMEM);
	assert_int_equal(mp_store_alloc_ex(st, 10, false, &o, &b), 0);
	assert_true(a != b);
	/* many ids: the table stays bounded and recent ones replay */
	for (uint64_t r = 1000; r < 1000 + 20000; r++) {
		struct mp_alloc_opts x = {.has_rid = true, .rid = r};
		uint64_t v;
		if (mp_store_alloc_ex(st, 1, false, &x, &v) == 0)
			mp_store_release(st, v);
	}
	mp_store_free_all(st);
}

static _Atomic int sweep_stop;

static void *lease_churn(void *arg)
{
	(void)arg;
	struct mp_alloc_opts o = {.ttl_ms = 1, .owner = "churn", .owner_len = 5};
	for (int i = 0; i < 20000; i++) {
		uint64_t v;
		o.has_rid = (i % 3) == 0;
		o.rid = (uint64_t)i;
		if (mp_store_alloc_ex(shared, 16, false, &o, &v) == 0 && (i & 1))
			mp_store_release(shared, v); /* may race the sweep: ENOENT is fine */
		if (i % 100 == 0)
			mp_store_renew(shared, v, 0);
	}
	return NULL;
}

static bool noop_cb(void *ctx, const struct mp_info *in)
{
	(void)ctx;
	(void)in;
	return true;
}

static void *lease_sweeper(void *arg)
{
	(void)arg;
	uint64_t cur = 0;
	while (!atomic_load(&sweep_stop)) {
		mp_store_expire(shared, mp_store_now_ms() + 5000, 500);
		cur = mp_store_list(shared, cur, 100, noop_cb, NULL);
	}
	return NULL;
}

/* Allocation, release, renew, listing, expiry and free-by-owner racing on
 * one store: accounting ends at zero (run under TSan by make test-tsan's
 * build of this binary too). */
static void concurrent_leases_keep_accounting(void **state)
{
	(void)state;
	shared = mp_store_new(1, UINT64_C(1) << 30, 100, 1);
	pthread_t t[3], sw;
	atomic_store(&sweep_stop, 0);
	pthread_create(&sw, NULL, lease_sweeper, NULL);
	for (int i = 0; i < 3; i++)
		pthread_create(&t[i], NULL, lease_churn, NULL);
	for (int i = 0; i < 3; i++)
		pthread_join(t[i], NULL);
	atomic_store(&sweep_stop, 1);
	pthread_join(sw, NULL);
	mp_store_free_owner(shared, "churn", 5);
	struct mp_stats s;
	mp_store_stats(shared, &s);
	assert_int_equal(s.allocations, 0);
	assert_int_equal(s.bytes, 0);
	assert_int_equal(s.accounted, 0);
	assert_int_equal(s.leased, 0);
	mp_store_free_all(shared);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(accounting_and_limit),
		cmocka_unit_test(cost_counts_overhead),
		cmocka_unit_test(bounds_and_stored_length),
		cmocka_unit_test(concurrent_churn_keeps_accounting),
		cmocka_unit_test(many_allocations_grow_table),
		cmocka_unit_test(list_pages_exactly_once),
		cmocka_unit_test(list_stops_early),
		cmocka_unit_test(leases_and_owners),
		cmocka_unit_test(rid_replays),
		cmocka_unit_test(concurrent_leases_keep_accounting),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
