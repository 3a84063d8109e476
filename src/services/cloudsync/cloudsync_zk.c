/*
 * cloudsync_zk.c - the ZooKeeper lock backend (cloudsync_zk.h), on the
 * official multithreaded C client's asynchronous calls: an event loop
 * never waits for ZooKeeper.  A request moves CREATING (its ephemeral
 * sequential znode is being made) -> WAITING (watching its predecessor)
 * -> HOLDING (its znode is the lowest) -> DONE (granted and released,
 * refused, timed out, or its connection closed), under one mutex.  The
 * ZooKeeper completion thread drives the first steps; the connection's
 * loop thread renews, releases and cancels; a timer thread ends leases
 * and bounded waits and, when the session expired, makes a new one.
 * Calls into the ZooKeeper client are made without the mutex held (its
 * completions take it).  A request is freed once it is DONE and no call
 * or watch of ZooKeeper still refers to it (refs).
 */
#include "cloudsync_zk.h"

#include <errno.h>
#include <event2/buffer.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#ifndef THREADED
#define THREADED /* the multithreaded client: its synchronous calls too */
#endif
#include <zookeeper/zookeeper.h>

#include "../../daemon/log.h"
#include "../../daemon/service.h"
#include "cloudsync_fence.h"

#define ZK_ROOT "/virgo/locks"
#define ZK_TICK_MS 5
#define ZK_SESSION_MS 10000

enum zk_state { ZR_CREATING, ZR_WAITING, ZR_HOLDING, ZR_DONE };

struct zk_req {
	struct zk_req *onext, *oprev; /* the owner's list (while ow) */
	struct zk_req *anext, *aprev; /* every live request */
	struct cs_zk *z;
	struct cs_zk_owner *ow; /* NULL once the connection is gone or DONE */
	int refs; /* 1 until DONE + one per ZooKeeper call or watch pending */
	enum zk_state st;
	bool try, created;
	size_t len;
	char name[CS_NAME_MAX + 1];
	char parent[3 * CS_NAME_MAX + 32];
	char znode[3 * CS_NAME_MAX + 64];
	uint64_t token, ttl_ms;
	int64_t deadline; /* waiting: the wait's end (INT64_MAX: none); holding: the lease's */
	struct vconn_ticket *ticket;
	struct cs_delivery *dlv;
	char peer[64];
};

struct cs_zk {
	pthread_mutex_t mu;
	pthread_cond_t cond; /* session state changes */
	zhandle_t *zh;
	char hosts[1024];
	int session_state;
	int wait_ms;
	bool go; /* the node listens: start the session */
	bool ready; /* connected and /virgo/locks exists */
	bool expired, stop;
	pthread_t timer;
	cs_deliver_fn deliver;
	unsigned max_entries, entries;
	struct zk_req *all;
	struct cs_stats st;
};

static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- request bookkeeping (mutex held) ------------------------------- */

static void owner_unlink(struct zk_req *q)
{
	if (!q->ow)
		return;
	if (q->oprev)
		q->oprev->onext = q->onext;
	else
		q->ow->reqs = q->onext;
	if (q->onext)
		q->onext->oprev = q->oprev;
	q->ow = NULL;
}

/* Drops a reference; frees the request when none is left. */
static void req_put(struct zk_req *q)
{
	if (--q->refs > 0)
		return;
	struct cs_zk *z = q->z;
	if (q->aprev)
		q->aprev->anext = q->anext;
	else
		z->all = q->anext;
	if (q->anext)
		q->anext->aprev = q->aprev;
	z->entries--;
	if (q->ticket)
		vconn_ticket_drop(q->ticket);
	free(q->dlv);
	free(q);
}

/* Answers a waiting request (err 0: granted) through its ticket. */
static void req_reply(struct zk_req *q, int err, const char *msg)
{
	if (!q->ticket)
		return;
	q->dlv->err = err;
	q->dlv->msg = msg;
	q->dlv->token = q->token;
	q->dlv->ttl_ms = q->ttl_ms;
	struct vconn_ticket *t = q->ticket;
	struct cs_delivery *d = q->dlv;
	q->ticket = NULL;
	q->dlv = NULL;
	vconn_ticket_post(t, q->z->deliver, d);
}

