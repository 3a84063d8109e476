/*
 * cloudsync_table.c - the lock table (cloudsync_table.h).
 *
 * Locks live in a chained hash; a lock exists while it has a holder or
 * waiters and is freed when it has neither (the token counter is
 * node-wide, so a lock taken again later still gets larger tokens).  An
 * entry is first a waiter (in its lock's queue, owning the connection's
 * vconn_ticket) and then, when granted, a holder (in its owner's held
 * list, with a lease end).  The timer thread sleeps until the earliest
 * lease end or wait deadline anyone registered and then sweeps; a lease
 * that ended is also noticed by the next lock, trylock or renew of that
 * lock, so a lock is never held past its lease because the timer has not
 * run yet.
 */
#include "cloudsync_table.h"

#include <errno.h>
#include <event2/buffer.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../../daemon/log.h"
#include "../../daemon/service.h"
#include "cloudsync_epoch.h"
#include "cloudsync_fence.h"

#define CS_BUCKETS 4096
#define CS_NEVER INT64_MAX
#define CS_PEER_MAX 64
#define CS_SWEEP_GAP_MS 2 /* lease ends and wait timeouts are this late at most */

struct cs_lock;

struct cs_entry {
	struct cs_lock *lk;
	struct cs_owner *ow;
	struct cs_entry *qnext; /* waiter: next in the lock's queue */
	struct cs_entry *onext, *oprev; /* holder: the owner's held list */
	uint64_t token; /* the ticket taken on arrival = the fencing token */
	uint64_t ttl_ms;
	int64_t deadline; /* waiter: end of its wait; holder: end of its lease */
	struct vconn_ticket *ticket; /* waiter only */
	struct cs_delivery *dlv; /* waiter only: preallocated reply */
	char peer[CS_PEER_MAX];
};

struct cs_lock {
	struct cs_lock *next; /* hash chain */
	struct cs_entry *holder;
	struct cs_entry *qhead, *qtail;
	unsigned nwait;
	size_t len;
	char name[CS_NAME_MAX];
};

struct cs_table {
	pthread_mutex_t mu;
	pthread_cond_t cond; /* CLOCK_MONOTONIC: the timer's wake-up */
	pthread_t timer;
	bool stop;
	int64_t next_due; /* earliest deadline registered since the last sweep */
	int64_t swept; /* when the last sweep ran */
	cs_deliver_fn deliver;
	uint64_t epoch, seq;
	unsigned max_entries, entries;
	struct cs_stats st;
	struct cs_lock *bucket[CS_BUCKETS];
};

static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static uint32_t name_hash(const char *s, size_t n)
{
	uint32_t h = 2166136261u;
	for (size_t i = 0; i < n; i++)
		h = (h ^ (uint8_t)s[i]) * 16777619u;
	return h;
}

static struct cs_lock **lock_slot(struct cs_table *t, const char *name, size_t len)
{
	struct cs_lock **p = &t->bucket[name_hash(name, len) % CS_BUCKETS];
	while (*p && !((*p)->len == len && memcmp((*p)->name, name, len) == 0))
		p = &(*p)->next;
	return p;
}

static void due(struct cs_table *t, int64_t deadline)
{
	if (deadline < t->next_due) {
		t->next_due = deadline;
		pthread_cond_signal(&t->cond);
	}
}

static void held_add(struct cs_owner *ow, struct cs_entry *e)
{
	e->oprev = NULL;
	e->onext = ow->held;
	if (ow->held)
		ow->held->oprev = e;
	ow->held = e;
	ow->nheld++;
}

static void held_del(struct cs_owner *ow, struct cs_entry *e)
{
	if (e->oprev)
		e->oprev->onext = e->onext;
	else
		ow->held = e->onext;
	if (e->onext)
		e->onext->oprev = e->oprev;
	ow->nheld--;
}

static void entry_free(struct cs_table *t, struct cs_entry *e)
{
	free(e->dlv);
	free(e);
	t->entries--;
}

