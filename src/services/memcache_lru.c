/*
 * memcache_lru.c - walks over the memcache item store's LRU lists
 * (memcache_items_impl.h): eviction, and the key dump and LRU age that
 * stats cachedump / stats items report.
 *
 * Frees memory by unlinking the least recently used item of one stripe at
 * a time, the stripes taken in turn from a shared cursor: an
 * approximation of one global LRU that needs no global lock, and holds
 * only one stripe lock at a time, so it may run from an allocation made
 * with no lock held.  The store registers mci_evict as the node
 * accountant's evictor (memacct.h), so virgo_malloc can reclaim cache
 * memory too.  The LRU lists themselves are kept by the inline operations
 * in memcache_items_impl.h, which the get path uses.
 */
#include "memcache_items_impl.h"

#include "memacct.h"

uint64_t mci_evict(struct mci_store *st, uint64_t want)
{
	uint64_t freed = 0;
	int empty = 0;
	while (freed < want && empty < MCI_NSTRIPES) {
		unsigned k = atomic_fetch_add_explicit(&st->evict_cursor, 1, memory_order_relaxed);
		struct mci_stripe *s = &st->stripes[k & (MCI_NSTRIPES - 1)];
		pthread_mutex_lock(&s->lock);
		struct mci_item *it = s->tail;
		if (it) {
			mci_item_unlink(s, it);
			s->s.evictions++;
		}
		pthread_mutex_unlock(&s->lock);
		if (!it) {
			empty++;
			continue;
		}
		empty = 0;
		freed += it->asize;
		mci_release(it);
	}
	return freed;
}

static uint64_t evict_adapter(void *ctx, uint64_t want)
{
	return mci_evict(ctx, want);
}

void mci_lru_attach(struct mci_store *st)
{
	ma_set_evictor(st->acct, evict_adapter, st);
}

void mci_lru_detach(struct mci_store *st)
{
	if (st->acct)
		ma_set_evictor(st->acct, NULL, NULL);
}

uint64_t mci_dump(struct mci_store *st, int first, int count, uint64_t limit, int64_t now,
		  mci_dump_fn fn, void *ctx)
{
	uint64_t n = 0;
	bool more = true;
	for (int i = first; i < first + count && i < MCI_NSTRIPES && more; i++) {
		struct mci_stripe *s = &st->stripes[i];
		pthread_mutex_lock(&s->lock);
		for (struct mci_item *it = s->head; it && more; it = it->next) {
			if (mci_item_dead(st, it, now))
				continue;
			if (limit && n == limit) {
				more = false;
				break;
			}
			struct mci_meta m = {.key = it->data, .nkey = it->nkey, .nval = it->nval,
					     .size = it->asize, .exptime = it->exptime,
					     .atime = it->atime, .cas = it->cas, .fetched = it->fetched};
			more = fn(ctx, &m);
			n += more;
		}
		pthread_mutex_unlock(&s->lock);
	}
	return n;
}

int64_t mci_lru_age(struct mci_store *st, int64_t now)
{
	int64_t oldest = now;
	for (int i = 0; i < MCI_NSTRIPES; i++) {
		struct mci_stripe *s = &st->stripes[i];
		pthread_mutex_lock(&s->lock);
		if (s->tail && s->tail->atime < oldest)
			oldest = s->tail->atime;
		pthread_mutex_unlock(&s->lock);
	}
	return now - oldest;
}
