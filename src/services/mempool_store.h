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

#include "mempool_proto.h" /* MP_OWNER_MAX, mp_owner_valid */

struct mp_store;

struct mp_stats {
	uint64_t allocations; /* live allocations */
	uint64_t bytes; /* bytes of live allocations (their sizes) */
	uint64_t accounted; /* what they cost against the limit (mp_store_cost) */
	uint64_t limit; /* node memory limit */
	uint64_t cache_bytes; /* bytes the memcached port's items hold of it */
	uint64_t ops_malloc, ops_set, ops_get, ops_free, ops_error;
	uint64_t leased; /* live allocations with a lease */
	uint64_t expired; /* allocations freed because their lease ended */
	uint64_t replayed; /* mallocs answered from the request-id table */
};

#define MP_RID_KEEP_MS 120000 /* how long a malloc request id is remembered */

/* Optional parts of an allocation (all zero: none). */
struct mp_alloc_opts {
	uint64_t ttl_ms; /* lease: freed by mp_store_expire once it ends; 0 none */
	const char *owner; /* tag of owner_len bytes (mp_owner_valid), or NULL;
			    * -EINVAL if invalid */
	size_t owner_len;
	bool has_rid; /* rid: a client's request id; a repeat within */
	uint64_t rid; /* MP_RID_KEEP_MS returns the first answer */
	/* the authenticated identity that owns it (vconn_identity_id); 0:
	 * none, anyone may use it.  shared: owned, but anyone may use it. */
	uint64_t ident;
	bool shared;
};

/* What mp_store_list reports of one allocation. */
struct mp_info {
	uint64_t vuid, size, len;
	uint64_t age_s, idle_s; /* since creation, since the last set/get */
	int64_t ttl_s; /* seconds left of its lease, -1 without one */
	char owner[MP_OWNER_MAX + 1]; /* "" without a tag */
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

/* mp_store_alloc with options (o may be NULL).  -EINVAL also for an
 * invalid owner tag.  With o->has_rid, a request id seen in the last
 * MP_RID_KEEP_MS (the last 4096 or so ids) gets the VUID it got then
 * (even if that allocation has since been freed) and allocates nothing. */
int mp_store_alloc_ex(struct mp_store *st, uint64_t size, bool span, const struct mp_alloc_opts *o,
		      uint64_t *vuid);

/* The store's clock (CLOCK_MONOTONIC, ms); leases count in whole seconds. */
uint64_t mp_store_now_ms(void);

/* Sets (ttl_ms > 0) or removes (0) an allocation's lease, counting from
 * now.  0 or -ENOENT. */
int mp_store_renew(struct mp_store *st, uint64_t vuid, uint64_t ttl_ms);

/* Lists allocations from cursor (0: the start): calls fn for each entry of
 * whole hash buckets until at least max were listed or fn returned false;
 * returns the cursor of the next page, 0 when the table is done.  Entries
 * present for the whole walk are listed exactly once; ones made or freed
 * meanwhile may or may not be.  fn runs under a stripe lock: it must not
 * call the store. */
typedef bool (*mp_list_fn)(void *ctx, const struct mp_info *info);
uint64_t mp_store_list(struct mp_store *st, uint64_t cursor, size_t max, mp_list_fn fn, void *ctx);
/* The same, listing only the allocations identity ident may use (its own,
 * shared ones and unowned ones: mp_store_check); the others still count
 * towards max, so a page may hold fewer lines than max. */
uint64_t mp_store_list_as(struct mp_store *st, uint64_t cursor, size_t max, uint64_t ident,
			  mp_list_fn fn, void *ctx);

/* Frees allocations whose lease ended at now_ms (mp_store_now_ms time),
 * visiting at most about max_visit entries from where the last call
 * stopped (the walk wraps around).  Returns how many it freed. */
uint64_t mp_store_expire(struct mp_store *st, uint64_t now_ms, size_t max_visit);

/* Frees every allocation tagged owner; returns how many. */
uint64_t mp_store_free_owner(struct mp_store *st, const char *owner, size_t len);

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

/* May identity ident (0: an unauthenticated client) use allocation vuid?
 * 0 (its own, shared, or owned by nobody), -EACCES (another identity's;
 * also for ident 0), -ENOENT.  Ownership never changes and VUIDs are never
 * reused, so checking before the operation is as good as during it. */
int mp_store_check(struct mp_store *st, uint64_t vuid, uint64_t ident);

/* mp_store_free_owner for identity ident: allocations of another
 * identity (unless shared) keep their tag and stay. */
uint64_t mp_store_free_owner_as(struct mp_store *st, const char *owner, size_t len, uint64_t ident);

void mp_store_stats(struct mp_store *st, struct mp_stats *out);
void mp_store_count_error(struct mp_store *st);

#endif
