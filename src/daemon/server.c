/*
 * server.c - accept loop, worker threads and the connection life cycle.
 *
 * Bytes cross through the connection's transport (transport.h: plain
 * TCP, or TLS when tls_cert/tls_key are set), never through a socket
 * call made here.  With auth_token or auth_tokens_file set, a
 * connection's first line must be "AUTH <token>" (auth.h) before any byte
 * reaches its service; a named token's connections are closed when a
 * reload removes the name (conn_revoked).
 * Life of a connection: accepted on the main thread (refused with an error
 * line when max_connections is reached), queued to a worker, which owns
 * it from then on (with cpu_affinity, until it moves to the worker pinned
 * on its client's CPU: conn_move): a read event, an input and an output
 * evbuffer.  Each
 * readable event is one recv() into the input buffer, then the service's
 * on_input, then the replies are written at once with one writev(); only
 * when the socket cannot take them all is a write event armed.  That is
 * memcached's pattern (two system calls per request: recv and send) and
 * the reason we do not use bufferevents here: a socket bufferevent costs
 * an ioctl(FIONREAD) per read plus an epoll_ctl pair and an extra
 * epoll_wait per reply (bench/ measured ~5.3 syscalls per request).
 * Back-pressure: when a client does not read its replies and they pile
 * up to the output budget (VCONN_OUT_BUDGET, service.h), we stop reading
 * from it and the service stops answering until they drain.  An
 * idle connection is closed after idle_timeout: a once-a-second sweep per
 * worker, not a timeout on each read event (libevent re-arms an event's
 * timeout on every activation, a heap operation per request).  SIGTERM: listeners close,
 * every connection is closed once its pending replies are written,
 * workers exit, and after drain_timeout_ms stragglers are cut.
 */
#include "server.h"

#include <arpa/inet.h>
#include <errno.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <event2/thread.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "../common/abstime.h"
#include "../services/memacct.h"
#include "auth.h"
#include "bw.h"
#include "log.h"
#include "knob_daemon.h"
#include "service.h"
#include "transport.h"
#include "workpool.h"

/* input a client may pile up behind a reply computed off the loop */
#define VD_IN_HIGH (4u << 20)
#define VD_PENDING_MAX 1024
#define VD_LINGER_S 2
/* One read per readable event takes at most this much: what one client
 * can make its worker parse and answer before the worker's other
 * connections get their turn (memcached: 20 requests per event).  A
 * client pouring requests or garbage as fast as we read gets 4 KiB a
 * turn, not 16 (bench/suite_hostile.sh: the good client's median
 * 130 -> 75 us, level with memcached's); a request-response client's
 * request fits in one read either way. */
#define VD_READ_CHUNK 4096
/* With a large request partly buffered (VD_READ_BIG_AFTER bytes: a large
 * value arriving), read up to VD_READ_BIG per call: a 64 KiB set then
 * takes a few recvs, not 16.  Not for any torn request: a client pouring
 * bytes without a newline, or a slowloris, would then get 256 KiB read
 * and parsed per event (the loop's other connections waiting behind it)
 * and a 256 KiB buffer each. */
#define VD_READ_BIG_AFTER 16384
#define VD_READ_BIG (256u << 10)
/* cpu_affinity: a movable connection checks every VD_MOVE_EVERY reads
 * which CPU its client sends from; see conn_move. */
#define VD_MOVE_EVERY 16
#define VD_MAX_CPUS 256
#define VD_ACCEPT_RETRY_MS 100
/* blocking jobs that may wait for the node's pool (then -EBUSY) */
#define VD_POOL_QUEUE 4096

struct vd_worker;

struct vconn {
	struct vconn *prev, *next; /* worker's list, for draining */
	struct vd_worker *w;
	struct vd_tconn t; /* the socket and its transport's state */
	const struct vd_transport *tp; /* how bytes cross (transport.h) */
	bool read_wants_write; /* the transport's read waits for writability */
	bool write_wants_read; /* its write waits for readability */
	bool authed; /* past the AUTH line (or none is asked for) */
	bool handshaking; /* TLS handshake not done: it has request_timeout */
	char ident[64]; /* vconn_identity: certificate CN, token name, "token" or "" */
	uint64_t ident_id; /* its digest (vconn_identity_id) */
	char tok_name[64]; /* the name its AUTH token had ("token": the shared one) */
	unsigned tok_gen; /* srv->tokens_gen when tok_name was last found in the set */
	struct event *rev, *wev; /* rev persists, with the idle timeout */
	struct evbuffer *in, *out;
	const struct vsvc *svc;
	void *svc_state;
	bool closing; /* free once output is flushed */
	bool broken; /* a write failed under vconn_write_held: free it from conn_write_cb */
	bool lingering; /* replies out, write side shut, discarding input */
	bool throttled; /* reading paused for back-pressure */
	bool peer_eof; /* the peer has finished sending */
	bool wev_armed;
	/* MaxNetworkBandwidth (bw.h) held back a write or a read of this
	 * bulk connection: bwev retries it when the bucket has refilled */
	bool bw_tx_wait, bw_rx_wait;
	struct event *bwev; /* lazily, on the owning worker's loop */
	uint8_t *direct; /* vconn_direct: the body's destination */
	size_t direct_left; /* bytes of it still to read */
	struct vconn_async *async; /* deferred replies (vconn_async.c), lazily */
	struct vconn_feed *feeds; /* pushes from other threads (vconn_feed.c) */
	uint64_t active_tick; /* worker tick of the last read or write (idle sweep) */
	uint32_t reads; /* read events so far (conn_move's cadence) */
	uint64_t body_len; /* vconn_body_begin: bytes admitted, 0 = none */
	uint64_t body_tick; /* worker tick when it was admitted */
	uint64_t req_tick; /* 1 + tick when the unfinished request began, 0: none */
	int move_cpu; /* 1 + the foreign CPU seen at the last check, 0: none */
	int rc; /* on_input's last answer (VSVC_WAIT: a reply is computed off
		 * the loop; VSVC_MORE: call again once the replies drain) */
	char peer[64];
	max_align_t state[]; /* svc->conn_size bytes */
};

/* A worker's inbox entry: a new socket from the accept loop, or (moved
 * set) a live connection handed over by another worker of the group. */
struct vd_pending {
	struct vconn *moved;
	evutil_socket_t fd;
	int svc_idx;
	struct sockaddr_storage addr;
	socklen_t addrlen;
};

struct vd_worker {
	struct vd_server *srv;
	pthread_t th;
	struct event_base *base;
	struct event *notify, *drain, *sweep;
	struct event *revoke; /* a reload changed the tokens: worker_revoke_cb */
	uint64_t tick; /* seconds since the worker started, from the sweep */
	pthread_mutex_t qlock;
	struct vd_pending q[VD_PENDING_MAX];
	int qhead, qlen;
	struct vconn *conns;
	bool draining;
	bool closed; /* under qlock: the loop has ended, the inbox takes nothing */
	int group; /* index of its service in vsvc_table */
	int cpu; /* pinned to this CPU (cpu_affinity), or -1 */
};

struct vd_server {
	struct vd_config cfg;
	struct event_base *base;
	struct evconnlistener *listeners[VD_MAX_SERVICES];
	void *svc_state[VD_MAX_SERVICES];
	struct vd_node node[VD_MAX_SERVICES]; /* what each service's init got */
	struct ma_acct *acct; /* the node's memory accountant */
	struct vd_workpool *pool; /* the node's pool for blocking work */
	bool svc_inited[VD_MAX_SERVICES];
	struct event *sig_term, *sig_int, *sig_hup;
	struct event *tick; /* once a second: the services' tick hooks */
	struct vd_worker *workers;
	int nworkers;
	/* each service's own workers: workers[first .. first + n - 1] */
	struct {
		int first, n, next;
		_Atomic int nconns; /* open connections of the service */
		int max_conns; /* its cap */
	} group[VD_MAX_SERVICES];
	/* accept failed for want of descriptors: listeners are paused until
	 * a connection closes or accept_retry fires (memcached's way) */
	_Atomic bool accept_paused;
	struct event *accept_retry;
	int refused_lingering; /* refused TLS sockets waiting to close (main thread) */
	/* cpu_affinity: the CPUs this process may run on; worker k of every
	 * group is pinned to cpus[k % ncpus].  ncpus 0: no pinning. */
	int cpus[VD_MAX_CPUS];
	int ncpus;
	_Atomic int nconns;
	_Atomic uint64_t bodies; /* bytes of admitted bodies (vconn_body_begin) */
	uint64_t body_budget; /* their bound */
	uint64_t out_hard; /* queued output beyond this closes a connection */
	struct vd_tls *tls; /* TLS contexts (NULL: plain TCP), transport_tls.c */
	pthread_mutex_t token_lock; /* guards tokens (SIGHUP replaces them) */
	struct vd_tokens *tokens; /* auth_token and auth_tokens_file's, as loaded */
	_Atomic unsigned tokens_gen; /* + 1 at each reload of tokens */
	bool token_on; /* tokens were asked for at start (a restart turns it on or off) */
};

