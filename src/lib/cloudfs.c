/*
 * cloudfs.c - virgo_open/read/write/close and the path calls: files on any
 * node's cloudfs (port 50000, docs/PROTOCOL.md "cloudfs").
 *
 * A node closes a descriptor when the connection that opened it goes
 * away, so each open file keeps a connection of its own (never pooled),
 * found by descriptor in a small table; the node is the descriptor's top
 * 16 bits.  Calls on one file are serialised on its connection; different
 * files run in parallel.  Path calls (stat, readdir, unlink, ...) use the
 * ordinary per-node pool.  Large reads and writes go in chunks of at most
 * VFS_CHUNK bytes (the node's default cloudfs_max_io), so memory stays
 * bounded whatever the size.
 *
 * Requests on one file's connection are pipelined: a large read or write
 * keeps up to VFS_WINDOW chunks in flight, and calls from several threads
 * on one descriptor (FUSE readahead) each send theirs and read their
 * replies in turn (tickets in send order: the node answers in order).  A
 * descriptor in write-behind mode (virgo_writebehind, virgofs) returns
 * from a write once it is sent; its reply is read by whoever comes next,
 * and a failure is reported by a later write, virgo_flush, fsync or close.
 * TLS connections keep one request in flight (one SSL object must not be
 * read and written from two threads at once).
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "../common/pathcodec.h"
#include "client.h"
#include "cloudfs_reply_proto.h"

#define VFS_CHUNK (1u << 20)
#define VFS_WINDOW 4 /* chunks in flight within one large read or write */
#define VFS_RING 64 /* requests in flight on one file's connection, at most */
#define VFS_PATH_MAX 4095

/* A request in flight: async (write-behind) ones have no thread waiting
 * for their reply, which must say "OK <expect>". */
struct vfs_slot {
	bool async;
	size_t expect;
	pthread_cond_t *wake; /* the thread waiting for this reply (fd_wait), or NULL */
};

/* A sent request: its place in the reply order on connection gen. */
struct vfs_tk {
	uint64_t seq;
	unsigned gen;
};

struct vfs_file {
	struct vfs_file *next;
	virgo_fd_t fd; /* the caller's handle: the node's first descriptor */
	virgo_fd_t sfd; /* the node's descriptor now (another after a reopen) */
	int idx; /* the node's index in the client config */
	struct vc_conn *k; /* NULL once broken: reopened by the next call */
	pthread_mutex_t slock; /* one sender at a time on k; taken before lock */
	pthread_mutex_t lock; /* the fields below */
	pthread_cond_t cv; /* a reply was read, or k was dropped (fd_wait's
			    * threads wait on their slot's wake instead) */
	uint64_t sent, done; /* requests sent on k, replies read (or failed) */
	unsigned gen; /* bumped when k is dropped: its requests fail */
	bool sending, receiving; /* a thread writes to / reads from k unlocked */
	bool broken; /* k failed: dropped once nobody is using it */
	int brk_rc; /* the error that broke it */
	bool tls; /* k is TLS: one request at a time (slock held to its reply) */
	unsigned wb; /* write-behind window, 0: off */
	unsigned nasync; /* write-behind writes in flight */
	int werr; /* a write-behind write's error, reported once */
	struct vfs_slot ring[VFS_RING]; /* by seq % VFS_RING */
	int users; /* references (files_lock) */
	bool removed; /* closed: freed by its last user */
	bool dirty; /* written since the last fsync */
	bool lost; /* the connection broke while dirty: fsync/close say EIO once */
	bool seq; /* the descriptor's own position was used: no reopen */
	bool stat_ok; /* opened with flag s: the node also answers "pwrite ... s" */
	bool have_wst; /* wst: the file's attributes after every request sent */
	struct virgo_stat wst; /* from the last write-behind write's reply */
	char fw[8]; /* open flags word for a reopen (no c, t, x) */
	char *enc; /* the encoded path, for a reopen (malloc'd) */
};

static pthread_mutex_t files_lock = PTHREAD_MUTEX_INITIALIZER;
static struct vfs_file *files;

/* Connections of closed files, kept for the next open on their node: a
 * new TCP connection per open would cost a connect and an accept (small
 * files are opened by the thousand).  Clean (no descriptor left on them:
 * the node closed it on our close).  Per node index, under files_lock. */
#define VFS_SPARE_MAX 8
struct vfs_spare {
	struct vc_conn *k[VFS_SPARE_MAX];
	int n;
};
static struct vfs_spare spares[VC_MAX_NODES];

static struct vc_conn *spare_take(int idx)
{
	pthread_mutex_lock(&files_lock);
	struct vc_conn *k = spares[idx].n ? spares[idx].k[--spares[idx].n] : NULL;
	pthread_mutex_unlock(&files_lock);
	return k;
}

/* Keeps k for reuse or closes it. */
static void spare_put(int idx, struct vc_conn *k)
{
	pthread_mutex_lock(&files_lock);
	if (k && k->off == k->len && spares[idx].n < VFS_SPARE_MAX) {
		spares[idx].k[spares[idx].n++] = k;
		k = NULL;
	}
	pthread_mutex_unlock(&files_lock);
	vc_conn_free(k);
}

static void file_free(struct vfs_file *f)
{
	vc_conn_free(f->k);
	pthread_mutex_destroy(&f->slock);
	pthread_mutex_destroy(&f->lock);
	pthread_cond_destroy(&f->cv);
	free(f->enc);
	free(f);
}

static void file_release(struct vfs_file *f)
{
	pthread_mutex_lock(&files_lock);
	bool last = --f->users == 0 && f->removed;
	pthread_mutex_unlock(&files_lock);
	if (last)
		file_free(f);
}

/* A reference to fd's entry (file_release it), or NULL. remove: take it
 * out of the table as well (virgo_close). */
static struct vfs_file *file_get(virgo_fd_t fd, bool remove)
{
	pthread_mutex_lock(&files_lock);
	struct vfs_file **pp = &files, *f;
	while ((f = *pp) && f->fd != fd)
		pp = &f->next;
	if (f) {
		f->users++;
		if (remove) {
			*pp = f->next;
			f->removed = true;
			f->users--; /* the table's own reference */
		}
	}
	pthread_mutex_unlock(&files_lock);
	return f;
}

/* The client and a reference to fd's entry (file_release it; remove as
 * for file_get): 0, the client's init error, or -EBADF. */
static int file_ref(virgo_fd_t fd, bool remove, struct vc_client **c, struct vfs_file **f)
{
	*f = NULL;
	int rc = vc_get_node(0, c);
	if (rc)
		return rc;
	*f = file_get(fd, remove);
	return *f ? 0 : -EBADF;
}

void vfs_files_drop(void)
{
	pthread_mutex_lock(&files_lock);
	for (int i = 0; i < VC_MAX_NODES; i++) /* the next client may differ */
		while (spares[i].n)
			vc_conn_free(spares[i].k[--spares[i].n]);
	struct vfs_file *f = files;
	files = NULL;
	for (struct vfs_file *g = f; g; g = g->next) {
		g->removed = true;
		g->users--;
	}
	pthread_mutex_unlock(&files_lock);
	while (f) {
		struct vfs_file *next = f->next;
		pthread_mutex_lock(&files_lock);
		bool last = f->users == 0;
		pthread_mutex_unlock(&files_lock);
		if (last)
			file_free(f);
		f = next;
	}
}

