/*
 * fs.c - the file commands: virgo cp, cat, ls -l, rm, mkdir, mv, stat on
 * files of any node's cloudfs, named nodeN:/path (or N:/path).  cp copies
 * either way (and node to node) through one 1 MiB buffer, so a file of any
 * size takes constant memory; on a terminal it shows progress, and
 * --resume continues a copy that stopped, from the destination's size.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <libgen.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"

#define FS_CHUNK (1u << 20)
#define FS_WRITEBEHIND 4 /* chunks in flight to a remote destination */

/* "node2:/x" or "2:/x" (a ':' before any '/'). */
static bool is_remote(const char *p)
{
	const char *colon = strchr(p, ':'), *slash = strchr(p, '/');
	return colon && colon != p && (!slash || colon < slash);
}

bool cli_fs_ls_args(int argc, char **argv)
{
	for (int i = 1; i < argc; i++)
		if (strcmp(argv[i], "-l") == 0 || is_remote(argv[i]))
			return true;
	return false;
}

/* One end of a copy: a local file or a remote one. */
struct ep {
	bool remote;
	int lfd;
	virgo_fd_t rfd;
	const char *name;
};

static int ep_open(struct ep *e, const char *path, int flags, unsigned mode)
{
	e->name = path;
	e->remote = is_remote(path);
	if (e->remote) {
		int rc = virgo_open_ex(path, flags, mode, &e->rfd);
		return rc;
	}
	e->lfd = strcmp(path, "-") == 0 ? ((flags & O_ACCMODE) == O_RDONLY ? 0 : 1)
					: open(path, flags | O_CLOEXEC, mode);
	return e->lfd < 0 ? -errno : 0;
}

static void ep_close(struct ep *e)
{
	if (e->remote)
		virgo_close(e->rfd);
	else if (e->lfd > 2)
		close(e->lfd);
}

static ssize_t ep_read(struct ep *e, void *buf, size_t n, uint64_t off)
{
	if (e->remote)
		return virgo_pread(e->rfd, buf, n, off);
	ssize_t r;
	do
		r = e->lfd == 0 ? read(0, buf, n) : pread(e->lfd, buf, n, (off_t)off);
	while (r < 0 && errno == EINTR);
	return r < 0 ? -errno : r;
}

static int ep_write(struct ep *e, const void *buf, size_t n, uint64_t off)
{
	if (e->remote) {
		ssize_t w = virgo_pwrite(e->rfd, buf, n, off);
		return w < 0 ? (int)w : 0;
	}
	size_t done = 0;
	while (done < n) {
		ssize_t w = e->lfd == 1 ? write(1, (const char *)buf + done, n - done)
					: pwrite(e->lfd, (const char *)buf + done, n - done,
						 (off_t)(off + done));
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return -errno;
		done += (size_t)w;
	}
	return 0;
}

/* Size and type of a path (local or remote): 0, or a negative error. */
static int path_stat(const char *p, uint64_t *size, char *type, unsigned *mode)
{
	if (is_remote(p)) {
		struct virgo_stat st;
		int rc = virgo_stat(p, &st);
		if (rc == 0) {
			*size = st.size;
			*type = st.type;
			*mode = st.mode;
		}
		return rc;
	}
	struct stat st;
	if (stat(p, &st) != 0)
		return -errno;
	*size = (uint64_t)st.st_size;
	*type = S_ISDIR(st.st_mode) ? 'd' : S_ISREG(st.st_mode) ? 'f' : '?';
	*mode = st.st_mode & 07777;
	return 0;
}

static int fs_fail(const char *what, const char *path, int rc, bool remote)
{
	if (remote)
		return cli_fail(what, rc);
	fprintf(stderr, "virgo: %s %s: %s\n", what, path, strerror(-rc));
	return 1;
}

static void progress(uint64_t done, uint64_t total, double t0, bool final)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	double s = (double)ts.tv_sec + ts.tv_nsec / 1e9 - t0;
	double mib = (double)done / (1 << 20);
	fprintf(stderr, "\r%6.1f%%  %10.1f MiB  %8.1f MiB/s", total ? 100.0 * done / total : 100.0,
		mib, s > 0 ? mib / s : 0.0);
	if (final)
		fputc('\n', stderr);
}