struct evbuffer *vconn_out(struct vconn *c) { return c->out; }
void *vconn_state(struct vconn *c) { return c->state; }
void *vconn_svc(struct vconn *c) { return c->svc_state; }
const char *vconn_peer(struct vconn *c) { return c->peer; }
const char *vconn_identity(struct vconn *c) { return c->ident; }
uint64_t vconn_identity_id(struct vconn *c) { return c->ident_id; }

/* The connection authenticated as name (a certificate's CN, a token's
 * name or "token"). */
static void conn_set_identity(struct vconn *c, const char *name)
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int n = 0;
	snprintf(c->ident, sizeof c->ident, "%s", name);
	c->ident_id = 0;
	if (c->ident[0] && EVP_Digest(c->ident, strlen(c->ident), md, &n, EVP_sha256(), NULL) == 1)
		memcpy(&c->ident_id, md, sizeof c->ident_id);
	if (c->ident[0] && !c->ident_id)
		c->ident_id = 1;
}
struct event_base *vconn_base(struct vconn *c) { return c->w->base; }

size_t vconn_direct(struct vconn *c, void *dst, size_t len)
{
	size_t have = evbuffer_get_length(c->in);
	if (have > len)
		have = len;
	if (have > 0)
		evbuffer_remove(c->in, dst, have);
	c->direct = (uint8_t *)dst + have;
	c->direct_left = len - have;
	return c->direct_left;
}

size_t vconn_direct_left(struct vconn *c) { return c->direct_left; }

bool vconn_zero_copy(const struct vconn *c) { return c->tp == &vd_transport_tcp; }

bool vconn_out_full(const struct vconn *c)
{
	return evbuffer_get_length(c->out) >= VCONN_OUT_BUDGET;
}

void vconn_body_end(struct vconn *c)
{
	if (c->body_len == 0)
		return;
	atomic_fetch_sub(&c->w->srv->bodies, c->body_len);
	c->body_len = 0;
}

bool vconn_body_begin(struct vconn *c, uint64_t len)
{
	struct vd_server *srv = c->w->srv;
	vconn_body_end(c);
	if (len == 0)
		return true;
	/* a body larger than the whole budget (max_value may exceed it) asks
	 * for the whole budget: it is received alone, never refused for ever */
	if (len > srv->body_budget)
		len = srv->body_budget;
	uint64_t was = atomic_fetch_add(&srv->bodies, len);
	if (was > srv->body_budget || len > srv->body_budget - was) {
		atomic_fetch_sub(&srv->bodies, len);
		log_info_every("body_refused peer=%s svc=%s bytes=%llu reason=body_budget "
			       "budget=%llu",
			       c->peer, c->svc->name, (unsigned long long)len,
			       (unsigned long long)srv->body_budget);
		return false;
	}
	c->body_len = len;
	c->body_tick = c->w->tick;
	return true;
}
struct vconn_async **vconn_async_slot(struct vconn *c) { return &c->async; }
struct vconn_feed **vconn_feed_slot(struct vconn *c) { return &c->feeds; }

/* Frees a connection's events, buffers, socket and memory (any may be
 * missing when called for a half-built one; fd -1 is left alone). */
static void conn_release(struct vconn *c)
{
	if (!c)
		return;
	if (c->rev)
		event_free(c->rev);
	if (c->wev)
		event_free(c->wev);
	if (c->bwev)
		event_free(c->bwev);
	if (c->in)
		evbuffer_free(c->in);
	if (c->out)
		evbuffer_free(c->out);
	if (c->tp)
		c->tp->close(&c->t);
	free(c);
}

/* A worker's list of its connections (for the idle sweep and draining). */
static void worker_link(struct vd_worker *w, struct vconn *c)
{
	c->prev = NULL;
	c->next = w->conns;
	if (w->conns)
		w->conns->prev = c;
	w->conns = c;
}

static void worker_unlink(struct vd_worker *w, struct vconn *c)
{
	if (c->prev)
		c->prev->next = c->next;
	else
		w->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	c->prev = c->next = NULL;
}

/* Queues p to w's inbox and wakes w; false when the inbox is full or
 * its loop has ended. */
static bool worker_post(struct vd_worker *w, const struct vd_pending *p)
{
	pthread_mutex_lock(&w->qlock);
	bool ok = !w->closed && w->qlen < VD_PENDING_MAX;
	if (ok) {
		w->q[(w->qhead + w->qlen) % VD_PENDING_MAX] = *p;
		w->qlen++;
	}
	pthread_mutex_unlock(&w->qlock);
	if (ok)
		event_active(w->notify, EV_READ, 0);
	return ok;
}

static void server_conn_gone(struct vd_server *srv, int group)
{
	atomic_fetch_sub(&srv->group[group].nconns, 1);
	atomic_fetch_sub(&srv->nconns, 1);
	/* a descriptor is free again: let the main thread accept at once */
	if (atomic_load(&srv->accept_paused))
		event_active(srv->accept_retry, EV_TIMEOUT, 0);
}

static void conn_free(struct vconn *c)
{
	struct vd_worker *w = c->w;
	if (c->svc->conn_close)
		c->svc->conn_close(c);
	if (c->async)
		vconn_async_detach(c);
	if (c->feeds)
		vconn_feeds_detach(c);
	vconn_body_end(c);
	worker_unlink(w, c);
	conn_release(c);
	server_conn_gone(w->srv, w->group);
	if (w->draining && !w->conns)
		event_base_loopexit(w->base, NULL);
}

static void conn_write_cb(evutil_socket_t fd, short what, void *arg);

/* The bandwidth cap's timer: the bucket has refilled.  A held read
 * resumes through the read event, a held write like a writable socket. */
static void conn_bw_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)what;
	struct vconn *c = arg;
	if (c->bw_rx_wait) {
		c->bw_rx_wait = false;
		if (!c->throttled && !c->peer_eof && !c->closing)
			event_add(c->rev, NULL);
	}
	if (c->bw_tx_wait) {
		c->bw_tx_wait = false;
		conn_write_cb(fd, EV_WRITE, c); /* c may be freed */
	}
}

/* Holds c's writes (BW_TX) or reads (BW_RX) for wait_us: true, or false
 * when the timer cannot be had (the caller frees c). */
static bool conn_bw_wait(struct vconn *c, uint64_t wait_us, enum bw_dir d)
{
	if (!c->bwev)
		c->bwev = evtimer_new(c->w->base, conn_bw_cb, c);
	if (!c->bwev)
		return false;
	if (d == BW_TX)
		c->bw_tx_wait = true;
	else
		c->bw_rx_wait = true;
	struct timeval tv = {0, (suseconds_t)wait_us};
	evtimer_add(c->bwev, &tv);
	return true;
}

/* Writes what the output buffer holds, now.  Returns false if the
 * connection failed (the caller frees it); arms the write event when the
 * socket is full, disarms it when everything is out. */
static bool conn_flush(struct vconn *c)
{
	while (evbuffer_get_length(c->out) > 0) {
		size_t max = SIZE_MAX;
		if (c->svc->bulk & VSVC_BULK_TX) {
			uint64_t wait_us;
			max = bw_take(BW_TX, evbuffer_get_length(c->out), &wait_us);
			if (max == 0) {
				if (c->wev_armed) { /* the timer retries, not writability */
					event_del(c->wev);
					c->wev_armed = false;
				}
				return conn_bw_wait(c, wait_us, BW_TX);
			}
		}
		int n = c->tp->write(&c->t, c->out, max);
		if (max != SIZE_MAX)
			bw_refund(BW_TX, max - (n > 0 ? (size_t)n : 0));
		if (n < 0) {
			int e = EVUTIL_SOCKET_ERROR();
			if (e == EINTR)
				continue;
			if (e == EAGAIN || e == EWOULDBLOCK) {
				/* the transport may need to read first (TLS):
				 * conn_read_cb retries the write */
				c->write_wants_read = c->t.want == EV_READ;
				if (!c->write_wants_read && !c->wev_armed) {
					event_add(c->wev, NULL);
					c->wev_armed = true;
				}
				return true;
			}
			log_debug("connection from %s: %s", c->peer, evutil_socket_error_to_string(e));
			return false;
		}
		if (n == 0)
			return false;
		c->active_tick = c->w->tick; /* a slow reader is not idle */
	}
	if (c->wev_armed) {
		event_del(c->wev);
		c->wev_armed = false;
	}
	return true;
}

