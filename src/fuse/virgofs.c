/*
 * virgofs.c - the whole cluster as one FUSE 3 file system: /mnt/<node>/...
 * (node1, node2, ... as virgo_client.conf names them) is each node's
 * cloudfs export, so unmodified programs (cp, cat, tar, rsync, sha256sum)
 * work on remote files.
 *
 * Every operation is a libvirgo call with the client's timeout
 * (virgo_client.conf timeout_ms, default 5 s): a node that dies or hangs
 * gives callers EIO within it, never a hung process; the next call after
 * the node is back works again (an open file whose node restarted stays
 * EIO: its descriptor died with the node).  Consistency is close-to-open,
 * as NFS: an open gets the file's attributes in its own reply, drops the
 * kernel's when they changed (so a file grown elsewhere reads whole) and
 * its pages too (auto_cache; unchanged files keep them); between opens,
 * attributes and entries are cached VFS_CACHE_S.
 * Reads and writes go in requests of up to 1 MiB (io_max); the kernel
 * reads ahead VFS_RA_REQS requests, which travel pipelined on the file's
 * connection.  A large write's data stays in the pipe libfuse spliced
 * it into and goes on to the node by splice (vfs_write_buf); a large
 * read's goes from the node's socket to /dev/fuse by splice (vfs_read.c).
 * Writes are write-behind (virgo_writebehind): a write returns once sent,
 * and close (FUSE flush) waits until the node has acknowledged every one,
 * so close-to-open holds and a failed write is close's error.  The
 * kernel's writeback cache (-o writeback_cache) is not used: with it the
 * kernel trusts its own idea of a file's size over the node's, so a file
 * grown by another client would look short here until evicted.
 */
#define FUSE_USE_VERSION 31

#include <errno.h>
#include <fcntl.h>
#include <fuse.h>
#include <fuse_lowlevel.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <time.h>
#include <unistd.h>

#include "../lib/client.h" /* vfs_pwrite_pipe, vfs_readdir_text */
#include "../lib/cloudfs_reply_proto.h"
#include "virgo.h"
#include "vfs_cache.h"
#include "vfs_read.h"

#define VFS_IO_MAX (1u << 20)
#define VFS_PAGE 4096u
#define VFS_RA_REQS 4 /* readahead: this many requests of io_max */
#define VFS_WRITEBEHIND 4 /* writes in flight per open file */
#define VFS_SPLICE_MIN (64u << 10) /* smaller writes: copied, one syscall fewer */
#define VFS_CACHE_S 30.0 /* attribute and entry cache, seconds (NFS: 3 to 60) */
#define VFS_NEGATIVE_S 1.0 /* "no such file" cached at most this long (vfs_cache.h) */
/* entries per listing page: the most a node gives */
#define VFS_RD_PAGE 4096
/* entries of a listing's first page, which carries their attributes
 * (vfs_readdir); the pages after it give names and types only */
#define VFS_RD_ATTRS 256

/* The FUSE request size (max_write; reads follow it, as libfuse derives
 * max_pages from it): VFS_IO_MAX where libfuse can splice a request that
 * large, else one page less.  libfuse splices a request from /dev/fuse
 * into a pipe only if the pipe holds max_write plus a header page, and
 * growing a pipe past fs.pipe-max-size (1 MiB by default) takes
 * CAP_SYS_RESOURCE; without it, 1 MiB requests would all be copied. */
static unsigned io_max = VFS_IO_MAX;
/* Read requests (max_read): libfuse splices a reply from a pipe
 * (vfs_read.c) only if its own pipe holds the data plus three pages, so
 * without CAP_SYS_RESOURCE reads are four pages short of 1 MiB. */
static unsigned read_max = VFS_IO_MAX;

static void pick_io_max(void)
{
	int p[2];
	if (pipe2(p, O_CLOEXEC) != 0)
		return;
	if (fcntl(p[0], F_SETPIPE_SZ, (int)(VFS_IO_MAX + 4 * VFS_PAGE)) < 0) {
		io_max = VFS_IO_MAX - VFS_PAGE;
		read_max = VFS_IO_MAX - 4 * VFS_PAGE;
	}
	close(p[0]);
	close(p[1]);
}

/* Transport and protocol failures (node dead, hung, restarted) are EIO to
 * the caller; file system errors pass through. */
static int fs_err(long rc)
{
	if (rc >= 0)
		return (int)rc;
	int e = (int)-rc;
	if (e >= VIRGO_EPROTO_BASE || e == ECONNREFUSED || e == ECONNRESET || e == ETIMEDOUT ||
	    e == EPIPE || e == EHOSTUNREACH || e == EPROTO || e == EBADMSG || e == ENETUNREACH)
		return -EIO;
	return (int)rc;
}

