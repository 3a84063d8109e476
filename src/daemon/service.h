/*
 * service.h - the interface every VIRGO service module implements, and the
 * connection handle the daemon gives it.
 *
 * The daemon owns sockets, threads, limits and (later) TLS; a service only
 * sees bytes: its on_input gets the connection's input buffer, consumes
 * whole requests and appends replies to vconn_out().  Because services
 * never touch the socket, wrapping a connection in TLS (SSL_read/SSL_write
 * in server.c filling the same buffers) changes nothing here.  Adding a service = one module file
 * plus one line in vsvc_table (service.c).
 */
#ifndef VIRGO_SERVICE_H
#define VIRGO_SERVICE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct evbuffer;
struct vconn;
struct vd_config;

#define VSVC_KEEP 0
#define VSVC_CLOSE 1 /* close once the replies are flushed */
/* A reply is being computed off the event loop (vconn_ticket below): do
 * not close at EOF and do not expect the service to consume more input
 * until it calls vconn_resume(). */
#define VSVC_WAIT 2
/* Stopped early with input left because replies are piling up (a
 * pipelined burst of large replies): call on_input again once the
 * replies are written, before reading more. */
#define VSVC_MORE 3

/* struct vsvc's bulk */
#define VSVC_BULK_TX 1u
#define VSVC_BULK_RX 2u

struct ma_acct;
struct vd_workpool;

/* ---- service-owned settings ---------------------------------------------
 * A service declares its own keys of virgo_cloud.conf: the daemon parses
 * and bounds-checks them (an unknown key or a bad value is an error that
 * names the file, line and key, as for the daemon's own keys) into the
 * service's settings struct, so adding a key is an edit of the service
 * alone.  Keys marked reload take effect on SIGHUP through the service's
 * reload hook; the others on restart. */
enum vsvc_key_type {
	VSVC_KEY_INT, /* an int, min..max */
	VSVC_KEY_SIZE, /* a uint64_t with K/M/G suffixes, min..max */
	VSVC_KEY_BOOL, /* a bool: yes/no */
	VSVC_KEY_STR, /* a char[len], NUL-terminated */
};

struct vsvc_key {
	const char *name; /* the whole key, e.g. "job_timeout_ms" */
	enum vsvc_key_type type;
	size_t offset; /* of the field in the settings struct */
	size_t len; /* VSVC_KEY_STR: the buffer's size */
	int64_t min, max; /* VSVC_KEY_INT / VSVC_KEY_SIZE */
	const char *want; /* the error's hint, e.g. "1..86400000" */
	bool reload; /* applied by SIGHUP (else on restart) */
};

/* What a service asks of the daemon beyond the defaults (needs hook). */
struct vsvc_needs {
	uint64_t largest_reply; /* one reply may be this big (default max_value + max_line) */
	int fds; /* descriptors it holds besides its connections (default 0) */
};

/* What a service gets at init: the node it runs in. */
struct vd_node {
	const struct vd_config *cfg; /* the node's own settings (config.h) */
	const void *settings; /* this service's settings (keys), or NULL */
	unsigned node_id;
	struct ma_acct *acct; /* the node's memory accountant (memacct.h) */
	struct vd_workpool *pool; /* shared pool for blocking work (workpool.h) */
};

