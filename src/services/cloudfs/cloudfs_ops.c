/*
 * cloudfs_ops.c - the file system operations behind each request
 * (cloudfs_ops.h).  Paths go through cloudfs_path.c (confined to the
 * export); descriptors arrive resolved.  Replies follow PROTOCOL.md:
 * OK lines, VALUE + bytes for reads, STAT lines + END for readdir.
 */
#include "cloudfs_ops.h"

#include <dirent.h>
#include <errno.h>
#include <event2/buffer.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/sendfile.h>
#include <sys/syscall.h>
#include <pthread.h>
#include <unistd.h>

#include "../../common/evclock.h"
#include "../../common/pathcodec.h"
#include "cloudfs_path.h"

static char type_char(mode_t m)
{
	if (S_ISREG(m)) return 'f';
	if (S_ISDIR(m)) return 'd';
	if (S_ISLNK(m)) return 'l';
	if (S_ISFIFO(m)) return 'p';
	if (S_ISSOCK(m)) return 's';
	if (S_ISCHR(m)) return 'c';
	if (S_ISBLK(m)) return 'b';
	return '?';
}

static int64_t ts_ns(const struct timespec *t)
{
	return (int64_t)t->tv_sec * 1000000000 + t->tv_nsec;
}

/* " <v>" in decimal at p; returns the end. */
static char *put_u64(char *p, uint64_t v)
{
	*p++ = ' ';
	return p + evc_u64(p, v);
}

static char *put_i64(char *p, int64_t v)
{
	if (v >= 0)
		return put_u64(p, (uint64_t)v);
	*p++ = ' ';
	*p++ = '-';
	return p + evc_u64(p, (uint64_t)0 - (uint64_t)v);
}

#define STAT_FIELDS_MAX 240 /* 11 fields, at most 21 bytes each */

/* " <type> <mode> <size> <nlink> <uid> <gid> <atime_ns> <mtime_ns> <ctime_ns> <ino> <blocks>"
 * into buf (STAT_FIELDS_MAX bytes); returns its length.  By hand, not
 * printf: a readdir page formats 4096 of them. */
static size_t stat_fields_fmt(char *buf, const struct stat *st)
{
	char *p = buf;
	*p++ = ' ';
	*p++ = type_char(st->st_mode);
	*p++ = ' ';
	unsigned m = (unsigned)(st->st_mode & 07777);
	char oct[5];
	int n = 0;
	do {
		oct[n++] = (char)('0' + (m & 7));
		m >>= 3;
	} while (m);
	while (n)
		*p++ = oct[--n];
	p = put_u64(p, (uint64_t)st->st_size);
	p = put_u64(p, (uint64_t)st->st_nlink);
	p = put_u64(p, (uint64_t)st->st_uid);
	p = put_u64(p, (uint64_t)st->st_gid);
	p = put_i64(p, ts_ns(&st->st_atim));
	p = put_i64(p, ts_ns(&st->st_mtim));
	p = put_i64(p, ts_ns(&st->st_ctim));
	p = put_u64(p, (uint64_t)st->st_ino);
	p = put_u64(p, (uint64_t)st->st_blocks);
	return (size_t)(p - buf);
}

static void stat_fields(struct evbuffer *out, const struct stat *st)
{
	char buf[STAT_FIELDS_MAX];
	evbuffer_add(out, buf, stat_fields_fmt(buf, st));
}

/* OK <stat fields> */
static void reply_stat(struct evbuffer *out, const struct stat *st)
{
	evbuffer_add(out, "OK", 2);
	stat_fields(out, st);
	evbuffer_add(out, "\r\n", 2);
}

static void free_chunk(const void *data, size_t len, void *arg)
{
	(void)data;
	(void)len;
	free(arg);
}

/* Reads at least this large go out with sendfile where the connection
 * allows it; smaller ones are cheaper copied. */
#define CFS_SENDFILE_MIN (64u << 10)
/* A file segment is queued in pieces of at most this: libevent sends a
 * piece with one sendfile call whatever evbuffer_write_atmost was asked,
 * so a limit on the bytes one transport write sends holds to a piece. */
#define CFS_SENDFILE_PIECE (256u << 10)

static int devnull = -1;
static pthread_once_t devnull_once = PTHREAD_ONCE_INIT;
static void devnull_open(void) { devnull = open("/dev/null", O_WRONLY | O_CLOEXEC); }

