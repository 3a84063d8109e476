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
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../common/pathcodec.h"
#include "client.h"

#define VFS_CHUNK (1u << 20)
#define VFS_PATH_MAX 4095

struct vfs_file {
	struct vfs_file *next;
	virgo_fd_t fd; /* the caller's handle: the node's first descriptor */
	virgo_fd_t sfd; /* the node's descriptor now (another after a reopen) */
	int idx; /* the node's index in the client config */
	struct vc_conn *k; /* NULL once broken: reopened by the next call */
	pthread_mutex_t lock; /* one request at a time on k */
	int users; /* references (files_lock) */
	bool removed; /* closed: freed by its last user */
	bool dirty; /* written since the last fsync */
	bool lost; /* the connection broke while dirty: fsync/close say EIO once */
	bool seq; /* the descriptor's own position was used: no reopen */
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

static void file_release(struct vfs_file *f)
{
	pthread_mutex_lock(&files_lock);
	bool last = --f->users == 0 && f->removed;
	pthread_mutex_unlock(&files_lock);
	if (last) {
		vc_conn_free(f->k);
		pthread_mutex_destroy(&f->lock);
		free(f->enc);
		free(f);
	}
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
		if (last) {
			vc_conn_free(f->k);
			pthread_mutex_destroy(&f->lock);
			free(f->enc);
			free(f);
		}
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
		if (rc == 0)
			f->sfd = v;
		if (rc) {
			vc_conn_free(f->k);
			f->k = NULL;
		}
	}
	free(hdr);
	return rc;
}

/* One request on fd's own connection: "<op> <descriptor>[ <tail>]" (+
 * payload).  A connection found broken is reopened once and the request
 * sent again, when that is safe: at an explicit offset, or without one
 * (fstat, fsync, ftruncate) -- never for read/write at the descriptor's
 * own position, which died with it.  Writes acknowledged before a break
 * may be lost with the node: the next fsync (or close) says EIO. */
