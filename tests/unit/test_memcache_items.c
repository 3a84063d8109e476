/*
 * test_memcache_items.c - the item store and the node memory accountant
 * without sockets: store modes, CAS, incr/decr, expiry and delayed flush
 * with a controlled clock, LRU eviction order, and the sharing rule
 * (cache never takes pinned bytes; pinned reservations evict cache), and
 * the walk behind stats cachedump.
 */
#include <setjmp.h>
#include <stdbool.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "../../src/services/memacct.h"
#include "../../src/services/memcache_items.h"
#include "../../src/services/mempool_store.h"

#define K(s) (const uint8_t *)(s), strlen(s)
#define NOW 1700000000

struct got {
	char val[256];
	uint32_t flags;
	uint64_t cas;
};

static void emit(void *ctx, struct mci_item *it, const uint8_t *key, size_t nkey,
		 uint32_t flags, uint64_t cas, const uint8_t *val, size_t nval)
{
	(void)it;
	(void)key;
	(void)nkey;
	struct got *g = ctx;
	snprintf(g->val, sizeof g->val, "%.*s", (int)nval, (const char *)val);
	g->flags = flags;
	g->cas = cas;
}

static bool get(struct mci_store *st, const char *key, int64_t now, struct got *g)
{
	memset(g, 0, sizeof *g);
	return mci_get(st, K(key), now, false, 0, emit, g);
}

static enum mci_result put(struct mci_store *st, enum mci_mode m, const char *key,
			   const char *val, int64_t exp, uint64_t cas)
{
	return mci_store(st, m, K(key), 7, exp, cas, (const uint8_t *)val, strlen(val), NOW);
}

static void modes_and_cas(void **state)
{
	(void)state;
	struct ma_acct *ma = ma_new(1 << 20);
	struct mci_store *st = mci_new(ma, 1024);
	struct got g;
	assert_int_equal(put(st, MCI_ADD, "a", "1", 0, 0), MCI_STORED);
	assert_int_equal(put(st, MCI_ADD, "a", "2", 0, 0), MCI_NOT_STORED);
	assert_int_equal(put(st, MCI_REPLACE, "b", "2", 0, 0), MCI_NOT_STORED);
	assert_int_equal(put(st, MCI_APPEND, "b", "2", 0, 0), MCI_NOT_STORED);
	assert_int_equal(put(st, MCI_APPEND, "a", "xy", 0, 0), MCI_STORED);
	assert_int_equal(put(st, MCI_PREPEND, "a", "<", 0, 0), MCI_STORED);
	assert_true(get(st, "a", NOW, &g));
	assert_string_equal(g.val, "<1xy");
	assert_int_equal(g.flags, 7);
	uint64_t c = g.cas;
	assert_int_equal(put(st, MCI_CAS, "a", "z", 0, c + 100), MCI_EXISTS);
	assert_int_equal(put(st, MCI_CAS, "a", "z", 0, c), MCI_STORED);
	assert_int_equal(put(st, MCI_CAS, "a", "w", 0, c), MCI_EXISTS);
	assert_int_equal(put(st, MCI_CAS, "nokey", "w", 0, 1), MCI_NOT_FOUND);
	assert_int_equal(put(st, MCI_SET, "big", "", 0, 0), MCI_STORED);
	char big[2000];
	memset(big, 'x', sizeof big - 1);
	big[sizeof big - 1] = '\0';
	assert_int_equal(put(st, MCI_SET, "big", big, 0, 0), MCI_TOOLARGE);
	assert_int_equal(mci_delete(st, K("a"), NOW), MCI_DELETED);
	assert_int_equal(mci_delete(st, K("a"), NOW), MCI_NOT_FOUND);
	mci_free(st);
	struct ma_usage u;
	ma_get_usage(ma, &u);
	assert_int_equal(u.cache, 0); /* every item's bytes were given back */
	ma_free(ma);
}