/* Ends a request (mutex held): replies err if it still waits, leaves its
 * owner, drops the "not done" reference.  Returns true if its znode must
 * be deleted: a reference for that delete was taken, and the caller
 * issues it after unlocking.  When false, q may be freed. */
static bool req_done(struct zk_req *q, int err, const char *msg)
{
	if (q->st == ZR_DONE)
		return false;
	if (q->st == ZR_HOLDING)
		q->z->st.holders--;
	else
		q->z->st.waiters--;
	req_reply(q, err, msg);
	owner_unlink(q);
	q->st = ZR_DONE;
	bool del = q->created;
	if (del)
		q->refs++;
	req_put(q);
	return del;
}

/* ---- ZooKeeper steps (completion thread) ------------------------------
 * Each completion owns the reference of its call: it passes it on to the
 * next call or drops it. */

static void zk_check(struct zk_req *q);
static void zk_create(struct zk_req *q);

static void on_deleted(int rc, const void *data)
{
	(void)rc;
	struct zk_req *q = (struct zk_req *)data;
	struct cs_zk *z = q->z;
	pthread_mutex_lock(&z->mu);
	req_put(q);
	pthread_mutex_unlock(&z->mu);
}

/* Deletes q's znode; consumes one reference. */
static void zk_delete(struct zk_req *q)
{
	if (zoo_adelete(q->z->zh, q->znode, -1, on_deleted, q) != ZOK)
		on_deleted(ZSYSTEMERROR, q); /* the session is gone: so is the znode */
}

/* Mutex held, q not DONE: ends q with err, deletes its znode if it has
 * one, unlocks. */
static void fail_unlock(struct zk_req *q, int err, const char *msg)
{
	struct cs_zk *z = q->z;
	bool del = req_done(q, err, msg);
	pthread_mutex_unlock(&z->mu);
	if (del)
		zk_delete(q);
}

/* Mutex held: drops a call's reference and, if q still runs, ends it. */
static void call_failed_unlock(struct zk_req *q, int err, const char *msg)
{
	struct cs_zk *z = q->z;
	if (q->st == ZR_DONE) {
		req_put(q);
		pthread_mutex_unlock(&z->mu);
		return;
	}
	req_put(q); /* the "not done" reference keeps q */
	fail_unlock(q, err, msg);
}

static void on_parent(int rc, const char *path, const void *data)
{
	(void)path;
	struct zk_req *q = (struct zk_req *)data;
	struct cs_zk *z = q->z;
	pthread_mutex_lock(&z->mu);
	if (q->st != ZR_DONE && (rc == ZOK || rc == ZNODEEXISTS)) {
		pthread_mutex_unlock(&z->mu);
		zk_create(q);
		return;
	}
	call_failed_unlock(q, EIO, "zookeeper: cannot create the lock's znode");
}

static void on_created(int rc, const char *path, const struct Stat *stat, const void *data)
{
	struct zk_req *q = (struct zk_req *)data;
	struct cs_zk *z = q->z;
	pthread_mutex_lock(&z->mu);
	if (rc == ZOK && path && stat) {
		snprintf(q->znode, sizeof q->znode, "%s", path);
		q->token = (uint64_t)stat->czxid;
		q->created = true;
	}
	if (q->st == ZR_DONE) { /* cancelled meanwhile: remove what we made */
		bool del = rc == ZOK && q->created;
		if (!del)
			req_put(q);
		pthread_mutex_unlock(&z->mu);
		if (del)
			zk_delete(q);
		return;
	}
	if (rc == ZNONODE) { /* first use of this lock: make its parent */
		pthread_mutex_unlock(&z->mu);
		if (zoo_acreate(z->zh, q->parent, "", 0, &ZOO_OPEN_ACL_UNSAFE, ZOO_CONTAINER,
				on_parent, q) != ZOK)
			on_parent(ZSYSTEMERROR, NULL, q);
		return;
	}
	if (rc != ZOK) {
		call_failed_unlock(q, EIO, "zookeeper: cannot create the lock's znode");
		return;
	}
	q->st = ZR_WAITING;
	pthread_mutex_unlock(&z->mu);
	zk_check(q);
}

