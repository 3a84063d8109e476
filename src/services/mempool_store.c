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
#include <time.h>

#include "../common/vuid.h"
#include "memacct.h"
#include "mempool_proto.h"

#define MP_STRIPES 64
#define MP_BUCKETS_INIT 256
#define MP_RID_SLOTS 4096 /* remembered malloc request ids (direct-mapped) */

/* glibc malloc's shape, for mp_store_cost: an 8-byte header per chunk,
 * 16-byte granularity, 32-byte minimum; blocks from MP_MMAP_MIN up may be
 * mmapped (16-byte header, whole pages). */
#define MP_MALLOC_HDR 8
#define MP_MALLOC_ALIGN 16
#define MP_MALLOC_MIN 32
#define MP_MMAP_MIN (UINT64_C(128) << 10)
#define MP_MMAP_HDR 16
#define MP_PAGE 4096

/* Times are seconds of the store's monotonic clock (mp_store_now_ms /
 * 1000 + 1), so 0 can mean "none"; 32 bits cover 136 years.  The owner
 * tag (owner_len bytes, not NUL-terminated) follows the size bytes. */
struct mp_entry {
	struct mp_entry *next;
	uint64_t vuid;
	uint64_t size;
	uint64_t len; /* stored length: what a whole-value get returns */
	uint32_t created, access, expires; /* expires 0: no lease */
	uint8_t owner_len;
	uint8_t flags; /* MP_E_OWNED: an identity (8 bytes after the tag) owns it */
	uint8_t bytes[];
};
#define MP_E_OWNED 1
#define MP_E_SHARED 2

/* Bytes after the value: the owner tag, then the owning identity. */
static size_t entry_extra(const struct mp_entry *e)
{
	return e->owner_len + (e->flags & MP_E_OWNED ? sizeof(uint64_t) : 0);
}

/* May ident use e?  (Under e's stripe lock.) */
static bool entry_allows(const struct mp_entry *e, uint64_t ident)
{
	if (!(e->flags & MP_E_OWNED) || (e->flags & MP_E_SHARED))
		return true;
	uint64_t owner;
	memcpy(&owner, e->bytes + e->size + e->owner_len, sizeof owner);
	return ident != 0 && ident == owner;
}

struct mp_stripe {
	pthread_mutex_t lock;
	struct mp_entry **buckets;
	size_t nbuckets; /* power of two */
	size_t count;
};

struct mp_rid {
	uint64_t rid, vuid;
	uint64_t at_ms; /* when it was answered; 0: empty slot */
};

struct mp_store {
	struct vuid_gen gen;
	uint64_t t0_ms; /* CLOCK_MONOTONIC at creation */
	_Atomic uint64_t leased; /* live allocations with a lease */
	pthread_mutex_t sweep_lock; /* the expiry walk's cursor */
	uint64_t sweep_cursor;
	pthread_mutex_t rid_lock; /* recent malloc request ids */
	struct mp_rid rids[MP_RID_SLOTS];
	struct ma_acct *acct;
	bool own_acct; /* created by mp_store_new, freed with the store */
	uint64_t max_alloc;
	_Atomic uint64_t used, live; /* this store's bytes and allocations */
	_Atomic uint64_t accounted; /* what they cost (mp_store_cost) */
	_Atomic uint64_t ops_malloc, ops_set, ops_get, ops_free, ops_error;
	_Atomic uint64_t ops_expired, ops_replayed;
	struct mp_stripe stripes[MP_STRIPES];
};

static uint64_t mix(uint64_t x)
{
	x ^= x >> 33;
	x *= UINT64_C(0xff51afd7ed558ccd);
	x ^= x >> 33;
	return x;
}

uint64_t mp_store_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static uint32_t secs_at(const struct mp_store *st, uint64_t now_ms)
{
	return (uint32_t)((now_ms > st->t0_ms ? now_ms - st->t0_ms : 0) / 1000 + 1);
}

static uint32_t now_s(const struct mp_store *st) { return secs_at(st, mp_store_now_ms()); }

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
	st->t0_ms = mp_store_now_ms();
	pthread_mutex_init(&st->sweep_lock, NULL);
	pthread_mutex_init(&st->rid_lock, NULL);
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
	pthread_mutex_destroy(&st->sweep_lock);
	pthread_mutex_destroy(&st->rid_lock);
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