struct vsvc {
	const char *name; /* also the config key prefix: <name>_port */
	uint16_t base_port; /* notes' port; the node's port_offset is added */
	size_t conn_size; /* bytes of zeroed per-connection state */
	/* Between requests (no input, output, vconn_direct body or deferred
	 * reply pending) a connection may move to another of the service's
	 * worker threads (server.c, cpu_affinity): true when its state holds
	 * nothing tied to one event loop (no vconn_base events). */
	bool movable;
	/* cpu_affinity never pins its workers: a service whose connections
	 * stay put and whose replies are latency-bound pushes (the analytics
	 * watches) gains nothing from a pinned thread and loses its tail
	 * latency on a busy host, where a pinned thread waits for its own CPU
	 * while another is idle. */
	bool unpinned;
	/* What of its traffic is bulk, capped node-wide by the
	 * MaxNetworkBandwidth knob (bw.h): VSVC_BULK_TX (what it sends:
	 * cloudfs reads, queue fan-out), VSVC_BULK_RX (what it receives:
	 * cloudfs writes).  server.c meters every byte of such a
	 * connection's reads and writes; 0: never capped. */
	unsigned bulk;
	/* Worker threads when <name>_threads is not set (0: the node's
	 * `threads`). */
	int threads;
	/* Its own config keys ({NULL}-terminated, or NULL), stored in a
	 * settings struct of settings_size bytes (at most VD_SETTINGS_MAX)
	 * that settings_defaults fills before the file is read. */
	const struct vsvc_key *keys;
	size_t settings_size;
	void (*settings_defaults)(void *settings);
	/* Optional, before init: what it needs of the daemon's limits (out
	 * holds the defaults; change what differs). */
	void (*needs)(const struct vd_config *cfg, const void *settings, struct vsvc_needs *out);
	/* Once at start-up, before listening; *svc is passed back below.
	 * node and what it points to live until fini. */
	int (*init)(const struct vd_node *node, void **svc);
	/* Optional, main thread, on SIGHUP: the settings re-read from the
	 * config file (apply the keys marked reload; the workers may be
	 * using the old values meanwhile, so swap them safely).  0, or -1
	 * when refused (logged; the old settings stay). */
	int (*reload)(void *svc, const void *settings);
	void (*fini)(void *svc);
	/* New input is in `in`; eof: the peer will send nothing more.
	 * Consume what can be answered now; return VSVC_KEEP, VSVC_CLOSE,
	 * VSVC_WAIT or VSVC_MORE. */
	int (*on_input)(struct vconn *c, struct evbuffer *in, bool eof);
	/* Optional: release per-connection resources. */
	void (*conn_close)(struct vconn *c);
	/* Optional: once a second on the main thread (housekeeping such as
	 * returning freed memory to the system); must not block. */
	void (*tick)(void *svc);
};

/* NULL-terminated table of the services this build provides. */
extern const struct vsvc *const vsvc_table[];

/* Accessors for service code. */
struct evbuffer *vconn_out(struct vconn *c); /* replies go here */
void *vconn_state(struct vconn *c); /* conn_size bytes, zeroed at accept */
void *vconn_svc(struct vconn *c); /* what init stored in *svc */
const char *vconn_peer(struct vconn *c); /* "ip:port" of the client */
struct event_base *vconn_base(struct vconn *c); /* the loop that owns c */
/* Who the client authenticated as: its TLS certificate's CN, "token" for
 * the node's shared auth_token, or "" when the node authenticates no one
 * (loopback).  Set before the service sees the connection's first byte. */
const char *vconn_identity(struct vconn *c);
/* A 64-bit digest of vconn_identity (SHA-256, truncated), 0 for "": what
 * a service stores to remember who owns something. */
uint64_t vconn_identity_id(struct vconn *c);

/* ---- output budget (enforced by server.c for every service) ------------
 * A connection may have at most VCONN_OUT_BUDGET bytes of replies queued
 * for its client.  A service appending replies checks vconn_out_full()
 * before each request it answers (and before each key or item of a reply
 * built from many, such as a multi-key get): once true it stops and
 * returns VSVC_MORE, and on_input is called again when the replies have
 * drained.  So a small pipelined request stream can never turn into
 * unbounded memory.  A service that ignores the budget is cut off: once
 * the queued output exceeds the budget + max_value + max_line (one
 * oversized reply past the budget is allowed), the server closes the
 * connection and logs why. */
#define VCONN_OUT_BUDGET (1u << 20)
bool vconn_out_full(const struct vconn *c);
/* True when c's output reaches the socket as it is (plain TCP): a reply
 * may then hold file segments (evbuffer_add_file on a buffer flagged
 * EVBUFFER_FLAG_DRAINS_TO_FD) that the transport's write sends with
 * sendfile(2), without a copy through user space.  They still go out
 * through vconn_out(c) and the transport's write, like every reply byte.
 * False over TLS (its transport needs the bytes in memory). */
bool vconn_zero_copy(const struct vconn *c);