/* A remote destination's write failed, maybe one still in flight (write
 * behind: any of the FS_WRITEBEHIND chunks before off): cut the file back
 * to what is known written from start on, so it stays a prefix of the
 * source with no hole where the failed chunk was (--resume trusts it). */
static void cut_back(struct ep *e, uint64_t start, uint64_t off)
{
	uint64_t behind = (uint64_t)FS_WRITEBEHIND * FS_CHUNK;
	virgo_ftruncate(e->rfd, off > start + behind ? off - behind : start);
}

int cmd_cp(int argc, char **argv)
{
	bool resume = false, sync = false;
	int first = 1;
	while (first < argc && argv[first][0] == '-' && argv[first][1]) {
		if (strcmp(argv[first], "--resume") == 0)
			resume = true;
		else if (strcmp(argv[first], "--fsync") == 0)
			sync = true;
		else if (strcmp(argv[first], "--") == 0) {
			first++;
			break;
		} else
			return cli_usage("cp", "unknown option '%s'", argv[first]);
		first++;
	}
	if (argc - first != 2)
		return cli_usage("cp", "wants a source and a destination");
	const char *src = argv[first];
	char dst[8192];
	snprintf(dst, sizeof dst, "%s", argv[first + 1]);
	uint64_t size = 0, dsize = 0;
	char type = 'f', dtype = 0;
	unsigned mode = 0644, dmode;
	bool src_stream = strcmp(src, "-") == 0;
	int rc = src_stream ? 0 : path_stat(src, &size, &type, &mode);
	if (rc)
		return fs_fail("cp", src, rc, is_remote(src));
	if (type == 'd')
		return fprintf(stderr, "virgo: cp %s: is a directory\n", src), 1;
	/* into a directory: keep the source's name */
	size_t dl = strlen(dst);
	bool to_dir = dl && dst[dl - 1] == '/';
	if (!to_dir && strcmp(dst, "-") != 0 && path_stat(dst, &dsize, &dtype, &dmode) == 0 &&
	    dtype == 'd')
		to_dir = true;
	if (to_dir) {
		if (src_stream)
			return cli_usage("cp", "reading stdin needs a file name as destination");
		char tmp[4096];
		const char *base = strrchr(src, '/') ? strrchr(src, '/') + 1 : strchr(src, ':') ? strchr(src, ':') + 1 : src;
		snprintf(tmp, sizeof tmp, "%s", base);
		snprintf(dst + dl, sizeof dst - dl, "%s%s", dst[dl - 1] == '/' ? "" : "/", tmp);
	}
	uint64_t start = 0;
	if (resume && path_stat(dst, &dsize, &dtype, &dmode) == 0 && dtype == 'f' && dsize <= size)
		start = dsize;
	struct ep in, out;
	rc = ep_open(&in, src, O_RDONLY, 0);
	if (rc)
		return fs_fail("cp", src, rc, in.remote);
	rc = ep_open(&out, dst, O_WRONLY | O_CREAT | (start ? 0 : O_TRUNC), mode & 0777);
	if (rc) {
		ep_close(&in);
		return fs_fail("cp", dst, rc, is_remote(dst));
	}
	/* a remote destination: each chunk goes out while the node writes
	 * the ones before (as virgofs does); an error of one surfaces at the
	 * next write, or at the flush or fsync below */
	if (out.remote)
		virgo_writebehind(out.rfd, FS_WRITEBEHIND);
	uint8_t *buf = malloc(FS_CHUNK);
	if (!buf)
		return fprintf(stderr, "virgo: out of memory\n"), 1;
	bool tty = isatty(2) && !src_stream;
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	double t0 = (double)ts.tv_sec + ts.tv_nsec / 1e9, last = t0;
	uint64_t off = start;
	int status = 0;
	for (;;) {
		ssize_t n = ep_read(&in, buf, FS_CHUNK, off);
		if (n < 0) {
			status = fs_fail("cp: read", src, (int)n, in.remote);
			break;
		}
		if (n == 0)
			break;
		rc = ep_write(&out, buf, (size_t)n, off);
		if (rc) {
			status = fs_fail("cp: write", dst, rc, out.remote);
			if (out.remote)
				cut_back(&out, start, off);
			break;
		}
		off += (uint64_t)n;
		if (tty) {
			clock_gettime(CLOCK_MONOTONIC, &ts);
			double now = (double)ts.tv_sec + ts.tv_nsec / 1e9;
			if (now - last >= 0.2) {
				progress(off - start, size - start, t0, false);
				last = now;
			}
		}
	}
	if (status == 0 && sync) { /* durable before we say done */
		rc = out.remote ? virgo_fsync(out.rfd)
		     : out.lfd <= 2 || fsync(out.lfd) == 0 ? 0 : -errno;
		if (rc)
			status = fs_fail("cp: fsync", dst, rc, out.remote);
		if (rc && out.remote)
			cut_back(&out, start, off);
	} else if (status == 0 && out.remote) { /* every write acknowledged */
		rc = virgo_flush(out.rfd);
		if (rc) {
			status = fs_fail("cp: write", dst, rc, true);
			cut_back(&out, start, off);
		}
	}
	if (tty && status == 0)
		progress(off - start, size - start, t0, true);
	free(buf);
	ep_close(&in);
	ep_close(&out);
	return status;
}