static void arith(void **state)
{
	(void)state;
	struct ma_acct *ma = ma_new(1 << 20);
	struct mci_store *st = mci_new(ma, 1024);
	uint64_t v;
	struct got g;
	assert_int_equal(mci_arith(st, K("n"), true, 1, &v, NOW), MCI_NOT_FOUND);
	put(st, MCI_SET, "n", "9", 0, 0);
	assert_int_equal(mci_arith(st, K("n"), true, 1, &v, NOW), MCI_STORED); /* grows */
	assert_int_equal(v, 10);
	assert_true(get(st, "n", NOW, &g));
	assert_string_equal(g.val, "10");
	assert_int_equal(g.flags, 7);
	assert_int_equal(mci_arith(st, K("n"), false, 3, &v, NOW), MCI_STORED); /* shrinks */
	assert_true(get(st, "n", NOW, &g));
	assert_string_equal(g.val, "7 "); /* in place, padded as memcached */
	/* what memcached's decr leaves is a number to incr */
	assert_int_equal(mci_arith(st, K("n"), true, 3, &v, NOW), MCI_STORED);
	assert_int_equal(v, 10);
	assert_true(get(st, "n", NOW, &g));
	assert_string_equal(g.val, "10");
	assert_int_equal(mci_arith(st, K("n"), false, 100, &v, NOW), MCI_STORED);
	assert_int_equal(v, 0);
	put(st, MCI_SET, "n", "18446744073709551615", 0, 0);
	assert_int_equal(mci_arith(st, K("n"), true, 2, &v, NOW), MCI_STORED);
	assert_int_equal(v, 1);
	put(st, MCI_SET, "s", "12a", 0, 0);
	assert_int_equal(mci_arith(st, K("s"), true, 1, &v, NOW), MCI_NON_NUMERIC);
	/* memcached's strtoull rules: leading white space and a sign, and
	 * anything after white space, are taken; "-1" and "" are not */
	static const struct {
		const char *val;
		bool ok;
		uint64_t then;
	} nums[] = {{" 5", true, 6},  {"5  ", true, 6},	   {"\t4", true, 5}, {"12 34", true, 13},
		    {"+3", true, 4},  {"-0", true, 1},	   {"0007", true, 8}, {"-1", false, 0},
		    {"", false, 0},   {"   ", false, 0},   {"1x", false, 0},
		    {"18446744073709551616", false, 0}};
	for (size_t i = 0; i < sizeof nums / sizeof nums[0]; i++) {
		put(st, MCI_SET, "s", nums[i].val, 0, 0);
		enum mci_result rc = mci_arith(st, K("s"), true, 1, &v, NOW);
		assert_int_equal(rc, nums[i].ok ? MCI_STORED : MCI_NON_NUMERIC);
		if (nums[i].ok)
			assert_int_equal(v, nums[i].then);
	}
	mci_free(st);
	ma_free(ma);
}

static void expiry_and_flush(void **state)
{
	(void)state;
	struct ma_acct *ma = ma_new(1 << 20);
	struct mci_store *st = mci_new(ma, 1024);
	struct got g;
	put(st, MCI_SET, "e", "1", NOW + 5, 0);
	assert_true(get(st, "e", NOW + 4, &g));
	assert_false(get(st, "e", NOW + 5, &g));
	put(st, MCI_SET, "t", "1", NOW + 5, 0);
	assert_int_equal(mci_touch(st, K("t"), NOW + 50, NOW), MCI_TOUCHED);
	assert_true(get(st, "t", NOW + 10, &g));
	assert_true(mci_get(st, K("t"), NOW + 10, true, NOW + 11, emit, &g)); /* gat */
	assert_false(get(st, "t", NOW + 11, &g));
	/* an expired item cannot be added over, as memcached: it is gone */
	put(st, MCI_SET, "x", "1", NOW + 1, 0);
	assert_int_equal(mci_store(st, MCI_ADD, K("x"), 0, 0, 0, (const uint8_t *)"2", 1, NOW + 2),
			 MCI_STORED);
	/* delayed flush: stored before the boundary vanish once it comes */
	put(st, MCI_SET, "f", "1", 0, 0);
	mci_flush(st, NOW + 10, NOW);
	assert_true(get(st, "f", NOW + 8, &g));
	assert_false(get(st, "f", NOW + 9, &g));
	mci_free(st);
	ma_free(ma);
}

struct dumped {
	char keys[512];
	int n, stop_after;
};

static bool dump_fn(void *ctx, const struct mci_meta *m)
{
	struct dumped *d = ctx;
	if (d->stop_after && d->n == d->stop_after)
		return false;
	size_t l = strlen(d->keys);
	snprintf(d->keys + l, sizeof d->keys - l, "%s%.*s:%zu:%lld:%s", l ? "," : "", (int)m->nkey,
		 (const char *)m->key, m->nval, (long long)m->exptime, m->fetched ? "f" : "-");
	assert_true(m->size > m->nkey + m->nval);
	assert_true(m->cas > 0);
	assert_int_equal(m->atime, NOW);
	d->n++;
	return true;
}