/* The one place a read's file bytes are queued for the client without a
 * copy: want bytes of fd at off become a file segment of j->reply, sent
 * by the server's transport write (tcp_write -> evbuffer_write ->
 * sendfile) like any other reply byte.  The pages are brought into the
 * page cache here first (sendfile of them to /dev/null: no copy, waits
 * for the disk) so the send on the event loop does not wait for the
 * disk; this also finds how many bytes there are before the end of the
 * file.  The bytes sent are the file's when they are transmitted (the
 * socket holds page references, not copies): a write that lands before
 * then shows in them.  *got: the bytes queued (0: none, at or past the
 * end).  -errno,
 * or 1 when this path is unavailable (the caller copies instead). */
static int cfs_reply_file(struct cfs_job *j, int fd, uint64_t off, size_t want, size_t *got)
{
	pthread_once(&devnull_once, devnull_open);
	if (devnull < 0)
		return 1;
	size_t n = 0;
	while (n < want) {
		off_t o = (off_t)(off + n);
		ssize_t s = sendfile(devnull, fd, &o, want - n);
		if (s < 0 && errno == EINTR)
			continue;
		if (s < 0)
			return n == 0 && (errno == EINVAL || errno == ENOSYS) ? 1 : -errno;
		if (s == 0)
			break;
		n += (size_t)s;
	}
	*got = n;
	if (n == 0)
		return 0;
	j->file_bytes = n;
	int dfd = fcntl(fd, F_DUPFD_CLOEXEC, 0); /* the segment closes its own */
	if (dfd < 0)
		return -errno;
	struct evbuffer_file_segment *seg =
		evbuffer_file_segment_new(dfd, (ev_off_t)off, (ev_off_t)n, EVBUF_FS_CLOSE_ON_FREE);
	if (!seg) {
		close(dfd);
		return -ENOMEM;
	}
	evbuffer_set_flags(j->reply, EVBUFFER_FLAG_DRAINS_TO_FD);
	int rc = 0;
	for (size_t o = 0; o < n && rc == 0; o += CFS_SENDFILE_PIECE) {
		size_t len = n - o < CFS_SENDFILE_PIECE ? n - o : CFS_SENDFILE_PIECE;
		if (evbuffer_add_file_segment(j->reply, seg, (ev_off_t)o, (ev_off_t)len) != 0)
			rc = -ENOMEM;
	}
	evbuffer_file_segment_free(seg); /* the reply's pieces hold it */
	if (rc)
		j->file_bytes = 0; /* the caller frees the partial reply */
	return rc;
}

static int do_read(struct cfs_job *j)
{
	const struct cfs_req *r = &j->req;
	size_t want = (size_t)(r->count < j->max_io ? r->count : j->max_io);
	bool positioned = r->op == CFS_OP_PREAD || (r->legacy && r->has_offset);
	if (j->zero_copy && positioned && want >= CFS_SENDFILE_MIN) {
		/* the header is written after the length is known: a
		 * separate buffer would cost a copy, so build it in front */
		struct evbuffer *body = j->reply;
		struct evbuffer *head = evbuffer_new();
		if (!head)
			return -ENOMEM;
		size_t got = 0;
		int rc = cfs_reply_file(j, j->osfd, r->offset, want, &got);
		if (rc <= 0) {
			if (rc == 0) {
				if (!r->legacy)
					evbuffer_add_printf(head, "VALUE %zu\r\n", got);
				evbuffer_add_buffer(head, body);
				evbuffer_add(head, "\r\n", 2);
				evbuffer_set_flags(head, EVBUFFER_FLAG_DRAINS_TO_FD);
				j->reply = head;
				evbuffer_free(body);
			} else {
				evbuffer_free(head);
			}
			return rc;
		}
		evbuffer_free(head); /* no sendfile here: copy */
	}
	uint8_t *buf = malloc(want ? want : 1);
	if (!buf)
		return -ENOMEM;
	size_t got = 0;
	while (got < want) {
		ssize_t n = positioned ? pread(j->osfd, buf + got, want - got, (off_t)(r->offset + got))
				       : read(j->osfd, buf + got, want - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			int e = errno;
			free(buf);
			return -e;
		}
		if (n == 0)
			break;
		got += (size_t)n;
	}
	if (!r->legacy)
		evbuffer_add_printf(j->reply, "VALUE %zu\r\n", got);
	if (got == 0 || evbuffer_add_reference(j->reply, buf, got, free_chunk, buf) != 0)
		free(buf);
	evbuffer_add(j->reply, "\r\n", 2);
	return 0;
}

