/*
 * test_queue_commit.c - the queue's group-commit writers without a
 * connection (queue_commit.c, driven with batches the writer answers by
 * callback, as the node's own handler's are): with two rounds' writes in
 * flight and the later one durable first, the later round is not
 * answered until the earlier one is, and answers go out in log order;
 * and when the earlier round's write fails, the later round fails too
 * although its own write succeeded, as does every push after it.
 * Gathering: closed-loop producers (each pushes again once answered, as
 * a connection with one push outstanding does) share one round even when
 * one of them comes back later than the others, the round starts without
 * a producer that stays away longer than the window, and a lone producer
 * never waits.
 */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "../../src/common/abstime.h"
#include "../../src/daemon/log.h"
#include "../../src/services/queue/queue_int.h"
#include "../harness.h"

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static bool staged1, release1, fail1, written2;
static int ndone;
static struct {
	int tag, err;
	uint64_t off;
} done[8];

static int hook(uint64_t seq, bool written)
{
	pthread_mutex_lock(&mu);
	int rc = 0;
	if (!written && seq == 1) {
		staged1 = true;
		pthread_cond_broadcast(&cv);
		while (!release1)
			pthread_cond_wait(&cv, &mu);
		rc = fail1;
	} else if (written && seq == 2) {
		written2 = true;
		pthread_cond_broadcast(&cv);
	}
	pthread_mutex_unlock(&mu);
	return rc;
}

static void answered(struct q_batch *b)
{
	pthread_mutex_lock(&mu);
	if (ndone < 8)
		done[ndone++] = (typeof(done[0])){(int)(intptr_t)b->direct_arg, b->recs[0].err,
						  b->recs[0].off};
	pthread_cond_broadcast(&cv);
	pthread_mutex_unlock(&mu);
	qc_batch_free(b);
}

/* A batch of one 128-byte record of topic, filled with fill, answered
 * by calling fn with it (arg in direct_arg). */
static struct q_batch *one_record(const char *topic, int fill, void (*fn)(struct q_batch *),
				  intptr_t arg)
{
	struct q_batch *b = calloc(1, sizeof *b);
	assert_non_null(b);
	b->recs = calloc(1, sizeof *b->recs);
	assert_non_null(b->recs);
	b->n = b->cap = 1;
	snprintf(b->recs[0].topic, sizeof b->recs[0].topic, "%s", topic);
	b->recs[0].data = malloc(128);
	assert_non_null(b->recs[0].data);
	memset(b->recs[0].data, fill, 128);
	b->recs[0].len = 128;
	b->bytes = 128;
	snprintf(b->peer, sizeof b->peer, "127.0.0.1");
	b->direct = fn;
	b->direct_arg = (void *)arg;
	return b;
}

static void push(struct queue *q, int tag)
{
	qc_submit(q, one_record("t", tag, answered, tag));
}

/* Waits (5 s at most) until *flag, or ndone reaches n when flag is NULL. */
static void wait_for(bool *flag, int n)
{
	struct timespec ts;
	abstime_after_ms(CLOCK_REALTIME, 5000, &ts);
	pthread_mutex_lock(&mu);
	int rc = 0;
	while (rc == 0 && (flag ? !*flag : ndone < n))
		rc = pthread_cond_timedwait(&cv, &mu, &ts);
	pthread_mutex_unlock(&mu);
	assert_int_equal(rc, 0);
}

static struct queue *start(const char *name)
{
	struct queue *q = calloc(1, sizeof *q);
	assert_non_null(q);
	snprintf(q->set.dir, sizeof q->set.dir, "%s/%s", th_tmpdir(), name);
	snprintf(q->set.fsync, sizeof q->set.fsync, "always");
	q->set.segment_bytes = UINT64_C(1) << 20;
	q->set.max_record = 4096;
	q->set.max_topics = 4;
	q->lockfd = -1;
	q->state = Q_LAZY; /* the first push creates the directory */
	pthread_mutex_init(&q->tmu, NULL);
	pthread_mutex_init(&q->wmu, NULL);
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&q->wcond, &ca);
	pthread_condattr_destroy(&ca);
	q->topics = calloc(4, sizeof *q->topics);
	assert_non_null(q->topics);
	staged1 = release1 = fail1 = written2 = false;
	ndone = 0;
	qc_test_hook = hook;
	assert_int_equal(qc_start(q), 0);
	return q;
}

