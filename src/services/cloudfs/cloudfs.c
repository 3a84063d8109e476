/*
 * cloudfs.c - the cloud file system service (port 50000, notes §902/§903).
 *
 * Glue between the pure parser (cloudfs_proto.c), the descriptor table
 * (cloudfs_fdtab.c) and the disk work (cloudfs_ops.c): a request is
 * parsed and checked on the loop (read-only export, descriptor ownership,
 * caps), then run on the node's work pool, whose thread sends the reply
 * itself when the connection allows it (vconn_ticket_send: nothing else
 * waiting to be written), else through a ticket on the connection's
 * loop, which then reads on in either case.  One request per connection
 * is in flight at a time; pipelined requests wait in the input, so replies
 * come in order and a connection's memory stays one payload plus one
 * reply.  Replies to the notes' call syntax keep the original's shape (a
 * bare decimal descriptor for open, the bare bytes for read) and the
 * connection closes after them, as the original's did.
 */
#include <errno.h>
#include <event2/buffer.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include "../../common/errcode.h"
#include "../../common/idpolicy.h"
#include "../../daemon/config.h"
#include "../../daemon/log.h"
#include "../../daemon/service.h"
#include "../../daemon/workpool.h"
#include "cloudfs_fdtab.h"
#include "cloudfs_ops.h"
#include "cloudfs_path.h"
#include "cloudfs_proto.h"
#include "cloudfs_settings.h"
#include "../eventnet/eventnet_trace.h"
#include "../../common/mkdirp.h"

struct cloudfs {
	struct cfs_settings set;
	char root_path[4096];
	unsigned node_id;
	struct vd_workpool *pool;
	struct cfs_fdtab *tab;
	struct cfs_limits lim;
	pthread_mutex_t root_lock;
	int root; /* the export root, opened on first use (-1: not yet) */
	bool root_failed; /* logged once */
	_Atomic uint64_t next_conn_id;
	_Atomic uint64_t ops, errors, bytes_read, bytes_written, bytes_sendfile, busy;
};

struct cloudfs_conn {
	struct frame_state fs;
	uint64_t need; /* wait for this much input before parsing again */
	uint64_t id; /* owner of this connection's descriptors */
	bool legacy_close; /* last request used the call syntax */
	bool in_body; /* a write's payload is arriving under vconn_body_begin */
	bool busy; /* a job is out on the pool */
	/* the request being run: its bytes in the input buffer (frame_used
	 * from its start; frame_buf where evbuffer_pullup put them), and
	 * whether start_job took them over (the caller then drains none) */
	struct evbuffer *frame_in;
	const uint8_t *frame_buf;
	size_t frame_used;
	bool frame_taken;
};

static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* "/", "//", "/./" ...: exporting the whole machine is refused. */
static bool is_fs_root(const char *p)
{
	for (; *p; p++)
		if (*p != '/' && !(*p == '.' && (p[1] == '/' || p[1] == '\0')))
			return false;
	return true;
}

static int cloudfs_init(const struct vd_node *node, void **out)
{
	const struct cfs_settings *set = node->settings;
	struct cloudfs *fs = calloc(1, sizeof *fs);
	if (!fs)
		return -ENOMEM;
	fs->set = *set;
	fs->node_id = node->node_id;
	if (set->export_root[0])
		snprintf(fs->root_path, sizeof fs->root_path, "%s", set->export_root);
	else
		snprintf(fs->root_path, sizeof fs->root_path, CFS_DEFAULT_ROOT_FMT, node->node_id);
	if (fs->root_path[0] != '/' || is_fs_root(fs->root_path)) {
		log_error("cloudfs_export_root must be an absolute directory other than / (got %s)",
			  fs->root_path);
		free(fs);
		return -EINVAL;
	}
	struct timeval tv;
	gettimeofday(&tv, NULL);
	uint64_t seed = (uint64_t)tv.tv_sec * 1000 + (uint64_t)tv.tv_usec / 1000;
	fs->tab = cfs_fdtab_new(node->node_id, set->max_fds,
				set->call_fds < set->max_fds ? set->call_fds : set->max_fds, seed);
	if (!fs->tab) {
		free(fs);
		return -ENOMEM;
	}
	fs->pool = node->pool;
	fs->lim.max_line = node->cfg->max_line;
	fs->lim.max_io = set->max_io;
	fs->root = -1;
	pthread_mutex_init(&fs->root_lock, NULL);
	atomic_init(&fs->next_conn_id, 1);
	log_info("cloudfs export_root=%s read_only=%s", fs->root_path,
		 set->read_only ? "yes" : "no");
	*out = fs;
	return 0;
}

