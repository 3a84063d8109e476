/*
 * eventnet.c - virgo_eventnet_log(): the notes' utils driver export
 * (§994 item 6), non-blocking and batched.
 *
 * A call checks its arguments, appends one record to a queue under a
 * mutex and returns; one library thread takes everything queued, sends
 * it as one pipelined write of `log` lines to this process's home node
 * (pid modulo the node count; the next node when it is down) and reads
 * the replies.  So a caller pays a lock and a copy per event, and the
 * node sees large batches.  An event naming a cause recorded on another
 * node is refused by the home node (ENOENT: it cannot order it); the
 * thread then fetches the causes' clocks from the cluster and re-sends
 * that event with clock= and lamport=, so causality crosses nodes.
 * virgo_eventnet_flush() waits for the acknowledgements and reports the
 * first error since the previous flush.
 */
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "../common/evclock.h"
#include "client.h"
#include "eventnet_int.h"

#define VEN_QUEUE_BYTES (16u << 20) /* queued and not yet sent */
#define VEN_CONV_MAX (60 * 1024)
#define VEN_TIMEOUT_MS 10000

struct ven_buf {
	char *p;
	size_t n, cap;
	uint64_t recs;
};

static struct {
	pthread_mutex_t mu;
	pthread_cond_t work, done_cv;
	bool started, stop;
	pthread_t th;
	struct ven_buf q; /* records: "log <id>[ partakers=..][ after=..]\x01<conv>\n" */
	uint64_t queued, done;
	int first_err;
	char detail[512];
} L = {.mu = PTHREAD_MUTEX_INITIALIZER, .work = PTHREAD_COND_INITIALIZER, .done_cv = PTHREAD_COND_INITIALIZER};

/* The logger thread's own state. */
static struct ven_conn *lk; /* the home node's connection (malloc'd; NULL until needed) */
static int lk_idx = -1;
static struct evc lclock; /* merge of every clock the nodes sent back */

static bool id_ok(const char *s)
{
	size_t n = strlen(s);
	if (n == 0 || n > 128 || (n == 1 && s[0] == '-'))
		return false;
	for (size_t i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)s[i];
		if (ch <= 0x20 || ch >= 0x7f || ch == '#' || ch == ',' || ch == '@')
			return false;
	}
	return true;
}

static bool after_ok(const char *s)
{
	char id[130];
	int k = 0;
	for (const char *p = s;; k++) {
		const char *c = strchr(p, ',');
		size_t n = c ? (size_t)(c - p) : strlen(p);
		if (n >= sizeof id || k == 16)
			return false;
		memcpy(id, p, n);
		id[n] = '\0';
		if (!id_ok(id))
			return false;
		if (!c)
			return true;
		p = c + 1;
	}
}

static int buf_add(struct ven_buf *b, const char *s, size_t n)
{
	if (b->n + n > b->cap) {
		size_t cap = b->cap ? b->cap * 2 : 65536;
		while (cap < b->n + n)
			cap *= 2;
		char *p = realloc(b->p, cap);
		if (!p)
			return -ENOMEM;
		b->p = p;
		b->cap = cap;
	}
	memcpy(b->p + b->n, s, n);
	b->n += n;
	return 0;
}

static void set_err(int rc, const char *detail)
{
	pthread_mutex_lock(&L.mu);
	if (!L.first_err) {
		L.first_err = rc;
		snprintf(L.detail, sizeof L.detail, "%s", detail ? detail : "");
	}
	pthread_mutex_unlock(&L.mu);
}

/* Connects the logger to its home node (or the next one up). */
static int home_open(void)
{
	if (lk && lk->fd >= 0)
		return 0;
	if (!lk && !(lk = malloc(sizeof *lk)))
		return -ENOMEM;
	lk->fd = -1;
	int n = virgo_node_count();
	if (n <= 0)
		return n < 0 ? n : -VIRGO_ENONODE;
	int start = lk_idx >= 0 ? lk_idx : (int)(getpid() % n), rc = -VIRGO_ENONODE;
	for (int k = 0; k < n; k++) {
		int idx = (start + k) % n;
		rc = ven_open(idx, VEN_TIMEOUT_MS, lk);
		if (rc == 0) {
			lk_idx = idx;
			return 0;
		}
	}
	return rc;
}