/* The cost of an entry holding size bytes plus an owner tag of extra. */
static uint64_t cost_of(uint64_t size, uint64_t extra)
{
	if (size > UINT64_MAX / 2)
		return UINT64_MAX; /* never fits any limit */
	uint64_t need = sizeof(struct mp_entry) + size + extra + MP_MALLOC_HDR;
	if (size + extra >= MP_MMAP_MIN)
		need = (need + MP_MMAP_HDR + MP_PAGE - 1) & ~(uint64_t)(MP_PAGE - 1);
	else
		need = (need + MP_MALLOC_ALIGN - 1) & ~(uint64_t)(MP_MALLOC_ALIGN - 1);
	if (need < MP_MALLOC_MIN)
		need = MP_MALLOC_MIN;
	return need + sizeof(struct mp_entry *); /* its share of the buckets */
}

uint64_t mp_store_cost(uint64_t size) { return cost_of(size, 0); }

static uint32_t expiry_of(uint32_t now, uint64_t ttl_ms)
{
	if (ttl_ms == 0)
		return 0;
	uint64_t secs = ttl_ms / 1000 + (ttl_ms % 1000 != 0);
	uint64_t e = now + secs;
	return e > UINT32_MAX ? UINT32_MAX : (uint32_t)e;
}

static int alloc_entry(struct mp_store *st, uint64_t size, bool span, const struct mp_alloc_opts *o,
		       uint64_t *vuid)
{
	size_t olen = o && o->owner ? o->owner_len : 0;
	if (size == 0 || size > st->max_alloc)
		return -EINVAL;
	if (olen && !mp_owner_valid(o->owner, olen))
		return -EINVAL;
	size_t extra = olen + (o && o->ident ? sizeof(uint64_t) : 0);
	uint64_t cost = cost_of(size, extra);
	if (!ma_reserve_pinned(st->acct, cost))
		return -ENOMEM;
	struct mp_entry *e = calloc(1, sizeof *e + size + extra);
	if (!e) {
		ma_release_pinned(st->acct, cost);
		return -ENOMEM;
	}
	atomic_fetch_add(&st->used, size);
	atomic_fetch_add(&st->accounted, cost);
	e->size = size;
	e->created = e->access = now_s(st);
	if (o && o->ttl_ms) {
		e->expires = expiry_of(e->created, o->ttl_ms);
		atomic_fetch_add(&st->leased, 1);
	}
	if (olen) {
		memcpy(e->bytes + size, o->owner, olen);
		e->owner_len = (uint8_t)olen;
	}
	if (o && o->ident) {
		memcpy(e->bytes + size + olen, &o->ident, sizeof o->ident);
		e->flags = MP_E_OWNED | (o->shared ? MP_E_SHARED : 0);
	}
	uint64_t id = e->vuid = vuid_gen_next(&st->gen, span);
	/* counted before it is visible: once the lock is released, a free,
	 * the lease sweep or free-by-owner may destroy e at any moment, so
	 * it is not touched after that */
	atomic_fetch_add(&st->live, 1);
	struct mp_stripe *s = stripe_of(st, id);
	pthread_mutex_lock(&s->lock);
	struct mp_entry **pp = slot_of(s, id);
	e->next = NULL;
	*pp = e; /* ids are never reused, so the slot is the chain's end */
	if (++s->count > s->nbuckets * 2)
		grow(s);
	pthread_mutex_unlock(&s->lock);
	*vuid = id;
	return 0;
}

int mp_store_alloc(struct mp_store *st, uint64_t size, bool span, uint64_t *vuid)
{
	return mp_store_alloc_ex(st, size, span, NULL, vuid);
}

#define MP_RID_WAYS 8