static void cloudfs_fini(void *svc)
{
	struct cloudfs *fs = svc;
	cfs_fdtab_free(fs->tab);
	if (fs->root >= 0)
		close(fs->root);
	pthread_mutex_destroy(&fs->root_lock);
	free(fs);
}

/* Pool thread: the export root, created and opened on first use (so a
 * node that never serves a file leaves no directory behind). */
static int root_get(struct cloudfs *fs)
{
	pthread_mutex_lock(&fs->root_lock);
	if (fs->root < 0) {
		int rc = mkdirp(fs->root_path);
		int fd = rc == 0 ? open(fs->root_path, O_PATH | O_DIRECTORY | O_CLOEXEC) : rc;
		if (fd < 0 && rc == 0)
			fd = -errno;
		struct stat a, b;
		if (fd >= 0 && fstat(fd, &a) == 0 && stat("/", &b) == 0 && a.st_ino == b.st_ino &&
		    a.st_dev == b.st_dev) {
			close(fd); /* a symlink to / */
			fd = -EINVAL;
		}
		if (fd >= 0 && !cfs_path_supported(fd)) {
			close(fd);
			fd = -ENOSYS;
		}
		if (fd >= 0) {
			fs->root = fd;
		} else if (!fs->root_failed) {
			fs->root_failed = true;
			log_error("cloudfs export_root=%s unusable: %s", fs->root_path,
				  strerror(-fd));
		}
		if (fd < 0) {
			pthread_mutex_unlock(&fs->root_lock);
			return fd;
		}
	}
	int root = fs->root;
	pthread_mutex_unlock(&fs->root_lock);
	return root;
}

static const char not_yours[] = "descriptor opened by another identity";

static void reply_err(struct cloudfs *fs, struct evbuffer *out, int code, const char *msg)
{
	atomic_fetch_add(&fs->errors, 1);
	evbuffer_add_printf(out, "ERR %s %s\r\n", ec_name(code), msg ? msg : cfs_path_msg(code));
}

static void job_free(struct cfs_job *j)
{
	if (j->reply)
		evbuffer_free(j->reply);
	if (j->frame)
		evbuffer_free(j->frame); /* j->data pointed into it */
	else
		free(j->data);
	free(j);
}

/* Pool thread: turns j->reply into the whole reply.  An open's
 * descriptor is registered here: its number is in the reply. */
static void job_reply(struct cloudfs *fs, struct cfs_job *j)
{
	struct evbuffer *b = j->reply;
	int rc = j->rc;
	if (rc == 0 && j->req.op == CFS_OP_OPEN) {
		rc = cfs_fdtab_add(fs->tab, j->newfd, j->owner, j->ident, fs->set.max_fds_per_conn,
				   j->writable ? &j->newst : NULL, now_ms(), &j->newvfd);
		evn_trace_note("cloudfs", rc ? "open_failed" : "open", NULL); /* eventnet_trace */
		if (rc != 0)
			close(j->newfd);
		j->newfd = -1; /* the table's now, or closed */
		j->added = rc == 0;
		if (rc == 0 && j->req.legacy) {
			evbuffer_drain(b, evbuffer_get_length(b));
			evbuffer_add_printf(b, "%" PRIu64 "\r\n", j->newvfd);
		} else if (rc == 0) {
			char head[24]; /* before the stat fields of flag s */
			int n = snprintf(head, sizeof head, "OK %" PRIx64, j->newvfd);
			evbuffer_prepend(b, head, (size_t)n);
			evbuffer_add(b, "\r\n", 2);
		}
	}
	if (rc != 0) {
		evbuffer_drain(b, evbuffer_get_length(b));
		reply_err(fs, b, -rc, j->rc ? j->msg : NULL);
	}
}