/* "/node2/a/b" -> "node2:/a/b"; "/" -> "" (the root of nodes).  0, or
 * -ENOENT for a first component that is not a configured node. */
static int remote(const char *path, char *out, size_t cap)
{
	if (strcmp(path, "/") == 0) {
		out[0] = '\0';
		return 0;
	}
	const char *p = path + 1, *slash = strchr(p, '/');
	size_t n = slash ? (size_t)(slash - p) : strlen(p);
	char *end;
	if (n < 5 || strncmp(p, "node", 4) != 0)
		return -ENOENT;
	unsigned long id = strtoul(p + 4, &end, 10);
	if (end != p + n || id == 0 || id > 65535)
		return -ENOENT;
	int count = virgo_node_count();
	bool known = false;
	for (int i = 0; i < count && !known; i++) {
		struct virgo_node_info ni;
		known = virgo_node_info(i, &ni) == 0 && ni.id == id;
	}
	if (!known)
		return -ENOENT;
	if ((size_t)snprintf(out, cap, "node%lu:%s", id, slash ? slash : "/") >= cap)
		return -ENAMETOOLONG;
	return 0;
}

#define REMOTE(path, r)                                                                         \
	char r[8192];                                                                           \
	do {                                                                                    \
		int rc_ = remote(path, r, sizeof r);                                            \
		if (rc_)                                                                        \
			return rc_;                                                             \
	} while (0)

static void to_stat(const struct virgo_stat *v, struct stat *st)
{
	memset(st, 0, sizeof *st);
	mode_t t = v->type == 'd' ? S_IFDIR : v->type == 'l' ? S_IFLNK : v->type == 'p' ? S_IFIFO
		 : v->type == 's' ? S_IFSOCK : v->type == 'c' ? S_IFCHR : v->type == 'b' ? S_IFBLK
		 : S_IFREG;
	st->st_mode = t | (v->mode & 07777);
	st->st_size = (off_t)v->size;
	st->st_nlink = (nlink_t)v->nlink;
	st->st_uid = v->uid;
	st->st_gid = v->gid;
	st->st_ino = v->ino;
	st->st_blocks = (blkcnt_t)v->blocks;
	st->st_blksize = VFS_IO_MAX;
	st->st_atim = (struct timespec){v->atime_ns / 1000000000, v->atime_ns % 1000000000};
	st->st_mtim = (struct timespec){v->mtime_ns / 1000000000, v->mtime_ns % 1000000000};
	st->st_ctim = (struct timespec){v->ctime_ns / 1000000000, v->ctime_ns % 1000000000};
}

/* An open file: fi->fh points at one.  st is the file's attributes from
 * the open's own reply: the getattr that FUSE sends right after a create
 * (and open's cache check) is answered from it instead of another round
 * trip; used once, and never after a write or truncate through it. */
struct vfs_fh {
	virgo_fd_t fd;
	atomic_bool fresh;
	struct virgo_stat st;
};

static struct vfs_fh *fh_of(const struct fuse_file_info *fi)
{
	return (struct vfs_fh *)(uintptr_t)fi->fh;
}

/* Files open for writing here: a stat or truncate by path goes on
 * another connection than their write-behind writes, so it first waits
 * for those (a size the kernel then caches must include them). */
static pthread_mutex_t wr_lock = PTHREAD_MUTEX_INITIALIZER;
static virgo_fd_t *wr_fds;
static size_t wr_n, wr_cap;

static void wr_add(virgo_fd_t fd)
{
	pthread_mutex_lock(&wr_lock);
	if (wr_n == wr_cap) {
		size_t cap = wr_cap ? 2 * wr_cap : 16;
		virgo_fd_t *p = realloc(wr_fds, cap * sizeof *p);
		if (p) {
			wr_fds = p;
			wr_cap = cap;
		}
	}
	if (wr_n < wr_cap) {
		wr_fds[wr_n++] = fd;
		virgo_writebehind(fd, VFS_WRITEBEHIND);
	} /* else: no room to track it, so no write-behind for it */
	pthread_mutex_unlock(&wr_lock);
}

static void wr_remove(virgo_fd_t fd)
{
	pthread_mutex_lock(&wr_lock);
	for (size_t i = 0; i < wr_n; i++)
		if (wr_fds[i] == fd) {
			wr_fds[i] = wr_fds[--wr_n];
			break;
		}
	pthread_mutex_unlock(&wr_lock);
}

/* Is any file open for writing here? */
static bool wr_open(void)
{
	pthread_mutex_lock(&wr_lock);
	bool any = wr_n > 0;
	pthread_mutex_unlock(&wr_lock);
	return any;
}

