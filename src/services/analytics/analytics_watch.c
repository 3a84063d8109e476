/*
 * analytics_watch.c - the analytics service's watchers (analytics_int.h).
 *
 * Every change is pushed to every watcher's feed under the service's
 * mutex, so each watcher sees changes in revision order, each once.  A
 * feed that is full (a slow watcher) marks its watcher stalled: it gets
 * nothing new, and a timer on its connection's loop (10 ms, backing off to
 * 1 s while the client reads nothing) pushes what it missed from the
 * rings as the feed drains, or tells it the changes were dropped (ERANGE)
 * so it can re-read.  Watchers on the publisher's loop with nothing queued
 * get a change as one send each in an io_uring batch (analytics_uring.h,
 * where the kernel allows), the others through their feeds.  Per watcher
 * at most AN_FEED_BYTES wait in the feed and AN_FEED_BYTES in the
 * connection's output: the memory bound the README documents.
 */
#include <errno.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../common/evclock.h"
#include "../../daemon/service.h"
#include "analytics_int.h"
#include "analytics_uring.h"

static char *put(char *p, const char *s, size_t n)
{
	memcpy(p, s, n);
	return p + n;
}

/* "CHANGE <rev> <key> <val>" CRLF, or "<key>=<val>" LF for plain; buf
 * holds AN_LINE_OUT (key and value are within their limits).  Built by
 * hand: snprintf was a sixth of the instructions a change costs. */
static int format_change(const struct an_watcher *w, char *buf, size_t cap, uint64_t rev,
			 const char *key, const char *val, size_t vlen)
{
	(void)cap;
	size_t klen = strlen(key);
	char *p = buf;
	if (w->plain) {
		p = put(p, key, klen);
		*p++ = '=';
		p = put(p, val, vlen);
		*p++ = '\n';
		return (int)(p - buf);
	}
	p = put(p, "CHANGE ", 7);
	p += evc_u64(p, rev);
	*p++ = ' ';
	p = put(p, key, klen);
	*p++ = ' ';
	p = put(p, val, vlen);
	p = put(p, "\r\n", 2);
	return (int)(p - buf);
}

/* this thread's publisher request under way (an_run_begin), or NULL */
static _Thread_local struct an_run *cur_run;

/* What a push of change rev to w answered (rc as vconn_feed_push's):
 * false when its feed is full (w is stalled). */
static bool push_result(struct an_watcher *w, uint64_t rev, int rc)
{
	if (rc == -ENOBUFS || rc == -ENOMEM) {
		if (!w->stalled && w->timer) {
			struct timeval tv = {0, 10 * 1000};
			w->backoff_ms = 10;
			event_add(w->timer, &tv); /* thread-safe (evthread) */
		}
		w->stalled = true;
		w->next_rev = rev;
		return false;
	}
	if (rc == -EPIPE)
		w->gone = true; /* its conn_close is about to free it */
	w->next_rev = rev + 1;
	return true;
}

/* Pushes one change to w; false when its feed is full (w is stalled).  A
 * watcher on the publisher's loop is written to at once. */
static bool push_line(struct an_watcher *w, uint64_t rev, const char *line, size_t n)
{
	struct an_run *run = cur_run;
	int rc = run && w->base == run->base ? vconn_feed_write_here(w->feed, line, n)
					     : vconn_feed_push(w->feed, line, n);
	return push_result(w, rev, rc);
}

/* an_ring_flush's answer for one watcher's send of change *arg: what
 * was not sent goes the buffered way (vconn_feed_sent). */
static void ring_sent(void *tag, const void *data, size_t len, int res, void *arg)
{
	struct an_watcher *w = tag;
	push_result(w, *(const uint64_t *)arg, vconn_feed_sent(w->feed, data, len, res));
}

static bool push_change(struct an_watcher *w, uint64_t rev, const char *key, const char *val,
			size_t vlen)
{
	char line[AN_LINE_OUT];
	int n = format_change(w, line, sizeof line, rev, key, val, vlen);
	return push_line(w, rev, line, (size_t)n);
}

void an_run_begin(struct an_run *run, struct event_base *base)
{
	run->base = base;
	cur_run = run;
}