/* A write at least this large (a copy's chunks, virgofs's 1 MiB requests)
 * starts its pages on their way to the disk at once (sync_file_range
 * WRITE: it waits for no I/O, only for room in the device's queue), so a
 * copy's closing fsync finds most of the file written instead of flushing
 * all of it then.  The kernel's own writeback starts only past
 * dirty_background_ratio (10% of memory: 2.4 GB on a 24 GiB node), so a
 * 1 GiB copy used to cost the transfer and then the whole flush, one
 * after the other. */
#define CFS_FLUSH_BEHIND_MIN (512u << 10)

static int do_write(struct cfs_job *j)
{
	const struct cfs_req *r = &j->req;
	bool positioned = r->op == CFS_OP_PWRITE || (r->legacy && r->has_offset);
	size_t done = 0;
	while (done < j->data_len) {
		ssize_t n = positioned
				    ? pwrite(j->osfd, j->data + done, j->data_len - done, (off_t)(r->offset + done))
				    : write(j->osfd, j->data + done, j->data_len - done);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		done += (size_t)n;
	}
	if (done >= CFS_FLUSH_BEHIND_MIN) {
		off_t end = positioned ? (off_t)(r->offset + done) : lseek(j->osfd, 0, SEEK_CUR);
		if (end >= (off_t)done)
			sync_file_range(j->osfd, end - (off_t)done, (off_t)done, SYNC_FILE_RANGE_WRITE);
	}
	evbuffer_add_printf(j->reply, "OK %zu", done);
	struct stat st;
	if ((r->flags & CFS_O_STAT) && fstat(j->osfd, &st) == 0)
		stat_fields(j->reply, &st);
	evbuffer_add(j->reply, "\r\n", 2);
	return 0;
}

static int open_flags(unsigned f)
{
	int fl = (f & CFS_O_READ) && (f & CFS_O_WRITE) ? O_RDWR : (f & CFS_O_WRITE) ? O_WRONLY : O_RDONLY;
	if (f & CFS_O_CREAT)
		fl |= O_CREAT;
	if (f & CFS_O_TRUNC)
		fl |= O_TRUNC;
	if (f & CFS_O_EXCL)
		fl |= O_EXCL;
	if (f & CFS_O_APPEND)
		fl |= O_APPEND;
	return fl | O_NOCTTY | O_NONBLOCK;
}

/* The ctime of path's directory (flag p), or -1 when it cannot be had
 * (the export root itself has no parent here). */
static int64_t parent_ctime(int dfd)
{
	struct stat st;
	return dfd >= 0 && fstat(dfd, &st) == 0 ? ts_ns(&st.st_ctim) : -1;
}

static int do_open(struct cfs_job *j)
{
	const struct cfs_req *r = &j->req;
	/* flag p: the directory's ctime around the open, so a client that
	 * knows every name in it can tell whether only this open changed it
	 * (as NFS's weak cache consistency data) */
	int dfd = -1;
	int64_t pre = -1, post = -1;
	if (r->flags & CFS_O_PARENT) {
		char name[NAME_MAX + 1];
		const char *nm;
		dfd = cfs_path_parent(j->root, r->path, name, &nm);
		pre = parent_ctime(dfd);
	}
	int fd = cfs_path_open(j->root, r->path, open_flags(r->flags), r->mode);
	if (dfd >= 0) {
		post = parent_ctime(dfd);
		close(dfd);
	}
	if (fd < 0)
		return fd;
	struct stat st;
	if (fstat(fd, &st) != 0 || !(S_ISREG(st.st_mode) || S_ISDIR(st.st_mode))) {
		/* a FIFO or device would block a pool thread for ever */
		close(fd);
		return -EOPNOTSUPP;
	}
	if (S_ISDIR(st.st_mode) && (r->flags & CFS_O_WRITE)) {
		close(fd);
		return -EISDIR;
	}
	/* regular files never block: back to blocking mode for plain reads
	 * (of the status flags F_SETFL sets, only O_APPEND was asked for) */
	fcntl(fd, F_SETFL, open_flags(r->flags) & O_APPEND);
	j->newfd = fd;
	j->writable = (r->flags & CFS_O_WRITE) != 0;
	j->newst = st; /* the descriptor table keeps a writer's file identity */
	if (r->flags & CFS_O_STAT) /* after the descriptor, in job_done */
		stat_fields(j->reply, &st);
	if (r->flags & CFS_O_PARENT)
		evbuffer_add_printf(j->reply, " %" PRId64 " %" PRId64, pre, post);
	return 0;
}

