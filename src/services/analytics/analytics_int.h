/*
 * analytics_int.h - what the analytics service's files share (not an
 * interface for other modules): the service's state, a watch
 * connection's state, and the functions each file offers the others.
 * analytics.c: requests, applying variables, life cycle;
 * analytics_watch.c: watchers, their feeds and catch-up;
 * analytics_uring.c: their sends in io_uring batches;
 * analytics_conf.c: the variables file.
 */
#ifndef VIRGO_ANALYTICS_INT_H
#define VIRGO_ANALYTICS_INT_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>

#include "../../common/frame.h"
#include "analytics_proto.h"
#include "analytics_rev.h"
#include "analytics_settings.h"
#include "analytics_store.h"

struct vconn;
struct vconn_feed;
struct event;
struct an_stream;

#define AN_FEED_BYTES (16u << 10) /* per watcher, in its feed and in its output */
#define AN_LINE_OUT (AN_MAX_KEY + AN_MAX_VALUE + 64)

struct an_watcher {
	struct an_watcher *next;
	struct analytics *an;
	struct vconn_feed *feed;
	struct event_base *base; /* its connection's loop */
	struct event *timer; /* on the connection's loop: catch-up while stalled */
	int backoff_ms; /* the timer's period: 10 ms, doubling to 1 s without progress */
	uint64_t next_rev; /* the first revision not pushed yet */
	bool stalled; /* the feed was full: its timer pushes the rest from the rings */
	bool gone; /* told ERANGE (or closed): nothing more is pushed */
	bool plain; /* KERNEL_ANALYTICS_STREAMING_START: bare key=value lines */
};

struct analytics {
	pthread_mutex_t mu; /* store, watchers, conf, publish_from, publishers */
	struct an_store *st;
	struct an_rev rev; /* revisions' reservation file (analytics_dir) */
	uint64_t rev_base; /* revisions of this run are above it (0: a first start) */
	struct an_watcher *watchers;
	int nwatchers, max_watchers;
	char conf[256];
	struct stat conf_st;
	bool conf_seen; /* conf_st is the file last read */
	char publish_from[1024];
	char publishers[AN_PUBLISHERS_MAX]; /* analytics_publishers (idpolicy.h map) */
	struct an_stream *stream;
	unsigned node_id;
};

struct an_conn {
	struct frame_state fs;
	struct an_watcher *w; /* this connection watches (owned, under mu) */
};

/* ---- analytics.c ---- */
/* Applies every pair of a chunk (file, stream, publisher); logs what was
 * refused, at most a few lines per chunk.  Returns the pieces refused. */
int an_apply_chunk(struct analytics *an, const char *buf, size_t len, const char *from);

/* ---- analytics_watch.c (mu held unless said) ---- */
/* A change with revision rev was stored: push it to every watcher. */
void an_notify(struct analytics *an, uint64_t rev, const char *key, const char *val, size_t vlen);

/* A publisher's changes reach the watchers on its own loop first: between
 * an_run_begin and an_run_end (loop thread, mu not held, around the
 * applies of one request) an_notify appends a change to the output of
 * every watcher on that loop whose feed is empty and writes it there and
 * then (vconn_feed_write_here: no event, no hand-over, the line's buffer
 * freed before the next watcher's is taken), before the reply to the
 * publisher is written: one loop iteration and one write per watcher, as
 * Redis does.  With io_uring (analytics_uring.h) those writes of a change
 * are sends in batches of AN_URING_DEPTH, one system call each, all
 * answered before an_notify returns; what a send did not take goes the
 * buffered way (vconn_feed_sent).  Watchers on other loops
 * (analytics_threads > 1) and backed-up ones are woken by their feeds'
 * events as usual. */
struct an_run {
	struct event_base *base; /* the publisher's loop */
};
void an_run_begin(struct an_run *run, struct event_base *base);
void an_run_end(struct an_run *run);
/* Loop thread of c, mu not held: c becomes a watch (plain: the original's
 * name=value stream) per r.  0, or a negative errno with why filled
 * (nothing was set up). */
int an_watch_start(struct analytics *an, struct vconn *c, struct an_conn *cc,
		   const struct an_req *r, bool plain, char *why, size_t cap);
/* Loop thread of c, mu not held: its watch ends (conn_close). */
void an_watch_end(struct analytics *an, struct an_conn *cc);
/* mu not held: stalled watchers catch up (the tick's fallback). */
void an_watchers_tick(struct analytics *an);
/* At fini: frees what watchers are left. */
void an_watchers_free(struct analytics *an);

/* ---- analytics_conf.c ---- */
/* Main thread, mu not held: reads the variables file if it changed since
 * last read (or force) and applies it. */
void an_conf_check(struct analytics *an, bool force);

#endif
