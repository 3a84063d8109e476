/*
 * abstime.h - absolute deadlines for the pthread timed waits and joins of
 * the daemon and the library: "ms from now" on a given clock, as
 * pthread_cond_timedwait (the condition's clock) and pthread_timedjoin_np
 * (CLOCK_REALTIME) want it.  One place for the nanosecond carry.
 */
#ifndef VIRGO_ABSTIME_H
#define VIRGO_ABSTIME_H

#include <time.h>

/* *out = now on clk + ms (ms >= 0). */
void abstime_after_ms(clockid_t clk, int ms, struct timespec *out);

#endif
