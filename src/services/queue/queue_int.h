/*
 * queue_int.h - the queue service's shared state, between its modules:
 * queue.c (connections), queue_topics.c (the topic table),
 * queue_commit.c (the group-commit writer thread) and queue_deliver.c
 * (the delivery thread: subscribers and consumer groups) and
 * queue_zero.c (the thread that zero-fills segments ahead of the writer).
 *
 * Threads: the service's event loops parse requests; the writer threads
 * (one under fsync interval, two under always: queue_commit.c) append,
 * sync and acknowledge pushes (tickets); one delivery thread
 * pushes records to subscribers and group members (feeds).  Locks, never
 * nested except as listed: q->tmu (the topic table) may be taken under
 * q->dmu (delivery state); a topic's own mutex (queue_log.c) under both.
 */
#ifndef VIRGO_QUEUE_INT_H
#define VIRGO_QUEUE_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "../../daemon/service.h"
#include "../cpupool_plugin.h"
#include "queue_log.h"
#include "queue_proto.h"
#include "queue_settings.h"

struct q_sub;
struct q_group;
struct q_gowner;

struct queue {
	struct q_settings set;
	int interval_ms; /* 0: fsync always (group commit) */
	unsigned node_id;
	size_t max_line; /* the node's */
	struct vd_workpool *pool;
	/* Q_READY; Q_LAZY: queue_dir does not exist yet, the writer creates
	 * it on the first push; Q_DISABLED: it cannot be used (why) */
	_Atomic int state;
	char why[200]; /* written before state becomes Q_DISABLED */
	int lockfd; /* flock on <dir>/LOCK */

	/* the topic table (queue_topics.c) */
	pthread_mutex_t tmu;
	struct ql_topic **topics;
	int ntopics;

	/* the writer (queue_commit.c) */
	pthread_mutex_t wmu;
	pthread_cond_t wcond;
	struct q_batch *whead, *wtail;
	bool wstop;
	pthread_t writer, writer2;
	bool writer_started, writer2_started;
	/* fsync always: two writer threads, so that two rounds' writes can
	 * be in flight at once (queue_commit.c): pmu orders the rounds'
	 * appends, omu/ocond their completions (done_seq) */
	pthread_mutex_t pmu, omu;
	pthread_cond_t ocond;
	uint64_t stage_seq, done_seq, next_retain; /* next_retain: under wmu */
	/* each always-writer waits on its own condition when idle (under
	 * wmu): a submit wakes one idle writer, and none while one it woke
	 * has not yet taken the queue (wsignalled), so the second writer
	 * runs only when batches arrive while the first is syncing */
	pthread_cond_t wcv[2];
	bool widle[2], wsignalled;
	int wstarted; /* writers started so far: each one's index */
	/* a lone producer's round run by its event loop (queue_commit.c):
	 * rounds in a row that held one batch, the round's state, and
	 * whether a loop is running it (under wmu) */
	_Atomic int lone_rounds;
	struct qc_round *iround;
	bool inline_busy;
	/* gathering (queue_commit.c): the producers a round just
	 * acknowledged are expected back; a writer that finds batches
	 * queued waits for them, up to g_deadline, so that one round
	 * carries them all (under wmu, except g_fast_ns, which the loops
	 * read) */
	uint64_t g_gen; /* the round whose producers are expected (numbered from 1) */
	int g_expected, g_arrived;
	uint64_t g_t0, g_deadline; /* ns (CLOCK_MONOTONIC) */
	uint64_t g_gap_ns; /* moving estimate: acks posted -> all back */
	uint64_t g_sync_ns; /* moving estimate: a round's write + sync */
	_Atomic uint64_t g_fast_ns; /* a connection back within this is expected */
	int g_waiting; /* the writer waiting for them (-1: none) */
	int g_inflight_fast; /* batches of expected producers in rounds in flight */
	int g_rounds_inflight; /* rounds taken and not yet finished */
	bool g_signalled;
	uint64_t lamport; /* the node's Lamport clock (writer thread) */
	uint64_t syncs, appended; /* counters (stat) */

	/* zero-fill ahead (queue_zero.c): topics whose zeros run short */
	pthread_mutex_t zmu;
	pthread_cond_t zcond;
	struct ql_topic **zwant; /* max_topics of them */
	int nzwant;
	bool zstop, zeroer_started;
	pthread_t zeroer;