void an_run_end(struct an_run *run)
{
	(void)run;
	cur_run = NULL;
}

void an_notify(struct analytics *an, uint64_t rev, const char *key, const char *val,
		   size_t vlen)
{
	/* formatted once per kind, not once per watcher (1,000 watchers) */
	char native[AN_LINE_OUT], plain[AN_LINE_OUT];
	int nn = -1, np = -1;
	/* the watchers on the publisher's loop with nothing queued: their
	 * sends go to the kernel in io_uring batches (analytics_uring.h) */
	struct an_run *run = cur_run;
	struct an_ring *ring = run ? an_ring_get() : NULL;
	for (struct an_watcher *w = an->watchers; w; w = w->next) {
		if (w->stalled || w->gone)
			continue;
		if (w->plain && np < 0)
			np = format_change(w, plain, sizeof plain, rev, key, val, vlen);
		else if (!w->plain && nn < 0)
			nn = format_change(w, native, sizeof native, rev, key, val, vlen);
		const char *line = w->plain ? plain : native;
		size_t n = (size_t)(w->plain ? np : nn);
		int fd = ring && w->base == run->base ? vconn_feed_direct_fd(w->feed) : -1;
		if (fd < 0) {
			push_line(w, rev, line, n);
			continue;
		}
		if (an_ring_add(ring, fd, line, n, w))
			continue;
		an_ring_flush(ring, ring_sent, &rev);
		ring = an_ring_get(); /* NULL: the flush failed and freed it */
		if (!ring || !an_ring_add(ring, fd, line, n, w))
			push_line(w, rev, line, n);
	}
	if (ring)
		an_ring_flush(ring, ring_sent, &rev);
}

static int catchup_cb(void *arg, const struct an_entry *e)
{
	struct an_watcher *w = arg;
	return push_change(w, e->rev, e->key, e->val, e->vlen) ? 0 : 1;
}

/* mu held: pushes what w missed since w->next_rev; it stays stalled while
 * its feed is full.  Changes already dropped from the rings: tell it. */
static void catch_up(struct analytics *an, struct an_watcher *w)
{
	/* its client has not read what is queued: do not walk the rings
	 * (1,000 silent watchers must cost next to nothing) */
	if (vconn_feed_pending(w->feed) > AN_FEED_BYTES / 2)
		return;
	w->stalled = false;
	struct event *timer = w->timer;
	w->timer = NULL; /* push_change must not re-arm it from here */
	int rc = an_store_since(an->st, w->next_rev - 1, catchup_cb, w);
	if (rc == -ERANGE) {
		char line[160];
		int n = snprintf(line, sizeof line,
				 "ERR ERANGE changes after revision %" PRIu64
				 " were dropped; re-read and watch from %" PRIu64 "\r\n",
				 w->next_rev - 1, an_store_rev(an->st));
		/* the feed may still be full: then the next tick tries again */
		w->gone = vconn_feed_push(w->feed, line, (size_t)n) == 0;
		w->stalled = !w->gone;
	} else if (rc == -ENOMEM) {
		w->stalled = true;
	}
	w->timer = timer;
}

/* The watcher's loop: catch up while stalled, backing off when no
 * progress is made (a client that reads nothing costs little). */
static void watcher_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	struct an_watcher *w = arg;
	pthread_mutex_lock(&w->an->mu);
	if (w->stalled && !w->gone) {
		uint64_t before = w->next_rev;
		catch_up(w->an, w);
		if (w->stalled) {
			w->backoff_ms = w->next_rev != before ? 10 : w->backoff_ms * 2;
			if (w->backoff_ms > 1000)
				w->backoff_ms = 1000;
			struct timeval tv = {w->backoff_ms / 1000, (w->backoff_ms % 1000) * 1000};
			event_add(w->timer, &tv);
		}
	}
	pthread_mutex_unlock(&w->an->mu);
}

static int plain_cb(void *arg, const struct an_entry *e)
{
	evbuffer_add_printf(arg, "%s=%s\n", e->key, e->val);
	return 0;
}

