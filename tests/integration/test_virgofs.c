/*
 * test_virgofs.c - the FUSE mount against a real 2-node cluster: cp,
 * sha256sum, tar, rsync and sqlite3 on remote files through it; a node
 * killed under a reader gives EIO within the client timeout (never a hung
 * process) and the mount works again once the node is back; a stopped
 * (hung) node gives EIO within the timeout too; fusermount3 -u unmounts.
 * Writes are write-behind: a stat by path while the file is open counts
 * every write made, close returns once the node has them all (the
 * export's file is complete), and a file grown behind the mount's back
 * is read whole at its new size by the next open (close-to-open).
 * Small files: the attributes a stat shows right after close are the
 * node's (from the writes' replies), and a file rewritten on the node
 * reads new at the next open while the old attributes are cached.
 * Large writes travel spliced (pipe to socket): a file written at
 * unaligned offsets around the splice threshold reads back exact, and a
 * node killed under a writer gives EIO at close within the timeout.
 * Large reads travel spliced too (socket to pipe to /dev/fuse): odd
 * offsets and sizes, buffered and O_DIRECT, read the node's bytes, and
 * a node killed while a read streams gives EIO within the timeout.
 * Listings of a node from before readdir's names-only pages (flag t: a
 * proxy in front of a node refuses it as such a node did) fall back to
 * pages with attributes and list every entry with its type.
 * Skipped (counted) where /dev/fuse or the virgofs binary is absent.
 */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "../harness.h"

#define TIMEOUT_MS 2000 /* the client's timeout_ms (virgo_client.conf) */

static struct th_cluster cl;
static char base[300], exp_dir[2][400], mnt[400], virgofs[600], fslog[400];
static pid_t fs_pid;
static bool usable;
static char out[1 << 16];

static int sh(const char *fmt, ...)
{
	char cmd[4096];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(cmd, sizeof cmd, fmt, ap);
	va_end(ap);
	const char *av[] = {"/bin/sh", "-c", cmd, NULL};
	int rc = th_run(av, out, sizeof out, 30000);
	if (rc != 0)
		fprintf(stderr, "sh: %s -> %d\n%s\n", cmd, rc, out);
	return rc;
}

static void unmount_at(const char *m)
{
	const char *av[] = {"/bin/fusermount3", "-u", "-z", m, NULL};
	char o[512];
	th_run(av, o, sizeof o, 10000);
}

/* Starts virgofs with client config conf on m (its output to log) and
 * waits until the directory dir shows there (10 s, or until virgofs
 * exits).  *pid: virgofs's.  0, or -1 after printing its log. */
static int mount_at(const char *conf, const char *m, const char *log, const char *dir, pid_t *pid)
{
	*pid = fork();
	if (*pid == 0) {
		int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0644);
		dup2(fd, 1);
		dup2(fd, 2);
		execl(virgofs, "virgofs", "-c", conf, "-f", m, (char *)NULL);
		_exit(127);
	}
	int64_t end = th_now_ms() + 10000;
	struct stat st;
	while (th_now_ms() < end) {
		if (stat(dir, &st) == 0 && S_ISDIR(st.st_mode))
			return 0;
		if (waitpid(*pid, NULL, WNOHANG) == *pid)
			break;
		usleep(20000);
	}
	fprintf(stderr, "virgofs did not mount; its log:\n");
	sh("cat %s", log);
	fputs(out, stderr);
	return -1;
}

static int setup(void **state)
{
	(void)state;
	snprintf(virgofs, sizeof virgofs, "%s/../virgofs", th_build_dir());
	if (access("/dev/fuse", R_OK | W_OK) != 0 || access(virgofs, X_OK) != 0 ||
	    access("/bin/fusermount3", X_OK) != 0)
		return 0; /* every test skips */
	snprintf(base, sizeof base, "%s", th_tmpdir());
	static char extra[2][500];
	const char *per[2];
	for (int i = 0; i < 2; i++) {
		snprintf(exp_dir[i], sizeof exp_dir[i], "%s/export%d", base, i + 1);
		snprintf(extra[i], sizeof extra[i], "cloudfs_export_root = %s\n", exp_dir[i]);
		per[i] = extra[i];
	}
	snprintf(mnt, sizeof mnt, "%s/mnt", base);
	snprintf(fslog, sizeof fslog, "%s/virgofs.log", base);
	if (mkdir(mnt, 0755) != 0)
		return -1;
	char client[100];
	snprintf(client, sizeof client, "timeout_ms = %d\nconnect_timeout_ms = 500\n", TIMEOUT_MS);
	if (th_cluster_start_nodes(&cl, 2, "", per, client) != 0)
		return -1;
	/* mounted once the nodes' directories show up */
	char p[500];
	snprintf(p, sizeof p, "%s/node2", mnt);
	if (mount_at(cl.client_conf, mnt, fslog, p, &fs_pid) != 0)
		return -1;
	usable = true;
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	if (!usable && !fs_pid)
		return 0;
	unmount_at(mnt);
	if (fs_pid > 0) {
		kill(fs_pid, SIGTERM);
		waitpid(fs_pid, NULL, 0);
	}
	return th_cluster_teardown(&cl);
}

#define NEED_MOUNT()                                                                               \
	do {                                                                                       \
		if (!usable)                                                                       \
			skip();                                                                    \
	} while (0)

/* out holds two lines of sha256sum: they are equal. */
static void assert_sums_equal(void)
{
	assert_int_equal(strlen(out), 2 * (64 + 4));
	assert_memory_equal(out, out + 68, 68);
}

/* Drops the page-cache pages of the files a and b (dd iflag=nocache). */
static int cold(const char *a, const char *b)
{
	return sh("dd if=%s iflag=nocache count=0 status=none && "
		  "dd if=%s iflag=nocache count=0 status=none",
		  a, b);
}

