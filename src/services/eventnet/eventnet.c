/*
 * eventnet.c - the EventNet service (port 20000, notes §923/§924/§994):
 * glue between the parser (eventnet_proto.c), the causal graph
 * (eventnet_graph.c) and its files (eventnet_disk.c).
 *
 * A request that changes the graph is applied in memory at once (under
 * the service's mutex, so every worker thread sees one graph and one
 * clock; a round of pipelined requests takes it once, and their journal
 * and text lines and replies are formatted after it: eventnet_stage.c)
 * and its journal and text lines are queued.  With eventnet_ack =
 * written its reply is held until its journal lines are written (write(2)
 * into the page cache, so an acknowledged event survives a crash of
 * virgod; the journal is the truth the text files are rebuilt from at
 * start-up): the worker that ran a pipelined batch writes every journal
 * line queued so far, from every connection, before it replies to the
 * batch with one write (group commit: a worker that finds its lines
 * already written by another replies at once; one that finds another
 * worker writing waits for that short write, which may have had its
 * lines, and writes what is left; one that finds the flush job writing
 * leaves its replies to that job and serves other connections
 * meanwhile).  No thread hand-off per batch otherwise.  With written
 * acks, workers waiting for each other (the graph's lock, the
 * journal's, the order of the rounds' lines) spin a little before they
 * sleep: with more runnable threads than CPUs a sleeper waits long to
 * run again.  The
 * workpool's flush job does what may block for long or can
 * wait: the text files' lines (every 256 KiB, else within the second's
 * tick), fdatasync (at most eventnet_sync_ms later; with 0 every reply
 * waits for a flush job that syncs) and the rewrite of
 * EventNetVertices.txt (a batch arriving meanwhile is answered by that
 * job, not by its worker); index_job makes the id index's next table
 * before it is due, so no round zeroes its pages under the lock.  A
 * round takes the graph's lock once to run, and once more to queue its
 * lines and, when it writes them itself, to take what it writes.
 * Queries answer from memory; tail subscribers get each new event
 * through a bounded feed.
 */
#include <errno.h>
#include <event2/buffer.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../../common/errcode.h"
#include "../../daemon/config.h"
#include "../../daemon/log.h"
#include "../../daemon/service.h"
#include "../../daemon/workpool.h"
#include "eventnet_disk.h"
#include "eventnet_graph.h"
#include "eventnet_lock.h"
#include "eventnet_proto.h"
#include "eventnet_settings.h"
#include "eventnet_stage.h"
#include "eventnet_trace.h"

#define EVN_HELD_MAX (VCONN_OUT_BUDGET / 2) /* replies held for one batch */
#define EVN_REPLY_MAX (VCONN_OUT_BUDGET / 2) /* bytes of one why/dump reply */
#define EVN_FEED_MAX (256 * 1024) /* bytes a tail subscriber may lag */
#define EVN_REWRITE_MS 1000
#define EVN_TEXT_BATCH (256 * 1024) /* text files' bytes queued before the flush job is kicked */
#define EVN_SPIN_NS 50000 /* a worker waiting for another's short hold spins this long first */
#define EVN_MAX_OUTSTANDING 8 /* batches of a connection being written at once */
#define EVN_PENDING_MAX (64u << 20) /* eventnet_ack = queued: unwritten bytes before replies wait */ /* EventNetVertices.txt rewritten at most this often */

struct evn_sub {
	struct evn_sub *next;
	struct vconn_feed *feed;
	uint64_t dropped; /* events it missed (lagging); told before the next */
};

struct evn_waiter {
	struct evn_waiter *next;
	struct vconn_ticket *t;
	struct evbuffer *replies;
	int rc; /* the batch's write result */
};

struct eventnet {
	/* wmu orders the writes to the files (the f* buffers, d's appends
	 * and rewrites); taken before mu, never while holding it (but for a
	 * trylock, which cannot wait) */
	struct evn_mutex wmu;
	struct evn_mutex mu; /* guards everything below */
	pthread_cond_t idle; /* signalled when a flush job or index_job ends */
	struct evg g;
	struct evd d;
	struct evd_buf pj, pv, pe; /* journal / vertices / edges lines not yet written */
	struct evd_buf fj, fv, fe; /* the flush job's: swapped with those, memory kept */
	struct evn_waiter *wait_head, **wait_tail;
	bool flushing, vert_dirty, unsynced;
	bool slow_io; /* the flush job rewrites the vertices file: batches go to it */
	/* changes queued (one per record_change) and written so far; the
	 * last failed write lost the changes (fail_lo, fail_hi] */
	uint64_t gen_queued, gen_written, fail_lo, fail_hi;
	/* rounds that changed the graph, numbered under mu; their lines are
	 * queued in that order (stage_commit): jnext is the next to queue */
	uint64_t jticket, jnext;
	pthread_cond_t jturn; /* signalled when jnext moves */
	uint64_t order_waits, order_wait_ns; /* rounds that waited for the one before */
	uint64_t handed_off; /* written acks: batches whose replies the flush job sent */
	int fail_rc;
	int64_t last_sync_ms, last_rewrite_ms;
	int sync_ms;
	bool ack_written; /* replies wait for the write (else: sent at once) */
	bool making_spare; /* a worker is faulting in the graph's next chunk */
	bool making_index; /* index_job is making the index's next table */
	bool wmu_worker; /* a worker holds wmu for its group commit (a short write) */
	struct vd_workpool *pool;
	struct evn_sub *subs;
	unsigned node_id;
	size_t max_line;
	uint64_t ops_log, ops_edge, ops_query, errors, io_errors, batches, syncs, rewrites;
	uint64_t traced; /* the node's own events (eventnet_trace) */
	bool trace;
	/* non-empty: eventnet_dir held by another process (off_code EBUSY) or
	 * unusable (EIO); the port answers ERR <off_code> <off_why> */
	char off_why[600];
	const char *off_code;
};

struct evn_conn {
	struct frame_state fs;
	struct evbuffer *held; /* replies of the batch being run */
	/* batches of ours being written, and the bytes of their replies: a
	 * connection goes on with its next requests meanwhile (the replies
	 * are delivered in order, as the writes complete in order) until
	 * these reach EVN_MAX_OUTSTANDING / EVN_HELD_MAX */
	int outstanding;
	size_t held_bytes;
	bool waiting; /* returned VSVC_WAIT: resume when a batch is written */
	uint64_t upto; /* the gen_queued of this call's last change: written before its replies */
	bool legacy_close; /* last request used the notes' syntax */
	bool failed; /* the journal write failed: close */
	struct evn_sub *sub; /* tail subscription */
	struct evn_stage *stage; /* a round's changes (kept: its memory is reused) */
};

static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- the flush job (workpool) ------------------------------------------ */

static void flush_job(void *arg, bool cancelled);

/* Under mu: starts a flush job unless one runs. */
static void kick_locked(struct eventnet *en)
{
	if (en->flushing)
		return;
	if (vd_workpool_submit(en->pool, flush_job, en) == 0)
		en->flushing = true;
	/* else the pool is full: the tick retries within a second */
}

static void post_waiters(struct evn_waiter *w, int rc);