/* A /proc/self/fd path for calls that have no fd form (chmod/utimens on
 * an O_PATH descriptor). */
static void proc_path(int fd, char *buf, size_t cap)
{
	snprintf(buf, cap, "/proc/self/fd/%d", fd);
}

static void utimens_times(const struct cfs_req *r, struct timespec ts[2])
{
	int64_t t[2] = {r->atime_ns, r->mtime_ns};
	for (int i = 0; i < 2; i++) {
		if (t[i] == CFS_TIME_NOW)
			ts[i] = (struct timespec){0, UTIME_NOW};
		else if (t[i] == CFS_TIME_OMIT)
			ts[i] = (struct timespec){0, UTIME_OMIT};
		else
			ts[i] = (struct timespec){t[i] / 1000000000, t[i] % 1000000000};
	}
}

static int do_path_fd_op(struct cfs_job *j)
{
	const struct cfs_req *r = &j->req;
	int rc = 0;
	struct stat st;
	char pp[64];
	int fd;
	switch (r->op) {
	case CFS_OP_STAT:
		fd = cfs_path_open(j->root, r->path, O_PATH, 0);
		if (fd < 0)
			return fd;
		if (fstat(fd, &st) != 0)
			rc = -errno;
		else
			reply_stat(j->reply, &st);
		break;
	case CFS_OP_TRUNCATE:
		fd = cfs_path_open(j->root, r->path, O_WRONLY | O_NONBLOCK | O_NOCTTY, 0);
		if (fd < 0)
			return fd;
		if (ftruncate(fd, (off_t)r->offset) != 0)
			rc = -errno;
		else
			evbuffer_add(j->reply, "OK\r\n", 4);
		break;
	case CFS_OP_CHMOD:
		fd = cfs_path_open(j->root, r->path, O_PATH, 0);
		if (fd < 0)
			return fd;
		proc_path(fd, pp, sizeof pp);
		if (chmod(pp, (mode_t)r->mode) != 0)
			rc = -errno;
		else
			evbuffer_add(j->reply, "OK\r\n", 4);
		break;
	case CFS_OP_UTIMENS: { /* the export root itself (else do_name_op) */
		fd = cfs_path_open(j->root, r->path, O_PATH, 0);
		if (fd < 0)
			return fd;
		struct timespec ts[2];
		utimens_times(r, ts);
		proc_path(fd, pp, sizeof pp);
		if (utimensat(AT_FDCWD, pp, ts, 0) != 0)
			rc = -errno;
		else
			evbuffer_add(j->reply, "OK\r\n", 4);
		break;
	}
	case CFS_OP_FSYNCDIR:
		fd = cfs_path_open(j->root, r->path, O_RDONLY | O_DIRECTORY, 0);
		if (fd < 0)
			return fd;
		if (fsync(fd) != 0)
			rc = -errno;
		else
			evbuffer_add(j->reply, "OK\r\n", 4);
		break;
	default:
		return -ENOSYS;
	}
	close(fd);
	return rc;
}

