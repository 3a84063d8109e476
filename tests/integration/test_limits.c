/*
 * test_limits.c - limits the server enforces for every service (issue 14):
 * a connection cap per service as well as per node (a flood of idle
 * connections on one port must not lock out the others), the request
 * deadline that ends slowloris clients, accepting paused (not spinning)
 * when the process runs out of descriptors, and a service's own settings
 * reloaded on SIGHUP.
 */
#include <errno.h>
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
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "../harness.h"

static char out[16384];

static bool pong(int port)
{
	int fd = th_connect(port);
	if (fd < 0)
		return false;
	bool ok = th_send(fd, "ping\r\n", 6) == 0 &&
		  th_recv_until(fd, out, sizeof out, "\n", 3000) > 0 && strstr(out, "PONG");
	close(fd);
	return ok;
}

/* Opens n connections to port and checks each is accepted (a version
 * request answered on the memcached port); fds into fds[]. */
static void open_idle(int port, int *fds, int n)
{
	for (int i = 0; i < n; i++) {
		fds[i] = th_connect(port);
		assert_true(fds[i] >= 0);
		assert_int_equal(th_send(fds[i], "version\r\n", 9), 0);
		assert_true(th_recv_until(fds[i], out, sizeof out, "\r\n", 3000) > 0);
		assert_non_null(strstr(out, "VERSION"));
	}
}

/* Issue 14 #12: 300 idle connections on the memcached port made mempool
 * and cpupool answer EBUSY.  By default one service may hold 3/4 of the
 * node's connections; <service>_max_connections sets its own cap. */
static void idle_flood_on_one_port_leaves_the_others(void **state)
{
	(void)state;
	struct th_cluster c;
	assert_int_equal(th_cluster_start(&c, 1, "max_connections = 8", NULL), 0);
	int mc = th_port(&c, 0, 11211), mp = th_port(&c, 0, 30000);
	int fds[8];
	open_idle(mc, fds, 6); /* 3/4 of 8 */
	int x = th_connect(mc);
	assert_true(th_recv_until(x, out, sizeof out, NULL, 3000) >= 0);
	assert_string_equal(out, "ERR EBUSY too many connections\r\n");
	close(x);
	assert_true(pong(mp));
	assert_true(pong(th_port(&c, 0, 10000)));
	for (int i = 0; i < 6; i++)
		close(fds[i]);
	assert_int_equal(th_cluster_stop(&c), 0);

	assert_int_equal(th_cluster_start(&c, 1, "max_connections = 100\nmemcache_max_connections = 3",
					  NULL),
			 0);
	mc = th_port(&c, 0, 11211);
	open_idle(mc, fds, 3);
	x = th_connect(mc);
	assert_true(th_recv_until(x, out, sizeof out, NULL, 3000) >= 0);
	assert_string_equal(out, "ERR EBUSY too many connections\r\n");
	close(x);
	assert_true(pong(th_port(&c, 0, 30000)));
	close(fds[0]); /* a slot frees up once a client leaves */
	int64_t deadline = th_now_ms() + 3000;
	bool ok = false;
	while (!ok && th_now_ms() < deadline) {
		int y = th_connect(mc);
		ok = th_send(y, "version\r\n", 9) == 0 &&
		     th_recv_until(y, out, sizeof out, "\r\n", 1000) > 0 && strstr(out, "VERSION");
		close(y);
	}
	assert_true(ok);
	close(fds[1]);
	close(fds[2]);
	assert_int_equal(th_cluster_stop(&c), 0);
}

/* Issue 14 #12: one byte every few seconds kept a connection alive past
 * idle_timeout for ever.  A request begun must complete within
 * request_timeout; a slow client that completes its requests stays. */
