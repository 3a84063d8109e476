/*
 * analytics_uring.h - the watcher fan-out's batched sends: the lines a
 * change sends to the watchers on the publisher's loop are handed to the
 * kernel as io_uring submissions (AN_URING_DEPTH sends each) instead of
 * one send(2) per watcher.  One ring per loop thread, made on its first
 * change; where the kernel refuses io_uring (seccomp, containers,
 * kernel.io_uring_disabled) or analytics_uring = no, there is no ring and
 * the caller sends each line itself (vconn_feed_write_here).
 */
#ifndef VIRGO_ANALYTICS_URING_H
#define VIRGO_ANALYTICS_URING_H

#include <stdbool.h>
#include <stddef.h>

#define AN_URING_DEPTH 256 /* sends per submission */

struct an_ring;

/* Main thread, at init: whether a ring can be made here (a probe ring is
 * made and freed); false with why filled when not.  Rings are made only
 * after a true answer (an_uring_enable). */
bool an_uring_probe(char *why, size_t cap);
/* Whether loop threads use rings (false: every send is plain). */
void an_uring_enable(bool on);
bool an_uring_enabled(void);

/* The calling thread's ring (made now if need be), or NULL: disabled, or
 * it could not be made (logged once per thread).  Owned by the thread;
 * freed when it exits. */
struct an_ring *an_ring_get(void);

/* Called with each send's result (bytes sent or a negative errno) and
 * the tag given to an_ring_add, in the order they were added. */
typedef void (*an_ring_done_fn)(void *tag, const void *data, size_t len, int res, void *arg);

/* Queues a send of len bytes at data (which must stay valid until the
 * next an_ring_flush) to fd.  false when the batch is full: flush first. */
bool an_ring_add(struct an_ring *r, int fd, const void *data, size_t len, void *tag);
/* Submits what was queued, waits for every result (MSG_DONTWAIT: none
 * waits for the socket) and calls done for each. */
void an_ring_flush(struct an_ring *r, an_ring_done_fn done, void *arg);

#endif
