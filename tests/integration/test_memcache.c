/*
 * test_memcache.c - the memcached-compatible port end to end on a real
 * virgod: the memccapable conformance suite (ASCII), protocol edge cases
 * over raw sockets, CAS races, exptime semantics (polled with deadlines),
 * and how cached items share mem_limit with virgo_malloc memory.
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdbool.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "../harness.h"
#include "virgo.h"

/* 4M: the eviction tests can fill it quickly; 256K items allowed. */
#define NODE_EXTRA "mem_limit = 4M\nmax_alloc = 4M\nmax_value = 256K\nmax_line = 2048\n"
#define MEMCAPABLE "/usr/bin/memccapable"

static struct th_cluster cl;
static int mc_port, mp_port;

static int setup(void **state)
{
	(void)state;
	if (th_cluster_start(&cl, 1, NODE_EXTRA, "") != 0)
		return -1;
	mc_port = th_port(&cl, 0, 11211);
	mp_port = th_port(&cl, 0, 30000);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	return th_cluster_stop(&cl) == 0 ? 0 : -1;
}

static int conn(void)
{
	int fd = th_connect(mc_port);
	assert_true(fd >= 0);
	return fd;
}

/* Sends req and asserts the reply is exactly `want`. */
static void xchg_n(int fd, const char *req, size_t n, const char *want)
{
	static char buf[1 << 20];
	assert_int_equal(th_send(fd, req, n), 0);
	if (!want[0])
		return;
	ssize_t r = th_recv_until(fd, buf, sizeof buf, want, 3000);
	if (r < 0 || strcmp(buf, want) != 0)
		fail_msg("request %.60s: want [%s] got [%s]", req, want, r < 0 ? "timeout" : buf);
}

static void xchg(int fd, const char *req, const char *want) { xchg_n(fd, req, strlen(req), want); }

static void memccapable_ascii(void **state)
{
	(void)state;
	if (access(MEMCAPABLE, X_OK) != 0) {
		print_message("SKIP: %s not installed (apt-get install libmemcached-tools)\n",
			      MEMCAPABLE);
		skip();
	}
	char port[16], out[16384];
	snprintf(port, sizeof port, "%d", mc_port);
	const char *argv[] = {MEMCAPABLE, "-a", "-h", "127.0.0.1", "-p", port, "-t", "5", NULL};
	int rc = th_run(argv, out, sizeof out, 60000);
	if (rc != 0)
		fail_msg("memccapable -a exited %d:\n%s", rc, out);
	assert_non_null(strstr(out, "All tests passed"));
}

static void key_length_250_and_251(void **state)
{
	(void)state;
	int fd = conn();
	char k250[251], k251[252], req[700], want[700];
	memset(k250, 'a', 250);
	k250[250] = '\0';
	memset(k251, 'b', 251);
	k251[251] = '\0';
	snprintf(req, sizeof req, "set %s 1 0 2\r\nhi\r\n", k250);
	xchg(fd, req, "STORED\r\n");
	snprintf(req, sizeof req, "get %s\r\n", k250);
	snprintf(want, sizeof want, "VALUE %s 1 2\r\nhi\r\nEND\r\n", k250);
	xchg(fd, req, want);
	/* 251: refused; the data block is dropped, not run as a command */
	snprintf(req, sizeof req, "set %s 1 0 7\r\nversion\r\n", k251);
	xchg(fd, req, "CLIENT_ERROR bad command line format\r\n");
	snprintf(req, sizeof req, "get %s\r\n", k251);
	xchg(fd, req, "CLIENT_ERROR bad command line format\r\n");
	snprintf(req, sizeof req, "get x %s y\r\n", k251);
	xchg(fd, req, "CLIENT_ERROR bad command line format\r\n");
	xchg(fd, "version\r\n", "VERSION 1.6.0-virgo\r\n");
	close(fd);
}

