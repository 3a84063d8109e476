/*
 * bench_eventnet_log.c - what virgo_eventnet_log() costs its caller
 * (bench/suite_eventnet.sh): N events logged in rounds of R, the time
 * spent inside the calls alone (the queueing: the sending happens on the
 * library's thread), then virgo_eventnet_flush() per round for the
 * end-to-end rate.  Uses $VIRGO_CLIENT_CONF.  Prints one line:
 * call_ns=<mean ns per call> p50_call_ns=<...> p99_call_ns=<...>
 * e2e_per_s=<events/s> (the mean counts the rare slow calls: the queue
 * growing, the caller preempted on a busy machine).
 *
 *   bench_eventnet_log [-n 400000] [-r 100000] [-x prefix] [-s 32]
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "virgo.h"

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static int cmpu(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
	long n = 400000, round = 100000;
	int size = 32;
	const char *prefix = "L";
	int o;
	while ((o = getopt(argc, argv, "n:r:x:s:")) != -1) {
		switch (o) {
		case 'n': n = atol(optarg); break;
		case 'r': round = atol(optarg); break;
		case 'x': prefix = optarg; break;
		case 's': size = atoi(optarg); break;
		default: return 2;
		}
	}
	if (n < 1 || round < 1 || size < 1 || size > 4000)
		return 2;
	char *conv = malloc((size_t)size + 1);
	for (int i = 0; i < size; i++)
		conv[i] = (char)('a' + i % 26);
	conv[size] = '\0';
	/* per-call times of a sample (every 16th call) for the p99 */
	size_t ns = (size_t)(n / 16 + 1), k = 0;
	uint64_t *sample = malloc(ns * sizeof *sample);
	char id[64];
	uint64_t in_calls = 0, t0 = now_ns();
	for (long i = 0; i < n;) {
		for (long j = 0; j < round && i < n; j++, i++) {
			snprintf(id, sizeof id, "%s%ld", prefix, i);
			uint64_t a = now_ns();
			int rc = virgo_eventnet_log(id, "bench", conv, NULL);
			uint64_t d = now_ns() - a;
			if (rc) {
				fprintf(stderr, "virgo_eventnet_log: %s\n", virgo_strerror(rc));
				return 1;
			}
			in_calls += d;
			if ((i & 15) == 0 && k < ns)
				sample[k++] = d;
		}
		int rc = virgo_eventnet_flush(60000);
		if (rc) {
			fprintf(stderr, "virgo_eventnet_flush: %s %s\n", virgo_strerror(rc),
				virgo_last_error());
			return 1;
		}
	}
	double secs = (double)(now_ns() - t0) / 1e9;
	qsort(sample, k, sizeof *sample, cmpu);
	/* the clock reads themselves are in the figure: subtract their cost */
	uint64_t c0 = now_ns(), c1 = 0;
	for (int i = 0; i < 1000; i++)
		c1 = now_ns();
	double clk = (double)(c1 - c0) / 1000.0;
	printf("call_ns=%.0f p50_call_ns=%.0f p99_call_ns=%.0f e2e_per_s=%.0f clock_ns=%.0f\n",
	       (double)in_calls / (double)n - clk, (double)sample[k / 2] - clk,
	       (double)sample[k * 99 / 100] - clk, (double)n / secs, clk);
	free(sample);
	free(conv);
	virgo_fini();
	return 0;
}
