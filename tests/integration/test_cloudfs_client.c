/*
 * test_cloudfs_client.c - the client side of the cloud file system against
 * a real 2-node loopback cluster: libvirgo's virgo_open/read/write/close in
 * the notes' argument order and the path calls, the virgo cp/cat/ls/rm/
 * mkdir/mv/stat commands (copies both ways, checked byte for byte), and
 * the notes' telnet path through a real nc.  Pipelining: a large read
 * across the end of a file, threads reading one descriptor at once (as
 * FUSE readahead does), write-behind writes visible to another
 * descriptor after virgo_flush, and a write-behind failure reported;
 * virgo_close_nowait's reply dropped by the connection's next user;
 * write-behind writes whose data comes from a pipe by splice (virgofs).
 */
#include <errno.h>
#include <pthread.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "../../src/lib/client.h" /* vfs_pwrite_pipe, vfs_pread_pipe */
#include "../harness.h"
#include "virgo.h"

static struct th_cluster cl;
static char exp_dir[2][300], work[300], virgo[512];
static char out[1 << 16];

static int setup(void **state)
{
	(void)state;
	const char *base = th_tmpdir();
	static char extra[2][400];
	const char *per[2];
	for (int i = 0; i < 2; i++) {
		snprintf(exp_dir[i], sizeof exp_dir[i], "%s/export%d", base, i + 1);
		snprintf(extra[i], sizeof extra[i], "cloudfs_export_root = %s\n%s", exp_dir[i],
			 i == 0 ? "cloudfs_sendfile_loopback = yes\n" : "");
		per[i] = extra[i];
	}
	snprintf(work, sizeof work, "%s/work", base);
	if (mkdir(work, 0755) != 0)
		return -1;
	snprintf(virgo, sizeof virgo, "%s/../virgo", th_build_dir());
	if (th_cluster_start_nodes(&cl, 2, "", per, NULL) != 0)
		return -1;
	return th_cluster_client(&cl);
}

static int teardown(void **state)
{
	(void)state;
	return th_cluster_teardown(&cl);
}

static int cli(const char *a0, ...)
{
	va_list ap;
	va_start(ap, a0);
	int rc = th_cliv(virgo, cl.client_conf, out, sizeof out, 30000, a0, ap);
	va_end(ap);
	return rc;
}

static void notes_calls(void **state)
{
	(void)state;
	virgo_fd_t fd;
	/* the notes' order: virgo_open(path), virgo_write(fd, data, size, pos),
	 * virgo_read(fd, buf, size, pos), virgo_close(fd) */
	assert_int_equal(virgo_open("node2:/virgofstest.txt", &fd), 0);
	assert_int_equal(virgo_vuid_node(fd), 2);
	assert_int_equal(virgo_write(fd, "virgo file system", 17, 0), 17);
	char buf[64] = "";
	assert_int_equal(virgo_read(fd, buf, sizeof buf, 6), 11);
	assert_memory_equal(buf, "file system", 11);
	assert_int_equal(virgo_read(fd, buf, sizeof buf, 100), 0);
	assert_int_equal(virgo_close(fd), 0);
	assert_int_equal(virgo_close(fd), -EBADF);
	char p[400];
	snprintf(p, sizeof p, "%s/virgofstest.txt", exp_dir[1]);
	struct stat st;
	assert_int_equal(stat(p, &st), 0);
	assert_int_equal(st.st_size, 17);
	/* without a prefix: the first node */
	assert_int_equal(virgo_open("/first.txt", &fd), 0);
	assert_int_equal(virgo_vuid_node(fd), 1);
	/* pos < 0: the descriptor's own position */
	assert_int_equal(virgo_write(fd, "ab", 2, -1), 2);
	assert_int_equal(virgo_write(fd, "cd", 2, -1), 2);
	assert_int_equal(virgo_fsync(fd), 0);
	assert_int_equal(virgo_pread(fd, buf, 4, 0), 4);
	assert_memory_equal(buf, "abcd", 4);
	struct virgo_stat vs;
	assert_int_equal(virgo_fstat(fd, &vs), 0);
	assert_int_equal(vs.size, 4);
	assert_int_equal(vs.type, 'f');
	assert_int_equal(virgo_ftruncate(fd, 1), 0);
	assert_int_equal(virgo_close(fd), 0);
	assert_int_equal(virgo_open("node9:/x", &fd), -VIRGO_ENONODE);
	assert_int_equal(virgo_open("node1:/../x", &fd), -EACCES);
	assert_int_equal(virgo_open_ex("node1:/nope", O_RDONLY, 0, &fd), -ENOENT);
	assert_int_equal(virgo_open_ex("node1:/x", O_RDONLY | O_DIRECT, 0, &fd), -EINVAL);
}

