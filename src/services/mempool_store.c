/*
 * mempool_store.c - lock-striped allocation table (mempool_store.h).
 *
 * Memory for an allocation is reserved against the limit *before* it is
 * obtained from the system, through the node's memory accountant
 * (memacct.h) as pinned bytes: it shares mem_limit with the memcached
 * port's items, may make the cache evict, and is never evicted itself.
 * What is reserved is the allocation's whole cost (mp_store_cost: its
 * bytes, the entry header, malloc's header and rounding, a bucket slot),
 * so a million 1-byte allocations cost what they really occupy.  Entries are single
 * blocks (header + bytes); calloc keeps never-written bytes zero, and for
 * large sizes the C library maps fresh zero pages lazily.
 */
#include "mempool_store.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "../common/vuid.h"
#include "memacct.h"

#define MP_STRIPES 64
#define MP_BUCKETS_INIT 256

/* glibc malloc's shape, for mp_store_cost: an 8-byte header per chunk,
 * 16-byte granularity, 32-byte minimum; blocks from MP_MMAP_MIN up may be
 * mmapped (16-byte header, whole pages). */
#define MP_MALLOC_HDR 8
#define MP_MALLOC_ALIGN 16
#define MP_MALLOC_MIN 32
#define MP_MMAP_MIN (UINT64_C(128) << 10)
#define MP_MMAP_HDR 16
#define MP_PAGE 4096

struct mp_entry {
	struct mp_entry *next;
	uint64_t vuid;
	uint64_t size;
	uint64_t len; /* stored length: what a whole-value get returns */
	uint8_t bytes[];
};

struct mp_stripe {
	pthread_mutex_t lock;
	struct mp_entry **buckets;
	size_t nbuckets; /* power of two */
	size_t count;
};

struct mp_store {
	struct vuid_gen gen;
	struct ma_acct *acct;
	bool own_acct; /* created by mp_store_new, freed with the store */
	uint64_t max_alloc;
	_Atomic uint64_t used, live; /* this store's bytes and allocations */
	_Atomic uint64_t accounted; /* what they cost (mp_store_cost) */
	_Atomic uint64_t ops_malloc, ops_set, ops_get, ops_free, ops_error;
	struct mp_stripe stripes[MP_STRIPES];
};

static uint64_t mix(uint64_t x)
{
	x ^= x >> 33;
	x *= UINT64_C(0xff51afd7ed558ccd);
	x ^= x >> 33;
	return x;
}

static struct mp_stripe *stripe_of(struct mp_store *st, uint64_t vuid)
{
	return &st->stripes[mix(vuid) % MP_STRIPES];
}

static struct mp_entry **slot_of(struct mp_stripe *s, uint64_t vuid)
{
	struct mp_entry **pp = &s->buckets[(mix(vuid) >> 8) & (s->nbuckets - 1)];
	while (*pp && (*pp)->vuid != vuid)
		pp = &(*pp)->next;
	return pp;
}

struct mp_store *mp_store_new(unsigned node_id, uint64_t limit, uint64_t max_alloc,
			      uint64_t seed_ms)
{
	struct ma_acct *ma = ma_new(limit);
	if (!ma)
		return NULL;
	struct mp_store *st = mp_store_new_acct(node_id, ma, max_alloc, seed_ms);
	if (!st) {
		ma_free(ma);
		return NULL;
	}
	st->own_acct = true;
	return st;
}

struct mp_store *mp_store_new_acct(unsigned node_id, struct ma_acct *acct, uint64_t max_alloc,
				   uint64_t seed_ms)
{
	struct mp_store *st = calloc(1, sizeof *st);
	if (!st)
		return NULL;
	vuid_gen_init(&st->gen, node_id, seed_ms);
	st->acct = acct;
	st->max_alloc = max_alloc;
	for (int i = 0; i < MP_STRIPES; i++) {
		pthread_mutex_init(&st->stripes[i].lock, NULL);
		st->stripes[i].nbuckets = MP_BUCKETS_INIT;
		st->stripes[i].buckets = calloc(MP_BUCKETS_INIT, sizeof(struct mp_entry *));
		if (!st->stripes[i].buckets) {
			mp_store_free_all(st);
			return NULL;
		}
	}
	return st;
}

void mp_store_free_all(struct mp_store *st)
{
	if (!st)
		return;
	for (int i = 0; i < MP_STRIPES; i++) {
		struct mp_stripe *s = &st->stripes[i];
		for (size_t b = 0; s->buckets && b < s->nbuckets; b++) {
			struct mp_entry *e = s->buckets[b];
			while (e) {
				struct mp_entry *n = e->next;
				free(e);
				e = n;
			}
		}
		free(s->buckets);
		pthread_mutex_destroy(&s->lock);
	}
	if (st->own_acct)
		ma_free(st->acct);
	free(st);
}

static void grow(struct mp_stripe *s)
{
	size_t nb = s->nbuckets * 2;
	struct mp_entry **b = calloc(nb, sizeof *b);
	if (!b)
		return; /* keep the longer chains; still correct */
	for (size_t i = 0; i < s->nbuckets; i++) {
		struct mp_entry *e = s->buckets[i];
		while (e) {
			struct mp_entry *n = e->next;
			size_t k = (mix(e->vuid) >> 8) & (nb - 1);
			e->next = b[k];
			b[k] = e;
			e = n;
		}
	}
	free(s->buckets);
	s->buckets = b;
	s->nbuckets = nb;
}