/* Every write-behind write of this mount acknowledged (errors stay for
 * each file's own flush or close). */
static void wr_settle(void)
{
	pthread_mutex_lock(&wr_lock);
	size_t n = wr_n;
	virgo_fd_t *fds = n ? malloc(n * sizeof *fds) : NULL;
	if (fds)
		memcpy(fds, wr_fds, n * sizeof *fds);
	pthread_mutex_unlock(&wr_lock);
	for (size_t i = 0; fds && i < n; i++)
		virgo_flush(fds[i]);
	free(fds);
}

/* -o attr_timeout=/entry_timeout=/negative_timeout= given: libfuse has
 * them, keep them. */
static bool user_timeouts, user_negative;

static int opt_proc(void *data, const char *arg, int key, struct fuse_args *outargs)
{
	(void)data;
	(void)outargs;
	if (key == 1)
		user_timeouts = true;
	if (key == 2)
		user_negative = true;
	if (key == 3) { /* the user's max_read: init must say the same (main) */
		char *end;
		errno = 0;
		unsigned long v = strtoul(arg + strlen("max_read="), &end, 10);
		if (errno || *end || v < VFS_PAGE) {
			fprintf(stderr, "virgofs: bad max_read '%s' (bytes, at least %u)\n", arg,
				(unsigned)VFS_PAGE);
			return -1;
		}
		if (v < read_max)
			read_max = (unsigned)v;
		return 0; /* main passes max_read=read_max */
	}
	return 1; /* left for fuse_new */
}

static const struct fuse_opt vfs_opts[] = {
	FUSE_OPT_KEY("attr_timeout=", 1),
	FUSE_OPT_KEY("entry_timeout=", 1),
	FUSE_OPT_KEY("negative_timeout=", 2),
	FUSE_OPT_KEY("max_read=", 3),
	FUSE_OPT_END,
};

static void *vfs_init(struct fuse_conn_info *conn, struct fuse_config *cfg)
{
	conn->max_write = io_max;
	conn->max_read = read_max; /* as the max_read mount option (main) */
	conn->max_readahead = VFS_RA_REQS * read_max;
	if (conn->capable & FUSE_CAP_SPLICE_READ)
		conn->want |= FUSE_CAP_SPLICE_READ; /* write data in a pipe: vfs_write_buf */
	if (conn->capable & FUSE_CAP_SPLICE_WRITE)
		conn->want |= FUSE_CAP_SPLICE_WRITE; /* read replies from a pipe: vfs_read.c */
	if (!user_timeouts) {
		cfg->attr_timeout = VFS_CACHE_S;
		cfg->entry_timeout = VFS_CACHE_S;
	}
	/* "no such file": the kernel keeps it, and this mount answers it
	 * for names in a directory it knows completely, this long */
	if (!user_negative)
		cfg->negative_timeout = VFS_NEGATIVE_S;
	vfs_cache_set_timeout(cfg->attr_timeout);
	vfs_cache_set_negative_timeout(cfg->negative_timeout);
	cfg->auto_cache = 1; /* close-to-open: drop a changed file's pages at open */
	cfg->ac_attr_timeout_set = 1;
	cfg->ac_attr_timeout = 0; /* ... judged by the open's own fresh attributes */
	return NULL;
}

static void fill_attrs(const char *path);

static int vfs_getattr(const char *path, struct stat *st, struct fuse_file_info *fi)
{
	struct vfs_fh *h = fi ? fh_of(fi) : NULL;
	if (h && atomic_exchange(&h->fresh, false)) {
		to_stat(&h->st, st);
		vfs_cache_put(path, &h->st, false);
		return 0;
	}
	if (h) {
		struct virgo_stat v;
		int rc = virgo_fstat(h->fd, &v);
		if (rc == 0) {
			to_stat(&v, st);
			vfs_cache_put(path, &v, false);
			return 0;
		}
	}
	REMOTE(path, r);
	if (vfs_cache_absent(path))
		return -ENOENT; /* a lookup before a create, typically */
	struct virgo_stat v;
	if (!wr_open() && vfs_cache_answer(path, &v) == 0) {
		to_stat(&v, st);
		return 0;
	}
	if (!wr_open()) { /* of a large listing's entries, maybe: all at once */
		fill_attrs(path);
		if (vfs_cache_answer(path, &v) == 0) {
			to_stat(&v, st);
			return 0;
		}
	}
	wr_settle();
	if (!r[0]) {
		memset(st, 0, sizeof *st);
		st->st_mode = S_IFDIR | 0755;
		st->st_nlink = 2;
		return 0;
	}
	int rc = virgo_lstat(r, &v);
	if (rc == -ENOENT)
		vfs_cache_gone(path);
	if (rc)
		return fs_err(rc);
	to_stat(&v, st);
	vfs_cache_put(path, &v, false);
	return 0;
}

