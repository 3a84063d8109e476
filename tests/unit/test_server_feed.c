/*
 * test_server_feed.c - the server in-process with a test service, for the
 * paths a real service reaches only by timing: feeds that other threads
 * push to many times (in order, bounded per connection, -EPIPE once the
 * client is gone), deferred replies (vconn_ticket) racing a close, and
 * the output budget.  Built into the TSan run (make test-tsan) as well.
 *
 * The test links its own vsvc_table (service.c's is weak) with one
 * service, "feedtest":
 *   sub N SIZE    a producer thread pushes N lines of SIZE bytes through
 *                 a feed, retrying while the feed is full
 *   flood N SIZE  the same without retrying: counts -ENOBUFS
 *   job           a reply computed on another thread (ticket), 1 ms later
 *   ask           "ok" at once
 *   spew N        N bytes of reply at once, ignoring the output budget
 *   here N SIZE   the connection's own loop writes N lines of SIZE bytes
 *                 through a feed (vconn_feed_write_here), stopping at the
 *                 first one refused
 */
#include <errno.h>
#include <event2/buffer.h>
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
#include <unistd.h>

#include <cmocka.h>

#include "../../src/daemon/config.h"
#include "../../src/daemon/server.h"
#include "../../src/daemon/service.h"
#include "../harness.h"

#define FEED_MAX (64u << 10)

static _Atomic int pushed, refused, gone, producers_done, tickets_run, here_accepted;

struct producer {
	struct vconn_feed *f;
	int n, size;
	bool retry;
};

static void *producer_main(void *arg)
{
	struct producer *p = arg;
	char *line = malloc((size_t)p->size);
	for (int i = 0; i < p->n; i++) {
		int h = snprintf(line, (size_t)p->size, "%08d ", i);
		memset(line + h, 'x', (size_t)(p->size - h - 1));
		line[p->size - 1] = '\n';
		int rc;
		while ((rc = vconn_feed_push(p->f, line, (size_t)p->size)) == -ENOBUFS && p->retry)
			usleep(200);
		if (rc == 0)
			atomic_fetch_add(&pushed, 1);
		else if (rc == -ENOBUFS)
			atomic_fetch_add(&refused, 1);
		else if (rc == -EPIPE) {
			atomic_fetch_add(&gone, 1);
			break;
		}
	}
	vconn_feed_release(p->f);
	free(line);
	free(p);
	atomic_fetch_add(&producers_done, 1);
	return NULL;
}

static void job_done(struct vconn *c, void *arg)
{
	(void)arg;
	atomic_fetch_add(&tickets_run, 1);
	if (!c)
		return;
	evbuffer_add(vconn_out(c), "done\n", 5);
	vconn_resume(c);
}

static void *job_main(void *arg)
{
	usleep(1000);
	vconn_ticket_post(arg, job_done, NULL);
	return NULL;
}

/* the service's own settings: one key, reloadable */
struct ft_settings {
	uint64_t feed_max;
	int unused_int;
};

static void ft_defaults(void *s) { ((struct ft_settings *)s)->feed_max = FEED_MAX; }

static const struct vsvc_key ft_keys[] = {
	{"feed_max", VSVC_KEY_SIZE, offsetof(struct ft_settings, feed_max), 0, 1024, 1 << 30,
	 "a size from 1K to 1G", true},
	{"feed_unused", VSVC_KEY_INT, offsetof(struct ft_settings, unused_int), 0, 0, 9, "0..9",
	 false},
	{NULL, 0, 0, 0, 0, 0, NULL, false},
};

static _Atomic uint64_t feed_max_seen; /* what init and reload got */
static unsigned node_id_seen;

static int ft_init(const struct vd_node *node, void **svc)
{
	const struct ft_settings *st = node->settings;
	atomic_store(&feed_max_seen, st->feed_max);
	node_id_seen = node->node_id;
	*svc = NULL;
	return node->acct && node->pool ? 0 : -1;
}

static int ft_reload(void *svc, const void *settings)
{
	(void)svc;
	const struct ft_settings *st = settings;
	atomic_store(&feed_max_seen, st->feed_max);
	return 0;
}

static void ft_fini(void *svc) { (void)svc; }