static void large_pread_pwrite(void **state)
{
	(void)state;
	/* 5 MiB + 3: several chunks each way, an odd tail */
	size_t n = (5u << 20) + 3;
	uint8_t *a = malloc(n), *b = malloc(n);
	for (size_t i = 0; i < n; i++)
		a[i] = (uint8_t)(i * 131 + (i >> 11));
	virgo_fd_t fd;
	assert_int_equal(virgo_open_ex("node1:/large.bin", O_RDWR | O_CREAT | O_TRUNC, 0600, &fd), 0);
	assert_int_equal(virgo_pwrite(fd, a, n, 1000), (ssize_t)n);
	memset(b, 0xee, n);
	assert_int_equal(virgo_pread(fd, b, n, 1000), (ssize_t)n);
	assert_memory_equal(a, b, n);
	assert_int_equal(virgo_pread(fd, b, 1000, 0), 1000);
	for (int i = 0; i < 1000; i++)
		assert_int_equal(b[i], 0); /* the hole */
	assert_int_equal(virgo_close(fd), 0);
	struct virgo_stat st;
	assert_int_equal(virgo_stat("node1:/large.bin", &st), 0);
	assert_int_equal(st.size, n + 1000);
	assert_int_equal(st.mode, 0600);
	free(a);
	free(b);
}

static void path_calls(void **state)
{
	(void)state;
	assert_int_equal(virgo_mkdir("node2:/d", 0750), 0);
	assert_int_equal(virgo_mkdir("node2:/d", 0750), -EEXIST);
	virgo_fd_t fd;
	assert_int_equal(virgo_open("node2:/d/a b", &fd), 0);
	assert_int_equal(virgo_close(fd), 0);
	assert_int_equal(virgo_rename("node2:/d/a b", "node2:/d/c"), 0);
	assert_int_equal(virgo_rename("node2:/d/c", "node1:/c"), -EXDEV);
	assert_int_equal(virgo_symlink("c", "node2:/d/l"), 0);
	char t[64];
	assert_int_equal(virgo_readlink("node2:/d/l", t, sizeof t), 1);
	assert_string_equal(t, "c");
	struct virgo_stat st;
	assert_int_equal(virgo_lstat("node2:/d/l", &st), 0);
	assert_int_equal(st.type, 'l');
	assert_int_equal(virgo_chmod("node2:/d/c", 0600), 0);
	assert_int_equal(virgo_utimens("node2:/d/c", VIRGO_TIME_OMIT, 1234567890123456789LL), 0);
	assert_int_equal(virgo_stat("node2:/d/l", &st), 0);
	assert_int_equal(st.mode, 0600);
	assert_true(st.mtime_ns == 1234567890123456789LL);
	assert_int_equal(virgo_truncate("node2:/d/c", 9), 0);
	uint64_t cursor = 0;
	int seen = 0;
	do {
		struct virgo_dirent *d;
		size_t n;
		assert_int_equal(virgo_readdir("node2:/d", &cursor, 1, &d, &n), 0);
		for (size_t i = 0; i < n; i++) {
			if (strcmp(d[i].name, "c") == 0) {
				assert_int_equal(d[i].size, 9);
				seen++;
			}
			if (strcmp(d[i].name, "l") == 0)
				seen++;
		}
		free(d);
	} while (cursor);
	assert_int_equal(seen, 2);
	struct virgo_statfs sf;
	assert_int_equal(virgo_statfs("node2:/", &sf), 0);
	assert_true(sf.bsize > 0 && sf.blocks > 0);
	assert_int_equal(virgo_rmdir("node2:/d"), -ENOTEMPTY);
	assert_int_equal(virgo_unlink("node2:/d/l"), 0);
	assert_int_equal(virgo_unlink("node2:/d/c"), 0);
	assert_int_equal(virgo_rmdir("node2:/d"), 0);
	assert_int_equal(virgo_stat("node2:/d", &st), -ENOENT);
}

static void write_local(const char *name, size_t n, uint64_t seed)
{
	char p[400];
	snprintf(p, sizeof p, "%s/%s", work, name);
	FILE *f = fopen(p, "w");
	assert_non_null(f);
	uint64_t x = seed | 1;
	for (size_t i = 0; i < n; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		fputc((int)(x & 0xff), f);
	}
	fclose(f);
}