static void bad_lengths(void **state)
{
	(void)state;
	int fd = conn();
	xchg(fd, "set n 0 0 -1\r\n", "CLIENT_ERROR bad command line format\r\n");
	xchg(fd, "set n 0 0 4294967296\r\n", "CLIENT_ERROR bad command line format\r\n");
	xchg(fd, "set n 0 0 99999999999999999999999999\r\n",
	     "CLIENT_ERROR bad command line format\r\n");
	/* above max_value (256K): refused, and the 300000 bytes are swallowed */
	static char big[300100];
	int n = snprintf(big, sizeof big, "set n 0 0 300000\r\n");
	memset(big + n, 'g', 300000); /* "ggg...": would be ERRORs if run */
	n += 300000;
	n += snprintf(big + n, sizeof big - (size_t)n, "\r\nget n\r\n");
	xchg_n(fd, big, (size_t)n, "SERVER_ERROR object too large for cache\r\nEND\r\n");
	/* an overlong line: error, then the connection still works */
	static char line[5000];
	memset(line, 'x', 4000);
	strcpy(line + 4000, "\r\nversion\r\n");
	xchg(fd, line, "CLIENT_ERROR line too long\r\nVERSION 1.6.0-virgo\r\n");
	close(fd);
}

static void missing_data_terminator(void **state)
{
	(void)state;
	int fd = conn();
	xchg(fd, "set t 0 0 2\r\nabcd\r\n", "CLIENT_ERROR bad data chunk\r\nERROR\r\n");
	xchg(fd, "get t\r\n", "END\r\n");
	/* a data block cut short by the peer's close stores nothing */
	xchg(fd, "set t 0 0 10\r\nabc", "");
	close(fd);
	fd = conn();
	xchg(fd, "get t\r\n", "END\r\n");
	close(fd);
}

/* memcached's binary protocol is not spoken: a binary request gets a
 * binary "not supported" response (opcode and opaque echoed) and the
 * connection closes, instead of no reply at all. */
static void binary_protocol_refused(void **state)
{
	(void)state;
	int fd = conn();
	uint8_t req[24] = {0x80, 0x0b}; /* version */
	memcpy(req + 12, "\xde\xad\xbe\xef", 4);
	assert_int_equal(th_send(fd, req, sizeof req), 0);
	static char buf[256];
	ssize_t n = th_recv_until(fd, buf, sizeof buf, NULL, 3000); /* until closed */
	assert_true(n >= 24);
	const uint8_t *r = (const uint8_t *)buf;
	assert_int_equal(r[0], 0x81);
	assert_int_equal(r[1], 0x0b);
	assert_int_equal((r[6] << 8) | r[7], 0x0083); /* not supported */
	assert_memory_equal(r + 12, "\xde\xad\xbe\xef", 4);
	uint32_t body = (uint32_t)r[8] << 24 | (uint32_t)r[9] << 16 | (uint32_t)r[10] << 8 | r[11];
	assert_int_equal((size_t)n, 24 + body);
	close(fd);
	/* 0x80 later in an ASCII connection is just a bad command */
	fd = conn();
	xchg(fd, "version\r\n\x80\r\nversion\r\n",
	     "VERSION 1.6.0-virgo\r\nERROR\r\nVERSION 1.6.0-virgo\r\n");
	close(fd);
}

static uint64_t mc_stat(const char *name);

/* Waits (deadline) until the node has made the item of a large value
 * whose first part it read (virgo_cache_bytes grows by its size): the
 * rest is then read straight into it. */
static void wait_item_made(uint64_t base, uint64_t size)
{
	int64_t deadline = th_now_ms() + 5000;
	while (mc_stat("virgo_cache_bytes") < base + size && th_now_ms() < deadline) {
		struct timespec ts = {0, 5 * 1000 * 1000};
		nanosleep(&ts, NULL); /* polling interval */
	}
	uint64_t now = mc_stat("virgo_cache_bytes");
	if (now < base + size)
		fail_msg("cache bytes %llu, want >= %llu + %llu", (unsigned long long)now,
			 (unsigned long long)base, (unsigned long long)size);
}

/* A large value arriving in pieces is read straight into its item
 * (store_big in memcache.c): check its bytes, a bad terminator, and a
 * request pipelined right behind it.  The second part is sent only once
 * the node has made the item from the first. */