int cmd_cat(int argc, char **argv)
{
	if (argc < 2)
		return cli_usage("cat", "wants at least one nodeN:/path");
	uint8_t *buf = malloc(FS_CHUNK);
	if (!buf)
		return 1;
	int status = 0;
	for (int i = 1; i < argc && status == 0; i++) {
		struct ep in, out = {.remote = false, .lfd = 1};
		int rc = ep_open(&in, argv[i], O_RDONLY, 0);
		if (rc) {
			status = fs_fail("cat", argv[i], rc, in.remote);
			break;
		}
		for (uint64_t off = 0;;) {
			ssize_t n = ep_read(&in, buf, FS_CHUNK, off);
			if (n < 0)
				status = fs_fail("cat", argv[i], (int)n, in.remote);
			if (n <= 0)
				break;
			if (ep_write(&out, buf, (size_t)n, off) != 0) {
				status = 1;
				break;
			}
			off += (uint64_t)n;
		}
		ep_close(&in);
	}
	free(buf);
	return status;
}

static void mode_string(char type, unsigned mode, char *s)
{
	static const char rwx[] = "rwxrwxrwx";
	s[0] = type == 'f' ? '-' : type;
	for (int i = 0; i < 9; i++)
		s[1 + i] = (mode & (0400u >> i)) ? rwx[i] : '-';
	s[10] = '\0';
}

static void print_entry(bool lng, char type, unsigned mode, uint64_t size, int64_t mtime_ns,
			const char *name)
{
	if (!lng) {
		printf("%s%s\n", name, type == 'd' ? "/" : "");
		return;
	}
	char ms[11], when[32];
	mode_string(type, mode, ms);
	time_t t = (time_t)(mtime_ns / 1000000000);
	struct tm tm;
	localtime_r(&t, &tm);
	strftime(when, sizeof when, "%Y-%m-%d %H:%M", &tm);
	printf("%s %12" PRIu64 " %s %s\n", ms, size, when, name);
}

int cmd_fsls(int argc, char **argv)
{
	bool lng = false;
	int status = 0, paths = 0;
	for (int i = 1; i < argc; i++)
		if (strcmp(argv[i], "-l") == 0)
			lng = true;
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "-l") == 0)
			continue;
		if (!is_remote(argv[i]))
			return cli_usage("ls", "'%s' is not nodeN:/path", argv[i]);
		paths++;
		struct virgo_stat st;
		int rc = virgo_stat(argv[i], &st);
		if (rc) {
			status = cli_fail("ls", rc);
			continue;
		}
		if (st.type != 'd') {
			print_entry(lng, st.type, st.mode, st.size, st.mtime_ns, argv[i]);
			continue;
		}
		uint64_t cursor = 0;
		do {
			struct virgo_dirent *d;
			size_t n;
			rc = virgo_readdir(argv[i], &cursor, 1024, &d, &n);
			if (rc) {
				status = cli_fail("ls", rc);
				break;
			}
			for (size_t k = 0; k < n; k++)
				print_entry(lng, d[k].type, d[k].mode, d[k].size, d[k].mtime_ns,
					    d[k].name);
			free(d);
		} while (cursor);
	}
	if (!paths)
		return cli_usage("ls", "wants nodeN:/path");
	return status;
}