static void stop(struct queue *q)
{
	qc_stop(q);
	qc_test_hook = NULL;
	qt_free_all(q);
	pthread_cond_destroy(&q->wcond);
	pthread_mutex_destroy(&q->tmu);
	pthread_mutex_destroy(&q->wmu);
	free(q);
}

/* Holds round 1's write until round 2's is done (round 2 is then not
 * answered: it waits for round 1); returns with mu held. */
static void round2_written_first(struct queue *q)
{
	push(q, 1);
	wait_for(&staged1, 0);
	push(q, 2);
	wait_for(&written2, 0);
	pthread_mutex_lock(&mu);
	assert_int_equal(ndone, 0);
}

/* Round 2's write is done while round 1's is held: round 2 is not
 * answered until round 1 is, then both in log order. */
static void acks_in_log_order(void **state)
{
	(void)state;
	struct queue *q = start("q1");
	round2_written_first(q);
	release1 = true;
	pthread_cond_broadcast(&cv);
	pthread_mutex_unlock(&mu);
	wait_for(NULL, 2);
	assert_int_equal(done[0].tag, 1);
	assert_int_equal(done[0].err, 0);
	assert_int_equal(done[0].off, 0);
	assert_int_equal(done[1].tag, 2);
	assert_int_equal(done[1].err, 0);
	assert_int_equal(done[1].off, 1);
	stop(q);
}

/* Round 1's write fails after round 2's succeeded: both fail, in order,
 * and the topic refuses what comes after. */
static void failed_write_fails_later_rounds(void **state)
{
	(void)state;
	struct queue *q = start("q2");
	round2_written_first(q);
	fail1 = release1 = true;
	pthread_cond_broadcast(&cv);
	pthread_mutex_unlock(&mu);
	wait_for(NULL, 2);
	assert_int_equal(done[0].tag, 1);
	assert_true(done[0].err != 0);
	assert_int_equal(done[1].tag, 2);
	assert_int_equal(done[1].err, EIO);
	push(q, 3);
	wait_for(NULL, 3);
	assert_int_equal(done[2].tag, 3);
	assert_int_equal(done[2].err, EIO);
	stop(q);
}

/* ---- gathering --------------------------------------------------------
 * Producer p pushes gpushes records, each once the previous one is
 * answered: at once from the writer's answer, or after glate_ms from
 * another thread for producer glate (as a slower client would). */
#define GP_MAX 4
#define GPUSH_MAX 40
static struct queue *gq;
static int gpushes, glate = -1, glate_ms, gdone;
static struct {
	uint64_t gen;
	int64_t at_us;
	int err;
} gans[GP_MAX][GPUSH_MAX];
static int gn[GP_MAX];
static bool glate_due, glate_stop;
static uint64_t glate_gen;

static int64_t mono_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static void gpush(int p, uint64_t from_gen);

static void ganswered(struct q_batch *b)
{
	int p = (int)(intptr_t)b->direct_arg;
	uint64_t gen = b->ack_gen;
	int err = b->recs[0].err;
	qc_batch_free(b);
	pthread_mutex_lock(&mu);
	int k = gn[p]++;
	gans[p][k].gen = gen;
	gans[p][k].err = err; /* checked by the test's thread (gstart) */
	gans[p][k].at_us = mono_us();
	bool again = gn[p] < gpushes;
	if (!again)
		gdone++;
	bool late = again && p == glate;
	if (late) {
		glate_due = true;
		glate_gen = gen;
	}
	pthread_cond_broadcast(&cv);
	pthread_mutex_unlock(&mu);
	if (again && !late)
		gpush(p, gen);
}

static void gpush(int p, uint64_t from_gen)
{
	struct q_batch *b = one_record("g", 'a' + p, ganswered, p);
	b->from_gen = from_gen;
	b->fast = true; /* as a connection that came back at once */
	qc_submit(gq, b);
}

/* The late producer's pushes, each glate_ms after its answer. */
static void *glate_main(void *arg)
{
	(void)arg;
	pthread_mutex_lock(&mu);
	for (;;) {
		while (!glate_due && !glate_stop)
			pthread_cond_wait(&cv, &mu);
		if (glate_stop)
			break;
		glate_due = false;
		uint64_t gen = glate_gen;
		pthread_mutex_unlock(&mu);
		struct timespec d = {glate_ms / 1000, (long)(glate_ms % 1000) * 1000000};
		nanosleep(&d, NULL);
		gpush(glate, gen);
		pthread_mutex_lock(&mu);
	}
	pthread_mutex_unlock(&mu);
	return NULL;
}

