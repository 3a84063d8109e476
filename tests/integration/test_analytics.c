/*
 * test_analytics.c - the kernel analytics service end to end on real
 * nodes: the original's file (its exact lines), re-read when it changes
 * and on SIGHUP; a publisher writing chunks to the port; the outbound
 * stream against a test server, including the server's restart; watches
 * that resume by revision without missing or repeating; live knobs that
 * change what the node does, and a bad value refused.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
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
#include <dirent.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "../harness.h"
#include "virgo.h"

#define AN_BASE 64000
#define CP_BASE 10000
#define NODE_EXTRA                                                                         \
	"cpu_workers = 2\ncpu_queue = 8\njob_timeout_ms = 5000\nallow_exec = echo, sh\n"
#define CLIENT_EXTRA "timeout_ms = 3000\nconnect_timeout_ms = 500\nload_max_age_ms = 0\n"

/* The original's file (COMPAT.md): pairs over two lines, the balancer's
 * appended load with brackets and spaces. */
#define ORIGINAL_CONF "match=True,kernel_analytics1=v1\n,localhost_load=[0.52, 0.58, 0.59]\n"

static struct th_cluster cl;
static char dir[256], conf_path[320], node_extra[2][800];

/* ---- the test stream server -------------------------------------------- */

static struct {
	int lfd, port;
	pthread_t th;
	_Atomic int stop, sessions;
	_Atomic int restart; /* close the listener, reopen it on the same port */
	char next[256]; /* what the next session sends (under mu) */
	pthread_mutex_t mu;
	char got[128]; /* the start line it received */
} srvr = {.mu = PTHREAD_MUTEX_INITIALIZER};

static int listen_on(int port)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	int one = 1;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port),
				.sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	if (bind(fd, (struct sockaddr *)&a, sizeof a) != 0 || listen(fd, 8) != 0) {
		close(fd);
		return -1;
	}
	return fd;
}

static void *stream_server(void *arg)
{
	(void)arg;
	while (!atomic_load(&srvr.stop)) {
		if (atomic_exchange(&srvr.restart, 0)) {
			close(srvr.lfd);
			srvr.lfd = listen_on(srvr.port);
		}
		struct pollfd p = {srvr.lfd, POLLIN, 0};
		if (poll(&p, 1, 50) <= 0)
			continue;
		int fd = accept4(srvr.lfd, NULL, NULL, SOCK_CLOEXEC);
		if (fd < 0)
			continue;
		char buf[128];
		ssize_t n = th_recv_until(fd, buf, sizeof buf, "\n", 2000);
		pthread_mutex_lock(&srvr.mu);
		if (n > 0)
			snprintf(srvr.got, sizeof srvr.got, "%s", buf);
		char msg[256];
		snprintf(msg, sizeof msg, "%s", srvr.next);
		pthread_mutex_unlock(&srvr.mu);
		th_send(fd, msg, strlen(msg));
		atomic_fetch_add(&srvr.sessions, 1);
		/* hold the session until told to restart or stop */
		while (!atomic_load(&srvr.stop) && !atomic_load(&srvr.restart)) {
			struct timespec ts = {0, 20 * 1000 * 1000};
			nanosleep(&ts, NULL);
		}
		close(fd);
	}
	close(srvr.lfd);
	return NULL;
}

/* ---- helpers ------------------------------------------------------------- */

static int an_port(int node) { return th_port(&cl, node, AN_BASE); }

/* Sends req to node's analytics port, returns the reply up to until. */
static void an_call(int node, const char *req, const char *until, char *out, size_t cap)
{
	int fd = th_connect(an_port(node));
	assert_true(fd >= 0);
	assert_int_equal(th_send(fd, req, strlen(req)), 0);
	assert_true(th_recv_until(fd, out, cap, until, 3000) > 0);
	close(fd);
}

/* Polls `get key` until its value is want (3 s deadline). */
static bool wait_value(int node, const char *key, const char *want)
{
	char req[256], out[2048], tail[1200];
	snprintf(req, sizeof req, "get %s\r\n", key);
	int64_t deadline = th_now_ms() + 3000;
	while (th_now_ms() < deadline) {
		an_call(node, req, "\r\n", out, sizeof out);
		uint64_t rev;
		if (sscanf(out, "VALUE %*s %" SCNu64 " %1199[^\r]", &rev, tail) == 2 &&
		    strcmp(tail, want) == 0)
			return true;
		struct timespec ts = {0, 20 * 1000 * 1000};
		nanosleep(&ts, NULL);
	}
	fprintf(stderr, "%s never became '%s' (last: %s)\n", key, want, out);
	return false;
}

static void write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
}