/* Creates q's ephemeral sequential znode; consumes one reference. */
static void zk_create(struct zk_req *q)
{
	char path[sizeof q->parent + 4];
	snprintf(path, sizeof path, "%s/n-", q->parent);
	if (zoo_acreate2(q->z->zh, path, "", 0, &ZOO_OPEN_ACL_UNSAFE, ZOO_EPHEMERAL | ZOO_SEQUENCE,
			 on_created, q) != ZOK)
		on_created(ZSYSTEMERROR, NULL, NULL, q);
}

/* The predecessor's watch (owns the watch's reference). */
static void on_pred_event(zhandle_t *zh, int type, int state, const char *path, void *ctx)
{
	(void)zh;
	(void)state;
	(void)path;
	struct zk_req *q = ctx;
	if (type == ZOO_SESSION_EVENT)
		return; /* the watch stays armed, or the session dies (timer) */
	struct cs_zk *z = q->z;
	pthread_mutex_lock(&z->mu);
	if (q->st == ZR_WAITING) {
		pthread_mutex_unlock(&z->mu);
		zk_check(q);
		return;
	}
	req_put(q);
	pthread_mutex_unlock(&z->mu);
}

static void on_pred_exists(int rc, const struct Stat *stat, const void *data)
{
	(void)stat;
	struct zk_req *q = (struct zk_req *)data;
	struct cs_zk *z = q->z;
	pthread_mutex_lock(&z->mu);
	if (rc == ZOK) { /* the watch fires when it goes */
		req_put(q);
		pthread_mutex_unlock(&z->mu);
		return;
	}
	if (rc == ZNONODE) {
		/* gone already: look again.  (The watch now waits for a
		 * creation that never comes and keeps its reference: a
		 * request that lost this race is freed with the session.) */
		if (q->st == ZR_WAITING) {
			pthread_mutex_unlock(&z->mu);
			zk_check(q);
			return;
		}
		req_put(q);
		pthread_mutex_unlock(&z->mu);
		return;
	}
	req_put(q); /* the watch was not set */
	call_failed_unlock(q, EIO, "zookeeper: cannot watch the lock's queue");
}

static uint64_t seq_of(const char *child)
{
	const char *d = strrchr(child, '-');
	return d ? strtoull(d + 1, NULL, 10) : UINT64_MAX;
}

static void on_children(int rc, const struct String_vector *sv, const void *data)
{
	struct zk_req *q = (struct zk_req *)data;
	struct cs_zk *z = q->z;
	pthread_mutex_lock(&z->mu);
	if (q->st != ZR_WAITING || rc != ZOK || !sv) {
		call_failed_unlock(q, EIO, "zookeeper: cannot list the lock's queue");
		return;
	}
	uint64_t mine = seq_of(q->znode);
	const char *pred = NULL;
	uint64_t pred_seq = 0;
	for (int i = 0; i < sv->count; i++) {
		uint64_t sq = seq_of(sv->data[i]);
		if (sq < mine && (!pred || sq > pred_seq)) {
			pred = sv->data[i];
			pred_seq = sq;
		}
	}
	if (!pred) { /* ours is the lowest: the lock is ours */
		q->st = ZR_HOLDING;
		z->st.waiters--;
		z->st.holders++;
		z->st.grants++;
		q->deadline = now_ms() + (int64_t)q->ttl_ms;
		cs_fence_observe(q->name, q->len, q->token);
		req_reply(q, 0, NULL);
		req_put(q);
		pthread_mutex_unlock(&z->mu);
		return;
	}
	if (q->try) {
		call_failed_unlock(q, EBUSY, "lock is held");
		return;
	}
	char ppath[sizeof q->parent + 64];
	snprintf(ppath, sizeof ppath, "%s/%s", q->parent, pred);
	q->refs++; /* the watch's; this call's goes to the exists call */
	pthread_mutex_unlock(&z->mu);
	if (zoo_awexists(z->zh, ppath, on_pred_event, q, on_pred_exists, q) != ZOK)
		on_pred_exists(ZSYSTEMERROR, NULL, q);
}

/* Lists q's queue to see whether q is first; consumes one reference. */
static void zk_check(struct zk_req *q)
{
	if (zoo_aget_children(q->z->zh, q->parent, 0, on_children, q) != ZOK)
		on_children(ZSYSTEMERROR, NULL, q);
}

/* ---- the service's calls (loop threads) ------------------------------ */