/* Largest reply the pool thread sends itself: a listing page or a status
 * line, not a read's data (which may be file segments for sendfile). */
#define CFS_SEND_MAX 65536

/* Pool thread, the job done: its reply made whole and, when the
 * connection allows (vconn_ticket_allow_send), sent from here, so the
 * client has it without waiting for the loop to wake; the loop then only
 * queues what the socket did not take and reads on. */
static void job_finish(struct cloudfs *fs, struct cfs_job *j)
{
	job_reply(fs, j);
	size_t len = evbuffer_get_length(j->reply);
	if (j->file_bytes == 0 && len <= CFS_SEND_MAX) {
		const uint8_t *p = evbuffer_pullup(j->reply, -1);
		if (p) {
			j->sent = vconn_ticket_send(j->ticket, p, len);
			evbuffer_drain(j->reply, j->sent);
		}
	}
}

/* Loop thread, or any thread with c NULL (the connection went away). */
static void job_done(struct vconn *c, void *arg)
{
	struct cfs_job *j = arg;
	struct cloudfs *fs = j->svc;
	if (j->osfd >= 0)
		cfs_fdtab_put(fs->tab, j->vfd);
	if (!c) {
		if (j->added) /* maybe after conn_close closed its owner's */
			cfs_fdtab_close(fs->tab, j->newvfd, j->owner, j->ident);
		job_free(j);
		return;
	}
	struct cloudfs_conn *cc = vconn_state(c);
	cc->busy = false;
	evbuffer_add_buffer(vconn_out(c), j->reply); /* what was not sent */
	if (j->sent)
		vconn_direct_done(c);
	job_free(j);
	vconn_resume(c);
}

/* Is the file at path (its final symlink followed or not) open for
 * writing through another identity's descriptor? */
static bool path_written_by_other(struct cloudfs *fs, int root, const char *path, bool follow,
				  uint64_t ident)
{
	struct stat st;
	int rc;
	if (follow) {
		int fd = cfs_path_open(root, path, O_PATH, 0);
		if (fd < 0)
			return false;
		rc = fstat(fd, &st);
		close(fd);
	} else {
		char name[NAME_MAX + 1];
		const char *nm;
		int dfd = cfs_path_parent(root, path, name, &nm);
		if (dfd < 0)
			return false;
		rc = fstatat(dfd, nm, &st, AT_SYMLINK_NOFOLLOW);
		close(dfd);
	}
	return rc == 0 && S_ISREG(st.st_mode) &&
	       cfs_fdtab_writer_other(fs->tab, (uint64_t)st.st_dev, (uint64_t)st.st_ino, ident);
}

/* A file another identity holds open for writing may not be opened for
 * writing, truncated, unlinked, renamed or renamed over by this one
 * (docs/SECURITY.md).  Checked as the request starts: it keeps identities
 * from pulling a file from under each other's writers, it is not a lock
 * (a writer that opens just after the check is not seen).  A node that
 * authenticates no one has one identity: nothing to check. */
static bool held_by_other_writer(struct cloudfs *fs, const struct cfs_job *j)
{
	const struct cfs_req *r = &j->req;
	if (j->ident == 0)
		return false;
	switch (r->op) {
	case CFS_OP_OPEN:
		return (r->flags & (CFS_O_WRITE | CFS_O_TRUNC)) &&
		       path_written_by_other(fs, j->root, r->path, true, j->ident);
	case CFS_OP_TRUNCATE:
		return path_written_by_other(fs, j->root, r->path, true, j->ident);
	case CFS_OP_UNLINK:
		return path_written_by_other(fs, j->root, r->path, false, j->ident);
	case CFS_OP_RENAME:
		return path_written_by_other(fs, j->root, r->path, false, j->ident) ||
		       path_written_by_other(fs, j->root, r->path2, false, j->ident);
	default:
		return false;
	}
}

