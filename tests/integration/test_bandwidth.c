/*
 * test_bandwidth.c - the MaxNetworkBandwidth live knob on a real node:
 * set over the analytics port, it caps the measured rate of a cloudfs
 * read, a cloudfs write and a queue subscriber's fan-out to within 10% of
 * the cap (a cap far below what loopback carries, measured over seconds;
 * the cloudfs reads go out with sendfile, as they do to remote clients);
 * raising it raises the rate and 0 lifts it within a second; a bad value
 * is refused with a reason and the old cap stays.
 */
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "../harness.h"

#define AN_BASE 64000
#define CFS_BASE 50000
#define Q_BASE 60000
#define MIB (1u << 20)
#define FILE_MIB 4 /* the file read over and over */
#define MEASURE_MS 3000

static struct th_cluster cl;
static char extra[1024];
static uint8_t *chunk; /* MIB bytes of pattern */

/* ---- helpers ------------------------------------------------------------- */

static void an_call(const char *req, char *out, size_t cap)
{
	int fd = th_connect(th_port(&cl, 0, AN_BASE));
	assert_true(fd >= 0);
	assert_int_equal(th_send(fd, req, strlen(req)), 0);
	assert_true(th_recv_until(fd, out, cap, "\r\n", 3000) > 0);
	close(fd);
}

static void set_cap(const char *v)
{
	char req[128], out[512];
	snprintf(req, sizeof req, "set MaxNetworkBandwidth=%s\r\n", v);
	an_call(req, out, sizeof out);
	if (strncmp(out, "OK ", 3) != 0)
		fail_msg("set MaxNetworkBandwidth=%s: %s", v, out);
}

/* Reads exactly n bytes (into buf, or discarded when buf is NULL) within
 * timeout_ms. */
static void recv_exact(int fd, uint8_t *buf, size_t n, int timeout_ms)
{
	static uint8_t sink[1 << 16];
	int64_t deadline = th_now_ms() + timeout_ms;
	while (n > 0) {
		struct pollfd p = {fd, POLLIN, 0};
		int left = (int)(deadline - th_now_ms());
		if (left <= 0 || poll(&p, 1, left) <= 0)
			fail_msg("timed out with %zu bytes to read", n);
		size_t want = n;
		uint8_t *dst = buf;
		if (!dst) {
			dst = sink;
			if (want > sizeof sink)
				want = sizeof sink;
		}
		ssize_t r = recv(fd, dst, want, 0);
		if (r <= 0)
			fail_msg("recv: %s", r == 0 ? "EOF" : strerror(errno));
		if (buf)
			buf += r;
		n -= (size_t)r;
	}
}

/* One CRLF-terminated line, byte by byte (the payload follows it). */
static void recv_line(int fd, char *line, size_t cap)
{
	size_t n = 0;
	for (;;) {
		uint8_t ch;
		recv_exact(fd, &ch, 1, 5000);
		if (n + 1 < cap)
			line[n++] = (char)ch;
		if (ch == '\n')
			break;
	}
	line[n] = '\0';
}

/* The descriptor the last cfs_open_file got (one file per connection). */
static char cfs_fdname[32];

static int cfs_open_file(const char *path)
{
	int fd = th_connect(th_port(&cl, 0, CFS_BASE));
	assert_true(fd >= 0);
	char req[256], line[256];
	snprintf(req, sizeof req, "open %s rwc\r\n", path);
	th_send(fd, req, strlen(req));
	recv_line(fd, line, sizeof line);
	assert_int_equal(strncmp(line, "OK ", 3), 0);
	snprintf(cfs_fdname, sizeof cfs_fdname, "%s", line + 3);
	cfs_fdname[strcspn(cfs_fdname, "\r\n")] = '\0';
	return fd;
}

static void cfs_pwrite(int fd, size_t n, uint64_t off)
{
	char req[128], line[128];
	snprintf(req, sizeof req, "pwrite %s %zu %" PRIu64 "\r\n", cfs_fdname, n, off);
	assert_int_equal(th_send(fd, req, strlen(req)), 0);
	assert_int_equal(th_send(fd, chunk, n), 0);
	assert_int_equal(th_send(fd, "\r\n", 2), 0);
	recv_line(fd, line, sizeof line);
	if (strncmp(line, "OK ", 3) != 0)
		fail_msg("pwrite: %s", line);
}

