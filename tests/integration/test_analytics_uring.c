/*
 * test_analytics_uring.c - the watcher fan-out's two ways of sending
 * (analytics_uring = yes: io_uring batches where the kernel allows;
 * analytics_uring = no: one send(2) per watcher) deliver the same stream.
 * Three nodes: one each way, and one whose io_uring_setup a seccomp
 * filter refuses (as containers do), which must fall back to plain sends
 * at run time and say so.  First three watchers, one of them slow (a
 * 4 KiB receive buffer, read only at the end), take 4.8 MB of changes
 * nobody reads: past what the kernel buffers, so their sends come back
 * short or EAGAIN, the rest goes the buffered way, they stall and later
 * catch up from the rings.  Then 120 more watchers join and 400 more
 * changes go by.  Every watcher of every node gets every change from its
 * start once, in order, under the revision the node's other watchers saw
 * it with; the log says which way each node sends.
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
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <linux/filter.h>
#include <linux/seccomp.h>

#include <cmocka.h>

#include "../harness.h"

#define AN_BASE 64000
#define EARLY 3 /* watchers of both phases, the last one slow */
#define WATCHERS (EARLY + 120)
#define P1 4800 /* changes nobody reads: 12 keys, within their 500-value rings */
#define CHANGES (P1 + 400)
#define VALUE 1000
#define NODES 3
/* in a node's config: this test starts it with io_uring_setup refused */
#define NO_URING "# test: io_uring refused\n"

static struct th_cluster cl;

static int setup(void **state)
{
	(void)state;
	const char *extra[NODES] = {"analytics_uring = yes\n", "analytics_uring = no\n",
				    ("analytics_uring = yes\n" NO_URING)};
	return th_cluster_start_nodes(&cl, NODES, "max_connections = 1000\nanalytics_conf = \n", extra,
				      NULL);
}

static int teardown(void **state)
{
	(void)state;
	return th_cluster_teardown(&cl);
}

/* One watcher's stream as read so far: the changes of t* seen, in order. */
struct watcher {
	int fd;
	char buf[4096];
	size_t used;
	int seen; /* changes of u* so far: values from..seen-1, in order */
	uint64_t last_rev;
};

static uint64_t revs[NODES][CHANGES]; /* node, change: its revision there */

/* Parses the whole lines in w's buffer; a change of t* must be the next
 * one, after the last revision, and carry the node's revision for it. */
static void watcher_parse(struct watcher *w, int node)
{
	char *s = w->buf, *nl;
	while ((nl = memchr(s, '\n', w->used - (size_t)(s - w->buf)))) {
		*nl = '\0';
		uint64_t rev;
		char key[16];
		int val;
		if (strncmp(s, "WATCHING ", 9) == 0) {
			s = nl + 1;
			continue;
		}
		int got = sscanf(s, "CHANGE %" SCNu64 " %15s %d", &rev, key, &val);
		if (got < 2 || (key[0] == 'u' && got != 3))
			fail_msg("node %d: not a change: %.80s", node, s);
		if (rev <= w->last_rev)
			fail_msg("node %d: revision %" PRIu64 " after %" PRIu64, node, rev, w->last_rev);
		w->last_rev = rev;
		if (key[0] == 'u') { /* not the node's own learnt variables */
			if (val != w->seen)
				fail_msg("node %d: change %d where %d was due", node, val, w->seen);
			if (revs[node][val] == 0)
				revs[node][val] = rev;
			else if (revs[node][val] != rev)
				fail_msg("node %d: change %d as revision %" PRIu64 " and %" PRIu64, node,
					 val, rev, revs[node][val]);
			w->seen++;
		}
		s = nl + 1;
	}
	w->used -= (size_t)(s - w->buf);
	memmove(w->buf, s, w->used);
}

/* Reads watchers ws[from..to) until each has all CHANGES (or the
 * deadline). */
static void read_all(struct watcher *ws, int from, int to, int node, int64_t deadline)
{
	static struct pollfd p[WATCHERS];
	int n = to - from, left = n;
	ws += from;
	while (left > 0 && th_now_ms() < deadline) {
		for (int i = 0; i < n; i++)
			p[i] = (struct pollfd){ws[i].seen < CHANGES ? ws[i].fd : -1, POLLIN, 0};
		if (poll(p, (nfds_t)n, 200) <= 0)
			continue;
		for (int i = 0; i < n; i++) {
			if (!(p[i].revents & (POLLIN | POLLHUP | POLLERR)))
				continue;
			struct watcher *w = &ws[i];
			ssize_t r = recv(w->fd, w->buf + w->used, sizeof w->buf - 1 - w->used, 0);
			if (r <= 0)
				fail_msg("node %d: watcher %d closed after %d changes", node, from + i,
					 w->seen);
			w->used += (size_t)r;
			watcher_parse(w, node);
			if (w->seen == CHANGES)
				left--;
		}
	}
	for (int i = 0; i < n; i++)
		if (ws[i].seen != CHANGES)
			fail_msg("node %d: watcher %d got up to %d of %d changes", node, from + i,
				 ws[i].seen, CHANGES);
}

