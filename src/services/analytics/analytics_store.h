/*
 * analytics_store.h - the node's analytics variables: current values, a
 * per-node revision that every change takes, and the last values of each
 * key in a ring (the original's 500 slots).  Bounded: at most max_keys
 * variables, AN_MAX_KEY/AN_MAX_VALUE bytes each, and max_bytes of values
 * over all rings (past it the oldest history goes first; the current
 * value of a key always stays).  Not thread-safe: the service guards it
 * with one mutex.  A watcher resumes "after revision R" with
 * an_store_since(), which refuses (-ERANGE) when a change after R was
 * already dropped from a ring, so a resume never silently misses one.
 */
#ifndef VIRGO_ANALYTICS_STORE_H
#define VIRGO_ANALYTICS_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define AN_RING 500 /* values kept per key */

struct an_store;

/* One kept value (views into the store, valid until its next change). */
struct an_entry {
	const char *key;
	uint64_t rev;
	const char *val; /* NUL-terminated */
	size_t vlen;
	bool learnt; /* published by the node itself (read-only to others) */
};

/* NULL on out of memory.  Free with an_store_free. */
struct an_store *an_store_new(int max_keys, uint64_t max_bytes);
void an_store_free(struct an_store *s);

/* Sets key to val.  learnt: the node's own (read-only) variable; a
 * non-learnt set of a learnt key is refused.  Returns 1 (changed; *rev
 * is its revision), 0 (same value: nothing changes, *rev the key's
 * revision), -ENOSPC (max_keys reached), -EACCES (learnt key), -EINVAL
 * (bad name or size), -ENOMEM. */
int an_store_set(struct an_store *s, const char *key, size_t klen, const char *val, size_t vlen,
		 bool learnt, uint64_t *rev);

/* The current value of key: 0 and *out filled, or -ENOENT. */
int an_store_get(const struct an_store *s, const char *key, size_t klen, struct an_entry *out);

/* The next change gets revision rev + 1 (rev above an_store_rev: a jump
 * ahead, analytics_rev.h).  reset (a restart, the store still empty):
 * watches after earlier revisions are refused (an_store_resumable). */
void an_store_skip_to(struct an_store *s, uint64_t rev, bool reset);

/* The last revision given (0: none yet). */
uint64_t an_store_rev(const struct an_store *s);
/* Watches may resume after any revision >= this (older: changes after
 * them were dropped from the rings). */
uint64_t an_store_resumable(const struct an_store *s);
int an_store_nkeys(const struct an_store *s);
uint64_t an_store_bytes(const struct an_store *s);

/* Callback per entry; nonzero stops the walk (returned by the walker). */
typedef int (*an_entry_fn)(void *arg, const struct an_entry *e);

/* Current values of keys starting with prefix (plen may be 0), by name. */
int an_store_list(const struct an_store *s, const char *prefix, size_t plen, an_entry_fn fn,
		  void *arg);
/* Kept values of key, oldest first; -ENOENT if no such key. */
int an_store_history(const struct an_store *s, const char *key, size_t klen, an_entry_fn fn,
		     void *arg);
/* Every kept change with revision > after, in revision order.  -ERANGE
 * when after < an_store_resumable() (some were dropped), -ENOMEM; else
 * what fn returned to stop, or 0. */
int an_store_since(const struct an_store *s, uint64_t after, an_entry_fn fn, void *arg);

#endif