/* One pread of n bytes at off; returns the payload bytes received. */
static size_t cfs_pread(int fd, size_t n, uint64_t off)
{
	char req[128], line[128];
	snprintf(req, sizeof req, "pread %s %zu %" PRIu64 "\r\n", cfs_fdname, n, off);
	assert_int_equal(th_send(fd, req, strlen(req)), 0);
	recv_line(fd, line, sizeof line);
	size_t got;
	if (sscanf(line, "VALUE %zu", &got) != 1)
		fail_msg("pread: %s", line);
	recv_exact(fd, NULL, got + 2, 10000);
	return got;
}

/* Bytes/s of preads of the file (over and over) for ms. */
static double read_rate(int fd, int ms)
{
	int64_t t0 = th_now_ms(), now;
	uint64_t bytes = 0, off = 0;
	do {
		bytes += cfs_pread(fd, MIB / 4, off);
		off = (off + MIB / 4) % ((uint64_t)FILE_MIB * MIB);
		now = th_now_ms();
	} while (now - t0 < ms);
	return (double)bytes * 1000.0 / (double)(now - t0);
}

/* The node's cloudfs "STAT bytes_sendfile" counter. */
static uint64_t cfs_bytes_sendfile(void)
{
	int fd = th_connect(th_port(&cl, 0, CFS_BASE));
	assert_true(fd >= 0);
	assert_int_equal(th_send(fd, "stats\r\n", 7), 0);
	char out[4096];
	assert_true(th_recv_until(fd, out, sizeof out, "END\r\n", 3000) > 0);
	close(fd);
	const char *p = strstr(out, "STAT bytes_sendfile ");
	assert_non_null(p);
	return strtoull(p + strlen("STAT bytes_sendfile "), NULL, 10);
}

static void assert_near(double rate, double mbit, const char *what)
{
	double want = mbit * 125000.0;
	printf("# %s: %.2f Mbit/s with MaxNetworkBandwidth=%.0f (%.1f%%)\n", what,
	       rate / 125000.0, mbit, (rate - want) * 100.0 / want);
	if (rate < want * 0.9 || rate > want * 1.1)
		fail_msg("%s: %.0f B/s, not within 10%% of %.0f", what, rate, want);
}

/* ---- setup ------------------------------------------------------------- */

static int setup(void **state)
{
	(void)state;
	chunk = malloc(MIB);
	if (!chunk)
		return -1;
	for (size_t i = 0; i < MIB; i++)
		chunk[i] = (uint8_t)('a' + i % 26);
	const char *d = th_tmpdir();
	snprintf(extra, sizeof extra,
		 "analytics_conf = \ncloudfs_export_root = %s/export\ncloudfs_sendfile_loopback = yes\n"
		 "queue_dir = %s/q\n"
		 "queue_max_record = 64K\nqueue_sub_buffer = 256K\nqueue_retention_bytes = 256M\n",
		 d, d);
	char cmd[600];
	snprintf(cmd, sizeof cmd, "%s/export", d);
	if (mkdir(cmd, 0755) != 0)
		return -1;
	return th_cluster_start(&cl, 1, extra, "");
}

static int teardown(void **state)
{
	(void)state;
	free(chunk);
	return th_cluster_stop(&cl) == 0 ? 0 : -1;
}

/* ---- tests ------------------------------------------------------------- */

static void cloudfs_read_is_capped_and_lifted(void **state)
{
	(void)state;
	int fd = cfs_open_file("big");
	for (unsigned i = 0; i < FILE_MIB; i++)
		cfs_pwrite(fd, MIB, (uint64_t)i * MIB);
	uint64_t sf0 = cfs_bytes_sendfile();
	set_cap("40");
	assert_near(read_rate(fd, MEASURE_MS), 40, "cloudfs read");
	/* the capped bytes were the sendfile path's, not a copy's */
	assert_true(cfs_bytes_sendfile() - sf0 >= 10u * MIB);
	set_cap("80"); /* raised: the rate follows */
	assert_near(read_rate(fd, 2000), 80, "cloudfs read");
	set_cap("8");
	/* removed: 8 MiB (8 s at 8 Mbit/s) must be read within a second
	 * of the change */
	int64_t t0 = th_now_ms();
	set_cap("0");
	for (unsigned i = 0; i < 8; i++)
		cfs_pread(fd, MIB, (uint64_t)(i % FILE_MIB) * MIB);
	int64_t took = th_now_ms() - t0;
	printf("# 8 MiB read %" PRId64 " ms after MaxNetworkBandwidth=0\n", took);
	assert_true(took < 1000);
	close(fd);
}