/* ---- bodies in flight (enforced by server.c, node-wide) -----------------
 * Before reserving memory for a request body of len bytes that is still
 * arriving (a memcached set, a mempool set), a service asks the server:
 * the bytes of bodies being received at once on the whole node are
 * bounded (body_budget, default mem_limit / 4), so clients that start
 * large uploads and go quiet cannot pin the node's memory.  false: over
 * the budget; the service answers an error and discards the body.  A
 * body larger than the whole budget takes the whole budget (it is
 * received alone, not refused for ever).  The
 * admission lasts until vconn_body_end(c) (or the next vconn_body_begin,
 * or the connection's close); while it lasts, the body must arrive within
 * body_timeout seconds or the server closes the connection. */
bool vconn_body_begin(struct vconn *c, uint64_t len);
void vconn_body_end(struct vconn *c);

/* Large bodies without the extra copy: the next `len` input bytes go
 * straight to dst (read from the socket into it; bytes already buffered in
 * the input are moved there first).  Returns how many are still to come.
 * While some are, on_input is called only at EOF (the body will never
 * complete); once the last byte is in, on_input runs again with what
 * followed in `in`.  dst must stay valid until then or until conn_close. */
size_t vconn_direct(struct vconn *c, void *dst, size_t len);
/* Bytes of the vconn_direct body still to come (0: none pending). */
size_t vconn_direct_left(struct vconn *c);

/* ---- deferred replies (vconn_async.c) -----------------------------------
 * A service that hands a request to another thread takes a ticket on the
 * connection's loop thread, returns VSVC_WAIT, and the other thread posts
 * the ticket when done.  The posted function runs exactly once: on c's
 * loop thread with the live connection, or with c == NULL (on whichever
 * thread notices) when the connection was closed meanwhile, so the
 * function can always free arg.  A ticket keeps no connection alive: the
 * connection may close at any time (its conn_close hook should cancel the
 * work); the ticket just becomes a no-op delivery with c == NULL. */
struct vconn_ticket;
typedef void (*vconn_done_fn)(struct vconn *c, void *arg);

/* Loop thread only.  NULL on out of memory. */
struct vconn_ticket *vconn_ticket_new(struct vconn *c);
/* Any thread, exactly once per ticket; consumes the ticket. */
void vconn_ticket_post(struct vconn_ticket *t, vconn_done_fn fn, void *arg);
/* Any thread: give up a ticket that will never be posted. */
void vconn_ticket_drop(struct vconn_ticket *t);
/* Loop thread, as the ticket is taken: the service promises to add
 * nothing to vconn_out(c) until the ticket is posted, so the thread that
 * does the work may send the reply itself (vconn_ticket_send) and spare
 * the request a hand-over back to the loop before its reply leaves.
 * Only a plain TCP connection with nothing waiting to be written
 * qualifies; for any other, vconn_ticket_send sends nothing. */
void vconn_ticket_allow_send(struct vconn_ticket *t, struct vconn *c);
/* Any thread, before posting t: sends what the socket takes at once of
 * data (never blocking; a bulk service's bytes are charged to the
 * bandwidth cap, and none go this way when it is short).  Returns the
 * bytes sent; the posted function queues the rest in vconn_out, in
 * order, and calls vconn_direct_done when any were sent. */
size_t vconn_ticket_send(struct vconn_ticket *t, const void *data, size_t len);
/* Loop thread: after writing a deferred reply, process any input that
 * waited meanwhile (and close if the peer is gone).  c may be freed. */
void vconn_resume(struct vconn *c);

/* ---- feeds: pushes from other threads, any number of times (vconn_feed.c)
 * A subscription (a queue's subscriber, a lock's grants, the analytics
 * watch) pushes reply bytes to a connection from any thread for as long
 * as both live.  At most max_bytes may wait in the feed for the
 * connection's output to take them (the output itself is bounded by the
 * output budget); a push beyond fails with -ENOBUFS, so a subscriber that
 * stops reading is refused, never buffered for ever.  Once the connection
 * closes, pushes fail with -EPIPE.  The feed is freed when both the
 * connection and the producer (vconn_feed_release) are done with it. */