int mp_store_alloc_ex(struct mp_store *st, uint64_t size, bool span, const struct mp_alloc_opts *o,
		      uint64_t *vuid)
{
	atomic_fetch_add_explicit(&st->ops_malloc, 1, memory_order_relaxed);
	if (!o || !o->has_rid)
		return alloc_entry(st, size, span, o, vuid);
	/* Idempotent malloc: the set of MP_RID_WAYS slots the id maps to is
	 * searched and, on a miss, the allocation made and recorded under
	 * one lock, so two copies of one request never both allocate. */
	uint64_t now = mp_store_now_ms();
	struct mp_rid *set = &st->rids[(mix(o->rid) % (MP_RID_SLOTS / MP_RID_WAYS)) * MP_RID_WAYS];
	pthread_mutex_lock(&st->rid_lock);
	struct mp_rid *victim = &set[0];
	for (int i = 0; i < MP_RID_WAYS; i++) {
		struct mp_rid *r = &set[i];
		bool fresh = r->at_ms && now - r->at_ms < MP_RID_KEEP_MS;
		if (fresh && r->rid == o->rid) {
			*vuid = r->vuid;
			pthread_mutex_unlock(&st->rid_lock);
			atomic_fetch_add_explicit(&st->ops_replayed, 1, memory_order_relaxed);
			return 0;
		}
		if (!fresh || r->at_ms < victim->at_ms)
			victim = r; /* an empty or stale slot, else the oldest */
		if (!fresh)
			victim->at_ms = 0;
	}
	int rc = alloc_entry(st, size, span, o, vuid);
	if (rc == 0)
		*victim = (struct mp_rid){.rid = o->rid, .vuid = *vuid, .at_ms = now ? now : 1};
	pthread_mutex_unlock(&st->rid_lock);
	return rc;
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
		e->access = now_s(st);
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
	if (e)
		e->access = now_s(st);
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

/* Gives back what an entry unlinked from its stripe cost, and frees it. */
static void destroy(struct mp_store *st, struct mp_entry *e)
{
	uint64_t cost = cost_of(e->size, entry_extra(e));
	atomic_fetch_sub(&st->used, e->size);
	atomic_fetch_sub(&st->accounted, cost);
	ma_release_pinned(st->acct, cost);
	atomic_fetch_sub(&st->live, 1);
	if (e->expires)
		atomic_fetch_sub(&st->leased, 1);
	free(e);
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
	destroy(st, e);
	return 0;
}

int mp_store_check(struct mp_store *st, uint64_t vuid, uint64_t ident)
{
	struct mp_stripe *s = stripe_of(st, vuid);
	pthread_mutex_lock(&s->lock);
	struct mp_entry *e = *slot_of(s, vuid);
	int rc = !e ? -ENOENT : entry_allows(e, ident) ? 0 : -EACCES;
	pthread_mutex_unlock(&s->lock);
	return rc;
}

int mp_store_renew(struct mp_store *st, uint64_t vuid, uint64_t ttl_ms)
{
	struct mp_stripe *s = stripe_of(st, vuid);
	int rc = 0;
	pthread_mutex_lock(&s->lock);
	struct mp_entry *e = *slot_of(s, vuid);
	if (!e) {
		rc = -ENOENT;
	} else {
		uint32_t now = now_s(st);
		if (!e->expires && ttl_ms)
			atomic_fetch_add(&st->leased, 1);
		else if (e->expires && !ttl_ms)
			atomic_fetch_sub(&st->leased, 1);
		e->expires = expiry_of(now, ttl_ms);
		e->access = now;
	}
	pthread_mutex_unlock(&s->lock);
	return rc;
}

/* Reverse-binary bucket cursor (the scheme of Redis's SCAN): buckets are
 * visited in bit-reversed order of their index, so when a stripe's table
 * doubles between two pages no entry present throughout is skipped or
 * listed twice.  A cursor is (stripe << 56) | reversed-order position;
 * 0 is both the start and "done". */
static uint64_t rev64(uint64_t v)
{
	uint64_t r = 0;
	for (int i = 0; i < 64; i++, v >>= 1)
		r = (r << 1) | (v & 1);
	return r;
}

static uint64_t next_bucket(uint64_t v, uint64_t mask)
{
	v |= ~mask;
	v = rev64(v);
	v++;
	return rev64(v);
}

#define CUR_STRIPE(c) ((unsigned)((c) >> 56))
#define CUR_POS(c) ((c) & ((UINT64_C(1) << 56) - 1))

static void info_of(const struct mp_entry *e, uint32_t now, struct mp_info *in)
{
	in->vuid = e->vuid;
	in->size = e->size;
	in->len = e->len;
	in->age_s = now - e->created;
	in->idle_s = now - e->access;
	in->ttl_s = !e->expires ? -1 : e->expires > now ? (int64_t)(e->expires - now) : 0;
	memcpy(in->owner, e->bytes + e->size, e->owner_len);
	in->owner[e->owner_len] = '\0';
}

/* Walks whole buckets from cursor until at least max entries were
 * visited (or fn asked to stop); visit(ctx, stripe, &slot) may unlink the
 * entry at *slot (returning true) and is called under the stripe lock. */
typedef bool (*visit_fn)(void *ctx, struct mp_stripe *s, struct mp_entry **slot, bool *stop);

static uint64_t walk(struct mp_store *st, uint64_t cursor, size_t max, visit_fn visit, void *ctx)
{
	size_t seen = 0;
	bool stop = false;
	unsigned si = CUR_STRIPE(cursor);
	uint64_t pos = CUR_POS(cursor);
	while (si < MP_STRIPES) {
		struct mp_stripe *s = &st->stripes[si];
		pthread_mutex_lock(&s->lock);
		uint64_t mask = s->nbuckets - 1;
		do {
			struct mp_entry **pp = &s->buckets[pos & mask];
			while (*pp) {
				seen++;
				if (!visit(ctx, s, pp, &stop))
					pp = &(*pp)->next;
			}
			pos = next_bucket(pos, mask) & ((UINT64_C(1) << 56) - 1);
		} while (pos != 0 && seen < max && !stop);
		pthread_mutex_unlock(&s->lock);
		if (pos == 0)
			si++;
		if (seen >= max || stop)
			break;
	}
	if (si >= MP_STRIPES)
		return 0;
	return ((uint64_t)si << 56) | pos;
}

struct list_ctx {
	mp_list_fn fn;
	void *ctx;
	uint32_t now;
	bool check; /* list only what ident may use */
	uint64_t ident;
};

static bool list_visit(void *arg, struct mp_stripe *s, struct mp_entry **slot, bool *stop)
{
	(void)s;
	struct list_ctx *l = arg;
	struct mp_info in;
	if (l->check && !entry_allows(*slot, l->ident))
		return false;
	info_of(*slot, l->now, &in);
	if (!l->fn(l->ctx, &in))
		*stop = true; /* after this bucket: a page ends between buckets */
	return false;
}

uint64_t mp_store_list(struct mp_store *st, uint64_t cursor, size_t max, mp_list_fn fn, void *ctx)
{
	struct list_ctx l = {fn, ctx, now_s(st), false, 0};
	if (max == 0)
		max = 1;
	return walk(st, cursor, max, list_visit, &l);
}

uint64_t mp_store_list_as(struct mp_store *st, uint64_t cursor, size_t max, uint64_t ident,
			  mp_list_fn fn, void *ctx)
{
	struct list_ctx l = {fn, ctx, now_s(st), true, ident};
	if (max == 0)
		max = 1;
	return walk(st, cursor, max, list_visit, &l);
}

struct unlink_ctx {
	struct mp_store *st;
	uint32_t now; /* expire: entries whose lease ended by now */
	const char *owner; /* free_owner: entries with this tag */
	size_t owner_len;
	bool check; /* free_owner: only entries identity ident may use */
	uint64_t ident;
	struct mp_entry *dead; /* unlinked, freed after the lock */
	uint64_t n;
};

static bool unlink_visit(void *arg, struct mp_stripe *s, struct mp_entry **slot, bool *stop)
{
	(void)stop;
	struct unlink_ctx *u = arg;
	struct mp_entry *e = *slot;
	bool hit = u->owner ? (e->owner_len == u->owner_len &&
			       memcmp(e->bytes + e->size, u->owner, u->owner_len) == 0 &&
			       (!u->check || entry_allows(e, u->ident)))
			    : (e->expires && e->expires <= u->now);
	if (!hit)
		return false;
	*slot = e->next;
	s->count--;
	e->next = u->dead;
	u->dead = e;
	u->n++;
	return true;
}

static uint64_t reap(struct mp_store *st, struct unlink_ctx *u)
{
	while (u->dead) {
		struct mp_entry *n = u->dead->next;
		destroy(st, u->dead);
		u->dead = n;
	}
	return u->n;
}

uint64_t mp_store_expire(struct mp_store *st, uint64_t now_ms, size_t max_visit)
{
	if (atomic_load(&st->leased) == 0)
		return 0;
	struct unlink_ctx u = {.st = st, .now = secs_at(st, now_ms)};
	/* one sweeper at a time owns the cursor; the tick is on one thread */
	pthread_mutex_lock(&st->sweep_lock);
	st->sweep_cursor = walk(st, st->sweep_cursor, max_visit, unlink_visit, &u);
	pthread_mutex_unlock(&st->sweep_lock);
	uint64_t n = reap(st, &u);
	atomic_fetch_add_explicit(&st->ops_expired, n, memory_order_relaxed);
	return n;
}

static uint64_t free_tagged(struct mp_store *st, struct unlink_ctx *u);

uint64_t mp_store_free_owner(struct mp_store *st, const char *owner, size_t len)
{
	struct unlink_ctx u = {.st = st, .owner = owner, .owner_len = len};
	return free_tagged(st, &u);
}

uint64_t mp_store_free_owner_as(struct mp_store *st, const char *owner, size_t len, uint64_t ident)
{
	struct unlink_ctx u = {.st = st, .owner = owner, .owner_len = len, .check = true,
			       .ident = ident};
	return free_tagged(st, &u);
}

static uint64_t free_tagged(struct mp_store *st, struct unlink_ctx *up)
{
	struct unlink_ctx u = *up;
	uint64_t cursor = 0;
	do {
		/* a stripe lock is held for a bounded number of entries */
		cursor = walk(st, cursor, 4096, unlink_visit, &u);
		reap(st, &u);
	} while (cursor != 0);
	atomic_fetch_add_explicit(&st->ops_free, u.n, memory_order_relaxed);
	return u.n;
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
	out->leased = atomic_load(&st->leased);
	out->expired = atomic_load(&st->ops_expired);
	out->replayed = atomic_load(&st->ops_replayed);
}