static void cp_and_sha256sum(void **state)
{
	(void)state;
	NEED_MOUNT();
	assert_int_equal(sh("head -c 20971523 /dev/urandom > %s/src.bin", base), 0);
	assert_int_equal(sh("mkdir -p %s/node2/data && cp %s/src.bin %s/node2/data/big.bin", mnt, base, mnt), 0);
	assert_int_equal(sh("cd %s && sha256sum src.bin | cut -d' ' -f1 > a && "
			    "sha256sum %s/node2/data/big.bin | cut -d' ' -f1 > b && "
			    "sha256sum %s/data/big.bin | cut -d' ' -f1 > c && cmp a b && cmp a c",
			    base, mnt, exp_dir[1]),
			 0);
	/* and back out, and node to node */
	assert_int_equal(sh("cp %s/node2/data/big.bin %s/back.bin && cmp %s/src.bin %s/back.bin", mnt,
			    base, base, base),
			 0);
	assert_int_equal(sh("cp %s/node2/data/big.bin %s/node1/copy.bin && cmp %s/src.bin %s/copy.bin",
			    mnt, mnt, base, exp_dir[0]),
			 0);
	/* an empty and a 1-byte file */
	assert_int_equal(sh(": > %s/node1/empty && printf x > %s/node1/one && "
			    "test ! -s %s/empty && test \"$(cat %s/node1/one)\" = x",
			    mnt, mnt, exp_dir[0], mnt),
			 0);
	assert_int_equal(sh("ls %s", mnt), 0);
	assert_string_equal(out, "node1\nnode2\n");
}

/* A write-behind write the node refuses returns at once, and its error
 * reaches the application at close(2), or at fsync(2) (then once: close
 * after it succeeds).  The refusal here is EFBIG: a 4 KiB write 32 TiB
 * into the file, past the largest file of the node's file system (ext4:
 * 16 TiB); skipped where that file system takes it. */
