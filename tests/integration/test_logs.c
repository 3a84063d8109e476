/*
 * test_logs.c - what a node logs about its clients (issue 15), against
 * real virgod processes on loopback: each event a client causes (a
 * program refused, a job killed at its deadline, a job cancelled because
 * its client left, a connection over a cap, a request or body that never
 * completed, allocations dropped at shutdown) is one line with its event
 * name and the client's own ip:port; a node with log_file writes there
 * and reopens it on SIGHUP (logrotate); and a client config that swaps
 * two nodes' ids makes virgo_ping fail with -EPROTO and malloc place
 * nothing on them; a malloc refused at mem_limit names the client and the
 * sizes, at most a few lines a second however fast a client retries.
 * Every wait polls with a deadline.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "../../include/virgo.h"
#include "../harness.h"

#define WAIT_MS 15000

static struct th_cluster cl;
static char node_extra[3][512];
static char logfile2[400];

static void nap(int ms)
{
	struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
	nanosleep(&ts, NULL);
}

/* "127.0.0.1:<local port>" of a connected socket: the peer the node sees. */
static void local_peer(int fd, char *buf, size_t cap)
{
	struct sockaddr_in a;
	socklen_t len = sizeof a;
	assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &len), 0);
	snprintf(buf, cap, "peer=127.0.0.1:%u ", (unsigned)ntohs(a.sin_port));
}

/* True once a line of path holds every one of the NULL-terminated needles. */
static bool log_has_v(const char *path, va_list ap0)
{
	FILE *f = fopen(path, "r");
	if (!f)
		return false;
	char line[2048];
	bool found = false;
	while (!found && fgets(line, sizeof line, f)) {
		va_list ap;
		va_copy(ap, ap0);
		found = true;
		for (const char *s; (s = va_arg(ap, const char *));)
			if (!strstr(line, s))
				found = false;
		va_end(ap);
	}
	fclose(f);
	return found;
}

static bool wait_log(const char *path, ...)
{
	int64_t deadline = th_now_ms() + WAIT_MS;
	for (;;) {
		va_list ap;
		va_start(ap, path);
		bool ok = log_has_v(path, ap);
		va_end(ap);
		if (ok)
			return true;
		if (th_now_ms() > deadline) {
			fprintf(stderr, "---- %s lacks the expected line:\n", path);
			char cmd[500];
			snprintf(cmd, sizeof cmd, "cat %s >&2", path);
			(void)!system(cmd);
			return false;
		}
		nap(20);
	}
}

/* Waits until the node closes fd (EOF or reset); true if it did. */
static bool wait_closed(int fd)
{
	int64_t deadline = th_now_ms() + WAIT_MS;
	while (th_now_ms() < deadline) {
		struct pollfd p = {.fd = fd, .events = POLLIN};
		if (poll(&p, 1, 100) <= 0)
			continue;
		char buf[256];
		ssize_t k = recv(fd, buf, sizeof buf, MSG_DONTWAIT);
		if (k == 0 || (k < 0 && errno != EAGAIN && errno != EWOULDBLOCK))
			return true;
	}
	return false;
}

static int setup(void **state)
{
	(void)state;
	const char *dir = th_tmpdir();
	snprintf(logfile2, sizeof logfile2, "%s/virgod2-file.log", dir);
	/* node 1: the events; node 2: log_file; node 3: placement target */
	snprintf(node_extra[0], sizeof node_extra[0],
		 "allow_exec = sleep\ncpu_workers = 2\ncpu_queue = 2\n"
		 "memcache_max_connections = 1\nrequest_timeout = 1\nbody_timeout = 1\n"
		 "mem_limit = 16M\nmax_alloc = 8M\n");
	snprintf(node_extra[1], sizeof node_extra[1], "log_file = %s\n", logfile2);
	const char *extra[3] = {node_extra[0], node_extra[1], NULL};
	return th_cluster_start_nodes(&cl, 3, "idle_timeout = 120\n", extra, "");
}

static int teardown(void **state)
{
	(void)state;
	return th_cluster_teardown(&cl);
}

static int connect_node(int i, int base)
{
	int fd = th_connect(th_port(&cl, i, base));
	assert_true(fd >= 0);
	return fd;
}