static int setup(void **state)
{
	(void)state;
	snprintf(dir, sizeof dir, "%s", th_tmpdir());
	snprintf(conf_path, sizeof conf_path, "%s/virgo_kernel_analytics.conf", dir);
	write_file(conf_path, ORIGINAL_CONF);
	srvr.lfd = listen_on(0);
	struct sockaddr_in a;
	socklen_t al = sizeof a;
	getsockname(srvr.lfd, (struct sockaddr *)&a, &al);
	srvr.port = ntohs(a.sin_port);
	snprintf(srvr.next, sizeof srvr.next, "streamed1=s1\nstreamed2=[a, b],streamed3=c\n");
	pthread_create(&srvr.th, NULL, stream_server, NULL);
	snprintf(node_extra[0], sizeof node_extra[0],
		 "analytics_conf = %s\nanalytics_stream = 127.0.0.1:%d\nplugins = %s/libvtp_fast.so\n",
		 conf_path, srvr.port, th_build_dir());
	snprintf(node_extra[1], sizeof node_extra[1], "analytics_conf = \nplugins = %s/libvtp_fast.so\n",
		 th_build_dir());
	const char *extra[2] = {node_extra[0], node_extra[1]};
	if (th_cluster_start_nodes(&cl, 2, NODE_EXTRA, extra, CLIENT_EXTRA) != 0)
		return -1;
	return th_cluster_client(&cl);
}

static int teardown(void **state)
{
	(void)state;
	atomic_store(&srvr.stop, 1);
	pthread_join(srvr.th, NULL);
	return th_cluster_teardown(&cl);
}

/* ---- tests ------------------------------------------------------------- */

static void original_file_is_read(void **state)
{
	(void)state;
	char out[4096];
	an_call(0, "ls\r\n", "END\r\n", out, sizeof out);
	assert_non_null(strstr(out, " match "));
	assert_true(wait_value(0, "match", "True"));
	assert_true(wait_value(0, "kernel_analytics1", "v1"));
	assert_true(wait_value(0, "localhost_load", "[0.52, 0.58, 0.59]"));
}

static void file_change_is_noticed(void **state)
{
	(void)state;
	write_file(conf_path, "match=False,kernel_analytics1=v2\n");
	assert_true(wait_value(0, "kernel_analytics1", "v2"));
	assert_true(wait_value(0, "match", "False"));
}

static void sighup_rereads(void **state)
{
	(void)state;
	/* same size, same inode, old mtime: only SIGHUP can tell */
	struct stat st;
	assert_int_equal(stat(conf_path, &st), 0);
	int fd = open(conf_path, O_WRONLY);
	assert_true(fd >= 0);
	assert_int_equal(pwrite(fd, "v3", 2, 30), 2); /* kernel_analytics1=v2 -> v3 */
	close(fd);
	struct timespec ts[2] = {st.st_atim, st.st_mtim};
	assert_int_equal(utimensat(AT_FDCWD, conf_path, ts, 0), 0);
	char out[256];
	/* two ticks pass: the poll did not see it */
	struct timespec nap = {1, 200 * 1000 * 1000};
	nanosleep(&nap, NULL);
	an_call(0, "get kernel_analytics1\r\n", "\r\n", out, sizeof out);
	assert_non_null(strstr(out, " v2\r\n"));
	th_node_signal(&cl, 0, SIGHUP);
	assert_true(wait_value(0, "kernel_analytics1", "v3"));
}

static void publisher_over_the_socket(void **state)
{
	(void)state;
	/* echo 'MaxNetworkBandwidth=255,match=True' | nc 127.0.0.1 64000 */
	int fd = th_connect(an_port(1));
	const char *chunk = "MaxNetworkBandwidth=255,match=True\nk1=v1\nk2=[x, y]";
	th_send(fd, chunk, strlen(chunk));
	shutdown(fd, SHUT_WR);
	char out[256];
	assert_int_equal(th_recv_until(fd, out, sizeof out, NULL, 3000), 0); /* no reply, closed */
	close(fd);
	assert_true(wait_value(1, "MaxNetworkBandwidth", "255"));
	assert_true(wait_value(1, "match", "True"));
	assert_true(wait_value(1, "k2", "[x, y]"));
	/* a refused piece is answered, the others still apply */
	fd = th_connect(an_port(1));
	chunk = "bad key=1,k3=ok\n";
	th_send(fd, chunk, strlen(chunk));
	assert_true(th_recv_until(fd, out, sizeof out, "\r\n", 3000) > 0);
	assert_non_null(strstr(out, "ERR EINVAL bad key"));
	close(fd);
	assert_true(wait_value(1, "k3", "ok"));
}