/* Drops a lock nobody holds or waits for. */
static void lock_maybe_free(struct cs_table *t, struct cs_lock *lk)
{
	if (lk->holder || lk->qhead)
		return;
	struct cs_lock **p = lock_slot(t, lk->name, lk->len);
	*p = lk->next;
	free(lk);
	t->st.locks--;
}

/* Passes a free lock to the first waiter: it becomes the holder now, and
 * its connection's loop is told. */
static void grant_next(struct cs_table *t, struct cs_lock *lk, int64_t now)
{
	struct cs_entry *w = lk->qhead;
	if (lk->holder || !w)
		return;
	lk->qhead = w->qnext;
	if (!lk->qhead)
		lk->qtail = NULL;
	lk->nwait--;
	t->st.waiters--;
	w->qnext = NULL;
	w->ow->waiting = NULL;
	held_add(w->ow, w);
	lk->holder = w;
	t->st.holders++;
	t->st.grants++;
	t->st.handoffs++;
	w->deadline = now + (int64_t)w->ttl_ms;
	due(t, w->deadline);
	cs_fence_observe(lk->name, lk->len, w->token);
	struct cs_delivery *d = w->dlv;
	struct vconn_ticket *tk = w->ticket;
	w->dlv = NULL;
	w->ticket = NULL;
	d->err = 0;
	d->token = w->token;
	d->ttl_ms = w->ttl_ms;
	vconn_ticket_post(tk, t->deliver, d);
}

/* Ends a hold (unlock, lease end, connection closed); the lock passes on. */
static void release(struct cs_table *t, struct cs_entry *h, int64_t now)
{
	struct cs_lock *lk = h->lk;
	held_del(h->ow, h);
	lk->holder = NULL;
	t->st.holders--;
	entry_free(t, h);
	grant_next(t, lk, now);
	lock_maybe_free(t, lk);
}

/* Removes a waiter from its queue (it gave up or left). */
static void unqueue(struct cs_table *t, struct cs_entry *w)
{
	struct cs_lock *lk = w->lk;
	struct cs_entry **p = &lk->qhead, *prev = NULL;
	while (*p && *p != w) {
		prev = *p;
		p = &(*p)->qnext;
	}
	if (*p) {
		*p = w->qnext;
		if (lk->qtail == w)
			lk->qtail = prev;
		lk->nwait--;
		t->st.waiters--;
	}
	w->ow->waiting = NULL;
}

static bool lease_over(const struct cs_entry *h, int64_t now) { return h->deadline <= now; }

/* A holder whose lease ended: release it (the next waiter gets the lock). */
static void expire(struct cs_table *t, struct cs_entry *h, int64_t now)
{
	log_info("lock_lease_expired name=%.*s token=%" PRIu64 " peer=%s", (int)h->lk->len,
		 h->lk->name, h->token, h->peer);
	t->st.expired++;
	release(t, h, now);
}

static struct cs_entry *entry_new(struct cs_table *t, struct cs_lock *lk, struct cs_owner *ow,
				  struct vconn *c, uint64_t ttl_ms)
{
	struct cs_entry *e = calloc(1, sizeof *e);
	if (!e)
		return NULL;
	e->lk = lk;
	e->ow = ow;
	e->ttl_ms = ttl_ms;
	e->token = t->epoch * CS_EPOCH_BLOCK + ++t->seq;
	snprintf(e->peer, sizeof e->peer, "%s", vconn_peer(c));
	t->entries++;
	return e;
}