static void large_value_in_pieces(void **state)
{
	(void)state;
	int fd = conn();
	uint64_t base = mc_stat("virgo_cache_bytes");
	static char val[200000], got[200200];
	for (size_t i = 0; i < sizeof val; i++)
		val[i] = (char)('a' + i % 26);
	const char hdr[] = "set piece 9 0 200000\r\n";
	assert_int_equal(th_send(fd, hdr, sizeof hdr - 1), 0);
	assert_int_equal(th_send(fd, val, 70000), 0);
	wait_item_made(base, sizeof val);
	assert_int_equal(th_send(fd, val + 70000, sizeof val - 70000), 0);
	const char head[] = "STORED\r\nVALUE piece 9 200000\r\n";
	assert_int_equal(th_send(fd, "\r\nget piece\r\n", 13), 0); /* 2 + 11 */
	ssize_t n = th_recv_until(fd, got, sizeof got, "\r\nEND\r\n", 3000);
	assert_int_equal(n, (ssize_t)(sizeof head - 1) + 200000 + 7);
	assert_memory_equal(got, head, sizeof head - 1);
	assert_memory_equal(got + sizeof head - 1, val, sizeof val);
	/* the same with a wrong terminator: refused, next request fine, the
	 * old value still there */
	const char hdr0[] = "set piece 0 0 200000\r\n";
	base = mc_stat("virgo_cache_bytes"); /* the old value stays meanwhile */
	assert_int_equal(th_send(fd, hdr0, sizeof hdr0 - 1), 0);
	assert_int_equal(th_send(fd, val, 100000), 0);
	wait_item_made(base, sizeof val);
	assert_int_equal(th_send(fd, val + 100000, sizeof val - 100000), 0);
	xchg(fd, "XXversion\r\n", "CLIENT_ERROR bad data chunk\r\nVERSION 1.6.0-virgo\r\n");
	assert_int_equal(th_send(fd, "get piece\r\n", 11), 0);
	n = th_recv_until(fd, got, sizeof got, "\r\nEND\r\n", 3000);
	assert_int_equal(n, (ssize_t)(sizeof head - 1 - 8) + 200000 + 7);
	close(fd);
}

/* A large value still arriving is read straight into its new item, whose
 * bytes are reserved from the start: a client that leaves half way gives
 * them all back and stores nothing. */
static void large_value_abandoned(void **state)
{
	(void)state;
	uint64_t base = mc_stat("virgo_cache_bytes");
	int fd = conn();
	static char val[1000];
	memset(val, 'z', sizeof val);
	const char hdr[] = "set gone 0 0 200000\r\n";
	assert_int_equal(th_send(fd, hdr, sizeof hdr - 1), 0);
	assert_int_equal(th_send(fd, val, sizeof val), 0);
	int64_t deadline = th_now_ms() + 3000;
	while (mc_stat("virgo_cache_bytes") < base + 200000 && th_now_ms() < deadline)
		;
	assert_true(mc_stat("virgo_cache_bytes") >= base + 200000);
	close(fd);
	deadline = th_now_ms() + 3000;
	while (mc_stat("virgo_cache_bytes") != base && th_now_ms() < deadline)
		;
	assert_true(mc_stat("virgo_cache_bytes") == base);
	fd = conn();
	xchg(fd, "get gone\r\n", "END\r\n");
	close(fd);
}

static void noreply_everywhere(void **state)
{
	(void)state;
	int fd = conn();
	xchg(fd,
	     "set q 0 0 1 noreply\r\n1\r\nadd q 0 0 1 noreply\r\n2\r\nreplace q 0 0 1 noreply\r\n3\r\n"
	     "append q 0 0 1 noreply\r\n4\r\nprepend q 0 0 1 noreply\r\n5\r\n"
	     "incr q 1 noreply\r\ndecr q 2 noreply\r\ntouch q 0 noreply\r\n"
	     "get q\r\n",
	     "VALUE q 0 3\r\n533\r\nEND\r\n");
	xchg(fd, "delete q noreply\r\nget q\r\n", "END\r\n");
	/* errors are silent under noreply too, as memcached 1.6: a client
	 * pipelining noreply commands stays in sync */
	xchg(fd, "set q 0 0 1 noreply\r\nx\r\nincr q 1 noreply\r\nincr q x noreply\r\n"
		 "add q 0 0 1 noreply\r\ny\r\ndelete nokey noreply\r\ntouch q x noreply\r\n"
		 "version\r\n",
	     "VERSION 1.6.0-virgo\r\n");
	close(fd);
}

