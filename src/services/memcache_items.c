/*
 * memcache_items.c - lock-striped item store with per-stripe LRU
 * (memcache_items.h).  Eviction is in memcache_lru.c; the layouts and
 * list operations both files use are in memcache_items_impl.h.
 *
 * An item is one malloc'd block: header, key, value.  Its accounted size
 * (header + key + value) is reserved as cache bytes *before* the block is
 * allocated, so the node never overshoots mem_limit.  Allocation and
 * eviction happen with no stripe lock held (eviction locks one stripe at a
 * time), so no lock order exists to get wrong.  Expired and flushed items
 * are reclaimed lazily when a lookup meets them, or by eviction.
 * Statistics are plain counters per stripe, written under the stripe's
 * lock and summed on demand, as memcached does per thread.  Items are
 * reference counted (the table holds one reference) so a reply can send a
 * large value straight from the item (zero copy) while the item is
 * replaced or evicted meanwhile; its bytes stay counted until the last
 * reference goes.
 */
#include "memcache_items.h"

#include <stdlib.h>
#include <string.h>

#include "memacct.h"
#include "memcache_items_impl.h"
#include "memcache_proto.h"

#define MCI_BUCKETS_INIT 1024
#define MCI_RESERVE_TRIES 16

/* Eight bytes per step (a byte-at-a-time hash was visible in profiles of
 * 32-byte keys), then a murmur-style finaliser. */
static uint64_t mci_hash(const uint8_t *k, size_t n)
{
	uint64_t h = UINT64_C(0xcbf29ce484222325) ^ (n * UINT64_C(0x9e3779b97f4a7c15));
	while (n >= 8) {
		uint64_t w;
		memcpy(&w, k, 8);
		h = (h ^ w) * UINT64_C(0x9e3779b97f4a7c15);
		h ^= h >> 29;
		k += 8;
		n -= 8;
	}
	uint64_t t = 0;
	memcpy(&t, k, n);
	h = (h ^ t) * UINT64_C(0xff51afd7ed558ccd);
	h ^= h >> 33;
	h *= UINT64_C(0xc4ceb9fe1a85ec53);
	h ^= h >> 33;
	return h;
}

static struct mci_stripe *stripe_of(struct mci_store *st, uint64_t h)
{
	return &st->stripes[h & (MCI_NSTRIPES - 1)];
}

struct mci_store *mci_new(struct ma_acct *acct, uint64_t max_item)
{
	struct mci_store *st = calloc(1, sizeof *st);
	if (!st)
		return NULL;
	st->acct = acct;
	/* an item's size (header, key, value) must fit its 32-bit asize */
	st->max_item = max_item < MCI_ITEM_MAX ? max_item : MCI_ITEM_MAX;
	atomic_init(&st->next_cas, 1);
	for (int i = 0; i < MCI_NSTRIPES; i++) {
		struct mci_stripe *s = &st->stripes[i];
		pthread_mutex_init(&s->lock, NULL);
		s->nbuckets = MCI_BUCKETS_INIT;
		s->buckets = calloc(MCI_BUCKETS_INIT, sizeof *s->buckets);
		if (!s->buckets) {
			mci_free(st);
			return NULL;
		}
	}
	mci_lru_attach(st);
	return st;
}

void mci_hold(struct mci_item *it)
{
	atomic_fetch_add_explicit(&it->refs, 1, memory_order_relaxed);
}

void mci_release(struct mci_item *it)
{
	if (atomic_fetch_sub_explicit(&it->refs, 1, memory_order_acq_rel) != 1)
		return;
	ma_release_cache(it->acct, it->asize);
	free(it);
}

/* Drops the table's (or a never-linked item's only) reference. */
static void item_free(struct mci_item *it)
{
	if (it)
		mci_release(it);
}

/* Unlocks s, then frees a and b (either may be NULL): what was unlinked
 * under the lock is freed outside it. */
static void unlock_free(struct mci_stripe *s, struct mci_item *a, struct mci_item *b)
{
	pthread_mutex_unlock(&s->lock);
	item_free(a);
	item_free(b);
}