static void slowloris_closed_by_request_deadline(void **state)
{
	(void)state;
	struct th_cluster c;
	assert_int_equal(th_cluster_start(&c, 1, "request_timeout = 2\nidle_timeout = 60", NULL), 0);
	int mc = th_port(&c, 0, 11211), mp = th_port(&c, 0, 30000);
	int slow = th_connect(mc), good = th_connect(mp);
	assert_true(slow >= 0 && good >= 0);
	int64_t t0 = th_now_ms();
	const char *trickle = "get aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
	bool closed = false;
	for (size_t i = 0; !closed && th_now_ms() - t0 < 8000; i++) {
		/* a byte every 300 ms: never idle, never a whole request */
		if (send(slow, trickle + i % strlen(trickle), 1, MSG_NOSIGNAL) < 0)
			closed = true;
		struct pollfd pf = {.fd = slow, .events = POLLIN};
		if (poll(&pf, 1, 300) == 1) {
			char b[64];
			ssize_t r = recv(slow, b, sizeof b, 0);
			closed = r <= 0;
			assert_true(r <= 0); /* nothing to answer: no request ended */
		}
		/* meanwhile a slow but whole-request client is served */
		if (i % 5 == 0) {
			assert_int_equal(th_send(good, "ping\r\n", 6), 0);
			assert_true(th_recv_until(good, out, sizeof out, "\n", 3000) > 0);
			assert_non_null(strstr(out, "PONG"));
		}
	}
	int64_t took = th_now_ms() - t0;
	assert_true(closed);
	assert_true(took >= 1900 && took < 6000);
	close(slow);
	/* the good connection lived through it */
	assert_int_equal(th_send(good, "ping\r\n", 6), 0);
	assert_true(th_recv_until(good, out, sizeof out, "\n", 3000) > 0);
	assert_non_null(strstr(out, "PONG"));
	close(good);
	assert_int_equal(th_cluster_stop(&c), 0);
}

/* CPU seconds (user + system) the thread tid of pid has used. */
static double thread_cpu(pid_t pid, pid_t tid)
{
	char path[64], buf[1024];
	snprintf(path, sizeof path, "/proc/%d/task/%d/stat", (int)pid, (int)tid);
	FILE *f = fopen(path, "r");
	assert_non_null(f);
	size_t n = fread(buf, 1, sizeof buf - 1, f);
	fclose(f);
	buf[n] = '\0';
	char *p = strrchr(buf, ')');
	assert_non_null(p);
	unsigned long ut = 0, st = 0;
	/* fields after the name: state ppid pgrp session tty tpgid flags
	 * minflt cminflt majflt cmajflt utime stime */
	assert_int_equal(sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut, &st),
			 2);
	return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

static long file_size(const char *path)
{
	struct stat sb;
	return stat(path, &sb) == 0 ? (long)sb.st_size : -1;
}

/* Issue 14 #5: with the open-file limit reached, accept() failed with
 * EMFILE in a loop: the main thread burnt 2.9 s of CPU in 3 s, 53 MB of
 * log, and new clients hung.  Accepting now pauses until a connection
 * closes. */
static void emfile_pauses_accepting(void **state)
{
	(void)state;
	struct th_cluster c;
	assert_int_equal(th_cluster_start(&c, 1, NULL, NULL), 0);
	pid_t pid = c.nodes[0].pid;
	int mp = th_port(&c, 0, 30000);
	/* hold one connection, then leave the node almost no descriptors */
	int held = th_connect(mp);
	assert_true(pong(mp));
	int open_fds = 0;
	char dir[64];
	snprintf(dir, sizeof dir, "/proc/%d/fd", (int)pid);
	char cmd[128];
	snprintf(cmd, sizeof cmd, "ls %s | wc -l", dir);
	FILE *p = popen(cmd, "r");
	assert_non_null(p);
	assert_int_equal(fscanf(p, "%d", &open_fds), 1);
	pclose(p);
	struct rlimit rl = {(rlim_t)open_fds + 2, (rlim_t)open_fds + 2};
	assert_int_equal(prlimit(pid, RLIMIT_NOFILE, &rl, NULL), 0);
	/* more clients than descriptors: the rest wait in the backlog */
	int fds[20];
	for (int i = 0; i < 20; i++) {
		fds[i] = th_connect(mp);
		assert_true(fds[i] >= 0);
	}
	long log0 = file_size(c.nodes[0].log);
	double cpu0 = thread_cpu(pid, pid);
	int64_t t0 = th_now_ms();
	/* let the (old) spin show: 2 s of wall time, polled on a client */
	struct pollfd pf = {.fd = fds[19], .events = POLLIN};
	poll(&pf, 1, 2000);
	double used = thread_cpu(pid, pid) - cpu0;
	double wall = (double)(th_now_ms() - t0) / 1000.0;
	long logged = file_size(c.nodes[0].log) - log0;
	print_message("main thread: %.2f s CPU in %.2f s; %ld bytes logged\n", used, wall, logged);
	assert_true(used < 0.25 * wall);
	assert_true(logged < 4096);
	/* descriptors come back: the waiting clients are served */
	close(held);
	for (int i = 0; i < 19; i++)
		close(fds[i]);
	rl.rlim_cur = rl.rlim_max = 4096 + 256;
	prlimit(pid, RLIMIT_NOFILE, &rl, NULL);
	assert_int_equal(th_send(fds[19], "ping\r\n", 6), 0);
	assert_true(th_recv_until(fds[19], out, sizeof out, "\n", 5000) > 0);
	assert_non_null(strstr(out, "PONG"));
	close(fds[19]);
	assert_true(pong(mp));
	assert_int_equal(th_cluster_stop(&c), 0);
}