/* The path of name in dir (the mount's), in child; false if too long. */
static bool child_path(const char *dir, const char *name, char *child, size_t cap)
{
	return (size_t)snprintf(child, cap, "%s/%s", dir, name) < cap;
}

/* A listing from a node older than readdir's flag s: names and types. */
static int readdir_plain(const char *path, const char *r, void *buf, fuse_fill_dir_t filler)
{
	uint64_t cursor = 0;
	char child[8192];
	do {
		struct virgo_dirent *d;
		size_t n;
		int rc = virgo_readdir(r, &cursor, 4096, &d, &n);
		if (rc)
			return fs_err(rc);
		for (size_t i = 0; i < n; i++) {
			if (child_path(path, d[i].name, child, sizeof child))
				vfs_cache_listed(child);
			struct stat st;
			memset(&st, 0, sizeof st);
			st.st_mode = (d[i].type == 'd' ? S_IFDIR : d[i].type == 'l' ? S_IFLNK : S_IFREG) |
				     (d[i].mode & 07777);
			filler(buf, d[i].name, &st, 0, 0);
		}
		free(d);
	} while (cursor);
	return 0;
}

/* One listing page's text fetched on a thread of its own: its reply
 * ends with the cursor of the page after it, so that page is asked for
 * (on another thread) before this one is parsed, and the node reads the
 * directory while this mount parses, caches and hands the entries to
 * libfuse. */
struct rd_page {
	const char *remote;
	enum cloudfs_page kind; /* in: asked; out: given (a node before flag t: PLUS) */
	bool fell_back; /* out: NAMES asked, PLUS given */
	size_t max; /* entries asked for */
	uint64_t start; /* where the page starts */
	uint64_t cursor; /* in: where the page starts; out: the next one's */
	char *text; /* the page's lines (cloudfs_reply_page), malloc'd */
	size_t len;
	int rc;
};

static void *rd_page_fetch(void *arg)
{
	struct rd_page *p = arg;
	p->start = p->cursor;
	p->rc = vfs_readdir_text(p->remote, p->start, p->max, p->kind, &p->text, &p->len,
				 &p->cursor);
	if (p->rc == -EINVAL && p->kind == CLOUDFS_PAGE_NAMES) { /* a node before flag t */
		p->kind = CLOUDFS_PAGE_PLUS;
		p->fell_back = true;
		p->rc = vfs_readdir_text(p->remote, p->start, p->max, p->kind, &p->text, &p->len,
					 &p->cursor);
	}
	return NULL;
}

/* The pages of path's listing (r: the node's) from first on, each page
 * after it asked for as kind, VFS_RD_PAGE entries: their entries go to
 * the cache (vfs_cache_listing, or vfs_cache_names for names-only pages)
 * and, with a filler, to libfuse (attributes, with fill, only where the
 * page has them).  *names_from: where the first names-only page started
 * (unchanged if none).  0 or a negative errno. */
static int rd_pages(const char *path, const char *r, struct rd_page cur, enum cloudfs_page kind,
		    void *buf, fuse_fill_dir_t filler, enum fuse_fill_dir_flags fill,
		    bool *named, uint64_t *names_from)
{
	rd_page_fetch(&cur);
	struct virgo_direntplus *d = NULL; /* the entries of the page at hand */
	size_t dcap = 0;
	int rc = cur.rc;
	while (rc == 0) {
		if (cur.fell_back)
			kind = CLOUDFS_PAGE_PLUS; /* the node has no flag t: not asked again */
		/* the next page on its way (fetched below if no thread) */
		struct rd_page next = {.remote = r, .kind = kind, .max = VFS_RD_PAGE,
				       .cursor = cur.cursor};
		pthread_t t;
		bool ahead = cur.cursor && pthread_create(&t, NULL, rd_page_fetch, &next) == 0;
		size_t lines = cloudfs_reply_lines(cur.text ? cur.text : "", cur.len);
		if (lines > dcap) {
			free(d);
			dcap = lines;
			d = malloc(dcap * sizeof *d);
		}
		uint64_t cursor;
		long n = d ? cloudfs_reply_page(cur.text ? cur.text : "", cur.len, cur.kind, d, lines,
						&cursor)
			   : -ENOMEM;
		free(cur.text);
		/* a name made elsewhere in a directory known completely ends
		 * that (vfs_cache.h).  The attributes go to the cache even
		 * for readdirplus: the kernel asks for the first chunk of a
		 * listing "plus" and for the rest plainly (libfuse serves both
		 * from this one call), and looks those entries up after. */
		bool attrs = cur.kind == CLOUDFS_PAGE_PLUS;
		if (n > 0 && attrs)
			vfs_cache_listing(path, d, (size_t)n);
		if (n > 0 && !attrs) {
			vfs_cache_names(path, d, (size_t)n);
			if (!*named)
				*names_from = cur.start;
			*named = true;
		}
		for (long i = 0; filler && i < n; i++) {
			struct stat st;
			to_stat(&d[i].st, &st); /* names-only: the type, all else 0 */
			filler(buf, d[i].name, &st, 0, attrs ? fill : 0);
		}
		if (ahead)
			pthread_join(t, NULL);
		if (n < 0) {
			free(next.text);
			rc = n == -ENOMEM ? -ENOMEM : -EIO;
			break;
		}
		if (!cur.cursor)
			break; /* that was the last page */
		if (!ahead)
			rd_page_fetch(&next);
		cur = next;
		rc = cur.rc;
	}
	free(d);
	return rc;
}

