/*
 * memacct.h - the node's one memory accountant: how virgo_malloc memory
 * (mempool) and cached items (the memcached port) share mem_limit.
 *
 * Two kinds of bytes are counted against one limit.  "Pinned" bytes belong
 * to virgo_malloc allocations: they are never evicted, only freed by their
 * owner.  "Cache" bytes belong to memcached items: the cache may lose them
 * at any time.  The rule: pinned + cache <= limit, always.  A cache
 * reservation that does not fit fails and the item store evicts its own
 * least recently used items to make room (it can never take pinned bytes).
 * A pinned reservation that does not fit first asks the registered
 * evictor (the item store) to drop cached items, so virgo_malloc only fails
 * with -ENOMEM when pinned bytes alone would exceed the limit.  Lock-free:
 * reservations are compare-and-swap on one counter, so two racing
 * reservations can never overshoot the limit together.
 */
#ifndef VIRGO_MEMACCT_H
#define VIRGO_MEMACCT_H

#include <stdbool.h>
#include <stdint.h>

struct ma_acct;

/* Drops cached data worth at least `want` bytes if it can (the evictor
 * calls ma_release_cache for what it frees); returns the bytes released. */
typedef uint64_t (*ma_evict_fn)(void *ctx, uint64_t want);

struct ma_usage {
	uint64_t limit, pinned, cache;
	uint64_t pinned_evictions; /* cache bytes dropped to make room for pinned */
	uint64_t trims; /* times ma_tick returned freed memory to the system */
	uint64_t freed_since_trim; /* bytes released since the last trim */
};

/* A private accountant (caller frees with ma_free) or NULL. */
struct ma_acct *ma_new(uint64_t limit);
void ma_free(struct ma_acct *ma);

/* The node-wide accountant shared by every service of this process: the
 * first acquire creates it with `limit`, later ones return the same object
 * (their limit is ignored).  Each acquire is paired with ma_node_release;
 * the last release frees it.  NULL on allocation failure. */
struct ma_acct *ma_node_acquire(uint64_t limit);
void ma_node_release(struct ma_acct *ma);

/* Registers (or with fn NULL, removes) the one cache evictor. */
void ma_set_evictor(struct ma_acct *ma, ma_evict_fn fn, void *ctx);

/* true when n pinned bytes were reserved (evicting cache first if needed). */
bool ma_reserve_pinned(struct ma_acct *ma, uint64_t n);
void ma_release_pinned(struct ma_acct *ma, uint64_t n);
/* true when n cache bytes fit now; never evicts (the caller does). */
bool ma_reserve_cache(struct ma_acct *ma, uint64_t n);
void ma_release_cache(struct ma_acct *ma, uint64_t n);

void ma_get_usage(struct ma_acct *ma, struct ma_usage *out);

/* Live limit change (the mem_limit knob): 0, or -1 when pinned bytes
 * already exceed limit (refused; the old limit stays).  Cached items over
 * the new limit are evicted at once. */
int ma_set_limit(struct ma_acct *ma, uint64_t limit);

/* ---- returning freed memory to the system -------------------------------
 * The C library keeps freed memory for reuse, so after a burst the process
 * would sit at its peak for ever.  Call ma_tick once a second (the
 * services' tick hook, main thread): when at least MA_TRIM_MIN bytes were
 * released since the last trim and the node is quiet (fewer than
 * MA_TRIM_BUSY_OPS reservations and releases in the last second), it calls
 * malloc_trim(0), which hands every free page of every malloc arena back
 * to the kernel.  Only when quiet: trimming holds each arena's lock while
 * it walks the free pages (measured ~15 ms for 200 MB freed in 16 KiB
 * pieces, 70 ms for 800 MB), which a busy node's workers would wait for; and a node that
 * stays busy reuses what it freed anyway.  Returns true when it trimmed.
 * Safe to call from several services (one ma_tick runs at a time). */
#define MA_TRIM_MIN (UINT64_C(8) << 20)
#define MA_TRIM_BUSY_OPS 2000
bool ma_tick(struct ma_acct *ma);

/* Resident bytes of this process (/proc/self/statm), 0 if unknown. */
uint64_t ma_resident_bytes(void);

#endif