static int each_remote(int argc, char **argv, int first, const char *cmd,
		       int (*fn)(const char *path, void *arg), void *arg)
{
	if (first >= argc)
		return cli_usage(cmd, "wants nodeN:/path");
	int status = 0;
	for (int i = first; i < argc; i++) {
		if (!is_remote(argv[i]))
			return cli_usage(cmd, "'%s' is not nodeN:/path", argv[i]);
		int rc = fn(argv[i], arg);
		if (rc)
			status = cli_fail(cmd, rc);
	}
	return status;
}

static int rm_one(const char *p, void *arg)
{
	bool dirs = *(bool *)arg;
	int rc = virgo_unlink(p);
	if (rc == -EISDIR && dirs)
		rc = virgo_rmdir(p);
	return rc;
}

int cmd_rm(int argc, char **argv)
{
	bool dirs = argc > 1 && strcmp(argv[1], "-d") == 0;
	return each_remote(argc, argv, dirs ? 2 : 1, "rm", rm_one, &dirs);
}

/* -p: every missing parent too, and no error if it exists. */
static int mkdir_one(const char *p, void *arg)
{
	bool parents = *(bool *)arg;
	if (!parents)
		return virgo_mkdir(p, 0755);
	char tmp[8192];
	snprintf(tmp, sizeof tmp, "%s", p);
	char *s = strchr(tmp, ':') + 1;
	for (char *q = s + 1; *q; q++) {
		if (*q != '/')
			continue;
		*q = '\0';
		int rc = virgo_mkdir(tmp, 0755);
		*q = '/';
		if (rc && rc != -EEXIST)
			return rc;
	}
	int rc = virgo_mkdir(tmp, 0755);
	return rc == -EEXIST ? 0 : rc;
}

int cmd_mkdir(int argc, char **argv)
{
	bool parents = argc > 1 && strcmp(argv[1], "-p") == 0;
	return each_remote(argc, argv, parents ? 2 : 1, "mkdir", mkdir_one, &parents);
}

int cmd_mv(int argc, char **argv)
{
	if (argc != 3 || !is_remote(argv[1]) || !is_remote(argv[2]))
		return cli_usage("mv", "wants nodeN:/from nodeN:/to (one node)");
	int rc = virgo_rename(argv[1], argv[2]);
	if (rc == -EXDEV) {
		fprintf(stderr, "virgo: mv: %s and %s are on different nodes (use cp, then rm)\n",
			argv[1], argv[2]);
		return 1;
	}
	return rc ? cli_fail("mv", rc) : 0;
}

static int stat_one(const char *p, void *arg)
{
	(void)arg;
	struct virgo_stat st;
	int rc = virgo_lstat(p, &st);
	if (rc)
		return rc;
	char ms[11];
	mode_string(st.type, st.mode, ms);
	printf("  File: %s\n  Type: %c  Mode: %04o (%s)  Size: %" PRIu64 "  Links: %" PRIu64
	       "  Inode: %" PRIu64 "\n  Uid: %u  Gid: %u  Blocks: %" PRIu64 "\n",
	       p, st.type, st.mode, ms, st.size, st.nlink, st.ino, st.uid, st.gid, st.blocks);
	const int64_t t[3] = {st.atime_ns, st.mtime_ns, st.ctime_ns};
	static const char *const label[3] = {"Access", "Modify", "Change"};
	for (int i = 0; i < 3; i++) {
		char when[40];
		time_t s = (time_t)(t[i] / 1000000000);
		struct tm tm;
		localtime_r(&s, &tm);
		strftime(when, sizeof when, "%Y-%m-%d %H:%M:%S", &tm);
		printf("%s: %s.%09lld\n", label[i], when, (long long)(t[i] % 1000000000));
	}
	if (st.type == 'l') {
		char target[4096];
		if (virgo_readlink(p, target, sizeof target) >= 0)
			printf("  Link: %s\n", target);
	}
	return 0;
}

int cmd_stat(int argc, char **argv) { return each_remote(argc, argv, 1, "stat", stat_one, NULL); }