static void job_work(void *arg, bool cancelled)
{
	struct cfs_job *j = arg;
	struct cloudfs *fs = j->svc;
	if (cancelled) { /* the pool is going away with the node */
		if (j->osfd >= 0)
			cfs_fdtab_put(fs->tab, j->vfd);
		vconn_ticket_drop(j->ticket);
		job_free(j);
		return;
	}
	int root = root_get(fs);
	if (root < 0) {
		j->rc = root == -ENOSYS ? -ENOSYS : -EIO;
		j->msg = root == -ENOSYS ? NULL
					 : "export root unavailable (cloudfs_export_root; see the node's log)";
	} else {
		j->root = root;
		if (held_by_other_writer(fs, j)) {
			j->rc = -EACCES;
			j->msg = "open for writing by another identity";
		} else {
			cfs_ops_run(j);
		}
	}
	if (j->rc == 0) {
		if (j->req.op == CFS_OP_WRITE || j->req.op == CFS_OP_PWRITE)
			atomic_fetch_add(&fs->bytes_written, j->data_len);
		else if (j->req.op == CFS_OP_READ || j->req.op == CFS_OP_PREAD)
			atomic_fetch_add(&fs->bytes_read, evbuffer_get_length(j->reply));
		atomic_fetch_add(&fs->bytes_sendfile, j->file_bytes);
	}
	job_finish(fs, j);
	vconn_ticket_post(j->ticket, job_done, j);
}

static bool op_modifies(const struct cfs_req *r)
{
	switch (r->op) {
	case CFS_OP_WRITE:
	case CFS_OP_PWRITE:
	case CFS_OP_FTRUNCATE:
	case CFS_OP_TRUNCATE:
	case CFS_OP_UNLINK:
	case CFS_OP_RENAME:
	case CFS_OP_MKDIR:
	case CFS_OP_RMDIR:
	case CFS_OP_SYMLINK:
	case CFS_OP_CHMOD:
	case CFS_OP_UTIMENS:
		return true;
	case CFS_OP_OPEN:
		return (r->flags & ~CFS_O_READ) != 0;
	default:
		return false;
	}
}

static bool op_uses_fd(enum cfs_op op)
{
	return op >= CFS_OP_READ && op <= CFS_OP_FTRUNCATE && op != CFS_OP_CLOSE;
}

/* A client on this machine: vconn_peer's "127.x.y.z:port",
 * "::ffff:127.x.y.z:port" or "::1:port".
 * sendfile saves the node its copies but leaves the page-cache bytes cold
 * for the reader: over loopback the reader is on this machine and pays
 * more than the node saves (measured: bench/suite_cloudfs.sh), so such
 * reads are copied unless cloudfs_sendfile_loopback says otherwise. */
static bool peer_is_loopback(const char *p)
{
	if (strncmp(p, "::ffff:", 7) == 0)
		p += 7;
	return strncmp(p, "127.", 4) == 0 || (strncmp(p, "::1:", 4) == 0 && !strchr(p + 4, ':'));
}

/* A write's payload without copying it: when the request's bytes fill the
 * input buffer's first chunk exactly (a large write, made contiguous by
 * evbuffer_pullup), that chunk moves to the job as it is.  Else nothing
 * (the caller copies the payload). */
static void frame_take(struct cloudfs_conn *cc, struct cfs_job *j, const struct cfs_req *r)
{
	struct evbuffer *in = cc->frame_in;
	if (!in || cc->frame_taken || r->data_len < 65536 ||
	    evbuffer_get_contiguous_space(in) != cc->frame_used)
		return;
	struct evbuffer *b = evbuffer_new();
	if (!b)
		return;
	if (evbuffer_remove_buffer(in, b, cc->frame_used) != (int)cc->frame_used) {
		evbuffer_free(b); /* cannot happen: the bytes are there */
		return;
	}
	uint8_t *p = evbuffer_pullup(b, -1); /* one chunk: no copy */
	if (!p) {
		evbuffer_prepend_buffer(in, b);
		evbuffer_free(b);
		return;
	}
	cc->frame_taken = true;
	j->frame = b;
	j->data = p + (r->data - cc->frame_buf);
}

/* Hands r to the pool.  VSVC_WAIT when it went, else the error reply is
 * written and VSVC_KEEP returned. */