static void incr_decr_wrap_and_floor(void **state)
{
	(void)state;
	int fd = conn();
	xchg(fd, "set c 0 0 20\r\n18446744073709551615\r\n", "STORED\r\n");
	xchg(fd, "incr c 1\r\n", "0\r\n");
	xchg(fd, "incr c 18446744073709551615\r\n", "18446744073709551615\r\n");
	xchg(fd, "incr c 2\r\n", "1\r\n");
	xchg(fd, "decr c 5\r\n", "0\r\n");
	xchg(fd, "set c 3 0 2\r\n99\r\nincr c 1\r\nget c\r\n",
	     "STORED\r\n100\r\nVALUE c 3 3\r\n100\r\nEND\r\n");
	xchg(fd, "incr nokey 1\r\n", "NOT_FOUND\r\n");
	xchg(fd, "incr c x\r\n", "CLIENT_ERROR invalid numeric delta argument\r\n");
	close(fd);
}

static uint64_t gets_cas(int fd, const char *key)
{
	char req[300], buf[4096];
	snprintf(req, sizeof req, "gets %s\r\n", key);
	assert_int_equal(th_send(fd, req, strlen(req)), 0);
	assert_true(th_recv_until(fd, buf, sizeof buf, "END\r\n", 3000) > 0);
	unsigned long long cas = 0;
	char k[256];
	unsigned fl, n;
	assert_int_equal(sscanf(buf, "VALUE %255s %u %u %llu", k, &fl, &n, &cas), 4);
	return cas;
}

static void cas_race_two_clients(void **state)
{
	(void)state;
	int a = conn(), b = conn();
	xchg(a, "set r 0 0 1\r\n0\r\n", "STORED\r\n");
	uint64_t ca = gets_cas(a, "r"), cb = gets_cas(b, "r");
	assert_true(ca == cb);
	char req[100];
	snprintf(req, sizeof req, "cas r 0 0 1 %llu\r\nA\r\n", (unsigned long long)ca);
	xchg(a, req, "STORED\r\n");
	snprintf(req, sizeof req, "cas r 0 0 1 %llu\r\nB\r\n", (unsigned long long)cb);
	xchg(b, req, "EXISTS\r\n");
	xchg(b, "get r\r\n", "VALUE r 0 1\r\nA\r\nEND\r\n");
	assert_true(gets_cas(b, "r") != ca); /* every store gets a new unique */
	xchg(b, "cas nokey 0 0 1 1\r\nx\r\n", "NOT_FOUND\r\n");
	close(a);
	close(b);
}

/* Four threads each do 200 gets+cas retry loops incrementing one counter:
 * with correct CAS, no increment is lost. */
static void *cas_worker(void *arg)
{
	(void)arg;
	int fd = th_connect(mc_port);
	char req[128], buf[4096];
	for (int i = 0; i < 200; i++) {
		for (;;) {
			if (th_send(fd, "gets cnt\r\n", 10) || th_recv_until(fd, buf, sizeof buf, "END\r\n", 3000) <= 0)
				return (void *)1;
			unsigned long long cas, v;
			unsigned fl, n;
			if (sscanf(buf, "VALUE cnt %u %u %llu\r\n%llu", &fl, &n, &cas, &v) != 4)
				return (void *)1;
			char num[32];
			int nl = snprintf(num, sizeof num, "%llu", v + 1);
			int rl = snprintf(req, sizeof req, "cas cnt 0 0 %d %llu\r\n%s\r\n", nl, cas, num);
			if (th_send(fd, req, (size_t)rl) || th_recv_until(fd, buf, sizeof buf, "\r\n", 3000) <= 0)
				return (void *)1;
			if (strcmp(buf, "STORED\r\n") == 0)
				break;
			if (strcmp(buf, "EXISTS\r\n") != 0)
				return (void *)1;
		}
	}
	close(fd);
	return NULL;
}