static void outbound_stream_and_its_restart(void **state)
{
	(void)state;
	assert_true(wait_value(0, "streamed1", "s1"));
	assert_true(wait_value(0, "streamed2", "[a, b]"));
	assert_true(wait_value(0, "streamed3", "c"));
	pthread_mutex_lock(&srvr.mu);
	assert_string_equal(srvr.got, "KERNEL_ANALYTICS_STREAMING_START\n");
	snprintf(srvr.next, sizeof srvr.next, "streamed1=after_restart\n");
	pthread_mutex_unlock(&srvr.mu);
	int before = atomic_load(&srvr.sessions);
	atomic_store(&srvr.restart, 1); /* the server goes away and comes back */
	assert_true(wait_value(0, "streamed1", "after_restart"));
	assert_true(atomic_load(&srvr.sessions) > before);
}

/* Reads CHANGE lines (after what pre holds) until n were read; returns
 * their revisions and keys. */
static void read_changes(int fd, const char *pre, int n, uint64_t *revs, char keys[][32])
{
	char buf[8192];
	size_t used = strlen(pre);
	memcpy(buf, pre, used);
	int got = 0;
	int64_t deadline = th_now_ms() + 3000;
	while (got < n) {
		assert_true(th_now_ms() < deadline);
		char *nl;
		while (got < n && (nl = memchr(buf, '\n', used))) {
			*nl = '\0';
			char key[32];
			if (sscanf(buf, "CHANGE %" SCNu64 " %31s", &revs[got], key) != 2)
				fail_msg("not a change: \"%s\"", buf);
			if (keys)
				snprintf(keys[got], 32, "%s", key);
			got++;
			size_t ll = (size_t)(nl - buf) + 1;
			memmove(buf, nl + 1, used - ll);
			used -= ll;
		}
		if (got == n)
			break;
		struct pollfd p = {fd, POLLIN, 0};
		if (poll(&p, 1, 100) > 0) {
			ssize_t r = recv(fd, buf + used, sizeof buf - 1 - used, 0);
			assert_true(r > 0);
			used += (size_t)r;
		}
	}
	assert_int_equal(used, 0); /* nothing more than asked for */
}

static void watch_resumes_by_revision(void **state)
{
	(void)state;
	char out[256];
	int w = th_connect(an_port(1));
	th_send(w, "watch\r\n", 7);
	assert_true(th_recv_until(w, out, sizeof out, "\r\n", 3000) > 0);
	uint64_t start;
	assert_int_equal(sscanf(out, "WATCHING %" SCNu64, &start), 1);
	char pre[256];
	snprintf(pre, sizeof pre, "%s", strstr(out, "\r\n") + 2);
	an_call(1, "set wa=1,wb=2\r\nset wa=3\r\n", "OK", out, sizeof out);
	uint64_t revs[8];
	char keys[8][32];
	read_changes(w, pre, 3, revs, keys);
	assert_true(revs[0] == start + 1 && revs[1] == start + 2 && revs[2] == start + 3);
	assert_string_equal(keys[0], "wa");
	assert_string_equal(keys[2], "wa");
	close(w); /* the watcher goes away; changes go on */
	an_call(1, "set wb=4\r\n", "\r\n", out, sizeof out);
	an_call(1, "set wc=5\r\n", "\r\n", out, sizeof out);
	char req[64];
	snprintf(req, sizeof req, "watch from %" PRIu64 "\r\n", revs[2]);
	w = th_connect(an_port(1));
	th_send(w, req, strlen(req));
	assert_true(th_recv_until(w, out, sizeof out, "\r\n", 3000) > 0);
	assert_non_null(strstr(out, "WATCHING"));
	/* the replayed changes may have come with it */
	snprintf(pre, sizeof pre, "%s", strstr(out, "\r\n") + 2);
	/* exactly the two it missed, then a live one: none missing, none twice */
	an_call(1, "set wd=6\r\n", "\r\n", out, sizeof out);
	read_changes(w, pre, 3, revs, keys);
	assert_true(revs[0] == start + 4 && revs[1] == start + 5 && revs[2] == start + 6);
	assert_string_equal(keys[0], "wb");
	assert_string_equal(keys[1], "wc");
	assert_string_equal(keys[2], "wd");
	close(w);
}

static int open_fds(pid_t pid)
{
	char path[64];
	snprintf(path, sizeof path, "/proc/%d/fd", (int)pid);
	DIR *d = opendir(path);
	assert_non_null(d);
	int n = 0;
	while (readdir(d))
		n++;
	closedir(d);
	return n;
}