static int start_job(struct vconn *c, struct cloudfs *fs, struct cloudfs_conn *cc,
		     const struct cfs_req *r)
{
	struct evbuffer *out = vconn_out(c);
	struct cfs_job *j = calloc(1, sizeof *j);
	if (!j) {
		reply_err(fs, out, ENOMEM, "out of memory");
		return VSVC_KEEP;
	}
	j->req = *r;
	j->req.data = NULL;
	j->svc = fs;
	j->ident = vconn_identity_id(c);
	j->owner = r->legacy ? 0 : cc->id;
	j->osfd = j->newfd = -1;
	j->max_io = fs->set.max_io;
	j->zero_copy = vconn_zero_copy(c) &&
		       (fs->set.sendfile_loopback || !peer_is_loopback(vconn_peer(c)));
	j->reply = evbuffer_new();
	if (j->reply && r->data_len)
		frame_take(cc, j, r);
	if (!j->reply || (r->data_len && !j->data && !(j->data = malloc(r->data_len)))) {
		job_free(j);
		reply_err(fs, out, ENOMEM, "out of memory");
		return VSVC_KEEP;
	}
	if (r->data_len && !j->frame)
		memcpy(j->data, r->data, r->data_len);
	j->data_len = r->data_len;
	if (op_uses_fd(r->op)) {
		int e = cfs_fdtab_get(fs->tab, r->fd, cc->id, vconn_identity_id(c), now_ms(),
				      &j->osfd, NULL);
		if (e != 0) {
			j->osfd = -1;
			job_free(j);
			reply_err(fs, out, -e, e == -EACCES ? not_yours : NULL);
			return VSVC_KEEP;
		}
		j->vfd = r->fd;
	}
	int rc = -ENOMEM;
	if ((j->ticket = vconn_ticket_new(c)) != NULL) {
		/* the call syntax's replies close the connection after them:
		 * those stay on the loop */
		if (!r->legacy)
			vconn_ticket_allow_send(j->ticket, c);
		rc = vd_workpool_submit(fs->pool, job_work, j);
	}
	if (rc == 0) {
		cc->busy = true;
		return VSVC_WAIT;
	}
	if (j->ticket)
		vconn_ticket_drop(j->ticket);
	if (j->osfd >= 0)
		cfs_fdtab_put(fs->tab, j->vfd);
	job_free(j);
	if (rc == -EBUSY) {
		atomic_fetch_add(&fs->busy, 1);
		reply_err(fs, out, EBUSY, "the node's work pool is full; retry");
	} else {
		reply_err(fs, out, -rc, "out of memory");
	}
	return VSVC_KEEP;
}

static void reply_stats(struct cloudfs *fs, struct evbuffer *out)
{
	struct cfs_fdtab_counts n;
	cfs_fdtab_counts(fs->tab, &n);
	evbuffer_add_printf(out,
			    "STAT node_id %u\r\nSTAT export_root %s\r\nSTAT read_only %d\r\n"
			    "STAT open_fds %d\r\nSTAT call_fds %d\r\nSTAT max_fds %d\r\n"
			    "STAT max_io %" PRIu64 "\r\nSTAT ops %" PRIu64 "\r\n"
			    "STAT errors %" PRIu64 "\r\nSTAT bytes_read %" PRIu64 "\r\n"
			    "STAT bytes_written %" PRIu64 "\r\nSTAT bytes_sendfile %" PRIu64
			    "\r\nSTAT pool_busy %" PRIu64 "\r\nEND\r\n",
			    fs->node_id, fs->root_path, fs->set.read_only ? 1 : 0, n.open, n.call,
			    fs->set.max_fds, fs->set.max_io, atomic_load(&fs->ops),
			    atomic_load(&fs->errors), atomic_load(&fs->bytes_read),
			    atomic_load(&fs->bytes_written), atomic_load(&fs->bytes_sendfile),
			    atomic_load(&fs->busy));
}