static void cloudfs_write_is_capped(void **state)
{
	(void)state;
	int fd = cfs_open_file("upload");
	set_cap("40");
	int64_t t0 = th_now_ms(), now;
	uint64_t bytes = 0;
	do {
		cfs_pwrite(fd, MIB / 4, bytes % ((uint64_t)FILE_MIB * MIB));
		bytes += MIB / 4;
		now = th_now_ms();
	} while (now - t0 < MEASURE_MS);
	assert_near((double)bytes * 1000.0 / (double)(now - t0), 40, "cloudfs write");
	set_cap("0");
	close(fd);
}

static void queue_fanout_is_capped(void **state)
{
	(void)state;
	/* 24 MiB of 64 KiB records, pushed with no cap (the cap is on the
	 * fan-out, not on publishing) */
	set_cap("0");
	int pfd = th_connect(th_port(&cl, 0, Q_BASE));
	assert_true(pfd >= 0);
	char line[256];
	const size_t rec = 64 * 1024;
	const int nrec = 24 * 16;
	for (int i = 0; i < nrec; i++) {
		snprintf(line, sizeof line, "push bw %zu\r\n", rec);
		th_send(pfd, line, strlen(line));
		th_send(pfd, chunk, rec);
		th_send(pfd, "\r\n", 2);
		recv_line(pfd, line, sizeof line);
		assert_int_equal(strncmp(line, "OK bw ", 6), 0);
	}
	close(pfd);
	set_cap("40");
	int sfd = th_connect(th_port(&cl, 0, Q_BASE));
	assert_true(sfd >= 0);
	th_send(sfd, "sub bw 0\r\n", 10);
	recv_line(sfd, line, sizeof line);
	assert_int_equal(strncmp(line, "OK ", 3), 0);
	int64_t t0 = th_now_ms(), now;
	uint64_t bytes = 0;
	do {
		recv_line(sfd, line, sizeof line);
		size_t n;
		char *sp = strrchr(line, ' ');
		assert_non_null(sp);
		assert_int_equal(strncmp(line, "MSG bw ", 7), 0);
		n = strtoull(sp + 1, NULL, 10);
		recv_exact(sfd, NULL, n + 2, 5000);
		bytes += strlen(line) + n + 2;
		now = th_now_ms();
	} while (now - t0 < MEASURE_MS);
	assert_near((double)bytes * 1000.0 / (double)(now - t0), 40, "queue fan-out");
	/* lifted: the rest (at least 9 MiB, 2 s at the cap) within a second */
	set_cap("0");
	int64_t t1 = th_now_ms();
	int got = 0;
	for (;;) {
		recv_line(sfd, line, sizeof line);
		char *sp = strrchr(line, ' ');
		assert_non_null(sp);
		size_t n = strtoull(sp + 1, NULL, 10);
		recv_exact(sfd, NULL, n + 2, 5000);
		bytes += n + 2 + strlen(line);
		got++;
		if (strncmp(line, "MSG bw 383 ", 11) == 0) /* the last record */
			break;
	}
	printf("# the last %d records %" PRId64 " ms after MaxNetworkBandwidth=0\n", got,
	       th_now_ms() - t1);
	assert_true(th_now_ms() - t1 < 1000);
	close(sfd);
}

static void bad_value_is_refused(void **state)
{
	(void)state;
	set_cap("40");
	const char *bad[] = {"fast", "-1", "1000001", "12.5", ""};
	char req[128], out[512];
	for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
		snprintf(req, sizeof req, "set MaxNetworkBandwidth=%s\r\n", bad[i]);
		an_call(req, out, sizeof out);
		if (!strstr(out, "ERR EINVAL MaxNetworkBandwidth: "))
			fail_msg("MaxNetworkBandwidth=%s: %s", bad[i], out);
	}
	an_call("get MaxNetworkBandwidth\r\n", out, sizeof out);
	assert_non_null(strstr(out, "VALUE MaxNetworkBandwidth"));
	assert_non_null(strstr(out, " 40\r\n"));
	set_cap("0");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(bad_value_is_refused),
		cmocka_unit_test(cloudfs_read_is_capped_and_lifted),
		cmocka_unit_test(cloudfs_write_is_capped),
		cmocka_unit_test(queue_fanout_is_capped),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