/* Replies are out; close.  If the peer may still be sending (NUL padding
 * after a request, a pipelined tail), closing now would turn its unread
 * bytes into a reset that can destroy our reply in flight, so half-close
 * and discard input until the peer closes or VD_LINGER_S passes. */
static void conn_close_flushed(struct vconn *c)
{
	if (c->peer_eof || c->w->draining) { /* shutting down: no lingering */
		conn_free(c);
		return;
	}
	c->tp->shutdown(&c->t);
	c->lingering = true;
	c->active_tick = c->w->tick; /* the sweep ends the linger */
	event_add(c->rev, NULL);
}

/* Stop serving and close as soon as the replies are out. */
static void conn_finish(struct vconn *c)
{
	c->closing = true;
	event_del(c->rev);
	if (evbuffer_get_length(c->out) == 0)
		conn_close_flushed(c);
	else if (!c->wev_armed) {
		event_add(c->wev, NULL);
		c->wev_armed = true;
	}
}

/* The transport holds input no readable event will announce (a TLS
 * record partly taken): schedule another read. */
static void conn_kick_pending(struct vconn *c)
{
	if (c->tp->pending && !c->throttled && !c->peer_eof && !c->closing && !c->bw_rx_wait &&
	    c->tp->pending(&c->t))
		event_active(c->rev, EV_READ, 0);
}

/* Reading is paused (back-pressure) while replies wait to be written
 * after a VSVC_MORE, while the output holds a full budget, or while a
 * client piles up input behind a reply computed off the loop; otherwise
 * it is on (unless the peer has finished sending).  Recomputed after
 * every on_input and every drain, so no path can leave a connection
 * paused with nothing left that would resume it. */
static void conn_set_reading(struct vconn *c)
{
	bool pause = (c->rc == VSVC_MORE && evbuffer_get_length(c->out) > 0) ||
		     vconn_out_full(c) ||
		     (c->rc == VSVC_WAIT && evbuffer_get_length(c->in) > VD_IN_HIGH);
	if (pause == c->throttled)
		return;
	c->throttled = pause;
	if (pause) {
		event_del(c->rev);
	} else {
		c->active_tick = c->w->tick;
		if (!c->peer_eof && !c->bw_rx_wait) { /* else conn_bw_cb adds it */
			event_add(c->rev, NULL);
			conn_kick_pending(c);
		}
	}
}

/* Before a connection's service sees a byte: its AUTH line (auth.h).
 * 1: authenticated, go on; 0: not whole yet; -1: refused (the error
 * reply is queued and the connection finishing). */
static int conn_auth(struct vconn *c, bool eof)
{
	struct vd_server *srv = c->w->srv;
	size_t len = evbuffer_get_length(c->in);
	size_t take = len < VD_AUTH_MAX_LINE ? len : VD_AUTH_MAX_LINE;
	const char *buf = (const char *)evbuffer_pullup(c->in, (ev_ssize_t)take);
	const char *tok = NULL;
	size_t toklen = 0;
	int n = buf ? vd_auth_parse(buf, take, &tok, &toklen) : -1;
	if (n == 0 && !eof)
		return 0;
	bool ok = false;
	if (n > 0) {
		pthread_mutex_lock(&srv->token_lock);
		ok = vd_tokens_match(srv->tokens, tok, toklen, c->tok_name, sizeof c->tok_name);
		c->tok_gen = atomic_load(&srv->tokens_gen);
		pthread_mutex_unlock(&srv->token_lock);
	}
	if (!ok) {
		log_info_every("auth_refused peer=%s svc=%s reason=%s", c->peer, c->svc->name,
			       n > 0 ? "wrong_token" : "no_auth_line");
		evbuffer_drain(c->in, len);
		evbuffer_add_printf(c->out, "ERR EACCES %s (set auth_token in virgo_client.conf "
					    "to the node's auth_token, or to your token of its "
					    "auth_tokens_file)\r\n",
				    n > 0 ? "wrong token" : "authentication required: send AUTH <token> first");
		if (!conn_flush(c)) {
			conn_free(c);
			return -1;
		}
		conn_finish(c);
		return -1;
	}
	evbuffer_drain(c->in, (size_t)n);
	evbuffer_add(c->out, "OK\r\n", 4);
	c->authed = true;
	if (!c->ident[0]) /* a client certificate names it already */
		conn_set_identity(c, c->tok_name);
	return 1;
}

/* Was c authenticated by a token that a reload has since removed?  Its
 * name is looked up again once per reload (tok_gen); a name still there
 * keeps its connections even if its token changed (a rotation). */
static bool conn_revoked(struct vconn *c)
{
	struct vd_server *srv = c->w->srv;
	if (!c->tok_name[0] || c->tok_gen == atomic_load(&srv->tokens_gen))
		return false;
	pthread_mutex_lock(&srv->token_lock);
	bool has = vd_tokens_has(srv->tokens, c->tok_name);
	c->tok_gen = atomic_load(&srv->tokens_gen);
	pthread_mutex_unlock(&srv->token_lock);
	if (has)
		return false;
	log_info("conn_closed peer=%s svc=%s ident=%s reason=token_removed", c->peer,
		 c->svc->name, c->tok_name);
	return true;
}

/* Hands new input to the service and writes its replies; c may be freed
 * on return. */
static void conn_process(struct vconn *c, bool eof)
{
	int rc;
	bool consumed = false;
	if (!c->authed && conn_auth(c, eof) <= 0)
		return;
	for (;;) {
		size_t before = evbuffer_get_length(c->in);
		rc = c->rc = c->svc->on_input(c, c->in, eof);
		consumed |= evbuffer_get_length(c->in) < before;
		if (!conn_flush(c)) {
			conn_free(c);
			return;
		}
		if (evbuffer_get_length(c->out) > c->w->srv->out_hard) {
			log_warn_every("conn_closed peer=%s svc=%s reason=output_budget queued=%zu",
				       c->peer, c->svc->name, evbuffer_get_length(c->out));
			conn_free(c);
			return;
		}
		/* VSVC_MORE with everything written: take the next requests
		 * now; with replies left, conn_write_cb calls us again */
		if (rc != VSVC_MORE || evbuffer_get_length(c->out) > 0)
			break;
	}
	/* VSVC_WAIT: a reply is being computed off the loop; the service
	 * calls vconn_resume when it is written.  Keep reading (to see a
	 * disconnect) unless the client piles up input meanwhile. */
	if (rc == VSVC_CLOSE || (eof && rc == VSVC_KEEP)) {
		conn_finish(c);
		return;
	}
	/* the request deadline (slowloris): runs from when unconsumed input
	 * was first left over, restarts whenever the service takes some */
	if (evbuffer_get_length(c->in) == 0 && c->direct_left == 0)
		c->req_tick = 0;
	else if (consumed || c->req_tick == 0)
		c->req_tick = c->w->tick + 1;
	conn_set_reading(c);
}

/* After a write outside conn_write_cb: feeds still holding bytes when it
 * emptied the output (a feed moves at most its out_cap at a time) are
 * run again, else they would wait for a push that may never come; then
 * reading follows the output's state. */
static void conn_written(struct vconn *c)
{
	if (c->feeds && evbuffer_get_length(c->out) == 0)
		vconn_feeds_drained(c);
	if (!c->closing)
		conn_set_reading(c);
}

void vconn_flush(struct vconn *c)
{
	if (!conn_flush(c)) {
		conn_free(c);
		return;
	}
	conn_written(c);
}

void vconn_write_held(struct vconn *c)
{
	if (c->broken)
		return;
	if (!conn_flush(c)) { /* the caller may hold what conn_close takes */
		c->broken = true;
		event_active(c->wev, EV_WRITE, 0);
		return;
	}
	conn_written(c);
}