/* A listing's first VFS_RD_ATTRS entries come with all their attributes
 * (readdir flag s): with FUSE readdirplus the kernel takes them as a
 * lookup's, and they answer the getattrs that follow a plain readdir
 * (ls -l), so neither costs a round trip.  The rest come as names and
 * types only (flag t: the node reads the directory without an lstat of
 * each entry, most of a listing's cost); should their getattrs follow
 * (ls -l of a large directory), the second one the cache cannot answer
 * fetches all their attributes in one paged listing
 * (vfs_cache_names_miss), and that directory's later listings carry
 * every entry's. */
static int vfs_readdir(const char *path, void *buf, fuse_fill_dir_t filler, off_t off,
		       struct fuse_file_info *fi, enum fuse_readdir_flags flags)
{
	(void)off;
	(void)fi;
	REMOTE(path, r);
	filler(buf, ".", NULL, 0, 0);
	filler(buf, "..", NULL, 0, 0);
	if (!r[0]) {
		int n = virgo_node_count();
		for (int i = 0; i < n; i++) {
			struct virgo_node_info ni;
			char name[32];
			if (virgo_node_info(i, &ni) != 0)
				continue;
			snprintf(name, sizeof name, "node%u", ni.id);
			filler(buf, name, NULL, 0, 0);
		}
		return 0;
	}
	if (wr_open())
		wr_settle(); /* the sizes given must count this mount's writes */
	enum fuse_fill_dir_flags fill = flags & FUSE_READDIR_PLUS ? FUSE_FILL_DIR_PLUS : 0;
	bool all = vfs_cache_wants_attrs(path);
	struct rd_page first = {.remote = r, .kind = CLOUDFS_PAGE_PLUS,
				.max = all ? VFS_RD_PAGE : VFS_RD_ATTRS};
	bool named = false;
	uint64_t names_from = 0;
	int rc = rd_pages(path, r, first, all ? CLOUDFS_PAGE_PLUS : CLOUDFS_PAGE_NAMES, buf,
			  filler, fill, &named, &names_from);
	if (rc == -EINVAL && !named)
		return readdir_plain(path, r, buf, filler); /* a node before flag s */
	if (rc == 0 && named)
		vfs_cache_names_listed(path, names_from);
	return fs_err(rc);
}

/* The getattr of path missed the cache: if its directory's listing gave
 * names only and this is the miss that says its entries' attributes are
 * wanted (vfs_cache_names_miss), fetch them all into the cache. */
static void fill_attrs(const char *path)
{
	char dir[8192], r[8192];
	uint64_t cursor;
	if (!vfs_cache_names_miss(path, dir, sizeof dir, &cursor) || remote(dir, r, sizeof r) != 0 ||
	    !r[0])
		return;
	struct rd_page first = {.remote = r, .kind = CLOUDFS_PAGE_PLUS, .max = VFS_RD_PAGE,
				.cursor = cursor};
	bool named = false;
	uint64_t from = 0;
	rd_pages(dir, r, first, CLOUDFS_PAGE_PLUS, NULL, NULL, 0, &named, &from);
}