/* "node2:/x", "2:/x" or "/x" (first node): *idx and the encoded path. */
static int locate(struct vc_client **c, const char *path, int *idx, char *enc, size_t cap)
{
	if (!path || !*path)
		return -EINVAL;
	const char *rest = path, *colon = strchr(path, ':'), *slash = strchr(path, '/');
	int i = 0;
	int err = vc_get_node(0, c);
	if (err)
		return err;
	if (colon && (!slash || colon < slash)) {
		const char *d = path;
		if (strncmp(d, "node", 4) == 0)
			d += 4;
		char *end;
		unsigned long id = strtoul(d, &end, 10);
		if (end != colon || d == colon || id == 0 || id > 65535)
			return -EINVAL;
		i = vc_node_index(*c, (unsigned)id);
		if (i < 0)
			return -VIRGO_ENONODE;
		rest = colon + 1;
	}
	if (!*rest)
		rest = "/";
	size_t n = strlen(rest);
	if (n > VFS_PATH_MAX || pathcodec_encode(rest, n, enc, cap) >= cap)
		return -ENAMETOOLONG;
	*idx = i;
	return 0;
}

#define ENC_CAP (3 * VFS_PATH_MAX + 1)

/* One pooled request to the node of path: hdr_fmt gets the encoded path
 * as its first %s.  rep->data (may be NULL) is the caller's to free. */
static int path_call(const char *op, const char *path, const char *tail, int flags,
		     struct vc_reply *rep)
{
	struct vc_client *c;
	int idx;
	char *enc = malloc(ENC_CAP), *hdr = malloc(ENC_CAP + 128);
	int rc = enc && hdr ? locate(&c, path, &idx, enc, ENC_CAP) : -ENOMEM;
	memset(rep, 0, sizeof *rep);
	if (rc == 0) {
		int n = snprintf(hdr, ENC_CAP + 128, "%s %s%s%s\r\n", op, enc, tail ? " " : "",
				 tail ? tail : "");
		rc = vc_call_svc(c, idx, VC_SVC_CLOUDFS, hdr, (size_t)n, NULL, 0, flags, rep);
	}
	free(enc);
	free(hdr);
	return vc_err_done(op, rc);
}

static int simple_path_call(const char *op, const char *path, const char *tail)
{
	struct vc_reply rep;
	int rc = path_call(op, path, tail, 0, &rep);
	free(rep.data);
	return rc;
}

/* f->lock held: a new connection and descriptor for f after its
 * connection broke (the node restarted, or closed it after idle_timeout).
 * Never creates or truncates. */
static int file_reopen(struct vc_client *c, struct vfs_file *f)
{
	char *hdr = malloc(ENC_CAP + 64);
	if (!hdr)
		return -ENOMEM;
	int n = snprintf(hdr, ENC_CAP + 64, "open %s %s\r\n", f->enc, f->fw);
	int rc = vc_conn_open_held(c, f->idx, VC_SVC_CLOUDFS, &f->k);
	if (rc == 0) {
		struct vc_reply rep;
		bool broken;
		rc = vc_conn_call(c, f->idx, VC_SVC_CLOUDFS, f->k, hdr, (size_t)n, NULL, 0, &rep,
				  &broken);
		free(rep.data);
		char *end = NULL;
		uint64_t v = rc == 0 ? strtoull(rep.line + 2, &end, 16) : 0;
		if (rc == 0 && (v == 0 || !end || *end))
			rc = -VIRGO_EBADREPLY;
		if (rc == 0) {
			f->sfd = v;
			f->tls = f->k->tstate != NULL;
		}
		if (rc) {
			vc_conn_free(f->k);
			f->k = NULL;
		}
	}
	free(hdr);
	return rc;
}

/* f->lock held: wakes every thread waiting for a reply (k broke). */
static void wake_all(struct vfs_file *f)
{
	pthread_cond_broadcast(&f->cv);
	for (uint64_t s = f->done; s < f->sent; s++)
		if (f->ring[s % VFS_RING].wake)
			pthread_cond_signal(f->ring[s % VFS_RING].wake);
}

/* f->lock held: a reply was read.  Wakes the one thread whose reply is
 * next, not every reader of the file (a broadcast woke each readahead
 * thread on every reply); should nobody wait for it (a write-behind
 * reply, settled by whoever waits), every waiter. */
static void wake_next(struct vfs_file *f)
{
	pthread_cond_broadcast(&f->cv); /* senders, drain: rarely anyone */
	pthread_cond_t *w = f->done < f->sent ? f->ring[f->done % VFS_RING].wake : NULL;
	if (w)
		pthread_cond_signal(w);
	else
		wake_all(f);
}

/* f->lock held: drops k once it broke and nobody is using it; its
 * requests still waiting fail (gen changes). */
static void conn_drop_if_idle(struct vfs_file *f)
{
	if (!f->broken || f->sending || f->receiving)
		return;
	vc_conn_free(f->k);
	f->k = NULL;
	f->broken = false;
	wake_all(f);
	f->done = f->sent;
	f->nasync = 0;
	f->gen++;
}

/* f->lock held: k failed with rc.  Acknowledged writes may be lost with
 * the node, and so are write-behind writes not yet acknowledged: the
 * next fsync or close says EIO.  The socket is shut so a thread blocked
 * on it returns now. */
static void conn_broke(struct vfs_file *f, int rc)
{
	if (!f->broken && f->k) {
		f->broken = true;
		f->brk_rc = rc ? rc : -ECONNRESET;
		shutdown(f->k->fd, SHUT_RDWR);
	}
	if (f->dirty || f->nasync) {
		f->lost = true;
		f->dirty = false;
	}
	wake_all(f);
	conn_drop_if_idle(f);
}

/* f->lock held (dropped meanwhile), nobody receiving: reads the reply of
 * request f->done. */
static int recv_turn(struct vc_client *c, struct vfs_file *f, const char *hdr, void *into,
		     size_t cap, const int *pp, struct vc_reply *rep, bool *broken)
{
	struct vc_conn *k = f->k;
	f->receiving = true;
	pthread_mutex_unlock(&f->lock);
	int rc = pp ? vc_conn_recv_pipe(c, f->idx, VC_SVC_CLOUDFS, k, hdr, pp, cap, rep, broken)
		    : vc_conn_recv(c, f->idx, VC_SVC_CLOUDFS, k, hdr, into, cap, rep, broken);
	pthread_mutex_lock(&f->lock);
	f->receiving = false;
	f->done++;
	if (*broken)
		conn_broke(f, rc);
	wake_next(f);
	return rc;
}

static int parse_stat_fields(const char *s, struct virgo_stat *st);

/* f->lock held, nobody receiving, request f->done is a write-behind
 * write: reads its reply and keeps its failure for later. */
