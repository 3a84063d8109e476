/*
 * memacct.c - the node memory accountant (memacct.h).
 *
 * `used` (pinned + cache) is the one counter the limit is checked against;
 * `pinned` and `cache` are kept beside it for statistics and for the
 * evictor's decisions.  The evictor pointer is set once at start-up by the
 * memcache service and read under a mutex only on the slow path.  Every
 * reservation and release also bumps two relaxed counters (bytes freed
 * since the last trim, operations since the last tick) that ma_tick uses
 * to decide, once a second, whether to give freed memory back.
 */
#include "memacct.h"

#include <fcntl.h>
#include <inttypes.h>
#include <malloc.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#define MA_EVICT_TRIES 8

struct ma_acct {
	_Atomic uint64_t limit; /* live: ma_set_limit (the mem_limit knob) */
	_Atomic uint64_t used, pinned, cache, pinned_evictions;
	/* for ma_tick: bytes released since the last trim, reservations and
	 * releases since the last tick, trims done */
	_Atomic uint64_t freed, ops, trims;
	atomic_flag ticking; /* one ma_tick at a time */
	pthread_mutex_t evlock;
	ma_evict_fn evict;
	void *evict_ctx;
	int refs; /* for the node-wide instance */
};

static pthread_mutex_t ma_node_lock = PTHREAD_MUTEX_INITIALIZER;
static struct ma_acct *ma_node_inst;

struct ma_acct *ma_new(uint64_t limit)
{
	struct ma_acct *ma = calloc(1, sizeof *ma);
	if (!ma)
		return NULL;
	ma->limit = limit;
	atomic_flag_clear(&ma->ticking);
	pthread_mutex_init(&ma->evlock, NULL);
	return ma;
}

void ma_free(struct ma_acct *ma)
{
	if (!ma)
		return;
	pthread_mutex_destroy(&ma->evlock);
	free(ma);
}

struct ma_acct *ma_node_acquire(uint64_t limit)
{
	pthread_mutex_lock(&ma_node_lock);
	if (!ma_node_inst)
		ma_node_inst = ma_new(limit);
	struct ma_acct *ma = ma_node_inst;
	if (ma)
		ma->refs++;
	pthread_mutex_unlock(&ma_node_lock);
	return ma;
}

void ma_node_release(struct ma_acct *ma)
{
	if (!ma)
		return;
	pthread_mutex_lock(&ma_node_lock);
	if (--ma->refs == 0) {
		if (ma == ma_node_inst)
			ma_node_inst = NULL;
		ma_free(ma);
	}
	pthread_mutex_unlock(&ma_node_lock);
}

void ma_set_evictor(struct ma_acct *ma, ma_evict_fn fn, void *ctx)
{
	pthread_mutex_lock(&ma->evlock);
	ma->evict = fn;
	ma->evict_ctx = ctx;
	pthread_mutex_unlock(&ma->evlock);
}

static bool ma_try(struct ma_acct *ma, uint64_t n)
{
	uint64_t cur = atomic_load_explicit(&ma->used, memory_order_relaxed);
	uint64_t limit = atomic_load_explicit(&ma->limit, memory_order_relaxed);
	do {
		if (n > limit || cur > limit - n)
			return false;
	} while (!atomic_compare_exchange_weak(&ma->used, &cur, cur + n));
	return true;
}

bool ma_reserve_pinned(struct ma_acct *ma, uint64_t n)
{
	for (int i = 0; !ma_try(ma, n); i++) {
		/* Only cache can make room; if pinned bytes alone leave no
		 * space, evicting the whole cache would be for nothing. */
		uint64_t pinned = atomic_load(&ma->pinned);
		uint64_t limit = atomic_load(&ma->limit);
		if (i == MA_EVICT_TRIES || n > limit || pinned > limit - n)
			return false;
		uint64_t used = atomic_load(&ma->used);
		uint64_t want = used + n > limit ? used + n - limit : n;
		pthread_mutex_lock(&ma->evlock);
		ma_evict_fn fn = ma->evict;
		void *ctx = ma->evict_ctx;
		pthread_mutex_unlock(&ma->evlock);
		if (!fn)
			return false;
		uint64_t got = fn(ctx, want);
		atomic_fetch_add_explicit(&ma->pinned_evictions, got, memory_order_relaxed);
		if (got == 0 && atomic_load(&ma->cache) == 0)
			return false;
	}
	atomic_fetch_add_explicit(&ma->pinned, n, memory_order_relaxed);
	atomic_fetch_add_explicit(&ma->ops, 1, memory_order_relaxed);
	return true;
}