/* open and create: the open's reply carries the file's attributes. */
static int open_fh(const char *path, int flags, mode_t mode, struct fuse_file_info *fi)
{
	REMOTE(path, r);
	if (!r[0])
		return -EISDIR;
	struct vfs_fh *h = malloc(sizeof *h);
	if (!h)
		return -ENOMEM;
	struct virgo_dirchange dc;
	int rc = flags & O_CREAT ? virgo_open_dirchange(r, flags, mode & 07777, &h->fd, &h->st, &dc)
				 : virgo_open_stat(r, flags, mode & 07777, &h->fd, &h->st);
	if (rc) {
		free(h);
		if (flags & O_CREAT)
			vfs_cache_parent_unknown(path); /* EEXIST: made elsewhere */
		return fs_err(rc);
	}
	atomic_init(&h->fresh, true);
	/* close-to-open: changed since the kernel cached its attributes
	 * (another client wrote it): drop them, so its reads go to the
	 * new end (its pages go too, as auto_cache drops them anyway) */
	if (!(flags & O_CREAT) && vfs_cache_changed(path, &h->st))
		fuse_invalidate_path(fuse_get_context()->fuse, path);
	vfs_cache_put(path, &h->st, false); /* what the kernel will be told */
	if (flags & O_CREAT)
		vfs_cache_created(path, dc.pre_ctime_ns, dc.post_ctime_ns);
	if ((flags & O_ACCMODE) != O_RDONLY)
		wr_add(h->fd);
	fi->fh = (uintptr_t)h;
	return 0;
}

static int vfs_open(const char *path, struct fuse_file_info *fi)
{
	return open_fh(path, fi->flags & (O_ACCMODE | O_CREAT | O_TRUNC | O_EXCL | O_APPEND), 0644,
		       fi);
}

static int vfs_create(const char *path, mode_t mode, struct fuse_file_info *fi)
{
	return open_fh(path, (fi->flags & (O_ACCMODE | O_TRUNC | O_EXCL | O_APPEND)) | O_CREAT,
		       mode, fi);
}

/* A read's data, from the node's socket to /dev/fuse by splice where it
 * can (vfs_read.c). */
static int vfs_read_buf(const char *path, struct fuse_bufvec **bufp, size_t size, off_t off,
			struct fuse_file_info *fi)
{
	(void)path;
	ssize_t n = vfs_read_into(fh_of(fi)->fd, bufp, size, off);
	return n < 0 ? fs_err(n) : 0;
}

/* A write request's data: in memory (small requests), or, with
 * FUSE_CAP_SPLICE_READ, still in the pipe libfuse spliced the request
 * into from /dev/fuse.  A pipe goes on to the node's socket by splice
 * (vfs_pwrite_pipe): the page-cache pages the kernel filled from the
 * writer travel by reference, two copies fewer than read + send.  Where
 * that cannot be (TLS, no write-behind) the data is copied out first.
 * Being references, the bytes are the pages' when TCP sends them: a
 * rewrite of the same range meanwhile reaches the node in both writes,
 * which leaves the file as the writes' order says (the later wins). */
static int vfs_write_buf(const char *path, struct fuse_bufvec *buf, off_t off,
			 struct fuse_file_info *fi)
{
	struct vfs_fh *h = fh_of(fi);
	atomic_store(&h->fresh, false);
	if (path)
		vfs_cache_stale(path);
	size_t size = fuse_buf_size(buf);
	const struct fuse_buf *b = &buf->buf[buf->idx];
	if (buf->count - buf->idx == 1 && (b->flags & FUSE_BUF_IS_FD) &&
	    !(b->flags & FUSE_BUF_FD_SEEK) && buf->off == 0 && size >= VFS_SPLICE_MIN) {
		ssize_t n = vfs_pwrite_pipe(h->fd, b->fd, size, (uint64_t)off);
		if (n != -EOPNOTSUPP) {
			if (n >= 0)
				buf->idx = buf->count; /* consumed: libfuse keeps its pipe */
			return fs_err(n);
		}
	}
	if (buf->count - buf->idx == 1 && !(b->flags & FUSE_BUF_IS_FD))
		return fs_err(virgo_pwrite(h->fd, (const char *)b->mem + buf->off, size,
					   (uint64_t)off));
	char *mem = malloc(size ? size : 1);
	if (!mem)
		return -ENOMEM;
	struct fuse_bufvec dst = FUSE_BUFVEC_INIT(size);
	dst.buf[0].mem = mem;
	ssize_t got = fuse_buf_copy(&dst, buf, 0);
	int rc = got < 0 ? (int)got
		 : fs_err(virgo_pwrite(h->fd, mem, (size_t)got, (uint64_t)off));
	free(mem);
	return rc;
}

/* close(2) of one of the file's descriptors: every write acknowledged
 * (close-to-open), and a write-behind failure is close's error. */
static int vfs_flush(const char *path, struct fuse_file_info *fi)
{
	struct virgo_stat v;
	int rc = virgo_flush_stat(fh_of(fi)->fd, &v);
	if (rc == 0 && v.type && path)
		vfs_cache_put(path, &v, true);
	return fs_err(rc);
}

static int vfs_release(const char *path, struct fuse_file_info *fi)
{
	(void)path;
	struct vfs_fh *h = fh_of(fi);
	wr_remove(h->fd);
	virgo_close_nowait(h->fd); /* the kernel does not wait for a release either */
	free(h);
	return 0;
}