int vconn_ticket_fd(struct vconn *c, bool *metered)
{
	*metered = (c->svc->bulk & VSVC_BULK_TX) != 0;
	if (c->tp != &vd_transport_tcp || c->closing || c->broken || c->lingering || c->wev_armed ||
	    c->write_wants_read || c->bw_tx_wait || evbuffer_get_length(c->out) > 0)
		return -1;
	return c->t.fd;
}

int vconn_direct_fd(struct vconn *c)
{
	bool metered;
	int fd = vconn_ticket_fd(c, &metered);
	return c->svc->bulk ? -1 : fd; /* bw_tx_wait: set for bulk services only */
}

void vconn_direct_done(struct vconn *c) { c->active_tick = c->w->tick; }

void vconn_resume(struct vconn *c)
{
	if (c->closing)
		return;
	conn_process(c, c->peer_eof);
}

/* Nothing in flight: no input, no output, no direct body, no deferred
 * reply, no handshake or AUTH line under way and nothing the transport
 * holds; the connection's whole state is its struct (and its SSL). */
static bool conn_quiet(const struct vconn *c)
{
	return c->svc->movable && !c->closing && !c->lingering && !c->throttled && !c->peer_eof &&
	       !c->w->draining && c->direct_left == 0 && !c->async && !c->feeds &&
	       !c->bw_tx_wait && !c->bw_rx_wait &&
	       evbuffer_get_length(c->in) == 0 && evbuffer_get_length(c->out) == 0 &&
	       c->authed && !c->handshaking && !c->read_wants_write && !c->write_wants_read &&
	       !(c->tp->pending && c->tp->pending(&c->t)); /* TLS: nothing held decrypted */
}

/* The worker of w's group pinned to `cpu` that should take connection
 * c (several may share a CPU when a group has more threads than there are
 * CPUs: the socket number picks one), or NULL when none is. */
static struct vd_worker *group_worker_on(struct vd_worker *w, const struct vconn *c, int cpu)
{
	struct vd_server *srv = w->srv;
	int first = srv->group[w->group].first, n = srv->group[w->group].n, pos = -1;
	for (int i = 0; i < srv->ncpus && i < n; i++)
		if (srv->cpus[i] == cpu)
			pos = i;
	if (pos < 0)
		return NULL;
	int count = (n - pos + srv->ncpus - 1) / srv->ncpus; /* workers pos, pos + ncpus, ... */
	return &srv->workers[first + pos + srv->ncpus * ((int)c->t.fd % count)];
}

/* cpu_affinity: on loopback (and with RSS/RPS) a socket's incoming CPU is
 * where its client thread runs.  When two checks in a row find it on
 * another CPU than c's worker, c moves to the group's worker pinned there,
 * so the client and the thread serving it wake each other on one CPU:
 * no cross-CPU wake-up per request (measured: 5% less CPU per request on
 * both sides, bench/).  Only quiet connections move (conn_quiet), by
 * handing the struct to the other worker's inbox.  true: c now belongs
 * to the other worker and must not be touched. */
static bool conn_move(struct vconn *c)
{
	struct vd_worker *w = c->w;
	int cpu = -1;
	socklen_t len = sizeof cpu;
	if (getsockopt(c->t.fd, SOL_SOCKET, SO_INCOMING_CPU, &cpu, &len) != 0 || cpu < 0 ||
	    cpu == w->cpu) {
		c->move_cpu = 0;
		return false;
	}
	if (c->move_cpu != cpu + 1) { /* a client seen there once may just be passing */
		c->move_cpu = cpu + 1;
		return false;
	}
	c->move_cpu = 0;
	struct vd_worker *t = group_worker_on(w, c, cpu);
	if (!t || t == w)
		return false;
	event_del(c->rev);
	if (c->bwev) { /* not pending (conn_quiet): the new worker makes its own */
		event_free(c->bwev);
		c->bwev = NULL;
	}
	worker_unlink(w, c);
	struct vd_pending p = {.moved = c, .fd = c->t.fd};
	/* once posted, c is t's (it may even be freed already): log from copies */
	char peer[sizeof c->peer];
	memcpy(peer, c->peer, sizeof peer);
	const char *svc = c->svc->name;
	int k = (int)(t - &w->srv->workers[w->srv->group[w->group].first]);
	if (event_base_set(t->base, c->rev) == 0 && event_base_set(t->base, c->wev) == 0 &&
	    worker_post(t, &p)) {
		log_debug("connection from %s moves to %s/%d (its client runs on CPU %d)", peer, svc,
			  k, cpu);
		return true;
	}
	event_base_set(w->base, c->rev);
	event_base_set(w->base, c->wev);
	worker_link(w, c);
	event_add(c->rev, NULL);
	return false;
}

static void conn_read_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)what;
	struct vconn *c = arg;
	(void)fd;
	if (c->write_wants_read) { /* the transport's write waited for this */
		c->write_wants_read = false;
		if (!conn_flush(c)) {
			conn_free(c);
			return;
		}
	}
	if (c->lingering) {
		char sink[4096];
		struct iovec v = {sink, sizeof sink};
		ssize_t r = c->tp->readv(&c->t, &v, 1);
		if (r == 0 || (r < 0 && errno != EAGAIN && errno != EINTR))
			conn_free(c);
		return;
	}
	if (c->w->cpu >= 0 && ++c->reads % VD_MOVE_EVERY == 0 && conn_quiet(c) && conn_move(c))
		return; /* the new worker reads it */
	/* v[0]: a body being read straight to its destination (vconn_direct),
	 * then the input buffer for what follows it, in one readv */
	struct evbuffer_iovec v[3];
	int d = 0;
	if (c->direct_left > 0) {
		v[0].iov_base = c->direct;
		v[0].iov_len = c->direct_left;
		d = 1;
	}
	size_t want = !d && evbuffer_get_length(c->in) >= VD_READ_BIG_AFTER ? VD_READ_BIG : VD_READ_CHUNK;
	size_t grant = SIZE_MAX;
	if ((c->svc->bulk & VSVC_BULK_RX) && c->authed && !c->handshaking) {
		uint64_t wait_us;
		grant = bw_take(BW_RX, want + (d ? c->direct_left : 0), &wait_us);
		if (grant == 0) { /* leave it in the socket: the sender slows down */
			event_del(c->rev);
			if (!conn_bw_wait(c, wait_us, BW_RX))
				conn_free(c);
			return;
		}
	}
	int nv = evbuffer_reserve_space(c->in, (ev_ssize_t)want, v + d, 2);
	if (nv < 1) {
		log_error("out of memory reading from %s", c->peer);
		if (grant != SIZE_MAX)
			bw_refund(BW_RX, grant);
		conn_free(c);
		return;
	}
	nv += d;
	if (grant != SIZE_MAX) { /* read at most the grant */
		size_t left = grant;
		int k = 0;
		for (; k < nv && left > 0; k++) {
			if (v[k].iov_len > left)
				v[k].iov_len = left;
			left -= v[k].iov_len;
		}
		nv = k;
	}
	ssize_t r = c->tp->readv(&c->t, (struct iovec *)v, nv);
	if (grant != SIZE_MAX)
		bw_refund(BW_RX, grant - (r > 0 ? (size_t)r : 0));
	c->active_tick = c->w->tick;
	if (c->handshaking && vd_tls_established(&c->t)) {
		/* the handshake's deadline ends with it (an AUTH line, if
		 * asked for, keeps its own: conn_process) */
		c->handshaking = false;
		const char *cn = vd_tls_peer_name(&c->t);
		if (cn)
			conn_set_identity(c, cn);
		if (c->authed && evbuffer_get_length(c->in) == 0 && c->direct_left == 0 && r <= 0)
			c->req_tick = 0;
	}
	if (r > 0) {
		size_t left = (size_t)r;
		if (d) {
			size_t n = left < c->direct_left ? left : c->direct_left;
			c->direct += n;
			c->direct_left -= n;
			left -= n;
		}
		int used = d;
		for (; used < nv && left > 0; used++) {
			if (v[used].iov_len > left)
				v[used].iov_len = left;
			left -= v[used].iov_len;
		}
		if (used > d)
			evbuffer_commit_space(c->in, v + d, used - d);
		conn_kick_pending(c); /* before c may be freed; freeing cancels it */
		if (c->direct_left == 0)
			conn_process(c, false);
	} else if (r == 0) {
		c->peer_eof = true;
		event_del(c->rev); /* nothing more will come; don't spin on EOF */
		conn_process(c, true);
	} else if (errno == EAGAIN && c->t.want == EV_WRITE) {
		/* the transport must write before it can read (TLS):
		 * conn_write_cb calls us again */
		c->read_wants_write = true;
		if (!c->wev_armed) {
			event_add(c->wev, NULL);
			c->wev_armed = true;
		}
	} else if (errno != EAGAIN && errno != EINTR) {
		log_debug("connection from %s: %s", c->peer, strerror(errno));
		conn_free(c);
	}
}