static void swap_buf(struct evd_buf *a, struct evd_buf *b)
{
	struct evd_buf t = *a;
	*a = *b;
	*b = t;
}

/* A burst may have grown a buffer a lot: give the memory back. */
static void trim_buf(struct evd_buf *b)
{
	if (b->n == 0 && b->cap > (16u << 20))
		evd_buf_free(b);
}

static void evn_gone_free(struct evg_gone *gone, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(gone[i].text);
	free(gone);
}

/* A write of the queued lines, in three steps: wq_take_locked (mu held:
 * takes the lines and, for the flush job, what a rewrite of
 * EventNetVertices.txt needs), wq_write (no lock) and wq_done_locked
 * (mu held: the result).  Only a holder of wmu runs them. */
struct evn_wq {
	bool text, rewrite, wrote;
	struct evd_buf vt;
	struct evg_gone *gone;
	size_t ngone;
	uint64_t base, from, target;
};

/* With wmu and mu held: takes every journal line queued so far, from
 * every connection; with text (the flush job), the text files' lines
 * too, and what replaces EventNetVertices.txt when an appended
 * conversation is due. */
static void wq_take_locked(struct eventnet *en, struct evn_wq *q, bool text)
{
	*q = (struct evn_wq){.text = text};
	int64_t now = now_ms();
	/* not while a round's lines are staged but not queued: the graph has
	 * its events already, the file would get them twice (the tick retries) */
	if (text && en->vert_dirty && now - en->last_rewrite_ms >= EVN_REWRITE_MS &&
	    en->jnext == en->jticket) {
		/* the graph's part of the file from the graph, after the lines
		 * queued are written (the evicted events' lines are kept) */
		evd_vertices_text(&q->vt, &en->g);
		q->base = en->g.base;
		evg_take_gone(&en->g, &q->gone, &q->ngone);
		en->vert_dirty = false;
		en->last_rewrite_ms = now;
		q->rewrite = true;
	}
	swap_buf(&en->pj, &en->fj);
	if (text) {
		swap_buf(&en->pv, &en->fv);
		swap_buf(&en->pe, &en->fe);
	}
	q->from = en->gen_written;
	q->target = en->gen_queued;
	q->wrote = en->fj.n > 0;
}

/* With wmu held (not mu): writes what q took.  0 or -errno. */
static int wq_write(struct eventnet *en, struct evn_wq *q)
{
	/* only a holder of wmu touches f* and the files */
	int rc = evd_append(&en->d, &en->fj, &en->fv, &en->fe);
	en->fj.n = en->fv.n = en->fe.n = 0;
	en->fj.events = en->fj.causes = 0;
	en->fj.oom = en->fv.oom = en->fe.oom = false;
	trim_buf(&en->fj);
	trim_buf(&en->fv);
	trim_buf(&en->fe);
	if (rc == 0 && q->rewrite)
		rc = q->vt.oom ? -ENOMEM
			       : evd_replace_vertices(&en->d, q->base, q->gone, q->ngone, q->vt.p,
						      q->vt.n);
	evd_buf_free(&q->vt);
	evn_gone_free(q->gone, q->ngone);
	q->gone = NULL;
	q->ngone = 0;
	if (rc)
		log_error("eventnet_write_failed dir=%s err=%s", en->d.dir, strerror(-rc));
	return rc;
}

/* With wmu and mu held: records the result rc of the write of q. */
static void wq_done_locked(struct eventnet *en, const struct evn_wq *q, int rc)
{
	en->gen_written = q->target;
	if (q->wrote) {
		en->unsynced = true;
		en->batches++;
	}
	if (q->rewrite && rc == 0)
		en->rewrites++;
	if (rc) {
		en->io_errors++;
		en->fail_lo = q->from;
		en->fail_hi = q->target;
		en->fail_rc = rc;
	}
}

/* With wmu held (not mu): writes every journal line queued so far, from
 * every connection; with text (the flush job), the text files' lines too,
 * and replaces EventNetVertices.txt when an appended conversation is due.
 * 0 or -errno. */
static int write_queued(struct eventnet *en, bool text)
{
	struct evn_wq q;
	evn_lock(&en->mu);
	wq_take_locked(en, &q, text);
	evn_unlock(&en->mu);
	int rc = wq_write(en, &q);
	evn_lock(&en->mu);
	wq_done_locked(en, &q, rc);
	evn_unlock(&en->mu);
	return rc;
}

/* Under mu: the result of the write that had the changes up to gen. */
static int commit_result_locked(struct eventnet *en, uint64_t gen)
{
	return gen > en->fail_lo && gen <= en->fail_hi ? en->fail_rc : 0;
}

static void flush_job(void *arg, bool cancelled)
{
	struct eventnet *en = arg;
	if (cancelled) { /* the pool is going away: fini writes what is pending */
		evn_lock(&en->mu);
		en->flushing = false;
		pthread_cond_broadcast(&en->idle);
		evn_unlock(&en->mu);
		return;
	}
	for (;;) {
		evn_lock(&en->wmu);
		/* the waiters first: their lines are queued, so the write has them */
		evn_lock(&en->mu);
		struct evn_waiter *w = en->wait_head;
		en->wait_head = NULL;
		en->wait_tail = &en->wait_head;
		int64_t now = now_ms();
		if (en->vert_dirty && now - en->last_rewrite_ms >= EVN_REWRITE_MS)
			en->slow_io = true; /* batches meanwhile come to this job */
		evn_unlock(&en->mu);
		int rc = write_queued(en, true);
		evn_lock(&en->mu);
		en->slow_io = false;
		bool sync = rc == 0 && en->unsynced &&
			    (en->sync_ms == 0 || now - en->last_sync_ms >= en->sync_ms);
		if (sync)
			en->unsynced = false; /* a write from now on sets it again */
		evn_unlock(&en->mu);
		evn_unlock(&en->wmu);

		/* fdatasync without wmu: workers go on writing meanwhile */
		if (sync && (rc = evd_sync(&en->d)) != 0)
			log_error("eventnet_sync_failed dir=%s err=%s", en->d.dir, strerror(-rc));
		post_waiters(w, rc);

		evn_lock(&en->mu);
		if (sync) {
			if (rc == 0) {
				en->last_sync_ms = now;
				en->syncs++;
			} else {
				en->unsynced = true;
				en->io_errors++;
			}
		}
		bool more = en->wait_head || en->pj.n > EVN_TEXT_BATCH ||
			    en->pv.n + en->pe.n > EVN_TEXT_BATCH;
		if (!more) {
			en->flushing = false;
			pthread_cond_broadcast(&en->idle);
		}
		evn_unlock(&en->mu);
		if (!more)
			break;
	}
}

/* The workpool's job that makes the index's next table ahead of its
 * growth (evg_index_spare_wanted): its pages are zeroed here, not under
 * mu by the round that grows the index. */
static void index_job(void *arg, bool cancelled)
{
	struct eventnet *en = arg;
	uint64_t *t = NULL;
	uint32_t ns = 0;
	if (!cancelled) {
		evn_lock(&en->mu);
		ns = evg_index_spare_wanted(&en->g);
		evn_unlock(&en->mu);
		if (ns)
			t = evg_index_table_new(ns);
	}
	evn_lock(&en->mu);
	evg_give_index_spare(&en->g, t, ns);
	en->making_index = false;
	pthread_cond_broadcast(&en->idle);
	evn_unlock(&en->mu);
}