static void settle_async(struct vc_client *c, struct vfs_file *f)
{
	struct vfs_slot s = f->ring[f->done % VFS_RING];
	struct vc_reply rep;
	bool broken;
	int rc = recv_turn(c, f, "pwrite (write-behind)\r\n", NULL, 0, NULL, &rep, &broken);
	free(rep.data);
	if (broken) {
		f->lost = true;
		return;
	}
	if (f->nasync)
		f->nasync--;
	char *end = NULL;
	if (rc == 0 && strtoull(rep.line + 2, &end, 10) != s.expect)
		rc = -EIO;
	/* its stat fields ("pwrite ... s") are the file now if nothing was
	 * sent after it */
	f->have_wst = rc == 0 && f->done == f->sent && *end && parse_stat_fields(end, &f->wst) == 0;
	if (rc == 0)
		f->dirty = true;
	else if (!f->werr)
		f->werr = rc;
	wake_next(f);
}

/* f->lock held: true if the next reply to read is a write-behind one
 * nobody else is reading (the caller then settles it). */
static bool async_turn(const struct vfs_file *f)
{
	return f->k && !f->broken && !f->receiving && f->done < f->sent &&
	       f->ring[f->done % VFS_RING].async;
}

/* f->lock held: waits until every request sent is answered. */
static void drain_locked(struct vc_client *c, struct vfs_file *f)
{
	while (f->k && f->done < f->sent) {
		if (async_turn(f))
			settle_async(c, f);
		else
			pthread_cond_wait(&f->cv, &f->lock);
	}
}

/* Sends "<op> <descriptor>[ <tail>]" (+ payload) on f's connection, which
 * is reopened first after a break when that is safe (!f->seq).  hdr
 * (cap 128) gets the request line; *t its place in the reply order.
 * async: a write-behind write of plen bytes (nobody waits for it).  On a
 * TLS connection slock stays held until fd_wait has read the reply. */
static int fd_send_from(struct vc_client *c, struct vfs_file *f, const char *op, const char *tail,
			const void *payload, int pfd, size_t plen, bool async, char *hdr,
			struct vfs_tk *t, bool *broken)
{
	*broken = false;
	pthread_mutex_lock(&f->slock);
	pthread_mutex_lock(&f->lock);
	int rc = 0;
	for (;;) {
		if (f->broken) { /* a reader or writer still on the dead k */
			pthread_cond_wait(&f->cv, &f->lock);
			continue;
		}
		if (!f->k) {
			rc = f->seq ? -ECONNRESET : file_reopen(c, f);
			if (rc)
				break;
			continue;
		}
		bool full = f->sent - f->done >= VFS_RING || (async && f->nasync >= f->wb);
		if (!full)
			break;
		if (async_turn(f))
			settle_async(c, f);
		else
			pthread_cond_wait(&f->cv, &f->lock);
	}
	if (rc || (pfd >= 0 && f->tls)) {
		pthread_mutex_unlock(&f->lock);
		pthread_mutex_unlock(&f->slock);
		*broken = rc != 0;
		return rc ? rc : -EOPNOTSUPP;
	}
	int n = snprintf(hdr, 128, "%s %" PRIx64 "%s%s%s\r\n", op, f->sfd, tail ? " " : "",
			 tail ? tail : "", async && f->stat_ok ? " s" : "");
	if (!async)
		f->have_wst = false;
	t->seq = f->sent++;
	t->gen = f->gen;
	f->ring[t->seq % VFS_RING] = (struct vfs_slot){async, plen, NULL};
	if (async)
		f->nasync++;
	f->sending = true;
	struct vc_conn *k = f->k;
	pthread_mutex_unlock(&f->lock);
	if (pfd >= 0)
		rc = vc_conn_send_pipe(c, f->idx, VC_SVC_CLOUDFS, k, hdr, (size_t)n, pfd, plen, broken);
	else
		rc = vc_conn_send(c, f->idx, VC_SVC_CLOUDFS, k, hdr, (size_t)n, payload, plen, broken);
	pthread_mutex_lock(&f->lock);
	f->sending = false;
	if (*broken)
		conn_broke(f, rc);
	else
		conn_drop_if_idle(f); /* a reader found it broken meanwhile */
	pthread_mutex_unlock(&f->lock);
	if (rc || !f->tls)
		pthread_mutex_unlock(&f->slock);
	return rc;
}

/* fd_send_from with the payload in memory (or none). */
static int fd_send(struct vc_client *c, struct vfs_file *f, const char *op, const char *tail,
		   const void *payload, size_t plen, bool async, char *hdr, struct vfs_tk *t,
		   bool *broken)
{
	return fd_send_from(c, f, op, tail, payload, -1, plen, async, hdr, t, broken);
}

/* Reads the reply of request t (into/cap as vc_conn_recv; pp non-NULL:
 * vc_conn_recv_pipe), after those sent before it.  A broken connection
 * fails every request on it. */
static int fd_wait(struct vc_client *c, struct vfs_file *f, const struct vfs_tk *t,
		   const char *hdr, void *into, size_t cap, const int *pp, struct vc_reply *rep,
		   bool *broken)
{
	memset(rep, 0, sizeof *rep);
	pthread_cond_t mine;
	pthread_cond_init(&mine, NULL);
	struct vfs_slot *slot = &f->ring[t->seq % VFS_RING];
	pthread_mutex_lock(&f->lock);
	int rc;
	for (;;) {
		if (t->gen != f->gen || f->broken) {
			rc = f->brk_rc ? f->brk_rc : -ECONNRESET;
			*broken = true;
			break;
		}
		if (!f->receiving && f->done == t->seq) {
			rc = recv_turn(c, f, hdr, into, cap, pp, rep, broken);
			break;
		}
		if (async_turn(f)) {
			settle_async(c, f);
		} else {
			slot->wake = &mine; /* t's slot until its reply is read */
			pthread_cond_wait(&mine, &f->lock);
			if (slot->wake == &mine)
				slot->wake = NULL;
		}
	}
	pthread_mutex_unlock(&f->lock);
	pthread_cond_destroy(&mine);
	if (f->tls)
		pthread_mutex_unlock(&f->slock);
	return rc;
}

/* One request on fd's own connection: "<op> <descriptor>[ <tail>]" (+
 * payload).  A connection found broken is reopened once and the request
 * sent again, when that is safe: at an explicit offset, or without one
 * (fstat, fsync, ftruncate) -- never for read/write at the descriptor's
 * own position, which died with it.  Writes acknowledged before a break
 * may be lost with the node: the next fsync (or close) says EIO.  into/cap:
 * where a VALUE reply goes (NULL: rep->data, malloc'd). */