static void writebehind_error_at_close(void **state)
{
	(void)state;
	NEED_MOUNT();
	char p[600], e[600], buf[4096];
	const off_t far = (off_t)1 << 45;
	snprintf(e, sizeof e, "%s/efbig.probe", exp_dir[0]);
	int lf = open(e, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	assert_true(lf >= 0);
	bool efbig = pwrite(lf, "x", 1, far) < 0 && errno == EFBIG;
	close(lf);
	unlink(e);
	if (!efbig)
		skip(); /* the export's file system holds files that large */
	memset(buf, 'e', sizeof buf);
	snprintf(p, sizeof p, "%s/node1/efbig.bin", mnt);
	int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	assert_true(fd >= 0);
	assert_int_equal(pwrite(fd, buf, sizeof buf, 0), (ssize_t)sizeof buf);
	assert_int_equal(pwrite(fd, buf, sizeof buf, far), (ssize_t)sizeof buf); /* sent */
	assert_int_equal(close(fd), -1);
	assert_int_equal(errno, EFBIG);
	/* the write before it is on the node */
	struct stat st;
	snprintf(e, sizeof e, "%s/efbig.bin", exp_dir[0]);
	assert_int_equal(stat(e, &st), 0);
	assert_int_equal(st.st_size, (off_t)sizeof buf);
	fd = open(p, O_WRONLY);
	assert_true(fd >= 0);
	assert_int_equal(pwrite(fd, buf, sizeof buf, far), (ssize_t)sizeof buf);
	assert_int_equal(fsync(fd), -1);
	assert_int_equal(errno, EFBIG);
	assert_int_equal(close(fd), 0); /* reported once */
	assert_int_equal(unlink(p), 0);
}

static void writebehind_close_to_open(void **state)
{
	(void)state;
	NEED_MOUNT();
	char p[600], e[600];
	snprintf(p, sizeof p, "%s/node1/wb.bin", mnt);
	snprintf(e, sizeof e, "%s/wb.bin", exp_dir[0]);
	size_t chunk = 1u << 20, n = 6;
	uint8_t *buf = malloc(chunk), *back = malloc(chunk);
	assert_non_null(buf);
	assert_non_null(back);
	int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	assert_true(fd >= 0);
	for (size_t i = 0; i < n; i++) {
		memset(buf, (int)('a' + i), chunk);
		assert_int_equal(write(fd, buf, chunk), (ssize_t)chunk);
	}
	struct stat st;
	assert_int_equal(stat(p, &st), 0); /* by path: another connection */
	assert_int_equal(st.st_size, (off_t)(n * chunk));
	assert_int_equal(close(fd), 0);
	/* on the node's disk, whole, as soon as close returned */
	assert_int_equal(stat(e, &st), 0);
	assert_int_equal(st.st_size, (off_t)(n * chunk));
	int lf = open(e, O_RDONLY);
	assert_true(lf >= 0);
	for (size_t i = 0; i < n; i++) {
		assert_int_equal(pread(lf, back, chunk, (off_t)(i * chunk)), (ssize_t)chunk);
		memset(buf, (int)('a' + i), chunk);
		assert_memory_equal(back, buf, chunk);
	}
	close(lf);
	/* grown on the node behind the mount's back (the mount caches its
	 * attributes for 30 s): an open sees the new size at once and reads
	 * it whole (close-to-open), and so does a stat after it */
	assert_int_equal(sh("head -c 1048576 /dev/zero >> %s", e), 0);
	fd = open(p, O_RDONLY);
	assert_true(fd >= 0);
	assert_int_equal(fstat(fd, &st), 0);
	assert_int_equal(st.st_size, (off_t)((n + 1) * chunk));
	assert_int_equal(pread(fd, back, chunk, (off_t)(n * chunk)), (ssize_t)chunk);
	memset(buf, 0, chunk);
	assert_memory_equal(back, buf, chunk);
	assert_int_equal(stat(p, &st), 0);
	assert_int_equal(st.st_size, (off_t)((n + 1) * chunk));
	close(fd);
	free(buf);
	free(back);
}

/* Large writes reach virgofs as spliced pipes (write_buf) and go on to
 * the node by splice; small ones as memory.  A file built from both, at
 * unaligned offsets, with writes just under, at and over the splice
 * threshold (64 KiB) and across request boundaries, must read back equal
 * to the same writes on a local file: on the node's disk and through
 * the mount from a cold page cache. */
static void spliced_writes_unaligned(void **state)
{
	(void)state;
	NEED_MOUNT();
	char p[600], e[600], l[600];
	snprintf(p, sizeof p, "%s/node1/splice.bin", mnt);
	snprintf(e, sizeof e, "%s/splice.bin", exp_dir[0]);
	snprintf(l, sizeof l, "%s/splice.local", base);
	static const struct {
		off_t off;
		size_t len;
	} w[] = {
		{0, 5u << 20},		    /* 1 MiB writes (cp's, dd's) */
		{12345, 300 * 1024},	    /* spliced, unaligned */
		{(1 << 20) - 10, 1000},	    /* small, across a request boundary */
		{(3 << 20) + 1, 1u << 20},  /* a whole request's worth, unaligned */
		{7, 65535},		    /* just under the threshold */
		{(2 << 20) - 4096, 65537},  /* just over it */
		{(5 << 20) + 3, 2500000},   /* past the end: the file grows */
	};
	size_t max = 8u << 20;
	uint8_t *buf = malloc(max);
	assert_non_null(buf);
	int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	int lf = open(l, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	assert_true(fd >= 0 && lf >= 0);
	for (size_t i = 0; i < sizeof w / sizeof w[0]; i++) {
		for (size_t j = 0; j < w[i].len; j++)
			buf[j] = (uint8_t)(j * 7 + i * 31 + (j >> 9));
		/* in pieces of at most 1 MiB, as a program writes */
		for (size_t done = 0; done < w[i].len;) {
			size_t k = w[i].len - done < (1u << 20) ? w[i].len - done : 1u << 20;
			off_t at = w[i].off + (off_t)done;
			assert_int_equal(pwrite(fd, buf + done, k, at), (ssize_t)k);
			assert_int_equal(pwrite(lf, buf + done, k, at), (ssize_t)k);
			done += k;
		}
	}
	assert_int_equal(close(fd), 0);
	assert_int_equal(close(lf), 0);
	free(buf);
	assert_int_equal(sh("cmp %s %s", l, e), 0);
	assert_int_equal(cold(e, p), 0);
	assert_int_equal(sh("sha256sum < %s && sha256sum < %s", l, p), 0);
	assert_sums_equal(); /* the local file's sum, then the mount's */
}
/* Large reads travel spliced (socket to pipe to /dev/fuse): a file read
 * cold through the mount at odd offsets and sizes, buffered and with
 * O_DIRECT (whose requests keep the caller's offset and size), equals
 * the node's disk byte for byte, and so do their sha256 sums. */
static void spliced_reads_odd(void **state)
{
	(void)state;
	NEED_MOUNT();
	char p[600], e[600];
	snprintf(p, sizeof p, "%s/node1/rsplice.bin", mnt);
	snprintf(e, sizeof e, "%s/rsplice.bin", exp_dir[0]);
	assert_int_equal(sh("head -c 9437201 /dev/urandom > %s", e), 0);
	assert_int_equal(cold(e, p), 0);
	size_t total = 9437201, max = 3u << 20;
	uint8_t *want = malloc(max), *got = malloc(max);
	assert_true(want && got);
	int ef = open(e, O_RDONLY);
	assert_true(ef >= 0);
	static const struct {
		off_t off;
		size_t len;
	} rd[] = {
		{4097, 1},
		{123457, 2u << 20},	     /* several requests, unaligned */
		{(1 << 20) - 3, 1048583},     /* across request boundaries */
		{5, 65531},
		{(8 << 20) + 12345, 3u << 20}, /* past the end: short */
		{9437201, 4096},	     /* at the end: nothing */
	};
	for (int direct = 0; direct < 2; direct++) {
		int fd = open(p, O_RDONLY | (direct ? O_DIRECT : 0));
		assert_true(fd >= 0);
		for (size_t i = 0; i < sizeof rd / sizeof rd[0]; i++) {
			ssize_t n = pread(fd, got, rd[i].len, rd[i].off);
			size_t exp = (size_t)rd[i].off + rd[i].len <= total ? rd[i].len
									    : total - (size_t)rd[i].off;
			assert_int_equal(n, (ssize_t)exp);
			assert_int_equal(pread(ef, want, rd[i].len, rd[i].off), (ssize_t)exp);
			assert_memory_equal(got, want, exp);
		}
		close(fd);
	}
	close(ef);
	free(want);
	free(got);
	assert_int_equal(cold(e, p), 0);
	assert_int_equal(sh("sha256sum < %s && sha256sum < %s", e, p), 0);
	assert_sums_equal();
}

/* A node killed while a large cold read streams (readahead requests in
 * flight, their data on its way through pipes): the reader gets EIO
 * within the timeout, every read before it returned the file's bytes,
 * and the mount reads the file whole again once the node is back. */
static void node_killed_mid_read(void **state)
{
	(void)state;
	NEED_MOUNT();
	char p[600], e[600];
	snprintf(p, sizeof p, "%s/node2/data/stream.bin", mnt);
	snprintf(e, sizeof e, "%s/data/stream.bin", exp_dir[1]);
	assert_int_equal(sh("mkdir -p %s/data && head -c 67108864 /dev/urandom > %s", exp_dir[1], e),
			 0);
	assert_int_equal(cold(e, p), 0);
	size_t chunk = 1u << 20;
	uint8_t *got = malloc(chunk), *want = malloc(chunk);
	int fd = open(p, O_RDONLY), ef = open(e, O_RDONLY);
	assert_true(fd >= 0 && ef >= 0 && got && want);
	ssize_t n = 0;
	int e_no = 0;
	int64_t worst = 0;
	off_t at = 0;
	for (;; at += (off_t)chunk) {
		if (at == (off_t)(2 * chunk))
			th_node_signal(&cl, 1, SIGKILL); /* readahead under way */
		int64_t t0 = th_now_ms();
		n = read(fd, got, chunk);
		e_no = errno;
		int64_t took = th_now_ms() - t0;
		worst = took > worst ? took : worst;
		if (n <= 0)
			break;
		assert_int_equal(pread(ef, want, (size_t)n, at), n);
		assert_memory_equal(got, want, (size_t)n);
	}
	printf("read at %lld MiB after kill -9: %zd (%s); slowest read %lld ms\n",
	       (long long)(at >> 20), n, n < 0 ? strerror(e_no) : "end", (long long)worst);
	assert_int_equal(n, -1);
	assert_int_equal(e_no, EIO);
	assert_true(worst <= 2 * TIMEOUT_MS + 1000);
	close(fd);
	assert_int_equal(th_node_start(&cl, 1), 0);
	int64_t end = th_now_ms() + 10000;
	int rc;
	while ((rc = sh("cmp %s %s", p, e)) != 0 && th_now_ms() < end)
		usleep(100000);
	assert_int_equal(rc, 0);
	close(ef);
	free(got);
	free(want);
}

static void tar_rsync_sqlite(void **state)
{
	(void)state;
	NEED_MOUNT();
	/* a tree with odd names, through tar and back */
	assert_int_equal(sh("mkdir -p %s/tree/a/b && echo one > %s/tree/a/1 && "
			    "echo 'two words' > '%s/tree/a/b/with space' && ln -s 1 %s/tree/a/link && "
			    "tar -C %s -cf - tree | tar -C %s/node1 -xf - && diff -r %s/tree %s/node1/tree",
			    base, base, base, base, base, mnt, base, mnt),
			 0);
	assert_int_equal(sh("readlink %s/node1/tree/a/link", mnt), 0);
	assert_string_equal(out, "1\n");
	if (access("/usr/bin/rsync", X_OK) == 0)
		assert_int_equal(sh("rsync -a %s/tree/ %s/node2/synced/ && diff -r %s/tree %s/node2/synced && "
				    "rsync -a %s/node2/synced/ %s/back/ && diff -r %s/tree %s/back",
				    base, mnt, base, mnt, mnt, base, base, base),
				 0);
	if (access("/usr/bin/sqlite3", X_OK) == 0) {
		assert_int_equal(sh("sqlite3 %s/node1/db 'create table t(a); insert into t values(20),(22); "
				    "select sum(a) from t;'",
				    mnt),
				 0);
		assert_string_equal(out, "42\n");
	}
	assert_int_equal(sh("mv %s/node1/tree %s/node1/moved && rm -r %s/node1/moved && test ! -e %s/tree",
			    mnt, mnt, mnt, exp_dir[0]),
			 0);
}

/* Many small files: create+write+close, then stat (answered from the
 * last write's reply, so it must be the node's own size and mtime), then
 * one rewritten on the node with another size: the next open reads the
 * new bytes whole. */
static void small_files_attrs(void **state)
{
	(void)state;
	NEED_MOUNT();
	char p[600], e[600];
	char data[4096];
	memset(data, 'q', sizeof data);
	assert_int_equal(sh("mkdir -p %s/node1/small", mnt), 0);
	for (int i = 0; i < 50; i++) {
		snprintf(p, sizeof p, "%s/node1/small/f%02d", mnt, i);
		int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0644);
		assert_true(fd >= 0);
		assert_int_equal(write(fd, data, sizeof data - (size_t)i), (ssize_t)(sizeof data - (size_t)i));
		assert_int_equal(close(fd), 0);
	}
	for (int i = 0; i < 50; i++) {
		struct stat a, b;
		snprintf(p, sizeof p, "%s/node1/small/f%02d", mnt, i);
		snprintf(e, sizeof e, "%s/small/f%02d", exp_dir[0], i);
		assert_int_equal(stat(p, &a), 0);
		assert_int_equal(stat(e, &b), 0);
		assert_int_equal(a.st_size, (off_t)(sizeof data - (size_t)i));
		assert_int_equal(a.st_size, b.st_size);
		assert_int_equal(a.st_mtim.tv_sec, b.st_mtim.tv_sec);
		assert_int_equal(a.st_mtim.tv_nsec, b.st_mtim.tv_nsec);
	}
	/* rewritten behind the mount's back, shorter and then longer */
	snprintf(p, sizeof p, "%s/node1/small/f07", mnt);
	assert_int_equal(sh("printf 'new contents, longer than before? no' > %s/small/f07", exp_dir[0]), 0);
	assert_int_equal(sh("cat %s", p), 0);
	assert_string_equal(out, "new contents, longer than before? no");
	assert_int_equal(sh("head -c 10000 /dev/zero | tr '\\0' z > %s/small/f07", exp_dir[0]), 0);
	assert_int_equal(sh("wc -c < %s && tr -d z < %s | wc -c", p, p), 0);
	assert_string_equal(out, "10000\n0\n");
	/* a directory renamed here: what the mount knew of its files does
	 * not stick to their old paths, which the node fills anew */
	assert_int_equal(sh("mv %s/node1/small %s/node1/moved && mkdir %s/small && "
			    "printf abc > %s/small/f03 && stat -c %%s %s/node1/small/f03 %s/node1/moved/f03",
			    mnt, mnt, exp_dir[0], exp_dir[0], mnt, mnt),
			 0);
	assert_string_equal(out, "3\n4093\n");
	/* a file made on the node in a directory made through the mount
	 * is there within the negative timeout (1 s; vfs_cache.h) */
	assert_int_equal(sh("mkdir %s/node1/fresh && echo hi > %s/fresh/x && "
			    "for i in $(seq 100); do cat %s/node1/fresh/x 2>/dev/null && break; sleep 0.05; done",
			    mnt, exp_dir[0], mnt),
			 0);
	assert_string_equal(out, "hi\n");
	assert_int_equal(sh("rm -r %s/node1/small %s/node1/moved %s/node1/fresh", mnt, mnt, mnt), 0);
}

/* A number from node i's cloudfs "stats" ("ops": requests served,
 * "open_fds"), or -1. */
static long node_stat(int i, const char *name)
{
	int fd = th_connect(th_port(&cl, i, 50000));
	if (fd < 0)
		return -1;
	char buf[2048], key[64];
	ssize_t n = th_send(fd, "stats\r\n", 7) == 0 ? th_recv_until(fd, buf, sizeof buf, "END\r\n", 5000) : -1;
	close(fd);
	snprintf(key, sizeof key, "STAT %s ", name);
	const char *o = n > 0 ? strstr(buf, key) : NULL;
	return o ? atol(o + strlen(key)) : -1;
}

static long node_ops(int i)
{
	return node_stat(i, "ops");
}

static void create_file(const char *p, const char *text)
{
	int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	assert_int_equal(close(fd), 0);
}

/* Negative lookups (vfs_cache.h): in a directory made through the mount
 * and changed only by its own creates, the lookup before each create is
 * answered without the node (open, write, close: 3 requests a file, not
 * 4).  A name made there by another client never fools an exclusive
 * create (the node says EEXIST), is found at once after this mount's
 * next create or listing there, and by itself within the negative
 * timeout. */
static void negative_lookups(void **state)
{
	(void)state;
	NEED_MOUNT();
	char d[600], p[700];
	snprintf(d, sizeof d, "%s/node1/neg", mnt);
	assert_int_equal(mkdir(d, 0755), 0);
	long a = node_ops(0), b = node_ops(0); /* what asking costs */
	assert_true(a >= 0 && b > a);
	for (int i = 0; i < 20; i++) {
		snprintf(p, sizeof p, "%s/f%02d", d, i);
		create_file(p, "four");
	}
	long c = node_ops(0);
	fprintf(stderr, "node requests for 20 small files: %ld\n", c - b - (b - a));
	assert_true(c - b - (b - a) <= 20 * 3 + 2);
	/* and no descriptor left open on the node (release closes) */
	int64_t t1 = th_now_ms();
	while (node_stat(0, "open_fds") != 0 && th_now_ms() < t1 + 5000)
		usleep(20000);
	assert_int_equal(node_stat(0, "open_fds"), 0);
	for (int i = 0; i < 20; i++) { /* all there, on the node */
		snprintf(p, sizeof p, "%s/neg/f%02d", exp_dir[0], i);
		struct stat st;
		assert_int_equal(stat(p, &st), 0);
		assert_int_equal(st.st_size, 4);
	}
	/* a second without a create there: the knowledge lapses (a lookup
	 * of a missing name asks the node again), and the next create,
	 * whose reply shows the directory unchanged since, renews it */
	struct stat st;
	int64_t t2 = th_now_ms();
	long asked = 0;
	for (int i = 0; !asked && th_now_ms() < t2 + 10000; i++) {
		snprintf(p, sizeof p, "%s/missing%d", d, i); /* a new name: the kernel never saw it */
		long x = node_ops(0);
		assert_int_equal(stat(p, &st), -1);
		asked = node_ops(0) - x - (b - a);
		if (!asked)
			usleep(50000);
	}
	assert_true(asked > 0);
	snprintf(p, sizeof p, "%s/renew", d);
	create_file(p, "four");
	long b2 = node_ops(0);
	for (int i = 0; i < 20; i++) {
		snprintf(p, sizeof p, "%s/g%02d", d, i);
		create_file(p, "four");
	}
	long c2 = node_ops(0);
	fprintf(stderr, "node requests for 20 small files after a renewal: %ld\n",
		c2 - b2 - (b - a));
	assert_true(c2 - b2 - (b - a) <= 20 * 3 + 2);
	/* lapsed, then a name made elsewhere: the next create here shows
	 * the directory changed, so the name is found */
	t2 = th_now_ms();
	asked = 0;
	for (int i = 0; !asked && th_now_ms() < t2 + 10000; i++) {
		snprintf(p, sizeof p, "%s/absent%d", d, i);
		long x = node_ops(0);
		assert_int_equal(stat(p, &st), -1);
		asked = node_ops(0) - x - (b - a);
		if (!asked)
			usleep(50000);
	}
	assert_int_equal(sh("echo other > %s/neg/o0", exp_dir[0]), 0);
	snprintf(p, sizeof p, "%s/after-lapse", d);
	create_file(p, "x");
	snprintf(p, sizeof p, "%s/o0", d);
	assert_int_equal(stat(p, &st), 0);
	assert_int_equal(st.st_size, 6);
	/* made elsewhere: an exclusive create of it fails, and the mount
	 * knows it from then on */
	assert_int_equal(sh("echo other > %s/neg/o1", exp_dir[0]), 0);
	snprintf(p, sizeof p, "%s/o1", d);
	assert_int_equal(open(p, O_WRONLY | O_CREAT | O_EXCL, 0644), -1);
	assert_int_equal(errno, EEXIST);
	assert_int_equal(stat(p, &st), 0);
	assert_int_equal(st.st_size, 6);
	/* made elsewhere, then a create here: its reply shows the directory
	 * changed by someone else, so the other name is found at once */
	assert_int_equal(sh("echo other > %s/neg/o2", exp_dir[0]), 0);
	snprintf(p, sizeof p, "%s/f-after", d);
	create_file(p, "x");
	snprintf(p, sizeof p, "%s/o2", d);
	assert_int_equal(stat(p, &st), 0);
	/* made elsewhere, then a listing here shows it: found at once */
	assert_int_equal(sh("echo other > %s/neg/o3 && ls %s > /dev/null", exp_dir[0], d), 0);
	snprintf(p, sizeof p, "%s/o3", d);
	assert_int_equal(stat(p, &st), 0);
	/* made elsewhere, nothing done here: found within the negative
	 * timeout (1 s), polled for with a deadline well past it */
	snprintf(p, sizeof p, "%s/node1/neg/sub", mnt);
	assert_int_equal(mkdir(p, 0755), 0); /* known completely: empty */
	snprintf(p, sizeof p, "%s/node1/neg/sub/f", mnt);
	create_file(p, "confirmed"); /* ... and confirmed just now */
	assert_int_equal(sh("echo other > %s/neg/sub/o4", exp_dir[0]), 0);
	int64_t t0 = th_now_ms();
	snprintf(p, sizeof p, "%s/sub/o4", d);
	while (stat(p, &st) != 0 && th_now_ms() < t0 + 10000)
		usleep(20000);
	int64_t waited = th_now_ms() - t0;
	fprintf(stderr, "name made elsewhere found after %lld ms\n", (long long)waited);
	assert_int_equal(stat(p, &st), 0);
	assert_true(waited < 3000); /* 1 s, and slack for a loaded machine */
	/* removed here: absent, and made again here */
	snprintf(p, sizeof p, "%s/f01", d);
	assert_int_equal(unlink(p), 0);
	assert_int_equal(stat(p, &st), -1);
	assert_int_equal(errno, ENOENT);
	create_file(p, "back");
	assert_int_equal(stat(p, &st), 0);
	assert_int_equal(st.st_size, 4);
	assert_int_equal(sh("rm -r %s", d), 0);
}

/* A listing carries every entry's attributes (readdir flag s): what
 * stat shows through the mount afterwards equals the node's own lstat
 * (size, mode, links, owner, times), and costs the node no request. */
static void readdir_attrs(void **state)
{
	(void)state;
	NEED_MOUNT();
	assert_int_equal(sh("mkdir %s/rd && cd %s/rd && for i in $(seq 30); do head -c $((i * 100)) "
			    "/dev/zero > f$i; done && chmod 600 f3 && chmod 755 f4 && ln f5 f5link && "
			    "mkdir sub && ln -s f1 link && touch -d '2001-02-03 04:05:06' f6",
			    exp_dir[0], exp_dir[0]),
			 0);
	char d[600], p[800], e[800];
	snprintf(d, sizeof d, "%s/node1/rd", mnt);
	char names[40][64];
	int n = 0;
	DIR *dir = opendir(d);
	assert_non_null(dir);
	struct dirent *de;
	while ((de = readdir(dir)) && n < 40)
		if (de->d_name[0] != '.')
			snprintf(names[n++], sizeof names[0], "%s", de->d_name);
	closedir(dir);
	assert_int_equal(n, 33);
	long a = node_ops(0), b = node_ops(0);
	for (int i = 0; i < n; i++) {
		struct stat m, x;
		snprintf(p, sizeof p, "%s/%s", d, names[i]);
		snprintf(e, sizeof e, "%s/rd/%s", exp_dir[0], names[i]);
		assert_int_equal(lstat(p, &m), 0);
		assert_int_equal(lstat(e, &x), 0);
		assert_int_equal(m.st_mode, x.st_mode);
		assert_int_equal(m.st_nlink, x.st_nlink);
		assert_int_equal(m.st_uid, x.st_uid);
		assert_int_equal(m.st_gid, x.st_gid);
		assert_int_equal(m.st_mtim.tv_sec, x.st_mtim.tv_sec);
		assert_int_equal(m.st_mtim.tv_nsec, x.st_mtim.tv_nsec);
		assert_int_equal(m.st_ctim.tv_sec, x.st_ctim.tv_sec);
		if (!S_ISDIR(x.st_mode)) /* a directory's size is the file system's business */
			assert_int_equal(m.st_size, x.st_size);
	}
	long c = node_ops(0);
	assert_int_equal(c - b - (b - a), 0); /* all from the listing */
	assert_int_equal(sh("rm -r %s/rd", exp_dir[0]), 0);
}

/* A listing longer than a page (4,096 entries) gives every name once,
 * with its type.  Past its first VFS_RD_ATTRS (256) entries it carries
 * names only, so the stat of one name from the last page is one request
 * of its own; the stats of every entry after that (ls -l) are answered
 * from one fetch of all their attributes, a few requests in all rather
 * than one per entry, and every one is right. */
/* Lists d (entries f0 .. f<n-1>): each name once, f<dir_i> a directory,
 * f<lnk_i> a symlink (-1: none), the rest regular files, by d_type.
 * Returns how many were listed. */
static int list_f(const char *d, int n, int dir_i, int lnk_i)
{
	unsigned char *seen = calloc((size_t)n, 1);
	assert_non_null(seen);
	int listed = 0;
	DIR *dir = opendir(d);
	assert_non_null(dir);
	struct dirent *de;
	while ((de = readdir(dir))) {
		if (de->d_name[0] == '.')
			continue;
		int i = atoi(de->d_name + 1);
		assert_true(de->d_name[0] == 'f' && i >= 0 && i < n);
		assert_int_equal(seen[i]++, 0);
		assert_int_equal(de->d_type, i == dir_i ? DT_DIR : i == lnk_i ? DT_LNK : DT_REG);
		listed++;
	}
	closedir(dir);
	free(seen);
	return listed;
}

static void readdir_pages(void **state)
{
	(void)state;
	NEED_MOUNT();
	enum { N = 9000 };
	assert_int_equal(sh("mkdir %s/big && cd %s/big && seq -f f%%.0f 0 %d | xargs touch && "
			    "echo abc > f8999 && rm f8000 f8001 && mkdir f8000 && ln -s f1 f8001 && "
			    "chmod 600 f7000 && echo 12345678 > f7001",
			    exp_dir[0], exp_dir[0], N - 1),
			 0);
	char d[600], p[800];
	snprintf(d, sizeof d, "%s/node1/big", mnt);
	assert_int_equal(list_f(d, N, 8000, 8001), N);
	long a = node_ops(0), b = node_ops(0);
	struct stat st;
	snprintf(p, sizeof p, "%s/f8999", d);
	assert_int_equal(lstat(p, &st), 0);
	assert_int_equal(st.st_size, 4);
	long c = node_ops(0);
	assert_true(c - b - (b - a) <= 1); /* one lstat at most */
	for (int i = 0; i < N; i++) {
		struct stat x;
		char e[800];
		snprintf(p, sizeof p, "%s/f%d", d, i);
		snprintf(e, sizeof e, "%s/big/f%d", exp_dir[0], i);
		assert_int_equal(lstat(p, &st), 0);
		assert_int_equal(lstat(e, &x), 0);
		assert_int_equal(st.st_mode, x.st_mode);
		assert_true(st.st_mtim.tv_sec == x.st_mtim.tv_sec &&
			    st.st_mtim.tv_nsec == x.st_mtim.tv_nsec);
		if (!S_ISDIR(x.st_mode))
			assert_int_equal(st.st_size, x.st_size);
	}
	snprintf(p, sizeof p, "%s/f7000", d);
	assert_int_equal(lstat(p, &st), 0);
	assert_int_equal(st.st_mode, S_IFREG | 0600);
	snprintf(p, sizeof p, "%s/f7001", d);
	assert_int_equal(lstat(p, &st), 0);
	assert_int_equal(st.st_size, 9);
	long e = node_ops(0);
	/* one lstat, then the pages of attributes (9,000 entries: 3) */
	assert_true(e - c - (b - a) <= 6);
	assert_int_equal(sh("rm -r %s/big", exp_dir[0]), 0);
}

/* "An old node": a proxy in front of node1's cloudfs port that forwards
 * both ways, request lines one at a time, and turns the flag of every
 * "readdir ... t" into one the node refuses (EINVAL, as a node from
 * before flag t answered).  Listing only: no request carries a payload. */
struct oldnode {
	int lfd, target;
	_Atomic int refused;
	_Atomic bool stop;
};

struct oldpipe {
	struct oldnode *on;
	int cfd;
};

static void *oldnode_conn(void *arg)
{
	struct oldpipe *op = arg;
	struct oldnode *on = op->on;
	int cfd = op->cfd;
	free(op);
	int nfd = th_connect(on->target);
	char line[8192];
	size_t have = 0;
	while (nfd >= 0 && !atomic_load(&on->stop)) {
		struct pollfd pf[2] = {{cfd, POLLIN, 0}, {nfd, POLLIN, 0}};
		if (poll(pf, 2, 100) < 0)
			break;
		char buf[65536];
		if (pf[1].revents) { /* node -> client as it comes */
			ssize_t n = read(nfd, buf, sizeof buf);
			if (n <= 0 || th_send(cfd, buf, (size_t)n) != 0)
				break;
		}
		if (pf[0].revents) { /* client -> node a line at a time */
			ssize_t n = read(cfd, line + have, sizeof line - have);
			if (n <= 0)
				break;
			have += (size_t)n;
			char *eol;
			while ((eol = memmem(line, have, "\r\n", 2))) {
				size_t len = (size_t)(eol - line) + 2;
				if (len > 12 && strncmp(line, "readdir ", 8) == 0 &&
				    memcmp(eol - 2, " t", 2) == 0) {
					eol[-1] = 'x'; /* no such flag */
					atomic_fetch_add(&on->refused, 1);
				}
				if (th_send(nfd, line, len) != 0)
					goto out;
				memmove(line, line + len, have - len);
				have -= len;
			}
			if (have == sizeof line)
				break;
		}
	}
out:
	if (nfd >= 0)
		close(nfd);
	close(cfd);
	return NULL;
}

static void *oldnode_main(void *arg)
{
	struct oldnode *on = arg;
	while (!atomic_load(&on->stop)) {
		struct pollfd pf = {on->lfd, POLLIN, 0};
		if (poll(&pf, 1, 100) <= 0)
			continue;
		int cfd = accept(on->lfd, NULL, NULL);
		struct oldpipe *op = cfd >= 0 ? malloc(sizeof *op) : NULL;
		pthread_t th;
		if (op) {
			op->on = on;
			op->cfd = cfd;
			if (pthread_create(&th, NULL, oldnode_conn, op) == 0)
				pthread_detach(th);
			else
				free(op), close(cfd);
		} else if (cfd >= 0) {
			close(cfd);
		}
	}
	return NULL;
}

/* A node from before flag t (the proxy above, as node 1 of a mount of
 * its own): a listing past the first page of attributes falls back to
 * pages with attributes, and every entry shows, with its type. */
static void readdir_old_node(void **state)
{
	(void)state;
	NEED_MOUNT();
	enum { N = 700 };
	assert_int_equal(sh("mkdir %s/old && cd %s/old && seq -f f%%.0f 0 %d | xargs touch && "
			    "rm f600 && mkdir f600",
			    exp_dir[0], exp_dir[0], N - 1),
			 0);
	/* the proxy listens on 50000 + an offset no node of this run uses */
	static struct oldnode on; /* its connections' threads may outlive this call */
	on.lfd = socket(AF_INET, SOCK_STREAM, 0);
	on.target = th_port(&cl, 0, 50000);
	assert_true(on.lfd >= 0);
	int one = 1, off = -1;
	setsockopt(on.lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
	for (int o = th_offset_base(40); o < 1500 && off < 0; o++) {
		struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)(50000 + o)),
					.sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
		if (bind(on.lfd, (struct sockaddr *)&a, sizeof a) == 0)
			off = o;
	}
	assert_true(off >= 0);
	assert_int_equal(listen(on.lfd, 16), 0);
	pthread_t th;
	assert_int_equal(pthread_create(&th, NULL, oldnode_main, &on), 0);
	char conf[600], m[600], log[600];
	snprintf(conf, sizeof conf, "%s/old_client.conf", base);
	snprintf(m, sizeof m, "%s/oldmnt", base);
	snprintf(log, sizeof log, "%s/virgofs_old.log", base);
	FILE *f = fopen(conf, "w");
	assert_non_null(f);
	fprintf(f, "node = 1 127.0.0.1 %d\ntimeout_ms = %d\nconnect_timeout_ms = 500\n", off,
		TIMEOUT_MS);
	fclose(f);
	assert_int_equal(mkdir(m, 0755), 0);
	char d[700];
	snprintf(d, sizeof d, "%s/node1/old", m);
	pid_t pid;
	assert_int_equal(mount_at(conf, m, log, d, &pid), 0);
	assert_int_equal(list_f(d, N, 600, -1), N);
	assert_true(atomic_load(&on.refused) > 0); /* it did ask, and fell back */
	unmount_at(m);
	kill(pid, SIGTERM);
	waitpid(pid, NULL, 0);
	atomic_store(&on.stop, true);
	pthread_join(th, NULL);
	close(on.lfd);
	assert_int_equal(sh("rm -r %s/old", exp_dir[0]), 0);
}

