/*
 * cpupool_pool.c - bounded thread pool for cpupool jobs (cpupool_pool.h).
 *
 * A ring of queue_max + workers slots guarded by one mutex: a job is
 * accepted while (running + queued) < workers + queue_max, so "busy" is
 * decided at submit time and a client learns it at once instead of timing
 * out.  Threads sleep on a condition variable.  Freeing waits for the
 * threads with a deadline: a plugin function that ignores its cancel flag
 * cannot be stopped, so after the deadline the pool is left to it (never
 * freed under it) and the caller goes on exiting.
 */
#include "cpupool_pool.h"

#include "../common/abstime.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <time.h>

#include "../common/abstime.h"

struct cp_pool {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	pthread_cond_t gone_cv; /* a thread left pool_main (CLOCK_MONOTONIC) */
	int alive; /* threads not yet out of pool_main */
	void **ring;
	int cap, head, len; /* ring of queued jobs */
	int running, workers, queue_max;
	bool stop;
	cp_pool_fn run, drop;
	pthread_t *th;
	int nth, thcap; /* threads started (index < workers take jobs) */
};

struct pool_thread {
	struct cp_pool *p;
	int idx;
};

static void *pool_main(void *arg)
{
	struct pool_thread *pt = arg;
	struct cp_pool *p = pt->p;
	int idx = pt->idx;
	free(pt);
	pthread_mutex_lock(&p->mu);
	for (;;) {
		/* a thread beyond a lowered worker count parks until raised */
		while (!p->stop && (p->len == 0 || idx >= p->workers))
			pthread_cond_wait(&p->cv, &p->mu);
		if (p->stop)
			break;
		void *job = p->ring[p->head];
		p->head = (p->head + 1) % p->cap;
		p->len--;
		p->running++;
		pthread_mutex_unlock(&p->mu);
		p->run(job);
		pthread_mutex_lock(&p->mu);
		p->running--;
	}
	p->alive--;
	pthread_cond_broadcast(&p->gone_cv);
	pthread_mutex_unlock(&p->mu);
	return NULL;
}

/* mu held: threads up to n (indexes nth..n-1). */
static int start_threads(struct cp_pool *p, int n)
{
	if (n > p->thcap) {
		pthread_t *th = realloc(p->th, sizeof *th * (size_t)n);
		if (!th)
			return -ENOMEM;
		p->th = th;
		p->thcap = n;
	}
	while (p->nth < n) {
		struct pool_thread *pt = malloc(sizeof *pt);
		if (!pt)
			return -ENOMEM;
		*pt = (struct pool_thread){p, p->nth};
		p->alive++;
		if (pthread_create(&p->th[p->nth], NULL, pool_main, pt) != 0) {
			p->alive--;
			free(pt);
			return -EAGAIN;
		}
		p->nth++;
	}
	return 0;
}

struct cp_pool *cp_pool_new(int workers, int queue_max, cp_pool_fn run, cp_pool_fn drop)
{
	struct cp_pool *p = calloc(1, sizeof *p);
	if (!p)
		return NULL;
	p->workers = workers < 1 ? 1 : workers;
	p->queue_max = queue_max < 0 ? 0 : queue_max;
	p->cap = p->workers + p->queue_max;
	p->run = run;
	p->drop = drop;
	p->ring = calloc((size_t)p->cap, sizeof *p->ring);
	p->th = calloc((size_t)p->workers, sizeof *p->th);
	pthread_mutex_init(&p->mu, NULL);
	pthread_cond_init(&p->cv, NULL);
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&p->gone_cv, &ca);
	pthread_condattr_destroy(&ca);
	p->thcap = p->workers;
	if (!p->ring || !p->th)
		goto fail;
	pthread_mutex_lock(&p->mu);
	int rc = start_threads(p, p->workers);
	pthread_mutex_unlock(&p->mu);
	if (rc != 0)
		goto fail;
	return p;
fail:
	cp_pool_free(p, -1);
	return NULL;
}

int cp_pool_submit(struct cp_pool *p, void *job)
{
	pthread_mutex_lock(&p->mu);
	if (p->stop || p->running + p->len >= p->workers + p->queue_max || p->len >= p->cap) {
		pthread_mutex_unlock(&p->mu);
		return -EBUSY;
	}
	p->ring[(p->head + p->len) % p->cap] = job;
	p->len++;
	/* parked threads (beyond workers) would swallow a single signal */
	if (p->nth > p->workers)
		pthread_cond_broadcast(&p->cv);
	else
		pthread_cond_signal(&p->cv);
	pthread_mutex_unlock(&p->mu);
	return 0;
}

int cp_pool_resize(struct cp_pool *p, int workers, int queue_max)
{
	if (workers < 1 || queue_max < 0)
		return -EINVAL;
	pthread_mutex_lock(&p->mu);
	int cap = workers + queue_max;
	if (cap < p->len)
		cap = p->len; /* jobs already queued stay */
	if (cap != p->cap) {
		void **ring = calloc((size_t)cap, sizeof *ring);
		if (!ring) {
			pthread_mutex_unlock(&p->mu);
			return -ENOMEM;
		}
		for (int i = 0; i < p->len; i++)
			ring[i] = p->ring[(p->head + i) % p->cap];
		free(p->ring);
		p->ring = ring;
		p->cap = cap;
		p->head = 0;
	}
	int rc = start_threads(p, workers);
	if (rc == 0) {
		p->workers = workers;
		p->queue_max = queue_max;
	}
	pthread_cond_broadcast(&p->cv);
	pthread_mutex_unlock(&p->mu);
	return rc;
}

void cp_pool_counts(struct cp_pool *p, struct cp_pool_counts *out)
{
	pthread_mutex_lock(&p->mu);
	out->running = p->running;
	/* jobs beyond the idle workers are the ones actually waiting */
	out->queued = p->len;
	out->workers = p->workers;
	out->queue_max = p->queue_max;
	pthread_mutex_unlock(&p->mu);
}

int cp_pool_free(struct cp_pool *p, int timeout_ms)
{
	if (!p)
		return 0;
	struct timespec dl;
	abstime_after_ms(CLOCK_MONOTONIC, timeout_ms > 0 ? timeout_ms : 0, &dl);
	pthread_mutex_lock(&p->mu);
	p->stop = true;
	pthread_cond_broadcast(&p->cv);
	/* queued jobs never start now (threads leave at stop) */
	while (p->len > 0) {
		void *job = p->ring[p->head];
		p->head = (p->head + 1) % p->cap;
		p->len--;
		if (p->drop)
			p->drop(job);
	}
	while (p->alive > 0 && timeout_ms >= 0)
		if (pthread_cond_timedwait(&p->gone_cv, &p->mu, &dl) == ETIMEDOUT)
			break;
	bool stuck = p->alive > 0 && timeout_ms >= 0;
	pthread_mutex_unlock(&p->mu);
	if (stuck)
		return -1; /* p stays allocated: the stuck threads still use it */
	for (int i = 0; i < p->nth; i++)
		pthread_join(p->th[i], NULL);
	pthread_mutex_destroy(&p->mu);
	pthread_cond_destroy(&p->cv);
	pthread_cond_destroy(&p->gone_cv);
	free(p->ring);
	free(p->th);
	free(p);
	return 0;
}