static int fd_call(virgo_fd_t fd, const char *op, const char *tail, const void *payload,
		   size_t plen, bool positional, void *into, size_t cap, struct vc_reply *rep)
{
	memset(rep, 0, sizeof *rep);
	struct vc_client *c;
	struct vfs_file *f;
	int rc = file_ref(fd, false, &c, &f);
	if (rc)
		return rc;
	if (!positional) {
		pthread_mutex_lock(&f->lock);
		f->seq = true;
		pthread_mutex_unlock(&f->lock);
	}
	for (int attempt = 0;; attempt++) {
		char hdr[128];
		struct vfs_tk t;
		bool broken;
		rc = fd_send(c, f, op, tail, payload, plen, false, hdr, &t, &broken);
		if (rc == 0)
			rc = fd_wait(c, f, &t, hdr, into, cap, NULL, rep, &broken);
		if (!broken || attempt > 0 || f->seq)
			break;
	}
	pthread_mutex_lock(&f->lock);
	if (rc == 0 && payload)
		f->dirty = true;
	if (strcmp(op, "fsync") == 0 && rc == 0) {
		/* the writes before it were answered first (in order) */
		if (f->werr)
			rc = f->werr;
		else if (f->lost)
			rc = -EIO; /* writes before a break may not have reached the disk */
		f->werr = 0;
		f->lost = false;
	}
	pthread_mutex_unlock(&f->lock);
	file_release(f);
	return rc;
}

static int flags_word(int flags, char *w)
{
	int acc = flags & O_ACCMODE, n = 0;
	if (flags & ~(O_ACCMODE | O_CREAT | O_TRUNC | O_EXCL | O_APPEND | O_CLOEXEC | O_NOCTTY |
		      O_NONBLOCK | O_LARGEFILE))
		return -EINVAL;
	if (acc == O_RDONLY || acc == O_RDWR)
		w[n++] = 'r';
	if (acc == O_WRONLY || acc == O_RDWR)
		w[n++] = 'w';
	if (acc != O_RDONLY && acc != O_WRONLY && acc != O_RDWR)
		return -EINVAL;
	if (flags & O_CREAT)
		w[n++] = 'c';
	if (flags & O_TRUNC)
		w[n++] = 't';
	if (flags & O_EXCL)
		w[n++] = 'x';
	if (flags & O_APPEND)
		w[n++] = 'a';
	w[n] = '\0';
	return 0;
}

static int parse_stat_prefix(const char *s, struct virgo_stat *st, const char **rest);

/* The directory ctimes flag p adds after the stat fields: " <pre> <post>". */
static int parse_dirchange(const char *s, struct virgo_dirchange *dc)
{
	long long pre, post;
	int end = 0;
	if (sscanf(s, " %lld %lld%n", &pre, &post, &end) != 2 || s[end] || pre < -1 || post < -1)
		return -VIRGO_EBADREPLY;
	*dc = (struct virgo_dirchange){pre, post};
	return 0;
}

/* The reply's fields after the descriptor: stat fields (flag s), then
 * the directory's ctimes (flag p, only asked with s). */
static int parse_open_tail(const char *end, bool with_s, bool with_p, struct virgo_stat *st,
			   struct virgo_dirchange *dc)
{
	if (!with_s)
		return *end ? -VIRGO_EBADREPLY : 0;
	const char *rest;
	if (parse_stat_prefix(end, st, &rest) != 0)
		return -VIRGO_EBADREPLY;
	if (!with_p)
		return *rest ? -VIRGO_EBADREPLY : 0;
	return parse_dirchange(rest, dc);
}

/* The open of virgo_open_ex; st non-NULL: with flag s, the reply's stat
 * fields after the descriptor go to *st; dc non-NULL (with st): flag p,
 * the directory's ctimes after them. */
static int open_call(const char *path, int flags, unsigned mode, virgo_fd_t *fd,
		     struct virgo_stat *st, struct virgo_dirchange *dc)
{
	struct vc_client *c;
	int idx;
	char fw[12];
	int rc = flags_word(flags, fw);
	bool with_s = rc == 0 && st, with_p = with_s && dc;
	if (dc)
		*dc = (struct virgo_dirchange){-1, -1};
	if (with_s)
		strcat(fw, "s");
	if (with_p)
		strcat(fw, "p");
	if (rc || mode > 07777)
		return vc_err_done("open", rc ? rc : -EINVAL);
	char *enc = malloc(ENC_CAP), *hdr = malloc(ENC_CAP + 64);
	struct vfs_file *f = calloc(1, sizeof *f);
	rc = enc && hdr && f ? locate(&c, path, &idx, enc, ENC_CAP) : -ENOMEM;
	int n = rc == 0 ? snprintf(hdr, ENC_CAP + 64, "open %s %s %o\r\n", enc, fw, mode) : 0;
	for (int attempt = 0; rc == 0; attempt++) {
		/* a spare connection first; one the node closed meanwhile
		 * (idle timeout, restart) never ran the request: retry on a
		 * fresh one */
		bool reused = (f->k = attempt == 0 ? spare_take(idx) : NULL) != NULL;
		if (!reused)
			rc = vc_conn_open_held(c, idx, VC_SVC_CLOUDFS, &f->k);
		if (rc)
			break;
		struct vc_reply rep;
		bool broken;
		rc = vc_conn_call(c, idx, VC_SVC_CLOUDFS, f->k, hdr, (size_t)n, NULL, 0, &rep, &broken);
		free(rep.data);
		if (broken) {
			vc_conn_free(f->k);
			f->k = NULL;
			if (reused && (rc == -ECONNRESET || rc == -EPIPE)) {
				rc = 0;
				continue;
			}
			break;
		}
		char *end = NULL;
		uint64_t v = rc == 0 ? strtoull(rep.line + 2, &end, 16) : 0;
		if (rc == 0 && (v == 0 || !end || parse_open_tail(end, with_s, with_p, st, dc)))
			rc = -VIRGO_EBADREPLY;
		if (rc == -EINVAL && with_s) {
			/* a node from before flag p (then s): without it (s:
			 * open, then fstat) */
			if (with_p)
				with_p = false;
			else
				with_s = false;
			fw[strlen(fw) - 1] = '\0';
			n = snprintf(hdr, ENC_CAP + 64, "open %s %s %o\r\n", enc, fw, mode);
			spare_put(idx, f->k);
			f->k = NULL;
			rc = 0;
			attempt = -1; /* the spare connection first again */
			continue;
		}
		if (rc) {
			spare_put(idx, f->k); /* an ERR reply leaves it clean */
			f->k = NULL;
			break;
		}
		f->stat_ok = with_s;
		f->fd = f->sfd = v;
		f->idx = idx;
		f->users = 1;
		size_t w = 0;
		for (const char *q = fw; *q; q++)
			if (*q != 'c' && *q != 't' && *q != 'x' && *q != 's' && *q != 'p')
				f->fw[w++] = *q;
		f->fw[w] = '\0';
		f->enc = enc;
		enc = NULL;
		f->tls = f->k->tstate != NULL;
		pthread_mutex_init(&f->slock, NULL);
		pthread_mutex_init(&f->lock, NULL);
		pthread_cond_init(&f->cv, NULL);
		pthread_mutex_lock(&files_lock);
		f->next = files;
		files = f;
		pthread_mutex_unlock(&files_lock);
		*fd = v;
		f = NULL;
		break;
	}
	if (f) {
		vc_conn_free(f->k);
		free(f);
	}
	free(enc);
	free(hdr);
	if (rc == 0 && st && !with_s) {
		rc = virgo_fstat(*fd, st);
		if (rc)
			virgo_close(*fd);
	}
	return vc_err_done("open", rc);
}

