/*
 * test_analytics_uring.c - the watcher fan-out's two ways of sending
 * (analytics_uring = yes: io_uring batches where the kernel allows;
 * analytics_uring = no: one send(2) per watcher) deliver the same stream.
 * Two nodes, one each way.  First three watchers, one of them slow (a
 * 4 KiB receive buffer, read only at the end), take 4.8 MB of changes
 * nobody reads: past what the kernel buffers, so their sends come back
 * short or EAGAIN, the rest goes the buffered way, they stall and later
 * catch up from the rings.  Then 120 more watchers join and 400 more
 * changes go by.  Every watcher of both nodes gets every change from its
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
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "../harness.h"

#define AN_BASE 64000
#define EARLY 3 /* watchers of both phases, the last one slow */
#define WATCHERS (EARLY + 120)
#define P1 4800 /* changes nobody reads: 12 keys, within their 500-value rings */
#define CHANGES (P1 + 400)
#define VALUE 1000

static struct th_cluster cl;

static int setup(void **state)
{
	(void)state;
	const char *extra[2] = {"analytics_uring = yes\n", "analytics_uring = no\n"};
	return th_cluster_start_nodes(&cl, 2, "max_connections = 1000\nanalytics_conf = \n", extra,
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

static uint64_t revs[2][CHANGES]; /* node, change: its revision there */

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

/* Changes from..to (u0..u11 first, then u12..u14), the same to both
 * nodes, one line at a time, interleaved. */
static void publish(const int pub[2], int from, int to)
{
	char line[VALUE + 64];
	for (int i = from; i < to; i++) {
		int n = snprintf(line, sizeof line, "u%d=%d ", i < P1 ? i % 12 : 12 + i % 3, i);
		memset(line + n, 'x', VALUE - (size_t)n);
		memcpy(line + VALUE, "\n", 2);
		for (int node = 0; node < 2; node++)
			assert_int_equal(th_send(pub[node], line, VALUE + 1), 0);
	}
}

static void both_ways_deliver_the_same_stream(void **state)
{
	(void)state;
	static struct watcher ws[2][WATCHERS];
	int pub[2];
	for (int node = 0; node < 2; node++) {
		watchers_open(ws[node], 0, EARLY, node);
		pub[node] = th_connect(th_port(&cl, node, AN_BASE));
	}
	publish(pub, 0, P1);
	/* the last of them is applied: the 120 watch from after it */
	for (int node = 0; node < 2; node++) {
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
	for (int node = 0; node < 2; node++) {
		read_all(ws[node], 0, EARLY - 1, node, deadline);
		read_all(ws[node], EARLY, WATCHERS, node, deadline);
		/* the slow one last: it stalled, it catches up now */
		read_all(ws[node], EARLY - 1, EARLY, node, deadline);
	}
	/* both nodes gave each change to all their watchers under one revision,
	 * and in the same order (read_all checked the values' order) */
	for (int node = 0; node < 2; node++)
		for (int i = 1; i < CHANGES; i++)
			assert_true(revs[node][i] > revs[node][i - 1]);
	assert_true(th_log_has(&cl.nodes[1], "watcher sends: one send(2) each (analytics_uring = no)"));
	if (th_log_has(&cl.nodes[0], "watcher sends: io_uring batches"))
		printf("node 0 sent in io_uring batches, node 1 one send(2) each\n");
	else /* the kernel refused io_uring: the fallback, said in the log */
		assert_true(th_log_has(&cl.nodes[0], "watcher sends: one send(2) each (io_uring_queue_init"));
	for (int node = 0; node < 2; node++) {
		close(pub[node]);
		for (int i = 0; i < WATCHERS; i++)
			close(ws[node][i].fd);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(both_ways_deliver_the_same_stream),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