static int vfs_fsync(const char *path, int datasync, struct fuse_file_info *fi)
{
	(void)path;
	(void)datasync;
	return fs_err(virgo_fsync(fh_of(fi)->fd));
}

static int vfs_truncate(const char *path, off_t size, struct fuse_file_info *fi)
{
	if (fi && fi->fh) {
		atomic_store(&fh_of(fi)->fresh, false);
		if (path)
			vfs_cache_stale(path);
		return fs_err(virgo_ftruncate(fh_of(fi)->fd, (uint64_t)size));
	}
	REMOTE(path, r);
	vfs_cache_stale(path);
	wr_settle();
	return fs_err(virgo_truncate(r, (uint64_t)size));
}

/* An entry removed here, or not: either way, ask the node next time
 * (and after a failure its directory may hold it still). */
static int removed(const char *path, int rc)
{
	vfs_cache_moved(path);
	if (rc)
		vfs_cache_parent_unknown(path);
	return fs_err(rc);
}

/* The new directory's attributes come back with it: the getattr FUSE
 * sends next is answered from them, and it is known empty, so the
 * lookups before creates in it need no round trip (vfs_cache.h). */
static int vfs_mkdir(const char *path, mode_t mode)
{
	REMOTE(path, r);
	struct virgo_stat v;
	int rc = virgo_mkdir_stat(r, mode & 07777, &v);
	if (rc) {
		vfs_cache_parent_unknown(path); /* EEXIST: made elsewhere */
		return fs_err(rc);
	}
	vfs_cache_put(path, &v, true);
	vfs_cache_dir_made(path, v.ctime_ns);
	return 0;
}

static int vfs_unlink(const char *path)
{
	REMOTE(path, r);
	return removed(path, virgo_unlink(r));
}

static int vfs_rmdir(const char *path)
{
	REMOTE(path, r);
	return removed(path, virgo_rmdir(r));
}

static int vfs_rename(const char *from, const char *to, unsigned int flags)
{
	if (flags)
		return -EINVAL; /* RENAME_NOREPLACE/EXCHANGE: not offered */
	REMOTE(from, a);
	REMOTE(to, b);
	int rc = virgo_rename(a, b);
	vfs_cache_moved(from);
	vfs_cache_gone(to);
	vfs_cache_parent_unknown(to); /* a name there this cache has no entry for */
	if (rc)
		vfs_cache_parent_unknown(from);
	return fs_err(rc);
}

static int vfs_symlink(const char *target, const char *linkpath)
{
	REMOTE(linkpath, r);
	vfs_cache_parent_unknown(linkpath);
	return fs_err(virgo_symlink(target, r));
}

static int vfs_readlink(const char *path, char *buf, size_t size)
{
	REMOTE(path, r);
	ssize_t n = virgo_readlink(r, buf, size);
	return n < 0 ? fs_err(n) : 0;
}

static int vfs_chmod(const char *path, mode_t mode, struct fuse_file_info *fi)
{
	(void)fi;
	REMOTE(path, r);
	vfs_cache_stale(path);
	return fs_err(virgo_chmod(r, mode & 07777));
}

static int vfs_chown(const char *path, uid_t uid, gid_t gid, struct fuse_file_info *fi)
{
	(void)path;
	(void)fi;
	/* ownership stays the node's (tar -p, rsync -a as root ask for it) */
	return (uid == (uid_t)-1 || uid == 0) && (gid == (gid_t)-1 || gid == 0) ? 0 : -EPERM;
}

static int64_t ts_ns(const struct timespec *t)
{
	if (t->tv_nsec == UTIME_NOW)
		return VIRGO_TIME_NOW;
	if (t->tv_nsec == UTIME_OMIT)
		return VIRGO_TIME_OMIT;
	return (int64_t)t->tv_sec * 1000000000 + t->tv_nsec;
}

static int vfs_utimens(const char *path, const struct timespec tv[2], struct fuse_file_info *fi)
{
	(void)fi;
	REMOTE(path, r);
	vfs_cache_stale(path);
	wr_settle();
	if (!tv)
		return fs_err(virgo_utimens(r, VIRGO_TIME_NOW, VIRGO_TIME_NOW));
	return fs_err(virgo_utimens(r, ts_ns(&tv[0]), ts_ns(&tv[1])));
}

static int vfs_statfs(const char *path, struct statvfs *sv)
{
	REMOTE(path, r);
	struct virgo_statfs s;
	int rc = virgo_statfs(r[0] ? r : "/", &s);
	if (rc)
		return fs_err(rc);
	memset(sv, 0, sizeof *sv);
	sv->f_bsize = sv->f_frsize = s.bsize;
	sv->f_blocks = s.blocks;
	sv->f_bfree = s.bfree;
	sv->f_bavail = s.bavail;
	sv->f_files = s.files;
	sv->f_ffree = s.ffree;
	sv->f_namemax = s.namemax;
	return 0;
}

