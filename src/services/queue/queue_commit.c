/*
 * queue_commit.c - the writer threads: group commit (queue_int.h).
 *
 * Connections submit batches of pushes and go on waiting (tickets).  The
 * writer takes every batch queued so far, appends their records to their
 * topics' logs, and then, under `queue_fsync = always`, makes each
 * touched topic durable with one write that syncs its bytes
 * (ql_flush_sync) before it publishes the records to readers and posts
 * the acknowledgements: all producers whose pushes arrived while the
 * previous sync ran share the next one.  The sync itself is the batching
 * window, not a fixed timed wait (one of 200 us overslept by 5-8 ms on a
 * loaded host): an event loop queues the batches of all the connections
 * it found readable and wakes the writer once, when that pass of its loop
 * is over (qc_submit_loop), so the writer sees them as one group.  The
 * one wait is gathering (below): the producers a round just acknowledged
 * are expected back, and the next round waits for them, woken by the
 * submit that brings the last one, with a timed wait only as the bound
 * for one that does not come (queue_gather_us).  Under
 * `interval <ms>` it publishes and acknowledges after the write() and
 * fdatasync()s the dirty topics at most every <ms>.  A
 * failed write or fdatasync fails the topic (queue_log.c): no record is
 * ever acknowledged unless its bytes were written and, under always,
 * synced.  Once a second it also applies retention.
 *
 * Under always there are two writer threads, so that two rounds' syncing
 * writes can be in flight at once (see "two rounds' writes in flight"
 * below): the rounds still append in log order and are acknowledged in
 * log order, each only once every earlier round is durable.
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

uint64_t qc_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

#define QC_FAST_MIN_NS 100000u /* "back quickly" is at least this long */

/* The batches of list whose producers are expected back soon after
 * their acknowledgement (a connection's, marked by queue.c; another
 * service's routed request never is). */
static int count_fast(const struct q_batch *list)
{
	int n = 0;
	for (; list; list = list->next)
		n += list->fast && !list->route_fn;
	return n;
}

/* ---- gathering ---------------------------------------------------------
 * Producers with one push outstanding each (a closed loop) would settle
 * into two halves, one half's round syncing while the other half's acks
 * and next pushes go round: about half of them per sync.  So when a round
 * is answered (gate_set, in log order), its batches from connections that
 * came back quickly last time (fast, queue.c) are expected back; a writer
 * that finds batches queued while some of them are missing waits (the
 * gatherer, g_waiting) until the submit that brings the last one signals
 * it, or until the window is over: twice the moving estimate of "answered
 * -> all back", at most twice the estimate of one sync (when the producers
 * take longer than that to come back, rounds carrying those that are back
 * lose less), at most queue_gather_us.  Measured on the loaded 2-core VM,
 * 16 x 128 B: with the window capped at one sync, rounds held 12.4
 * records (the later ones wait for the next round) against 15.5 with no
 * cap by the sync, 20.2k against 23k pushes/s (medians of 6).  While a round
 * of expected producers is in flight no second round starts: they come
 * back once it is over and ride the next round with the others.  A lone
 * producer never waits: the one push expected is its own.  When a loop
 * pass brings the last expected batch with no round in flight, that loop
 * runs the round itself (gathered_ok), as a lone producer's. */

/* Under wmu: must a writer that found batches queued wait for more?
 * (the producers the last round acknowledged are not all back, and the
 * window for them is not over) */
static bool gate_closed(struct queue *q, uint64_t now)
{
	if (q->set.gather_us == 0)
		return false;
	if (q->g_inflight_fast > 0)
		return true; /* they come back once it is over */
	return q->g_arrived < q->g_expected && now < q->g_deadline;
}

/* Under wmu: which always-writer to wake for newly queued batches, or -1
 * (none idle, or one already woken that has not yet taken the queue:
 * it will take these too).  A busy writer looks at the queue before it
 * waits again, so nothing queued is left unseen. */
