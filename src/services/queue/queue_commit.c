/*
 * queue_commit.c - the writer thread: group commit (queue_int.h).
 *
 * Connections submit batches of pushes and go on waiting (tickets).  The
 * writer takes every batch queued so far, appends their records to their
 * topics' logs, and then, under `queue_fsync = always`, makes each
 * touched topic durable with one write that syncs its bytes
 * (ql_flush_sync) before it publishes the records to readers and posts
 * the acknowledgements: all producers whose pushes arrived while the
 * previous sync ran share the next one.  The sync itself is the batching
 * window, never a timed wait (a timed wait overslept by 5-8 ms on a
 * loaded host): an event loop queues the batches of all the connections
 * it found readable and wakes the writer once, when that pass of its loop
 * is over (qc_submit_loop), so the writer sees them as one group.  Under
 * `interval <ms>` it publishes and acknowledges after the write() and
 * fdatasync()s the dirty topics at most every <ms>.  A
 * failed write or fdatasync fails the topic (queue_log.c): no record is
 * ever acknowledged unless its bytes were written and, under always,
 * synced.  Once a second it also applies retention.
 */
#include <errno.h>
#include <event2/event.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../../common/abstime.h"
#include "../../daemon/log.h"
#include "queue_int.h"

void qc_batch_free(struct q_batch *b)
{
	if (!b)
		return;
	for (int i = 0; i < b->n; i++)
		free(b->recs[i].data);
	free(b->recs);
	free(b);
}

static void enqueue(struct queue *q, struct q_batch *b, bool wake)
{
	b->next = NULL;
	pthread_mutex_lock(&q->wmu);
	if (q->wtail)
		q->wtail->next = b;
	else
		q->whead = b;
	q->wtail = b;
	if (wake)
		pthread_cond_signal(&q->wcond);
	pthread_mutex_unlock(&q->wmu);
}

void qc_submit(struct queue *q, struct q_batch *b)
{
	enqueue(q, b, true);
}

/* One wake per pass of an event loop: set while its kick is scheduled
 * (each loop is one thread). */
static __thread bool kick_pending;

static void kick_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	struct queue *q = arg;
	kick_pending = false;
	pthread_mutex_lock(&q->wmu);
	pthread_cond_signal(&q->wcond);
	pthread_mutex_unlock(&q->wmu);
}

void qc_submit_loop(struct queue *q, struct q_batch *b, struct event_base *base)
{
	/* an immediate one-shot event runs after the events already active
	 * in this pass: the other readable connections' input first */
	if (!kick_pending) {
		if (event_base_once(base, -1, EV_TIMEOUT, kick_cb, q, NULL) != 0) {
			enqueue(q, b, true);
			return;
		}
		kick_pending = true;
	}
	enqueue(q, b, false);
}

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static uint64_t mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

#define QC_TOUCH_MAX 64

struct touched {
	struct ql_topic *t[QC_TOUCH_MAX];
	int n;
};

static bool touch(struct touched *tt, struct ql_topic *t)
{
	for (int i = 0; i < tt->n; i++)
		if (tt->t[i] == t)
			return true;
	if (tt->n == QC_TOUCH_MAX)
		return false;
	tt->t[tt->n++] = t;
	return true;
}

/* Writes, syncs (always) and publishes the touched topics; a topic that
 * fails has its records of this round marked failed. */
static void commit_round(struct queue *q, struct q_batch *list, struct touched *tt,
			 struct ql_topic **rec_topic)
{
	int bad[QC_TOUCH_MAX] = {0};
	for (int i = 0; i < tt->n; i++) {
		/* always: one write that syncs only these bytes */
		int rc = q->interval_ms == 0 ? ql_flush_sync(tt->t[i]) : ql_flush(tt->t[i]);
		if (rc)
			bad[i] = -rc;
		else
			ql_publish(tt->t[i]);
	}
	for (int i = 0; i < tt->n; i++)
		if (!bad[i] && ql_wants_zeros(tt->t[i]))
			qz_want(q, tt->t[i]); /* about once per chunk of zeros */
	if (q->interval_ms == 0 && tt->n)
		q->syncs++;
	int k = 0;
	for (struct q_batch *b = list; b; b = b->next) {
		for (int i = 0; i < b->n; i++, k++) {
			struct q_rec *r = &b->recs[i];
			if (r->err || !rec_topic[k])
				continue;
			for (int j = 0; j < tt->n; j++)
				if (tt->t[j] == rec_topic[k] && bad[j])
					r->err = bad[j];
		}
	}
}