static unsigned home_node_id(void)
{
	struct virgo_node_info ni = {0};
	virgo_node_info(lk_idx, &ni);
	return ni.id;
}

/* "OK <id> <node> <seq> <lamport> <vc>": merges the clock. */
static void merge_ok(const char *line)
{
	const char *vc = line;
	for (int k = 0; k < 5 && vc; k++) {
		vc = strchr(vc, ' ');
		if (vc)
			vc++;
	}
	struct evc v;
	if (vc && evc_parse(&v, vc, strlen(vc)) == 0)
		evc_merge(&lclock, &v);
}

/* The clock and Lamport time covering every cause in the csv after
 * (fetched from whichever node recorded each).  0 or -errno. */
static int causes_clock(const char *after, size_t n, struct evc *vc, uint64_t *lam)
{
	*vc = lclock;
	*lam = 0;
	char id[130];
	for (size_t i = 0; i < n;) {
		size_t j = i;
		while (j < n && after[j] != ',')
			j++;
		if (j - i >= sizeof id)
			return -EINVAL;
		memcpy(id, after + i, j - i);
		id[j - i] = '\0';
		struct virgo_event *ev;
		int rc = virgo_eventnet_get(id, &ev);
		if (rc)
			return rc;
		struct evc v;
		if (evc_parse(&v, ev->clock, strlen(ev->clock)) == 0)
			evc_merge(vc, &v);
		if (ev->lamport > *lam)
			*lam = ev->lamport;
		virgo_events_free(ev, 1);
		i = j + 1;
	}
	return 0;
}

/* Appends the wire line of record r (head \x01 conv) to out, with a clock. */
static int wire(struct ven_buf *out, const char *r, size_t rn, const struct evc *vc, uint64_t lam)
{
	const char *sep = memchr(r, '\x01', rn);
	size_t hn = (size_t)(sep - r);
	int rc = buf_add(out, r, hn);
	if (rc == 0 && vc) {
		char t[EVC_TEXT_MAX + 64];
		size_t tn = (size_t)sprintf(t, " clock=");
		tn += evc_format(vc, t + tn);
		tn += (size_t)sprintf(t + tn, " lamport=%llu", (unsigned long long)lam);
		rc = buf_add(out, t, tn);
	}
	if (rc == 0 && rn > hn + 1) {
		rc = buf_add(out, " conv=", 6);
		if (rc == 0)
			rc = buf_add(out, sep + 1, rn - hn - 1);
	}
	return rc ? rc : buf_add(out, "\n", 1);
}

/* Re-sends the record whose causes live on other nodes, with their clock. */
static void resend_with_clock(const char *r, size_t rn)
{
	const char *a = memmem(r, rn, " after=", 7);
	const char *sep = memchr(r, '\x01', rn);
	if (!a || !sep || a > sep)
		return;
	a += 7;
	const char *ae = a;
	while (ae < sep && *ae != ' ')
		ae++;
	struct evc vc;
	uint64_t lam;
	int rc = causes_clock(a, (size_t)(ae - a), &vc, &lam);
	if (rc) {
		set_err(rc, "eventnet log: a cause of the event was not found on any node");
		return;
	}
	struct ven_buf one = {0};
	char *line;
	size_t len;
	rc = wire(&one, r, rn, &vc, lam);
	if (rc == 0)
		rc = ven_send(lk, one.p, one.n);
	if (rc == 0)
		rc = ven_readline(lk, &line, &len);
	free(one.p);
	if (rc) {
		ven_close(lk);
		set_err(rc, "eventnet log: the home node failed");
		return;
	}
	rc = ven_err(line, "log", home_node_id());
	if (rc)
		set_err(rc, virgo_last_error());
	else
		merge_ok(line);
}

