/*
 * test_mempool_client.c - libvirgo's re-send rules against a fake mempool
 * node (a thread of this test on loopback) that can reset a pooled
 * connection right after reading a request, or close idle ones.
 *
 * The node may or may not have run a request whose connection broke after
 * it was sent, so libvirgo re-sends only idempotent requests (get, set,
 * ping, stats, and malloc, which carries a request id the node uses to
 * answer a repeat with the first VUID); a free is reported as failed
 * rather than risk running twice.  A pooled connection the node closed while idle is
 * noticed before a malloc is sent on it, so that case still succeeds.
 */
#include <errno.h>
#include <netinet/in.h>
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
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "../harness.h"
#include "virgo.h"

#define FAKE_MAX_CONNS 16

struct fake_conn {
	int fd;
	size_t len;
	char buf[4096];
};

static struct fake {
	int lfd, offset;
	pthread_t th;
	_Atomic int stop;
	_Atomic int reset_next; /* reset the connection after the next request */
	_Atomic int close_idle; /* close (FIN) every connection now */
	_Atomic int closed_rounds; /* close_idle requests carried out */
	_Atomic int n_malloc, n_get, n_free, n_ping, n_accepted;
	char malloc_line[2][256]; /* the last two malloc requests */
	struct fake_conn conns[FAKE_MAX_CONNS];
	char conf[320];
} fk;