static void conn_write_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	struct vconn *c = arg;
	if (c->broken) { /* vconn_write_held: its write failed */
		conn_free(c);
		return;
	}
	if (c->read_wants_write) { /* the transport's read waited for this */
		c->read_wants_write = false;
		if (evbuffer_get_length(c->out) == 0 && c->wev_armed) {
			event_del(c->wev);
			c->wev_armed = false;
		}
		conn_read_cb(c->t.fd, EV_READ, c);
		return; /* c may be gone; a pending write re-arms itself */
	}
	if (!conn_flush(c)) {
		conn_free(c);
		return;
	}
	if (evbuffer_get_length(c->out) > 0)
		return;
	if (c->closing) {
		conn_close_flushed(c);
		return;
	}
	if (c->feeds)
		vconn_feeds_drained(c);
	if (c->throttled) {
		conn_set_reading(c);
		if (c->rc == VSVC_MORE ||
		    (c->rc != VSVC_WAIT && (evbuffer_get_length(c->in) > 0 || c->peer_eof)))
			conn_process(c, c->peer_eof);
	}
}

static void peer_name(const struct sockaddr *sa, char *buf, size_t len)
{
	char host[INET6_ADDRSTRLEN] = "?";
	int port = 0;
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *s = (const struct sockaddr_in *)sa;
		inet_ntop(AF_INET, &s->sin_addr, host, sizeof host);
		port = ntohs(s->sin_port);
	} else if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *s = (const struct sockaddr_in6 *)sa;
		inet_ntop(AF_INET6, &s->sin6_addr, host, sizeof host);
		port = ntohs(s->sin6_port);
	}
	snprintf(buf, len, "%s:%d", host, port);
}

static void worker_adopt(struct vd_worker *w, struct vd_pending *p)
{
	struct vd_server *srv = w->srv;
	const struct vsvc *svc = vsvc_table[p->svc_idx];
	struct vconn *c = calloc(1, sizeof *c + svc->conn_size);
	if (c) {
		c->t.fd = p->fd;
		c->tp = &vd_transport_tcp;
		if (srv->tls && vd_config_svc_secured(&srv->cfg, p->svc_idx)) {
			c->tp = &vd_transport_tls;
			if (vd_tls_attach(srv->tls, &c->t) != 0)
				c->tp = NULL; /* refused below */
		}
		c->rev = event_new(w->base, p->fd, EV_READ | EV_PERSIST, conn_read_cb, c);
		c->wev = event_new(w->base, p->fd, EV_WRITE | EV_PERSIST, conn_write_cb, c);
		c->in = evbuffer_new();
		c->out = evbuffer_new();
	}
	if (!c || !c->tp || !c->rev || !c->wev || !c->in || !c->out ||
	    evutil_make_socket_nonblocking(p->fd) != 0) {
		log_error("out of memory accepting a connection");
		if (c)
			c->t.fd = -1; /* closed below */
		conn_release(c);
		evutil_closesocket(p->fd);
		server_conn_gone(srv, p->svc_idx);
		return;
	}
	c->w = w;
	c->svc = svc;
	c->svc_state = srv->svc_state[p->svc_idx];
	c->authed = !srv->token_on || strcmp(svc->name, "memcache") == 0;
	peer_name((struct sockaddr *)&p->addr, c->peer, sizeof c->peer);
	worker_link(w, c);
	int one = 1;
	setsockopt(p->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	c->active_tick = w->tick;
	/* a TLS handshake or the AUTH line must be done within
	 * request_timeout, however slowly its bytes trickle in */
	c->handshaking = c->tp == &vd_transport_tls;
	if (c->handshaking || !c->authed)
		c->req_tick = w->tick + 1;
	event_add(c->rev, NULL);
	if (w->draining)
		conn_finish(c);
}

/* A connection moved here by another worker of the group (conn_move). */
static void worker_adopt_moved(struct vd_worker *w, struct vconn *c)
{
	c->w = w;
	worker_link(w, c);
	c->active_tick = w->tick;
	event_add(c->rev, NULL);
	if (w->draining)
		conn_finish(c);
}

static void worker_notify_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	struct vd_worker *w = arg;
	for (;;) {
		struct vd_pending p;
		pthread_mutex_lock(&w->qlock);
		if (w->qlen == 0) {
			pthread_mutex_unlock(&w->qlock);
			return;
		}
		p = w->q[w->qhead];
		w->qhead = (w->qhead + 1) % VD_PENDING_MAX;
		w->qlen--;
		pthread_mutex_unlock(&w->qlock);
		if (p.moved)
			worker_adopt_moved(w, p.moved);
		else
			worker_adopt(w, &p);
	}
}

/* Once a second: close connections idle for idle_timeout (reading enabled
 * and nothing received) and end lingers older than VD_LINGER_S. */
static void worker_sweep_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	struct vd_worker *w = arg;
	w->tick++;
	uint64_t idle = (uint64_t)w->srv->cfg.idle_timeout_s;
	struct vconn *c = w->conns;
	while (c) {
		struct vconn *n = c->next;
		uint64_t quiet = w->tick - c->active_tick;
		if (c->lingering && quiet >= VD_LINGER_S) {
			conn_free(c);
		} else if (conn_revoked(c)) { /* one moved here since the reload */
			conn_free(c);
		} else if (c->body_len && w->tick - c->body_tick > (uint64_t)w->srv->cfg.body_timeout_s) {
			log_info_every("conn_closed peer=%s svc=%s reason=body_timeout bytes=%llu "
				       "timeout_s=%d",
				       c->peer, c->svc->name, (unsigned long long)c->body_len,
				       w->srv->cfg.body_timeout_s);
			conn_free(c);
		} else if (c->req_tick && !c->body_len && !c->lingering && !c->closing &&
			   !c->throttled && c->rc != VSVC_WAIT &&
			   w->tick + 1 - c->req_tick > (uint64_t)w->srv->cfg.request_timeout_s) {
			/* a request begun and never finished, however slowly its
			 * bytes trickle in (one byte every few seconds keeps a
			 * connection from ever being idle) */
			log_info_every("conn_closed peer=%s svc=%s reason=request_timeout "
				       "timeout_s=%d",
				       c->peer, c->svc->name, w->srv->cfg.request_timeout_s);
			conn_free(c);
		} else if (!c->lingering && c->rc != VSVC_WAIT && quiet > idle) {
			/* nothing read or written for idle_timeout: an idle
			 * client, or one that stopped reading its replies
			 * (throttled, or closing with replies unsent), whose
			 * buffers would otherwise be held for ever.  "> idle":
			 * ticks are whole seconds of this worker's clock, so
			 * one that arrived just before a tick has quiet 1 a
			 * moment later; > gives idle..idle+1 s */
			log_debug("closing %s connection from %s",
				  evbuffer_get_length(c->out) ? "stalled" : "idle", c->peer);
			conn_free(c);
		}
		c = n;
	}
}

/* A reload removed token names: close their connections now (the sweep
 * catches one that was moving between workers meanwhile).  Closed at
 * once, not after its replies: the identity may no longer be served. */
static void worker_revoke_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	struct vd_worker *w = arg;
	for (struct vconn *c = w->conns, *n; c; c = n) {
		n = c->next;
		if (conn_revoked(c))
			conn_free(c);
	}
}

static void worker_drain_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	struct vd_worker *w = arg;
	w->draining = true;
	struct vconn *c = w->conns;
	while (c) {
		struct vconn *n = c->next;
		if (!c->closing)
			conn_finish(c);
		c = n;
	}
	if (!w->conns)
		event_base_loopexit(w->base, NULL);
}