int virgo_open_ex(const char *path, int flags, unsigned mode, virgo_fd_t *fd)
{
	return open_call(path, flags, mode, fd, NULL, NULL);
}

int virgo_open_stat(const char *path, int flags, unsigned mode, virgo_fd_t *fd,
		    struct virgo_stat *st)
{
	return open_call(path, flags, mode, fd, st, NULL);
}

int virgo_open_dirchange(const char *path, int flags, unsigned mode, virgo_fd_t *fd,
			 struct virgo_stat *st, struct virgo_dirchange *dc)
{
	return open_call(path, flags, mode, fd, st, dc);
}

int virgo_open(const char *path, virgo_fd_t *fd)
{
	return virgo_open_ex(path, O_RDWR | O_CREAT, 0644, fd);
}

/* The window of chunks in flight for one call on f: 1 over TLS. */
static int file_window(virgo_fd_t fd)
{
	struct vfs_file *f = file_get(fd, false);
	if (!f)
		return 1;
	int w = f->tls ? 1 : VFS_WINDOW;
	file_release(f);
	return w;
}

/* "<count>" (pos < 0) or "<count> <offset>": a read's or write's tail. */
static void io_tail(char tail[64], size_t count, int64_t pos)
{
	if (pos < 0)
		snprintf(tail, 64, "%zu", count);
	else
		snprintf(tail, 64, "%zu %" PRIu64, count, (uint64_t)pos);
}

/* One chunk at the descriptor's position, or one chunk anywhere after a
 * pipelined one failed (fd_call retries it on a reopened connection). */
static ssize_t read_one(virgo_fd_t fd, uint8_t *dst, size_t want, int64_t pos)
{
	char tail[64];
	io_tail(tail, want, pos);
	struct vc_reply rep;
	int rc = fd_call(fd, pos < 0 ? "read" : "pread", tail, NULL, 0, pos >= 0, dst, want, &rep);
	free(rep.data);
	if (rc == 0 && strncmp(rep.line, "VALUE ", 6) != 0)
		rc = -VIRGO_EBADREPLY;
	return rc ? rc : (ssize_t)rep.data_len;
}

/* Positioned read of size bytes at pos, up to window chunks in flight,
 * each straight into buf.  Stops at the first short chunk (end of file);
 * replies to the chunks sent after it are read and ignored. */
static ssize_t read_pipelined(virgo_fd_t fd, uint8_t *buf, size_t size, uint64_t pos, int window)
{
	struct vc_client *c;
	struct vfs_file *f;
	int rc = file_ref(fd, false, &c, &f);
	if (rc)
		return rc;
	struct {
		struct vfs_tk t;
		size_t off, want;
		char hdr[128];
	} q[VFS_WINDOW];
	size_t sent = 0, done = 0;
	int head = 0, n = 0;
	bool stop = false;
	rc = 0;
	while (n > 0 || (!stop && sent < size)) {
		while (!stop && n < window && sent < size) {
			int i = (head + n) % VFS_WINDOW;
			q[i].off = sent;
			q[i].want = size - sent < VFS_CHUNK ? size - sent : VFS_CHUNK;
			char tail[64];
			io_tail(tail, q[i].want, (int64_t)(pos + sent));
			bool broken;
			int e = fd_send(c, f, "pread", tail, NULL, 0, false, q[i].hdr, &q[i].t, &broken);
			if (e) {
				if (!rc)
					rc = e;
				stop = true;
				break;
			}
			sent += q[i].want;
			n++;
		}
		if (n == 0)
			break;
		struct vc_reply rep;
		bool broken;
		int e = fd_wait(c, f, &q[head].t, q[head].hdr, buf + q[head].off, q[head].want, NULL,
				&rep, &broken);
		free(rep.data);
		if (e == 0 && strncmp(rep.line, "VALUE ", 6) != 0)
			e = -VIRGO_EBADREPLY;
		if (!stop && !rc) {
			if (e) {
				rc = e;
				stop = true;
			} else {
				done += rep.data_len;
				if (rep.data_len < q[head].want)
					stop = true; /* end of file */
			}
		}
		head = (head + 1) % VFS_WINDOW;
		n--;
	}
	file_release(f);
	if (rc && done < size) {
		/* the chunk at done failed: once more on its own, which
		 * reopens a broken connection; then go on from there */
		ssize_t r = read_one(fd, buf + done, size - done < VFS_CHUNK ? size - done : VFS_CHUNK,
				     (int64_t)(pos + done));
		if (r < 0)
			return done ? (ssize_t)done : r;
		done += (size_t)r;
		if ((size_t)r == VFS_CHUNK && done < size) {
			ssize_t more = read_pipelined(fd, buf + done, size - done, pos + done, window);
			if (more > 0)
				done += (size_t)more;
		}
	}
	return (ssize_t)done;
}

ssize_t vfs_pread_pipe(virgo_fd_t fd, const int pp[2], size_t size, uint64_t pos, void **mem)
{
	*mem = NULL;
	if (size == 0 || size > VFS_CHUNK || pos > INT64_MAX)
		return -EOPNOTSUPP;
	struct vc_client *c;
	struct vfs_file *f;
	int rc = file_ref(fd, false, &c, &f);
	if (rc)
		return vc_err_done("read", rc);
	pthread_mutex_lock(&f->lock);
	bool ok = !f->tls;
	pthread_mutex_unlock(&f->lock);
	struct vc_reply rep = {.data = NULL};
	bool broken = false;
	if (ok) {
		char tail[64], hdr[128];
		struct vfs_tk t;
		io_tail(tail, size, (int64_t)pos);
		rc = fd_send(c, f, "pread", tail, NULL, 0, false, hdr, &t, &broken);
		if (rc == 0)
			rc = fd_wait(c, f, &t, hdr, NULL, size, pp, &rep, &broken);
		if (rc == 0 && strncmp(rep.line, "VALUE ", 6) != 0)
			rc = -VIRGO_EBADREPLY;
	}
	file_release(f);
	if (!ok)
		return -EOPNOTSUPP;
	if (rc == 0) {
		*mem = rep.data;
		vc_err_done("read", 0);
		return (ssize_t)rep.data_len;
	}
	free(rep.data);
	if (!broken)
		return vc_err_done("read", rc);
	/* the connection broke: once more on a reopened one, into memory
	 * (the pipe may hold part of the lost reply) */
	uint8_t *d = malloc(size);
	if (!d)
		return vc_err_done("read", -ENOMEM);
	ssize_t r = read_one(fd, d, size, (int64_t)pos);
	if (r < 0) {
		free(d);
		return vc_err_done("read", (int)r);
	}
	*mem = d;
	vc_err_done("read", 0);
	return r;
}