int an_watch_start(struct analytics *an, struct vconn *c, struct an_conn *cc,
		   const struct an_req *r, bool plain, char *why, size_t cap)
{
	struct evbuffer *out = vconn_out(c);
	struct an_watcher *w = calloc(1, sizeof *w);
	struct vconn_feed *f = w ? vconn_feed_new(c, AN_FEED_BYTES) : NULL;
	if (!f) {
		free(w);
		snprintf(why, cap, "out of memory");
		return -ENOMEM;
	}
	vconn_feed_limit_out(f, AN_FEED_BYTES);
	w->feed = f;
	w->base = vconn_base(c);
	w->plain = plain;
	w->an = an;
	w->timer = event_new(vconn_base(c), -1, 0, watcher_timer_cb, w);
	if (!w->timer) {
		vconn_feed_release(f);
		free(w);
		snprintf(why, cap, "out of memory");
		return -ENOMEM;
	}
	pthread_mutex_lock(&an->mu);
	if (an->nwatchers >= an->max_watchers) {
		pthread_mutex_unlock(&an->mu);
		event_free(w->timer);
		vconn_feed_release(f);
		free(w);
		snprintf(why, cap, "too many watchers (analytics_max_watchers)");
		return -EBUSY;
	}
	uint64_t now = an_store_rev(an->st);
	if (r->has_rev && r->rev < an_store_resumable(an->st)) {
		uint64_t from = an_store_resumable(an->st);
		pthread_mutex_unlock(&an->mu);
		event_free(w->timer);
		vconn_feed_release(f);
		free(w);
		if (r->rev < an->rev_base) /* analytics_rev.h */
			snprintf(why, cap,
				 "this node restarted after revision %" PRIu64
				 " and its history was reset: re-read and watch from %" PRIu64,
				 r->rev, now);
		else
			snprintf(why, cap,
				 "changes after revision %" PRIu64 " were dropped; watch from %" PRIu64
				 " or later",
				 r->rev, from);
		return -ERANGE;
	}
	/* ahead: a node without analytics_dir restarted (revisions start over) */
	if (r->has_rev && r->rev > now) {
		pthread_mutex_unlock(&an->mu);
		event_free(w->timer);
		vconn_feed_release(f);
		free(w);
		snprintf(why, cap,
			 "revision %" PRIu64 " is ahead of this node's %" PRIu64
			 " (it restarted): re-read and watch from %" PRIu64,
			 r->rev, now, now);
		return -ERANGE;
	}
	if (!plain)
		evbuffer_add_printf(out, "WATCHING %" PRIu64 "\r\n", now);
	w->next = an->watchers;
	an->watchers = w;
	an->nwatchers++;
	cc->w = w;
	if (plain) { /* the current values first, then every change */
		an_store_list(an->st, NULL, 0, plain_cb, out);
		w->next_rev = now + 1;
	} else if (r->has_rev && r->rev < now) {
		w->next_rev = r->rev + 1;
		catch_up(an, w);
	} else {
		w->next_rev = now + 1;
	}
	pthread_mutex_unlock(&an->mu);
	return 0;
}

void an_watch_end(struct analytics *an, struct an_conn *cc)
{
	if (!cc->w)
		return;
	pthread_mutex_lock(&an->mu);
	for (struct an_watcher **p = &an->watchers; *p; p = &(*p)->next)
		if (*p == cc->w) {
			*p = cc->w->next;
			an->nwatchers--;
			break;
		}
	pthread_mutex_unlock(&an->mu);
	event_free(cc->w->timer); /* its loop is this thread: not running now */
	vconn_feed_release(cc->w->feed);
	free(cc->w);
	cc->w = NULL;
}

void an_watchers_tick(struct analytics *an)
{
	pthread_mutex_lock(&an->mu);
	for (struct an_watcher *w = an->watchers; w; w = w->next)
		if (w->stalled && !w->gone)
			catch_up(an, w);
	pthread_mutex_unlock(&an->mu);
}

void an_watchers_free(struct analytics *an)
{
	while (an->watchers) {
		struct an_watcher *w = an->watchers;
		an->watchers = w->next;
		if (w->timer)
			event_free(w->timer);
		vconn_feed_release(w->feed);
		free(w);
	}
}