/* Sends one batch and reads its replies, a piece at a time: the node
 * buffers about 1 MiB of replies (VCONN_OUT_BUDGET) for a connection
 * that does not read them, and then stops reading its requests; a batch
 * of megabytes sent whole before reading deadlocked until the timeout. */
#define VEN_SEND_PIECE (128u << 10) /* bytes of requests, then their replies */
static void send_batch(struct ven_buf *b)
{
	int rc = home_open();
	if (rc) {
		set_err(rc, "eventnet log: no node's eventnet port answered");
		return;
	}
	struct ven_buf out = {0};
	/* the replies, one per record, in order; a refused remote cause is
	 * re-sent once all are read */
	size_t *retry = NULL, nretry = 0, off = 0;
	while (rc == 0 && off < b->n) {
		out.n = 0;
		size_t end = off;
		uint64_t nrec = 0;
		while (rc == 0 && end < b->n && out.n < VEN_SEND_PIECE) {
			const char *nl = memchr(b->p + end, '\n', b->n - end);
			rc = wire(&out, b->p + end, (size_t)(nl - (b->p + end)), NULL, 0);
			end = (size_t)(nl - b->p) + 1;
			nrec++;
		}
		if (rc == 0)
			rc = ven_send(lk, out.p, out.n);
		for (uint64_t i = 0; rc == 0 && i < nrec; i++) {
			const char *r = b->p + off;
			const char *nl = memchr(r, '\n', b->n - off);
			size_t rn = (size_t)(nl - r);
			char *line;
			size_t len;
			rc = ven_readline(lk, &line, &len);
			if (rc)
				break;
			if (strncmp(line, "OK ", 3) == 0) {
				merge_ok(line);
			} else if (strncmp(line, "ERR ENOENT ", 11) == 0 && strstr(line, "clock=")) {
				size_t *nr = realloc(retry, (nretry + 1) * sizeof *nr);
				if (nr) {
					retry = nr;
					retry[nretry++] = off;
				}
			} else {
				int e = ven_err(line, "log", home_node_id());
				set_err(e ? e : -VIRGO_EBADREPLY, virgo_last_error());
			}
			off += rn + 1;
		}
	}
	free(out.p);
	if (rc) {
		ven_close(lk);
		set_err(rc, "eventnet log: the home node's connection failed (events may be lost)");
	}
	for (size_t k = 0; rc == 0 && k < nretry; k++) {
		const char *r = b->p + retry[k];
		const char *nl = memchr(r, '\n', b->n - retry[k]);
		resend_with_clock(r, (size_t)(nl - r));
	}
	free(retry);
}

static void *logger(void *arg)
{
	(void)arg;
	struct ven_buf b = {0};
	pthread_mutex_lock(&L.mu);
	for (;;) {
		while (L.q.n == 0 && !L.stop)
			pthread_cond_wait(&L.work, &L.mu);
		if (L.q.n == 0)
			break;
		struct ven_buf t = L.q; /* take the queue, leave our empty buffer */
		b.n = 0;
		b.recs = 0;
		L.q = b;
		b = t;
		pthread_mutex_unlock(&L.mu);
		send_batch(&b);
		pthread_mutex_lock(&L.mu);
		L.done += b.recs;
		pthread_cond_broadcast(&L.done_cv);
	}
	pthread_mutex_unlock(&L.mu);
	free(b.p);
	return NULL;
}