static const char cloudfs_help[] =
	"HELP paths are relative to the node's export root, one token each, %XX escapes\r\n"
	"HELP open <path> [<flags r w c t x a s p>] [<mode>] -> OK <fd> [<stat> [<dir ctimes>]]\r\n"
	"HELP read <fd> <count> | pread <fd> <count> <offset> -> VALUE <n> + bytes + CRLF\r\n"
	"HELP write <fd> <n> | pwrite <fd> <n> <offset>, + n bytes + CRLF -> OK <n>\r\n"
	"HELP close | fsync | fdatasync | fstat <fd>; ftruncate <fd> <size>\r\n"
	"HELP stat | lstat | unlink | rmdir | readlink | fsyncdir <path>; truncate <path> <size>\r\n"
	"HELP mkdir <path> [<mode> [s]]; chmod <path> <mode>; rename <from> <to>\r\n"
	"HELP symlink <target> <linkpath>; utimens <path> <atime_ns|now|omit> <mtime_ns|now|omit>\r\n"
	"HELP readdir <path> [<cursor> [<count> [s|t]]] -> STAT ent <type> <mode> <size> <mtime_ns> "
	"<name> lines (s: STAT entry <stat> <name>; t: STAT name <type> <name>), STAT next <cursor>, "
	"END\r\n"
	"HELP statfs | stats | ping | help | quit\r\n"
	"HELP virgo_cloud_open(<path>) virgo_cloud_read(<fd>,none,<count>,<pos>) "
	"virgo_cloud_write(<fd>,<data>,<count>,<pos>) virgo_cloud_close(<fd>)\r\n"
	"END\r\n";

/* Runs one parsed request: inline for the cheap ones, on the pool for
 * everything that touches the disk. */
static int cloudfs_exec(struct vconn *c, struct cloudfs *fs, struct cloudfs_conn *cc,
			struct cfs_req *r)
{
	struct evbuffer *out = vconn_out(c);
	atomic_fetch_add(&fs->ops, 1);
	bool may_write = !fs->set.read_only &&
			 (!fs->set.writers[0] || idpol_list_has(fs->set.writers, vconn_identity(c)));
	/* the notes' open: for writing when this client may write */
	if (r->legacy && r->op == CFS_OP_OPEN)
		r->flags = may_write ? CFS_O_READ | CFS_O_WRITE | CFS_O_CREAT : CFS_O_READ;
	if (r->legacy && r->op == CFS_OP_OPEN)
		r->mode = 0644;
	if (fs->set.read_only && op_modifies(r)) {
		reply_err(fs, out, EROFS, NULL);
		return VSVC_KEEP;
	}
	/* cloudfs_writers: the identities that may change this export */
	if (!may_write && op_modifies(r)) {
		log_info_every("cloudfs_refused peer=%s identity=%s reason=cloudfs_writers",
			       vconn_peer(c), vconn_identity(c)[0] ? vconn_identity(c) : "-");
		reply_err(fs, out, EACCES,
			  "this identity may only read this export (cloudfs_writers)");
		return VSVC_KEEP;
	}
	switch (r->op) {
	case CFS_OP_CLOSE: {
		int e = cfs_fdtab_close(fs->tab, r->fd, cc->id, vconn_identity_id(c));
		if (e != 0)
			reply_err(fs, out, -e, e == -EACCES ? not_yours : NULL);
		else
			evbuffer_add(out, "OK\r\n", 4);
		return VSVC_KEEP;
	}
	case CFS_OP_OPEN:
		if (!r->legacy && cfs_fdtab_owner_full(fs->tab, cc->id, fs->set.max_fds_per_conn)) {
			reply_err(fs, out, EMFILE, NULL);
			return VSVC_KEEP;
		}
		return start_job(c, fs, cc, r);
	case CFS_OP_STATS:
		reply_stats(fs, out);
		return VSVC_KEEP;
	case CFS_OP_PING:
		evbuffer_add_printf(out, "PONG %u\r\n", fs->node_id);
		return VSVC_KEEP;
	case CFS_OP_HELP:
		evbuffer_add(out, cloudfs_help, sizeof cloudfs_help - 1);
		return VSVC_KEEP;
	case CFS_OP_QUIT:
		return VSVC_CLOSE;
	default:
		return start_job(c, fs, cc, r);
	}
}