ssize_t virgo_read(virgo_fd_t fd, void *buf, size_t size, int64_t pos)
{
	size_t done = 0;
	int window = pos >= 0 && size > VFS_CHUNK ? file_window(fd) : 1;
	if (window > 1) {
		ssize_t r = read_pipelined(fd, buf, size, (uint64_t)pos, window);
		vc_err_done("read", r < 0 ? (int)r : 0);
		return r;
	}
	while (done < size) {
		size_t want = size - done < VFS_CHUNK ? size - done : VFS_CHUNK;
		ssize_t r = read_one(fd, (uint8_t *)buf + done, want, pos < 0 ? pos : pos + (int64_t)done);
		if (r < 0) {
			if (done)
				break; /* what was read stands */
			return vc_err_done("read", (int)r);
		}
		done += (size_t)r;
		if ((size_t)r < want)
			break; /* end of file */
	}
	vc_err_done("read", 0);
	return (ssize_t)done;
}

/* One chunk at a time (at the descriptor's position, or over TLS). */
static ssize_t write_simple(virgo_fd_t fd, const void *data, size_t size, int64_t pos)
{
	size_t done = 0;
	do {
		size_t len = size - done < VFS_CHUNK ? size - done : VFS_CHUNK;
		char tail[64];
		io_tail(tail, len, pos < 0 ? pos : pos + (int64_t)done);
		struct vc_reply rep;
		int rc = fd_call(fd, pos < 0 ? "write" : "pwrite", tail,
				 len ? (const void *)((const uint8_t *)data + done) : (const void *)"", len,
				 pos >= 0, NULL, 0, &rep);
		free(rep.data);
		if (rc == 0 && strtoull(rep.line + 2, NULL, 10) != len)
			rc = -EIO;
		if (rc)
			return vc_err_done("write", rc);
		done += len;
	} while (done < size);
	vc_err_done("write", 0);
	return (ssize_t)done;
}

/* The start of a write: fd's client and entry (file_ref; file_release
 * it), returned with f->lock held; or the call's error, already ended. */
static int write_begin(virgo_fd_t fd, struct vc_client **c, struct vfs_file **f)
{
	int rc = file_ref(fd, false, c, f);
	if (rc)
		return vc_err_done("write", rc);
	pthread_mutex_lock(&(*f)->lock);
	return 0;
}

ssize_t virgo_write(virgo_fd_t fd, const void *data, size_t size, int64_t pos)
{
	struct vc_client *c;
	struct vfs_file *f;
	int rc = write_begin(fd, &c, &f);
	if (rc)
		return rc;
	bool async = f->wb > 0 && pos >= 0;
	int window = pos >= 0 && !f->tls ? VFS_WINDOW : 1;
	rc = f->werr; /* a write-behind write failed: say so now, once */
	f->werr = 0;
	pthread_mutex_unlock(&f->lock);
	/* one chunk (or no window): the plain call, which retries on a
	 * reopened connection */
	if (rc || (!async && (window == 1 || size <= VFS_CHUNK))) {
		file_release(f);
		return rc ? vc_err_done("write", rc) : write_simple(fd, data, size, pos);
	}
	bool brk = false;
	struct {
		struct vfs_tk t;
		size_t len;
		char hdr[128];
	} q[VFS_WINDOW];
	int head = 0, n = 0;
	size_t done = 0;
	do {
		size_t len = size - done < VFS_CHUNK ? size - done : VFS_CHUNK;
		char tail[64];
		io_tail(tail, len, pos < 0 ? pos : pos + (int64_t)done);
		const void *p = len ? (const void *)((const uint8_t *)data + done) : (const void *)"";
		int i = (head + n) % VFS_WINDOW;
		bool broken;
		if (async) /* sent is enough; the reply is read later */
			rc = fd_send(c, f, "pwrite", tail, p, len, true, q[i].hdr, &q[i].t, &broken);
		else
			rc = fd_send(c, f, "pwrite", tail, p, len, false, q[i].hdr, &q[i].t, &broken);
		if (rc == 0 && !async) {
			q[i].len = len;
			n++;
		}
		brk |= broken;
		if (rc)
			break;
		done += len;
		/* a full window, or the end: the oldest reply */
		while (n > 0 && (n == window || done == size)) {
			struct vc_reply rep;
			int e = fd_wait(c, f, &q[head].t, q[head].hdr, NULL, 0, NULL, &rep, &broken);
			free(rep.data);
			brk |= broken;
			if (e == 0 && strtoull(rep.line + 2, NULL, 10) != q[head].len)
				e = -EIO;
			if (e == 0) {
				pthread_mutex_lock(&f->lock);
				f->dirty = true;
				pthread_mutex_unlock(&f->lock);
			}
			if (e && !rc)
				rc = e;
			head = (head + 1) % VFS_WINDOW;
			n--;
		}
	} while (!rc && done < size);
	while (n > 0) { /* after a failure: the replies still due */
		struct vc_reply rep;
		bool broken;
		fd_wait(c, f, &q[head].t, q[head].hdr, NULL, 0, NULL, &rep, &broken);
		free(rep.data);
		head = (head + 1) % VFS_WINDOW;
		n--;
	}
	file_release(f);
	/* the connection broke: positioned writes are idempotent, so the
	 * whole call once more, chunk by chunk, on a reopened connection
	 * (write-behind writes lost with it are fsync's and close's EIO) */
	if (rc && brk && pos >= 0)
		return write_simple(fd, data, size, pos);
	if (rc)
		return vc_err_done("write", rc);
	vc_err_done("write", 0);
	return (ssize_t)done;
}

ssize_t vfs_pwrite_pipe(virgo_fd_t fd, int pfd, size_t size, uint64_t pos)
{
	if (size == 0 || size > VFS_CHUNK || pos > INT64_MAX)
		return -EOPNOTSUPP;
	struct vc_client *c;
	struct vfs_file *f;
	int rc = write_begin(fd, &c, &f);
	if (rc)
		return rc;
	bool ok = f->wb > 0 && !f->tls;
	rc = ok ? f->werr : 0; /* a write-behind write failed: say so now, once */
	if (ok)
		f->werr = 0;
	pthread_mutex_unlock(&f->lock);
	if (ok && !rc) {
		char tail[64], hdr[128];
		struct vfs_tk t;
		bool broken;
		io_tail(tail, size, (int64_t)pos);
		rc = fd_send_from(c, f, "pwrite", tail, NULL, pfd, size, true, hdr, &t, &broken);
	}
	file_release(f);
	if (!ok)
		return -EOPNOTSUPP;
	return rc ? vc_err_done("write", rc) : (vc_err_done("write", 0), (ssize_t)size);
}

int virgo_writebehind(virgo_fd_t fd, unsigned window)
{
	struct vfs_file *f = file_get(fd, false);
	if (!f)
		return -EBADF;
	if (window > VFS_RING / 2)
		window = VFS_RING / 2;
	pthread_mutex_lock(&f->slock);
	pthread_mutex_lock(&f->lock);
	f->wb = f->tls ? 0 : window;
	pthread_cond_broadcast(&f->cv);
	pthread_mutex_unlock(&f->lock);
	pthread_mutex_unlock(&f->slock);
	file_release(f);
	return 0;
}

/* virgo_flush; st non-NULL: the attributes the last write-behind
 * write's reply carried, when nothing was sent after it (else type 0). */