static void fake_drop(struct fake_conn *k, bool reset)
{
	if (reset) {
		struct linger lg = {1, 0}; /* close with RST */
		setsockopt(k->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
	}
	close(k->fd);
	k->fd = -1;
	k->len = 0;
}

static void fake_reply(int fd, const char *s) { (void)!write(fd, s, strlen(s)); }

/* Answers every complete line in k's buffer; false if k was dropped. */
static bool fake_serve(struct fake_conn *k)
{
	char *nl;
	while ((nl = memchr(k->buf, '\n', k->len)) != NULL) {
		size_t ll = (size_t)(nl - k->buf) + 1;
		char line[256];
		size_t cl = ll < sizeof line ? ll : sizeof line - 1;
		memcpy(line, k->buf, cl);
		line[cl] = '\0';
		memmove(k->buf, k->buf + ll, k->len - ll);
		k->len -= ll;
		if (strncmp(line, "malloc ", 7) == 0) {
			memcpy(fk.malloc_line[0], fk.malloc_line[1], sizeof fk.malloc_line[0]);
			memcpy(fk.malloc_line[1], line, sizeof line);
			fk.n_malloc++;
		} else if (strncmp(line, "get ", 4) == 0)
			fk.n_get++;
		else if (strncmp(line, "free ", 5) == 0)
			fk.n_free++;
		else if (strncmp(line, "ping", 4) == 0)
			fk.n_ping++;
		if (atomic_exchange(&fk.reset_next, 0)) {
			fake_drop(k, true);
			return false;
		}
		if (strncmp(line, "malloc ", 7) == 0)
			fake_reply(k->fd, "OK 1000000000abc\r\n"); /* node 1 */
		else if (strncmp(line, "get ", 4) == 0)
			fake_reply(k->fd, "VALUE 3\r\nabc\r\n");
		else if (strncmp(line, "free ", 5) == 0)
			fake_reply(k->fd, "OK\r\n");
		else if (strncmp(line, "ping", 4) == 0)
			fake_reply(k->fd, "PONG 1\r\n");
		else
			fake_reply(k->fd, "ERR ENOSYS fake\r\n");
	}
	return true;
}

static void *fake_main(void *arg)
{
	(void)arg;
	while (!fk.stop) {
		if (atomic_exchange(&fk.close_idle, 0)) {
			for (int i = 0; i < FAKE_MAX_CONNS; i++)
				if (fk.conns[i].fd >= 0)
					fake_drop(&fk.conns[i], false);
			atomic_fetch_add(&fk.closed_rounds, 1);
		}
		struct pollfd p[FAKE_MAX_CONNS + 1];
		p[0] = (struct pollfd){.fd = fk.lfd, .events = POLLIN};
		for (int i = 0; i < FAKE_MAX_CONNS; i++)
			p[i + 1] = (struct pollfd){.fd = fk.conns[i].fd, .events = POLLIN};
		if (poll(p, FAKE_MAX_CONNS + 1, 10) <= 0)
			continue;
		if (p[0].revents & POLLIN) {
			int fd = accept(fk.lfd, NULL, NULL);
			for (int i = 0; fd >= 0 && i < FAKE_MAX_CONNS; i++) {
				if (fk.conns[i].fd < 0) {
					fk.conns[i].fd = fd;
					fk.conns[i].len = 0;
					fk.n_accepted++;
					fd = -1;
				}
			}
			if (fd >= 0)
				close(fd);
		}
		for (int i = 0; i < FAKE_MAX_CONNS; i++) {
			struct fake_conn *k = &fk.conns[i];
			if (k->fd < 0 || !(p[i + 1].revents & (POLLIN | POLLHUP | POLLERR)) ||
			    p[i + 1].fd != k->fd)
				continue;
			ssize_t r = read(k->fd, k->buf + k->len, sizeof k->buf - k->len);
			if (r <= 0) {
				fake_drop(k, false);
				continue;
			}
			k->len += (size_t)r;
			fake_serve(k);
		}
	}
	return NULL;
}

static int setup(void **state)
{
	(void)state;
	for (int i = 0; i < FAKE_MAX_CONNS; i++)
		fk.conns[i].fd = -1;
	for (int tries = 0; tries < 20; tries++) {
		fk.offset = th_offset_base(1);
		fk.lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
		int one = 1;
		setsockopt(fk.lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
		struct sockaddr_in a = {.sin_family = AF_INET,
					.sin_port = htons((uint16_t)(30000 + fk.offset)),
					.sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
		if (bind(fk.lfd, (struct sockaddr *)&a, sizeof a) == 0 && listen(fk.lfd, 16) == 0)
			break;
		close(fk.lfd);
		fk.lfd = -1;
	}
	if (fk.lfd < 0)
		return -1;
	snprintf(fk.conf, sizeof fk.conf, "%s/virgo_client.conf", th_tmpdir());
	FILE *f = fopen(fk.conf, "w");
	if (!f)
		return -1;
	fprintf(f, "node = 1 127.0.0.1 %d\ntimeout_ms = 3000\nbackoff_ms = 1\nbackoff_max_ms = 1\n",
		fk.offset);
	fclose(f);
	if (pthread_create(&fk.th, NULL, fake_main, NULL) != 0)
		return -1;
	virgo_fini();
	return virgo_init(fk.conf);
}

static int teardown(void **state)
{
	(void)state;
	virgo_fini();
	fk.stop = 1;
	pthread_join(fk.th, NULL);
	close(fk.lfd);
	for (int i = 0; i < FAKE_MAX_CONNS; i++)
		if (fk.conns[i].fd >= 0)
			close(fk.conns[i].fd);
	return 0;
}

static void sleep_ms(int ms)
{
	struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000};
	nanosleep(&ts, NULL);
}

/* A pooled connection exists after one successful call. */
static void warm_pool(void)
{
	assert_int_equal(virgo_ping(0, NULL, NULL), 0);
}

/* The node read the malloc and then reset the connection: it may have
 * allocated, so libvirgo sends the very same request (same request id)
 * once more on a fresh connection; a real node answers a repeated id with
 * the VUID it gave the first time (test_mempool_find), never allocating
 * twice. */
static void malloc_is_resent_with_its_rid(void **state)
{
	(void)state;
	warm_pool();
	int before = fk.n_malloc;
	fk.reset_next = 1;
	virgo_vuid_t v = 0;
	assert_int_equal(virgo_malloc(100, &v), 0);
	assert_int_equal(v, 0x1000000000abcULL);
	assert_int_equal(fk.n_malloc - before, 2);
	assert_non_null(strstr(fk.malloc_line[1], " rid="));
	assert_string_equal(fk.malloc_line[0], fk.malloc_line[1]);
	/* the next malloc is a new request: a new id */
	assert_int_equal(virgo_malloc(100, &v), 0);
	assert_int_equal(fk.n_malloc - before, 3);
	assert_string_not_equal(fk.malloc_line[0], fk.malloc_line[1]);
}

static void free_is_not_resent(void **state)
{
	(void)state;
	warm_pool();
	int before = fk.n_free;
	fk.reset_next = 1;
	int rc = virgo_free(0x1000000000abcULL);
	assert_true(rc == -ECONNRESET || rc == -EPIPE);
	assert_int_equal(fk.n_free - before, 1);
}

/* A get is safe to repeat: the reset is invisible to the caller. */
static void get_is_resent(void **state)
{
	(void)state;
	warm_pool();
	int before = fk.n_get;
	fk.reset_next = 1;
	void *d = NULL;
	size_t n = 0;
	assert_int_equal(virgo_get(0x1000000000abcULL, &d, &n), 0);
	assert_int_equal(n, 3);
	assert_memory_equal(d, "abc", 3);
	free(d);
	assert_int_equal(fk.n_get - before, 2);
}

static void ping_is_resent(void **state)
{
	(void)state;
	warm_pool();
	int before = fk.n_ping;
	fk.reset_next = 1;
	unsigned id = 0;
	assert_int_equal(virgo_ping(0, &id, NULL), 0);
	assert_int_equal(id, 1);
	assert_int_equal(fk.n_ping - before, 2);
}

/* The node closed the pooled connection while it was idle (restart, idle
 * timeout): a malloc notices before sending and uses a fresh one, so it
 * succeeds and runs once. */
/* Connections to the fake node still ESTABLISHED on our side (a FIN
 * received turns them CLOSE_WAIT), from /proc/net/tcp. */
static int established_to_fake(void)
{
	struct sockaddr_in a;
	socklen_t len = sizeof a;
	getsockname(fk.lfd, (struct sockaddr *)&a, &len);
	unsigned port = ntohs(a.sin_port), n = 0;
	FILE *f = fopen("/proc/net/tcp", "r");
	char line[512];
	while (f && fgets(line, sizeof line, f)) {
		unsigned lport, rport, st;
		if (sscanf(line, " %*d: %*x:%x %*x:%x %x", &lport, &rport, &st) == 3 &&
		    rport == port && st == 0x01)
			n++;
	}
	if (f)
		fclose(f);
	return (int)n;
}

static void malloc_after_idle_close_succeeds(void **state)
{
	(void)state;
	warm_pool();
	int acc = fk.n_accepted, rounds = fk.closed_rounds;
	fk.close_idle = 1;
	int64_t deadline = th_now_ms() + 5000;
	while (fk.closed_rounds == rounds && th_now_ms() < deadline)
		sleep_ms(5);
	assert_true(fk.closed_rounds > rounds);
	/* the node's FIN reached our pooled sockets (under load the kernel
	 * may deliver it a moment after the node's close returns) */
	while (established_to_fake() > 0 && th_now_ms() < deadline)
		sleep_ms(5);
	assert_int_equal(established_to_fake(), 0);
	int before = fk.n_malloc;
	virgo_vuid_t v = 0;
	assert_int_equal(virgo_malloc(100, &v), 0);
	assert_int_equal(v, 0x1000000000abcULL);
	assert_int_equal(fk.n_malloc - before, 1);
	assert_true(fk.n_accepted > acc);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(malloc_is_resent_with_its_rid),
		cmocka_unit_test(free_is_not_resent),
		cmocka_unit_test(get_is_resent),
		cmocka_unit_test(ping_is_resent),
		cmocka_unit_test(malloc_after_idle_close_succeeds),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
