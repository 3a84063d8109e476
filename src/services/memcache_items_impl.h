/*
 * memcache_items_impl.h - memcache_items internals shared by the item
 * store (memcache_items.c) and its eviction (memcache_lru.c): the item,
 * stripe and store layouts, and the small list operations both need.
 *
 * Each stripe keeps its items on a hash chain and on a doubly linked LRU
 * list (head most recent, tail evicted first); everything here runs with
 * the stripe's lock held.  The operations are static inline because the
 * get path uses them: they must cost no call.  Not for use outside these
 * two files.
 */
#ifndef VIRGO_MEMCACHE_ITEMS_IMPL_H
#define VIRGO_MEMCACHE_ITEMS_IMPL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "memcache_items.h"

/* A hit moves an item to the LRU head at most this often (seconds), as
 * memcached's ITEM_UPDATE_INTERVAL: relinking touches two neighbours'
 * cache lines, which on a large, cold table costs more than the lookup. */
#define MCI_BUMP_INTERVAL 60

/* Every byte here is paid per item under mem_limit (bench/suite_capacity:
 * with 32 B values the header is most of an item), hence 32-bit times and
 * size: unix seconds fit until 2106; exptimes are at most 2^31 - 1
 * (mc_exptime_abs) and an item below 2^31 + 512 bytes (mc_parse). */
#define MCI_ITEM_MAX (UINT32_MAX - 4096) /* largest value (append included) */

struct mci_item {
	struct mci_item *hnext; /* hash chain */
	struct mci_item *prev, *next; /* stripe LRU: head is most recent */
	uint64_t hash, cas;
	struct ma_acct *acct; /* to give them back from any thread */
	uint32_t exptime; /* absolute unix seconds, 0 = never */
	uint32_t time; /* when stored (for delayed flush_all) */
	uint32_t atime; /* last LRU bump */
	uint32_t asize; /* bytes reserved with the accountant */
	_Atomic uint32_t refs; /* the table's link + replies in flight */
	uint32_t flags, nval;
	uint16_t nkey;
	uint8_t fetched; /* a get has hit it (metadump, expired_unfetched) */
	uint8_t data[]; /* key, then value */
};

struct mci_stripe {
	pthread_mutex_t lock;
	struct mci_item **buckets;
	size_t nbuckets; /* power of two */
	size_t count;
	struct mci_item *head, *tail;
	struct mci_stats s; /* this stripe's share of the counters */
	char pad[64];
};

struct mci_store {
	struct ma_acct *acct;
	uint64_t max_item;
	_Atomic uint64_t next_cas;
	_Atomic int64_t oldest_live; /* delayed flush_all boundary, 0 = none */
	_Atomic unsigned evict_cursor;
	struct mci_stripe stripes[MCI_NSTRIPES];
};

static inline struct mci_item **mci_bucket_of(struct mci_stripe *s, uint64_t h)
{
	return &s->buckets[(h >> 8) & (s->nbuckets - 1)];
}

static inline void mci_lru_unlink(struct mci_stripe *s, struct mci_item *it)
{
	if (it->prev)
		it->prev->next = it->next;
	else
		s->head = it->next;
	if (it->next)
		it->next->prev = it->prev;
	else
		s->tail = it->prev;
	it->prev = it->next = NULL;
}

static inline void mci_lru_push(struct mci_stripe *s, struct mci_item *it)
{
	it->prev = NULL;
	it->next = s->head;
	if (s->head)
		s->head->prev = it;
	s->head = it;
	if (!s->tail)
		s->tail = it;
}

/* Moves a hit item to the LRU head, unless it went there less than
 * MCI_BUMP_INTERVAL ago. */
static inline void mci_lru_bump(struct mci_stripe *s, struct mci_item *it, int64_t now)
{
	if (now - it->atime >= MCI_BUMP_INTERVAL) {
		it->atime = (uint32_t)now;
		mci_lru_unlink(s, it);
		mci_lru_push(s, it);
	}
}

/* Expired, or stored before a flush_all that has come. */
static inline bool mci_item_dead(struct mci_store *st, const struct mci_item *it, int64_t now)
{
	if (it->exptime != 0 && it->exptime <= now)
		return true;
	int64_t ol = atomic_load_explicit(&st->oldest_live, memory_order_relaxed);
	return ol != 0 && ol <= now && it->time <= ol;
}

/* Removes it from the hash chain and LRU; the caller drops the table's
 * reference (mci_release) after unlocking. */
static inline void mci_item_unlink(struct mci_stripe *s, struct mci_item *it)
{
	struct mci_item **pp = mci_bucket_of(s, it->hash);
	while (*pp != it)
		pp = &(*pp)->hnext;
	*pp = it->hnext;
	mci_lru_unlink(s, it);
	s->count--;
	s->s.curr_items--;
	s->s.bytes -= it->asize;
}

/* memcache_lru.c: make the store the accountant's evictor (mci_evict) /
 * stop it being one. */
void mci_lru_attach(struct mci_store *st);
void mci_lru_detach(struct mci_store *st);

#endif
