/*
 * workpool.c - the node's shared pool for blocking work (workpool.h): a
 * fixed set of threads, a bounded FIFO of jobs under one mutex and a
 * condition variable, a timed shutdown.
 */
#include "workpool.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "../common/abstime.h"

struct wp_job {
	struct wp_job *next;
	vd_work_fn fn;
	void *arg;
};

struct vd_workpool {
	pthread_mutex_t mu;
	pthread_cond_t cv, idle;
	struct wp_job *head, *tail;
	int queued, queue_max;
	int nthreads, running, alive;
	bool stopping;
	pthread_t *th;
};

static void *wp_main(void *arg)
{
	struct vd_workpool *p = arg;
	pthread_mutex_lock(&p->mu);
	for (;;) {
		while (!p->head && !p->stopping)
			pthread_cond_wait(&p->cv, &p->mu);
		if (!p->head)
			break;
		struct wp_job *j = p->head;
		p->head = j->next;
		if (!p->head)
			p->tail = NULL;
		p->queued--;
		p->running++;
		pthread_mutex_unlock(&p->mu);
		j->fn(j->arg, false);
		free(j);
		pthread_mutex_lock(&p->mu);
		p->running--;
	}
	p->alive--;
	pthread_cond_broadcast(&p->idle);
	pthread_mutex_unlock(&p->mu);
	return NULL;
}

struct vd_workpool *vd_workpool_new(int nthreads, int queue_max, const char *name)
{
	if (nthreads < 1 || queue_max < 0)
		return NULL;
	struct vd_workpool *p = calloc(1, sizeof *p);
	if (!p)
		return NULL;
	p->th = calloc((size_t)nthreads, sizeof *p->th);
	if (!p->th) {
		free(p);
		return NULL;
	}
	pthread_mutex_init(&p->mu, NULL);
	pthread_cond_init(&p->cv, NULL);
	pthread_cond_init(&p->idle, NULL);
	p->queue_max = queue_max;
	for (int i = 0; i < nthreads; i++) {
		if (pthread_create(&p->th[i], NULL, wp_main, p) != 0)
			break;
		pthread_mutex_lock(&p->mu);
		p->nthreads++;
		p->alive++;
		pthread_mutex_unlock(&p->mu);
		char tn[16];
		snprintf(tn, sizeof tn, "%.10s/%d", name, i);
		pthread_setname_np(p->th[i], tn);
	}
	if (p->nthreads == 0) {
		vd_workpool_free(p, 0);
		return NULL;
	}
	return p;
}

int vd_workpool_submit(struct vd_workpool *p, vd_work_fn fn, void *arg)
{
	struct wp_job *j = malloc(sizeof *j);
	if (!j)
		return -ENOMEM;
	j->next = NULL;
	j->fn = fn;
	j->arg = arg;
	pthread_mutex_lock(&p->mu);
	if (p->stopping || p->queued >= p->queue_max + (p->nthreads - p->running)) {
		pthread_mutex_unlock(&p->mu);
		free(j);
		return -EBUSY;
	}
	if (p->tail)
		p->tail->next = j;
	else
		p->head = j;
	p->tail = j;
	p->queued++;
	pthread_cond_signal(&p->cv);
	pthread_mutex_unlock(&p->mu);
	return 0;
}

int vd_workpool_free(struct vd_workpool *p, int timeout_ms)
{
	pthread_mutex_lock(&p->mu);
	p->stopping = true;
	struct wp_job *j = p->head;
	p->head = p->tail = NULL;
	p->queued = 0;
	pthread_cond_broadcast(&p->cv);
	pthread_mutex_unlock(&p->mu);
	while (j) { /* cancelled: their owners release what they hold */
		struct wp_job *next = j->next;
		j->fn(j->arg, true);
		free(j);
		j = next;
	}
	struct timespec deadline;
	abstime_after_ms(CLOCK_REALTIME, timeout_ms, &deadline);
	pthread_mutex_lock(&p->mu);
	while (p->alive > 0 && pthread_cond_timedwait(&p->idle, &p->mu, &deadline) == 0)
		;
	int stuck = p->alive;
	pthread_mutex_unlock(&p->mu);
	if (stuck > 0) {
		/* a job that ignores the deadline: leave its thread (and the
		 * pool it reads) behind rather than hang the node's exit */
		for (int i = 0; i < p->nthreads; i++)
			pthread_detach(p->th[i]);
		return stuck;
	}
	for (int i = 0; i < p->nthreads; i++)
		pthread_join(p->th[i], NULL);
	pthread_cond_destroy(&p->cv);
	pthread_cond_destroy(&p->idle);
	pthread_mutex_destroy(&p->mu);
	free(p->th);
	free(p);
	return 0;
}