/* Frees a whole LRU list, detached from its stripe. */
static void free_list(struct mci_item *it)
{
	while (it) {
		struct mci_item *n = it->next;
		item_free(it);
		it = n;
	}
}

void mci_free(struct mci_store *st)
{
	if (!st)
		return;
	mci_lru_detach(st);
	for (int i = 0; i < MCI_NSTRIPES; i++) {
		struct mci_stripe *s = &st->stripes[i];
		free_list(s->head);
		free(s->buckets);
		pthread_mutex_destroy(&s->lock);
	}
	free(st);
}

static void grow(struct mci_stripe *s)
{
	size_t nb = s->nbuckets * 2;
	struct mci_item **b = calloc(nb, sizeof *b);
	if (!b)
		return; /* longer chains, still correct */
	for (size_t i = 0; i < s->nbuckets; i++) {
		struct mci_item *it = s->buckets[i];
		while (it) {
			struct mci_item *n = it->hnext;
			size_t k = (it->hash >> 8) & (nb - 1);
			it->hnext = b[k];
			b[k] = it;
			it = n;
		}
	}
	free(s->buckets);
	s->buckets = b;
	s->nbuckets = nb;
}

/* Finds a live item (stripe locked).  A dead one met on the way is
 * unlinked and handed back in *reap for the caller to free unlocked. */
static struct mci_item *find(struct mci_store *st, struct mci_stripe *s, uint64_t h,
			     const uint8_t *key, size_t nkey, int64_t now, struct mci_item **reap)
{
	struct mci_item *it = *mci_bucket_of(s, h);
	while (it && (it->hash != h || it->nkey != nkey || memcmp(it->data, key, nkey) != 0))
		it = it->hnext;
	if (it && mci_item_dead(st, it, now)) {
		mci_item_unlink(s, it);
		s->s.reclaimed++;
		s->s.expired_unfetched += !it->fetched;
		*reap = it;
		return NULL;
	}
	return it;
}

/* Locks key's stripe (*sp, left locked for the caller) and finds its live
 * item, as find. */
static inline struct mci_item *find_locked(struct mci_store *st, const uint8_t *key, size_t nkey,
					   int64_t now, struct mci_stripe **sp,
					   struct mci_item **reap)
{
	uint64_t h = mci_hash(key, nkey);
	*sp = stripe_of(st, h);
	pthread_mutex_lock(&(*sp)->lock);
	return find(st, *sp, h, key, nkey, now, reap);
}

/* Links a new item, replacing old (stripe locked). */
static void item_link(struct mci_store *st, struct mci_stripe *s, struct mci_item *it,
		      struct mci_item *old, int64_t now)
{
	if (old)
		mci_item_unlink(s, old);
	it->cas = atomic_fetch_add_explicit(&st->next_cas, 1, memory_order_relaxed);
	it->time = it->atime = (uint32_t)now;
	struct mci_item **b = mci_bucket_of(s, it->hash);
	it->hnext = *b;
	*b = it;
	mci_lru_push(s, it);
	s->count++;
	s->s.curr_items++;
	s->s.total_items++;
	s->s.bytes += it->asize;
	if (s->count > s->nbuckets / 2 + s->nbuckets / 4) /* load <= 0.75: short chains */
		grow(s);
}

/* Links it in place of old, the live item its value was made from,
 * keeping old's flags and exptime (append/prepend, incr/decr; stripe
 * locked), then unlocks and frees old and reap. */
static void replace_unlock(struct mci_store *st, struct mci_stripe *s, struct mci_item *it,
			   struct mci_item *old, struct mci_item *reap, int64_t now)
{
	it->flags = old->flags;
	it->exptime = old->exptime;
	item_link(st, s, it, old, now);
	unlock_free(s, old, reap);
}

/* A new unlinked item with room for nval value bytes, reserved against
 * the limit (evicting as needed), or NULL with *why set. */
