/*
 * test_cloudfs.c - the cloud file system against real virgod nodes: the
 * notes' nc path, round trips of empty, 1-byte and 100 MiB files, pread/
 * pwrite at offsets, every way out of the export refused (.., absolute
 * paths, symlinks out, a symlink swapped in during the calls), a
 * read-only export, descriptors freed when their connection goes, the
 * per-connection cap, call-syntax descriptors expiring, paged readdir,
 * the metadata calls, and concurrent writers on three nodes.  Large
 * preads on plain TCP go out with sendfile: their bytes and SHA-256, a
 * read across the end of the file, the call syntax's bare bytes, and a
 * pipelined write behind a read that is still being sent.
 *
 * Nodes 1-3 export their own directories; node 4 exports node 1's
 * directory read-only.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <openssl/evp.h>

#include "../harness.h"
#include "virgo.h"

#define CFS_BASE 50000
#define NNODES 4

static struct th_cluster cl;
static char exp_dir[NNODES][300];
static char outside[300];

/* ---- a small buffered client ------------------------------------------ */
struct cli {
	int fd;
	size_t off, len;
	uint8_t buf[65536];
};

static struct cli *cli_open(int node)
{
	struct cli *k = calloc(1, sizeof *k);
	assert_non_null(k);
	k->fd = th_connect(th_port(&cl, node, CFS_BASE));
	assert_true(k->fd >= 0);
	return k;
}

static void cli_close(struct cli *k)
{
	close(k->fd);
	free(k);
}

/* Reads more bytes; 0 at EOF, -1 on timeout. */
static int cli_fill(struct cli *k)
{
	if (k->off == k->len)
		k->off = k->len = 0;
	if (k->len == sizeof k->buf) {
		memmove(k->buf, k->buf + k->off, k->len - k->off);
		k->len -= k->off;
		k->off = 0;
	}
	struct pollfd p = {k->fd, POLLIN, 0};
	if (poll(&p, 1, 20000) != 1)
		return -1;
	ssize_t n = read(k->fd, k->buf + k->len, sizeof k->buf - k->len);
	if (n <= 0)
		return 0;
	k->len += (size_t)n;
	return 1;
}

/* One CRLF-ended line into out (NUL-terminated, no CRLF); -1 at EOF. */
static int cli_line(struct cli *k, char *out, size_t cap)
{
	for (;;) {
		uint8_t *nl = memchr(k->buf + k->off, '\n', k->len - k->off);
		if (nl) {
			size_t n = (size_t)(nl - (k->buf + k->off));
			size_t c = n && nl[-1] == '\r' ? n - 1 : n;
			if (c >= cap)
				c = cap - 1;
			memcpy(out, k->buf + k->off, c);
			out[c] = '\0';
			k->off += n + 1;
			return 0;
		}
		if (cli_fill(k) <= 0)
			return -1;
	}
}

static int cli_bytes(struct cli *k, void *dst, size_t n)
{
	uint8_t *d = dst;
	while (n) {
		if (k->off == k->len && cli_fill(k) <= 0)
			return -1;
		size_t c = k->len - k->off < n ? k->len - k->off : n;
		memcpy(d, k->buf + k->off, c);
		k->off += c;
		d += c;
		n -= c;
	}
	return 0;
}

static void cli_send(struct cli *k, const char *fmt, ...)
{
	char line[9000];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(line, sizeof line, fmt, ap);
	va_end(ap);
	assert_true(n > 0 && (size_t)n < sizeof line);
	assert_int_equal(th_send(k->fd, line, (size_t)n), 0);
}

/* Sends a request line, returns its one-line reply in a static buffer. */
static const char *cmd(struct cli *k, const char *fmt, ...)
{
	static __thread char reply[1024]; /* per thread: concurrent_writers runs three clients at once */
	char line[9000];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(line, sizeof line, fmt, ap);
	va_end(ap);
	assert_true(n > 0 && (size_t)n + 2 < sizeof line);
	memcpy(line + n, "\r\n", 2);
	assert_int_equal(th_send(k->fd, line, (size_t)n + 2), 0);
	if (cli_line(k, reply, sizeof reply) != 0)
		snprintf(reply, sizeof reply, "<eof>");
	return reply;
}

static uint64_t open_fd(struct cli *k, const char *path, const char *flags)
{
	const char *r = cmd(k, "open %s %s", path, flags);
	if (strncmp(r, "OK ", 3) != 0)
		fail_msg("open %s %s: %s", path, flags, r);
	return strtoull(r + 3, NULL, 16);
}

static void pwrite_all(struct cli *k, uint64_t fd, const void *data, size_t n, uint64_t off)
{
	char hdr[128];
	int h = snprintf(hdr, sizeof hdr, "pwrite %llx %zu %llu\r\n", (unsigned long long)fd, n,
			 (unsigned long long)off);
	assert_int_equal(th_send(k->fd, hdr, (size_t)h), 0);
	if (n)
		assert_int_equal(th_send(k->fd, data, n), 0);
	assert_int_equal(th_send(k->fd, "\r\n", 2), 0);
	char reply[256];
	assert_int_equal(cli_line(k, reply, sizeof reply), 0);
	char want[64];
	snprintf(want, sizeof want, "OK %zu", n);
	assert_string_equal(reply, want);
}

