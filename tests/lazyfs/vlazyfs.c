/*
 * vlazyfs.c - a FUSE file system for power-loss tests, in the spirit of
 * LazyFS (used by Jepsen): it keeps every file in memory twice, as
 * written (what readers see) and as last fsync'd/fdatasync'd.  Writing
 * anything to the control file /.crash "loses power": every file goes
 * back to its last synced content, so what a program wrote but did not
 * sync is gone, exactly as after a power cut with a volatile page cache.
 *
 *   vlazyfs <mountpoint> [FUSE options, e.g. -f]
 *
 * Limits (documented for the tests that use it): names (create, mkdir,
 * rename, unlink) are durable at once, as on a journalling file system
 * that commits metadata with the next sync; only file contents and sizes
 * are lazy.  Single-threaded (-s is forced), everything in memory: for
 * tests, not data.
 */
#define FUSE_USE_VERSION 31
#include <errno.h>
#include <fcntl.h>
#include <fuse.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

struct vnode {
	struct vnode *next;
	char *path; /* absolute, "/" for the root */
	bool dir;
	unsigned char *cur, *dur; /* as written / as last synced */
	size_t cur_len, cur_cap, dur_len;
	struct timespec mtime;
};

static struct vnode *nodes;
static unsigned long long crashes, syncs;

static struct vnode *find(const char *path)
{
	for (struct vnode *n = nodes; n; n = n->next)
		if (strcmp(n->path, path) == 0)
			return n;
	return NULL;
}

static const char *parent_of(const char *path, char *buf, size_t cap)
{
	snprintf(buf, cap, "%s", path);
	char *s = strrchr(buf, '/');
	if (s == buf)
		s[1] = '\0';
	else if (s)
		*s = '\0';
	return buf;
}

static struct vnode *add(const char *path, bool dir)
{
	struct vnode *n = calloc(1, sizeof *n);
	if (!n || !(n->path = strdup(path))) {
		free(n);
		return NULL;
	}
	n->dir = dir;
	clock_gettime(CLOCK_REALTIME, &n->mtime);
	n->next = nodes;
	nodes = n;
	return n;
}

static void drop(struct vnode *v)
{
	for (struct vnode **pp = &nodes; *pp; pp = &(*pp)->next) {
		if (*pp == v) {
			*pp = v->next;
			free(v->path);
			free(v->cur);
			free(v->dur);
			free(v);
			return;
		}
	}
}

static int resize(struct vnode *n, size_t len)
{
	if (len > n->cur_cap) {
		size_t cap = n->cur_cap ? n->cur_cap : 4096;
		while (cap < len)
			cap *= 2;
		unsigned char *b = realloc(n->cur, cap);
		if (!b)
			return -ENOMEM;
		n->cur = b;
		n->cur_cap = cap;
	}
	if (len > n->cur_len)
		memset(n->cur + n->cur_len, 0, len - n->cur_len);
	n->cur_len = len;
	clock_gettime(CLOCK_REALTIME, &n->mtime);
	return 0;
}

static void *lz_init(struct fuse_conn_info *conn, struct fuse_config *cfg)
{
	(void)conn;
	cfg->attr_timeout = 0;
	cfg->entry_timeout = 0;
	cfg->negative_timeout = 0;
	cfg->kernel_cache = 0;
	add("/", true);
	add("/.crash", false);
	return NULL;
}

static int lz_getattr(const char *path, struct stat *st, struct fuse_file_info *fi)
{
	(void)fi;
	struct vnode *n = find(path);
	if (!n)
		return -ENOENT;
	memset(st, 0, sizeof *st);
	st->st_mode = n->dir ? S_IFDIR | 0755 : S_IFREG | 0644;
	st->st_nlink = n->dir ? 2 : 1;
	st->st_size = n->dir ? 4096 : (off_t)n->cur_len;
	st->st_blocks = (st->st_size + 511) / 512;
	st->st_mtim = st->st_ctim = st->st_atim = n->mtime;
	st->st_uid = getuid();
	st->st_gid = getgid();
	return 0;
}

static int lz_readdir(const char *path, void *buf, fuse_fill_dir_t fill, off_t off,
		      struct fuse_file_info *fi, enum fuse_readdir_flags flags)
{
	(void)off;
	(void)fi;
	(void)flags;
	if (!find(path))
		return -ENOENT;
	fill(buf, ".", NULL, 0, 0);
	fill(buf, "..", NULL, 0, 0);
	char pb[4096];
	for (struct vnode *n = nodes; n; n = n->next) {
		if (strcmp(n->path, "/") == 0 || strcmp(parent_of(n->path, pb, sizeof pb), path) != 0)
			continue;
		fill(buf, strrchr(n->path, '/') + 1, NULL, 0, 0);
	}
	return 0;
}

static int lz_mkdir(const char *path, mode_t mode)
{
	(void)mode;
	char pb[4096];
	struct vnode *p = find(parent_of(path, pb, sizeof pb));
	if (!p || !p->dir)
		return -ENOENT;
	if (find(path))
		return -EEXIST;
	return add(path, true) ? 0 : -ENOMEM;
}

static int lz_rmdir(const char *path)
{
	struct vnode *n = find(path);
	if (!n || !n->dir)
		return -ENOENT;
	char pb[4096];
	for (struct vnode *k = nodes; k; k = k->next)
		if (k != n && strcmp(parent_of(k->path, pb, sizeof pb), path) == 0)
			return -ENOTEMPTY;
	drop(n);
	return 0;
}