static struct mci_item *item_alloc(struct mci_store *st, uint64_t h, const uint8_t *key,
				   size_t nkey, size_t nval, enum mci_result *why)
{
	if (nval > st->max_item) {
		*why = MCI_TOOLARGE;
		return NULL;
	}
	size_t asize = sizeof(struct mci_item) + nkey + nval;
	int i = 0;
	while (!ma_reserve_cache(st->acct, asize)) {
		if (++i == MCI_RESERVE_TRIES || mci_evict(st, asize) == 0) {
			*why = MCI_NOMEM;
			return NULL;
		}
	}
	struct mci_item *it = malloc(asize);
	if (!it) {
		ma_release_cache(st->acct, asize);
		*why = MCI_NOMEM;
		return NULL;
	}
	memset(it, 0, sizeof *it);
	it->hash = h;
	it->asize = (uint32_t)asize;
	it->acct = st->acct;
	atomic_init(&it->refs, 1);
	it->nkey = (uint16_t)nkey;
	it->nval = (uint32_t)nval;
	memcpy(it->data, key, nkey);
	return it;
}

bool mci_get(struct mci_store *st, const uint8_t *key, size_t nkey, int64_t now, bool touch,
	     int64_t exptime_abs, mci_emit_fn emit, void *ctx)
{
	struct mci_stripe *s;
	struct mci_item *reap = NULL;
	struct mci_item *it = find_locked(st, key, nkey, now, &s, &reap);
	s->s.cmd_get++;
	if (touch)
		s->s.cmd_touch++;
	if (it) {
		s->s.get_hits++;
		it->fetched = 1;
		if (touch) {
			s->s.touch_hits++;
			it->exptime = (uint32_t)exptime_abs;
		}
		mci_lru_bump(s, it, now);
		emit(ctx, it, it->data, it->nkey, it->flags, it->cas, it->data + it->nkey, it->nval);
	} else {
		s->s.get_misses++;
		if (touch)
			s->s.touch_misses++;
		if (reap)
			s->s.get_expired++;
	}
	unlock_free(s, reap, NULL);
	return it != NULL;
}

/* append/prepend: the new size depends on the old item, which may change
 * while we allocate unlocked; its CAS tells us if it did. */
static enum mci_result store_concat(struct mci_store *st, enum mci_mode mode, uint64_t h,
				    const uint8_t *key, size_t nkey, const uint8_t *data,
				    size_t ndata, int64_t now)
{
	struct mci_stripe *s = stripe_of(st, h);
	for (;;) {
		struct mci_item *reap = NULL;
		pthread_mutex_lock(&s->lock);
		s->s.cmd_set++;
		struct mci_item *old = find(st, s, h, key, nkey, now, &reap);
		size_t oldn = old ? old->nval : 0;
		uint64_t oldcas = old ? old->cas : 0;
		unlock_free(s, reap, NULL);
		if (!old)
			return MCI_NOT_STORED;
		enum mci_result why;
		if (oldn + ndata > st->max_item)
			return MCI_TOOLARGE;
		struct mci_item *it = item_alloc(st, h, key, nkey, oldn + ndata, &why);
		if (!it)
			return why;
		reap = NULL;
		pthread_mutex_lock(&s->lock);
		old = find(st, s, h, key, nkey, now, &reap);
		if (old && old->cas == oldcas) {
			uint8_t *v = it->data + nkey;
			const uint8_t *ov = old->data + old->nkey;
			if (mode == MCI_APPEND) {
				memcpy(v, ov, oldn);
				memcpy(v + oldn, data, ndata);
			} else {
				memcpy(v, data, ndata);
				memcpy(v + ndata, ov, oldn);
			}
			replace_unlock(st, s, it, old, reap, now);
			return MCI_STORED;
		}
		s->s.cmd_set--; /* counted again on the retry */
		unlock_free(s, reap, it);
	}
}

enum mci_result mci_store(struct mci_store *st, enum mci_mode mode, const uint8_t *key,
			  size_t nkey, uint32_t flags, int64_t exptime_abs, uint64_t cas,
			  const uint8_t *data, size_t ndata, int64_t now)
{
	if (mode == MCI_APPEND || mode == MCI_PREPEND)
		return store_concat(st, mode, mci_hash(key, nkey), key, nkey, data, ndata, now);
	enum mci_result why;
	uint8_t *val;
	struct mci_item *it = mci_prepare(st, mode, key, nkey, ndata, &val, &why, now);
	if (!it)
		return why;
	memcpy(val, data, ndata);
	return mci_commit(st, mode, it, flags, exptime_abs, cas, now);
}