/* A node killed under a reader: EIO within the timeout; the mount works
 * again once the node is back. */
static void node_killed_under_reader(void **state)
{
	(void)state;
	NEED_MOUNT();
	assert_int_equal(sh("head -c 8388608 /dev/zero > %s/data/zeros", exp_dir[1]), 0);
	char p[500];
	snprintf(p, sizeof p, "%s/node2/data/zeros", mnt);
	int fd = open(p, O_RDONLY);
	assert_true(fd >= 0);
	char buf[4096];
	assert_int_equal(pread(fd, buf, sizeof buf, 0), (ssize_t)sizeof buf);
	th_node_signal(&cl, 1, SIGKILL);
	int64_t t0 = th_now_ms();
	ssize_t n = pread(fd, buf, sizeof buf, 6 << 20); /* not read ahead yet */
	int e = errno;
	int64_t took = th_now_ms() - t0;
	printf("read after kill -9: %zd (%s) in %lld ms\n", n, n < 0 ? strerror(e) : "data",
	       (long long)took);
	assert_int_equal(n, -1);
	assert_int_equal(e, EIO);
	assert_true(took <= TIMEOUT_MS + 1000);
	close(fd);
	/* a new open fails fast too (the node is down) */
	t0 = th_now_ms();
	assert_int_not_equal(sh("cat %s/node2/data/zeros > /dev/null", mnt), 0);
	assert_true(th_now_ms() - t0 <= TIMEOUT_MS + 1000);
	/* back: the mount works again */
	assert_int_equal(th_node_start(&cl, 1), 0);
	int64_t end = th_now_ms() + 10000;
	int rc;
	while ((rc = sh("cmp %s/node2/data/zeros %s/data/zeros", mnt, exp_dir[1])) != 0 &&
	       th_now_ms() < end)
		usleep(100000);
	assert_int_equal(rc, 0);
}