static void refused_program_is_logged(void **state)
{
	(void)state;
	int fd = connect_node(0, 10000);
	char peer[64], buf[512];
	local_peer(fd, peer, sizeof peer);
	/* a program that is not in allow_exec, with a name that would
	 * forge a line if it were logged raw */
	const char req[] = "run 10\r\nsh\nevil=1\0\r\n";
	assert_int_equal(th_send(fd, req, sizeof req - 1), 0);
	assert_true(th_recv_until(fd, buf, sizeof buf, "\r\n", WAIT_MS) > 0);
	assert_non_null(strstr(buf, "ERR EACCES"));
	close(fd);
	assert_true(wait_log(cl.nodes[0].log, "job_refused ", peer, "program=\"sh\\x0aevil=1\"",
			     "reason=not_in_allow_exec", NULL));
}

static void deadline_kill_is_logged(void **state)
{
	(void)state;
	int fd = connect_node(0, 10000);
	char peer[64], buf[512];
	local_peer(fd, peer, sizeof peer);
	const char req[] = "run 9 300\r\nsleep\00030\0\r\n";
	assert_int_equal(th_send(fd, req, sizeof req - 1), 0);
	assert_true(th_recv_until(fd, buf, sizeof buf, "\r\n", WAIT_MS) > 0);
	assert_non_null(strstr(buf, "ERR ETIMEDOUT"));
	close(fd);
	assert_true(
		wait_log(cl.nodes[0].log, "job_deadline ", peer, "program=sleep", "timeout_ms=300", NULL));
}

static void client_leaving_is_logged(void **state)
{
	(void)state;
	int fd = connect_node(0, 10000);
	char peer[64];
	local_peer(fd, peer, sizeof peer);
	const char req[] = "run 9\r\nsleep\00030\0\r\n";
	assert_int_equal(th_send(fd, req, sizeof req - 1), 0);
	/* the job is running once the node's load says so */
	int ctl = connect_node(0, 10000);
	char buf[2048];
	int64_t deadline = th_now_ms() + WAIT_MS;
	for (;;) {
		assert_int_equal(th_send(ctl, "load\r\n", 6), 0);
		assert_true(th_recv_until(ctl, buf, sizeof buf, "END\r\n", WAIT_MS) > 0);
		if (strstr(buf, "STAT running 1"))
			break;
		assert_true(th_now_ms() < deadline);
		nap(20);
	}
	close(ctl);
	close(fd);
	assert_true(wait_log(cl.nodes[0].log, "job_cancelled ", peer, "program=sleep",
			     "reason=conn_closed", NULL));
}

static void connection_over_cap_is_logged(void **state)
{
	(void)state;
	int a = connect_node(0, 11211); /* memcache_max_connections = 1 */
	char buf[256];
	assert_int_equal(th_send(a, "version\r\n", 9), 0);
	assert_true(th_recv_until(a, buf, sizeof buf, "\r\n", WAIT_MS) > 0);
	int b = connect_node(0, 11211);
	char peer[64];
	local_peer(b, peer, sizeof peer);
	assert_true(th_recv_until(b, buf, sizeof buf, "\r\n", WAIT_MS) > 0);
	assert_non_null(strstr(buf, "ERR EBUSY"));
	close(b);
	close(a);
	assert_true(wait_log(cl.nodes[0].log, "conn_refused ", peer, "svc=memcache",
			     "reason=service_max_connections", "limit=1", NULL));
}

static void request_timeout_is_logged(void **state)
{
	(void)state;
	int fd = connect_node(0, 30000);
	char peer[64];
	local_peer(fd, peer, sizeof peer);
	assert_int_equal(th_send(fd, "mall", 4), 0); /* never finished */
	assert_true(wait_closed(fd));
	close(fd);
	assert_true(wait_log(cl.nodes[0].log, "conn_closed ", peer, "svc=mempool",
			     "reason=request_timeout", "timeout_s=1", NULL));
}

static void body_timeout_is_logged(void **state)
{
	(void)state;
	int fd = connect_node(0, 11211);
	char peer[64];
	local_peer(fd, peer, sizeof peer);
	const char req[] = "set k 0 0 100000\r\nabc";
	assert_int_equal(th_send(fd, req, sizeof req - 1), 0);
	assert_true(wait_closed(fd));
	close(fd);
	assert_true(wait_log(cl.nodes[0].log, "conn_closed ", peer, "svc=memcache",
			     "reason=body_timeout", "bytes=100000", NULL));
}

/* log_file: lines go to the file, not stderr; after the file is moved
 * (logrotate) a SIGHUP makes the node write to a new file at the path. */