static bool same_files(const char *a, const char *b)
{
	FILE *f = fopen(a, "r"), *g = fopen(b, "r");
	bool same = f && g;
	while (same) {
		int x = fgetc(f), y = fgetc(g);
		if (x != y)
			same = false;
		if (x == EOF || y == EOF)
			break;
	}
	if (f)
		fclose(f);
	if (g)
		fclose(g);
	return same;
}

static void cli_copies(void **state)
{
	(void)state;
	static const size_t sizes[] = {0, 1, (3u << 20) + 7};
	for (int i = 0; i < 3; i++) {
		char name[32], src[400], remote[64], back[400];
		snprintf(name, sizeof name, "f%d.bin", i);
		write_local(name, sizes[i], 77 + (uint64_t)i);
		snprintf(src, sizeof src, "%s/%s", work, name);
		snprintf(remote, sizeof remote, "node2:/in/%s", name);
		snprintf(back, sizeof back, "%s/back-%s", work, name);
		if (i == 0)
			assert_int_equal(cli("mkdir", "-p", "node2:/in", NULL), 0);
		assert_int_equal(cli("cp", src, remote, NULL), 0);
		assert_int_equal(cli("cp", remote, back, NULL), 0);
		assert_true(same_files(src, back));
		char on_disk[400];
		snprintf(on_disk, sizeof on_disk, "%s/in/%s", exp_dir[1], name);
		assert_true(same_files(src, on_disk));
	}
	/* node to node, into a directory */
	assert_int_equal(cli("mkdir", "node1:/copies", NULL), 0);
	assert_int_equal(cli("cp", "node2:/in/f2.bin", "node1:/copies/", NULL), 0);
	char a[400], b[400];
	snprintf(a, sizeof a, "%s/f2.bin", work);
	snprintf(b, sizeof b, "%s/copies/f2.bin", exp_dir[0]);
	assert_true(same_files(a, b));
	/* --resume: a cut copy completes */
	assert_int_equal(truncate(b, 1000), 0);
	assert_int_equal(cli("cp", "--resume", a, "node1:/copies/f2.bin", NULL), 0);
	assert_true(same_files(a, b));
	assert_int_equal(cli("ls", "-l", "node2:/in", NULL), 0);
	assert_non_null(strstr(out, "-rw-r--r--"));
	assert_non_null(strstr(out, " f2.bin\n"));
	assert_non_null(strstr(out, "      3145735 "));
	assert_int_equal(cli("ls", "node2:/", NULL), 0);
	assert_non_null(strstr(out, "in/\n"));
	assert_int_equal(cli("stat", "node2:/in/f1.bin", NULL), 0);
	assert_non_null(strstr(out, "Size: 1 "));
	assert_int_equal(cli("mv", "node2:/in/f1.bin", "node2:/in/g1.bin", NULL), 0);
	assert_int_equal(cli("mv", "node2:/in/g1.bin", "node1:/g1.bin", NULL), 1);
	assert_int_equal(cli("rm", "node2:/in/g1.bin", NULL), 0);
	assert_int_equal(cli("rm", "node2:/in/g1.bin", NULL), 1);
	assert_non_null(strstr(out, "no such file"));
	assert_int_equal(cli("cat", "node2:/virgofstest.txt", NULL), 0);
	assert_string_equal(out, "virgo file system");
	assert_int_equal(cli("cat", "node2:/none", NULL), 1);
	assert_int_equal(cli("cp", "node2:/in", "/tmp/x", NULL), 1); /* a directory */
	assert_int_equal(cli("cp", "onlyone", NULL), 2);
	assert_int_equal(cli("rm", "local/path", NULL), 2);
}

/* virgo cp to a node sends its chunks write-behind: a write the node
 * refuses mid-copy (a full file system: a 2 MiB tmpfs in node2's export,
 * which needs root; skipped otherwise) fails the copy, and what is left
 * at the destination is a prefix of the source with no hole where the
 * refused chunk was, so --resume may trust it. */
static void cli_copy_write_refused(void **state)
{
	(void)state;
	char dir[400], src[400], dst[400];
	snprintf(dir, sizeof dir, "%s/small", exp_dir[1]);
	assert_int_equal(mkdir(dir, 0755), 0);
	if (geteuid() != 0 || mount("tmpfs", dir, "tmpfs", 0, "size=2m") != 0) {
		rmdir(dir);
		skip();
	}
	write_local("big6.bin", 6u << 20, 99);
	snprintf(src, sizeof src, "%s/big6.bin", work);
	snprintf(dst, sizeof dst, "%s/big6.bin", dir);
	int rc = cli("cp", src, "node2:/small/big6.bin", NULL);
	struct stat st;
	int dst_rc = stat(dst, &st);
	bool prefix = false;
	if (dst_rc == 0) {
		FILE *f = fopen(src, "r"), *g = fopen(dst, "r");
		prefix = f && g;
		for (off_t i = 0; prefix && i < st.st_size; i++)
			prefix = fgetc(f) == fgetc(g);
		if (f)
			fclose(f);
		if (g)
			fclose(g);
	}
	assert_int_equal(umount2(dir, MNT_DETACH), 0);
	assert_int_equal(rc, 1);
	if (!strstr(out, "no space"))
		fail_msg("cp said: %s", out);
	assert_int_equal(dst_rc, 0);
	assert_true(st.st_size <= (off_t)(2u << 20));
	assert_true(prefix);
}