/* A node killed under a writer (its writes spliced to a dead socket):
 * a later write or close says EIO within the timeout, never hangs, and
 * the mount writes again once the node is back. */
static void node_killed_under_writer(void **state)
{
	(void)state;
	NEED_MOUNT();
	char p[500];
	snprintf(p, sizeof p, "%s/node2/data/killed.bin", mnt);
	size_t chunk = 1u << 20;
	uint8_t *buf = calloc(1, chunk);
	assert_non_null(buf);
	int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, buf, chunk), (ssize_t)chunk);
	th_node_signal(&cl, 1, SIGKILL);
	int64_t t0 = th_now_ms();
	int failed = 0;
	for (int i = 0; i < 8 && !failed; i++)
		failed = write(fd, buf, chunk) < 0 ? errno : 0;
	int rc = close(fd);
	int e = rc < 0 ? errno : 0;
	int64_t took = th_now_ms() - t0;
	printf("writes after kill -9: %s, close: %d (%s) in %lld ms\n",
	       failed ? strerror(failed) : "sent", rc, rc ? strerror(e) : "ok", (long long)took);
	assert_true(failed == 0 || failed == EIO);
	assert_int_equal(rc, -1);
	assert_int_equal(e, EIO);
	assert_true(took <= 2 * TIMEOUT_MS + 1000);
	assert_int_equal(th_node_start(&cl, 1), 0);
	int64_t end = th_now_ms() + 10000;
	while ((rc = sh("head -c 3000000 /dev/urandom > %s/w.src && cp %s/w.src %s && cmp %s/w.src %s",
			base, base, p, base, p)) != 0 &&
	       th_now_ms() < end)
		usleep(100000);
	assert_int_equal(rc, 0);
	free(buf);
}