struct vconn_feed;
/* Loop thread of c.  NULL on out of memory.  The caller owns one
 * reference: vconn_feed_release it exactly once, from any thread. */
struct vconn_feed *vconn_feed_new(struct vconn *c, size_t max_bytes);
/* Any thread: queues len bytes for c's client.  0, -ENOBUFS (over
 * max_bytes; nothing queued), -EPIPE (the connection is gone), -ENOMEM. */
int vconn_feed_push(struct vconn_feed *f, const void *data, size_t len);
/* Loop thread of f's connection only (e.g. a publisher's request on the
 * loop of its watchers): the same, but while nothing waits in the feed
 * and the output holds less than out_cap with the bytes, they go straight
 * into vconn_out and are written at once (vconn_write_held): no event, no
 * hand-over, no buffer kept between pushes, the bound unchanged.  Never
 * frees the connection, so the caller may hold locks its close hook
 * takes. */
int vconn_feed_write_here(struct vconn_feed *f, const void *data, size_t len);
/* Loop thread of f's connection, for a producer that hands many
 * connections' writes to the kernel at once (the analytics fan-out's
 * io_uring batch): the socket f's next bytes may be sent to directly
 * (send(2) with MSG_DONTWAIT | MSG_NOSIGNAL, or its io_uring form), or -1
 * when they must go through vconn_feed_write_here: something waits in
 * the feed or in the connection's output (they go first), or the
 * connection is TLS, bandwidth-metered (bulk), closing or failed.  The
 * caller pushes nothing else to f, and no other thread may, until it has
 * reported the send with vconn_feed_sent. */
int vconn_feed_direct_fd(struct vconn_feed *f);
/* Loop thread: the direct send of len bytes at data returned res (bytes
 * sent, or a negative errno).  All sent: 0 (the connection counts as
 * active).  Otherwise what was not sent (a short send, -EAGAIN) goes
 * through the output and the connection's write as with
 * vconn_feed_write_here, which also returns what this does; an error
 * closes the connection as a failed write does (a moment later, from its
 * loop).  Never frees the connection. */
int vconn_feed_sent(struct vconn_feed *f, const void *data, size_t len, long res);
/* Any thread: the producer is done with f (queued bytes still go out). */
void vconn_feed_release(struct vconn_feed *f);
/* Any thread: the feed moves its bytes into vconn_out(c) only while that
 * holds less than out_cap (default and maximum VCONN_OUT_BUDGET), so a
 * connection that is only a feed (a watch) queues at most max_bytes +
 * out_cap + one push for a client that stops reading. */
void vconn_feed_limit_out(struct vconn_feed *f, size_t out_cap);
/* Any thread: bytes waiting in the feed now (not yet in the output). */
size_t vconn_feed_pending(struct vconn_feed *f);
/* Loop thread: writes what vconn_out(c) holds now, for replies produced
 * outside on_input (feeds, timers).  c may be freed (a dead peer). */
void vconn_flush(struct vconn *c);
/* Loop thread: the same, but c is never freed here: when the write fails,
 * c is closed from its loop a moment later (its conn_close hook runs
 * then), so the caller may hold locks that hook takes. */
void vconn_write_held(struct vconn *c);

/* For server.c / vconn_async.c / vconn_feed.c only. */
struct vconn_async;
struct vconn_async **vconn_async_slot(struct vconn *c);
void vconn_async_detach(struct vconn *c);
struct vconn_feed **vconn_feed_slot(struct vconn *c);
/* vconn_feed_direct_fd's connection half: c's socket when bytes may be
 * sent to it past vconn_out (plain TCP, output empty, not metered, not
 * closing or failed), else -1; vconn_direct_done: some were. */
int vconn_direct_fd(struct vconn *c);
void vconn_direct_done(struct vconn *c);
/* vconn_ticket_allow_send's connection half: as vconn_direct_fd, but a
 * bulk service qualifies too (*metered: its bytes go through bw_take). */
int vconn_ticket_fd(struct vconn *c, bool *metered);
void vconn_feeds_detach(struct vconn *c); /* at close */
void vconn_feeds_drained(struct vconn *c); /* the output has room again */

#endif