static void process(struct queue *q, struct q_batch *list, struct touched *dirty)
{
	int nrec = 0;
	for (struct q_batch *b = list; b; b = b->next)
		nrec += b->n;
	struct ql_topic **rec_topic = calloc((size_t)nrec + 1, sizeof *rec_topic);
	struct touched tt = {.n = 0};
	int k = 0;
	if (q->state == Q_LAZY)
		qt_open_dir(q, true);
	bool disabled = q->state == Q_DISABLED;
	for (struct q_batch *b = list; b; b = b->next) {
		for (int i = 0; i < b->n; i++, k++) {
			struct q_rec *r = &b->recs[i];
			if (r->err)
				continue;
			if (disabled) {
				r->err = EIO;
				r->msg = q->why;
				continue;
			}
			if (!rec_topic) {
				r->err = ENOMEM;
				continue;
			}
			int err = 0;
			struct ql_topic *t = qt_get_or_create(q, r->topic, &err);
			if (!t) {
				r->err = -err;
				continue;
			}
			if (!touch(&tt, t)) {
				/* too many topics in one round: commit what we
				 * have, then go on */
				commit_round(q, list, &tt, rec_topic);
				tt.n = 0;
				touch(&tt, t);
			}
			if (r->has_ts && r->ts > q->lamport)
				q->lamport = r->ts;
			q->lamport++;
			int rc = ql_append(t, r->data, r->len, b->peer, q->lamport, now_ns(), &r->off);
			if (rc) {
				r->err = -rc;
				continue;
			}
			r->lamport = q->lamport;
			rec_topic[k] = t;
			q->appended++;
		}
	}
	commit_round(q, list, &tt, rec_topic);
	if (q->interval_ms)
		for (int i = 0; i < tt.n; i++)
			touch(dirty, tt.t[i]);
	free(rec_topic);
	qd_wake_if_consumers(q);
	qh_wake(q);
	while (list) {
		struct q_batch *next = list->next;
		if (list->direct)
			list->direct(list); /* the node's own handler (queue_handler.c) */
		else
			vconn_ticket_post(list->ticket, q_batch_done, list);
		list = next;
	}
}

static void sync_dirty(struct queue *q, struct touched *dirty)
{
	for (int i = 0; i < dirty->n; i++)
		ql_sync(dirty->t[i]);
	if (dirty->n)
		q->syncs++;
	dirty->n = 0;
}

static void retain_all(struct queue *q)
{
	uint64_t now = now_ns();
	pthread_mutex_lock(&q->tmu);
	int n = q->ntopics;
	pthread_mutex_unlock(&q->tmu);
	for (int i = 0; i < n; i++) {
		pthread_mutex_lock(&q->tmu);
		struct ql_topic *t = q->topics[i];
		pthread_mutex_unlock(&q->tmu);
		if (ql_retain(t, q->set.retention_bytes, q->set.retention_s, now))
			qd_wake_if_consumers(q);
	}
}

static void *writer_main(void *arg)
{
	struct queue *q = arg;
	struct touched dirty = {.n = 0};
	uint64_t next_sync = 0, next_retain = mono_ms() + 1000;
	pthread_mutex_lock(&q->wmu);
	for (;;) {
		while (!q->whead && !q->wstop) {
			uint64_t now = mono_ms();
			if (dirty.n && now >= next_sync)
				break;
			if (now >= next_retain)
				break;
			uint64_t until = next_retain;
			if (dirty.n && next_sync < until)
				until = next_sync;
			struct timespec ts;
			abstime_after_ms(CLOCK_MONOTONIC, (int)(until - now), &ts);
			pthread_cond_timedwait(&q->wcond, &q->wmu, &ts);
		}
		struct q_batch *list = q->whead;
		q->whead = q->wtail = NULL;
		bool stop = q->wstop;
		pthread_mutex_unlock(&q->wmu);
		if (list)
			process(q, list, &dirty);
		uint64_t now = mono_ms();
		if (dirty.n && (now >= next_sync || stop)) {
			sync_dirty(q, &dirty);
			next_sync = now + (uint64_t)q->interval_ms;
		} else if (!dirty.n) {
			next_sync = now + (uint64_t)q->interval_ms;
		}
		if (now >= next_retain) {
			retain_all(q);
			next_retain = now + 1000;
		}
		pthread_mutex_lock(&q->wmu);
		if (stop && !q->whead)
			break;
	}
	pthread_mutex_unlock(&q->wmu);
	return NULL;
}

int qc_start(struct queue *q)
{
	int rc = pthread_create(&q->writer, NULL, writer_main, q);
	if (rc)
		return -rc;
	pthread_setname_np(q->writer, "queue/writer");
	q->writer_started = true;
	return 0;
}

void qc_stop(struct queue *q)
{
	if (!q->writer_started)
		return;
	pthread_mutex_lock(&q->wmu);
	q->wstop = true;
	pthread_cond_signal(&q->wcond);
	pthread_mutex_unlock(&q->wmu);
	pthread_join(q->writer, NULL);
	q->writer_started = false;
}
