/*
 * bench_libvirgo.c - set/get load generator for libvirgo, and the same
 * load through libmemcached against memcached, so the two can be compared
 * in one run (bench/suite_libvirgo.sh prints the ratio).
 *
 *   bench_libvirgo virgo     <threads> <pairs per thread> <value bytes>
 *   bench_libvirgo memcached <threads> <pairs per thread> <value bytes> <port>
 *
 * Each thread owns one allocation (or key), writes a fresh value, reads it
 * back and checks it, `pairs` times.  Prints "ops_per_sec N" and
 * "p99_us N" (per call latency, from all calls of all threads).
 */
#include <libmemcached/memcached.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "virgo.h"

static int mode_virgo, nthreads, pairs, vsize, mc_port;
static _Atomic long failures;

struct worker {
	pthread_t th;
	int id;
	double *lat_us; /* 2 * pairs entries */
};

static double now_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

static void *run(void *arg)
{
	struct worker *w = arg;
	char *val = malloc((size_t)vsize), key[32];
	snprintf(key, sizeof key, "bench-%d", w->id);
	virgo_vuid_t v = 0;
	memcached_st *mc = NULL;
	if (mode_virgo) {
		if (virgo_malloc((size_t)vsize, &v) != 0) {
			failures++;
			return NULL;
		}
	} else {
		mc = memcached_create(NULL);
		memcached_server_add(mc, "127.0.0.1", (in_port_t)mc_port);
		memcached_behavior_set(mc, MEMCACHED_BEHAVIOR_TCP_NODELAY, 1);
	}
	for (int i = 0; i < pairs; i++) {
		memset(val, 'a' + (i + w->id) % 26, (size_t)vsize);
		double t0 = now_us();
		int ok;
		if (mode_virgo)
			ok = virgo_set(v, val, (size_t)vsize) == 0;
		else
			ok = memcached_set(mc, key, strlen(key), val, (size_t)vsize, 0, 0) ==
			     MEMCACHED_SUCCESS;
		double t1 = now_us();
		void *got = NULL;
		size_t len = 0;
		if (mode_virgo) {
			ok = ok && virgo_get(v, &got, &len) == 0;
		} else {
			uint32_t flags;
			memcached_return_t rc;
			got = memcached_get(mc, key, strlen(key), &len, &flags, &rc);
			ok = ok && rc == MEMCACHED_SUCCESS;
		}
		double t2 = now_us();
		if (!ok || len != (size_t)vsize || memcmp(got, val, len) != 0)
			failures++;
		free(got);
		w->lat_us[2 * i] = t1 - t0;
		w->lat_us[2 * i + 1] = t2 - t1;
	}
	if (mode_virgo)
		virgo_free(v);
	else
		memcached_free(mc);
	free(val);
	return NULL;
}

static int cmp_d(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
	if (argc < 5 || (strcmp(argv[1], "virgo") && strcmp(argv[1], "memcached")) ||
	    (!strcmp(argv[1], "memcached") && argc < 6)) {
		fprintf(stderr, "usage: %s virgo|memcached <threads> <pairs> <bytes> [<port>]\n", argv[0]);
		return 2;
	}
	mode_virgo = strcmp(argv[1], "virgo") == 0;
	nthreads = atoi(argv[2]);
	pairs = atoi(argv[3]);
	vsize = atoi(argv[4]);
	mc_port = argc > 5 ? atoi(argv[5]) : 0;
	if (nthreads < 1 || pairs < 1 || vsize < 1)
		return 2;
	if (mode_virgo && virgo_init(NULL) != 0)
		return 1;
	struct worker *w = calloc((size_t)nthreads, sizeof *w);
	double t0 = now_us();
	for (int i = 0; i < nthreads; i++) {
		w[i].id = i;
		w[i].lat_us = malloc(sizeof(double) * 2 * (size_t)pairs);
		pthread_create(&w[i].th, NULL, run, &w[i]);
	}
	for (int i = 0; i < nthreads; i++)
		pthread_join(w[i].th, NULL);
	double secs = (now_us() - t0) / 1e6;
	size_t n = (size_t)nthreads * 2 * (size_t)pairs;
	double *all = malloc(sizeof(double) * n);
	for (int i = 0; i < nthreads; i++)
		memcpy(all + (size_t)i * 2 * (size_t)pairs, w[i].lat_us, sizeof(double) * 2 * (size_t)pairs);
	qsort(all, n, sizeof *all, cmp_d);
	printf("ops_per_sec %.0f\np50_us %.1f\np99_us %.1f\nfailures %ld\n", (double)n / secs,
	       all[n / 2], all[(size_t)((double)n * 0.99)], (long)failures);
	if (mode_virgo)
		virgo_fini();
	return failures ? 1 : 0;
}