	/* delivery (queue_deliver.c) */
	pthread_mutex_t dmu;
	pthread_cond_t dcond;
	struct q_sub *subs;
	struct q_group *groups;
	bool dstop, dwake;
	_Atomic int consumers; /* subscribers + members: wake the thread only then */
	/* consumer groups' owners (queue_owner.c), under dmu */
	struct q_gowner *gowners;
	int ngowners, cap_gowners;
	pthread_t deliverer;
	bool deliverer_started;

	/* the node's KingCobra handler (queue_handler.c) */
	pthread_mutex_t hmu;
	pthread_cond_t hcond;
	bool hstop, hstarted;
	pthread_t handler;
	struct cp_plugins *hplugins; /* queue_handler = plugin <lib> <fn> */
	virgo_fn hfn;
};

enum { Q_READY = 0, Q_LAZY, Q_DISABLED };

/* ---- topics (queue_topics.c) -------------------------------------------- */
/* Creates queue_dir when create (mkdir -p), locks it (one node per
 * directory) and opens its topics.  Sets q->state (and q->why). */
void qt_open_dir(struct queue *q, bool create);
/* Opens every topic found in the queue directory (recovery). */
int qt_load_all(struct queue *q);
/* The topic, or NULL.  Topics live until qt_free_all. */
struct ql_topic *qt_find(struct queue *q, const char *name);
/* Writer thread: the topic, created when absent; NULL with *err. */
struct ql_topic *qt_get_or_create(struct queue *q, const char *name, int *err);
void qt_free_all(struct queue *q);

/* ---- the writer (queue_commit.c) --------------------------------------- */
struct q_rec {
	char topic[QP_NAME_MAX + 1];
	uint8_t *data; /* owned by the batch */
	size_t len;
	bool has_ts;
	uint64_t ts;
	int err; /* 0, or a positive errno for the reply (also parse errors) */
	const char *msg; /* static text of a parse error (err set, data NULL) */
	uint64_t off, lamport; /* results */
};

struct q_batch {
	struct q_batch *next;
	struct vconn_ticket *ticket;
	char peer[QL_PEER_MAX + 1];
	uint64_t bytes;
	int n, cap;
	bool legacy; /* the telnet path: close once answered */
	struct q_rec *recs;
	/* queue_route: another service's connection waits for this one */
	void (*route_fn)(struct vconn *c, void *arg, int err, const char *topic, uint64_t off);
	void *route_arg;
	/* no connection: the writer calls this instead of posting a ticket
	 * (on the writer thread; it owns b from then on) */
	void (*direct)(struct q_batch *b);
	void *direct_arg;
	/* gathering (queue_commit.c): the round whose acknowledgement this
	 * connection answers with this batch (0: none), and whether it came
	 * back quickly (within g_fast_ns), so that its next push is expected
	 * after this batch's acknowledgement (queue.c sets both; a batch
	 * without a connection is expected only if its submitter says so);
	 * ack_gen is the round that acknowledges this batch (q_batch_done
	 * keeps it on the connection) */
	uint64_t from_gen, ack_gen;
	bool fast;
};

int qc_start(struct queue *q);
/* Any thread: queues b for the writer, which posts b->ticket with
 * qc_done_fn once every record is durable (or failed). */
void qc_submit(struct queue *q, struct q_batch *b);
/* The same from the event loop of base (a connection's input): the
 * writer is woken once that pass of the loop is over, with the batches of
 * every connection the pass found readable (one group, one sync). */
struct event_base;
void qc_submit_loop(struct queue *q, struct q_batch *b, struct event_base *base);
void qc_stop(struct queue *q); /* drains what was submitted, then joins */
/* Tests only (tests/unit/test_queue_commit.c; NULL otherwise): under
 * fsync always, called by a writer thread before (written false) and
 * after (true) it writes round seq (numbered in log order from 1); a
 * nonzero return before makes the round's writes fail as a failing
 * disk's would. */