static int ft_on_input(struct vconn *c, struct evbuffer *in, bool eof)
{
	(void)eof;
	for (;;) {
		if (vconn_out_full(c))
			return VSVC_MORE;
		size_t n;
		char *line = evbuffer_readln(in, &n, EVBUFFER_EOL_LF);
		if (!line)
			return VSVC_KEEP;
		int count = 0, size = 0;
		bool sub = sscanf(line, "sub %d %d", &count, &size) == 2;
		bool flood = !sub && sscanf(line, "flood %d %d", &count, &size) == 2;
		if (sub || flood) {
			struct producer *p = calloc(1, sizeof *p);
			p->f = vconn_feed_new(c, FEED_MAX);
			p->n = count;
			p->size = size;
			p->retry = sub;
			pthread_t th;
			pthread_create(&th, NULL, producer_main, p);
			pthread_detach(th);
		} else if (sscanf(line, "here %d %d", &count, &size) == 2) {
			struct vconn_feed *f = vconn_feed_new(c, FEED_MAX);
			vconn_feed_limit_out(f, 8192);
			char *l = malloc((size_t)size);
			int i = 0;
			for (; i < count; i++) {
				int h = snprintf(l, (size_t)size, "%08d ", i);
				memset(l + h, 'h', (size_t)(size - h - 1));
				l[size - 1] = '\n';
				if (vconn_feed_write_here(f, l, (size_t)size) != 0)
					break;
			}
			atomic_store(&here_accepted, i);
			free(l);
			vconn_feed_release(f); /* what it holds still goes out */
		} else if (sscanf(line, "spew %d", &count) == 1) {
			/* a service that ignores the output budget */
			char *junk = malloc((size_t)count);
			memset(junk, 'j', (size_t)count);
			junk[count - 1] = '\n';
			evbuffer_add(vconn_out(c), junk, (size_t)count);
			free(junk);
		} else if (strcmp(line, "job") == 0) {
			struct vconn_ticket *t = vconn_ticket_new(c);
			pthread_t th;
			pthread_create(&th, NULL, job_main, t);
			pthread_detach(th);
			free(line);
			return VSVC_WAIT;
		} else {
			evbuffer_add(vconn_out(c), "ok\n", 3);
		}
		free(line);
	}
}

static const struct vsvc feedtest_service = {
	.name = "feedtest",
	.base_port = 0,
	.conn_size = 8,
	.keys = ft_keys,
	.settings_size = sizeof(struct ft_settings),
	.settings_defaults = ft_defaults,
	.init = ft_init,
	.reload = ft_reload,
	.fini = ft_fini,
	.on_input = ft_on_input,
};

const struct vsvc *const vsvc_table[] = {&feedtest_service, NULL};

static struct vd_server *srv;
static pthread_t srv_th;
static int port;

static void *server_main(void *arg)
{
	(void)arg;
	server_run(srv);
	return NULL;
}

static int free_port(void)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t len = sizeof a;
	bind(fd, (struct sockaddr *)&a, sizeof a);
	getsockname(fd, (struct sockaddr *)&a, &len);
	close(fd);
	return ntohs(a.sin_port);
}

static char conf_path[128];

static void write_conf(const char *text)
{
	FILE *f = fopen(conf_path, "w");
	fputs(text, f);
	fclose(f);
}

static int setup(void **state)
{
	(void)state;
	static struct vd_config cfg;
	char err[256];
	vd_config_defaults(&cfg);
	snprintf(conf_path, sizeof conf_path, "/tmp/virgo-test-feed-%d.conf", (int)getpid());
	write_conf("node_id = 7\nfeed_max = 128K\n");
	if (vd_config_load(&cfg, conf_path, err, sizeof err) != 0)
		return -1;
	cfg.threads = 2;
	cfg.max_value = 1 << 20; /* the hard output cap: budget + 1 MiB + a line */
	cfg.log_level = VLOG_WARN;
	vlog_set_level(VLOG_WARN);
	port = free_port();
	cfg.ports[0] = port;
	srv = server_start(&cfg);
	if (!srv)
		return -1;
	return pthread_create(&srv_th, NULL, server_main, NULL);
}

static int teardown(void **state)
{
	(void)state;
	server_stop(srv);
	pthread_join(srv_th, NULL);
	server_free(srv);
	unlink(conf_path);
	return 0;
}

/* A service's own keys: parsed into its settings struct, bounds-checked
 * with the file and line named, given to init, and re-read on SIGHUP
 * (reload hook); a file that no longer parses changes nothing. */