static void ma_note_release(struct ma_acct *ma, uint64_t n)
{
	atomic_fetch_add_explicit(&ma->freed, n, memory_order_relaxed);
	atomic_fetch_add_explicit(&ma->ops, 1, memory_order_relaxed);
}

void ma_release_pinned(struct ma_acct *ma, uint64_t n)
{
	atomic_fetch_sub_explicit(&ma->pinned, n, memory_order_relaxed);
	atomic_fetch_sub(&ma->used, n);
	ma_note_release(ma, n);
}

bool ma_reserve_cache(struct ma_acct *ma, uint64_t n)
{
	if (!ma_try(ma, n))
		return false;
	atomic_fetch_add_explicit(&ma->cache, n, memory_order_relaxed);
	atomic_fetch_add_explicit(&ma->ops, 1, memory_order_relaxed);
	return true;
}

void ma_release_cache(struct ma_acct *ma, uint64_t n)
{
	atomic_fetch_sub_explicit(&ma->cache, n, memory_order_relaxed);
	atomic_fetch_sub(&ma->used, n);
	ma_note_release(ma, n);
}

bool ma_tick(struct ma_acct *ma)
{
	if (atomic_flag_test_and_set(&ma->ticking))
		return false;
	uint64_t ops = atomic_exchange_explicit(&ma->ops, 0, memory_order_relaxed);
	uint64_t freed = atomic_load_explicit(&ma->freed, memory_order_relaxed);
	bool trim = freed >= MA_TRIM_MIN && ops < MA_TRIM_BUSY_OPS;
	if (trim) {
		atomic_fetch_sub_explicit(&ma->freed, freed, memory_order_relaxed);
		malloc_trim(0);
		atomic_fetch_add_explicit(&ma->trims, 1, memory_order_relaxed);
	}
	atomic_flag_clear(&ma->ticking);
	return trim;
}

uint64_t ma_resident_bytes(void)
{
	int fd = open("/proc/self/statm", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	char buf[128];
	ssize_t n = read(fd, buf, sizeof buf - 1);
	close(fd);
	if (n <= 0)
		return 0;
	buf[n] = '\0';
	uint64_t size, resident;
	if (sscanf(buf, "%" SCNu64 " %" SCNu64, &size, &resident) != 2)
		return 0;
	long page = sysconf(_SC_PAGESIZE);
	return resident * (uint64_t)(page > 0 ? page : 4096);
}

int ma_set_limit(struct ma_acct *ma, uint64_t limit)
{
	if (limit == 0 || atomic_load(&ma->pinned) > limit)
		return -1;
	atomic_store(&ma->limit, limit);
	/* cached items over the new limit go now (pinned ones cannot) */
	uint64_t used = atomic_load(&ma->used);
	if (used > limit) {
		pthread_mutex_lock(&ma->evlock);
		ma_evict_fn fn = ma->evict;
		void *ctx = ma->evict_ctx;
		pthread_mutex_unlock(&ma->evlock);
		if (fn)
			fn(ctx, used - limit);
	}
	return 0;
}

void ma_get_usage(struct ma_acct *ma, struct ma_usage *out)
{
	out->limit = ma->limit;
	out->pinned = atomic_load(&ma->pinned);
	out->cache = atomic_load(&ma->cache);
	out->pinned_evictions = atomic_load(&ma->pinned_evictions);
	out->trims = atomic_load(&ma->trims);
	out->freed_since_trim = atomic_load(&ma->freed);
}