static int pick_writer(struct queue *q)
{
	if (q->wsignalled || q->g_waiting >= 0)
		return -1;
	for (int i = 0; i < 2; i++)
		if (q->widle[i]) {
			q->widle[i] = false;
			q->wsignalled = true;
			return i;
		}
	return -1;
}

/* Wakes whoever takes the queued batches; called with wmu held, returns
 * with it released (the signal goes after the unlock, so the woken
 * writer does not then wait for the mutex). */
static void wake_unlock(struct queue *q)
{
	if (q->interval_ms) {
		pthread_cond_signal(&q->wcond);
		pthread_mutex_unlock(&q->wmu);
		return;
	}
	int w = pick_writer(q);
	if (w < 0 && q->g_waiting >= 0 && !q->g_signalled && !gate_closed(q, qc_now_ns())) {
		w = q->g_waiting; /* all back (or the window is over) */
		q->g_signalled = true;
	}
	pthread_mutex_unlock(&q->wmu);
	if (w >= 0)
		pthread_cond_signal(&q->wcv[w]);
}

static void enqueue(struct queue *q, struct q_batch *b, bool wake)
{
	b->next = NULL;
	pthread_mutex_lock(&q->wmu);
	if (b->from_gen && b->from_gen == q->g_gen && ++q->g_arrived == q->g_expected) {
		/* all of the last round's producers are back: how long that
		 * took, a moving average (1/8 of each new sample) */
		uint64_t gap = qc_now_ns() - q->g_t0;
		q->g_gap_ns = q->g_gap_ns - q->g_gap_ns / 8 + gap / 8;
	}
	if (q->wtail)
		q->wtail->next = b;
	else
		q->whead = b;
	q->wtail = b;
	if (wake)
		wake_unlock(q);
	else
		pthread_mutex_unlock(&q->wmu);
}

void qc_submit(struct queue *q, struct q_batch *b)
{
	enqueue(q, b, true);
}

static bool run_inline(struct queue *q);

/* One wake per pass of an event loop: set while its kick is scheduled
 * (each loop is one thread). */
static __thread bool kick_pending;

static void kick_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	struct queue *q = arg;
	kick_pending = false;
	if (q->interval_ms == 0 && run_inline(q))
		return;
	pthread_mutex_lock(&q->wmu);
	wake_unlock(q);
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
/* rounds of one batch in a row before a loop runs a round itself, and
 * the most payload it writes so (a pipelined burst of larger pushes
 * would hold the loop for longer than one small sync) */
#define QC_LONE_ROUNDS 4
#define QC_INLINE_BYTES (64u << 10)

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

/* Marks the records of list on a topic of tt whose bad[] is set. */
static void mark_failed(struct q_batch *list, struct touched *tt, const int *bad,
			struct ql_topic **rec_topic)
{
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
	mark_failed(list, tt, bad, rec_topic);
}

/* Appends every record of list to its topic's log (encoded, not yet
 * written); rec_topic[k] gets the k-th record's topic.  over() commits
 * the topics of tt when a round touches more than QC_TOUCH_MAX. */
