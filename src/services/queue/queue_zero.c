/*
 * queue_zero.c - the zero-fill-ahead thread (queue_int.h): keeps the
 * active segment of every topic preallocated ahead of the writer, so no
 * commit round pays for writing (and syncing) the next chunk of zeros.
 *
 * After a round the writer asks each topic it wrote whether its zeros run
 * short (ql_wants_zeros) and queues those here; this thread writes and
 * fdatasync()s the next chunk of each (ql_zero_ahead) while the writer
 * goes on committing with writes that sync only their own bytes
 * (ql_flush_sync).  queue_log.c keeps the two apart: they never write the
 * same bytes, and a segment is rolled only once the zeros being written
 * into it are done.  Zeros are never records: recovery stops at them
 * (queue_log.c), so a node killed or powered off with zeros ahead of its
 * records serves exactly the records it acknowledged.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "../../daemon/log.h"
#include "queue_int.h"

void qz_want(struct queue *q, struct ql_topic *t)
{
	if (!q->zeroer_started)
		return;
	pthread_mutex_lock(&q->zmu);
	bool queued = false;
	for (int i = 0; i < q->nzwant; i++)
		queued |= q->zwant[i] == t;
	if (!queued && q->nzwant < q->set.max_topics) {
		q->zwant[q->nzwant++] = t;
		pthread_cond_signal(&q->zcond);
	}
	pthread_mutex_unlock(&q->zmu);
}

static void *zero_main(void *arg)
{
	struct queue *q = arg;
	pthread_mutex_lock(&q->zmu);
	for (;;) {
		while (!q->nzwant && !q->zstop)
			pthread_cond_wait(&q->zcond, &q->zmu);
		if (q->zstop)
			break;
		struct ql_topic *t = q->zwant[0];
		memmove(q->zwant, q->zwant + 1, (size_t)--q->nzwant * sizeof *q->zwant);
		pthread_mutex_unlock(&q->zmu);
		int rc = ql_zero_ahead(t);
		if (rc) {
			static struct vlog_rl rl;
			vlog_limited(&rl, VLOG_WARN,
				     "queue_zero_ahead topic=%s error=%s (records are appended instead)",
				     ql_name(t), strerror(-rc));
		}
		pthread_mutex_lock(&q->zmu);
	}
	pthread_mutex_unlock(&q->zmu);
	return NULL;
}

int qz_start(struct queue *q)
{
	q->zwant = calloc((size_t)q->set.max_topics, sizeof *q->zwant);
	if (!q->zwant)
		return -ENOMEM;
	return q_thread_start(q, &q->zeroer, &q->zeroer_started, zero_main, "queue/zero");
}

void qz_stop(struct queue *q)
{
	if (q->zeroer_started) {
		pthread_mutex_lock(&q->zmu);
		q->zstop = true;
		pthread_cond_signal(&q->zcond);
		pthread_mutex_unlock(&q->zmu);
		pthread_join(q->zeroer, NULL);
		q->zeroer_started = false;
	}
	free(q->zwant);
	q->zwant = NULL;
}