/* A node restarted under an open file: positioned calls reopen it and go
 * on; writes acknowledged before the break may be lost, which the next
 * fsync reports (once).  A file read at its own position cannot resume. */
static void reopen_after_restart(void **state)
{
	(void)state;
	virgo_fd_t fd, sq;
	assert_int_equal(virgo_open_ex("node2:/re.txt", O_RDWR | O_CREAT | O_TRUNC, 0644, &fd), 0);
	assert_int_equal(virgo_pwrite(fd, "abc", 3, 0), 3);
	assert_int_equal(virgo_fsync(fd), 0);
	assert_int_equal(virgo_pwrite(fd, "def", 3, 3), 3); /* not fsync'd */
	assert_int_equal(virgo_open_ex("node2:/re.txt", O_RDONLY, 0, &sq), 0);
	char buf[16];
	assert_int_equal(virgo_read(sq, buf, 1, -1), 1);
	th_node_signal(&cl, 1, SIGKILL);
	assert_int_equal(th_node_start(&cl, 1), 0);
	memset(buf, 0, sizeof buf);
	assert_int_equal(virgo_pread(fd, buf, sizeof buf, 0), 6); /* reopened */
	assert_memory_equal(buf, "abcdef", 6); /* a process crash keeps the page cache */
	assert_int_equal(virgo_fsync(fd), -EIO); /* "def" was at risk */
	assert_int_equal(virgo_fsync(fd), 0);
	struct virgo_stat st;
	assert_int_equal(virgo_fstat(fd, &st), 0);
	assert_int_equal(st.size, 6);
	assert_int_equal(virgo_close(fd), 0);
	assert_true(virgo_read(sq, buf, 1, -1) < 0); /* its position is gone */
	virgo_close(sq);
}

/* printf 'virgo_cloud_open(/virgofstest.txt)\n' | nc 127.0.0.1 50000 */
static void notes_nc_path(void **state)
{
	(void)state;
	if (access("/usr/bin/nc", X_OK) != 0 && access("/bin/nc", X_OK) != 0)
		skip();
	char sh[512];
	snprintf(sh, sizeof sh, "printf 'virgo_cloud_open(/virgofstest.txt)\\n' | nc 127.0.0.1 %d",
		 th_port(&cl, 0, 50000));
	const char *av[] = {"/bin/sh", "-c", sh, NULL};
	/* returns (the node closes after the reply) with a bare decimal */
	assert_int_equal(th_run(av, out, sizeof out, 10000), 0);
	char *end;
	unsigned long long fd = strtoull(out, &end, 10);
	assert_true(fd >> 48 == 1);
	assert_string_equal(end, "\r\n");
	snprintf(sh, sizeof sh,
		 "printf 'virgo_cloud_write(%llu,from nc,7,0)\\n' | nc 127.0.0.1 %d && "
		 "printf 'virgo_cloud_read(%llu,none,7,0)\\n' | nc 127.0.0.1 %d && "
		 "printf 'virgo_cloud_close(%llu)\\n' | nc 127.0.0.1 %d",
		 fd, th_port(&cl, 0, 50000), fd, th_port(&cl, 0, 50000), fd, th_port(&cl, 0, 50000));
	assert_int_equal(th_run(av, out, sizeof out, 10000), 0);
	assert_string_equal(out, "OK 7\r\nfrom nc\r\nOK\r\n");
}

static void pattern(uint8_t *p, size_t n, uint64_t off)
{
	for (size_t i = 0; i < n; i++)
		p[i] = (uint8_t)((off + i) * 131 + ((off + i) >> 11));
}