static uint64_t dump_all(struct mci_store *st, uint64_t limit, int64_t now, struct dumped *d)
{
	return mci_dump(st, 0, MCI_NSTRIPES, limit, now, dump_fn, d);
}

/* stats cachedump's walk: live items only (not expired, not flushed),
 * most recent first within a stripe, the limit and fn's stop obeyed. */
static void dump_lists_live_items(void **state)
{
	(void)state;
	struct ma_acct *ma = ma_new(1 << 20);
	struct mci_store *st = mci_new(ma, 1024);
	struct dumped d = {0};
	assert_int_equal(dump_all(st, 0, NOW, &d), 0);
	assert_int_equal(mci_lru_age(st, NOW), 0);
	put(st, MCI_SET, "live", "abc", 0, 0);
	put(st, MCI_SET, "later", "12345", NOW + 100, 0);
	put(st, MCI_SET, "gone", "x", NOW + 1, 0);
	put(st, MCI_SET, "neg", "x", 1, 0);
	struct got g;
	assert_true(get(st, "live", NOW, &g)); /* fetched */
	assert_int_equal(dump_all(st, 0, NOW + 2, &d), 2);
	/* stripe order is the hash's, so test membership */
	assert_non_null(strstr(d.keys, "live:3:0:f"));
	assert_non_null(strstr(d.keys, "later:5:1700000100:-"));
	assert_null(strstr(d.keys, "gone"));
	assert_null(strstr(d.keys, "neg"));
	assert_int_equal(mci_lru_age(st, NOW + 7), 7);
	memset(&d, 0, sizeof d);
	assert_int_equal(dump_all(st, 1, NOW + 2, &d), 1); /* limit */
	memset(&d, 0, sizeof d);
	for (int i = 0; i < 50; i++) {
		char k[16];
		snprintf(k, sizeof k, "k%d", i);
		put(st, MCI_SET, k, "v", 0, 0);
	}
	d.stop_after = 10; /* fn out of room: it stops the walk */
	assert_int_equal(dump_all(st, 0, NOW + 2, &d), 10);
	memset(&d, 0, sizeof d);
	assert_int_equal(dump_all(st, 0, NOW + 2, &d), 52);
	/* stripe by stripe, as a streamed metadump: the same items */
	uint64_t steps = 0;
	memset(&d, 0, sizeof d);
	for (int i = 0; i < MCI_NSTRIPES; i++)
		steps += mci_dump(st, i, 1, 0, NOW + 2, dump_fn, &d);
	assert_int_equal(steps, 52);
	mci_flush(st, NOW + 2, NOW + 2);
	memset(&d, 0, sizeof d);
	assert_int_equal(dump_all(st, 0, NOW + 2, &d), 0);
	mci_free(st);
	ma_free(ma);
}

static void lru_eviction_order(void **state)
{
	(void)state;
	/* room for ~10 items of 1000 bytes */
	struct ma_acct *ma = ma_new(10 * 1100);
	struct mci_store *st = mci_new(ma, 4096);
	char v[1001], key[16];
	memset(v, 'v', 1000);
	v[1000] = '\0';
	struct got g;
	for (int i = 0; i < 8; i++) {
		snprintf(key, sizeof key, "k%d", i);
		assert_int_equal(mci_store(st, MCI_SET, K(key), 0, 0, 0, (const uint8_t *)v, 1000,
					   NOW + i),
				 MCI_STORED);
	}
	for (int i = 8; i < 100; i++) {
		snprintf(key, sizeof key, "k%d", i);
		assert_int_equal(mci_store(st, MCI_SET, K(key), 0, 0, 0, (const uint8_t *)v, 1000,
					   NOW + i),
				 MCI_STORED);
	}
	struct mci_stats s;
	mci_get_stats(st, &s);
	assert_true(s.evictions >= 90);
	assert_true(get(st, "k99", NOW + 100, &g)); /* the newest survives */
	assert_false(get(st, "k0", NOW + 100, &g));
	struct ma_usage u;
	ma_get_usage(ma, &u);
	assert_true(u.cache <= 10 * 1100);
	mci_free(st);
	ma_free(ma);
}

