/*
 * workpool.h - the node's shared pool for blocking work.
 *
 * An event loop must never block: a stat() of a client's path, a file
 * read on a slow disk, an fsync.  A service hands such work to this pool
 * (one per node, in the node context given to init) and takes a
 * vconn_ticket to post the result back to the connection's loop.  Bounded:
 * at most queue_max jobs wait; beyond, submit fails at once (-EBUSY), so
 * a flood of slow requests cannot queue without limit.
 */
#ifndef VIRGO_WORKPOOL_H
#define VIRGO_WORKPOOL_H

#include <stdbool.h>

struct vd_workpool;

/* fn runs exactly once: on a pool thread (cancelled false), or, for a job
 * still queued when the pool is freed, on the freeing thread with
 * cancelled true, so it can always release arg. */
typedef void (*vd_work_fn)(void *arg, bool cancelled);

/* nthreads >= 1 threads named "<name>/<k>", queue_max >= 0 waiting
 * jobs.  NULL on failure.  Free with vd_workpool_free. */
struct vd_workpool *vd_workpool_new(int nthreads, int queue_max, const char *name);
/* Any thread: 0, or -EBUSY when queue_max jobs already wait, -ENOMEM. */
int vd_workpool_submit(struct vd_workpool *p, vd_work_fn fn, void *arg);
/* Cancels the queued jobs, waits up to timeout_ms for the running ones,
 * then frees the pool (threads still stuck past the deadline are left
 * detached with their memory, so a stuck job cannot hang shutdown).
 * Returns the number of threads left stuck. */
int vd_workpool_free(struct vd_workpool *p, int timeout_ms);

#endif