static void pipelined_read_eof(void **state)
{
	(void)state;
	size_t n = (3u << 20) + 12345;
	uint8_t *a = malloc(n), *b = malloc(8u << 20);
	pattern(a, n, 0);
	virgo_fd_t fd;
	assert_int_equal(virgo_open_ex("node2:/eof.bin", O_RDWR | O_CREAT | O_TRUNC, 0644, &fd), 0);
	assert_int_equal(virgo_pwrite(fd, a, n, 0), (ssize_t)n);
	/* 8 MiB asked, a window of chunks in flight, the file ends in the 4th */
	assert_int_equal(virgo_pread(fd, b, 8u << 20, 0), (ssize_t)n);
	assert_memory_equal(a, b, n);
	assert_int_equal(virgo_pread(fd, b, 8u << 20, n - 7), 7);
	assert_memory_equal(b, a + n - 7, 7);
	assert_int_equal(virgo_pread(fd, b, 8u << 20, n), 0);
	assert_int_equal(virgo_pread(fd, b, 3u << 20, n + (1u << 30)), 0);
	assert_int_equal(virgo_close(fd), 0);
	free(a);
	free(b);
}

struct reader {
	virgo_fd_t fd;
	int id;
	int bad;
};

static void *reader_main(void *arg)
{
	struct reader *r = arg;
	uint8_t *buf = malloc(1u << 20), *want = malloc(1u << 20);
	for (int round = 0; round < 4; round++)
		for (int c = r->id; c < 16; c += 4) {
			uint64_t off = (uint64_t)c << 20;
			if (virgo_pread(r->fd, buf, 1u << 20, off) != (1 << 20)) {
				r->bad++;
				continue;
			}
			pattern(want, 1u << 20, off);
			if (memcmp(buf, want, 1u << 20) != 0)
				r->bad++;
		}
	free(buf);
	free(want);
	return NULL;
}

static void threads_share_descriptor(void **state)
{
	(void)state;
	size_t n = 16u << 20;
	uint8_t *a = malloc(n);
	pattern(a, n, 0);
	virgo_fd_t fd;
	assert_int_equal(virgo_open_ex("node1:/shared.bin", O_RDWR | O_CREAT | O_TRUNC, 0644, &fd), 0);
	assert_int_equal(virgo_pwrite(fd, a, n, 0), (ssize_t)n);
	free(a);
	/* four threads' requests interleave on the descriptor's one
	 * connection; each gets its own reply */
	struct reader r[4];
	pthread_t th[4];
	for (int i = 0; i < 4; i++) {
		r[i] = (struct reader){fd, i, 0};
		assert_int_equal(pthread_create(&th[i], NULL, reader_main, &r[i]), 0);
	}
	for (int i = 0; i < 4; i++) {
		pthread_join(th[i], NULL);
		assert_int_equal(r[i].bad, 0);
	}
	assert_int_equal(virgo_close(fd), 0);
}

static void writebehind_visible_after_flush(void **state)
{
	(void)state;
	size_t chunk = 1u << 20;
	uint8_t *a = malloc(6 * chunk), *b = malloc(6 * chunk);
	pattern(a, 6 * chunk, 99);
	virgo_fd_t w, r;
	struct virgo_stat st;
	assert_int_equal(virgo_open_stat("node2:/wb.bin", O_WRONLY | O_CREAT | O_TRUNC, 0644, &w, &st), 0);
	assert_int_equal(st.type, 'f');
	assert_int_equal(st.size, 0); /* truncated by this open */
	assert_int_equal(virgo_writebehind(w, 4), 0);
	for (int i = 0; i < 6; i++) /* each returns once sent */
		assert_int_equal(virgo_pwrite(w, a + i * chunk, chunk, i * chunk), (ssize_t)chunk);
	assert_int_equal(virgo_fstat(w, &st), 0); /* behind the writes on their connection */
	assert_int_equal(st.size, 6 * chunk);
	assert_int_equal(virgo_pwrite(w, "tail", 4, 6 * chunk), 4);
	/* the last write's reply carries the file's attributes */
	struct virgo_stat fs;
	assert_int_equal(virgo_flush_stat(w, &fs), 0);
	assert_int_equal(fs.type, 'f');
	assert_int_equal(fs.size, 6 * chunk + 4);
	assert_int_equal(virgo_fstat(w, &st), 0);
	assert_true(st.mtime_ns == fs.mtime_ns && st.ino == fs.ino && st.size == fs.size);
	assert_int_equal(virgo_flush_stat(w, &fs), 0); /* nothing written since */
	assert_int_equal(fs.type, 0);
	assert_int_equal(virgo_flush(w), 0);
	/* acknowledged: any other descriptor reads it; an open that
	 * returns the attributes in its own reply */
	struct virgo_stat os;
	assert_int_equal(virgo_open_stat("node2:/wb.bin", O_RDONLY, 0, &r, &os), 0);
	assert_int_equal(os.type, 'f');
	assert_int_equal(os.size, 6 * chunk + 4);
	assert_true(os.ino == st.ino && os.mtime_ns == st.mtime_ns);
	assert_int_equal(virgo_pread(r, b, 6 * chunk, 0), (ssize_t)(6 * chunk));
	assert_memory_equal(a, b, 6 * chunk);
	assert_int_equal(virgo_pread(r, b, 16, 6 * chunk), 4);
	assert_memory_equal(b, "tail", 4);
	assert_int_equal(virgo_fsync(w), 0);
	assert_int_equal(virgo_close(w), 0);
	/* a write the node refuses (a read-only descriptor): sent, then
	 * reported by flush, by the next write, and gone after that */
	assert_int_equal(virgo_writebehind(r, 4), 0);
	assert_int_equal(virgo_pwrite(r, "x", 1, 0), 1);
	assert_int_equal(virgo_flush(r), -EBADF);
	assert_int_equal(virgo_pwrite(r, "x", 1, 0), -EBADF);
	assert_int_equal(virgo_flush(r), 0);
	assert_int_equal(virgo_close(r), 0);
	assert_int_equal(virgo_writebehind(r, 4), -EBADF);
	free(a);
	free(b);
}