static int flush_call(virgo_fd_t fd, struct virgo_stat *st)
{
	struct vc_client *c;
	struct vfs_file *f;
	int rc = file_ref(fd, false, &c, &f);
	if (rc)
		return vc_err_done("flush", rc);
	pthread_mutex_lock(&f->lock);
	drain_locked(c, f);
	rc = f->werr ? f->werr : f->lost ? -EIO : 0; /* kept for fsync/close */
	if (st) {
		st->type = 0;
		if (rc == 0 && f->have_wst)
			*st = f->wst;
		f->have_wst = false;
	}
	pthread_mutex_unlock(&f->lock);
	file_release(f);
	return vc_err_done("flush", rc);
}

int virgo_flush(virgo_fd_t fd)
{
	return flush_call(fd, NULL);
}

int virgo_flush_stat(virgo_fd_t fd, struct virgo_stat *st)
{
	return flush_call(fd, st);
}

ssize_t virgo_pread(virgo_fd_t fd, void *buf, size_t size, uint64_t offset)
{
	if (offset > INT64_MAX)
		return -EINVAL;
	return virgo_read(fd, buf, size, (int64_t)offset);
}

ssize_t virgo_pwrite(virgo_fd_t fd, const void *data, size_t size, uint64_t offset)
{
	if (offset > INT64_MAX)
		return -EINVAL;
	return virgo_write(fd, data, size, (int64_t)offset);
}

static int fd_simple(virgo_fd_t fd, const char *op, const char *tail)
{
	struct vc_reply rep;
	int rc = fd_call(fd, op, tail, NULL, 0, true, NULL, 0, &rep);
	free(rep.data);
	return vc_err_done(op, rc);
}

/* virgo_close, and (wait false) virgo_close_nowait: the close is sent and
 * its reply left for the connection's next user to drop (conn.c, skip). */
static int close_fd(virgo_fd_t fd, bool wait)
{
	struct vc_client *c;
	struct vfs_file *f;
	int rc = file_ref(fd, true, &c, &f);
	if (rc)
		return vc_err_done("close", rc);
	pthread_mutex_lock(&f->slock); /* nobody sends any more */
	pthread_mutex_lock(&f->lock);
	drain_locked(c, f); /* write-behind writes answered first */
	rc = f->werr;
	int crc = 0;
	if (f->k && !f->broken) {
		char hdr[64];
		int n = snprintf(hdr, sizeof hdr, "close %" PRIx64 "\r\n", f->sfd);
		struct vc_reply rep = {0};
		bool broken;
		if (wait) {
			crc = vc_conn_call(c, f->idx, VC_SVC_CLOUDFS, f->k, hdr, (size_t)n, NULL, 0,
					   &rep, &broken);
		} else {
			crc = vc_conn_send(c, f->idx, VC_SVC_CLOUDFS, f->k, hdr, (size_t)n, NULL, 0,
					   &broken);
			if (crc == 0)
				f->k->skip++;
		}
		free(rep.data);
		if (broken) {
			crc = 0; /* the node closes it with the connection anyway */
			if (f->dirty)
				f->lost = true;
		} else {
			spare_put(f->idx, f->k); /* clean again: reused by a later open */
			f->k = NULL;
		}
	}
	if (rc == 0)
		rc = crc;
	if (rc == 0 && f->lost)
		rc = -EIO; /* writes before a broken connection may be lost */
	pthread_mutex_unlock(&f->lock);
	pthread_mutex_unlock(&f->slock);
	file_release(f);
	return vc_err_done("close", rc);
}

int virgo_close(virgo_fd_t fd) { return close_fd(fd, true); }

int virgo_close_nowait(virgo_fd_t fd) { return close_fd(fd, false); }

int virgo_fsync(virgo_fd_t fd) { return fd_simple(fd, "fsync", NULL); }

int virgo_ftruncate(virgo_fd_t fd, uint64_t size)
{
	char t[32];
	snprintf(t, sizeof t, "%" PRIu64, size);
	return fd_simple(fd, "ftruncate", t);
}

/* The stat fields at s (cloudfs_reply_stat), and *rest: what follows them. */
static int parse_stat_prefix(const char *s, struct virgo_stat *st, const char **rest)
{
	return cloudfs_reply_stat(s, s + strlen(s), st, rest) == 0 ? 0 : -VIRGO_EBADREPLY;
}

/* The stat fields and nothing after them. */
static int parse_stat_fields(const char *s, struct virgo_stat *st)
{
	const char *rest;
	return parse_stat_prefix(s, st, &rest) == 0 && !*rest ? 0 : -VIRGO_EBADREPLY;
}

/* "OK <stat fields>" */
static int parse_stat(const char *line, struct virgo_stat *st)
{
	return strncmp(line, "OK ", 3) == 0 ? parse_stat_fields(line + 2, st) : -VIRGO_EBADREPLY;
}

static int stat_call(const char *op, const char *path, struct virgo_stat *st)
{
	struct vc_reply rep;
	int rc = path_call(op, path, NULL, VC_IDEMPOTENT, &rep);
	free(rep.data);
	if (rc == 0)
		rc = parse_stat(rep.line, st);
	return rc;
}

int virgo_stat(const char *path, struct virgo_stat *st) { return stat_call("stat", path, st); }
int virgo_lstat(const char *path, struct virgo_stat *st) { return stat_call("lstat", path, st); }

int virgo_fstat(virgo_fd_t fd, struct virgo_stat *st)
{
	struct vc_reply rep;
	int rc = fd_call(fd, "fstat", NULL, NULL, 0, true, NULL, 0, &rep);
	free(rep.data);
	if (rc == 0)
		rc = parse_stat(rep.line, st);
	return vc_err_done("fstat", rc);
}

int virgo_unlink(const char *path) { return simple_path_call("unlink", path, NULL); }
int virgo_rmdir(const char *path) { return simple_path_call("rmdir", path, NULL); }

int virgo_mkdir(const char *path, unsigned mode)
{
	char t[16];
	if (mode > 07777)
		return -EINVAL;
	snprintf(t, sizeof t, "%o", mode);
	return simple_path_call("mkdir", path, t);
}

int virgo_mkdir_stat(const char *path, unsigned mode, struct virgo_stat *st)
{
	char t[16];
	if (mode > 07777)
		return -EINVAL;
	snprintf(t, sizeof t, "%o s", mode);
	struct vc_reply rep;
	int rc = path_call("mkdir", path, t, 0, &rep);
	free(rep.data);
	if (rc == -EINVAL) {
		/* a node from before "s" refuses the request before making
		 * anything (as for a bad mode, which is checked above):
		 * plain mkdir, then lstat */
		rc = virgo_mkdir(path, mode);
		return rc ? rc : virgo_lstat(path, st);
	}
	if (rc == 0)
		rc = parse_stat(rep.line, st);
	return rc;
}

int virgo_chmod(const char *path, unsigned mode)
{
	char t[16];
	if (mode > 07777)
		return -EINVAL;
	snprintf(t, sizeof t, "%o", mode);
	return simple_path_call("chmod", path, t);
}