static void pinned_and_cache_share_the_limit(void **state)
{
	(void)state;
	struct ma_acct *ma = ma_new(100000);
	struct mci_store *st = mci_new(ma, 10000);
	struct mp_store *mp = mp_store_new_acct(1, ma, 100000, 1);
	uint8_t v[5000] = {0};
	char key[16];
	/* the cache fills the node */
	for (int i = 0; i < 100; i++) {
		snprintf(key, sizeof key, "c%d", i);
		assert_int_equal(mci_store(st, MCI_SET, K(key), 0, 0, 0, v, sizeof v, NOW), MCI_STORED);
	}
	struct ma_usage u;
	ma_get_usage(ma, &u);
	assert_true(u.cache > 80000);
	/* a malloc evicts items to fit */
	uint64_t a, b;
	assert_int_equal(mp_store_alloc(mp, 60000, false, &a), 0);
	ma_get_usage(ma, &u);
	assert_int_equal(u.pinned, mp_store_cost(60000));
	assert_true(u.cache + u.pinned <= 100000);
	assert_true(u.pinned_evictions > 0);
	/* more cache never takes pinned bytes: it evicts other items */
	for (int i = 0; i < 100; i++) {
		snprintf(key, sizeof key, "d%d", i);
		assert_int_equal(mci_store(st, MCI_SET, K(key), 0, 0, 0, v, sizeof v, NOW), MCI_STORED);
	}
	ma_get_usage(ma, &u);
	assert_int_equal(u.pinned, mp_store_cost(60000));
	assert_true(u.cache + u.pinned <= 100000);
	/* pinned alone over the limit: -ENOMEM, and the cache is left alone */
	uint64_t cache_before = u.cache;
	assert_int_equal(mp_store_alloc(mp, 50000, false, &b), -ENOMEM);
	ma_get_usage(ma, &u);
	assert_int_equal(u.cache, cache_before);
	/* an item bigger than what is left beside the pinned bytes fails */
	uint8_t huge[9000] = {0};
	assert_int_equal(mp_store_alloc(mp, 35000, false, &b), 0); /* pinned ~95100 */
	assert_int_equal(mci_store(st, MCI_SET, K("huge"), 0, 0, 0, huge, sizeof huge, NOW),
			 MCI_NOMEM);
	assert_int_equal(mp_store_release(mp, a), 0);
	assert_int_equal(mp_store_release(mp, b), 0);
	mp_store_free_all(mp);
	mci_free(st);
	ma_get_usage(ma, &u);
	assert_int_equal(u.pinned + u.cache, 0);
	ma_free(ma);
}

static struct mci_item *held;
static const uint8_t *held_val;

static void emit_hold(void *ctx, struct mci_item *it, const uint8_t *key, size_t nkey,
		      uint32_t flags, uint64_t cas, const uint8_t *val, size_t nval)
{
	(void)ctx, (void)key, (void)nkey, (void)flags, (void)cas, (void)nval;
	mci_hold(it);
	held = it;
	held_val = val;
}

static void held_value_outlives_replace_and_flush(void **state)
{
	(void)state;
	struct ma_acct *ma = ma_new(1 << 20);
	struct mci_store *st = mci_new(ma, 1024);
	put(st, MCI_SET, "z", "12", 0, 0);
	assert_true(mci_get(st, K("z"), NOW, false, 0, emit_hold, NULL));
	/* a reply is "sending" the value: replace, incr and flush must not
	 * touch its bytes, and they stay counted until released */
	uint64_t v;
	assert_int_equal(mci_arith(st, K("z"), true, 1, &v, NOW), MCI_STORED);
	put(st, MCI_SET, "z", "99", 0, 0);
	mci_flush(st, NOW, NOW);
	assert_memory_equal(held_val, "12", 2);
	struct ma_usage u;
	ma_get_usage(ma, &u);
	assert_true(u.cache > 0);
	mci_release(held);
	ma_get_usage(ma, &u);
	assert_int_equal(u.cache, 0);
	mci_free(st);
	ma_free(ma);
}

static void node_accountant_is_shared(void **state)
{
	(void)state;
	struct ma_acct *a = ma_node_acquire(1000), *b = ma_node_acquire(5);
	assert_ptr_equal(a, b);
	struct ma_usage u;
	ma_get_usage(b, &u);
	assert_int_equal(u.limit, 1000);
	ma_node_release(a);
	ma_node_release(b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(modes_and_cas),
		cmocka_unit_test(arith),
		cmocka_unit_test(expiry_and_flush),
		cmocka_unit_test(dump_lists_live_items),
		cmocka_unit_test(lru_eviction_order),
		cmocka_unit_test(pinned_and_cache_share_the_limit),
		cmocka_unit_test(held_value_outlives_replace_and_flush),
		cmocka_unit_test(node_accountant_is_shared),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