static void log_file_reopens_on_sighup(void **state)
{
	(void)state;
	assert_true(wait_log(logfile2, "node 2 ready", NULL));
	FILE *f = fopen(cl.nodes[1].log, "r"); /* its stderr */
	char line[512];
	while (f && fgets(line, sizeof line, f))
		assert_null(strstr(line, "ready"));
	if (f)
		fclose(f);
	char rotated[420];
	snprintf(rotated, sizeof rotated, "%s.1", logfile2);
	assert_int_equal(rename(logfile2, rotated), 0);
	assert_int_equal(kill(cl.nodes[1].pid, SIGHUP), 0);
	assert_true(wait_log(logfile2, "SIGHUP", NULL));
	/* an event after the reopen lands in the new file */
	int fd = connect_node(1, 10000);
	char peer[64], buf[256];
	local_peer(fd, peer, sizeof peer);
	const char req[] = "run 3\r\nsh\0\r\n";
	assert_int_equal(th_send(fd, req, sizeof req - 1), 0);
	assert_true(th_recv_until(fd, buf, sizeof buf, "\r\n", WAIT_MS) > 0);
	close(fd);
	assert_true(wait_log(logfile2, "job_refused ", peer, NULL));
	/* and the old file kept what was written before */
	assert_true(wait_log(rotated, "node 2 ready", NULL));
	f = fopen(rotated, "r");
	while (f && fgets(line, sizeof line, f))
		assert_null(strstr(line, "job_refused"));
	if (f)
		fclose(f);
}

/* --help names the logging options; a log file that cannot be opened
 * stops the start with a reason, not a silent fall-back to stderr. */
static void log_options_in_help(void **state)
{
	(void)state;
	char out[8192];
	const char *help[] = {th_virgod(), "--help", NULL};
	assert_int_equal(th_run(help, out, sizeof out, WAIT_MS), 0);
	assert_non_null(strstr(out, "--log-file FILE"));
	assert_non_null(strstr(out, "--syslog"));
	const char *bad[] = {th_virgod(), "--log-file", "/nonexistent-dir/v.log", NULL};
	assert_int_equal(th_run(bad, out, sizeof out, WAIT_MS), 1);
	assert_non_null(strstr(out, "cannot open log file /nonexistent-dir/v.log"));
}

/* A client config that gives nodes 1 and 2 each other's ids (their ports
 * swapped): ping says so, malloc places on node 3 only. */
static void swapped_node_ids_are_refused(void **state)
{
	(void)state;
	char conf[400];
	snprintf(conf, sizeof conf, "%s/swapped_client.conf", cl.dir);
	FILE *f = fopen(conf, "w");
	assert_non_null(f);
	fprintf(f, "node = 1 127.0.0.1 %d\nnode = 2 127.0.0.1 %d\nnode = 3 127.0.0.1 %d\n"
		   "policy = round_robin\n",
		cl.nodes[1].offset, cl.nodes[0].offset, cl.nodes[2].offset);
	fclose(f);
	virgo_fini();
	assert_int_equal(virgo_init(conf), 0);
	unsigned id = 0;
	assert_int_equal(virgo_ping(0, &id, NULL), -EPROTO);
	assert_int_equal(id, 2);
	assert_int_equal(virgo_ping(1, &id, NULL), -EPROTO);
	assert_int_equal(id, 1);
	assert_non_null(strstr(virgo_strerror(-EPROTO), "another node id"));
	assert_int_equal(virgo_ping(2, &id, NULL), 0);
	assert_int_equal(id, 3);
	virgo_fini();
	/* malloc, fresh client (no ping first): every allocation on node 3 */
	assert_int_equal(virgo_init(conf), 0);
	virgo_vuid_t v[12];
	for (int i = 0; i < 12; i++) {
		assert_int_equal(virgo_malloc(100, &v[i]), 0);
		assert_int_equal(virgo_vuid_node(v[i]), 3);
	}
	for (int i = 0; i < 12; i++)
		assert_int_equal(virgo_free(v[i]), 0);
	virgo_fini();
}

/* Lines of path holding needle. */
static int log_count(const char *path, const char *needle)
{
	FILE *f = fopen(path, "r");
	if (!f)
		return 0;
	char line[2048];
	int n = 0;
	while (fgets(line, sizeof line, f))
		n += strstr(line, needle) != NULL;
	fclose(f);
	return n;
}