/* pread: the bytes read (<= n) into dst, or -1 with the reply line kept. */
static long pread_some(struct cli *k, uint64_t fd, void *dst, size_t n, uint64_t off,
		       char *err, size_t errcap)
{
	cli_send(k, "pread %llx %zu %llu\r\n", (unsigned long long)fd, n, (unsigned long long)off);
	char reply[256];
	assert_int_equal(cli_line(k, reply, sizeof reply), 0);
	if (strncmp(reply, "VALUE ", 6) != 0) {
		if (err)
			snprintf(err, errcap, "%s", reply);
		return -1;
	}
	size_t got = strtoull(reply + 6, NULL, 10);
	assert_true(got <= n);
	assert_int_equal(cli_bytes(k, dst, got), 0);
	char crlf[2];
	assert_int_equal(cli_bytes(k, crlf, 2), 0);
	assert_memory_equal(crlf, "\r\n", 2);
	return (long)got;
}

static uint64_t stat_value(int node, const char *name)
{
	struct cli *k = cli_open(node);
	cli_send(k, "stats\r\n");
	char line[512];
	uint64_t v = UINT64_MAX;
	size_t nl = strlen(name);
	while (cli_line(k, line, sizeof line) == 0 && strcmp(line, "END") != 0)
		if (strncmp(line + 5, name, nl) == 0 && line[5 + nl] == ' ')
			v = strtoull(line + 6 + nl, NULL, 10);
	cli_close(k);
	return v;
}

static void fill_pattern(uint8_t *p, size_t n, uint64_t seed)
{
	uint64_t x = seed * 0x9e3779b97f4a7c15ULL + 1;
	for (size_t i = 0; i < n; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		p[i] = (uint8_t)x;
	}
}

