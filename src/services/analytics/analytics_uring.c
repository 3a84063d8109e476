/*
 * analytics_uring.c - the watcher fan-out's io_uring batches
 * (analytics_uring.h).  A change reaching 1,000 watchers cost 1,000
 * send(2) calls on the publisher's loop; here they are queued as send
 * SQEs and submitted AN_URING_DEPTH at a time, each with MSG_DONTWAIT so
 * the kernel issues it inline and completes it at once (a full socket
 * answers -EAGAIN instead of arming a poll): after one io_uring_enter
 * every result is in the completion queue, in the caller's hands before
 * it returns.  Rings are per thread (a loop thread is the only one to
 * submit to its ring: SINGLE_ISSUER, DEFER_TASKRUN where the kernel has
 * them) and freed by a thread-key destructor when the thread exits.
 */
#include "analytics_uring.h"

#include <errno.h>
#include <liburing.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "../../daemon/log.h"

struct an_ring {
	struct io_uring ring;
	unsigned n; /* sends queued */
	struct {
		int fd;
		void *tag;
		const void *data;
		size_t len;
		int res;
	} q[AN_URING_DEPTH];
};

static atomic_bool enabled;
static pthread_key_t ring_key;
static pthread_once_t key_once = PTHREAD_ONCE_INIT;
static _Thread_local struct an_ring *my_ring;
static _Thread_local bool my_failed; /* this thread could not make one */

static void ring_free(void *p)
{
	struct an_ring *r = p;
	io_uring_queue_exit(&r->ring);
	free(r);
}

static void key_make(void) { pthread_key_create(&ring_key, ring_free); }

/* The kernel's best set first: one submitter, completions run at its
 * next enter (no task-work interrupts from other sends); then the
 * older kernels' sets. */
static int ring_init(struct io_uring *ring)
{
	static const unsigned flags[] = {
		IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN,
		IORING_SETUP_COOP_TASKRUN,
		0,
	};
	int rc = -ENOSYS;
	for (size_t i = 0; i < sizeof flags / sizeof flags[0]; i++) {
		rc = io_uring_queue_init(AN_URING_DEPTH, ring, flags[i]);
		if (rc != -EINVAL) /* EINVAL: this kernel lacks a flag */
			break;
	}
	return rc;
}

bool an_uring_probe(char *why, size_t cap)
{
	struct io_uring ring;
	int rc = ring_init(&ring);
	if (rc < 0) {
		snprintf(why, cap, "io_uring_queue_init: %s", strerror(-rc));
		return false;
	}
	io_uring_queue_exit(&ring);
	return true;
}

void an_uring_enable(bool on) { atomic_store(&enabled, on); }

bool an_uring_enabled(void) { return atomic_load(&enabled); }

struct an_ring *an_ring_get(void)
{
	if (my_ring || my_failed || !atomic_load(&enabled))
		return my_ring;
	pthread_once(&key_once, key_make);
	struct an_ring *r = calloc(1, sizeof *r);
	int rc = r ? ring_init(&r->ring) : -ENOMEM;
	if (rc < 0) {
		free(r);
		my_failed = true;
		log_warn("analytics: this loop thread sends to watchers one by one "
			 "(io_uring_queue_init: %s)", strerror(-rc));
		return NULL;
	}
	pthread_setspecific(ring_key, r);
	my_ring = r;
	return r;
}

bool an_ring_add(struct an_ring *r, int fd, const void *data, size_t len, void *tag)
{
	if (r->n == AN_URING_DEPTH)
		return false;
	r->q[r->n].fd = fd;
	r->q[r->n].tag = tag;
	r->q[r->n].data = data;
	r->q[r->n].len = len;
	r->q[r->n].res = -ECANCELED;
	r->n++;
	return true;
}

void an_ring_flush(struct an_ring *r, an_ring_done_fn done, void *arg)
{
	unsigned want = r->n, got = 0;
	if (want == 0)
		return;
	r->n = 0;
	if (want == 1) { /* one watcher: send(2) costs less than an enter */
		ssize_t n = send(r->q[0].fd, r->q[0].data, r->q[0].len, MSG_DONTWAIT | MSG_NOSIGNAL);
		done(r->q[0].tag, r->q[0].data, r->q[0].len, n >= 0 ? (int)n : -errno, arg);
		return;
	}
	for (unsigned i = 0; i < want; i++) { /* the SQ holds AN_URING_DEPTH */
		struct io_uring_sqe *sqe = io_uring_get_sqe(&r->ring);
		io_uring_prep_send(sqe, r->q[i].fd, r->q[i].data, r->q[i].len,
				   MSG_DONTWAIT | MSG_NOSIGNAL);
		io_uring_sqe_set_data64(sqe, i);
	}
	bool broken = false;
	while (got < want) {
		int rc = io_uring_submit_and_wait(&r->ring, want - got);
		if (rc < 0 && rc != -EINTR) {
			log_warn("analytics: io_uring_submit_and_wait: %s; this loop thread "
				 "sends to watchers one by one from now on", strerror(-rc));
			broken = true;
			break;
		}
		struct io_uring_cqe *cqe;
		unsigned head, seen = 0;
		io_uring_for_each_cqe(&r->ring, head, cqe)
		{
			uint64_t i = io_uring_cqe_get_data64(cqe);
			if (i < want)
				r->q[i].res = cqe->res;
			seen++;
		}
		io_uring_cq_advance(&r->ring, seen);
		got += seen;
	}
	if (broken) { /* freeing the ring cancels what it still holds */
		pthread_setspecific(ring_key, NULL);
		io_uring_queue_exit(&r->ring);
		my_ring = NULL;
		my_failed = true;
	}
	/* results the kernel never gave (a failed enter): -ECANCELED, so
	 * the caller sends those lines the plain way (vconn_feed_sent) */
	for (unsigned i = 0; i < want; i++)
		done(r->q[i].tag, r->q[i].data, r->q[i].len, r->q[i].res, arg);
	if (broken)
		free(r);
}