/* node i's cloudfs "STAT open_fds" (a connection of its own) */
static long open_fds(int i)
{
	int fd = th_connect(th_port(&cl, i, 50000));
	assert_true(fd >= 0);
	assert_int_equal(th_send(fd, "stats\r\n", 7), 0);
	char buf[4096];
	size_t got = 0;
	while (got < sizeof buf - 1 && !strstr(buf, "END\r\n")) {
		ssize_t n = read(fd, buf + got, sizeof buf - 1 - got);
		assert_true(n > 0);
		got += (size_t)n;
		buf[got] = '\0';
	}
	close(fd);
	const char *p = strstr(buf, "STAT open_fds ");
	assert_non_null(p);
	return strtol(p + 14, NULL, 10);
}

/* virgo_close_nowait (virgofs's release): returns once the close is sent,
 * with the writes' errors as virgo_close; the connection's next user
 * (the next open, on the spare connection) drops the close's reply and
 * gets its own; the node frees every descriptor. */
static void close_nowait(void **state)
{
	(void)state;
	long before = open_fds(1);
	char path[64], buf[64];
	for (int i = 0; i < 20; i++) {
		virgo_fd_t w;
		snprintf(path, sizeof path, "node2:/nowait%d", i);
		assert_int_equal(virgo_open_ex(path, O_WRONLY | O_CREAT | O_TRUNC, 0644, &w), 0);
		assert_int_equal(virgo_writebehind(w, 4), 0);
		int n = snprintf(buf, sizeof buf, "file %d", i);
		assert_int_equal(virgo_pwrite(w, buf, (size_t)n, 0), n);
		assert_int_equal(virgo_close_nowait(w), 0);
	}
	for (int i = 0; i < 20; i++) {
		virgo_fd_t r;
		snprintf(path, sizeof path, "node2:/nowait%d", i);
		assert_int_equal(virgo_open_ex(path, O_RDONLY, 0, &r), 0);
		char want[32];
		int n = snprintf(want, sizeof want, "file %d", i);
		assert_int_equal(virgo_pread(r, buf, sizeof buf, 0), n);
		assert_memory_equal(buf, want, (size_t)n);
		assert_int_equal(virgo_close_nowait(r), 0);
	}
	/* a write the node refuses is close's error, waited for or not */
	virgo_fd_t r;
	assert_int_equal(virgo_open_ex("node2:/nowait0", O_RDONLY, 0, &r), 0);
	assert_int_equal(virgo_writebehind(r, 4), 0);
	assert_int_equal(virgo_pwrite(r, "x", 1, 0), 1);
	assert_int_equal(virgo_close_nowait(r), -EBADF);
	assert_int_equal(virgo_pread(r, buf, 1, 0), -EBADF); /* closed here at once */
	/* ... and on the node a moment later */
	int64_t deadline = th_now_ms() + 5000;
	while (open_fds(1) != before && th_now_ms() < deadline)
		usleep(10000);
	assert_int_equal(open_fds(1), before);
}

/* The node dies with write-behind writes in flight: flush and close say
 * EIO (within the client timeout), and the node serves again after its
 * restart. */
