/*
 * cpupool_pool.h - the bounded worker pool that runs cpupool jobs off the
 * event loops: a fixed number of threads and a bounded FIFO; a submit that
 * finds every thread busy and the queue full is refused (-EBUSY) rather
 * than buffered without limit.
 */
#ifndef VIRGO_CPUPOOL_POOL_H
#define VIRGO_CPUPOOL_POOL_H

typedef void (*cp_pool_fn)(void *job);

struct cp_pool;

/* workers >= 1 threads; queue_max >= 0 jobs may wait beyond them.  drop is
 * called for jobs still queued when the pool is freed.  NULL on failure. */
struct cp_pool *cp_pool_new(int workers, int queue_max, cp_pool_fn run, cp_pool_fn drop);

/* 0, or -EBUSY (every worker busy and the queue full; job not taken). */
int cp_pool_submit(struct cp_pool *p, void *job);

/* Live resize: from now on at most `workers` jobs run at once and
 * queue_max wait beyond them.  Raising starts threads; lowering lets the
 * running jobs finish (threads beyond the count then park), and jobs
 * already queued stay queued.  0, -EINVAL, -ENOMEM or -EAGAIN (no thread
 * could be started; the old sizes stay). */
int cp_pool_resize(struct cp_pool *p, int workers, int queue_max);

struct cp_pool_counts {
	int running, queued, workers, queue_max;
};
void cp_pool_counts(struct cp_pool *p, struct cp_pool_counts *out);

/* Drops queued jobs and stops the threads once their current job returns
 * (callers cancel running jobs first), waiting at most timeout_ms (< 0:
 * for ever).  0: the pool is freed.  -1: some thread is still inside a
 * job at the deadline; the pool is then deliberately not freed (that
 * thread still uses it) and the caller should just exit. */
int cp_pool_free(struct cp_pool *p, int timeout_ms);

#endif
