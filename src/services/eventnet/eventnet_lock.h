/*
 * eventnet_lock.h - the EventNet service's mutexes with their waits
 * counted (mutrace-style, for `stats`): a lock that is free is taken by a
 * trylock; one that is held is timed until it is taken.  The counters
 * are relaxed atomics: stats reads them without taking the lock.  These
 * figures tell whether ingest from many clients is limited by the graph
 * lock (mu) or by the journal writes (wmu).
 */
#ifndef VIRGO_EVENTNET_LOCK_H
#define VIRGO_EVENTNET_LOCK_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <time.h>

struct evn_mutex {
	pthread_mutex_t m;
	uint64_t taken; /* acquisitions */
	uint64_t waits; /* of which found it held */
	uint64_t wait_ns; /* time those waited */
};

/* Adaptive: held for a short round; a waiter spins a little first. */
static inline void evn_mutex_init(struct evn_mutex *x)
{
	pthread_mutexattr_t ma;
	pthread_mutexattr_init(&ma);
	pthread_mutexattr_settype(&ma, PTHREAD_MUTEX_ADAPTIVE_NP);
	pthread_mutex_init(&x->m, &ma);
	pthread_mutexattr_destroy(&ma);
	x->taken = x->waits = x->wait_ns = 0;
}

/* Nanoseconds since *a (CLOCK_MONOTONIC). */
static inline int64_t evn_since_ns(const struct timespec *a)
{
	struct timespec b;
	clock_gettime(CLOCK_MONOTONIC, &b);
	return (int64_t)(b.tv_sec - a->tv_sec) * 1000000000 + (b.tv_nsec - a->tv_nsec);
}

/* A wait for x that began at *a, counted. */
static inline void evn_count_wait(struct evn_mutex *x, const struct timespec *a)
{
	__atomic_fetch_add(&x->waits, 1, __ATOMIC_RELAXED);
	__atomic_fetch_add(&x->wait_ns, (uint64_t)evn_since_ns(a), __ATOMIC_RELAXED);
}

static inline void evn_lock(struct evn_mutex *x)
{
	__atomic_fetch_add(&x->taken, 1, __ATOMIC_RELAXED);
	if (pthread_mutex_trylock(&x->m) == 0)
		return;
	struct timespec a;
	clock_gettime(CLOCK_MONOTONIC, &a);
	pthread_mutex_lock(&x->m);
	evn_count_wait(x, &a);
}

static inline void evn_cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#elif defined(__aarch64__)
	__asm__ __volatile__("yield");
#endif
}

/* Like evn_lock, but a waiter first spins up to spin_ns (trylock) before
 * it sleeps: for a lock held a few microseconds by a worker that is
 * running, where a futex sleep costs far more (on a host with more
 * runnable threads than CPUs the sleeper waits its turn to run again:
 * measured ~100 us a wait with 16 clients on 2 cores). */
static inline void evn_lock_spin(struct evn_mutex *x, int64_t spin_ns)
{
	__atomic_fetch_add(&x->taken, 1, __ATOMIC_RELAXED);
	if (pthread_mutex_trylock(&x->m) == 0)
		return;
	struct timespec a;
	clock_gettime(CLOCK_MONOTONIC, &a);
	bool got = false;
	for (unsigned k = 1; !got; k++) {
		evn_cpu_relax();
		got = pthread_mutex_trylock(&x->m) == 0;
		if (!got && k % 64 == 0 && evn_since_ns(&a) > spin_ns)
			break;
	}
	if (!got)
		pthread_mutex_lock(&x->m);
	evn_count_wait(x, &a);
}

/* Takes x when it is free: true, else false at once (no wait counted:
 * the caller does something else). */
static inline bool evn_trylock(struct evn_mutex *x)
{
	if (pthread_mutex_trylock(&x->m) != 0)
		return false;
	__atomic_fetch_add(&x->taken, 1, __ATOMIC_RELAXED);
	return true;
}

/* "<taken> <waits> <ms waited>" for stats. */
static inline void evn_mutex_counts(struct evn_mutex *x, uint64_t out[3])
{
	out[0] = __atomic_load_n(&x->taken, __ATOMIC_RELAXED);
	out[1] = __atomic_load_n(&x->waits, __ATOMIC_RELAXED);
	out[2] = __atomic_load_n(&x->wait_ns, __ATOMIC_RELAXED) / 1000000;
}

static inline void evn_unlock(struct evn_mutex *x)
{
	pthread_mutex_unlock(&x->m);
}

#endif