/* A malloc over node 1's mem_limit (16M) is refused and logged with the
 * client's address and the sizes; a client retrying 40 times at once
 * gets a handful of lines (5 a second at most), not 40. */
static void mem_limit_refusal_is_logged(void **state)
{
	(void)state;
	int fd = connect_node(0, 30000);
	char peer[64], buf[512];
	local_peer(fd, peer, sizeof peer);
	char vuids[4][40];
	int held = 0, refused = 0;
	for (int i = 0; i < 4; i++) {
		assert_int_equal(th_send(fd, "malloc 8388608\r\n", 16), 0);
		memset(buf, 0, sizeof buf);
		assert_true(th_recv_until(fd, buf, sizeof buf, "\r\n", WAIT_MS) > 0);
		if (strncmp(buf, "OK ", 3) == 0)
			sscanf(buf + 3, "%39s", vuids[held++]);
		else if (strstr(buf, "ERR ENOMEM"))
			refused++;
		else
			fail_msg("malloc 8M: %s", buf);
	}
	assert_true(held >= 1 && refused >= 1);
	assert_true(wait_log(cl.nodes[0].log, "mem_refused ", peer, "size=8388608",
			     "limit=16777216", "pinned=", NULL));
	int before = log_count(cl.nodes[0].log, "mem_refused ");
	static char burst[40 * 16 + 1];
	size_t bl = 0;
	for (int i = 0; i < 40; i++)
		bl += (size_t)snprintf(burst + bl, sizeof burst - bl, "malloc 8388608\r\n");
	assert_int_equal(th_send(fd, burst, bl), 0);
	static char rbuf[8192];
	int lines = 0;
	size_t got = 0;
	int64_t deadline = th_now_ms() + WAIT_MS;
	while (lines < 40 && th_now_ms() < deadline) {
		ssize_t k = th_recv_until(fd, rbuf + got, sizeof rbuf - 1 - got, "\n", 1000);
		if (k <= 0)
			continue;
		lines = 0;
		got += (size_t)k;
		rbuf[got] = '\0';
		for (char *p = rbuf; (p = strstr(p, "ERR ENOMEM")); p++)
			lines++;
	}
	assert_int_equal(lines, 40);
	int logged = log_count(cl.nodes[0].log, "mem_refused ") - before;
	/* 5 a second; the burst may straddle a second boundary */
	if (logged < 1 || logged > 10)
		fail_msg("40 refusals logged %d lines (want 1..10)", logged);
	for (int i = 0; i < held; i++) {
		char req[64];
		int n = snprintf(req, sizeof req, "free %s\r\n", vuids[i]);
		assert_int_equal(th_send(fd, req, (size_t)n), 0);
		memset(buf, 0, sizeof buf);
		assert_true(th_recv_until(fd, buf, sizeof buf, "\r\n", WAIT_MS) > 0);
		assert_non_null(strstr(buf, "OK"));
	}
	close(fd);
}

/* Stopping a node that still holds allocations says how many and how
 * much it dropped (runs last: node 3 is stopped). */
static void dropped_allocations_are_logged(void **state)
{
	(void)state;
	int fd = connect_node(2, 30000);
	char buf[256];
	for (int i = 0; i < 2; i++) {
		assert_int_equal(th_send(fd, "malloc 1000\r\n", 13), 0);
		assert_true(th_recv_until(fd, buf, sizeof buf, "\r\n", WAIT_MS) > 0);
		assert_non_null(strstr(buf, "OK "));
	}
	close(fd);
	th_node_signal(&cl, 2, SIGTERM);
	assert_true(wait_log(cl.nodes[2].log, "mem_dropped_at_shutdown ", "allocations=2",
			     "bytes=2000", NULL));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(refused_program_is_logged),
		cmocka_unit_test(deadline_kill_is_logged),
		cmocka_unit_test(client_leaving_is_logged),
		cmocka_unit_test(connection_over_cap_is_logged),
		cmocka_unit_test(request_timeout_is_logged),
		cmocka_unit_test(body_timeout_is_logged),
		cmocka_unit_test(log_file_reopens_on_sighup),
		cmocka_unit_test(log_options_in_help),
		cmocka_unit_test(swapped_node_ids_are_refused),
		cmocka_unit_test(mem_limit_refusal_is_logged),
		cmocka_unit_test(dropped_allocations_are_logged),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