static void reply_done(struct vconn *c, void *arg)
{
	struct evn_waiter *w = arg;
	bool resume = false;
	if (c) {
		struct evn_conn *ec = vconn_state(c);
		ec->outstanding--;
		ec->held_bytes -= evbuffer_get_length(w->replies);
		if (w->rc) {
			evbuffer_add_printf(vconn_out(c), "ERR EIO the event journal could not be written: %s\r\n",
					    strerror(-w->rc));
			ec->failed = true;
		} else {
			evbuffer_add_buffer(vconn_out(c), w->replies);
		}
		resume = ec->waiting || ec->failed;
		ec->waiting = false;
	}
	evbuffer_free(w->replies);
	free(w);
	if (resume)
		vconn_resume(c); /* takes the input that waited, or closes */
	else if (c)
		vconn_flush(c);
}

static void post_waiters(struct evn_waiter *w, int rc)
{
	while (w) {
		struct evn_waiter *next = w->next;
		w->rc = rc;
		vconn_ticket_post(w->t, reply_done, w);
		w = next;
	}
}

/* ---- replies ------------------------------------------------------------ */

static void event_line(struct evbuffer *out, const struct evg *g, const struct evg_event *e)
{
	char b[EVN_LINE_HEAD];
	size_t n = 0, pl = strlen(evg_ev_partakers(e));
	memcpy(b, "EVENT ", 6);
	n = 6;
	memcpy(b + n, evg_ev_id(e), e->id_len);
	n += e->id_len;
	b[n++] = ' ';
	n += evd_event_clocks(e, b + n);
	b[n++] = ' ';
	if (pl) {
		memcpy(b + n, evg_ev_partakers(e), pl);
		n += pl;
	} else {
		b[n++] = '-';
	}
	b[n++] = ' ';
	evbuffer_add(out, b, n);
	size_t cl = evg_parents_len(g, e);
	if (cl == 0) {
		evbuffer_add(out, "-", 1);
	} else {
		char *p = cl < sizeof b - 2 ? b : malloc(cl + 2);
		if (p) {
			evg_parents_csv(g, e, p, cl + 2);
			evbuffer_add(out, p, cl);
			if (p != b)
				free(p);
		}
	}
	evbuffer_add(out, " ", 1);
	size_t convl;
	const char *conv = evg_ev_conv(e, &convl);
	if (convl)
		evbuffer_add(out, conv, convl);
	evbuffer_add(out, "\r\n", 2);
}

static void reply_err(struct eventnet *en, struct evbuffer *out, int code, const char *msg)
{
	en->errors++;
	evbuffer_add_printf(out, "ERR %s %s\r\n", ec_name(code), msg);
}

/* Under mu: tells every tail subscriber about event idx. */
static void feed_event(struct eventnet *en, uint32_t idx)
{
	if (!en->subs)
		return;
	struct evbuffer *line = evbuffer_new();
	if (!line)
		return;
	event_line(line, &en->g, en->g.ev[idx]);
	size_t n = evbuffer_get_length(line);
	const void *p = evbuffer_pullup(line, -1);
	for (struct evn_sub **sp = &en->subs; *sp;) {
		struct evn_sub *s = *sp;
		int rc = 0;
		if (s->dropped) {
			char m[48];
			int ml = snprintf(m, sizeof m, "DROPPED %" PRIu64 "\r\n", s->dropped);
			rc = vconn_feed_push(s->feed, m, (size_t)ml);
			if (rc == 0)
				s->dropped = 0;
		}
		if (rc == 0)
			rc = vconn_feed_push(s->feed, p, n);
		if (rc == -ENOBUFS || rc == -ENOMEM)
			s->dropped++;
		sp = &s->next;
	}
	evbuffer_free(line);
}

/* Under mu, before a round changes the graph: frees the chunks evicted
 * while a round that may still read their events (formatting its lines
 * and replies after the lock) was in flight, and tags what this round
 * evicts with its future ticket. */
static void evn_reclaim_locked(struct eventnet *en)
{
	if (en->g.dead)
		evg_reclaim(&en->g, en->jnext);
	en->g.tag = en->jticket;
}

/* Under mu: stages the files' lines of a change (formatted and queued by
 * stage_commit, after the lock), feeds the event. */
static void record_change(struct eventnet *en, struct evn_stage *st, const struct evg_change *ch,
			  const char *conv, size_t conv_len)
{
	evn_stage_add(st, en->g.ev[ch->idx], ch, conv, conv_len);
	if (ch->conv_appended)
		en->vert_dirty = true;
	/* a new event, and one updated (a conversation appended, a cause
	 * added): a follower sees its whole state again */
	if (ch->created || ch->conv_appended || ch->nadded)
		feed_event(en, ch->idx);
}

/* Under mu, at the end of a round that staged changes: its place in the
 * journal's order (the order in which the rounds changed the graph). */
static void stage_ticket(struct eventnet *en, struct evn_stage *st)
{
	st->ticket = en->jticket++;
}

/* Without mu: formats the staged lines of a round that took a ticket,
 * for stage_queue_locked. */
static void stage_format(struct evn_stage *st)
{
	st->ready = st->n;
	evn_stage_format(st);
}

/* Appends a round's lines from to the queued ones q (from is emptied):
 * most often q is empty (a worker took it for its write), and the two
 * buffers trade places instead of a copy (not a large one of q's: a
 * round's buffer stays small). */
static void queue_buf(struct evd_buf *q, struct evd_buf *from)
{
	if (q->n == 0 && !q->oom && q->cap <= (1u << 20)) {
		swap_buf(q, from);
	} else {
		evd_buf_add(q, from->p, from->n);
		q->events += from->events;
		q->causes += from->causes;
	}
	from->n = 0;
	from->events = from->causes = 0;
}

/* Under mu: queues the lines stage_format made, in ticket order (waiting
 * for the round before, which formats meanwhile).  Returns gen_queued
 * after them: the reply to the round waits for the writes up to that. */
static uint64_t stage_queue_locked(struct eventnet *en, struct evn_stage *st)
{
	if (en->jnext != st->ticket) {
		struct timespec a;
		clock_gettime(CLOCK_MONOTONIC, &a);
		while (en->jnext != st->ticket)
			pthread_cond_wait(&en->jturn, &en->mu.m);
		en->order_waits++;
		en->order_wait_ns += (uint64_t)evn_since_ns(&a);
	}
	if (st->j.oom || st->v.oom || st->e.oom) { /* the write reports it */
		en->pj.oom = true;
	} else {
		queue_buf(&en->pj, &st->j);
		queue_buf(&en->pv, &st->v);
		queue_buf(&en->pe, &st->e);
	}
	en->gen_queued += st->ready;
	st->ready = 0;
	__atomic_store_n(&en->jnext, en->jnext + 1, __ATOMIC_RELEASE); /* (stage_wait_turn) */
	pthread_cond_broadcast(&en->jturn);
	st->j.n = st->v.n = st->e.n = 0;
	st->j.events = st->j.causes = 0;
	st->j.oom = st->v.oom = st->e.oom = false;
	return en->gen_queued;
}