static void *worker_main(void *arg)
{
	struct vd_worker *w = arg;
	event_base_loop(w->base, EVLOOP_NO_EXIT_ON_EMPTY);
	/* take what the inbox still holds (moved connections, new sockets),
	 * so that every connection is freed below */
	pthread_mutex_lock(&w->qlock);
	w->closed = true;
	pthread_mutex_unlock(&w->qlock);
	worker_notify_cb(-1, 0, w);
	while (w->conns)
		conn_free(w->conns);
	return NULL;
}

#define VD_REFUSE_LINGER_MAX 256 /* refused TLS sockets kept open at once */

/* A refused TLS socket, its alert sent: the client's ClientHello (or
 * EOF) came, or a second passed; closing now is a FIN, not a reset that
 * would destroy the alert before the client read it. */
static void refuse_linger_cb(evutil_socket_t fd, short what, void *arg)
{
	struct vd_server *srv = arg;
	(void)what;
	char sink[4096];
	for (int i = 0; i < 16 && recv(fd, sink, sizeof sink, MSG_DONTWAIT) > 0; i++)
		;
	evutil_closesocket(fd);
	srv->refused_lingering--;
}

/* A connection refused at accept: the error line, or on a port that
 * requires TLS a TLS alert (plain text there would be garbage to a TLS
 * client, and is not what that port may send). */
static void refuse(struct vd_server *srv, int idx, evutil_socket_t fd, const char *line)
{
	if (srv->tls && vd_config_svc_secured(&srv->cfg, idx)) {
		vd_tls_refuse(fd);
		struct timeval tv = {1, 0};
		if (srv->refused_lingering < VD_REFUSE_LINGER_MAX &&
		    evutil_make_socket_nonblocking(fd) == 0 &&
		    event_base_once(srv->base, fd, EV_READ | EV_TIMEOUT, refuse_linger_cb, srv,
				    &tv) == 0) {
			srv->refused_lingering++;
			return;
		}
		evutil_closesocket(fd);
		return;
	}
	ssize_t r = send(fd, line, strlen(line), MSG_NOSIGNAL | MSG_DONTWAIT);
	(void)r;
	evutil_closesocket(fd);
}

static void accept_cb(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *addr,
		      int addrlen, void *arg)
{
	(void)l;
	struct vd_server *srv = arg;
	int idx = -1;
	for (int i = 0; vsvc_table[i]; i++)
		if (srv->listeners[i] == l)
			idx = i;
	char peer[64];
	/* max_connections is a live knob (knob_daemon.c) */
	int max_conns = __atomic_load_n(&srv->cfg.max_conns, __ATOMIC_RELAXED);
	if (atomic_fetch_add(&srv->nconns, 1) >= max_conns) {
		atomic_fetch_sub(&srv->nconns, 1);
		peer_name(addr, peer, sizeof peer);
		log_warn_every("conn_refused peer=%s svc=%s reason=max_connections limit=%d", peer,
			       vsvc_table[idx]->name, max_conns);
		refuse(srv, idx, fd, "ERR EBUSY too many connections\r\n");
		return;
	}
	if (atomic_fetch_add(&srv->group[idx].nconns, 1) >= srv->group[idx].max_conns) {
		atomic_fetch_sub(&srv->group[idx].nconns, 1);
		atomic_fetch_sub(&srv->nconns, 1);
		peer_name(addr, peer, sizeof peer);
		log_warn_every("conn_refused peer=%s svc=%s reason=service_max_connections "
			       "limit=%d",
			       peer, vsvc_table[idx]->name, srv->group[idx].max_conns);
		refuse(srv, idx, fd, "ERR EBUSY too many connections\r\n");
		return;
	}
	struct vd_worker *w = &srv->workers[srv->group[idx].first + srv->group[idx].next];
	srv->group[idx].next = (srv->group[idx].next + 1) % srv->group[idx].n;
	struct vd_pending p = {.fd = fd, .svc_idx = idx};
	memcpy(&p.addr, addr, (size_t)addrlen < sizeof p.addr ? (size_t)addrlen : sizeof p.addr);
	p.addrlen = (socklen_t)addrlen;
	if (!worker_post(w, &p)) {
		atomic_fetch_sub(&srv->group[idx].nconns, 1);
		atomic_fetch_sub(&srv->nconns, 1);
		peer_name(addr, peer, sizeof peer);
		log_warn_every("conn_refused peer=%s svc=%s reason=worker_inbox_full", peer,
			       vsvc_table[idx]->name);
		refuse(srv, idx, fd, "ERR EBUSY server overloaded\r\n");
	}
}

static void listeners_set(struct vd_server *srv, bool on)
{
	for (int i = 0; vsvc_table[i]; i++)
		if (srv->listeners[i]) {
			if (on)
				evconnlistener_enable(srv->listeners[i]);
			else
				evconnlistener_disable(srv->listeners[i]);
		}
}

/* accept() failed.  Out of descriptors (EMFILE, ENFILE) or kernel memory:
 * the pending connection stays in the backlog and the listener stays
 * readable, so retrying at once would spin (and log) as fast as the CPU
 * allows.  Pause every listener; resume when a connection closes or after
 * VD_ACCEPT_RETRY_MS.  Other errors (a client that reset before accept)
 * are passing. */
static void accept_error_cb(struct evconnlistener *l, void *arg)
{
	(void)l;
	struct vd_server *srv = arg;
	int e = EVUTIL_SOCKET_ERROR();
	if (e != EMFILE && e != ENFILE && e != ENOBUFS && e != ENOMEM) {
		log_debug("accept: %s", evutil_socket_error_to_string(e));
		return;
	}
	if (atomic_exchange(&srv->accept_paused, true))
		return;
	listeners_set(srv, false);
	log_warn_every("accept: %s (%d connections open); not accepting until a connection "
		       "closes",
		       evutil_socket_error_to_string(e), atomic_load(&srv->nconns));
	struct timeval tv = {0, VD_ACCEPT_RETRY_MS * 1000};
	event_add(srv->accept_retry, &tv);
}

static void accept_retry_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	struct vd_server *srv = arg;
	if (!atomic_exchange(&srv->accept_paused, false))
		return;
	event_del(srv->accept_retry);
	listeners_set(srv, true);
}

static void signal_cb(evutil_socket_t sig, short what, void *arg)
{
	(void)what;
	struct vd_server *srv = arg;
	log_info("signal %d: stopping (draining connections)", (int)sig);
	event_base_loopexit(srv->base, NULL);
}

/* SIGHUP, tokens on: the new auth_token and auth_tokens_file (re-read)
 * replace the old, and connections of names no longer there are closed.
 * Neither set, or a file that cannot be used: the old tokens stay. */
static int server_reload_tokens(struct vd_server *srv, const struct vd_config *nc)
{
	char err[512];
	if (!nc->auth_token[0] && !nc->auth_tokens_file[0]) {
		log_error("SIGHUP: auth_token and auth_tokens_file removed; keeping the old tokens "
			  "(a restart turns token authentication off)");
		return -1;
	}
	struct vd_tokens *t = vd_tokens_load(nc->auth_token, nc->auth_tokens_file, err, sizeof err);
	if (!t) {
		log_error("SIGHUP: %s; keeping the old tokens", err);
		return -1;
	}
	pthread_mutex_lock(&srv->token_lock);
	struct vd_tokens *old = srv->tokens;
	srv->tokens = t;
	atomic_fetch_add(&srv->tokens_gen, 1);
	pthread_mutex_unlock(&srv->token_lock);
	vd_tokens_free(old);
	log_info("SIGHUP: tokens re-read (%s%zu named)", nc->auth_token[0] ? "auth_token, " : "",
		 vd_tokens_named(t));
	for (int i = 0; i < srv->nworkers; i++)
		if (srv->workers[i].base)
			event_active(srv->workers[i].revoke, EV_READ, 0);
	return 0;
}

/* SIGHUP: re-read the config file; log_level and the keys services mark
 * reload take effect (each service's reload hook), the rest on restart.
 * A file that no longer parses changes nothing. */