int cs_zk_lock(struct cs_zk *z, struct cs_zk_owner *ow, struct vconn *c, const struct cs_req *r,
	       bool try, const char **msg)
{
	pthread_mutex_lock(&z->mu);
	struct zk_req *h = ow->reqs;
	while (h && !(h->len == r->name_len && memcmp(h->name, r->name, h->len) == 0))
		h = h->onext;
	bool full = z->entries >= z->max_entries;
	bool down = !z->ready || z->session_state != ZOO_CONNECTED_STATE || z->expired;
	pthread_mutex_unlock(&z->mu);
	if (h) {
		*msg = "this connection already holds the lock";
		return EDEADLK;
	}
	if (full) {
		*msg = "too many locks held or waited for (lock_max)";
		return ENOSPC;
	}
	if (down) {
		*msg = "zookeeper: not connected (retry)";
		return EIO;
	}
	struct zk_req *q = calloc(1, sizeof *q);
	if (q)
		q->dlv = calloc(1, sizeof *q->dlv);
	if (q && q->dlv)
		q->ticket = vconn_ticket_new(c);
	if (!q || !q->dlv || !q->ticket) {
		if (q)
			free(q->dlv);
		free(q);
		*msg = "out of memory";
		return ENOMEM;
	}
	q->z = z;
	q->try = try || r->wait_ms == 0;
	q->len = r->name_len;
	memcpy(q->name, r->name, r->name_len);
	q->ttl_ms = r->ttl_ms;
	q->deadline = r->wait_ms == CS_WAIT_FOREVER ? INT64_MAX : now_ms() + (int64_t)r->wait_ms;
	snprintf(q->peer, sizeof q->peer, "%s", vconn_peer(c));
	/* one znode level per lock: '/' in a name becomes %2F ('%' cannot
	 * occur in names), "l-" keeps "." and ".." legal */
	size_t p = (size_t)snprintf(q->parent, sizeof q->parent, "%s/l-", ZK_ROOT);
	for (size_t i = 0; i < r->name_len; i++) {
		if (r->name[i] == '/') {
			memcpy(q->parent + p, "%2F", 3);
			p += 3;
		} else {
			q->parent[p++] = r->name[i];
		}
	}
	q->parent[p] = '\0';
	q->st = ZR_CREATING;
	q->refs = 2; /* "not done" + the create call */
	pthread_mutex_lock(&z->mu);
	q->ow = ow;
	q->onext = ow->reqs;
	if (ow->reqs)
		ow->reqs->oprev = q;
	ow->reqs = q;
	q->anext = z->all;
	if (z->all)
		z->all->aprev = q;
	z->all = q;
	z->entries++;
	z->st.waiters++;
	pthread_mutex_unlock(&z->mu);
	zk_create(q);
	return 0;
}

static struct zk_req *held(struct cs_zk_owner *ow, const char *name, size_t len)
{
	for (struct zk_req *q = ow->reqs; q; q = q->onext)
		if (q->st == ZR_HOLDING && q->len == len && memcmp(q->name, name, len) == 0)
			return q;
	return NULL;
}

int cs_zk_renew(struct cs_zk *z, struct cs_zk_owner *ow, const char *name, size_t len,
		uint64_t ttl_ms, uint64_t *token)
{
	int64_t now = now_ms();
	pthread_mutex_lock(&z->mu);
	struct zk_req *q = held(ow, name, len);
	/* not connected: the session may be expiring on the server, which
	 * would hand the lock on; do not extend a hold we cannot vouch for */
	if (q && q->deadline > now && !z->expired && z->session_state == ZOO_CONNECTED_STATE) {
		q->ttl_ms = ttl_ms;
		q->deadline = now + (int64_t)ttl_ms;
		*token = q->token;
		pthread_mutex_unlock(&z->mu);
		return 0;
	}
	pthread_mutex_unlock(&z->mu);
	return -ENOLCK;
}

int cs_zk_unlock(struct cs_zk *z, struct cs_zk_owner *ow, const char *name, size_t len)
{
	int64_t now = now_ms();
	pthread_mutex_lock(&z->mu);
	struct zk_req *q = held(ow, name, len);
	if (!q) {
		pthread_mutex_unlock(&z->mu);
		return -ENOLCK;
	}
	bool ok = q->deadline > now && !z->expired;
	fail_unlock(q, 0, NULL);
	return ok ? 0 : -ENOLCK;
}