static void write_file(const char *dir, const char *name, const char *text)
{
	char p[600];
	snprintf(p, sizeof p, "%s/%s", dir, name);
	FILE *f = fopen(p, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
}

/* ---- setup ------------------------------------------------------------ */
static int setup(void **state)
{
	(void)state;
	const char *base = th_tmpdir();
	static char extra[NNODES][700];
	const char *per[NNODES];
	for (int i = 0; i < NNODES; i++) {
		snprintf(exp_dir[i], sizeof exp_dir[i], "%s/export%d", base, i + 1);
		if (i < 3 && mkdir(exp_dir[i], 0755) != 0)
			return -1;
	}
	snprintf(exp_dir[3], sizeof exp_dir[3], "%s", exp_dir[0]);
	snprintf(outside, sizeof outside, "%s/outside", base);
	if (mkdir(outside, 0755) != 0)
		return -1;
	for (int i = 0; i < NNODES; i++) {
		snprintf(extra[i], sizeof extra[i],
			 "cloudfs_export_root = %s\ncloudfs_max_fds_per_conn = 16\n%s%s%s", exp_dir[i],
			 i == 3 ? "cloudfs_read_only = yes\n" : "",
			 i == 0 ? "cloudfs_sendfile_loopback = yes\n" : "",
			 i == 1 ? "cloudfs_call_fd_idle_s = 1\n" : "");
		per[i] = extra[i];
	}
	return th_cluster_start_nodes(&cl, NNODES, "", per, NULL);
}

static int teardown(void **state)
{
	(void)state;
	return th_cluster_teardown(&cl);
}

/* ---- tests ------------------------------------------------------------ */

/* printf 'virgo_cloud_open(/virgofstest.txt)\n' | nc 127.0.0.1 50000 */
static void notes_call_syntax(void **state)
{
	(void)state;
	struct cli *k = cli_open(0);
	const char *r = cmd(k, "virgo_cloud_open(/virgofstest.txt)");
	char *end;
	unsigned long long fd = strtoull(r, &end, 10);
	assert_true(fd != 0 && *end == '\0'); /* a bare decimal descriptor */
	assert_int_equal(fd >> 48, 1); /* owned by node 1 */
	char line[64];
	assert_int_equal(cli_line(k, line, sizeof line), -1); /* then closed, as the original */
	cli_close(k);
	/* the descriptor outlives its connection */
	k = cli_open(0);
	assert_string_equal(cmd(k, "virgo_cloud_write(%llu,hello, (virgo),14,0)", fd), "OK 14");
	cli_close(k);
	k = cli_open(0);
	cli_send(k, "virgo_cloud_read(%llu,none,100,0)\r\n", fd);
	char data[64];
	assert_int_equal(cli_bytes(k, data, 16), 0);
	assert_memory_equal(data, "hello, (virgo)\r\n", 16);
	cli_close(k);
	/* written through to the disk: the next read of anyone sees it */
	char p[400], text[64] = "";
	snprintf(p, sizeof p, "%s/virgofstest.txt", exp_dir[0]);
	FILE *f = fopen(p, "r");
	assert_non_null(f);
	assert_non_null(fgets(text, sizeof text, f));
	fclose(f);
	assert_string_equal(text, "hello, (virgo)");
	k = cli_open(0);
	assert_string_equal(cmd(k, "virgo_cloud_close(%llu)", fd), "OK");
	cli_close(k);
	k = cli_open(0);
	assert_memory_equal(cmd(k, "virgo_cloud_close(%llu)", fd), "ERR EBADF", 9);
	cli_close(k);
	/* a native connection can use the node-wide descriptor too */
	k = cli_open(0);
	fd = strtoull(cmd(k, "virgo_cloud_open(/virgofstest.txt)"), NULL, 10);
	cli_close(k);
	k = cli_open(0);
	assert_memory_equal(cmd(k, "fstat %llx", fd), "OK f 644 14 ", 12);
	assert_string_equal(cmd(k, "close %llx", fd), "OK");
	cli_close(k);
}

static void round_trip(struct cli *k, const char *name, size_t size, uint64_t seed)
{
	const size_t chunk = 1 << 20;
	uint8_t *buf = malloc(chunk), *got = malloc(chunk);
	assert_non_null(buf);
	assert_non_null(got);
	uint64_t fd = open_fd(k, name, "wct");
	for (size_t off = 0; off < size; off += chunk) {
		size_t n = size - off < chunk ? size - off : chunk;
		fill_pattern(buf, n, seed + off);
		pwrite_all(k, fd, buf, n, off);
	}
	if (size == 0) /* an empty write is fine too */
		pwrite_all(k, fd, buf, 0, 0);
	assert_string_equal(cmd(k, "fsync %llx", (unsigned long long)fd), "OK");
	assert_string_equal(cmd(k, "close %llx", (unsigned long long)fd), "OK");
	fd = open_fd(k, name, "r");
	char st[128];
	snprintf(st, sizeof st, "OK f 644 %zu ", size);
	assert_memory_equal(cmd(k, "fstat %llx", (unsigned long long)fd), st, strlen(st));
	size_t off = 0;
	for (;;) {
		long n = pread_some(k, fd, got, chunk, off, NULL, 0);
		assert_true(n >= 0);
		if (n == 0)
			break;
		fill_pattern(buf, (size_t)n, seed + off);
		assert_memory_equal(got, buf, (size_t)n);
		off += (size_t)n;
	}
	assert_int_equal(off, size);
	assert_string_equal(cmd(k, "close %llx", (unsigned long long)fd), "OK");
	free(buf);
	free(got);
}

static void round_trips(void **state)
{
	(void)state;
	struct cli *k = cli_open(0);
	int64_t t0 = th_now_ms();
	round_trip(k, "/empty.bin", 0, 1);
	round_trip(k, "/one.bin", 1, 2);
	round_trip(k, "/big.bin", 100u << 20, 3);
	printf("100 MiB written and read back in %lld ms\n", (long long)(th_now_ms() - t0));
	/* the sequential read/write forms keep the descriptor's position */
	uint64_t fd = open_fd(k, "/seq.txt", "rwct");
	cli_send(k, "write %llx 3\r\nabc\r\nwrite %llx 2\r\nde\r\n", (unsigned long long)fd,
		 (unsigned long long)fd);
	char line[64];
	assert_int_equal(cli_line(k, line, sizeof line), 0);
	assert_string_equal(line, "OK 3");
	assert_int_equal(cli_line(k, line, sizeof line), 0);
	assert_string_equal(line, "OK 2");
	char data[16];
	assert_true(pread_some(k, fd, data, 10, 0, NULL, 0) == 5);
	assert_memory_equal(data, "abcde", 5);
	cli_close(k);
}

static void pread_pwrite_offsets(void **state)
{
	(void)state;
	struct cli *k = cli_open(0);
	uint64_t fd = open_fd(k, "/sparse.bin", "rwct");
	pwrite_all(k, fd, "tail", 4, 1000000);
	pwrite_all(k, fd, "head", 4, 0);
	pwrite_all(k, fd, "mid\r\n\0", 6, 4096);
	uint8_t buf[16];
	assert_int_equal(pread_some(k, fd, buf, 8, 0, NULL, 0), 8);
	assert_memory_equal(buf, "head\0\0\0\0", 8);
	assert_int_equal(pread_some(k, fd, buf, 6, 4096, NULL, 0), 6);
	assert_memory_equal(buf, "mid\r\n\0", 6);
	assert_int_equal(pread_some(k, fd, buf, 16, 999998, NULL, 0), 6);
	assert_memory_equal(buf, "\0\0tail", 6);
	assert_int_equal(pread_some(k, fd, buf, 16, 1000004, NULL, 0), 0); /* EOF */
	assert_int_equal(pread_some(k, fd, buf, 16, 5000000, NULL, 0), 0);
	/* a read-only descriptor refuses writes */
	uint64_t ro = open_fd(k, "/sparse.bin", "r");
	cli_send(k, "pwrite %llx 1 0\r\nx\r\n", (unsigned long long)ro);
	char line[256];
	assert_int_equal(cli_line(k, line, sizeof line), 0);
	assert_memory_equal(line, "ERR EBADF", 9);
	/* a payload larger than cloudfs_max_io is refused and skipped */
	size_t big = (1u << 20) + 1;
	uint8_t *p = calloc(1, big);
	cli_send(k, "pwrite %llx %zu 0\r\n", (unsigned long long)fd, big);
	assert_int_equal(th_send(k->fd, p, big), 0);
	free(p);
	cli_send(k, "\r\n");
	assert_int_equal(cli_line(k, line, sizeof line), 0);
	assert_memory_equal(line, "ERR E2BIG", 9);
	assert_string_equal(cmd(k, "ping"), "PONG 1");
	/* a read larger than cloudfs_max_io comes back short */
	uint8_t *r = malloc(2u << 20);
	assert_int_equal(pread_some(k, fd, r, 2u << 20, 0, NULL, 0), 1000004);
	uint64_t bfd = open_fd(k, "/big.bin", "r");
	assert_int_equal(pread_some(k, bfd, r, 2u << 20, 0, NULL, 0), 1 << 20);
	free(r);
	cli_close(k);
}

static void expect_refused(struct cli *k, const char *req)
{
	const char *r = cmd(k, "%s", req);
	if (strncmp(r, "ERR ", 4) != 0)
		fail_msg("%s was not refused: %s", req, r);
}

static void traversal_refused(void **state)
{
	(void)state;
	write_file(outside, "secret", "OUTSIDE");
	char p[700];
	/* a symlink out (absolute), one out (relative), an absolute one in */
	snprintf(p, sizeof p, "%s/abs_out", exp_dir[0]);
	assert_int_equal(symlink(outside, p), 0);
	snprintf(p, sizeof p, "%s/rel_out", exp_dir[0]);
	assert_int_equal(symlink("../outside", p), 0);
	snprintf(p, sizeof p, "%s/etc_passwd", exp_dir[0]);
	assert_int_equal(symlink("/etc/passwd", p), 0);
	struct cli *k = cli_open(0);
	static const char *const bad[] = {
		"open ../outside/secret", "open /../outside/secret", "open a/../../outside/secret",
		"open ../../../../../../etc/passwd r", "stat ..", "stat ../outside",
		"lstat ../outside/secret", "readdir ..", "readdir /..", "open abs_out/secret",
		"open rel_out/secret", "stat rel_out/secret", "open etc_passwd", "stat etc_passwd",
		"readdir abs_out", "readdir rel_out", "unlink ../outside/secret",
		"unlink rel_out/secret", "rename ../outside/secret mine", "rename /one.bin ../stolen",
		"mkdir ../made", "mkdir rel_out/made", "rmdir ..", "rmdir /", "unlink /",
		"truncate rel_out/secret 0", "chmod rel_out/secret 777", "chmod .. 777",
		"utimens abs_out/secret now now", "symlink x ../outside/link",
		"readlink rel_out/secret", "fsyncdir ..", "open %2E%2E/outside/secret",
		"virgo_cloud_open(../outside/secret)", "virgo_cloud_open(/abs_out/secret)",
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		if (strncmp(bad[i], "virgo_", 6) == 0) {
			struct cli *l = cli_open(0);
			expect_refused(l, bad[i]);
			cli_close(l);
		} else {
			expect_refused(k, bad[i]);
		}
	}
	/* the outside is untouched */
	snprintf(p, sizeof p, "%s/secret", outside);
	struct stat st;
	assert_int_equal(stat(p, &st), 0);
	assert_int_equal(st.st_size, 7);
	snprintf(p, sizeof p, "%s/made", outside);
	assert_int_not_equal(stat(p, &st), 0);
	/* symlinks that stay inside work; readlink shows any target */
	assert_string_equal(cmd(k, "symlink one.bin in_link"), "OK");
	assert_memory_equal(cmd(k, "stat in_link"), "OK f ", 5);
	assert_memory_equal(cmd(k, "lstat in_link"), "OK l ", 5);
	char want[800];
	snprintf(want, sizeof want, "OK %s", outside);
	assert_string_equal(cmd(k, "readlink abs_out"), want);
	assert_string_equal(cmd(k, "unlink in_link"), "OK");
	cli_close(k);
}

/* A component swapped between a directory inside and a symlink to the
 * outside while the node resolves paths through it: never the outside. */
struct flipper {
	_Atomic int stop;
	_Atomic long flips;
};

static void *flip_main(void *arg)
{
	struct flipper *f = arg;
	char a[700], b[700];
	snprintf(a, sizeof a, "%s/swap", exp_dir[0]);
	snprintf(b, sizeof b, "%s/swap_link", exp_dir[0]);
	while (!atomic_load(&f->stop)) {
		if (renameat2(AT_FDCWD, a, AT_FDCWD, b, RENAME_EXCHANGE) == 0)
			atomic_fetch_add(&f->flips, 1);
	}
	return NULL;
}

static void symlink_swapped_in(void **state)
{
	(void)state;
	char p[700];
	snprintf(p, sizeof p, "%s/swap", exp_dir[0]);
	assert_int_equal(mkdir(p, 0755), 0);
	write_file(p, "secret", "INSIDE!");
	snprintf(p, sizeof p, "%s/swap_link", exp_dir[0]);
	assert_int_equal(symlink(outside, p), 0);
	struct flipper f = {0};
	pthread_t th;
	assert_int_equal(pthread_create(&th, NULL, flip_main, &f), 0);
	struct cli *k = cli_open(0);
	int inside = 0, refused = 0;
	int64_t end = th_now_ms() + 1500;
	while (th_now_ms() < end) {
		const char *r = cmd(k, "open swap/secret r");
		if (strncmp(r, "OK ", 3) != 0) {
			refused++;
			continue;
		}
		uint64_t fd = strtoull(r + 3, NULL, 16);
		char data[16] = "";
		long n = pread_some(k, fd, data, sizeof data - 1, 0, NULL, 0);
		assert_int_equal(n, 7);
		assert_memory_equal(data, "INSIDE!", 7); /* never OUTSIDE */
		inside++;
		assert_string_equal(cmd(k, "close %llx", (unsigned long long)fd), "OK");
	}
	atomic_store(&f.stop, 1);
	pthread_join(th, NULL);
	printf("swapped %ld times: %d opens inside, %d refused\n", atomic_load(&f.flips), inside,
	       refused);
	assert_true(atomic_load(&f.flips) > 0);
	assert_true(inside + refused > 0);
	cli_close(k);
}

static void read_only_export(void **state)
{
	(void)state;
	write_file(exp_dir[0], "ro.txt", "read me");
	struct cli *k = cli_open(3);
	static const char *const w[] = {
		"open ro.txt rw", "open new.txt wc", "open ro.txt wt", "unlink ro.txt", "mkdir d",
		"rmdir d", "rename ro.txt x", "symlink a b", "chmod ro.txt 600", "truncate ro.txt 0",
		"utimens ro.txt now now",
	};
	for (size_t i = 0; i < sizeof w / sizeof w[0]; i++) {
		const char *r = cmd(k, "%s", w[i]);
		if (strncmp(r, "ERR EROFS", 9) != 0)
			fail_msg("%s on a read-only export: %s", w[i], r);
	}
	uint64_t fd = open_fd(k, "ro.txt", "r");
	char data[16];
	assert_int_equal(pread_some(k, fd, data, sizeof data, 0, NULL, 0), 7);
	assert_memory_equal(data, "read me", 7);
	cli_send(k, "pwrite %llx 1 0\r\nx\r\n", (unsigned long long)fd);
	char line[256];
	assert_int_equal(cli_line(k, line, sizeof line), 0);
	assert_memory_equal(line, "ERR EROFS", 9);
	assert_memory_equal(cmd(k, "readdir /"), "STAT ent", 8);
	cli_close(k);
	/* the call syntax opens read-only there; a write is refused */
	k = cli_open(3);
	unsigned long long lfd = strtoull(cmd(k, "virgo_cloud_open(ro.txt)"), NULL, 10);
	assert_true(lfd != 0);
	cli_close(k);
	k = cli_open(3);
	assert_memory_equal(cmd(k, "virgo_cloud_write(%llu,x,1,0)", lfd), "ERR EROFS", 9);
	cli_close(k);
	k = cli_open(3);
	assert_string_equal(cmd(k, "virgo_cloud_close(%llu)", lfd), "OK");
	cli_close(k);
	/* nothing changed on disk */
	char p[400];
	snprintf(p, sizeof p, "%s/new.txt", exp_dir[0]);
	struct stat st;
	assert_int_not_equal(stat(p, &st), 0);
}

static void descriptors_per_connection(void **state)
{
	(void)state;
	uint64_t base = stat_value(0, "open_fds");
	struct cli *k = cli_open(0);
	uint64_t fds[16];
	for (int i = 0; i < 16; i++)
		fds[i] = open_fd(k, "/one.bin", "r");
	/* the connection's cap (cloudfs_max_fds_per_conn = 16) */
	assert_memory_equal(cmd(k, "open /one.bin r"), "ERR EMFILE", 10);
	assert_int_equal(stat_value(0, "open_fds"), base + 16);
	/* another connection cannot use or close them */
	struct cli *o = cli_open(0);
	assert_memory_equal(cmd(o, "fstat %llx", (unsigned long long)fds[0]), "ERR EBADF", 9);
	assert_memory_equal(cmd(o, "close %llx", (unsigned long long)fds[0]), "ERR EBADF", 9);
	assert_memory_equal(cmd(o, "fstat 1%015llx", 5ULL), "ERR EBADF", 9);
	cli_close(o);
	/* closing one makes room */
	assert_string_equal(cmd(k, "close %llx", (unsigned long long)fds[3]), "OK");
	assert_memory_equal(cmd(k, "fstat %llx", (unsigned long long)fds[3]), "ERR EBADF", 9);
	fds[3] = open_fd(k, "/one.bin", "r");
	/* the connection goes: all of its descriptors close */
	cli_close(k);
	int64_t end = th_now_ms() + 5000;
	while (stat_value(0, "open_fds") != base && th_now_ms() < end)
		usleep(10000);
	assert_int_equal(stat_value(0, "open_fds"), base);
}

static void call_fds_expire(void **state)
{
	(void)state;
	/* node 2: cloudfs_call_fd_idle_s = 1 */
	struct cli *k = cli_open(1);
	unsigned long long fd = strtoull(cmd(k, "virgo_cloud_open(/idle.txt)"), NULL, 10);
	assert_int_equal(fd >> 48, 2);
	cli_close(k);
	assert_int_equal(stat_value(1, "call_fds"), 1);
	int64_t end = th_now_ms() + 6000;
	while (stat_value(1, "call_fds") != 0 && th_now_ms() < end)
		usleep(50000);
	assert_int_equal(stat_value(1, "call_fds"), 0);
	k = cli_open(1);
	assert_memory_equal(cmd(k, "virgo_cloud_read(%llu,none,1,0)", fd), "ERR EBADF", 9);
	cli_close(k);
}

/* Every page of /many, count entries each, asked with flag (NULL: none):
 * each of the 50 files is listed once (asserted), with type 'f', and so
 * is every other entry; *other counts those, by type letter (d, l).
 * Returns the number of pages. */
static int list_many(struct cli *k, unsigned count, const char *flag, int other[128])
{
	bool seen[50] = {0};
	int total = 0, pages = 0;
	unsigned long long cursor = 0;
	do {
		cli_send(k, "readdir /many %llu %u%s%s\r\n", cursor, count, flag ? " " : "",
			 flag ? flag : "");
		char line[512];
		pages++;
		for (;;) {
			assert_int_equal(cli_line(k, line, sizeof line), 0);
			if (strcmp(line, "END") == 0)
				break;
			if (strncmp(line, "STAT next ", 10) == 0) {
				cursor = strtoull(line + 10, NULL, 10);
				continue;
			}
			char type, name[300];
			unsigned mode;
			unsigned long long size, mt;
			if (flag) { /* t: names and types only, nothing more */
				assert_int_equal(sscanf(line, "STAT name %c %299s", &type, name), 2);
				assert_int_equal(strlen(line), 12 + strlen(name));
			} else {
				assert_int_equal(sscanf(line, "STAT ent %c %o %llu %llu %299s", &type,
							&mode, &size, &mt, name),
						 5);
			}
			int idx;
			if (strcmp(name, "with%20space") == 0) {
				idx = 7;
			} else if (sscanf(name, "f%d", &idx) != 1) {
				other[(unsigned char)type & 127]++;
				continue;
			}
			assert_int_equal(type, 'f');
			assert_false(seen[idx]);
			seen[idx] = true;
			total++;
		}
	} while (cursor != 0 && pages < 100);
	assert_int_equal(total, 50);
	return pages;
}

static void readdir_paged(void **state)
{
	(void)state;
	struct cli *k = cli_open(2);
	assert_string_equal(cmd(k, "mkdir /many"), "OK");
	for (int i = 0; i < 50; i++) {
		uint64_t fd = open_fd(k, i == 7 ? "/many/with%20space" : "/many/f", "wc");
		if (i != 7) {
			char n[64];
			snprintf(n, sizeof n, "rename /many/f /many/f%02d", i);
			assert_string_equal(cmd(k, "%s", n), "OK");
		}
		assert_string_equal(cmd(k, "close %llx", (unsigned long long)fd), "OK");
	}
	int other[128] = {0};
	assert_true(list_many(k, 7, NULL, other) >= 8);
	/* flag t: names and types only, every entry once */
	assert_string_equal(cmd(k, "mkdir /many/sub"), "OK");
	assert_string_equal(cmd(k, "symlink f01 /many/ln"), "OK");
	assert_int_equal(list_many(k, 20, "t", other), 3);
	assert_int_equal(other['d'], 1);
	assert_int_equal(other['l'], 1);
	assert_memory_equal(cmd(k, "readdir /many 0 10 x"), "ERR EINVAL", 10);
	assert_memory_equal(cmd(k, "readdir /many/f00"), "ERR ENOTDIR", 11);
	assert_memory_equal(cmd(k, "readdir /nope"), "ERR ENOENT", 10);
	cli_close(k);
}

static void metadata_calls(void **state)
{
	(void)state;
	struct cli *k = cli_open(2);
	assert_string_equal(cmd(k, "mkdir /m 700"), "OK");
	assert_memory_equal(cmd(k, "stat /m"), "OK d 700 ", 9);
	assert_memory_equal(cmd(k, "mkdir /m"), "ERR EEXIST", 10);
	uint64_t fd = open_fd(k, "/m/a", "rwc");
	pwrite_all(k, fd, "0123456789", 10, 0);
	assert_string_equal(cmd(k, "ftruncate %llx 4", (unsigned long long)fd), "OK");
	assert_string_equal(cmd(k, "fdatasync %llx", (unsigned long long)fd), "OK");
	assert_string_equal(cmd(k, "close %llx", (unsigned long long)fd), "OK");
	assert_memory_equal(cmd(k, "stat /m/a"), "OK f 644 4 ", 11);
	assert_string_equal(cmd(k, "truncate /m/a 2"), "OK");
	assert_memory_equal(cmd(k, "stat /m/a"), "OK f 644 2 ", 11);
	assert_string_equal(cmd(k, "chmod /m/a 600"), "OK");
	assert_string_equal(cmd(k, "utimens /m/a 1000000000000000000 2000000000123456789"), "OK");
	const char *r = cmd(k, "stat /m/a");
	assert_memory_equal(r, "OK f 600 2 ", 11);
	assert_non_null(strstr(r, " 1000000000000000000 2000000000123456789 "));
	assert_string_equal(cmd(k, "rename /m/a /m/b%%0Aline"), "OK");
	assert_memory_equal(cmd(k, "stat /m/a"), "ERR ENOENT", 10);
	assert_memory_equal(cmd(k, "stat /m/b%%0Aline"), "OK f ", 5);
	assert_string_equal(cmd(k, "symlink b%%0Aline /m/l"), "OK");
	assert_string_equal(cmd(k, "readlink /m/l"), "OK b%0Aline");
	assert_string_equal(cmd(k, "fsyncdir /m"), "OK");
	assert_memory_equal(cmd(k, "rmdir /m"), "ERR ENOTEMPTY", 13);
	assert_string_equal(cmd(k, "unlink /m/l"), "OK");
	assert_string_equal(cmd(k, "unlink /m/b%%0Aline"), "OK");
	assert_string_equal(cmd(k, "rmdir /m"), "OK");
	assert_memory_equal(cmd(k, "statfs"), "OK ", 3);
	assert_memory_equal(cmd(k, "open /m/x"), "ERR ENOENT", 10);
	assert_memory_equal(cmd(k, "open / rw"), "ERR EISDIR", 10);
	assert_memory_equal(cmd(k, "bogus"), "ERR ENOSYS", 10);
	cli_close(k);
}

struct writer {
	int node;
	size_t size;
	int rc;
};

static void *writer_main(void *arg)
{
	struct writer *w = arg;
	struct cli *k = cli_open(w->node);
	char name[64];
	snprintf(name, sizeof name, "/conc-%d.bin", w->node);
	round_trip(k, name, w->size, 100 + (uint64_t)w->node);
	cli_close(k);
	return NULL;
}

static void concurrent_writers(void **state)
{
	(void)state;
	struct writer w[3];
	pthread_t th[3];
	for (int i = 0; i < 3; i++) {
		w[i] = (struct writer){i, 16u << 20, 0};
		assert_int_equal(pthread_create(&th[i], NULL, writer_main, &w[i]), 0);
	}
	for (int i = 0; i < 3; i++)
		pthread_join(th[i], NULL);
	/* each file on its own node's disk */
	for (int i = 0; i < 3; i++) {
		char p[400];
		snprintf(p, sizeof p, "%s/conc-%d.bin", exp_dir[i], i);
		struct stat st;
		assert_int_equal(stat(p, &st), 0);
		assert_int_equal(st.st_size, 16 << 20);
	}
}

static void sha256(const void *p, size_t n, unsigned char md[32])
{
	unsigned int len = 0;
	assert_int_equal(EVP_Digest(p, n, md, &len, EVP_sha256(), NULL), 1);
	assert_int_equal(len, 32);
}

/* A file of n pattern bytes written straight into node 1's export. */
static uint8_t *local_file(const char *name, size_t n, uint64_t seed)
{
	uint8_t *p = malloc(n);
	assert_non_null(p);
	fill_pattern(p, n, seed);
	char path[600];
	snprintf(path, sizeof path, "%s/%s", exp_dir[0], name);
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	assert_int_equal(fwrite(p, 1, n, f), n);
	assert_int_equal(fclose(f), 0);
	return p;
}

static void sendfile_reads(void **state)
{
	(void)state;
	const size_t n = (9u << 20) + 5, chunk = 1u << 20;
	uint8_t *want = local_file("sf.bin", n, 77);
	uint8_t *got = malloc(n + chunk);
	assert_non_null(got);
	uint64_t sf0 = stat_value(0, "bytes_sendfile");
	struct cli *k = cli_open(0);
	uint64_t fd = open_fd(k, "/sf.bin", "r");
	/* every chunk asked at once (pipelined), the last across the end */
	size_t nreq = (n + chunk - 1) / chunk;
	for (size_t i = 0; i < nreq; i++)
		cli_send(k, "pread %llx %zu %zu\r\n", (unsigned long long)fd, chunk, i * chunk);
	size_t off = 0;
	for (size_t i = 0; i < nreq; i++) {
		char line[64];
		assert_int_equal(cli_line(k, line, sizeof line), 0);
		size_t v = strtoull(line + 6, NULL, 10);
		assert_memory_equal(line, "VALUE ", 6);
		assert_int_equal(v, i + 1 < nreq ? chunk : n - i * chunk);
		assert_int_equal(cli_bytes(k, got + off, v + 2), 0);
		assert_memory_equal(got + off + v, "\r\n", 2);
		off += v;
	}
	assert_int_equal(off, n);
	unsigned char a[32], b[32];
	sha256(want, n, a);
	sha256(got, n, b);
	assert_memory_equal(a, b, 32);
	assert_true(stat_value(0, "bytes_sendfile") - sf0 >= n);
	/* across the end: what there is; at and past it: nothing */
	assert_int_equal(pread_some(k, fd, got, chunk, n - 5, NULL, 0), 5);
	assert_memory_equal(got, want + n - 5, 5);
	assert_int_equal(pread_some(k, fd, got, chunk, n, NULL, 0), 0);
	assert_int_equal(pread_some(k, fd, got, chunk, n + (5u << 20), NULL, 0), 0);
	/* the plain read (the descriptor's position) still copies and moves it */
	cli_send(k, "read %llx 100000\r\n", (unsigned long long)fd);
	char line[64];
	assert_int_equal(cli_line(k, line, sizeof line), 0);
	assert_string_equal(line, "VALUE 100000");
	assert_int_equal(cli_bytes(k, got, 100002), 0);
	assert_memory_equal(got, want, 100000);
	assert_string_equal(cmd(k, "close %llx", (unsigned long long)fd), "OK");
	cli_close(k);
	/* the call syntax: bare bytes, then the connection closes */
	k = cli_open(0);
	unsigned long long lfd = strtoull(cmd(k, "virgo_cloud_open(/sf.bin)"), NULL, 10);
	cli_close(k);
	k = cli_open(0);
	cli_send(k, "virgo_cloud_read(%llu,none,300000,1000)\r\n", lfd);
	assert_int_equal(cli_bytes(k, got, 300002), 0);
	assert_memory_equal(got, want + 1000, 300000);
	assert_memory_equal(got + 300000, "\r\n", 2);
	assert_int_equal(cli_fill(k), 0); /* closed */
	cli_close(k);
	k = cli_open(0);
	assert_string_equal(cmd(k, "virgo_cloud_close(%llu)", lfd), "OK");
	cli_close(k);
	/* node 2 keeps the default: a client on this machine gets copies */
	char p2[600];
	snprintf(p2, sizeof p2, "cp %s/sf.bin %s/sf.bin", exp_dir[0], exp_dir[1]);
	assert_int_equal(system(p2), 0);
	uint64_t sf2 = stat_value(1, "bytes_sendfile");
	k = cli_open(1);
	fd = open_fd(k, "/sf.bin", "r");
	assert_int_equal(pread_some(k, fd, got, chunk, 0, NULL, 0), (long)chunk);
	assert_memory_equal(got, want, chunk);
	cli_close(k);
	assert_int_equal(stat_value(1, "bytes_sendfile"), sf2);
	free(want);
	free(got);
}

/* Copied reads (node 2: the default for a client on this machine) hold
 * the bytes of when they ran: a write pipelined behind 8 MiB of read
 * replies the client has not taken yet does not show in them, and a read
 * after it, on any connection, sees it. */
static void write_behind_pending_reads(void **state)
{
	(void)state;
	const size_t chunk = 1u << 20, nr = 8;
	uint8_t *old = local_file("wr.bin", nr * chunk, 5);
	char cp[700];
	snprintf(cp, sizeof cp, "mv %s/wr.bin %s/wr.bin", exp_dir[0], exp_dir[1]);
	assert_int_equal(system(cp), 0);
	uint8_t *neu = malloc(chunk), *got = malloc(chunk + 2);
	assert_non_null(neu);
	assert_non_null(got);
	fill_pattern(neu, chunk, 6);
	struct cli *k = cli_open(1);
	uint64_t fd = open_fd(k, "/wr.bin", "rw");
	/* 8 MiB of replies: more than the socket buffers hold */
	for (size_t i = 0; i < nr; i++)
		cli_send(k, "pread %llx %zu 0\r\n", (unsigned long long)fd, chunk);
	char hdr[128];
	int h = snprintf(hdr, sizeof hdr, "pwrite %llx %zu 0\r\n", (unsigned long long)fd, chunk);
	assert_int_equal(th_send(k->fd, hdr, (size_t)h), 0);
	assert_int_equal(th_send(k->fd, neu, chunk), 0);
	cli_send(k, "\r\npread %llx %zu 0\r\n", (unsigned long long)fd, chunk);
	for (size_t i = 0; i < nr; i++) {
		char line[64];
		assert_int_equal(cli_line(k, line, sizeof line), 0);
		assert_string_equal(line, "VALUE 1048576");
		assert_int_equal(cli_bytes(k, got, chunk + 2), 0);
		assert_memory_equal(got, old, chunk);
	}
	char line[64];
	assert_int_equal(cli_line(k, line, sizeof line), 0);
	assert_string_equal(line, "OK 1048576");
	assert_int_equal(pread_some(k, fd, got, chunk, 0, NULL, 0), (long)chunk);
	assert_memory_equal(got, neu, chunk);
	/* and another connection sees it too */
	struct cli *k2 = cli_open(1);
	uint64_t fd2 = open_fd(k2, "/wr.bin", "r");
	assert_int_equal(pread_some(k2, fd2, got, chunk, 0, NULL, 0), (long)chunk);
	assert_memory_equal(got, neu, chunk);
	cli_close(k2);
	cli_close(k);
	free(old);
	free(neu);
	free(got);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(notes_call_syntax),   cmocka_unit_test(round_trips),
		cmocka_unit_test(pread_pwrite_offsets), cmocka_unit_test(traversal_refused),
		cmocka_unit_test(symlink_swapped_in),  cmocka_unit_test(read_only_export),
		cmocka_unit_test(descriptors_per_connection), cmocka_unit_test(call_fds_expire),
		cmocka_unit_test(readdir_paged),       cmocka_unit_test(metadata_calls),
		cmocka_unit_test(concurrent_writers),  cmocka_unit_test(sendfile_reads),
		cmocka_unit_test(write_behind_pending_reads),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
