/*
 * test_queue_commit.c - the queue's group-commit writers without a
 * connection (queue_commit.c, driven with batches the writer answers by
 * callback, as the node's own handler's are): with two rounds' writes in
 * flight and the later one durable first, the later round is not
 * answered until the earlier one is, and answers go out in log order;
 * and when the earlier round's write fails, the later round fails too
 * although its own write succeeded, as does every push after it.
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

static void push(struct queue *q, int tag)
{
	struct q_batch *b = calloc(1, sizeof *b);
	assert_non_null(b);
	b->recs = calloc(1, sizeof *b->recs);
	assert_non_null(b->recs);
	b->n = b->cap = 1;
	snprintf(b->recs[0].topic, sizeof b->recs[0].topic, "t");
	b->recs[0].data = malloc(128);
	assert_non_null(b->recs[0].data);
	memset(b->recs[0].data, tag, 128);
	b->recs[0].len = 128;
	snprintf(b->peer, sizeof b->peer, "127.0.0.1");
	b->direct = answered;
	b->direct_arg = (void *)(intptr_t)tag;
	qc_submit(q, b);
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

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(acks_in_log_order),
		cmocka_unit_test(failed_write_fails_later_rounds),
	};
	vlog_set_level(VLOG_ERROR); /* the failure it logs is expected */
	return cmocka_run_group_tests(tests, NULL, NULL);
}