static void cas_race_threads(void **state)
{
	(void)state;
	int fd = conn();
	xchg(fd, "set cnt 0 0 1\r\n0\r\n", "STORED\r\n");
	pthread_t th[4];
	for (int i = 0; i < 4; i++)
		pthread_create(&th[i], NULL, cas_worker, NULL);
	for (int i = 0; i < 4; i++) {
		void *r;
		pthread_join(th[i], &r);
		assert_null(r);
	}
	xchg(fd, "get cnt\r\n", "VALUE cnt 0 3\r\n800\r\nEND\r\n");
	close(fd);
}

/* Polls `get key` until it misses; returns ms waited, fails past deadline. */
static int64_t wait_gone(int fd, const char *key, int deadline_ms)
{
	char req[300], buf[4096];
	snprintf(req, sizeof req, "get %s\r\n", key);
	int64_t t0 = th_now_ms();
	for (;;) {
		assert_int_equal(th_send(fd, req, strlen(req)), 0);
		assert_true(th_recv_until(fd, buf, sizeof buf, "END\r\n", 3000) > 0);
		if (strcmp(buf, "END\r\n") == 0)
			return th_now_ms() - t0;
		if (th_now_ms() - t0 > deadline_ms)
			fail_msg("%s still there after %d ms", key, deadline_ms);
		struct timespec ts = {0, 20 * 1000 * 1000};
		nanosleep(&ts, NULL); /* polling interval */
	}
}

static void exptime_semantics(void **state)
{
	(void)state;
	int fd = conn();
	char req[200];
	long now = (long)time(NULL);
	xchg(fd, "set neg 0 -1 1\r\nx\r\nget neg\r\n", "STORED\r\nEND\r\n");
	snprintf(req, sizeof req, "set past 0 %ld 1\r\nx\r\nget past\r\n", now - 10);
	xchg(fd, req, "STORED\r\nEND\r\n");
	snprintf(req, sizeof req, "set future 0 %ld 1\r\nx\r\nget future\r\n", now + 3600);
	xchg(fd, req, "STORED\r\nVALUE future 0 1\r\nx\r\nEND\r\n");
	xchg(fd, "set forever 0 0 1\r\nx\r\n", "STORED\r\n");
	/* relative: gone within ~1 s of the second boundary, not before */
	xchg(fd, "set soon 0 1 1\r\nx\r\nset later 0 100 1\r\ny\r\n", "STORED\r\nSTORED\r\n");
	wait_gone(fd, "soon", 3000);
	xchg(fd, "get later forever\r\n",
	     "VALUE later 0 1\r\ny\r\nVALUE forever 0 1\r\nx\r\nEND\r\n");
	/* touch and gat move the expiry */
	xchg(fd, "touch later 1\r\n", "TOUCHED\r\n");
	wait_gone(fd, "later", 3000);
	xchg(fd, "set g 0 1 1\r\nz\r\ngat 100 g\r\n", "STORED\r\nVALUE g 0 1\r\nz\r\nEND\r\n");
	xchg(fd, "touch nokey 10\r\n", "NOT_FOUND\r\n");
	/* delayed flush_all: items vanish once the delay passes (memcached
	 * counts from the second before: "flush_all 3" acts within 2-3 s) */
	xchg(fd, "flush_all 3\r\nget g\r\n", "OK\r\nVALUE g 0 1\r\nz\r\nEND\r\n");
	wait_gone(fd, "g", 5000);
	xchg(fd, "flush_all\r\nget forever\r\n", "OK\r\nEND\r\n");
	xchg(fd, "set after 0 0 1\r\nx\r\nget after\r\n", "STORED\r\nVALUE after 0 1\r\nx\r\nEND\r\n");
	close(fd);
}