static const struct fuse_operations vfs_ops = {
	.init = vfs_init,
	.getattr = vfs_getattr,
	.readdir = vfs_readdir,
	.open = vfs_open,
	.create = vfs_create,
	.read_buf = vfs_read_buf,
	.write_buf = vfs_write_buf,
	.flush = vfs_flush,
	.release = vfs_release,
	.fsync = vfs_fsync,
	.truncate = vfs_truncate,
	.mkdir = vfs_mkdir,
	.unlink = vfs_unlink,
	.rmdir = vfs_rmdir,
	.rename = vfs_rename,
	.symlink = vfs_symlink,
	.readlink = vfs_readlink,
	.chmod = vfs_chmod,
	.chown = vfs_chown,
	.utimens = vfs_utimens,
	.statfs = vfs_statfs,
};

static void usage(FILE *f)
{
	fprintf(f, "usage: virgofs [-c FILE] <mountpoint> [FUSE options: -f -d -s -o opt,...]\n"
		   "Mounts every node of the VIRGO cluster: <mountpoint>/node<id>/... is that\n"
		   "node's cloudfs export.  -c: the client config (default as for virgo).\n"
		   "Unmount with: fusermount3 -u <mountpoint>\n");
}

/* The kernel reads ahead at most read_ahead_kb of the mount's bdi
 * (128 KiB by default, whatever max_readahead says): raise it to
 * VFS_RA_REQS requests so sequential reads travel as several large
 * requests in flight.  Best effort (root only).
 * On its own thread once the loop serves: the stat of the mount point is
 * a request to this very process. */
static void *raise_readahead(void *arg)
{
	const char *mountpoint = arg;
	struct stat st;
	if (stat(mountpoint, &st) != 0)
		return NULL;
	char p[96];
	snprintf(p, sizeof p, "/sys/class/bdi/%u:%u/read_ahead_kb", major(st.st_dev),
		 minor(st.st_dev));
	FILE *f = fopen(p, "w");
	if (f) {
		fprintf(f, "%u\n", VFS_RA_REQS * read_max / 1024);
		fclose(f);
	}
	return NULL;
}

int main(int argc, char **argv)
{
	const char *conf = NULL;
	char *args[64];
	int n = 0;
	args[n++] = argv[0];
	for (int i = 1; i < argc; i++) {
		if ((strcmp(argv[i], "-c") == 0 || strcmp(argv[i], "--config") == 0) && i + 1 < argc) {
			conf = argv[++i];
		} else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
			usage(stdout);
			return 0;
		} else if (n < 62) {
			args[n++] = argv[i];
		}
	}
	if (n < 2) {
		usage(stderr);
		return 2;
	}
	args[n] = NULL;
	int rc = virgo_init(conf);
	if (rc) {
		fprintf(stderr, "virgofs: %s\n", virgo_strerror(rc));
		return 2;
	}
	pick_io_max();
	/* fuse_main, unrolled to tune the mount between mounting and serving */
	struct fuse_args fa = FUSE_ARGS_INIT(n, args);
	struct fuse_cmdline_opts o;
	if (fuse_opt_parse(&fa, NULL, vfs_opts, opt_proc) != 0 || fuse_parse_cmdline(&fa, &o) != 0 ||
	    !o.mountpoint) {
		usage(stderr);
		virgo_fini();
		return 2;
	}
	char max_read_opt[32]; /* libfuse wants it both here and in init */
	snprintf(max_read_opt, sizeof max_read_opt, "-omax_read=%u", read_max);
	rc = 1;
	struct fuse *f = fuse_opt_insert_arg(&fa, 1, max_read_opt) == 0
				 ? fuse_new(&fa, &vfs_ops, sizeof vfs_ops, NULL)
				 : NULL;
	if (f && fuse_mount(f, o.mountpoint) == 0) {
		pthread_t ra;
		if (fuse_daemonize(o.foreground) == 0 &&
		    fuse_set_signal_handlers(fuse_get_session(f)) == 0) {
			if (pthread_create(&ra, NULL, raise_readahead, o.mountpoint) == 0)
				pthread_detach(ra);
			rc = o.singlethread ? fuse_loop(f) : fuse_loop_mt(f, o.clone_fd);
			fuse_remove_signal_handlers(fuse_get_session(f));
		}
		fuse_unmount(f);
	}
	if (f)
		fuse_destroy(f);
	free(o.mountpoint);
	fuse_opt_free_args(&fa);
	virgo_fini();
	return rc ? 1 : 0;
}