static void writebehind_node_killed(void **state)
{
	(void)state;
	size_t chunk = 1u << 20;
	uint8_t *a = calloc(1, chunk), *big = malloc(3 * chunk), *back = malloc(3 * chunk);
	pattern(big, 3 * chunk, 7);
	virgo_fd_t w, s;
	assert_int_equal(virgo_open_ex("node2:/wbs.bin", O_RDWR | O_CREAT | O_TRUNC, 0644, &s), 0);
	assert_int_equal(virgo_open_ex("node2:/wbk.bin", O_WRONLY | O_CREAT | O_TRUNC, 0644, &w), 0);
	assert_int_equal(virgo_writebehind(w, 4), 0);
	for (int i = 0; i < 3; i++)
		assert_int_equal(virgo_pwrite(w, a, chunk, (uint64_t)i * chunk), (ssize_t)chunk);
	th_node_signal(&cl, 1, SIGKILL);
	int64_t t0 = th_now_ms();
	int rc = virgo_flush(w);
	assert_true(rc == -EIO || rc == 0); /* 0: all three were answered before the kill */
	assert_int_equal(virgo_close(w), -EIO); /* acknowledged, never fsync'd: at risk */
	assert_true(th_now_ms() - t0 < 15000);
	assert_int_equal(th_node_start(&cl, 1), 0);
	assert_int_equal(virgo_open_ex("node2:/wbk.bin", O_RDONLY, 0, &w), 0);
	assert_int_equal(virgo_close(w), 0);
	/* a descriptor idle across the restart: a pipelined write finds its
	 * connection dead, reopens it and goes on */
	assert_int_equal(virgo_pwrite(s, big, 3 * chunk, 0), (ssize_t)(3 * chunk));
	assert_int_equal(virgo_pread(s, back, 3 * chunk, 0), (ssize_t)(3 * chunk));
	assert_memory_equal(big, back, 3 * chunk);
	assert_int_equal(virgo_close(s), 0);
	free(big);
	free(back);
	free(a);
}

/* vfs_pwrite_pipe (virgofs's spliced writes): a write-behind descriptor
 * takes its data from a pipe, at unaligned offsets, and reads back
 * byte for byte; without write-behind, or over 1 MiB, it declines
 * (-EOPNOTSUPP) and leaves the pipe's bytes for the caller. */
static void writebehind_from_pipe(void **state)
{
	(void)state;
	size_t n = (1u << 20) - 4096, total = n + 70001 + 300000;
	uint8_t *a = malloc(total), *b = malloc(total);
	pattern(a, total, 5);
	int p[2];
	assert_int_equal(pipe(p), 0);
	assert_true(fcntl(p[0], F_SETPIPE_SZ, 1 << 20) >= (int)n);
	virgo_fd_t w, r;
	assert_int_equal(virgo_open_ex("node1:/pipe.bin", O_RDWR | O_CREAT | O_TRUNC, 0644, &w), 0);
	/* not in write-behind mode: declined, the pipe untouched */
	assert_int_equal(write(p[1], a, 70001), 70001);
	assert_int_equal(vfs_pwrite_pipe(w, p[0], 70001, 0), -EOPNOTSUPP);
	assert_int_equal(virgo_writebehind(w, 4), 0);
	assert_int_equal(vfs_pwrite_pipe(w, p[0], 2u << 20, 0), -EOPNOTSUPP);
	/* the same 70001 bytes, now taken at an odd offset */
	assert_int_equal(vfs_pwrite_pipe(w, p[0], 70001, 7), 70001);
	memmove(a + 7, a, 70001); /* the file: a[0..7) unwritten (zeros) */
	memset(a, 0, 7);
	/* a request one page short of 1 MiB (virgofs's size without
	 * CAP_SYS_RESOURCE) after it, and one from memory between */
	assert_int_equal(virgo_pwrite(w, a + 70008, 300000 - 7, 70008), (ssize_t)(300000 - 7));
	assert_int_equal(write(p[1], a + 370001, n), (ssize_t)n);
	assert_int_equal(vfs_pwrite_pipe(w, p[0], n, 370001), (ssize_t)n);
	assert_int_equal(virgo_flush(w), 0);
	assert_int_equal(virgo_open_ex("node1:/pipe.bin", O_RDONLY, 0, &r), 0);
	assert_int_equal(virgo_pread(r, b, total + 10, 0), (ssize_t)total);
	assert_memory_equal(a, b, total);
	assert_int_equal(virgo_close(r), 0);
	assert_int_equal(virgo_close(w), 0);
	/* a closed descriptor */
	assert_int_equal(vfs_pwrite_pipe(w, p[0], 1, 0), -EBADF);
	close(p[0]);
	close(p[1]);
	free(a);
	free(b);
}