static void hup_cb(evutil_socket_t sig, short what, void *arg)
{
	(void)sig;
	(void)what;
	struct vd_server *srv = arg;
	int rc = vlog_reopen();
	if (rc != 0)
		log_error("SIGHUP: cannot reopen the log file: %s; still writing to the old one",
			  strerror(-rc));
	if (!srv->cfg.source[0]) {
		log_info("SIGHUP: running on built-in defaults, no config file to re-read");
		return;
	}
	struct vd_config *nc = malloc(sizeof *nc);
	char err[512];
	if (!nc)
		return;
	vd_config_defaults(nc);
	if (vd_config_load(nc, srv->cfg.source, err, sizeof err) != 0) {
		log_error("SIGHUP: %s; keeping the running settings", err);
		free(nc);
		return;
	}
	vlog_set_level(nc->log_level);
	int failed = 0;
	if (srv->tls) {
		if (vd_tls_reload(srv->tls, nc, err, sizeof err) != 0) {
			log_error("SIGHUP: %s; new connections keep the old certificates", err);
			failed++;
		} else {
			log_info("SIGHUP: TLS certificates re-read (%s%s%s); open connections keep "
				 "theirs",
				 nc->tls_cert, nc->tls_ca[0] ? ", CA " : "", nc->tls_ca);
		}
	}
	if (srv->token_on && server_reload_tokens(srv, nc) != 0)
		failed++;
	else if (!srv->token_on && (nc->auth_token[0] || nc->auth_tokens_file[0]))
		log_warn("SIGHUP: token authentication was off at start: a restart turns it on");
	for (int i = 0; vsvc_table[i]; i++)
		if (srv->svc_inited[i] && vsvc_table[i]->reload &&
		    vsvc_table[i]->reload(srv->svc_state[i], vd_config_settings(nc, i)) != 0) {
			log_error("SIGHUP: %s refused its new settings; it keeps the old ones",
				  vsvc_table[i]->name);
			failed++;
		}
	if (!failed)
		log_info("SIGHUP: reloaded %s (log_level and reloadable service keys; the rest "
			 "change on restart)",
			 srv->cfg.source);
	free(nc);
}

static void server_tick_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	struct vd_server *srv = arg;
	/* memory freed after a burst goes back to the system (memacct.h
	 * says when), whichever service freed it */
	ma_tick(srv->acct);
	for (int i = 0; vsvc_table[i]; i++)
		if (srv->svc_inited[i] && vsvc_table[i]->tick)
			vsvc_table[i]->tick(srv->svc_state[i]);
}

static bool is_loopback(const char *addr)
{
	return strncmp(addr, "127.", 4) == 0 || strcmp(addr, "::1") == 0 ||
	       strcmp(addr, "localhost") == 0;
}

static int bind_listener(struct vd_server *srv, int idx, int port)
{
	struct sockaddr_storage ss;
	int sslen = sizeof ss;
	char spec[128];
	const char *addr = srv->cfg.listen;
	/* the memcached port stays plain for memcached clients: on a node
	 * reachable from elsewhere it then listens on loopback only */
	if (!is_loopback(addr) && !srv->cfg.insecure_listen &&
	    !vd_config_svc_secured(&srv->cfg, idx)) {
		addr = strchr(addr, ':') ? "::1" : "127.0.0.1";
		log_info("%s: plain TCP on %s only (memcached clients); memcache_tls = yes serves "
			 "it on %s with TLS",
			 vsvc_table[idx]->name, addr, srv->cfg.listen);
	}
	if (strchr(addr, ':'))
		snprintf(spec, sizeof spec, "[%s]:%d", addr, port);
	else
		snprintf(spec, sizeof spec, "%s:%d", addr, port);
	if (evutil_parse_sockaddr_port(spec, (struct sockaddr *)&ss, &sslen) != 0) {
		log_error("listen address '%s' is not an IP address", addr);
		return -1;
	}
	srv->listeners[idx] = evconnlistener_new_bind(
		srv->base, accept_cb, srv,
		LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC | LEV_OPT_REUSEABLE, 511,
		(struct sockaddr *)&ss, sslen);
	if (srv->listeners[idx])
		evconnlistener_set_error_cb(srv->listeners[idx], accept_error_cb);
	if (!srv->listeners[idx]) {
		int e = errno;
		log_error("cannot listen on %s for %s: %s%s", spec, vsvc_table[idx]->name,
			  strerror(e),
			  e == EADDRINUSE ? " (another virgod on this port? use --port-offset or "
					    "another node's config)"
					  : "");
		return -1;
	}
	bool tls = srv->tls && vd_config_svc_secured(&srv->cfg, idx);
	log_info("%s listening on %s (%d worker threads%s%s)", vsvc_table[idx]->name, spec,
		 vd_config_threads(&srv->cfg, idx), tls ? ", TLS" : "",
		 srv->token_on && strcmp(vsvc_table[idx]->name, "memcache") != 0 ? ", token" : "");
	return 0;
}

/* cpu_affinity: the CPUs sched_getaffinity allows, when there are at
 * least two (one CPU leaves nothing to choose). */
static void server_cpus(struct vd_server *srv)
{
	cpu_set_t set;
	srv->ncpus = 0;
	if (sched_getaffinity(0, sizeof set, &set) != 0)
		return;
	for (int cpu = 0; cpu < CPU_SETSIZE && srv->ncpus < VD_MAX_CPUS; cpu++)
		if (CPU_ISSET(cpu, &set))
			srv->cpus[srv->ncpus++] = cpu;
	if (srv->ncpus < 2)
		srv->ncpus = 0;
}

static void enable_threads(void)
{
	if (evthread_use_pthreads() != 0)
		log_error("libevent: no pthread support");
}

/* Starts worker k of a service's group, named "<service>/<k>" (what
 * top -H and /proc/<pid>/task/<tid>/comm show).  0, or -1 with w->base
 * NULL. */
static int worker_start(struct vd_server *srv, struct vd_worker *w, int g, int k)
{
	const char *svc = vsvc_table[g]->name;
	w->srv = srv;
	w->group = g;
	w->cpu = -1;
	pthread_mutex_init(&w->qlock, NULL);
	w->base = event_base_new();
	if (!w->base)
		return -1;
	w->notify = event_new(w->base, -1, EV_PERSIST, worker_notify_cb, w);
	w->drain = event_new(w->base, -1, 0, worker_drain_cb, w);
	w->sweep = event_new(w->base, -1, EV_PERSIST, worker_sweep_cb, w);
	w->revoke = event_new(w->base, -1, 0, worker_revoke_cb, w);
	struct timeval second = {1, 0};
	if (!w->notify || !w->drain || !w->sweep || !w->revoke ||
	    event_add(w->sweep, &second) != 0) {
		event_base_free(w->base);
		w->base = NULL;
		return -1;
	}
	pthread_attr_t attr;
	pthread_attr_init(&attr);
	if (srv->ncpus > 0 && !vsvc_table[g]->unpinned) {
		cpu_set_t set;
		CPU_ZERO(&set);
		CPU_SET(srv->cpus[k % srv->ncpus], &set);
		if (pthread_attr_setaffinity_np(&attr, sizeof set, &set) == 0)
			w->cpu = srv->cpus[k % srv->ncpus];
	}
	int rc = pthread_create(&w->th, &attr, worker_main, w);
	if (rc != 0 && w->cpu >= 0) { /* a CPU set we may not use: run unpinned */
		log_warn("cannot pin %s/%d to CPU %d: %s", svc, k, w->cpu, strerror(rc));
		pthread_attr_destroy(&attr);
		pthread_attr_init(&attr);
		w->cpu = -1;
		rc = pthread_create(&w->th, &attr, worker_main, w);
	}
	pthread_attr_destroy(&attr);
	if (rc != 0) {
		event_base_free(w->base);
		w->base = NULL;
		return -1;
	}
	char name[16];
	snprintf(name, sizeof name, "%.10s/%d", svc, k);
	pthread_setname_np(w->th, name);
	return 0;
}