/* A worker takes mu: with written acks, spinning first (workers wait for
 * each other's short holds: 16 clients, median ratio to the memcached
 * port 0.98 -> 1.15); with queued acks a worker mostly meets the flush
 * job's thread, and spinning for it cost CPU (1 client: 1.42 -> 1.27). */
static void evn_lock_mu(struct eventnet *en)
{
	if (en->ack_written)
		evn_lock_spin(&en->mu, EVN_SPIN_NS);
	else
		evn_lock(&en->mu);
}

/* Without mu, before stage_queue_locked: spins up to EVN_SPIN_NS while
 * the round before st's is still being formatted by another worker (a
 * few microseconds), rather than sleep on jturn under mu. */
static void stage_wait_turn(struct eventnet *en, const struct evn_stage *st)
{
	if (!en->ack_written || __atomic_load_n(&en->jnext, __ATOMIC_ACQUIRE) == st->ticket)
		return;
	struct timespec a;
	clock_gettime(CLOCK_MONOTONIC, &a);
	for (unsigned k = 1; __atomic_load_n(&en->jnext, __ATOMIC_ACQUIRE) != st->ticket; k++) {
		evn_cpu_relax();
		if (k % 64 == 0 && evn_since_ns(&a) > EVN_SPIN_NS)
			return;
	}
}

/* Without mu: stage_format and stage_queue_locked. */
static uint64_t stage_commit(struct eventnet *en, struct evn_stage *st)
{
	stage_format(st);
	evn_lock(&en->mu);
	uint64_t upto = stage_queue_locked(en, st);
	evn_unlock(&en->mu);
	return upto;
}

/* "OK <id> <clocks>" (clocks: evd_event_clocks() of the event). */
static void reply_logged(struct evbuffer *out, const struct evg_event *e, const char *clocks,
			 size_t clocks_n)
{
	char b[EVN_LINE_HEAD + 140];
	size_t n = 3;
	memcpy(b, "OK ", 3);
	memcpy(b + n, evg_ev_id(e), e->id_len);
	n += e->id_len;
	b[n++] = ' ';
	memcpy(b + n, clocks, clocks_n);
	n += clocks_n;
	b[n++] = '\r';
	b[n++] = '\n';
	evbuffer_add(out, b, n);
}

/* The reply to a log: reads only what never changes once e is recorded,
 * so it may run without the lock.  item: the staged change of a new
 * event, which keeps the clocks for its journal line (or NULL). */
static void reply_logged_event(struct evbuffer *out, const struct evg_event *e,
			       struct evn_stage_item *item)
{
	char clocks[EVN_LINE_HEAD];
	size_t cn = evd_event_clocks(e, clocks);
	reply_logged(out, e, clocks, cn);
	if (item && cn <= sizeof item->clocks) {
		memcpy(item->clocks, clocks, cn);
		item->clocks_n = (uint8_t)cn;
	}
}

static const char evn_help[] =
	"HELP log <id> [partakers=<csv>] [after=<id>,...] [clock=<node>:<n>,...] [lamport=<n>] "
	"[conv=<text to end of line>] -> OK <id> <node> <seq> <lamport> <vclock>\r\n"
	"HELP edge <from> <to>          -> OK (ERR ELOOP when it would make a cycle)\r\n"
	"HELP get <id>                  -> EVENT <id> <node> <seq> <lamport> <vclock> "
	"<partakers|-> <causes|-> <conversations>\r\n"
	"HELP why <id> [<max>]          -> ANCESTORS <total> <listed>, EVENT lines in causal "
	"order, REMOTE <id> lines, END\r\n"
	"HELP before <a> <b>            -> ORDER before|after|equal|concurrent\r\n"
	"HELP dump [<cursor> [<count>]] -> EVENT lines, NEXT <cursor>, END\r\n"
	"HELP tail                      -> OK, then an EVENT line per new event\r\n"
	"HELP clock | stats | ping | help | quit\r\n"
	"HELP eventnet_vertexmsg#<id>-<partakers>-<conversations> "
	"eventnet_edgemsg#<id>#<from>#<to> -> EventNet updated\r\n"
	"END\r\n";

static void reply_stats(struct eventnet *en, struct evbuffer *out)
{
	char vc[EVC_TEXT_MAX + 1];
	evc_format(&en->g.clock, vc);
	int subs = 0;
	for (struct evn_sub *s = en->subs; s; s = s->next)
		subs++;
	evbuffer_add_printf(
		out,
		"STAT node_id %u\r\nSTAT events %" PRIu32 "\r\nSTAT edges %" PRIu64 "\r\n"
		"STAT bytes %" PRIu64 "\r\nSTAT max_events %" PRIu64 "\r\nSTAT max_bytes %" PRIu64 "\r\n"
		"STAT lamport %" PRIu64 "\r\nSTAT clock %s\r\n"
		"STAT ops_log %" PRIu64 "\r\nSTAT ops_edge %" PRIu64 "\r\nSTAT ops_query %" PRIu64 "\r\n"
		"STAT errors %" PRIu64 "\r\nSTAT io_errors %" PRIu64 "\r\nSTAT write_batches %" PRIu64
		"\r\nSTAT syncs %" PRIu64 "\r\nSTAT rewrites %" PRIu64 "\r\nSTAT sync_ms %d\r\n"
		"STAT tail_subscribers %d\r\nSTAT trace %s\r\nSTAT traced %" PRIu64 "\r\nSTAT replayed %" PRIu64 "\r\nSTAT repaired_bytes %" PRIu64
		"\r\nSTAT evicted %" PRIu64 "\r\nSTAT journal_rotations %" PRIu64
		"\r\nSTAT dir %s\r\n",
		en->node_id, en->g.n, en->g.nedges, evg_bytes(&en->g), en->g.max_events, en->g.max_bytes,
		en->g.lamport, vc, en->ops_log, en->ops_edge, en->ops_query, en->errors, en->io_errors,
		en->batches, en->syncs, en->rewrites, en->sync_ms, subs, en->trace ? "yes" : "no",
		en->traced, en->d.replayed,
		en->d.repaired_bytes, en->g.base, en->d.rotations, en->d.dir);
	uint64_t m[3], w[3];
	evn_mutex_counts(&en->mu, m);
	evn_mutex_counts(&en->wmu, w);
	evbuffer_add_printf(out,
			    "STAT graph_lock %" PRIu64 " %" PRIu64 " %" PRIu64 "\r\n"
			    "STAT write_lock %" PRIu64 " %" PRIu64 " %" PRIu64 "\r\n"
			    "STAT order_waits %" PRIu64 " %" PRIu64 "\r\n"
			    "STAT handed_off %" PRIu64 "\r\nEND\r\n",
			    m[0], m[1], m[2], w[0], w[1], w[2], en->order_waits,
			    en->order_wait_ns / 1000000, en->handed_off);
}

/* A "<word><id>" line per id of the csv, while *room (bytes) lasts. */
static void csv_lines(struct evbuffer *out, const char *word, const char *csv, size_t *room)
{
	size_t wl = strlen(word);
	for (const char *r = csv; r && *r && *room > 200;) {
		const char *c = strchr(r, ',');
		size_t l = c ? (size_t)(c - r) : strlen(r);
		evbuffer_add(out, word, wl);
		evbuffer_add(out, r, l);
		evbuffer_add(out, "\r\n", 2);
		*room -= l + wl + 2;
		r = c ? c + 1 : r + l;
	}
}