/* Connects watchers ws[from..to) of node and reads their WATCHING. */
static void watchers_open(struct watcher *ws, int from, int to, int node)
{
	int port = th_port(&cl, node, AN_BASE);
	for (int i = from; i < to; i++) {
		struct watcher *w = &ws[i];
		w->fd = th_connect_rcvbuf(port, i == EARLY - 1 ? 4096 : 0);
		assert_true(w->fd >= 0);
		assert_int_equal(th_send(w->fd, "watch\r\n", 7), 0);
	}
	for (int i = from; i < to; i++) { /* WATCHING <rev>, byte by byte */
		char c = 0;
		while (c != '\n')
			assert_int_equal(recv(ws[i].fd, &c, 1, 0), 1);
		ws[i].seen = i < EARLY ? 0 : P1;
	}
}

/* Changes from..to (u0..u11 first, then u12..u14), the same to every
 * node, one line at a time, interleaved. */
static void publish(const int pub[NODES], int from, int to)
{
	char line[VALUE + 64];
	for (int i = from; i < to; i++) {
		int n = snprintf(line, sizeof line, "u%d=%d ", i < P1 ? i % 12 : 12 + i % 3, i);
		memset(line + n, 'x', VALUE - (size_t)n);
		memcpy(line + VALUE, "\n", 2);
		for (int node = 0; node < NODES; node++)
			assert_int_equal(th_send(pub[node], line, VALUE + 1), 0);
	}
}

static void every_way_delivers_the_same_stream(void **state)
{
	(void)state;
	static struct watcher ws[NODES][WATCHERS];
	int pub[NODES];
	for (int node = 0; node < NODES; node++) {
		watchers_open(ws[node], 0, EARLY, node);
		pub[node] = th_connect(th_port(&cl, node, AN_BASE));
	}
	publish(pub, 0, P1);
	/* the last of them is applied: the 120 watch from after it */
	for (int node = 0; node < NODES; node++) {
		char want[32], out[1200];
		snprintf(want, sizeof want, " %d ", P1 - 1);
		bool done = false;
		int64_t deadline = th_now_ms() + 30000;
		while (!done && th_now_ms() < deadline) {
			int fd = th_connect(th_port(&cl, node, AN_BASE));
			char req[32];
			snprintf(req, sizeof req, "get u%d\r\n", (P1 - 1) % 12);
			th_send(fd, req, strlen(req));
			done = th_recv_until(fd, out, sizeof out, "\r\n", 2000) > 0 &&
			       strstr(out, want) != NULL;
			close(fd);
		}
		assert_true(done);
		watchers_open(ws[node], EARLY, WATCHERS, node);
	}
	publish(pub, P1, CHANGES);
	int64_t deadline = th_now_ms() + 60000; /* a loaded CI host */
	for (int node = 0; node < NODES; node++) {
		read_all(ws[node], 0, EARLY - 1, node, deadline);
		read_all(ws[node], EARLY, WATCHERS, node, deadline);
		/* the slow one last: it stalled, it catches up now */
		read_all(ws[node], EARLY - 1, EARLY, node, deadline);
	}
	/* both nodes gave each change to all their watchers under one revision,
	 * and in the same order (read_all checked the values' order) */
	for (int node = 0; node < NODES; node++)
		for (int i = 1; i < CHANGES; i++)
			assert_true(revs[node][i] > revs[node][i - 1]);
	assert_true(th_log_has(&cl.nodes[1], "watcher sends: one send(2) each (analytics_uring = no)"));
	assert_true(th_log_has(&cl.nodes[2], "watcher sends: one send(2) each "
						 "(io_uring_queue_init: Operation not permitted)"));
	if (th_log_has(&cl.nodes[0], "watcher sends: io_uring batches"))
		printf("node 0 sent in io_uring batches, nodes 1 and 2 one send(2) each\n");
	else /* this kernel refuses io_uring too: the fallback, said in the log */
		assert_true(th_log_has(&cl.nodes[0], "watcher sends: one send(2) each (io_uring_queue_init"));
	for (int node = 0; node < NODES; node++) {
		close(pub[node]);
		for (int i = 0; i < WATCHERS; i++)
			close(ws[node][i].fd);
	}
}

/* The harness starts nodes through this binary (VIRGOD, set by main):
 * a node whose config has NO_URING gets a seccomp filter that answers
 * io_uring_setup with EPERM, as a container's default profile does; then
 * the real virgod runs in this process. */
static int as_virgod(char **argv)
{
	FILE *f = fopen(argv[2], "r");
	char line[512];
	bool refuse = false;
	while (f && !refuse && fgets(line, sizeof line, f))
		refuse = strcmp(line, NO_URING) == 0;
	if (f)
		fclose(f);
	if (refuse) {
		struct sock_filter prog[] = {
			BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
			BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_io_uring_setup, 0, 1),
			BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EPERM),
			BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
		};
		struct sock_fprog fp = {sizeof prog / sizeof prog[0], prog};
		if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 ||
		    prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &fp) != 0) {
			perror("seccomp");
			return 127;
		}
	}
	const char *real = getenv("AN_TEST_VIRGOD");
	execv(real, argv);
	perror(real);
	return 127;
}

int main(int argc, char **argv)
{
	if (argc == 3 && strcmp(argv[1], "--config") == 0)
		return as_virgod(argv);
	/* the real virgod as th_virgod finds it; the harness runs this binary */
	char real[700], self[600];
	const char *env = getenv("VIRGOD");
	if (env && *env)
		snprintf(real, sizeof real, "%s", env);
	else
		snprintf(real, sizeof real, "%s/../virgod", th_build_dir());
	ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
	if (n <= 0)
		return 1;
	self[n] = '\0';
	setenv("AN_TEST_VIRGOD", real, 1);
	setenv("VIRGOD", self, 1);
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(every_way_delivers_the_same_stream),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
