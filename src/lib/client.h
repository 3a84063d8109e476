/*
 * client.h - libvirgo internals: the client object, its nodes and the
 * primitives every call family (mem.c, later clone.c, fs.c, ...) builds on.
 *
 * One process-wide client holds the parsed virgo_client.conf, a connection
 * pool per node, the balancer state and per-node back-off after failures.
 */
#ifndef VIRGO_CLIENT_H
#define VIRGO_CLIENT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "../../include/virgo.h"
#include "cloudfs_reply_proto.h" /* enum cloudfs_page */
#include "orphans.h"
#include "span_cache.h"

#define VC_MAX_NODES 256

/* The services a client talks to; each has its own connection pool per
 * node.  Base ports are the notes' (§891); a node's port_offset is added. */
enum vc_svc {
	VC_SVC_MEMPOOL = 0,
	VC_SVC_CPUPOOL,
	VC_SVC_EVENTNET,
	VC_SVC_CLOUDFS,
	VC_SVC_QUEUE,
	VC_SVC_MEMCACHE,
	VC_SVC_CLOUDSYNC,
	VC_SVC_ANALYTICS,
	VC_SVC_COUNT
};
extern const int vc_svc_base_port[VC_SVC_COUNT];

/* Policies share the public numbering (enum virgo_policy). */
enum vc_policy {
	VC_POLICY_RANDOM = VIRGO_POLICY_RANDOM,
	VC_POLICY_ROUND_ROBIN = VIRGO_POLICY_ROUND_ROBIN,
	VC_POLICY_LEAST_LOADED = VIRGO_POLICY_LEAST_LOADED,
	VC_POLICY_POWER_OF_TWO = VIRGO_POLICY_POWER_OF_TWO,
	VC_POLICY_LEARNED = VIRGO_POLICY_LEARNED,
};

struct vc_transport;

struct vc_conn {
	struct vc_conn *next;
	const struct vc_transport *tp; /* every socket operation (transport.h) */
	void *tstate; /* the transport's own state (NULL for TCP) */
	int fd;
	short want; /* after an EAGAIN: the poll events to wait for */
	uint8_t buf[16384]; /* read-ahead */
	size_t off, len;
	/* replies still owed to requests nobody waits for (a pipelined
	 * close): read and dropped before the next reply is read */
	unsigned skip;
};

struct vc_node {
	unsigned id;
	char host[64];
	int port_offset;
	pthread_mutex_t lock; /* guards idle, nidle, down_until, backoff_ms */
	struct vc_conn *idle[VC_SVC_COUNT];
	int nidle[VC_SVC_COUNT];
	/* per service: a node may run mempool but have cpupool turned off */
	int64_t down_until_ms[VC_SVC_COUNT]; /* skip for placement until then */
	int backoff_ms[VC_SVC_COUNT];
	/* per service: 1 once the node answered ping with its configured
	 * id; back to 0 when it fails (it may come back as another node) */
	_Atomic int id_ok[VC_SVC_COUNT];
	/* per service: wall-clock ms of the last reply timeout (a hung node),
	 * 0 once it answered again; shared across processes by health.c */
	_Atomic int64_t hung_at_ms[VC_SVC_COUNT];
	/* TLS: the last session ticket per service (SSL_SESSION *, under
	 * lock), so new connections resume */
	void *tls_sess[VC_SVC_COUNT];
};

struct vc_config {
	struct vc_node nodes[VC_MAX_NODES];
	int nnodes;
	enum vc_policy policy; /* mempool placement: random or round_robin */
	enum vc_policy clone_policy; /* virgo_clone/virgo_run placement */
	int clone_timeout_ms; /* client wait for a job (node default deadline + slack) */
	int load_max_age_ms; /* staleness bound of the load table */
	uint64_t chunk_size;
	int connect_timeout_ms, timeout_ms, pool_size, backoff_ms, backoff_max_ms;
	int queue_port_base; /* the queue's base port (60000; + each node's offset) */
	uint64_t seed;
	bool seeded;
	/* security: tls_ca turns TLS on (the nodes' certificates must chain
	 * to it); tls_cert/tls_key: this client's certificate; auth_token:
	 * sent first on every connection ("AUTH <token>") */
	char tls_ca[256], tls_cert[256], tls_key[256], auth_token[256];
	bool memcache_tls; /* the memcached port speaks TLS too */
	char source[256];
};