static void reply_why(struct eventnet *en, struct evbuffer *out, uint32_t idx, uint64_t max)
{
	uint32_t *anc;
	size_t n;
	char *remote, *evicted;
	if (evg_why(&en->g, idx, &anc, &n, &remote, &evicted) != 0) {
		reply_err(en, out, ENOMEM, "out of memory");
		return;
	}
	struct evbuffer *body = evbuffer_new();
	size_t listed = 0;
	/* the latest causes matter most when the list is cut: list the tail */
	size_t from = n > max ? n - max : 0;
	for (size_t i = from; body && i < n; i++) {
		if (evbuffer_get_length(body) > EVN_REPLY_MAX)
			break;
		event_line(body, &en->g, en->g.ev[anc[i]]);
		listed++;
	}
	evbuffer_add_printf(out, "ANCESTORS %zu %zu\r\n", n, listed);
	if (body) {
		evbuffer_add_buffer(out, body);
		evbuffer_free(body);
	}
	size_t room = EVN_REPLY_MAX; /* REMOTE lines too stay within one reply's bound */
	csv_lines(out, "REMOTE ", remote, &room);
	/* causes that left memory (eventnet_max_events / _bytes): the
	 * history known here is truncated at them (they are on disk) */
	csv_lines(out, "TRUNCATED ", evicted, &room);
	evbuffer_add(out, "END\r\n", 5);
	free(anc);
	free(remote);
	free(evicted);
}

/* ---- requests ----------------------------------------------------------- */

static bool find(struct eventnet *en, struct evbuffer *out, struct evn_str id, uint32_t *idx)
{
	int64_t i = evg_find(&en->g, id.p, id.n);
	if (i < 0) {
		reply_err(en, out, ENOENT,
			  en->g.base ? "no such event in this node's memory (never recorded here, "
				       "or evicted: the oldest events are only in its files)"
				     : "no such event on this node");
		return false;
	}
	*idx = (uint32_t)i;
	return true;
}

/* Under mu: runs a request; a change of the graph is staged in st.  A
 * native log is not answered when logged is given: *logged gets its
 * event (answered by reply_logged_event after the lock), or *fail_code
 * and *fail_msg the refusal (the caller answers it). */
static void exec_locked(struct vconn *c, struct eventnet *en, const struct evn_req *r,
			uint32_t hash, struct evbuffer *out, struct evn_stage *st,
			const struct evg_event **logged, int *fail_code, const char **fail_msg)
{
	const char *why = NULL;
	uint32_t a, b;
	switch (r->op) {
	case EVN_OP_LOG: {
		en->ops_log++;
		struct evg_str after[EVN_AFTER_MAX];
		for (unsigned k = 0; k < r->nafter; k++)
			after[k] = (struct evg_str){r->after[k].p, r->after[k].n};
		struct evg_log_in in = {
			.id = {r->id.p, r->id.n},
			.partakers = {r->partakers.p, r->partakers.n},
			.conv = {r->conv.p, r->conv.n},
			.after = after,
			.nafter = r->nafter,
			.clock = r->has_clock ? &r->clock : NULL,
			.lamport = r->lamport,
			.hash = hash,
		};
		struct evg_change ch;
		int rc = evg_log(&en->g, &in, &ch, &why);
		if (rc && logged) {
			*fail_code = -rc;
			*fail_msg = why;
			return;
		}
		if (rc) {
			reply_err(en, out, -rc, why);
			return;
		}
		const struct evg_event *e = en->g.ev[ch.idx];
		record_change(en, st, &ch, r->conv.p, r->conv.n);
		if (r->legacy)
			evbuffer_add(out, "EventNet updated\r\n", 18);
		else if (logged)
			*logged = e;
		else
			reply_logged_event(out, e, NULL);
		return;
	}
	case EVN_OP_EDGE: {
		en->ops_edge++;
		struct evg_change ch[2];
		int nch;
		int rc = evg_edge(&en->g, (struct evg_str){r->id.p, r->id.n},
				  (struct evg_str){r->id2.p, r->id2.n}, ch, &nch, &why);
		for (int k = 0; k < nch; k++)
			record_change(en, st, &ch[k], NULL, 0);
		if (rc)
			reply_err(en, out, -rc, why);
		else if (r->legacy)
			evbuffer_add(out, "EventNet updated\r\n", 18);
		else
			evbuffer_add(out, "OK\r\n", 4);
		return;
	}
	case EVN_OP_GET:
		en->ops_query++;
		if (find(en, out, r->id, &a))
			event_line(out, &en->g, en->g.ev[a]);
		return;
	case EVN_OP_WHY:
		en->ops_query++;
		if (find(en, out, r->id, &a))
			reply_why(en, out, a, r->count);
		return;
	case EVN_OP_BEFORE:
		en->ops_query++;
		if (find(en, out, r->id, &a) && find(en, out, r->id2, &b)) {
			const struct evg_event *x = en->g.ev[a], *y = en->g.ev[b];
			evbuffer_add_printf(out, "ORDER %s\r\n",
					    evc_order_name(evg_order(x, y)));
		}
		return;
	case EVN_OP_DUMP: {
		en->ops_query++;
		uint64_t i = r->cursor;
		size_t start = evbuffer_get_length(out);
		for (; i < en->g.n && i - r->cursor < r->count; i++) {
			if (evbuffer_get_length(out) - start > EVN_REPLY_MAX)
				break;
			event_line(out, &en->g, en->g.ev[i]);
		}
		if (r->cursor == 0 && en->g.base) /* what a dump leaves out */
			evbuffer_add_printf(out, "EVICTED %" PRIu64 "\r\n", en->g.base);
		evbuffer_add_printf(out, "NEXT %" PRIu64 "\r\nEND\r\n", i < en->g.n ? i : 0);
		return;
	}
	case EVN_OP_TAIL: {
		struct evn_conn *ec = vconn_state(c);
		if (ec->sub) {
			reply_err(en, out, EEXIST, "already following");
			return;
		}
		struct evn_sub *s = calloc(1, sizeof *s);
		if (s)
			s->feed = vconn_feed_new(c, EVN_FEED_MAX);
		if (!s || !s->feed) {
			free(s);
			reply_err(en, out, ENOMEM, "out of memory");
			return;
		}
		s->next = en->subs;
		en->subs = s;
		ec->sub = s;
		evbuffer_add(out, "OK tail\r\n", 9);
		return;
	}
	case EVN_OP_CLOCK: {
		char vc[EVC_TEXT_MAX + 1];
		evc_format(&en->g.clock, vc);
		evbuffer_add_printf(out, "CLOCK %u %" PRIu64 " %s\r\n", en->node_id, en->g.lamport, vc);
		return;
	}
	case EVN_OP_STATS:
		reply_stats(en, out);
		return;
	case EVN_OP_PING:
		evbuffer_add_printf(out, "PONG %u\r\n", en->node_id);
		return;
	case EVN_OP_HELP:
		evbuffer_add(out, evn_help, sizeof evn_help - 1);
		return;
	case EVN_OP_QUIT:
	default:
		return;
	}
}