/* Operations on a final component: never followed. */
static int do_name_op(struct cfs_job *j)
{
	const struct cfs_req *r = &j->req;
	char name[NAME_MAX + 1], name2[NAME_MAX + 1];
	const char *nm, *nm2;
	int dfd = cfs_path_parent(j->root, r->path, name, &nm);
	if (dfd < 0)
		return dfd;
	int rc = 0, d2 = -1;
	struct stat st;
	switch (r->op) {
	case CFS_OP_LSTAT:
		if (fstatat(dfd, nm, &st, AT_SYMLINK_NOFOLLOW) != 0)
			rc = -errno;
		else
			reply_stat(j->reply, &st);
		break;
	case CFS_OP_UNLINK:
		rc = unlinkat(dfd, nm, 0) != 0 ? -errno : 0;
		break;
	case CFS_OP_RMDIR:
		rc = unlinkat(dfd, nm, AT_REMOVEDIR) != 0 ? -errno : 0;
		break;
	case CFS_OP_MKDIR:
		rc = mkdirat(dfd, nm, (mode_t)r->mode) != 0 ? -errno : 0;
		if (rc == 0 && (r->flags & CFS_O_STAT)) { /* "OK <the new directory's lstat>" */
			if (fstatat(dfd, nm, &st, AT_SYMLINK_NOFOLLOW) != 0)
				rc = -errno;
			else
				reply_stat(j->reply, &st);
		}
		break;
	case CFS_OP_UTIMENS: { /* a symlink's own times, as lutimes (tar) */
		struct timespec ts[2];
		utimens_times(r, ts);
		rc = utimensat(dfd, nm, ts, AT_SYMLINK_NOFOLLOW) != 0 ? -errno : 0;
		break;
	}
	case CFS_OP_SYMLINK:
		/* the target is only text: following it later is confined */
		rc = symlinkat(r->path2, dfd, nm) != 0 ? -errno : 0;
		break;
	case CFS_OP_RENAME:
		d2 = cfs_path_parent(j->root, r->path2, name2, &nm2);
		if (d2 < 0)
			rc = d2;
		else
			rc = renameat(dfd, nm, d2, nm2) != 0 ? -errno : 0;
		break;
	case CFS_OP_READLINK: {
		char target[PATH_MAX], enc[3 * PATH_MAX + 1];
		ssize_t n = readlinkat(dfd, nm, target, sizeof target - 1);
		if (n < 0) {
			rc = -errno;
			break;
		}
		pathcodec_encode(target, (size_t)n, enc, sizeof enc);
		evbuffer_add_printf(j->reply, "OK %s\r\n", enc);
		break;
	}
	default:
		rc = -ENOSYS;
	}
	if (rc == 0 && r->op != CFS_OP_LSTAT && r->op != CFS_OP_READLINK &&
	    !(r->op == CFS_OP_MKDIR && (r->flags & CFS_O_STAT)))
		evbuffer_add(j->reply, "OK\r\n", 4);
	if (d2 >= 0)
		close(d2);
	close(dfd);
	return rc;
}

struct linux_dirent64 {
	uint64_t d_ino;
	int64_t d_off;
	unsigned short d_reclen;
	unsigned char d_type;
	char d_name[];
};

/* d_type as a type letter (type_char of the mode it stands for); '?'
 * when getdents did not say (DT_UNKNOWN). */
static char dtype_char(unsigned char t)
{
	return t == DT_UNKNOWN ? '?' : type_char(DTTOIF(t));
}

/* One page: STAT ent <type> <mode> <size> <mtime_ns> <name> lines (flag
 * s: STAT entry <every lstat field> <name>; flag t: STAT name <type>
 * <name>, the type from getdents, with no lstat of the entry unless the
 * file system did not give one), then
 * STAT next <cursor> (0: the end) and END.  The page also ends once
 * max_io bytes of reply are built, so a page of long names stays bounded. */