/* A hung node (SIGSTOP): EIO within the timeout, not a process stuck in D. */
static void hung_node_times_out(void **state)
{
	(void)state;
	NEED_MOUNT();
	th_node_signal(&cl, 0, SIGSTOP);
	int64_t t0 = th_now_ms();
	char p[500];
	snprintf(p, sizeof p, "%s/node1/never-seen-%lld", mnt, (long long)t0);
	int fd = open(p, O_RDWR | O_CREAT, 0644);
	int e = errno;
	int64_t took = th_now_ms() - t0;
	th_node_signal(&cl, 0, SIGCONT);
	printf("open on a stopped node: %d (%s) in %lld ms\n", fd, fd < 0 ? strerror(e) : "ok",
	       (long long)took);
	assert_int_equal(fd, -1);
	assert_int_equal(e, EIO);
	assert_true(took <= 2 * TIMEOUT_MS + 1000);
	/* continued: it answers again */
	int64_t end = th_now_ms() + 10000;
	int rc;
	while ((rc = sh("ls %s/node1 > /dev/null", mnt)) != 0 && th_now_ms() < end)
		usleep(100000);
	assert_int_equal(rc, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(cp_and_sha256sum),
		cmocka_unit_test(writebehind_close_to_open),
		cmocka_unit_test(writebehind_error_at_close),
		cmocka_unit_test(spliced_writes_unaligned),
		cmocka_unit_test(spliced_reads_odd),
		cmocka_unit_test(tar_rsync_sqlite),
		cmocka_unit_test(small_files_attrs),
		cmocka_unit_test(negative_lookups),
		cmocka_unit_test(readdir_attrs),
		cmocka_unit_test(readdir_pages),
		cmocka_unit_test(readdir_old_node),
		cmocka_unit_test(node_killed_under_reader),
		cmocka_unit_test(node_killed_under_writer),
		cmocka_unit_test(node_killed_mid_read),
		cmocka_unit_test(hung_node_times_out),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