/* One parsed request of a round (parsed without the lock). */
struct evn_parsed {
	enum evn_parse_result pr;
	struct evn_req req;
	int code;
	const char *msg;
	struct frame_state fs_before; /* to parse it again if the round stops early */
	size_t start; /* its offset in the input */
	uint32_t hash; /* log: evg_hash of its id (outside the lock) */
	const struct evg_event *logged; /* a log whose reply is formatted after the lock */
	struct evbuffer *out; /* where that reply goes */
	int item; /* its new event's staged change, or -1 */
};

/* The replies of round[from..to) that were left for after the lock (in
 * order: a reply written at once first sends those before it). */
static void reply_deferred(struct evn_parsed *round, int from, int to, struct evn_stage *st)
{
	for (int i = from; i < to; i++) {
		if (round[i].logged)
			reply_logged_event(round[i].out, round[i].logged,
					   round[i].item >= 0 ? &st->it[round[i].item] : NULL);
		round[i].logged = NULL;
	}
}

#define EVN_PREFETCH 8 /* requests whose index slots are loaded ahead */

/* Under mu: starts loading the index slot of round[i]'s event. */
static void prefetch_req(struct eventnet *en, const struct evn_parsed *p)
{
	if (p->pr == EVN_REQ && p->req.op == EVN_OP_LOG)
		evg_prefetch(&en->g, p->hash);
}

#define EVN_ROUND 64 /* requests parsed, then run under one lock acquisition */

static int evn_on_input(struct vconn *c, struct evbuffer *in, bool eof)
{
	static __thread struct evn_parsed round[EVN_ROUND];
	struct eventnet *en = vconn_svc(c);
	struct evn_conn *ec = vconn_state(c);
	if (ec->failed)
		return VSVC_CLOSE;
	if (ec->waiting)
		return VSVC_WAIT;
	if (en->off_why[0]) {
		evbuffer_add_printf(vconn_out(c), "ERR %s %s\r\n", en->off_code, en->off_why);
		return VSVC_CLOSE;
	}
	bool quit = false, oom = false;
	if (!ec->stage && !(ec->stage = calloc(1, sizeof *ec->stage))) {
		evbuffer_add(vconn_out(c), "ERR ENOMEM out of memory\r\n", 26);
		return VSVC_CLOSE;
	}
	struct evn_stage *st = ec->stage;
	for (;;) {
		size_t len = evbuffer_get_length(in);
		if (len == 0 || quit || oom)
			break;
		if (vconn_out_full(c) ||
		    (ec->held && evbuffer_get_length(ec->held) > EVN_HELD_MAX))
			break;
		/* parse a round of requests outside the lock (the strings point
		 * into buf: nothing is drained until the round has run) */
		const uint8_t *buf = evbuffer_pullup(in, -1);
		size_t off = 0;
		int nr = 0;
		while (nr < EVN_ROUND && off < len) {
			struct evn_parsed *p = &round[nr];
			size_t used;
			p->fs_before = ec->fs;
			p->start = off;
			p->pr = evn_parse(&ec->fs, buf + off, len - off, eof, en->max_line, &p->req,
					  &used, &p->code, &p->msg);
			off += used;
			if (p->pr == EVN_MORE) {
				if (used == 0)
					break;
				continue; /* skipped bytes (an oversized line's rest) */
			}
			nr++;
			if (p->pr == EVN_REQ && p->req.op == EVN_OP_LOG)
				p->hash = evg_hash(p->req.id.p, p->req.id.n);
			if (p->pr == EVN_REQ && p->req.op == EVN_OP_QUIT)
				break;
		}
		/* then run them under one lock acquisition (which first queues
		 * the lines of the round before, if any) */
		if (nr) {
			if (st->ready)
				stage_wait_turn(en, st);
			evn_lock_mu(en);
			if (st->ready)
				ec->upto = stage_queue_locked(en, st);
			evn_reclaim_locked(en);
		}
		for (int i = 0; i < nr && i < EVN_PREFETCH; i++)
			prefetch_req(en, &round[i]);
		size_t done = off;
		int deferred = 0; /* round[deferred..i) may have replies left for later */
		int i;
		for (i = 0; i < nr; i++) {
			struct evn_parsed *p = &round[i];
			p->logged = NULL;
			if (i + EVN_PREFETCH < nr)
				prefetch_req(en, &round[i + EVN_PREFETCH]);
			/* replies piling up (large why/dump pages): the rest of
			 * the round waits, parsed again next time */
			if (i > 0 && (vconn_out_full(c) ||
				      (ec->held && evbuffer_get_length(ec->held) > EVN_HELD_MAX))) {
				ec->fs = p->fs_before;
				done = p->start;
				break;
			}
			/* replies keep the requests' order: once one waits for
			 * the write, the following ones wait behind it */
			if (!ec->held && ec->outstanding > 0 && !(ec->held = evbuffer_new())) {
				oom = true;
				break;
			}
			struct evbuffer *out = ec->held ? ec->held : vconn_out(c);
			bool native_log = p->pr == EVN_REQ && p->req.op == EVN_OP_LOG && !p->req.legacy;
			if (!native_log) { /* answered at once: the replies before it first */
				reply_deferred(round, deferred, i, st);
				deferred = i + 1;
			}
			if (p->pr == EVN_ERROR) {
				reply_err(en, out, p->code, p->msg);
				ec->legacy_close = p->req.legacy;
				continue;
			}
			if (p->req.op == EVN_OP_QUIT) {
				quit = true;
				break;
			}
			bool mutating = p->req.op == EVN_OP_LOG || p->req.op == EVN_OP_EDGE;
			/* a reply waits for the write when it answers a change
			 * (eventnet_ack = queued: only when the writes fall far
			 * behind), and any reply waits behind earlier ones that do */
			if (!ec->held &&
			    (ec->outstanding > 0 ||
			     (mutating && (en->ack_written || en->pj.n > EVN_PENDING_MAX)))) {
				ec->held = evbuffer_new();
				if (!ec->held) {
					oom = true;
					break;
				}
				out = ec->held;
			}
			p->out = out;
			unsigned staged_before = st->n;
			int fcode = 0;
			const char *fmsg = NULL;
			exec_locked(c, en, &p->req, p->hash, out, st, native_log ? &p->logged : NULL,
				    &fcode, &fmsg);
			/* a new event's change (staging may have failed: oom) */
			p->item = p->logged && st->n == staged_before + 1 && st->it[staged_before].ch.created
					  ? (int)staged_before
					  : -1;
			if (fcode) { /* a refused log: the replies before it, then its error */
				reply_deferred(round, deferred, i, st);
				deferred = i + 1;
				reply_err(en, out, fcode, fmsg ? fmsg : "refused");
			}
			ec->legacy_close = p->req.legacy;
		}
		bool staged = st && st->n > 0;
		if (staged)
			stage_ticket(en, st);
		if (nr)
			evn_unlock(&en->mu);
		/* the logs' replies, formatted without the lock */
		reply_deferred(round, deferred, i, st);
		/* the lines of the changes, while the requests' bytes are still
		 * there; queued at the next lock (the next round's, or the
		 * commit's below) */
		if (staged)
			stage_format(st);
		evbuffer_drain(in, done);
		if (nr == 0)
			break; /* an incomplete request: wait for more */
	}
	bool commit = false, written = false, wait_wmu = false;
	int written_rc = 0;
	struct evn_wq q;
	if (st->ready)
		stage_wait_turn(en, st);
	evn_lock_mu(en);
	if (st->ready)
		ec->upto = stage_queue_locked(en, st);
	/* the graph's next chunk is faulted in by this worker, outside the lock */
	bool make_spare = !en->making_spare && evg_spare_wanted(&en->g);
	if (make_spare)
		en->making_spare = true;
	if (!en->making_index && evg_index_spare_wanted(&en->g) &&
	    vd_workpool_submit(en->pool, index_job, en) == 0)
		en->making_index = true; /* (the pool full: the next call retries) */
	/* eventnet_ack = queued and the text files: written in 256 KiB
	 * batches, else by the tick's flush job within the second */
	if ((!en->ack_written && en->pj.n > EVN_TEXT_BATCH) || en->pv.n + en->pe.n > EVN_TEXT_BATCH)
		kick_locked(en);
	bool may_commit = ec->held && !oom && en->ack_written && en->sync_ms > 0 && !en->slow_io &&
			  ec->outstanding == 0;
	if (may_commit && (ec->upto == 0 || en->gen_written >= ec->upto)) {
		written = true; /* another writer had them: answer at once */
		written_rc = ec->upto ? commit_result_locked(en, ec->upto) : 0;
	} else if (may_commit && evn_trylock(&en->wmu)) {
		commit = true; /* this worker writes (see the top of the file) */
		en->wmu_worker = true;
		wq_take_locked(en, &q, false);
	} else if (may_commit && en->wmu_worker) {
		/* another worker is writing (a short write(2): a third of
		 * the rounds with 16 clients on 2 workers): wait for it
		 * rather than hand the replies to the flush job's thread */
		commit = wait_wmu = true;
	} else if (ec->held && !oom) {
		/* (also when the flush job is writing: this one goes on with
		 * other connections, and the flush job answers these replies) */
		struct evn_waiter *w = calloc(1, sizeof *w);
		struct vconn_ticket *t = w ? vconn_ticket_new(c) : NULL;
		if (t) {
			w->t = t;
			w->replies = ec->held;
			ec->held = NULL;
			ec->outstanding++;
			en->handed_off++;
			ec->held_bytes += evbuffer_get_length(w->replies);
			*en->wait_tail = w;
			en->wait_tail = &w->next;
			kick_locked(en);
		} else {
			free(w);
			oom = true;
		}
	}
	evn_unlock(&en->mu);
	if (make_spare) {
		struct evg_chunk *spare = evg_chunk_new();
		evn_lock(&en->mu);
		evg_give_spare(&en->g, spare);
		en->making_spare = false;
		evn_unlock(&en->mu);
	}
	if (commit || written) {
		int rc = written_rc;
		if (wait_wmu) { /* that write may have had these lines */
			evn_lock_spin(&en->wmu, EVN_SPIN_NS);
			evn_lock_mu(en);
			if (en->gen_written >= ec->upto) {
				wait_wmu = commit = false;
				rc = commit_result_locked(en, ec->upto);
			} else {
				en->wmu_worker = true;
				wq_take_locked(en, &q, false);
			}
			evn_unlock(&en->mu);
			if (!commit)
				evn_unlock(&en->wmu);
		}
		if (commit) { /* with wmu: the group commit, then its result */
			rc = wq_write(en, &q);
			evn_lock_mu(en);
			wq_done_locked(en, &q, rc);
			en->wmu_worker = false;
			rc = commit_result_locked(en, ec->upto);
			evn_unlock(&en->mu);
			evn_unlock(&en->wmu);
		}
		if (rc) {
			evbuffer_add_printf(vconn_out(c),
					    "ERR EIO the event journal could not be written: %s\r\n",
					    strerror(-rc));
			ec->failed = true;
		} else {
			evbuffer_add_buffer(vconn_out(c), ec->held);
		}
		evbuffer_free(ec->held);
		ec->held = NULL;
		if (rc)
			return VSVC_CLOSE;
	}
	ec->upto = 0;
	/* wait (not read on) when the peer is done sending (do not close
	 * before the replies), a call-syntax client waits for its close, or
	 * enough is in flight */
	if (!oom && ec->outstanding > 0 &&
	    (eof || quit || ec->legacy_close || ec->outstanding >= EVN_MAX_OUTSTANDING ||
	     ec->held_bytes > EVN_HELD_MAX)) {
		if (quit) /* close once the replies are out: see the quit again then */
			evbuffer_prepend(in, "quit\n", 5);
		ec->waiting = true;
		return VSVC_WAIT;
	}
	if (oom) {
		evbuffer_add(vconn_out(c), "ERR ENOMEM out of memory\r\n", 26);
		return VSVC_CLOSE;
	}
	if (quit)
		return VSVC_CLOSE;
	if (evbuffer_get_length(in) > 0 && vconn_out_full(c))
		return VSVC_MORE;
	/* the notes' clients send one message and wait for the close */
	if (ec->legacy_close && evbuffer_get_length(in) == 0)
		return VSVC_CLOSE;
	return VSVC_KEEP;
}