static void service_owned_settings(void **state)
{
	(void)state;
	assert_int_equal(node_id_seen, 7);
	assert_true(atomic_load(&feed_max_seen) == 128 << 10);
	struct vd_config c;
	char err[256];
	vd_config_defaults(&c);
	write_conf("\nfeed_max = 2G\n");
	assert_int_equal(vd_config_load(&c, conf_path, err, sizeof err), -1);
	assert_non_null(strstr(err, ":2: bad value '2G' for feed_max (a size from 1K to 1G)"));
	write_conf("feed_unused = 10\n");
	assert_int_equal(vd_config_load(&c, conf_path, err, sizeof err), -1);
	assert_non_null(strstr(err, ":1: bad value '10' for feed_unused (0..9)"));
	/* SIGHUP with a broken file: nothing changes */
	raise(SIGHUP);
	usleep(100000); /* nothing to wait for: the value must stay */
	assert_true(atomic_load(&feed_max_seen) == 128 << 10);
	write_conf("node_id = 7\nfeed_max = 1M\n");
	raise(SIGHUP);
	int64_t deadline = th_now_ms() + 5000;
	while (atomic_load(&feed_max_seen) != 1 << 20 && th_now_ms() < deadline)
		usleep(1000);
	assert_true(atomic_load(&feed_max_seen) == 1 << 20);
}

static void wait_producers(int n)
{
	int64_t deadline = th_now_ms() + 20000;
	while (atomic_load(&producers_done) < n && th_now_ms() < deadline)
		usleep(1000);
	assert_int_equal(atomic_load(&producers_done), n);
}

/* Reads exactly n lines of size bytes and checks their sequence. */
static void read_lines(int fd, int n, int size)
{
	static char buf[1 << 16];
	size_t have = 0;
	int next = 0;
	int64_t deadline = th_now_ms() + 20000;
	while (next < n) {
		assert_true(th_now_ms() < deadline);
		struct pollfd pf = {.fd = fd, .events = POLLIN};
		assert_int_equal(poll(&pf, 1, 5000), 1);
		ssize_t r = recv(fd, buf + have, sizeof buf - have, 0);
		assert_true(r > 0);
		have += (size_t)r;
		size_t off = 0;
		while (have - off >= (size_t)size) {
			char want[16];
			snprintf(want, sizeof want, "%08d ", next);
			assert_memory_equal(buf + off, want, 9);
			assert_int_equal(buf[off + (size_t)size - 1], '\n');
			next++;
			off += (size_t)size;
		}
		memmove(buf, buf + off, have - off);
		have -= off;
	}
	assert_int_equal(have, 0);
}

/* Many pushes from another thread arrive complete and in order, with
 * the feed's bound applied (the producer waits while it is full). */
static void feed_pushes_arrive_in_order(void **state)
{
	(void)state;
	atomic_store(&producers_done, 0);
	atomic_store(&pushed, 0);
	int fd = th_connect(port);
	assert_true(fd >= 0);
	assert_int_equal(th_send(fd, "sub 20000 100\n", 14), 0);
	read_lines(fd, 20000, 100);
	wait_producers(1);
	assert_int_equal(atomic_load(&pushed), 20000);
	/* the connection still answers requests */
	char out[64];
	assert_int_equal(th_send(fd, "ask\n", 4), 0);
	assert_true(th_recv_until(fd, out, sizeof out, "ok\n", 3000) > 0);
	close(fd);
}

/* The connection's own loop writing through its feed: straight to the
 * socket while it takes the bytes, then into the output up to the feed's
 * out_cap, then into the feed up to its bound, then refused; the client
 * then reads every accepted line once, in order (the feed's bytes follow
 * the output's). */
static void feed_written_from_its_own_loop(void **state)
{
	(void)state;
	atomic_store(&here_accepted, -1);
	int fd = th_connect(port);
	assert_true(fd >= 0);
	assert_int_equal(th_send(fd, "here 40000 1000\n", 16), 0);
	int64_t deadline = th_now_ms() + 10000;
	while (atomic_load(&here_accepted) < 0 && th_now_ms() < deadline)
		usleep(1000);
	int n = atomic_load(&here_accepted);
	print_message("accepted %d of 40000 lines before the client read\n", n);
	assert_true(n > 0 && n < 40000); /* the bound was reached */
	assert_true((size_t)n * 1000 < FEED_MAX + 8192 + (32u << 20));
	read_lines(fd, n, 1000);
	char out[64];
	assert_int_equal(th_send(fd, "ask\n", 4), 0);
	assert_true(th_recv_until(fd, out, sizeof out, "ok\n", 3000) > 0);
	close(fd);
}

/* A client that does not read: pushes beyond the feed's bound are
 * refused (nothing is buffered without limit); once it closes, pushes
 * fail with -EPIPE and the producer can end. */