/* "STAT <name> <n>" from the memcache port's stats. */
static uint64_t mc_stat(const char *name)
{
	int fd = conn();
	static char buf[8192];
	assert_int_equal(th_send(fd, "stats\r\n", 7), 0);
	assert_true(th_recv_until(fd, buf, sizeof buf, "END\r\n", 3000) > 0);
	close(fd);
	char pat[80];
	snprintf(pat, sizeof pat, "STAT %s ", name);
	const char *p = strstr(buf, pat);
	assert_non_null(p);
	return strtoull(p + strlen(pat), NULL, 10);
}

/* A raw mempool request on port 30000+offset; returns the reply line. */
static void mp_req(int fd, const char *req, char *reply, size_t cap)
{
	assert_int_equal(th_send(fd, req, strlen(req)), 0);
	assert_true(th_recv_until(fd, reply, cap, "\r\n", 3000) > 0);
}

static void fill_cache(int fd, const char *prefix, int count, size_t size)
{
	static char req[70000];
	for (int i = 0; i < count; i++) {
		int n = snprintf(req, sizeof req, "set %s%d 0 0 %zu noreply\r\n", prefix, i, size);
		memset(req + n, 'c', size);
		n += (int)size;
		memcpy(req + n, "\r\n", 2);
		assert_int_equal(th_send(fd, req, (size_t)n + 2), 0);
	}
	xchg(fd, "version\r\n", "VERSION 1.6.0-virgo\r\n"); /* all processed */
}

static void cache_never_evicts_virgo_malloc(void **state)
{
	(void)state;
	int fd = conn(), mp = th_connect(mp_port);
	assert_true(mp >= 0);
	xchg(fd, "flush_all\r\n", "OK\r\n");
	/* 2 MiB of virgo_malloc memory, with a known value */
	char reply[256], vuid[64], req[256];
	mp_req(mp, "malloc 2097152\r\n", reply, sizeof reply);
	assert_int_equal(sscanf(reply, "OK %63s", vuid), 1);
	snprintf(req, sizeof req, "set %s 5\r\npinnd\r\n", vuid);
	mp_req(mp, req, reply, sizeof reply);
	assert_string_equal(reply, "OK\r\n");
	/* write 16 MiB of items through a 4 MiB node: they must evict each
	 * other, never the allocation, and never fail */
	uint64_t ev0 = mc_stat("evictions");
	fill_cache(fd, "fill", 256, 65536);
	assert_true(mc_stat("evictions") > ev0);
	assert_true(mc_stat("bytes") <= 2u << 20);
	static char got[70000];
	assert_int_equal(th_send(fd, "get fill255\r\n", 13), 0);
	assert_int_equal(th_recv_until(fd, got, sizeof got, "\r\nEND\r\n", 3000), 23 + 65536 + 7);
	assert_memory_equal(got, "VALUE fill255 0 65536\r\n", 23);
	snprintf(req, sizeof req, "get %s\r\n", vuid);
	mp_req(mp, req, reply, sizeof reply);
	th_recv_until(mp, reply + strlen(reply), sizeof reply - strlen(reply), "pinnd\r\n", 3000);
	assert_string_equal(reply, "VALUE 5\r\npinnd\r\n");
	/* an item that cannot fit beside the pinned bytes is refused */
	snprintf(req, sizeof req, "free %s\r\n", vuid);
	mp_req(mp, "malloc 3900000\r\n", reply, sizeof reply); /* pinned 2M + 3.9M > 4M */
	assert_string_equal(reply, "ERR ENOMEM node memory limit reached\r\n");
	mp_req(mp, req, reply, sizeof reply);
	assert_string_equal(reply, "OK\r\n");
	close(mp);
	close(fd);
}