static void evn_conn_close(struct vconn *c)
{
	struct eventnet *en = vconn_svc(c);
	struct evn_conn *ec = vconn_state(c);
	if (ec->held) {
		evbuffer_free(ec->held);
		ec->held = NULL;
	}
	if (ec->stage) {
		evn_stage_free(ec->stage);
		free(ec->stage);
		ec->stage = NULL;
	}
	if (ec->sub) {
		evn_lock(&en->mu);
		for (struct evn_sub **sp = &en->subs; *sp; sp = &(*sp)->next) {
			if (*sp == ec->sub) {
				*sp = ec->sub->next;
				break;
			}
		}
		evn_unlock(&en->mu);
		vconn_feed_release(ec->sub->feed);
		free(ec->sub);
		ec->sub = NULL;
	}
}

/* ---- the node tracing itself (eventnet_trace.h) ------------------------- */

/* The service when eventnet_trace = yes (one node per process). */
static struct eventnet *_Atomic evn_traced;

bool evn_trace_enabled(void)
{
	return atomic_load_explicit(&evn_traced, memory_order_relaxed) != NULL;
}

unsigned evn_node_id(void)
{
	struct eventnet *en = atomic_load(&evn_traced);
	return en ? en->node_id : 0;
}

int evn_node_log(const struct evg_log_in *in)
{
	struct eventnet *en = atomic_load(&evn_traced);
	if (!en)
		return -ENODEV;
	const char *why = NULL;
	struct evg_change ch;
	struct evn_stage st = {0};
	evn_lock(&en->mu);
	evn_reclaim_locked(en);
	int rc = evg_log(&en->g, in, &ch, &why);
	if (rc == 0) {
		en->traced++;
		/* written with the next batch, else by the tick's flush job:
		 * nobody waits for it */
		record_change(en, &st, &ch, in->conv.p, in->conv.n);
		stage_ticket(en, &st);
	} else {
		en->errors++;
	}
	evn_unlock(&en->mu);
	if (rc == 0)
		stage_commit(en, &st);
	evn_stage_free(&st);
	if (rc)
		log_info_every("eventnet_trace_refused id=%.*s reason=%s", (int)in->id.n, in->id.p,
			       why ? why : "?");
	return rc;
}