void cs_zk_owner_gone(struct cs_zk *z, struct cs_zk_owner *ow)
{
	for (;;) {
		pthread_mutex_lock(&z->mu);
		struct zk_req *q = ow->reqs;
		if (!q) {
			pthread_mutex_unlock(&z->mu);
			return;
		}
		if (q->st == ZR_HOLDING)
			z->st.releases_on_close++;
		if (q->ticket) { /* the connection is closing: nobody to tell */
			vconn_ticket_drop(q->ticket);
			q->ticket = NULL;
		}
		fail_unlock(q, ECANCELED, NULL);
	}
}

/* ---- timer: leases, waits, sessions ------------------------------------ */

static void timer_pass(struct cs_zk *z)
{
	int64_t now = now_ms();
	for (;;) {
		pthread_mutex_lock(&z->mu);
		struct zk_req *q = z->all;
		for (; q; q = q->anext) {
			if (q->st == ZR_DONE)
				continue;
			if (z->expired || q->deadline <= now)
				break;
		}
		if (!q) {
			pthread_mutex_unlock(&z->mu);
			return;
		}
		if (q->st == ZR_HOLDING) {
			log_info("lock_lease_expired name=%s token=%" PRIu64 " peer=%s%s", q->name,
				 q->token, q->peer, z->expired ? " reason=zookeeper_session" : "");
			z->st.expired++;
			fail_unlock(q, 0, NULL);
		} else {
			z->st.timeouts++;
			fail_unlock(q, z->expired ? EIO : ETIMEDOUT,
				    z->expired ? "zookeeper: session expired" : NULL);
		}
	}
}

static void on_session(zhandle_t *zh, int type, int state, const char *path, void *ctx)
{
	(void)path;
	struct cs_zk *z = ctx;
	if (type != ZOO_SESSION_EVENT)
		return;
	pthread_mutex_lock(&z->mu);
	if (zh != z->zh) { /* the handle being replaced */
		pthread_mutex_unlock(&z->mu);
		return;
	}
	z->session_state = state;
	if (state == ZOO_EXPIRED_SESSION_STATE || state == ZOO_AUTH_FAILED_STATE)
		z->expired = true;
	pthread_cond_broadcast(&z->cond);
	pthread_mutex_unlock(&z->mu);
}

/* Connects and makes /virgo/locks (timer thread: blocking is fine). */
static void zk_connect(struct cs_zk *z)
{
	zhandle_t *nh = zookeeper_init(z->hosts, on_session, ZK_SESSION_MS, NULL, z, 0);
	if (!nh) {
		log_warn("zookeeper_init hosts=%s error=\"%s\"", z->hosts, strerror(errno));
		return;
	}
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += z->wait_ms / 1000 + 1;
	pthread_mutex_lock(&z->mu);
	zhandle_t *old = z->zh;
	z->zh = nh;
	z->session_state = zoo_state(nh);
	z->expired = false;
	while (z->session_state != ZOO_CONNECTED_STATE && !z->stop &&
	       pthread_cond_timedwait(&z->cond, &z->mu, &ts) == 0)
		;
	pthread_mutex_unlock(&z->mu);
	if (old)
		zookeeper_close(old);
	int rc = zoo_create(nh, "/virgo", "", 0, &ZOO_OPEN_ACL_UNSAFE, 0, NULL, 0);
	if (rc == ZOK || rc == ZNODEEXISTS)
		rc = zoo_create(nh, ZK_ROOT, "", 0, &ZOO_OPEN_ACL_UNSAFE, 0, NULL, 0);
	if (rc == ZOK || rc == ZNODEEXISTS) {
		pthread_mutex_lock(&z->mu);
		z->ready = true;
		pthread_mutex_unlock(&z->mu);
		log_info("zookeeper_connected hosts=%s", z->hosts);
	} else {
		log_warn("zookeeper_setup hosts=%s error=\"%s\" (retrying)", z->hosts, zerror(rc));
	}
}

