/*
 * vconn_async.c - deferred replies: hand a finished job from any thread
 * back to the event loop that owns its connection (service.h, tickets).
 *
 * Each connection that ever takes a ticket gets one refcounted vconn_async:
 * a mutex, a pointer back to the connection (NULL once it is closed), a
 * list of posted completions and a libevent event on the connection's loop.
 * Posting appends under the mutex and event_active()s the event (thread
 * safe, libevent runs with pthread locking); the loop pops and runs them
 * one at a time, re-checking the connection after each because a
 * completion may close it.  Closing the connection (vconn_async_detach,
 * from conn_free on the loop thread) clears the pointer under the mutex,
 * so from then on posts run their function with c == NULL and nobody
 * touches the event again; completions already queued are run with NULL
 * too.  The struct is freed when the connection and every ticket are done.
 * A ticket whose service promised to add no output meanwhile
 * (vconn_ticket_allow_send) may send its reply from the working thread:
 * under the mutex, so the socket cannot be closed under the send (the
 * connection detaches, under the same mutex, before its socket closes),
 * and never blocking, so what the socket does not take goes the usual
 * way through the loop.
 */
#include <errno.h>
#include <event2/event.h>
#include <pthread.h>
#include <stdlib.h>
#include <sys/socket.h>

#include "bw.h"

#include "log.h"
#include "service.h"

struct vconn_ticket {
	struct vconn_ticket *next;
	struct vconn_async *as;
	vconn_done_fn fn;
	void *arg;
	int fd; /* vconn_ticket_allow_send: the socket, else -1 */
	bool metered; /* its bytes go through the bandwidth cap */
};

struct vconn_async {
	pthread_mutex_t mu;
	struct vconn *c; /* NULL once the connection is gone */
	struct event *ev;
	struct vconn_ticket *head, *tail; /* posted, not yet run */
	int refs; /* the connection + every live ticket */
};

static void as_release(struct vconn_async *as)
{
	pthread_mutex_lock(&as->mu);
	int left = --as->refs;
	pthread_mutex_unlock(&as->mu);
	if (left == 0) {
		pthread_mutex_destroy(&as->mu);
		free(as);
	}
}

static void as_run_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	struct vconn_async *as = arg;
	for (;;) {
		pthread_mutex_lock(&as->mu);
		struct vconn_ticket *t = as->c ? as->head : NULL;
		if (t) {
			as->head = t->next;
			if (!as->head)
				as->tail = NULL;
		}
		struct vconn *c = as->c;
		pthread_mutex_unlock(&as->mu);
		if (!t)
			return;
		/* as stays alive: t holds a reference until as_release */
		t->fn(c, t->arg);
		free(t);
		bool gone = false;
		pthread_mutex_lock(&as->mu);
		gone = as->c == NULL;
		pthread_mutex_unlock(&as->mu);
		as_release(as);
		if (gone)
			return; /* detach ran the rest and freed the event */
	}
}

struct vconn_ticket *vconn_ticket_new(struct vconn *c)
{
	struct vconn_async **slot = vconn_async_slot(c);
	if (!*slot) {
		struct vconn_async *as = calloc(1, sizeof *as);
		if (!as)
			return NULL;
		as->ev = event_new(vconn_base(c), -1, 0, as_run_cb, as);
		if (!as->ev) {
			free(as);
			return NULL;
		}
		pthread_mutex_init(&as->mu, NULL);
		as->c = c;
		as->refs = 1;
		*slot = as;
	}
	struct vconn_ticket *t = calloc(1, sizeof *t);
	if (!t)
		return NULL;
	t->as = *slot;
	t->fd = -1;
	pthread_mutex_lock(&t->as->mu);
	t->as->refs++;
	pthread_mutex_unlock(&t->as->mu);
	return t;
}

void vconn_ticket_post(struct vconn_ticket *t, vconn_done_fn fn, void *arg)
{
	struct vconn_async *as = t->as;
	t->fn = fn;
	t->arg = arg;
	pthread_mutex_lock(&as->mu);
	if (as->c) {
		t->next = NULL;
		if (as->tail)
			as->tail->next = t;
		else
			as->head = t;
		as->tail = t;
		event_active(as->ev, EV_READ, 0);
		pthread_mutex_unlock(&as->mu);
		return;
	}
	pthread_mutex_unlock(&as->mu);
	fn(NULL, arg);
	free(t);
	as_release(as);
}

void vconn_ticket_allow_send(struct vconn_ticket *t, struct vconn *c)
{
	t->fd = vconn_ticket_fd(c, &t->metered);
}

size_t vconn_ticket_send(struct vconn_ticket *t, const void *data, size_t len)
{
	struct vconn_async *as = t->as;
	if (t->fd < 0 || len == 0)
		return 0;
	size_t sent = 0;
	pthread_mutex_lock(&as->mu);
	if (as->c) {
		size_t allowed = len;
		uint64_t wait_us;
		if (t->metered)
			allowed = bw_take(BW_TX, len, &wait_us);
		ssize_t n = 0;
		if (allowed > 0) {
			do
				n = send(t->fd, data, allowed, MSG_DONTWAIT | MSG_NOSIGNAL);
			while (n < 0 && errno == EINTR);
		}
		sent = n > 0 ? (size_t)n : 0;
		if (t->metered && allowed > sent)
			bw_refund(BW_TX, allowed - sent);
	}
	pthread_mutex_unlock(&as->mu);
	return sent;
}

void vconn_ticket_drop(struct vconn_ticket *t)
{
	struct vconn_async *as = t->as;
	free(t);
	as_release(as);
}

void vconn_async_detach(struct vconn *c)
{
	struct vconn_async **slot = vconn_async_slot(c);
	struct vconn_async *as = *slot;
	*slot = NULL;
	pthread_mutex_lock(&as->mu);
	as->c = NULL;
	struct vconn_ticket *t = as->head;
	as->head = as->tail = NULL;
	pthread_mutex_unlock(&as->mu);
	event_free(as->ev); /* no post touches it once c is NULL */
	as->ev = NULL;
	while (t) {
		struct vconn_ticket *next = t->next;
		t->fn(NULL, t->arg);
		free(t);
		as_release(as);
		t = next;
	}
	as_release(as);
}
