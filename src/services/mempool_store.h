/*
 * mempool_store.h - the node's allocation table and memory accounting.
 *
 * Maps VUID -> allocation (size, stored length, bytes).  Thread-safe:
 * lock-striped hash table, accounting against the node's limit through the
 * node memory accountant (memacct.h, as pinned bytes), so any worker thread
 * may serve any request.  No I/O here; the service layer
 * turns results into replies.
 */
#ifndef VIRGO_MEMPOOL_STORE_H
#define VIRGO_MEMPOOL_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct mp_store;

struct mp_stats {
	uint64_t allocations; /* live allocations */
	uint64_t bytes; /* bytes of live allocations (their sizes) */
	uint64_t accounted; /* what they cost against the limit (mp_store_cost) */
	uint64_t limit; /* node memory limit */
	uint64_t cache_bytes; /* bytes the memcached port's items hold of it */
	uint64_t ops_malloc, ops_set, ops_get, ops_free, ops_error;
};

struct ma_acct;

/* Returns a new store (caller frees with mp_store_free_all) or NULL.  The
 * store accounts against a private accountant of `limit` bytes. */
struct mp_store *mp_store_new(unsigned node_id, uint64_t limit, uint64_t max_alloc,
			      uint64_t seed_ms);
/* Same, accounting against `acct` (borrowed: must outlive the store). */
struct mp_store *mp_store_new_acct(unsigned node_id, struct ma_acct *acct, uint64_t max_alloc,
				   uint64_t seed_ms);
void mp_store_free_all(struct mp_store *st);

/* What an allocation of size bytes is counted as against the node's
 * limit: its bytes plus the entry header, the C library's per-block header
 * and rounding, and its share of the hash buckets.  UINT64_MAX for sizes
 * that could never fit. */
uint64_t mp_store_cost(uint64_t size);

/* 0 and *vuid, or -EINVAL (size 0 or above max_alloc), -ENOMEM (its
 * mp_store_cost does not fit under the limit). */
int mp_store_alloc(struct mp_store *st, uint64_t size, bool span, uint64_t *vuid);

/* Writes n bytes at off.  replace: the stored length becomes off+n;
 * otherwise it grows to cover them.  -ENOENT, -ERANGE (past the size). */
int mp_store_write(struct mp_store *st, uint64_t vuid, uint64_t off, const void *data, size_t n,
		   bool replace);

/* Calls emit(ctx, bytes, n) once, under the entry's lock, with the stored
 * value (whole) or the range [off, off+n).  -ENOENT, -ERANGE. */
typedef void (*mp_emit_fn)(void *ctx, const uint8_t *bytes, size_t n);
int mp_store_read(struct mp_store *st, uint64_t vuid, bool whole, uint64_t off, uint64_t n,
		  mp_emit_fn emit, void *ctx);

/* 0 or -ENOENT (unknown or already freed). */
int mp_store_release(struct mp_store *st, uint64_t vuid);

void mp_store_stats(struct mp_store *st, struct mp_stats *out);
void mp_store_count_error(struct mp_store *st);

#endif
