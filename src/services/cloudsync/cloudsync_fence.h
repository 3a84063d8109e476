/*
 * cloudsync_fence.h - the node-wide fence table: for each lock name, the
 * newest fencing token this node has seen.
 *
 * A write that carries "fence=<lock>:<token>" (mempool set) runs only if
 * its token is not older than the newest one seen for that lock, and then
 * raises the newest to it; an older token is refused with ESTALE.  So a
 * holder that paused past its lease (GC, SIGSTOP, a partition) cannot
 * overwrite what the next holder already wrote.  The lock service also
 * raises a lock's entry when it grants a newer token here, so on the lock's
 * home node a stale write is refused even before the new holder's first
 * write.  Process-wide (one node = one process), thread-safe, bounded.
 */
#ifndef VIRGO_CLOUDSYNC_FENCE_H
#define VIRGO_CLOUDSYNC_FENCE_H

#include <stddef.h>
#include <stdint.h>

#define CS_FENCE_MAX 65536 /* lock names the table remembers */

/* Runs write(arg) under the table's lock if token >= the newest seen for
 * name (name must be cs_name_valid), and then records token.  Returns
 * write's result, -ESTALE (an older token; *newest, if non-NULL, gets the
 * newest), or -ENOSPC (a new name and the table holds CS_FENCE_MAX). */
int cs_fence_write(const char *name, size_t len, uint64_t token, int (*write)(void *arg),
		   void *arg, uint64_t *newest);

/* A lock granted token: raise name's entry to it, if the table has one
 * (names never written with a fence here are not added). */
void cs_fence_observe(const char *name, size_t len, uint64_t token);

/* The newest token seen for name, 0 if none (tests, stats). */
uint64_t cs_fence_newest(const char *name, size_t len);

#endif