static void virgo_malloc_evicts_cache_first(void **state)
{
	(void)state;
	int fd = conn(), mp = th_connect(mp_port);
	assert_true(mp >= 0);
	xchg(fd, "flush_all\r\n", "OK\r\n");
	fill_cache(fd, "full", 128, 65536); /* the cache takes the whole node */
	uint64_t cached = mc_stat("virgo_cache_bytes");
	assert_true(cached > 3u << 20);
	uint64_t ev0 = mc_stat("evictions");
	/* 3 MiB does not fit beside the cache: items go, the malloc succeeds */
	char reply[256], vuid[64], req[256];
	mp_req(mp, "malloc 3145728\r\n", reply, sizeof reply);
	assert_int_equal(sscanf(reply, "OK %63s", vuid), 1);
	assert_true(mc_stat("evictions") > ev0);
	assert_true(mc_stat("virgo_cache_bytes") + (3u << 20) <= 4u << 20);
	/* pinned: the allocation with its overhead (malloc's header, pages) */
	assert_true(mc_stat("virgo_pinned_bytes") >= 3u << 20);
	assert_true(mc_stat("virgo_pinned_bytes") <= (3u << 20) + 8192);
	/* the cache keeps working in what is left */
	xchg(fd, "set small 0 0 2\r\nok\r\nget small\r\n", "STORED\r\nVALUE small 0 2\r\nok\r\nEND\r\n");
	snprintf(req, sizeof req, "free %s\r\n", vuid);
	mp_req(mp, req, reply, sizeof reply);
	assert_string_equal(reply, "OK\r\n");
	assert_int_equal(mc_stat("virgo_pinned_bytes"), 0);
	close(mp);
	close(fd);
}

static void stats_and_misc(void **state)
{
	(void)state;
	int fd = conn();
	xchg(fd, "stats reset\r\n", "RESET\r\n");
	xchg(fd, "flush_all\r\n", "OK\r\n");
	xchg(fd, "stats items\r\n", "END\r\n"); /* empty: no class shown */
	xchg(fd, "stats cachedump 1 0\r\n", "END\r\n");
	xchg(fd, "set dk 0 0 2\r\nhi\r\n", "STORED\r\n");
	xchg(fd, "stats cachedump 1 0\r\n", "ITEM dk [2 b; 0 s]\r\nEND\r\n");
	xchg(fd, "stats cachedump 2 0\r\n", "END\r\n");
	xchg(fd, "stats cachedump 64 0\r\n", "CLIENT_ERROR Illegal slab id\r\n");
	static char items[512];
	assert_int_equal(th_send(fd, "stats items\r\n", 13), 0);
	assert_true(th_recv_until(fd, items, sizeof items, "END\r\n", 3000) > 0);
	assert_non_null(strstr(items, "STAT items:1:number 1\r\n"));
	assert_non_null(strstr(items, "STAT items:1:age "));
	xchg(fd, "stats bogus\r\n", "ERROR\r\n");
	xchg(fd, "verbosity 1\r\n", "OK\r\n");
	xchg(fd, "bogus\r\n", "ERROR\r\n");
	xchg(fd, "get a b c\r\n", "END\r\n");
	assert_true(mc_stat("get_misses") >= 3);
	xchg(fd, "quit\r\n", "");
	char buf[16];
	assert_int_equal(th_recv_until(fd, buf, sizeof buf, NULL, 3000), 0); /* closed */
	close(fd);
}

#define MEMCACHED_TOOL "/usr/share/memcached/scripts/memcached-tool"

/* lru_crawler metadump: memcached's line format with URI-encoded keys,
 * every live key once while the dump streams past the 1 MiB pause,
 * requests pipelined behind it answered after its END, and (where the
 * memcached package is installed) memcached-tool's "keys" reads it. */