/* Drains the pipe p (non-blocking) into dst: the bytes it held. */
static size_t pipe_drain(int p, uint8_t *dst, size_t cap)
{
	size_t got = 0;
	ssize_t r;
	while (got < cap && (r = read(p, dst + got, cap - got)) > 0)
		got += (size_t)r;
	return got;
}

/* vfs_pread_pipe (virgofs's spliced reads): a reply's payload lands in
 * the pipe exactly (odd offsets and sizes, several reads in a row on one
 * connection, the short read at the end of the file), byte for byte the
 * node's file; with a pipe too small for it (64 KiB: fewer slots than the
 * payload has pieces) it comes back in memory, the pipe left empty; a
 * closed descriptor is EBADF. */
static void pread_into_pipe(void **state)
{
	(void)state;
	size_t total = (3u << 20) + 12345;
	uint8_t *a = malloc(total), *b = malloc(1u << 20);
	pattern(a, total, 9);
	virgo_fd_t w, r;
	assert_int_equal(virgo_open_ex("node1:/rpipe.bin", O_RDWR | O_CREAT | O_TRUNC, 0644, &w), 0);
	assert_int_equal(virgo_pwrite(w, a, total, 0), (ssize_t)total);
	assert_int_equal(virgo_close(w), 0);
	assert_int_equal(virgo_open_ex("node1:/rpipe.bin", O_RDONLY, 0, &r), 0);
	int p[2];
	assert_int_equal(pipe2(p, O_NONBLOCK), 0);
	assert_true(fcntl(p[0], F_SETPIPE_SZ, 1 << 20) >= 1 << 20);
	const struct {
		uint64_t off;
		size_t len;
	} rd[] = {
		{0, (1u << 20) - 16384}, /* virgofs's request without CAP_SYS_RESOURCE */
		{1, 65536},
		{77777, 999999},
		{(3u << 20) - 5, 1u << 20}, /* past the end: 12350 bytes */
		{total, 4096},		   /* at the end: nothing */
	};
	for (size_t i = 0; i < sizeof rd / sizeof rd[0]; i++) {
		void *mem = (void *)1;
		ssize_t n = vfs_pread_pipe(r, p, rd[i].len, rd[i].off, &mem);
		size_t want = rd[i].off + rd[i].len <= total ? rd[i].len : total - rd[i].off;
		assert_int_equal(n, (ssize_t)want);
		if (mem) { /* the pipe filled up: allowed, then all in memory */
			assert_memory_equal(mem, a + rd[i].off, want);
			free(mem);
			assert_int_equal(pipe_drain(p[0], b, 1u << 20), 0);
			continue;
		}
		assert_int_equal(pipe_drain(p[0], b, 1u << 20), want);
		assert_memory_equal(b, a + rd[i].off, want);
	}
	/* a small pipe: the payload is in memory and the pipe empty */
	int q[2];
	assert_int_equal(pipe2(q, O_NONBLOCK), 0);
	assert_true(fcntl(q[0], F_SETPIPE_SZ, 65536) >= 0);
	void *mem = NULL;
	assert_int_equal(vfs_pread_pipe(r, q, 1u << 20, 3, &mem), 1 << 20);
	assert_non_null(mem);
	assert_memory_equal(mem, a + 3, 1u << 20);
	free(mem);
	assert_int_equal(pipe_drain(q[0], b, 1u << 20), 0);
	/* the connection still reads in order after it */
	assert_int_equal(virgo_pread(r, b, 100, 5), 100);
	assert_memory_equal(b, a + 5, 100);
	/* over 1 MiB: declined */
	assert_int_equal(vfs_pread_pipe(r, p, (1u << 20) + 1, 0, &mem), -EOPNOTSUPP);
	assert_int_equal(virgo_close(r), 0);
	assert_int_equal(vfs_pread_pipe(r, p, 4096, 0, &mem), -EBADF);
	close(p[0]);
	close(p[1]);
	close(q[0]);
	close(q[1]);
	free(a);
	free(b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(notes_calls), cmocka_unit_test(large_pread_pwrite),
		cmocka_unit_test(path_calls),  cmocka_unit_test(cli_copies),
		cmocka_unit_test(cli_copy_write_refused),
		cmocka_unit_test(reopen_after_restart), cmocka_unit_test(notes_nc_path),
		cmocka_unit_test(pipelined_read_eof), cmocka_unit_test(threads_share_descriptor),
		cmocka_unit_test(writebehind_visible_after_flush),
		cmocka_unit_test(close_nowait),
		cmocka_unit_test(writebehind_node_killed),
		cmocka_unit_test(writebehind_from_pipe),
		cmocka_unit_test(pread_into_pipe),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