static int do_readdir(struct cfs_job *j)
{
	const struct cfs_req *r = &j->req;
	int fd = cfs_path_open(j->root, r->path, O_RDONLY | O_DIRECTORY, 0);
	if (fd < 0)
		return fd;
	if (r->offset && lseek(fd, (off_t)r->offset, SEEK_SET) < 0) {
		int e = errno;
		close(fd);
		return -e;
	}
	_Alignas(8) char buf[32768];
	uint64_t emitted = 0, next = 0;
	bool more = true, full = false;
	char enc[3 * NAME_MAX + 1];
	while (more && !full) {
		long n = syscall(SYS_getdents64, fd, buf, sizeof buf);
		if (n < 0) {
			int e = errno;
			close(fd);
			return -e;
		}
		if (n == 0) {
			next = 0;
			break;
		}
		for (long pos = 0; pos < n;) {
			struct linux_dirent64 *d = (struct linux_dirent64 *)(buf + pos);
			pos += d->d_reclen;
			if (emitted >= r->max || evbuffer_get_length(j->reply) >= j->max_io) {
				full = true;
				break;
			}
			next = (uint64_t)d->d_off;
			if (strcmp(d->d_name, ".") == 0 || strcmp(d->d_name, "..") == 0)
				continue;
			struct stat st;
			char t = r->flags & CFS_O_NAMES ? dtype_char(d->d_type) : '?';
			if (t == '?' && fstatat(fd, d->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0)
				continue; /* removed meanwhile */
			size_t el = pathcodec_encode(d->d_name, strlen(d->d_name), enc, sizeof enc);
			if (r->flags & CFS_O_NAMES) { /* the type getdents gave, else lstat's */
				char line[16 + sizeof enc];
				memcpy(line, "STAT name ", 10);
				line[10] = t != '?' ? t : type_char(st.st_mode);
				line[11] = ' ';
				memcpy(line + 12, enc, el);
				memcpy(line + 12 + el, "\r\n", 2);
				evbuffer_add(j->reply, line, 14 + el);
			} else if (r->flags & CFS_O_STAT) { /* all of lstat: FUSE readdirplus */
				char line[16 + STAT_FIELDS_MAX + sizeof enc];
				size_t k = 10;
				memcpy(line, "STAT entry", 10);
				k += stat_fields_fmt(line + k, &st);
				line[k++] = ' ';
				memcpy(line + k, enc, el);
				k += el;
				line[k++] = '\r';
				line[k++] = '\n';
				evbuffer_add(j->reply, line, k);
			} else {
				evbuffer_add_printf(j->reply,
						    "STAT ent %c %o %" PRIu64 " %" PRId64 " %s\r\n",
						    type_char(st.st_mode), (unsigned)(st.st_mode & 07777),
						    (uint64_t)st.st_size, ts_ns(&st.st_mtim), enc);
			}
			emitted++;
		}
	}
	close(fd);
	evbuffer_add_printf(j->reply, "STAT next %" PRIu64 "\r\nEND\r\n", full ? next : 0);
	return 0;
}

static int do_fd_op(struct cfs_job *j)
{
	const struct cfs_req *r = &j->req;
	struct stat st;
	switch (r->op) {
	case CFS_OP_READ:
	case CFS_OP_PREAD:
		return do_read(j);
	case CFS_OP_WRITE:
	case CFS_OP_PWRITE:
		return do_write(j);
	case CFS_OP_FSYNC:
		if (fsync(j->osfd) != 0)
			return -errno;
		break;
	case CFS_OP_FDATASYNC:
		if (fdatasync(j->osfd) != 0)
			return -errno;
		break;
	case CFS_OP_FTRUNCATE:
		if (ftruncate(j->osfd, (off_t)r->offset) != 0)
			return -errno;
		break;
	case CFS_OP_FSTAT:
		if (fstat(j->osfd, &st) != 0)
			return -errno;
		reply_stat(j->reply, &st);
		return 0;
	default:
		return -ENOSYS;
	}
	evbuffer_add(j->reply, "OK\r\n", 4);
	return 0;
}

void cfs_ops_run(struct cfs_job *j)
{
	const struct cfs_req *r = &j->req;
	struct statvfs sv;
	j->newfd = -1;
	switch (r->op) {
	case CFS_OP_OPEN:
		j->rc = do_open(j);
		break;
	case CFS_OP_READ:
	case CFS_OP_PREAD:
	case CFS_OP_WRITE:
	case CFS_OP_PWRITE:
	case CFS_OP_FSYNC:
	case CFS_OP_FDATASYNC:
	case CFS_OP_FSTAT:
	case CFS_OP_FTRUNCATE:
		j->rc = do_fd_op(j);
		break;
	case CFS_OP_STAT:
	case CFS_OP_TRUNCATE:
	case CFS_OP_CHMOD:
	case CFS_OP_FSYNCDIR:
		j->rc = do_path_fd_op(j);
		break;
	case CFS_OP_LSTAT:
	case CFS_OP_UTIMENS:
		/* the export root has no parent to name it in: by descriptor,
		 * as the root is never a symlink from the client's side */
		if (r->path[strspn(r->path, "/")] == '\0') {
			if (r->op == CFS_OP_LSTAT)
				j->req.op = CFS_OP_STAT;
			j->rc = do_path_fd_op(j);
			break;
		}
		j->rc = do_name_op(j);
		break;
	case CFS_OP_UNLINK:
	case CFS_OP_RMDIR:
	case CFS_OP_MKDIR:
	case CFS_OP_SYMLINK:
	case CFS_OP_RENAME:
	case CFS_OP_READLINK:
		j->rc = do_name_op(j);
		break;
	case CFS_OP_READDIR:
		j->rc = do_readdir(j);
		break;
	case CFS_OP_STATFS:
		if (fstatvfs(j->root, &sv) != 0) {
			j->rc = -errno;
			break;
		}
		evbuffer_add_printf(j->reply,
				    "OK %lu %" PRIu64 " %" PRIu64 " %" PRIu64 " %" PRIu64 " %" PRIu64
				    " %lu\r\n",
				    (unsigned long)sv.f_bsize, (uint64_t)sv.f_blocks,
				    (uint64_t)sv.f_bfree, (uint64_t)sv.f_bavail, (uint64_t)sv.f_files,
				    (uint64_t)sv.f_ffree, (unsigned long)sv.f_namemax);
		j->rc = 0;
		break;
	default:
		j->rc = -ENOSYS;
	}
}