static int fd_call(virgo_fd_t fd, const char *op, const char *tail, const void *payload,
		   size_t plen, bool positional, struct vc_reply *rep)
{
	memset(rep, 0, sizeof *rep);
	struct vc_client *c;
	int rc = vc_get_node(0, &c);
	if (rc)
		return rc;
	struct vfs_file *f = file_get(fd, false);
	if (!f)
		return -EBADF;
	pthread_mutex_lock(&f->lock);
	if (!positional)
		f->seq = true;
	for (int attempt = 0;; attempt++) {
		if (!f->k) {
			rc = f->seq ? -ECONNRESET : file_reopen(c, f);
			if (rc)
				break;
		}
		char hdr[128];
		int n = snprintf(hdr, sizeof hdr, "%s %" PRIx64 "%s%s\r\n", op, f->sfd, tail ? " " : "",
				 tail ? tail : "");
		bool broken;
		rc = vc_conn_call(c, f->idx, VC_SVC_CLOUDFS, f->k, hdr, (size_t)n, payload, plen, rep,
				  &broken);
		if (!broken)
			break;
		vc_conn_free(f->k);
		f->k = NULL;
		if (f->dirty) {
			f->lost = true;
			f->dirty = false;
		}
		if (attempt > 0 || f->seq)
			break;
	}
	if (rc == 0 && payload)
		f->dirty = true;
	if (strcmp(op, "fsync") == 0 && rc == 0) {
		if (f->lost)
			rc = -EIO; /* writes before a break may not have reached the disk */
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

int virgo_open_ex(const char *path, int flags, unsigned mode, virgo_fd_t *fd)
{
	struct vc_client *c;
	int idx;
	char fw[8];
	int rc = flags_word(flags, fw);
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
		if (rc == 0 && (v == 0 || !end || *end))
			rc = -VIRGO_EBADREPLY;
		if (rc) {
			spare_put(idx, f->k); /* an ERR reply leaves it clean */
			f->k = NULL;
			break;
		}
		f->fd = f->sfd = v;
		f->idx = idx;
		f->users = 1;
		size_t w = 0;
		for (const char *q = fw; *q; q++)
			if (*q != 'c' && *q != 't' && *q != 'x')
				f->fw[w++] = *q;
		f->fw[w] = '\0';
		f->enc = enc;
		enc = NULL;
		pthread_mutex_init(&f->lock, NULL);
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
	return vc_err_done("open", rc);
}

int virgo_open(const char *path, virgo_fd_t *fd)
{
	return virgo_open_ex(path, O_RDWR | O_CREAT, 0644, fd);
}

ssize_t virgo_read(virgo_fd_t fd, void *buf, size_t size, int64_t pos)
{
	size_t done = 0;
	while (done < size) {
		size_t want = size - done < VFS_CHUNK ? size - done : VFS_CHUNK;
		char tail[64];
		if (pos < 0)
			snprintf(tail, sizeof tail, "%zu", want);
		else
			snprintf(tail, sizeof tail, "%zu %" PRIu64, want, (uint64_t)pos + done);
		struct vc_reply rep;
		int rc = fd_call(fd, pos < 0 ? "read" : "pread", tail, NULL, 0, pos >= 0, &rep);
		if (rc == 0 && (strncmp(rep.line, "VALUE ", 6) != 0 || rep.data_len > want))
			rc = -VIRGO_EBADREPLY;
		if (rc) {
			free(rep.data);
			if (done)
				break; /* what was read stands */
			return vc_err_done("read", rc);
		}
		if (rep.data_len)
			memcpy((uint8_t *)buf + done, rep.data, rep.data_len);
		done += rep.data_len;
		size_t got = rep.data_len;
		free(rep.data);
		if (got < want)
			break; /* end of file */
	}
	vc_err_done("read", 0);
	return (ssize_t)done;
}

ssize_t virgo_write(virgo_fd_t fd, const void *data, size_t size, int64_t pos)
{
	size_t done = 0;
	do {
		size_t len = size - done < VFS_CHUNK ? size - done : VFS_CHUNK;
		char tail[64];
		if (pos < 0)
			snprintf(tail, sizeof tail, "%zu", len);
		else
			snprintf(tail, sizeof tail, "%zu %" PRIu64, len, (uint64_t)pos + done);
		struct vc_reply rep;
		int rc = fd_call(fd, pos < 0 ? "write" : "pwrite", tail,
				 len ? (const void *)((const uint8_t *)data + done) : (const void *)"", len,
				 pos >= 0, &rep);
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
	int rc = fd_call(fd, op, tail, NULL, 0, true, &rep);
	free(rep.data);
	return vc_err_done(op, rc);
}

int virgo_close(virgo_fd_t fd)
{
	struct vc_client *c;
	int rc = vc_get_node(0, &c);
	if (rc)
		return rc;
	struct vfs_file *f = file_get(fd, true);
	if (!f)
		return vc_err_done("close", -EBADF);
	pthread_mutex_lock(&f->lock);
	if (f->k) {
		char hdr[64];
		int n = snprintf(hdr, sizeof hdr, "close %" PRIx64 "\r\n", f->sfd);
		struct vc_reply rep;
		bool broken;
		rc = vc_conn_call(c, f->idx, VC_SVC_CLOUDFS, f->k, hdr, (size_t)n, NULL, 0, &rep,
				  &broken);
		free(rep.data);
		if (broken) {
			rc = 0; /* the node closes it with the connection anyway */
			if (f->dirty)
				f->lost = true;
		} else {
			spare_put(f->idx, f->k); /* clean again: reused by a later open */
			f->k = NULL;
		}
	}
	if (rc == 0 && f->lost)
		rc = -EIO; /* writes before a broken connection may be lost */
	pthread_mutex_unlock(&f->lock);
	file_release(f);
	return vc_err_done("close", rc);
}

int virgo_fsync(virgo_fd_t fd) { return fd_simple(fd, "fsync", NULL); }

int virgo_ftruncate(virgo_fd_t fd, uint64_t size)
{
	char t[32];
	snprintf(t, sizeof t, "%" PRIu64, size);
	return fd_simple(fd, "ftruncate", t);
}

/* "OK <type> <mode> <size> <nlink> <uid> <gid> <atime> <mtime> <ctime> <ino> <blocks>" */
static int parse_stat(const char *line, struct virgo_stat *st)
{
	char type;
	unsigned mode, uid, gid;
	unsigned long long size, nlink, ino, blocks;
	long long at, mt, ct;
	if (sscanf(line, "OK %c %o %llu %llu %u %u %lld %lld %lld %llu %llu", &type, &mode, &size,
		   &nlink, &uid, &gid, &at, &mt, &ct, &ino, &blocks) != 11)
		return -VIRGO_EBADREPLY;
	*st = (struct virgo_stat){type, mode, size, nlink, ino, blocks, uid, gid, at, mt, ct};
	return 0;
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
	int rc = fd_call(fd, "fstat", NULL, NULL, 0, true, &rep);
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

int virgo_readdir(const char *path, uint64_t *cursor, size_t max, struct virgo_dirent **out,
		  size_t *n)
{
	*out = NULL;
	*n = 0;
	if (max == 0 || max > 4096)
		return -EINVAL;
	char tail[48];
	snprintf(tail, sizeof tail, "%" PRIu64 " %zu", *cursor, max);
	struct vc_reply rep;
	int rc = path_call("readdir", path, tail, VC_IDEMPOTENT, &rep);
	if (rc) {
		free(rep.data);
		return rc;
	}
	struct virgo_dirent *d = calloc(max, sizeof *d);
	if (!d) {
		free(rep.data);
		return -ENOMEM;
	}
	size_t k = 0;
	uint64_t next = 0;
	char *save = NULL;
	for (char *l = rep.data ? strtok_r((char *)rep.data, "\n", &save) : NULL; l;
	     l = strtok_r(NULL, "\n", &save)) {
		char type, name[3 * 255 + 1];
		unsigned mode;
		unsigned long long size;
		long long mt;
		if (strncmp(l, "next ", 5) == 0) {
			next = strtoull(l + 5, NULL, 10);
		} else if (k < max && sscanf(l, "ent %c %o %llu %lld %765s", &type, &mode, &size, &mt,
					   name) == 5) {
			if (pathcodec_decode((const uint8_t *)name, strlen(name), d[k].name,
					     sizeof d[k].name) != 0)
				continue;
			d[k].type = type;
			d[k].mode = mode;
			d[k].size = size;
			d[k].mtime_ns = mt;
			k++;
		}
	}
	free(rep.data);
	*cursor = next;
	*out = d;
	*n = k;
	return 0;
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