static void metadump_streams_every_key(void **state)
{
	(void)state;
	enum { N = 20000 };
	int fd = conn();
	xchg(fd, "flush_all\r\n", "OK\r\n");
	xchg(fd, "set md:a/b%c 3 100 2\r\nhi\r\nget md:a/b%c\r\n",
	     "STORED\r\nVALUE md:a/b%c 3 2\r\nhi\r\nEND\r\n");
	xchg(fd, "set plain 0 0 1\r\nx\r\n", "STORED\r\n");
	xchg(fd, "set gone 0 -1 1\r\nx\r\n", "STORED\r\n");
	static char buf[4 << 20];
	assert_int_equal(th_send(fd, "lru_crawler metadump all\r\n", 26), 0);
	assert_true(th_recv_until(fd, buf, sizeof buf, "END\r\n", 3000) > 0);
	char *a = strstr(buf, "key=md%3Aa%2Fb%25c exp="), *p = strstr(buf, "key=plain exp=-1 la=");
	assert_non_null(a);
	assert_non_null(p);
	assert_null(strstr(buf, "key=gone"));
	long long exp, la, cas;
	char fetch[8];
	size_t size;
	assert_int_equal(sscanf(a, "key=md%%3Aa%%2Fb%%25c exp=%lld la=%lld cas=%lld fetch=%7s cls=1 size=%zu\n",
				&exp, &la, &cas, fetch, &size), 5);
	assert_true(exp > la && exp <= la + 101);
	assert_string_equal(fetch, "yes");
	assert_true(size > 11 + 2);
	assert_non_null(strstr(p, "fetch=no cls=1 size="));
	assert_non_null(strstr(buf, "\nEND\r\n"));

	static char req[N * 40];
	size_t n = 0;
	for (int i = 0; i < N; i++)
		n += (size_t)sprintf(req + n, "set k%05d 0 0 1 noreply\r\nv\r\n", i);
	assert_int_equal(th_send(fd, req, n), 0);
	assert_int_equal(th_send(fd, "lru_crawler metadump 1\r\nversion\r\n", 33), 0);
	ssize_t got = th_recv_until(fd, buf, sizeof buf, "VERSION 1.6.0-virgo\r\n", 10000);
	assert_true(got > N * 40); /* > 1 MiB: streamed in several steps */
	static bool seen[N];
	int lines = 0;
	for (char *l = buf; (l = strstr(l, "key=k")) != NULL; l += 5) {
		int i = atoi(l + 5);
		assert_in_range(i, 0, N - 1);
		assert_false(seen[i]);
		seen[i] = true;
		lines++;
	}
	assert_int_equal(lines, N);
	assert_non_null(strstr(buf, "\nEND\r\nVERSION 1.6.0-virgo\r\n"));
	xchg(fd, "lru_crawler metadump 2\r\n", "END\r\n");
	xchg(fd, "lru_crawler metadump 64\r\n", "CLIENT_ERROR bad class id\r\n");
	close(fd);

	if (access(MEMCACHED_TOOL, R_OK) != 0) {
		print_message("%s not installed (apt-get install memcached): its check skipped\n",
			      MEMCACHED_TOOL);
		return;
	}
	char addr[32];
	snprintf(addr, sizeof addr, "127.0.0.1:%d", mc_port);
	const char *argv[] = {"/usr/bin/perl", MEMCACHED_TOOL, addr, "keys", NULL};
	static char out[4 << 20];
	assert_int_equal(th_run(argv, out, sizeof out, 20000), 0);
	int keys = 0;
	for (char *l = out; (l = strstr(l, "key=")) != NULL; l += 4)
		keys++;
	assert_int_equal(keys, N + 2); /* k00000.., md:a/b%c, plain */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(memccapable_ascii),
		cmocka_unit_test(key_length_250_and_251),
		cmocka_unit_test(bad_lengths),
		cmocka_unit_test(missing_data_terminator),
		cmocka_unit_test(large_value_in_pieces),
		cmocka_unit_test(binary_protocol_refused),
		cmocka_unit_test(large_value_abandoned),
		cmocka_unit_test(noreply_everywhere),
		cmocka_unit_test(incr_decr_wrap_and_floor),
		cmocka_unit_test(cas_race_two_clients),
		cmocka_unit_test(cas_race_threads),
		cmocka_unit_test(exptime_semantics),
		cmocka_unit_test(cache_never_evicts_virgo_malloc),
		cmocka_unit_test(virgo_malloc_evicts_cache_first),
		cmocka_unit_test(stats_and_misc),
		cmocka_unit_test(metadump_streams_every_key),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
