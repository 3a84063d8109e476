/*
 * bw.c - MaxNetworkBandwidth's token buckets (bw.h).  A bucket holds
 * bytes that may cross now; it refills at the cap's rate up to a burst of
 * 100 ms of it (at least two grants), so over any time T the bytes that
 * cross stay within rate x T + burst.  The burst lets a request/response
 * transfer (a cloudfs pwrite waiting for its OK, a pool hop on a busy
 * host) keep the time between requests instead of losing it; a new cap
 * starts from two grants, not a full burst.  One mutex per direction,
 * taken only while a cap is set.
 */
#include "bw.h"

#include <pthread.h>
#include <stdatomic.h>
#include <time.h>

#define BW_QUANTUM 16384 /* smallest grant (unless less is wanted) */

struct bw_bucket {
	pthread_mutex_t mu;
	int64_t tokens; /* bytes that may cross now */
	int64_t last_ns; /* when tokens were last refilled */
	uint64_t rate; /* bytes/s the bucket was refilled at (0: not yet) */
};

static _Atomic uint64_t cap_mbit;
static struct bw_bucket buckets[2] = {
	{.mu = PTHREAD_MUTEX_INITIALIZER},
	{.mu = PTHREAD_MUTEX_INITIALIZER},
};

static int64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

void bw_set_mbit(uint64_t mbit)
{
	for (int i = 0; i < 2; i++) { /* whatever the cap, it starts afresh */
		pthread_mutex_lock(&buckets[i].mu);
		buckets[i].rate = 0;
		pthread_mutex_unlock(&buckets[i].mu);
	}
	atomic_store(&cap_mbit, mbit);
}

uint64_t bw_mbit(void) { return atomic_load(&cap_mbit); }

static int64_t burst_of(uint64_t rate)
{
	int64_t b = (int64_t)(rate / 10);
	return b < 2 * BW_QUANTUM ? 2 * BW_QUANTUM : b;
}

/* Under b->mu: brings tokens up to now at rate (a new rate starts from a
 * full bucket). */
static void refill(struct bw_bucket *b, uint64_t rate, int64_t now)
{
	int64_t burst = burst_of(rate);
	if (b->rate != rate) { /* a new cap */
		b->rate = rate;
		b->tokens = 2 * BW_QUANTUM;
	} else if (now > b->last_ns) {
		b->tokens += (int64_t)((double)(now - b->last_ns) * (double)rate / 1e9);
	}
	if (b->tokens > burst) /* also after a refund of an uncapped grant */
		b->tokens = burst;
	b->last_ns = now;
}

size_t bw_take(enum bw_dir d, size_t want, uint64_t *wait_us)
{
	*wait_us = 0;
	uint64_t mbit = atomic_load(&cap_mbit);
	if (mbit == 0 || want == 0)
		return want;
	uint64_t rate = mbit * 125000; /* bytes/s */
	struct bw_bucket *b = &buckets[d == BW_RX];
	int64_t need = want < BW_QUANTUM ? (int64_t)want : BW_QUANTUM;
	size_t got = 0;
	pthread_mutex_lock(&b->mu);
	refill(b, rate, now_ns());
	if (b->tokens >= need) {
		got = (uint64_t)b->tokens < want ? (size_t)b->tokens : want;
		b->tokens -= (int64_t)got;
	} else {
		double us = (double)(need - b->tokens) * 1e6 / (double)rate;
		*wait_us = us >= BW_MAX_WAIT_US ? BW_MAX_WAIT_US : (uint64_t)us + 1;
	}
	pthread_mutex_unlock(&b->mu);
	return got;
}

void bw_refund(enum bw_dir d, size_t n)
{
	if (n == 0)
		return;
	struct bw_bucket *b = &buckets[d == BW_RX];
	pthread_mutex_lock(&b->mu);
	b->tokens += (int64_t)n;
	pthread_mutex_unlock(&b->mu);
}