struct vd_server *server_start(const struct vd_config *cfg)
{
	static pthread_once_t once = PTHREAD_ONCE_INIT;
	pthread_once(&once, enable_threads);
	if (!is_loopback(cfg->listen) && !vd_config_has_auth(cfg) && !cfg->insecure_listen) {
		log_error("refusing to listen on %s: a node reachable from other machines must "
			  "authenticate its clients. Set tls_cert, tls_key and tls_ca (mutual TLS; "
			  "'virgo certs init DIR' makes a cluster CA and the certificates), or "
			  "auth_token = <a secret of 16+ characters> that clients also set, or "
			  "auth_tokens_file = <a file of named tokens> ('virgo certs add-token "
			  "NAME'); or "
			  "insecure_listen = yes to serve anyone who can reach the ports",
			  cfg->listen);
		return NULL;
	}
	if (cfg->memcache_tls && !cfg->tls_cert[0]) {
		log_error("memcache_tls = yes needs tls_cert and tls_key");
		return NULL;
	}
	struct vd_server *srv = calloc(1, sizeof *srv);
	if (!srv)
		return NULL;
	srv->cfg = *cfg;
	pthread_mutex_init(&srv->token_lock, NULL);
	srv->token_on = cfg->auth_token[0] || cfg->auth_tokens_file[0];
	if (srv->token_on) {
		char err[512];
		srv->tokens = vd_tokens_load(cfg->auth_token, cfg->auth_tokens_file, err, sizeof err);
		if (!srv->tokens) {
			log_error("%s", err);
			pthread_mutex_destroy(&srv->token_lock);
			free(srv);
			return NULL;
		}
	}
	if (cfg->tls_cert[0] || cfg->tls_key[0] || cfg->tls_ca[0]) {
		char err[512];
		srv->tls = vd_tls_new(cfg, err, sizeof err);
		if (!srv->tls) {
			log_error("%s", err);
			vd_tokens_free(srv->tokens);
			pthread_mutex_destroy(&srv->token_lock);
			free(srv);
			return NULL;
		}
		log_info("TLS 1.3 on every port%s; %s", cfg->memcache_tls ? "" : " but memcache's",
			 cfg->tls_ca[0] ? "client certificates required (mutual TLS)"
					: "no client certificates asked for");
	}
	if (srv->token_on)
		log_info("token authentication: clients send AUTH <token> first (%s%zu named "
			 "tokens)",
			 cfg->auth_token[0] ? "auth_token, " : "", vd_tokens_named(srv->tokens));
	srv->body_budget = cfg->body_budget ? cfg->body_budget : cfg->mem_limit / 4;
	/* one reply may overshoot the budget: the largest any service
	 * declares (a value, a job's output) */
	uint64_t big = 0;
	for (int i = 0; vsvc_table[i]; i++) {
		struct vsvc_needs nd;
		vd_config_needs(cfg, i, &nd);
		if (nd.largest_reply > big)
			big = nd.largest_reply;
	}
	srv->out_hard = VCONN_OUT_BUDGET + big + cfg->max_line + 4096;
	srv->base = event_base_new();
	if (!srv->base)
		goto fail;
	long cores = sysconf(_SC_NPROCESSORS_ONLN);
	srv->acct = ma_node_acquire(cfg->mem_limit);
	srv->pool = vd_workpool_new(cores > 2 ? (int)cores : 2, VD_POOL_QUEUE, "blocking");
	if (!srv->acct || !srv->pool)
		goto fail;
	vknob_daemon_register(srv->acct, &srv->cfg.max_conns);
	for (int i = 0; vsvc_table[i]; i++) {
		if (vd_config_port(cfg, i) == 0)
			continue;
		srv->node[i] = (struct vd_node){
			.cfg = &srv->cfg,
			.settings = vd_config_settings(&srv->cfg, i),
			.node_id = cfg->node_id,
			.acct = srv->acct,
			.pool = srv->pool,
		};
		if (vsvc_table[i]->init(&srv->node[i], &srv->svc_state[i]) != 0) {
			log_error("service %s failed to start", vsvc_table[i]->name);
			goto fail;
		}
		srv->svc_inited[i] = true;
	}
	for (int i = 0; vsvc_table[i]; i++) {
		int port = vd_config_port(cfg, i);
		if (port == 0) {
			log_info("%s disabled by config", vsvc_table[i]->name);
			continue;
		}
		if (port > 65535) {
			log_error("%s port %d out of range (port_offset too large)",
				  vsvc_table[i]->name, port);
			goto fail;
		}
		if (bind_listener(srv, i, port) != 0)
			goto fail;
	}
	for (int i = 0; vsvc_table[i]; i++) {
		if (!srv->listeners[i])
			continue;
		srv->group[i].first = srv->nworkers;
		srv->group[i].n = vd_config_threads(cfg, i);
		srv->group[i].max_conns = vd_config_max_conns(cfg, i);
		srv->nworkers += srv->group[i].n;
	}
	srv->workers = calloc((size_t)(srv->nworkers > 0 ? srv->nworkers : 1), sizeof *srv->workers);
	if (!srv->workers)
		goto fail;
	if (cfg->cpu_affinity)
		server_cpus(srv);
	for (int g = 0; vsvc_table[g]; g++)
		for (int k = 0; k < srv->group[g].n; k++)
			if (worker_start(srv, &srv->workers[srv->group[g].first + k], g, k) != 0)
				goto fail;
	srv->sig_term = evsignal_new(srv->base, SIGTERM, signal_cb, srv);
	srv->sig_int = evsignal_new(srv->base, SIGINT, signal_cb, srv);
	srv->sig_hup = evsignal_new(srv->base, SIGHUP, hup_cb, srv);
	evsignal_add(srv->sig_term, NULL);
	evsignal_add(srv->sig_int, NULL);
	evsignal_add(srv->sig_hup, NULL);
	srv->accept_retry = event_new(srv->base, -1, 0, accept_retry_cb, srv);
	if (!srv->accept_retry)
		goto fail;
	srv->tick = event_new(srv->base, -1, EV_PERSIST, server_tick_cb, srv);
	struct timeval second = {1, 0};
	if (!srv->tick || event_add(srv->tick, &second) != 0)
		goto fail;
	return srv;
fail:
	server_free(srv);
	return NULL;
}

static void join_workers(struct vd_server *srv, int timeout_ms)
{
	struct timespec deadline;
	abstime_after_ms(CLOCK_REALTIME, timeout_ms, &deadline);
	for (int i = 0; i < srv->nworkers; i++) {
		struct vd_worker *w = &srv->workers[i];
		if (!w->base)
			continue;
		if (pthread_timedjoin_np(w->th, NULL, &deadline) != 0) {
			log_warn("worker %d still busy after %d ms; closing its connections", i,
				 timeout_ms);
			event_base_loopbreak(w->base);
			pthread_join(w->th, NULL);
		}
		event_free(w->notify);
		event_free(w->drain);
		event_free(w->sweep);
		event_free(w->revoke);
		event_base_free(w->base);
		w->base = NULL;
	}
}

int server_run(struct vd_server *srv)
{
	event_base_dispatch(srv->base);
	for (int i = 0; vsvc_table[i]; i++) {
		if (srv->listeners[i]) {
			evconnlistener_free(srv->listeners[i]);
			srv->listeners[i] = NULL;
		}
	}
	for (int i = 0; i < srv->nworkers; i++)
		event_active(srv->workers[i].drain, EV_READ, 0);
	join_workers(srv, srv->cfg.drain_timeout_ms);
	log_info("stopped");
	return 0;
}

void server_stop(struct vd_server *srv) { event_base_loopexit(srv->base, NULL); }

void server_free(struct vd_server *srv)
{
	if (!srv)
		return;
	for (int i = 0; vsvc_table[i]; i++)
		if (srv->listeners[i])
			evconnlistener_free(srv->listeners[i]);
	if (srv->workers) {
		for (int i = 0; i < srv->nworkers; i++)
			if (srv->workers[i].base)
				event_active(srv->workers[i].drain, EV_READ, 0);
		join_workers(srv, 0);
		free(srv->workers);
	}
	for (int i = 0; vsvc_table[i]; i++)
		if (srv->svc_inited[i])
			vsvc_table[i]->fini(srv->svc_state[i]);
	if (srv->pool) {
		int stuck = vd_workpool_free(srv->pool, srv->cfg.drain_timeout_ms);
		if (stuck)
			log_warn("%d blocking jobs still running at exit; leaving them", stuck);
	}
	vknob_daemon_unregister();
	if (srv->acct)
		ma_node_release(srv->acct);
	vd_tls_free(srv->tls);
	vd_tokens_free(srv->tokens);
	pthread_mutex_destroy(&srv->token_lock);
	if (srv->sig_term)
		event_free(srv->sig_term);
	if (srv->sig_int)
		event_free(srv->sig_int);
	if (srv->sig_hup)
		event_free(srv->sig_hup);
	if (srv->tick)
		event_free(srv->tick);
	if (srv->accept_retry)
		event_free(srv->accept_retry);
	if (srv->base)
		event_base_free(srv->base);
	free(srv);
}