int virgo_eventnet_log(const char *id, const char *partakers, const char *conv, const char *after)
{
	if (!id || !id_ok(id))
		return -EINVAL;
	size_t pl = partakers ? strlen(partakers) : 0, cl = conv ? strlen(conv) : 0;
	if (pl > 1024 || (pl == 1 && partakers[0] == '-') || cl > VEN_CONV_MAX)
		return -EINVAL;
	for (size_t i = 0; i < pl; i++)
		if ((unsigned char)partakers[i] <= 0x20 || (unsigned char)partakers[i] >= 0x7f ||
		    partakers[i] == '#')
			return -EINVAL;
	for (size_t i = 0; i < cl; i++)
		if ((unsigned char)conv[i] < 0x20 || conv[i] == 0x7f)
			return -EINVAL;
	if (after && *after && !after_ok(after))
		return -EINVAL;
	size_t il = strlen(id), al = after ? strlen(after) : 0;
	pthread_mutex_lock(&L.mu);
	if (L.q.n + il + pl + cl + al + 32 > VEN_QUEUE_BYTES) {
		pthread_mutex_unlock(&L.mu);
		return -EAGAIN;
	}
	if (!L.started) {
		L.stop = false;
		if (pthread_create(&L.th, NULL, logger, NULL) != 0) {
			pthread_mutex_unlock(&L.mu);
			return -EAGAIN;
		}
		L.started = true;
	}
	size_t need = il + pl + cl + al + 32;
	if (L.q.n + need > L.q.cap) {
		size_t cap = L.q.cap ? L.q.cap * 2 : 65536;
		while (cap < L.q.n + need)
			cap *= 2;
		char *p = realloc(L.q.p, cap);
		if (!p) {
			pthread_mutex_unlock(&L.mu);
			return -ENOMEM;
		}
		L.q.p = p;
		L.q.cap = cap;
	}
	char *w = L.q.p + L.q.n;
	memcpy(w, "log ", 4);
	w += 4;
	memcpy(w, id, il);
	w += il;
	if (pl) {
		memcpy(w, " partakers=", 11);
		memcpy(w + 11, partakers, pl);
		w += 11 + pl;
	}
	if (al) {
		memcpy(w, " after=", 7);
		memcpy(w + 7, after, al);
		w += 7 + al;
	}
	*w++ = '\x01';
	if (cl)
		memcpy(w, conv, cl);
	w += cl;
	*w++ = '\n';
	bool wake = L.q.n == 0;
	L.q.n = (size_t)(w - L.q.p);
	L.q.recs++;
	L.queued++;
	if (wake)
		pthread_cond_signal(&L.work);
	pthread_mutex_unlock(&L.mu);
	return 0;
}

int virgo_eventnet_flush(int timeout_ms)
{
	struct timespec dl;
	clock_gettime(CLOCK_REALTIME, &dl);
	dl.tv_sec += timeout_ms / 1000;
	dl.tv_nsec += (long)(timeout_ms % 1000) * 1000000;
	if (dl.tv_nsec >= 1000000000) {
		dl.tv_sec++;
		dl.tv_nsec -= 1000000000;
	}
	vc_err_clear();
	pthread_mutex_lock(&L.mu);
	uint64_t target = L.queued;
	int rc = 0;
	while (L.done < target && rc == 0)
		rc = pthread_cond_timedwait(&L.done_cv, &L.mu, &dl);
	int err = L.done < target ? -ETIMEDOUT : L.first_err;
	if (L.first_err && L.done >= target) {
		vc_err_set(L.detail);
		L.first_err = 0;
	}
	pthread_mutex_unlock(&L.mu);
	return err;
}

void ven_shutdown(int timeout_ms)
{
	pthread_mutex_lock(&L.mu);
	bool started = L.started;
	pthread_mutex_unlock(&L.mu);
	if (!started)
		return;
	virgo_eventnet_flush(timeout_ms);
	pthread_mutex_lock(&L.mu);
	L.stop = true;
	pthread_cond_signal(&L.work);
	pthread_mutex_unlock(&L.mu);
	pthread_join(L.th, NULL);
	pthread_mutex_lock(&L.mu);
	L.started = false;
	free(L.q.p);
	L.q = (struct ven_buf){0};
	pthread_mutex_unlock(&L.mu);
	if (lk) {
		ven_close(lk);
		free(lk);
		lk = NULL;
	}
	lk_idx = -1;
	lclock.n = 0;
}
