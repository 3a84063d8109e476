/*
 * memcache_items.h - the memcached port's item store: keys -> (flags,
 * exptime, CAS, value), with LRU eviction under the node's memory limit.
 *
 * Thread-safe: lock-striped hash table; each stripe keeps its own LRU list,
 * and eviction takes the least recently used item of each stripe in turn
 * (an approximation of one global LRU that needs no global lock).  Item
 * bytes are reserved as cache bytes with the node accountant (memacct.h);
 * when a reservation does not fit, items are evicted until it does.  The
 * store also registers itself as the accountant's evictor, so virgo_malloc
 * can reclaim cache memory.  Time is passed in (unix seconds), so tests
 * control it.  No I/O here.
 */
#ifndef VIRGO_MEMCACHE_ITEMS_H
#define VIRGO_MEMCACHE_ITEMS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct ma_acct;
struct mci_store;

enum mci_mode { MCI_SET, MCI_ADD, MCI_REPLACE, MCI_APPEND, MCI_PREPEND, MCI_CAS };

enum mci_result {
	MCI_STORED,
	MCI_NOT_STORED,
	MCI_EXISTS,
	MCI_NOT_FOUND,
	MCI_NOMEM, /* cannot make room (item larger than what eviction frees) */
	MCI_TOOLARGE,
	MCI_DELETED,
	MCI_TOUCHED,
	MCI_NON_NUMERIC, /* incr/decr on a value that is not a decimal u64 */
};

struct mci_stats {
	uint64_t curr_items, total_items, bytes, evictions, expired_unfetched, reclaimed;
	uint64_t get_hits, get_misses, get_expired, get_flushed, cmd_get, cmd_set, cmd_touch,
		touch_hits, touch_misses, delete_hits, delete_misses, incr_hits, incr_misses,
		decr_hits, decr_misses, cas_hits, cas_misses, cas_badval, cmd_flush;
};

struct mci_item;

/* Called under the item's stripe lock with its bytes, valid during the
 * call; to use val later (a zero-copy reply), call mci_hold(it) here and
 * mci_release(it) when done. */
typedef void (*mci_emit_fn)(void *ctx, struct mci_item *it, const uint8_t *key, size_t nkey,
			    uint32_t flags, uint64_t cas, const uint8_t *val, size_t nval);

/* Keep an item's bytes alive past the emit call / let them go (any
 * thread; the last release frees the item and its accounted bytes). */
void mci_hold(struct mci_item *it);
void mci_release(struct mci_item *it);

/* New store (caller frees with mci_free) or NULL.  acct is borrowed and
 * must outlive the store; max_item bounds one item's value. */
struct mci_store *mci_new(struct ma_acct *acct, uint64_t max_item);
/* Frees every item (releasing its bytes) and the store. */
void mci_free(struct mci_store *st);

/* Looks key up; on a hit calls emit and returns true.  touch: first set
 * the exptime to exptime_abs (gat). */
bool mci_get(struct mci_store *st, const uint8_t *key, size_t nkey, int64_t now, bool touch,
	     int64_t exptime_abs, mci_emit_fn emit, void *ctx);

/* Stores per mode (memcached semantics; append/prepend keep flags and
 * exptime).  cas is the client's unique for MCI_CAS. */
enum mci_result mci_store(struct mci_store *st, enum mci_mode mode, const uint8_t *key,
			  size_t nkey, uint32_t flags, int64_t exptime_abs, uint64_t cas,
			  const uint8_t *data, size_t ndata, int64_t now);

/* The same in two steps, for a value that is not contiguous in memory
 * (copied from the input buffer's pieces): mci_prepare reserves and
 * allocates the item (NULL and *why on failure) and gives its value
 * bytes in *val to fill; mci_commit stores it per mode (set, add,
 * replace, cas; not append/prepend) and consumes it; mci_abandon drops
 * an item that will not be committed. */
struct mci_item *mci_prepare(struct mci_store *st, enum mci_mode mode, const uint8_t *key,
			     size_t nkey, size_t nval, uint8_t **val, enum mci_result *why,
			     int64_t now);
enum mci_result mci_commit(struct mci_store *st, enum mci_mode mode, struct mci_item *it,
			   uint32_t flags, int64_t exptime_abs, uint64_t cas, int64_t now);
void mci_abandon(struct mci_item *it);

enum mci_result mci_delete(struct mci_store *st, const uint8_t *key, size_t nkey, int64_t now);
enum mci_result mci_touch(struct mci_store *st, const uint8_t *key, size_t nkey,
			  int64_t exptime_abs, int64_t now);
/* incr wraps at 2^64; decr floors at 0.  *result gets the new value. */
enum mci_result mci_arith(struct mci_store *st, const uint8_t *key, size_t nkey, bool incr,
			  uint64_t delta, uint64_t *result, int64_t now);

/* flush_all: when <= now, drops every item now; otherwise items stored
 * before `when` become invisible once `when` has come. */
void mci_flush(struct mci_store *st, int64_t when, int64_t now);

/* Evicts least recently used items until at least want bytes were freed
 * or the store is empty; returns the bytes freed (the accountant's
 * evictor). */
uint64_t mci_evict(struct mci_store *st, uint64_t want);

/* What a dump shows of one item; key is valid during the call only. */
struct mci_meta {
	const uint8_t *key;
	size_t nkey, nval, size; /* size: bytes it holds under mem_limit */
	int64_t exptime, atime; /* absolute unix seconds; exptime 0 = never */
	uint64_t cas;
	bool fetched;
};
/* Called under the item's stripe lock; returns false to stop the walk
 * (the item it was given is then not counted). */
typedef bool (*mci_dump_fn)(void *ctx, const struct mci_meta *m);
/* stats cachedump / lru_crawler metadump: calls fn for up to `limit` live
 * items (0: no limit) of stripes [first, first + count), each stripe's
 * from most to least recently used.  Returns how many items fn took.
 * A whole dump is stripes 0..MCI_NSTRIPES-1, in one call or stripe by
 * stripe (every item stays in one stripe for its life, so a dump in
 * steps lists each item that lives throughout it exactly once).
 * Nothing is allocated. */
#define MCI_NSTRIPES 64 /* lock stripes of the store (a power of two) */
uint64_t mci_dump(struct mci_store *st, int first, int count, uint64_t limit, int64_t now,
		  mci_dump_fn fn, void *ctx);
/* Seconds since the least recently used item was last moved to the head
 * of its list (memcached's items:<class>:age), 0 when the store is empty. */
int64_t mci_lru_age(struct mci_store *st, int64_t now);

void mci_get_stats(struct mci_store *st, struct mci_stats *out);
void mci_reset_stats(struct mci_store *st);

#endif