/* Watchers on the publisher's loop are written to during its request,
 * under the service's lock: one whose client has reset the connection
 * must be closed later from its loop, not there.  Watchers vanish while
 * changes go by: the node keeps serving, the one that stays gets every
 * change in order, and every vanished watcher's socket is closed. */
static void watchers_that_vanish_mid_publish(void **state)
{
	(void)state;
	enum { N = 40 };
	pid_t pid = cl.nodes[0].pid;
	char out[512];
	an_call(1, "get match\r\n", "\r\n", out, sizeof out);
	int64_t deadline = th_now_ms() + 5000;
	int before = open_fds(pid);
	int w[N];
	for (int i = 0; i < N; i++) {
		w[i] = th_connect(an_port(1));
		th_send(w[i], "watch\r\n", 7);
	}
	uint64_t start = 0;
	for (int i = 0; i < N; i++) {
		assert_true(th_recv_until(w[i], out, sizeof out, "\r\n", 3000) > 0);
		assert_int_equal(sscanf(out, "WATCHING %" SCNu64, &start), 1);
	}
	/* all but the first reset their connections (RST: the node's next
	 * write to them fails) while one request changes five variables */
	for (int i = 1; i < N; i++) {
		struct linger lg = {1, 0};
		setsockopt(w[i], SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
		close(w[i]);
	}
	an_call(1, "set vm1=1,vm2=2,vm3=3,vm4=4,vm5=5\r\n", "OK", out, sizeof out);
	an_call(1, "set vm1=6\r\n", "OK", out, sizeof out);
	uint64_t revs[6];
	char keys[6][32];
	read_changes(w[0], "", 6, revs, keys);
	for (int i = 0; i < 6; i++)
		assert_true(revs[i] > start && (i == 0 || revs[i] == revs[i - 1] + 1));
	assert_string_equal(keys[0], "vm1");
	assert_string_equal(keys[4], "vm5");
	assert_string_equal(keys[5], "vm1");
	close(w[0]);
	/* every watcher's socket is closed (polled, with a deadline) */
	while (open_fds(pid) > before) {
		assert_true(th_now_ms() < deadline);
		usleep(10 * 1000);
	}
	an_call(1, "get vm1\r\n", "\r\n", out, sizeof out);
	assert_non_null(strstr(out, "VALUE vm1"));
}

static void bad_knob_value_is_refused(void **state)
{
	(void)state;
	char out[512];
	an_call(1, "set weight=250\r\n", "\r\n", out, sizeof out);
	assert_non_null(strstr(out, "OK "));
	an_call(1, "set weight=heavy\r\n", "\r\n", out, sizeof out);
	assert_non_null(strstr(out, "ERR EINVAL weight: "));
	an_call(1, "set weight=1001\r\n", "\r\n", out, sizeof out);
	assert_non_null(strstr(out, "ERR EINVAL"));
	assert_true(wait_value(1, "weight", "250"));
	an_call(1, "set weight=100\r\n", "\r\n", out, sizeof out);
}

/* Runs n virgo_sleep(ms) calls at once on node's cpupool (the notes'
 * call syntax, one connection each); returns the wall time, and each
 * reply's first line in replies (may be NULL). */
static int64_t run_sleeps(int node, int n, int ms, char replies[][128])
{
	int fds[8];
	char req[64];
	snprintf(req, sizeof req, "virgo_clone(virgo_sleep,%d)\n", ms);
	int64_t t0 = th_now_ms();
	for (int i = 0; i < n; i++) {
		fds[i] = th_connect(th_port(&cl, node, CP_BASE));
		assert_true(fds[i] >= 0);
		th_send(fds[i], req, strlen(req));
	}
	for (int i = 0; i < n; i++) {
		char buf[256];
		assert_true(th_recv_until(fds[i], buf, sizeof buf, NULL, 8000) >= 0);
		if (replies)
			snprintf(replies[i], 128, "%s", buf);
		close(fds[i]);
	}
	return th_now_ms() - t0;
}

static void set_ok(int node, const char *pair)
{
	char req[256], out[512];
	snprintf(req, sizeof req, "set %s\r\n", pair);
	an_call(node, req, "\r\n", out, sizeof out);
	if (strncmp(out, "OK ", 3) != 0)
		fail_msg("set %s: %s", pair, out);
}

/* A bad value is refused with the reason, and (one pair) the old value
 * stays: `get` answers the same before and after. */
static void set_refused(int node, const char *pair, const char *why)
{
	char req[256], out[512], get[128], before[512] = "", after[512] = "";
	const char *eq = strchr(pair, '=');
	bool one = eq && !strchr(pair, ',');
	if (one) {
		snprintf(get, sizeof get, "get %.*s\r\n", (int)(eq - pair), pair);
		an_call(node, get, "\r\n", before, sizeof before);
	}
	snprintf(req, sizeof req, "set %s\r\n", pair);
	an_call(node, req, "\r\n", out, sizeof out);
	if (strncmp(out, "ERR EINVAL ", 11) != 0 || !strstr(out, why))
		fail_msg("set %s: %s", pair, out);
	if (one) {
		an_call(node, get, "\r\n", after, sizeof after);
		assert_non_null(strstr(before, "VALUE "));
		assert_string_equal(before, after);
	}
}

static void cpu_workers_serialises_jobs(void **state)
{
	(void)state;
	int64_t both = run_sleeps(0, 2, 300, NULL);
	assert_true(both < 580); /* two workers: side by side */
	set_ok(0, "cpu_workers=1");
	int64_t one = run_sleeps(0, 2, 300, NULL);
	fprintf(stderr, "two 300 ms jobs: %lld ms with 2 workers, %lld ms with 1\n",
		(long long)both, (long long)one);
	assert_true(one >= 590); /* one after the other */
	set_refused(0, "cpu_workers=-1", "cpu_workers must be");
	set_refused(0, "cpu_workers=many", "cpu_workers must be");
	assert_true(wait_value(0, "cpu_workers", "1"));
	set_ok(0, "cpu_workers=2");
	assert_true(run_sleeps(0, 2, 300, NULL) < 580);
}

static void cpu_queue_and_job_timeout(void **state)
{
	(void)state;
	char rep[4][128];
	set_ok(0, "cpu_workers=1,cpu_queue=0");
	run_sleeps(0, 2, 300, rep); /* the second finds no room */
	assert_non_null(strstr(rep[0], "virgo_sleep") ? rep[0] : rep[1]);
	assert_true(strstr(rep[0], "EBUSY") || strstr(rep[1], "EBUSY"));
	set_ok(0, "cpu_workers=2,cpu_queue=8");
	set_ok(0, "job_timeout_ms=100");
	run_sleeps(0, 1, 400, rep);
	assert_non_null(strstr(rep[0], "ETIMEDOUT"));
	set_refused(0, "job_timeout_ms=0", "job_timeout_ms must be");
	set_ok(0, "job_timeout_ms=5000");
	run_sleeps(0, 1, 50, rep);
	assert_null(strstr(rep[0], "ERR"));
}

static void weight_zero_stops_placement(void **state)
{
	(void)state;
	unsigned on;
	void *out;
	size_t n;
	int seen[3] = {0};
	for (int i = 0; i < 12; i++) {
		assert_int_equal(virgo_clone_ex("virgo_cloud_test", "x", 1, NULL, &out, &n, &on), 0);
		free(out);
		seen[on] += on <= 2;
	}
	assert_true(seen[1] > 0 && seen[2] > 0);
	set_ok(1, "weight=0");
	struct virgo_load l;
	assert_int_equal(virgo_load(1, &l), 0);
	assert_int_equal(l.weight, 0);
	seen[1] = seen[2] = 0;
	for (int i = 0; i < 12; i++) {
		assert_int_equal(virgo_clone_ex("virgo_cloud_test", "x", 1, NULL, &out, &n, &on), 0);
		free(out);
		seen[on] += on <= 2;
	}
	assert_int_equal(seen[2], 0);
	assert_int_equal(seen[1], 12);
	set_ok(1, "weight=100");
}

static void mem_limit_max_connections_log_level(void **state)
{
	(void)state;
	uint64_t v[3];
	assert_int_equal(virgo_malloc(600 << 10, &v[0]), 0); /* 256M by default: fits */
	assert_int_equal(virgo_malloc(600 << 10, &v[1]), 0);
	assert_int_equal(virgo_free(v[1]), 0);
	set_ok(0, "mem_limit=1M");
	set_ok(1, "mem_limit=1M");
	/* whichever node holds v[0], the next 600K does not fit beside it there
	 * and no node has room for two */
	assert_int_equal(virgo_malloc(600 << 10, &v[1]), 0);
	assert_int_equal(virgo_malloc(600 << 10, &v[2]), -ENOMEM);
	/* below what the allocations hold: refused, the old limit stays */
	set_refused(0, "mem_limit=1M,mem_limit=1048575", "mem_limit must be");
	set_refused(0, "mem_limit=lots", "mem_limit must be");
	set_ok(0, "mem_limit=256M");
	set_ok(1, "mem_limit=256M");
	assert_int_equal(virgo_malloc(600 << 10, &v[2]), 0);
	for (int i = 0; i < 3; i++)
		assert_int_equal(virgo_free(v[i]), 0);

	virgo_fini(); /* its pooled connections would count too */
	set_ok(1, "max_connections=2");
	int fds[5], refused = 0;
	for (int i = 0; i < 5; i++) {
		char buf[128];
		fds[i] = th_connect(th_port(&cl, 1, 30000));
		if (th_recv_until(fds[i], buf, sizeof buf, "\r\n", 300) > 0 &&
		    strstr(buf, "ERR EBUSY too many connections"))
			refused++;
	}
	assert_true(refused >= 3); /* at most two at once */
	for (int i = 0; i < 5; i++)
		close(fds[i]);
	/* the slots are free again once the node saw the closes */
	int64_t deadline = th_now_ms() + 3000;
	char out[256] = "";
	while (th_now_ms() < deadline) {
		int fd = th_connect(an_port(1));
		th_send(fd, "set max_connections=3000\r\n", 27);
		th_recv_until(fd, out, sizeof out, "\r\n", 1000);
		close(fd);
		if (strncmp(out, "OK", 2) == 0)
			break;
	}
	assert_int_equal(strncmp(out, "OK", 2), 0);
	assert_int_equal(th_cluster_client(&cl), 0);
	set_refused(1, "max_connections=0", "max_connections must be");

	set_ok(0, "log_level=debug");
	assert_true(wait_value(0, "log_level", "debug"));
	set_refused(0, "log_level=loud", "log_level must be");
	set_ok(0, "log_level=info");
	set_ok(0, "MaxNetworkBandwidth=255");
	set_refused(0, "MaxNetworkBandwidth=fast", "MaxNetworkBandwidth must be");
}

static void node_publishes_what_it_learns(void **state)
{
	(void)state;
	run_sleeps(0, 1, 20, NULL);
	char out[8192];
	int64_t deadline = th_now_ms() + 3000;
	while (th_now_ms() < deadline) {
		an_call(0, "ls\r\n", "END\r\n", out, sizeof out);
		if (strstr(out, "runtime_ms.virgo_sleep") && strstr(out, "(learnt) ["))
			break;
		struct timespec ts = {0, 50 * 1000 * 1000};
		nanosleep(&ts, NULL);
	}
	assert_non_null(strstr(out, "VAR runtime_ms.virgo_sleep "));
	assert_non_null(strstr(out, "VAR localhost_load "));
	an_call(0, "set localhost_load=[0]\r\n", "\r\n", out, sizeof out);
	assert_non_null(strstr(out, "ERR EACCES"));
}

static int count_cb(void *arg, uint64_t rev, const char *key, const char *value)
{
	(void)rev;
	(void)value;
	if (strcmp(key, "libkey") == 0)
		++*(int *)arg;
	return 0;
}

struct seen {
	int n;
	uint64_t rev[8];
	char val[8][32];
};

static int watch_cb(void *arg, uint64_t rev, const char *key, const char *value)
{
	struct seen *s = arg;
	if (strcmp(key, "wk") != 0)
		return 0; /* learnt variables change too */
	s->rev[s->n] = rev;
	snprintf(s->val[s->n], 32, "%s", value);
	return ++s->n == 3;
}

static void *setter(void *arg)
{
	(void)arg;
	struct timespec ts = {0, 100 * 1000 * 1000};
	nanosleep(&ts, NULL);
	for (int i = 0; i < 3; i++) {
		char v[8];
		snprintf(v, sizeof v, "w%d", i);
		virgo_analytics_set(1, "wk", v, NULL);
	}
	return NULL;
}

static void libvirgo_and_cli(void **state)
{
	(void)state;
	uint64_t rev = 0, rev2 = 0;
	char v[64];
	assert_int_equal(virgo_analytics_set(1, "libkey", "[1, 2]", &rev), 0);
	assert_true(rev > 0);
	assert_int_equal(virgo_analytics_get(1, "libkey", v, sizeof v, &rev2), 0);
	assert_string_equal(v, "[1, 2]");
	assert_true(rev2 == rev);
	assert_int_equal(virgo_analytics_get(1, "nosuch", v, sizeof v, NULL), -ENOENT);
	assert_int_equal(virgo_analytics_set(1, "weight", "x", NULL), -EINVAL);
	assert_non_null(strstr(virgo_last_error(), "weight must be"));
	assert_int_equal(virgo_analytics_set(-1, "allkey", "z", NULL), 0);
	assert_int_equal(virgo_analytics_get(0, "allkey", v, sizeof v, NULL), 0);
	assert_int_equal(virgo_analytics_get(1, "allkey", v, sizeof v, NULL), 0);
	assert_int_equal(virgo_analytics_get(0, "cpu_workers", v, sizeof v, &rev), 0);
	int n = 0;
	assert_int_equal(virgo_analytics_ls(1, NULL, count_cb, &n), 0);
	assert_int_equal(n, 1);
	assert_int_equal(virgo_analytics_set(1, "libkey", "3", NULL), 0);
	n = 0;
	assert_int_equal(virgo_analytics_history(1, "libkey", count_cb, &n), 0);
	assert_int_equal(n, 2);
	/* a watch from now sees the next three changes, in order */
	struct seen s = {0};
	pthread_t th;
	pthread_create(&th, NULL, setter, NULL);
	assert_int_equal(virgo_analytics_watch(1, VIRGO_ANALYTICS_NOW, 3000, watch_cb, &s), 0);
	pthread_join(th, NULL);
	assert_int_equal(s.n, 3);
	assert_string_equal(s.val[0], "w0");
	assert_string_equal(s.val[2], "w2");
	/* and from a revision: the same three again */
	struct seen s2 = {0};
	assert_int_equal(virgo_analytics_watch(1, s.rev[0] - 1, 3000, watch_cb, &s2), 0);
	assert_true(s2.rev[0] == s.rev[0] && s2.rev[2] == s.rev[2]);
	assert_int_equal(virgo_analytics_watch(1, UINT64_MAX - 1, 1000, watch_cb, &s2), -ERANGE);
	assert_int_equal(virgo_analytics_watch(1, VIRGO_ANALYTICS_NOW, 300, watch_cb, &s2),
			 -ETIMEDOUT);

	/* the CLI */
	char virgo[700], out[8192];
	snprintf(virgo, sizeof virgo, "%s", th_virgo_cli());
	const char *set[] = {virgo, "-c", cl.client_conf, "analytics", "set", "node2",
			     "clikey=[a b]", NULL};
	assert_int_equal(th_run(set, out, sizeof out, 10000), 0);
	const char *get[] = {virgo, "-c", cl.client_conf, "analytics", "get", "node2", "clikey",
			     NULL};
	assert_int_equal(th_run(get, out, sizeof out, 10000), 0);
	assert_string_equal(out, "[a b]\n");
	const char *bad[] = {virgo, "-c", cl.client_conf, "analytics", "set", "--all",
			     "cpu_queue=-5", NULL};
	assert_int_equal(th_run(bad, out, sizeof out, 10000), 1);
	assert_non_null(strstr(out, "cpu_queue must be"));
	const char *ls[] = {virgo, "-c", cl.client_conf, "analytics", "ls", "--all", NULL};
	assert_int_equal(th_run(ls, out, sizeof out, 10000), 0);
	assert_non_null(strstr(out, "clikey"));
	assert_non_null(strstr(out, "localhost_load"));
	const char *hist[] = {virgo, "-c", cl.client_conf, "analytics", "history", "2", "libkey",
			      NULL};
	assert_int_equal(th_run(hist, out, sizeof out, 10000), 0);
	assert_non_null(strstr(out, "[1, 2]\n"));
}

static void plugins_and_programs_read_variables(void **state)
{
	(void)state;
	set_ok(0, "plugin_var=[p, q]");
	struct virgo_call_opts o = {.node_id = 1};
	void *out;
	size_t n;
	assert_int_equal(virgo_clone_ex("tp_analytics", "plugin_var", 10, &o, &out, &n, NULL), 0);
	assert_int_equal(n, 6);
	assert_memory_equal(out, "[p, q]", 6);
	free(out);
	assert_int_equal(virgo_clone_ex("tp_analytics", "nosuch", 6, &o, &out, &n, NULL), -ENOENT);
	/* a program sees a snapshot in its environment */
	const char *argv[] = {"sh", "-c", "echo \"$VIRGO_AN_plugin_var|$PATH\"", NULL};
	struct virgo_run_result r;
	assert_int_equal(virgo_run_ex(argv, &o, &r), 0);
	assert_int_equal(r.exit_code, 0);
	assert_int_equal(r.out_len, strlen("[p, q]|/usr/local/bin:/usr/bin:/bin\n"));
	assert_memory_equal(r.out, "[p, q]|/usr/local/bin:/usr/bin:/bin\n", r.out_len);
	virgo_run_result_free(&r);
}

static void publishing_restricted_by_address(void **state)
{
	(void)state;
	char orig[4096], out[512];
	FILE *f = fopen(cl.nodes[1].conf, "r");
	assert_non_null(f);
	size_t n = fread(orig, 1, sizeof orig - 1, f);
	orig[n] = '\0';
	fclose(f);
	char restricted[4200];
	snprintf(restricted, sizeof restricted, "%sanalytics_publish_from = 10.9.9.*\n", orig);
	write_file(cl.nodes[1].conf, restricted);
	th_node_signal(&cl, 1, SIGHUP);
	int64_t deadline = th_now_ms() + 3000;
	do { /* SIGHUP is handled on the node's own time */
		an_call(1, "set pr=1\r\n", "\r\n", out, sizeof out);
	} while (!strstr(out, "ERR EACCES") && th_now_ms() < deadline);
	assert_non_null(strstr(out, "ERR EACCES"));
	an_call(1, "pr=2\n", "\r\n", out, sizeof out); /* a bare publisher too */
	assert_non_null(strstr(out, "ERR EACCES"));
	an_call(1, "get weight\r\n", "\r\n", out, sizeof out); /* reading still works */
	assert_non_null(strstr(out, "VALUE weight"));
	snprintf(restricted, sizeof restricted, "%sanalytics_publish_from = 10.9.9.9, 127.0.0.*\n",
		 orig);
	write_file(cl.nodes[1].conf, restricted);
	th_node_signal(&cl, 1, SIGHUP);
	deadline = th_now_ms() + 3000;
	do {
		an_call(1, "set pr=3\r\n", "\r\n", out, sizeof out);
	} while (strncmp(out, "OK", 2) != 0 && th_now_ms() < deadline);
	assert_int_equal(strncmp(out, "OK", 2), 0);
	write_file(cl.nodes[1].conf, orig);
	th_node_signal(&cl, 1, SIGHUP);
}

static void serves_the_original_stream(void **state)
{
	(void)state;
	/* a node is itself a stream server for another node (or nc) */
	set_ok(1, "st1=[x, y]");
	int fd = th_connect(an_port(1));
	th_send(fd, "KERNEL_ANALYTICS_STREAMING_START\n", 33);
	char out[8192];
	assert_true(th_recv_until(fd, out, sizeof out, "st1=[x, y]\n", 3000) > 0);
	assert_null(strstr(out, "CHANGE")); /* bare name=value lines */
	set_ok(1, "st2=later");
	assert_true(th_recv_until(fd, out, sizeof out, "st2=later\n", 3000) > 0);
	close(fd);
}

/* Revisions never repeat across a restart (analytics_dir): the restarted
 * node's changes get higher revisions, and a watch from before the
 * restart is told its history was reset instead of being given the new
 * run's changes as if they followed. */
static void watch_after_a_restart(void **state)
{
	(void)state;
	char out[512];
	uint64_t r1 = 0, r2 = 0;
	an_call(1, "set rs1=before\r\n", "\r\n", out, sizeof out);
	assert_int_equal(sscanf(out, "OK %" SCNu64, &r1), 1);
	th_node_signal(&cl, 1, SIGTERM);
	assert_int_equal(th_node_start(&cl, 1), 0);
	an_call(1, "set rs2=after\r\n", "\r\n", out, sizeof out);
	assert_int_equal(sscanf(out, "OK %" SCNu64, &r2), 1);
	assert_true(r2 > r1);
	char req[64];
	snprintf(req, sizeof req, "watch from %" PRIu64 "\r\n", r1);
	an_call(1, req, "\r\n", out, sizeof out);
	assert_non_null(strstr(out, "ERR ERANGE"));
	assert_non_null(strstr(out, "restarted"));
	/* from the new run's revisions a watch resumes as before */
	snprintf(req, sizeof req, "watch from %" PRIu64 "\r\n", r2 - 1);
	int fd = th_connect(an_port(1));
	th_send(fd, req, strlen(req));
	assert_true(th_recv_until(fd, out, sizeof out, "rs2 after", 3000) > 0);
	close(fd);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(original_file_is_read),
		cmocka_unit_test(file_change_is_noticed),
		cmocka_unit_test(sighup_rereads),
		cmocka_unit_test(publisher_over_the_socket),
		cmocka_unit_test(outbound_stream_and_its_restart),
		cmocka_unit_test(watch_resumes_by_revision),
		cmocka_unit_test(watchers_that_vanish_mid_publish),
		cmocka_unit_test(bad_knob_value_is_refused),
		cmocka_unit_test(cpu_workers_serialises_jobs),
		cmocka_unit_test(cpu_queue_and_job_timeout),
		cmocka_unit_test(weight_zero_stops_placement),
		cmocka_unit_test(mem_limit_max_connections_log_level),
		cmocka_unit_test(node_publishes_what_it_learns),
		cmocka_unit_test(libvirgo_and_cli),
		cmocka_unit_test(plugins_and_programs_read_variables),
		cmocka_unit_test(publishing_restricted_by_address),
		cmocka_unit_test(serves_the_original_stream),
		cmocka_unit_test(watch_after_a_restart),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