/* What the client last heard of a node's cpupool load (balancer.c). */
struct lb_load {
	bool valid;
	int64_t fetched_ms;
	int running, queued, workers;
	double load1;
	int weight; /* placement weight (analytics knob; 100 when not reported) */
	int inflight_at_fetch; /* this client's jobs there when fetched */
};

struct lb_learned; /* per-function runtime estimates (balancer.c) */

struct vc_client {
	struct vc_config cfg;
	pthread_mutex_t rng_lock;
	uint64_t rng;
	struct span_cache spans;
	struct vc_orphans orphans; /* chunks a failed rollback could not free */
	_Atomic unsigned rr, rr_cpu;
	pthread_mutex_t lb_lock; /* guards load[] and learned */
	struct lb_load load[VC_MAX_NODES];
	_Atomic int inflight[VC_MAX_NODES]; /* this client's jobs per node */
	struct lb_learned *learned; /* malloc'd on first use */
	char health_path[512]; /* virgo_health_cache's file, "" for none */
	int health_max_age_ms;
	void *tls_ctx; /* SSL_CTX * when cfg.tls_ca is set (transport.h) */
};

/* The process-wide client, initialised on first use; NULL + *err on
 * failure.  Every public call that talks to nodes starts with it (or
 * vc_get_node), so it also clears the thread's error detail. */
struct vc_client *vc_get(int *err);

/* Parse a client config file into cfg (defaults first).  0 or -1 + err. */
void vc_config_defaults(struct vc_config *cfg);
int vc_config_load(struct vc_config *cfg, const char *path, char *err, size_t errlen);

/* The client, for a call addressed to the idx-th configured node:
 * 0, or the init error, or -VIRGO_ENONODE for an index out of range. */
int vc_get_node(int idx, struct vc_client **c);

/* Index of the node with this id, or -1. */
int vc_node_index(struct vc_client *c, unsigned id);

/* Placement: the next node index per the policy, skipping nodes in
 * back-off (unless every node is); `avoid` (bitmap of tried indexes, may be
 * NULL) is skipped too.  -1 if nothing is left. */
int lb_pick(struct vc_client *c, const uint64_t *avoid);

/* Before placing work on the idx-th node's service svc (mempool, cpupool):
 * 0 if the node answers ping with the id virgo_client.conf gives it
 * (asked once, again after the node failed), -EPROTO if it answers as
 * another node (the node is put in back-off: nothing must be placed there,
 * its VUIDs or job results would be attributed to the wrong node), or the
 * ping's error; the error detail names the caller's request hdr. */
int vc_node_check_id(struct vc_client *c, int idx, enum vc_svc svc, const char *hdr);

/* Is the node's service svc out of back-off at time now? */
bool vc_node_up(struct vc_node *n, enum vc_svc svc, int64_t now);

/* Mark a node's service failed (back-off doubles) or healthy again. */
void vc_node_failed(struct vc_client *c, int idx, enum vc_svc svc);
void vc_node_ok(struct vc_client *c, int idx, enum vc_svc svc);

int64_t vc_now_ms(void);

/* Close the node's idle pooled connections to one service. */
void vc_pool_flush(struct vc_node *n, enum vc_svc svc);

/* One reply from a node. */
struct vc_reply {
	char line[512]; /* status line, NUL-terminated, no CRLF */
	uint8_t *data; /* VALUE payload or STAT text (malloc'd, caller frees) */
	size_t data_len;
};

/* vc_call flags.  VC_IDEMPOTENT: running the request twice has the same
 * effect as once (get, a set of the same bytes, ping, stats, load).  Only
 * such a request is re-sent on a fresh connection when a pooled one turns
 * out to be dead after it was sent (the node may or may not have run it);
 * any other request (malloc, free, clone, a queue push...) then fails with
 * the transport error instead of possibly happening twice.  Before sending
 * one of those on a pooled connection, the connection is checked for an
 * EOF the node sent while it was idle (restart, idle timeout). */
#define VC_IDEMPOTENT 1

/* Sends one request to the idx-th node's service svc: hdr (a line with
 * its CRLF), then, if payload is non-NULL, plen bytes and CRLF.  Reads the
 * reply: one line; for VALUE, its payload; for STAT, lines up to END.  An
 * "ERR <CODE> ..." reply returns -<errno of CODE> with the line in rep.
 * Transport failures return -ECONNREFUSED, -ETIMEDOUT, -ECONNRESET, ...
 * and put the node in back-off.  rep->data (malloc'd, may be NULL) is the
 * caller's to free whatever the result. */