uint64_t mp_store_cost(uint64_t size)
{
	if (size > UINT64_MAX / 2)
		return UINT64_MAX; /* never fits any limit */
	uint64_t need = sizeof(struct mp_entry) + size + MP_MALLOC_HDR;
	if (size >= MP_MMAP_MIN)
		need = (need + MP_MMAP_HDR + MP_PAGE - 1) & ~(uint64_t)(MP_PAGE - 1);
	else
		need = (need + MP_MALLOC_ALIGN - 1) & ~(uint64_t)(MP_MALLOC_ALIGN - 1);
	if (need < MP_MALLOC_MIN)
		need = MP_MALLOC_MIN;
	return need + sizeof(struct mp_entry *); /* its share of the buckets */
}

int mp_store_alloc(struct mp_store *st, uint64_t size, bool span, uint64_t *vuid)
{
	atomic_fetch_add_explicit(&st->ops_malloc, 1, memory_order_relaxed);
	if (size == 0 || size > st->max_alloc)
		return -EINVAL;
	uint64_t cost = mp_store_cost(size);
	if (!ma_reserve_pinned(st->acct, cost))
		return -ENOMEM;
	struct mp_entry *e = calloc(1, sizeof *e + size);
	if (!e) {
		ma_release_pinned(st->acct, cost);
		return -ENOMEM;
	}
	atomic_fetch_add(&st->used, size);
	atomic_fetch_add(&st->accounted, cost);
	e->size = size;
	e->vuid = vuid_gen_next(&st->gen, span);
	struct mp_stripe *s = stripe_of(st, e->vuid);
	pthread_mutex_lock(&s->lock);
	struct mp_entry **pp = slot_of(s, e->vuid);
	e->next = NULL;
	*pp = e; /* ids are never reused, so the slot is the chain's end */
	if (++s->count > s->nbuckets * 2)
		grow(s);
	pthread_mutex_unlock(&s->lock);
	atomic_fetch_add(&st->live, 1);
	*vuid = e->vuid;
	return 0;
}

int mp_store_write(struct mp_store *st, uint64_t vuid, uint64_t off, const void *data, size_t n,
		   bool replace)
{
	atomic_fetch_add_explicit(&st->ops_set, 1, memory_order_relaxed);
	struct mp_stripe *s = stripe_of(st, vuid);
	int rc = 0;
	pthread_mutex_lock(&s->lock);
	struct mp_entry *e = *slot_of(s, vuid);
	if (!e)
		rc = -ENOENT;
	else if (off > e->size || n > e->size - off)
		rc = -ERANGE;
	else {
		if (n)
			memcpy(e->bytes + off, data, n);
		if (replace)
			e->len = off + n;
		else if (off + n > e->len)
			e->len = off + n;
	}
	pthread_mutex_unlock(&s->lock);
	return rc;
}

int mp_store_read(struct mp_store *st, uint64_t vuid, bool whole, uint64_t off, uint64_t n,
		  mp_emit_fn emit, void *ctx)
{
	atomic_fetch_add_explicit(&st->ops_get, 1, memory_order_relaxed);
	struct mp_stripe *s = stripe_of(st, vuid);
	int rc = 0;
	pthread_mutex_lock(&s->lock);
	struct mp_entry *e = *slot_of(s, vuid);
	if (!e)
		rc = -ENOENT;
	else if (whole)
		emit(ctx, e->bytes, (size_t)e->len);
	else if (off > e->size || n > e->size - off)
		rc = -ERANGE;
	else
		emit(ctx, e->bytes + off, (size_t)n);
	pthread_mutex_unlock(&s->lock);
	return rc;
}

int mp_store_release(struct mp_store *st, uint64_t vuid)
{
	atomic_fetch_add_explicit(&st->ops_free, 1, memory_order_relaxed);
	struct mp_stripe *s = stripe_of(st, vuid);
	pthread_mutex_lock(&s->lock);
	struct mp_entry **pp = slot_of(s, vuid);
	struct mp_entry *e = *pp;
	if (e) {
		*pp = e->next;
		s->count--;
	}
	pthread_mutex_unlock(&s->lock);
	if (!e)
		return -ENOENT;
	uint64_t cost = mp_store_cost(e->size);
	atomic_fetch_sub(&st->used, e->size);
	atomic_fetch_sub(&st->accounted, cost);
	ma_release_pinned(st->acct, cost);
	atomic_fetch_sub(&st->live, 1);
	free(e);
	return 0;
}

void mp_store_count_error(struct mp_store *st)
{
	atomic_fetch_add_explicit(&st->ops_error, 1, memory_order_relaxed);
}

void mp_store_stats(struct mp_store *st, struct mp_stats *out)
{
	out->allocations = atomic_load(&st->live);
	out->bytes = atomic_load(&st->used);
	out->accounted = atomic_load(&st->accounted);
	struct ma_usage u;
	ma_get_usage(st->acct, &u);
	out->limit = u.limit;
	out->cache_bytes = u.cache;
	out->ops_malloc = atomic_load(&st->ops_malloc);
	out->ops_set = atomic_load(&st->ops_set);
	out->ops_get = atomic_load(&st->ops_get);
	out->ops_free = atomic_load(&st->ops_free);
	out->ops_error = atomic_load(&st->ops_error);
}