/* A queue whose writers gather for up to gather_ms, with estimates that
 * make the whole of it the window (a sync on the test's file system
 * takes microseconds, which would make the window as short). */
static struct queue *gstart(const char *name, int gather_ms, int np, int pushes, int late,
			    int late_ms, pthread_t *th)
{
	struct queue *q = start(name);
	qc_test_hook = NULL;
	pthread_mutex_lock(&q->wmu);
	q->set.gather_us = gather_ms * 1000;
	q->g_gap_ns = q->g_sync_ns = UINT64_C(1) << 40;
	pthread_mutex_unlock(&q->wmu);
	gq = q;
	gpushes = pushes;
	glate = late;
	glate_ms = late_ms;
	gdone = 0;
	glate_due = glate_stop = false;
	memset(gn, 0, sizeof gn);
	assert_int_equal(pthread_create(th, NULL, glate_main, NULL), 0);
	/* the first round: one push each, in one go (none is expected yet) */
	struct timespec ts;
	abstime_after_ms(CLOCK_REALTIME, 5000, &ts);
	for (int p = 0; p < np; p++)
		gpush(p, 0);
	pthread_mutex_lock(&mu);
	int rc = 0;
	while (rc == 0 && gdone < np)
		rc = pthread_cond_timedwait(&cv, &mu, &ts);
	glate_stop = true;
	pthread_cond_broadcast(&cv);
	pthread_mutex_unlock(&mu);
	assert_int_equal(rc, 0);
	pthread_join(*th, NULL);
	for (int p = 0; p < np; p++) {
		assert_int_equal(gn[p], pushes);
		for (int k = 0; k < pushes; k++)
			assert_int_equal(gans[p][k].err, 0);
	}
	return q;
}

/* Did another producer's push share the round that answered push k of p? */
static bool shared_round(int np, int p, int k)
{
	for (int o = 0; o < np; o++)
		for (int j = 0; o != p && j < gn[o]; j++)
			if (gans[o][j].gen == gans[p][k].gen)
				return true;
	return false;
}

/* Producer 3 comes back 30 ms after each answer, the others at once: the
 * round after waits for it (the window is 2 s), so its pushes share
 * rounds with the others' instead of each making a round of its own.
 * (When the first pushes did not all make the first round, producer 3
 * is one round behind, and its last push comes after the others are
 * done: at most that one is alone.) */
static void gathered_round_waits_for_a_late_producer(void **state)
{
	(void)state;
	pthread_t th;
	struct queue *q = gstart("g1", 2000, 4, 6, 3, 30, &th);
	int alone = 0;
	for (int k = 1; k < 6; k++)
		alone += !shared_round(4, 3, k);
	assert_true(alone <= 1);
	stop(q);
}

/* Producer 3 stays away 600 ms, past the 100 ms window: the others'
 * rounds do not wait for it beyond the window. */
static void gathered_round_starts_at_the_window(void **state)
{
	(void)state;
	pthread_t th;
	struct queue *q = gstart("g2", 100, 4, 3, 3, 600, &th);
	for (int p = 0; p < 3; p++)
		for (int k = 1; k < 3; k++)
			assert_true(gans[p][k].at_us - gans[p][k - 1].at_us < 500000);
	assert_false(shared_round(4, 3, 1));
	stop(q);
}

/* One producer alone never waits: 20 pushes in far less than one 500 ms
 * window each. */
static void lone_producer_never_waits(void **state)
{
	(void)state;
	pthread_t th;
	int64_t t0 = mono_us();
	struct queue *q = gstart("g3", 500, 1, 20, -1, 0, &th);
	assert_true(mono_us() - t0 < 400000);
	stop(q);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(acks_in_log_order),
		cmocka_unit_test(failed_write_fails_later_rounds),
		cmocka_unit_test(gathered_round_waits_for_a_late_producer),
		cmocka_unit_test(gathered_round_starts_at_the_window),
		cmocka_unit_test(lone_producer_never_waits),
	};
	vlog_set_level(VLOG_ERROR); /* the failure it logs is expected */
	return cmocka_run_group_tests(tests, NULL, NULL);
}