extern int (*qc_test_hook)(uint64_t seq, bool written);
void qc_batch_free(struct q_batch *b);
/* CLOCK_MONOTONIC in ns (gathering's clock). */
uint64_t qc_now_ns(void);
/* The completion the writer posts (queue.c): writes the replies. */
void q_batch_done(struct vconn *c, void *arg);

/* Starts fn(q) on *th, named name (queue.c), and sets *started: 0 or
 * -errno.  For the service's own threads (writers, zero-fill, deliverer). */
int q_thread_start(struct queue *q, pthread_t *th, bool *started, void *(*fn)(void *),
		   const char *name);

/* ---- zero-fill ahead (queue_zero.c) ----------------------------------- */
int qz_start(struct queue *q); /* 0 or -errno */
void qz_stop(struct queue *q); /* after the writer */
/* Writer thread: t's zeros run short (ql_wants_zeros); ignored when the
 * thread is not running (the writer then appends past the zeros). */
void qz_want(struct queue *q, struct ql_topic *t);

/* ---- the node's KingCobra handler (queue_handler.c) ------------------- */
/* Starts the handler thread when queue_handler is set.  0 or -errno. */
int qh_start(struct queue *q);
void qh_stop(struct queue *q);
/* New records were published (writer thread). */
void qh_wake(struct queue *q);

/* ---- consumer groups' owners (queue_owner.c) --------------------------- */
/* Start-up, before the delivery thread: the owners in the group files of
 * every open topic. */
void qo_load(struct queue *q);
void qo_free(struct queue *q);
/* Under dmu: may ident join topic/group (admin: it is in
 * queue_group_admins, and may join any)?  0 (a new group is claimed for
 * ident unless ident is 0; *is_shared: anyone may join it; *changed: the
 * owner line must be written), -EACCES, or -ENOSPC (too many owned
 * groups). */
int qo_claim(struct queue *q, const char *topic, const char *group, uint64_t ident, bool shared,
	     bool admin, bool *is_shared, bool *changed);
/* Under dmu: the owner of topic/group (0: none). */
uint64_t qo_owner(struct queue *q, const char *topic, const char *group);
/* The group file's owner line: "owner <16 hex> shared|private\n" into buf
 * (snprintf's result), and its parser (0, or -1 for anything else). */
int qo_format(char *buf, size_t cap, uint64_t ident, bool shared);
int qo_parse(const char *line, size_t len, uint64_t *ident, bool *shared);

/* ---- delivery (queue_deliver.c) ---------------------------------------- */
int qd_start(struct queue *q);
void qd_stop(struct queue *q);
/* Wake the delivery thread (new records, acks, members). */
void qd_wake(struct queue *q);
/* The writer's wake: only when someone consumes (saves a thread wake-up
 * per commit round on a node nobody subscribes to). */
void qd_wake_if_consumers(struct queue *q);
/* Loop thread of c: subscribes c to topic from `from` (from_end: the
 * current end); *out is the handle for qd_sub_close.  0 or -errno. */
int qd_sub_open(struct queue *q, struct vconn *c, const char *topic, bool from_end,
		uint64_t from, uint64_t *first, struct q_sub **out);
void qd_sub_close(struct queue *q, struct q_sub *s);
/* Loop thread of c: c, of identity ident, joins group of topic (creating
 * it, owned by ident, shared or not; admin: may join any group).  0 or
 * -errno (-EACCES: another identity's group, queue_owner.c). */
int qd_join(struct queue *q, struct vconn *c, const char *topic, const char *group,
	    int max_inflight, uint64_t ident, bool shared, bool admin, struct q_sub **out);
/* A member acks offset: 0, or -ENOENT (not in flight for it). */
int qd_ack(struct queue *q, struct q_sub *member, uint64_t offset);
/* Counters for stat: subscribers and groups of topic. */
void qd_topic_counts(struct queue *q, const char *topic, int *subs, int *groups,
		     uint64_t *redelivered);
/* stat: each group's committed offset, as "STAT group <name> <committed>
 * <inflight> <members>" lines appended to out. */
struct evbuffer;
void qd_group_lines(struct queue *q, const char *topic, struct evbuffer *out);
/* Formats one record as a MSG line + payload + CRLF into out (cap bytes,
 * at least len + 256).  Returns the length. */
size_t qd_format_msg(char *out, size_t cap, const char *topic, const struct ql_record *r);

#endif
