/*
 * test_analytics_ring.c - the watcher fan-out's io_uring batches
 * (src/services/analytics/analytics_uring.h) on loopback socket pairs:
 * more sends than one submission takes all arrive, each result comes
 * back with its tag in order, and a socket that is full answers at once
 * (-EAGAIN or a short count, never a send left waiting in the kernel), so
 * the caller can queue the rest the buffered way.  Skipped (counted)
 * where the kernel refuses io_uring; disabled, no ring is handed out.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "../../src/services/analytics/analytics_uring.h"

#define PAIRS 300 /* more than AN_URING_DEPTH: two submissions */

struct result {
	int n;
	int tags[PAIRS + 8];
	int res[PAIRS + 8];
};

static void done(void *tag, const void *data, size_t len, int res, void *arg)
{
	(void)data;
	(void)len;
	struct result *r = arg;
	r->tags[r->n] = (int)(intptr_t)tag;
	r->res[r->n] = res;
	r->n++;
}

/* This thread's ring; the test is skipped where the kernel refuses one. */
static struct an_ring *ring_or_skip(void)
{
	char why[160];
	if (!an_uring_probe(why, sizeof why)) {
		printf("io_uring unavailable here (%s)\n", why);
		skip();
	}
	an_uring_enable(true);
	struct an_ring *r = an_ring_get();
	assert_non_null(r);
	return r;
}

static void disabled_gives_no_ring(void **state)
{
	(void)state;
	an_uring_enable(false);
	assert_null(an_ring_get());
}

static void batches_deliver_in_order(void **state)
{
	(void)state;
	struct an_ring *r = ring_or_skip();
	static int sv[PAIRS][2];
	for (int i = 0; i < PAIRS; i++)
		assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv[i]), 0);
	static char lines[PAIRS][32];
	struct result res = {0};
	for (int i = 0; i < PAIRS; i++) {
		snprintf(lines[i], sizeof lines[i], "CHANGE %d x %d\r\n", i, i);
		if (!an_ring_add(r, sv[i][0], lines[i], strlen(lines[i]), (void *)(intptr_t)i)) {
			assert_int_equal(i, AN_URING_DEPTH); /* full only then */
			an_ring_flush(r, done, &res);
			assert_true(an_ring_add(r, sv[i][0], lines[i], strlen(lines[i]),
						(void *)(intptr_t)i));
		}
	}
	an_ring_flush(r, done, &res);
	assert_int_equal(res.n, PAIRS);
	for (int i = 0; i < PAIRS; i++) {
		assert_int_equal(res.tags[i], i);
		assert_int_equal(res.res[i], (int)strlen(lines[i]));
		char buf[64];
		ssize_t n = read(sv[i][1], buf, sizeof buf);
		assert_int_equal(n, (ssize_t)strlen(lines[i]));
		assert_memory_equal(buf, lines[i], (size_t)n);
		close(sv[i][0]);
		close(sv[i][1]);
	}
}

/* One flush of [the full-to-be socket's send, a send to another]: a
 * batch of two, so io_uring carries it (one send alone is a send(2)). */
static int send_pair(struct an_ring *r, int fd, const char *data, size_t len, int other)
{
	struct result res = {0};
	assert_true(an_ring_add(r, fd, data, len, (void *)(intptr_t)1));
	assert_true(an_ring_add(r, other, "ok\n", 3, (void *)(intptr_t)2));
	an_ring_flush(r, done, &res);
	assert_int_equal(res.n, 2);
	assert_int_equal(res.tags[0], 1);
	assert_int_equal(res.tags[1], 2);
	assert_int_equal(res.res[1], 3);
	return res.res[0];
}

static void full_socket_answers_at_once(void **state)
{
	(void)state;
	struct an_ring *r = ring_or_skip();
	int sv[2], ov[2];
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv), 0);
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, ov), 0);
	int sz = 4096;
	setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &sz, sizeof sz);
	static char big[1 << 16];
	memset(big, 'x', sizeof big);
	/* fill it: sends until one is refused or short, each answered by the
	 * flush itself (a send left waiting in the kernel would hang here) */
	size_t total = 0;
	bool full = false;
	char buf[8192];
	for (int k = 0; k < 64 && !full; k++) {
		int res = send_pair(r, sv[0], big, sizeof big, ov[0]);
		assert_true(res == -EAGAIN || res > 0);
		full = res == -EAGAIN || (size_t)res < sizeof big;
		total += res > 0 ? (size_t)res : 0;
		assert_int_equal(read(ov[1], buf, sizeof buf), 3);
	}
	assert_true(full);
	/* now it is full: -EAGAIN, at once */
	assert_int_equal(send_pair(r, sv[0], big, 100, ov[0]), -EAGAIN);
	/* what went through is all there */
	size_t got = 0;
	ssize_t n;
	while ((n = read(sv[1], buf, sizeof buf)) > 0)
		got += (size_t)n;
	assert_int_equal(got, total);
	/* a batch of one is a plain send, with the same answers */
	struct result res = {0};
	assert_true(an_ring_add(r, ov[0], "one\n", 4, NULL));
	an_ring_flush(r, done, &res);
	assert_int_equal(res.n, 1);
	assert_int_equal(res.res[0], 4);
	close(sv[0]);
	close(sv[1]);
	close(ov[0]);
	close(ov[1]);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(disabled_gives_no_ring),
		cmocka_unit_test(batches_deliver_in_order),
		cmocka_unit_test(full_socket_answers_at_once),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