enum cs_lock_result cs_table_lock(struct cs_table *t, struct cs_owner *ow, struct vconn *c,
				  const struct cs_req *r, bool try, uint64_t *token, unsigned *pos,
				  int *err, const char **msg)
{
	int64_t now = now_ms();
	enum cs_lock_result res = CS_LOCK_FAILED;
	pthread_mutex_lock(&t->mu);
	struct cs_lock **slot = lock_slot(t, r->name, r->name_len);
	struct cs_lock *lk = *slot;
	if (lk && lk->holder && lease_over(lk->holder, now)) {
		expire(t, lk->holder, now);
		slot = lock_slot(t, r->name, r->name_len);
		lk = *slot;
	}
	if (lk && lk->holder && lk->holder->ow == ow) {
		*err = EDEADLK;
		*msg = "this connection already holds the lock";
		goto out;
	}
	bool busy = lk && (lk->holder || lk->qhead);
	if (busy && (try || r->wait_ms == 0)) {
		*err = EBUSY;
		*msg = "lock is held";
		goto out;
	}
	if (t->entries >= t->max_entries || ow->nheld >= CS_OWNER_MAX_HELD ||
	    t->seq >= CS_SEQ_MAX) {
		*err = ENOSPC;
		*msg = t->seq >= CS_SEQ_MAX ? "tokens of this boot used up (restart the node)"
					    : "too many locks held or waited for (lock_max)";
		goto out;
	}
	if (!lk) {
		lk = calloc(1, sizeof *lk);
		if (!lk) {
			*err = ENOMEM;
			*msg = "out of memory";
			goto out;
		}
		memcpy(lk->name, r->name, r->name_len);
		lk->len = r->name_len;
		*slot = lk;
		t->st.locks++;
	}
	struct cs_entry *e = entry_new(t, lk, ow, c, r->ttl_ms);
	if (e && busy) {
		e->dlv = calloc(1, sizeof *e->dlv);
		e->ticket = e->dlv ? vconn_ticket_new(c) : NULL;
		if (!e->ticket) {
			entry_free(t, e);
			e = NULL;
		}
	}
	if (!e) {
		lock_maybe_free(t, lk);
		*err = ENOMEM;
		*msg = "out of memory";
		goto out;
	}
	*token = e->token;
	if (!busy) {
		held_add(ow, e);
		lk->holder = e;
		e->deadline = now + (int64_t)r->ttl_ms;
		due(t, e->deadline);
		t->st.holders++;
		t->st.grants++;
		cs_fence_observe(lk->name, lk->len, e->token);
		res = CS_LOCK_GRANTED;
		goto out;
	}
	e->deadline = r->wait_ms == CS_WAIT_FOREVER ? CS_NEVER : now + (int64_t)r->wait_ms;
	due(t, e->deadline);
	if (lk->qtail)
		lk->qtail->qnext = e;
	else
		lk->qhead = e;
	lk->qtail = e;
	lk->nwait++;
	t->st.waiters++;
	ow->waiting = e;
	*pos = lk->nwait;
	res = CS_LOCK_QUEUED;
out:
	pthread_mutex_unlock(&t->mu);
	return res;
}

/* ow's hold on name, or NULL with *err: -ENOLCK (not held by ow; a hold
 * whose lease ended is released here), or -EACCES when another identity
 * holds it (a connection of ow's own identity holding it is -ENOLCK, as
 * before identities: the lock is the connection's). */
static struct cs_entry *find_hold(struct cs_table *t, struct cs_owner *ow, const char *name,
				  size_t len, int64_t now, int *err)
{
	struct cs_lock *lk = *lock_slot(t, name, len);
	*err = -ENOLCK;
	if (!lk || !lk->holder)
		return NULL;
	if (lease_over(lk->holder, now)) {
		expire(t, lk->holder, now);
		return NULL;
	}
	if (lk->holder->ow != ow) {
		if (lk->holder->ow->ident != ow->ident)
			*err = -EACCES;
		return NULL;
	}
	return lk->holder;
}

int cs_table_renew(struct cs_table *t, struct cs_owner *ow, const char *name, size_t len,
		   uint64_t ttl_ms, uint64_t *token)
{
	int64_t now = now_ms();
	int err;
	pthread_mutex_lock(&t->mu);
	struct cs_entry *h = find_hold(t, ow, name, len, now, &err);
	if (h) {
		h->ttl_ms = ttl_ms;
		h->deadline = now + (int64_t)ttl_ms;
		due(t, h->deadline);
		*token = h->token;
	}
	pthread_mutex_unlock(&t->mu);
	return h ? 0 : err;
}