static int cloudfs_on_input(struct vconn *c, struct evbuffer *in, bool eof)
{
	struct cloudfs *fs = vconn_svc(c);
	struct cloudfs_conn *cc = vconn_state(c);
	struct evbuffer *out = vconn_out(c);
	if (cc->id == 0)
		cc->id = atomic_fetch_add(&fs->next_conn_id, 1);
	/* the request is big (two paths): not on a worker's stack twice */
	struct cfs_req *req = NULL;
	int rc = VSVC_KEEP;
	for (;;) {
		if (cc->busy) {
			rc = VSVC_WAIT;
			break;
		}
		size_t len = evbuffer_get_length(in);
		if (len == 0 || (!eof && cc->need && len < cc->need))
			break;
		if (vconn_out_full(c)) {
			rc = VSVC_MORE;
			break;
		}
		if (!req && !(req = malloc(sizeof *req))) {
			reply_err(fs, out, ENOMEM, "out of memory");
			rc = VSVC_CLOSE;
			break;
		}
		/* only what this request needs is made contiguous: its line,
		 * or the line and payload the parser asked for; pipelined
		 * writes behind it stay where they are */
		size_t avail = cc->need ? cc->need : fs->lim.max_line + 64;
		if (avail > len)
			avail = len;
		const uint8_t *buf = evbuffer_pullup(in, (ssize_t)avail);
		size_t used;
		int code;
		const char *msg;
		enum cfs_parse_result pr = cfs_parse(&cc->fs, buf, avail, eof && avail == len, &fs->lim,
						     req, &used, &cc->need, &code, &msg);
		/* a write whose payload is still arriving: the node bounds
		 * the bytes of such bodies (body_budget, body_timeout) */
		if (pr == CFS_MORE && cc->need > 0 && !cc->in_body && !eof) {
			if (!vconn_body_begin(c, cc->need)) {
				reply_err(fs, out, EBUSY,
					  "node busy receiving other uploads (body_budget); retry");
				rc = VSVC_CLOSE;
				break;
			}
			cc->in_body = true;
		}
		if (pr != CFS_MORE && cc->in_body) {
			vconn_body_end(c);
			cc->in_body = false;
		}
		int r = VSVC_KEEP;
		cc->frame_taken = false;
		if (pr == CFS_REQ) {
			cc->frame_in = in;
			cc->frame_buf = buf;
			cc->frame_used = used;
			r = cloudfs_exec(c, fs, cc, req);
			cc->frame_in = NULL;
			cc->legacy_close = req->legacy;
		} else if (pr == CFS_ERROR) {
			reply_err(fs, out, code, msg);
		}
		if (!cc->frame_taken)
			evbuffer_drain(in, used);
		if (r == VSVC_CLOSE || r == VSVC_WAIT) {
			rc = r;
			break;
		}
		if (pr == CFS_MORE && used == 0 && cc->need > avail && cc->need <= len)
			continue; /* the whole request is buffered: parse it now */
		if (pr == CFS_MORE && (eof || used == 0))
			break;
	}
	free(req);
	if (rc != VSVC_KEEP)
		return rc;
	/* The original served one call per connection and closed; `printf
	 * 'virgo_cloud_open(/f)\n' | nc host 50000` relies on that. */
	if (cc->legacy_close && evbuffer_get_length(in) == 0)
		return VSVC_CLOSE;
	return VSVC_KEEP;
}

static void cloudfs_conn_close(struct vconn *c)
{
	struct cloudfs *fs = vconn_svc(c);
	struct cloudfs_conn *cc = vconn_state(c);
	if (cc->id)
		cfs_fdtab_close_owner(fs->tab, cc->id);
}

static void cloudfs_tick(void *svc)
{
	struct cloudfs *fs = svc;
	int n = cfs_fdtab_expire(fs->tab, now_ms(), (int64_t)fs->set.call_fd_idle_s * 1000);
	if (n)
		log_info("cloudfs_call_fds_expired count=%d", n);
}

const struct vsvc cloudfs_service = {
	.name = "cloudfs",
	.base_port = 50000,
	.conn_size = sizeof(struct cloudfs_conn),
	.movable = true,
	.bulk = VSVC_BULK_TX | VSVC_BULK_RX, /* reads and writes: MaxNetworkBandwidth */
	.keys = cfs_settings_keys,
	.settings_size = sizeof(struct cfs_settings),
	.settings_defaults = cfs_settings_defaults,
	.needs = cfs_settings_needs,
	.init = cloudfs_init,
	.fini = cloudfs_fini,
	.on_input = cloudfs_on_input,
	.conn_close = cloudfs_conn_close,
	.tick = cloudfs_tick,
};