/* ---- life cycle --------------------------------------------------------- */

static int evn_init(const struct vd_node *node, void **out)
{
	const struct evn_settings *st = node->settings;
	struct eventnet *en = calloc(1, sizeof *en);
	if (!en)
		return -ENOMEM;
	/* held for a round of at most 64 requests: a worker that finds it
	 * taken spins a little before it sleeps (a futex sleep and wake-up
	 * cost more than the wait) */
	evn_mutex_init(&en->wmu);
	evn_mutex_init(&en->mu);
	pthread_cond_init(&en->idle, NULL);
	pthread_cond_init(&en->jturn, NULL);
	en->wait_tail = &en->wait_head;
	en->node_id = node->cfg->node_id;
	en->max_line = node->cfg->max_line;
	en->sync_ms = st->sync_ms;
	if (strcmp(st->ack, "written") == 0) {
		en->ack_written = true;
	} else if (strcmp(st->ack, "queued") != 0) {
		log_error("eventnet_ack = %s: want written or queued", st->ack);
		free(en);
		return -EINVAL;
	}
	en->pool = node->pool;
	char dir[300];
	if (st->dir[0]) { /* %n: the node id, so nodes of one host can share a config */
		size_t o = 0;
		for (const char *p = st->dir; *p && o < sizeof dir - 8; p++) {
			if (p[0] == '%' && p[1] == 'n') {
				o += (size_t)snprintf(dir + o, sizeof dir - o, "%u", en->node_id);
				p++;
			} else {
				dir[o++] = *p;
			}
		}
		dir[o] = '\0';
	} else {
		snprintf(dir, sizeof dir, "%s/node%u", EVN_DEFAULT_DIR, en->node_id);
	}
	char err[600];
	if (evg_init(&en->g, (uint16_t)en->node_id, st->max_events, st->max_bytes) != 0) {
		log_error("eventnet: out of memory");
		goto fail;
	}
	int orc = evd_open(&en->d, dir, &en->g, err, sizeof err);
	if (orc != 0) {
		/* another virgod holds the directory (most likely this one is a
		 * second instance of the same node and fails on its ports next),
		 * or it cannot be made or read: the node's other services run
		 * and its eventnet port refuses every request, saying why */
		en->off_code = orc == -2 ? "EBUSY" : "EIO";
		log_error("eventnet: %s: the eventnet port answers ERR %s", err, en->off_code);
		snprintf(en->off_why, sizeof en->off_why, "%s", err);
		*out = en;
		return 0;
	}
	en->last_sync_ms = en->last_rewrite_ms = now_ms();
	en->trace = st->trace;
	if (en->trace)
		atomic_store(&evn_traced, en);
	log_info("eventnet_ready dir=%s events=%" PRIu32 " ack=%s sync_ms=%d trace=%s", dir, en->g.n,
		 en->ack_written ? "written" : "queued", en->sync_ms, en->trace ? "yes" : "no");
	/* a journal longer than the graph's bound: only its newest events
	 * are in memory (the rest are in the files) */
	if (en->g.base)
		log_info("eventnet_replay_evicted dir=%s in_memory=%" PRIu32 " evicted=%" PRIu64
			 " max_events=%" PRIu64 " max_bytes=%" PRIu64,
			 dir, en->g.n, en->g.base, en->g.max_events, en->g.max_bytes);
	*out = en;
	return 0;
fail:
	evg_free(&en->g);
	free(en);
	return -EIO;
}

static void evn_tick(void *svc)
{
	struct eventnet *en = svc;
	if (en->off_why[0])
		return;
	evn_lock(&en->mu);
	int64_t now = now_ms();
	if (en->wait_head || en->pj.n > 0 || en->pv.n > 0 || en->pe.n > 0 ||
	    (en->vert_dirty && now - en->last_rewrite_ms >= EVN_REWRITE_MS) ||
	    (en->unsynced && now - en->last_sync_ms >= en->sync_ms))
		kick_locked(en);
	evn_unlock(&en->mu);
}

static void evn_fini(void *svc)
{
	struct eventnet *en = svc;
	struct eventnet *self = en;
	atomic_compare_exchange_strong(&evn_traced, &self, NULL);
	if (en->off_why[0]) {
		evg_free(&en->g);
		pthread_cond_destroy(&en->idle);
	pthread_cond_destroy(&en->jturn);
		pthread_mutex_destroy(&en->mu.m);
		pthread_mutex_destroy(&en->wmu.m);
		free(en);
		return;
	}
	evn_lock(&en->wmu);
	evn_lock(&en->mu);
	while (en->flushing || en->making_index) { /* the flush job takes wmu: let it */
		evn_unlock(&en->wmu);
		pthread_cond_wait(&en->idle, &en->mu.m);
		evn_unlock(&en->mu);
		evn_lock(&en->wmu);
		evn_lock(&en->mu);
	}
	/* what is still pending is written and synced here */
	evd_append(&en->d, &en->pj, &en->pv, &en->pe);
	if (en->vert_dirty) {
		struct evd_buf vt = {0};
		struct evg_gone *gone;
		size_t ngone;
		evd_vertices_text(&vt, &en->g);
		evg_take_gone(&en->g, &gone, &ngone);
		if (!vt.oom)
			evd_replace_vertices(&en->d, en->g.base, gone, ngone, vt.p, vt.n);
		evd_buf_free(&vt);
		evn_gone_free(gone, ngone);
	}
	evd_sync(&en->d);
	struct evn_waiter *w = en->wait_head;
	en->wait_head = NULL;
	evn_unlock(&en->mu);
	evn_unlock(&en->wmu);
	post_waiters(w, 0);
	evd_close(&en->d);
	evg_free(&en->g);
	struct evd_buf *bufs[] = {&en->pj, &en->pv, &en->pe, &en->fj, &en->fv, &en->fe};
	for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++)
		evd_buf_free(bufs[i]);
	pthread_cond_destroy(&en->idle);
	pthread_cond_destroy(&en->jturn);
	pthread_mutex_destroy(&en->mu.m);
	pthread_mutex_destroy(&en->wmu.m);
	free(en);
}

static void evn_needs(const struct vd_config *cfg, const void *settings, struct vsvc_needs *out)
{
	(void)cfg;
	(void)settings;
	out->fds += 6; /* the journal, the two text files, the lock, the directory, a temp */
}

const struct vsvc eventnet_service = {
	.name = "eventnet",
	.base_port = 20000,
	.conn_size = sizeof(struct evn_conn),
	/* between requests nothing ties a connection to its loop (one with a
	 * ticket or a feed is never moved: server.c) */
	.movable = true,
	.keys = evn_settings_keys,
	.settings_size = sizeof(struct evn_settings),
	.settings_defaults = evn_settings_defaults,
	.needs = evn_needs,
	.init = evn_init,
	.fini = evn_fini,
	.on_input = evn_on_input,
	.conn_close = evn_conn_close,
	.tick = evn_tick,
};