int vc_call_svc(struct vc_client *c, int idx, enum vc_svc svc, const char *hdr, size_t hdr_len,
		const void *payload, size_t plen, int flags, struct vc_reply *rep);
/* vc_call_svc on the mempool. */
int vc_call(struct vc_client *c, int idx, const char *hdr, size_t hdr_len, const void *payload,
	    size_t plen, int flags, struct vc_reply *rep);
/* vc_call_svc with an explicit reply deadline (timeout_ms from now). */
int vc_call_svc_t(struct vc_client *c, int idx, enum vc_svc svc, const char *hdr, size_t hdr_len,
		  const void *payload, size_t plen, int timeout_ms, int flags,
		  struct vc_reply *rep);

/* A connection the caller holds (never pooled), for state that lives on
 * one connection (cloudfs descriptors are closed with their connection).
 * vc_conn_call sends one request and reads its reply like vc_call_svc,
 * without re-sending; *broken says the connection is unusable after it
 * (free it).  vc_conn_free closes it. */
int vc_conn_open_held(struct vc_client *c, int idx, enum vc_svc svc, struct vc_conn **out);
int vc_conn_call(struct vc_client *c, int idx, enum vc_svc svc, struct vc_conn *k,
		 const char *hdr, size_t hdr_len, const void *payload, size_t plen,
		 struct vc_reply *rep, bool *broken);
/* vc_conn_call in halves, for several requests in flight on one held
 * connection (replies come in request order): vc_conn_send sends one,
 * vc_conn_recv reads the next reply (hdr: its request, for error
 * detail).  into (may be NULL): a VALUE payload of at most cap bytes is
 * read straight there (rep->data stays NULL, rep->data_len says how
 * much); a larger one breaks the connection (-EBADMSG).  Not for TLS
 * connections from two threads at once (k->tstate: one SSL object). */
int vc_conn_send(struct vc_client *c, int idx, enum vc_svc svc, struct vc_conn *k,
		 const char *hdr, size_t hdr_len, const void *payload, size_t plen, bool *broken);
int vc_conn_recv(struct vc_client *c, int idx, enum vc_svc svc, struct vc_conn *k,
		 const char *hdr, void *into, size_t cap, struct vc_reply *rep, bool *broken);
/* vc_conn_recv with a VALUE payload of at most cap bytes moved into the
 * pipe pp (pp[0] read end, pp[1] write end; empty, non-blocking, holding
 * cap bytes) by splice(2), no copy through user space: rep->data stays
 * NULL and the pipe holds rep->data_len bytes.  Should the pipe fill up
 * first (a socket's data takes one pipe slot per packet piece), or on a
 * transport that cannot splice (TLS), the payload is in rep->data
 * (malloc'd, caller frees) and the pipe is left empty.  On failure the
 * pipe may hold part of the payload. */
int vc_conn_recv_pipe(struct vc_client *c, int idx, enum vc_svc svc, struct vc_conn *k,
		      const char *hdr, const int pp[2], size_t cap, struct vc_reply *rep,
		      bool *broken);
/* vc_conn_send with a payload of plen bytes taken from the pipe pfd by
 * splice(2), no copy through user space.  -EOPNOTSUPP (nothing sent,
 * *broken false) on a transport that cannot take it (TLS). */
int vc_conn_send_pipe(struct vc_client *c, int idx, enum vc_svc svc, struct vc_conn *k,
		      const char *hdr, size_t hdr_len, int pfd, size_t plen, bool *broken);
void vc_conn_free(struct vc_conn *k);
/* virgo_fini: closes the connections of files still open (cloudfs.c). */
void vfs_files_drop(void);
/* virgo_pread of at most size bytes (at most 1 MiB) at pos, the data
 * moved from the node's socket into the pipe pp by splice(2) without a
 * copy through user space (virgofs: a FUSE read reply spliced on to
 * /dev/fuse).  pp as vc_conn_recv_pipe (pp[0] read end, pp[1] write end;
 * empty, non-blocking, holding size bytes).  Returns the count read
 * (short at end of file): in the pipe, or, with *mem set (malloc'd,
 * caller frees), in *mem (the pipe filled up, or the connection broke
 * and the read was retried on a new one).  A negative errno on failure;
 * -EOPNOTSUPP (nothing sent) on TLS.  After a failure or with *mem set,
 * the pipe may hold stray bytes: empty or replace it. */