static void *timer_main(void *arg)
{
	struct cs_zk *z = arg;
	/* the session starts once the node listens (cs_zk_start): a client
	 * connection made earlier could take one of the node's own ports as
	 * its local port */
	pthread_mutex_lock(&z->mu);
	while (!z->go && !z->stop)
		pthread_cond_wait(&z->cond, &z->mu);
	pthread_mutex_unlock(&z->mu);
	for (int64_t next_try = 0;;) {
		pthread_mutex_lock(&z->mu);
		bool stop = z->stop, expired = z->expired, ready = z->ready;
		pthread_mutex_unlock(&z->mu);
		if (stop)
			return NULL;
		if (expired || (!ready && now_ms() >= next_try)) {
			if (expired)
				log_warn("zookeeper_session_expired hosts=%s", z->hosts);
			timer_pass(z); /* with expired set: every request ends */
			pthread_mutex_lock(&z->mu);
			z->ready = false;
			pthread_mutex_unlock(&z->mu);
			zk_connect(z);
			next_try = now_ms() + 1000;
		}
		timer_pass(z);
		usleep(ZK_TICK_MS * 1000);
	}
}

void cs_zk_start(struct cs_zk *z)
{
	pthread_mutex_lock(&z->mu);
	if (!z->go) {
		z->go = true;
		pthread_cond_broadcast(&z->cond);
	}
	pthread_mutex_unlock(&z->mu);
}

struct cs_zk *cs_zk_new(const char *hosts, int wait_ms, unsigned max_entries,
			cs_deliver_fn deliver, char *err, size_t errlen)
{
	struct cs_zk *z = calloc(1, sizeof *z);
	if (!z) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	pthread_mutex_init(&z->mu, NULL);
	pthread_cond_init(&z->cond, NULL);
	snprintf(z->hosts, sizeof z->hosts, "%s", hosts);
	z->deliver = deliver;
	z->max_entries = max_entries;
	z->wait_ms = wait_ms;
	zoo_set_debug_level(ZOO_LOG_LEVEL_ERROR);
	if (pthread_create(&z->timer, NULL, timer_main, z) != 0) {
		snprintf(err, errlen, "cannot start the zookeeper timer thread");
		free(z);
		return NULL;
	}
	return z;
}

void cs_zk_free(struct cs_zk *z)
{
	if (!z)
		return;
	pthread_mutex_lock(&z->mu);
	z->stop = true;
	pthread_cond_broadcast(&z->cond);
	pthread_mutex_unlock(&z->mu);
	pthread_join(z->timer, NULL);
	if (z->zh)
		zookeeper_close(z->zh); /* runs the pending completions, which free */
	/* what is left is only referenced by watches that can no longer
	 * fire (a predecessor that was gone when we asked: on_pred_exists) */
	for (struct zk_req *q = z->all, *n; q; q = n) {
		n = q->anext;
		if (q->ticket)
			vconn_ticket_drop(q->ticket);
		free(q->dlv);
		free(q);
	}
	pthread_mutex_destroy(&z->mu);
	pthread_cond_destroy(&z->cond);
	free(z);
}

void cs_zk_ls(struct cs_zk *z, const char *name, size_t len, size_t max, struct evbuffer *out)
{
	int64_t now = now_ms();
	size_t lines = 0, more = 0;
	pthread_mutex_lock(&z->mu);
	for (struct zk_req *q = z->all; q; q = q->anext) {
		if (q->st == ZR_DONE || (name && (q->len != len || memcmp(q->name, name, len) != 0)))
			continue;
		if (lines++ >= max) {
			more++;
			continue;
		}
		if (q->st == ZR_HOLDING)
			evbuffer_add_printf(out, "STAT lock %s %" PRIu64 " %s %" PRId64 " 0\r\n", q->name,
					    q->token, q->peer, q->deadline > now ? q->deadline - now : 0);
		else
			evbuffer_add_printf(out, "STAT waiter %" PRIu64 " %s %s\r\n", q->token, q->peer,
					    q->name);
	}
	pthread_mutex_unlock(&z->mu);
	if (more)
		evbuffer_add_printf(out, "STAT more %zu\r\n", more);
	evbuffer_add(out, "END\r\n", 5);
}

void cs_zk_stats(struct cs_zk *z, struct cs_stats *st)
{
	pthread_mutex_lock(&z->mu);
	*st = z->st;
	st->locks = st->holders;
	pthread_mutex_unlock(&z->mu);
}
