/*
 * vconn_feed.c - feeds: other threads push reply bytes to a connection
 * any number of times (service.h), bounded per feed.
 *
 * A feed is a mutex, a pending evbuffer, a pointer back to its connection
 * (NULL once closed) and an event on the connection's loop.  A push
 * appends under the mutex (refused past max_bytes) and activates the
 * event; the loop moves what the connection's output budget allows into
 * vconn_out and writes it (vconn_flush).  What the budget did not take
 * waits for vconn_feeds_drained (server.c, when the output empties).  A
 * connection keeps a list of its feeds (vconn_feed_slot) and detaches
 * them at close, so a late push sees NULL and fails with -EPIPE.  Two
 * references (the connection, the producer) decide when it is freed.
 * A producer running on the connection's own loop (vconn_feed_write_here)
 * appends straight to vconn_out and writes it while nothing waits in the
 * feed and the output is under out_cap: no event, no hand-over, the same
 * bound.  One that batches many connections' writes into one system call
 * (vconn_feed_direct_fd, vconn_feed_sent) sends to the socket itself
 * while the feed and the output are empty, and gives back what the
 * kernel did not take, which then goes out the buffered way.
 */
#include <errno.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>

#include "service.h"

struct vconn_feed {
	struct vconn_feed *next; /* the connection's list (loop thread) */
	pthread_mutex_t mu;
	struct vconn *c; /* NULL once the connection is gone */
	struct event *ev;
	struct evbuffer *pending;
	size_t max_bytes;
	size_t out_cap; /* moves pending into vconn_out while it holds less */
	int refs;
	bool active; /* ev was activated and has not run yet */
};

static void feed_unref(struct vconn_feed *f)
{
	pthread_mutex_lock(&f->mu);
	int left = --f->refs;
	pthread_mutex_unlock(&f->mu);
	if (left == 0) {
		evbuffer_free(f->pending);
		pthread_mutex_destroy(&f->mu);
		free(f);
	}
}

/* Loop thread: as much pending as the output budget takes, then write. */
static void feed_run_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	struct vconn_feed *f = arg;
	struct vconn *c = f->c; /* only the loop thread clears it */
	if (!c)
		return;
	struct evbuffer *out = vconn_out(c);
	pthread_mutex_lock(&f->mu);
	f->active = false;
	size_t have = evbuffer_get_length(out);
	if (have < f->out_cap && evbuffer_get_length(f->pending) > 0)
		evbuffer_remove_buffer(f->pending, out, f->out_cap - have);
	pthread_mutex_unlock(&f->mu);
	vconn_flush(c);
}

struct vconn_feed *vconn_feed_new(struct vconn *c, size_t max_bytes)
{
	struct vconn_feed *f = calloc(1, sizeof *f);
	if (!f)
		return NULL;
	f->pending = evbuffer_new();
	f->ev = event_new(vconn_base(c), -1, 0, feed_run_cb, f);
	if (!f->pending || !f->ev) {
		if (f->pending)
			evbuffer_free(f->pending);
		if (f->ev)
			event_free(f->ev);
		free(f);
		return NULL;
	}
	pthread_mutex_init(&f->mu, NULL);
	f->c = c;
	f->max_bytes = max_bytes;
	f->out_cap = VCONN_OUT_BUDGET;
	f->refs = 2; /* the connection's and the caller's */
	struct vconn_feed **slot = vconn_feed_slot(c);
	f->next = *slot;
	*slot = f;
	return f;
}

int vconn_feed_push(struct vconn_feed *f, const void *data, size_t len)
{
	int rc = 0;
	pthread_mutex_lock(&f->mu);
	size_t have = evbuffer_get_length(f->pending);
	if (!f->c)
		rc = -EPIPE;
	else if (len > f->max_bytes || have > f->max_bytes - len)
		rc = -ENOBUFS;
	else if (evbuffer_add(f->pending, data, len) != 0)
		rc = -ENOMEM;
	else if (!f->active) {
		event_active(f->ev, EV_READ, 0);
		f->active = true;
	}
	pthread_mutex_unlock(&f->mu);
	return rc;
}

int vconn_feed_write_here(struct vconn_feed *f, const void *data, size_t len)
{
	pthread_mutex_lock(&f->mu);
	struct vconn *c = f->c; /* only this thread (c's loop) clears it */
	bool here = false;
	if (c && evbuffer_get_length(f->pending) == 0) {
		size_t have = evbuffer_get_length(vconn_out(c));
		here = have < f->out_cap && len <= f->out_cap - have;
	}
	pthread_mutex_unlock(&f->mu);
	if (!here)
		return vconn_feed_push(f, data, len);
	/* pushes from other threads now queue behind these bytes in pending */
	if (evbuffer_add(vconn_out(c), data, len) != 0)
		return -ENOMEM;
	vconn_write_held(c);
	return 0;
}

int vconn_feed_direct_fd(struct vconn_feed *f)
{
	pthread_mutex_lock(&f->mu);
	struct vconn *c = f->c; /* only this thread (c's loop) clears it */
	int fd = c && evbuffer_get_length(f->pending) == 0 ? vconn_direct_fd(c) : -1;
	pthread_mutex_unlock(&f->mu);
	return fd;
}

int vconn_feed_sent(struct vconn_feed *f, const void *data, size_t len, long res)
{
	struct vconn *c = f->c; /* live: the direct send was on its loop */
	if (!c)
		return -EPIPE;
	if (res >= 0 && (size_t)res >= len) {
		vconn_direct_done(c);
		return 0;
	}
	size_t done = res > 0 ? (size_t)res : 0;
	if (done > 0)
		vconn_direct_done(c);
	/* the rest is first in the output (it was empty); on an error the
	 * write fails again and closes the connection from its loop */
	if (evbuffer_add(vconn_out(c), (const char *)data + done, len - done) != 0)
		return -ENOMEM;
	vconn_write_held(c);
	return 0;
}

void vconn_feed_release(struct vconn_feed *f) { feed_unref(f); }

size_t vconn_feed_pending(struct vconn_feed *f)
{
	pthread_mutex_lock(&f->mu);
	size_t n = evbuffer_get_length(f->pending);
	pthread_mutex_unlock(&f->mu);
	return n;
}

void vconn_feed_limit_out(struct vconn_feed *f, size_t out_cap)
{
	pthread_mutex_lock(&f->mu);
	f->out_cap = out_cap < VCONN_OUT_BUDGET ? out_cap : VCONN_OUT_BUDGET;
	pthread_mutex_unlock(&f->mu);
}

void vconn_feeds_drained(struct vconn *c)
{
	for (struct vconn_feed *f = *vconn_feed_slot(c); f; f = f->next) {
		pthread_mutex_lock(&f->mu);
		if (evbuffer_get_length(f->pending) > 0 && !f->active) {
			event_active(f->ev, EV_READ, 0);
			f->active = true;
		}
		pthread_mutex_unlock(&f->mu);
	}
}

void vconn_feeds_detach(struct vconn *c)
{
	struct vconn_feed **slot = vconn_feed_slot(c);
	struct vconn_feed *f = *slot;
	*slot = NULL;
	while (f) {
		struct vconn_feed *next = f->next;
		pthread_mutex_lock(&f->mu);
		f->c = NULL;
		evbuffer_drain(f->pending, evbuffer_get_length(f->pending));
		pthread_mutex_unlock(&f->mu);
		/* no push activates it once c is NULL (checked under mu) */
		event_free(f->ev);
		f->ev = NULL;
		feed_unref(f);
		f = next;
	}
}