static void feed_bounded_then_gone(void **state)
{
	(void)state;
	atomic_store(&producers_done, 0);
	atomic_store(&pushed, 0);
	atomic_store(&refused, 0);
	atomic_store(&gone, 0);
	int fd = th_connect(port);
	assert_true(fd >= 0);
	assert_int_equal(th_send(fd, "flood 50000 1000\n", 17), 0);
	wait_producers(1);
	/* at most the feed, the output budget and the socket buffers */
	print_message("pushed %d, refused %d of 50000\n", atomic_load(&pushed),
		      atomic_load(&refused));
	assert_true(atomic_load(&refused) > 0);
	assert_true((size_t)atomic_load(&pushed) * 1000 < FEED_MAX + VCONN_OUT_BUDGET + (32u << 20));
	close(fd);
	/* a long-lived producer on a connection that closes (a new one:
	 * the first stopped reading requests once its output was full) */
	atomic_store(&producers_done, 0);
	fd = th_connect(port);
	assert_int_equal(th_send(fd, "sub 1000000000 100\n", 19), 0);
	char b[512];
	assert_true(recv(fd, b, sizeof b, 0) > 0); /* it is pushing */
	close(fd);
	wait_producers(1);
	assert_int_equal(atomic_load(&gone), 1);
}

/* Deferred replies and feeds racing connections that close: every
 * ticket runs exactly once (with NULL once its connection is gone) and
 * every producer ends.  Run under TSan by make test-tsan. */
static void tickets_and_feeds_race_closes(void **state)
{
	(void)state;
	atomic_store(&producers_done, 0);
	atomic_store(&tickets_run, 0);
	int rounds = 200;
	for (int i = 0; i < rounds; i++) {
		int fd = th_connect(port);
		assert_true(fd >= 0);
		assert_int_equal(th_send(fd, "sub 1000 64\njob\n", 16), 0);
		if (i % 2) { /* half wait for something first */
			char b[256];
			recv(fd, b, sizeof b, 0);
		}
		close(fd);
	}
	wait_producers(rounds);
	int64_t deadline = th_now_ms() + 10000;
	while (atomic_load(&tickets_run) < rounds && th_now_ms() < deadline)
		usleep(1000);
	assert_int_equal(atomic_load(&tickets_run), rounds);
}

/* The server enforces the output budget whatever the service: one reply
 * over the budget but within the largest declared reply is delivered;
 * a service that queues far more than that has its connection cut. */
static void output_budget_enforced(void **state)
{
	(void)state;
	int fd = th_connect(port);
	assert_true(fd >= 0);
	int n = 3 << 19; /* 1.5 MiB: over the budget, within the hard cap */
	char req[32];
	int len = snprintf(req, sizeof req, "spew %d\nask\n", n);
	assert_int_equal(th_send(fd, req, (size_t)len), 0);
	static char buf[1 << 16];
	size_t got = 0;
	int64_t deadline = th_now_ms() + 10000;
	char tail[4] = "";
	while (got < (size_t)n + 3 && th_now_ms() < deadline) {
		ssize_t r = recv(fd, buf, sizeof buf, 0);
		assert_true(r > 0);
		got += (size_t)r;
		for (ssize_t i = 0; i < r; i++) { /* the last 3 bytes so far */
			memmove(tail, tail + 1, 2);
			tail[2] = buf[i];
		}
	}
	assert_int_equal(got, (size_t)n + 3); /* the spew, then "ok\n" */
	assert_memory_equal(tail, "ok\n", 3);
	/* 8 MiB at once: far past budget + largest reply; the client does
	 * not read, and the server closes instead of holding it */
	len = snprintf(req, sizeof req, "spew %d\n", 8 << 20);
	assert_int_equal(th_send(fd, req, (size_t)len), 0);
	int64_t t0 = th_now_ms();
	struct pollfd pf = {.fd = fd, .events = 0};
	bool closed = false;
	while (!closed && th_now_ms() - t0 < 10000) {
		/* drain what the kernel already holds, then see the end */
		ssize_t r = recv(fd, buf, sizeof buf, MSG_DONTWAIT);
		if (r == 0 || (r < 0 && errno != EAGAIN))
			closed = true;
		else if (r < 0)
			poll(&pf, 1, 50);
	}
	assert_true(closed);
	close(fd);
}

int main(void)
{
	signal(SIGPIPE, SIG_IGN);
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(service_owned_settings),
		cmocka_unit_test(feed_pushes_arrive_in_order),
		cmocka_unit_test(feed_bounded_then_gone),
		cmocka_unit_test(feed_written_from_its_own_loop),
		cmocka_unit_test(tickets_and_feeds_race_closes),
		cmocka_unit_test(output_budget_enforced),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