/* Rewrites node 0's config file: what the harness wrote (base) and then
 * text (later keys win). */
static void rewrite_conf(const struct th_cluster *c, const char *base, const char *text)
{
	FILE *f = fopen(c->nodes[0].conf, "w");
	assert_non_null(f);
	fputs(base, f);
	fputs(text, f);
	fclose(f);
}

/* A cpupool clone of virgo_sleep ms; the reply's first line into out. */
static void sleep_job(int port, const char *ms)
{
	int fd = th_connect(port);
	char req[64];
	int n = snprintf(req, sizeof req, "clone virgo_sleep %zu\r\n%s\r\n", strlen(ms), ms);
	assert_int_equal(th_send(fd, req, (size_t)n), 0);
	assert_true(th_recv_until(fd, out, sizeof out, "\n", 10000) > 0);
	close(fd);
}

/* Service-owned settings on SIGHUP: the cpupool's job_timeout_ms is
 * reloadable; a file that no longer parses changes nothing. */
static void sighup_reloads_service_settings(void **state)
{
	(void)state;
	struct th_cluster c;
	assert_int_equal(th_cluster_start(&c, 1, "job_timeout_ms = 300", NULL), 0);
	int cp = th_port(&c, 0, 10000);
	sleep_job(cp, "800");
	assert_non_null(strstr(out, "ETIMEDOUT"));
	static char base[4096];
	FILE *f = fopen(c.nodes[0].conf, "r");
	assert_non_null(f);
	base[fread(base, 1, sizeof base - 1, f)] = '\0';
	fclose(f);
	/* a broken file: logged, the running settings stay */
	rewrite_conf(&c, base, "job_timeout_ms = 0\n");
	kill(c.nodes[0].pid, SIGHUP);
	int64_t deadline = th_now_ms() + 5000;
	bool logged = false;
	while (!logged && th_now_ms() < deadline) {
		char cmd[400];
		snprintf(cmd, sizeof cmd, "grep -q 'keeping the running settings' %s", c.nodes[0].log);
		logged = system(cmd) == 0;
		if (!logged)
			usleep(20000);
	}
	assert_true(logged);
	sleep_job(cp, "800");
	assert_non_null(strstr(out, "ETIMEDOUT"));
	rewrite_conf(&c, base, "job_timeout_ms = 5000\n");
	kill(c.nodes[0].pid, SIGHUP);
	deadline = th_now_ms() + 10000;
	bool ok = false;
	while (!ok && th_now_ms() < deadline) {
		sleep_job(cp, "500");
		ok = strncmp(out, "VALUE", 5) == 0;
		if (!ok)
			print_message("reply: %s", out);
	}
	assert_true(ok);
	assert_int_equal(th_cluster_stop(&c), 0);
}

int main(void)
{
	signal(SIGPIPE, SIG_IGN);
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(idle_flood_on_one_port_leaves_the_others),
		cmocka_unit_test(slowloris_closed_by_request_deadline),
		cmocka_unit_test(emfile_pauses_accepting),
		cmocka_unit_test(sighup_reloads_service_settings),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