ssize_t vfs_pread_pipe(virgo_fd_t fd, const int pp[2], size_t size, uint64_t pos, void **mem);
/* virgo_pwrite of size bytes (at most 1 MiB) that wait in the pipe pfd,
 * moved to the node's socket by splice(2) without a copy through user
 * space (virgofs: a FUSE write request spliced from /dev/fuse).  Only for
 * a descriptor in write-behind mode on plain TCP: else -EOPNOTSUPP with
 * the pipe untouched (copy it out and virgo_pwrite).  Returns size, or a
 * negative errno (the pipe then holds an unknown part of the data). */
ssize_t vfs_pwrite_pipe(virgo_fd_t fd, int pfd, size_t size, uint64_t pos);
/* One readdir page of path from cursor (max 1..4096 entries, of kind:
 * the flag asked for, cloudfs_reply_proto.h), unparsed: *text (malloc'd, caller frees; NULL for
 * an empty page) holds *len bytes of lines for cloudfs_reply_page, and
 * *next is the next page's cursor (0: this was the last), read from its
 * end, so a caller can ask for the next page before parsing this one
 * (virgofs).  0 or a negative errno. */
int vfs_readdir_text(const char *path, uint64_t cursor, size_t max, enum cloudfs_page kind,
		     char **text, size_t *len, uint64_t *next);

/* The calling thread's error detail (virgo_last_error), cleared by vc_get.
 * vc_err_done(op, rc) ends a call: a failure with no detail set
 * meanwhile gets "<op>: <virgo_strerror(rc)>"; a success clears it.  vc_err_node
 * records a node's failure: "node <id> (<host>:<port>): <op>: <why>",
 * op taken from the request line hdr, why = the node's ERR sentence
 * (sentence, may be NULL) or virgo_strerror(rc). */
void vc_err_clear(void);
int vc_err_done(const char *op, int rc);
void vc_err_node(struct vc_client *c, int idx, enum vc_svc svc, const char *hdr, int rc,
		 const char *sentence);
/* Sets the detail to text as is (a job's, handed over by virgo_job_wait). */
void vc_err_set(const char *text);

/* health.c: a reply timeout from node idx's service svc (remembered
 * for virgo_health_cache); and virgo_fini's write of the cache file. */
void vc_health_hung(struct vc_client *c, int idx, enum vc_svc svc);
void vc_health_save(struct vc_client *c);

/* Blocks until no async job (job.c) is running: virgo_fini must not free
 * the client under the library's own job threads. */
void vj_wait_running(void);

/* Dedicated connections outside the pools, for streams (a queue
 * subscription, a replay): open one to the idx-th node's service; send
 * a (+ b and CRLF when b is non-NULL); read a line (no CRLF) or exactly n
 * bytes.  Deadlines are vc_now_ms() based; 0 or a negative errno
 * (-ECONNRESET at EOF).  Close with vc_conn_free.  (vc_conn_open_held
 * is this open plus the node's failure bookkeeping.) */
int vc_stream_open(struct vc_client *c, int idx, enum vc_svc svc, struct vc_conn **out);
int vc_stream_send(struct vc_conn *k, const void *a, size_t alen, const void *b, size_t blen,
		   int64_t deadline);
int vc_stream_line(struct vc_conn *k, char *line, size_t cap, int64_t deadline);
int vc_stream_bytes(struct vc_conn *k, void *dst, size_t n, int64_t deadline);
/* What has arrived, at most cap bytes: the read-ahead first, else one
 * read; a count > 0 or a negative errno (-ECONNRESET at EOF).  For
 * streams whose lines may be longer than the read-ahead (EventNet). */
ssize_t vc_stream_some(struct vc_conn *k, void *dst, size_t cap, int64_t deadline);
/* Bytes received that poll() on k->fd cannot see (read-ahead, TLS). */
bool vc_stream_buffered(struct vc_conn *k);
/* The pool for a caller that speaks the protocol itself (a lock hold
 * uses its connection for as long as it holds): vc_conn_take takes an
 * idle connection the node has not closed (*reused) or opens one, no
 * back-off bookkeeping; vc_conn_give puts it back (closed instead when
 * the pool is full or a reply is left unread).  Both own nothing after. */
int vc_conn_take(struct vc_client *c, int idx, enum vc_svc svc, struct vc_conn **out,
		 bool *reused);
void vc_conn_give(struct vc_client *c, int idx, enum vc_svc svc, struct vc_conn *k);

#endif