struct mci_item *mci_prepare(struct mci_store *st, enum mci_mode mode, const uint8_t *key,
			     size_t nkey, size_t nval, uint8_t **val, enum mci_result *why,
			     int64_t now)
{
	struct mci_item *it = item_alloc(st, mci_hash(key, nkey), key, nkey, nval, why);
	if (!it) {
		/* memcached drops the old value when a set cannot be stored,
		 * so a reader never sees a stale one. */
		if (mode == MCI_SET && *why != MCI_TOOLARGE)
			mci_delete(st, key, nkey, now);
		return NULL;
	}
	*val = it->data + nkey;
	return it;
}

void mci_abandon(struct mci_item *it)
{
	mci_release(it);
}

enum mci_result mci_commit(struct mci_store *st, enum mci_mode mode, struct mci_item *it,
			   uint32_t flags, int64_t exptime_abs, uint64_t cas, int64_t now)
{
	uint64_t h = it->hash;
	const uint8_t *key = it->data;
	size_t nkey = it->nkey;
	it->flags = flags;
	it->exptime = (uint32_t)exptime_abs;
	struct mci_stripe *s = stripe_of(st, h);
	struct mci_item *reap = NULL;
	enum mci_result rc = MCI_STORED;
	pthread_mutex_lock(&s->lock);
	s->s.cmd_set++;
	struct mci_item *old = find(st, s, h, key, nkey, now, &reap);
	switch (mode) {
	case MCI_ADD:
		if (old) {
			rc = MCI_NOT_STORED;
			mci_lru_bump(s, old, now); /* memcached bumps it too */
		}
		break;
	case MCI_REPLACE:
		if (!old)
			rc = MCI_NOT_STORED;
		break;
	case MCI_CAS:
		if (!old) {
			rc = MCI_NOT_FOUND;
			s->s.cas_misses++;
		} else if (old->cas != cas) {
			rc = MCI_EXISTS;
			s->s.cas_badval++;
		} else {
			s->s.cas_hits++;
		}
		break;
	default:
		break;
	}
	if (rc == MCI_STORED)
		item_link(st, s, it, old, now);
	unlock_free(s, reap, rc == MCI_STORED ? old : it);
	return rc;
}

enum mci_result mci_delete(struct mci_store *st, const uint8_t *key, size_t nkey, int64_t now)
{
	struct mci_stripe *s;
	struct mci_item *reap = NULL;
	struct mci_item *it = find_locked(st, key, nkey, now, &s, &reap);
	if (it) {
		mci_item_unlink(s, it);
		s->s.delete_hits++;
	} else {
		s->s.delete_misses++;
	}
	unlock_free(s, reap, it);
	return it ? MCI_DELETED : MCI_NOT_FOUND;
}

enum mci_result mci_touch(struct mci_store *st, const uint8_t *key, size_t nkey,
			  int64_t exptime_abs, int64_t now)
{
	struct mci_stripe *s;
	struct mci_item *reap = NULL;
	struct mci_item *it = find_locked(st, key, nkey, now, &s, &reap);
	s->s.cmd_touch++;
	if (it) {
		it->exptime = (uint32_t)exptime_abs;
		s->s.touch_hits++;
	} else {
		s->s.touch_misses++;
	}
	unlock_free(s, reap, NULL);
	return it ? MCI_TOUCHED : MCI_NOT_FOUND;
}