int cs_table_unlock(struct cs_table *t, struct cs_owner *ow, const char *name, size_t len)
{
	int64_t now = now_ms();
	int err;
	pthread_mutex_lock(&t->mu);
	struct cs_entry *h = find_hold(t, ow, name, len, now, &err);
	if (h)
		release(t, h, now);
	pthread_mutex_unlock(&t->mu);
	return h ? 0 : err;
}

void cs_table_owner_gone(struct cs_table *t, struct cs_owner *ow)
{
	int64_t now = now_ms();
	pthread_mutex_lock(&t->mu);
	struct cs_entry *w = ow->waiting;
	if (w) {
		struct cs_lock *lk = w->lk;
		unqueue(t, w);
		vconn_ticket_drop(w->ticket);
		entry_free(t, w);
		lock_maybe_free(t, lk);
	}
	while (ow->held) {
		t->st.releases_on_close++;
		release(t, ow->held, now);
	}
	pthread_mutex_unlock(&t->mu);
}

/* The timer's sweep: ends leases and waits that are over, and works out
 * when the next one is due. */
static void sweep(struct cs_table *t, int64_t now)
{
	int64_t next = CS_NEVER;
	t->next_due = CS_NEVER; /* grants made below register their leases */
	for (size_t b = 0; b < CS_BUCKETS; b++) {
		struct cs_lock *lk = t->bucket[b];
		while (lk) {
			struct cs_lock *lnext = lk->next; /* lk may be freed below */
			struct cs_entry **p = &lk->qhead, *prev = NULL;
			while (*p) {
				struct cs_entry *w = *p;
				if (w->deadline > now) {
					if (w->deadline < next)
						next = w->deadline;
					prev = w;
					p = &w->qnext;
					continue;
				}
				*p = w->qnext;
				if (lk->qtail == w)
					lk->qtail = prev;
				lk->nwait--;
				t->st.waiters--;
				t->st.timeouts++;
				w->ow->waiting = NULL;
				w->dlv->err = ETIMEDOUT;
				vconn_ticket_post(w->ticket, t->deliver, w->dlv);
				w->dlv = NULL;
				entry_free(t, w);
			}
			if (lk->holder && lease_over(lk->holder, now))
				expire(t, lk->holder, now); /* grants the next, or frees lk */
			else if (lk->holder && lk->holder->deadline < next)
				next = lk->holder->deadline;
			else
				lock_maybe_free(t, lk);
			lk = lnext;
		}
	}
	if (next < t->next_due)
		t->next_due = next;
}

static void *timer_main(void *arg)
{
	struct cs_table *t = arg;
	pthread_mutex_lock(&t->mu);
	while (!t->stop) {
		int64_t now = now_ms();
		if (t->next_due <= now && now >= t->swept + CS_SWEEP_GAP_MS) {
			sweep(t, now);
			t->swept = now;
			continue;
		}
		struct timespec ts;
		clock_gettime(CLOCK_MONOTONIC, &ts);
		/* sweeps walk the whole table: at most one per CS_SWEEP_GAP_MS,
		 * so many leases ending at nearby times cost one walk */
		int64_t wait = t->next_due - now;
		if (wait < t->swept + CS_SWEEP_GAP_MS - now)
			wait = t->swept + CS_SWEEP_GAP_MS - now;
		if (wait > 1000)
			wait = 1000; /* bounded: a missed signal costs a second at most */
		ts.tv_sec += wait / 1000;
		ts.tv_nsec += (wait % 1000) * 1000000;
		if (ts.tv_nsec >= 1000000000) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000;
		}
		pthread_cond_timedwait(&t->cond, &t->mu, &ts);
	}
	pthread_mutex_unlock(&t->mu);
	return NULL;
}

