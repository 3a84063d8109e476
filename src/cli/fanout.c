/*
 * fanout.c - runs one query per node (or per node and service) on threads
 * of its own, so a hung node costs a one-shot command one timeout in
 * total instead of one per node: virgo status and virgo ping ask every
 * node at once and print the answers in configuration order.  libvirgo
 * is thread-safe and keeps virgo_last_error() per thread, so each task
 * copies its own detail before returning.
 */
#include <pthread.h>
#include <stdatomic.h>

#include "cli.h"

/* Threads at most: enough that every query of a 64-node cluster's three
 * services is in flight at once, few enough for a small machine. */
#define CLI_FANOUT_THREADS 192

struct fanout {
	atomic_int next;
	int n;
	void (*fn)(int i, void *arg);
	void *arg;
};

static void *fanout_main(void *p)
{
	struct fanout *f = p;
	for (int i; (i = atomic_fetch_add(&f->next, 1)) < f->n;)
		f->fn(i, f->arg);
	return NULL;
}

void cli_fanout(int n, void (*fn)(int i, void *arg), void *arg)
{
	struct fanout f = {.n = n, .fn = fn, .arg = arg};
	atomic_init(&f.next, 0);
	pthread_t th[CLI_FANOUT_THREADS];
	int nt = 0;
	pthread_attr_t at;
	pthread_attr_init(&at);
	pthread_attr_setstacksize(&at, 512 * 1024);
	while (nt < n && nt < CLI_FANOUT_THREADS && pthread_create(&th[nt], &at, fanout_main, &f) == 0)
		nt++;
	pthread_attr_destroy(&at);
	fanout_main(&f); /* and whatever no thread could be started for */
	for (int t = 0; t < nt; t++)
		pthread_join(th[t], NULL);
}