static int lz_create(const char *path, mode_t mode, struct fuse_file_info *fi)
{
	(void)mode;
	(void)fi;
	char pb[4096];
	struct vnode *p = find(parent_of(path, pb, sizeof pb));
	if (!p || !p->dir)
		return -ENOENT;
	struct vnode *n = find(path);
	if (n)
		return (fi->flags & O_EXCL) ? -EEXIST : 0;
	return add(path, false) ? 0 : -ENOMEM;
}

static int lz_open(const char *path, struct fuse_file_info *fi)
{
	struct vnode *n = find(path);
	if (!n)
		return -ENOENT;
	if (n->dir)
		return -EISDIR;
	if (fi->flags & O_TRUNC)
		return resize(n, 0);
	return 0;
}

static int lz_read(const char *path, char *buf, size_t size, off_t off, struct fuse_file_info *fi)
{
	(void)fi;
	struct vnode *n = find(path);
	if (!n)
		return -ENOENT;
	if ((size_t)off >= n->cur_len)
		return 0;
	if (size > n->cur_len - (size_t)off)
		size = n->cur_len - (size_t)off;
	memcpy(buf, n->cur + off, size);
	return (int)size;
}

static void crash_all(void)
{
	for (struct vnode *n = nodes; n; n = n->next) {
		if (n->dir)
			continue;
		n->cur_len = 0;
		if (resize(n, n->dur_len) == 0 && n->dur_len)
			memcpy(n->cur, n->dur, n->dur_len);
	}
	crashes++;
	fprintf(stderr, "vlazyfs: power lost (%llu): unsynced writes dropped (%llu syncs so far)\n",
		crashes, syncs);
}

static int lz_write(const char *path, const char *buf, size_t size, off_t off,
		    struct fuse_file_info *fi)
{
	(void)fi;
	if (strcmp(path, "/.crash") == 0) {
		crash_all();
		return (int)size;
	}
	struct vnode *n = find(path);
	if (!n)
		return -ENOENT;
	if ((size_t)off + size > n->cur_len) {
		int rc = resize(n, (size_t)off + size);
		if (rc)
			return rc;
	}
	memcpy(n->cur + off, buf, size);
	clock_gettime(CLOCK_REALTIME, &n->mtime);
	return (int)size;
}

static int lz_truncate(const char *path, off_t size, struct fuse_file_info *fi)
{
	(void)fi;
	struct vnode *n = find(path);
	if (!n)
		return -ENOENT;
	if (strcmp(path, "/.crash") == 0)
		return 0;
	return resize(n, (size_t)size);
}

static int lz_fsync(const char *path, int datasync, struct fuse_file_info *fi)
{
	(void)datasync;
	(void)fi;
	struct vnode *n = find(path);
	if (!n)
		return -ENOENT;
	unsigned char *d = malloc(n->cur_len ? n->cur_len : 1);
	if (!d)
		return -ENOMEM;
	if (n->cur_len)
		memcpy(d, n->cur, n->cur_len);
	free(n->dur);
	n->dur = d;
	n->dur_len = n->cur_len;
	syncs++;
	return 0;
}

static int lz_fsyncdir(const char *path, int datasync, struct fuse_file_info *fi)
{
	(void)path;
	(void)datasync;
	(void)fi;
	return 0;
}

static int lz_unlink(const char *path)
{
	struct vnode *n = find(path);
	if (!n || n->dir)
		return -ENOENT;
	drop(n);
	return 0;
}

static int lz_rename(const char *from, const char *to, unsigned int flags)
{
	if (flags)
		return -EINVAL;
	struct vnode *n = find(from);
	if (!n || n->dir) /* directories are never renamed by the queue */
		return n ? -EINVAL : -ENOENT;
	struct vnode *t = find(to);
	if (t)
		drop(t);
	char *p = strdup(to);
	if (!p)
		return -ENOMEM;
	free(n->path);
	n->path = p;
	return 0;
}

static int lz_utimens(const char *path, const struct timespec tv[2], struct fuse_file_info *fi)
{
	(void)tv;
	(void)fi;
	return find(path) ? 0 : -ENOENT;
}

static int lz_statfs(const char *path, struct statvfs *st)
{
	(void)path;
	memset(st, 0, sizeof *st);
	st->f_bsize = st->f_frsize = 4096;
	st->f_blocks = st->f_bfree = st->f_bavail = 1 << 20;
	st->f_files = st->f_ffree = 1 << 16;
	st->f_namemax = 255;
	return 0;
}

static const struct fuse_operations ops = {
	.init = lz_init,
	.getattr = lz_getattr,
	.readdir = lz_readdir,
	.mkdir = lz_mkdir,
	.rmdir = lz_rmdir,
	.create = lz_create,
	.open = lz_open,
	.read = lz_read,
	.write = lz_write,
	.truncate = lz_truncate,
	.fsync = lz_fsync,
	.fsyncdir = lz_fsyncdir,
	.unlink = lz_unlink,
	.rename = lz_rename,
	.utimens = lz_utimens,
	.statfs = lz_statfs,
};

int main(int argc, char **argv)
{
	/* single-threaded: the node list has no lock */
	char **av = calloc((size_t)argc + 2, sizeof *av);
	if (!av)
		return 1;
	for (int i = 0; i < argc; i++)
		av[i] = argv[i];
	av[argc] = "-s";
	return fuse_main(argc + 1, av, &ops, NULL);
}