static void append_all(struct queue *q, struct q_batch *list, struct touched *tt,
		       struct ql_topic **rec_topic,
		       void (*over)(struct queue *, struct q_batch *, struct touched *,
				    struct ql_topic **))
{
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
			if (!touch(tt, t)) {
				/* too many topics in one round: commit what we
				 * have, then go on */
				over(q, list, tt, rec_topic);
				tt->n = 0;
				touch(tt, t);
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
}

/* The round is over: wakes the readers and answers its batches. */
static void answer(struct queue *q, struct q_batch *list)
{
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

static void process(struct queue *q, struct q_batch *list, struct touched *dirty)
{
	int nrec = 0;
	for (struct q_batch *b = list; b; b = b->next)
		nrec += b->n;
	struct ql_topic **rec_topic = calloc((size_t)nrec + 1, sizeof *rec_topic);
	struct touched tt = {.n = 0};
	append_all(q, list, &tt, rec_topic, commit_round);
	commit_round(q, list, &tt, rec_topic);
	if (q->interval_ms)
		for (int i = 0; i < tt.n; i++)
			touch(dirty, tt.t[i]);
	free(rec_topic);
	answer(q, list);
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

/* ---- fsync always: two rounds' writes in flight ------------------------
 * Two writer threads take turns.  Under q->pmu, one takes the batches
 * queued so far and appends their records (a round, numbered in log
 * order), and detaches each touched topic's new bytes (ql_stage); it then
 * lets go of pmu and writes them with a write that syncs only those
 * bytes, while the other thread takes the next round and starts its own
 * write: ext4 commits both in one go when they meet.  A round publishes
 * and answers only after every earlier round has (q->done_seq), so
 * acknowledgements go out in log order even when a later write is durable
 * first, and a failed write fails that topic's later rounds too
 * (ql_stage_finish).  Recovery cuts a later round written after an
 * earlier one that was not (queue_log.c). */
struct qc_round {
	struct q_batch *list;
	struct touched tt;
	struct ql_stage st[QC_TOUCH_MAX]; /* their buffers are the thread's */
	int rc[QC_TOUCH_MAX];
	struct ql_topic **rec_topic;
	uint64_t seq;
	int nfast; /* batches of producers expected back (gathering) */
};

static void wait_turn(struct queue *q, uint64_t seq)
{
	pthread_mutex_lock(&q->omu);
	while (q->done_seq + 1 != seq)
		pthread_cond_wait(&q->ocond, &q->omu);
	pthread_mutex_unlock(&q->omu);
}

static void end_turn(struct queue *q, uint64_t seq)
{
	pthread_mutex_lock(&q->omu);
	q->done_seq = seq;
	pthread_cond_broadcast(&q->ocond);
	pthread_mutex_unlock(&q->omu);
}

/* The round being staged on this thread (for commit_now). */
static __thread uint64_t staging_seq;

/* A round touching more than QC_TOUCH_MAX topics: once the earlier rounds
 * are done, the topics so far are committed serially, as with one
 * writer. */
static void commit_now(struct queue *q, struct q_batch *list, struct touched *tt,
		       struct ql_topic **rec_topic)
{
	wait_turn(q, staging_seq);
	commit_round(q, list, tt, rec_topic);
}

static void stage_round(struct queue *q, struct qc_round *r)
{
	int nrec = 0;
	for (struct q_batch *b = r->list; b; b = b->next)
		nrec += b->n;
	r->rec_topic = calloc((size_t)nrec + 1, sizeof *r->rec_topic);
	r->tt.n = 0;
	staging_seq = r->seq;
	append_all(q, r->list, &r->tt, r->rec_topic, commit_now);
	for (int i = 0; i < r->tt.n; i++)
		r->rc[i] = ql_stage(r->tt.t[i], &r->st[i]);
}

int (*qc_test_hook)(uint64_t seq, bool written);

static void write_round(struct queue *q, struct qc_round *r)
{
	uint64_t t0 = qc_now_ns();
	if (qc_test_hook && qc_test_hook(r->seq, false))
		for (int i = 0; i < r->tt.n; i++)
			r->st[i].fd = -1; /* the write fails (EBADF) */
	for (int i = 0; i < r->tt.n; i++)
		if (r->rc[i] == 0)
			r->rc[i] = ql_stage_write(r->tt.t[i], &r->st[i]);
	if (qc_test_hook)
		qc_test_hook(r->seq, true);
	if (r->tt.n) {
		uint64_t d = qc_now_ns() - t0;
		pthread_mutex_lock(&q->wmu);
		q->g_sync_ns = q->g_sync_ns - q->g_sync_ns / 8 + d / 8;
		pthread_mutex_unlock(&q->wmu);
	}
}

/* In log order, before the round's acknowledgements are posted: its
 * producers (connections that came back quickly last time) are now
 * expected; a writer waiting for the previous round's is told. */
static void gate_set(struct queue *q, struct qc_round *r)
{
	uint64_t now = qc_now_ns();
	pthread_mutex_lock(&q->wmu);
	uint64_t gen = ++q->g_gen;
	for (struct q_batch *b = r->list; b; b = b->next)
		b->ack_gen = gen;
	q->g_expected = r->nfast;
	q->g_arrived = 0;
	q->g_t0 = now;
	uint64_t win = 2 * q->g_gap_ns;
	if (win > 2 * q->g_sync_ns)
		win = 2 * q->g_sync_ns;
	uint64_t gmax = (uint64_t)q->set.gather_us * 1000u;
	if (win > gmax)
		win = gmax;
	q->g_deadline = now + win;
	uint64_t fast = 4 * q->g_gap_ns;
	if (fast < QC_FAST_MIN_NS)
		fast = QC_FAST_MIN_NS;
	if (fast > gmax)
		fast = gmax;
	atomic_store_explicit(&q->g_fast_ns, fast, memory_order_relaxed);
	q->g_inflight_fast -= r->nfast;
	q->g_rounds_inflight--;
	int w = -1;
	if (q->g_waiting >= 0 && !q->g_signalled) {
		w = q->g_waiting; /* to wait for these instead */
		q->g_signalled = true;
	}
	pthread_mutex_unlock(&q->wmu);
	if (w >= 0)
		pthread_cond_signal(&q->wcv[w]);
}

/* In log order. */
static void finish_round(struct queue *q, struct qc_round *r)
{
	int bad[QC_TOUCH_MAX] = {0};
	for (int i = 0; i < r->tt.n; i++) {
		bad[i] = -ql_stage_finish(r->tt.t[i], &r->st[i], r->rc[i]);
		if (!bad[i] && ql_wants_zeros(r->tt.t[i]))
			qz_want(q, r->tt.t[i]);
	}
	if (r->tt.n)
		q->syncs++;
	int nb = 0;
	for (struct q_batch *b = r->list; b && nb < 2; b = b->next)
		nb++;
	if (nb == 1) {
		if (atomic_load(&q->lone_rounds) < QC_LONE_ROUNDS)
			atomic_fetch_add(&q->lone_rounds, 1);
	} else {
		atomic_store(&q->lone_rounds, 0);
	}
	mark_failed(r->list, &r->tt, bad, r->rec_topic);
	free(r->rec_topic);
	r->rec_topic = NULL;
	gate_set(q, r);
	answer(q, r->list);
}

/* ---- a lone producer: the loop runs the round itself ---------------------
 * With one producer (one batch per round, QC_LONE_ROUNDS rounds in a
 * row), handing each push to a writer and its acknowledgement back costs
 * two cross-thread wake-ups per push, each about 20 us of latency and 10
 * us of CPU on a virtual machine (bench/suite_queue.sh, README): more
 * than the rest of the push.  So when an event loop's pass queued exactly
 * one batch, both writers are idle (no round in flight) and every topic
 * of the batch exists, the loop stages, writes and syncs that round
 * itself, as Redis does every command; the writers' rules still hold (the
 * round is numbered under pmu, acknowledged in log order).  The loop
 * waits for that one sync; pushes from other connections meanwhile form
 * the next round, with more than one batch, which goes to the writers as
 * before (and stops the lone rounds).  Topic creation, retention and
 * batches over QC_INLINE_BYTES stay on the writers. */
static bool inline_ok(struct queue *q)
{
	struct q_batch *b = q->whead;
	if (!b || b->next || !q->widle[0] || !q->widle[1] || q->wsignalled ||
	    q->inline_busy || q->g_waiting >= 0 ||
	    q->wstop || atomic_load(&q->lone_rounds) < QC_LONE_ROUNDS ||
	    atomic_load(&q->state) != Q_READY || mono_ms() >= q->next_retain || b->direct ||
	    b->route_fn || b->bytes > QC_INLINE_BYTES)
		return false;
	for (int i = 0; i < b->n; i++)
		if (!b->recs[i].err && !qt_find(q, b->recs[i].topic))
			return false;
	return true;
}

/* Under wmu: the queue holds every producer the last round acknowledged
 * (gathered) and no round is in flight: the loop that brought the last of
 * them runs the round itself, as a lone producer's (the writer would only
 * add a wake-up on each side of the sync; all those producers wait for
 * this round, so the loop has nothing else for them meanwhile). */
static bool gathered_ok(struct queue *q)
{
	if (q->set.gather_us == 0 || q->g_expected < 2 || q->g_arrived < q->g_expected ||
	    q->g_rounds_inflight || q->inline_busy || q->wstop ||
	    atomic_load(&q->state) != Q_READY || mono_ms() >= q->next_retain)
		return false;
	uint64_t bytes = 0;
	for (struct q_batch *b = q->whead; b; b = b->next) {
		if (b->direct || b->route_fn)
			return false; /* (as a lone round's) */
		bytes += b->bytes;
		if (bytes > QC_INLINE_BYTES)
			return false;
		for (int i = 0; i < b->n; i++)
			if (!b->recs[i].err && !qt_find(q, b->recs[i].topic))
				return false;
	}
	return true;
}

static bool run_inline(struct queue *q)
{
	pthread_mutex_lock(&q->wmu);
	if (!inline_ok(q) && !gathered_ok(q)) {
		pthread_mutex_unlock(&q->wmu);
		return false;
	}
	struct q_batch *list = q->whead;
	q->whead = q->wtail = NULL;
	q->inline_busy = true;
	q->g_rounds_inflight++;
	struct qc_round *r = q->iround;
	r->nfast = count_fast(list);
	q->g_inflight_fast += r->nfast;
	pthread_mutex_unlock(&q->wmu);
	pthread_mutex_lock(&q->pmu);
	r->list = list;
	r->seq = ++q->stage_seq;
	stage_round(q, r);
	pthread_mutex_unlock(&q->pmu);
	write_round(q, r);
	wait_turn(q, r->seq);
	finish_round(q, r); /* posts the acknowledgement to this loop */
	end_turn(q, r->seq);
	pthread_mutex_lock(&q->wmu);
	q->inline_busy = false;
	/* batches queued meanwhile were submitted with both writers idle,
	 * so one was woken; this is in case none was */
	if (q->whead)
		wake_unlock(q);
	else
		pthread_mutex_unlock(&q->wmu);
	return true;
}

/* Under wmu: waits (as writer me) until batches are queued, the writers
 * stop or retention is due. */
static void wait_work(struct queue *q, int me)
{
	bool expired = false;
	for (;;) {
		if (q->wstop)
			break;
		uint64_t ns = qc_now_ns();
		if (q->whead && q->g_waiting < 0) {
			if (expired || !gate_closed(q, ns))
				break;
			/* gather: the producers of the last round (or of the
			 * round in flight) are coming back; wait for them
			 * until the window is over (a submit that brings the
			 * last one, or a round's end, signals sooner) */
			uint64_t dl = q->g_inflight_fast > 0
					      ? ns + (uint64_t)q->set.gather_us * 1000u
					      : q->g_deadline;
			struct timespec ts = {.tv_sec = (time_t)(dl / 1000000000u),
					      .tv_nsec = (long)(dl % 1000000000u)};
			q->g_waiting = me;
			q->g_signalled = false;
			q->wsignalled = true; /* new batches wake nobody else */
			if (pthread_cond_timedwait(&q->wcv[me], &q->wmu, &ts) == ETIMEDOUT)
				expired = true;
			q->g_waiting = -1;
			q->g_signalled = false;
			continue;
		}
		/* nothing queued, or the other writer gathers it */
		uint64_t now = mono_ms();
		if (now >= q->next_retain)
			break;
		struct timespec ts;
		abstime_after_ms(CLOCK_MONOTONIC, (int)(q->next_retain - now), &ts);
		/* nothing queued: whoever was woken for earlier batches
		 * has taken them (it may not have run yet), so the next
		 * batch must wake a writer again */
		if (!q->whead)
			q->wsignalled = false;
		q->widle[me] = true;
		pthread_cond_timedwait(&q->wcv[me], &q->wmu, &ts);
		q->widle[me] = false;
	}
}

static void *overlap_main(void *arg)
{
	struct queue *q = arg;
	/* this writer's own condition to wait on when idle */
	pthread_mutex_lock(&q->wmu);
	int me = q->wstarted++;
	pthread_mutex_unlock(&q->wmu);
	struct qc_round r;
	memset(&r, 0, sizeof r);
	for (;;) {
		pthread_mutex_lock(&q->wmu);
		wait_work(q, me);
		pthread_mutex_unlock(&q->wmu);
		/* the rounds are taken and staged in log order, one at a
		 * time; the other writer may be syncing meanwhile */
		pthread_mutex_lock(&q->pmu);
		pthread_mutex_lock(&q->wmu);
		struct q_batch *list = q->whead;
		q->whead = q->wtail = NULL;
		q->wsignalled = false;
		r.nfast = count_fast(list);
		q->g_inflight_fast += r.nfast;
		q->g_rounds_inflight += list != NULL;
		bool stop = q->wstop;
		uint64_t now = mono_ms();
		bool retain = now >= q->next_retain;
		if (retain)
			q->next_retain = now + 1000;
		pthread_mutex_unlock(&q->wmu);
		if (list) {
			r.list = list;
			r.seq = ++q->stage_seq;
			stage_round(q, &r);
		}
		if (retain)
			retain_all(q);
		pthread_mutex_unlock(&q->pmu);
		if (!list) {
			if (stop)
				break;
			continue;
		}
		write_round(q, &r);
		wait_turn(q, r.seq);
		finish_round(q, &r);
		end_turn(q, r.seq);
	}
	for (int i = 0; i < QC_TOUCH_MAX; i++)
		free(r.st[i].buf);
	return NULL;
}

int qc_start(struct queue *q)
{
	if (q->interval_ms == 0) {
		pthread_mutex_init(&q->pmu, NULL);
		pthread_mutex_init(&q->omu, NULL);
		pthread_cond_init(&q->ocond, NULL);
		pthread_condattr_t ca;
		pthread_condattr_init(&ca);
		pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
		for (int i = 0; i < 2; i++)
			pthread_cond_init(&q->wcv[i], &ca);
		pthread_condattr_destroy(&ca);
		q->wstarted = 0;
		q->next_retain = mono_ms() + 1000;
		q->g_waiting = -1;
		q->g_gap_ns = 50000;
		q->g_sync_ns = 200000;
		atomic_store(&q->g_fast_ns, 200000);
		q->iround = calloc(1, sizeof *q->iround);
		if (!q->iround)
			return -ENOMEM;
		int rc = q_thread_start(q, &q->writer, &q->writer_started, overlap_main,
					"queue/writer");
		return rc ? rc
			  : q_thread_start(q, &q->writer2, &q->writer2_started, overlap_main,
					   "queue/writer2");
	}
	return q_thread_start(q, &q->writer, &q->writer_started, writer_main, "queue/writer");
}

void qc_stop(struct queue *q)
{
	if (!q->writer_started)
		return;
	pthread_mutex_lock(&q->wmu);
	q->wstop = true;
	pthread_cond_broadcast(&q->wcond);
	if (q->interval_ms == 0)
		for (int i = 0; i < 2; i++)
			pthread_cond_signal(&q->wcv[i]);
	pthread_mutex_unlock(&q->wmu);
	pthread_join(q->writer, NULL);
	q->writer_started = false;
	if (q->writer2_started) {
		pthread_join(q->writer2, NULL);
		q->writer2_started = false;
	}
	if (q->interval_ms == 0) {
		pthread_mutex_destroy(&q->pmu);
		pthread_mutex_destroy(&q->omu);
		pthread_cond_destroy(&q->ocond);
		for (int i = 0; i < 2; i++)
			pthread_cond_destroy(&q->wcv[i]);
		if (q->iround)
			for (int i = 0; i < QC_TOUCH_MAX; i++)
				free(q->iround->st[i].buf);
		free(q->iround);
		q->iround = NULL;
	}
}