int virgo_truncate(const char *path, uint64_t size)
{
	char t[32];
	snprintf(t, sizeof t, "%" PRIu64, size);
	return simple_path_call("truncate", path, t);
}

static void time_word(int64_t t, char *w, size_t cap)
{
	if (t == VIRGO_TIME_NOW)
		snprintf(w, cap, "now");
	else if (t < 0)
		snprintf(w, cap, "omit");
	else
		snprintf(w, cap, "%" PRId64, t);
}

int virgo_utimens(const char *path, int64_t atime_ns, int64_t mtime_ns)
{
	char a[32], m[32], t[70];
	time_word(atime_ns, a, sizeof a);
	time_word(mtime_ns, m, sizeof m);
	snprintf(t, sizeof t, "%s %s", a, m);
	return simple_path_call("utimens", path, t);
}

/* Two paths on one node: "<op> <enc a> <enc b>". */
static int two_path_call(const char *op, const char *a, bool a_raw, const char *b)
{
	struct vc_client *c;
	int ia = -1, ib;
	char *ea = malloc(ENC_CAP), *eb = malloc(ENC_CAP), *hdr = malloc(2 * ENC_CAP + 32);
	int rc = ea && eb && hdr ? 0 : -ENOMEM;
	if (rc == 0 && a_raw) { /* a symlink's target: text, no node prefix */
		size_t n = strlen(a);
		if (n == 0 || n > VFS_PATH_MAX)
			rc = -EINVAL;
		else
			pathcodec_encode(a, n, ea, ENC_CAP);
	} else if (rc == 0) {
		rc = locate(&c, a, &ia, ea, ENC_CAP);
	}
	if (rc == 0)
		rc = locate(&c, b, &ib, eb, ENC_CAP);
	if (rc == 0 && ia >= 0 && ia != ib)
		rc = -EXDEV;
	if (rc == 0) {
		int n = snprintf(hdr, 2 * ENC_CAP + 32, "%s %s %s\r\n", op, ea, eb);
		struct vc_reply rep;
		rc = vc_call_svc(c, ib, VC_SVC_CLOUDFS, hdr, (size_t)n, NULL, 0, 0, &rep);
		free(rep.data);
	}
	free(ea);
	free(eb);
	free(hdr);
	return vc_err_done(op, rc);
}

int virgo_rename(const char *from, const char *to) { return two_path_call("rename", from, false, to); }

int virgo_symlink(const char *target, const char *linkpath)
{
	return two_path_call("symlink", target, true, linkpath);
}

ssize_t virgo_readlink(const char *path, char *buf, size_t cap)
{
	struct vc_reply rep;
	int rc = path_call("readlink", path, NULL, VC_IDEMPOTENT, &rep);
	free(rep.data);
	if (rc)
		return rc;
	const char *t = rep.line + 3;
	if (strncmp(rep.line, "OK ", 3) != 0 || pathcodec_decode((const uint8_t *)t, strlen(t), buf, cap) != 0)
		return strncmp(rep.line, "OK ", 3) != 0 ? -VIRGO_EBADREPLY : -ERANGE;
	return (ssize_t)strlen(buf);
}

int vfs_readdir_text(const char *path, uint64_t cursor, size_t max, enum cloudfs_page kind,
		     char **text, size_t *len, uint64_t *next)
{
	*text = NULL;
	*len = 0;
	*next = 0;
	if (max == 0 || max > 4096)
		return -EINVAL;
	char tail[48];
	snprintf(tail, sizeof tail, "%" PRIu64 " %zu%s", cursor, max,
		 kind == CLOUDFS_PAGE_PLUS ? " s" : kind == CLOUDFS_PAGE_NAMES ? " t" : "");
	struct vc_reply rep;
	int rc = path_call("readdir", path, tail, VC_IDEMPOTENT, &rep);
	if (rc) {
		free(rep.data);
		return rc;
	}
	*text = (char *)rep.data;
	*len = rep.data ? rep.data_len : 0;
	*next = cloudfs_reply_next(*text ? *text : "", *len);
	return 0;
}

/* One readdir page; plus: flag s, entries with every lstat field
 * (*out an array of struct virgo_direntplus, else of struct
 * virgo_dirent; malloc'd, the caller's). */
static int readdir_page(const char *path, uint64_t *cursor, size_t max, bool plus, void **out,
			size_t *n)
{
	*out = NULL;
	*n = 0;
	char *text;
	size_t len;
	uint64_t next;
	enum cloudfs_page kind = plus ? CLOUDFS_PAGE_PLUS : CLOUDFS_PAGE_ENT;
	int rc = vfs_readdir_text(path, *cursor, max, kind, &text, &len, &next);
	if (rc)
		return rc;
	/* one array of exactly as many entries as the page has lines (at
	 * most max), filled by one pass over the page's text */
	size_t lines = cloudfs_reply_lines(text ? text : "", len);
	size_t cap = lines < max ? lines : max;
	void *arr = malloc((cap ? cap : 1) * (plus ? sizeof(struct virgo_direntplus)
						 : sizeof(struct virgo_dirent)));
	long k = arr ? cloudfs_reply_page(text ? text : "", len, kind, arr, cap, &next) : -ENOMEM;
	free(text);
	if (k < 0) {
		free(arr);
		return k == -ENOMEM ? -ENOMEM : -VIRGO_EBADREPLY;
	}
	*cursor = next;
	*out = arr;
	*n = (size_t)k;
	return 0;
}

int virgo_readdir(const char *path, uint64_t *cursor, size_t max, struct virgo_dirent **out,
		  size_t *n)
{
	void *v;
	int rc = readdir_page(path, cursor, max, false, &v, n);
	*out = v;
	return rc;
}

int virgo_readdir_plus(const char *path, uint64_t *cursor, size_t max,
		       struct virgo_direntplus **out, size_t *n)
{
	void *v;
	int rc = readdir_page(path, cursor, max, true, &v, n);
	*out = v;
	return rc;
}

int virgo_statfs(const char *path, struct virgo_statfs *st)
{
	struct vc_client *c;
	int idx;
	char enc[64];
	/* only the node prefix matters: "statfs" takes no path */
	char head[32] = "/";
	const char *colon = path ? strchr(path, ':') : NULL;
	if (colon && (size_t)(colon - path) + 2 < sizeof head) {
		memcpy(head, path, (size_t)(colon - path) + 1);
		head[colon - path + 1] = '\0';
	}
	int rc = locate(&c, head, &idx, enc, sizeof enc);
	if (rc == 0) {
		struct vc_reply rep;
		rc = vc_call_svc(c, idx, VC_SVC_CLOUDFS, "statfs\r\n", 8, NULL, 0, VC_IDEMPOTENT, &rep);
		free(rep.data);
		unsigned long long v[7];
		if (rc == 0 && sscanf(rep.line, "OK %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1],
				      &v[2], &v[3], &v[4], &v[5], &v[6]) != 7)
			rc = -VIRGO_EBADREPLY;
		if (rc == 0)
			*st = (struct virgo_statfs){v[0], v[1], v[2], v[3], v[4], v[5], v[6]};
	}
	return vc_err_done("statfs", rc);
}