struct cs_table *cs_table_new(uint64_t epoch, unsigned max_entries, cs_deliver_fn deliver)
{
	struct cs_table *t = calloc(1, sizeof *t);
	if (!t)
		return NULL;
	pthread_mutex_init(&t->mu, NULL);
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&t->cond, &ca);
	pthread_condattr_destroy(&ca);
	t->epoch = epoch;
	t->st.epoch = epoch;
	t->max_entries = max_entries;
	t->deliver = deliver;
	t->next_due = CS_NEVER;
	if (pthread_create(&t->timer, NULL, timer_main, t) != 0) {
		pthread_cond_destroy(&t->cond);
		pthread_mutex_destroy(&t->mu);
		free(t);
		return NULL;
	}
	pthread_setname_np(t->timer, "cloudsync/timer");
	return t;
}

void cs_table_free(struct cs_table *t)
{
	if (!t)
		return;
	pthread_mutex_lock(&t->mu);
	t->stop = true;
	pthread_cond_signal(&t->cond);
	pthread_mutex_unlock(&t->mu);
	pthread_join(t->timer, NULL);
	/* connections are gone by now; free what is left regardless */
	for (size_t b = 0; b < CS_BUCKETS; b++) {
		struct cs_lock *lk = t->bucket[b];
		while (lk) {
			struct cs_lock *n = lk->next;
			if (lk->holder)
				free(lk->holder);
			for (struct cs_entry *w = lk->qhead, *wn; w; w = wn) {
				wn = w->qnext;
				if (w->ticket)
					vconn_ticket_drop(w->ticket);
				free(w->dlv);
				free(w);
			}
			free(lk);
			lk = n;
		}
	}
	pthread_cond_destroy(&t->cond);
	pthread_mutex_destroy(&t->mu);
	free(t);
}

static void ls_lock(struct cs_lock *lk, int64_t now, struct evbuffer *out)
{
	const struct cs_entry *h = lk->holder;
	if (h)
		evbuffer_add_printf(out, "STAT lock %.*s %" PRIu64 " %s %" PRId64 " %u\r\n",
				    (int)lk->len, lk->name, h->token, h->peer,
				    h->deadline > now ? h->deadline - now : 0, lk->nwait);
	else
		evbuffer_add_printf(out, "STAT lock %.*s 0 - 0 %u\r\n", (int)lk->len, lk->name,
				    lk->nwait);
}

void cs_table_ls(struct cs_table *t, const char *name, size_t len, size_t max,
		 struct evbuffer *out)
{
	int64_t now = now_ms();
	size_t lines = 0, more = 0;
	pthread_mutex_lock(&t->mu);
	if (name) {
		struct cs_lock *lk = *lock_slot(t, name, len);
		if (lk) {
			ls_lock(lk, now, out);
			lines++;
			for (struct cs_entry *w = lk->qhead; w; w = w->qnext) {
				if (lines >= max) {
					more++;
					continue;
				}
				lines++;
				if (w->deadline == CS_NEVER)
					evbuffer_add_printf(out, "STAT waiter %" PRIu64 " %s -\r\n",
							    w->token, w->peer);
				else
					evbuffer_add_printf(out,
							    "STAT waiter %" PRIu64 " %s %" PRId64 "\r\n",
							    w->token, w->peer,
							    w->deadline > now ? w->deadline - now : 0);
			}
		}
	} else {
		for (size_t b = 0; b < CS_BUCKETS; b++)
			for (struct cs_lock *lk = t->bucket[b]; lk; lk = lk->next) {
				if (lines >= max) {
					more++;
					continue;
				}
				lines++;
				ls_lock(lk, now, out);
			}
	}
	pthread_mutex_unlock(&t->mu);
	if (more)
		evbuffer_add_printf(out, "STAT more %zu\r\n", more);
	evbuffer_add(out, "END\r\n", 5);
}

void cs_table_stats(struct cs_table *t, struct cs_stats *st)
{
	pthread_mutex_lock(&t->mu);
	*st = t->st;
	pthread_mutex_unlock(&t->mu);
}