enum mci_result mci_arith(struct mci_store *st, const uint8_t *key, size_t nkey, bool incr,
			  uint64_t delta, uint64_t *result, int64_t now)
{
	uint64_t h = mci_hash(key, nkey);
	struct mci_stripe *s = stripe_of(st, h);
	struct mci_item *fresh = NULL; /* a bigger item, made unlocked */
	for (;;) {
		struct mci_item *reap = NULL;
		pthread_mutex_lock(&s->lock);
		struct mci_item *it = find(st, s, h, key, nkey, now, &reap);
		uint64_t v;
		enum mci_result rc = MCI_STORED;
		if (!it)
			rc = MCI_NOT_FOUND;
		else if (!mc_strtoull(it->data + it->nkey, it->nval, &v))
			rc = MCI_NON_NUMERIC;
		if (incr && rc == MCI_NOT_FOUND)
			s->s.incr_misses++;
		else if (incr)
			s->s.incr_hits++;
		else if (rc == MCI_NOT_FOUND)
			s->s.decr_misses++;
		else
			s->s.decr_hits++;
		if (rc != MCI_STORED) {
			unlock_free(s, reap, fresh);
			return rc;
		}
		v = incr ? v + delta : (delta > v ? 0 : v - delta);
		char num[20];
		size_t n = mc_u64_str(v, num);
		if (n <= it->nval && atomic_load(&it->refs) == 1) {
			/* Fits the old block and no reply is sending it: rewrite
			 * in place, padded with spaces to the old length, as
			 * memcached does ("10" decr 1 is "9 "). */
			memcpy(it->data + it->nkey, num, n);
			memset(it->data + it->nkey + n, ' ', it->nval - n);
			it->cas = atomic_fetch_add_explicit(&st->next_cas, 1, memory_order_relaxed);
			unlock_free(s, reap, fresh);
			*result = v;
			return MCI_STORED;
		}
		if (fresh && fresh->nval >= n) {
			memcpy(fresh->data + nkey, num, n);
			fresh->nval = (uint32_t)n;
			replace_unlock(st, s, fresh, it, reap, now);
			*result = v;
			return MCI_STORED;
		}
		unlock_free(s, reap, fresh);
		enum mci_result why;
		fresh = item_alloc(st, h, key, nkey, 20, &why);
		if (!fresh)
			return why;
	}
}

void mci_flush(struct mci_store *st, int64_t when, int64_t now)
{
	if (when > now) {
		/* memcached: items stored up to the second before `when`. */
		atomic_store(&st->oldest_live, when - 1);
		return;
	}
	/* An immediate flush supersedes a pending delayed one (memcached
	 * moves its boundary to now, which only covers what we drop here). */
	atomic_store(&st->oldest_live, 0);
	for (int i = 0; i < MCI_NSTRIPES; i++) {
		struct mci_stripe *s = &st->stripes[i];
		pthread_mutex_lock(&s->lock);
		struct mci_item *it = s->head;
		s->head = s->tail = NULL;
		memset(s->buckets, 0, s->nbuckets * sizeof *s->buckets);
		s->count = 0;
		s->s.curr_items = 0;
		s->s.bytes = 0;
		if (i == 0)
			s->s.cmd_flush++;
		pthread_mutex_unlock(&s->lock);
		free_list(it);
	}
}

void mci_get_stats(struct mci_store *st, struct mci_stats *out)
{
	memset(out, 0, sizeof *out);
	uint64_t *o = (uint64_t *)out;
	size_t nfields = sizeof *out / sizeof(uint64_t);
	for (int i = 0; i < MCI_NSTRIPES; i++) {
		struct mci_stripe *s = &st->stripes[i];
		pthread_mutex_lock(&s->lock);
		const uint64_t *f = (const uint64_t *)&s->s;
		for (size_t j = 0; j < nfields; j++)
			o[j] += f[j];
		pthread_mutex_unlock(&s->lock);
	}
}

void mci_reset_stats(struct mci_store *st)
{
	for (int i = 0; i < MCI_NSTRIPES; i++) {
		struct mci_stripe *s = &st->stripes[i];
		pthread_mutex_lock(&s->lock);
		uint64_t items = s->s.curr_items, bytes = s->s.bytes;
		memset(&s->s, 0, sizeof s->s);
		s->s.curr_items = items;
		s->s.bytes = bytes;
		pthread_mutex_unlock(&s->lock);
	}
}
